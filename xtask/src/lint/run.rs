//! Runs the planned jobs: finds each linter (or says how to install it), runs every job at once
//! in the project directory, and hands each tool's output to its parser.

use anyhow::{anyhow, bail, Context, Result};
use camino::Utf8Path;

use super::parse::{self, Finding};
use super::plan::{Job, Tool};
use crate::docker;
use crate::process::Cmd;

/// Whether a linter can run here: its version, or why not and how to fix it.
pub(crate) fn probe(tool: Tool, cargo: &str) -> std::result::Result<Option<String>, String> {
    let missing = |why: String| format!("{why}: install it with {}", tool.install());
    let version_of = |program: &str, args: &[&str]| -> std::result::Result<String, String> {
        let out = Cmd::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run `{program}`: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "`{program} {}` failed: {}",
                args.join(" "),
                text.trim().lines().last().unwrap_or("")
            ))
        }
    };
    let text = match tool {
        Tool::Rustfmt | Tool::Clippy => {
            let sub = if tool == Tool::Rustfmt {
                "fmt"
            } else {
                "clippy"
            };
            version_of(cargo, &[sub, "--version"]).map_err(|_| {
                missing(format!("`cargo {sub}` is not installed for this toolchain"))
            })?
        }
        Tool::Buildkit => {
            let buildx = docker::ensure_buildx()
                .and_then(|v| docker::info().map(|_| v))
                .map_err(|e| format!("{e:#}"))?;
            if !buildx_has_checks(&buildx) {
                return Err(format!(
                    "buildx {buildx} has no `--call=check` (added in 0.15): install a newer \
                     buildx plugin"
                ));
            }
            return Ok(Some(buildx));
        }
        _ => {
            let program = tool.name();
            if which::which(program).is_err() {
                return Err(missing(format!("`{program}` is not on PATH")));
            }
            version_of(program, &["--version"]).map_err(missing)?
        }
    };
    Ok(crate::doctor::parse_version(&text))
}

fn buildx_has_checks(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (0, 15)
}

/// What a job produced.
pub(crate) struct Outcome {
    pub(crate) job: Job,
    /// The findings, or why the tool could not be run or understood.
    pub(crate) result: Result<Vec<Finding>>,
    /// What the tool measured, for the report (dive's efficiency).
    pub(crate) note: Option<String>,
}

/// Runs every job at the same time (they are independent and mostly wait on I/O) and returns
/// the outcomes in the order of `jobs`.
pub(crate) fn execute(dir: &Utf8Path, jobs: Vec<Job>) -> Vec<Outcome> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                scope.spawn(move || {
                    let mut note = None;
                    let result = run_job(dir, &job, &mut note)
                        .with_context(|| format!("{} on {}", job.tool, job.subject));
                    Outcome { job, result, note }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a lint job panicked"))
            .collect()
    })
}

fn run_job(dir: &Utf8Path, job: &Job, note: &mut Option<String>) -> Result<Vec<Finding>> {
    if job.tool == Tool::Buildkit {
        let check = docker::build_check_in(dir, &job.args)?;
        let dockerfile = job
            .dockerfile
            .as_deref()
            .unwrap_or(Utf8Path::new("Dockerfile"));
        return Ok(parse::buildkit(&check, dockerfile));
    }
    let mut cmd = Cmd::new(&job.program).args(&job.args).dir(dir);
    for (k, v) in &job.env {
        cmd = cmd.env(k, v);
    }
    let output = cmd
        .output()
        .with_context(|| format!("running `{}`", job.program))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().unwrap_or(-1);
    let tail = || {
        let lines: Vec<&str> = stderr.trim().lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    };
    // The exit codes each tool uses for "ran, and here is what I found".
    let ran = match job.tool {
        Tool::Zizmor => code == 0 || (10..=14).contains(&code),
        Tool::Clippy => code == 0 || code == 101,
        _ => code == 0 || code == 1,
    };
    if !ran {
        bail!("`{}` exited with {code}: {}", job.program, tail());
    }
    if job.tool == Tool::Dive {
        *note = parse::dive_stats(&stdout);
    }
    let findings = match job.tool {
        Tool::Rustfmt => parse::rustfmt(&stdout, dir),
        Tool::Clippy => parse::clippy(&stdout, dir)?,
        Tool::Hadolint => parse::hadolint(&stdout)?,
        Tool::Shellcheck => parse::shellcheck(&stdout)?,
        Tool::Actionlint => parse::actionlint(&stdout)?,
        Tool::Zizmor => parse::zizmor(&stdout)?,
        Tool::Dive => parse::dive(
            &stdout,
            job.args.last().map_or("", String::as_str),
            job.dockerfile
                .as_deref()
                .unwrap_or(Utf8Path::new("Dockerfile")),
        ),
        Tool::Buildkit => unreachable!("run through docker.rs above"),
    };
    // A non-zero exit with nothing understood: the tool failed (a broken lock file for clippy,
    // an image dive cannot read), it did not lint.
    if code != 0 && findings.is_empty() {
        return Err(anyhow!(
            "`{}` exited with {code} and reported no finding: {}",
            job.program,
            if tail().is_empty() {
                parse::strip_ansi(stdout.trim())
            } else {
                tail()
            }
        ));
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildx_versions_with_checks() {
        assert!(buildx_has_checks("0.29.1+ds1"));
        assert!(buildx_has_checks("v0.15.0"));
        assert!(buildx_has_checks("1.0.0"));
        assert!(!buildx_has_checks("0.14.1"));
        assert!(!buildx_has_checks(""));
    }
}
