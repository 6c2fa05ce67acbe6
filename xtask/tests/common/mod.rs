//! Shared harness of the integration tests: they run the real `xtask` binary against the real
//! Docker engine. It makes sure the engine answers and the offline base exists, builds fixture
//! images once per test binary (once per run for every binary under `cargo xtask test`), and
//! labels everything it creates so a run can prove it leaked nothing.
#![allow(dead_code)]

mod engine;
mod lock;
mod platform;
mod registry;
mod sarif;
mod shared;

#[allow(unused_imports)]
pub use engine::*;
#[allow(unused_imports)]
pub use lock::*;
#[allow(unused_imports)]
pub use platform::*;
#[allow(unused_imports)]
pub use registry::*;
#[allow(unused_imports)]
pub use sarif::*;
#[allow(unused_imports)]
pub use shared::*;
pub mod owner;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The image the fixtures start from (`[base].image` of the repository's images.toml).
pub const BASE_IMAGE: &str = "localhost/debian:trixie-slim";

/// Label put on everything the tests create; its value is unique to this test process.
pub const LABEL: &str = "voxserve.xtask.test";

pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{}-{nanos:08x}", std::process::id())
    })
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A file a report names: relative to the repository root when inside it (as the xtask shows
/// paths), so resolved against the root; an absolute path stays as it is.
pub fn in_repo(path: &serde_json::Value) -> PathBuf {
    repo_root().join(
        path.as_str()
            .unwrap_or_else(|| panic!("not a path: {path}")),
    )
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// The xtask binary, as `cargo xtask` runs it.
pub fn xtask() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.current_dir(repo_root());
    cmd.env_remove("XTASK_CONFIG");
    cmd.env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

/// Runs a command and returns its output, with stdout and stderr as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(cmd: &mut Command) -> Run {
        let out: Output = cmd
            .output()
            .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The `error: …` line the xtask printed (panics when there is none).
    pub fn error_line(&self) -> &str {
        self.stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("no `error:` line in stderr:\n{}", self.stderr))
    }

    pub fn assert_ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Asserts a usage, input or tool error (exit 2) whose `error:` line contains `needle`.
pub fn input_error(run: &Run, needle: &str) {
    assert_eq!(
        run.code, 2,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let line = run.error_line();
    assert!(line.contains(needle), "`{needle}` not in {line}");
}

pub fn docker(args: &[&str]) -> Run {
    Run::of(Command::new("docker").args(args))
}

/// Panics with the fix when no engine answers: these tests need a real Docker engine.
pub fn ensure_engine() {
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| {
        let run = docker(&["version", "--format", "{{.Server.Version}}"]);
        assert!(
            run.code == 0 && !run.stdout.trim().is_empty(),
            "these tests need a running Docker engine with buildx (start one with \
             `bash .ci/start-docker /tmp/dockerd.pid /tmp/dockerd.log` as root): {}",
            run.stderr
        );
        remove_stale_test_images();
    });
}

/// Fixture images outlive the test process that built them (they are shared by its tests); the
/// next run removes those whose process is gone — same host, pid dead or reused — so test runs
/// do not fill the disk (`cargo xtask test` does the same once its tests are done).
fn remove_stale_test_images() {
    let ids = docker(&[
        "image",
        "ls",
        "--quiet",
        "--no-trunc",
        "--filter",
        &format!("label={LABEL}"),
    ]);
    let mut ids: Vec<&str> = ids.stdout.lines().filter(|l| !l.is_empty()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return;
    }
    let format = format!(
        "{{{{.Id}}}}\t{{{{index .Config.Labels \"{LABEL}\"}}}}\t{{{{index .Config.Labels \"{}\"}}}}\t\
         {{{{index .Config.Labels \"{}\"}}}}\t{{{{index .Config.Labels \"{}\"}}}}",
        owner::OWNER_HOST,
        owner::OWNER_PID,
        owner::OWNER_STARTED
    );
    let mut args = vec!["image", "inspect", "--format", &format];
    args.extend(ids);
    let me = owner::process(std::process::id()).map(|(host, ..)| host);
    for line in docker(&args).stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [id, run, host, pid, started] = fields[..] else {
            continue;
        };
        let gone = if pid.is_empty() || pid == "<no value>" {
            // Older fixtures name only the run (`<pid>-<nanos>`).
            run.split('-')
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|p| owner::process(p).is_none())
        } else {
            Some(host) == me.as_deref()
                && pid.parse::<u32>().is_ok_and(|p| match owner::process(p) {
                    None => true,
                    Some((_, _, now)) => now != started,
                })
        };
        if gone {
            docker(&["image", "rm", "-f", id]);
        }
    }
}

/// Makes sure the offline base image exists, building it with `cargo xtask base` if needed.
pub fn ensure_base() {
    ensure_engine();
    static BASE: OnceLock<()> = OnceLock::new();
    BASE.get_or_init(|| {
        if docker(&["image", "inspect", BASE_IMAGE]).code != 0 {
            xtask_run(&["base"]).assert_ok();
        }
    });
}

/// Builds the bench binary, which `cargo xtask bench` runs through `cargo run` (nothing to do when
/// it is up to date): a test's time limit must not include compiling it.
pub fn build_bench_binary() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "xtask-bench", "--bins"])
            .current_dir(repo_root());
        Run::of(&mut cmd).assert_ok();
    });
}

pub fn xtask_run(args: &[&str]) -> Run {
    Run::of(xtask().args(args))
}

/// Builds a fixture directory (`tests/fixtures/<name>`) into an image once per test binary — or,
/// under `cargo xtask test`, once per run for all its binaries ([`SharedRun`]) — and returns its
/// tag. The image carries the test label; `extra` are more buildx arguments.
pub fn fixture_image(name: &str, extra: &[&str]) -> String {
    ensure_base();
    static BUILT: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let key = format!("{name} {}", extra.join(" "));
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, tag)) = built.iter().find(|(k, _)| *k == key) {
        return tag.clone();
    }
    let tag = match SharedRun::from_env() {
        Some(run) => run.fixture(name, &key, |tag| {
            build_fixture(name, extra, tag, &run.id, &run.owner_labels())
        }),
        None => {
            // Builds of one fixture with different `extra` (targets, build args) get different tags.
            let tag = if extra.is_empty() {
                format!("localhost/xtask-fixture-{name}:{}", run_id())
            } else {
                format!(
                    "localhost/xtask-fixture-{name}:{}-{}",
                    run_id(),
                    built.len()
                )
            };
            build_fixture(name, extra, &tag, run_id(), owner::labels());
            tag
        }
    };
    built.push((key, tag.clone()));
    tag
}

/// `docker buildx build` of `tests/fixtures/<name>` into `tag`, labelled as the test run `run`
/// of the owner `owner` (the labels reclaim reads).
fn build_fixture(name: &str, extra: &[&str], tag: &str, run: &str, owner: &[String]) {
    let dir = fixtures().join(name);
    let mut args: Vec<String> = vec![
        "buildx".into(),
        "build".into(),
        "--load".into(),
        "--provenance=false".into(),
        format!("--build-arg=BASE_IMAGE={BASE_IMAGE}"),
        format!("--label={LABEL}={run}"),
        format!("--tag={tag}"),
    ];
    args.extend(owner.iter().map(|l| format!("--label={l}")));
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(dir.to_string_lossy().into_owned());
    let run = Run::of(Command::new("docker").args(&args));
    assert_eq!(
        run.code, 0,
        "building fixture {name} failed:\n{}",
        run.stderr
    );
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = repo_root()
            .join("target")
            .join("xtask-tests")
            .join(format!("{name}-{}", run_id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies a directory, hidden files included (a fixture into a scratch directory, to change it).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Minimal valid images.toml head (project + base) for test configs; append variants to it.
pub fn config_head() -> String {
    format!(
        "[project]\nname = \"xtask-test\"\ndescription = \"fixture\"\nlicenses = \"Apache-2.0\"\nversion = \"0.0.1\"\n\n\
         [base]\nimage = \"{BASE_IMAGE}\"\nsuite = \"trixie\"\nsource_date_epoch = 1764288000\n\n"
    )
}

/// A `[variants.NAME]` table building the Dockerfile in `context` into `image`. Paths in TOML
/// literal strings ('…'): a Windows path's `\` is no escape there.
pub fn fixture_variant(name: &str, context: &Path, image: &str) -> String {
    format!(
        "[variants.{name}]\ndockerfile = '{}'\ncontext = '{}'\nimage = \"{image}\"\n",
        context.join("Dockerfile").display(),
        context.display()
    )
}

/// Removes every tag of an image repository when dropped, and the images its tags pointed to
/// whenever noted that no tag holds any more: a build that moves a tag leaves the image it moved
/// from without a name (dangling), which removing the tags alone would leave behind.
pub struct RemoveTags {
    repo: String,
    seen: Replaced,
}

impl RemoveTags {
    pub fn new(repo: impl Into<String>) -> RemoveTags {
        let repo = repo.into();
        RemoveTags {
            seen: Replaced::new(&repo),
            repo,
        }
    }

    /// Notes the images the repository's tags point to now (call it after each build).
    pub fn note(&self) {
        self.seen.note();
    }
}

impl Drop for RemoveTags {
    fn drop(&mut self) {
        let out = docker(&[
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &self.repo,
        ]);
        for tag in out.stdout.lines().filter(|l| !l.is_empty()) {
            docker(&["image", "rm", "-f", tag]);
        }
    }
}

/// The images a reference (a repository, or one tag) pointed to while a test ran, noted when it
/// is made, on [`Replaced::note`] and when it drops; then those no tag holds any more are
/// removed, by ID. An image another tag still holds stays.
pub struct Replaced {
    reference: String,
    ids: Mutex<Vec<String>>,
}

impl Replaced {
    pub fn new(reference: &str) -> Replaced {
        let replaced = Replaced {
            reference: reference.to_string(),
            ids: Mutex::new(Vec::new()),
        };
        replaced.note();
        replaced
    }

    pub fn note(&self) {
        let out = docker(&[
            "image",
            "ls",
            "--no-trunc",
            "--format",
            "{{.ID}}",
            &self.reference,
        ]);
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.extend(
            out.stdout
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
        ids.sort_unstable();
        ids.dedup();
    }
}

impl Drop for Replaced {
    fn drop(&mut self) {
        self.note();
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids.iter() {
            let tags = docker(&["image", "inspect", "--format", "{{len .RepoTags}}", id]);
            if tags.code == 0 && tags.stdout.trim() == "0" {
                docker(&["image", "rm", id]);
            }
        }
    }
}

/// Containers carrying this run's label (running or not).
pub fn labelled_containers() -> Vec<String> {
    let run = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={LABEL}={}", run_id()),
        "--format",
        "{{.Names}}",
    ]);
    run.stdout
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The last 40 lines of a command's output, for assertion messages.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
