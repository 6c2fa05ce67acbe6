//! `cargo xtask build <variant>…`: one `docker buildx build` per variant, with per-variant cache,
//! the CA bundle as a BuildKit secret, OCI labels, standard tags and a build report.
//!
//! The argv is prepared as data by `plan` (pure, unit-tested), then run with duct.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;
use xshell::cmd;

use crate::ca::{self, CaBundle};
use crate::cleanup::Guard;
use crate::config::Variant;
use crate::docker;
use crate::report::{self, Format, Table};
use crate::util::{self, progress, CheckFailed, Ctx, TempDir};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Variants to build (see `cargo xtask config`).
    pub variants: Vec<String>,
    /// Build every variant.
    #[arg(long, conflicts_with = "variants")]
    pub all: bool,
    /// Load the result into the local image store (the default).
    #[arg(long, conflicts_with = "push")]
    pub load: bool,
    /// Push the tags to their registry instead of loading them.
    #[arg(long)]
    pub push: bool,
    /// Layer compression of pushed images (zstd: smaller and faster to unpack, needs
    /// containerd ≥ 1.5 / Docker ≥ 23 to pull). Default: the variant's `push_compression` in
    /// images.toml, else buildx's (gzip).
    #[arg(long, value_enum, requires = "push")]
    pub compression: Option<Compression>,
    /// Target platforms, e.g. `linux/amd64,linux/arm64` (default: from images.toml).
    #[arg(long, value_delimiter = ',')]
    pub platform: Vec<String>,
    /// The buildx builder to use: local, remote BuildKit, kubernetes… (default: the active one).
    #[arg(long)]
    pub builder: Option<String>,
    /// Do not use cached layers.
    #[arg(long)]
    pub no_cache: bool,
    /// Always pull a newer version of the base image.
    #[arg(long)]
    pub pull: bool,
    /// Extra or overriding build argument, `KEY=VALUE` (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Extra tag (repeatable).
    #[arg(long = "tag", value_name = "IMAGE:TAG")]
    pub tags: Vec<String>,
    /// Where BuildKit's cache goes (default: `gha` in GitHub Actions, else `local`).
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// `type=local` under target/docker-cache/<variant>, rotated on every build.
    Local,
    /// GitHub Actions cache, one scope per variant.
    Gha,
    /// `<image>:buildcache-<variant>` in the image's registry.
    Registry,
    /// No cache import or export.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    Auto,
    Plain,
    Tty,
}

pub use crate::config::Compression;

/// Cache import/export for one variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheSpec {
    None,
    /// The variant's cache lives in `current` (imported when `import`, i.e. when it holds a
    /// cache); the build exports to `to`, a fresh directory swapped in for `current` afterwards.
    Local {
        current: Utf8PathBuf,
        import: bool,
        to: Utf8PathBuf,
    },
    Gha {
        scope: String,
    },
    Registry {
        reference: String,
    },
}

/// Facts from git for labels and tags.
#[derive(Clone, Debug, Default)]
pub struct GitInfo {
    pub revision: Option<String>,
    pub source: Option<String>,
    pub commit_time: Option<u64>,
}

/// Everything `plan` needs; no I/O happens in planning.
pub struct PlanInput<'a> {
    pub variant: &'a Variant,
    pub title: &'a str,
    pub description: &'a str,
    pub licenses: &'a str,
    pub version: &'a str,
    pub git: &'a GitInfo,
    pub created: String,
    pub push: bool,
    pub compression: Option<Compression>,
    pub platforms: Vec<String>,
    pub builder: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub build_arg_overrides: Vec<(String, String)>,
    /// Passed as BASE_IMAGE unless a build arg already sets it.
    pub base_image: Option<String>,
    pub extra_tags: Vec<String>,
    pub cache: CacheSpec,
    pub ca_bundle: Option<Utf8PathBuf>,
    pub progress: Progress,
    pub metadata_file: Utf8PathBuf,
}

#[derive(Debug, Clone)]
pub struct BuildPlan {
    pub argv: Vec<String>,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
}

/// The standard tags: `<image>:<variant>`, `<image>:<version>-<variant>`, `<image>:sha-<7>-<variant>`.
pub fn standard_tags(variant: &Variant, version: &str, revision: Option<&str>) -> Vec<String> {
    let mut tags = vec![
        variant.image_ref(),
        format!("{}:{version}-{}", variant.image, variant.name),
    ];
    if let Some(rev) = revision {
        let short: String = rev.chars().take(7).collect();
        tags.push(format!("{}:sha-{short}-{}", variant.image, variant.name));
    }
    tags
}

pub fn plan(input: &PlanInput) -> BuildPlan {
    let v = input.variant;
    let mut argv: Vec<String> = vec!["buildx".into(), "build".into()];
    if let Some(builder) = &input.builder {
        argv.push(format!("--builder={builder}"));
    }
    argv.push(format!("--file={}", v.dockerfile));
    if let Some(target) = &v.target {
        argv.push(format!("--target={target}"));
    }
    if !input.platforms.is_empty() {
        argv.push(format!("--platform={}", input.platforms.join(",")));
    }

    let mut build_args = v.build_args.clone();
    for (k, val) in &input.build_arg_overrides {
        build_args.insert(k.clone(), val.clone());
    }
    if let Some(base) = &input.base_image {
        build_args
            .entry("BASE_IMAGE".into())
            .or_insert_with(|| base.clone());
    }
    for (k, val) in &build_args {
        argv.push(format!("--build-arg={k}={val}"));
    }

    let mut labels = BTreeMap::new();
    labels.insert("title", input.title.to_string());
    labels.insert("description", input.description.to_string());
    labels.insert("licenses", input.licenses.to_string());
    labels.insert("version", input.version.to_string());
    labels.insert("created", input.created.clone());
    if let Some(rev) = &input.git.revision {
        labels.insert("revision", rev.clone());
    }
    if let Some(src) = &input.git.source {
        labels.insert("source", src.clone());
    }
    for (k, val) in labels {
        if !val.is_empty() {
            argv.push(format!("--label=org.opencontainers.image.{k}={val}"));
        }
    }

    let mut tags = standard_tags(v, input.version, input.git.revision.as_deref());
    for t in v.tags.iter().chain(&input.extra_tags) {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    for t in &tags {
        argv.push(format!("--tag={t}"));
    }

    if let Some(ca) = &input.ca_bundle {
        argv.push(format!("--secret=id=ca-bundle,src={ca}"));
    }

    match &input.cache {
        CacheSpec::None => {}
        CacheSpec::Local {
            current,
            import,
            to,
        } => {
            if *import {
                argv.push(format!("--cache-from=type=local,src={current}"));
            }
            argv.push(format!("--cache-to=type=local,dest={to},mode=max"));
        }
        CacheSpec::Gha { scope } => {
            argv.push(format!("--cache-from=type=gha,scope={scope}"));
            argv.push(format!("--cache-to=type=gha,scope={scope},mode=max"));
        }
        CacheSpec::Registry { reference } => {
            argv.push(format!("--cache-from=type=registry,ref={reference}"));
            argv.push(format!("--cache-to=type=registry,ref={reference},mode=max"));
        }
    }

    if input.push {
        match input.compression {
            Some(c) => {
                let c = c.as_str();
                argv.push(format!(
                    "--output=type=registry,compression={c},force-compression=true,oci-mediatypes=true"
                ));
            }
            None => argv.push("--push".into()),
        }
    } else {
        argv.push("--load".into());
        // Attestations make loaded images differ on every build (they embed the build time).
        argv.push("--provenance=false".into());
    }
    if input.no_cache {
        argv.push("--no-cache".into());
    }
    if input.pull {
        argv.push("--pull".into());
    }
    let progress = match input.progress {
        Progress::Auto => "auto",
        Progress::Plain => "plain",
        Progress::Tty => "tty",
    };
    argv.push(format!("--progress={progress}"));
    argv.push(format!("--metadata-file={}", input.metadata_file));
    argv.push(v.context.to_string());
    BuildPlan {
        argv,
        tags,
        build_args,
    }
}

/// The cache for a variant under a mode; `cache_dir` is the root of local caches.
pub fn cache_spec(
    mode: CacheMode,
    variant: &Variant,
    cache_dir: &Utf8Path,
    suffix: &str,
) -> CacheSpec {
    match mode {
        CacheMode::None => CacheSpec::None,
        CacheMode::Local => {
            let current = cache_dir.join(&variant.name);
            CacheSpec::Local {
                import: current.join("index.json").is_file(),
                to: Utf8PathBuf::from(format!("{current}.new-{suffix}")),
                current,
            }
        }
        CacheMode::Gha => CacheSpec::Gha {
            scope: variant.name.clone(),
        },
        CacheMode::Registry => CacheSpec::Registry {
            reference: format!("{}:buildcache-{}", variant.image, variant.name),
        },
    }
}

/// The layer compression of a push: `--compression`, else the variant's `push_compression`.
/// Loads are never recompressed.
pub fn push_compression(
    push: bool,
    flag: Option<Compression>,
    variant: &Variant,
) -> Option<Compression> {
    if !push {
        return None;
    }
    flag.or(variant.push_compression)
}

fn parse_build_args(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--build-arg `{a}` is not KEY=VALUE"),
        })
        .collect()
}

/// What one build produced; written to `target/xtask/build-<variant>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub variant: String,
    pub image: String,
    pub tags: Vec<String>,
    /// Local image ID (with --load).
    pub image_id: Option<String>,
    /// Manifest digest BuildKit reported.
    pub digest: Option<String>,
    pub duration_secs: f64,
    pub steps_total: Option<u64>,
    pub steps_cached: Option<u64>,
    /// The Dockerfile steps that ran (were not cached), as BuildKit names them
    /// (`[app 3/4] COPY …`); empty when the build record could not be read.
    pub steps_run: Vec<String>,
    pub cache: String,
    pub builder: String,
    pub platforms: Vec<String>,
    pub pushed: bool,
    /// Where the CA bundle came from (its path and content never appear in the image).
    pub ca_bundle_from: Option<String>,
    pub build_args: BTreeMap<String, String>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let reports = self.build(ctx)?;
        render(self.format, &reports)
    }

    /// Builds the selected variants and returns their reports (also used by `bench`).
    pub fn build(&self, ctx: &Ctx) -> Result<Vec<BuildReport>> {
        let config = ctx.config()?;
        let variants = config.select(&self.variants, self.all)?;
        let sh = &ctx.sh;
        let info = docker::info(sh)?;
        docker::ensure_buildx(sh)?;
        let builder = docker::builder(sh, self.builder.as_deref())?;

        let in_gha = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
        let mut mode = self.cache.unwrap_or(if in_gha {
            CacheMode::Gha
        } else {
            CacheMode::Local
        });
        if mode != CacheMode::None && !docker::can_export_cache(&builder, &info) {
            eprintln!(
                "warning: builder `{}` (docker driver on the classic image store) cannot export build \
                 cache, so this build runs without --cache-to. Fix: enable the containerd image store \
                 (daemon.json {{\"features\":{{\"containerd-snapshotter\":true}}}}) or create a builder \
                 with `docker buildx create --use --driver docker-container`.",
                builder.name
            );
            mode = CacheMode::None;
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
        let git = git_info(ctx);
        let created = created_timestamp(&git);
        let version = config.version().to_string();

        // The offline base only helps a builder that sees the local image store.
        let base_image =
            if builder.driver == "docker" && docker::image_id(sh, &config.base.image)?.is_some() {
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
            (None, Some(dir)) => config.dir.join(dir),
            (None, None) => ctx.root.join("target").join("docker-cache"),
        };
        let report_dir = self.report_dir.clone().unwrap_or_else(|| ctx.out_dir());
        let mut reports = Vec::new();
        for variant in variants {
            let tmp = TempDir::new(ctx, &format!("build-{}", variant.name))?;
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
                compression: push_compression(self.push, self.compression, variant),
                platforms: if self.platform.is_empty() {
                    variant.platforms.clone()
                } else {
                    self.platform.clone()
                },
                builder: self.builder.clone(),
                no_cache: self.no_cache,
                pull: self.pull,
                build_arg_overrides: overrides.clone(),
                base_image: base_image.clone(),
                extra_tags: self.tags.clone(),
                cache: cache_spec(mode, variant, &cache_dir, &util::unique_suffix()),
                ca_bundle: ca.as_ref().map(|c| c.path.clone()),
                progress: self.progress,
                metadata_file: tmp.path().join("metadata.json"),
            };
            let plan = plan(&input);
            progress!(
                "building {} ({}) with builder `{}`",
                variant.name,
                variant.dockerfile,
                builder.name
            );
            let report = execute(ctx, &input, &plan, &builder.name, ca.as_ref())?;
            let path = report_dir.join(format!("build-{}.json", variant.name));
            report::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
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

fn execute(
    ctx: &Ctx,
    input: &PlanInput,
    plan: &BuildPlan,
    builder: &str,
    ca: Option<&CaBundle>,
) -> Result<BuildReport> {
    let variant = input.variant;
    // A fresh local cache directory is swapped in only after a successful build.
    let new_cache = match &input.cache {
        CacheSpec::Local { to, .. } => {
            let dir = to.clone();
            Some(Guard::new(move || drop(std::fs::remove_dir_all(&dir))))
        }
        _ => None,
    };

    let start = Instant::now();
    let tty = match input.progress {
        Progress::Tty => true,
        Progress::Plain => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    let failure = if tty {
        // BuildKit draws its own progress on the terminal; its error stays on screen.
        let status = docker::buildx_build(&plan.argv, docker::BuildOutput::Stderr)?;
        (!status.success()).then(|| "see BuildKit's error above".to_string())
    } else {
        // Plain progress is copied to stderr line by line, remembering the failing step.
        let mut failing = FailureScan::default();
        let status = docker::buildx_build(
            &plan.argv,
            docker::BuildOutput::Lines(&mut |line| {
                eprintln!("{line}");
                failing.feed(line);
            }),
        )?;
        (!status.success()).then(|| failing.describe())
    };
    let duration = start.elapsed().as_secs_f64();
    if let Some(why) = failure {
        return Err(CheckFailed(format!("build of `{}` failed: {why}", variant.name)).into());
    }

    if let CacheSpec::Local { current, to, .. } = &input.cache {
        swap_cache(to, current)?;
    }
    drop(new_cache); // `to` no longer exists under that name

    let metadata: serde_json::Value = std::fs::read_to_string(&input.metadata_file)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let digest = metadata["containerimage.digest"]
        .as_str()
        .map(str::to_owned);
    let build_ref = metadata["buildx.build.ref"].as_str().map(str::to_owned);
    let log =
        build_ref.and_then(
            |r| match docker::build_log(&ctx.sh, input.builder.as_deref(), &r) {
                Ok(log) => Some(log),
                Err(err) => {
                    eprintln!("warning: cannot read the build record for step counts: {err:#}");
                    None
                }
            },
        );
    let steps = log.as_deref().map(count_steps);
    let steps_run = log
        .as_deref()
        .map(|log| {
            list_steps(log)
                .into_iter()
                .filter(|s| !s.cached)
                .map(|s| s.name)
                .collect()
        })
        .unwrap_or_default();
    let image_id = if input.push {
        None
    } else {
        docker::image_id(&ctx.sh, &variant.image_ref())?
    };
    Ok(BuildReport {
        variant: variant.name.clone(),
        image: variant.image_ref(),
        tags: plan.tags.clone(),
        image_id,
        digest,
        duration_secs: (duration * 10.0).round() / 10.0,
        steps_total: steps.map(|s| s.total),
        steps_cached: steps.map(|s| s.cached),
        steps_run,
        cache: match &input.cache {
            CacheSpec::None => "none".into(),
            CacheSpec::Local { current, .. } => format!("local ({current})"),
            CacheSpec::Gha { scope } => format!("gha (scope {scope})"),
            CacheSpec::Registry { reference } => format!("registry ({reference})"),
        },
        builder: builder.to_string(),
        platforms: input.platforms.clone(),
        pushed: input.push,
        ca_bundle_from: ca.map(|c| c.source.clone()),
        build_args: plan.build_args.clone(),
    })
}

/// Replaces the variant's cache directory with the one this build wrote, so the cache holds only
/// what the latest build used instead of growing without bound.
fn swap_cache(new: &Utf8Path, current: &Utf8Path) -> Result<()> {
    let old = Utf8PathBuf::from(format!("{current}.old-{}", util::unique_suffix()));
    if current.exists() {
        std::fs::rename(current, &old)
            .with_context(|| format!("moving the old cache {current} aside"))?;
    }
    std::fs::rename(new, current)
        .with_context(|| format!("moving the new cache into {current}"))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing the old cache {old}"))?;
    }
    Ok(())
}

/// Dockerfile steps of a build and how many of them came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepCounts {
    pub total: u64,
    pub cached: u64,
}

/// One Dockerfile instruction of a build, from its plain progress log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The stage name (`app` in `[app 2/4]`); None for an unnamed stage (`[3/3]`).
    pub stage: Option<String>,
    /// BuildKit's name of the step: `[app 2/4] COPY …`.
    pub name: String,
    pub cached: bool,
}

/// The Dockerfile instructions (`#7 [app 1/2] RUN …`; FROM and BuildKit's internal vertices
/// excluded) in a plain progress log, in the order they first appear, each with whether it was
/// reported `#7 CACHED`.
pub fn list_steps(log: &str) -> Vec<Step> {
    let mut steps: Vec<(String, Step)> = Vec::new();
    let mut cached = std::collections::BTreeSet::new();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((vertex, text)) = rest.split_once(' ') else {
            continue;
        };
        if text == "CACHED" {
            cached.insert(vertex.to_string());
        } else if let Some(name) = text.strip_prefix('[') {
            if let Some((label, instr)) = name.split_once("] ") {
                // `app 1/2`, `1/2`, or with a platform: `linux/amd64 app 1/2`.
                let mut words = label.split_whitespace().rev();
                let is_step = words.next().is_some_and(|n| n.contains('/'));
                if is_step && !instr.starts_with("FROM ") && !steps.iter().any(|(v, _)| v == vertex)
                {
                    let stage = words.next().map(str::to_owned);
                    steps.push((
                        vertex.to_string(),
                        Step {
                            stage,
                            name: text.to_string(),
                            cached: false,
                        },
                    ));
                }
            }
        }
    }
    steps
        .into_iter()
        .map(|(vertex, mut step)| {
            step.cached = cached.contains(&vertex);
            step
        })
        .collect()
}

/// Counts the Dockerfile instructions of a build and those that came from the cache.
pub fn count_steps(log: &str) -> StepCounts {
    let steps = list_steps(log);
    StepCounts {
        total: steps.len() as u64,
        cached: steps.iter().filter(|s| s.cached).count() as u64,
    }
}

/// Finds the failing step and BuildKit's error in plain progress output.
#[derive(Default)]
struct FailureScan {
    last_step: Option<String>,
    error: Option<String>,
}

impl FailureScan {
    fn feed(&mut self, line: &str) {
        // ` > [deps 3/7] RUN uv pip install …:` opens BuildKit's error block for the failing step.
        if let Some(step) = line.strip_prefix(" > [") {
            self.last_step = Some(format!("[{}", step.trim_end_matches(':')));
        } else if let Some(err) = line.strip_prefix("ERROR: ") {
            self.error = Some(err.to_string());
        }
    }

    fn describe(&self) -> String {
        match (&self.last_step, &self.error) {
            // BuildKit repeats the step's command in its error; keep only the outcome.
            (Some(step), Some(err)) => match err.split_once("did not complete successfully: ") {
                Some((_, outcome)) => format!("step {step}: {outcome}"),
                None => format!("step {step}: {err}"),
            },
            (None, Some(err)) => err.clone(),
            (Some(step), None) => format!("step {step}"),
            (None, None) => "docker buildx failed (its output is above)".into(),
        }
    }
}

fn git_info(ctx: &Ctx) -> GitInfo {
    let sh = &ctx.sh;
    let read = |out: xshell::Result<String>| {
        out.ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    GitInfo {
        revision: read(
            cmd!(sh, "git rev-parse HEAD")
                .quiet()
                .ignore_stderr()
                .read(),
        ),
        source: read(
            cmd!(sh, "git remote get-url origin")
                .quiet()
                .ignore_stderr()
                .read(),
        )
        .map(|url| public_url(&url)),
        commit_time: read(
            cmd!(sh, "git log -1 --format=%ct")
                .quiet()
                .ignore_stderr()
                .read(),
        )
        .and_then(|t| t.parse().ok()),
    }
}

/// A remote URL without credentials, in https form where it was an scp-like ssh address.
pub fn public_url(url: &str) -> String {
    let url = match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => match url.split_once(':') {
            // git@host:owner/repo.git
            Some((user_host, path)) if user_host.contains('@') => {
                format!(
                    "https://{}/{path}",
                    user_host.rsplit_once('@').map_or(user_host, |(_, h)| h)
                )
            }
            _ => url.to_string(),
        },
    };
    url.trim_end_matches(".git").to_string()
}

/// `created`: SOURCE_DATE_EPOCH when set, else the time of the HEAD commit (so a rebuild of the
/// same commit labels the same time), else now.
fn created_timestamp(git: &GitInfo) -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .or(git.commit_time)
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    util::rfc3339(epoch)
}

fn render(format: Format, reports: &[BuildReport]) -> Result<()> {
    let mut table = Table::new(&[
        "variant",
        "image",
        "image id",
        "time",
        "steps cached",
        "cache",
    ])
    .right_align(&[3, 4]);
    for r in reports {
        table.row(vec![
            r.variant.clone(),
            r.image.clone(),
            r.image_id.as_deref().map_or("-".into(), short_id),
            format!("{:.1} s", r.duration_secs),
            match (r.steps_cached, r.steps_total) {
                (Some(c), Some(t)) => format!("{c}/{t}"),
                _ => "?".into(),
            },
            r.cache.clone(),
        ]);
    }
    report::emit(format, &table, &reports)?;
    report::step_summary("cargo xtask build", &table.render_markdown())
}

fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Budget, Scan, Smoke};
    use std::time::Duration;

    fn variant() -> Variant {
        Variant {
            name: "cpu".into(),
            description: "CPU".into(),
            dockerfile: "/p/Dockerfile.cpu".into(),
            context: "/p".into(),
            target: Some("app".into()),
            image: "voxserve".into(),
            tags: vec![],
            build_args: BTreeMap::from([("WITH_TORCH".to_string(), "1".to_string())]),
            platforms: vec!["linux/amd64".into()],
            push_compression: None,
            budget: Budget::default(),
            smoke: Smoke {
                health_timeout: Duration::from_secs(1),
                memory: None,
                cpus: None,
                port: 8000,
                http_probe: None,
                env: vec![],
                labels: vec![],
                forbidden_paths: vec![],
                forbidden_packages: vec![],
                exec: vec![],
                http: vec![],
            },
            scan: Scan {
                fail_on: vec![],
                ignore_unfixed: true,
                ignore: vec![],
            },
        }
    }

    fn input<'a>(v: &'a Variant, git: &'a GitInfo) -> PlanInput<'a> {
        PlanInput {
            variant: v,
            title: "voxserve",
            description: "CPU",
            licenses: "Apache-2.0",
            version: "0.1.0",
            git,
            created: "2025-11-28T00:00:00Z".into(),
            push: false,
            compression: None,
            platforms: v.platforms.clone(),
            builder: None,
            no_cache: false,
            pull: false,
            build_arg_overrides: vec![],
            base_image: None,
            extra_tags: vec![],
            cache: CacheSpec::None,
            ca_bundle: None,
            progress: Progress::Plain,
            metadata_file: "/t/meta.json".into(),
        }
    }

    fn git() -> GitInfo {
        GitInfo {
            revision: Some("0123456789abcdef".into()),
            source: Some("https://example.org/voxserve".into()),
            commit_time: None,
        }
    }

    fn has(argv: &[String], arg: &str) -> bool {
        argv.iter().any(|a| a == arg)
    }

    #[test]
    fn load_build_has_file_target_args_labels_and_tags() {
        let (v, g) = (variant(), git());
        let p = plan(&input(&v, &g));
        assert_eq!(&p.argv[..2], ["buildx", "build"]);
        for want in [
            "--file=/p/Dockerfile.cpu",
            "--target=app",
            "--platform=linux/amd64",
            "--build-arg=WITH_TORCH=1",
            "--label=org.opencontainers.image.title=voxserve",
            "--label=org.opencontainers.image.revision=0123456789abcdef",
            "--label=org.opencontainers.image.source=https://example.org/voxserve",
            "--label=org.opencontainers.image.created=2025-11-28T00:00:00Z",
            "--label=org.opencontainers.image.version=0.1.0",
            "--label=org.opencontainers.image.licenses=Apache-2.0",
            "--tag=voxserve:cpu",
            "--tag=voxserve:0.1.0-cpu",
            "--tag=voxserve:sha-0123456-cpu",
            "--load",
            "--provenance=false",
            "--progress=plain",
            "--metadata-file=/t/meta.json",
        ] {
            assert!(has(&p.argv, want), "missing {want} in {:?}", p.argv);
        }
        assert_eq!(p.argv.last().unwrap(), "/p");
        assert!(!p
            .argv
            .iter()
            .any(|a| a.starts_with("--cache") || a.starts_with("--secret")));
    }

    #[test]
    fn push_with_and_without_compression() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.push = true;
        let p = plan(&i);
        assert!(has(&p.argv, "--push") && !has(&p.argv, "--load"));
        i.compression = Some(Compression::Zstd);
        let p = plan(&i);
        assert!(has(
            &p.argv,
            "--output=type=registry,compression=zstd,force-compression=true,oci-mediatypes=true"
        ));
        assert!(!has(&p.argv, "--push"));
    }

    #[test]
    fn push_compression_comes_from_the_flag_then_the_variant() {
        let mut v = variant();
        assert_eq!(push_compression(true, None, &v), None);
        v.push_compression = Some(Compression::Zstd);
        assert_eq!(push_compression(true, None, &v), Some(Compression::Zstd));
        assert_eq!(
            push_compression(true, Some(Compression::Gzip), &v),
            Some(Compression::Gzip)
        );
        // --load never recompresses.
        assert_eq!(push_compression(false, None, &v), None);

        let g = git();
        let mut i = input(&v, &g);
        i.push = true;
        i.compression = push_compression(true, None, &v);
        assert!(has(
            &plan(&i).argv,
            "--output=type=registry,compression=zstd,force-compression=true,oci-mediatypes=true"
        ));
    }

    #[test]
    fn cache_modes() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.cache = cache_spec(CacheMode::Gha, &v, Utf8Path::new("/c"), "x");
        let p = plan(&i);
        assert!(has(&p.argv, "--cache-from=type=gha,scope=cpu"));
        assert!(has(&p.argv, "--cache-to=type=gha,scope=cpu,mode=max"));

        i.cache = cache_spec(CacheMode::Registry, &v, Utf8Path::new("/c"), "x");
        let p = plan(&i);
        assert!(has(
            &p.argv,
            "--cache-from=type=registry,ref=voxserve:buildcache-cpu"
        ));
        assert!(has(
            &p.argv,
            "--cache-to=type=registry,ref=voxserve:buildcache-cpu,mode=max"
        ));

        // No cache yet: export only, to a fresh directory that is swapped in afterwards.
        i.cache = cache_spec(CacheMode::Local, &v, Utf8Path::new("/nonexistent/c"), "x");
        let p = plan(&i);
        assert!(has(
            &p.argv,
            "--cache-to=type=local,dest=/nonexistent/c/cpu.new-x,mode=max"
        ));
        assert!(!p.argv.iter().any(|a| a.starts_with("--cache-from")));

        i.cache = CacheSpec::Local {
            current: "/c/cpu".into(),
            import: true,
            to: "/c/cpu.new-x".into(),
        };
        assert!(has(&plan(&i).argv, "--cache-from=type=local,src=/c/cpu"));

        i.cache = cache_spec(CacheMode::None, &v, Utf8Path::new("/c"), "x");
        assert!(!plan(&i).argv.iter().any(|a| a.starts_with("--cache")));
    }

    #[test]
    fn platform_builder_flags_and_overrides() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
        i.builder = Some("k8s".into());
        i.no_cache = true;
        i.pull = true;
        i.build_arg_overrides = vec![
            ("WITH_TORCH".into(), "0".into()),
            ("EXTRA".into(), "y".into()),
        ];
        i.base_image = Some("localhost/debian:trixie-slim".into());
        i.extra_tags = vec!["registry.example/voxserve:edge".into()];
        let p = plan(&i);
        assert_eq!(p.argv[2], "--builder=k8s");
        for want in [
            "--platform=linux/amd64,linux/arm64",
            "--no-cache",
            "--pull",
            "--build-arg=WITH_TORCH=0",
            "--build-arg=EXTRA=y",
            "--build-arg=BASE_IMAGE=localhost/debian:trixie-slim",
            "--tag=registry.example/voxserve:edge",
        ] {
            assert!(has(&p.argv, want), "missing {want} in {:?}", p.argv);
        }
        assert!(!has(&p.argv, "--build-arg=WITH_TORCH=1"));

        // An explicit BASE_IMAGE wins over the offline base.
        i.build_arg_overrides = vec![("BASE_IMAGE".into(), "debian:trixie-slim@sha256:abc".into())];
        let p = plan(&i);
        assert!(has(
            &p.argv,
            "--build-arg=BASE_IMAGE=debian:trixie-slim@sha256:abc"
        ));
        assert!(!has(
            &p.argv,
            "--build-arg=BASE_IMAGE=localhost/debian:trixie-slim"
        ));
    }

    #[test]
    fn ca_bundle_is_a_secret_and_nothing_else() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.ca_bundle = Some("/etc/ssl/certs/ca-certificates.crt".into());
        let p = plan(&i);
        let mentions: Vec<&String> = p
            .argv
            .iter()
            .filter(|a| a.contains("ca-certificates.crt"))
            .collect();
        assert_eq!(
            mentions,
            ["--secret=id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt"]
        );
    }

    #[test]
    fn without_git_there_is_no_sha_tag() {
        let v = variant();
        let g = GitInfo::default();
        let p = plan(&input(&v, &g));
        assert_eq!(p.tags, ["voxserve:cpu", "voxserve:0.1.0-cpu"]);
        assert!(!p.argv.iter().any(|a| a.contains("image.revision")));
    }

    #[test]
    fn failure_scan_quotes_step_and_error() {
        let mut scan = FailureScan::default();
        for line in [
            "#7 [3/3] RUN exit 3",
            " > [3/3] RUN echo failing && exit 3:",
            "0.147 failing",
            "ERROR: failed to build: failed to solve: process \"/bin/sh -c echo failing && exit 3\" did not complete successfully: exit code: 3",
        ] {
            scan.feed(line);
        }
        let d = scan.describe();
        assert_eq!(d, "step [3/3] RUN echo failing && exit 3: exit code: 3");
    }

    #[test]
    fn counts_dockerfile_steps_and_cached_ones() {
        let log = "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n\n\
                   #6 [base 1/2] FROM localhost/debian:trixie-slim@sha256:54de\n#6 DONE 0.0s\n\
                   #7 [app 1/2] RUN echo hi\n#7 CACHED\n\
                   #8 [base 2/2] RUN --mount=type=cache,target=/c true\n#8 CACHED\n\
                   #9 [app 2/2] COPY payload.txt /payload.txt\n#9 DONE 0.1s\n\
                   #10 [3/3] RUN true\n#10 CACHED\n#11 exporting to image\n#11 DONE 0.0s\n";
        assert_eq!(
            count_steps(log),
            StepCounts {
                total: 4,
                cached: 3
            }
        );
        let steps = list_steps(log);
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[2].stage.as_deref(), Some("app"));
        assert_eq!(steps[2].name, "[app 2/2] COPY payload.txt /payload.txt");
        assert!(!steps[2].cached);
        assert_eq!(steps[3].stage, None);
        assert!(steps[3].cached);
    }

    #[test]
    fn step_stage_with_a_platform_prefix() {
        let log = "#9 [linux/amd64 app 2/2] COPY a /a\n#9 DONE 0.1s\n";
        let steps = list_steps(log);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].stage.as_deref(), Some("app"));
    }

    #[test]
    fn remote_urls_lose_credentials() {
        assert_eq!(
            public_url("git@example.org:team/voxserve.git"),
            "https://example.org/team/voxserve"
        );
        assert_eq!(
            public_url("https://user:token@example.org/team/voxserve.git"),
            "https://example.org/team/voxserve"
        );
        assert_eq!(
            public_url("https://example.org/team/voxserve"),
            "https://example.org/team/voxserve"
        );
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
