//! The command line of `cargo xtask`: one subcommand per job.

use clap::{Parser, Subcommand};

/// Builds, tests, measures and checks the voxserve container images.
#[derive(Parser)]
#[command(bin_name = "cargo xtask", version, about, long_about = None)]
pub struct Cli {
    /// The images config to use instead of `images.toml` at the project root.
    #[arg(long, global = true, env = "XTASK_CONFIG", value_name = "FILE")]
    pub config: Option<camino::Utf8PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Print the resolved image variants from images.toml.
    Config(crate::config_cmd::Args),
    /// Check Docker, buildx, the image store, the CA bundle and the optional tools.
    Doctor(crate::doctor::Args),
    /// Build the reproducible offline Debian base image (mmdebstrap, needs root).
    Base(crate::base::Args),
    /// Build image variants with docker buildx.
    Build(crate::build_cmd::Args),
    /// Join per-platform pushes by digest (one runner per platform) into one tagged index.
    Merge(crate::merge::Args),
    /// Smoke-test images: run each hardened until its HEALTHCHECK passes, then check it from inside.
    Smoke(crate::smoke::Args),
    /// Compressed and unpacked size of each variant's image, against its budgets.
    Sizes(crate::sizes::Args),
    /// Every linter: rustfmt, clippy, hadolint, BuildKit's checks, shellcheck, actionlint, zizmor (and dive).
    Lint(crate::lint::Args),
    /// Scan images for vulnerabilities and secrets with Trivy against images.toml (table, JSON, SARIF).
    Scan(crate::scan::Args),
    /// SBOMs of images with syft: SPDX JSON and CycloneDX JSON into target/xtask.
    Sbom(crate::sbom::Args),
    /// Sign pushed images with cosign and attach their SPDX SBOM as a signed attestation.
    Sign(crate::sign::Args),
    /// Verify the signature and SBOM attestation of published images with cosign.
    Verify(crate::verify::Args),
    /// Run every test: the xtask's (against the real Docker engine) and the service's pytest suite.
    Test(crate::test_cmd::Args),
    /// Measurements: `bench rebuild <variant>` (cold and warm rebuilds), `bench sizes`, `bench smoke`.
    Bench(crate::bench::Args),
}
