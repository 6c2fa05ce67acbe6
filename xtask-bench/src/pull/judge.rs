//! Judging `bench pull` (pure): one row per image pushed (medians of its pulls, the ratio to the
//! reference — the venv in one layer with gzip, as images were pushed before), and the checks:
//! every pull stored exactly the pushed layers on an engine that had none of them, through a
//! shaped link no pull was faster than the link lets bytes through (else it was not shaped), and
//! the image as a push sends it pulls in at most `max_ratio` of the reference's time.

use serde::Serialize;

use super::network::Network;
use super::plan::{ImagePlan, Layout};
use super::push::Pushed;
use super::run::PullRun;
use crate::report::{median, Check};
use xtask::build_cmd::Compression;

#[derive(Debug, Serialize)]
pub struct Row {
    /// `one venv layer, gzip`, …
    pub image: String,
    pub layout: Layout,
    pub compression: Compression,
    /// The layout and compression `cargo xtask build --push` sends for this variant.
    pub as_pushed: bool,
    pub layers: usize,
    /// Bytes a pull downloads: the layer blobs.
    pub compressed: u64,
    pub largest_layer: u64,
    /// Median of the pulls.
    pub pull_secs: f64,
    /// Median time at which the last download was complete.
    pub downloaded_secs: Option<f64>,
    /// `pull_secs` over the reference row's.
    pub vs_reference: Option<f64>,
    /// Through a shaped link: the most connections a pull downloaded on at once.
    pub most_busy: Option<usize>,
    pub pulls: Vec<PullRun>,
    pub pushed: Pushed,
}

/// The rows, in the order measured; the first is the reference.
pub fn rows(measured: Vec<(ImagePlan, Pushed, Vec<PullRun>)>, push: Compression) -> Vec<Row> {
    let mut rows: Vec<Row> = measured
        .into_iter()
        .map(|(plan, pushed, pulls)| Row {
            image: plan.label(),
            layout: plan.layout,
            compression: plan.compression,
            as_pushed: plan.layout == Layout::Split && plan.compression == push,
            layers: pushed.layers.len(),
            compressed: pushed.compressed(),
            largest_layer: pushed.layers.iter().map(|l| l.size).max().unwrap_or(0),
            pull_secs: median(&pulls.iter().map(|p| p.secs).collect::<Vec<_>>()).unwrap_or(0.0),
            downloaded_secs: median(
                &pulls
                    .iter()
                    .filter_map(|p| p.downloaded_secs)
                    .collect::<Vec<_>>(),
            ),
            vs_reference: None,
            most_busy: pulls.iter().filter_map(|p| p.most_busy).max(),
            pulls,
            pushed,
        })
        .collect();
    let reference = rows.first().map(|r| r.pull_secs).filter(|s| *s > 0.0);
    for row in &mut rows {
        row.vs_reference = reference.map(|r| row.pull_secs / r);
    }
    rows
}

pub fn checks(rows: &[Row], max_ratio: f64, network: Option<&Network>) -> Vec<Check> {
    let mut checks = vec![stored(rows)];
    checks.extend(network.map(|n| shaped(rows, n)));
    if let (Some(reference), Some(pushed)) = (rows.first(), rows.iter().find(|r| r.as_pushed)) {
        if !std::ptr::eq(reference, pushed) {
            let ratio = pushed.vs_reference.unwrap_or(f64::INFINITY);
            checks.push(Check {
                name: format!("pull as pushed ({}) vs {}", pushed.image, reference.image),
                target: format!("≤ {max_ratio:.2}× the reference"),
                measured: format!(
                    "{ratio:.2}× ({:.1} s vs {:.1} s)",
                    pushed.pull_secs, reference.pull_secs
                ),
                pass: ratio <= max_ratio,
            });
        }
    }
    checks
}

/// Every pull stored exactly the pushed layers, on an engine that had none of them.
fn stored(rows: &[Row]) -> Check {
    let pulls: usize = rows.iter().map(|r| r.pulls.len()).sum();
    let bad: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            let want = r.pushed.diff_ids();
            r.pulls.iter().enumerate().filter_map(move |(i, p)| {
                if p.already_there > 0 {
                    Some(format!(
                        "{} pull {}: {} layers were already there",
                        r.image,
                        i + 1,
                        p.already_there
                    ))
                } else if p.stored != want {
                    Some(format!(
                        "{} pull {}: stored {} layers, not the {} pushed",
                        r.image,
                        i + 1,
                        p.stored.len(),
                        want.len()
                    ))
                } else {
                    None
                }
            })
        })
        .collect();
    Check {
        name: "every pull stored the pushed layers".into(),
        target: "a fresh engine, every layer downloaded, the diff IDs pushed".into(),
        measured: if bad.is_empty() {
            format!("{pulls} of {pulls} pulls")
        } else {
            bad.join("; ")
        },
        pass: bad.is_empty() && pulls > 0,
    }
}

/// The least time a pull of `row`'s image can take through the link: all its bytes at the
/// link's rate, and its largest layer (one connection) at the per-connection rate.
pub fn floor_secs(row: &Row, network: &Network) -> f64 {
    let all = row.compressed as f64 * 8.0 / network.rate_bits as f64;
    let largest = network
        .per_connection_bits
        .map_or(0.0, |cap| row.largest_layer as f64 * 8.0 / cap as f64);
    all.max(largest)
}

/// No pull was faster than the link lets its bytes through: the shaping held.
fn shaped(rows: &[Row], network: &Network) -> Check {
    let closest = rows
        .iter()
        .flat_map(|r| {
            r.pulls
                .iter()
                .map(move |p| (r, p.secs, floor_secs(r, network)))
        })
        .min_by(|a, b| (a.1 / a.2).total_cmp(&(b.1 / b.2)));
    let (measured, pass) = match closest {
        Some((row, secs, floor)) => (
            format!("closest: {} in {secs:.1} s, floor {floor:.1} s", row.image),
            secs >= floor,
        ),
        None => ("no pulls".into(), false),
    };
    Check {
        name: format!("every pull held to the link ({network})"),
        target: "≥ its bytes at the link's rate and its largest layer at one connection's".into(),
        measured,
        pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pull::plan::images;
    use crate::pull::push::PushedLayer;

    fn pushed(ids: &[&str]) -> Pushed {
        Pushed {
            reference: "r".into(),
            digest: "d".into(),
            layers: ids
                .iter()
                .map(|id| PushedLayer {
                    digest: format!("b{id}"),
                    diff_id: id.to_string(),
                    media_type: "m".into(),
                    size: 10,
                    from: vec![1],
                })
                .collect(),
            secs: 1.0,
        }
    }

    fn pull(secs: f64, stored: &[&str]) -> PullRun {
        PullRun {
            secs,
            downloaded_secs: Some(secs / 4.0),
            already_there: 0,
            stored: stored.iter().map(|s| s.to_string()).collect(),
            connections: None,
            most_busy: None,
        }
    }

    #[test]
    fn medians_ratios_and_the_target_of_the_image_as_pushed() {
        // The four images of a venv in two layers: one venv layer gzip/zstd, split gzip/zstd.
        let plans = images(3, &(1..3));
        let measured = vec![
            (
                plans[0].clone(),
                pushed(&["a", "bc"]),
                vec![pull(40.0, &["a", "bc"])],
            ),
            (
                plans[1].clone(),
                pushed(&["a", "bc"]),
                vec![pull(20.0, &["a", "bc"])],
            ),
            (
                plans[2].clone(),
                pushed(&["a", "b", "c"]),
                vec![pull(30.0, &["a", "b", "c"])],
            ),
            (
                plans[3].clone(),
                pushed(&["a", "b", "c"]),
                vec![pull(12.0, &["a", "b", "c"])],
            ),
        ];
        let rows = rows(measured, Compression::Zstd);
        assert_eq!(rows[3].image, "layers as built, zstd");
        assert!(rows[3].as_pushed && !rows[2].as_pushed);
        assert_eq!(rows[3].vs_reference, Some(0.3));
        let checks = checks(&rows, 0.5, None);
        assert_eq!(checks.len(), 2);
        assert!(checks[0].pass, "{checks:?}");
        assert_eq!(checks[0].measured, "4 of 4 pulls");
        assert_eq!(
            checks[1].name,
            "pull as pushed (layers as built, zstd) vs one venv layer, gzip"
        );
        assert_eq!(checks[1].measured, "0.30× (12.0 s vs 40.0 s)");
        assert!(checks[1].pass);
        assert!(!super::checks(&rows, 0.25, None)[1].pass);
    }

    #[test]
    fn a_pull_that_stored_other_layers_or_found_some_fails_and_no_target_when_pushed_is_the_reference(
    ) {
        let plans = images(3, &(1..2));
        let mut found = pull(5.0, &["a", "b", "c"]);
        found.already_there = 2;
        let measured = vec![
            (
                plans[0].clone(),
                pushed(&["a", "b", "c"]),
                vec![pull(5.0, &["a", "b"])],
            ),
            (plans[1].clone(), pushed(&["a", "b", "c"]), vec![found]),
        ];
        let rows = rows(measured, Compression::Gzip);
        let checks = checks(&rows, 0.5, None);
        // The image as pushed (layers as built, gzip) is the reference: no ratio to judge.
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert!(!checks[0].pass);
        assert!(
            checks[0]
                .measured
                .contains("stored 2 layers, not the 3 pushed")
                && checks[0].measured.contains("2 layers were already there"),
            "{}",
            checks[0].measured
        );
    }

    #[test]
    fn through_a_link_no_pull_may_beat_its_rate_nor_its_largest_layer_at_one_connection() {
        let plans = images(3, &(1..3));
        // 10 MB in all, its largest layer 6 MB: 0.8 s at 100 Mbit/s, 1.6 s at 30 Mbit/s.
        let mut one = pushed(&["a", "bc"]);
        one.layers[0].size = 4_000_000;
        one.layers[1].size = 6_000_000;
        let measured = vec![
            (plans[0].clone(), one.clone(), vec![pull(2.0, &["a", "bc"])]),
            (plans[1].clone(), one, vec![pull(1.7, &["a", "bc"])]),
        ];
        let rows = rows(measured, Compression::Gzip);
        let capped = Network::parse("10ms,100mbit,30mbit").unwrap();
        assert!((floor_secs(&rows[0], &capped) - 1.6).abs() < 1e-9);
        let uncapped = Network::parse("10ms,100mbit").unwrap();
        assert!((floor_secs(&rows[0], &uncapped) - 0.8).abs() < 1e-9);
        let check = &checks(&rows, 0.5, Some(&capped))[1];
        assert_eq!(
            check.name,
            "every pull held to the link (10 ms round trip, 100 Mbit/s, 30 Mbit/s per connection)"
        );
        assert_eq!(
            check.measured,
            "closest: one venv layer, zstd in 1.7 s, floor 1.6 s"
        );
        assert!(check.pass);
        // Faster than its largest layer can come through one connection: not shaped.
        let slower = Network::parse("10ms,100mbit,25mbit").unwrap();
        assert!(!checks(&rows, 0.5, Some(&slower))[1].pass);
    }
}
