//! `cargo xtask`: builds, tests, measures and checks the voxserve container images.

use clap::Parser;
use std::process::ExitCode;
use xtask::cli::{Cli, Command};
use xtask::{bench, cleanup, ctx, output, util};

fn main() -> ExitCode {
    // First, so that a signal at any later moment finds the handler.
    cleanup::install_signal_handler();
    let cli = Cli::parse();
    let result = ctx::Ctx::new(cli.config).and_then(|ctx| match cli.command {
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
        Command::Diff(args) => args.run(&ctx),
        Command::Reproduce(args) => args.run(&ctx),
        Command::Verify(args) => args.run(&ctx),
        Command::Test(args) => args.run(&ctx),
        Command::Bench(args) => args.run(&ctx),
        Command::Docs(args) => args.run(&ctx, xtask::cli::report_shape),
    });
    // A signal before this point: no error, exit 130 (the handler's); after it: this outcome.
    output::finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The bench binary has said why already.
        Err(err) => match err.downcast_ref::<bench::Exited>() {
            Some(exited) => ExitCode::from(exited.0),
            None => util::report_error(&err),
        },
    }
}
