//! `cargo xtask bench update <variant>`: what a host that already holds the image must pull
//! and store after an app change, and after one locked dependency moved to another version.
//!
//! Builds the variant as the files are (the baseline), then once after appending a comment line
//! to one app file, then once after bumping one package of requirements.lock (`uv pip compile`
//! finds another version and its hashes; only that package's pin block changes) — or, with
//! `--dep-file`, after appending a comment line to that file. As in `bench rebuild`, the builds
//! read a scratch copy of the build context, where the files change, and are tagged
//! `<image>-bench:…` (removed at the end): the user's files and the variant's tags never change,
//! however the bench ends. Each image's layers are measured as `cargo xtask sizes` measures them;
//! a layer whose blob digest the baseline has is not pulled again.
//!
//! Targets (issue 13): an app change pulls ≤ 100 kB, a dependency change ≤ 100 MB, each changes
//! at least one layer, and the layers made by `COPY … /layers/…` (the torch family's) keep their
//! digests through both.
//!
//! Story: `plan` (the changes, the pin block, pure) → run (here: the builds, from the copy) →
//! `judge` (layer deltas and targets, pure) → `render`, published through `bench::publish`.

mod judge;
mod plan;
mod render;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use serde::Serialize;

use crate::context::Scratch;
use crate::report::{publish, size, Check, Machine, Rendered};
use crate::touch::{bench_variant, Built, File, DEFAULT_APP_FILE, DEFAULT_DEP_FILE};
use judge::{delta, judge, stable_digests, Row};
use plan::Scenario;
use xtask::build_cmd as build;
use xtask::config::Variant;
use xtask::ctx::{Ctx, TempDir};
use xtask::docker;
use xtask::output::progress;
use xtask::process::Cmd;
use xtask::report::Format;
use xtask::sizes::{self, Layer};

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
    #[arg(long, default_value = "100 kB", value_name = "SIZE",
          value_parser = size, allow_hyphen_values = true)]
    max_app_pull: u64,
    /// Target: a dependency change pulls at most this much.
    #[arg(long, default_value = "100 MB", value_name = "SIZE",
          value_parser = size, allow_hyphen_values = true)]
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

/// One change, ready before the first build: the file and the bytes its copy gets.
struct Change {
    file: File,
    bytes: Vec<u8>,
    /// What the report says was changed: the file, or `file: package old -> new`.
    label: String,
}

impl Change {
    /// A comment line appended to `file`.
    fn commented(file: File) -> Change {
        Change {
            bytes: file.commented(),
            label: file.shown.to_string(),
            file,
        }
    }
}

impl UpdateArgs {
    /// The changes table (a row per change, named by its kind) and the targets.
    pub fn report_shape(&self) -> xtask::report::Shape {
        let rows = [Scenario::AppChange.label(), Scenario::DepChange.label()];
        crate::report::shape(&render::COLUMNS, &rows)
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let variant = ctx.config()?.variant(&self.variant)?;
        let scratch = Scratch::copy(ctx, &variant.context)?;
        let changes = self.changes(ctx, &scratch)?;
        let info = docker::info()?;
        let builds = Builds::new(ctx, variant, &scratch, self.builder.clone())?;
        let baseline = builds.build("the files as they are")?;
        let baseline_id = baseline.image_id.unwrap_or_default();
        let before = layers(ctx, &baseline_id)?;
        let measured = changes
            .iter()
            .map(|(scenario, change)| builds.measure(*scenario, change, &before))
            .collect::<Result<Vec<_>>>()?;
        let report = self.report(variant, &info, baseline_id, &before, &measured);
        publish(
            self.format,
            &format!("bench update {}", variant.name),
            &Rendered::tables(render::render(&report)),
            xtask::report::Kind::BenchUpdate,
            &report,
            &report.checks,
        )
    }

    /// The two changes, every file checked and the lock's bump found before the first build.
    fn changes(&self, ctx: &Ctx, scratch: &Scratch) -> Result<[(Scenario, Change); 2]> {
        let app = File::resolve(ctx, scratch, self.app_file.as_ref(), DEFAULT_APP_FILE)?;
        let dep = match &self.dep_file {
            Some(given) => Change::commented(File::resolve(ctx, scratch, Some(given), "")?),
            None => {
                let lock = File::resolve(ctx, scratch, self.lock.as_ref(), DEFAULT_DEP_FILE)?;
                let package = self.bump.as_deref().unwrap_or(DEFAULT_BUMP);
                let (label, bytes) = bump(ctx, &lock, package)?;
                Change {
                    label: format!("{}: {label}", lock.shown),
                    bytes,
                    file: lock,
                }
            }
        };
        Ok([
            (Scenario::AppChange, Change::commented(app)),
            (Scenario::DepChange, dep),
        ])
    }

    /// The changes against the baseline, judged.
    fn report(
        &self,
        variant: &Variant,
        info: &docker::Info,
        baseline_id: String,
        before: &[Layer],
        measured: &[(Row, Vec<Layer>)],
    ) -> UpdateReport {
        let stable_before = stable_digests(before, &self.stable);
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
        UpdateReport {
            variant: variant.name.clone(),
            image: variant.image_ref(),
            machine: Machine::of(info),
            baseline_id,
            baseline_layers: before.len(),
            pass: checks.iter().all(|c| c.pass),
            rows,
            checks,
        }
    }
}

/// The bench's builds of the variant: from the scratch copy, tagged in the bench's own
/// repository (its tags removed at the end, on every path), their reports in a directory of
/// their own.
struct Builds<'a> {
    ctx: &'a Ctx,
    name: &'a str,
    ours: Variant,
    options: build::Options,
    _reports: TempDir,
    images: Built,
}

impl<'a> Builds<'a> {
    fn new(
        ctx: &'a Ctx,
        variant: &'a Variant,
        scratch: &Scratch,
        builder: Option<String>,
    ) -> Result<Builds<'a>> {
        let ours = bench_variant(variant, scratch);
        let reports = TempDir::new(ctx, "bench-update")?;
        Ok(Builds {
            ctx,
            name: &variant.name,
            options: build::Options {
                builder,
                progress: build::Progress::Plain,
                report_dir: Some(reports.path().to_owned()),
                labels: xtask::reclaim::bench_image_labels(),
                ..build::Options::default()
            },
            images: Built::new(vec![ours.image.clone()]),
            ours,
            _reports: reports,
        })
    }

    /// One build of the scratch copy as it is now.
    fn build(&self, what: &str) -> Result<build::BuildReport> {
        progress!("bench update {}: {what}", self.name);
        let mut reports = build::build(self.ctx, &[&self.ours], &self.options)
            .with_context(|| format!("bench update {}: the build with {what}", self.name))?;
        reports.iter().for_each(|r| self.images.add(r));
        match (reports.len(), reports.first().map(|r| r.image_id.is_some())) {
            (1, Some(true)) => Ok(reports.remove(0)),
            (1, _) => bail!("the build with {what} reported no image ID"),
            (n, _) => bail!("expected one build report, got {n}"),
        }
    }

    /// The build with `change` in place, and what a host holding `before` pulls for it.
    fn measure(
        &self,
        scenario: Scenario,
        change: &Change,
        before: &[Layer],
    ) -> Result<(Row, Vec<Layer>)> {
        let report = change
            .file
            .changed(&change.bytes, || self.build(scenario.label()))??;
        let image_id = report.image_id.unwrap_or_default();
        let after = layers(self.ctx, &image_id)?;
        let row = Row {
            scenario,
            change: change.label.clone(),
            image_id,
            secs: report.duration_secs,
            delta: delta(before, &after),
        };
        Ok((row, after))
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
fn bump(ctx: &Ctx, lock: &File, package: &str) -> Result<(String, Vec<u8>)> {
    let shown = &lock.shown;
    let text =
        std::str::from_utf8(&lock.original).with_context(|| format!("{shown} is not UTF-8"))?;
    let (version, range) = plan::find_pin(text, package).with_context(|| format!("in {shown}"))?;
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
