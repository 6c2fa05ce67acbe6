//! Judging `bench update` (pure): which layers of an image are new to a host that holds the
//! previous one, what that host pulls and stores, and the targets.

use serde::Serialize;

use super::plan::Scenario;
use crate::report::Check;
use xtask::config::human_size;
use xtask::sizes::Layer;

/// What a host holding `before` needs for `after`.
#[derive(Debug, Clone, Serialize)]
pub struct Delta {
    pub layers_total: usize,
    pub layers_changed: usize,
    /// Compressed bytes of the layers whose digest the host does not have.
    pub pull_bytes: u64,
    /// Unpacked bytes those layers add to the host's store.
    pub store_bytes: u64,
    /// The new layers: position (1 = bottom), instruction, compressed bytes.
    pub changed: Vec<(usize, String, u64)>,
}

pub fn delta(before: &[Layer], after: &[Layer]) -> Delta {
    let have: std::collections::BTreeSet<&str> = before.iter().map(|l| l.digest.as_str()).collect();
    let new: Vec<(usize, &Layer)> = after
        .iter()
        .enumerate()
        .filter(|(_, l)| !have.contains(l.digest.as_str()))
        .map(|(i, l)| (i + 1, l))
        .collect();
    Delta {
        layers_total: after.len(),
        layers_changed: new.len(),
        pull_bytes: new.iter().map(|(_, l)| l.compressed).sum(),
        store_bytes: new.iter().map(|(_, l)| l.unpacked).sum(),
        changed: new
            .iter()
            .map(|(i, l)| (*i, xtask::sizes::instruction(&l.created_by), l.compressed))
            .collect(),
    }
}

/// One measured change.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: Scenario,
    /// What was changed: the file, or `package old -> new`.
    pub change: String,
    pub image_id: String,
    pub secs: f64,
    pub delta: Delta,
}

/// Digests of the layers made by an instruction containing `pattern`, in order.
pub fn stable_digests<'a>(layers: &'a [Layer], pattern: &str) -> Vec<&'a str> {
    layers
        .iter()
        .filter(|l| l.created_by.contains(pattern))
        .map(|l| l.digest.as_str())
        .collect()
}

/// The targets: each change pulls at most its limit and changes at least one layer (else the
/// change never reached the image), and the layers made by `stable` instructions keep their
/// digests through both changes (when the image has such layers).
pub fn judge(
    rows: &[Row],
    max_app: u64,
    max_dep: u64,
    stable: &str,
    stable_before: &[&str],
    stable_after: &[Vec<&str>],
) -> Vec<Check> {
    let mut checks = Vec::new();
    for row in rows {
        let (what, max) = match row.scenario {
            Scenario::AppChange => ("app change", max_app),
            Scenario::DepChange => ("dependency change", max_dep),
        };
        let d = &row.delta;
        checks.push(Check {
            name: format!("{what}: bytes to pull"),
            target: format!("≤ {}, ≥ 1 layer changed", human_size(max)),
            measured: format!(
                "{} in {} of {} layers",
                human_size(d.pull_bytes),
                d.layers_changed,
                d.layers_total
            ),
            pass: d.pull_bytes <= max && d.layers_changed > 0,
        });
    }
    if !stable_before.is_empty() {
        let kept = stable_after.iter().all(|after| after == stable_before);
        checks.push(Check {
            name: format!("layers of `{stable}` unchanged"),
            target: format!(
                "the same {} digests after both changes",
                stable_before.len()
            ),
            measured: if kept {
                format!("{} of {} kept", stable_before.len(), stable_before.len())
            } else {
                let moved = stable_after
                    .iter()
                    .map(|after| {
                        after
                            .iter()
                            .zip(stable_before)
                            .filter(|(a, b)| a != b)
                            .count()
                            + after.len().abs_diff(stable_before.len())
                    })
                    .max()
                    .unwrap_or(0);
                format!("{moved} of {} changed", stable_before.len())
            },
            pass: kept,
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(digest: &str, compressed: u64, created_by: &str) -> Layer {
        Layer {
            digest: digest.into(),
            diff_id: format!("{digest}-tar"),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            compressed,
            unpacked: compressed * 3,
            unpacked_from: xtask::sizes::UnpackedFrom::Decompressed,
            created_by: created_by.into(),
        }
    }

    fn image(venv: &str, app: &str) -> Vec<Layer> {
        vec![
            layer("sha256:base", 30_000_000, "ADD rootfs.tar / # buildkit"),
            layer(
                "sha256:torch",
                500_000_000,
                "COPY /layers/torch/ /opt/venv/ # buildkit",
            ),
            layer(venv, 26_000_000, "COPY /opt/venv /opt/venv # buildkit"),
            layer(app, 31_000, "COPY /opt/voxserve /opt/voxserve # buildkit"),
        ]
    }

    fn row(scenario: Scenario, before: &[Layer], after: &[Layer]) -> Row {
        Row {
            scenario,
            change: "x".into(),
            image_id: "sha256:i".into(),
            secs: 1.0,
            delta: delta(before, after),
        }
    }

    #[test]
    fn only_layers_with_new_digests_are_pulled_and_stored() {
        let before = image("sha256:venv1", "sha256:app1");
        let d = delta(&before, &image("sha256:venv1", "sha256:app2"));
        assert_eq!((d.layers_changed, d.layers_total), (1, 4));
        assert_eq!((d.pull_bytes, d.store_bytes), (31_000, 93_000));
        assert_eq!(
            d.changed,
            [(4, "COPY /opt/voxserve /opt/voxserve".to_string(), 31_000)]
        );
        let d = delta(&before, &before);
        assert_eq!((d.layers_changed, d.pull_bytes), (0, 0));
    }

    #[test]
    fn targets_judge_pull_bytes_changed_layers_and_stable_digests() {
        let before = image("sha256:venv1", "sha256:app1");
        let app = image("sha256:venv1", "sha256:app2");
        let dep = image("sha256:venv2", "sha256:app1");
        let rows = [
            row(Scenario::AppChange, &before, &app),
            row(Scenario::DepChange, &before, &dep),
        ];
        let stable = stable_digests(&before, "/layers/");
        assert_eq!(stable, ["sha256:torch"]);
        let after = vec![
            stable_digests(&app, "/layers/"),
            stable_digests(&dep, "/layers/"),
        ];
        let checks = judge(&rows, 100_000, 100_000_000, "/layers/", &stable, &after);
        assert!(checks.iter().all(|c| c.pass), "{checks:?}");
        assert_eq!(checks[1].measured, "26.0 MB in 1 of 4 layers");
        assert_eq!(checks[2].measured, "1 of 1 kept");
        // Over a limit, no layer changed, or a stable layer moved: each fails.
        let checks = judge(&rows, 10_000, 100_000_000, "/layers/", &stable, &after);
        assert!(!checks[0].pass);
        let unchanged = [row(Scenario::AppChange, &before, &before)];
        assert!(!judge(&unchanged, 100_000, 1, "/layers/", &stable, &[])[0].pass);
        let mut moved = dep.clone();
        moved[1].digest = "sha256:torch2".into();
        let after = vec![stable_digests(&moved, "/layers/")];
        let checks = judge(&rows[1..], 1, 100_000_000, "/layers/", &stable, &after);
        assert_eq!(checks[1].measured, "1 of 1 changed");
        assert!(!checks[1].pass);
        // No stable layer at all (cpu-minimal): no such check.
        assert_eq!(judge(&rows, 1, 1, "/layers/", &[], &[]).len(), 2);
    }
}
