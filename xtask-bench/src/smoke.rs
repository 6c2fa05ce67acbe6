//! `cargo xtask bench smoke`: runs the smoke test of `cargo xtask smoke` (the library's
//! `smoke::Args::outcomes`) several times and judges its latencies against the smoke's targets: healthy sooner than the
//! image's own HEALTHCHECK interval (the run-time override probes every 500 ms while starting),
//! and the verdict within 2 s of the first healthy answer. These were timed assertions in the
//! smoke tests, which a loaded machine failed; here they are measured and reported.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::time::Instant;

use crate::report::median;
use crate::report::{publish, target, targets_section, Check, Machine, Rendered};
use xtask::ctx::Ctx;
use xtask::docker;
use xtask::output::progress;
use xtask::report::{Format, Section, Table};
use xtask::smoke;

#[derive(clap::Args)]
pub struct SmokeArgs {
    /// The variant to smoke-test (`cargo xtask config` lists them).
    variant: String,
    /// Test this image instead of the variant's `<image>:<variant>`.
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// Smokes to run; the medians are judged.
    #[arg(long, default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=50), allow_hyphen_values = true)]
    runs: u32,
    /// Target: the verdict at most this many seconds after the first healthy answer (median).
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS",
          value_parser = target, allow_hyphen_values = true)]
    max_verdict_secs: f64,
    /// An extra label KEY=VALUE on the smoke containers (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// One smoke.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub passed: bool,
    /// The whole smoke test, wall clock.
    pub secs: f64,
    pub healthy_after_ms: Option<u64>,
    pub verdict_ms: Option<u64>,
    pub verdict_after_probe_ms: Option<u64>,
    pub checks: String,
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    pub variant: String,
    pub image: String,
    /// The image's HEALTHCHECK interval (None: it has none, xtask probes `smoke.http_probe`).
    pub healthcheck_interval_ms: Option<u64>,
    #[serde(flatten)]
    pub machine: Machine,
    pub runs: Vec<Run>,
    pub checks: Vec<Check>,
    pub pass: bool,
}

fn median_ms(runs: &[Run], field: impl Fn(&Run) -> Option<u64>) -> Option<f64> {
    let values: Vec<f64> = runs.iter().filter_map(&field).map(|ms| ms as f64).collect();
    median(&values)
}

/// The checks (pure): every smoke passed; healthy sooner than the image's own interval would
/// first probe; the verdict within `max_verdict_secs` of the first healthy observation and of
/// the end of the engine's first passing probe.
pub fn judge(runs: &[Run], interval_ms: Option<u64>, max_verdict_secs: f64) -> Vec<Check> {
    let passed = runs.iter().filter(|r| r.passed).count();
    let mut checks = vec![Check {
        name: "every smoke passed".into(),
        target: format!("{} of {}", runs.len(), runs.len()),
        measured: format!("{passed} of {}", runs.len()),
        pass: passed == runs.len(),
    }];
    let secs = |ms: f64| format!("{:.2} s", ms / 1000.0);
    let max_ms = max_verdict_secs * 1000.0;
    if let (Some(interval), Some(healthy)) = (interval_ms, median_ms(runs, |r| r.healthy_after_ms))
    {
        checks.push(Check {
            name: "healthy after (median)".into(),
            target: format!(
                "< {} (the image's HEALTHCHECK interval: its first probe)",
                secs(interval as f64)
            ),
            measured: secs(healthy),
            pass: healthy < interval as f64,
        });
    }
    match median_ms(runs, |r| r.verdict_ms) {
        Some(verdict) => checks.push(Check {
            name: "verdict after the first healthy answer (median)".into(),
            target: format!("≤ {}", secs(max_ms)),
            measured: secs(verdict),
            pass: verdict <= max_ms,
        }),
        None => checks.push(Check {
            name: "verdict after the first healthy answer (median)".into(),
            target: format!("≤ {}", secs(max_ms)),
            measured: "never healthy".into(),
            pass: false,
        }),
    }
    if let Some(after_probe) = median_ms(runs, |r| r.verdict_after_probe_ms) {
        checks.push(Check {
            name: "verdict after the first passing probe ended (median)".into(),
            target: format!("≤ {}", secs(max_ms)),
            measured: secs(after_probe),
            pass: after_probe <= max_ms,
        });
    }
    checks
}

impl SmokeArgs {
    /// The runs table (a row per run) and the targets.
    pub fn report_shape(&self) -> xtask::report::Shape {
        let rows: Vec<String> = (1..=self.runs).map(|i| i.to_string()).collect();
        crate::report::shape(&COLUMNS, &rows)
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let config = ctx.config()?;
        let variant = config.select(std::slice::from_ref(&self.variant), false)?[0];
        let info = docker::info()?;
        let image = self.image.clone().unwrap_or_else(|| variant.image_ref());
        let interval_ms = healthcheck_interval_ms(&image, &variant.name)?;
        let runs = self.smokes(ctx, &variant.name, &image)?;
        let checks = judge(&runs, interval_ms, self.max_verdict_secs);
        let report = SmokeReport {
            variant: variant.name.clone(),
            image,
            healthcheck_interval_ms: interval_ms,
            machine: Machine::of(&info),
            pass: checks.iter().all(|c| c.pass),
            runs,
            checks,
        };
        publish(
            self.format,
            "bench smoke",
            &Rendered::tables(render(&report)),
            xtask::report::Kind::BenchSmoke,
            &report,
            &report.checks,
        )
    }

    /// `--runs` smoke tests of `image`, each timed; a failed one is a run, not an error.
    fn smokes(&self, ctx: &Ctx, variant: &str, image: &str) -> Result<Vec<Run>> {
        let smoke = smoke::Args {
            variants: vec![variant.to_owned()],
            image: Some(image.to_owned()),
            label: self.label.clone(),
            ..smoke::Args::default()
        };
        let mut runs = Vec::new();
        for i in 1..=self.runs {
            progress!("bench smoke {variant}: run {i}/{}", self.runs);
            let started = Instant::now();
            let outcome = smoke.outcomes(ctx)?.into_iter().next();
            let outcome = outcome.context("the smoke test reported no variant")?;
            runs.push(Run::of(&outcome, started.elapsed().as_secs_f64()));
        }
        Ok(runs)
    }
}

impl Run {
    fn of(o: &smoke::Outcome, secs: f64) -> Run {
        Run {
            passed: o.passed,
            secs: (secs * 100.0).round() / 100.0,
            healthy_after_ms: o.healthy_after_ms,
            verdict_ms: o.verdict_ms,
            verdict_after_probe_ms: o.verdict_after_probe_ms,
            checks: format!("{}/{}", o.checks_passed, o.checks_total),
            failure: o.failure.clone(),
        }
    }
}

/// The image's HEALTHCHECK interval (None: it has none, and the smoke probes `smoke.http_probe`);
/// an image that does not exist is an error that says how to build it.
fn healthcheck_interval_ms(image: &str, variant: &str) -> Result<Option<u64>> {
    let Some(inspect) = docker::image_inspect(&[image.to_owned()])?.remove(image) else {
        bail!("{image} does not exist locally: run `cargo xtask build {variant}` first");
    };
    Ok(inspect
        .config
        .healthcheck
        .as_ref()
        .filter(|_| smoke::has_healthcheck(&inspect.config))
        .and_then(|h| h.interval)
        .map(|ns| ns / 1_000_000))
}

const COLUMNS: [&str; 7] = [
    "run",
    "result",
    "smoke",
    "healthy after",
    "verdict",
    "after probe",
    "checks",
];

fn render(report: &SmokeReport) -> Vec<Section> {
    let ms = |v: Option<u64>| v.map_or("-".into(), |ms| format!("{ms} ms"));
    let mut runs = Table::new(&COLUMNS).right_align(&[0, 2, 3, 4, 5]);
    for (i, r) in report.runs.iter().enumerate() {
        runs.row(vec![
            (i + 1).to_string(),
            if r.passed {
                "pass".into()
            } else {
                format!("FAIL: {}", r.failure.as_deref().unwrap_or("?"))
            },
            format!("{:.2} s", r.secs),
            ms(r.healthy_after_ms),
            ms(r.verdict_ms),
            ms(r.verdict_after_probe_ms),
            r.checks.clone(),
        ]);
    }
    vec![
        Section {
            title: Some(format!(
                "bench smoke: {} ({}): {}",
                report.variant,
                report.image,
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

    fn run(passed: bool, healthy: u64, verdict: u64, after_probe: Option<u64>) -> Run {
        Run {
            passed,
            secs: 3.0,
            healthy_after_ms: Some(healthy),
            verdict_ms: Some(verdict),
            verdict_after_probe_ms: after_probe,
            checks: "8/8".into(),
            failure: None,
        }
    }

    fn verdicts(checks: &[Check]) -> Vec<(&str, bool)> {
        checks.iter().map(|c| (c.name.as_str(), c.pass)).collect()
    }

    #[test]
    fn fast_passing_smokes_meet_every_target() {
        let runs = [
            run(true, 900, 400, Some(700)),
            run(true, 800, 300, Some(600)),
            run(true, 5_000, 9_000, Some(9_500)),
        ];
        assert_eq!(
            verdicts(&judge(&runs, Some(30_000), 2.0)),
            [
                ("every smoke passed", true),
                ("healthy after (median)", true),
                ("verdict after the first healthy answer (median)", true),
                ("verdict after the first passing probe ended (median)", true),
            ]
        );
    }

    #[test]
    fn slow_verdicts_failed_smokes_and_late_health_miss() {
        let runs = [
            run(true, 31_000, 2_500, Some(2_600)),
            run(false, 31_000, 2_100, None),
        ];
        assert!(verdicts(&judge(&runs, Some(30_000), 2.0))
            .iter()
            .all(|(_, pass)| !pass));
        // Without a HEALTHCHECK (xtask's own probe) there is no interval to beat.
        let checks = judge(&runs, None, 2.0);
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "every smoke passed",
                "verdict after the first healthy answer (median)",
                "verdict after the first passing probe ended (median)"
            ]
        );
    }
}
