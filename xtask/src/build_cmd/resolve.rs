//! Resolve: what every build of a run shares, asked once before planning — the engine and
//! builder, the cache mode the builder can export, the registry, the CA bundle, the offline
//! base, git — and what each variant adds (its scratch directory, its local cache, whether its
//! Dockerfile takes its base from `BASE_IMAGE`).

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use super::git::{self, GitInfo};
use super::{platform, Options};
use crate::ca::{self, CaBundle};
use crate::config::{Config, Variant};
use crate::ctx::{Ctx, TempDir};
use crate::docker::{self, Builder};
use crate::output::warning;
use crate::registry::Registry;
use crate::util::{self, progress};

/// Where BuildKit's cache goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// `type=local` under target/docker-cache/<variant>, rotated on every build: to carry the
    /// cache to another machine or builder.
    Local,
    /// GitHub Actions cache, one scope per variant.
    Gha,
    /// `<image>:buildcache-<variant>` in the image's registry.
    Registry,
    /// No cache import or export: the builder's own build cache still serves (the default
    /// outside GitHub Actions).
    None,
}

/// The facts every build of one run shares.
pub(crate) struct Setting {
    pub(crate) builder: Builder,
    /// The engine's version (the docker driver builds with the engine's BuildKit).
    pub(crate) engine_version: String,
    /// The `docker context` whose engine runs the builder (reached with `docker --context`).
    pub(crate) context: Option<String>,
    /// The engine's own platform, e.g. `linux/amd64`.
    pub(crate) native: String,
    pub(crate) containerd_store: bool,
    /// The engine's image store, as errors name it.
    pub(crate) store_name: String,
    pub(crate) cache: CacheMode,
    /// Where pushes go and `--cache registry` lives.
    pub(crate) registry: Option<Registry>,
    pub(crate) ca: Option<CaBundle>,
    pub(crate) build_arg_overrides: Vec<(String, String)>,
    pub(crate) git: GitInfo,
    /// SOURCE_DATE_EPOCH, else the HEAD commit's time, else now: the image's times.
    pub(crate) source_date_epoch: u64,
    /// The offline base, when the builder sees it in the local store, and its digest there.
    pub(crate) base_image: Option<String>,
    pub(crate) base_digest: Option<String>,
    /// Root of the local caches, one directory per variant.
    pub(crate) cache_dir: Utf8PathBuf,
    pub(crate) report_dir: Utf8PathBuf,
}

/// What one variant adds to the run's facts.
pub(crate) struct VariantFacts {
    /// Holds buildx's metadata file; removed when the run ends.
    pub(crate) tmp: TempDir,
    /// Makes the names of this build's staging tag and fresh cache directory unique.
    pub(crate) suffix: String,
    /// The variant's local cache directory holds a cache to import.
    pub(crate) has_local_cache: bool,
    /// The Dockerfile declares `ARG BASE_IMAGE`: passing it chooses the base.
    pub(crate) declares_base_image: bool,
    /// The Dockerfile declares `ARG APP_SRC`: it takes the app as a prepared build context.
    pub(crate) declares_app_src: bool,
}

/// Resolves the run's facts; every input error is found here, before any build starts.
pub(crate) fn resolve(ctx: &Ctx, config: &Config, options: &Options) -> Result<Setting> {
    let (builder, context, info) = engine(options.builder.as_deref())?;
    let wanted = cache_mode(options.cache, in_github_actions(), true);
    let cache = cache_mode(
        Some(wanted),
        false,
        docker::can_export_cache(&builder, &info),
    );
    if cache != wanted {
        warning!(
            "builder `{}` (docker driver on the classic image store) cannot export build \
             cache, so this build runs without --cache-to. Fix: enable the containerd image store \
             (daemon.json {{\"features\":{{\"containerd-snapshotter\":true}}}}) or create a builder \
             with `docker buildx create --use --driver docker-container`.",
            builder.name
        );
    }
    let registry = registry(config, options, cache)?;
    let ca = ca_bundle(config, options)?;
    let build_arg_overrides = parse_build_args(&options.build_args)?;
    let base_image = offline_base(config, &builder, &build_arg_overrides)?;
    let base_digest = match &base_image {
        Some(base) => docker::image_id(base)?,
        None => None,
    };
    let git = git::git_info(ctx);
    let source_date_epoch = git::source_date_epoch(&git, &build_arg_overrides);
    let report_dir = options.report_dir.clone().unwrap_or_else(|| ctx.out_dir());
    // Before the builds, not after the first one: an unusable --report-dir is a usage error.
    crate::report::ensure_dir("--report-dir", &report_dir)?;
    std::fs::create_dir_all(&report_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the report directory {} ({e}): pass a writable --report-dir",
            util::shown(&report_dir)
        )
    })?;
    Ok(Setting {
        engine_version: info.server_version.clone(),
        native: info.native_platform(),
        containerd_store: info.containerd_store(),
        store_name: info.store_name(),
        cache,
        registry,
        ca,
        build_arg_overrides,
        source_date_epoch,
        git,
        base_image,
        base_digest,
        cache_dir: cache_dir(ctx, config, options),
        report_dir,
        builder,
        context,
    })
}

/// The builder and the engine that runs it. A context's builder builds on that context's
/// engine: every engine call of the build (the image store, the build record) goes there too.
fn engine(name: Option<&str>) -> Result<(Builder, Option<String>, docker::Info)> {
    docker::info()?;
    docker::ensure_buildx()?;
    let builder = docker::builder(name)?;
    let context = docker::builder_context(&builder)?;
    if let Some(context) = &context {
        docker::use_context(context);
    }
    Ok((builder, context, docker::info()?))
}

fn in_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// `--cache`, else `gha` in GitHub Actions and `none` elsewhere (the builder's own cache serves
/// the next build on this machine; exporting it again costs time); `none` when the builder
/// cannot export a cache.
pub(crate) fn cache_mode(given: Option<CacheMode>, in_gha: bool, can_export: bool) -> CacheMode {
    let wanted = given.unwrap_or(if in_gha {
        CacheMode::Gha
    } else {
        CacheMode::None
    });
    if can_export {
        wanted
    } else {
        CacheMode::None
    }
}

/// The registry images are pushed to and `--cache registry` lives in, checked reachable when
/// the run needs it.
fn registry(config: &Config, options: &Options, cache: CacheMode) -> Result<Option<Registry>> {
    let registry = Registry::configured(options.registry.as_deref(), config)?;
    let flag = if options.push {
        "--push"
    } else {
        "--push-by-digest"
    };
    match &registry {
        None if options.pushing() => bail!(
            "`build {flag}` needs a registry and none is configured: {}",
            crate::registry::HOW_TO_SET
        ),
        Some(r) if options.pushing() || cache == CacheMode::Registry => r.ensure_reachable()?,
        _ => {}
    }
    Ok(registry)
}

/// `--ca-bundle`, else the environment's or images.toml's bundle.
fn ca_bundle(config: &Config, options: &Options) -> Result<Option<CaBundle>> {
    match &options.ca_bundle {
        Some(path) if path.is_file() => Ok(Some(CaBundle {
            path: path.clone(),
            source: "--ca-bundle".into(),
        })),
        Some(path) => bail!(
            "the CA bundle {} given with --ca-bundle does not exist",
            util::shown(path)
        ),
        None => ca::find(config),
    }
}

/// The offline base, when it is in the local store and the builder sees that store.
fn offline_base(
    config: &Config,
    builder: &Builder,
    overrides: &[(String, String)],
) -> Result<Option<String>> {
    let base = &config.base.image;
    if builder.driver == "docker" && docker::image_id(base)?.is_some() {
        return Ok(Some(base.clone()));
    }
    if !overrides.iter().any(|(k, _)| k == "BASE_IMAGE") {
        progress!(
            "offline base {base} not in use (not built, or builder `{}` cannot see local images): \
             the Dockerfiles' default base applies",
            builder.name
        );
    }
    Ok(None)
}

/// `--cache-dir`, else images.toml's `[build].cache_dir`, else `target/docker-cache`.
fn cache_dir(ctx: &Ctx, config: &Config, options: &Options) -> Utf8PathBuf {
    match (&options.cache_dir, &config.build.cache_dir) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => util::host_join(&config.dir, dir),
        (None, None) => util::host_join(&ctx.root, "target/docker-cache"),
    }
}

/// The variant's scratch directory, its local cache, and what its Dockerfile declares.
pub(crate) fn variant_facts(
    ctx: &Ctx,
    setting: &Setting,
    variant: &Variant,
) -> Result<VariantFacts> {
    let dockerfile = std::fs::read_to_string(&variant.dockerfile)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", util::shown(&variant.dockerfile)))?;
    let cache = local_cache_dir(&setting.cache_dir, variant);
    Ok(VariantFacts {
        tmp: TempDir::new(ctx, &format!("build-{}", variant.name))?,
        suffix: util::unique_suffix(),
        has_local_cache: util::host_join(&cache, "index.json").is_file(),
        declares_base_image: platform::declares_arg(&dockerfile, "BASE_IMAGE"),
        declares_app_src: platform::declares_arg(&dockerfile, super::app_src::ARG),
    })
}

/// The directory that holds a variant's local cache.
pub(crate) fn local_cache_dir(cache_dir: &Utf8Path, variant: &Variant) -> Utf8PathBuf {
    crate::util::host_join(cache_dir, &variant.name)
}

/// `--build-arg KEY=VALUE` flags as pairs.
pub(crate) fn parse_build_args(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--build-arg `{a}` is not KEY=VALUE"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_exported_in_github_actions_or_when_asked_and_possible() {
        assert_eq!(cache_mode(None, false, true), CacheMode::None);
        assert_eq!(cache_mode(None, true, true), CacheMode::Gha);
        assert_eq!(
            cache_mode(Some(CacheMode::Local), false, true),
            CacheMode::Local
        );
        assert_eq!(
            cache_mode(Some(CacheMode::Gha), true, false),
            CacheMode::None
        );
        assert_eq!(cache_mode(None, true, false), CacheMode::None);
    }
    #[test]
    fn build_args_must_be_key_value() {
        assert_eq!(
            parse_build_args(&["A=b=c".into()]).unwrap(),
            vec![("A".into(), "b=c".into())]
        );
        assert!(parse_build_args(&["novalue".into()]).is_err());
    }
}
