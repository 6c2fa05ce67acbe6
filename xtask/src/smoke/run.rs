//! Run: start the planned container under a cleanup guard, wait until it is healthy (the engine's
//! HEALTHCHECK, or xtask's own HTTP probe), run the checks in it, and gather diagnostics on failure.
//! Every docker call goes through `crate::docker`; every verdict comes from `judge`.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::judge::{
    describe_exec, first_pass_end, http_status, judge_http, judge_state, not_healthy_within,
    CheckResult, PathsAnswer, StateVerdict,
};
use super::plan::{http_argv, plan, Check, HealthMode, Options, Plan};
use crate::cleanup::Guard;
use crate::config::{HttpCheck, Variant};
use crate::docker::{self, ExecOutput, HealthProbe, ImageConfig};
use crate::util::{self, progress};

/// How often the container's state is polled.
const POLL: Duration = Duration::from_millis(250);
/// Log lines shown on failure.
pub(crate) const LOG_LINES: usize = 50;
/// Checks run at the same time in one container.
const PARALLEL_CHECKS: usize = 4;

/// The result for one variant; `--format json` prints a list of these.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub(crate) variant: String,
    pub(crate) image: String,
    /// `--platform`, when given.
    pub(crate) platform: Option<String>,
    /// The timeouts' factor: 1 natively, more under emulation.
    pub(crate) slowdown: u32,
    pub(crate) container: Option<String>,
    pub passed: bool,
    /// From `docker run` to the first healthy observation.
    pub healthy_after_ms: Option<u64>,
    /// Verdict latency: from the first healthy observation to the verdict.
    pub verdict_ms: Option<u64>,
    /// From the end of the first passing health probe (the engine's clock) to the verdict.
    pub verdict_after_probe_ms: Option<u64>,
    pub checks_passed: usize,
    pub checks_total: usize,
    pub(crate) checks: Vec<CheckResult>,
    /// Why the variant failed, in one line.
    pub failure: Option<String>,
    /// The last health probes (from the engine, or xtask's own with `http_probe`).
    pub(crate) health_log: Vec<HealthProbe>,
    /// The last log lines of the container, on failure.
    pub(crate) logs: Option<String>,
    pub(crate) kept: bool,
}

enum Waited {
    Healthy {
        observed: Instant,
        probe_end: Option<SystemTime>,
    },
    Failed(String),
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Removes the container when dropped or on Ctrl-C / SIGTERM. A `docker run` still in flight
/// when a signal arrives is waited for (briefly), so the container it creates is removed too.
fn container_guard(name: &str, in_flight: Arc<AtomicBool>) -> Guard {
    let name = name.to_string();
    Guard::new(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while in_flight.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Err(err) = docker::remove_container(&name) {
            crate::output::notice(format_args!(
                "warning: {err:#}; remove it with `docker rm -f -v {name}`"
            ));
        }
    })
}

/// Smoke-tests one image: plan, start, wait, check, diagnose, remove (unless `keep`).
pub(crate) fn smoke_one(
    variant: &Variant,
    image: &str,
    config: &ImageConfig,
    opts: &Options,
    keep: bool,
) -> Result<Outcome> {
    let mut outcome = Outcome::new(variant, image, opts);
    let plan = match plan(variant, image, config, opts, &util::unique_suffix()) {
        Ok(plan) => plan,
        Err(reason) => {
            progress!("smoke {}: {reason}", variant.name);
            outcome.failure = Some(reason);
            return Ok(outcome);
        }
    };
    outcome.container = Some(plan.container.clone());
    outcome.checks_total = plan.checks.len();
    outcome.slowdown = plan.slowdown;
    progress!("{}", starting(&plan, variant, opts));

    let in_flight = Arc::new(AtomicBool::new(true));
    let guard = container_guard(&plan.container, in_flight.clone());
    let started = Instant::now();
    let run = docker::run_detached(&plan.run_args);
    in_flight.store(false, Ordering::SeqCst);
    run.with_context(|| format!("starting {} from {}", plan.container, plan.image))?;

    match wait_healthy(&plan, started, &mut outcome.health_log)? {
        Waited::Failed(reason) => outcome.failure = Some(reason),
        Waited::Healthy {
            observed,
            probe_end,
        } => check(&plan, config, started, observed, probe_end, &mut outcome)?,
    }
    outcome.passed = outcome.failure.is_none();
    if !outcome.passed {
        diagnose(&plan, &mut outcome);
    }
    progress!(
        "smoke {}: {} ({}/{} checks)",
        plan.variant,
        if outcome.passed { "passed" } else { "FAILED" },
        outcome.checks_passed,
        outcome.checks_total
    );
    if keep {
        guard.disarm();
        outcome.kept = true;
        progress!("{}", kept(&plan, opts));
    }
    Ok(outcome)
}

impl Outcome {
    /// Nothing done yet.
    fn new(variant: &Variant, image: &str, opts: &Options) -> Outcome {
        Outcome {
            variant: variant.name.clone(),
            image: image.to_string(),
            platform: opts.platform.clone(),
            slowdown: 1,
            container: None,
            passed: false,
            healthy_after_ms: None,
            verdict_ms: None,
            verdict_after_probe_ms: None,
            checks_passed: 0,
            checks_total: 0,
            checks: Vec::new(),
            failure: None,
            health_log: Vec::new(),
            logs: None,
            kept: false,
        }
    }
}

/// The progress line of a container being started, with its limits.
fn starting(plan: &Plan, variant: &Variant, opts: &Options) -> String {
    let smoke = &variant.smoke;
    let mut limits = String::new();
    if let Some(m) = &smoke.memory {
        limits.push_str(&format!(", memory {m}"));
    }
    if let Some(c) = &smoke.cpus {
        limits.push_str(&format!(", cpus {c}"));
    }
    if plan.slowdown > 1 {
        limits.push_str(&format!(
            "; emulated: healthy within {} s, each check within {} s ({}x)",
            plan.timeout.as_secs(),
            plan.check_timeout.as_secs(),
            plan.slowdown
        ));
    }
    let platform = opts
        .platform
        .as_ref()
        .map_or(String::new(), |p| format!(" for {p}"));
    format!(
        "smoke {}: starting {} from {}{platform} (read-only, no capabilities{limits})",
        plan.variant, plan.container, plan.image
    )
}

/// Runs the checks in the healthy container and records their results and timings.
fn check(
    plan: &Plan,
    config: &ImageConfig,
    started: Instant,
    observed: Instant,
    probe_end: Option<SystemTime>,
    outcome: &mut Outcome,
) -> Result<()> {
    outcome.healthy_after_ms = Some(millis(observed - started));
    progress!(
        "smoke {}: healthy after {:.1} s; running {} checks",
        plan.variant,
        (observed - started).as_secs_f64(),
        plan.checks.len()
    );
    outcome.checks = run_checks(plan, config)?;
    outcome.verdict_ms = Some(millis(observed.elapsed()));
    outcome.verdict_after_probe_ms = probe_end
        .and_then(|end| SystemTime::now().duration_since(end).ok())
        .map(millis);
    outcome.checks_passed = outcome.checks.iter().filter(|c| c.passed).count();
    // The first line of what it saw: the error line says why, not only what.
    outcome.failure = outcome.checks.iter().find(|c| !c.passed).map(|c| {
        let saw = c.actual.lines().next().unwrap_or_default();
        format!(
            "check `{}` failed: expected {}, got {saw}",
            c.name, c.expected
        )
    });
    Ok(())
}

/// On failure: the engine's last probes (unless xtask probed itself) and the container's logs.
fn diagnose(plan: &Plan, outcome: &mut Outcome) {
    if plan.health == HealthMode::Engine {
        if let Ok(state) = docker::container_state(&plan.container) {
            outcome.health_log = state.health.and_then(|h| h.log).unwrap_or_default();
        }
    }
    outcome.logs = Some(
        docker::logs_tail(&plan.container, LOG_LINES)
            .unwrap_or_else(|e| format!("(cannot read the logs: {e:#})")),
    );
}

/// How to remove a kept container (and find its port).
fn kept(plan: &Plan, opts: &Options) -> String {
    let port = match opts.publish {
        Some(_) => format!(" (its port: `docker port {}`)", plan.container),
        None => String::new(),
    };
    format!(
        "smoke {}: kept container {}; remove it with `docker rm -f -v {}`{port}",
        plan.variant, plan.container, plan.container
    )
}

/// Polls the container until healthy, exited, unhealthy or out of time.
fn wait_healthy(plan: &Plan, started: Instant, own_log: &mut Vec<HealthProbe>) -> Result<Waited> {
    let deadline = started + plan.timeout;
    loop {
        let state = docker::container_state(&plan.container)?;
        match judge_state(&state, &plan.health) {
            StateVerdict::Healthy => {
                let log = state.health.and_then(|h| h.log).unwrap_or_default();
                return Ok(Waited::Healthy {
                    observed: Instant::now(),
                    probe_end: first_pass_end(&log),
                });
            }
            StateVerdict::Exited(why) | StateVerdict::Unhealthy(why) => {
                return Ok(Waited::Failed(why))
            }
            StateVerdict::Waiting => {}
        }
        if let HealthMode::Probe(path) = &plan.health {
            let start = SystemTime::now();
            let argv = http_argv("GET", plan.port, path, 0.0, Duration::from_secs(5));
            let out = docker::exec(&plan.container, None, &argv, Duration::from_secs(10))?;
            let check = HttpCheck {
                name: "http probe".into(),
                method: "GET".into(),
                path: path.clone(),
                status: 200,
                json: BTreeMap::new(),
                wav_seconds: None,
            };
            let result = judge_http(&check, &out);
            let ok = http_status(&out).is_some_and(|s| (200..300).contains(&s));
            own_log.push(HealthProbe {
                start: util::rfc3339(epoch_secs(start)),
                end: util::rfc3339(epoch_secs(SystemTime::now())),
                exit_code: if ok { 0 } else { 1 },
                output: result.actual,
            });
            if own_log.len() > 5 {
                own_log.remove(0);
            }
            if ok {
                return Ok(Waited::Healthy {
                    observed: Instant::now(),
                    probe_end: None,
                });
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Waited::Failed(not_healthy_within(plan.timeout, &state)));
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs the checks, a few at a time, and judges them; results keep the plan's order.
fn run_checks(plan: &Plan, config: &ImageConfig) -> Result<Vec<CheckResult>> {
    // A pool of PARALLEL_CHECKS workers, each taking the next check as it finishes one: a quick
    // check never waits for a slow one that happened to share its turn.
    let next = AtomicUsize::new(0);
    let outputs: Vec<Mutex<Option<Result<ExecOutput>>>> =
        plan.checks.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..PARALLEL_CHECKS.min(plan.checks.len()))
            .map(|_| {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(check) = plan.checks.get(i) else {
                        break;
                    };
                    let out = run_check(plan, check);
                    *outputs[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
                })
            })
            .collect();
        for worker in workers {
            if worker.join().is_err() {
                bail!("a check thread panicked");
            }
        }
        Ok(())
    })?;
    let mut results = Vec::new();
    for (check, slot) in plan.checks.iter().zip(outputs) {
        let out = slot
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .with_context(|| format!("check `{}` did not run", check.name()))?;
        let out = out.with_context(|| format!("running check `{}`", check.name()))?;
        results.push(check.judge(&out, config));
    }
    Ok(results)
}

fn run_check(plan: &Plan, check: &Check) -> Result<ExecOutput> {
    let Some(argv) = check.argv(plan.port, plan.check_timeout) else {
        return Ok(ExecOutput::default());
    };
    let out = docker::exec(&plan.container, check.user(), &argv, plan.check_timeout)?;
    match check {
        Check::ForbiddenPaths(paths) if out.missing_executable() => {
            forbidden_paths_without_python(plan, paths)
        }
        _ if out.missing_executable() => match check.fallback_argv() {
            Some(argv) => docker::exec(&plan.container, check.user(), &argv, plan.check_timeout),
            None => Ok(out),
        },
        _ => Ok(out),
    }
}

/// The forbidden-paths check for images without python3: `test -e P -o -L P` per path.
fn forbidden_paths_without_python(plan: &Plan, paths: &[String]) -> Result<ExecOutput> {
    let mut answer = PathsAnswer::default();
    for path in paths {
        let argv: Vec<String> = ["test", "-e", path, "-o", "-L", path]
            .map(String::from)
            .into();
        let out = docker::exec(&plan.container, Some("0"), &argv, plan.check_timeout)?;
        match out.code {
            0 => answer.present.push(path.clone()),
            1 => {}
            _ if out.missing_executable() => return Ok(out),
            _ => answer
                .unreadable
                .push(format!("{path} ({})", describe_exec(&out))),
        }
    }
    Ok(ExecOutput {
        code: 0,
        stdout: serde_json::to_string(&answer).context("serializing the path facts")?,
        ..ExecOutput::default()
    })
}
