//! `cargo xtask smoke <variant>… | --all`: starts each image under a hardened runtime, waits for
//! its HEALTHCHECK, runs the variant's checks from images.toml, and always removes the container.
//!
//! The story: inspect the image → [`plan`] (pure: refusal or `docker run` argv + checks) → run
//! detached under a cleanup guard → [`wait_healthy`] (polls the engine, judged by the pure
//! [`judge_state`]) → run the checks in the container (argv from [`Check::argv`], judged by the
//! pure `judge_*` functions) → render the summary.
//!
//! Health: the image's HEALTHCHECK command is kept but its timing is overridden at run time: the
//! whole `health_timeout` is a start period (failures do not count) probed every 500 ms, so the
//! first healthy answer is seen within ~0.75 s whatever the image's interval. An image without a
//! HEALTHCHECK is a failed check unless the variant sets `smoke.http_probe`: then xtask probes that
//! path itself from inside the container.
//!
//! Exit codes: 1 when a variant fails, including policy refusals (the image runs as root without
//! `--allow-root`, or has no HEALTHCHECK and no `http_probe`); 2 for usage and tool errors (e.g.
//! the image was never built).

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::cleanup::Guard;
use crate::config::{ExecCheck, HttpCheck, Variant};
use crate::docker::{self, ContainerState, ExecOutput, HealthProbe, ImageConfig};
use crate::report::{self, Format, Table};
use crate::util::{self, progress, CheckFailed, Ctx};

/// The label every smoke container carries; its value is the variant.
pub const LABEL: &str = "voxserve.xtask.smoke";
/// How often the container's state is polled.
const POLL: Duration = Duration::from_millis(250);
/// Probe interval while the container is starting (the whole health timeout).
const START_INTERVAL: &str = "500ms";
/// Probe interval once healthy.
const HEALTH_INTERVAL: &str = "1s";
const HEALTH_RETRIES: &str = "3";
/// Log lines shown on failure.
const LOG_LINES: usize = 50;
/// Checks run at the same time in one container.
const PARALLEL_CHECKS: usize = 4;
/// A check may take this long at least (the variant's health timeout when longer).
const MIN_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args)]
pub struct Args {
    /// Variants to smoke-test (`cargo xtask config` lists them).
    variants: Vec<String>,
    /// Smoke-test every variant.
    #[arg(long, conflicts_with = "variants")]
    all: bool,
    /// Test this image instead of the variant's `<image>:<variant>` (one variant only).
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// Run an image whose user is root; without it such an image is refused (exit 1).
    #[arg(long)]
    allow_root: bool,
    /// Leave the container running after the verdict and print how to remove it.
    #[arg(long)]
    keep: bool,
    /// Give the container every NVIDIA GPU (`--gpus all`; CUDA images).
    #[arg(long)]
    gpus: bool,
    /// Give the container the AMD GPU devices (/dev/kfd, /dev/dri, group video; ROCm images).
    #[arg(long)]
    rocm: bool,
    /// Publish the service port on 127.0.0.1, at HOST_PORT or a free port (default: none).
    #[arg(long, value_name = "HOST_PORT", num_args = 0..=1, default_missing_value = "0")]
    publish: Option<u16>,
    /// An extra label KEY=VALUE on the container (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// How long the container may take to become healthy (default: smoke.health_timeout).
    #[arg(long, value_parser = parse_timeout, value_name = "DURATION")]
    timeout: Option<Duration>,
    /// How to print the summary (progress and failure details go to stderr).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
    crate::config::parse_duration(s).map_err(|e| e.to_string())
}

/// The run options that shape the plan.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub allow_root: bool,
    pub gpus: bool,
    pub rocm: bool,
    /// `Some(0)`: a free host port.
    pub publish: Option<u16>,
    pub labels: Vec<String>,
    pub timeout: Option<Duration>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let config = ctx.config()?;
        let variants = config.select(&self.variants, self.all)?;
        if self.image.is_some() && variants.len() != 1 {
            bail!("--image names one image: pass exactly one variant with it");
        }
        docker::versions(&ctx.sh)?;
        let refs: Vec<String> = variants
            .iter()
            .map(|v| self.image.clone().unwrap_or_else(|| v.image_ref()))
            .collect();
        let images = docker::image_inspect(&ctx.sh, &refs).context("inspecting the images")?;
        let missing: Vec<String> = variants
            .iter()
            .zip(&refs)
            .filter(|(_, r)| !images.contains_key(*r))
            .map(|(v, r)| match &self.image {
                Some(_) => format!("{r} (--image) does not exist locally"),
                None => format!(
                    "{r} does not exist locally: run `cargo xtask build {}` first",
                    v.name
                ),
            })
            .collect();
        if !missing.is_empty() {
            bail!("{}", missing.join("; "));
        }
        let opts = Options {
            allow_root: self.allow_root,
            gpus: self.gpus,
            rocm: self.rocm,
            publish: self.publish,
            labels: self.label.clone(),
            timeout: self.timeout,
        };

        let mut outcomes = Vec::new();
        for (variant, image) in variants.iter().zip(&refs) {
            let config = &images[image].config;
            let outcome = smoke_one(variant, image, config, &opts, self.keep)
                .with_context(|| format!("smoke-testing variant `{}`", variant.name))?;
            if !outcome.passed {
                eprint!("{}", render_diagnostics(&outcome));
            }
            outcomes.push(outcome);
        }

        let table = summary_table(&outcomes);
        report::emit(self.format, &table, &outcomes)?;
        let mut markdown = table.render_markdown();
        for outcome in outcomes.iter().filter(|o| !o.passed) {
            markdown.push_str(&format!(
                "\n<details><summary>{} failed</summary>\n\n```text\n{}```\n</details>\n",
                outcome.variant,
                render_diagnostics(outcome)
            ));
        }
        report::step_summary("Smoke tests", &markdown)?;

        let failed: Vec<&str> = outcomes
            .iter()
            .filter(|o| !o.passed)
            .map(|o| o.variant.as_str())
            .collect();
        if !failed.is_empty() {
            return Err(CheckFailed(format!("smoke failed for {}", failed.join(", "))).into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Plan (pure).

/// How health is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthMode {
    /// The image's HEALTHCHECK, with run-time timing overrides.
    Engine,
    /// No HEALTHCHECK: xtask GETs this path from inside the container until it answers 2xx.
    Probe(String),
}

/// One check run once the container is healthy.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Exec(ExecCheck),
    Http(HttpCheck),
    NotRoot,
    /// Judged from the image config.
    Env(Vec<String>),
    /// Judged from the image config.
    Labels(Vec<String>),
    ForbiddenPaths(Vec<String>),
    ForbiddenPackages(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub variant: String,
    pub image: String,
    pub container: String,
    /// `docker` arguments, from `run` to the image.
    pub run_args: Vec<String>,
    pub health: HealthMode,
    pub timeout: Duration,
    pub check_timeout: Duration,
    pub port: u16,
    pub checks: Vec<Check>,
}

/// True when an image's `User` means root (empty, `root`, `0`, with any group).
pub fn runs_as_root(user: &str) -> bool {
    let user = user.split(':').next().unwrap_or("").trim();
    user.is_empty() || user == "root" || user == "0"
}

/// True when the image config defines a health check (not absent, empty or `NONE`).
pub fn has_healthcheck(config: &ImageConfig) -> bool {
    config
        .healthcheck
        .as_ref()
        .and_then(|h| h.test.as_ref())
        .and_then(|t| t.first())
        .is_some_and(|first| first != "NONE")
}

/// The plan for one variant, or the reason the image is refused.
pub fn plan(
    variant: &Variant,
    image: &str,
    config: &ImageConfig,
    opts: &Options,
    suffix: &str,
) -> std::result::Result<Plan, String> {
    let smoke = &variant.smoke;
    if runs_as_root(&config.user) && !opts.allow_root {
        let user = if config.user.is_empty() {
            "no USER, so root".to_string()
        } else {
            format!("USER {}", config.user)
        };
        return Err(format!(
            "refused: the image runs as root ({user}); set a non-root USER in its Dockerfile, or \
             pass --allow-root"
        ));
    }
    let health = if has_healthcheck(config) {
        HealthMode::Engine
    } else if let Some(path) = &smoke.http_probe {
        HealthMode::Probe(path.clone())
    } else {
        return Err(format!(
            "the image has no HEALTHCHECK: add one to its Dockerfile, or set `smoke.http_probe` \
             (a path to GET) for variant `{}` in images.toml",
            variant.name
        ));
    };
    let timeout = opts.timeout.unwrap_or(smoke.health_timeout);
    let container = format!("xtask-smoke-{}-{suffix}", variant.name);

    let mut args: Vec<String> = ["run", "--detach", "--pull", "never", "--name"]
        .map(String::from)
        .into();
    args.push(container.clone());
    args.extend(["--label".into(), format!("{LABEL}={}", variant.name)]);
    for label in &opts.labels {
        args.extend(["--label".into(), label.clone()]);
    }
    // Hardened by default: nothing the service should need.
    args.extend(
        [
            "--read-only",
            "--tmpfs",
            "/tmp:rw,noexec,nosuid,size=64m",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ]
        .map(String::from),
    );
    if let Some(memory) = &smoke.memory {
        args.extend(["--memory".into(), memory.clone()]);
    }
    if let Some(cpus) = &smoke.cpus {
        args.extend(["--cpus".into(), cpus.clone()]);
    }
    if health == HealthMode::Engine {
        // Keep the image's test command; probe often while starting, for the whole timeout.
        args.extend([
            "--health-interval".into(),
            HEALTH_INTERVAL.into(),
            "--health-start-period".into(),
            format!("{}ms", timeout.as_millis().max(1)),
            "--health-start-interval".into(),
            START_INTERVAL.into(),
            "--health-retries".into(),
            HEALTH_RETRIES.into(),
        ]);
    }
    if opts.gpus {
        args.extend(["--gpus".into(), "all".into()]);
    }
    if opts.rocm {
        args.extend(
            [
                "--device",
                "/dev/kfd",
                "--device",
                "/dev/dri",
                "--group-add",
                "video",
            ]
            .map(String::from),
        );
    }
    match opts.publish {
        Some(0) => args.extend(["--publish".into(), format!("127.0.0.1::{}", smoke.port)]),
        Some(host) => args.extend([
            "--publish".into(),
            format!("127.0.0.1:{host}:{}", smoke.port),
        ]),
        None => {}
    }
    args.push(image.to_string());

    let mut checks: Vec<Check> = smoke.exec.iter().cloned().map(Check::Exec).collect();
    checks.extend(smoke.http.iter().cloned().map(Check::Http));
    if !opts.allow_root {
        checks.push(Check::NotRoot);
    }
    if !smoke.env.is_empty() {
        checks.push(Check::Env(smoke.env.clone()));
    }
    if !smoke.labels.is_empty() {
        checks.push(Check::Labels(smoke.labels.clone()));
    }
    if !smoke.forbidden_paths.is_empty() {
        checks.push(Check::ForbiddenPaths(smoke.forbidden_paths.clone()));
    }
    if !smoke.forbidden_packages.is_empty() {
        checks.push(Check::ForbiddenPackages(smoke.forbidden_packages.clone()));
    }

    Ok(Plan {
        variant: variant.name.clone(),
        image: image.to_string(),
        container,
        run_args: args,
        health,
        timeout,
        check_timeout: timeout.max(MIN_CHECK_TIMEOUT),
        port: smoke.port,
        checks,
    })
}

/// GETs or POSTs `argv[2]` and prints one JSON line: status, parsed JSON body, body text, error.
/// With `argv[3]` > 0 it uploads a generated WAV of that many seconds as the multipart field `file`.
const HTTP_SNIPPET: &str = r#"
import io, json, math, struct, sys, urllib.error, urllib.request, wave
method, url, seconds, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
data, headers = None, {}
if seconds > 0:
    rate = 16000
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(int(seconds * rate)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate); w.writeframes(frames)
    b = "xtask-smoke-boundary"
    data = (f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="smoke.wav"\r\n'
            f"Content-Type: audio/wav\r\n\r\n").encode() + buf.getvalue() + f"\r\n--{b}--\r\n".encode()
    headers["Content-Type"] = f"multipart/form-data; boundary={b}"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
out, body = {"status": None, "error": None}, b""
try:
    with opener.open(urllib.request.Request(url, data=data, headers=headers, method=method), timeout=timeout) as r:
        out["status"], body = r.status, r.read()
except urllib.error.HTTPError as e:
    out["status"], body = e.code, e.read()
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
text = body.decode("utf-8", "replace")
try:
    out["json"] = json.loads(text)
except ValueError:
    out["json"] = None
out["body"] = text[:2000]
print(json.dumps(out))
"#;

/// Which of the paths in argv exist (as root, so restricted directories are seen too).
const PATHS_SNIPPET: &str = r#"
import json, os, sys
present, unreadable = [], []
for p in sys.argv[1:]:
    try:
        os.lstat(p)
        present.append(p)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as e:
        unreadable.append(f"{p} ({e.strerror})")
print(json.dumps({"present": present, "unreadable": unreadable}))
"#;

/// Installed distributions matching the globs in argv (names normalised as in PEP 503).
const PACKAGES_SNIPPET: &str = r#"
import fnmatch, json, re, sys
from importlib.metadata import distributions
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
globs = [norm(g) for g in sys.argv[1:]]
found = sorted({f"{d.metadata['Name']} {d.version}" for d in distributions()
                if d.metadata["Name"] and any(fnmatch.fnmatchcase(norm(d.metadata["Name"]), g) for g in globs)})
print(json.dumps(found))
"#;

impl Check {
    pub fn name(&self) -> String {
        match self {
            Check::Exec(c) => c.name.clone(),
            Check::Http(c) => c.name.clone(),
            Check::NotRoot => "user is not root".into(),
            Check::Env(_) => "env vars".into(),
            Check::Labels(_) => "labels".into(),
            Check::ForbiddenPaths(_) => "forbidden paths absent".into(),
            Check::ForbiddenPackages(_) => "forbidden python packages absent".into(),
        }
    }

    /// The user to exec as (None: the image's).
    pub fn user(&self) -> Option<&'static str> {
        match self {
            Check::ForbiddenPaths(_) => Some("0"),
            _ => None,
        }
    }

    /// The command run in the container; None for checks judged from the image config.
    pub fn argv(&self, port: u16, timeout: Duration) -> Option<Vec<String>> {
        let python = |snippet: &str, args: Vec<String>| {
            let mut argv = vec!["python3".to_string(), "-c".into(), snippet.into()];
            argv.extend(args);
            argv
        };
        match self {
            Check::Exec(c) => Some(c.cmd.clone()),
            Check::Http(c) => Some(http_argv(
                &c.method,
                port,
                &c.path,
                c.wav_seconds.unwrap_or(0.0),
                timeout,
            )),
            Check::NotRoot => Some(vec!["id".into(), "-u".into()]),
            Check::Env(_) | Check::Labels(_) => None,
            Check::ForbiddenPaths(paths) => Some(python(PATHS_SNIPPET, paths.clone())),
            Check::ForbiddenPackages(globs) => Some(python(PACKAGES_SNIPPET, globs.clone())),
        }
    }

    /// Judges what the check's command did.
    pub fn judge(&self, out: &ExecOutput, config: &ImageConfig) -> CheckResult {
        match self {
            Check::Exec(c) => judge_exec(c, out),
            Check::Http(c) => judge_http(c, out),
            Check::NotRoot => judge_not_root(out),
            Check::Env(want) => judge_env(want, config.env.as_deref().unwrap_or_default()),
            Check::Labels(want) => judge_labels(want, config.labels.as_ref()),
            Check::ForbiddenPaths(paths) => judge_paths(paths, out),
            Check::ForbiddenPackages(globs) => judge_packages(globs, out),
        }
    }
}

fn http_argv(
    method: &str,
    port: u16,
    path: &str,
    wav_seconds: f64,
    timeout: Duration,
) -> Vec<String> {
    vec![
        "python3".into(),
        "-c".into(),
        HTTP_SNIPPET.into(),
        method.into(),
        format!("http://127.0.0.1:{port}{path}"),
        wav_seconds.to_string(),
        format!("{:.1}", timeout.as_secs_f64()),
    ]
}

// ---------------------------------------------------------------------------------------------
// Judge (pure).

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    pub expected: String,
    pub actual: String,
}

impl CheckResult {
    fn new(name: impl Into<String>, passed: bool, expected: String, actual: String) -> Self {
        CheckResult {
            name: name.into(),
            passed,
            expected,
            actual,
        }
    }
}

/// The last `max` characters of a command's output, trimmed, on one line when short.
fn tail(text: &str, max: usize) -> String {
    let text = text.trim();
    let count = text.chars().count();
    if count <= max {
        text.to_string()
    } else {
        let skip = count - max;
        format!("…{}", text.chars().skip(skip).collect::<String>())
    }
}

/// What went wrong running a command, when it did not run to completion.
fn exec_problem(out: &ExecOutput, program: &str, why: &str) -> Option<String> {
    if out.timed_out {
        Some("timed out (killed)".into())
    } else if out.missing_executable() {
        Some(format!("`{program}` is not in the image ({why})"))
    } else {
        None
    }
}

fn describe_exec(out: &ExecOutput) -> String {
    let mut s = if out.timed_out {
        "timed out (killed)".to_string()
    } else {
        format!("exit {}", out.code)
    };
    if !out.stdout.trim().is_empty() {
        s.push_str(&format!(", stdout: {:?}", tail(&out.stdout, 400)));
    }
    if !out.stderr.trim().is_empty() {
        s.push_str(&format!(", stderr: {:?}", tail(&out.stderr, 400)));
    }
    s
}

pub fn judge_exec(check: &ExecCheck, out: &ExecOutput) -> CheckResult {
    let mut expected = format!("exit {}", check.exit_code);
    if let Some(text) = &check.stdout_contains {
        expected.push_str(&format!(", stdout contains {text:?}"));
    }
    let passed = !out.timed_out
        && out.code == check.exit_code
        && check
            .stdout_contains
            .as_ref()
            .is_none_or(|t| out.stdout.contains(t.as_str()));
    CheckResult::new(&check.name, passed, expected, describe_exec(out))
}

/// What the HTTP snippet printed.
#[derive(Debug, serde::Deserialize)]
struct HttpAnswer {
    status: Option<u16>,
    error: Option<String>,
    json: Option<serde_json::Value>,
    #[serde(default)]
    body: String,
}

/// Equal as JSON, numbers compared by value (TOML `1` matches JSON `1.0`).
fn json_eq(want: &serde_json::Value, got: &serde_json::Value) -> bool {
    match (want, got) {
        (serde_json::Value::Number(a), serde_json::Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => want == got,
    }
}

/// The status the HTTP snippet got, if it got an answer.
fn http_status(out: &ExecOutput) -> Option<u16> {
    let line = out.stdout.lines().rfind(|l| !l.trim().is_empty())?;
    serde_json::from_str::<HttpAnswer>(line).ok()?.status
}

pub fn judge_http(check: &HttpCheck, out: &ExecOutput) -> CheckResult {
    let mut expected = format!("{} {} → status {}", check.method, check.path, check.status);
    let want: BTreeMap<&String, serde_json::Value> = check
        .json
        .iter()
        .map(|(k, v)| {
            (
                k,
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
            )
        })
        .collect();
    for (k, v) in &want {
        expected.push_str(&format!(", json {k} = {v}"));
    }
    let fail = |actual: String| CheckResult::new(&check.name, false, expected.clone(), actual);
    if let Some(problem) = exec_problem(out, "python3", "HTTP checks run python3 in the container")
    {
        return fail(problem);
    }
    let line = out
        .stdout
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("");
    let answer: HttpAnswer = match serde_json::from_str(line) {
        Ok(a) if out.code == 0 => a,
        _ => return fail(format!("the request did not run: {}", describe_exec(out))),
    };
    let Some(status) = answer.status else {
        return fail(format!(
            "no answer: {}",
            answer.error.unwrap_or_else(|| "unknown error".into())
        ));
    };
    let mut problems = Vec::new();
    if status != check.status {
        problems.push(format!("status {status}"));
    }
    for (k, v) in &want {
        match answer.json.as_ref().and_then(|j| j.get(k.as_str())) {
            Some(got) if json_eq(v, got) => {}
            Some(got) => problems.push(format!("json {k} = {got}")),
            None => problems.push(format!("json has no {k}")),
        }
    }
    let body = tail(&answer.body, 300);
    if problems.is_empty() {
        CheckResult::new(
            &check.name,
            true,
            expected,
            format!("status {status}, body {body}"),
        )
    } else {
        fail(format!("{}; body: {body}", problems.join(", ")))
    }
}

pub fn judge_not_root(out: &ExecOutput) -> CheckResult {
    let expected = "`id -u` ≠ 0".to_string();
    let name = Check::NotRoot.name();
    if let Some(problem) = exec_problem(out, "id", "it tells the user's ID") {
        return CheckResult::new(name, false, expected, problem);
    }
    match out.stdout.trim().parse::<u32>() {
        Ok(uid) if out.code == 0 => {
            CheckResult::new(name, uid != 0, expected, format!("uid {uid}"))
        }
        _ => CheckResult::new(name, false, expected, describe_exec(out)),
    }
}

/// `NAME` must be defined; `NAME=VALUE` must have that value.
pub fn judge_env(want: &[String], env: &[String]) -> CheckResult {
    let defined: BTreeMap<&str, &str> = env
        .iter()
        .map(|e| e.split_once('=').unwrap_or((e.as_str(), "")))
        .collect();
    let mut problems = Vec::new();
    for spec in want {
        match spec.split_once('=') {
            Some((name, value)) => match defined.get(name) {
                Some(got) if *got == value => {}
                Some(got) => problems.push(format!("{name}={got}")),
                None => problems.push(format!("{name} undefined")),
            },
            None if defined.contains_key(spec.as_str()) => {}
            None => problems.push(format!("{spec} undefined")),
        }
    }
    let passed = problems.is_empty();
    let actual = if passed {
        format!("all {} defined", want.len())
    } else {
        problems.join(", ")
    };
    CheckResult::new("env vars", passed, want.join(", "), actual)
}

pub fn judge_labels(want: &[String], labels: Option<&BTreeMap<String, String>>) -> CheckResult {
    let missing: Vec<&str> = want
        .iter()
        .filter(|l| !labels.is_some_and(|m| m.contains_key(l.as_str())))
        .map(String::as_str)
        .collect();
    let passed = missing.is_empty();
    let actual = if passed {
        format!("all {} present", want.len())
    } else {
        format!("missing: {}", missing.join(", "))
    };
    CheckResult::new("labels", passed, want.join(", "), actual)
}

#[derive(Debug, Default, serde::Deserialize, Serialize)]
struct PathsAnswer {
    present: Vec<String>,
    unreadable: Vec<String>,
}

pub fn judge_paths(paths: &[String], out: &ExecOutput) -> CheckResult {
    let name = "forbidden paths absent";
    let expected = format!("none of {}", paths.join(", "));
    let answer: PathsAnswer = match serde_json::from_str(out.stdout.trim()) {
        Ok(a) if out.code == 0 => a,
        _ => {
            let problem = exec_problem(out, "python3", "and no `test` either")
                .unwrap_or_else(|| describe_exec(out));
            return CheckResult::new(name, false, expected, problem);
        }
    };
    let mut problems = Vec::new();
    if !answer.present.is_empty() {
        problems.push(format!("present: {}", answer.present.join(", ")));
    }
    if !answer.unreadable.is_empty() {
        problems.push(format!("cannot tell: {}", answer.unreadable.join(", ")));
    }
    let passed = problems.is_empty();
    let actual = if passed {
        format!("all {} absent", paths.len())
    } else {
        problems.join("; ")
    };
    CheckResult::new(name, passed, expected, actual)
}

pub fn judge_packages(globs: &[String], out: &ExecOutput) -> CheckResult {
    let name = "forbidden python packages absent";
    let expected = format!("no distribution matching {}", globs.join(", "));
    if let Some(problem) = exec_problem(out, "python3", "it lists the installed packages") {
        return CheckResult::new(name, false, expected, problem);
    }
    match serde_json::from_str::<Vec<String>>(out.stdout.trim()) {
        Ok(found) if out.code == 0 => {
            let passed = found.is_empty();
            let actual = if passed {
                "none installed".into()
            } else {
                format!("installed: {}", found.join(", "))
            };
            CheckResult::new(name, passed, expected, actual)
        }
        _ => CheckResult::new(name, false, expected, describe_exec(out)),
    }
}

/// What one look at the container's state says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateVerdict {
    Waiting,
    Healthy,
    Unhealthy(String),
    Exited(String),
}

pub fn judge_state(state: &ContainerState, mode: &HealthMode) -> StateVerdict {
    if !state.running && matches!(state.status.as_str(), "exited" | "dead" | "created") {
        if state.status == "created" && state.error.is_empty() {
            return StateVerdict::Waiting;
        }
        let mut why = format!("the container exited with code {}", state.exit_code);
        if state.oom_killed {
            why.push_str(" (killed: out of memory; raise smoke.memory?)");
        }
        if !state.error.is_empty() {
            why.push_str(&format!(": {}", state.error));
        }
        return StateVerdict::Exited(why);
    }
    if *mode != HealthMode::Engine {
        return StateVerdict::Waiting;
    }
    match state.health.as_ref().map(|h| h.status.as_str()) {
        Some("healthy") => StateVerdict::Healthy,
        Some("unhealthy") => StateVerdict::Unhealthy(format!(
            "the health check reports unhealthy ({} failing probes in a row)",
            state.health.as_ref().map_or(0, |h| h.failing_streak)
        )),
        _ => StateVerdict::Waiting,
    }
}

/// The end of the first passing probe in the engine's log: the app's first healthy answer.
pub fn first_pass_end(log: &[HealthProbe]) -> Option<SystemTime> {
    log.iter()
        .find(|p| p.exit_code == 0)
        .and_then(|p| util::parse_rfc3339(&p.end))
}

// ---------------------------------------------------------------------------------------------
// Execute.

/// The result for one variant; `--format json` prints a list of these.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub variant: String,
    pub image: String,
    pub container: Option<String>,
    pub passed: bool,
    /// From `docker run` to the first healthy observation.
    pub healthy_after_ms: Option<u64>,
    /// Verdict latency: from the first healthy observation to the verdict.
    pub verdict_ms: Option<u64>,
    /// From the end of the first passing health probe (the engine's clock) to the verdict.
    pub verdict_after_probe_ms: Option<u64>,
    pub checks_passed: usize,
    pub checks_total: usize,
    pub checks: Vec<CheckResult>,
    /// Why the variant failed, in one line.
    pub failure: Option<String>,
    /// The last health probes (from the engine, or xtask's own with `http_probe`).
    pub health_log: Vec<HealthProbe>,
    /// The last log lines of the container, on failure.
    pub logs: Option<String>,
    pub kept: bool,
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
            eprintln!("warning: {err:#}; remove it with `docker rm -f -v {name}`");
        }
    })
}

fn smoke_one(
    variant: &Variant,
    image: &str,
    config: &ImageConfig,
    opts: &Options,
    keep: bool,
) -> Result<Outcome> {
    let mut outcome = Outcome {
        variant: variant.name.clone(),
        image: image.to_string(),
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
    };
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
    progress!(
        "smoke {}: starting {} from {} (read-only, no capabilities{}{})",
        plan.variant,
        plan.container,
        plan.image,
        variant
            .smoke
            .memory
            .as_ref()
            .map_or(String::new(), |m| format!(", memory {m}")),
        variant
            .smoke
            .cpus
            .as_ref()
            .map_or(String::new(), |c| format!(", cpus {c}")),
    );

    let in_flight = Arc::new(AtomicBool::new(true));
    let guard = container_guard(&plan.container, in_flight.clone());
    let started = Instant::now();
    let run = docker::run_detached(&plan.run_args);
    in_flight.store(false, Ordering::SeqCst);
    run.with_context(|| format!("starting {} from {}", plan.container, plan.image))?;

    let waited = wait_healthy(&plan, started, &mut outcome.health_log)?;
    match waited {
        Waited::Failed(reason) => outcome.failure = Some(reason),
        Waited::Healthy {
            observed,
            probe_end,
        } => {
            outcome.healthy_after_ms = Some(millis(observed - started));
            progress!(
                "smoke {}: healthy after {:.1} s; running {} checks",
                plan.variant,
                (observed - started).as_secs_f64(),
                plan.checks.len()
            );
            outcome.checks = run_checks(&plan, config)?;
            outcome.verdict_ms = Some(millis(observed.elapsed()));
            outcome.verdict_after_probe_ms = probe_end
                .and_then(|end| SystemTime::now().duration_since(end).ok())
                .map(millis);
            outcome.checks_passed = outcome.checks.iter().filter(|c| c.passed).count();
            outcome.failure = outcome
                .checks
                .iter()
                .find(|c| !c.passed)
                .map(|c| format!("check `{}` failed", c.name));
        }
    }
    outcome.passed = outcome.failure.is_none();

    if !outcome.passed {
        // Diagnostics: the engine's last probes (unless xtask probed itself) and the logs.
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
        progress!(
            "smoke {}: kept container {}; remove it with `docker rm -f -v {}`{}",
            plan.variant,
            plan.container,
            plan.container,
            if opts.publish.is_some() {
                format!(" (its port: `docker port {}`)", plan.container)
            } else {
                String::new()
            }
        );
    } else {
        drop(guard);
    }
    Ok(outcome)
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
            let status = state
                .health
                .as_ref()
                .map_or("no health status".to_string(), |h| {
                    format!("health status `{}`", h.status)
                });
            return Ok(Waited::Failed(format!(
                "not healthy within {} ({status})",
                human_duration(plan.timeout)
            )));
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
    let mut results = Vec::new();
    for chunk in plan.checks.chunks(PARALLEL_CHECKS) {
        let outputs: Vec<Result<ExecOutput>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|check| s.spawn(move || run_check(plan, check)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| bail!("a check thread panicked"))
                })
                .collect()
        });
        for (check, out) in chunk.iter().zip(outputs) {
            let out = out.with_context(|| format!("running check `{}`", check.name()))?;
            results.push(check.judge(&out, config));
        }
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

// ---------------------------------------------------------------------------------------------
// Render.

fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(10) && d.subsec_millis() != 0 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} s", d.as_secs())
    }
}

pub fn summary_table(outcomes: &[Outcome]) -> Table {
    let mut table = Table::new(&[
        "variant",
        "image",
        "result",
        "healthy after",
        "verdict",
        "checks",
        "failure",
    ])
    .right_align(&[3, 4, 5]);
    for o in outcomes {
        table.row(vec![
            o.variant.clone(),
            o.image.clone(),
            if o.passed { "pass" } else { "FAIL" }.into(),
            o.healthy_after_ms
                .map_or("-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
            o.verdict_ms.map_or("-".into(), |ms| format!("{ms} ms")),
            format!("{}/{}", o.checks_passed, o.checks_total),
            o.failure.clone().unwrap_or_default(),
        ]);
    }
    table
}

/// Which check failed, expected vs actual, the last probes and the last log lines.
pub fn render_diagnostics(o: &Outcome) -> String {
    let mut out = format!(
        "smoke {} FAILED: {}\n",
        o.variant,
        o.failure.as_deref().unwrap_or("unknown failure")
    );
    for c in o.checks.iter().filter(|c| !c.passed) {
        out.push_str(&format!(
            "  check `{}`\n    expected: {}\n    actual:   {}\n",
            c.name, c.expected, c.actual
        ));
    }
    if !o.health_log.is_empty() {
        out.push_str("  last health probes (oldest first):\n");
        for p in &o.health_log {
            let text = p.output.trim().replace('\n', "\n              ");
            out.push_str(&format!("    exit {:>3}: {text}\n", p.exit_code));
        }
    }
    if let Some(logs) = &o.logs {
        let container = o.container.as_deref().unwrap_or("the container");
        if logs.trim().is_empty() {
            out.push_str(&format!("  {container} logged nothing\n"));
        } else {
            out.push_str(&format!("  last {LOG_LINES} log lines of {container}:\n"));
            for line in logs.lines() {
                out.push_str(&format!("    | {line}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn variant(extra: &str) -> Variant {
        let dir = crate::util::project_root();
        let text = format!(
            "[project]\nname = \"t\"\ndescription = \"t\"\nlicenses = \"MIT\"\nversion = \"1\"\n\
             [base]\nimage = \"b\"\nsuite = \"trixie\"\nsource_date_epoch = 0\n\
             [variants.cpu]\ndockerfile = \"Cargo.toml\"\nimage = \"voxserve\"\n\
             [variants.cpu.smoke]\nmemory = \"1g\"\ncpus = \"1.5\"\nhealth_timeout = \"90s\"\n{extra}"
        );
        let config = Config::parse(&dir.join("images.toml"), &text).unwrap();
        config.variants[0].clone()
    }

    fn image(user: &str, healthcheck: bool) -> ImageConfig {
        ImageConfig {
            user: user.into(),
            healthcheck: healthcheck.then(|| docker::Healthcheck {
                test: Some(vec!["CMD".into(), "true".into()]),
            }),
            ..ImageConfig::default()
        }
    }

    fn out(code: i32, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
            timed_out: false,
        }
    }

    /// The value after `flag` in argv.
    fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn run_args_are_hardened_labelled_and_override_health_timing() {
        let opts = Options {
            labels: vec!["voxserve.xtask.test=42".into()],
            ..Options::default()
        };
        let plan = plan(
            &variant(""),
            "voxserve:cpu",
            &image("10001", true),
            &opts,
            "7-ab",
        )
        .unwrap();
        let a = &plan.run_args;
        assert_eq!(&a[..4], ["run", "--detach", "--pull", "never"]);
        assert_eq!(plan.container, "xtask-smoke-cpu-7-ab");
        assert_eq!(after(a, "--name"), ["xtask-smoke-cpu-7-ab"]);
        assert_eq!(
            after(a, "--label"),
            ["voxserve.xtask.smoke=cpu", "voxserve.xtask.test=42"]
        );
        assert!(a.contains(&"--read-only".to_string()));
        assert_eq!(after(a, "--tmpfs"), ["/tmp:rw,noexec,nosuid,size=64m"]);
        assert_eq!(after(a, "--cap-drop"), ["ALL"]);
        assert_eq!(after(a, "--security-opt"), ["no-new-privileges"]);
        assert_eq!(after(a, "--memory"), ["1g"]);
        assert_eq!(after(a, "--cpus"), ["1.5"]);
        assert_eq!(after(a, "--health-interval"), ["1s"]);
        assert_eq!(after(a, "--health-start-period"), ["90000ms"]);
        assert_eq!(after(a, "--health-start-interval"), ["500ms"]);
        assert_eq!(after(a, "--health-retries"), ["3"]);
        assert!(
            !a.iter().any(|x| x == "--health-cmd"),
            "keeps the image's test"
        );
        for absent in [
            "--publish",
            "--gpus",
            "--device",
            "--group-add",
            "--privileged",
        ] {
            assert!(!a.contains(&absent.to_string()), "{absent} in {a:?}");
        }
        assert_eq!(a.last().unwrap(), "voxserve:cpu");
        assert_eq!(plan.health, HealthMode::Engine);
        assert_eq!(plan.timeout, Duration::from_secs(90));
    }

    #[test]
    fn gpus_rocm_publish_and_timeout_options() {
        let opts = Options {
            gpus: true,
            rocm: true,
            publish: Some(0),
            timeout: Some(Duration::from_secs(8)),
            ..Options::default()
        };
        let p = plan(&variant(""), "img", &image("app", true), &opts, "s").unwrap();
        let a = &p.run_args;
        assert_eq!(after(a, "--gpus"), ["all"]);
        assert_eq!(after(a, "--device"), ["/dev/kfd", "/dev/dri"]);
        assert_eq!(after(a, "--group-add"), ["video"]);
        assert_eq!(after(a, "--publish"), ["127.0.0.1::8000"]);
        assert_eq!(after(a, "--health-start-period"), ["8000ms"]);
        assert_eq!(p.timeout, Duration::from_secs(8));
        assert_eq!(p.check_timeout, MIN_CHECK_TIMEOUT);

        let opts = Options {
            publish: Some(8080),
            ..Options::default()
        };
        let p = plan(&variant(""), "img", &image("app", true), &opts, "s").unwrap();
        assert_eq!(after(&p.run_args, "--publish"), ["127.0.0.1:8080:8000"]);
    }

    #[test]
    fn root_images_are_refused_unless_allowed() {
        for user in ["", "root", "0", "0:0", "root:staff"] {
            let err = plan(
                &variant(""),
                "img",
                &image(user, true),
                &Options::default(),
                "s",
            )
            .unwrap_err();
            assert!(
                err.contains("runs as root") && err.contains("--allow-root"),
                "{err}"
            );
        }
        let opts = Options {
            allow_root: true,
            ..Options::default()
        };
        let p = plan(&variant(""), "img", &image("", true), &opts, "s").unwrap();
        assert!(!p.checks.contains(&Check::NotRoot));
        assert!(!runs_as_root("10001:10001") && !runs_as_root("app"));
    }

    #[test]
    fn no_healthcheck_is_refused_unless_an_http_probe_is_configured() {
        let err = plan(
            &variant(""),
            "img",
            &image("app", false),
            &Options::default(),
            "s",
        )
        .unwrap_err();
        assert!(
            err.contains("no HEALTHCHECK") && err.contains("http_probe"),
            "{err}"
        );
        let mut none = image("app", true);
        none.healthcheck.as_mut().unwrap().test = Some(vec!["NONE".into()]);
        assert!(!has_healthcheck(&none));

        let p = plan(
            &variant("http_probe = \"/health\"\n"),
            "img",
            &image("app", false),
            &Options::default(),
            "s",
        )
        .unwrap();
        assert_eq!(p.health, HealthMode::Probe("/health".into()));
        assert!(!p.run_args.iter().any(|a| a.starts_with("--health")));
    }

    #[test]
    fn checks_come_from_the_config() {
        let v = variant(
            "env = [\"A=1\"]\nlabels = [\"l\"]\nforbidden_paths = [\"/x\"]\n\
             forbidden_packages = [\"nvidia-*\"]\n\
             [[variants.cpu.smoke.exec]]\nname = \"e\"\ncmd = [\"true\"]\n\
             [[variants.cpu.smoke.http]]\nname = \"h\"\npath = \"/health\"\n",
        );
        let p = plan(&v, "img", &image("app", true), &Options::default(), "s").unwrap();
        let names: Vec<String> = p.checks.iter().map(Check::name).collect();
        assert_eq!(
            names,
            [
                "e",
                "h",
                "user is not root",
                "env vars",
                "labels",
                "forbidden paths absent",
                "forbidden python packages absent"
            ]
        );
        let http = p.checks[1].argv(8000, Duration::from_secs(30)).unwrap();
        assert_eq!(&http[..2], ["python3", "-c"]);
        assert_eq!(
            &http[3..],
            ["GET", "http://127.0.0.1:8000/health", "0", "30.0"]
        );
        assert_eq!(p.checks[5].user(), Some("0"));
        assert_eq!(
            p.checks[5].argv(8000, MIN_CHECK_TIMEOUT).unwrap()[3..],
            ["/x"]
        );
        assert_eq!(p.checks[3].argv(8000, MIN_CHECK_TIMEOUT), None);
    }

    fn exec_check(stdout_contains: Option<&str>) -> ExecCheck {
        ExecCheck {
            name: "imports".into(),
            cmd: vec!["python3".into()],
            exit_code: 0,
            stdout_contains: stdout_contains.map(String::from),
        }
    }

    #[test]
    fn exec_checks_report_expected_and_actual() {
        let r = judge_exec(&exec_check(Some("ok")), &out(0, "ok\n", ""));
        assert!(r.passed, "{r:?}");
        let r = judge_exec(
            &exec_check(Some("ok")),
            &out(1, "", "ModuleNotFoundError: torch"),
        );
        assert!(!r.passed);
        assert_eq!(r.expected, "exit 0, stdout contains \"ok\"");
        assert_eq!(r.actual, "exit 1, stderr: \"ModuleNotFoundError: torch\"");
        let r = judge_exec(&exec_check(Some("ok")), &out(0, "nope", ""));
        assert!(!r.passed && r.actual.contains("nope"));
        let timed_out = ExecOutput {
            timed_out: true,
            code: -1,
            ..ExecOutput::default()
        };
        assert!(!judge_exec(&exec_check(None), &timed_out).passed);
    }

    fn http_check(json: &str) -> HttpCheck {
        toml::from_str(&format!(
            "name = \"health\"\npath = \"/health\"\njson = {json}\n"
        ))
        .unwrap()
    }

    #[test]
    fn http_checks_compare_status_and_json_fields() {
        let check = http_check("{ status = \"ok\", n = 1 }");
        let answer =
            r#"{"status": 200, "error": null, "json": {"status": "ok", "n": 1.0}, "body": "{}"}"#;
        assert!(judge_http(&check, &out(0, answer, "")).passed);

        let answer = r#"{"status": 503, "error": null, "json": {"status": "starting"}, "body": "{\"status\": \"starting\"}"}"#;
        let r = judge_http(&check, &out(0, answer, ""));
        assert!(!r.passed);
        assert_eq!(
            r.expected,
            "GET /health → status 200, json n = 1, json status = \"ok\""
        );
        assert!(
            r.actual
                .starts_with("status 503, json has no n, json status = \"starting\""),
            "{}",
            r.actual
        );

        let refused = r#"{"status": null, "error": "URLError: refused", "json": null, "body": ""}"#;
        let r = judge_http(&check, &out(0, refused, ""));
        assert_eq!(r.actual, "no answer: URLError: refused");

        let missing = out(
            127,
            "",
            "exec: \"python3\": executable file not found in $PATH",
        );
        let r = judge_http(&check, &missing);
        assert!(
            r.actual.contains("`python3` is not in the image"),
            "{}",
            r.actual
        );
    }

    #[test]
    fn user_env_and_labels_are_judged() {
        assert!(judge_not_root(&out(0, "10001\n", "")).passed);
        let r = judge_not_root(&out(0, "0\n", ""));
        assert!(!r.passed && r.actual == "uid 0");

        let env = ["PATH=/usr/bin".to_string(), "A=1".into(), "B=".into()];
        assert!(judge_env(&["A=1".into(), "B".into()], &env).passed);
        let r = judge_env(&["A=2".into(), "C".into()], &env);
        assert!(!r.passed);
        assert_eq!(r.actual, "A=1, C undefined");

        let labels: BTreeMap<String, String> = [("a".to_string(), "x".to_string())].into();
        assert!(judge_labels(&["a".into()], Some(&labels)).passed);
        let r = judge_labels(&["a".into(), "b".into()], Some(&labels));
        assert_eq!(r.actual, "missing: b");
        assert!(!judge_labels(&["a".into()], None).passed);
    }

    #[test]
    fn forbidden_paths_and_packages_are_judged() {
        let paths = ["/a".to_string(), "/root/.cache".into()];
        assert!(judge_paths(&paths, &out(0, r#"{"present": [], "unreadable": []}"#, "")).passed);
        let r = judge_paths(
            &paths,
            &out(
                0,
                r#"{"present": ["/a"], "unreadable": ["/root/.cache (Permission denied)"]}"#,
                "",
            ),
        );
        assert!(!r.passed);
        assert_eq!(
            r.actual,
            "present: /a; cannot tell: /root/.cache (Permission denied)"
        );

        let globs = ["nvidia-*".to_string()];
        assert!(judge_packages(&globs, &out(0, "[]", "")).passed);
        let r = judge_packages(&globs, &out(0, r#"["nvidia-cublas-cu12 12.8"]"#, ""));
        assert_eq!(r.actual, "installed: nvidia-cublas-cu12 12.8");
        let r = judge_packages(&globs, &out(127, "", "executable file not found in $PATH"));
        assert!(
            r.actual.contains("`python3` is not in the image"),
            "{}",
            r.actual
        );
    }

    fn state(status: &str, health: Option<&str>) -> ContainerState {
        ContainerState {
            status: status.into(),
            running: status == "running",
            exit_code: if status == "exited" { 3 } else { 0 },
            health: health.map(|h| docker::Health {
                status: h.into(),
                failing_streak: 4,
                log: None,
            }),
            ..ContainerState::default()
        }
    }

    #[test]
    fn container_states_are_judged() {
        let engine = HealthMode::Engine;
        assert_eq!(
            judge_state(&state("created", None), &engine),
            StateVerdict::Waiting
        );
        assert_eq!(
            judge_state(&state("running", Some("starting")), &engine),
            StateVerdict::Waiting
        );
        assert_eq!(
            judge_state(&state("running", Some("healthy")), &engine),
            StateVerdict::Healthy
        );
        assert_eq!(
            judge_state(&state("running", Some("unhealthy")), &engine),
            StateVerdict::Unhealthy(
                "the health check reports unhealthy (4 failing probes in a row)".into()
            )
        );
        assert_eq!(
            judge_state(&state("exited", Some("starting")), &engine),
            StateVerdict::Exited("the container exited with code 3".into())
        );
        let mut oom = state("exited", None);
        oom.oom_killed = true;
        assert!(
            matches!(judge_state(&oom, &engine), StateVerdict::Exited(w) if w.contains("out of memory"))
        );
        // With xtask's own probe, the engine's health status is not consulted.
        let probe = HealthMode::Probe("/health".into());
        assert_eq!(
            judge_state(&state("running", None), &probe),
            StateVerdict::Waiting
        );
    }

    #[test]
    fn the_first_passing_probe_marks_the_healthy_answer() {
        let probe = |code, end: &str| HealthProbe {
            exit_code: code,
            end: end.into(),
            ..HealthProbe::default()
        };
        let log = [
            probe(1, "2026-11-28T03:30:26.5Z"),
            probe(0, "2026-11-28T03:30:27.25Z"),
            probe(0, "2026-11-28T03:30:28Z"),
        ];
        assert_eq!(
            first_pass_end(&log),
            util::parse_rfc3339("2026-11-28T03:30:27.25Z")
        );
        assert_eq!(first_pass_end(&log[..1]), None);
    }

    #[test]
    fn diagnostics_show_the_failed_check_probes_and_logs() {
        let o = Outcome {
            variant: "cpu".into(),
            image: "img".into(),
            container: Some("xtask-smoke-cpu-1".into()),
            passed: false,
            healthy_after_ms: Some(1200),
            verdict_ms: Some(300),
            verdict_after_probe_ms: None,
            checks_passed: 1,
            checks_total: 2,
            checks: vec![CheckResult::new(
                "imports",
                false,
                "exit 0".into(),
                "exit 1".into(),
            )],
            failure: Some("check `imports` failed".into()),
            health_log: vec![HealthProbe {
                exit_code: 1,
                output: "health: 503\n".into(),
                ..HealthProbe::default()
            }],
            logs: Some("line one\nline two\n".into()),
            kept: false,
        };
        let d = render_diagnostics(&o);
        assert!(
            d.starts_with("smoke cpu FAILED: check `imports` failed\n"),
            "{d}"
        );
        assert!(d.contains("expected: exit 0\n    actual:   exit 1"), "{d}");
        assert!(d.contains("exit   1: health: 503"), "{d}");
        assert!(
            d.contains("of xtask-smoke-cpu-1:\n    | line one\n    | line two\n"),
            "{d}"
        );
        let t = summary_table(&[o]).render_text();
        assert!(
            t.contains("FAIL") && t.contains("1.2 s") && t.contains("300 ms") && t.contains("1/2"),
            "{t}"
        );
    }
}
