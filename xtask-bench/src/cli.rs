//! The command line of `cargo xtask bench` (the `xtask-bench` binary).

use clap::Parser;

/// Measurements: cold and warm rebuilds, pulls, update sizes, `sizes` and `smoke` latencies,
/// each judged against its targets.
#[derive(Parser)]
#[command(name = "xtask-bench", bin_name = "cargo xtask bench", version, long_about = None)]
pub struct Cli {
    /// The images config to use instead of `images.toml` at the project root.
    #[arg(long, global = true, env = "XTASK_CONFIG", value_name = "FILE")]
    pub config: Option<camino::Utf8PathBuf>,
    /// Print the shape of the bench's Markdown report as JSON instead of running it (for
    /// `cargo xtask docs`).
    #[arg(long, global = true, hide = true)]
    pub report_shape: bool,
    #[command(subcommand)]
    pub bench: crate::Bench,
}
