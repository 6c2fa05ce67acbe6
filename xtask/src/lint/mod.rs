//! `cargo xtask lint`: every linter of the repository as real binaries, one command. Stages:
//! `files` (what the project has to lint) → `plan` (which linter on which files with which argv,
//! pure) → `run` (find the tools, run the jobs) → `parse` (each tool's machine output into
//! findings) → `render` (text, Markdown, JSON) and `sarif` (one file per linter).
//!
//! Exit codes: 0 clean; 1 findings, or a linter was skipped (not installed) without
//! `--allow-missing`; 2 a linter could not run or its output was not understood.

mod files;
mod parse;
mod plan;
mod render;
mod run;
mod sarif;

use anyhow::{bail, Result};
use camino::Utf8PathBuf;

use crate::ctx::Ctx;
use crate::output;
use crate::output::warning;
use crate::report::{self, Format};
use crate::util::progress;
use crate::util::CheckFailed;
use parse::Finding;
use plan::Tool;
use render::{Report, Status, ToolSummary};

/// Lints the project around images.toml (the directory of `--config`): its Rust workspace,
/// the Dockerfiles and variants of images.toml, the shell scripts in scripts/, .ci/ and app/,
/// and .github/ (workflows and actions).
#[derive(clap::Args)]
pub struct Args {
    /// Only these linters (comma-separated or repeated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LINTER")]
    only: Vec<Tool>,
    /// Leave these linters out (comma-separated or repeated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LINTER")]
    skip: Vec<Tool>,
    /// Exit 0 although a linter is not installed (it is still listed as skipped).
    #[arg(long)]
    allow_missing: bool,
    /// Also run `dive --ci` on every built variant, with the thresholds of images.toml
    /// (`[….dive]`).
    #[arg(long)]
    dive: bool,
    /// Write one SARIF 2.1.0 file per linter into DIR (`<linter>.sarif`, category
    /// `lint/<linter>`), for GitHub code scanning.
    #[arg(long, value_name = "DIR")]
    sarif: Option<Utf8PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        if let Some(dir) = &self.sarif {
            report::ensure_dir("--sarif", dir)?;
        }
        let tools = plan::selected(&self.only, &self.skip, self.dive);
        if tools.is_empty() {
            bail!("--only and --skip leave no linter to run");
        }
        let config = ctx.config()?;
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let (mut summaries, available) = probe(&tools, &cargo);
        let jobs = plan::plan(&files::gather(config, &available, &cargo)?, &available);
        let names: Vec<&str> = available.iter().map(|t| t.name()).collect();
        progress!(
            "lint {}: {}",
            crate::util::shown(&config.dir),
            names.join(", ")
        );
        // After a signal, jobs fail as their linters are killed; nothing of it is reported (the
        // report goes through `crate::report`, which refuses an interrupted run).
        let outcomes = run::execute(&config.dir, jobs);
        let findings = tally(&mut summaries, outcomes);
        let report = Report::new(config.dir.clone(), summaries, findings);
        self.write(&report)?;
        verdict(&report, self.allow_missing)
    }

    fn write(&self, report: &Report) -> Result<()> {
        let sections = render::sections(report);
        match self.format {
            Format::Table => output::result(&render::text(report))?,
            _ => report::emit_sections(self.format, &sections, report::Kind::Lint, report)?,
        }
        report::step_summary("Lint", &report::sections_markdown(&sections));
        if let Some(dir) = &self.sarif {
            let written: Vec<String> = sarif::write(report, dir)?
                .iter()
                .map(crate::util::shown)
                .collect();
            progress!("SARIF: {}", written.join(", "));
        }
        Ok(())
    }
}

/// A summary per selected linter, and the linters that can run here; a missing one is skipped
/// with how to install it.
fn probe(tools: &[Tool], cargo: &str) -> (Vec<ToolSummary>, Vec<Tool>) {
    let mut available = Vec::new();
    let summaries = tools
        .iter()
        .map(|&tool| match run::probe(tool, cargo) {
            Ok(version) => {
                available.push(tool);
                ToolSummary::new(tool, Status::NothingToLint, version, None)
            }
            Err(why) => {
                warning!("{tool} skipped: {why}");
                ToolSummary::new(tool, Status::Skipped, None, Some(why))
            }
        })
        .collect();
    (summaries, available)
}

/// Each linter's status, what it linted and its findings, from its jobs' outcomes; the
/// findings once each (variants sharing a Dockerfile report its BuildKit warnings once).
fn tally(summaries: &mut [ToolSummary], outcomes: Vec<run::Outcome>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for outcome in outcomes {
        let summary = summaries
            .iter_mut()
            .find(|s| s.tool == outcome.job.tool)
            .expect("every job's tool has a summary");
        summary.linted.push(match &outcome.note {
            Some(note) => format!("{}: {note}", outcome.job.subject),
            None => outcome.job.subject.clone(),
        });
        match outcome.result {
            Ok(found) if summary.status == Status::NothingToLint => {
                summary.status = Status::Passed;
                findings.extend(found);
            }
            Ok(found) => findings.extend(found),
            Err(err) => {
                summary.status = Status::Error;
                summary.detail = Some(format!("{err:#}"));
            }
        }
    }
    findings.sort();
    findings.dedup();
    for s in summaries {
        s.findings = findings.iter().filter(|f| f.tool == s.tool).count();
        if s.status == Status::Passed && s.findings > 0 {
            s.status = Status::Findings;
        }
        if s.tool == Tool::Dive && s.status == Status::NothingToLint {
            s.status = Status::Skipped;
            s.detail =
                Some("no variant is built: build one first (`cargo xtask build VARIANT`)".into());
        }
    }
    findings
}

/// 2 when a linter failed; 1 for findings, or skipped linters without --allow-missing.
fn verdict(report: &Report, allow_missing: bool) -> Result<()> {
    let errors: Vec<String> = report
        .errors()
        .map(|t| format!("{}: {}", t.tool, t.detail.as_deref().unwrap_or("failed")))
        .collect();
    if !errors.is_empty() {
        bail!("lint: a linter could not run: {}", errors.join("; "));
    }
    let mut problems = Vec::new();
    if !report.findings.is_empty() {
        let mut per_tool: Vec<String> = report
            .tools
            .iter()
            .filter(|t| t.findings > 0)
            .map(|t| format!("{} {}", t.tool, t.findings))
            .collect();
        per_tool.dedup();
        problems.push(format!(
            "{} finding{} ({})",
            report.findings.len(),
            if report.findings.len() == 1 { "" } else { "s" },
            per_tool.join(", ")
        ));
    }
    let skipped: Vec<&ToolSummary> = report.skipped().collect();
    if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|t| t.tool.name()).collect();
        if allow_missing {
            output::message(format_args!(
                "lint: skipped (allowed by --allow-missing): {}",
                names.join(", ")
            ));
        } else {
            problems.push(format!(
                "skipped {} — {} (or pass --allow-missing)",
                names.join(", "),
                skipped
                    .iter()
                    .map(|t| t.detail.as_deref().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CheckFailed(format!("lint: {}", problems.join("; "))).into())
    }
}
