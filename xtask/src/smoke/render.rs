//! Render: the summary table (text, JSON or Markdown through `crate::report`), the diagnostics
//! of a failed variant, and the step summary.

use super::run::{Outcome, LOG_LINES};
use crate::report::Table;

pub(crate) fn summary_table(outcomes: &[Outcome]) -> Table {
    let mut table = Table::new(&[
        "variant",
        "image",
        "result",
        "healthy after",
        "verdict",
        "checks",
        "failure",
    ])
    .right_align(&[3, 4, 5]);
    for o in outcomes {
        let image = match (&o.platform, o.slowdown) {
            (Some(p), 1) => format!("{} ({p})", o.image),
            (Some(p), n) => format!("{} ({p}, emulated, timeouts {n}x)", o.image),
            (None, _) => o.image.clone(),
        };
        table.row(vec![
            o.variant.clone(),
            image,
            if o.passed { "pass" } else { "FAIL" }.into(),
            o.healthy_after_ms
                .map_or("-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
            o.verdict_ms.map_or("-".into(), |ms| format!("{ms} ms")),
            format!("{}/{}", o.checks_passed, o.checks_total),
            o.failure.clone().unwrap_or_default(),
        ]);
    }
    table
}

/// Which check failed, expected vs actual, the last probes and the last log lines.
pub(crate) fn render_diagnostics(o: &Outcome) -> String {
    let mut out = format!(
        "smoke {} FAILED: {}\n",
        o.variant,
        o.failure.as_deref().unwrap_or("unknown failure")
    );
    for c in o.checks.iter().filter(|c| !c.passed) {
        out.push_str(&format!(
            "  check `{}`\n    expected: {}\n    actual:   {}\n",
            c.name, c.expected, c.actual
        ));
    }
    if !o.health_log.is_empty() {
        out.push_str("  last health probes (oldest first):\n");
        for p in &o.health_log {
            let text = p.output.trim().replace('\n', "\n              ");
            out.push_str(&format!("    exit {:>3}: {text}\n", p.exit_code));
        }
    }
    if let Some(logs) = &o.logs {
        let container = o.container.as_deref().unwrap_or("the container");
        if logs.trim().is_empty() {
            out.push_str(&format!("  {container} logged nothing\n"));
        } else {
            out.push_str(&format!("  last {LOG_LINES} log lines of {container}:\n"));
            for line in logs.lines() {
                out.push_str(&format!("    | {line}\n"));
            }
        }
    }
    out
}

/// The step summary: the table, then each failed variant's diagnostics, folded.
pub(crate) fn summary_markdown(table: &Table, outcomes: &[Outcome]) -> String {
    let mut markdown = table.render_markdown();
    for outcome in outcomes.iter().filter(|o| !o.passed) {
        markdown.push_str(&format!(
            "\n<details><summary>{} failed</summary>\n\n```text\n{}```\n</details>\n",
            outcome.variant,
            render_diagnostics(outcome)
        ));
    }
    markdown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::HealthProbe;
    use crate::smoke::judge::CheckResult;

    #[test]
    fn diagnostics_show_the_failed_check_probes_and_logs() {
        let o = Outcome {
            variant: "cpu".into(),
            image: "img".into(),
            platform: None,
            slowdown: 1,
            container: Some("xtask-smoke-cpu-1".into()),
            passed: false,
            healthy_after_ms: Some(1200),
            verdict_ms: Some(300),
            verdict_after_probe_ms: None,
            checks_passed: 1,
            checks_total: 2,
            checks: vec![CheckResult::new(
                "imports",
                false,
                "exit 0".into(),
                "exit 1".into(),
            )],
            failure: Some("check `imports` failed".into()),
            health_log: vec![HealthProbe {
                exit_code: 1,
                output: "health: 503\n".into(),
                ..HealthProbe::default()
            }],
            logs: Some("line one\nline two\n".into()),
            kept: false,
        };
        let d = render_diagnostics(&o);
        assert!(
            d.starts_with("smoke cpu FAILED: check `imports` failed\n"),
            "{d}"
        );
        assert!(d.contains("expected: exit 0\n    actual:   exit 1"), "{d}");
        assert!(d.contains("exit   1: health: 503"), "{d}");
        assert!(
            d.contains("of xtask-smoke-cpu-1:\n    | line one\n    | line two\n"),
            "{d}"
        );
        let t = summary_table(&[o]).render_text();
        assert!(
            t.contains("FAIL") && t.contains("1.2 s") && t.contains("300 ms") && t.contains("1/2"),
            "{t}"
        );
    }
}
