//! What every bench shares: its PASS/FAIL checks, their table, and `publish` (print the report
//! in the chosen format, append it to the GitHub step summary, fail when a target was missed).

use anyhow::Result;
use serde::Serialize;

pub use xtask::report::Machine;
use xtask::report::{self, Format, Kind, Section, Table};
use xtask::util::CheckFailed;

/// One PASS/FAIL line.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub target: String,
    pub measured: String,
    pub pass: bool,
}

/// A bench's report as people read it: its tables, and the charts that go after the first.
pub struct Rendered {
    pub sections: Vec<Section>,
    /// Mermaid charts of the first table (`report::xychart`), shown in Markdown only.
    pub charts: Vec<String>,
}

impl Rendered {
    pub fn tables(sections: Vec<Section>) -> Rendered {
        Rendered {
            sections,
            charts: vec![],
        }
    }

    /// The first table, its charts, then the other tables.
    pub fn markdown(&self) -> String {
        let split = self.sections.len().min(1);
        let mut parts = vec![report::sections_markdown(&self.sections[..split])];
        parts.extend(self.charts.iter().cloned());
        parts.push(report::sections_markdown(&self.sections[split..]));
        parts.retain(|p| !p.is_empty());
        parts.join("\n")
    }
}

/// Prints a bench's report (and appends it to the GitHub step summary), then fails with the
/// names of the missed targets, if any.
pub fn publish<T: Serialize>(
    format: Format,
    what: &str,
    rendered: &Rendered,
    kind: Kind,
    report: &T,
    checks: &[Check],
) -> Result<()> {
    report::emit_rendered(
        format,
        || report::sections_text(&rendered.sections),
        || rendered.markdown(),
        kind,
        report,
    )?;
    report::step_summary(&format!("cargo xtask {what}"), &rendered.markdown());
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.name.as_str())
        .collect();
    if !failed.is_empty() {
        return Err(CheckFailed(format!("{what}: target missed: {}", failed.join(", "))).into());
    }
    Ok(())
}

/// The columns of the PASS/FAIL table.
pub const TARGET_COLUMNS: [&str; 4] = ["check", "target", "measured", "result"];

/// The PASS/FAIL table of a bench.
pub fn targets_section(checks: &[Check]) -> Section {
    let mut table = Table::new(&TARGET_COLUMNS);
    for c in checks {
        table.row(vec![
            c.name.clone(),
            c.target.clone(),
            c.measured.clone(),
            if c.pass { "PASS" } else { "FAIL" }.into(),
        ]);
    }
    Section {
        title: Some("targets".into()),
        table,
    }
}

/// The shape of a bench's Markdown report: its own table (these columns, these rows always)
/// and the targets table.
pub fn shape<C: AsRef<str>, R: AsRef<str>>(columns: &[C], rows: &[R]) -> report::Shape {
    report::Shape {
        tables: vec![
            report::TableShape::new(columns, rows),
            report::TableShape::new(&TARGET_COLUMNS, &[] as &[&str]),
        ],
        chart: false,
    }
}

/// A target's number from the command line: finite, 0 or more (checked as clap parses it,
/// before any work; 0 is a target no run meets). Its flags allow hyphen values, so `-1` gets
/// this error rather than clap's "unexpected argument" and a tip that makes it a variant.
pub fn target(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!("`{s}` is not a number of 0 or more")),
    }
}

/// A size target from the command line (`100 kB`), checked as clap parses it.
pub fn size(s: &str) -> std::result::Result<u64, String> {
    xtask::config::parse_size(s).map_err(|e| format!("{e:#}"))
}

/// The median of some measurements (the mean of the middle two for an even count); None for
/// none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_no_runs() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
