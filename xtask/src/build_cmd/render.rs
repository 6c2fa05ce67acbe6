//! Render: the build summary table (text, JSON or Markdown), the step summary, and the progress
//! lines around each build.

use anyhow::Result;
use camino::Utf8Path;

use super::plan::PlanInput;
use super::resolve::Setting;
use super::run::BuildReport;
use crate::report::{self, Format, Kind, List, Table};
use crate::util;

/// Prints the reports as `format` and writes the step summary.
pub(crate) fn render(format: Format, reports: &[BuildReport]) -> Result<()> {
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

/// `building cpu (…/Dockerfile.cpu) for linux/amd64 with builder `default``, and which of the
/// variant's platforms a load leaves out.
pub(crate) fn starting(input: &PlanInput, setting: &Setting, platforms_given: bool) -> String {
    let variant = input.variant;
    let others: Vec<&str> = variant
        .platforms
        .iter()
        .filter(|p| !input.platforms.contains(p))
        .map(String::as_str)
        .collect();
    let platforms = if input.platforms.is_empty() {
        setting.native.clone()
    } else {
        input.platforms.join(", ")
    };
    let left_out = if others.is_empty() || platforms_given {
        String::new()
    } else {
        format!(
            " (a load builds this engine's platform; images.toml also lists {}: add --platform \
             to load them, --push builds them all)",
            others.join(", ")
        )
    };
    format!(
        "building {} ({}) for {platforms} with builder `{}`{left_out}",
        variant.name,
        util::shown(&variant.dockerfile),
        setting.builder.name
    )
}

/// `built cpu in 41.2 s (12 of 14 steps cached); report: …`.
pub(crate) fn built(report: &BuildReport, path: &Utf8Path) -> String {
    let count = |n: Option<u64>| n.map_or("?".into(), |n| n.to_string());
    format!(
        "built {} in {:.1} s ({} of {} steps cached); report: {}",
        report.variant,
        report.duration_secs,
        count(report.steps_cached),
        count(report.steps_total),
        util::shown(path)
    )
}
