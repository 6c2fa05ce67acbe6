//! `cargo xtask bench`: the measurements, a binary of their own that `cargo xtask` runs.

use clap::Parser;
use std::process::ExitCode;
use xtask::{cleanup, ctx, output, util};
use xtask_bench::cli::Cli;

fn main() -> ExitCode {
    // First, so that a signal at any later moment finds the handler.
    cleanup::install_signal_handler();
    let cli = Cli::parse();
    let result = ctx::Ctx::new(cli.config).and_then(|ctx| match cli.report_shape {
        true => output::result(&serde_json::to_string(&cli.bench.report_shape(&ctx.root))?),
        false => cli.bench.run(&ctx),
    });
    // A signal before this point: no error, exit 130 (the handler's); after it: this outcome.
    output::finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => util::report_error(&err),
    }
}
