//! `cargo xtask reproduce VARIANT…`: proves that the same commit builds the same image. Two
//! builds of this checkout without cache, each in a private engine started for it alone (its own
//! data root, the containerd image store, nothing in it but the base image), must give the same
//! config and manifest digests per platform. With `--published`, the commit of the published
//! `<registry>/<image>:<variant>` is checked out and rebuilt the same way from the inputs its
//! labels (or its build report) record, and compared with what the registry serves. Exit 1 with
//! the diff's summary (`cargo xtask diff`) where a digest differs.
//!
//! The story: the base saved once, a registry on 127.0.0.1 for the builds to push to →
//! [`inputs`] (with `--published`: the registry's digests, the recorded inputs, a checkout) →
//! [`fresh`] (one build in a fresh engine, per image) → [`judge`] (pure) → [`render`].

mod fresh;
mod inputs;
mod judge;
mod render;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::build_cmd::{self, Provenance};
use crate::config::Variant;
use crate::ctx::{Ctx, TempDir};
use crate::docker;
use crate::output::warning;
use crate::registry::serve::LocalRegistry;
use crate::registry::Registry;
use crate::report::{self, Format, Kind, Section};
use crate::util::{progress, CheckFailed};
use fresh::{Built, Fresh};
use judge::Row;

#[derive(clap::Args)]
pub struct Args {
    /// Variants to rebuild (see `cargo xtask config`).
    #[arg(required = true)]
    pub variants: Vec<String>,
    /// Platforms to build (default: this engine's; with --published, every one the registry
    /// serves).
    #[arg(long, value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<String>,
    /// Rebuild the commit of the published `<registry>/<image>:<variant>` and compare with what
    /// the registry serves, instead of building this checkout twice.
    #[arg(long)]
    pub(crate) published: bool,
    /// The registry with --published: `HOST[:PORT][/NAMESPACE]` (default: `[project].registry`).
    #[arg(long, env = "XTASK_REGISTRY", value_name = "HOST[/NAMESPACE]")]
    pub(crate) registry: Option<String>,
    /// With --published: the build report of the published build (`build-<variant>.json`), whose
    /// commit, SOURCE_DATE_EPOCH, base, build arguments and compression the rebuild takes
    /// (default: the image's labels).
    #[arg(long, requires = "published", value_name = "FILE")]
    pub(crate) report: Option<Utf8PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn parse_platform(s: &str) -> std::result::Result<String, String> {
    crate::config::check_platform(s).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

/// One variant's two images and their comparison.
#[derive(Debug, Serialize)]
struct Outcome {
    variant: String,
    a: Built,
    b: Built,
    rows: Vec<Row>,
    /// `cargo xtask diff`'s summary of each platform that differs.
    differences: Vec<String>,
}

/// What both runs of one command share.
struct Run<'a> {
    ctx: &'a Ctx,
    scratch: &'a Utf8Path,
    base_archive: &'a Utf8Path,
    registry: &'a LocalRegistry,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let config = ctx.config()?;
        let variants = config.select(&self.variants, false)?;
        if self.report.is_some() && variants.len() != 1 {
            bail!("--report is one variant's build report: name that one variant");
        }
        let published = match self.published {
            true => Some(Registry::required(
                self.registry.as_deref(),
                config,
                "reproduce --published",
            )?),
            false => None,
        };
        let base = config.base.image.as_str();
        let base_id = docker::image_id(base)?;
        let scratch = TempDir::new(ctx, "reproduce")?;
        let base_archive = save_base(base, base_id.is_some(), scratch.path())?;
        let storage = crate::util::host_join(scratch.path(), "registry");
        let (registry, _stop) = crate::process::daemon(
            || LocalRegistry::start(storage.as_std_path()),
            LocalRegistry::stop,
        )
        .context("starting a registry on 127.0.0.1 for the builds to push to")?;
        let run = Run {
            ctx,
            scratch: scratch.path(),
            base_archive: &base_archive,
            registry: &registry,
        };
        let mut outcomes = Vec::new();
        for (i, variant) in variants.iter().enumerate() {
            outcomes.push(match &published {
                None => self.twice(&run, variant, i)?,
                Some(r) => self.against(&run, variant, r, (base, base_id.as_deref()), i)?,
            });
        }
        render_all(self.format, &outcomes)?;
        verdict(&outcomes)
    }

    /// Two builds of this checkout, each in a fresh engine, with one SOURCE_DATE_EPOCH.
    fn twice(&self, run: &Run, variant: &Variant, i: usize) -> Result<Outcome> {
        let platforms = match self.platform.is_empty() {
            true => vec![docker::info()?.native_platform()],
            false => self.platform.clone(),
        };
        let git = build_cmd::git_info(run.ctx);
        let epoch = build_cmd::source_date_epoch(&git, &[]);
        let mut built = Vec::new();
        for n in 1..=2 {
            let fresh = Fresh {
                label: format!("build {n}"),
                n: 2 * i + n,
                scratch: run.scratch,
                base_archive: run.base_archive,
                registry: format!("{}/build-{n}", run.registry.host),
                platforms: platforms.clone(),
                build_args: vec![format!("SOURCE_DATE_EPOCH={epoch}")],
                compression: None,
                provenance: Provenance::False,
            };
            built.push(fresh::build(run.ctx, variant, &fresh)?);
        }
        judge::same_checkout(
            git.revision.as_deref(),
            build_cmd::git_info(run.ctx).revision.as_deref(),
        )?;
        let b = built.pop().context("two builds")?;
        let a = built.pop().context("two builds")?;
        outcome(run.ctx, variant, a, b)
    }

    /// The published image against a rebuild of its commit in a fresh engine.
    fn against(
        &self,
        run: &Run,
        variant: &Variant,
        registry: &Registry,
        (base, base_id): (&str, Option<&str>),
        i: usize,
    ) -> Result<Outcome> {
        let (published, recorded) = inputs::published(variant, registry, self.report.as_deref())?;
        let base = inputs::check_base(&recorded, base, base_id)?;
        progress!(
            "reproduce {}: {} was built from {} at SOURCE_DATE_EPOCH {} on {base}",
            variant.name,
            registry.variant_ref(variant),
            recorded.revision,
            recorded.source_date_epoch
        );
        warn_versions(&recorded)?;
        let checkout = inputs::worktree(run.ctx, &recorded.revision, run.scratch)?;
        let source = checkout
            .ctx
            .config()?
            .select(std::slice::from_ref(&variant.name), false)?;
        let mut build_args: Vec<String> = recorded
            .build_args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        build_args.push(format!("SOURCE_DATE_EPOCH={}", recorded.source_date_epoch));
        build_args.push(format!("BASE_IMAGE={base}"));
        let platforms = match self.platform.is_empty() {
            true => published.platforms.keys().cloned().collect(),
            false => self.platform.clone(),
        };
        let fresh = Fresh {
            label: "rebuild".into(),
            n: i + 1,
            scratch: run.scratch,
            base_archive: run.base_archive,
            registry: format!("{}/rebuild", run.registry.host),
            platforms,
            build_args,
            compression: recorded.compression,
            provenance: match recorded.attested {
                true => Provenance::Min,
                false => Provenance::False,
            },
        };
        let rebuilt = fresh::build(&checkout.ctx, source[0], &fresh)?;
        outcome(run.ctx, variant, published, rebuilt)
    }
}

/// A rebuild by another engine (so another BuildKit) than the recorded one may compress layers
/// into other bytes: the configs should still agree, the manifests may not.
fn warn_versions(recorded: &inputs::Inputs) -> Result<()> {
    let Some(engine) = &recorded.engine else {
        return Ok(());
    };
    let here = docker::info()?.server_version;
    if *engine != here {
        warning!(
            "the published image was built by engine {engine} (BuildKit {}), this one is {here}: \
             its configs should agree, its manifests may not (docs/REPRODUCIBLE.md)",
            recorded.buildkit.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

/// `docker save` of the base, for each fresh engine to load.
fn save_base(base: &str, present: bool, scratch: &Utf8Path) -> Result<Utf8PathBuf> {
    if !present {
        bail!("the offline base {base} is not in the engine: build it with `cargo xtask base`");
    }
    let path = crate::util::host_join(scratch, "base.tar");
    let mut save = docker::save(&[base.to_string()])?;
    let shown = crate::util::shown(&path);
    let mut file = std::fs::File::create(&path).with_context(|| format!("creating {shown}"))?;
    std::io::copy(&mut save, &mut file).with_context(|| format!("writing {shown}"))?;
    save.finish()?;
    Ok(path)
}

/// The comparison, and for each platform that differs what `diff` finds between the two.
fn outcome(ctx: &Ctx, variant: &Variant, a: Built, b: Built) -> Result<Outcome> {
    let rows = judge::compare(&variant.name, &a, &b);
    let mut differences = Vec::new();
    for row in rows.iter().filter(|r| !r.same()) {
        let (Some(da), Some(db)) = (&row.a, &row.b) else {
            continue;
        };
        let left = format!("registry:{}@{}", a.repository, da.manifest);
        let right = format!("registry:{}@{}", b.repository, db.manifest);
        let diff = crate::diff::images(ctx, &left, &right, Some(&row.platform))?;
        differences.push(format!("{}: {}", row.platform, crate::diff::summary(&diff)));
    }
    Ok(Outcome {
        variant: variant.name.clone(),
        a,
        b,
        rows,
        differences,
    })
}

fn render_all(format: Format, outcomes: &[Outcome]) -> Result<()> {
    let sections: Vec<Section> = outcomes
        .iter()
        .map(|o| Section {
            title: Some(format!(
                "{}: {} ({}) and {} ({})",
                o.variant, o.a.label, o.a.repository, o.b.label, o.b.repository
            )),
            table: render::table(&o.rows, &o.a.label, &o.b.label),
        })
        .collect();
    #[derive(Serialize)]
    struct Report<'a> {
        variants: &'a [Outcome],
    }
    let report = Report { variants: outcomes };
    report::emit_sections(format, &sections, Kind::Reproduce, &report)
}

/// Exit 1 when any platform differs, with what differs.
fn verdict(outcomes: &[Outcome]) -> Result<()> {
    let failed: Vec<String> = outcomes
        .iter()
        .flat_map(|o| {
            let rows = o.rows.iter().filter(|r| !r.same());
            let why = rows.filter_map(|r| {
                r.difference(&o.a.label, &o.b.label)
                    .map(|d| format!("{} {}: {d}", o.variant, r.platform))
            });
            why.chain(o.differences.iter().cloned()).collect::<Vec<_>>()
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(CheckFailed(format!("not reproduced:\n{}", failed.join("\n"))).into())
}
