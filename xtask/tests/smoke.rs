//! `cargo xtask smoke` against the real engine, with the fixture service of
//! `tests/fixtures/smoke-app` (python3's http.server; HEALTHCHECK every 30 s). Every smoke carries
//! the harness label and a per-test `voxserve.xtask.case` label, and every test proves that no
//! container of its own is left behind.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A second label that scopes leak checks to one test (tests of this binary run in parallel).
const CASE: &str = "voxserve.xtask.case";

const FIXTURE: &str = "smoke-app";

fn app_image() -> String {
    fixture_image(FIXTURE, &["--target=app"])
}

/// The smoke config of the fixture; `variant` is appended as `[variants.app]`'s body.
fn write_config(dir: &Scratch, variant: &str) -> String {
    let dockerfile = fixtures().join(FIXTURE).join("Dockerfile");
    let body = format!(
        r#"[defaults]
image = "localhost/xtask-fixture-smoke-app"
dockerfile = "{dockerfile}"

[defaults.smoke]
health_timeout = "60s"
memory = "256m"
cpus = "1"
env = ["FIXTURE_ENV=1", "PYTHONUNBUFFERED"]
labels = ["org.opencontainers.image.title"]
forbidden_paths = ["/usr/bin/gcc", "/root/.cache", "/.git", "/var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease"]
forbidden_packages = ["nvidia-*", "triton"]

[[defaults.smoke.exec]]
name = "python runs"
cmd = ["python3", "-c", "print('ok')"]
stdout_contains = "ok"

[[defaults.smoke.http]]
name = "health"
path = "/health"
json = {{ status = "ok", db = "ok" }}

[[defaults.smoke.http]]
name = "analyze a WAV"
method = "POST"
path = "/v1/analyze"
wav_seconds = 0.5
json = {{ status = "ok", seconds = 0.5 }}

[variants.app]
{variant}
"#,
        dockerfile = dockerfile.display()
    );
    let path = dir.write("images.toml", &format!("{}{body}", config_head()));
    path.to_string_lossy().into_owned()
}

/// `xtask --config CONFIG smoke app --image IMAGE` with the harness and case labels.
fn smoke_cmd(config: &str, image: &str, case: &str, extra: &[&str]) -> Command {
    let mut cmd = xtask();
    cmd.args(["--config", config, "smoke", "app", "--image", image])
        .args(["--label", &format!("{LABEL}={}", run_id())])
        .args(["--label", &format!("{CASE}={case}")])
        .args(extra);
    cmd
}

/// Containers of this run and test case, running or not.
fn case_containers(case: &str) -> Vec<String> {
    let run = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={LABEL}={}", run_id()),
        "--filter",
        &format!("label={CASE}={case}"),
        "--format",
        "{{.Names}}",
    ]);
    run.stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn assert_no_leak(case: &str) {
    let left = case_containers(case);
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

/// The outcomes of a `smoke --format json` report.
fn json(run: &Run) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    });
    assert_eq!(doc["kind"], "smoke", "{}", run.stdout);
    doc["outcomes"].clone()
}

#[test]
fn healthy_fixture_passes_every_check() {
    let case = "healthy";
    let image = app_image();
    let dir = Scratch::new("smoke-healthy");
    let config = write_config(&dir, "");
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &["--format", "json"])).assert_ok();
    let doc = json(&run);
    let o = &doc[0];
    assert_eq!(o["passed"], true, "{}", run.stdout);
    let names: Vec<&str> = o["checks"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|c| assert_eq!(c["passed"], true, "{c}"))
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "python runs",
            "health",
            "analyze a WAV",
            "user is not root",
            "env vars",
            "labels",
            "forbidden paths absent",
            "forbidden python packages absent",
            "shared libraries resolve"
        ]
    );
    assert_eq!(o["checks_passed"], 9);
    assert_eq!(o["checks_total"], 9);
    // The latencies are reported (their targets are `cargo xtask bench smoke`'s to judge).
    for key in ["healthy_after_ms", "verdict_ms", "verdict_after_probe_ms"] {
        assert!(o[key].is_u64(), "{key}: {o}");
    }
    assert!(run.stderr.contains("passed (9/9 checks)"), "{}", run.stderr);
    assert_no_leak(case);
}

#[test]
fn never_healthy_fails_once_its_timeout_is_over_and_shows_the_probes() {
    let case = "never";
    let image = fixture_image(FIXTURE, &["--target=app", "--build-arg=MODE=never"]);
    let dir = Scratch::new("smoke-never");
    let config = write_config(&dir, "");
    let start = Instant::now();
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &["--timeout", "8s"]));
    let took = start.elapsed();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // It waited out its timeout (how much longer it took is no test's business).
    assert!(took >= Duration::from_secs(8), "gave up after {took:?}");
    assert!(
        run.stderr
            .contains("smoke app FAILED: not healthy within 8 s (health status `starting`)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("last health probes")
            && run.stderr.contains("health: 503 {\"status\": \"starting\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("| fixture: listening on :8000"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("FAIL"), "{}", run.stdout);
    assert_no_leak(case);
}

#[test]
fn a_container_that_exits_at_once_fails_on_its_exit_with_its_logs() {
    let case = "exit";
    let image = fixture_image(FIXTURE, &["--target=app", "--build-arg=MODE=exit"]);
    let dir = Scratch::new("smoke-exit");
    let config = write_config(&dir, "");
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &["--format", "json"]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // Judged on the exit, not after the 60 s timeout ran out.
    assert_eq!(
        json(&run)[0]["failure"],
        "the container exited with code 3",
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("| fixture: exiting at once (FIXTURE_MODE=exit)"),
        "{}",
        run.stderr
    );
    assert_no_leak(case);
}

#[test]
fn no_healthcheck_is_a_clear_error_unless_an_http_probe_is_configured() {
    let case = "nohealth";
    let image = fixture_image(FIXTURE, &["--target=nohealth"]);
    let dir = Scratch::new("smoke-nohealth");
    let config = write_config(&dir, "");
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &[]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("the image has no HEALTHCHECK")
            && run.stderr.contains("`smoke.http_probe`"),
        "{}",
        run.stderr
    );
    assert_no_leak(case);

    let config = write_config(&dir, "[variants.app.smoke]\nhttp_probe = \"/health\"\n");
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &["--format", "json"])).assert_ok();
    assert_eq!(json(&run)[0]["checks_passed"], 9, "{}", run.stdout);
    assert_no_leak(case);
}

#[test]
fn a_root_image_is_refused_and_runs_with_allow_root() {
    let case = "root";
    let image = fixture_image(FIXTURE, &["--target=root"]);
    let dir = Scratch::new("smoke-root");
    let config = write_config(&dir, "");
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &[]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("refused: the image runs as root (no USER, so root)")
            && run.stderr.contains("--allow-root"),
        "{}",
        run.stderr
    );
    assert_no_leak(case);

    let run = Run::of(&mut smoke_cmd(
        &config,
        &image,
        case,
        &["--allow-root", "--format", "json"],
    ))
    .assert_ok();
    let doc = json(&run);
    // Without the non-root check.
    assert_eq!(doc[0]["checks_total"], 8, "{}", run.stdout);
    assert_no_leak(case);
}

#[test]
fn a_failing_exec_check_reports_expected_and_actual() {
    let case = "badexec";
    let image = app_image();
    let dir = Scratch::new("smoke-badexec");
    let config = write_config(
        &dir,
        "[[variants.app.smoke.exec]]\nname = \"torch imports\"\n\
         cmd = [\"python3\", \"-c\", \"import sys; print('nope'); sys.exit(2)\"]\nstdout_contains = \"ok\"\n",
    );
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &[]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("smoke app FAILED: check `torch imports` failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "    expected: exit 0, stdout contains \"ok\"\n    actual:   exit 2, stdout: \"nope\"\n"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("last health probes") && run.stderr.contains("| fixture:"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("9/10"), "{}", run.stdout);
    assert_no_leak(case);
}

#[test]
fn a_needed_shared_library_missing_from_the_image_fails_and_is_named() {
    let case = "brokenlib";
    let image = fixture_image(FIXTURE, &["--target=brokenlib"]);
    let dir = Scratch::new("smoke-brokenlib");
    let config = write_config(&dir, "");
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &["--format", "json"]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let doc = json(&run);
    let failed: Vec<&serde_json::Value> = doc[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    assert_eq!(failed[0]["name"], "shared libraries resolve");
    let actual = failed[0]["actual"].as_str().unwrap();
    assert!(
        actual.starts_with("not found: libsqlite3.so.0 (needed by /usr/lib/")
            && actual
                .contains("libsqlite3.so.0 (needed by /usr/lib/python3.13/lib-dynload/_sqlite3"),
        "{actual}"
    );
    // The same image with the library named as the host's passes that check.
    let config = write_config(
        &dir,
        "[variants.app.smoke]\nhost_libraries = [\"libsqlite3.so.0\"]\n",
    );
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &["--format", "json"])).assert_ok();
    let doc = json(&run);
    let check = doc[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "shared libraries resolve")
        .unwrap()
        .clone();
    assert!(
        check["actual"]
            .as_str()
            .unwrap()
            .contains("the host provides (libsqlite3.so.0)"),
        "{check}"
    );
    assert_no_leak(case);
}

// Signals (SIGINT, SIGTERM over many runs; SIGKILL and the reclaim after it): tests/signals.rs.

#[test]
fn two_smokes_of_one_variant_at_once_both_pass() {
    let case = "twice";
    let image = app_image();
    let dir = Scratch::new("smoke-twice");
    let config = write_config(&dir, "");
    let spawn = || {
        smoke_cmd(&config, &image, case, &["--format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning xtask smoke")
    };
    let (a, b) = (spawn(), spawn());
    let names: Vec<String> = [a, b]
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            let doc = &doc["outcomes"];
            assert_eq!(doc[0]["passed"], true);
            doc[0]["container"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_ne!(names[0], names[1]);
    assert_no_leak(case);
}

#[test]
fn keep_leaves_the_container_and_says_how_to_remove_it() {
    let case = "keep";
    let image = app_image();
    let dir = Scratch::new("smoke-keep");
    let config = write_config(&dir, "");
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &["--keep"]));
    let left = case_containers(case);
    for name in &left {
        docker(&["rm", "-f", "-v", name]);
    }
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        run.stderr
            .contains(&format!("remove it with `docker rm -f -v {}`", left[0])),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_image_names_the_build_command() {
    ensure_engine();
    let dir = Scratch::new("smoke-missing");
    let config = write_config(&dir, "");
    let run = xtask_run(&["--config", &config, "smoke", "app"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "localhost/xtask-fixture-smoke-app:app does not exist locally: run `cargo xtask build app` first"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_pytest_check_runs_its_file_in_the_container_and_a_skip_fails_it() {
    let case = "pytest";
    let image = app_image();
    let dir = Scratch::new("smoke-pytest");
    let tests = fixtures().join("smoke-pytest");
    let lock = repo_root().join("app").join("requirements-dev.lock");
    let check = |name: &str, file: &str| {
        format!(
            "[[variants.app.smoke.pytest]]\nname = \"{name}\"\npath = \"{}\"\nrequirements = \"{}\"\n",
            tests.join(file).display(),
            lock.display()
        )
    };
    // The files are outside the scratch dir: the config lives where it may name them.
    let config = write_config(
        &dir,
        &format!(
            "{}{}",
            check("in the container", "test_in_image.py"),
            check("skips", "test_skipped.py")
        ),
    );
    let run = Run::of(&mut smoke_cmd(&config, &image, case, &["--format", "json"]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let doc = json(&run);
    let checks = doc[0]["checks"].as_array().unwrap();
    let find = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name}: {doc}"))
    };
    let ran = find("in the container");
    assert_eq!(ran["passed"], true, "{ran}");
    assert!(
        ran["actual"].as_str().unwrap().starts_with("2 passed"),
        "{ran}"
    );
    let skipped = find("skips");
    assert_eq!(skipped["passed"], false, "{skipped}");
    assert!(
        skipped["actual"].as_str().unwrap().contains("1 skipped")
            && skipped["actual"].as_str().unwrap().contains("torch"),
        "{skipped}"
    );
    assert!(
        run.error_line().contains("check `skips` failed"),
        "{}",
        run.stderr
    );
    assert_no_leak(case);
}
