//! `cargo xtask bench rebuild <variant>`: cold and warm rebuild times of one variant.
//!
//! It times four builds through the real `cargo xtask build` code path, each `--runs` times
//! with the medians judged (`--load`, local cache in its own directory, plain progress on
//! stderr): cold (`--no-cache`), warm with no change, warm after one app source file changed,
//! warm after a dependency file changed. The builds read a scratch copy of the build context
//! (what `.dockerignore` lets through) and are tagged `<image>-bench:…`, so the user's files and
//! the variant's tags never change, however the bench ends; each change is a comment line
//! appended to a file of the copy, with a unique value so that no earlier run's cache can answer
//! for it. The result is judged against issue 3's target for an app-only
//! rebuild (≤ 5 s and ≤ 5 % of cold) and against what must have re-run (only the last stage).
//!
//! Cold means `--no-cache`, with which BuildKit also gives every cache mount to the build empty
//! (seen in the logs: apt fetches its package lists and uv downloads the wheels again), so a cold
//! build includes its downloads — ours and the peer's alike.
//!
//! `--platform P` measures the four builds for P and first builds the engine's own platform cold
//! (after one unmeasured build for P that fills P's cache mounts): P's cold build is judged
//! against it (≤ 1.5× by default) — for linux/arm64 on an amd64 engine, what the cross-installed
//! venv and the few emulated steps cost.
//!
//! Story, one file per stage: `plan` (the four builds, the scratch copy, the files to touch) →
//! `run` (the builds, each touch undone) → `judge` → `render`, published through
//! `bench::report`.

mod judge;
mod plan;
mod render;
pub use render::times_chart;
mod run;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use crate::report::{publish, target, Machine, Rendered};
use judge::{base_check, judge, last_stage, RebuildReport};
use plan::{Plan, Scenario};
use xtask::build_cmd::CacheMode;
use xtask::ctx::Ctx;
use xtask::report::Format;

#[derive(clap::Args)]
pub struct RebuildArgs {
    /// The variant to measure (see `cargo xtask config`).
    variant: String,
    /// App source file that gets a comment line appended for the app-change build
    /// (default: app/src/voxserve/__init__.py). Must be inside the variant's build context.
    #[arg(long, value_name = "FILE")]
    app_file: Option<Utf8PathBuf>,
    /// Dependency file that gets a comment line appended for the dependency-change build
    /// (default: app/requirements.lock). Must be inside the variant's build context.
    #[arg(long, value_name = "FILE")]
    dep_file: Option<Utf8PathBuf>,
    /// Target for the app-change rebuild: at most this many seconds.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS",
          value_parser = target, allow_hyphen_values = true)]
    max_app_secs: f64,
    /// Target for the app-change rebuild: at most this percentage of the cold build's time.
    #[arg(long, default_value_t = 5.0, value_name = "PERCENT",
          value_parser = target, allow_hyphen_values = true)]
    max_app_percent: f64,
    /// The cache of every build (default: what `cargo xtask build` uses, `none` outside CI:
    /// the engine's own build cache).
    #[arg(long, value_enum)]
    cache: Option<CacheMode>,
    /// Root of the bench's own local build cache with `--cache local` (default:
    /// target/bench-cache), so the bench neither uses nor rotates the cache of `cargo xtask build`.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<Utf8PathBuf>,
    /// A peer Dockerfile built after each of ours with the same change; repeat it for several,
    /// built in turn (default: the variant's committed peers, xtask/benches/peer/<variant>.Dockerfile
    /// and <variant>.<name>.Dockerfile).
    #[arg(long, value_name = "FILE", conflicts_with = "no_peer")]
    peer: Vec<Utf8PathBuf>,
    /// Build no peer.
    #[arg(long)]
    no_peer: bool,
    /// Targets against each peer (ours / peer, same run): app-only rebuild at most this ratio.
    #[arg(long, default_value_t = 0.5, value_name = "RATIO",
          value_parser = target, allow_hyphen_values = true)]
    max_app_vs_peer: f64,
    /// … dependency-change rebuild at most this ratio.
    #[arg(long, default_value_t = 0.8, value_name = "RATIO",
          value_parser = target, allow_hyphen_values = true)]
    max_dep_vs_peer: f64,
    /// … cold build at most this ratio.
    #[arg(long, default_value_t = 1.0, value_name = "RATIO",
          value_parser = target, allow_hyphen_values = true)]
    max_cold_vs_peer: f64,
    /// Measure the builds for this platform (e.g. linux/arm64, under emulation where the engine
    /// is of another CPU) and its cold build against the engine's own platform's, built cold in
    /// the same run right before it. No peer unless --peer names one.
    #[arg(long, value_name = "PLATFORM", value_parser = parse_platform)]
    platform: Option<String>,
    /// Target with --platform: the platform's cold build at most this ratio of the engine's
    /// platform's.
    #[arg(long, default_value_t = 1.5, value_name = "RATIO",
          value_parser = target, allow_hyphen_values = true)]
    max_cold_vs_native: f64,
    /// Build each scenario this many times (ours, then the peer's, in turn) and judge the
    /// medians: one run on a shared machine is one sample of its noise.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=20), allow_hyphen_values = true)]
    runs: u32,
    /// The buildx builder to use (default: the active one).
    #[arg(long)]
    builder: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn parse_platform(s: &str) -> std::result::Result<String, String> {
    xtask::config::check_platform(s).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

impl RebuildArgs {
    /// The peers' Dockerfiles: each --peer, else the variant's committed ones; none with
    /// --no-peer, nor with --platform unless --peer names some.
    fn peer_files(&self, root: &Utf8Path) -> Vec<Utf8PathBuf> {
        match (
            self.peer.is_empty(),
            self.no_peer || self.platform.is_some(),
        ) {
            (false, _) => self.peer.clone(),
            (true, true) => vec![],
            (true, false) => plan::default_peers(root, &self.variant),
        }
    }

    /// The builds table's columns and rows, and the targets.
    pub fn report_shape(&self, root: &Utf8Path) -> xtask::report::Shape {
        let native = self.platform.as_ref().map(|_| Scenario::ColdNative);
        let rows: Vec<&str> = native
            .into_iter()
            .chain(Scenario::ALL)
            .map(Scenario::label)
            .collect();
        let names = plan::peer_names(&self.variant, &self.peer_files(root));
        let columns = render::columns(&names, self.runs > 1);
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        xtask::report::Shape {
            chart: true,
            ..crate::report::shape(&columns, &rows)
        }
    }

    fn setup(&self, ctx: &Ctx) -> run::Setup {
        run::Setup {
            cache: self.cache,
            cache_dir: (self.cache_dir.clone())
                .unwrap_or_else(|| ctx.root.join("target").join("bench-cache")),
            builder: self.builder.clone(),
            platform: self.platform.clone(),
            runs: self.runs,
        }
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let config = ctx.config()?;
        let plan = Plan::new(
            ctx,
            config,
            &self.variant,
            self.app_file.as_ref(),
            self.dep_file.as_ref(),
            self.peer_files(&ctx.root),
        )?;
        let measured = run::builds(ctx, &plan, &self.setup(ctx))?;

        let variant = plan.variant;
        let rows = measured.rows;
        let last_stage = last_stage(variant, &rows);
        let mut checks = judge(&rows, &last_stage, self.max_app_secs, self.max_app_percent);
        checks.extend(judge::peer_checks(
            &rows,
            self.max_app_vs_peer,
            self.max_dep_vs_peer,
            self.max_cold_vs_peer,
        ));
        if let Some(platform) = &self.platform {
            checks.push(judge::platform_check(
                &rows,
                platform,
                &measured.info.native_platform(),
                self.max_cold_vs_native,
            ));
        }
        checks.push(base_check(
            plan.base_image,
            measured.base_before.as_deref(),
            measured.base_after.as_deref(),
        ));
        let report = RebuildReport {
            variant: variant.name.clone(),
            image: variant.image_ref(),
            machine: Machine::of(&measured.info),
            pass: checks.iter().all(|c| c.pass),
            rows,
            checks,
        };
        publish(
            self.format,
            &match &self.platform {
                Some(p) => format!("bench rebuild {} --platform {p}", variant.name),
                None => format!("bench rebuild {}", variant.name),
            },
            &Rendered {
                sections: render::render(&report),
                charts: vec![render::chart(&report)],
            },
            xtask::report::Kind::BenchRebuild,
            &report,
            &report.checks,
        )
    }
}
