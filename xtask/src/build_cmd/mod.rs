//! `cargo xtask build <variant>…`: one `docker buildx build` per variant, with per-variant cache,
//! the CA bundle as a BuildKit secret, OCI labels, standard tags and a build report.
//!
//! The story, one file per stage: facts from the engine, the config and [`git`] → [`plan`] (pure:
//! the buildx argv as data, unit-tested) → [`platform`] (the base provides every target platform,
//! checked before buildx starts) → [`run`] (buildx through `crate::docker`, its output read by
//! [`log`], BuildKit's platform warnings judged before the tags move, the local cache swapped
//! in, the report gathered) → [`render`].
//!
//! The module is `build_cmd`, like `config_cmd` and `test_cmd`: a `src/build/` folder reads as
//! build output to many tools (global gitignores, linters, structure viewers), which skip it.

mod git;
mod log;
mod plan;
mod platform;
mod render;
mod run;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::ca::{self, CaBundle};
use crate::docker;
use crate::output::warning;
use crate::registry::Registry;
use crate::report::{self, Format};
use crate::util::{self, progress, Ctx, TempDir};
use plan::{cache_spec, parse_build_args, plan, push_compression, staging_tag, PlanInput};

pub use crate::config::Compression;
pub use plan::{CacheMode, Progress, Provenance};
pub use run::BuildReport;

#[derive(clap::Args, Clone)]
#[command(group(clap::ArgGroup::new("pushing").args(["push", "push_by_digest"])))]
pub struct Args {
    /// Variants to build (see `cargo xtask config`).
    pub variants: Vec<String>,
    /// Build every variant.
    #[arg(long, conflicts_with = "variants")]
    pub all: bool,
    /// Load the result into the local image store (the default).
    #[arg(long, conflicts_with = "pushing")]
    pub load: bool,
    /// Push to the registry (`--registry` / `[project].registry`) instead of loading: tags
    /// `<registry>/<image>:<variant>`, `…:<version>-<variant>`, `…:sha-<7>-<variant>`; the pushed
    /// digest goes into the build report.
    #[arg(long, conflicts_with = "push_by_digest")]
    pub push: bool,
    /// Push to the registry without tags — one runner's platform(s), e.g. `--platform
    /// linux/arm64` on an arm64 runner — and write the pushed digest into the build report;
    /// `cargo xtask merge <variant> --from REPORT…` then joins the platforms into one index
    /// with every tag.
    #[arg(long)]
    pub push_by_digest: bool,
    /// Registry to push to and keep `--cache registry` in: `HOST[:PORT][/NAMESPACE]` (default:
    /// `[project].registry` of images.toml). 127.0.0.0/8 and localhost are spoken to over HTTP.
    #[arg(long, env = "XTASK_REGISTRY", value_name = "HOST[/NAMESPACE]")]
    pub registry: Option<String>,
    /// Provenance attestation of a pushed image (default: max; `false` for none).
    #[arg(long, value_enum, requires = "pushing", value_name = "MODE")]
    pub provenance: Option<Provenance>,
    /// Attach BuildKit's SBOM attestation (SPDX, made during the build by a generator image the
    /// builder runs: BuildKit's default, `docker/buildkit-syft-scanner`, unless
    /// --sbom-generator names another).
    #[arg(long, requires = "pushing")]
    pub sbom: bool,
    /// The SBOM generator image (BuildKit's SBOM protocol), e.g. one in the local image store
    /// for a builder without a registry.
    #[arg(long, requires = "sbom", value_name = "IMAGE")]
    pub sbom_generator: Option<String>,
    /// Layer compression of pushed images (zstd: smaller and faster to unpack, needs
    /// containerd ≥ 1.5 / Docker ≥ 23 to pull). Default: the variant's `push_compression` in
    /// images.toml, else buildx's (gzip).
    #[arg(long, value_enum, requires = "pushing")]
    pub compression: Option<Compression>,
    /// Target platforms, e.g. `linux/amd64,linux/arm64`. Default: the variant's `platforms`
    /// of images.toml when pushing; for a load, only the engine's own platform when the variant
    /// lists it (name the others to load them too: a multi-platform load needs the containerd
    /// image store, foreign platforms emulation).
    #[arg(long, value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<String>,
    /// The buildx builder to use (default: the active one): a `docker context` (another engine,
    /// e.g. over TCP or SSH: built there), or a docker-container, kubernetes or remote BuildKit
    /// builder from `docker buildx create`.
    #[arg(long)]
    pub builder: Option<String>,
    /// Do not use cached layers.
    #[arg(long)]
    pub no_cache: bool,
    /// Always pull a newer version of the base image.
    #[arg(long)]
    pub pull: bool,
    /// Extra or overriding build argument, `KEY=VALUE` (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE", value_parser = parse_build_arg)]
    pub build_args: Vec<String>,
    /// Extra tag (repeatable).
    #[arg(long = "tag", value_name = "IMAGE:TAG", value_parser = parse_tag)]
    pub tags: Vec<String>,
    /// Where BuildKit's cache goes (default: `gha` in GitHub Actions, else `none`: the
    /// engine's own build cache keeps every layer between builds on one machine; `local` exports
    /// it to a directory, to move it to another machine).
    #[arg(long, value_enum)]
    pub cache: Option<CacheMode>,
    /// BuildKit progress output.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    /// CA bundle passed as the `ca-bundle` secret (default: SSL_CERT_FILE, PIP_CERT,
    /// REQUESTS_CA_BUNDLE, then images.toml `[build].ca_bundle`).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<Utf8PathBuf>,
    /// Summary format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Where build reports go (default: target/xtask).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<Utf8PathBuf>,
    /// Root of the local caches, `<DIR>/<variant>` (default: images.toml `[build].cache_dir`,
    /// else target/docker-cache).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<Utf8PathBuf>,
}

/// The platforms a build targets: `--platform` when given; the variant's when pushing; for a
/// load, the engine's own platform when the variant lists it among several (a contributor's
/// build stays native and fast), else the variant's. Empty: buildx's default, the builder's own.
pub fn default_platforms(
    given: &[String],
    variant: &[String],
    pushing: bool,
    native: &str,
) -> Vec<String> {
    if !given.is_empty() {
        return given.to_vec();
    }
    if !pushing && variant.len() > 1 {
        if let Some(p) = variant.iter().find(|p| docker::same_platform(p, native)) {
            return vec![p.clone()];
        }
    }
    variant.to_vec()
}

// Flags are checked as clap parses them: a usage error before any docker command runs.
fn parse_platform(s: &str) -> std::result::Result<String, String> {
    crate::config::check_platform(s).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

fn parse_tag(s: &str) -> std::result::Result<String, String> {
    crate::config::check_reference(s, crate::config::Reference::Tagged)
        .map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

fn parse_build_arg(s: &str) -> std::result::Result<String, String> {
    parse_build_args(&[s.to_string()]).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

impl Args {
    /// `cargo xtask build VARIANT --progress plain --report-dir DIR` and nothing else: a load
    /// into the local store with the defaults, as the benches build (they set what differs).
    pub fn load_for_bench(variant: &str, report_dir: &Utf8Path) -> Args {
        Args {
            variants: vec![variant.to_owned()],
            all: false,
            load: true,
            push: false,
            push_by_digest: false,
            registry: None,
            provenance: None,
            sbom: false,
            sbom_generator: None,
            compression: None,
            platform: vec![],
            builder: None,
            no_cache: false,
            pull: false,
            build_args: vec![],
            tags: vec![],
            cache: None,
            progress: Progress::Plain,
            ca_bundle: None,
            format: Format::Table,
            report_dir: Some(report_dir.to_owned()),
            cache_dir: None,
        }
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let reports = self.build(ctx)?;
        render::render(self.format, &reports)
    }

    /// Builds the selected variants and returns their reports (also used by `bench`).
    pub fn build(&self, ctx: &Ctx) -> Result<Vec<BuildReport>> {
        let config = ctx.config()?;
        let variants = config.select(&self.variants, self.all)?;
        self.build_these(ctx, &variants)
    }

    /// Builds these variants, which need not come from images.toml (`bench rebuild` builds its
    /// peer Dockerfile as one), with this project's config otherwise.
    pub fn build_these(
        &self,
        ctx: &Ctx,
        variants: &[&crate::config::Variant],
    ) -> Result<Vec<BuildReport>> {
        let config = ctx.config()?;
        docker::info()?;
        docker::ensure_buildx()?;
        let builder = docker::builder(self.builder.as_deref())?;
        // A context's builder builds on that context's engine: every engine call of the build
        // (the image store, the build record) goes there too.
        let context = docker::builder_context(&builder)?;
        if let Some(context) = &context {
            docker::use_context(context);
        }
        let info = docker::info()?;

        let in_gha = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
        // Outside CI nothing is exported by default: the builder's own cache serves the next
        // build on this machine, and exporting it again costs seconds (a cuda venv: minutes).
        let mut mode = self.cache.unwrap_or(if in_gha {
            CacheMode::Gha
        } else {
            CacheMode::None
        });
        if mode != CacheMode::None && !docker::can_export_cache(&builder, &info) {
            warning!(
                "builder `{}` (docker driver on the classic image store) cannot export build \
                 cache, so this build runs without --cache-to. Fix: enable the containerd image store \
                 (daemon.json {{\"features\":{{\"containerd-snapshotter\":true}}}}) or create a builder \
                 with `docker buildx create --use --driver docker-container`.",
                builder.name
            );
            mode = CacheMode::None;
        }

        // Where the images go and the registry cache lives; checked before any build runs.
        let registry = Registry::configured(self.registry.as_deref(), config)?;
        let pushing = self.push || self.push_by_digest;
        if pushing && registry.is_none() {
            bail!(
                "`build {}` needs a registry and none is configured: {}",
                if self.push {
                    "--push"
                } else {
                    "--push-by-digest"
                },
                crate::registry::HOW_TO_SET
            );
        }
        if let (true, Some(registry)) = (pushing || mode == CacheMode::Registry, &registry) {
            registry.ensure_reachable()?;
        }

        let ca = match &self.ca_bundle {
            Some(path) if path.is_file() => Some(CaBundle {
                path: path.clone(),
                source: "--ca-bundle".into(),
            }),
            Some(path) => bail!("the CA bundle {path} given with --ca-bundle does not exist"),
            None => ca::find(config)?,
        };
        let overrides = parse_build_args(&self.build_args)?;
        let git = git::git_info(ctx);
        let created = git::created_timestamp(&git);
        let version = config.version().to_string();

        // The offline base only helps a builder that sees the local image store.
        let base_image =
            if builder.driver == "docker" && docker::image_id(&config.base.image)?.is_some() {
                Some(config.base.image.clone())
            } else {
                None
            };
        if base_image.is_none() && !overrides.iter().any(|(k, _)| k == "BASE_IMAGE") {
            progress!(
                "offline base {} not in use (not built, or builder `{}` cannot see local images): \
                 the Dockerfiles' default base applies",
                config.base.image,
                builder.name
            );
        }

        let cache_dir = match (&self.cache_dir, &config.build.cache_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => util::host_join(&config.dir, dir),
            (None, None) => util::host_join(&ctx.root, "target/docker-cache"),
        };
        let report_dir = self.report_dir.clone().unwrap_or_else(|| ctx.out_dir());
        // Before the builds, not after the first one: an unusable --report-dir is a usage error.
        std::fs::create_dir_all(&report_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the report directory {report_dir} ({e}): pass a writable --report-dir"
            )
        })?;
        let native = info.native_platform();
        // Every variant is planned and its base checked before the first build starts.
        let mut planned = Vec::new();
        for &variant in variants {
            let tmp = TempDir::new(ctx, &format!("build-{}", variant.name))?;
            let suffix = util::unique_suffix();
            let input = PlanInput {
                variant,
                title: &config.project.name,
                description: if variant.description.is_empty() {
                    &config.project.description
                } else {
                    &variant.description
                },
                licenses: &config.project.licenses,
                version: &version,
                git: &git,
                created: created.clone(),
                push: self.push,
                push_by_digest: self.push_by_digest,
                platform_tag: None,
                repository: match (&registry, pushing) {
                    (Some(registry), true) => registry.repository(&variant.image),
                    _ => variant.image.clone(),
                },
                registry: registry
                    .as_ref()
                    .filter(|_| pushing)
                    .map(Registry::to_string),
                compression: push_compression(pushing, self.compression, variant),
                provenance: self.provenance.unwrap_or(Provenance::Max),
                sbom: match (self.sbom, &self.sbom_generator) {
                    (false, _) => None,
                    (true, generator) => Some(generator.clone()),
                },
                platforms: default_platforms(&self.platform, &variant.platforms, pushing, &native),
                // A context's builder is reached through `docker --context`, not `--builder`.
                builder: if context.is_some() {
                    None
                } else {
                    self.builder.clone()
                },
                context: context.clone(),
                no_cache: self.no_cache,
                pull: self.pull,
                build_arg_overrides: overrides.clone(),
                base_image: base_image.clone(),
                extra_tags: self.tags.clone(),
                staging_tag: staging_tag(pushing, variant, &suffix),
                cache: cache_spec(
                    mode,
                    variant,
                    &cache_dir,
                    registry
                        .as_ref()
                        .map(|r| r.repository(&variant.image))
                        .as_deref(),
                    &suffix,
                )?,
                ca_bundle: ca.as_ref().map(|c| c.path.clone()),
                progress: self.progress,
                metadata_file: util::host_join(tmp.path(), "metadata.json"),
            };
            // The docker driver pushes nothing untagged: one tag of that platform alone.
            let mut input = input;
            if self.push_by_digest && builder.driver == "docker" {
                let platform = match &input.platforms[..] {
                    [one] => one.clone(),
                    [] => native.clone(),
                    several => bail!(
                        "`--push-by-digest` pushes one platform's image, for `merge`; got {}: \
                         run one build per platform, or push them together with `--push`",
                        several.join(", ")
                    ),
                };
                let tag = plan::platform_tag(
                    &input.repository,
                    &variant.name,
                    &version,
                    git.revision.as_deref(),
                    &platform,
                );
                progress!(
                    "the `{}` builder (docker driver) cannot push untagged: {} is pushed as {tag}",
                    builder.name,
                    variant.name
                );
                input.platform_tag = Some(tag);
            }
            if !pushing && input.platforms.len() > 1 && !info.containerd_store() {
                bail!(
                    "a load of {} platforms ({}) is an image index, which the engine's {} store \
                     cannot hold: enable the containerd image store (`\"features\": \
                     {{\"containerd-snapshotter\": true}}` in /etc/docker/daemon.json), load one \
                     platform (`--platform {}`), or push them (`--push`)",
                    input.platforms.len(),
                    input.platforms.join(", "),
                    info.store_name(),
                    native
                );
            }
            let plan = plan(&input);
            // Only a builder that sees the local store builds from a local base, and only a
            // Dockerfile that declares BASE_IMAGE takes its base from it.
            if let (true, Some(base)) = (
                builder.driver == "docker",
                plan.build_args.get("BASE_IMAGE"),
            ) {
                let dockerfile = std::fs::read_to_string(&variant.dockerfile)
                    .with_context(|| format!("reading {}", variant.dockerfile))?;
                if platform::declares_arg(&dockerfile, "BASE_IMAGE") {
                    platform::check_base(variant, base, &config.base, &input.platforms)?;
                }
            }
            planned.push((input, plan, tmp));
        }

        let mut reports = Vec::new();
        for (input, plan, _tmp) in &planned {
            let variant = input.variant;
            let others: Vec<&String> = variant
                .platforms
                .iter()
                .filter(|p| !input.platforms.contains(p))
                .collect();
            progress!(
                "building {} ({}) for {} with builder `{}`{}",
                variant.name,
                variant.dockerfile,
                if input.platforms.is_empty() {
                    native.clone()
                } else {
                    input.platforms.join(", ")
                },
                builder.name,
                if others.is_empty() || !self.platform.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (a load builds this engine's platform; images.toml also lists {}: \
                         add --platform to load them, --push builds them all)",
                        others
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            );
            let report = run::execute(input, plan, &builder.name, ca.as_ref())?;
            let path = util::host_join(&report_dir, format!("build-{}.json", variant.name));
            report::write_atomic(
                &path,
                report::to_json(report::Kind::Build, &report)?.as_bytes(),
            )?;
            progress!(
                "built {} in {:.1} s ({} of {} steps cached); report: {path}",
                variant.name,
                report.duration_secs,
                report.steps_cached.map_or("?".into(), |n| n.to_string()),
                report.steps_total.map_or("?".into(), |n| n.to_string())
            );
            reports.push(report);
        }
        Ok(reports)
    }
}

#[cfg(test)]
mod tests {
    use super::default_platforms;

    #[test]
    fn a_load_builds_the_native_platform_a_push_every_configured_one() {
        let both = ["linux/amd64".to_string(), "linux/arm64".into()];
        let native = "linux/amd64";
        assert_eq!(
            default_platforms(&[], &both, false, native),
            ["linux/amd64"]
        );
        assert_eq!(default_platforms(&[], &both, true, native), both);
        assert_eq!(
            default_platforms(&["linux/arm64".into()], &both, false, native),
            ["linux/arm64"]
        );
        // The engine's platform is not listed: the listed ones, emulated.
        let arm_only = ["linux/arm64".to_string()];
        assert_eq!(default_platforms(&[], &arm_only, false, native), arm_only);
        assert_eq!(
            default_platforms(&[], &both, false, "linux/arm64"),
            ["linux/arm64"]
        );
        assert!(default_platforms(&[], &[], false, native).is_empty());
    }
}
