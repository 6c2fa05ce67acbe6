//! Bad input, as a hostile new user gives it: the real xtask binary on broken images.toml files
//! and flags. Each gets exit 2 and one `error:` line that names the place (file:line:col) and the
//! fix, before any docker command runs: every run here points DOCKER_HOST at a socket that does
//! not exist, so no engine, image or offline base is needed. An unwritable step summary is a
//! warning that leaves the verdict's exit code alone.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// A socket no engine listens on: an error that needed docker would say "cannot reach".
const NO_ENGINE: &str = "unix:///nonexistent/xtask-bad-input.sock";

fn without_engine(mut cmd: Command) -> Run {
    Run::of(cmd.env("DOCKER_HOST", NO_ENGINE))
}

/// A config whose variant `a` (lines 12–14) has `extra` from line 15 on, in a directory with a
/// `Dockerfile` (stage `app`, `ARG WITH_TORCH`) and a symlink `escape` to `/etc`.
fn write_config(dir: &Scratch, extra: &str) -> String {
    dir.write("Dockerfile", "FROM scratch AS app\nARG WITH_TORCH=0\n");
    #[cfg(unix)]
    if !dir.path().join("escape").exists() {
        std::os::unix::fs::symlink("/etc", dir.path().join("escape")).unwrap();
    }
    let body = format!("[variants.a]\ndockerfile = \"Dockerfile\"\nimage = \"i\"\n{extra}\n");
    dir.write("images.toml", &format!("{}{body}", config_head()))
        .to_string_lossy()
        .into_owned()
}

/// Checks a run of a bad input: exit 2, exactly one `error:` line (it must be the whole story),
/// and no sign that docker was needed to find it. Returns the error line.
fn one_error_line(run: &Run, what: &str) -> String {
    assert_eq!(
        run.code, 2,
        "{what}: expected exit 2\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{what}: one error: line\n{}", run.stderr);
    assert!(
        !run.stderr.contains("cannot reach the Docker engine") && !run.stderr.contains("panicked"),
        "{what}: {}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "{what}: nothing on stdout: {}",
        run.stdout
    );
    errors[0].to_string()
}

#[test]
fn every_bad_config_value_is_one_error_line_at_its_place_with_the_fix() {
    let dir = Scratch::new("bad-input-values");
    let repo = dunce::canonicalize(repo_root()).unwrap();
    let cases = [
        (
            "[variants.b]\ndockerfile = \"Dockerfile\"\nimage = \"Vox Serve!\"",
            "images.toml:17:9: variant `b`: image: `Vox Serve!` is not a valid image name: `V` is uppercase (repository names are lowercase); use lowercase letters",
        ),
        (
            "tags = [\"registry.example:5000/vox:1.0\", \"vox:-x\"]",
            "images.toml:15:42: variant `a`: tags: `vox:-x`: `-x` is not a valid tag: a tag is 1 to 128 letters",
        ),
        (
            "smoke = { cpus = \"-3\" }",
            "images.toml:15:18: variant `a`: smoke.cpus: `-3` is not a number of CPUs; write a positive number such as \"2\" or \"1.5\"",
        ),
        (
            "smoke = { memory = \"lots\" }",
            "images.toml:15:20: variant `a`: smoke.memory: `lots` is not a memory size `docker run --memory` takes; write a number and b, k, m or g",
        ),
        (
            "smoke = { health_timeout = \"90\" }",
            "images.toml:15:28: variant `a`: smoke.health_timeout: `90` has no unit; write e.g. `90s` or `90m` (units: ns, us, ms, s, m and h)",
        ),
        (
            "smoke = { health_timeout = \"99999999999999999999h\" }",
            "images.toml:15:28: variant `a`: smoke.health_timeout: `99999999999999999999h` is too long: docker takes at most 2562047h",
        ),
        (
            "smoke = { health_timeout = \"9999999h\" }",
            "images.toml:15:28: variant `a`: smoke.health_timeout: `9999999h` is too long: docker takes at most 2562047h",
        ),
        (
            "smoke = { port = 70000 }",
            "images.toml:15:18: variant `a`: `port` must be a port number from 1 to 65535, not integer `70000`",
        ),
        (
            "platforms = [\"linux/amd64\", \"linux/amd46\"]",
            "images.toml:15:29: variant `a`: platforms: `linux/amd46`: unknown architecture `amd46`; use one of 386, amd64",
        ),
        (
            "platforms = [\"linux/x86_64\"]",
            "images.toml:15:14: variant `a`: platforms: `linux/x86_64`: buildx calls `x86_64` `amd64`; write `linux/amd64`",
        ),
        (
            "[[variants.a.smoke.http]]\nname = \"health\"\npath = \"/health\"\nstatus = 9999",
            "images.toml:18:10: variant `a`: smoke.http: check `health` expects status 9999, which is no HTTP status; use 100 to 599",
        ),
        (
            "budget = { compressed = \"0 GB\" }",
            "images.toml:15:25: variant `a`: budget.compressed: `0 GB` leaves no room at all; give a size above 0, or remove `compressed` for no budget",
        ),
        (
            "budget = \"2.5 GB\"",
            "images.toml:15:10: variant `a`: `budget` must be a table like { compressed = \"2.5 GB\", unpacked = \"4 GB\" }, not string \"2.5 GB\"",
        ),
        (
            "target = \"runtime\"",
            "images.toml:15:10: variant `a`: target: Dockerfile has no stage `runtime`; its stages are app",
        ),
        (
            "build_args = { WITH_TROCH = \"1\" }",
            "images.toml:15:16: variant `a`: build_args: Dockerfile declares no `ARG WITH_TROCH`, so BuildKit would ignore it; its ARGs: WITH_TORCH",
        ),
        (
            "[[variants.a.smoke.exec]]\nname = \"imports\"\ncmd = []",
            "images.toml:17:7: variant `a`: smoke.exec: check `imports` has an empty `cmd`; give the program and its arguments",
        ),
        (
            "push_compression = \"lz4\"",
            "images.toml:15:20: variant `a`: push_compression: unknown compression `lz4`; use gzip or zstd",
        ),
    ];
    // /etc and a symlink to it: Unix only (Windows makes symlinks only with a privilege);
    // config's unit test `a_path_that_leaves_the_repository_names_where_it_leads` runs everywhere.
    let unix_only = [
        (
            "context = \"escape\"",
            "images.toml:15:11: variant `a`: context: `escape` leads to /etc, outside",
        ),
        (
            "[variants.b]\ndockerfile = \"../../../../../../../../../../etc/hostname\"\nimage = \"i\"",
            "images.toml:16:14: variant `b`: dockerfile: `../../../../../../../../../../etc/hostname` leads to /etc/hostname, outside",
        ),
    ];
    let unix_only = if cfg!(unix) { &unix_only[..] } else { &[] };
    for &(extra, want) in cases.iter().chain(unix_only) {
        let config = write_config(&dir, extra);
        let run = without_engine({
            let mut cmd = xtask();
            cmd.args(["--config", &config, "config"]);
            cmd
        });
        let line = one_error_line(&run, extra);
        let at = line.find("images.toml:").unwrap_or(0);
        assert!(
            line[at..].starts_with(want),
            "{extra}\n  got:  {line}\n  want: …{want}"
        );
        assert!(
            line.starts_with(&format!("error: {}", xtask::util::shown(dir.path()))),
            "{line}"
        );
        if line.contains("outside") {
            // The repository the test config lives in, named as the fix's boundary.
            let outside = format!("outside {} (", xtask::util::shown(&repo));
            assert!(line.contains(&outside), "{line}");
        }
    }
}

#[test]
fn commands_report_a_bad_config_before_they_need_docker() {
    let dir = Scratch::new("bad-input-commands");
    let config = write_config(&dir, "smoke = { cpus = \"-3\" }");
    for args in [
        &["build", "a"][..],
        &["smoke", "a"],
        &["sizes", "a"],
        &["scan", "a"],
        &["bench", "rebuild", "a"],
    ] {
        let run = without_engine({
            let mut cmd = xtask();
            cmd.args(["--config", &config]).args(args);
            cmd
        });
        let line = one_error_line(&run, &args.join(" "));
        assert!(
            line.contains(
                "images.toml:15:18: variant `a`: smoke.cpus: `-3` is not a number of CPUs"
            ),
            "{args:?}: {line}"
        );
    }
}

#[test]
fn bad_durations_on_the_command_line_are_usage_errors_not_panics() {
    for (timeout, want) in [
        (
            "99999999999999999999h",
            "is too long: docker takes at most 2562047h",
        ),
        ("9999999h", "is too long: docker takes at most 2562047h"),
        (
            "90",
            "`90` has no unit; write e.g. `90s` or `90m` (units: ns, us, ms, s, m and h)",
        ),
        ("0s", "is shorter than 1ms"),
        ("2 days", "unknown unit `days`"),
        // A hyphen value is the flag's value, not clap's "unexpected argument" (whose tip,
        // `-- -5`, would make it a variant name).
        ("-5s", "`-5s` is negative"),
    ] {
        let run = without_engine({
            let mut cmd = xtask();
            cmd.args(["smoke", "cpu-minimal", "--timeout", timeout]);
            cmd
        });
        let line = one_error_line(&run, timeout);
        assert!(line.contains(want), "{timeout}: {line}");
    }
}

#[test]
fn sizes_save_naming_a_directory_is_refused_before_any_work_and_writes_nothing() {
    let dir = Scratch::new("bad-input-sizes-save");
    let run = without_engine({
        let mut cmd = xtask();
        cmd.args(["sizes", "cpu-minimal", "--save"]).arg(dir.path());
        cmd
    });
    let line = one_error_line(&run, "sizes --save DIR");
    assert!(
        line.ends_with("is a directory: name the file to write"),
        "{line}"
    );
    let parent = dir.path().parent().unwrap();
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let left: Vec<String> = std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{name}.")))
        .collect();
    assert!(left.is_empty(), "a temp report was left: {left:?}");
}

#[test]
fn bad_build_flags_are_usage_errors_before_buildx() {
    for (flag, value, want) in [
        ("--platform", "linux/amd46", "unknown architecture `amd46`"),
        (
            "--platform",
            "linux/amd64,linux/aarch64",
            "write `linux/arm64`",
        ),
        (
            "--tag",
            "Vox Serve!",
            "`V` is uppercase (repository names are lowercase)",
        ),
        ("--tag", "voxserve:-edge", "`-edge` is not a valid tag"),
        (
            "--build-arg",
            "WITH_TORCH",
            "--build-arg `WITH_TORCH` is not KEY=VALUE",
        ),
    ] {
        let run = without_engine({
            let mut cmd = xtask();
            cmd.args(["build", "cpu-minimal", flag, value]);
            cmd
        });
        let line = one_error_line(&run, value);
        assert!(
            line.starts_with(&format!(
                "error: invalid value '{}'",
                value.split(',').next_back().unwrap()
            )) && line.contains(want),
            "{flag} {value}: {line}"
        );
    }
}

#[test]
fn an_unwritable_step_summary_is_a_warning_and_the_verdict_stands() {
    let dir = Scratch::new("bad-input-summary");
    let dockerfile = fixtures().join("build-ok").join("Dockerfile");
    let config = dir.write(
        "images.toml",
        &format!(
            "{}[variants.app]\ndockerfile = '{}'\nimage = \"localhost/xtask-scan\"\n",
            config_head(),
            dockerfile.display()
        ),
    );
    let report = fixtures().join("trivy").join("mixed.json");
    let scan = |summary: &Path| {
        without_engine({
            let mut cmd = xtask();
            cmd.arg("--config")
                .arg(&config)
                .args(["scan", "app", "--from-report"])
                .arg(&report)
                .env("GITHUB_STEP_SUMMARY", summary);
            cmd
        })
    };

    // A directory cannot be appended to: the summary fails, the failing verdict (exit 1) stands.
    let run = scan(dir.path());
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let warning = run
        .stderr
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains("GITHUB_STEP_SUMMARY"))
        .unwrap_or_else(|| panic!("no warning about the step summary:\n{}", run.stderr));
    assert!(
        warning.contains(&xtask::util::shown(dir.path())),
        "{warning}"
    );
    assert!(run.error_line().contains("CVE-2099-0001"), "{}", run.stderr);
    assert!(
        run.stdout.contains("FAIL"),
        "the verdict is printed:\n{}",
        run.stdout
    );

    // A writable one receives the same verdict.
    let summary = dir.path().join("summary.md");
    let run = scan(&summary);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains("warning: "), "{}", run.stderr);
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(written.contains("CVE-2099-0001"), "{written}");
}
