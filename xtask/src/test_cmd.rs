//! `cargo xtask test`: every test of the repository — the xtask's unit and integration tests
//! (against the real Docker engine) and the service's pytest suite in a hash-checked venv.

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;

use crate::cleanup;
use crate::docker;
use crate::reclaim;
use crate::util::{progress, CheckFailed, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// Skip the Rust tests (unit and integration).
    #[arg(long)]
    skip_rust: bool,
    /// Skip the service's pytest suite.
    #[arg(long)]
    skip_app: bool,
    /// Only the xtask's unit tests (`cargo test --bins`): no Docker engine and no uv needed, so
    /// they run on any machine (CI runs them on Linux, macOS and Windows).
    #[arg(long, conflicts_with_all = ["skip_rust", "skip_app"])]
    unit: bool,
    /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        // What killed test runs left; and, at the end, the fixture images of this run's test
        // processes (they share them between their tests, so none of them can remove them).
        // (Unit tests start nothing, and need no engine.)
        let reclaim = !self.unit;
        if reclaim {
            reclaim_stale(ctx);
        }
        let result = self.run_tests(ctx);
        if reclaim {
            reclaim_stale(ctx);
        }
        result
    }

    fn run_tests(self, ctx: &Ctx) -> Result<()> {
        let mut failed = Vec::new();
        if !self.skip_app && !self.unit {
            if let Err(err) = app_tests(ctx) {
                if err.downcast_ref::<CheckFailed>().is_none() {
                    return Err(err);
                }
                failed.push("app (pytest)");
            }
        }
        if !self.skip_rust {
            // The Cargo that runs `cargo xtask` (so the same toolchain), else the one on PATH.
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut args = vec![
                "test".to_string(),
                "--workspace".into(),
                "--locked".into(),
                "--no-fail-fast".into(),
            ];
            if self.unit {
                args.push("--bins".into());
            }
            if !self.cargo_args.is_empty() {
                args.push("--".into());
                args.extend(self.cargo_args);
            }
            progress!("cargo {}", args.join(" "));
            let out = cleanup::run(&duct::cmd(&cargo, &args).dir(&ctx.root).unchecked())
                .context("running cargo test")?;
            if !out.status.success() {
                failed.push("xtask (cargo test)");
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(CheckFailed(format!("tests failed: {}", failed.join(", "))).into())
        }
    }
}

/// Removes containers and fixture images whose owner is gone, when an engine answers (the app
/// tests need none). Best effort: the tests' verdict does not depend on it.
fn reclaim_stale(ctx: &Ctx) {
    if docker::versions(&ctx.sh).is_err() {
        return;
    }
    let reclaimed =
        reclaim::stale_containers(&ctx.sh).and_then(|_| reclaim::stale_test_images(&ctx.sh));
    if let Err(err) = reclaimed {
        eprintln!("warning: {err:#}");
    }
}

/// pytest in `target/app-venv`, made by uv from `app/requirements-dev.lock` with hashes checked.
fn app_tests(ctx: &Ctx) -> Result<()> {
    if which::which("uv").is_err() {
        bail!("uv is not on PATH: install it (`pip install uv`) to run the app tests, or pass --skip-app");
    }
    let venv = ctx.root.join("target").join("app-venv");
    let python: Utf8PathBuf = if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    };
    let lock = ctx.root.join("app").join("requirements-dev.lock");
    progress!("app tests: venv {venv} from {lock}");
    cleanup::run(&duct::cmd!("uv", "venv", "--quiet", "--allow-existing", &venv).dir(&ctx.root))
        .context("creating the app test venv with uv")?;
    let sync = duct::cmd!(
        "uv",
        "pip",
        "sync",
        "--quiet",
        "--python",
        &python,
        "--require-hashes",
        &lock
    );
    cleanup::run(&sync.dir(&ctx.root)).context("installing the app's locked dev requirements")?;
    progress!("pytest app/tests");
    let pytest = duct::cmd!(python.as_std_path(), "-m", "pytest", "app/tests");
    let out = cleanup::run(&pytest.dir(&ctx.root).unchecked()).context("running pytest")?;
    if !out.status.success() {
        return Err(CheckFailed("app tests failed".into()).into());
    }
    Ok(())
}
