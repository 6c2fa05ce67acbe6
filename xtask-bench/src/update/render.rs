//! Rendering `bench update`: one row per change (time, layers changed, bytes to pull and to
//! store, the new layers) and the targets table.

use super::UpdateReport;
use crate::report::targets_section;
use xtask::config::human_size;
use xtask::report::{Section, Table};

/// The columns of the changes table.
pub const COLUMNS: [&str; 6] = [
    "change",
    "build",
    "layers changed",
    "pull (compressed)",
    "store (unpacked)",
    "new layers",
];

pub fn render(report: &UpdateReport) -> Vec<Section> {
    let mut table = Table::new(&COLUMNS).right_align(&[1, 2, 3, 4]);
    for row in &report.rows {
        let d = &row.delta;
        table.row(vec![
            format!("{}: {}", row.scenario.label(), row.change),
            format!("{:.1} s", row.secs),
            format!("{}/{}", d.layers_changed, d.layers_total),
            human_size(d.pull_bytes),
            human_size(d.store_bytes),
            if d.changed.is_empty() {
                "-".into()
            } else {
                d.changed
                    .iter()
                    .map(|(i, instr, bytes)| {
                        let short = xtask::util::shorten(instr, 48);
                        format!("{i}/{} {short} ({})", d.layers_total, human_size(*bytes))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ]);
    }
    vec![
        Section {
            title: Some(format!(
                "bench update {} ({}, {} layers): {} CPUs, Docker {}, {}",
                report.variant,
                report.image,
                report.baseline_layers,
                report.machine.cpus,
                report.machine.docker,
                report.machine.store
            )),
            table,
        },
        targets_section(&report.checks),
    ]
}
