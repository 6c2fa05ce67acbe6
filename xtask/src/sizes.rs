//! `cargo xtask sizes`: the compressed and unpacked size of each variant's image (or of named
//! images), computed the same way on the containerd and the classic image store, judged against
//! the budgets of images.toml, compared with an earlier report, with the heaviest layers.
//!
//! Story: targets (pure) → engine facts (`measure`, docker.rs) → judge and compare (pure) →
//! render (report.rs). docs/SIZES.md says how each number is computed.

mod content;
mod measure;
mod tar;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};
use std::time::Instant;

use crate::config::{human_size, Budget};
use crate::docker;
use crate::report::{self, Format, Table};
use crate::util::{CheckFailed, Ctx};
pub use measure::{ImageFacts, Layer, Method, Stats, Store};

/// The share of a budget from which a size draws a warning.
const WARN_PERCENT: u64 = 90;
/// Version of the JSON report's shape.
const REPORT_SCHEMA: u32 = 1;

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

/// One thing to measure: a variant's image, or an image named with --image.
#[derive(Debug, Clone)]
pub struct Target {
    /// The variant name, or the image reference for --image.
    pub name: String,
    pub variant: Option<String>,
    pub image: String,
    pub budget: Budget,
}

// ---------------------------------------------------------------------------------------------
// The report.

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    /// The engine's version and image store, e.g. `28.5.2, containerd snapshotter (overlayfs)`.
    pub engine: String,
    pub images: Vec<Entry>,
    /// How this run measured (absent from reports built in memory, e.g. in unit tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Stats>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    /// At or above 90 % of a budget.
    Warning,
    OverBudget,
    NotBuilt,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    pub variant: Option<String>,
    pub image: String,
    pub id: Option<String>,
    pub status: Status,
    /// Bytes: sum of the compressed layer blobs.
    pub compressed: Option<u64>,
    /// Bytes: sum of the uncompressed layer tars.
    pub unpacked: Option<u64>,
    pub method: Option<Method>,
    pub budget: BudgetOut,
    /// Budget warnings and overshoots.
    pub findings: Vec<Finding>,
    /// What to do when the image is not built.
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<Delta>,
    /// Every layer, base first.
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BudgetOut {
    pub compressed: Option<u64>,
    pub unpacked: Option<u64>,
}

/// The change against a baseline report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delta {
    /// False when the baseline has no entry of this name.
    pub in_baseline: bool,
    pub compressed: Option<Change>,
    pub unpacked: Option<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub before: u64,
    pub after: u64,
    /// after − before, bytes.
    pub bytes: i64,
    /// 100 × (after − before) / before; None when before is 0.
    pub percent: Option<f64>,
}

pub fn change(before: u64, after: u64) -> Change {
    let bytes = after as i64 - before as i64;
    Change {
        before,
        after,
        bytes,
        percent: (before != 0).then(|| bytes as f64 * 100.0 / before as f64),
    }
}

/// `+12.3 MB (+4.1 %)`, `-1.0 kB (-0.5 %)`, `0 B (0.0 %)`.
pub fn format_change(c: &Change) -> String {
    let sign = match c.bytes.signum() {
        1 => "+",
        -1 => "-",
        _ => "",
    };
    let size = format!("{sign}{}", human_size(c.bytes.unsigned_abs()));
    match c.percent {
        Some(p) if c.bytes == 0 => format!("{size} ({:.1} %)", p.abs()),
        Some(p) => format!("{size} ({sign}{:.1} %)", p.abs()),
        None => format!("{size} (new)"),
    }
}

/// The parts of an earlier report that a comparison needs; anything else in it is ignored.
#[derive(Debug, Deserialize)]
struct BaselineDoc {
    images: Vec<BaselineEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BaselineEntry {
    pub name: String,
    #[serde(default)]
    pub compressed: Option<u64>,
    #[serde(default)]
    pub unpacked: Option<u64>,
}

fn load_baseline(path: &Utf8PathBuf) -> Result<Vec<BaselineEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the baseline report {path}"))?;
    let doc: BaselineDoc = serde_json::from_str(&text).with_context(|| {
        format!("{path} is not a sizes report: write one with `cargo xtask sizes --save FILE`")
    })?;
    Ok(doc.images)
}

pub fn delta(
    baseline: &[BaselineEntry],
    name: &str,
    compressed: Option<u64>,
    unpacked: Option<u64>,
) -> Delta {
    let before = baseline.iter().find(|b| b.name == name);
    let pair = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) => Some(change(b, a)),
        _ => None,
    };
    Delta {
        in_baseline: before.is_some(),
        compressed: pair(before.and_then(|b| b.compressed), compressed),
        unpacked: pair(before.and_then(|b| b.unpacked), unpacked),
    }
}

// ---------------------------------------------------------------------------------------------
// Budgets.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// At or above 90 % of the budget.
    Warning,
    /// Above the budget.
    Over,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    pub message: String,
}

/// Judges one size against its budget: over when above it, a warning from 90 % of it.
pub fn judge(name: &str, kind: &str, size: u64, budget: Option<u64>) -> Option<Finding> {
    let budget = budget?;
    let percent = if budget == 0 {
        f64::INFINITY
    } else {
        size as f64 * 100.0 / budget as f64
    };
    if size > budget {
        Some(Finding {
            level: Level::Over,
            message: format!(
                "{name}: {kind} size {} exceeds its budget of {} by {} ({:.1} %)",
                human_size(size),
                human_size(budget),
                human_size(size - budget),
                percent - 100.0
            ),
        })
    } else if u128::from(size) * 100 >= u128::from(budget) * u128::from(WARN_PERCENT) {
        Some(Finding {
            level: Level::Warning,
            message: format!(
                "{name}: {kind} size {} is {:.1} % of its budget of {}",
                human_size(size),
                percent,
                human_size(budget)
            ),
        })
    } else {
        None
    }
}

/// Builds the report from the targets and what was measured (pure).
pub fn build_report(
    engine: String,
    targets: &[Target],
    measured: &dyn Fn(&str) -> Option<ImageFacts>,
    baseline: Option<&[BaselineEntry]>,
) -> Report {
    let mut images = Vec::new();
    for t in targets {
        let budget = BudgetOut {
            compressed: t.budget.compressed,
            unpacked: t.budget.unpacked,
        };
        let Some(facts) = measured(&t.image) else {
            let hint = match &t.variant {
                Some(v) => format!("not built: run `cargo xtask build {v}`"),
                None => format!("no image `{}` in the engine", t.image),
            };
            images.push(Entry {
                name: t.name.clone(),
                variant: t.variant.clone(),
                image: t.image.clone(),
                id: None,
                status: Status::NotBuilt,
                compressed: None,
                unpacked: None,
                method: None,
                budget,
                findings: Vec::new(),
                hint: Some(hint),
                delta: baseline.map(|b| delta(b, &t.name, None, None)),
                layers: Vec::new(),
            });
            continue;
        };
        let (compressed, unpacked) = (facts.compressed(), facts.unpacked());
        let findings: Vec<Finding> = [
            judge(&t.name, "compressed", compressed, t.budget.compressed),
            judge(&t.name, "unpacked", unpacked, t.budget.unpacked),
        ]
        .into_iter()
        .flatten()
        .collect();
        let status = match findings.iter().map(|f| f.level).max() {
            Some(Level::Over) => Status::OverBudget,
            Some(Level::Warning) => Status::Warning,
            None => Status::Ok,
        };
        images.push(Entry {
            name: t.name.clone(),
            variant: t.variant.clone(),
            image: t.image.clone(),
            id: Some(facts.id.clone()),
            status,
            compressed: Some(compressed),
            unpacked: Some(unpacked),
            method: Some(facts.method),
            budget,
            findings,
            hint: None,
            delta: baseline.map(|b| delta(b, &t.name, Some(compressed), Some(unpacked))),
            layers: facts.layers,
        });
    }
    Report {
        schema: REPORT_SCHEMA,
        engine,
        images,
        run: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering.

/// A Dockerfile instruction from a history `created_by`: BuildKit's `# buildkit` suffix, its
/// `|N ARG=value…` build-arg prefix and the `/bin/sh -c` of shell-form RUN are dropped.
pub fn instruction(created_by: &str) -> String {
    let mut s = created_by.trim();
    s = s.strip_suffix("# buildkit").unwrap_or(s).trim_end();
    if let Some(rest) = s.strip_prefix("/bin/sh -c #(nop) ") {
        return rest.trim().to_string();
    }
    if let Some(rest) = s.strip_prefix("/bin/sh -c ") {
        return format!("RUN {}", rest.trim());
    }
    if let Some(rest) = s.strip_prefix("RUN ") {
        let mut rest = rest;
        // `RUN |2 A=1 B=2 /bin/sh -c cmd`: N build args precede the command.
        if let Some(args) = rest.strip_prefix('|') {
            if let Some((n, tail)) = args.split_once(' ') {
                if let Ok(n) = n.parse::<usize>() {
                    let mut tail = tail;
                    let mut ok = true;
                    for _ in 0..n {
                        match tail.split_once(' ') {
                            Some((arg, next)) if arg.contains('=') => tail = next,
                            _ => {
                                ok = false;
                                break;
                            }
                        }
                    }
                    // Only when the arguments end where the shell command starts (values
                    // with spaces would make the count ambiguous).
                    if ok && tail.starts_with("/bin/sh -c ") {
                        rest = tail;
                    }
                }
            }
        }
        let rest = rest.strip_prefix("/bin/sh -c ").unwrap_or(rest);
        return format!("RUN {}", rest.trim());
    }
    s.to_string()
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The sizes table: one row per target.
pub fn sizes_table(report: &Report) -> Table {
    let with_delta = report.images.iter().any(|e| e.delta.is_some());
    let mut headers = vec![
        "variant",
        "image",
        "compressed",
        "unpacked",
        "budget",
        "status",
        "method",
    ];
    if with_delta {
        headers.extend(["Δ compressed", "Δ unpacked"]);
    }
    let mut right = vec![2, 3];
    if with_delta {
        right.extend([7, 8]);
    }
    let mut table = Table::new(&headers).right_align(&right);
    for e in &report.images {
        let size = |s: Option<u64>| s.map_or("-".to_string(), human_size);
        let mut budgets = Vec::new();
        for (kind, budget, size) in [
            ("compressed", e.budget.compressed, e.compressed),
            ("unpacked", e.budget.unpacked, e.unpacked),
        ] {
            if let Some(b) = budget {
                let share = match size {
                    Some(s) if b > 0 => format!(" ({:.0} %)", s as f64 * 100.0 / b as f64),
                    _ => String::new(),
                };
                budgets.push(format!("{kind} ≤ {}{share}", human_size(b)));
            }
        }
        let status = match e.status {
            Status::Ok => "ok".to_string(),
            Status::Warning => "warning".to_string(),
            Status::OverBudget => "OVER BUDGET".to_string(),
            Status::NotBuilt => e.hint.clone().unwrap_or_else(|| "not built".into()),
        };
        let mut row = vec![
            e.variant.clone().unwrap_or_else(|| "-".into()),
            e.image.clone(),
            size(e.compressed),
            size(e.unpacked),
            if budgets.is_empty() {
                "-".into()
            } else {
                budgets.join(", ")
            },
            status,
            e.method.map_or("-", |m| m.describe()).to_string(),
        ];
        if with_delta {
            let cell = |c: Option<&Change>| match (c, &e.delta) {
                (Some(c), _) => format_change(c),
                (None, Some(d)) if !d.in_baseline => "new".to_string(),
                _ => "-".to_string(),
            };
            let d = e.delta.as_ref();
            row.push(cell(d.and_then(|d| d.compressed.as_ref())));
            row.push(cell(d.and_then(|d| d.unpacked.as_ref())));
        }
        table.row(row);
    }
    table
}

/// The `n` largest layers of an image by unpacked size (then compressed), heaviest first.
pub fn largest_layers(layers: &[Layer], n: usize) -> Vec<(usize, &Layer)> {
    let mut indexed: Vec<(usize, &Layer)> = layers.iter().enumerate().collect();
    indexed.sort_by(|(ia, a), (ib, b)| {
        (b.unpacked, b.compressed)
            .cmp(&(a.unpacked, a.compressed))
            .then(ia.cmp(ib))
    });
    indexed.truncate(n);
    indexed
}

pub fn layers_table(layers: &[Layer], n: usize) -> Table {
    let mut table =
        Table::new(&["layer", "unpacked", "compressed", "created by"]).right_align(&[0, 1, 2]);
    for (i, layer) in largest_layers(layers, n) {
        let by = instruction(&layer.created_by);
        table.row(vec![
            format!("{}/{}", i + 1, layers.len()),
            human_size(layer.unpacked),
            human_size(layer.compressed),
            if by.is_empty() {
                "(no history)".into()
            } else {
                shorten(&by, 120)
            },
        ]);
    }
    table
}

/// The tables to print: sizes first, then the largest layers of each measured image.
fn sections(report: &Report, layers: Option<usize>) -> Vec<report::Section> {
    let mut out = vec![report::Section {
        title: None,
        table: sizes_table(report),
    }];
    if let Some(n) = layers {
        for e in report.images.iter().filter(|e| e.id.is_some()) {
            out.push(report::Section {
                title: Some(format!(
                    "{}: the {} largest of {} layers",
                    e.name,
                    n.min(e.layers.len()),
                    e.layers.len()
                )),
                table: layers_table(&e.layers, n),
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The command.

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
        let wanted: Vec<measure::Wanted> = refs
            .iter()
            .filter_map(|r| {
                inspected.get(r).map(|inspect| measure::Wanted {
                    reference: r,
                    inspect,
                })
            })
            .collect();
        let cache = measure::Cache::new(
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

/// The closing progress line: where the facts came from, and how the layers were sized.
pub fn summary(images: usize, store: Store, stats: &measure::Stats) -> String {
    let mut sources = Vec::new();
    if stats.from_cache > 0 {
        sources.push(format!("{} from the cache", stats.from_cache));
    }
    if stats.from_store > 0 {
        sources.push(format!("{} read from the content store", stats.from_store));
    }
    if stats.saved > 0 {
        sources.push(format!(
            "{} read with `docker save` ({})",
            stats.saved,
            human_size(stats.read)
        ));
    }
    let mut line = format!(
        "{images} image(s) on the {} store in {:.2} s",
        store_word(store),
        stats.seconds
    );
    if !sources.is_empty() {
        line.push_str(&format!(": {}", sources.join(", ")));
    }
    let mut sized = Vec::new();
    if stats.by_trailer > 0 {
        sized.push(format!("{} sized by gzip trailer", stats.by_trailer));
    }
    if stats.decompressed > 0 {
        sized.push(format!("{} decompressed", stats.decompressed));
    }
    if stats.processed > 0 {
        sized.push(format!("{} (de)compressed", human_size(stats.processed)));
    }
    if !sized.is_empty() {
        line.push_str(&format!("; layers: {}", sized.join(", ")));
    }
    line
}

fn store_word(store: Store) -> &'static str {
    match store {
        Store::Containerd => "containerd",
        Store::Classic => "classic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(id: &str, layers: &[(u64, u64, &str)]) -> ImageFacts {
        ImageFacts {
            version: measure::FACTS_VERSION,
            id: id.into(),
            store: Store::Containerd,
            method: Method::Stored,
            compressor: None,
            layers: layers
                .iter()
                .enumerate()
                .map(|(i, (c, u, by))| Layer {
                    digest: format!("sha256:{i}"),
                    diff_id: format!("sha256:d{i}"),
                    media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                    compressed: *c,
                    unpacked: *u,
                    unpacked_from: measure::UnpackedFrom::Decompressed,
                    created_by: (*by).into(),
                })
                .collect(),
        }
    }

    fn target(name: &str, compressed: Option<u64>, unpacked: Option<u64>) -> Target {
        Target {
            name: name.into(),
            variant: Some(name.into()),
            image: format!("voxserve:{name}"),
            budget: Budget {
                compressed,
                unpacked,
            },
        }
    }

    #[test]
    fn budgets_judge_over_warning_and_ok() {
        let over = judge("cpu", "unpacked", 950_000_000, Some(900_000_000)).unwrap();
        assert_eq!(over.level, Level::Over);
        assert_eq!(
            over.message,
            "cpu: unpacked size 950.0 MB exceeds its budget of 900.0 MB by 50.0 MB (5.6 %)"
        );
        let warn = judge("cpu", "compressed", 90, Some(100)).unwrap();
        assert_eq!(warn.level, Level::Warning);
        assert!(
            warn.message.contains("90.0 % of its budget"),
            "{}",
            warn.message
        );
        // Exactly the budget is within it (a warning), one byte more is over.
        assert_eq!(
            judge("x", "c", 100, Some(100)).unwrap().level,
            Level::Warning
        );
        assert_eq!(judge("x", "c", 101, Some(100)).unwrap().level, Level::Over);
        assert_eq!(judge("x", "c", 89, Some(100)), None);
        assert_eq!(judge("x", "c", 10_u64.pow(12), None), None);
    }

    #[test]
    fn changes_have_signs_and_percentages() {
        let grew = change(1_000_000, 1_100_000);
        assert_eq!(grew.bytes, 100_000);
        assert_eq!(format_change(&grew), "+100.0 kB (+10.0 %)");
        let shrank = change(2_000_000_000, 1_500_000_000);
        assert_eq!(shrank.bytes, -500_000_000);
        assert_eq!(format_change(&shrank), "-500.0 MB (-25.0 %)");
        assert_eq!(format_change(&change(5, 5)), "0 B (0.0 %)");
        assert_eq!(format_change(&change(0, 5)), "+5 B (new)");
        assert_eq!(
            change(3, 1).percent.map(|p| (p * 100.0).round()),
            Some(-6667.0)
        );
    }

    #[test]
    fn report_judges_each_target_and_names_missing_builds() {
        let targets = [
            target("cpu", None, Some(1000)),
            target("small", Some(500), None),
            target("cuda", None, None),
        ];
        let measured = |image: &str| match image {
            "voxserve:cpu" => Some(facts("sha256:a", &[(300, 950, "ADD x /")])),
            "voxserve:small" => Some(facts("sha256:b", &[(600, 700, "RUN y")])),
            _ => None,
        };
        let baseline = [BaselineEntry {
            name: "cpu".into(),
            compressed: Some(200),
            unpacked: Some(1000),
        }];
        let report = build_report("e".into(), &targets, &measured, Some(&baseline));
        let [cpu, small, cuda] = &report.images[..] else {
            panic!("{report:?}")
        };
        assert_eq!(cpu.status, Status::Warning);
        assert_eq!(small.status, Status::OverBudget);
        assert!(small.findings[0]
            .message
            .starts_with("small: compressed size 600 B exceeds"));
        assert_eq!(cpu.findings[0].level, Level::Warning);
        assert_eq!(cuda.status, Status::NotBuilt);
        assert_eq!(
            cuda.hint.as_deref(),
            Some("not built: run `cargo xtask build cuda`")
        );
        let d = cpu.delta.as_ref().unwrap();
        assert_eq!(d.compressed.as_ref().unwrap().bytes, 100);
        assert_eq!(d.unpacked.as_ref().unwrap().bytes, -50);
        assert!(!small.delta.as_ref().unwrap().in_baseline);

        let text = sizes_table(&report).render_text();
        assert!(text.contains("+100 B (+50.0 %)"), "{text}");
        assert!(text.contains("-50 B (-5.0 %)"), "{text}");
        assert!(text.contains("OVER BUDGET"), "{text}");
        assert!(text.contains("cargo xtask build cuda"), "{text}");
        assert!(text.contains("unpacked ≤ 1.0 kB (95 %)"), "{text}");
        let md = sizes_table(&report).render_markdown();
        assert!(
            md.lines().all(|l| l.starts_with('|') && l.ends_with('|')),
            "{md}"
        );

        // The JSON report reads back as a baseline.
        let json = serde_json::to_string(&report).unwrap();
        let doc: BaselineDoc = serde_json::from_str(&json).unwrap();
        assert_eq!(doc.images[0].compressed, Some(300));
        assert_eq!(doc.images[2].unpacked, None);
    }

    #[test]
    fn largest_layers_come_first_with_their_position() {
        let f = facts(
            "sha256:a",
            &[
                (5, 50, "ADD rootfs.tar / # buildkit"),
                (1, 10, "ENV"),
                (9, 90, "RUN |1 X=1 /bin/sh -c make # buildkit"),
            ],
        );
        let top = largest_layers(&f.layers, 2);
        assert_eq!(top.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [2, 0]);
        let text = layers_table(&f.layers, 2).render_text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[2].contains("3/3") && lines[2].ends_with("RUN make"),
            "{text}"
        );
        assert!(
            lines[3].contains("1/3") && lines[3].ends_with("ADD rootfs.tar /"),
            "{text}"
        );
    }

    #[test]
    fn summary_names_only_what_happened() {
        let stats = measure::Stats {
            seconds: 0.19,
            from_store: 4,
            by_trailer: 5,
            decompressed: 7,
            processed: 199_700,
            ..Default::default()
        };
        assert_eq!(
            summary(4, Store::Containerd, &stats),
            "4 image(s) on the containerd store in 0.19 s: 4 read from the content store; \
             layers: 5 sized by gzip trailer, 7 decompressed, 199.7 kB (de)compressed"
        );
        let cached = measure::Stats {
            seconds: 0.1,
            from_cache: 2,
            ..Default::default()
        };
        assert_eq!(
            summary(2, Store::Classic, &cached),
            "2 image(s) on the classic store in 0.10 s: 2 from the cache"
        );
    }

    #[test]
    fn instructions_lose_buildkit_noise() {
        assert_eq!(instruction("COPY a /a # buildkit"), "COPY a /a");
        assert_eq!(
            instruction("RUN /bin/sh -c apt-get update # buildkit"),
            "RUN apt-get update"
        );
        assert_eq!(
            instruction("RUN |2 TORCH=1 PY=3.13 /bin/sh -c uv pip install torch # buildkit"),
            "RUN uv pip install torch"
        );
        assert_eq!(
            instruction("/bin/sh -c #(nop)  CMD [\"bash\"]"),
            "CMD [\"bash\"]"
        );
        assert_eq!(instruction("/bin/sh -c make"), "RUN make");
        assert_eq!(
            instruction("RUN |1 A=has space /bin/sh -c x"),
            "RUN |1 A=has space /bin/sh -c x"
        );
        assert_eq!(instruction(""), "");
    }
}
