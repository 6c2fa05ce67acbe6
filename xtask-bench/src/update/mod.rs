//! `cargo xtask bench update <variant>`: what a host that already holds the image must pull
//! and store after an app change, and after one locked dependency moved to another version.
//!
//! Builds the variant as the files are (the baseline), then once after appending a comment line
//! to one app file, then once after bumping one package of requirements.lock (`uv pip compile`
//! finds another version and its hashes; only that package's pin block changes) — or, with
//! `--dep-file`, after appending a comment line to that file. Every file gets its original bytes
//! back right after its build and on every other path (error, Ctrl-C), as in `bench rebuild`.
//! Each image's layers come from `cargo xtask sizes --format json`; a layer whose blob digest the
//! baseline has is not pulled again. A last, fully cached build puts the variant's tags back on
//! the baseline, and the two measured images are removed.
//!
//! Targets (issue 13): an app change pulls ≤ 100 kB, a dependency change ≤ 100 MB, each changes
//! at least one layer, and the layers made by `COPY … /layers/…` (the torch family's) keep their
//! digests through both.
//!
//! Story: `plan` (the changes, the pin block, pure) → run (here: the builds, each undone) →
//! `judge` (layer deltas and targets, pure) → `render`, published through `bench::publish`.

mod judge;
mod plan;
mod render;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::report::{publish, size, Check, Machine};
use crate::touch::{validate_touch, Touch, DEFAULT_APP_FILE, DEFAULT_DEP_FILE};
use judge::{delta, judge, stable_digests, Row};
use plan::Scenario;
use xtask::build_cmd as build;
use xtask::docker;
use xtask::output::progress;
use xtask::process::Cmd;
use xtask::report::Format;
use xtask::sizes::{self, Layer};
use xtask::util::{Ctx, TempDir};

/// The package `--bump` moves when neither it nor `--dep-file` is given: small, pure Python,
/// pinned once in app/requirements.lock.
const DEFAULT_BUMP: &str = "idna";

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// The variant to measure (see `cargo xtask config`).
    variant: String,
    /// App source file that gets a comment line appended (default: app/src/voxserve/__init__.py).
    #[arg(long, value_name = "FILE")]
    app_file: Option<Utf8PathBuf>,
    /// The dependency change: move PACKAGE of the lock to another version, with its hashes from
    /// `uv pip compile` (needs uv and the package index; default: idna).
    #[arg(long, value_name = "PACKAGE", conflicts_with = "dep_file")]
    bump: Option<String>,
    /// The lock `--bump` changes (default: app/requirements.lock).
    #[arg(long, value_name = "FILE", conflicts_with = "dep_file")]
    lock: Option<Utf8PathBuf>,
    /// The dependency change instead: a comment line appended to FILE (for a fixture whose
    /// install reads the file itself).
    #[arg(long, value_name = "FILE")]
    dep_file: Option<Utf8PathBuf>,
    /// Target: an app change pulls at most this much.
    #[arg(long, default_value = "100 kB", value_name = "SIZE", value_parser = size)]
    max_app_pull: u64,
    /// Target: a dependency change pulls at most this much.
    #[arg(long, default_value = "100 MB", value_name = "SIZE", value_parser = size)]
    max_dep_pull: u64,
    /// Layers that must keep their digests through both changes: those whose instruction
    /// contains this text.
    #[arg(long, default_value = "/layers/", value_name = "TEXT")]
    stable: String,
    /// The buildx builder to use (default: the active one).
    #[arg(long)]
    builder: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Serialize)]
pub struct UpdateReport {
    pub variant: String,
    pub image: String,
    pub machine: Machine,
    pub baseline_id: String,
    pub baseline_layers: usize,
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
    pub pass: bool,
}

/// The dependency change, ready before the first build.
enum DepChange {
    Touch(Utf8PathBuf),
    Bump {
        lock: Utf8PathBuf,
        label: String,
        bumped: Vec<u8>,
    },
}

impl UpdateArgs {
    /// The changes table (a row per change, named by its kind) and the targets.
    pub fn report_shape(&self) -> xtask::report::Shape {
        let rows = [Scenario::AppChange.label(), Scenario::DepChange.label()];
        crate::report::shape(&render::COLUMNS, &rows)
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let config = ctx.config()?;
        let variant = config
            .select(std::slice::from_ref(&self.variant), false)?
            .into_iter()
            .next()
            .context("no variant selected")?;
        let resolve = |given: &Option<Utf8PathBuf>, default: &str| match given {
            Some(p) => xtask::util::absolute(p),
            None => Ok(ctx.root.join(default)),
        };
        let read = |path: &Utf8Path| -> Result<Vec<u8>> {
            let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
            validate_touch(path, &variant.context, &bytes)?;
            Ok(bytes)
        };
        let app_file = resolve(&self.app_file, DEFAULT_APP_FILE)?;
        let app_original = read(&app_file)?;
        // Everything that can fail is done before the first build: the bumped lock is ready.
        let (dep_change, dep_original) = match &self.dep_file {
            Some(_) => {
                let file = resolve(&self.dep_file, DEFAULT_DEP_FILE)?;
                let original = read(&file)?;
                (DepChange::Touch(file), original)
            }
            None => {
                let lock = resolve(&self.lock, DEFAULT_DEP_FILE)?;
                let original = read(&lock)?;
                let package = self.bump.clone().unwrap_or_else(|| DEFAULT_BUMP.into());
                let (label, bumped) = bump(ctx, &lock, &original, &package)?;
                (
                    DepChange::Bump {
                        lock,
                        label,
                        bumped,
                    },
                    original,
                )
            }
        };

        let info = docker::info()?;
        let reports = TempDir::new(ctx, "bench-update")?;
        let options = build::Options {
            builder: self.builder.clone(),
            progress: build::Progress::Plain,
            report_dir: Some(reports.path().to_owned()),
            ..build::Options::default()
        };
        let build_once = |what: &str| -> Result<build::BuildReport> {
            progress!("bench update {}: {what}", variant.name);
            let mut reports = build::build(ctx, &[variant], &options)
                .with_context(|| format!("bench update {}: the build with {what}", variant.name))?;
            if reports.len() != 1 {
                bail!("expected one build report, got {}", reports.len());
            }
            let report = reports.remove(0);
            if report.image_id.is_none() {
                bail!("the build with {what} reported no image ID");
            }
            Ok(report)
        };

        let baseline = build_once("the files as they are")?;
        let baseline_id = baseline.image_id.clone().unwrap_or_default();
        let before = layers(ctx, &baseline_id)?;
        let mut measured: Vec<(Row, Vec<Layer>)> = Vec::new();
        for scenario in [Scenario::AppChange, Scenario::DepChange] {
            let (touch, change) = match (&dep_change, scenario) {
                (_, Scenario::AppChange) => (
                    Touch::apply(&app_file, app_original.clone())?,
                    app_file.to_string(),
                ),
                (DepChange::Touch(file), Scenario::DepChange) => {
                    (Touch::apply(file, dep_original.clone())?, file.to_string())
                }
                (
                    DepChange::Bump {
                        lock,
                        label,
                        bumped,
                    },
                    Scenario::DepChange,
                ) => (
                    Touch::write(lock, dep_original.clone(), bumped)?,
                    format!("{lock}: {label}"),
                ),
            };
            let built = build_once(scenario.label());
            // Restore before anything else can fail; a failed build still restores (drop).
            touch.restore()?;
            let report = built?;
            let id = report.image_id.clone().unwrap_or_default();
            let after = layers(ctx, &id)?;
            measured.push((
                Row {
                    scenario,
                    change,
                    image_id: id,
                    secs: report.duration_secs,
                    delta: delta(&before, &after),
                },
                after,
            ));
        }
        // The variant's tags go back to the image of the files as they are (every step cached),
        // and the two images made from changed files go.
        let restored = build_once("the files restored")?;
        for (row, _) in &measured {
            if Some(&row.image_id) != restored.image_id.as_ref() && row.image_id != baseline_id {
                docker::remove_image(&row.image_id)?;
            }
        }

        let stable_before = stable_digests(&before, &self.stable);
        let stable_after: Vec<Vec<&str>> = measured
            .iter()
            .map(|(_, after)| stable_digests(after, &self.stable))
            .collect();
        let rows: Vec<Row> = measured.iter().map(|(row, _)| row.clone()).collect();
        let checks = judge(
            &rows,
            self.max_app_pull,
            self.max_dep_pull,
            &self.stable,
            &stable_before,
            &stable_after,
        );
        let report = UpdateReport {
            variant: variant.name.clone(),
            image: variant.image_ref(),
            machine: Machine::of(&info),
            baseline_id,
            baseline_layers: before.len(),
            pass: checks.iter().all(|c| c.pass),
            rows,
            checks,
        };
        publish(
            self.format,
            &format!("bench update {}", variant.name),
            &render::render(&report),
            xtask::report::Kind::BenchUpdate,
            &report,
            &report.checks,
        )
    }
}

/// The layers of an image, as `cargo xtask sizes --image ID` measures them.
fn layers(ctx: &Ctx, image_id: &str) -> Result<Vec<Layer>> {
    let sizes = sizes::Args {
        images: vec![image_id.to_owned()],
        ..sizes::Args::default()
    };
    let report = sizes.measure(ctx)?.report;
    let image = report.images.into_iter().next();
    Ok(image.context("`sizes` reported no image")?.layers)
}

/// `package` moved to another version in `lock`: `uv pip compile` picks the newest version other
/// than the pinned one, with its hashes, resolved as app/lock.sh resolves the lock (universal,
/// Python 3.11); only the package's pin block is replaced.
fn bump(ctx: &Ctx, lock: &Utf8Path, original: &[u8], package: &str) -> Result<(String, Vec<u8>)> {
    let text = std::str::from_utf8(original).with_context(|| format!("{lock} is not UTF-8"))?;
    let (version, range) = plan::find_pin(text, package).with_context(|| format!("in {lock}"))?;
    if which::which("uv").is_err() {
        bail!(
            "uv is not on PATH: install it (`pip install uv`), or give the change with --dep-file"
        );
    }
    let dir = TempDir::new(ctx, "bench-bump")?;
    let constraint = dir.path().join("constraint.txt");
    std::fs::write(&constraint, format!("{package}!={version}\n"))
        .with_context(|| format!("writing {constraint}"))?;
    progress!("bench update: finding a version of {package} other than {version} (uv pip compile)");
    let out = Cmd::new("uv")
        .args(["pip", "compile", "-", "--constraint"])
        .arg(&constraint)
        .args([
            "--universal",
            "--python-version",
            "3.11",
            "--generate-hashes",
        ])
        .args(["--no-header", "--no-annotate", "--quiet"])
        .stdin(format!("{package}\n"))
        .output()
        .context("running `uv pip compile`")?;
    if !out.status.success() {
        bail!(
            "`uv pip compile` found no other version of {package}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let compiled = String::from_utf8_lossy(&out.stdout);
    let block = plan::pin_block(&compiled, package)?;
    let (new_version, _) = plan::find_pin(&compiled, package)?;
    Ok((
        format!("{package} {version} -> {new_version}"),
        plan::replace_lines(text, range, &block).into_bytes(),
    ))
}
