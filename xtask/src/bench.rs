//! `cargo xtask bench …`: the measurements live in a binary of their own, `xtask-bench` (its
//! private engines, registries and recompression stay out of the everyday build), which this
//! runs as `cargo run -p xtask-bench -- …` with the same arguments, its output and exit code.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::ffi::OsString;
use std::time::Duration;

use crate::ctx::Ctx;
use crate::process::Cmd;
use crate::report::Shape;

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// `cargo xtask bench --help` lists the benches and their arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

/// The bench binary ended with this exit code, having said why itself.
#[derive(Debug)]
pub struct Exited(pub u8);

impl std::fmt::Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cargo xtask bench exited with {}", self.0)
    }
}

impl std::error::Error for Exited {}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        // A `--config` given before `bench`; one after it is the bench binary's to read.
        let config = (ctx.config_path != ctx.root.join("images.toml")).then_some(&ctx.config_path);
        let status = command(&ctx.root, config, &self.args)
            .inherit()
            .context("running the bench binary (xtask-bench)")?;
        match status.code() {
            Some(0) => Ok(()),
            // Killed by a signal: what an interrupted run exits with.
            code => Err(Exited(code.and_then(|c| u8::try_from(c).ok()).unwrap_or(130)).into()),
        }
    }

    /// The shape of the bench's Markdown report, from the bench binary (`--report-shape`).
    pub(crate) fn report_shape(&self, root: &Utf8Path) -> Result<Shape> {
        let out = command(root, None, &self.args)
            .arg("--report-shape")
            .output()
            .context("running the bench binary (xtask-bench)")?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim_end());
        }
        serde_json::from_slice(&out.stdout).context("reading the shape the bench binary printed")
    }
}

/// `cargo run -q -p xtask-bench -- ARGS` with the Cargo that runs this (the same toolchain) and
/// the images config given; a bench's cleanup (engines, registries, tags) gets a minute.
fn command(root: &Utf8Path, config: Option<&Utf8PathBuf>, args: &[OsString]) -> Cmd {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let cmd = Cmd::new(cargo)
        .args(["run", "-q", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .args(["-p", "xtask-bench", "--"])
        .args(args)
        .grace(Duration::from_secs(60));
    match config {
        Some(config) => cmd.env("XTASK_CONFIG", config),
        None => cmd,
    }
}
