//! The command line of `cargo xtask`: one subcommand per job.

use anyhow::{bail, Result};
use camino::Utf8Path;
use clap::{Parser, Subcommand};

use crate::report::Shape;

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
    /// What differs between two images: config fields and, per layer, the files (to find what is not reproducible).
    Diff(crate::diff::Args),
    /// Build a variant twice without cache, each in a fresh private engine, and compare the digests (or --published: rebuild a published image's commit and compare with the registry).
    Reproduce(crate::reproduce::Args),
    /// Verify the signature and SBOM attestation of published images with cosign.
    Verify(crate::verify::Args),
    /// Run every test: the xtask's (against the real Docker engine) and the service's pytest suite.
    Test(crate::test_cmd::Args),
    /// Measurements against targets: `bench rebuild` (rebuild times, ours vs a peer), `bench update` (what an update pulls), `bench pull` (pull time by layout), `bench sizes`, `bench smoke`.
    Bench(crate::bench::Args),
    /// Regenerate the docs' figures: run the command of each marked block of README.md and docs/*.md, paste its report.
    Docs(crate::docs::Args),
}

/// The shape of the Markdown report `cargo xtask ARGS --format markdown` prints, for the docs'
/// generated blocks (`cargo xtask docs`); an error for a command line that does not parse or a
/// command without such a report.
pub fn report_shape(root: &Utf8Path, argv: &[String]) -> Result<Shape> {
    let cli =
        Cli::try_parse_from(std::iter::once("cargo xtask").chain(argv.iter().map(|a| a.as_str())))
            .map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim_end()))?;
    match cli.command {
        Command::Sizes(args) => Ok(args.report_shape(crate::ctx::Ctx::new(cli.config)?.config()?)),
        Command::Bench(args) => args.report_shape(root),
        _ => bail!(
            "`cargo xtask {}` has no Markdown report for the docs (sizes and the benches have)",
            argv.join(" ")
        ),
    }
}
