//! `cargo xtask scan`: each variant's image scanned once by Trivy (vulnerabilities and
//! secrets), judged against images.toml's scan policy, and reported as a table, Markdown, JSON
//! or SARIF (one run per variant, for GitHub code scanning). Every output of an image comes
//! from its one Trivy JSON report.
//!
//! Story: resolve (targets, baseline, DB options: every input checked before slow work) → run
//! Trivy once per image (run.rs) or read `--from-report` → parse (trivy.rs) → refuse a report
//! that saw nothing, locate each finding in this repository (locate.rs) and judge it
//! (judge.rs) → mark what is new since the baseline (baseline.rs) → the gate (judge.rs: where a
//! variant passes or fails) → render (render.rs, sarif.rs) and write.
//!
//! Trivy is asked for every severity with `--exit-code 0`: its status then means only "could
//! not run", and the policy is applied here, so the report shows what was ignored and why.

mod baseline;
mod judge;
mod locate;
mod plan;
mod render;
mod run;
mod sarif;
mod trivy;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use clap::builder::PossibleValue;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

use crate::config::{Config, Date, ScanSettings, Variant};
use crate::ctx::Ctx;
use crate::docker;
use crate::output;
use crate::output::warning;
use crate::report;
use crate::util::{self, CheckFailed};
use baseline::Baseline;
use judge::{FailOn, IgnoreStatus, VariantScan};
use plan::{DbOptions, Input};

pub(crate) use plan::db_state;

pub(crate) use plan::DbState;

pub(crate) use plan::DB_SCHEMA;

pub(crate) use plan::INSTALL_HINT;

/// What the JSON report is (its schema 2: secrets, ignore entries, locations, baseline).
const KIND: report::Kind = report::Kind::Scan;

/// `--format`: the formats of every report, and SARIF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Report(report::Format),
    Sarif,
}

impl clap::ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        use report::Format::{Json, Markdown, Table};
        &[
            Format::Report(Table),
            Format::Report(Markdown),
            Format::Report(Json),
            Format::Sarif,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        match self {
            Format::Report(format) => format.to_possible_value(),
            Format::Sarif => Some(
                PossibleValue::new("sarif")
                    .help("SARIF 2.1.0, one run per variant (what --sarif writes, in one file)"),
            ),
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Variants to scan (their images `<image>:<variant>` and their scan policies).
    variants: Vec<String>,
    /// Scan every variant of images.toml.
    #[arg(long, conflicts_with = "variants")]
    all: bool,
    /// Scan this local image instead of the variant's tag, with the variant's policy.
    #[arg(long, value_name = "REF", conflicts_with_all = ["all", "from_report", "input"])]
    image: Option<String>,
    /// Scan a `docker save` or OCI archive instead of the engine's image, with the variant's
    /// policy.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["all", "from_report"])]
    input: Option<Utf8PathBuf>,
    /// Judge an existing Trivy JSON report (`trivy image --format json`) instead of running
    /// Trivy, with the policy of the one variant named (or the only variant).
    #[arg(long, value_name = "FILE", conflicts_with = "all")]
    from_report: Option<Utf8PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Report(report::Format::Table))]
    format: Format,
    /// Also write one SARIF file per variant to DIR (`trivy-<variant>.sarif`), for
    /// `github/codeql-action/upload-sarif`.
    #[arg(long, value_name = "DIR")]
    sarif: Option<Utf8PathBuf>,
    /// Write the JSON report to FILE (what `--format json` prints), e.g. a later --baseline.
    #[arg(long, value_name = "FILE")]
    save: Option<Utf8PathBuf>,
    /// An earlier `scan --save` report (e.g. from main): report, per variant, the findings new
    /// since it and those gone.
    #[arg(long, value_name = "FILE")]
    baseline: Option<Utf8PathBuf>,
    /// `all`: fail on every finding the policy fails and every secret; `new`: only on those not
    /// in --baseline (a pull request's gate).
    #[arg(long, value_enum, value_name = "WHICH", default_value_t = FailOn::All)]
    fail_on: FailOn,
    /// Trivy's cache directory; its DB is DIR/db [default: `cache_dir` of images.toml's
    /// [scan], else Trivy's: $TRIVY_CACHE_DIR or the user cache directory].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<Utf8PathBuf>,
    /// OCI repository to download the vulnerability DB from; repeat it for mirrors, tried in
    /// order [default: `db_repository` of [scan], else Trivy's].
    #[arg(long, value_name = "REPO")]
    db_repository: Vec<String>,
    /// Download nothing (no DB update, no online lookups): scan with the DB in the cache
    /// directory, or exit 2 when it is missing or of another schema.
    #[arg(long)]
    offline: bool,
    /// Trivy's timeout for one image, e.g. `10m` [default: `timeout` of [scan], else Trivy's
    /// 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout, allow_hyphen_values = true)]
    timeout: Option<Duration>,
}

/// A hyphen value (`-5s`) reaches it, so the error says what is wrong with the duration.
fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
    crate::config::parse_duration(s).map_err(|e| e.to_string())
}

/// The JSON report (`--format json`, `--save`).
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) fail_on: FailOn,
    /// The `--baseline` file.
    pub(crate) baseline: Option<String>,
    /// The DB Trivy used (None for `--from-report` only).
    pub(crate) db: Option<plan::DbInfo>,
    pub(crate) scans: Vec<VariantScan>,
}

/// One scan: a variant's policy and what is scanned.
struct Target<'a> {
    variant: &'a Variant,
    /// What the report calls the image.
    image: String,
    source: Source,
}

/// Where a target's Trivy report comes from; variants of one source share one Trivy run.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Source {
    /// The engine's image with this ID (the tag may move while the scan runs).
    Engine(String),
    Archive(Utf8PathBuf),
    Report(Utf8PathBuf),
}

impl Target<'_> {
    /// The report's `source`.
    fn source_label(&self) -> String {
        match &self.source {
            Source::Engine(_) => "trivy".into(),
            Source::Archive(path) => format!("trivy --input {}", util::shown(path)),
            Source::Report(path) => format!("report {}", util::shown(path)),
        }
    }

    /// What messages call it.
    fn what(&self) -> String {
        match &self.source {
            Source::Engine(_) => self.image.clone(),
            Source::Archive(path) => format!("the archive {}", util::shown(path)),
            Source::Report(path) => format!("the report {}", util::shown(path)),
        }
    }

    /// A report judged with --from-report names the image it was made of.
    fn image_name(&self, trivy: &trivy::TrivyReport) -> String {
        match &self.source {
            Source::Report(_) if !trivy.artifact_name.is_empty() => trivy.artifact_name.clone(),
            _ => self.image.clone(),
        }
    }
}

/// Everything a run needs, checked before the first slow step.
struct Resolved<'a> {
    targets: Vec<Target<'a>>,
    baseline: Option<Baseline>,
    /// None with --from-report: nothing runs Trivy.
    trivy: Option<Utf8PathBuf>,
    db: DbOptions,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let resolved = self.resolve(ctx.config()?)?;
        if let Some(trivy) = &resolved.trivy {
            run::prepare_db(ctx, trivy, &resolved.db)?;
        }
        let today = today();
        let mut reports = HashMap::new();
        let mut scans = Vec::new();
        for target in &resolved.targets {
            let scan = scan_one(ctx, &resolved, target, today, self.fail_on, &mut reports)?;
            warn(&scan, resolved.baseline.as_ref());
            scans.push(scan);
        }
        let report = Report {
            fail_on: self.fail_on,
            baseline: self.baseline.as_ref().map(util::shown),
            db: resolved
                .trivy
                .as_ref()
                .and_then(|_| db_state(&resolved.db.cache_dir).info()),
            scans,
        };
        self.write(&report)?;
        match judge::failure_message(&report.scans, self.fail_on) {
            Some(message) => Err(CheckFailed(message).into()),
            None => Ok(()),
        }
    }

    fn resolve<'a>(&self, config: &'a Config) -> Result<Resolved<'a>> {
        if self.fail_on == FailOn::New && self.baseline.is_none() {
            bail!("--fail-on new compares with a baseline: add --baseline FILE (a report of `cargo xtask scan --save`)");
        }
        if let Some(dir) = &self.sarif {
            report::ensure_dir("--sarif", dir)?;
        }
        if let Some(file) = &self.save {
            report::ensure_file("--save", file)?;
        }
        let baseline = self.baseline.as_deref().map(baseline::load).transpose()?;
        let trivy = self
            .from_report
            .is_none()
            .then(run::find_trivy)
            .transpose()?;
        let targets = self
            .variants(config)?
            .into_iter()
            .map(|v| self.target(v))
            .collect::<Result<_>>()?;
        let flags = ScanSettings {
            cache_dir: self
                .cache_dir
                .as_deref()
                .map(crate::util::absolute)
                .transpose()?,
            db_repository: self.db_repository.clone(),
            offline: self.offline,
            timeout: self.timeout,
        };
        let db = DbOptions::resolve(&flags, &config.scan, &|name| std::env::var(name).ok());
        Ok(Resolved {
            targets,
            baseline,
            trivy,
            db,
        })
    }

    /// The variants whose policies apply: exactly one with --image, --input or --from-report.
    fn variants<'a>(&self, config: &'a Config) -> Result<Vec<&'a Variant>> {
        let one_policy = [
            (self.image.is_some(), "--image"),
            (self.input.is_some(), "--input"),
            (self.from_report.is_some(), "--from-report"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag));
        let Some(flag) = one_policy else {
            return config.select(&self.variants, self.all);
        };
        match (self.variants.as_slice(), config.variants.as_slice()) {
            ([name], _) => Ok(vec![config.variant(name)?]),
            ([], [only]) => Ok(vec![only]),
            _ => bail!(
                "{flag} takes the scan policy of one variant: name exactly one of {}",
                config.variant_names().join(", ")
            ),
        }
    }

    fn target<'a>(&self, v: &'a Variant) -> Result<Target<'a>> {
        let (image, source) = if let Some(path) = &self.from_report {
            (v.image_ref(), Source::Report(path.clone()))
        } else if let Some(path) = &self.input {
            if !path.is_file() {
                let path = util::shown(path);
                bail!("--input {path}: no such file (write one with `docker save IMAGE -o FILE`)");
            }
            (util::shown(path), Source::Archive(path.clone()))
        } else {
            let image = self.image.clone().unwrap_or_else(|| v.image_ref());
            let id = docker::image_id(&image)?.with_context(|| {
                format!(
                    "image {image} is not in the local Docker engine: build it with \
                     `cargo xtask build {}`, or scan another with --image REF or --input FILE",
                    v.name
                )
            })?;
            (image, Source::Engine(id))
        };
        Ok(Target {
            variant: v,
            image,
            source,
        })
    }

    /// Every output, all rendered before the first is written.
    fn write(&self, report: &Report) -> Result<()> {
        let sections = render::sections(report);
        let json = report::to_json(KIND, report)?;
        let sarif_files: Vec<(Utf8PathBuf, crate::sarif::Log)> = match &self.sarif {
            Some(dir) => report
                .scans
                .iter()
                .map(|s| {
                    (
                        dir.join(sarif::file_name(&s.variant)),
                        sarif::log(std::slice::from_ref(s)),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        match self.format {
            Format::Sarif => output::result(&sarif::log(&report.scans).to_json()?)?,
            Format::Report(format) => report::emit_sections(format, &sections, KIND, report)?,
        }
        report::step_summary("Vulnerability scan", &report::sections_markdown(&sections));
        if let Some(path) = &self.save {
            report::write_atomic(path, json.as_bytes())
                .with_context(|| format!("saving the report to {}", util::shown(path)))?;
        }
        for (path, log) in &sarif_files {
            log.write(path)?;
        }
        Ok(())
    }
}

/// Reads or scans one target's Trivy report, judges it, and compares it with the baseline.
fn scan_one(
    ctx: &Ctx,
    resolved: &Resolved,
    target: &Target,
    today: Date,
    fail_on: FailOn,
    reports: &mut HashMap<Source, String>,
) -> Result<VariantScan> {
    let v = target.variant;
    let what = target.what();
    let trivy = trivy::parse(&what, &trivy_report(ctx, resolved, target, reports)?)?;
    let packages = judge::check_saw_something(&what, &trivy)?;
    let (dockerfile, lockfiles) = read_sources(v)?;
    let dockerfile = locate::parse(&dockerfile);
    let layers = trivy.layer_commands();
    let locator = locate::Locator::new(
        &v.dockerfile,
        &dockerfile,
        v.target.as_deref(),
        &v.build_args,
        &layers,
        &lockfiles,
    );
    let subject = judge::Subject {
        variant: &v.name,
        image: target.image_name(&trivy),
        source: target.source_label(),
        policy: &v.scan,
        today,
        locator: &locator,
        root: &ctx.root,
    };
    let mut judged = judge::judge(&subject, &trivy);
    let gone = resolved
        .baseline
        .as_ref()
        .map(|b| b.compare(&v.name, &mut judged));
    Ok(judge::variant_scan(
        &subject, &trivy, packages, judged, gone, fail_on,
    ))
}

/// The Trivy report of a target's source, run (or read) once per source.
fn trivy_report(
    ctx: &Ctx,
    resolved: &Resolved,
    target: &Target,
    reports: &mut HashMap<Source, String>,
) -> Result<String> {
    if let Some(text) = reports.get(&target.source) {
        return Ok(text.clone());
    }
    let trivy = || {
        resolved
            .trivy
            .as_deref()
            .expect("Trivy is found unless --from-report")
    };
    let text = match &target.source {
        Source::Report(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the Trivy report {}", util::shown(path)))?,
        Source::Engine(id) => {
            run::scan(ctx, trivy(), &Input::Image(id), &resolved.db, &target.image)?
        }
        Source::Archive(path) => run::scan(
            ctx,
            trivy(),
            &Input::Archive(path),
            &resolved.db,
            path.as_str(),
        )?,
    };
    reports.insert(target.source.clone(), text.clone());
    Ok(text)
}

/// The variant's Dockerfile and lockfiles, which findings are located in.
fn read_sources(v: &Variant) -> Result<(String, Vec<(Utf8PathBuf, String)>)> {
    let dockerfile = std::fs::read_to_string(&v.dockerfile)
        .with_context(|| format!("reading {} to locate findings", util::shown(&v.dockerfile)))?;
    let lockfiles = v
        .scan
        .lockfiles
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "reading the lockfile {} (scan.lockfiles)",
                    util::shown(path)
                )
            })?;
            Ok((path.clone(), text))
        })
        .collect::<Result<_>>()?;
    Ok((dockerfile, lockfiles))
}

/// Today in UTC: the day `scan.ignore` expiry dates are compared with.
fn today() -> Date {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Date::parse(&crate::util::rfc3339(now)[..10]).expect("rfc3339 writes YYYY-MM-DD")
}

/// What a variant's scan warns about: a variant the baseline lacks, stale or expired ignore
/// entries, an OS past its end of life.
fn warn(scan: &VariantScan, baseline: Option<&Baseline>) {
    let v = &scan.variant;
    if baseline.is_some_and(|b| !b.has(v)) {
        warning!("the baseline has no scan of `{v}`: all its findings count as new");
    }
    for i in &scan.ignores {
        match i.status {
            IgnoreStatus::Unused => warning!(
                "{v}: scan.ignore lists {}, which the scan did not find; remove it",
                i.id
            ),
            IgnoreStatus::Expired => warning!(
                "{v}: the scan.ignore entry for {} expired on {}: its {} finding(s) are \
                 judged again; fix them, or renew the entry with a new date and reason",
                i.id,
                i.expires.map(|d| d.to_string()).unwrap_or_default(),
                i.findings
            ),
            IgnoreStatus::Applied => {}
        }
    }
    if scan.os_end_of_life {
        warning!(
            "{v}: {} is past its end of life: its packages get no more fixes; move the base \
             image to a supported release",
            scan.os
        );
    }
}

/// Where `scan` would find the DB with images.toml's settings and no flags, and its state
/// (for `doctor`).
pub(crate) fn configured_db(config: Option<&Config>) -> (Utf8PathBuf, DbState) {
    let settings = config.map(|c| c.scan.clone()).unwrap_or_default();
    let env = |name: &str| std::env::var(name).ok();
    let db = DbOptions::resolve(&ScanSettings::default(), &settings, &env);
    let state = db_state(&db.cache_dir);
    (db.cache_dir, state)
}
