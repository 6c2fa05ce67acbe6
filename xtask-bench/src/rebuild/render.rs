//! Rendering `bench rebuild`: the table of the four builds (time, share of cold, the steps that
//! ran) and the targets table.

use super::judge::RebuildReport;
use super::plan::Scenario;
use crate::report::targets_section;
use xtask::report::{xychart, Section, Series, Table};

/// `[app 3/5] COPY` for `[app 3/5] COPY --chown=0:0 app/src/voxserve …`: the table shows the
/// step and its instruction; JSON keeps the whole name.
pub fn short_step(name: &str) -> String {
    match name.split_once("] ") {
        Some((label, rest)) => {
            let instr = rest.split_whitespace().next().unwrap_or("");
            format!("{label}] {instr}")
        }
        None => name.to_string(),
    }
}

/// `6.1 / 5.9 / 6.4`: every run's time, in the order measured.
fn each_run(runs: &[f64]) -> String {
    runs.iter()
        .map(|s| format!("{s:.1}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The columns of the builds table: with a peer, its time and the ratio; with several runs
/// (the times are medians), every run's time.
pub fn columns(peer: bool, several: bool) -> Vec<&'static str> {
    let mut head = vec!["build", "time", "vs cold"];
    if peer {
        head.extend(["peer", "ours/peer"]);
    }
    head.extend(["steps cached", "steps run"]);
    if several {
        head.push("runs (s)");
        if peer {
            head.push("peer's runs (s)");
        }
    }
    head
}

pub fn render(report: &RebuildReport) -> Vec<Section> {
    let peer = report.rows.iter().any(|r| r.peer.is_some());
    let several = report.rows.iter().any(|r| r.runs.len() > 1);
    let mut builds = Table::new(&columns(peer, several)).right_align(if peer {
        &[1, 2, 3, 4, 5]
    } else {
        &[1, 2, 3]
    });
    for row in &report.rows {
        let mut cells = vec![
            row.scenario.label().to_string(),
            format!("{:.1} s", row.secs),
            row.ratio_to_cold
                .map_or("?".into(), |r| format!("{:.1} %", r * 100.0)),
        ];
        if peer {
            cells.push(
                row.peer
                    .as_ref()
                    .map_or("-".into(), |p| format!("{:.1} s", p.secs)),
            );
            cells.push(row.ratio_to_peer.map_or("-".into(), |r| format!("{r:.2}")));
        }
        cells.extend([
            match (row.steps_cached, row.steps_total) {
                (Some(c), Some(t)) => format!("{c}/{t}"),
                _ => "?".into(),
            },
            if matches!(row.scenario, Scenario::Cold | Scenario::ColdNative) {
                "all".into()
            } else if row.steps_run.is_empty() {
                "-".into()
            } else {
                row.steps_run
                    .iter()
                    .map(|s| short_step(s))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ]);
        if several {
            cells.push(each_run(&row.runs));
            if peer {
                cells.push(row.peer.as_ref().map_or("-".into(), |p| each_run(&p.runs)));
            }
        }
        builds.row(cells);
    }
    vec![
        Section {
            title: Some(format!(
                "bench rebuild {} ({}): {}",
                report.variant,
                report.image,
                report.machine.describe()
            )),
            table: builds,
        },
        targets_section(&report.checks),
    ]
}

/// The build times as a chart: ours as bars, one per build, the peer's as a line over them.
pub fn chart(report: &RebuildReport) -> String {
    let rows: Vec<(&str, f64, Option<f64>)> = report
        .rows
        .iter()
        .map(|r| (r.scenario.label(), r.secs, r.peer.as_ref().map(|p| p.secs)))
        .collect();
    times_chart(&report.variant, &rows)
}

/// [`chart`] of `(build, our seconds, the peer's seconds)` rows: the peer's line only when
/// every build has one.
pub fn times_chart(variant: &str, rows: &[(&str, f64, Option<f64>)]) -> String {
    let labels: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
    let mut series = vec![Series::bar("ours", rows.iter().map(|r| r.1).collect())];
    let peer: Option<Vec<f64>> = rows.iter().map(|r| r.2).collect();
    let title = match peer {
        Some(peer) if !rows.is_empty() => {
            series.push(Series::line("the peer", peer));
            format!("bench rebuild {variant}: build time, ours vs the peer (s)")
        }
        _ => format!("bench rebuild {variant}: build time (s)"),
    };
    xychart(&title, &labels, "seconds", &series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_steps_by_label_and_instruction() {
        assert_eq!(
            short_step("[app 3/5] COPY --chown=0:0 app/src/voxserve /opt/voxserve/voxserve"),
            "[app 3/5] COPY"
        );
        assert_eq!(short_step("exporting to image"), "exporting to image");
    }

    #[test]
    fn every_run_is_listed_in_order() {
        assert_eq!(each_run(&[6.14, 5.9, 6.36]), "6.1 / 5.9 / 6.4");
    }
}
