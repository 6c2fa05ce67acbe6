//! Running Trivy: the DB brought up to date once per run (trying each `--db-repository` in
//! order), then one run per image whose JSON report is written to a temporary file (every
//! output of the scan is derived from it). Trivy's log is copied to stderr as progress and its
//! last lines are quoted when it fails. Killed with the xtask on Ctrl-C.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};

use super::plan::{self, DbOptions, Input};
use crate::ctx::{Ctx, TempDir};
use crate::output;
use crate::output::warning;
use crate::process::Cmd;

/// How many of Trivy's last log lines an error quotes.
const QUOTED_LINES: usize = 6;

/// The `trivy` on PATH, or the install hint.
pub(crate) fn find_trivy() -> Result<Utf8PathBuf> {
    let path = which::which("trivy").map_err(|_| {
        anyhow::anyhow!(
            "trivy is not installed: {}; or run Trivy in its own step and judge its report with \
             `cargo xtask scan VARIANT --from-report FILE`",
            plan::INSTALL_HINT
        )
    })?;
    Utf8PathBuf::try_from(path).context("the path of trivy is not UTF-8")
}

/// A Trivy run that failed: its exit and its last lines.
struct Failed {
    code: String,
    lines: Vec<String>,
}

impl Failed {
    fn quote(&self) -> String {
        format!(
            "({}): {}\n  trivy's last lines:\n    {}",
            self.code,
            key_line(&self.lines),
            self.lines.join("\n    ")
        )
    }
}

/// Runs Trivy with `argv` (argv[0] is `trivy`), copying its log to stderr.
fn run(ctx: &Ctx, trivy: &Utf8Path, argv: &[String]) -> Result<std::result::Result<(), Failed>> {
    // Trivy reads `trivy-secret.yaml` (secret allow rules) from its working directory.
    let reader = Cmd::new(trivy)
        .args(&argv[1..])
        .dir(&ctx.root)
        .reader_merged()?;
    let mut last: VecDeque<String> = VecDeque::new();
    for line in BufReader::new(&reader).lines() {
        let line = line.context("reading trivy's output")?;
        output::message(format_args!("    {line}"));
        if last.len() == QUOTED_LINES {
            last.pop_front();
        }
        last.push_back(line);
    }
    let status = reader.finish()?.status;
    if output::interrupted() {
        bail!("interrupted");
    }
    if status.success() {
        return Ok(Ok(()));
    }
    Ok(Err(Failed {
        code: status
            .code()
            .map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}")),
        lines: last.into_iter().collect(),
    }))
}

/// Makes the DB ready: with `--offline` it must be there already, else it is updated when due.
pub(crate) fn prepare_db(ctx: &Ctx, trivy: &Utf8Path, db: &DbOptions) -> Result<()> {
    if db.offline {
        plan::check_offline(db, &plan::db_state(&db.cache_dir)).map(drop)
    } else {
        update_db(ctx, trivy, db)
    }
}

/// Brings the DB in the cache directory up to date (Trivy downloads only when it is due),
/// from each repository in turn until one works: Trivy itself moves on to the next only after
/// a temporary registry error, not when a mirror is unreachable or lacks the DB.
fn update_db(ctx: &Ctx, trivy: &Utf8Path, db: &DbOptions) -> Result<()> {
    let candidates: Vec<Option<&str>> = if db.repositories.is_empty() {
        vec![None]
    } else {
        db.repositories.iter().map(|r| Some(r.as_str())).collect()
    };
    let mut failures = Vec::new();
    for (i, repo) in candidates.iter().enumerate() {
        let from = repo.map_or("Trivy's default repositories".to_string(), str::to_owned);
        crate::util::progress!(
            "Trivy DB in {}: updating from {from} when due",
            crate::util::shown(&db.cache_dir)
        );
        match run(ctx, trivy, &plan::download_argv(db, *repo))? {
            Ok(()) => return Ok(()),
            Err(failed) => {
                if let Some(next) = candidates.get(i + 1).copied().flatten() {
                    warning!(
                        "no Trivy DB from {from}: {}; trying {next}",
                        key_line(&failed.lines)
                    );
                }
                failures.push((from, failed));
            }
        }
    }
    let tried: Vec<&str> = failures.iter().map(|(f, _)| f.as_str()).collect();
    let (_, last) = failures.last().expect("at least one repository was tried");
    bail!(
        "could not download Trivy's vulnerability DB from {} {}\n  (check the network or the \
         repositories; air-gapped: copy a DB into {}/db and pass --offline)",
        tried.join(", then "),
        last.quote(),
        crate::util::shown(&db.cache_dir)
    )
}

/// Scans one image (or archive) and returns Trivy's JSON report as text. `what` names it in
/// progress and errors.
pub(crate) fn scan(
    ctx: &Ctx,
    trivy: &Utf8Path,
    input: &Input,
    db: &DbOptions,
    what: &str,
) -> Result<String> {
    let tmp = TempDir::new(ctx, "scan")?;
    let output = tmp.path().join("trivy.json");
    let argv = plan::trivy_argv(input, &output, db);
    crate::util::progress!("scanning {what} with trivy");
    if let Err(failed) = run(ctx, trivy, &argv)? {
        bail!("trivy could not scan {what} {}", failed.quote());
    }
    std::fs::read_to_string(&output).with_context(|| {
        format!(
            "reading trivy's report of {what} ({})",
            crate::util::shown(&output)
        )
    })
}

/// The line that says why Trivy failed: its last FATAL or ERROR log line without the timestamp
/// and level (`2026-12-01T19:23:08Z\tFATAL\tFatal error\trun error: …`), else its last line.
fn key_line(lines: &[String]) -> String {
    let found = lines
        .iter()
        .rev()
        .find(|l| l.contains("\tFATAL\t") || l.contains("\tERROR\t"))
        .or(lines.last());
    match found {
        Some(line) => {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() > 2 && fields[1].chars().all(|c| c.is_ascii_uppercase()) {
                fields[2..].join(": ")
            } else {
                line.trim().to_string()
            }
        }
        None => "it printed nothing".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::key_line;

    #[test]
    fn the_fatal_line_is_quoted_without_timestamp() {
        let lines = vec![
            "2026-12-01T19:23:08Z\tINFO\tNeed to update DB".to_string(),
            "2026-12-01T19:23:09Z\tFATAL\tFatal error\trun error: init error: DB error: failed to download vulnerability DB".to_string(),
            "\t* Get \"https://127.0.0.1:9/v2/\": connection refused".to_string(),
        ];
        assert_eq!(
            key_line(&lines),
            "Fatal error: run error: init error: DB error: failed to download vulnerability DB"
        );
        assert_eq!(key_line(&["plain failure".into()]), "plain failure");
        assert_eq!(key_line(&[]), "it printed nothing");
    }
}
