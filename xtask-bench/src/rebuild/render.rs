//! Rendering `bench rebuild`: the table of the four builds (time, share of cold, the steps that
//! ran) and the targets table.

use super::judge::RebuildReport;
use super::plan::{peer_title, Scenario};
use super::run::Row;
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

/// The columns of the builds table: for each peer (by name), its time and the ratio; with
/// several runs (the times are medians), every run's time, ours and each peer's.
pub fn columns(peers: &[String], several: bool) -> Vec<String> {
    let mut head: Vec<String> = ["build", "time", "vs cold"].map(String::from).to_vec();
    for name in peers {
        head.extend([peer_title(name), format!("ours/{name}")]);
    }
    head.extend(["steps cached".into(), "steps run".into()]);
    if several {
        head.push("runs (s)".into());
        head.extend(
            peers
                .iter()
                .map(|n| format!("{}'s runs (s)", peer_title(n))),
        );
    }
    head
}

/// The steps a build ran, as the table shows them.
fn steps_run(row: &Row) -> String {
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
    }
}

/// One row of the builds table, in the order of [`columns`] for `peers`.
fn cells(row: &Row, peers: &[String], several: bool) -> Vec<String> {
    let peer = |name: &String| row.peers.iter().find(|p| &p.name == name);
    let mut cells = vec![
        row.scenario.label().to_string(),
        format!("{:.1} s", row.secs),
        row.ratio_to_cold
            .map_or("?".into(), |r| format!("{:.1} %", r * 100.0)),
    ];
    for name in peers {
        let p = peer(name);
        cells.push(p.map_or("-".into(), |p| format!("{:.1} s", p.secs)));
        cells.push(
            p.and_then(|p| p.ratio)
                .map_or("-".into(), |r| format!("{r:.2}")),
        );
    }
    cells.extend([
        match (row.steps_cached, row.steps_total) {
            (Some(c), Some(t)) => format!("{c}/{t}"),
            _ => "?".into(),
        },
        steps_run(row),
    ]);
    if several {
        cells.push(each_run(&row.runs));
        for name in peers {
            cells.push(peer(name).map_or("-".into(), |p| each_run(&p.runs)));
        }
    }
    cells
}

/// The peers' names, in the order they ran.
fn peer_names(report: &RebuildReport) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in report.rows.iter().flat_map(|r| &r.peers) {
        if !names.contains(&p.name) {
            names.push(p.name.clone());
        }
    }
    names
}

pub fn render(report: &RebuildReport) -> Vec<Section> {
    let peers = peer_names(report);
    let several = report.rows.iter().any(|r| r.runs.len() > 1);
    let head = columns(&peers, several);
    let numbers: Vec<usize> = (1..4 + 2 * peers.len()).collect();
    let mut builds =
        Table::new(&head.iter().map(String::as_str).collect::<Vec<_>>()).right_align(&numbers);
    for row in &report.rows {
        builds.row(cells(row, &peers, several));
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

/// The build times as a chart: ours as bars, one per build, each peer's as a line over them.
pub fn chart(report: &RebuildReport) -> String {
    let labels = report.rows.iter().map(|r| r.scenario.label().to_string());
    let ours = report.rows.iter().map(|r| r.secs).collect();
    let peers: Vec<(String, Vec<f64>)> = peer_names(report)
        .into_iter()
        .filter_map(|name| {
            let secs = (report.rows.iter())
                .map(|r| r.peers.iter().find(|p| p.name == name).map(|p| p.secs))
                .collect::<Option<Vec<f64>>>()?;
            Some((peer_title(&name), secs))
        })
        .collect();
    peers_chart(&report.variant, labels.collect(), ours, &peers)
}

/// [`chart`] of `(build, our seconds, the peer's seconds)` rows: the peer's line only when
/// every build has one.
pub fn times_chart(variant: &str, rows: &[(&str, f64, Option<f64>)]) -> String {
    let labels: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
    let peer: Option<Vec<f64>> = rows.iter().map(|r| r.2).collect();
    let peers: Vec<(String, Vec<f64>)> = peer
        .filter(|_| !rows.is_empty())
        .map(|secs| ("peer".to_string(), secs))
        .into_iter()
        .collect();
    peers_chart(variant, labels, rows.iter().map(|r| r.1).collect(), &peers)
}

/// Ours as bars and a line per `(title, seconds)` of `peers`.
fn peers_chart(
    variant: &str,
    labels: Vec<String>,
    ours: Vec<f64>,
    peers: &[(String, Vec<f64>)],
) -> String {
    let mut series = vec![Series::bar("ours", ours)];
    for (title, secs) in peers {
        series.push(Series::line(&format!("the {title}"), secs.clone()));
    }
    let title = match peers.len() {
        0 => format!("bench rebuild {variant}: build time (s)"),
        1 => format!("bench rebuild {variant}: build time, ours vs the peer (s)"),
        _ => format!("bench rebuild {variant}: build time, ours vs the peers (s)"),
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
    fn each_peer_has_its_columns_in_the_order_the_peers_ran() {
        let peers = ["peer".to_string(), "uv-guide".to_string()];
        assert_eq!(
            columns(&peers, true),
            [
                "build",
                "time",
                "vs cold",
                "peer",
                "ours/peer",
                "uv-guide peer",
                "ours/uv-guide",
                "steps cached",
                "steps run",
                "runs (s)",
                "peer's runs (s)",
                "uv-guide peer's runs (s)"
            ]
        );
        assert_eq!(
            columns(&[], false),
            ["build", "time", "vs cold", "steps cached", "steps run"]
        );
    }

    #[test]
    fn the_chart_draws_a_line_per_peer() {
        let peers = [
            ("peer".to_string(), vec![18.2, 9.2]),
            ("uv-guide peer".to_string(), vec![16.0, 6.7]),
        ];
        let labels = vec!["cold".to_string(), "dep".to_string()];
        let chart = peers_chart("cpu-minimal", labels, vec![15.3, 4.1], &peers);
        assert!(chart.contains("ours vs the peers (s)"), "{chart}");
        assert!(chart.contains("line \"the peer\" [18.2, 9.2]"), "{chart}");
        assert!(
            chart.contains("line \"the uv-guide peer\" [16, 6.7]"),
            "{chart}"
        );
    }

    #[test]
    fn every_run_is_listed_in_order() {
        assert_eq!(each_run(&[6.14, 5.9, 6.36]), "6.1 / 5.9 / 6.4");
    }
}
