//! The lint report: findings as `file:line: tool rule message`, then one row per linter (what
//! it linted, what it found, or why it was skipped); as text, Markdown or JSON.

use camino::Utf8PathBuf;
use serde::Serialize;

use super::parse::Finding;
use super::plan::Tool;
use crate::report::{Section, Table};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    /// Ran and found nothing.
    Passed,
    /// Ran and reported findings.
    Findings,
    /// Not installed (or no engine for BuildKit's checks): listed with the fix.
    Skipped,
    /// Could not run or its output could not be understood.
    Error,
    /// Selected, but the project has nothing it lints.
    NothingToLint,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Findings => "findings",
            Status::Skipped => "skipped",
            Status::Error => "error",
            Status::NothingToLint => "nothing to lint",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ToolSummary {
    pub(crate) tool: Tool,
    pub(crate) status: Status,
    pub(crate) version: Option<String>,
    /// What it ran on: files, or variants.
    pub(crate) linted: Vec<String>,
    pub(crate) findings: usize,
    /// Why it was skipped (and how to install it), or its error.
    pub(crate) detail: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    /// The project directory every path is relative to.
    #[serde(serialize_with = "crate::util::serialize_shown")]
    pub(crate) project: Utf8PathBuf,
    /// No findings, nothing skipped, no tool errors.
    pub(crate) ok: bool,
    pub(crate) tools: Vec<ToolSummary>,
    pub(crate) findings: Vec<Finding>,
}

impl ToolSummary {
    pub(crate) fn new(
        tool: Tool,
        status: Status,
        version: Option<String>,
        detail: Option<String>,
    ) -> ToolSummary {
        ToolSummary {
            tool,
            status,
            version,
            linted: Vec::new(),
            findings: 0,
            detail,
        }
    }
}

impl Report {
    /// `ok` when nothing was found, skipped or failed.
    pub(crate) fn new(
        project: Utf8PathBuf,
        tools: Vec<ToolSummary>,
        findings: Vec<Finding>,
    ) -> Report {
        let ran = tools
            .iter()
            .all(|s| !matches!(s.status, Status::Skipped | Status::Error));
        Report {
            project,
            ok: findings.is_empty() && ran,
            tools,
            findings,
        }
    }

    pub(crate) fn skipped(&self) -> impl Iterator<Item = &ToolSummary> {
        self.tools.iter().filter(|t| t.status == Status::Skipped)
    }

    pub(crate) fn errors(&self) -> impl Iterator<Item = &ToolSummary> {
        self.tools.iter().filter(|t| t.status == Status::Error)
    }
}

/// `variants a, b` for per-variant jobs, else the subjects as they are.
fn linted(subjects: &[String]) -> String {
    let variants: Vec<&str> = subjects
        .iter()
        .filter_map(|s| s.strip_prefix("variant "))
        .collect();
    if variants.len() > 1 && variants.len() == subjects.len() {
        format!("variants {}", variants.join(", "))
    } else {
        subjects.join(", ")
    }
}

fn tools_table(report: &Report) -> Table {
    let mut table =
        Table::new(&["linter", "version", "status", "linted", "findings"]).right_align(&[4]);
    for t in &report.tools {
        let linted = match (&t.detail, t.linted.is_empty()) {
            (Some(detail), _) => detail.clone(),
            (None, true) => "-".into(),
            (None, false) => linted(&t.linted),
        };
        table.row(vec![
            t.tool.to_string(),
            t.version.clone().unwrap_or_else(|| "-".into()),
            t.status.as_str().into(),
            linted,
            t.findings.to_string(),
        ]);
    }
    table
}

pub(crate) fn text(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&f.to_string());
        out.push('\n');
    }
    if !report.findings.is_empty() {
        out.push('\n');
    }
    out.push_str(&tools_table(report).render_text());
    out
}

pub(crate) fn sections(report: &Report) -> Vec<Section> {
    let mut sections = Vec::new();
    if !report.findings.is_empty() {
        let mut table = Table::new(&["location", "linter", "rule", "level", "message"]);
        for f in &report.findings {
            let location = match f.line {
                Some(line) => format!("`{}:{line}`", f.file),
                None => format!("`{}`", f.file),
            };
            let rule = match &f.url {
                Some(url) => format!("[{}]({url})", f.rule),
                None => f.rule.clone(),
            };
            table.row(vec![
                location,
                f.tool.to_string(),
                rule,
                f.level.as_str().into(),
                f.message.clone(),
            ]);
        }
        sections.push(Section {
            title: Some(match report.findings.len() {
                1 => "1 finding".to_string(),
                n => format!("{n} findings"),
            }),
            table,
        });
    }
    sections.push(Section {
        title: Some("Linters".into()),
        table: tools_table(report),
    });
    sections
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::parse::Level;

    fn report() -> Report {
        Report {
            project: "/p".into(),
            ok: false,
            tools: vec![
                ToolSummary {
                    tool: Tool::Hadolint,
                    status: Status::Findings,
                    version: Some("2.15.1".into()),
                    linted: vec!["3 Dockerfiles".into()],
                    findings: 1,
                    detail: None,
                },
                ToolSummary {
                    tool: Tool::Zizmor,
                    status: Status::Skipped,
                    version: None,
                    linted: vec![],
                    findings: 0,
                    detail: Some(
                        "`zizmor` is not on PATH: install it with `pip install zizmor`".into(),
                    ),
                },
            ],
            findings: vec![Finding {
                file: "Dockerfile".into(),
                line: Some(6),
                column: Some(1),
                tool: Tool::Hadolint,
                rule: "DL3000".into(),
                level: Level::Error,
                message: "Use absolute WORKDIR".into(),
                url: Some("https://github.com/hadolint/hadolint/wiki/DL3000".into()),
            }],
        }
    }

    #[test]
    fn text_lists_findings_then_linters() {
        let text = text(&report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Dockerfile:6: hadolint DL3000 Use absolute WORKDIR"
        );
        assert_eq!(lines[1], "");
        assert!(lines[2].starts_with("linter"), "{text}");
        assert!(
            lines[4].starts_with("hadolint  2.15.1   findings  3 Dockerfiles"),
            "{text}"
        );
        assert!(
            lines[5].contains(
                "skipped   `zizmor` is not on PATH: install it with `pip install zizmor`"
            ),
            "{text}"
        );
    }

    #[test]
    fn per_variant_subjects_are_grouped() {
        let subjects = ["variant cpu".to_string(), "variant cuda".into()];
        assert_eq!(linted(&subjects), "variants cpu, cuda");
        assert_eq!(linted(&subjects[..1]), "variant cpu");
        assert_eq!(linted(&["3 Dockerfiles".to_string()]), "3 Dockerfiles");
    }

    #[test]
    fn markdown_links_rules() {
        let md = crate::report::sections_markdown(&sections(&report()));
        assert!(md.contains("#### 1 finding\n"), "{md}");
        assert!(
            md.contains("| `Dockerfile:6` | hadolint | [DL3000](https://github.com/hadolint/hadolint/wiki/DL3000) | error | Use absolute WORKDIR |"),
            "{md}"
        );
        assert!(md.contains("#### Linters"), "{md}");
    }
}
