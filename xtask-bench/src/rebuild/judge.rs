//! Judging `bench rebuild` (pure): an app-only rebuild within issue 3's targets (≤ 5 s and
//! ≤ 5 % of cold) having re-run only steps of the last stage, a no-change rebuild running no
//! step, and the base image unchanged throughout (else the figures mean nothing).

use serde::Serialize;

use super::plan::{peer_title, Scenario};
use super::run::Row;
use crate::report::{Check, Machine};
use xtask::config::Variant;

/// The bench's report: the builds, the checks and the verdict (`--format json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub variant: String,
    pub image: String,
    #[serde(flatten)]
    pub machine: Machine,
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
    pub pass: bool,
}

/// `app` for `[app 3/4] COPY …` (also with a platform word in front); None for `[3/4] …`.
pub(super) fn step_stage(name: &str) -> Option<&str> {
    let label = name.strip_prefix('[')?.split_once(']')?.0;
    let mut words = label.split_whitespace().rev();
    words.next()?;
    words.next()
}

/// The targets: an app-only rebuild in at most `max_secs` and `max_percent` % of cold, having
/// re-run only (and some) steps of `last_stage`; a no-change rebuild running no step at all.
pub fn judge(rows: &[Row], last_stage: &str, max_secs: f64, max_percent: f64) -> Vec<Check> {
    let find = |s: Scenario| rows.iter().find(|r| r.scenario == s);
    let mut checks = Vec::new();
    if let Some(app) = find(Scenario::AppChange) {
        checks.push(Check {
            name: "app-only rebuild time".into(),
            target: format!("≤ {max_secs} s"),
            measured: format!("{:.1} s", app.secs),
            pass: app.secs <= max_secs,
        });
        checks.push(Check {
            name: "app-only rebuild vs cold".into(),
            target: format!("≤ {max_percent} %"),
            measured: app
                .ratio_to_cold
                .map_or("?".into(), |r| format!("{:.1} %", r * 100.0)),
            pass: app.ratio_to_cold.is_some_and(|r| r * 100.0 <= max_percent),
        });
        // The stages that build the dependencies: those the dependency change re-ran, but the
        // last one (which copies their result). An app change must run none of their steps.
        let dep_stages: Vec<&str> = find(Scenario::DepChange)
            .map(|dep| {
                let mut stages: Vec<&str> = dep
                    .steps_run
                    .iter()
                    .filter_map(|n| step_stage(n))
                    .filter(|s| *s != last_stage)
                    .collect();
                stages.sort_unstable();
                stages.dedup();
                stages
            })
            .unwrap_or_default();
        let outside: Vec<&str> = app
            .steps_run
            .iter()
            .map(String::as_str)
            .filter(|n| step_stage(n).is_some_and(|s| dep_stages.contains(&s)))
            .collect();
        let ran = app.steps_run.len();
        let stages = if dep_stages.is_empty() {
            "-".to_string()
        } else {
            dep_stages.join(", ")
        };
        checks.push(Check {
            name: "app-only rebuild re-ran no dependency step".into(),
            target: format!("≥ 1 step run, none in the dependency stages ({stages})"),
            measured: match (ran, outside.is_empty(), app.steps_total, app.steps_cached) {
                (0, _, _, _) => "no step ran (is the file in the build context?)".into(),
                (_, true, Some(t), Some(c)) => {
                    format!("{} of {t} ran ({c} cached), none there", t - c)
                }
                (_, true, _, _) => format!("{ran} ran, none there"),
                (_, false, _, _) => format!("also ran: {}", outside.join("; ")),
            },
            pass: ran > 0 && outside.is_empty(),
        });
    }
    if let Some(warm) = find(Scenario::NoChange) {
        checks.push(Check {
            name: "no-change rebuild is fully cached".into(),
            target: "0 steps run".into(),
            measured: match (warm.steps_total, warm.steps_cached) {
                (Some(t), Some(c)) => format!("{} of {t} ran", t - c),
                _ => "? (no build record)".into(),
            },
            pass: warm.steps_total.is_some() && warm.steps_run.is_empty(),
        });
    }
    checks
}

/// Against each peer Dockerfile built right after each of ours with the same change: ours / peer
/// at most the given ratio for the app-only, the dependency-change and the cold build.
pub fn peer_checks(rows: &[Row], max_app: f64, max_dep: f64, max_cold: f64) -> Vec<Check> {
    let mut checks = Vec::new();
    for (scenario, what, max) in [
        (Scenario::AppChange, "app-only rebuild", max_app),
        (Scenario::DepChange, "dependency-change rebuild", max_dep),
        (Scenario::Cold, "cold build", max_cold),
    ] {
        let Some(row) = rows.iter().find(|r| r.scenario == scenario) else {
            continue;
        };
        for peer in &row.peers {
            let title = peer_title(&peer.name);
            checks.push(Check {
                name: format!("{what} vs the {title}"),
                target: format!("≤ {max:.2}× the {title}"),
                measured: match peer.ratio {
                    Some(r) => format!("{r:.2}× ({:.1} s vs {:.1} s)", row.secs, peer.secs),
                    None => "?".into(),
                },
                pass: peer.ratio.is_some_and(|r| r <= max),
            });
        }
    }
    checks
}

/// With `--platform`: the platform's cold build against the engine's own platform's cold build of
/// the same run.
pub fn platform_check(rows: &[Row], platform: &str, native: &str, max: f64) -> Check {
    let secs = |s: Scenario| rows.iter().find(|r| r.scenario == s).map(|r| r.secs);
    let (theirs, ours) = (secs(Scenario::Cold), secs(Scenario::ColdNative));
    let ratio = super::run::ratio(theirs.unwrap_or(0.0), ours);
    Check {
        name: format!("cold build for {platform} vs {native}"),
        target: format!("≤ {max:.2}× the {native} cold build"),
        measured: match (ratio, theirs, ours) {
            (Some(r), Some(t), Some(o)) => format!("{r:.2}× ({t:.1} s vs {o:.1} s)"),
            _ => "?".into(),
        },
        pass: theirs.is_some() && ratio.is_some_and(|r| r <= max),
    }
}

/// The base image must be the same before the cold build and after the last one: when it was
/// replaced meanwhile, the warm builds were not warm and the figures mean nothing.
pub fn base_check(image: &str, before: Option<&str>, after: Option<&str>) -> Check {
    let short = |id: Option<&str>| id.map_or("absent".to_string(), xtask::util::short_id);
    Check {
        name: "base image unchanged during the bench".into(),
        target: format!("{image}: same ID before and after"),
        measured: if before == after {
            short(before)
        } else {
            format!("{} -> {} (rerun the bench)", short(before), short(after))
        },
        pass: before == after,
    }
}

/// The stage an app-only change should rebuild: the variant's target, else the stage of the
/// last step the cold build listed, else `app`.
pub fn last_stage(variant: &Variant, rows: &[Row]) -> String {
    if let Some(target) = &variant.target {
        return target.clone();
    }
    rows.first()
        .and_then(|cold| cold.steps_run.last())
        .and_then(|name| step_stage(name))
        .unwrap_or("app")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rebuild::run::ratio;

    fn row(scenario: Scenario, secs: f64, cold: f64, run: &[&str]) -> Row {
        Row {
            scenario,
            touched: None,
            secs,
            runs: vec![secs],
            ratio_to_cold: ratio(secs, Some(cold)),
            steps_total: Some(13),
            steps_cached: Some(13 - run.len() as u64),
            steps_run: run.iter().map(|s| s.to_string()).collect(),
            peers: vec![],
            peer: None,
            ratio_to_peer: None,
        }
    }

    fn rows(app_secs: f64, app_run: &[&str]) -> Vec<Row> {
        vec![
            row(Scenario::Cold, 100.0, 100.0, &[]),
            row(Scenario::NoChange, 3.0, 100.0, &[]),
            row(Scenario::AppChange, app_secs, 100.0, app_run),
            row(
                Scenario::DepChange,
                40.0,
                100.0,
                &["[deps 6/8] RUN uv pip install", "[app 2/4] COPY venv"],
            ),
        ]
    }

    fn verdict(checks: Vec<Check>) -> Vec<(String, bool)> {
        checks.into_iter().map(|c| (c.name, c.pass)).collect()
    }

    #[test]
    fn a_platforms_cold_build_is_judged_against_the_engines_own() {
        let mut r = rows(4.0, &[]);
        r.insert(0, row(Scenario::ColdNative, 80.0, 80.0, &[]));
        let c = platform_check(&r, "linux/arm64", "linux/amd64", 1.5);
        assert!(c.pass, "{c:?}");
        assert_eq!(c.measured, "1.25× (100.0 s vs 80.0 s)");
        assert_eq!(c.name, "cold build for linux/arm64 vs linux/amd64");
        let c = platform_check(&r, "linux/arm64", "linux/amd64", 1.2);
        assert!(!c.pass);
        let c = platform_check(&r[1..], "linux/arm64", "linux/amd64", 1.5);
        assert!(!c.pass && c.measured == "?", "{c:?}");
    }

    #[test]
    fn app_rebuild_within_both_targets_passes() {
        let app = [
            "[app 3/4] COPY app/src/voxserve /opt/voxserve/voxserve",
            "[app 4/4] RUN python3 -m compileall",
        ];
        let checks = judge(&rows(4.9, &app), "app", 5.0, 5.0);
        assert!(checks.iter().all(|c| c.pass), "{checks:?}");
        assert_eq!(checks[2].measured, "2 of 13 ran (11 cached), none there");
        assert_eq!(
            checks[2].target,
            "≥ 1 step run, none in the dependency stages (deps)"
        );
        // Steps of a stage the dependency change did not touch (the app's own, byte-compiled
        // apart) are an app change's to run.
        let checks = judge(
            &rows(4.9, &["[code 2/3] COPY app /x", "[app 5/6] COPY x /x"]),
            "app",
            5.0,
            5.0,
        );
        assert!(checks[2].pass, "{:?}", checks[2]);
    }

    #[test]
    fn slow_or_relatively_slow_app_rebuild_fails() {
        let app = ["[app 3/4] COPY x /x"];
        // 6 s: over 5 s, and 6 % of cold.
        let v = verdict(judge(&rows(6.0, &app), "app", 5.0, 5.0));
        assert_eq!(v[0], ("app-only rebuild time".to_string(), false));
        assert_eq!(v[1], ("app-only rebuild vs cold".to_string(), false));
        // 4 s of a 50 s cold build: in time, but 8 % of cold.
        let mut r = rows(4.0, &app);
        for row in &mut r {
            row.ratio_to_cold = ratio(row.secs, Some(50.0));
        }
        let v = verdict(judge(&r, "app", 5.0, 5.0));
        assert!(v[0].1);
        assert!(!v[1].1);
        // Exactly on the targets passes.
        let v = verdict(judge(&rows(5.0, &app), "app", 5.0, 5.0));
        assert!(v[0].1 && v[1].1);
    }

    #[test]
    fn app_rebuild_that_reran_deps_or_nothing_fails() {
        let checks = judge(
            &rows(
                3.0,
                &["[deps 7/8] RUN python trim_venv.py", "[app 3/4] COPY x /x"],
            ),
            "app",
            5.0,
            5.0,
        );
        assert!(!checks[2].pass);
        assert!(
            checks[2].measured.contains("[deps 7/8]"),
            "{}",
            checks[2].measured
        );
        let checks = judge(&rows(3.0, &[]), "app", 5.0, 5.0);
        assert!(!checks[2].pass);
    }

    fn peer(name: &str, secs: f64, ours: f64) -> crate::rebuild::run::PeerBuild {
        crate::rebuild::run::PeerBuild {
            name: name.into(),
            file: format!("xtask/benches/peer/fx.{name}.Dockerfile"),
            ratio: ratio(ours, Some(secs)),
            secs,
            runs: vec![secs],
            steps_total: Some(9),
            steps_cached: Some(8),
        }
    }

    #[test]
    fn ratios_to_the_peer_are_judged_per_scenario() {
        let mut r = rows(4.0, &["[app 3/4] COPY x /x"]);
        assert!(
            peer_checks(&r, 0.5, 1.0, 1.0).is_empty(),
            "no peer, no checks"
        );
        for (row, peer_secs) in r.iter_mut().zip([120.0, 2.0, 10.0, 40.0]) {
            row.peers = vec![peer("peer", peer_secs, row.secs)];
        }
        let checks = peer_checks(&r, 0.5, 1.0, 1.0);
        let v: Vec<(&str, bool)> = checks.iter().map(|c| (c.name.as_str(), c.pass)).collect();
        assert_eq!(
            v,
            [
                ("app-only rebuild vs the peer", true),
                ("dependency-change rebuild vs the peer", true),
                ("cold build vs the peer", true)
            ]
        );
        assert_eq!(checks[0].measured, "0.40× (4.0 s vs 10.0 s)");
        let checks = peer_checks(&r, 0.3, 0.9, 0.5);
        assert!(checks.iter().all(|c| !c.pass), "{checks:?}");
    }

    #[test]
    fn every_peer_is_judged_in_each_scenario_by_its_own_ratio() {
        let mut r = rows(4.0, &["[app 3/4] COPY x /x"]);
        // The dependency change: 40 s against 45 s (0.89) and against 60 s (0.67).
        for (row, (own, plain)) in
            r.iter_mut()
                .zip([(120.0, 110.0), (2.0, 2.0), (10.0, 9.0), (45.0, 60.0)])
        {
            row.peers = vec![
                peer("peer", own, row.secs),
                peer("uv-guide", plain, row.secs),
            ];
        }
        let checks = peer_checks(&r, 0.5, 0.8, 1.0);
        let v: Vec<(&str, &str, bool)> = checks
            .iter()
            .map(|c| (c.name.as_str(), c.target.as_str(), c.pass))
            .collect();
        assert_eq!(
            v,
            [
                ("app-only rebuild vs the peer", "≤ 0.50× the peer", true),
                (
                    "app-only rebuild vs the uv-guide peer",
                    "≤ 0.50× the uv-guide peer",
                    true
                ),
                (
                    "dependency-change rebuild vs the peer",
                    "≤ 0.80× the peer",
                    false
                ),
                (
                    "dependency-change rebuild vs the uv-guide peer",
                    "≤ 0.80× the uv-guide peer",
                    true
                ),
                ("cold build vs the peer", "≤ 1.00× the peer", true),
                (
                    "cold build vs the uv-guide peer",
                    "≤ 1.00× the uv-guide peer",
                    true
                ),
            ]
        );
        assert_eq!(checks[3].measured, "0.67× (40.0 s vs 60.0 s)");
        // A peer whose time is unknown fails its checks, not the other peer's.
        r[3].peers[1].ratio = None;
        let checks = peer_checks(&r, 0.5, 1.0, 1.0);
        assert_eq!((checks[2].pass, checks[3].pass), (true, false));
        assert_eq!(checks[3].measured, "?");
    }

    #[test]
    fn no_change_rebuild_must_run_nothing() {
        let mut r = rows(3.0, &["[app 3/4] COPY x /x"]);
        assert!(judge(&r, "app", 5.0, 5.0)[3].pass);
        r[1].steps_run = vec!["[app 4/4] RUN date".into()];
        r[1].steps_cached = Some(12);
        let c = &judge(&r, "app", 5.0, 5.0)[3];
        assert!(!c.pass);
        assert_eq!(c.measured, "1 of 13 ran");
    }

    #[test]
    fn a_base_replaced_during_the_bench_invalidates_it() {
        let same = base_check(
            "b",
            Some("sha256:54de30a32771aaaa"),
            Some("sha256:54de30a32771aaaa"),
        );
        assert!(same.pass);
        assert_eq!(same.measured, "54de30a32771");
        let changed = base_check(
            "b",
            Some("sha256:54de30a32771aaaa"),
            Some("sha256:eb19300e4e15bbbb"),
        );
        assert!(!changed.pass);
        assert_eq!(
            changed.measured,
            "54de30a32771 -> eb19300e4e15 (rerun the bench)"
        );
        // No offline base at all (the Dockerfiles' default applies): nothing changed.
        assert!(base_check("b", None, None).pass);
    }

    #[test]
    fn step_stage_reads_named_unnamed_and_platform_labels() {
        assert_eq!(step_stage("[app 3/4] COPY a b"), Some("app"));
        assert_eq!(step_stage("[linux/amd64 deps 2/9] RUN x"), Some("deps"));
        assert_eq!(step_stage("[3/4] RUN x"), None);
        assert_eq!(step_stage("exporting to image"), None);
    }
}
