//! What every bench shares: its PASS/FAIL checks, their table, and `publish` (print the report
//! in the chosen format, append it to the GitHub step summary, fail when a target was missed).

use anyhow::Result;
use serde::Serialize;

use crate::docker;
use crate::report::{self, Format, Kind, Section, Table};
use crate::util::CheckFailed;

/// Where a bench ran, as each bench's report states it (flattened into its JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    /// The engine's version.
    pub docker: String,
    /// The image store, e.g. `containerd snapshotter (overlayfs)`.
    pub store: String,
}

impl Machine {
    pub fn of(info: &docker::Info) -> Machine {
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            docker: info.server_version.clone(),
            store: info.store_name(),
        }
    }

    /// `2 CPUs, Docker 28.5.2, containerd snapshotter (overlayfs)`, for report titles.
    pub fn describe(&self) -> String {
        format!("{} CPUs, Docker {}, {}", self.cpus, self.docker, self.store)
    }
}

/// One PASS/FAIL line.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub target: String,
    pub measured: String,
    pub pass: bool,
}

/// Prints a bench's report (and appends it to the GitHub step summary), then fails with the
/// names of the missed targets, if any.
pub fn publish<T: Serialize>(
    format: Format,
    what: &str,
    sections: &[Section],
    kind: Kind,
    report: &T,
    checks: &[Check],
) -> Result<()> {
    report::emit_sections(format, sections, kind, report)?;
    report::step_summary(
        &format!("cargo xtask {what}"),
        &report::sections_markdown(sections),
    );
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

/// The PASS/FAIL table of a bench.
pub fn targets_section(checks: &[Check]) -> Section {
    let mut table = Table::new(&["check", "target", "measured", "result"]);
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
