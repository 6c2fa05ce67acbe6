//! `cargo xtask scan`: each variant's image scanned once by Trivy — vulnerabilities and
//! secrets — judged against images.toml's scan policy, and reported as a table, Markdown, JSON
//! or SARIF (one run per variant, for GitHub code scanning). Every output of an image comes
//! from its one Trivy JSON report.
//!
//! Story: targets (variants, their images and policies) → plan (DB options, Trivy's argv:
//! plan.rs) → run Trivy once per image (run.rs), or read a report it wrote elsewhere
//! (`--from-report`) → parse (trivy.rs) → refuse a report that saw nothing, locate each finding
//! in this repository (locate.rs) and judge it (judge.rs) → compare with a baseline
//! (baseline.rs) → render (render.rs, sarif.rs) and write.
//!
//! Trivy is asked for every severity and for unfixed vulnerabilities too, with `--exit-code 0`:
//! its exit status then means only "the tool could not run", and the policy is applied here, so
//! the report shows what was ignored and why instead of hiding it.

mod baseline;
mod judge;
mod locate;
mod plan;
mod render;
mod run;
mod sarif;
mod trivy;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::config::{Config, Date, Scan};
use crate::docker;
use crate::output;
use crate::output::warning;
use crate::report;
use crate::util::{CheckFailed, Ctx};
use judge::{FailOn, IgnoreStatus, Location, VariantScan};
use plan::{DbFlags, DbOptions, Input};

pub use plan::{db_state, DbState, DB_SCHEMA, INSTALL_HINT};

/// What the JSON report is (its schema 2: secrets, ignore entries, locations, baseline).
const KIND: report::Kind = report::Kind::Scan;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// GitHub-flavoured Markdown tables.
    Markdown,
    /// The report as JSON (what --save writes).
    Json,
    /// SARIF 2.1.0, one run per variant (what --sarif writes, in one file).
    Sarif,
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
    #[arg(long, value_enum, default_value_t = Format::Table)]
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
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<Duration>,
}

fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
    crate::config::parse_duration(s).map_err(|e| e.to_string())
}

/// The JSON report (`--format json`, `--save`).
#[derive(Debug, Serialize)]
pub struct Report {
    pub fail_on: FailOn,
    /// The `--baseline` file.
    pub baseline: Option<String>,
    /// The DB Trivy used (None for `--from-report` only).
    pub db: Option<plan::DbInfo>,
    pub scans: Vec<VariantScan>,
}

/// One scan: a variant's policy and what is scanned.
struct Target<'a> {
    variant: &'a str,
    /// What the report calls the image.
    image: String,
    policy: &'a Scan,
    dockerfile: &'a Utf8Path,
    stage: Option<&'a str>,
    build_args: &'a BTreeMap<String, String>,
    source: Source,
}

enum Source {
    /// The engine's image with this ID.
    Engine(String),
    Archive(Utf8PathBuf),
    Report(Utf8PathBuf),
}

impl Args {
    fn targets<'a>(&self, config: &'a Config) -> Result<Vec<Target<'a>>> {
        let flag = [
            (self.image.is_some(), "--image"),
            (self.input.is_some(), "--input"),
            (self.from_report.is_some(), "--from-report"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag));
        let variants = match flag {
            Some(flag) => match (self.variants.as_slice(), config.variants.as_slice()) {
                ([name], _) => vec![config.variant(name)?],
                ([], [only]) => vec![only],
                _ => bail!(
                    "{flag} takes the scan policy of one variant: name exactly one of {}",
                    config.variant_names().join(", ")
                ),
            },
            None => config.select(&self.variants, self.all)?,
        };
        let mut targets = Vec::new();
        for v in variants {
            let (image, source) = if let Some(path) = &self.from_report {
                (v.image_ref(), Source::Report(path.clone()))
            } else if let Some(path) = &self.input {
                if !path.is_file() {
                    bail!(
                        "--input {path}: no such file (write one with `docker save IMAGE -o FILE`)"
                    );
                }
                (path.to_string(), Source::Archive(path.clone()))
            } else {
                let image = self.image.clone().unwrap_or_else(|| v.image_ref());
                // Pinned by ID: the tag may move while the scan runs.
                let id = docker::image_id(&image)?.with_context(|| {
                    format!(
                        "image {image} is not in the local Docker engine: build it with \
                         `cargo xtask build {}`, or scan another with --image REF or --input FILE",
                        v.name
                    )
                })?;
                (image, Source::Engine(id))
            };
            targets.push(Target {
                variant: &v.name,
                image,
                policy: &v.scan,
                dockerfile: &v.dockerfile,
                stage: v.target.as_deref(),
                build_args: &v.build_args,
                source,
            });
        }
        Ok(targets)
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        if self.fail_on == FailOn::New && self.baseline.is_none() {
            bail!("--fail-on new compares with a baseline: add --baseline FILE (a report of `cargo xtask scan --save`)");
        }
        let config = ctx.config()?;
        // Bad input fails before minutes of scanning.
        let baseline = self.baseline.as_deref().map(baseline::load).transpose()?;
        let runs_trivy = self.from_report.is_none();
        let trivy = runs_trivy.then(run::find_trivy).transpose()?;
        let targets = self.targets(config)?;
        let flags = DbFlags {
            cache_dir: self
                .cache_dir
                .as_deref()
                .map(crate::util::absolute)
                .transpose()?,
            repositories: self.db_repository.clone(),
            offline: self.offline,
            timeout: self.timeout,
        };
        let db = DbOptions::resolve(&flags, &config.scan, &|name| std::env::var(name).ok())?;
        if let Some(trivy) = &trivy {
            if db.offline {
                plan::check_offline(&db, &plan::db_state(&db.cache_dir))?;
            } else {
                run::update_db(ctx, trivy, &db)?;
            }
        }

        let today = today();
        let mut scans = Vec::new();
        let mut reports = HashMap::new();
        for target in &targets {
            let mut scan = scan_one(ctx, target, trivy.as_deref(), &db, today, &mut reports)?;
            if let Some(baseline) = &baseline {
                if !baseline.apply(&mut scan) {
                    warning!(
                        "the baseline has no scan of `{}`: all its findings count as new",
                        scan.variant
                    );
                }
            }
            scan.set_passed(self.fail_on);
            warn_about_ignores(&scan);
            if scan.os_end_of_life {
                warning!(
                    "{}: {} is past its end of life: its packages get no more fixes; \
                     move the base image to a supported release",
                    scan.variant,
                    scan.os
                );
            }
            scans.push(scan);
        }
        let report = Report {
            fail_on: self.fail_on,
            baseline: self.baseline.as_ref().map(|b| b.to_string()),
            db: match (runs_trivy, plan::db_state(&db.cache_dir)) {
                (true, DbState::Present(info)) => Some(info),
                _ => None,
            },
            scans,
        };
        self.write(&report)?;
        match judge::failure_message(&report.scans, self.fail_on) {
            Some(message) => Err(CheckFailed(message).into()),
            None => Ok(()),
        }
    }

    /// Every output, all rendered before the first is written.
    fn write(&self, report: &Report) -> Result<()> {
        let sections = render::sections(report);
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
        let json = report::to_json(KIND, report)?;
        match self.format {
            Format::Sarif => output::result(&sarif::log(&report.scans).to_json()?)?,
            Format::Table => report::emit_sections(report::Format::Table, &sections, KIND, report)?,
            Format::Markdown => {
                report::emit_sections(report::Format::Markdown, &sections, KIND, report)?
            }
            Format::Json => report::emit_sections(report::Format::Json, &sections, KIND, report)?,
        }
        report::step_summary("Vulnerability scan", &report::sections_markdown(&sections));
        if let Some(path) = &self.save {
            report::write_atomic(path, json.as_bytes())
                .with_context(|| format!("saving the report to {path}"))?;
        }
        for (path, log) in &sarif_files {
            log.write(path)?;
        }
        Ok(())
    }
}

/// Today in UTC: the day `scan.ignore` expiry dates are compared with.
fn today() -> Date {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Date::parse(&crate::util::rfc3339(now)[..10]).expect("rfc3339 writes YYYY-MM-DD")
}

/// Scans (or reads) one target's report and judges it. `reports` keeps the Trivy reports of
/// this run by image: variants that share an image are judged on one Trivy run.
fn scan_one(
    ctx: &Ctx,
    target: &Target,
    trivy: Option<&Utf8Path>,
    db: &DbOptions,
    today: Date,
    reports: &mut HashMap<String, String>,
) -> Result<VariantScan> {
    let (source, what, key) = match &target.source {
        Source::Report(path) => (
            format!("report {path}"),
            format!("the report {path}"),
            format!("report {path}"),
        ),
        Source::Engine(id) => ("trivy".to_string(), target.image.clone(), id.clone()),
        Source::Archive(path) => (
            format!("trivy --input {path}"),
            format!("the archive {path}"),
            format!("archive {path}"),
        ),
    };
    let text = match reports.get(&key) {
        Some(text) => text.clone(),
        None => {
            let text = match &target.source {
                Source::Report(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading the Trivy report {path}"))?,
                Source::Engine(id) => {
                    let trivy = trivy.expect("trivy is found before engine scans");
                    run::scan(ctx, trivy, &Input::Image(id), db, &target.image)?
                }
                Source::Archive(path) => {
                    let trivy = trivy.expect("trivy is found before archive scans");
                    run::scan(ctx, trivy, &Input::Archive(path), db, path.as_str())?
                }
            };
            reports.insert(key, text.clone());
            text
        }
    };
    let report = trivy::parse(&what, &text)?;
    let packages = judge::check_saw_something(&what, &report)?;

    let dockerfile_text = std::fs::read_to_string(target.dockerfile)
        .with_context(|| format!("reading {} to locate findings", target.dockerfile))?;
    let dockerfile = locate::parse(&dockerfile_text);
    let mut lockfiles = Vec::new();
    for path in &target.policy.lockfiles {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the lockfile {path} (scan.lockfiles)"))?;
        lockfiles.push((path.clone(), text));
    }
    let layers = report.layer_commands();
    let locator = locate::Locator::new(
        target.dockerfile,
        &dockerfile,
        target.stage,
        target.build_args,
        &layers,
        &lockfiles,
    );
    let relative = |place: &locate::Place| match crate::sarif::relative_to(&ctx.root, &place.file) {
        Some(file) => Location {
            file,
            line: place.line,
            why: place.why.into(),
            in_repo: true,
        },
        None => Location {
            file: place.file.to_string(),
            line: place.line,
            why: place.why.into(),
            in_repo: false,
        },
    };
    let image = match (&target.source, report.artifact_name.as_str()) {
        // A report judged with --from-report names the image it was made of.
        (Source::Report(_), name) if !name.is_empty() => name.to_string(),
        _ => target.image.clone(),
    };
    let subject = judge::Subject {
        variant: target.variant,
        image: &image,
        source,
        policy: target.policy,
        today,
        locator: &locator,
        relative: &relative,
    };
    Ok(judge::judge(&subject, &report, packages))
}

fn warn_about_ignores(scan: &VariantScan) {
    for i in &scan.ignores {
        match i.status {
            IgnoreStatus::Unused => warning!(
                "{}: scan.ignore lists {}, which the scan did not find; remove it",
                scan.variant,
                i.id
            ),
            IgnoreStatus::Expired => warning!(
                "{}: the scan.ignore entry for {} expired on {}: its {} finding(s) are \
                 judged again; fix them, or renew the entry with a new date and reason",
                scan.variant,
                i.id,
                i.expires.map(|d| d.to_string()).unwrap_or_default(),
                i.findings
            ),
            IgnoreStatus::Applied => {}
        }
    }
}

/// Where `scan` would find the DB with images.toml's settings and no flags, and its state
/// (for `doctor`).
pub fn configured_db(config: Option<&Config>) -> Result<(Utf8PathBuf, DbState)> {
    let settings = config.map(|c| c.scan.clone()).unwrap_or_default();
    let db = DbOptions::resolve(&DbFlags::default(), &settings, &|name| {
        std::env::var(name).ok()
    })?;
    let state = db_state(&db.cache_dir);
    Ok((db.cache_dir, state))
}
