//! Judge (pure): two images of a variant, platform by platform — the same config digest and the
//! same manifest digest, or which of them differs.

use serde::Serialize;

use super::fresh::{Built, Digests};

/// One platform of one variant, as both images have it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) variant: String,
    pub(crate) platform: String,
    pub(crate) a: Option<Digests>,
    pub(crate) b: Option<Digests>,
}

impl Row {
    pub(crate) fn same(&self) -> bool {
        self.a.is_some() && self.a == self.b
    }

    /// `the config and the manifest differ`, `only in A`, … (None: the same image).
    pub(crate) fn difference(&self, a: &str, b: &str) -> Option<String> {
        match (&self.a, &self.b) {
            (Some(x), Some(y)) if x == y => None,
            (Some(x), Some(y)) if x.config == y.config => Some("the manifest differs".into()),
            (Some(x), Some(y)) if x.manifest == y.manifest => Some("the config differs".into()),
            (Some(_), Some(_)) => Some("the config and the manifest differ".into()),
            (Some(_), None) => Some(format!("no {} image in {b}", self.platform)),
            (None, _) => Some(format!("no {} image in {a}", self.platform)),
        }
    }
}

/// Both builds were of one commit: HEAD did not move while they ran (else they would differ in
/// its revision and time, and the comparison would say nothing of the build).
pub(crate) fn same_checkout(before: Option<&str>, after: Option<&str>) -> anyhow::Result<()> {
    match before == after {
        true => Ok(()),
        false => anyhow::bail!(
            "the checkout's HEAD moved while the builds ran ({} → {}): the two builds are of \
             different commits; run `cargo xtask reproduce` again on a checkout that stays put",
            before.unwrap_or("none"),
            after.unwrap_or("none")
        ),
    }
}

/// Both images' platforms, each paired.
pub(crate) fn compare(variant: &str, a: &Built, b: &Built) -> Vec<Row> {
    let mut platforms: Vec<&String> = a.platforms.keys().chain(b.platforms.keys()).collect();
    platforms.sort();
    platforms.dedup();
    platforms
        .into_iter()
        .map(|p| Row {
            variant: variant.to_string(),
            platform: p.clone(),
            a: a.platforms.get(p).cloned(),
            b: b.platforms.get(p).cloned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn built(label: &str, platforms: &[(&str, &str, &str)]) -> Built {
        Built {
            label: label.into(),
            repository: format!("127.0.0.1:5000/{label}/voxserve"),
            platforms: platforms
                .iter()
                .map(|(p, m, c)| {
                    let d = Digests {
                        manifest: m.to_string(),
                        config: c.to_string(),
                    };
                    (p.to_string(), d)
                })
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn a_head_that_moved_between_the_builds_is_an_error() {
        assert!(same_checkout(Some("abc"), Some("abc")).is_ok());
        assert!(same_checkout(None, None).is_ok());
        let err = same_checkout(Some("abc"), Some("def")).unwrap_err();
        assert!(err.to_string().contains("(abc → def)"), "{err}");
    }

    #[test]
    fn platforms_pair_and_say_what_differs() {
        let a = built(
            "a",
            &[("linux/amd64", "m1", "c1"), ("linux/arm64", "m2", "c2")],
        );
        let b = built(
            "b",
            &[("linux/amd64", "m1", "c1"), ("linux/arm64", "m3", "c3")],
        );
        let rows = compare("cpu-minimal", &a, &b);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].same());
        assert_eq!(rows[0].difference("a", "b"), None);
        assert!(!rows[1].same());
        assert_eq!(
            rows[1].difference("a", "b").as_deref(),
            Some("the config and the manifest differ")
        );
        let recompressed = built("b", &[("linux/amd64", "m9", "c1")]);
        let rows = compare("x", &a, &recompressed);
        assert_eq!(
            rows[0].difference("a", "b").as_deref(),
            Some("the manifest differs")
        );
        assert_eq!(
            rows[1].difference("build 1", "build 2").as_deref(),
            Some("no linux/arm64 image in build 2")
        );
    }
}
