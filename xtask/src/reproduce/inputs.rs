//! Resolve, for `--published`: what the registry serves for a variant (each platform's digests)
//! and the inputs its build recorded — the commit, SOURCE_DATE_EPOCH and the base with its digest
//! from the image's labels, or all of a build report's (its build arguments, compression,
//! BuildKit and engine versions too) — and a checkout of that commit to build from.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::fresh::{pushed_digests, Built};
use crate::cleanup::Guard;
use crate::config::{Compression, Variant};
use crate::ctx::Ctx;
use crate::docker;
use crate::process::Cmd;
use crate::registry::{self, Registry};
use crate::report::{self, Kind};
use crate::util;

/// What a rebuild must build with to give the published image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Inputs {
    pub(crate) revision: String,
    pub(crate) source_date_epoch: u64,
    /// `name@sha256:…`, when recorded.
    pub(crate) base: Option<String>,
    /// Build arguments besides SOURCE_DATE_EPOCH and BASE_IMAGE (a report's).
    pub(crate) build_args: BTreeMap<String, String>,
    pub(crate) compression: Option<Compression>,
    pub(crate) buildkit: Option<String>,
    pub(crate) engine: Option<String>,
    /// The registry serves attestations beside the images (a push with provenance, which makes
    /// BuildKit write OCI media types: a rebuild must attest too to give the same manifests).
    pub(crate) attested: bool,
}

/// The fields of a build report a rebuild reads.
#[derive(Deserialize)]
struct RecordedBuild {
    revision: Option<String>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    source_date_epoch: Option<u64>,
    base_image: Option<String>,
    compression: Option<Compression>,
    buildkit: Option<String>,
    engine: Option<String>,
}

/// The inputs a build report recorded (pure).
pub(crate) fn from_report(source: &str, text: &str) -> Result<Inputs> {
    let r: RecordedBuild = report::parse(source, text, Kind::Build)?;
    let mut build_args = r.build_args;
    let epoch = build_args.remove("SOURCE_DATE_EPOCH");
    build_args.remove("BASE_IMAGE");
    // Derived from the commit's app by the build itself, like the base from the base's name.
    build_args.remove("APP_SRC");
    Ok(Inputs {
        revision: r
            .revision
            .with_context(|| format!("{source} records no commit (built outside git)"))?,
        source_date_epoch: r
            .source_date_epoch
            .or_else(|| epoch.and_then(|e| e.parse().ok()))
            .with_context(|| format!("{source} records no SOURCE_DATE_EPOCH"))?,
        base: r.base_image,
        build_args,
        compression: r.compression,
        buildkit: r.buildkit,
        engine: r.engine,
        attested: false,
    })
}

/// The inputs the image's OCI labels say (pure).
pub(crate) fn from_labels(reference: &str, labels: &BTreeMap<String, String>) -> Result<Inputs> {
    let label = |k: &str| {
        labels
            .get(&format!("org.opencontainers.image.{k}"))
            .cloned()
    };
    let revision = label("revision")
        .with_context(|| format!("{reference} has no org.opencontainers.image.revision label"))?;
    let created = label("created")
        .with_context(|| format!("{reference} has no org.opencontainers.image.created label"))?;
    let epoch = util::parse_rfc3339(&created).with_context(|| {
        format!("{reference}: the created label `{created}` is no RFC 3339 time")
    })?;
    let base = match (label("base.name"), label("base.digest")) {
        (Some(name), Some(digest)) => Some(format!("{name}@{digest}")),
        _ => None,
    };
    Ok(Inputs {
        revision,
        source_date_epoch: epoch.as_secs(),
        base,
        ..Inputs::default()
    })
}

/// What the registry serves for the variant, and the inputs (a report's, else the labels').
pub(crate) fn published(
    variant: &Variant,
    registry: &Registry,
    report_file: Option<&Utf8Path>,
) -> Result<(Built, Inputs)> {
    let reference = registry.variant_ref(variant);
    let repository = registry::repository_of(&reference).to_string();
    let digest = docker::registry_digest(&reference)?;
    let top = docker::registry_manifest(&reference)?;
    let manifests: BTreeMap<String, String> = match registry::index_platforms(&top) {
        Some(platforms) => platforms.into_iter().collect(),
        None => {
            let config = docker::registry_image_config(&reference)?;
            let platform = registry::platform_of(
                config["os"].as_str().unwrap_or("?"),
                config["architecture"].as_str().unwrap_or("?"),
                config["variant"].as_str(),
            );
            BTreeMap::from([(platform, digest)])
        }
    };
    let attested = top["manifests"]
        .as_array()
        .is_some_and(|m| m.len() > manifests.len());
    let built = Built {
        label: "published".into(),
        platforms: pushed_digests(&repository, &manifests)?,
        repository,
    };
    let inputs = match report_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the build report {}", util::shown(path)))?;
            from_report(path.as_str(), &text)?
        }
        None => {
            let first = manifests
                .values()
                .next()
                .context("the registry lists no image")?;
            let config = docker::registry_image_config(&format!("{}@{first}", built.repository))?;
            let labels: BTreeMap<String, String> =
                serde_json::from_value(config["config"]["Labels"].clone()).unwrap_or_default();
            from_labels(&reference, &labels)?
        }
    };
    Ok((built, Inputs { attested, ..inputs }))
}

/// The base a rebuild starts from must be the one recorded: its name, when this engine holds it
/// under the recorded digest. Without a recorded digest, the offline base as it is.
pub(crate) fn check_base(inputs: &Inputs, offline: &str, local: Option<&str>) -> Result<String> {
    let Some(local) = local else {
        bail!("the offline base {offline} is not in the engine: build it with `cargo xtask base`");
    };
    match inputs.base.as_deref().and_then(|b| b.split_once('@')) {
        None => Ok(offline.to_string()),
        Some((name, digest)) if name == offline && digest == local => Ok(name.to_string()),
        Some((name, digest)) => bail!(
            "the published image was built on {name}@{digest}, and this engine's {offline} is \
             {local}: rebuild the base with `cargo xtask base` (the same digest while the Debian \
             mirror serves the same packages) or load that image"
        ),
    }
}

/// A checkout of the commit to rebuild, removed (with git's record of it) on drop.
pub(crate) struct Worktree {
    pub(crate) ctx: Ctx,
    _remove: Guard,
}

/// `git worktree add --detach` of `revision` in the scratch directory; its images.toml unless
/// the command was given another config.
pub(crate) fn worktree(ctx: &Ctx, revision: &str, scratch: &Utf8Path) -> Result<Worktree> {
    let path: Utf8PathBuf = util::host_join(scratch, "src");
    let added = Cmd::new("git")
        .args([
            "worktree",
            "add",
            "--detach",
            "--quiet",
            path.as_str(),
            revision,
        ])
        .dir(&ctx.root)
        .output_checked();
    if let Err(err) = added {
        bail!("cannot check out commit {revision} (fetch it first?): {err:#}");
    }
    let (root, remove) = (ctx.root.clone(), path.clone());
    let guard = Guard::new(move || {
        let _ = Cmd::new("git")
            .args(["worktree", "remove", "--force", remove.as_str()])
            .dir(&root)
            .output();
    });
    let default_config = util::host_join(&ctx.root, "images.toml");
    let config = match ctx.config_path == default_config {
        true => util::host_join(&path, "images.toml"),
        false => ctx.config_path.clone(),
    };
    Ok(Worktree {
        ctx: Ctx::at(path, config),
        _remove: guard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labels_name_the_commit_the_time_and_the_base() {
        let labels = BTreeMap::from([
            (
                "org.opencontainers.image.revision".to_string(),
                "abc".to_string(),
            ),
            (
                "org.opencontainers.image.created".into(),
                "2025-11-28T00:00:00Z".into(),
            ),
            (
                "org.opencontainers.image.base.name".into(),
                "localhost/debian:trixie-slim".into(),
            ),
            (
                "org.opencontainers.image.base.digest".into(),
                "sha256:03b2".into(),
            ),
        ]);
        let inputs = from_labels("r", &labels).unwrap();
        assert_eq!(inputs.revision, "abc");
        assert_eq!(inputs.source_date_epoch, 1764288000);
        assert_eq!(
            inputs.base.as_deref(),
            Some("localhost/debian:trixie-slim@sha256:03b2")
        );
        let mut unlabelled = labels.clone();
        unlabelled.remove("org.opencontainers.image.revision");
        assert!(from_labels("r", &unlabelled)
            .unwrap_err()
            .to_string()
            .contains("revision"));
    }

    #[test]
    fn a_report_gives_every_input() {
        let text = r#"{"kind": "build", "schema": 1, "revision": "abc",
            "build_args": {"SOURCE_DATE_EPOCH": "7", "BASE_IMAGE": "b", "APP_SRC": "app-src-0123", "STAMP": "1"},
            "source_date_epoch": 7, "base_image": "b@sha256:1", "compression": "zstd",
            "buildkit": "v0.26.0", "engine": "28.5.2"}"#;
        let inputs = from_report("r.json", text).unwrap();
        assert_eq!(inputs.source_date_epoch, 7);
        assert_eq!(
            inputs.build_args,
            BTreeMap::from([("STAMP".into(), "1".into())])
        );
        assert_eq!(inputs.compression, Some(Compression::Zstd));
        assert_eq!(inputs.base.as_deref(), Some("b@sha256:1"));
    }

    #[test]
    fn the_base_must_be_the_recorded_one() {
        let mut inputs = Inputs {
            base: Some("localhost/debian:trixie-slim@sha256:aa".into()),
            ..Inputs::default()
        };
        let offline = "localhost/debian:trixie-slim";
        assert_eq!(
            check_base(&inputs, offline, Some("sha256:aa")).unwrap(),
            offline
        );
        let err = check_base(&inputs, offline, Some("sha256:bb"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sha256:aa") && err.contains("cargo xtask base"),
            "{err}"
        );
        assert!(check_base(&inputs, offline, None).is_err());
        inputs.base = None;
        assert_eq!(
            check_base(&inputs, offline, Some("sha256:bb")).unwrap(),
            offline
        );
    }
}
