//! Render: the build summary table (text, JSON or Markdown) and the step summary.

use anyhow::Result;

use super::run::BuildReport;
use crate::report::{self, Format, Kind, List, Table};
use crate::util;

/// Prints the reports as `format` and writes the step summary.
pub fn render(format: Format, reports: &[BuildReport]) -> Result<()> {
    let mut table = Table::new(&[
        "variant",
        "image",
        "image id / pushed digest",
        "time",
        "steps cached",
        "cache",
    ])
    .right_align(&[3, 4]);
    for r in reports {
        table.row(vec![
            r.variant.clone(),
            r.image.clone(),
            match (&r.image_id, &r.digest, r.pushed) {
                (_, Some(digest), true) => digest.clone(),
                (Some(id), _, _) => util::short_id(id),
                _ => "-".into(),
            },
            format!("{:.1} s", r.duration_secs),
            match (r.steps_cached, r.steps_total) {
                (Some(c), Some(t)) => format!("{c}/{t}"),
                _ => "?".into(),
            },
            r.cache.clone(),
        ]);
    }
    report::emit(format, &table, Kind::Builds, &List("builds", reports))?;
    report::step_summary("cargo xtask build", &table.render_markdown());
    Ok(())
}
