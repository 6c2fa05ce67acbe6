//! The steps of a test run that start processes: compiling the tests, the engine state the test
//! binaries share, and running the binaries side by side.

use anyhow::{Context, Result};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::plan::{self, Job, Outcome, Scope};
use super::{RUN_DIR_ENV, RUN_ENV};
use crate::cleanup::Guard;
use crate::ctx::{Ctx, TempDir};
use crate::docker;
use crate::emulation;
use crate::output::{message, progress, warning};
use crate::process::Cmd;
use crate::reclaim::{self, TEST_LABEL};
use crate::util;

/// How often the run says which binaries are still running.
const HEARTBEAT: Duration = Duration::from_secs(60);

/// The Cargo that runs `cargo xtask` (so the same toolchain), else the one on PATH.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Compiles the scope's tests (Cargo's progress and diagnostics on stderr) and lists what to run,
/// each with `args`; None when they do not compile.
pub(crate) fn compile(ctx: &Ctx, scope: Scope, args: &[String]) -> Result<Option<Vec<Job>>> {
    let cargo = cargo();
    let compile = plan::compile_args(scope);
    progress!("cargo {}", compile.join(" "));
    let out = Cmd::new(&cargo)
        .args(&compile)
        .dir(&ctx.root)
        .output_showing_progress()
        .context("compiling the tests")?;
    if !out.status.success() || !build_bins(&cargo, ctx, scope)? {
        return Ok(None);
    }
    let jobs = plan::binaries(&String::from_utf8_lossy(&out.stdout), args)?;
    Ok(Some(jobs))
}

/// Builds the binaries the tests run through Cargo ([`plan::bins_args`]); false when they do not
/// compile.
fn build_bins(cargo: &str, ctx: &Ctx, scope: Scope) -> Result<bool> {
    let Some(args) = plan::bins_args(scope) else {
        return Ok(true);
    };
    progress!("cargo {}", args.join(" "));
    let status = Cmd::new(cargo)
        .args(&args)
        .dir(&ctx.root)
        .stream()
        .context("compiling the binaries the tests run")?;
    Ok(status.success())
}

/// What the test binaries of a run share: its ID and the directory where they note the fixture
/// images they built; the images are removed when it drops, and on Ctrl-C.
pub(crate) struct Shared {
    pub(crate) id: String,
    dir: TempDir,
    _images: Guard,
}

impl Shared {
    pub(crate) fn new(ctx: &Ctx) -> Result<Shared> {
        let id = util::unique_suffix();
        let dir = TempDir::new(ctx, "test-run")?;
        let of_run = id.clone();
        let images = Guard::new(move || remove_fixtures(&of_run));
        Ok(Shared {
            id,
            dir,
            _images: images,
        })
    }

    /// The environment that tells a test binary it is part of this run.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        vec![
            (RUN_ENV.to_string(), self.id.clone()),
            (RUN_DIR_ENV.to_string(), self.dir.path().to_string()),
        ]
    }
}

/// The fixture images the test binaries of run `id` built and shared (its test label): their
/// tags, then the images themselves, in case a tag moved off one and left it without a name.
fn remove_fixtures(id: &str) {
    let Ok(images) = docker::images_labelled(&[TEST_LABEL]) else {
        return;
    };
    let of_run: Vec<_> = images
        .into_iter()
        .filter(|i| {
            let labels = i.config.labels.as_ref();
            labels.and_then(|l| l.get(TEST_LABEL)).map(String::as_str) == Some(id)
        })
        .collect();
    let tags = of_run.iter().flat_map(|i| i.repo_tags.iter().cloned());
    let refs: Vec<String> = tags.chain(of_run.iter().map(|i| i.id.clone())).collect();
    if let Err(err) = docker::remove_images(&refs) {
        warning!("removing the run's fixture images: {err:#}");
    }
}

/// The offline base for the engine's own platform, built when missing (every test binary starts
/// from it; the tests that need another platform build that themselves).
pub(crate) fn ensure_base(ctx: &Ctx) {
    let image = match ctx.config() {
        Ok(config) => config.base.image.clone(),
        Err(err) => return warning!("{err:#}"),
    };
    if !matches!(docker::image_id(&image), Ok(None)) {
        return;
    }
    let host = emulation::host_platform();
    progress!("the offline base {image} is missing: `cargo xtask base --platform {host}`");
    let built = std::env::current_exe()
        .context("finding the xtask binary")
        .and_then(|exe| {
            Cmd::new(exe)
                .args(["base", "--platform", host])
                .dir(&ctx.root)
                .stream()
                .context("running `cargo xtask base`")
        });
    match built {
        Ok(status) if status.success() => {}
        Ok(status) => warning!("`cargo xtask base` failed ({status}): the tests that need it fail"),
        Err(err) => warning!("{err:#}"),
    }
}

/// Removes containers and fixture images whose owner is gone, when an engine answers (the app
/// tests need none). Best effort: the tests' verdict does not depend on it.
pub(crate) fn reclaim_stale() {
    if docker::versions().is_err() {
        return;
    }
    let reclaimed = reclaim::stale_containers().and_then(|_| reclaim::stale_test_images());
    if let Err(err) = reclaimed {
        warning!("{err:#}");
    }
}

/// Runs the jobs, at most `limit` at once, in [`plan::start_order`] and as
/// [`plan::compatible`] allows; says how each ended as it ends, with its whole output when it
/// failed.
pub(crate) fn jobs(jobs: &[Job], limit: usize, env: &[(String, String)]) -> Vec<Outcome> {
    let order = plan::start_order(jobs);
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let mut started = vec![false; jobs.len()];
    let mut running: Vec<(usize, Instant)> = Vec::new();
    let mut outcomes = Vec::new();
    std::thread::scope(|scope| loop {
        let ids: Vec<usize> = running.iter().map(|r| r.0).collect();
        if let Some(i) = plan::next_job(jobs, &order, &started, &ids, limit) {
            started[i] = true;
            running.push((i, Instant::now()));
            let (tx, job) = (tx.clone(), &jobs[i]);
            scope.spawn(move || tx.send((i, output(job, env))));
            continue;
        }
        if running.is_empty() {
            break;
        }
        match rx.recv_timeout(HEARTBEAT) {
            Ok((i, text)) => {
                let at = running.iter().position(|r| r.0 == i).unwrap_or(0);
                let (_, since) = running.remove(at);
                let (passed, text) = text;
                let outcome = Outcome {
                    name: jobs[i].name.clone(),
                    passed,
                    counts: plan::counts(&text),
                    started: since - start,
                    took: since.elapsed(),
                };
                say(&outcome, &text);
                outcomes.push(outcome);
            }
            Err(_) => heartbeat(jobs, &running),
        }
    });
    outcomes
}

/// Runs one job to its end: whether it passed, and its stdout and stderr as they came.
fn output(job: &Job, env: &[(String, String)]) -> (bool, String) {
    let mut cmd = Cmd::new(&job.program)
        .args(&job.args)
        .dir(&job.dir)
        .grace(Duration::from_secs(20));
    for (name, value) in env {
        cmd = cmd.env(name, value);
    }
    if let Some(threads) = plan::test_threads(&job.name) {
        cmd = cmd.env("RUST_TEST_THREADS", threads);
    }
    match cmd.output_merged() {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        Err(err) => (false, format!("{err:#}")),
    }
}

/// One line for a job that passed; for one that failed, its whole output between two lines.
fn say(outcome: &Outcome, text: &str) {
    let took = super::render::duration(outcome.took);
    let tests = super::render::tests(&outcome.counts);
    if outcome.passed {
        progress!("{}: ok, {tests} in {took}", outcome.name);
    } else {
        progress!("{}: FAILED ({tests}) in {took}; its output:", outcome.name);
        message(format_args!("{}", text.trim_end()));
        progress!("end of the output of {}", outcome.name);
    }
}

fn heartbeat(jobs: &[Job], running: &[(usize, Instant)]) {
    let names: Vec<String> = running
        .iter()
        .map(|(i, since)| {
            let took = super::render::duration(since.elapsed());
            format!("{} ({took})", jobs[*i].name)
        })
        .collect();
    progress!("still running: {}", names.join(", "));
}
