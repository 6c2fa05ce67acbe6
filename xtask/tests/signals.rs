//! Signals against the real engine: an interrupted `cargo xtask smoke` never reports (over many
//! runs, signals at every moment of a run), and what a SIGKILLed xtask left is reclaimed by the
//! next one. Own test binary: the reclaim test must not race the smokes of other tests, which
//! would reclaim its container first.

// SIGINT, SIGTERM and SIGKILL sent with kill(1): Unix only (Windows stops processes otherwise).
#![cfg(unix)]
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Scopes leak checks to one test.
const CASE: &str = "voxserve.xtask.case";

/// The tests of this binary start smokes, and every smoke reclaims: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The smoke fixture's config: every check a real variant has (exec, HTTP, user, env, labels,
/// paths, packages), so a run spends time in each stage.
fn write_config(dir: &Scratch) -> String {
    let dockerfile = fixtures().join("smoke-app").join("Dockerfile");
    let body = format!(
        r#"[variants.app]
image = "localhost/xtask-fixture-smoke-app"
dockerfile = "{dockerfile}"

[variants.app.smoke]
health_timeout = "60s"
memory = "256m"
cpus = "1"
env = ["FIXTURE_ENV=1"]
labels = ["org.opencontainers.image.title"]
forbidden_paths = ["/usr/bin/gcc", "/root/.cache"]
forbidden_packages = ["nvidia-*"]

[[variants.app.smoke.exec]]
name = "python runs"
cmd = ["python3", "-c", "print('ok')"]
stdout_contains = "ok"

[[variants.app.smoke.http]]
name = "health"
path = "/health"
json = {{ status = "ok", db = "ok" }}

[[variants.app.smoke.http]]
name = "analyze a WAV"
method = "POST"
path = "/v1/analyze"
wav_seconds = 0.5
"#,
        dockerfile = dockerfile.display()
    );
    let path = dir.write("images.toml", &format!("{}{body}", config_head()));
    path.to_string_lossy().into_owned()
}

fn smoke(config: &str, image: &str, case: &str, summary: &Path, extra: &[&str]) -> Command {
    let mut cmd = xtask();
    cmd.args(["--config", config, "smoke", "app", "--image", image])
        .args(["--label", &format!("{LABEL}={}", run_id())])
        .args(["--label", &format!("{CASE}={case}")])
        .args(["--format", "json"])
        .args(extra)
        .env("GITHUB_STEP_SUMMARY", summary);
    cmd
}

fn containers(filter: &str) -> Vec<String> {
    let run = docker(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
    run.stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn case_containers(case: &str) -> Vec<String> {
    containers(&format!("label={CASE}={case}"))
}

/// One smoke, signalled `after` its start unless it finished first.
struct Attempt {
    signal: &'static str,
    after: Duration,
    /// None: the smoke had finished before the signal was due.
    signalled: Option<std::process::Output>,
    summary: std::path::PathBuf,
    case: String,
}

fn attempt(
    config: &str,
    image: &str,
    dir: &Scratch,
    i: usize,
    signal: &'static str,
    after: Duration,
) -> Attempt {
    let case = format!("int-{}-{i}", run_id());
    let summary = dir.path().join(format!("summary-{i}.md"));
    let mut child = smoke(config, image, &case, &summary, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning xtask smoke");
    let due = Instant::now() + after;
    let mut finished = false;
    while Instant::now() < due {
        if child.try_wait().unwrap().is_some() {
            finished = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5).min(due - Instant::now()));
    }
    if !finished {
        Run::of(Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]));
    }
    let out = child.wait_with_output().unwrap();
    Attempt {
        signal,
        after,
        signalled: (!finished).then_some(out),
        summary,
        case,
    }
}

#[test]
fn interrupted_smokes_never_report_over_many_runs() {
    let _serial = serial();
    let image = fixture_image("smoke-app", &["--target=app"]);
    let dir = Scratch::new("signals-many");
    let config = write_config(&dir);

    // An uninterrupted run reports, on stdout and in the step summary: what the interrupted runs
    // must not do. Its duration spreads the signals over a whole run.
    let summary = dir.path().join("summary-reference.md");
    let start = Instant::now();
    let reference = Run::of(&mut smoke(&config, &image, "int-reference", &summary, &[]));
    let took = start.elapsed();
    assert_eq!(
        reference.code, 0,
        "{}\n{}",
        reference.stdout, reference.stderr
    );
    assert!(
        reference.stdout.contains("\"passed\": true"),
        "{}",
        reference.stdout
    );
    assert!(std::fs::read_to_string(&summary)
        .unwrap()
        .contains("Smoke tests"));
    eprintln!("reference smoke: {took:?}");

    // From the first milliseconds (before the container exists) to the end of the checks, SIGINT
    // and SIGTERM alternating; three at a time to keep the wall time down.
    const RUNS: usize = 24;
    const PARALLEL: usize = 3;
    let span = took.mul_f64(0.95);
    let plan: Vec<(usize, &'static str, Duration)> = (0..RUNS)
        .map(|i| {
            let signal = if i % 2 == 0 { "INT" } else { "TERM" };
            (i, signal, span.mul_f64((i as f64 + 0.5) / RUNS as f64))
        })
        .collect();
    let mut attempts = Vec::new();
    for batch in plan.chunks(PARALLEL) {
        let done: Vec<Attempt> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|&(i, signal, after)| {
                    let (config, image, dir) = (&config, &image, &dir);
                    s.spawn(move || attempt(config, image, dir, i, signal, after))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        attempts.extend(done);
    }

    let mut interrupted = 0;
    for a in &attempts {
        let what = format!("SIG{} after {:?}", a.signal, a.after);
        let left = case_containers(&a.case);
        assert!(left.is_empty(), "{what}: containers left behind: {left:?}");
        let Some(out) = &a.signalled else {
            continue;
        };
        interrupted += 1;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{what}:\n{stdout}\n{stderr}");
        assert!(
            stdout.is_empty(),
            "{what}: a report on stdout:\n{stdout}\n{stderr}"
        );
        assert!(
            !a.summary.exists(),
            "{what}: a step summary was written:\n{}",
            std::fs::read_to_string(&a.summary).unwrap_or_default()
        );
        assert!(
            stderr.contains("interrupted: cleaning up"),
            "{what}:\n{stderr}"
        );
        let after_signal = stderr
            .split("interrupted: cleaning up")
            .nth(1)
            .unwrap_or("");
        for verdict in ["error:", "passed (", "FAILED", "check `"] {
            assert!(
                !after_signal.contains(verdict),
                "{what}: `{verdict}` after the signal:\n{stderr}"
            );
        }
    }
    eprintln!("{interrupted} of {RUNS} smokes interrupted, none reported");
    assert!(
        interrupted >= RUNS * 3 / 4,
        "only {interrupted} of {RUNS} smokes were still running when signalled"
    );
}

#[test]
fn a_sigkilled_smoke_leaves_a_container_the_next_smoke_reclaims() {
    let _serial = serial();
    let never = fixture_image("smoke-app", &["--target=app", "--build-arg=MODE=never"]);
    let healthy = fixture_image("smoke-app", &["--target=app"]);
    let dir = Scratch::new("signals-kill");
    let config = write_config(&dir);
    let summary = dir.path().join("summary.md");
    let case = format!("kill-{}", run_id());

    let mut child = smoke(&config, &never, &case, &summary, &["--timeout", "300s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning xtask smoke");
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        if let Some(name) = case_containers(&case).pop() {
            break name;
        }
        assert!(
            Instant::now() < deadline,
            "the smoke container never appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    Run::of(Command::new("kill").args(["-KILL", &child.id().to_string()])).assert_ok();
    child.wait().unwrap();
    // SIGKILL runs no cleanup: the container stays, with its owner's labels.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        case_containers(&case),
        std::slice::from_ref(&victim),
        "SIGKILL removed it?"
    );
    let owner = docker(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"voxserve.xtask.owner.pid\"}}",
        &victim,
    ]);
    assert_eq!(owner.stdout.trim(), child.id().to_string());

    // The next smoke removes it before it starts its own, and says so.
    let next = Run::of(&mut smoke(&config, &healthy, "kill-next", &summary, &[]));
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    assert!(case_containers(&case).is_empty(), "not reclaimed: {victim}");
    let said = next
        .stderr
        .lines()
        .find(|l| l.contains("stale container"))
        .unwrap_or_else(|| panic!("the next smoke did not say it reclaimed:\n{}", next.stderr));
    assert!(
        said.contains("removed ") && said.contains(&victim),
        "{said}"
    );
    // A kept container has no owner: it is the user's, and no later run takes it.
    let kept = Run::of(&mut smoke(
        &config,
        &healthy,
        "kill-keep",
        &summary,
        &["--keep"],
    ));
    let left = case_containers("kill-keep");
    let again = Run::of(&mut smoke(&config, &healthy, "kill-next", &summary, &[]));
    let still = case_containers("kill-keep");
    for name in &left {
        docker(&["rm", "-f", "-v", name]);
    }
    assert_eq!(kept.code, 0, "{}", kept.stderr);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(still, left, "a later smoke reclaimed the kept container");
}

#[test]
fn stale_fixture_images_are_reclaimed_by_cargo_xtask_test() {
    let _serial = serial();
    ensure_base();
    let dir = Scratch::new("signals-images");
    dir.write(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nLABEL fixture=stale\n"),
    );
    // An owner that is gone: a process that ran and exited (its pid is not reused this soon).
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let alive = owner::process(std::process::id()).unwrap();
    let stale = format!("localhost/xtask-fixture-stale:{}", run_id());
    let live = format!("localhost/xtask-fixture-live:{}", run_id());
    for (tag, pid) in [(&stale, dead_pid.to_string()), (&live, alive.1.clone())] {
        let run = docker(&[
            "buildx",
            "build",
            "--load",
            "--provenance=false",
            &format!("--label={LABEL}={}", run_id()),
            &format!("--label={}={}", owner::OWNER_HOST, alive.0),
            &format!("--label={}={pid}", owner::OWNER_PID),
            &format!("--label={}={}", owner::OWNER_STARTED, alive.2),
            &format!("--tag={tag}"),
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let _cleanup = RemoveTags::new(live.rsplit_once(':').unwrap().0.to_string());

    // `cargo xtask test` reclaims before and after its tests; with both skipped, only that.
    let run = xtask_run(&["test", "--skip-rust", "--skip-app"]).assert_ok();
    assert!(
        run.stderr.contains("stale test image") && run.stderr.contains(&stale),
        "{}",
        run.stderr
    );
    assert_ne!(
        docker(&["image", "inspect", &stale]).code,
        0,
        "{stale} is still there"
    );
    assert_eq!(
        docker(&["image", "inspect", &live]).code,
        0,
        "the image of a live test process was removed"
    );
}

#[test]
fn an_interrupted_bench_stops_the_smoke_it_runs_and_leaves_no_container() {
    let _serial = serial();
    let never = fixture_image("smoke-app", &["--target=app", "--build-arg=MODE=never"]);
    build_bench_binary();
    let dir = Scratch::new("signals-bench");
    let config = write_config(&dir);
    let case = format!("bench-{}", run_id());
    // `bench smoke` runs `cargo xtask smoke` as a child, in a process group of its own: the
    // signal must reach it (and through it, its container), not only the bench.
    let child = xtask()
        .args([
            "--config", &config, "bench", "smoke", "app", "--image", &never,
        ])
        .args(["--runs", "1", "--format", "json"])
        .args(["--label", &format!("{LABEL}={}", run_id())])
        .args(["--label", &format!("{CASE}={case}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning xtask bench smoke");
    let deadline = Instant::now() + Duration::from_secs(60);
    while case_containers(&case).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the smoke container never appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Run::of(Command::new("kill").args(["-TERM", &child.id().to_string()])).assert_ok();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        case_containers(&case).is_empty(),
        "the bench's smoke left its container"
    );
    let smokes = Run::of(Command::new("pgrep").args(["-f", &case]));
    assert!(
        smokes.stdout.trim().is_empty(),
        "still running: {}",
        smokes.stdout
    );
}
