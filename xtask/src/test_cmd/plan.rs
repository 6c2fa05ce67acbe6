//! What a test run compiles and runs, and in which order (pure): the scope's `cargo test` targets,
//! the test binaries Cargo built, which of them may run at the same time, and what each said.

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use std::time::Duration;

/// Which tests a run takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every test: unit, integration (against the engine), and the app's.
    Full,
    /// No image builds: the unit tests, the CLI and config tests, the docs checks, the app's.
    Quick,
    /// The unit tests and the docs checks: no engine and no uv, on any OS.
    Unit,
}

/// The test targets of `--unit`, after the library's and binaries' unit tests.
const UNIT_TESTS: &[&str] = &["docs_drift", "docs_blocks"];
/// What `--quick` adds to them: the CLI on bad input and bad configs, no engine needed.
const QUICK_TESTS: &[&str] = &["bad_input", "cli"];

/// Started first, the longest first, so that none of them starts last and draws the run out
/// (docs/TESTING.md has their times). The others follow in name order.
const LONGEST_FIRST: &[&str] = &[
    "platforms",
    "reproducible",
    "images",
    "bench",
    "foundation",
    "publish",
    "sizes",
    "scan",
    "build",
    "lint",
    "smoke",
];

/// Test threads for binaries whose tests wait on emulation, image builds and locks rather than on
/// the CPUs: all of their tests start at once, so that the longest (the emulated arm64 base) does
/// not queue behind the others (libtest's default is one thread per CPU).
const TEST_THREADS: &[(&str, &str)] = &[("platforms", "5")];

/// Binaries that never run while certain others do.
const APART: &[(&str, &[&str])] = &[
    // Its reclaim test kills a smoke and expects its own next smoke to remove the container
    // left; a smoke of another binary would remove it first.
    (
        "signals",
        &["smoke", "images", "platforms", "bench", "publish"],
    ),
];

/// Binaries that run while no other binary runs (see the file's own reason).
const ALONE: &[&str] = &["alone"];

/// One test binary to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) name: String,
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    /// Where it runs: its package's directory, as `cargo test` runs it.
    pub(crate) dir: Utf8PathBuf,
}

/// `cargo test` arguments that compile the scope's tests without running them, the list of
/// binaries on stdout as JSON.
pub(crate) fn compile_args(scope: Scope) -> Vec<String> {
    let mut args: Vec<String> = [
        "test",
        "--workspace",
        "--locked",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]
    .map(String::from)
    .to_vec();
    let tests: Vec<&str> = match scope {
        Scope::Full => return args,
        Scope::Unit => UNIT_TESTS.to_vec(),
        Scope::Quick => UNIT_TESTS.iter().chain(QUICK_TESTS).copied().collect(),
    };
    args.extend(["--lib", "--bins"].map(String::from));
    for test in tests {
        args.extend(["--test".to_string(), test.to_string()]);
    }
    args
}

/// `cargo build` arguments for the binaries the tests run through Cargo: `cargo xtask bench`
/// runs `cargo run -p xtask-bench`, which would otherwise compile it inside a test's time limit.
/// Its package alone, as `cargo run` selects it, so that the features and the artifact match.
pub(crate) fn bins_args(scope: Scope) -> Option<Vec<String>> {
    (scope != Scope::Unit).then(|| {
        ["build", "--locked", "-p", "xtask-bench", "--bins"]
            .map(String::from)
            .to_vec()
    })
}

/// What Cargo says of one compiled unit (`--message-format=json`), as far as read here.
#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    executable: Option<Utf8PathBuf>,
    #[serde(default)]
    manifest_path: Option<Utf8PathBuf>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct Profile {
    test: bool,
}

/// The test binaries in Cargo's JSON messages, each to run with `args` (a filter, libtest flags).
pub(crate) fn binaries(cargo_json: &str, args: &[String]) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for line in cargo_json.lines().filter(|l| l.starts_with('{')) {
        let message: Message = serde_json::from_str(line)
            .with_context(|| format!("reading Cargo's message {line}"))?;
        let (Some(exe), Some(manifest), Some(target), Some(profile)) = (
            message.executable,
            message.manifest_path,
            message.target,
            message.profile,
        ) else {
            continue;
        };
        if message.reason != "compiler-artifact" || !profile.test {
            continue;
        }
        let name = match target.kind.first().map(String::as_str) {
            Some("test") => target.name,
            Some(kind) => format!("{} ({kind})", target.name),
            None => target.name,
        };
        jobs.push(Job {
            name,
            program: exe.into_string(),
            args: args.to_vec(),
            dir: manifest
                .parent()
                .unwrap_or(Utf8Path::new("."))
                .to_path_buf(),
        });
    }
    Ok(jobs)
}

/// The order to start the jobs in: [`LONGEST_FIRST`], then the others by name.
pub(crate) fn start_order(jobs: &[Job]) -> Vec<usize> {
    let rank = |job: &Job| {
        LONGEST_FIRST
            .iter()
            .position(|n| *n == job.name)
            .unwrap_or(LONGEST_FIRST.len())
    };
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| (rank(&jobs[a]), &jobs[a].name).cmp(&(rank(&jobs[b]), &jobs[b].name)));
    order
}

/// `RUST_TEST_THREADS` for binary `name`, when it is not libtest's default.
pub(crate) fn test_threads(name: &str) -> Option<&'static str> {
    TEST_THREADS
        .iter()
        .find(|(binary, _)| *binary == name)
        .map(|(_, threads)| *threads)
}

/// Whether `a` and `b` may run at the same time.
pub(crate) fn compatible(a: &str, b: &str) -> bool {
    let apart = |x: &str, y: &str| {
        APART
            .iter()
            .any(|(one, others)| *one == x && others.contains(&y))
    };
    !(ALONE.contains(&a) || ALONE.contains(&b) || apart(a, b) || apart(b, a))
}

/// The next job to start: the first in `order` not started yet that is compatible with every
/// running one; None when `limit` jobs run, or none can start now.
pub(crate) fn next_job(
    jobs: &[Job],
    order: &[usize],
    started: &[bool],
    running: &[usize],
    limit: usize,
) -> Option<usize> {
    if running.len() >= limit {
        return None;
    }
    order.iter().copied().find(|&i| {
        !started[i]
            && running
                .iter()
                .all(|&r| compatible(&jobs[i].name, &jobs[r].name))
    })
}

/// How one job ended.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) name: String,
    pub passed: bool,
    pub(crate) counts: Counts,
    /// When it started, from the start of the run's tests.
    pub(crate) started: Duration,
    pub(crate) took: Duration,
}

/// How many tests passed, failed and were ignored, summed over libtest's `test result:` lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) passed: u32,
    pub(crate) failed: u32,
    pub(crate) ignored: u32,
}

pub(crate) fn counts(output: &str) -> Counts {
    let mut counts = Counts::default();
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let n: u32 = n.parse().unwrap_or(0);
            match what {
                "passed" => counts.passed += n,
                "failed" => counts.failed += n,
                "ignored" => counts.ignored += n,
                _ => {}
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str) -> Job {
        Job {
            name: name.into(),
            program: format!("target/debug/deps/{name}-0123"),
            args: Vec::new(),
            dir: "xtask".into(),
        }
    }

    #[test]
    fn each_scope_compiles_its_targets() {
        let full = compile_args(Scope::Full);
        assert_eq!(
            full,
            [
                "test",
                "--workspace",
                "--locked",
                "--no-run",
                "--message-format=json-render-diagnostics"
            ]
        );
        let unit = compile_args(Scope::Unit);
        assert_eq!(
            unit[5..],
            [
                "--lib",
                "--bins",
                "--test",
                "docs_drift",
                "--test",
                "docs_blocks"
            ]
        );
        let quick = compile_args(Scope::Quick);
        assert_eq!(quick[..11], unit[..]);
        assert_eq!(quick[11..], ["--test", "bad_input", "--test", "cli"]);
        assert_eq!(bins_args(Scope::Unit), None);
        for scope in [Scope::Full, Scope::Quick] {
            let bins = bins_args(scope).unwrap();
            assert_eq!(bins[..2], ["build", "--locked"]);
            assert!(bins.ends_with(&["-p", "xtask-bench", "--bins"].map(String::from)));
        }
    }

    #[test]
    fn test_binaries_are_read_from_cargos_messages() {
        let json = r#"{"reason":"compiler-artifact","package_id":"p","manifest_path":"/r/xtask/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"xtask","src_path":"/r/xtask/src/lib.rs"},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":true},"features":[],"filenames":["/r/target/debug/deps/xtask-1"],"executable":"/r/target/debug/deps/xtask-1","fresh":true}
{"reason":"compiler-artifact","package_id":"p","manifest_path":"/r/xtask/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"xtask","src_path":"/r/xtask/src/lib.rs"},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":false},"features":[],"filenames":["/r/target/debug/libxtask.rlib"],"executable":null,"fresh":true}
{"reason":"compiler-artifact","package_id":"p","manifest_path":"/r/xtask/Cargo.toml","target":{"kind":["test"],"crate_types":["bin"],"name":"smoke","src_path":"/r/xtask/tests/smoke.rs"},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":true},"features":[],"filenames":["/r/target/debug/deps/smoke-2"],"executable":"/r/target/debug/deps/smoke-2","fresh":false}
{"reason":"build-finished","success":true}"#;
        let args = vec!["filter".to_string()];
        let jobs = binaries(json, &args).unwrap();
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["xtask (lib)", "smoke"]);
        assert_eq!(jobs[1].program, "/r/target/debug/deps/smoke-2");
        assert_eq!(jobs[1].dir, "/r/xtask");
        assert_eq!(jobs[1].args, ["filter"]);
        assert!(binaries("{not json", &args).is_err());
    }

    #[test]
    fn the_longest_start_first_and_the_rest_by_name() {
        let jobs: Vec<Job> = ["xtask (lib)", "smoke", "charts", "platforms", "images"]
            .map(job)
            .to_vec();
        let order: Vec<&str> = start_order(&jobs)
            .iter()
            .map(|&i| jobs[i].name.as_str())
            .collect();
        assert_eq!(
            order,
            ["platforms", "images", "smoke", "charts", "xtask (lib)"]
        );
    }

    #[test]
    fn the_next_job_respects_the_limit_and_who_may_run_together() {
        let jobs: Vec<Job> = ["platforms", "signals", "sizes", "alone"].map(job).to_vec();
        let order = [0, 1, 2, 3];
        let none = [false; 4];
        assert_eq!(next_job(&jobs, &order, &none, &[], 3), Some(0));
        // signals waits while platforms runs; sizes does not.
        let started = [true, false, false, false];
        assert_eq!(next_job(&jobs, &order, &started, &[0], 3), Some(2));
        assert_eq!(next_job(&jobs, &order, &started, &[0], 1), None);
        // alone starts only when nothing runs, and nothing starts beside it.
        let started = [true, true, true, false];
        assert_eq!(next_job(&jobs, &order, &started, &[2], 3), None);
        assert_eq!(next_job(&jobs, &order, &started, &[], 3), Some(3));
        let started = [false, true, true, true];
        assert_eq!(next_job(&jobs, &order, &started, &[3], 3), None);
        assert!(compatible("sizes", "images"));
        assert!(!compatible("bench", "signals"));
    }

    #[test]
    fn only_the_binaries_that_wait_on_emulation_get_more_test_threads() {
        assert_eq!(test_threads("platforms"), Some("5"));
        assert_eq!(test_threads("images"), None);
        assert_eq!(test_threads("xtask (lib)"), None);
    }

    #[test]
    fn counts_add_up_every_result_line() {
        let out = "running 3 tests\n...\ntest result: ok. 3 passed; 0 failed; 1 ignored; 0 \
                   measured; 0 filtered out; finished in 1.2s\n\
                   test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 5 filtered \
                   out; finished in 0.1s\n";
        assert_eq!(
            counts(out),
            Counts {
                passed: 4,
                failed: 2,
                ignored: 1
            }
        );
        assert_eq!(counts("error: test failed"), Counts::default());
    }
}
