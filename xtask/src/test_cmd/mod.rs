//! `cargo xtask test`: every test of the repository — the xtask's unit and integration tests
//! (against the real Docker engine) and the service's pytest suite in a hash-checked venv.
//!
//! The tests are compiled once; then the test binaries run side by side (at most `--jobs` at once,
//! the longest first, pairs that disturb each other apart: plan.rs), sharing the offline base and
//! the fixture images they build ([`RUN_ENV`]); at the end a table says where the time went.

use anyhow::Result;
use std::time::{Duration, Instant};

use crate::ctx::Ctx;
use crate::output;
use crate::report;
use crate::util::CheckFailed;

mod app;
mod plan;
mod render;
mod run;

use plan::Scope;

/// Names the `cargo xtask test` run a test binary is part of (`<pid>-<nanos>` of that process):
/// the binaries share the fixture images they build, under the run's labels (tests/common).
pub const RUN_ENV: &str = "XTASK_TEST_RUN";
/// The directory where the binaries of a run note the fixture images they built.
pub const RUN_DIR_ENV: &str = "XTASK_TEST_RUN_DIR";

#[derive(clap::Args)]
pub struct Args {
    /// Skip the Rust tests (unit and integration).
    #[arg(long)]
    skip_rust: bool,
    /// Skip the service's pytest suite.
    #[arg(long)]
    skip_app: bool,
    /// The contributor's loop, no image builds: the unit tests, the CLI and config tests, the docs
    /// checks and the app's pytest. No Docker engine needed.
    #[arg(long, conflicts_with = "skip_rust")]
    quick: bool,
    /// Only the xtask's unit tests and the docs checks: no Docker engine and no uv needed, so
    /// they run on any machine (CI runs them on Linux, macOS and Windows).
    #[arg(long, conflicts_with_all = ["skip_rust", "skip_app", "quick"])]
    unit: bool,
    /// How many test binaries run at once (default: the number of CPUs, plus one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Extra arguments for every test binary, e.g. a test name filter.
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

/// What ran, how long each phase took and what failed.
#[derive(Default)]
struct Record {
    phases: Vec<(String, Duration)>,
    outcomes: Vec<plan::Outcome>,
    tests_wall: Duration,
    failed: Vec<String>,
}

impl Record {
    fn time<T>(&mut self, phase: &str, step: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = step();
        self.phases.push((phase.to_string(), start.elapsed()));
        out
    }
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let scope = self.scope();
        let limit = self.limit();
        let mut record = Record::default();
        // What killed test runs left; at the end, what this run's test processes left.
        if scope == Scope::Full {
            record.time("reclaim", run::reclaim_stale);
        }
        if !self.skip_app && scope != Scope::Unit {
            if let Err(err) = record.time("app (pytest)", || app::run(ctx)) {
                if err.downcast_ref::<CheckFailed>().is_none() {
                    return Err(err);
                }
                record.failed.push("app (pytest)".into());
            }
        }
        if !self.skip_rust {
            rust_tests(ctx, scope, limit, &self.cargo_args, &mut record)?;
        }
        if scope == Scope::Full {
            record.time("reclaim", run::reclaim_stale);
        }
        report(&record, limit)?;
        if record.failed.is_empty() {
            Ok(())
        } else {
            Err(CheckFailed(format!("tests failed: {}", record.failed.join(", "))).into())
        }
    }

    fn scope(&self) -> Scope {
        match (self.unit, self.quick) {
            (true, _) => Scope::Unit,
            (false, true) => Scope::Quick,
            (false, false) => Scope::Full,
        }
    }

    fn limit(&self) -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.jobs.map_or(cpus + 1, usize::from)
    }
}

/// Compiles the scope's tests, prepares what the binaries share (the full run) and runs them.
fn rust_tests(
    ctx: &Ctx,
    scope: Scope,
    limit: usize,
    args: &[String],
    record: &mut Record,
) -> Result<()> {
    let Some(jobs) = record.time("compile", || run::compile(ctx, scope, args))? else {
        record.failed.push("xtask (compile)".into());
        return Ok(());
    };
    let shared = match scope {
        Scope::Full => Some(record.time("prepare", || {
            run::ensure_base(ctx);
            run::Shared::new(ctx)
        })?),
        Scope::Quick | Scope::Unit => None,
    };
    let env = shared.as_ref().map(run::Shared::env).unwrap_or_default();
    let start = Instant::now();
    record.outcomes = record.time("tests", || run::jobs(&jobs, limit, &env));
    record.tests_wall = start.elapsed();
    if let Some(shared) = shared {
        record.time("clean up", || drop(shared));
    }
    record.failed.extend(
        record
            .outcomes
            .iter()
            .filter(|o| !o.passed)
            .map(|o| o.name.clone()),
    );
    Ok(())
}

/// The time tables, on stdout and in the step summary.
fn report(record: &Record, limit: usize) -> Result<()> {
    let phases = render::phases(&record.phases);
    let mut text = phases.render_text();
    let mut markdown = phases.render_markdown();
    if !record.outcomes.is_empty() {
        let binaries = render::binaries(&record.outcomes);
        let line = render::overlap(&record.outcomes, record.tests_wall, limit);
        text.push_str(&format!("\n{}\n{line}\n", binaries.render_text()));
        markdown.push_str(&format!("\n{}\n{line}\n", binaries.render_markdown()));
    }
    report::step_summary("cargo xtask test: where the time went", &markdown);
    output::result(&text)
}
