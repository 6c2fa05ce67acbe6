//! The scan report as tables (text and Markdown): a summary row per variant, then the
//! failing findings, the secrets, every `scan.ignore` entry with its reason and what became of
//! it, and — with a baseline — what is new and what is gone.

use super::judge::{short_command, short_layer, FailOn, IgnoreStatus, VariantScan, Verdict};
use super::Report;
use crate::config::Severity;
use crate::report::{Section, Table};

pub(crate) fn sections(report: &Report) -> Vec<Section> {
    let mut titled = vec![
        ("Failing", failing(report)),
        ("Secrets", secrets(report)),
        ("Ignored by scan.ignore", ignores(report)),
    ];
    if report.baseline.is_some() {
        titled.push(("New since the baseline", new(report)));
        titled.push(("Gone since the baseline", gone(report)));
    }
    let summary = Section {
        title: None,
        table: summary(report),
    };
    let tables = titled
        .into_iter()
        .filter(|(_, table)| !table.rows.is_empty())
        .map(|(title, table)| Section {
            title: Some(title.to_string()),
            table,
        });
    std::iter::once(summary).chain(tables).collect()
}

/// A row per variant: counts by severity, secrets, ignored, failing, (new, gone), the policy
/// and the verdict.
fn summary(report: &Report) -> Table {
    let baseline = report.baseline.is_some();
    let mut headers = vec!["variant", "image"];
    headers.extend(Severity::DESCENDING.iter().map(|s| s.as_str()));
    headers.extend(["secrets", "ignored", "failing"]);
    if baseline {
        headers.extend(["new", "gone"]);
    }
    headers.extend(["fail on", "verdict"]);
    let numeric: Vec<usize> = (2..headers.len() - 2).collect();
    let mut table = Table::new(&headers).right_align(&numeric);
    for s in &report.scans {
        table.row(summary_row(s, baseline, report.fail_on));
    }
    table
}

fn summary_row(s: &VariantScan, baseline: bool, fail_on: FailOn) -> Vec<String> {
    let mut row = vec![s.variant.clone(), s.image.clone()];
    row.extend(
        Severity::DESCENDING
            .iter()
            .map(|sev| s.counts.get(sev).copied().unwrap_or(0).to_string()),
    );
    row.extend([s.secrets.len(), s.ignored, s.failing].map(|n| n.to_string()));
    if baseline {
        let new = s.findings.iter().filter(|f| f.new == Some(true)).count()
            + s.secrets.iter().filter(|f| f.new == Some(true)).count();
        let gone = s.fixed_since_baseline.as_ref().map_or(0, Vec::len);
        row.extend([new.to_string(), gone.to_string()]);
    }
    let unfixed = if s.policy.ignore_unfixed {
        " (unfixed ignored)"
    } else {
        ""
    };
    let new_only = if fail_on == FailOn::New {
        ", new only"
    } else {
        ""
    };
    row.push(format!(
        "{}{unfixed}{new_only}",
        s.policy.fail_on_names(",")
    ));
    row.push(if s.passed { "ok" } else { "FAIL" }.to_string());
    row
}

fn failing(report: &Report) -> Table {
    let mut table = Table::new(&[
        "variant",
        "vulnerability",
        "package",
        "installed",
        "fixed",
        "severity",
        "from",
        "note",
    ]);
    for s in &report.scans {
        for f in s.findings.iter().filter(|f| f.verdict == Verdict::Fail) {
            let new = (f.new == Some(true)).then(|| "new".to_string());
            let expired = f
                .ignore_expired
                .map(|date| format!("ignore expired {date}"));
            let note: Vec<String> = new.into_iter().chain(expired).collect();
            let fixed = if f.fixed.is_empty() {
                format!("({})", non_empty(&f.status, "no fix"))
            } else {
                f.fixed.clone()
            };
            table.row(vec![
                s.variant.clone(),
                f.id.clone(),
                f.package.clone(),
                f.installed.clone(),
                fixed,
                f.severity.as_str().to_string(),
                format!("{}:{}", f.location.file, f.location.line),
                note.join(", "),
            ]);
        }
    }
    table
}

fn secrets(report: &Report) -> Table {
    let mut table = Table::new(&["variant", "secret", "file", "layer", "made by"]);
    for s in &report.scans {
        for secret in &s.secrets {
            table.row(vec![
                s.variant.clone(),
                format!("{} ({})", secret.rule, secret.severity.as_str()),
                format!("{}:{}", secret.file, secret.line),
                short_layer(&secret.layer),
                secret
                    .created_by
                    .as_deref()
                    .map(short_command)
                    .unwrap_or_default(),
            ]);
        }
    }
    table
}

fn ignores(report: &Report) -> Table {
    let mut table = Table::new(&["variant", "ignore", "reason", "expires", "status"]);
    for s in &report.scans {
        for i in &s.ignores {
            let status = match i.status {
                IgnoreStatus::Applied => format!("applied to {} finding(s)", i.findings),
                IgnoreStatus::Expired => format!(
                    "EXPIRED: no longer applied ({} finding(s) judged again)",
                    i.findings
                ),
                IgnoreStatus::Unused => "unused: the scan found no such finding".to_string(),
            };
            table.row(vec![
                s.variant.clone(),
                i.id.clone(),
                i.reason
                    .clone()
                    .unwrap_or_else(|| "(no reason given)".into()),
                i.expires
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "never".into()),
                status,
            ]);
        }
    }
    table
}

/// Findings and secrets the baseline did not have.
fn new(report: &Report) -> Table {
    let mut table = Table::new(&["variant", "new", "package", "severity", "verdict"]);
    for s in &report.scans {
        for f in s.findings.iter().filter(|f| f.new == Some(true)) {
            table.row(vec![
                s.variant.clone(),
                f.id.clone(),
                f.package.clone(),
                f.severity.as_str().to_string(),
                verdict_word(f.verdict).into(),
            ]);
        }
        for secret in s.secrets.iter().filter(|f| f.new == Some(true)) {
            table.row(vec![
                s.variant.clone(),
                format!("secret {}", secret.rule),
                secret.file.clone(),
                secret.severity.as_str().to_string(),
                "fail".into(),
            ]);
        }
    }
    table
}

fn gone(report: &Report) -> Table {
    let mut table = Table::new(&["variant", "gone", "package", "was installed"]);
    for s in &report.scans {
        for g in s.fixed_since_baseline.iter().flatten() {
            table.row(vec![
                s.variant.clone(),
                g.id.clone(),
                g.package.clone(),
                g.installed.clone(),
            ]);
        }
    }
    table
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Fail => "fail",
        Verdict::BelowThreshold => "below threshold",
        Verdict::IgnoredUnfixed => "ignored (unfixed)",
        Verdict::Ignored => "ignored",
    }
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() {
        default
    } else {
        s
    }
}
