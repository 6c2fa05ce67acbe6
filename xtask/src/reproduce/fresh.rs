//! Execute: one build of a variant without cache in a private Docker engine started for it alone
//! (its own data root, containerd image store; only the base image loaded into it), pushed to a
//! registry on 127.0.0.1, then the engine stopped and its files removed. Returns the digests
//! the registry holds for each platform.

use anyhow::{Context, Result};
use camino::Utf8Path;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::build_cmd::{self, CacheMode, Options, Progress, Provenance};
use crate::config::{Compression, Variant};
use crate::ctx::Ctx;
use crate::docker;
use crate::engine::{EngineSpec, LocalEngine};
use crate::util::progress;

/// What one build is: which, where its engine lives, where it pushes, with what.
pub(crate) struct Fresh<'a> {
    /// `build 1`, `rebuild`: names it in progress and reports.
    pub(crate) label: String,
    /// Makes the engine's socket directory and bridge unique.
    pub(crate) n: usize,
    pub(crate) scratch: &'a Utf8Path,
    /// `docker save` of the base image, loaded into the engine.
    pub(crate) base_archive: &'a Utf8Path,
    /// `HOST:PORT/NAMESPACE` of the registry on 127.0.0.1.
    pub(crate) registry: String,
    pub(crate) platforms: Vec<String>,
    /// `KEY=VALUE` build arguments over the variant's.
    pub(crate) build_args: Vec<String>,
    pub(crate) compression: Option<Compression>,
    /// `min` to give the published images' OCI media types where they were pushed attested;
    /// else none (the attestation carries the build's time; the images are what is compared).
    pub(crate) provenance: Provenance,
}

/// The digests of one platform's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Digests {
    pub(crate) manifest: String,
    pub(crate) config: String,
}

/// One image, as a registry holds it: per platform, its digests.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Built {
    pub(crate) label: String,
    /// `HOST/REPOSITORY`: where `repository@manifest` reads each platform's image.
    pub(crate) repository: String,
    pub(crate) platforms: BTreeMap<String, Digests>,
}

/// Builds `variant` in a fresh engine and reads back what it pushed.
pub(crate) fn build(ctx: &Ctx, variant: &Variant, fresh: &Fresh) -> Result<Built> {
    let (engine, _stop) = start(fresh)?;
    progress!(
        "reproduce {}: {} without cache in a fresh engine ({})",
        variant.name,
        fresh.label,
        engine.host
    );
    let _target = docker::use_host(&engine.host);
    docker::load(fresh.base_archive).context("loading the base image into the fresh engine")?;
    let reports = build_cmd::build(ctx, &[variant], &options(fresh))?;
    let report = reports
        .into_iter()
        .next()
        .context("the build made no report")?;
    let repository = report
        .repository
        .clone()
        .context("the build pushed nothing")?;
    let platforms = pushed_digests(&repository, &report.platform_digests)?;
    Ok(Built {
        label: fresh.label.clone(),
        repository,
        platforms,
    })
}

/// A `cargo xtask build --push --no-cache` into the namespace.
fn options(fresh: &Fresh) -> Options {
    Options {
        push: true,
        registry: Some(fresh.registry.clone()),
        provenance: Some(fresh.provenance),
        compression: fresh.compression,
        platform: fresh.platforms.clone(),
        no_cache: true,
        cache: Some(CacheMode::None),
        build_args: fresh.build_args.clone(),
        progress: Progress::Plain,
        // The engine's bridge has no route out (no NAT: it leaves the host's firewall alone).
        network: Some("host".into()),
        report_dir: Some(fresh.scratch.join(format!("report-{}", fresh.n))),
        ..Options::default()
    }
}

/// Starts the engine under a cleanup guard: its sockets under the system's temp directory
/// (short paths), its images in the scratch directory.
fn start(fresh: &Fresh) -> Result<(std::sync::Arc<LocalEngine>, crate::cleanup::Guard)> {
    let pid = std::process::id();
    let spec = EngineSpec {
        dir: std::env::temp_dir().join(format!("xtask-repro-{pid}-{}", fresh.n)),
        data_root: Some(
            fresh
                .scratch
                .join(format!("engine-{}", fresh.n))
                .into_std_path_buf(),
        ),
        // At most 15 bytes: 4 + 6 hex digits of a Linux PID + up to 3.
        bridge: format!("xtrp{pid:x}{}", fresh.n % 1000),
        containerd_store: true,
        tcp: None,
        netns: None,
        insecure_registries: Vec::new(),
    };
    LocalEngine::start_guarded(spec).context("starting a private engine to build in")
}

/// Each platform's manifest digest (as the build report lists them) with its config's digest.
pub(crate) fn pushed_digests(
    repository: &str,
    manifests: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Digests>> {
    manifests
        .iter()
        .map(|(platform, manifest)| {
            let doc = docker::registry_manifest(&format!("{repository}@{manifest}"))?;
            let config = doc["config"]["digest"]
                .as_str()
                .with_context(|| format!("{repository}@{manifest} is not an image manifest"))?;
            let digests = Digests {
                manifest: manifest.clone(),
                config: config.to_string(),
            };
            Ok((platform.clone(), digests))
        })
        .collect()
}
