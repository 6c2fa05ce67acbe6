//! Running `bench rebuild`: the four builds in order through the real `cargo xtask build` code
//! path, each `--runs` times (ours, then the peer's, in turn), each touched file changed just
//! before its build and restored right after (and on every other path: error, Ctrl-C), with the
//! base image's ID taken before the first build and after the last.

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use serde::Serialize;

use super::plan::{Plan, Scenario, PEER_IMAGE};
use crate::report::median;
use crate::touch::Touch;
use xtask::build_cmd::CacheMode;
use xtask::build_cmd::{build, BuildReport};
use xtask::cleanup::Guard;
use xtask::docker;
use xtask::output::progress;
use xtask::output::warning;
use xtask::util::{Ctx, TempDir};

/// One measured build.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: Scenario,
    /// The file changed for this build, if any.
    pub touched: Option<Utf8PathBuf>,
    /// Time of `docker buildx build` (export and cache export included): the median of `runs`.
    pub secs: f64,
    /// Every run's time, in the order measured.
    pub runs: Vec<f64>,
    /// `secs` divided by the cold build's.
    pub ratio_to_cold: Option<f64>,
    pub steps_total: Option<u64>,
    pub steps_cached: Option<u64>,
    /// The steps that ran, as BuildKit names them (in the first run).
    pub steps_run: Vec<String>,
    /// The peer's build with the same change, right after each of ours.
    pub peer: Option<PeerBuild>,
    /// `secs` divided by the peer's (median by median).
    pub ratio_to_peer: Option<f64>,
}

/// The peer Dockerfile's build of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct PeerBuild {
    /// The median of `runs`.
    pub secs: f64,
    pub runs: Vec<f64>,
    pub steps_total: Option<u64>,
    pub steps_cached: Option<u64>,
}

/// `secs / cold` when the cold time is known and positive.
pub fn ratio(secs: f64, cold: Option<f64>) -> Option<f64> {
    cold.filter(|c| *c > 0.0).map(|c| secs / c)
}

/// What the builds measured, and the engine and base image they ran on.
pub struct Measured {
    pub info: docker::Info,
    pub rows: Vec<Row>,
    /// The base image's ID before the first build and after the last (None: no such image).
    pub base_before: Option<String>,
    pub base_after: Option<String>,
}

/// Runs the plan's four builds, `runs` times each, with a local cache under `cache_dir`.
pub fn builds(
    ctx: &Ctx,
    plan: &Plan,
    cache: Option<CacheMode>,
    cache_dir: Utf8PathBuf,
    builder: Option<String>,
    platform: Option<&str>,
    runs: u32,
) -> Result<Measured> {
    let variant = plan.variant;
    let info = docker::info()?;
    // Another `cargo xtask base` on a shared engine replaces the base under the bench and
    // turns every later build into a cold one; such a run is reported as invalid.
    let base_before = docker::image_id(plan.base_image)
        .with_context(|| format!("inspecting the base image {}", plan.base_image))?;
    let reports = TempDir::new(ctx, "bench")?;
    let build_args = plan.build_args(
        reports.path(),
        cache,
        cache_dir.clone(),
        builder.clone(),
        platform,
    );
    let mut rows: Vec<Row> = Vec::new();
    // Another platform: its cache mounts (its wheels, its apt lists) are filled first, by a
    // build that is not measured, as the engine's own platform's are by earlier builds; then the
    // engine's platform is built cold for reference, right before the platform's cold build.
    if let Some(platform) = platform {
        let native = info.native_platform();
        progress!(
            "bench rebuild {}: filling the cache mounts for {platform} (not measured)",
            variant.name
        );
        let warm_up = plan.build_args(
            reports.path(),
            cache,
            cache_dir.clone(),
            builder.clone(),
            Some(platform),
        );
        one(build(ctx, &[variant], &warm_up).with_context(|| {
            format!(
                "bench rebuild {}: the {platform} warm-up build",
                variant.name
            )
        })?)?;
        progress!(
            "bench rebuild {}: {} ({native})",
            variant.name,
            Scenario::ColdNative.label()
        );
        let mut args = plan.build_args(
            reports.path(),
            cache,
            cache_dir.clone(),
            builder.clone(),
            Some(&native),
        );
        args.no_cache = true;
        let mut native_runs = Runs::default();
        for _ in 0..runs {
            native_runs.push(one(build(ctx, &[variant], &args).with_context(|| {
                format!("bench rebuild {}: the {native} cold build", variant.name)
            })?)?);
        }
        let (report, secs, times) = native_runs.finish().context("no run")?;
        rows.push(Row {
            scenario: Scenario::ColdNative,
            touched: None,
            secs,
            runs: times,
            ratio_to_cold: None,
            steps_total: report.steps_total,
            steps_cached: report.steps_cached,
            steps_run: report.steps_run,
            ratio_to_peer: None,
            peer: None,
        });
    }
    // The peer's images go when the bench ends, on every path.
    let _peer_images = plan.peer.as_ref().map(|_| {
        Guard::new(|| {
            if let Err(err) = docker::remove_repository_tags(PEER_IMAGE) {
                warning!("could not remove the peer's images ({PEER_IMAGE}): {err:#}");
            }
        })
    });

    for scenario in Scenario::ALL {
        let mut args = build_args.clone();
        args.no_cache = scenario == Scenario::Cold;
        // The file this scenario changes, with its original bytes.
        let change = match scenario {
            Scenario::AppChange => Some((&plan.app_file, &plan.app_original)),
            Scenario::DepChange => Some((&plan.dep_file, &plan.dep_original)),
            _ => None,
        };
        let (mut ours, mut theirs) = (Runs::default(), Runs::default());
        for run in 1..=runs {
            if runs > 1 {
                progress!(
                    "bench rebuild {}: {} (run {run} of {runs})",
                    variant.name,
                    scenario.label()
                );
            } else {
                progress!("bench rebuild {}: {}", variant.name, scenario.label());
            }
            // A comment line with a value of its own on every run, so that no earlier run's
            // cache answers for it.
            let touch = change
                .map(|(file, original)| Touch::apply(file, original.clone()))
                .transpose()?;
            let built = build(ctx, &[variant], &args);
            // The peer, with the same change in place, right after ours (pairs keep the ratio
            // meaningful when the shared machine's speed drifts).
            let peer = match (&plan.peer, &built) {
                (Some(peer), Ok(_)) => Some(build(ctx, &[peer], &args)),
                _ => None,
            };
            // Restore before anything else can fail; a failed build still restores (drop).
            if let Some(touch) = touch {
                touch.restore()?;
            }
            ours.push(one(built.with_context(|| {
                format!("bench rebuild {}: {} build", variant.name, scenario.label())
            })?)?);
            if let Some(built) = peer {
                theirs.push(one(built.with_context(|| {
                    format!(
                        "bench rebuild {}: the peer's {} build",
                        variant.name,
                        scenario.label()
                    )
                })?)?);
            }
        }
        let (report, secs, times) = ours.finish().context("no run")?;
        let peer = theirs.finish().map(|(p, secs, runs)| PeerBuild {
            secs,
            runs,
            steps_total: p.steps_total,
            steps_cached: p.steps_cached,
        });
        let cold = rows
            .iter()
            .find(|r| r.scenario == Scenario::Cold)
            .map(|r| r.secs);
        rows.push(Row {
            scenario,
            touched: change.map(|(file, _)| file.clone()),
            secs,
            runs: times,
            ratio_to_cold: ratio(secs, cold.or(Some(secs))),
            steps_total: report.steps_total,
            steps_cached: report.steps_cached,
            steps_run: report.steps_run,
            ratio_to_peer: peer.as_ref().and_then(|p| ratio(secs, Some(p.secs))),
            peer,
        });
    }
    // The engine's platform's cold build as a share of the platform's.
    let cold = rows
        .iter()
        .find(|r| r.scenario == Scenario::Cold)
        .map(|r| r.secs);
    for row in rows
        .iter_mut()
        .filter(|r| r.scenario == Scenario::ColdNative)
    {
        row.ratio_to_cold = ratio(row.secs, cold);
    }
    let base_after = docker::image_id(plan.base_image)
        .with_context(|| format!("inspecting the base image {}", plan.base_image))?;
    Ok(Measured {
        info,
        rows,
        base_before,
        base_after,
    })
}

/// The runs of one build: every run's time, in order, and the first run's report (its steps).
#[derive(Default)]
struct Runs {
    first: Option<BuildReport>,
    times: Vec<f64>,
}

impl Runs {
    fn push(&mut self, report: BuildReport) {
        self.times.push(report.duration_secs);
        self.first.get_or_insert(report);
    }

    /// The first run's report, the median time and every run's time (None: no run).
    fn finish(self) -> Option<(BuildReport, f64, Vec<f64>)> {
        let secs = median(&self.times)?;
        Some((self.first?, secs, self.times))
    }
}

fn one(mut reports: Vec<BuildReport>) -> Result<BuildReport> {
    match reports.len() {
        1 => Ok(reports.remove(0)),
        n => bail!("expected one build report, got {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_needs_a_positive_cold_time() {
        assert_eq!(ratio(5.0, Some(100.0)), Some(0.05));
        assert_eq!(ratio(5.0, Some(0.0)), None);
        assert_eq!(ratio(5.0, None), None);
    }
}
