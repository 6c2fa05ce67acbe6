//! Run: one planned `docker buildx build` through `crate::docker` (its output streamed, the failing
//! step remembered), BuildKit's warnings judged (a build that mixed platforms fails, and a loaded
//! image keeps only its staging tag, which goes), then the tags set, the fresh local cache
//! swapped in, and the report read from buildx's metadata file and the build record.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

use super::log::{count_steps, list_steps, FailureScan, StepCounts};
use super::plan::{BuildPlan, CacheSpec, PlanInput, Progress, Provenance};
use super::platform;
use crate::ca::CaBundle;
use crate::cleanup::Guard;
use crate::config::Compression;
use crate::docker;
use crate::output::warning;
use crate::util::{self, CheckFailed};

/// What one build produced; written to `target/xtask/build-<variant>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub(crate) variant: String,
    pub(crate) image: String,
    pub(crate) tags: Vec<String>,
    /// Local image ID (with --load).
    pub image_id: Option<String>,
    /// Manifest (or index) digest BuildKit reported: with --push, the pushed digest, which
    /// `cargo xtask sign` signs.
    pub(crate) digest: Option<String>,
    /// The registry pushed to (`HOST[/NAMESPACE]`), with --push.
    pub(crate) registry: Option<String>,
    /// Provenance attestation of the pushed image: `max`, `min` or `false`; None for a load.
    pub(crate) provenance: Option<Provenance>,
    /// BuildKit's SBOM attestation of the push: `buildkit` or `buildkit (generator IMAGE)`.
    pub(crate) sbom: Option<String>,
    /// Layer compression of the push (None: buildx's default, gzip; loads are not recompressed).
    pub(crate) compression: Option<Compression>,
    pub duration_secs: f64,
    pub steps_total: Option<u64>,
    pub steps_cached: Option<u64>,
    /// The Dockerfile steps that ran (were not cached), as BuildKit names them
    /// (`[app 3/4] COPY …`); empty when the build record could not be read.
    pub steps_run: Vec<String>,
    pub(crate) cache: String,
    pub(crate) builder: String,
    /// The builder's BuildKit version and the engine's: what a rebuild should build with to
    /// get the same manifest digests (docs/REPRODUCIBLE.md).
    pub(crate) buildkit: Option<String>,
    pub(crate) engine: String,
    pub(crate) platforms: Vec<String>,
    /// The image of each platform built: its manifest digest (locally: the platform's image ID
    /// in the store; pushed: as the registry lists it in the index).
    pub(crate) platform_digests: BTreeMap<String, String>,
    /// The project version and the git commit built (None outside a git checkout): `merge`
    /// joins only reports of one revision.
    pub(crate) version: String,
    pub(crate) revision: Option<String>,
    /// The repository pushed to (`<registry>/<image>`), with --push or --push-by-digest.
    pub(crate) repository: Option<String>,
    pub(crate) pushed: bool,
    /// Pushed by digest (`--push-by-digest`): `tags` are those `merge` gives the index.
    #[serde(default)]
    pub(crate) pushed_by_digest: bool,
    /// The one tag such a push got where the builder cannot push untagged (docker driver).
    pub(crate) platform_tag: Option<String>,
    /// Where the CA bundle came from (its path and content never appear in the image).
    pub(crate) ca_bundle_from: Option<String>,
    /// Every build argument, SOURCE_DATE_EPOCH and BASE_IMAGE among them.
    pub(crate) build_args: BTreeMap<String, String>,
    /// The image's times (the SOURCE_DATE_EPOCH build argument).
    pub(crate) source_date_epoch: Option<u64>,
    /// BASE_IMAGE pinned to the digest it had in the local store (`name@sha256:…`).
    pub(crate) base_image: Option<String>,
}

/// Who builds, for the report.
pub(crate) struct Builder<'a> {
    pub(crate) name: &'a str,
    pub(crate) buildkit: Option<&'a str>,
    pub(crate) engine: &'a str,
}

/// Runs the build, then judges BuildKit's warnings, moves the tags, swaps the cache in and
/// gathers the report.
pub(crate) fn execute(
    input: &PlanInput,
    plan: &BuildPlan,
    builder: &Builder,
    ca: Option<&CaBundle>,
) -> Result<BuildReport> {
    // A fresh local cache directory is swapped in only after a successful build.
    let new_cache = match &input.cache {
        CacheSpec::Local { to, .. } => {
            let dir = to.clone();
            Some(Guard::new(move || drop(std::fs::remove_dir_all(&dir))))
        }
        _ => None,
    };
    // The staging tag goes on every path; the real tags are set only after the checks below.
    let staging = plan.staging_tag.clone().map(|tag| {
        let (untag, context) = (tag.clone(), input.context.clone());
        let guard = Guard::new(move || {
            if let Err(err) = docker::untag_image(context.as_deref(), &untag) {
                crate::output::notice(format_args!("warning: {err:#}"));
            }
        });
        (tag, guard)
    });
    let duration = run_buildx(input, plan)?;
    let metadata: serde_json::Value = std::fs::read_to_string(&input.metadata_file)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let warnings = docker::build_warnings(&metadata);
    let mixed = platform::platform_warnings(&warnings);
    if !mixed.is_empty() {
        bail!(
            "{}",
            platform::warned_message(&input.variant.name, &mixed, input.push)
        );
    }
    if let Some((tag, guard)) = staging {
        docker::tag_image(&tag, &plan.tags)?;
        drop(guard);
    }
    if let CacheSpec::Local { current, to, .. } = &input.cache {
        swap_cache(to, current)?;
    }
    drop(new_cache); // `to` no longer exists under that name
    let outcome = gather(input, plan, &metadata, duration)?;
    Ok(report(input, plan, builder, ca, outcome))
}

/// Runs buildx: BuildKit draws on a terminal itself, else its plain progress is copied to
/// stderr line by line, the failing step remembered. Returns the build's time in seconds; a
/// failed build is a check that said no.
fn run_buildx(input: &PlanInput, plan: &BuildPlan) -> Result<f64> {
    let start = Instant::now();
    let tty = match input.progress {
        Progress::Tty => true,
        Progress::Plain => false,
        Progress::Auto => crate::output::stderr_is_terminal(),
    };
    let context = input.context.as_deref();
    let failure = if tty {
        let status = docker::buildx_build_in(context, &plan.argv, docker::BuildOutput::Stderr)?;
        (!status.success()).then(|| "see BuildKit's error above".to_string())
    } else {
        let mut failing = FailureScan::default();
        let status = docker::buildx_build_in(
            context,
            &plan.argv,
            docker::BuildOutput::Lines(&mut |line| {
                crate::output::message(format_args!("{line}"));
                failing.feed(line);
            }),
        )?;
        (!status.success()).then(|| failing.describe())
    };
    match failure {
        Some(why) => {
            let name = &input.variant.name;
            Err(CheckFailed(format!("build of `{name}` failed: {why}")).into())
        }
        None => Ok(start.elapsed().as_secs_f64()),
    }
}

/// What a finished build tells besides its plan: from buildx's metadata file, the build record
/// and the image store or registry.
struct Outcome {
    duration: f64,
    digest: Option<String>,
    steps: Option<StepCounts>,
    steps_run: Vec<String>,
    image_id: Option<String>,
    platform_digests: BTreeMap<String, String>,
    base_image: Option<String>,
}

fn gather(
    input: &PlanInput,
    plan: &BuildPlan,
    metadata: &serde_json::Value,
    duration: f64,
) -> Result<Outcome> {
    let digest = metadata["containerimage.digest"]
        .as_str()
        .map(str::to_owned);
    let build_ref = metadata["buildx.build.ref"].as_str();
    let log = build_ref.and_then(|r| match docker::build_log(input.builder.as_deref(), r) {
        Ok(log) => Some(log),
        Err(err) => {
            warning!("cannot read the build record for step counts: {err:#}");
            None
        }
    });
    let steps_run = log.as_deref().map_or_else(Vec::new, |log| {
        let steps = list_steps(log).into_iter();
        steps.filter(|s| !s.cached).map(|s| s.name).collect()
    });
    let image_id = match input.push || input.push_by_digest {
        true => None,
        false => docker::image_id(&input.variant.image_ref())?,
    };
    Ok(Outcome {
        base_image: pinned_base(plan)?,
        duration,
        steps: log.as_deref().map(count_steps),
        steps_run,
        image_id,
        platform_digests: platform_digests(input, plan, digest.as_deref())?,
        digest,
    })
}

/// The build report (pure).
fn report(
    input: &PlanInput,
    plan: &BuildPlan,
    builder: &Builder,
    ca: Option<&CaBundle>,
    outcome: Outcome,
) -> BuildReport {
    let pushing = input.push || input.push_by_digest;
    BuildReport {
        variant: input.variant.name.clone(),
        image: plan.tags[0].clone(),
        tags: plan.tags.clone(),
        image_id: outcome.image_id,
        digest: outcome.digest,
        registry: input.registry.clone(),
        provenance: pushing.then_some(input.provenance),
        compression: input.compression,
        sbom: input.sbom.as_ref().map(|g| match g {
            None => "buildkit".to_string(),
            Some(generator) => format!("buildkit (generator {generator})"),
        }),
        duration_secs: (outcome.duration * 10.0).round() / 10.0,
        steps_total: outcome.steps.map(|s| s.total),
        steps_cached: outcome.steps.map(|s| s.cached),
        steps_run: outcome.steps_run,
        cache: match &input.cache {
            CacheSpec::None => "none".into(),
            CacheSpec::Local { current, .. } => format!("local ({})", util::shown(current)),
            CacheSpec::Gha { scope } => format!("gha (scope {scope})"),
            CacheSpec::Registry { reference } => format!("registry ({reference})"),
        },
        builder: builder.name.to_string(),
        buildkit: builder.buildkit.map(str::to_owned),
        engine: builder.engine.to_string(),
        platforms: input.platforms.clone(),
        platform_digests: outcome.platform_digests,
        version: input.version.to_string(),
        revision: input.git.revision.clone(),
        repository: pushing.then(|| input.repository.clone()),
        pushed: pushing,
        pushed_by_digest: input.push_by_digest,
        platform_tag: input.platform_tag.clone(),
        ca_bundle_from: ca.map(|c| c.source.clone()),
        build_args: plan.build_args.clone(),
        source_date_epoch: plan
            .build_args
            .get("SOURCE_DATE_EPOCH")
            .and_then(|e| e.parse().ok()),
        base_image: outcome.base_image,
    }
}

/// BASE_IMAGE with the digest the local store holds for it (as given when it names a digest;
/// None when the store has no such image: the builder pulled it).
fn pinned_base(plan: &BuildPlan) -> Result<Option<String>> {
    let Some(base) = plan.build_args.get("BASE_IMAGE") else {
        return Ok(None);
    };
    if base.contains("@sha256:") {
        return Ok(Some(base.clone()));
    }
    Ok(docker::image_id(base)?.map(|id| format!("{base}@{id}")))
}

/// The manifest digest of each platform's image: from the registry's index after a push (the
/// pushed digest itself for a single image), from the local store after a load.
fn platform_digests(
    input: &PlanInput,
    plan: &BuildPlan,
    digest: Option<&str>,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if input.push || input.push_by_digest {
        let Some(digest) = digest else {
            return Ok(out);
        };
        let reference = format!("{}@{digest}", input.repository);
        let top = docker::registry_manifest(&reference)?;
        match crate::registry::index_platforms(&top) {
            Some(platforms) => out.extend(platforms),
            None => {
                let config = docker::registry_image_config(&reference)?;
                let platform = crate::registry::platform_of(
                    config["os"].as_str().unwrap_or("?"),
                    config["architecture"].as_str().unwrap_or("?"),
                    config["variant"].as_str(),
                );
                out.insert(platform, digest.to_string());
            }
        }
        return Ok(out);
    }
    let image = &plan.tags[0];
    for platform in &input.platforms {
        if let Some(id) = docker::platform_image_id(image, platform)? {
            out.insert(platform.clone(), id);
        }
    }
    if input.platforms.is_empty() {
        if let Some(found) = docker::image_inspect(std::slice::from_ref(image))?.remove(image) {
            out.insert(found.platform(), found.id);
        }
    }
    Ok(out)
}

/// Replaces the variant's cache directory with the one this build wrote, so the cache holds only
/// what the latest build used instead of growing without bound.
fn swap_cache(new: &Utf8Path, current: &Utf8Path) -> Result<()> {
    let old = Utf8PathBuf::from(format!("{current}.old-{}", util::unique_suffix()));
    if current.exists() {
        std::fs::rename(current, &old)
            .with_context(|| format!("moving the old cache {} aside", util::shown(current)))?;
    }
    std::fs::rename(new, current)
        .with_context(|| format!("moving the new cache into {}", util::shown(current)))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the old cache {}", util::shown(&old)))?;
    }
    Ok(())
}
