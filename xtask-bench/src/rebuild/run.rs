//! Running `bench rebuild`: the four builds in order through the real `cargo xtask build` code
//! path, each `--runs` times (ours, then the peer's, in turn), from the plan's scratch copy of
//! the build context, each touched file changed in the copy just before its build and restored
//! right after, with the base image's ID taken before the first build and after the last.

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use serde::Serialize;

use super::plan::{peer_title, Plan, Scenario, PEER_IMAGE};
use crate::report::median;
use crate::touch::{Built, File};
use xtask::build_cmd::CacheMode;
use xtask::build_cmd::{build, BuildReport};
use xtask::config::Variant;
use xtask::ctx::{Ctx, TempDir};
use xtask::docker;
use xtask::output::progress;

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
    /// Each peer's build with the same change, right after each of ours, in the plan's order.
    pub peers: Vec<PeerBuild>,
    /// The first of `peers` and its ratio, as reports with one peer had them.
    pub peer: Option<PeerBuild>,
    pub ratio_to_peer: Option<f64>,
}

/// A peer Dockerfile's build of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct PeerBuild {
    /// The peer's name in the report (`peer`, or `<name>` of `<variant>.<name>.Dockerfile`).
    pub name: String,
    /// Its Dockerfile.
    pub file: String,
    /// Ours divided by the peer's time (median by median).
    pub ratio: Option<f64>,
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

/// How every build of the bench is made (`--cache`, `--cache-dir`, `--builder`, `--platform`,
/// `--runs`).
pub struct Setup {
    pub cache: Option<CacheMode>,
    pub cache_dir: Utf8PathBuf,
    pub builder: Option<String>,
    pub platform: Option<String>,
    pub runs: u32,
}

/// The bench's builds: the variant's (and its peer's) from the scratch copy, their build
/// reports in a directory of their own, their images removed at the end on every path.
struct Builder<'a> {
    ctx: &'a Ctx,
    plan: &'a Plan<'a>,
    setup: &'a Setup,
    reports: TempDir,
    images: Built,
}

impl Builder<'_> {
    /// One build of `variant` for `platform` (None: the setup's).
    fn build(
        &self,
        variant: &Variant,
        platform: Option<&str>,
        no_cache: bool,
    ) -> Result<BuildReport> {
        let mut options = self.plan.build_args(
            self.reports.path(),
            self.setup.cache,
            self.setup.cache_dir.clone(),
            self.setup.builder.clone(),
            platform.or(self.setup.platform.as_deref()),
        );
        options.no_cache = no_cache;
        options.labels = xtask::reclaim::bench_image_labels();
        let report = one(build(self.ctx, &[variant], &options)?)?;
        self.images.add(&report);
        Ok(report)
    }
}

/// Runs the plan's four builds, `runs` times each (with `--platform`, the engine's platform's
/// cold build first), the base image's ID taken before the first and after the last.
pub fn builds(ctx: &Ctx, plan: &Plan, setup: &Setup) -> Result<Measured> {
    let info = docker::info()?;
    // Another `cargo xtask base` on a shared engine replaces the base under the bench and
    // turns every later build into a cold one; such a run is reported as invalid.
    let base_before = base_id(plan)?;
    let builder = Builder {
        ctx,
        plan,
        setup,
        reports: TempDir::new(ctx, "bench")?,
        images: Built::new(vec![plan.ours.image.clone(), PEER_IMAGE.into()]),
    };
    let mut rows: Vec<Row> = Vec::new();
    if let Some(platform) = &setup.platform {
        rows.push(native_cold(&builder, platform, &info.native_platform())?);
    }
    for scenario in Scenario::ALL {
        let cold = rows
            .iter()
            .find(|r| r.scenario == Scenario::Cold)
            .map(|r| r.secs);
        rows.push(scenario_row(&builder, scenario, cold)?);
    }
    set_native_ratio(&mut rows);
    Ok(Measured {
        info,
        rows,
        base_before,
        base_after: base_id(plan)?,
    })
}

fn base_id(plan: &Plan) -> Result<Option<String>> {
    docker::image_id(plan.base_image)
        .with_context(|| format!("inspecting the base image {}", plan.base_image))
}

/// Another platform's cold build is judged against the engine's own: its cache mounts (its
/// wheels, its apt lists) are filled first by a build that is not measured, as the engine's
/// platform's are by earlier builds; then the engine's platform is built cold, `runs` times.
fn native_cold(b: &Builder, platform: &str, native: &str) -> Result<Row> {
    let name = &b.plan.variant.name;
    progress!("bench rebuild {name}: filling the cache mounts for {platform} (not measured)");
    b.build(&b.plan.ours, None, false)
        .with_context(|| format!("bench rebuild {name}: the {platform} warm-up build"))?;
    progress!(
        "bench rebuild {name}: {} ({native})",
        Scenario::ColdNative.label()
    );
    let mut runs = Runs::default();
    for _ in 0..b.setup.runs {
        runs.push(
            b.build(&b.plan.ours, Some(native), true)
                .with_context(|| format!("bench rebuild {name}: the {native} cold build"))?,
        );
    }
    let (report, secs, times) = runs.finish().context("no run")?;
    Ok(row(
        Scenario::ColdNative,
        None,
        (report, secs, times),
        vec![],
        None,
    ))
}

/// One scenario, `runs` times: ours, then each peer's with the same change.
fn scenario_row(b: &Builder, scenario: Scenario, cold: Option<f64>) -> Result<Row> {
    let (name, total) = (&b.plan.variant.name, b.setup.runs);
    let mut ours = Runs::default();
    let mut theirs: Vec<Runs> = b.plan.peers.iter().map(|_| Runs::default()).collect();
    for run in 1..=total {
        match total {
            1 => progress!("bench rebuild {name}: {}", scenario.label()),
            _ => progress!(
                "bench rebuild {name}: {} (run {run} of {total})",
                scenario.label()
            ),
        }
        let (mine, peers) = pair(b, scenario)?;
        ours.push(mine);
        for (runs, peer) in theirs.iter_mut().zip(peers) {
            runs.push(peer);
        }
    }
    let ours = ours.finish().context("no run")?;
    let peers = (b.plan.peers.iter().zip(theirs))
        .filter_map(|(peer, runs)| {
            let (p, secs, runs) = runs.finish()?;
            Some(PeerBuild {
                name: peer.name.clone(),
                file: peer.file.clone(),
                ratio: ratio(ours.1, Some(secs)),
                secs,
                runs,
                steps_total: p.steps_total,
                steps_cached: p.steps_cached,
            })
        })
        .collect();
    let cold = cold.or(Some(ours.1));
    let touched = touched(b.plan, scenario).map(|f| f.shown.clone());
    Ok(row(scenario, touched, ours, peers, cold))
}

/// The file a scenario changes.
fn touched<'a>(plan: &'a Plan, scenario: Scenario) -> Option<&'a File> {
    match scenario {
        Scenario::AppChange => Some(&plan.app),
        Scenario::DepChange => Some(&plan.dep),
        _ => None,
    }
}

/// One run of a scenario: its change in place (a comment line of a value of its own, so that
/// no earlier run's cache answers for it), our build, then each peer's — builds side by side
/// keep the ratios meaningful when the shared machine's speed drifts.
fn pair(b: &Builder, scenario: Scenario) -> Result<(BuildReport, Vec<BuildReport>)> {
    let what = |whose: &str| {
        format!(
            "bench rebuild {}: {whose}{} build",
            b.plan.variant.name,
            scenario.label()
        )
    };
    let no_cache = scenario == Scenario::Cold;
    let both = || -> Result<_> {
        let ours = b
            .build(&b.plan.ours, None, no_cache)
            .with_context(|| what(""))?;
        let peers = (b.plan.peers.iter())
            .map(|peer| {
                b.build(&peer.variant, None, no_cache)
                    .with_context(|| what(&format!("the {}'s ", peer_title(&peer.name))))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((ours, peers))
    };
    match touched(b.plan, scenario) {
        Some(file) => file.changed(&file.commented(), both)?,
        None => both(),
    }
}

fn row(
    scenario: Scenario,
    touched: Option<Utf8PathBuf>,
    (report, secs, runs): (BuildReport, f64, Vec<f64>),
    peers: Vec<PeerBuild>,
    cold: Option<f64>,
) -> Row {
    Row {
        scenario,
        touched,
        secs,
        runs,
        ratio_to_cold: ratio(secs, cold),
        steps_total: report.steps_total,
        steps_cached: report.steps_cached,
        steps_run: report.steps_run,
        ratio_to_peer: peers.first().and_then(|p| p.ratio),
        peer: peers.first().cloned(),
        peers,
    }
}

/// The engine's platform's cold build as a share of the platform's.
fn set_native_ratio(rows: &mut [Row]) {
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

/// The one report of a build of one variant.
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
