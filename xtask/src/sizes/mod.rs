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

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use std::collections::BTreeMap;
use std::time::Instant;

use crate::config::Budget;
use crate::docker;
use crate::output::warning;
use crate::report::{self, Format};
use crate::util::{CheckFailed, Ctx};
pub(crate) use content::{image_documents, ContentStore};
pub use facts::Stats;
use facts::{ImageFacts, Store, Wanted};
use judge::{build_report, load_baseline, Level, Status, Target};
pub(crate) use layout::{layer_history, HistoryDoc, ManifestDoc};
pub use render::instruction;
use render::{sections, summary};

#[derive(clap::Args)]
pub struct Args {
    /// Variants to measure (default: every variant of images.toml, unless --image is given).
    variants: Vec<String>,
    /// Measure these platforms of each image (comma-separated or repeated), one row each, from
    /// a multi-platform image (default: a variant's `platforms` when it names several).
    #[arg(long, value_delimiter = ',', value_name = "PLATFORM")]
    platform: Vec<String>,
    /// Also measure this image (repeatable; no budget): a local image, or `REGISTRY/IMAGE:TAG`
    /// (a host with a dot or a port) read from the registry's manifests without pulling, per
    /// platform, compressed as pushed; unpacked too where the same image is also local.
    #[arg(long = "image", value_name = "REF")]
    images: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the JSON report to FILE (what `--format json` prints).
    #[arg(long, value_name = "FILE")]
    save: Option<Utf8PathBuf>,
    /// Show the change against an earlier JSON report (from --save or --format json).
    #[arg(long, value_name = "FILE")]
    baseline: Option<Utf8PathBuf>,
    /// Show the N largest layers of each image with the instruction that made them.
    #[arg(long, value_name = "N")]
    layers: Option<usize>,
    /// Measure again even when the sizes of an image ID are cached (and refresh the cache).
    #[arg(long)]
    no_cache: bool,
    /// Where to read the layers from.
    #[arg(long, value_enum, default_value_t = measure::Source::Auto)]
    source: measure::Source,
    /// Decompress every gzip layer instead of reading large layers' unpacked length from their
    /// gzip trailer (slower; facts cached from trailers are measured again).
    #[arg(long)]
    decompress: bool,
}

impl Args {
    /// The tables of the Markdown report, as [`render::sections`] makes them: the sizes (a row
    /// per variant named), the registry's images, the largest layers.
    pub fn report_shape(&self) -> report::Shape {
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
        report::Shape {
            tables,
            chart: false,
        }
    }
}

/// How a target's image is looked up: its reference, with ` @ <platform>` for one platform.
fn key(t: &Target) -> String {
    match &t.platform {
        Some(p) => format!("{} @ {p}", t.image),
        None => t.image.clone(),
    }
}

impl Args {
    fn targets(&self, ctx: &Ctx) -> Result<Vec<Target>> {
        let mut targets = Vec::new();
        if !self.variants.is_empty() || self.images.is_empty() {
            let config = ctx.config()?;
            let variants = if self.variants.is_empty() {
                config.variants.iter().collect()
            } else {
                config.select(&self.variants, false)?
            };
            for v in variants {
                let platforms: Vec<Option<String>> = match (&self.platform[..], &v.platforms[..]) {
                    ([], [_, _, ..]) => v.platforms.iter().cloned().map(Some).collect(),
                    ([], _) => vec![None],
                    (given, _) => given.iter().cloned().map(Some).collect(),
                };
                for platform in platforms {
                    targets.push(Target {
                        name: v.name.clone(),
                        variant: Some(v.name.clone()),
                        image: v.image_ref(),
                        budget: v.budget.for_platform(platform.as_deref()),
                        platform,
                        push_zstd: v.push_compression == Some(crate::config::Compression::Zstd),
                    });
                }
            }
        }
        for image in self
            .images
            .iter()
            .filter(|i| !registry::is_registry_reference(i))
        {
            let platforms: Vec<Option<String>> = if self.platform.is_empty() {
                vec![None]
            } else {
                self.platform.iter().cloned().map(Some).collect()
            };
            for platform in platforms {
                targets.push(Target {
                    name: image.clone(),
                    variant: None,
                    image: image.clone(),
                    platform,
                    budget: Budget::default(),
                    push_zstd: false,
                });
            }
        }
        Ok(targets)
    }

    /// The `--image` references read from their registry; a local copy of one is measured for
    /// its unpacked size (on its own: a copy that cannot be measured costs only that figure).
    fn measure_in_registry(
        &self,
        store: Store,
        cache: &cache::Cache,
        options: &measure::Options,
    ) -> Result<Vec<registry::RegistryEntry>> {
        let mut entries = Vec::new();
        for reference in self
            .images
            .iter()
            .filter(|i| registry::is_registry_reference(i))
        {
            crate::util::progress!("sizes: reading {reference} from its registry");
            let mut entry = registry::measure(reference)?;
            let local = docker::image_inspect(std::slice::from_ref(reference))?;
            if let Some(inspect) = local.get(reference) {
                let wanted = [Wanted {
                    reference,
                    inspect,
                    platform: None,
                }];
                match measure::measure(store, &wanted, cache, options, &mut |w| {
                    warning!("{w}");
                }) {
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
                        "the unpacked size of {reference} is not shown: its local copy \
                         could not be measured ({err:#})"
                    ),
                }
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    /// What the engine knows of each target's image, keyed by [`key`]; a variant's platform
    /// that was not built is dropped from `targets` (its configured platforms are measured as far
    /// as they exist locally) unless `--platform` asked for it or none of them exists.
    fn inspect(&self, targets: &mut Vec<Target>) -> Result<BTreeMap<String, docker::ImageInspect>> {
        let mut refs: Vec<String> = Vec::new();
        for t in targets.iter().filter(|t| t.platform.is_none()) {
            if !refs.contains(&t.image) {
                refs.push(t.image.clone());
            }
        }
        let mut found = docker::image_inspect(&refs)?;
        for t in targets.iter().filter(|t| t.platform.is_some()) {
            let platform = t.platform.as_deref().unwrap_or_default();
            if let Some(i) = docker::image_inspect_platform(&t.image, platform)? {
                found.insert(key(t), i);
            }
        }
        if self.platform.is_empty() {
            let present = |t: &Target| found.contains_key(&key(t));
            let mut keep = Vec::new();
            for t in targets.iter() {
                let siblings = || targets.iter().filter(|s| s.name == t.name);
                if t.platform.is_none() || present(t) || !siblings().any(present) {
                    // One "not built" row for an image none of whose platforms exists.
                    if !present(t) && keep.iter().any(|k: &Target| k.name == t.name) {
                        continue;
                    }
                    keep.push(t.clone());
                }
            }
            *targets = keep;
        }
        Ok(found)
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let started = Instant::now();
        let mut targets = self.targets(ctx)?;
        for p in &self.platform {
            crate::config::check_platform(p).with_context(|| format!("--platform {p}"))?;
        }
        let baseline = self.baseline.as_ref().map(load_baseline).transpose()?;

        let info = docker::info()?;
        let store = Store::of(&info);
        let inspected = self.inspect(&mut targets)?;
        let mut wanted: Vec<Wanted> = Vec::new();
        for t in &targets {
            if let Some(inspect) = inspected.get(&key(t)) {
                if !wanted.iter().any(|w| w.inspect.id == inspect.id) {
                    wanted.push(Wanted {
                        reference: &t.image,
                        inspect,
                        platform: t.platform.as_deref(),
                    });
                }
            }
        }
        let cache = cache::Cache::new(
            ctx.out_dir().join("sizes-cache"),
            !self.no_cache,
            !self.decompress,
        );
        let options = measure::Options {
            source: self.source,
            decompress: self.decompress,
            info: &info,
        };
        let (facts, mut stats) = measure::measure(store, &wanted, &cache, &options, &mut |w| {
            warning!("{w}");
        })?;
        stats.seconds = started.elapsed().as_secs_f64();

        // Variants pushed with zstd: their layers as such a push sends them.
        let push_cache = ctx.out_dir().join("sizes-cache").join("push");
        let mut pushed: BTreeMap<String, ImageFacts> = BTreeMap::new();
        for t in targets.iter().filter(|t| t.push_zstd) {
            let Some(inspect) = inspected.get(&key(t)) else {
                continue;
            };
            let Some(f) = facts.get(&inspect.id) else {
                continue;
            };
            if let std::collections::btree_map::Entry::Vacant(slot) = pushed.entry(key(t)) {
                let platform = t.platform.clone().unwrap_or_else(|| inspect.platform());
                let options = push::PushOptions {
                    cache_dir: &push_cache,
                    read_cache: !self.no_cache,
                    source: self.source,
                    docker_root_dir: &info.docker_root_dir,
                };
                let zstd = push::as_zstd_push(f, &t.image, &platform, &options)
                    .with_context(|| format!("sizing {} as pushed", t.name))?;
                slot.insert(zstd);
            }
        }
        stats.seconds = started.elapsed().as_secs_f64();
        let measured = |t: &Target| {
            pushed.get(&key(t)).cloned().or_else(|| {
                inspected
                    .get(&key(t))
                    .and_then(|i| facts.get(&i.id))
                    .cloned()
            })
        };
        let engine = format!("{}, {}", info.server_version, info.store_name());
        let mut report = build_report(engine, &targets, &measured, baseline.as_deref());
        report.run = Some(stats.clone());
        report.registry = self.measure_in_registry(store, &cache, &options)?;

        let sections = sections(&report, self.layers);
        report::emit_sections(self.format, &sections, report::Kind::Sizes, &report)?;
        report::step_summary("Image sizes", &report::sections_markdown(&sections));
        if let Some(path) = &self.save {
            let json = report::to_json(report::Kind::Sizes, &report)?;
            report::write_atomic(path, json.as_bytes())
                .with_context(|| format!("saving the report to {path}"))?;
        }
        if !wanted.is_empty() || report.registry.is_empty() {
            crate::util::progress!("{}", summary(wanted.len(), store, &stats));
        }

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
        if !over.is_empty() {
            let mut msg = format!("over budget: {}", over.join("; "));
            if !missing.is_empty() {
                msg.push_str(&format!("; also not measured: {}", missing.join(", ")));
            }
            return Err(CheckFailed(msg).into());
        }
        if !missing.is_empty() {
            bail!("not measured: {}", missing.join(", "));
        }
        Ok(())
    }
}
