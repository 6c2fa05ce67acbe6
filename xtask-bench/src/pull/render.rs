//! Rendering `bench pull`: one row per image pushed (layers, bytes, pull time, ratio to the
//! reference; through a shaped link, the most connections at once) and the targets table.

use super::PullReport;
use crate::report::targets_section;
use xtask::config::human_size;
use xtask::report::{xychart, Section, Series, Table};

/// The columns of the pulls table.
pub const COLUMNS: [&str; 8] = [
    "image",
    "layers",
    "compressed",
    "largest layer",
    "pull",
    "downloaded at",
    "vs reference",
    "pulls",
];

/// The pull times as a chart: one bar per image (layout and compression), with the moment its
/// last layer was downloaded as a line.
pub fn chart(report: &PullReport) -> String {
    let rows: Vec<(&str, f64, Option<f64>)> = report
        .rows
        .iter()
        .map(|r| (r.image.as_str(), r.pull_secs, r.downloaded_secs))
        .collect();
    times_chart(&report.variant, &rows)
}

/// [`chart`] of `(image, pull seconds, downloaded at)` rows: the download line only when every
/// pull has its moment (a gap would be drawn as 0).
pub fn times_chart(variant: &str, rows: &[(&str, f64, Option<f64>)]) -> String {
    let labels: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
    let mut series = vec![Series::bar("pull", rows.iter().map(|r| r.1).collect())];
    if let Some(downloaded) = rows.iter().map(|r| r.2).collect::<Option<Vec<f64>>>() {
        series.push(Series::line("downloaded at", downloaded));
    }
    let title = format!("bench pull {variant}: pull time by layout and compression (s)");
    xychart(&title, &labels, "seconds", &series)
}

/// The column a shaped pull adds after "downloaded at".
const AT_ONCE: &str = "downloads at once";

/// The columns of the pulls table, through a shaped link or not.
pub fn columns(shaped: bool) -> Vec<&'static str> {
    let mut columns = COLUMNS.to_vec();
    if shaped {
        columns.insert(6, AT_ONCE);
    }
    columns
}

pub fn render(report: &PullReport) -> Vec<Section> {
    let shaped = report.network.is_some();
    let mut table = Table::new(&columns(shaped)).right_align(if shaped {
        &[1, 2, 3, 4, 5, 6, 7]
    } else {
        &[1, 2, 3, 4, 5, 6]
    });
    for row in &report.rows {
        let mut cells = vec![
            if row.as_pushed {
                format!("{} (as pushed)", row.image)
            } else {
                row.image.clone()
            },
            row.layers.to_string(),
            human_size(row.compressed),
            human_size(row.largest_layer),
            format!("{:.1} s", row.pull_secs),
            row.downloaded_secs
                .map_or("?".into(), |s| format!("{s:.1} s")),
        ];
        if shaped {
            cells.push(row.most_busy.map_or("?".into(), |n| n.to_string()));
        }
        cells.extend([
            row.vs_reference.map_or("-".into(), |r| format!("{r:.2}")),
            row.pulls
                .iter()
                .map(|p| format!("{:.1}", p.secs))
                .collect::<Vec<_>>()
                .join(" / "),
        ]);
        table.row(cells);
    }
    vec![
        Section {
            title: Some(format!(
                "bench pull {} ({}, {} layers, the venv's: {}): {} CPUs, Docker {}, {}; each pull \
                 by a fresh engine ({}) from a registry {}",
                report.variant,
                report.image,
                report.layers,
                report.venv_layers,
                report.machine.cpus,
                report.machine.docker,
                report.machine.store,
                report.puller,
                match &report.network {
                    Some(network) => format!("behind a shaped link: {network}"),
                    None => "on 127.0.0.1".into(),
                },
            )),
            table,
        },
        targets_section(&report.checks),
    ]
}
