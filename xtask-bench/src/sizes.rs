//! `cargo xtask bench sizes`: times the measurement of `cargo xtask sizes` (the library's
//! `sizes::Args::measure`), for a first measurement (`--no-cache`) and a cached one, and judges both against
//! issue 6's target: under a second for the images given, when nothing needs compressing (the
//! containerd store read in place). With `--compare-save`, one first measurement through
//! `docker save` as well, the path taken when the content store is not readable.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::time::Instant;

use crate::report::{median, publish, target, targets_section, Check, Machine, Rendered};
use xtask::ctx::Ctx;
use xtask::docker;
use xtask::output::progress;
use xtask::report::{Format, Section, Table};
use xtask::sizes::{self, Stats};

#[derive(clap::Args)]
pub struct SizesArgs {
    /// Variants to measure (default: every variant of images.toml, unless --image is given).
    variants: Vec<String>,
    /// Also measure this local image (repeatable).
    #[arg(long = "image", value_name = "REF")]
    images: Vec<String>,
    /// Runs of each scenario; the median is judged.
    #[arg(long, default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=50), allow_hyphen_values = true)]
    runs: u32,
    /// Target: at most this many seconds (median) for a first and for a cached measurement.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS",
          value_parser = target, allow_hyphen_values = true)]
    max_secs: f64,
    /// Also time one first measurement through `docker save` (slow: it streams every layer).
    #[arg(long)]
    compare_save: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `sizes --no-cache`: every image measured again, layers read the fastest way available.
    First,
    /// `sizes`: every image ID found in the cache.
    Cached,
    /// `sizes --no-cache --source docker-save`.
    FirstDockerSave,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::First => "first measurement (--no-cache)",
            Scenario::Cached => "cached",
            Scenario::FirstDockerSave => "first measurement via docker save",
        }
    }

    /// `cargo xtask sizes` as this scenario runs it.
    fn sizes_args(self, variants: &[String], images: &[String]) -> sizes::Args {
        sizes::Args {
            variants: variants.to_vec(),
            images: images.to_vec(),
            no_cache: self != Scenario::Cached,
            source: match self {
                Scenario::FirstDockerSave => sizes::Source::DockerSave,
                _ => sizes::Source::Auto,
            },
            ..sizes::Args::default()
        }
    }
}

/// One scenario's runs.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: Scenario,
    /// Wall-clock seconds of each run (the measurement, without the process's start).
    pub secs: Vec<f64>,
    pub median: f64,
    /// What the last run did.
    pub run: Stats,
}

#[derive(Debug, Clone, Serialize)]
pub struct SizesReport {
    pub images: Vec<String>,
    /// Total unpacked bytes of the images measured.
    pub unpacked: u64,
    #[serde(flatten)]
    pub machine: Machine,
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
    pub pass: bool,
}

/// The checks: a first measurement that read the content store, and a cached one, each within
/// `max_secs`. On the classic store a first measurement gzip-compresses every layer, which the
/// target excludes, so only the cached one is judged there.
pub fn judge(rows: &[Row], containerd_store: bool, max_secs: f64) -> Vec<Check> {
    let mut checks = Vec::new();
    let find = |s: Scenario| rows.iter().find(|r| r.scenario == s);
    if let Some(first) = find(Scenario::First).filter(|_| containerd_store) {
        let in_place = first.run.saved == 0 && first.run.from_cache == 0;
        checks.push(Check {
            name: "first measurement reads the content store in place".into(),
            target: "no `docker save`, nothing cached".into(),
            measured: format!(
                "{} image(s) from the content store, {} via docker save, {} cached",
                first.run.from_store, first.run.saved, first.run.from_cache
            ),
            pass: in_place,
        });
        checks.push(Check {
            name: "first measurement time (median)".into(),
            target: format!("≤ {max_secs} s"),
            measured: format!("{:.2} s", first.median),
            pass: first.median <= max_secs,
        });
    }
    if let Some(cached) = find(Scenario::Cached) {
        checks.push(Check {
            name: "cached measurement time (median)".into(),
            target: format!("≤ {max_secs} s, every image from the cache"),
            measured: format!(
                "{:.2} s, {} image(s) from the cache",
                cached.median, cached.run.from_cache
            ),
            pass: cached.median <= max_secs && cached.run.from_store == 0 && cached.run.saved == 0,
        });
    }
    checks
}

impl SizesArgs {
    fn scenarios(&self) -> Vec<Scenario> {
        let mut scenarios = vec![Scenario::First, Scenario::Cached];
        if self.compare_save {
            scenarios.push(Scenario::FirstDockerSave);
        }
        scenarios
    }

    /// The runs table (a row per scenario) and the targets.
    pub fn report_shape(&self) -> xtask::report::Shape {
        let rows: Vec<&str> = self.scenarios().into_iter().map(Scenario::label).collect();
        crate::report::shape(&COLUMNS, &rows)
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let info = docker::info()?;
        let mut rows = Vec::new();
        let mut last = None;
        for scenario in self.scenarios() {
            let (row, report) = self.measure(ctx, scenario)?;
            rows.push(row);
            last = Some(report);
        }
        let images = last.map(|r| r.images).unwrap_or_default();
        let checks = judge(&rows, info.containerd_store(), self.max_secs);
        let report = SizesReport {
            images: images.iter().map(|e| e.name.clone()).collect(),
            unpacked: images.iter().filter_map(|e| e.unpacked).sum(),
            machine: Machine::of(&info),
            pass: checks.iter().all(|c| c.pass),
            rows,
            checks,
        };
        publish(
            self.format,
            "bench sizes",
            &Rendered::tables(render(&report)),
            xtask::report::Kind::BenchSizes,
            &report,
            &report.checks,
        )
    }

    /// One scenario's runs, each timed; the last run's report.
    fn measure(&self, ctx: &Ctx, scenario: Scenario) -> Result<(Row, sizes::Report)> {
        let args = scenario.sizes_args(&self.variants, &self.images);
        let runs = match scenario {
            Scenario::FirstDockerSave => 1,
            _ => self.runs,
        };
        let mut secs = Vec::new();
        let mut last = None;
        for i in 1..=runs {
            progress!("bench sizes: {} ({i}/{runs})", scenario.label());
            let started = Instant::now();
            let measured = args.measure(ctx)?;
            secs.push(started.elapsed().as_secs_f64());
            all_built(&measured.report)?;
            last = Some(measured.report);
        }
        let report = last.context("no run")?;
        let row = Row {
            scenario,
            median: median(&secs).unwrap_or(f64::NAN),
            secs,
            run: report.run.clone().unwrap_or_default(),
        };
        Ok((row, report))
    }
}

/// An image that is not built cannot be timed: an error that says how to build it.
fn all_built(report: &sizes::Report) -> Result<()> {
    match report
        .images
        .iter()
        .find(|e| e.status == sizes::Status::NotBuilt)
    {
        Some(e) => bail!(
            "{} is not built: build it first (`cargo xtask build {}`), or leave it out",
            e.name,
            e.name
        ),
        None => Ok(()),
    }
}

const COLUMNS: [&str; 5] = ["scenario", "median", "runs", "read", "layers sized"];

fn render(report: &SizesReport) -> Vec<Section> {
    let mut runs = Table::new(&COLUMNS).right_align(&[1]);
    for row in &report.rows {
        let r = &row.run;
        runs.row(vec![
            row.scenario.label().into(),
            format!("{:.2} s", row.median),
            row.secs
                .iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            if r.from_cache > 0 && r.from_store + r.saved == 0 {
                "cache".into()
            } else if r.saved > 0 {
                format!("docker save ({})", xtask::config::human_size(r.read))
            } else {
                "content store".into()
            },
            format!(
                "{} by gzip trailer, {} decompressed ({})",
                r.by_trailer,
                r.decompressed,
                xtask::config::human_size(r.processed)
            ),
        ]);
    }
    vec![
        Section {
            title: Some(format!(
                "bench sizes: {} image(s) ({}, {} unpacked): {}",
                report.images.len(),
                report.images.join(", "),
                xtask::config::human_size(report.unpacked),
                report.machine.describe()
            )),
            table: runs,
        },
        targets_section(&report.checks),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: Scenario, secs: &[f64], run: Stats) -> Row {
        Row {
            scenario,
            median: median(secs).unwrap_or(f64::NAN),
            secs: secs.to_vec(),
            run,
        }
    }

    fn verdicts(checks: &[Check]) -> Vec<bool> {
        checks.iter().map(|c| c.pass).collect()
    }

    #[test]
    fn fast_in_place_and_cached_runs_pass() {
        let first = Stats {
            from_store: 4,
            ..Stats::default()
        };
        let cached = Stats {
            from_cache: 4,
            ..Stats::default()
        };
        let rows = [
            row(Scenario::First, &[0.3, 0.2, 0.4], first),
            row(Scenario::Cached, &[0.1, 0.1, 0.2], cached),
        ];
        assert_eq!(verdicts(&judge(&rows, true, 1.0)), [true, true, true]);
        // On the classic store only the cached run is judged.
        assert_eq!(verdicts(&judge(&rows, false, 1.0)), [true]);
    }

    #[test]
    fn slow_or_docker_save_runs_fail() {
        let saved = Stats {
            saved: 4,
            ..Stats::default()
        };
        let rows = [row(Scenario::First, &[40.0], saved)];
        assert_eq!(verdicts(&judge(&rows, true, 1.0)), [false, false]);
        let not_cached = Stats {
            from_store: 1,
            from_cache: 3,
            ..Stats::default()
        };
        let rows = [row(Scenario::Cached, &[0.2], not_cached)];
        assert_eq!(verdicts(&judge(&rows, true, 1.0)), [false]);
    }
}
