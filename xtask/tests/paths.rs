//! Every path a command prints is relative to the repository root when it is inside it (issue
//! 24): the resolved config, config errors, flag and report errors, doctor, the bench's early
//! checks and a real build print no absolute path of this machine, and say the relative one.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use std::path::{Path, MAIN_SEPARATOR, MAIN_SEPARATOR_STR};

/// The repository's absolute path as this machine writes it (and its canonical form, when a
/// symlink leads there).
fn roots() -> Vec<String> {
    let mut roots = vec![repo_root().to_string_lossy().into_owned()];
    if let Ok(real) = dunce::canonicalize(repo_root()) {
        roots.push(real.to_string_lossy().into_owned());
    }
    roots.dedup();
    roots
}

/// `run` printed no absolute path of the repository, and printed `relative` (a path it names
/// must be there, so a command that printed no path at all cannot pass).
fn assert_relative(what: &str, run: &Run, relative: &str) {
    for root in roots() {
        assert!(
            !run.stdout.contains(&root) && !run.stderr.contains(&root),
            "{what} printed the repository's absolute path {root}:\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
    }
    assert!(
        run.stdout.contains(relative) || run.stderr.contains(relative),
        "{what} did not print `{relative}`:\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

/// A scratch path as the xtask shows it: relative to the repository root (`target/…`), with the
/// host's separator.
fn shown(path: &Path) -> String {
    let rel = path
        .strip_prefix(repo_root())
        .unwrap_or_else(|_| panic!("{} is not in the repository", path.display()));
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join(MAIN_SEPARATOR_STR)
}

fn run_with(config: &Path, args: &[&str]) -> Run {
    Run::of(xtask().arg("--config").arg(config).args(args))
}

#[test]
fn commands_print_paths_relative_to_the_repository() {
    let dir = Scratch::new("paths");
    let good = dir.write(
        "images.toml",
        &format!(
            "{}{}",
            config_head(),
            fixture_variant("fx", &fixtures().join("build-ok"), "localhost/xtask-paths")
        ),
    );
    let config_shown = shown(&good);
    assert!(
        config_shown.starts_with(&format!("target{MAIN_SEPARATOR}xtask-tests")),
        "{config_shown}"
    );

    // The repository's own config, resolved: its file, Dockerfiles and contexts.
    let run = Run::of(xtask().args(["config", "--format", "json"])).assert_ok();
    assert_relative("config --format json", &run, "\"config\": \"images.toml\"");
    assert_relative(
        "config --format json",
        &run,
        "\"dockerfile\": \"Dockerfile\"",
    );
    let run = Run::of(xtask().args(["config", "no-such-variant"]));
    assert_relative(
        "config of an unknown variant",
        &run,
        "(declared in images.toml)",
    );

    // A config given by its absolute path: shown relative, also at `file:line:col`.
    let run = run_with(&good, &["config", "--format", "json"]).assert_ok();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["config"], config_shown.as_str(), "{json}");
    assert_relative("config --config ABS", &run, &config_shown);
    let bad = dir.write(
        "bad.toml",
        &std::fs::read_to_string(&good)
            .unwrap()
            .replace("[variants.fx]", "[variants.fx]\nbudget = \"2.5 GB\""),
    );
    let run = run_with(&bad, &["config"]);
    assert_relative(
        "an images.toml error",
        &run,
        &format!(
            "error: {}:13:10: variant `fx`: `budget` must be",
            shown(&bad)
        ),
    );
    // (A value of images.toml is quoted as written: this one is relative to images.toml.)
    let missing = dir.path().join("nowhere").join("Dockerfile");
    let lost = dir.write(
        "lost.toml",
        &format!(
            "{}[variants.fx]\ndockerfile = \"nowhere/Dockerfile\"\nimage = \"localhost/xtask-paths\"\n",
            config_head()
        ),
    );
    let run = run_with(&lost, &["config"]);
    assert_relative(
        "a missing Dockerfile",
        &run,
        &format!("(looked for {})", shown(&missing)),
    );

    // Flags naming the wrong kind of path, and files that are not what they should be.
    let file = dir.write("taken", "a file\n");
    let run = run_with(&good, &["lint", "--sarif", file.to_str().unwrap()]);
    assert_relative(
        "lint --sarif FILE",
        &run,
        &format!("--sarif {} is not", shown(&file)),
    );
    let run = run_with(
        &good,
        &["scan", "fx", "--save", dir.path().to_str().unwrap()],
    );
    assert_relative(
        "scan --save DIR",
        &run,
        &format!("--save {} is a directory", shown(dir.path())),
    );
    let run = run_with(
        &good,
        &["build", "fx", "--report-dir", file.to_str().unwrap()],
    );
    assert_relative(
        "build --report-dir FILE",
        &run,
        &format!("--report-dir {} is not a directory", shown(&file)),
    );
    assert!(!run.stderr.contains("==> building"), "{}", run.stderr);
    let absent = dir.path().join("build-fx.json");
    let run = run_with(&good, &["merge", "fx", "--from", absent.to_str().unwrap()]);
    assert_relative(
        "merge --from MISSING",
        &run,
        &format!("cannot read the `build` report {}", shown(&absent)),
    );
    let run = run_with(
        &good,
        &["diff", file.to_str().unwrap(), file.to_str().unwrap()],
    );
    assert_relative(
        "diff of a file that is no archive",
        &run,
        &format!("{} is not a tar archive", shown(&file)),
    );
    let run = run_with(
        &good,
        &["bench", "rebuild", "fx", "--peer", absent.to_str().unwrap()],
    );
    assert_relative(
        "bench rebuild --peer MISSING",
        &run,
        &format!("the peer Dockerfile {} does not exist", shown(&absent)),
    );

    // doctor names the config it read (its verdict depends on the machine, not on paths).
    let run = run_with(&good, &["doctor", "--format", "json"]);
    assert_relative("doctor", &run, &format!("{config_shown} (1 variants)"));
}

#[test]
fn a_build_prints_paths_relative_to_the_repository() {
    ensure_base();
    let dir = Scratch::new("paths-build");
    let image = format!("localhost/xtask-paths-{}", run_id());
    let _tags = RemoveTags::new(image.clone());
    let config = dir.write(
        "images.toml",
        &format!(
            "{}[build]\ncache_dir = \"cache\"\n\n{}",
            config_head(),
            fixture_variant("fx", &fixtures().join("build-ok"), &image)
        ),
    );
    let reports = dir.path().join("reports");
    let run = run_with(
        &config,
        &[
            "build",
            "fx",
            "--cache",
            "local",
            "--progress",
            "plain",
            "--format",
            "json",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
    )
    .assert_ok();
    let report = reports.join("build-fx.json");
    assert_relative("build", &run, &format!("report: {}", shown(&report)));
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["builds"][0]["cache"],
        format!("local ({})", shown(&dir.path().join("cache").join("fx"))),
        "{json}"
    );
}
