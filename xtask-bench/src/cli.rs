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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo xtask bench").chain(line.split_whitespace()))
    }

    #[test]
    fn every_numeric_target_is_checked_before_any_work() {
        for bad in [
            "rebuild cpu --max-app-secs=-1",
            "rebuild cpu --max-app-percent=five",
            "rebuild cpu --max-app-vs-peer=nan",
            "rebuild cpu --max-dep-vs-peer=-0.5",
            "rebuild cpu --max-cold-vs-peer=inf",
            "rebuild cpu --max-cold-vs-native=-3",
            "smoke cpu --max-verdict-secs=-2",
            "sizes --max-secs=-0.1",
            "pull cpu --max-vs-reference=-1",
            "update cpu --max-app-pull=-1kB",
            "update cpu --max-dep-pull=lots",
        ] {
            let err = parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad}: accepted"));
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad}: {err}"
            );
        }
        for good in [
            "rebuild cpu --max-app-secs=0 --max-cold-vs-native=2",
            "smoke cpu --max-verdict-secs=3",
            "update cpu --max-app-pull=1MB",
        ] {
            assert!(parse(good).is_ok(), "{good}");
        }
    }
}
