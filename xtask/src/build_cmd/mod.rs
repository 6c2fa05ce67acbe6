//! `cargo xtask build <variant>…`: one `docker buildx build` per variant, with per-variant cache,
//! the CA bundle as a BuildKit secret, OCI labels, standard tags and a build report.
//!
//! The story, one file per stage: [`resolve`] (the engine and builder, the cache mode, the
//! registry, the CA bundle, the offline base, [`git`]: asked once per run) → [`app_src`] (the app
//! as a build context with every mtime 0, for a Dockerfile that declares `ARG APP_SRC`) →
//! [`plan`] (pure: the buildx argv as data, unit-tested) → [`platform`] (the base provides every
//! target platform, checked before buildx starts) → [`run`] (buildx through `crate::docker`, its
//! output read by [`log`], BuildKit's platform warnings judged before the tags move, the local
//! cache swapped in, the report gathered) → [`render`].
//!
//! [`build`] is the library's entry point: the benches call it with [`Options`] of their own.
//!
//! The module is `build_cmd`, like `config_cmd` and `test_cmd`: a `src/build/` folder reads as
//! build output to many tools (global gitignores, linters, structure viewers), which skip it.

mod app_src;
mod git;
mod log;
mod plan;
mod platform;
mod render;
mod resolve;
mod run;

use anyhow::Result;
use camino::Utf8PathBuf;

use crate::config::{Config, Variant};
use crate::ctx::{Ctx, TempDir};
use crate::report::{self, Format};
use crate::util::{self, progress};
use plan::{BuildPlan, PlanInput};
use resolve::Setting;

pub use crate::config::Compression;
pub(crate) use git::{git_info, source_date_epoch};
pub use plan::Progress;
pub(crate) use plan::Provenance;
pub use resolve::CacheMode;
pub use run::BuildReport;

/// `cargo xtask build`: which variants, the options of their builds, the summary's format.
#[derive(clap::Args)]
pub struct Args {
    /// Variants to build (see `cargo xtask config`).
    pub variants: Vec<String>,
    /// Build every variant.
    #[arg(long, conflicts_with = "variants")]
    pub all: bool,
    #[command(flatten)]
    pub(crate) options: Options,
    /// Summary format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// How a build runs, besides which variant: the flags of `cargo xtask build`. `Default` is a
/// plain `cargo xtask build VARIANT`: a load into the local store with images.toml's settings.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(group(clap::ArgGroup::new("pushing").args(["push", "push_by_digest"])))]
pub struct Options {
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
    /// Where build reports go (default: target/xtask).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<Utf8PathBuf>,
    /// Root of the local caches, `<DIR>/<variant>` (default: images.toml `[build].cache_dir`,
    /// else target/docker-cache).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<Utf8PathBuf>,
    /// The network of RUN steps (buildx `--network`; not a flag): `host` for a private engine,
    /// whose bridge has no route out (`reproduce`).
    #[arg(skip)]
    pub network: Option<String>,
    /// Labels `KEY=VALUE` on the image besides the OCI ones (not a flag): the benches' owner.
    #[arg(skip)]
    pub labels: Vec<String>,
}

impl Options {
    /// `--push` or `--push-by-digest`: the image goes to a registry instead of the local store.
    pub(crate) fn pushing(&self) -> bool {
        self.push || self.push_by_digest
    }
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
    resolve::parse_build_args(&[s.to_string()]).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let variants = ctx.config()?.select(&self.variants, self.all)?;
        let reports = build(ctx, &variants, &self.options)?;
        render::render(self.format, &reports)
    }
}

/// Builds these variants, which need not come from images.toml (`bench rebuild` builds its peer
/// Dockerfile as one), with this project's config otherwise; writes each one's build report
/// into the report directory and returns the reports. Every variant is planned, and its base
/// checked, before the first build starts.
pub fn build(ctx: &Ctx, variants: &[&Variant], options: &Options) -> Result<Vec<BuildReport>> {
    let config = ctx.config()?;
    let setting = resolve::resolve(ctx, config, options)?;
    let prepared = variants
        .iter()
        .map(|variant| prepare(ctx, config, &setting, options, variant))
        .collect::<Result<Vec<_>>>()?;
    prepared
        .iter()
        .map(|p| build_one(&setting, options, p))
        .collect()
}

/// One variant, planned and checked: what its build runs, and its scratch directory.
struct Prepared<'a> {
    input: PlanInput<'a>,
    plan: BuildPlan,
    _tmp: TempDir,
}

fn prepare<'a>(
    ctx: &Ctx,
    config: &'a Config,
    setting: &'a Setting,
    options: &'a Options,
    variant: &'a Variant,
) -> Result<Prepared<'a>> {
    let facts = resolve::variant_facts(ctx, setting, variant)?;
    let app_src = match facts.declares_app_src {
        true => Some(app_src::prepare(&variant.context, facts.tmp.path())?),
        false => None,
    };
    let input = plan::input(config, setting, options, variant, &facts, app_src)?;
    if let Some(tag) = &input.platform_tag {
        progress!(
            "the `{}` builder (docker driver) cannot push untagged: {} is pushed as {tag}",
            setting.builder.name,
            variant.name
        );
    }
    let plan = plan::plan(&input);
    // A local base matters only to a builder that sees the store and a Dockerfile that takes it.
    let local_base = plan
        .build_args
        .get("BASE_IMAGE")
        .filter(|_| setting.builder.driver == "docker" && facts.declares_base_image);
    if let Some(base) = local_base {
        platform::check_base(variant, base, &config.base, &input.platforms)?;
    }
    Ok(Prepared {
        input,
        plan,
        _tmp: facts.tmp,
    })
}

fn build_one(setting: &Setting, options: &Options, p: &Prepared) -> Result<BuildReport> {
    let platforms_given = !options.platform.is_empty();
    progress!("{}", render::starting(&p.input, setting, platforms_given));
    let builder = run::Builder {
        name: &setting.builder.name,
        buildkit: setting.builder.nodes.first().map(|n| n.version.as_str()),
        engine: &setting.engine_version,
    };
    let report = run::execute(&p.input, &p.plan, &builder, setting.ca.as_ref())?;
    let path = util::host_join(
        &setting.report_dir,
        format!("build-{}.json", p.input.variant.name),
    );
    report::write_atomic(
        &path,
        report::to_json(report::Kind::Build, &report)?.as_bytes(),
    )?;
    progress!("{}", render::built(&report, &path));
    Ok(report)
}
