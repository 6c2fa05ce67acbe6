//! `cargo xtask bench …`: measurements that are commands, not tests (performance targets live
//! here, never in timed tests). A binary of its own, `xtask-bench`, which `cargo xtask bench`
//! runs: the private engines, registries and recompression only the benches need stay out of
//! the everyday `cargo xtask`.
//!
//! Each bench is a module of its own — a file (`sizes.rs`), or a folder of stages when it
//! outgrows one (`rebuild/`: plan, run, judge, render) — with clap `Args` and
//! `fn run(self, &Ctx) -> Result<()>`, and ends in `report::publish`, which prints the report
//! (table, JSON or Markdown), appends it to the GitHub step summary and fails (exit 1) when a
//! [`report::Check`] missed its target. Adding one: its module, one
//! [`Bench`] variant, one arm.

pub mod cli;
mod context;
mod pull;
mod rebuild;
mod report;
mod sizes;
mod smoke;
mod touch;
mod update;

/// The charts of `bench rebuild` and `bench pull` from plain rows, for the chart test
/// (xtask/tests/charts.rs), which renders every kind of chart with Mermaid's CLI.
pub mod charts {
    pub use crate::pull::times_chart as pull;
    pub use crate::rebuild::times_chart as rebuild;
}

use anyhow::Result;
use camino::Utf8Path;

use xtask::ctx::Ctx;

/// One bench, as `cargo xtask bench <bench> …` names it.
#[derive(clap::Subcommand)]
pub enum Bench {
    /// Pull time of the image on a fresh engine: its layers as built vs the venv in one layer,
    /// gzip vs zstd.
    Pull(pull::PullArgs),
    /// Cold, no-change, app-change and dependency-change rebuild times of one variant.
    Rebuild(rebuild::RebuildArgs),
    /// First and cached `cargo xtask sizes` times for built images, against the 1 s target.
    Sizes(sizes::SizesArgs),
    /// What a host holding the image pulls after an app change and after a dependency bump.
    Update(update::UpdateArgs),
    /// `cargo xtask smoke` latencies (healthy after, verdict) over several runs, against targets.
    Smoke(smoke::SmokeArgs),
}

impl Bench {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        // What a killed bench left goes first, whichever bench runs next; a killed pull's
        // daemons and network namespace before the directories they hold.
        pull::repair()?;
        xtask::reclaim::stale_bench_leftovers(ctx)?;
        match self {
            Bench::Pull(args) => args.run(ctx),
            Bench::Rebuild(args) => args.run(ctx),
            Bench::Sizes(args) => args.run(ctx),
            Bench::Update(args) => args.run(ctx),
            Bench::Smoke(args) => args.run(ctx),
        }
    }

    /// The shape of the bench's Markdown report, for the docs' generated blocks.
    pub fn report_shape(&self, root: &Utf8Path) -> xtask::report::Shape {
        match self {
            Bench::Pull(args) => args.report_shape(),
            Bench::Rebuild(args) => args.report_shape(root),
            Bench::Sizes(args) => args.report_shape(),
            Bench::Update(args) => args.report_shape(),
            Bench::Smoke(args) => args.report_shape(),
        }
    }
}
