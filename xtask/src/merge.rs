//! `cargo xtask merge <variant> --from REPORT…`: joins the images that one runner per platform
//! pushed by digest (`build --platform P --push-by-digest`) into one multi-platform index with
//! every tag, the pattern teams use instead of emulation: `docker buildx imagetools create`
//! copies no layer, it writes the index in the registry.
//!
//! The reports are checked first (pure): one variant, one version and revision, one repository,
//! each pushed, no platform twice. The result is read back from the registry and must list every
//! platform; its report (`build-<variant>.json`, the shape `sign` reads) names the index digest.

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ctx::Ctx;
use crate::docker;
use crate::output;
use crate::report::{self, Format, Kind, Table};
use crate::util::{self, progress};

#[derive(clap::Args)]
pub struct Args {
    /// The variant the reports are builds of.
    variant: String,
    /// A build report of `build <variant> --push-by-digest` (repeatable; one per runner).
    #[arg(long = "from", value_name = "REPORT", required = true, num_args = 1..)]
    from: Vec<Utf8PathBuf>,
    /// Where the merged report goes, as `build-<variant>.json` (default: target/xtask).
    #[arg(long, value_name = "DIR")]
    report_dir: Option<Utf8PathBuf>,
    /// Print the `imagetools create` command without running it.
    #[arg(long)]
    dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// The parts of a build report a merge reads.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Pushed {
    pub(crate) variant: String,
    #[serde(default)]
    pub(crate) version: Option<String>,
    #[serde(default)]
    pub(crate) revision: Option<String>,
    #[serde(default)]
    pub(crate) repository: Option<String>,
    #[serde(default)]
    pub(crate) pushed: bool,
    #[serde(default)]
    pub(crate) digest: Option<String>,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    #[serde(default)]
    pub(crate) platform_digests: BTreeMap<String, String>,
}

/// What a merge will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) repository: String,
    pub(crate) tags: Vec<String>,
    /// `<repository>@<digest>` of each report, in the order given.
    pub(crate) sources: Vec<String>,
    /// Every platform and the report it comes from.
    pub(crate) platforms: BTreeMap<String, String>,
    pub(crate) version: Option<String>,
    pub(crate) revision: Option<String>,
}

impl Plan {
    /// `docker buildx imagetools create --tag=T… SOURCE…`.
    pub(crate) fn argv(&self) -> Vec<String> {
        let mut argv: Vec<String> = ["buildx", "imagetools", "create"].map(String::from).into();
        argv.extend(self.tags.iter().map(|t| format!("--tag={t}")));
        argv.extend(self.sources.iter().cloned());
        argv
    }
}

/// Checks the reports against each other and the variant (pure); `(path, report)` pairs.
pub(crate) fn plan(variant: &str, reports: &[(String, Pushed)]) -> Result<Plan> {
    let Some((first_path, first)) = reports.first() else {
        bail!("no report to merge: pass --from REPORT once per platform");
    };
    let mut sources = Vec::new();
    let mut platforms: BTreeMap<String, String> = BTreeMap::new();
    for (path, r) in reports {
        sources.push(source(variant, (path, r), (first_path, first))?);
        for platform in r.platform_digests.keys() {
            if let Some(other) = platforms.insert(platform.clone(), path.clone()) {
                bail!("{platform} is in both {other} and {path}: merge one build per platform");
            }
        }
    }
    if first.tags.is_empty() {
        bail!("{first_path} names no tags for the index");
    }
    Ok(Plan {
        repository: first.repository.clone().unwrap_or_default(),
        tags: first.tags.clone(),
        sources,
        platforms,
        version: first.version.clone(),
        revision: first.revision.clone(),
    })
}

/// One report's `repository@digest`, once it is a push of `variant` that matches the first
/// report in repository, revision, version and tags (pure).
fn source(
    variant: &str,
    (path, r): (&str, &Pushed),
    (first_path, first): (&str, &Pushed),
) -> Result<String> {
    if r.variant != variant {
        bail!(
            "{path} is a build of `{}`, not `{variant}`: merge the reports of one variant",
            r.variant
        );
    }
    let (Some(repository), Some(digest), true) = (&r.repository, &r.digest, r.pushed) else {
        bail!(
            "{path} is not of a pushed build: build each platform with `cargo xtask build \
             {variant} --platform P --push-by-digest`"
        );
    };
    if Some(repository) != first.repository.as_ref() {
        bail!(
            "{path} was pushed to {repository}, {first_path} to {}: push every platform to one \
             repository",
            first.repository.as_deref().unwrap_or("?")
        );
    }
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    for (name, mine, theirs) in [
        ("revision", &r.revision, &first.revision),
        ("version", &r.version, &first.version),
    ] {
        if mine != theirs {
            bail!(
                "{path} and {first_path} are builds of different {name}s ({} and {}): build \
                 every platform from one commit",
                show(mine),
                show(theirs)
            );
        }
    }
    if r.tags != first.tags {
        bail!(
            "{path} and {first_path} name different tags ({} and {}): build every platform with \
             the same --tag flags",
            r.tags.join(", "),
            first.tags.join(", ")
        );
    }
    if r.platform_digests.is_empty() {
        bail!("{path} names no platform (platform_digests is empty): is it a build report of this xtask?");
    }
    Ok(format!("{repository}@{digest}"))
}

/// The merged index, written as `build-<variant>.json` (what `sign` reads).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Merged {
    pub(crate) variant: String,
    pub(crate) image: String,
    pub(crate) tags: Vec<String>,
    /// The index digest the tags point at.
    pub(crate) digest: String,
    pub(crate) repository: String,
    pub(crate) pushed: bool,
    pub(crate) platforms: Vec<String>,
    pub(crate) platform_digests: BTreeMap<String, String>,
    pub(crate) version: Option<String>,
    pub(crate) revision: Option<String>,
    /// The reports merged.
    pub(crate) merged_from: Vec<String>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let reports = self
            .from
            .iter()
            .map(|path| Ok((util::shown(path), report::read(path, Kind::Build)?)))
            .collect::<Result<Vec<_>>>()?;
        let plan = plan(&self.variant, &reports)?;
        let dir = self.report_dir.clone().unwrap_or_else(|| ctx.out_dir());
        report::ensure_dir("--report-dir", &dir)?;
        if self.dry_run {
            return output::result(&format!("docker {}\n", plan.argv().join(" ")));
        }
        docker::ensure_buildx()?;
        let platforms: Vec<&str> = plan.platforms.keys().map(String::as_str).collect();
        progress!(
            "merging {} ({}) into {} with {} tag(s)",
            self.variant,
            platforms.join(", "),
            plan.repository,
            plan.tags.len()
        );
        docker::imagetools_create(&plan.argv())?;
        let (digest, listed) = read_back(&plan)?;
        let merged = Merged {
            variant: self.variant.clone(),
            image: plan.tags[0].clone(),
            tags: plan.tags.clone(),
            digest,
            repository: plan.repository.clone(),
            pushed: true,
            platforms: listed.keys().cloned().collect(),
            platform_digests: listed,
            version: plan.version.clone(),
            revision: plan.revision.clone(),
            merged_from: self.from.iter().map(util::shown).collect(),
        };
        let path = util::host_join(&dir, format!("build-{}.json", self.variant));
        report::write_atomic(&path, report::to_json(Kind::Build, &merged)?.as_bytes())?;
        progress!(
            "merged {} as {}; report: {}",
            self.variant,
            merged.digest,
            util::shown(&path)
        );
        report::emit(self.format, &table(&merged, &plan), Kind::Build, &merged)
    }
}

/// The index the tags point at now, and its platforms; every platform of the plan must be
/// among them.
fn read_back(plan: &Plan) -> Result<(String, BTreeMap<String, String>)> {
    let digest = docker::registry_digest(&plan.tags[0])?;
    let index = docker::registry_manifest(&plan.tags[0])?;
    let listed: BTreeMap<String, String> = crate::registry::index_platforms(&index)
        .context("the merged image is not an index")?
        .into_iter()
        .collect();
    let missing: Vec<&str> = plan
        .platforms
        .keys()
        .filter(|p| !listed.contains_key(*p))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        bail!(
            "the index {digest} lacks {}: imagetools did not merge them",
            missing.join(", ")
        );
    }
    Ok((digest, listed))
}

fn table(merged: &Merged, plan: &Plan) -> Table {
    let mut t = Table::new(&["platform", "digest", "from"]);
    for (platform, digest) in &merged.platform_digests {
        t.row(vec![
            platform.clone(),
            digest.clone(),
            plan.platforms.get(platform).cloned().unwrap_or_default(),
        ]);
    }
    t.row(vec![
        "index".into(),
        merged.digest.clone(),
        merged.tags.join(", "),
    ]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(platform: &str, digest: &str) -> Pushed {
        Pushed {
            variant: "cpu-minimal".into(),
            version: Some("0.1.0".into()),
            revision: Some("0123456789abcdef".into()),
            repository: Some("127.0.0.1:5000/voxserve".into()),
            pushed: true,
            digest: Some(digest.into()),
            tags: vec![
                "127.0.0.1:5000/voxserve:cpu-minimal".into(),
                "127.0.0.1:5000/voxserve:0.1.0-cpu-minimal".into(),
            ],
            platform_digests: [(platform.to_string(), format!("{digest}-m"))].into(),
        }
    }

    fn two() -> Vec<(String, Pushed)> {
        vec![
            ("amd64.json".into(), pushed("linux/amd64", "sha256:a")),
            ("arm64.json".into(), pushed("linux/arm64", "sha256:b")),
        ]
    }

    #[test]
    fn two_platforms_become_one_index_with_every_tag() {
        let p = plan("cpu-minimal", &two()).unwrap();
        assert_eq!(
            p.argv(),
            [
                "buildx",
                "imagetools",
                "create",
                "--tag=127.0.0.1:5000/voxserve:cpu-minimal",
                "--tag=127.0.0.1:5000/voxserve:0.1.0-cpu-minimal",
                "127.0.0.1:5000/voxserve@sha256:a",
                "127.0.0.1:5000/voxserve@sha256:b"
            ]
        );
        assert_eq!(p.platforms.len(), 2);
    }

    #[test]
    fn reports_of_other_variants_revisions_or_repositories_are_refused() {
        let err =
            |reports: Vec<(String, Pushed)>| plan("cpu-minimal", &reports).unwrap_err().to_string();
        let mut r = two();
        r[1].1.variant = "cuda".into();
        assert!(err(r).contains("arm64.json is a build of `cuda`, not `cpu-minimal`"));
        let mut r = two();
        r[1].1.revision = Some("fedcba9876543210".into());
        let e = err(r);
        assert!(
            e.contains("different revisions") && e.contains("one commit"),
            "{e}"
        );
        let mut r = two();
        r[1].1.version = Some("0.2.0".into());
        assert!(err(r).contains("different versions"));
        let mut r = two();
        r[1].1.repository = Some("127.0.0.1:5001/voxserve".into());
        assert!(err(r).contains("one repository"));
        let mut r = two();
        r[1].1.pushed = false;
        assert!(err(r).contains("--push-by-digest"));
        let mut r = two();
        r[1].1.platform_digests = [("linux/amd64".to_string(), "x".to_string())].into();
        assert!(err(r).contains("linux/amd64 is in both amd64.json and arm64.json"));
        let mut r = two();
        r[1].1.tags.pop();
        assert!(err(r).contains("different tags"));
        assert!(err(vec![]).contains("--from"));
    }
}
