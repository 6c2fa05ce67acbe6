//! The lint report as SARIF 2.1.0 for GitHub code scanning: one file per linter that ran,
//! `<dir>/<linter>.sarif`, each one run in the category `lint/<linter>`. A linter that ran clean
//! gets a file with no results, so that code scanning closes the alerts it raised before.

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use super::parse::{Finding, Level};
use super::plan::Tool;
use super::render::{Report, Status};
use crate::sarif::{
    self, Location, Log, Message, MultiformatMessageString, Region, ReportingDescriptor, Run,
    SarifResult, ToolComponent,
};

/// Where each linter documents itself (the driver's `informationUri`).
fn information_uri(tool: Tool) -> &'static str {
    match tool {
        Tool::Rustfmt => "https://rust-lang.github.io/rustfmt/",
        Tool::Clippy => "https://rust-lang.github.io/rust-clippy/",
        Tool::Hadolint => "https://github.com/hadolint/hadolint",
        Tool::Buildkit => "https://docs.docker.com/reference/build-checks/",
        Tool::Shellcheck => "https://www.shellcheck.net/",
        Tool::Actionlint => "https://github.com/rhysd/actionlint",
        Tool::Zizmor => "https://docs.zizmor.sh/",
        Tool::Dive => "https://github.com/wagoodman/dive",
    }
}

fn level(level: Level) -> sarif::Level {
    match level {
        Level::Error => sarif::Level::Error,
        Level::Warning => sarif::Level::Warning,
        Level::Note => sarif::Level::Note,
    }
}

/// Paths are relative to the project directory, which is the repository root that %SRCROOT%
/// stands for.
fn location(f: &Finding) -> Location {
    let region = f
        .line
        .map(|line| Region::line(line as usize, f.column.map(|c| c as usize)));
    Location::new(&f.file, region, None)
}

/// The rule a finding breaks, with the descriptions and help GitHub requires of every rule.
fn rule(f: &Finding) -> ReportingDescriptor {
    let mut rule = ReportingDescriptor::new(&f.rule);
    let name = format!("{} {}", f.tool, f.rule);
    rule.short_description = Some(MultiformatMessageString::text(&name));
    rule.full_description = Some(MultiformatMessageString::text(&name));
    rule.help = Some(match &f.url {
        Some(url) => MultiformatMessageString {
            text: format!("{name}: {url}"),
            markdown: Some(format!("[{name}]({url})")),
        },
        None => MultiformatMessageString::text(format!("{name}: see the {} documentation", f.tool)),
    });
    rule.help_uri = f.url.clone();
    rule
}

/// One log per linter that ran.
pub(crate) fn logs(report: &Report) -> Vec<(Tool, Log)> {
    report
        .tools
        .iter()
        .filter(|t| matches!(t.status, Status::Passed | Status::Findings))
        .map(|t| {
            let mut driver = ToolComponent::new(t.tool.name());
            driver.version = t.version.clone();
            driver.information_uri = Some(information_uri(t.tool).into());
            let mut run = Run::new(driver, &format!("lint/{}", t.tool));
            for f in report.findings.iter().filter(|f| f.tool == t.tool) {
                let index = run.rule_index(rule(f));
                run.results.push(SarifResult {
                    rule_id: f.rule.clone(),
                    rule_index: Some(index),
                    level: level(f.level),
                    message: Message::text(&f.message),
                    locations: vec![location(f)],
                    partial_fingerprints: Default::default(),
                    properties: Default::default(),
                });
            }
            (t.tool, Log::new(vec![run]))
        })
        .collect()
}

/// Writes `<dir>/<linter>.sarif` for every linter that ran; returns the paths.
pub(crate) fn write(report: &Report, dir: &Utf8Path) -> Result<Vec<Utf8PathBuf>> {
    let mut written = Vec::new();
    for (tool, log) in logs(report) {
        let path = dir.join(format!("{tool}.sarif"));
        log.write(&path)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::render::ToolSummary;

    fn finding(tool: Tool, file: &str, line: Option<u32>, rule: &str) -> Finding {
        Finding {
            file: file.into(),
            line,
            column: line.map(|_| 3),
            tool,
            rule: rule.into(),
            level: Level::Warning,
            message: format!("{rule} here"),
            url: Some(format!("https://example.org/{rule}")),
        }
    }

    fn summary(tool: Tool, status: Status) -> ToolSummary {
        ToolSummary {
            tool,
            status,
            version: Some("1.0".into()),
            linted: vec![],
            findings: 0,
            detail: None,
        }
    }

    #[test]
    fn one_log_per_linter_that_ran_with_its_category() {
        let report = Report {
            project: "/p".into(),
            ok: false,
            tools: vec![
                summary(Tool::Hadolint, Status::Findings),
                summary(Tool::Shellcheck, Status::Passed),
                summary(Tool::Zizmor, Status::Skipped),
                summary(Tool::Clippy, Status::Error),
                summary(Tool::Dive, Status::Findings),
            ],
            findings: vec![
                finding(Tool::Hadolint, "Dockerfile", Some(4), "DL3000"),
                finding(
                    Tool::Hadolint,
                    "docker files/Dockerfile.cpu",
                    Some(9),
                    "DL3000",
                ),
                finding(Tool::Dive, "Dockerfile.cpu", None, "lowestEfficiency"),
            ],
        };
        let logs = logs(&report);
        let tools: Vec<Tool> = logs.iter().map(|(t, _)| *t).collect();
        assert_eq!(tools, [Tool::Hadolint, Tool::Shellcheck, Tool::Dive]);

        let hadolint = &logs[0].1.runs[0];
        assert_eq!(
            hadolint.automation_details.as_ref().unwrap().id,
            "lint/hadolint/"
        );
        assert_eq!(hadolint.tool.driver.name, "hadolint");
        assert_eq!(hadolint.tool.driver.rules.len(), 1, "rules are listed once");
        assert_eq!(hadolint.results.len(), 2);
        let second = &hadolint.results[1].locations[0].physical_location;
        assert_eq!(
            second.artifact_location.uri,
            "docker%20files/Dockerfile.cpu"
        );
        assert_eq!(second.region.as_ref().unwrap().start_line, 9);
        assert_eq!(second.region.as_ref().unwrap().start_column, Some(3));

        // A clean linter: a run with no results, which closes its earlier alerts.
        assert!(logs[1].1.runs[0].results.is_empty());
        // dive's findings are about the image: the Dockerfile, no line.
        let dive = &logs[2].1.runs[0].results[0].locations[0].physical_location;
        assert!(dive.region.is_none());
    }
}
