//! `cargo xtask`: builds, tests, measures and checks the voxserve container images.

mod base;
mod bench;
mod build_cmd;
mod ca;
mod cleanup;
mod config;
mod config_cmd;
mod cosign;
mod docker;
#[cfg(test)]
mod docs_drift;
mod doctor;
mod emulation;
mod engine;
mod lint;
mod merge;
mod reclaim;
mod registry;
mod report;
mod sarif;
mod sbom;
mod scan;
mod sign;
mod sizes;
mod smoke;
mod test_cmd;
mod util;
mod verify;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Builds, tests, measures and checks the voxserve container images.
#[derive(Parser)]
#[command(bin_name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    /// The images config to use instead of `images.toml` at the project root.
    #[arg(long, global = true, env = "XTASK_CONFIG", value_name = "FILE")]
    config: Option<camino::Utf8PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the resolved image variants from images.toml.
    Config(config_cmd::Args),
    /// Check Docker, buildx, the image store, the CA bundle and the optional tools.
    Doctor(doctor::Args),
    /// Build the reproducible offline Debian base image (mmdebstrap, needs root).
    Base(base::Args),
    /// Build image variants with docker buildx.
    Build(build_cmd::Args),
    /// Join per-platform pushes by digest (one runner per platform) into one tagged index.
    Merge(merge::Args),
    /// Smoke-test images: run each hardened until its HEALTHCHECK passes, then check it from inside.
    Smoke(smoke::Args),
    /// Compressed and unpacked size of each variant's image, against its budgets.
    Sizes(sizes::Args),
    /// Every linter: rustfmt, clippy, hadolint, BuildKit's checks, shellcheck, actionlint, zizmor (and dive).
    Lint(lint::Args),
    /// Scan images for vulnerabilities and secrets with Trivy against images.toml (table, JSON, SARIF).
    Scan(scan::Args),
    /// SBOMs of images with syft: SPDX JSON and CycloneDX JSON into target/xtask.
    Sbom(sbom::Args),
    /// Sign pushed images with cosign and attach their SPDX SBOM as a signed attestation.
    Sign(sign::Args),
    /// Verify the signature and SBOM attestation of published images with cosign.
    Verify(verify::Args),
    /// Run every test: the xtask's (against the real Docker engine) and the service's pytest suite.
    Test(test_cmd::Args),
    /// Measurements: `bench rebuild <variant>` (cold and warm rebuilds), `bench sizes`, `bench smoke`.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    // First, so that a signal at any later moment finds the handler.
    cleanup::install_signal_handler();
    let cli = Cli::parse();
    let result: Result<()> = util::Ctx::new(cli.config).and_then(|ctx| match cli.command {
        Command::Config(args) => args.run(&ctx),
        Command::Doctor(args) => args.run(&ctx),
        Command::Base(args) => args.run(&ctx),
        Command::Build(args) => args.run(&ctx),
        Command::Merge(args) => args.run(&ctx),
        Command::Smoke(args) => args.run(&ctx),
        Command::Sizes(args) => args.run(&ctx),
        Command::Lint(args) => args.run(&ctx),
        Command::Scan(args) => args.run(&ctx),
        Command::Sbom(args) => args.run(&ctx),
        Command::Sign(args) => args.run(&ctx),
        Command::Verify(args) => args.run(&ctx),
        Command::Test(args) => args.run(&ctx),
        Command::Bench(args) => args.run(&ctx),
    });
    // A signal before this point: no error, exit 130 (the handler's); after it: this outcome.
    cleanup::finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => util::report_error(&err),
    }
}
