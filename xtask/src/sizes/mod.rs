//! `cargo xtask sizes`: the compressed and unpacked size of each variant's image (or of named
//! images), computed the same way on the containerd and the classic image store, judged against
//! the budgets of images.toml, compared with an earlier report, with the heaviest layers.
//!
//! Story, one file per stage: targets (here, pure) → `measure` (engine facts: `content` or
//! `save`, each blob sized by `blob`, resolved through `layout`, kept in `cache`; the data in
//! `facts`) → `judge` (budgets and baseline, pure) → `render` (tables, via report.rs).
//! docs/SIZES.md says how each number is computed.

mod blob;
mod cache;
mod content;
mod facts;
mod judge;
mod layout;
mod measure;
mod push;
mod registry;
mod render;
mod save;
mod targets;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use std::collections::BTreeMap;
use std::time::Instant;

use crate::ctx::Ctx;
use crate::docker;
use crate::output::warning;
use crate::report::{self, Format};
use crate::util::{progress, CheckFailed};
pub use content::{image_documents, ContentStore};
use facts::{ImageFacts, Store, Wanted};
pub use facts::{Layer, Stats, UnpackedFrom};
use judge::{build_report, load_baseline, Level, Target};
pub use judge::{Report, Status};
pub use layout::{layer_history, HistoryDoc, ManifestDoc};
pub use measure::Source;
pub use render::{budget_chart, instruction};
use render::{sections, summary};
use targets::key;

#[derive(clap::Args, Default)]
pub struct Args {
    /// Variants to measure (default: every variant of images.toml, unless --image is given).
    pub variants: Vec<String>,
    /// Measure these platforms of each image (comma-separated or repeated), one row each, from
    /// a multi-platform image (default: a variant's `platforms` when it names several).
    #[arg(long, value_delimiter = ',', value_name = "PLATFORM")]
    pub platform: Vec<String>,
    /// Also measure this image (repeatable; no budget): a local image, or `REGISTRY/IMAGE:TAG`
    /// (a host with a dot or a port) read from the registry's manifests without pulling, per
    /// platform, compressed as pushed; unpacked too where the same image is also local.
    #[arg(long = "image", value_name = "REF")]
    pub images: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the JSON report to FILE (what `--format json` prints).
    #[arg(long, value_name = "FILE")]
    pub save: Option<Utf8PathBuf>,
    /// Show the change against an earlier JSON report (from --save or --format json).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<Utf8PathBuf>,
    /// Show the N largest layers of each image with the instruction that made them.
    #[arg(long, value_name = "N")]
    pub layers: Option<usize>,
    /// Measure again even when the sizes of an image ID are cached (and refresh the cache).
    #[arg(long)]
    pub no_cache: bool,
    /// Where to read the layers from.
    #[arg(long, value_enum, default_value_t = measure::Source::Auto)]
    pub source: measure::Source,
    /// Decompress every gzip layer instead of reading large layers' unpacked length from their
    /// gzip trailer (slower; facts cached from trailers are measured again).
    #[arg(long)]
    pub decompress: bool,
}

impl Args {
    /// The tables of the Markdown report, as [`render::sections`] makes them: the sizes (a row
    /// per variant named), the registry's images, the largest layers; a chart when a variant
    /// measured has a budget.
    pub(crate) fn report_shape(&self, config: &crate::config::Config) -> report::Shape {
        let in_registry = self
            .images
            .iter()
            .filter(|i| registry::is_registry_reference(i))
            .count();
        let mut tables = Vec::new();
        if in_registry < self.images.len() || !self.variants.is_empty() || in_registry == 0 {
            tables.push(report::TableShape::new(
                &render::sizes_columns(self.baseline.is_some()),
                &self.variants,
            ));
        }
        if in_registry > 0 {
            tables.push(report::TableShape::new(&registry::COLUMNS, &[] as &[&str]));
        }
        if self.layers.is_some() {
            tables.push(report::TableShape::new(
                &render::LAYER_COLUMNS,
                &[] as &[&str],
            ));
        }
        let measured: Vec<&str> = match self.variants.is_empty() && self.images.is_empty() {
            true => config.variant_names(),
            false => self.variants.iter().map(String::as_str).collect(),
        };
        let chart = config.variants.iter().any(|v| {
            measured.contains(&v.name.as_str())
                && (v.budget.compressed.is_some()
                    || v.budget.unpacked.is_some()
                    || !v.budget.platforms.is_empty())
        });
        report::Shape { tables, chart }
    }
}

/// What one run measured: the report `--format json` prints, and its closing progress line.
pub struct Measurement {
    pub report: Report,
    pub(crate) summary: Option<String>,
}

/// How local images are measured in this run.
struct Local<'a> {
    store: Store,
    cache: cache::Cache,
    options: measure::Options<'a>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        if let Some(path) = &self.save {
            report::ensure_file("--save", path)?;
        }
        let measured = self.measure(ctx)?;
        self.render(&measured.report)?;
        if let Some(line) = &measured.summary {
            progress!("{line}");
        }
        verdict(&measured.report)
    }

    /// Resolve, measure and judge: the report without printing it (the benches' entry point).
    pub fn measure(&self, ctx: &Ctx) -> Result<Measurement> {
        let started = Instant::now();
        let mut targets = self.targets(ctx)?;
        let baseline = self.baseline.as_ref().map(load_baseline).transpose()?;
        let info = docker::info()?;
        let inspected = self.inspect(&mut targets)?;
        let wanted = wanted(&targets, &inspected);
        let local = self.local(ctx, &info);
        let (facts, mut stats) = measure::measure(
            local.store,
            &wanted,
            &local.cache,
            &local.options,
            &mut |w| warning!("{w}"),
        )?;
        let pushed = self.as_pushed(ctx, &info, &targets, &inspected, &facts)?;
        stats.seconds = started.elapsed().as_secs_f64();
        let measured = |t: &Target| {
            let stored = || inspected.get(&key(t)).and_then(|i| facts.get(&i.id));
            pushed.get(&key(t)).or_else(stored).cloned()
        };
        let engine = format!("{}, {}", info.server_version, info.store_name());
        let mut report = build_report(engine, &targets, &measured, baseline.as_deref());
        report.registry = self.measure_in_registry(&local)?;
        let shown = !wanted.is_empty() || report.registry.is_empty();
        let summary = shown.then(|| summary(wanted.len(), local.store, &stats));
        report.run = Some(stats);
        Ok(Measurement { report, summary })
    }

    fn local<'a>(&self, ctx: &Ctx, info: &'a docker::Info) -> Local<'a> {
        Local {
            store: Store::of(info),
            cache: cache::Cache::new(
                ctx.out_dir().join("sizes-cache"),
                !self.no_cache,
                !self.decompress,
            ),
            options: measure::Options {
                source: self.source,
                decompress: self.decompress,
                info,
            },
        }
    }

    /// The facts of each variant pushed with zstd, as such a push sends its layers, by [`key`].
    fn as_pushed(
        &self,
        ctx: &Ctx,
        info: &docker::Info,
        targets: &[Target],
        inspected: &BTreeMap<String, docker::ImageInspect>,
        facts: &BTreeMap<String, ImageFacts>,
    ) -> Result<BTreeMap<String, ImageFacts>> {
        let cache_dir = ctx.out_dir().join("sizes-cache").join("push");
        let options = push::PushOptions {
            cache_dir: &cache_dir,
            read_cache: !self.no_cache,
            source: self.source,
            docker_root_dir: &info.docker_root_dir,
        };
        let mut pushed = BTreeMap::new();
        for t in targets.iter().filter(|t| t.push_zstd) {
            let Some(inspect) = inspected.get(&key(t)) else {
                continue;
            };
            let (Some(f), false) = (facts.get(&inspect.id), pushed.contains_key(&key(t))) else {
                continue;
            };
            let platform = t.platform.clone().unwrap_or_else(|| inspect.platform());
            let zstd = push::as_zstd_push(f, &t.image, &platform, &options)
                .with_context(|| format!("sizing {} as pushed", t.name))?;
            pushed.insert(key(t), zstd);
        }
        Ok(pushed)
    }

    /// The `--image` references read from their registry, each platform `--platform` names
    /// (all without it), with the unpacked size of a local copy.
    fn measure_in_registry(&self, local: &Local) -> Result<Vec<registry::RegistryEntry>> {
        let references = self
            .images
            .iter()
            .filter(|i| registry::is_registry_reference(i));
        let mut entries = Vec::new();
        for reference in references {
            progress!("sizes: reading {reference} from its registry");
            let mut entry = registry::measure(reference, &self.platform)?;
            local_unpacked(reference, local, &mut entry);
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The tables (and charts) on stdout and in the step summary; the JSON report saved.
    fn render(&self, report: &Report) -> Result<()> {
        let sections = sections(report, self.layers);
        let markdown = render::markdown(report, &sections);
        let text = || report::sections_text(&sections);
        report::emit_rendered(
            self.format,
            text,
            || markdown.clone(),
            report::Kind::Sizes,
            report,
        )?;
        report::step_summary("Image sizes", &markdown);
        if let Some(path) = &self.save {
            let json = report::to_json(report::Kind::Sizes, report)?;
            report::write_atomic(path, json.as_bytes())
                .with_context(|| format!("saving the report to {}", crate::util::shown(path)))?;
        }
        Ok(())
    }
}

/// One image to measure per image ID (a variant and an `--image` may name the same).
fn wanted<'a>(
    targets: &'a [Target],
    inspected: &'a BTreeMap<String, docker::ImageInspect>,
) -> Vec<Wanted<'a>> {
    let mut wanted: Vec<Wanted> = Vec::new();
    for t in targets {
        let Some(inspect) = inspected.get(&key(t)) else {
            continue;
        };
        if !wanted.iter().any(|w| w.inspect.id == inspect.id) {
            wanted.push(Wanted {
                reference: &t.image,
                inspect,
                platform: t.platform.as_deref(),
            });
        }
    }
    wanted
}

/// The unpacked size of a registry image's local copy, on the row of its platform. On its own:
/// a copy that cannot be measured costs only that figure, with a warning.
fn local_unpacked(reference: &str, local: &Local, entry: &mut registry::RegistryEntry) {
    let Ok(Some(inspect)) =
        docker::image_inspect(&[reference.to_string()]).map(|mut found| found.remove(reference))
    else {
        return;
    };
    let wanted = [Wanted {
        reference,
        inspect: &inspect,
        platform: None,
    }];
    let measured = measure::measure(
        local.store,
        &wanted,
        &local.cache,
        &local.options,
        &mut |w| warning!("{w}"),
    );
    match measured {
        Ok((facts, _)) => {
            let here = registry::platform_of(
                &inspect.os,
                &inspect.architecture,
                inspect.variant.as_deref(),
            );
            let unpacked = facts.get(&inspect.id).map(|f| f.unpacked());
            for p in entry.platforms.iter_mut().filter(|p| p.platform == here) {
                p.unpacked = unpacked;
            }
        }
        Err(err) => warning!(
            "the unpacked size of {reference} is not shown: its local copy could not be \
             measured ({err:#})"
        ),
    }
}

/// Warnings for sizes near a budget; exit 1 over a budget, 2 for an image not measured.
fn verdict(report: &Report) -> Result<()> {
    let findings = |level: Level| {
        report
            .images
            .iter()
            .flat_map(|e| &e.findings)
            .filter(move |f| f.level == level)
            .map(|f| f.message.as_str())
    };
    for warning in findings(Level::Warning) {
        warning!("{warning}");
    }
    let over: Vec<&str> = findings(Level::Over).collect();
    let missing: Vec<String> = report
        .images
        .iter()
        .filter(|e| e.status == Status::NotBuilt)
        .map(|e| format!("{} ({})", e.name, e.hint.as_deref().unwrap_or("not built")))
        .collect();
    match (over.is_empty(), missing.is_empty()) {
        (true, true) => Ok(()),
        (true, false) => bail!("not measured: {}", missing.join(", ")),
        (false, true) => Err(CheckFailed(format!("over budget: {}", over.join("; "))).into()),
        (false, false) => Err(CheckFailed(format!(
            "over budget: {}; also not measured: {}",
            over.join("; "),
            missing.join(", ")
        ))
        .into()),
    }
}
