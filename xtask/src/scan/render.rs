//! The scan report as tables (text and Markdown): a summary row per variant, then the
//! failing findings, the secrets, every `scan.ignore` entry with its reason and what became of
//! it, and — with a baseline — what is new and what is gone.

use super::judge::{short_command, short_layer, FailOn, IgnoreStatus, Severity, Verdict};
use super::Report;
use crate::report::{Section, Table};

pub fn sections(report: &Report) -> Vec<Section> {
    let baseline = report.baseline.is_some();
    let mut headers = vec!["variant", "image"];
    headers.extend(Severity::DESCENDING.iter().map(|s| s.as_str()));
    headers.extend(["secrets", "ignored", "failing"]);
    if baseline {
        headers.extend(["new", "gone"]);
    }
    headers.extend(["fail on", "verdict"]);
    let numeric: Vec<usize> = (2..headers.len() - 2).collect();
    let mut summary = Table::new(&headers).right_align(&numeric);
    for s in &report.scans {
        let mut row = vec![s.variant.clone(), s.image.clone()];
        row.extend(
            Severity::DESCENDING
                .iter()
                .map(|sev| s.counts.get(sev).copied().unwrap_or(0).to_string()),
        );
        row.extend([
            s.secrets.len().to_string(),
            s.ignored.to_string(),
            s.failing.to_string(),
        ]);
        if baseline {
            let new = s.findings.iter().filter(|f| f.new == Some(true)).count()
                + s.secrets.iter().filter(|f| f.new == Some(true)).count();
            row.extend([
                new.to_string(),
                s.fixed_since_baseline
                    .as_ref()
                    .map_or(0, Vec::len)
                    .to_string(),
            ]);
        }
        let unfixed = if s.policy.ignore_unfixed {
            " (unfixed ignored)"
        } else {
            ""
        };
        let new_only = if report.fail_on == FailOn::New {
            ", new only"
        } else {
            ""
        };
        row.extend([
            format!("{}{unfixed}{new_only}", s.policy.fail_on.join(",")),
            if s.passed { "ok" } else { "FAIL" }.to_string(),
        ]);
        summary.row(row);
    }
    let mut out = vec![Section {
        title: None,
        table: summary,
    }];

    let mut failing = Table::new(&[
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
            let mut note = Vec::new();
            if f.new == Some(true) {
                note.push("new".to_string());
            }
            if let Some(date) = f.ignore_expired {
                note.push(format!("ignore expired {date}"));
            }
            failing.row(vec![
                s.variant.clone(),
                f.id.clone(),
                f.package.clone(),
                f.installed.clone(),
                if f.fixed.is_empty() {
                    format!("({})", non_empty(&f.status, "no fix"))
                } else {
                    f.fixed.clone()
                },
                f.severity.as_str().to_string(),
                format!("{}:{}", f.location.file, f.location.line),
                note.join(", "),
            ]);
        }
    }
    push(&mut out, "Failing", failing);

    let mut secrets = Table::new(&["variant", "secret", "file", "layer", "made by"]);
    for s in &report.scans {
        for secret in &s.secrets {
            secrets.row(vec![
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
    push(&mut out, "Secrets", secrets);

    let mut ignores = Table::new(&["variant", "ignore", "reason", "expires", "status"]);
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
            ignores.row(vec![
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
    push(&mut out, "Ignored by scan.ignore", ignores);

    if baseline {
        let mut new = Table::new(&["variant", "new", "package", "severity", "verdict"]);
        let mut gone = Table::new(&["variant", "gone", "package", "was installed"]);
        for s in &report.scans {
            for f in s.findings.iter().filter(|f| f.new == Some(true)) {
                new.row(vec![
                    s.variant.clone(),
                    f.id.clone(),
                    f.package.clone(),
                    f.severity.as_str().to_string(),
                    verdict_word(f.verdict).into(),
                ]);
            }
            for secret in s.secrets.iter().filter(|f| f.new == Some(true)) {
                new.row(vec![
                    s.variant.clone(),
                    format!("secret {}", secret.rule),
                    secret.file.clone(),
                    secret.severity.as_str().to_string(),
                    "fail".into(),
                ]);
            }
            for g in s.fixed_since_baseline.iter().flatten() {
                gone.row(vec![
                    s.variant.clone(),
                    g.id.clone(),
                    g.package.clone(),
                    g.installed.clone(),
                ]);
            }
        }
        push(&mut out, "New since the baseline", new);
        push(&mut out, "Gone since the baseline", gone);
    }
    out
}

fn push(out: &mut Vec<Section>, title: &str, table: Table) {
    if !table.rows.is_empty() {
        out.push(Section {
            title: Some(title.to_string()),
            table,
        });
    }
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
