//! `cargo xtask bench …`: measurements that are commands, not tests.
//!
//! `bench rebuild <variant>` times four builds through the real `cargo xtask build` code path
//! (`--load`, local cache in its own directory, plain progress on stderr): cold (`--no-cache`),
//! warm with no change, warm after one app source file changed, warm after a dependency file
//! changed. Each change is a comment line appended to a real file, with a unique value so that
//! no earlier run's cache can answer for it, and the original bytes are written back on every
//! path (success, error, Ctrl-C). The result is judged against issue 3's target for an app-only
//! rebuild (≤ 5 s and ≤ 5 % of cold) and against what must have re-run (only the last stage).
//!
//! Cold means no *layer* cache: BuildKit's cache mounts (uv, apt) stay warm on the builder, as
//! they do for a contributor's second checkout, so a cold build does not measure downloads.
//!
//! `bench sizes` (in `bench/sizes.rs`) times `cargo xtask sizes`.

mod sizes;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::build_cmd::{self as build, BuildReport, CacheMode, Progress};
use crate::cleanup::Guard;
use crate::config::Variant;
use crate::docker;
use crate::report::{self, Format, Section, Table};
use crate::util::progress;
use crate::util::{self, CheckFailed, Ctx, TempDir};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(clap::Subcommand)]
enum Bench {
    /// Cold, no-change, app-change and dependency-change rebuild times of one variant.
    Rebuild(RebuildArgs),
    /// First and cached `cargo xtask sizes` times for built images, against the 1 s target.
    Sizes(sizes::SizesArgs),
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        match self.bench {
            Bench::Rebuild(args) => args.run(ctx),
            Bench::Sizes(args) => args.run(ctx),
        }
    }
}

/// The app source file touched by default (relative to the project root).
pub const DEFAULT_APP_FILE: &str = "app/src/voxserve/__init__.py";
/// The dependency file touched by default: the lock the deps stage installs from.
pub const DEFAULT_DEP_FILE: &str = "app/requirements.lock";
/// What the appended comment line says; also how a file left modified by a killed run is found.
const MARKER: &str = "xtask bench touch";

#[derive(clap::Args)]
pub struct RebuildArgs {
    /// The variant to measure (see `cargo xtask config`).
    variant: String,
    /// App source file that gets a comment line appended for the app-change build
    /// (default: app/src/voxserve/__init__.py). Must be inside the variant's build context.
    #[arg(long, value_name = "FILE")]
    app_file: Option<Utf8PathBuf>,
    /// Dependency file that gets a comment line appended for the dependency-change build
    /// (default: app/requirements.lock). Must be inside the variant's build context.
    #[arg(long, value_name = "FILE")]
    dep_file: Option<Utf8PathBuf>,
    /// Target for the app-change rebuild: at most this many seconds.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    max_app_secs: f64,
    /// Target for the app-change rebuild: at most this percentage of the cold build's time.
    #[arg(long, default_value_t = 5.0, value_name = "PERCENT")]
    max_app_percent: f64,
    /// Root of the bench's own local build cache (default: target/bench-cache), so the bench
    /// neither uses nor rotates the cache of `cargo xtask build`.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<Utf8PathBuf>,
    /// The buildx builder to use (default: the active one).
    #[arg(long)]
    builder: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// The four builds, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Cold,
    NoChange,
    AppChange,
    DepChange,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::Cold,
        Scenario::NoChange,
        Scenario::AppChange,
        Scenario::DepChange,
    ];

    fn label(self) -> &'static str {
        match self {
            Scenario::Cold => "cold (--no-cache)",
            Scenario::NoChange => "warm, no change",
            Scenario::AppChange => "warm, one app file changed",
            Scenario::DepChange => "warm, dependency file changed",
        }
    }
}

/// One measured build.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: Scenario,
    /// The file changed for this build, if any.
    pub touched: Option<Utf8PathBuf>,
    /// Time of `docker buildx build` (export and cache export included).
    pub secs: f64,
    /// `secs` divided by the cold build's.
    pub ratio_to_cold: Option<f64>,
    pub steps_total: Option<u64>,
    pub steps_cached: Option<u64>,
    /// The steps that ran, as BuildKit names them.
    pub steps_run: Vec<String>,
}

/// One PASS/FAIL line.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub target: String,
    pub measured: String,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub variant: String,
    pub image: String,
    pub cpus: usize,
    pub docker: String,
    pub store: String,
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
    pub pass: bool,
}

/// The bytes a touched file gets: the original with one comment line appended (after a newline
/// if the original lacks a final one). `nonce` makes the content new to every cache.
pub fn touched_contents(path: &Utf8Path, original: &[u8], nonce: &str) -> Vec<u8> {
    let mut out = original.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let line = format!("{} {MARKER} {nonce}\n", comment_prefix(path));
    out.extend_from_slice(line.as_bytes());
    out
}

/// The line-comment syntax of a file, by its name.
pub fn comment_prefix(path: &Utf8Path) -> &'static str {
    match path.extension().unwrap_or("") {
        "rs" | "js" | "ts" | "go" | "c" | "h" | "cc" | "cpp" | "java" => "//",
        "sql" | "lua" => "--",
        // Python, requirement files and locks, TOML, YAML, shell, Dockerfiles.
        _ => "#",
    }
}

/// Checks that a file to be touched exists, is inside the build context (else the change could
/// not affect the build) and carries no marker of an earlier, killed run.
pub fn validate_touch(path: &Utf8Path, context: &Utf8Path, contents: &[u8]) -> Result<()> {
    if !path.starts_with(context) {
        bail!(
            "{path} is outside the build context {context}: changing it cannot affect the build; \
             pick a file under the context"
        );
    }
    if contents
        .windows(MARKER.len())
        .any(|w| w == MARKER.as_bytes())
    {
        bail!(
            "{path} still holds a `{MARKER}` line from an earlier run that was killed: restore it \
             (`git checkout -- {path}`) and run again"
        );
    }
    Ok(())
}

/// `secs / cold` when the cold time is known and positive.
pub fn ratio(secs: f64, cold: Option<f64>) -> Option<f64> {
    cold.filter(|c| *c > 0.0).map(|c| secs / c)
}

/// The steps of `row` that ran outside `stage`.
pub fn steps_outside<'a>(row: &'a Row, stage: &str) -> Vec<&'a str> {
    row.steps_run
        .iter()
        .map(String::as_str)
        .filter(|name| step_stage(name) != Some(stage))
        .collect()
}

/// `app` for `[app 3/4] COPY …` (also with a platform word in front); None for `[3/4] …`.
fn step_stage(name: &str) -> Option<&str> {
    let label = name.strip_prefix('[')?.split_once(']')?.0;
    let mut words = label.split_whitespace().rev();
    words.next()?;
    words.next()
}

/// The targets: an app-only rebuild in at most `max_secs` and `max_percent` % of cold, having
/// re-run only (and some) steps of `last_stage`; a no-change rebuild running no step at all.
pub fn judge(rows: &[Row], last_stage: &str, max_secs: f64, max_percent: f64) -> Vec<Check> {
    let find = |s: Scenario| rows.iter().find(|r| r.scenario == s);
    let mut checks = Vec::new();
    if let Some(app) = find(Scenario::AppChange) {
        checks.push(Check {
            name: "app-only rebuild time".into(),
            target: format!("≤ {max_secs} s"),
            measured: format!("{:.1} s", app.secs),
            pass: app.secs <= max_secs,
        });
        checks.push(Check {
            name: "app-only rebuild vs cold".into(),
            target: format!("≤ {max_percent} %"),
            measured: app
                .ratio_to_cold
                .map_or("?".into(), |r| format!("{:.1} %", r * 100.0)),
            pass: app.ratio_to_cold.is_some_and(|r| r * 100.0 <= max_percent),
        });
        let outside = steps_outside(app, last_stage);
        let ran = app.steps_run.len();
        checks.push(Check {
            name: "app-only rebuild re-ran only the last stage".into(),
            target: format!("≥ 1 step run, all in stage `{last_stage}`"),
            measured: match (ran, outside.is_empty(), app.steps_total, app.steps_cached) {
                (0, _, _, _) => "no step ran (is the file in the build context?)".into(),
                (_, true, Some(t), Some(c)) => {
                    format!("{} of {t} ran ({c} cached), all in `{last_stage}`", t - c)
                }
                (_, true, _, _) => format!("{ran} ran, all in `{last_stage}`"),
                (_, false, _, _) => format!("also ran: {}", outside.join("; ")),
            },
            pass: ran > 0 && outside.is_empty(),
        });
    }
    if let Some(warm) = find(Scenario::NoChange) {
        checks.push(Check {
            name: "no-change rebuild is fully cached".into(),
            target: "0 steps run".into(),
            measured: match (warm.steps_total, warm.steps_cached) {
                (Some(t), Some(c)) => format!("{} of {t} ran", t - c),
                _ => "? (no build record)".into(),
            },
            pass: warm.steps_total.is_some() && warm.steps_run.is_empty(),
        });
    }
    checks
}

/// The base image must be the same before the cold build and after the last one: when it was
/// replaced meanwhile, the warm builds were not warm and the figures mean nothing.
pub fn base_check(image: &str, before: Option<&str>, after: Option<&str>) -> Check {
    let short = |id: Option<&str>| {
        id.map_or("absent".to_string(), |id| {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        })
    };
    Check {
        name: "base image unchanged during the bench".into(),
        target: format!("{image}: same ID before and after"),
        measured: if before == after {
            short(before)
        } else {
            format!("{} -> {} (rerun the bench)", short(before), short(after))
        },
        pass: before == after,
    }
}

/// A file changed for one build; its original bytes come back when this drops, or on Ctrl-C.
struct Touch {
    path: Utf8PathBuf,
    original: Vec<u8>,
    guard: Option<Guard>,
}

impl Touch {
    fn apply(path: &Utf8Path, original: Vec<u8>) -> Result<Touch> {
        let modified = touched_contents(path, &original, &util::unique_suffix());
        // The guard exists before the first byte is written.
        let (restore_path, restore_bytes) = (path.to_owned(), original.clone());
        let guard = Guard::new(move || {
            if let Err(err) = std::fs::write(&restore_path, &restore_bytes) {
                eprintln!("error: could not restore {restore_path}: {err}; run `git checkout -- {restore_path}`");
            }
        });
        std::fs::write(path, &modified).with_context(|| format!("appending a line to {path}"))?;
        Ok(Touch {
            path: path.to_owned(),
            original,
            guard: Some(guard),
        })
    }

    /// Restores the file now and proves it holds its original bytes again.
    fn restore(mut self) -> Result<()> {
        drop(self.guard.take());
        let now = std::fs::read(&self.path).with_context(|| format!("reading {}", self.path))?;
        if now != self.original {
            bail!(
                "{} was not restored to its original bytes: run `git checkout -- {}`",
                self.path,
                self.path
            );
        }
        Ok(())
    }
}

impl RebuildArgs {
    fn run(self, ctx: &Ctx) -> Result<()> {
        let config = ctx.config()?;
        let variant = config
            .select(std::slice::from_ref(&self.variant), false)?
            .into_iter()
            .next()
            .context("no variant selected")?;
        let cwd = Utf8PathBuf::try_from(std::env::current_dir()?)
            .context("the current directory is not UTF-8")?;
        let resolve = |given: &Option<Utf8PathBuf>, default: &str| match given {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => cwd.join(p),
            None => ctx.root.join(default),
        };
        let app_file = resolve(&self.app_file, DEFAULT_APP_FILE);
        let dep_file = resolve(&self.dep_file, DEFAULT_DEP_FILE);
        let read = |path: &Utf8Path| -> Result<Vec<u8>> {
            let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
            validate_touch(path, &variant.context, &bytes)?;
            Ok(bytes)
        };
        let app_original = read(&app_file)?;
        let dep_original = read(&dep_file)?;

        let info = docker::info(&ctx.sh)?;
        // Another `cargo xtask base` on a shared engine replaces the base under the bench and
        // turns every later build into a cold one; such a run is reported as invalid.
        let base_before = docker::image_id(&ctx.sh, &config.base.image)
            .with_context(|| format!("inspecting the base image {}", config.base.image))?;
        let reports = TempDir::new(ctx, "bench")?;
        let build_args = build::Args {
            variants: vec![variant.name.clone()],
            all: false,
            load: true,
            push: false,
            compression: None,
            platform: vec![],
            builder: self.builder.clone(),
            no_cache: false,
            pull: false,
            build_args: vec![],
            tags: vec![],
            cache: Some(CacheMode::Local),
            progress: Progress::Plain,
            ca_bundle: None,
            format: Format::Table,
            report_dir: Some(reports.path().to_owned()),
            cache_dir: Some(
                self.cache_dir
                    .clone()
                    .unwrap_or_else(|| ctx.root.join("target").join("bench-cache")),
            ),
        };

        let mut rows: Vec<Row> = Vec::new();
        for scenario in Scenario::ALL {
            progress!("bench rebuild {}: {}", variant.name, scenario.label());
            let mut args = build_args.clone();
            args.no_cache = scenario == Scenario::Cold;
            let (touch, touched) = match scenario {
                Scenario::AppChange => (
                    Some(Touch::apply(&app_file, app_original.clone())?),
                    Some(app_file.clone()),
                ),
                Scenario::DepChange => (
                    Some(Touch::apply(&dep_file, dep_original.clone())?),
                    Some(dep_file.clone()),
                ),
                _ => (None, None),
            };
            let built = args.build(ctx);
            // Restore before anything else can fail; a failed build still restores (drop).
            if let Some(touch) = touch {
                touch.restore()?;
            }
            let report = one(built.with_context(|| {
                format!("bench rebuild {}: {} build", variant.name, scenario.label())
            })?)?;
            let cold = rows.first().map(|r| r.secs);
            rows.push(Row {
                scenario,
                touched,
                secs: report.duration_secs,
                ratio_to_cold: ratio(report.duration_secs, cold.or(Some(report.duration_secs))),
                steps_total: report.steps_total,
                steps_cached: report.steps_cached,
                steps_run: report.steps_run,
            });
        }

        let last_stage = last_stage(variant, &rows);
        let mut checks = judge(&rows, &last_stage, self.max_app_secs, self.max_app_percent);
        let base_after = docker::image_id(&ctx.sh, &config.base.image)
            .with_context(|| format!("inspecting the base image {}", config.base.image))?;
        checks.push(base_check(
            &config.base.image,
            base_before.as_deref(),
            base_after.as_deref(),
        ));
        let report = RebuildReport {
            variant: variant.name.clone(),
            image: variant.image_ref(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            docker: info.server_version.clone(),
            store: info.store_name(),
            pass: checks.iter().all(|c| c.pass),
            rows,
            checks,
        };
        publish(
            self.format,
            &format!("bench rebuild {}", variant.name),
            &render(&report),
            &report,
            &report.checks,
        )
    }
}

/// Prints a bench's report (and appends it to the GitHub step summary), then fails with the
/// names of the missed targets, if any.
pub fn publish<T: Serialize>(
    format: Format,
    what: &str,
    sections: &[Section],
    report: &T,
    checks: &[Check],
) -> Result<()> {
    report::emit_sections(format, sections, report)?;
    report::step_summary(
        &format!("cargo xtask {what}"),
        &report::sections_markdown(sections),
    );
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.name.as_str())
        .collect();
    if !failed.is_empty() {
        return Err(CheckFailed(format!("{what}: target missed: {}", failed.join(", "))).into());
    }
    Ok(())
}

/// The stage an app-only change should rebuild: the variant's target, else the stage of the
/// last step the cold build listed, else `app`.
fn last_stage(variant: &Variant, rows: &[Row]) -> String {
    if let Some(target) = &variant.target {
        return target.clone();
    }
    rows.first()
        .and_then(|cold| cold.steps_run.last())
        .and_then(|name| step_stage(name))
        .unwrap_or("app")
        .to_string()
}

fn one(mut reports: Vec<BuildReport>) -> Result<BuildReport> {
    match reports.len() {
        1 => Ok(reports.remove(0)),
        n => bail!("expected one build report, got {n}"),
    }
}

/// `[app 3/5] COPY` for `[app 3/5] COPY --chown=0:0 app/src/voxserve …`: the table shows the
/// step and its instruction; JSON keeps the whole name.
pub fn short_step(name: &str) -> String {
    match name.split_once("] ") {
        Some((label, rest)) => {
            let instr = rest.split_whitespace().next().unwrap_or("");
            format!("{label}] {instr}")
        }
        None => name.to_string(),
    }
}

fn render(report: &RebuildReport) -> Vec<Section> {
    let mut builds = Table::new(&["build", "time", "vs cold", "steps cached", "steps run"])
        .right_align(&[1, 2, 3]);
    for row in &report.rows {
        builds.row(vec![
            row.scenario.label().into(),
            format!("{:.1} s", row.secs),
            row.ratio_to_cold
                .map_or("?".into(), |r| format!("{:.1} %", r * 100.0)),
            match (row.steps_cached, row.steps_total) {
                (Some(c), Some(t)) => format!("{c}/{t}"),
                _ => "?".into(),
            },
            if row.scenario == Scenario::Cold {
                "all".into()
            } else if row.steps_run.is_empty() {
                "-".into()
            } else {
                row.steps_run
                    .iter()
                    .map(|s| short_step(s))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ]);
    }
    vec![
        Section {
            title: Some(format!(
                "bench rebuild {} ({}): {} CPUs, Docker {}, {}",
                report.variant, report.image, report.cpus, report.docker, report.store
            )),
            table: builds,
        },
        targets_section(&report.checks),
    ]
}

/// The PASS/FAIL table of a bench.
pub fn targets_section(checks: &[Check]) -> Section {
    let mut table = Table::new(&["check", "target", "measured", "result"]);
    for c in checks {
        table.row(vec![
            c.name.clone(),
            c.target.clone(),
            c.measured.clone(),
            if c.pass { "PASS" } else { "FAIL" }.into(),
        ]);
    }
    Section {
        title: Some("targets".into()),
        table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: Scenario, secs: f64, cold: f64, run: &[&str]) -> Row {
        Row {
            scenario,
            touched: None,
            secs,
            ratio_to_cold: ratio(secs, Some(cold)),
            steps_total: Some(13),
            steps_cached: Some(13 - run.len() as u64),
            steps_run: run.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn rows(app_secs: f64, app_run: &[&str]) -> Vec<Row> {
        vec![
            row(Scenario::Cold, 100.0, 100.0, &[]),
            row(Scenario::NoChange, 3.0, 100.0, &[]),
            row(Scenario::AppChange, app_secs, 100.0, app_run),
            row(
                Scenario::DepChange,
                40.0,
                100.0,
                &["[deps 6/8] RUN uv pip install"],
            ),
        ]
    }

    fn verdict(checks: Vec<Check>) -> Vec<(String, bool)> {
        checks.into_iter().map(|c| (c.name, c.pass)).collect()
    }

    #[test]
    fn ratio_needs_a_positive_cold_time() {
        assert_eq!(ratio(5.0, Some(100.0)), Some(0.05));
        assert_eq!(ratio(5.0, Some(0.0)), None);
        assert_eq!(ratio(5.0, None), None);
    }

    #[test]
    fn app_rebuild_within_both_targets_passes() {
        let app = [
            "[app 3/4] COPY app/src/voxserve /opt/voxserve/voxserve",
            "[app 4/4] RUN python3 -m compileall",
        ];
        let checks = judge(&rows(4.9, &app), "app", 5.0, 5.0);
        assert!(checks.iter().all(|c| c.pass), "{checks:?}");
        assert_eq!(checks[2].measured, "2 of 13 ran (11 cached), all in `app`");
    }

    #[test]
    fn slow_or_relatively_slow_app_rebuild_fails() {
        let app = ["[app 3/4] COPY x /x"];
        // 6 s: over 5 s, and 6 % of cold.
        let v = verdict(judge(&rows(6.0, &app), "app", 5.0, 5.0));
        assert_eq!(v[0], ("app-only rebuild time".to_string(), false));
        assert_eq!(v[1], ("app-only rebuild vs cold".to_string(), false));
        // 4 s of a 50 s cold build: in time, but 8 % of cold.
        let mut r = rows(4.0, &app);
        for row in &mut r {
            row.ratio_to_cold = ratio(row.secs, Some(50.0));
        }
        let v = verdict(judge(&r, "app", 5.0, 5.0));
        assert!(v[0].1);
        assert!(!v[1].1);
        // Exactly on the targets passes.
        let v = verdict(judge(&rows(5.0, &app), "app", 5.0, 5.0));
        assert!(v[0].1 && v[1].1);
    }

    #[test]
    fn app_rebuild_that_reran_deps_or_nothing_fails() {
        let checks = judge(
            &rows(
                3.0,
                &["[deps 7/8] RUN python trim_venv.py", "[app 3/4] COPY x /x"],
            ),
            "app",
            5.0,
            5.0,
        );
        assert!(!checks[2].pass);
        assert!(
            checks[2].measured.contains("[deps 7/8]"),
            "{}",
            checks[2].measured
        );
        let checks = judge(&rows(3.0, &[]), "app", 5.0, 5.0);
        assert!(!checks[2].pass);
    }

    #[test]
    fn no_change_rebuild_must_run_nothing() {
        let mut r = rows(3.0, &["[app 3/4] COPY x /x"]);
        assert!(judge(&r, "app", 5.0, 5.0)[3].pass);
        r[1].steps_run = vec!["[app 4/4] RUN date".into()];
        r[1].steps_cached = Some(12);
        let c = &judge(&r, "app", 5.0, 5.0)[3];
        assert!(!c.pass);
        assert_eq!(c.measured, "1 of 13 ran");
    }

    #[test]
    fn a_base_replaced_during_the_bench_invalidates_it() {
        let same = base_check(
            "b",
            Some("sha256:54de30a32771aaaa"),
            Some("sha256:54de30a32771aaaa"),
        );
        assert!(same.pass);
        assert_eq!(same.measured, "54de30a32771");
        let changed = base_check(
            "b",
            Some("sha256:54de30a32771aaaa"),
            Some("sha256:eb19300e4e15bbbb"),
        );
        assert!(!changed.pass);
        assert_eq!(
            changed.measured,
            "54de30a32771 -> eb19300e4e15 (rerun the bench)"
        );
        // No offline base at all (the Dockerfiles' default applies): nothing changed.
        assert!(base_check("b", None, None).pass);
    }

    #[test]
    fn table_shows_steps_by_label_and_instruction() {
        assert_eq!(
            short_step("[app 3/5] COPY --chown=0:0 app/src/voxserve /opt/voxserve/voxserve"),
            "[app 3/5] COPY"
        );
        assert_eq!(short_step("exporting to image"), "exporting to image");
    }

    #[test]
    fn step_stage_reads_named_unnamed_and_platform_labels() {
        assert_eq!(step_stage("[app 3/4] COPY a b"), Some("app"));
        assert_eq!(step_stage("[linux/amd64 deps 2/9] RUN x"), Some("deps"));
        assert_eq!(step_stage("[3/4] RUN x"), None);
        assert_eq!(step_stage("exporting to image"), None);
    }

    #[test]
    fn touch_appends_one_comment_line() {
        let py = Utf8Path::new("/p/app/src/voxserve/__init__.py");
        assert_eq!(
            touched_contents(py, b"x = 1\n", "n1"),
            b"x = 1\n# xtask bench touch n1\n"
        );
        // A missing final newline is added first, so the original last line stays intact.
        assert_eq!(
            touched_contents(py, b"x = 1", "n1"),
            b"x = 1\n# xtask bench touch n1\n"
        );
        assert_eq!(touched_contents(py, b"", "n1"), b"# xtask bench touch n1\n");
        let rs = Utf8Path::new("/p/src/main.rs");
        assert!(touched_contents(rs, b"", "n").starts_with(b"// "));
        assert_eq!(comment_prefix(Utf8Path::new("app/requirements.lock")), "#");
        assert_eq!(comment_prefix(Utf8Path::new("Dockerfile")), "#");
        // Different nonces give different contents (no earlier run's cache can match).
        assert_ne!(
            touched_contents(py, b"x", "a"),
            touched_contents(py, b"x", "b")
        );
    }

    #[test]
    fn touch_planning_refuses_files_outside_the_context_or_left_modified() {
        let ctx = Utf8Path::new("/p");
        assert!(validate_touch(Utf8Path::new("/p/app/a.py"), ctx, b"x").is_ok());
        let err = validate_touch(Utf8Path::new("/elsewhere/a.py"), ctx, b"x").unwrap_err();
        assert!(
            err.to_string().contains("outside the build context"),
            "{err}"
        );
        // `/pp` is not inside `/p`.
        assert!(validate_touch(Utf8Path::new("/pp/a.py"), ctx, b"x").is_err());
        let left = touched_contents(Utf8Path::new("/p/a.py"), b"x\n", "old");
        let err = validate_touch(Utf8Path::new("/p/a.py"), ctx, &left).unwrap_err();
        assert!(err.to_string().contains("git checkout"), "{err}");
    }

    #[test]
    fn touch_restores_the_original_bytes() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", util::unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = Utf8PathBuf::try_from(dir.join("f.py")).unwrap();
        std::fs::write(&path, b"a = 1").unwrap();
        let touch = Touch::apply(&path, b"a = 1".to_vec()).unwrap();
        assert_ne!(std::fs::read(&path).unwrap(), b"a = 1");
        touch.restore().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a = 1");
        // Dropped without `restore` (an error path): restored too.
        let touch = Touch::apply(&path, b"a = 1".to_vec()).unwrap();
        drop(touch);
        assert_eq!(std::fs::read(&path).unwrap(), b"a = 1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
