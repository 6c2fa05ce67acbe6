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
mod render;
mod save;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use std::time::Instant;

use crate::config::Budget;
use crate::docker;
use crate::report::{self, Format};
use crate::util::{CheckFailed, Ctx};
pub use facts::Stats;
use facts::{Store, Wanted};
use judge::{build_report, load_baseline, Level, Status, Target};
use render::{sections, summary};

#[derive(clap::Args)]
pub struct Args {
    /// Variants to measure (default: every variant of images.toml, unless --image is given).
    variants: Vec<String>,
    /// Also measure this local image (repeatable). It has no budget.
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
                targets.push(Target {
                    name: v.name.clone(),
                    variant: Some(v.name.clone()),
                    image: v.image_ref(),
                    budget: v.budget.clone(),
                });
            }
        }
        for image in &self.images {
            targets.push(Target {
                name: image.clone(),
                variant: None,
                image: image.clone(),
                budget: Budget::default(),
            });
        }
        Ok(targets)
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let started = Instant::now();
        let targets = self.targets(ctx)?;
        let baseline = self.baseline.as_ref().map(load_baseline).transpose()?;

        let info = docker::info(&ctx.sh)?;
        let store = Store::of(&info);
        let mut refs: Vec<String> = Vec::new();
        for t in &targets {
            if !refs.contains(&t.image) {
                refs.push(t.image.clone());
            }
        }
        let inspected = docker::image_inspect(&ctx.sh, &refs)?;
        let wanted: Vec<Wanted> = refs
            .iter()
            .filter_map(|r| {
                inspected.get(r).map(|inspect| Wanted {
                    reference: r,
                    inspect,
                })
            })
            .collect();
        let cache = cache::Cache::new(
            ctx.out_dir().join("sizes-cache"),
            !self.no_cache,
            !self.decompress,
        );
        let options = measure::Options {
            source: self.source,
            decompress: self.decompress,
            info: &info,
            sh: &ctx.sh,
        };
        let (facts, mut stats) = measure::measure(store, &wanted, &cache, &options, &mut |w| {
            eprintln!("warning: {w}");
        })?;
        stats.seconds = started.elapsed().as_secs_f64();

        let measured = |image: &str| inspected.get(image).and_then(|i| facts.get(&i.id)).cloned();
        let engine = format!("{}, {}", info.server_version, info.store_name());
        let mut report = build_report(engine, &targets, &measured, baseline.as_deref());
        report.run = Some(stats.clone());

        let sections = sections(&report, self.layers);
        report::emit_sections(self.format, &sections, &report)?;
        report::step_summary("Image sizes", &report::sections_markdown(&sections));
        if let Some(path) = &self.save {
            let json = serde_json::to_vec_pretty(&report).context("serializing the report")?;
            report::write_atomic(path, &json)
                .with_context(|| format!("saving the report to {path}"))?;
        }
        crate::util::progress!("{}", summary(wanted.len(), store, &stats));

        let findings = |level: Level| {
            report
                .images
                .iter()
                .flat_map(|e| &e.findings)
                .filter(move |f| f.level == level)
                .map(|f| f.message.as_str())
        };
        for warning in findings(Level::Warning) {
            eprintln!("warning: {warning}");
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
