//! The scan parts of images.toml: each variant's policy (`[defaults.scan]`,
//! `[variants.NAME.scan]`: `fail_on`, `ignore_unfixed`, `ignore` entries with a reason and an
//! expiry date, `lockfiles`) and the run-wide Trivy DB settings of the top-level `[scan]` table
//! (`cache_dir`, `db_repository`, `offline`, `timeout`).

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

use super::located::Located;
use super::values::parse_duration;

/// A vulnerability's severity as Trivy names it, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Highest first, the order of the scan summary's columns.
    pub(crate) const DESCENDING: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Unknown,
    ];

    /// One of Trivy's names, in any case.
    pub(crate) fn named(s: &str) -> Option<Severity> {
        Severity::DESCENDING
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// A variant's scan policy.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Scan {
    /// Severities that fail the scan.
    pub(crate) fail_on: Vec<Severity>,
    /// Ignore vulnerabilities without a fixed version.
    pub(crate) ignore_unfixed: bool,
    /// Findings accepted for this variant: reported, never failing (until they expire).
    pub(crate) ignore: Vec<Ignore>,
    /// Files that pin the image's Python packages (`name==version` lines): SARIF points a
    /// Python finding at the line that pins it. Absolute.
    #[serde(serialize_with = "crate::util::serialize_shown_all")]
    pub(crate) lockfiles: Vec<Utf8PathBuf>,
}

/// One `scan.ignore` entry: `"CVE-…"` or `{ id = "CVE-…", reason = "…", expires = "YYYY-MM-DD" }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Ignore {
    /// A vulnerability ID (`CVE-…`, `GHSA-…`), matched without regard to case.
    pub(crate) id: String,
    pub(crate) reason: Option<String>,
    /// The first day (UTC) on which the entry no longer applies.
    pub(crate) expires: Option<Date>,
}

impl Ignore {
    /// Whether the entry has expired on `today`: it applies up to the day before `expires`.
    pub(crate) fn expired(&self, today: Date) -> bool {
        self.expires.is_some_and(|e| today >= e)
    }
}

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Date {
    pub(crate) year: u16,
    pub(crate) month: u8,
    pub(crate) day: u8,
}

impl Date {
    pub(crate) fn parse(s: &str) -> Result<Date> {
        let bad =
            || anyhow::anyhow!("`{s}` is not a date; write it as YYYY-MM-DD, e.g. 2026-03-31");
        let parts: Vec<&str> = s.trim().split('-').collect();
        let [y, m, d] = parts.as_slice() else {
            return Err(bad());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let (year, month, day): (u16, u8, u8) = (
            y.parse().map_err(|_| bad())?,
            m.parse().map_err(|_| bad())?,
            d.parse().map_err(|_| bad())?,
        );
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => bail!("`{s}`: there is no month {month}"),
        };
        if day == 0 || day > days_in_month {
            bail!("`{s}`: month {month} of {year} has no day {day}");
        }
        Ok(Date { year, month, day })
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The top-level `[scan]` table: where Trivy's DB lives and how it may be fetched. The
/// command line wins over each of these.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ScanSettings {
    /// Trivy's cache directory (the DB is `<cache_dir>/db/trivy.db`). Absolute.
    #[serde(serialize_with = "crate::util::serialize_shown_opt")]
    pub(crate) cache_dir: Option<Utf8PathBuf>,
    /// OCI repositories to download the DB from, tried in order.
    pub(crate) db_repository: Vec<String>,
    /// Never download: scan with the DB in the cache directory, or fail.
    pub(crate) offline: bool,
    /// Trivy's `--timeout` for one image.
    #[serde(serialize_with = "ser_opt_secs")]
    pub(crate) timeout: Option<Duration>,
}

fn ser_opt_secs<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

#[derive(Deserialize, Default, Clone)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { fail_on = ["CRITICAL", "HIGH"], ignore = ["CVE-…"] }"#
)]
pub(super) struct RawScan {
    fail_on: Option<Vec<String>>,
    ignore_unfixed: Option<bool>,
    ignore: Option<Vec<Spanned<toml::Value>>>,
    lockfiles: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { cache_dir = "target/trivy", offline = true }"#
)]
pub(super) struct RawScanSettings {
    cache_dir: Option<Spanned<String>>,
    db_repository: Option<Vec<Spanned<String>>>,
    offline: Option<bool>,
    timeout: Option<Spanned<String>>,
}

/// A variant's policy: the variant's keys over `[defaults.scan]`'s, key by key.
pub(super) fn resolve(
    loc: &Located,
    dir: &Utf8Path,
    variant: &str,
    defaults: Option<RawScan>,
    raw: Option<RawScan>,
    span: &Range<usize>,
) -> Result<Scan> {
    let err = |span: Range<usize>, msg: String| loc.at(Some(span), Some(variant), msg);
    let d = defaults.unwrap_or_default();
    let v = raw.unwrap_or_default();
    let fail_on = match v.fail_on.or(d.fail_on) {
        Some(names) => names
            .iter()
            .map(|name| {
                Severity::named(name).ok_or_else(|| {
                    err(
                        span.clone(),
                        format!("scan.fail_on: unknown severity `{}`; use UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL", name.to_ascii_uppercase()),
                    )
                })
            })
            .collect::<Result<_>>()?,
        None => vec![Severity::Critical, Severity::High],
    };
    let mut ignore = Vec::new();
    for entry in v.ignore.or(d.ignore).unwrap_or_default() {
        let at = entry.span();
        let parsed =
            parse_ignore(entry.into_inner()).map_err(|e| err(at.clone(), e.to_string()))?;
        if ignore
            .iter()
            .any(|i: &Ignore| i.id.eq_ignore_ascii_case(&parsed.id))
        {
            return Err(err(at, format!("scan.ignore lists `{}` twice", parsed.id)));
        }
        ignore.push(parsed);
    }
    let mut lockfiles = Vec::new();
    for file in v.lockfiles.or(d.lockfiles).unwrap_or_default() {
        let path = crate::util::host_join(dir, file.get_ref());
        if !path.is_file() {
            return Err(err(
                file.span(),
                format!(
                    "scan.lockfiles: `{}` does not exist (looked for {})",
                    file.get_ref(),
                    crate::util::shown(&path)
                ),
            ));
        }
        lockfiles.push(path);
    }
    Ok(Scan {
        fail_on,
        ignore_unfixed: v.ignore_unfixed.or(d.ignore_unfixed).unwrap_or(true),
        ignore,
        lockfiles,
    })
}

fn parse_ignore(value: toml::Value) -> Result<Ignore> {
    const SHAPE: &str =
        r#"write `"CVE-…"` or `{ id = "CVE-…", reason = "…", expires = "YYYY-MM-DD" }`"#;
    let (id, reason, expires) = match value {
        toml::Value::String(id) => (id, None, None),
        toml::Value::Table(mut table) => {
            let id = match table.remove("id") {
                Some(toml::Value::String(id)) => id,
                Some(_) => bail!("scan.ignore: `id` must be a string; {SHAPE}"),
                None => bail!("scan.ignore: an entry without `id`; {SHAPE}"),
            };
            let reason = match table.remove("reason") {
                Some(toml::Value::String(r)) if !r.trim().is_empty() => Some(r),
                Some(toml::Value::String(_)) => {
                    bail!("scan.ignore `{id}`: `reason` is empty; say why it is accepted")
                }
                Some(_) => bail!("scan.ignore `{id}`: `reason` must be a string"),
                None => None,
            };
            let expires = match table.remove("expires") {
                Some(toml::Value::String(s)) => Some(
                    Date::parse(&s).map_err(|e| anyhow::anyhow!("scan.ignore `{id}`: expires: {e}"))?,
                ),
                // An unquoted TOML date (`expires = 2026-03-31`).
                Some(toml::Value::Datetime(dt)) if dt.time.is_none() && dt.date.is_some() => {
                    Some(Date::parse(&dt.to_string()).map_err(|e| {
                        anyhow::anyhow!("scan.ignore `{id}`: expires: {e}")
                    })?)
                }
                Some(other) => bail!(
                    "scan.ignore `{id}`: expires = {other} is not a date; write it as \"YYYY-MM-DD\""
                ),
                None => None,
            };
            if let Some(key) = table.keys().next() {
                bail!("scan.ignore `{id}`: unknown key `{key}`; an entry has `id`, `reason` and `expires`");
            }
            (id, reason, expires)
        }
        other => bail!("scan.ignore: `{other}` is not an ID; {SHAPE}"),
    };
    let id = id.trim().to_string();
    if id.is_empty() || id.contains(char::is_whitespace) {
        bail!("scan.ignore: `{id}` is not a vulnerability ID (e.g. CVE-2025-1234 or GHSA-…)");
    }
    Ok(Ignore {
        id,
        reason,
        expires,
    })
}

pub(super) fn resolve_settings(
    loc: &Located,
    dir: &Utf8Path,
    raw: Option<RawScanSettings>,
) -> Result<ScanSettings> {
    let raw = raw.unwrap_or_default();
    let timeout = raw
        .timeout
        .map(|t| {
            parse_duration(t.get_ref())
                .map_err(|e| loc.at(Some(t.span()), None, format!("scan.timeout: {e}")))
        })
        .transpose()?;
    let mut db_repository = Vec::new();
    for repo in raw.db_repository.unwrap_or_default() {
        let r = repo.get_ref().trim();
        if r.is_empty() || r.contains(char::is_whitespace) || r.contains("://") {
            return Err(loc.at(
                Some(repo.span()),
                None,
                format!(
                    "scan.db_repository: `{}` is not an OCI repository; write it as \
                     host[:port]/path[:tag], e.g. mirror.example.com/aquasec/trivy-db:2",
                    repo.get_ref()
                ),
            ));
        }
        db_repository.push(r.to_string());
    }
    Ok(ScanSettings {
        cache_dir: raw
            .cache_dir
            .map(|c| crate::util::host_join(dir, c.get_ref())),
        db_repository,
        offline: raw.offline.unwrap_or(false),
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_strictly() {
        let d = Date::parse("2026-02-28").unwrap();
        assert_eq!(d.to_string(), "2026-02-28");
        assert!(Date::parse("2024-02-29").is_ok());
        let err = |s| Date::parse(s).unwrap_err().to_string();
        assert!(
            err("2026-02-29").contains("has no day 29"),
            "{}",
            err("2026-02-29")
        );
        assert!(err("2026-13-01").contains("no month 13"));
        assert!(err("2026-1-01").contains("YYYY-MM-DD"));
        assert!(err("tomorrow").contains("YYYY-MM-DD"));
        assert!(Date::parse("2026-03-01").unwrap() > d);
    }

    #[test]
    fn an_ignore_applies_until_the_day_it_expires() {
        let ignore = Ignore {
            id: "CVE-1".into(),
            reason: None,
            expires: Some(Date::parse("2026-03-01").unwrap()),
        };
        assert!(!ignore.expired(Date::parse("2026-02-28").unwrap()));
        assert!(ignore.expired(Date::parse("2026-03-01").unwrap()));
        let forever = Ignore {
            expires: None,
            ..ignore
        };
        assert!(!forever.expired(Date::parse("2999-01-01").unwrap()));
    }

    #[test]
    fn ignore_entries_are_strings_or_tables() {
        let parse = |s: &str| {
            let doc: toml::Table = toml::from_str(&format!("v = {s}")).unwrap();
            parse_ignore(doc["v"].clone())
        };
        assert_eq!(
            parse(r#""CVE-1""#).unwrap(),
            Ignore {
                id: "CVE-1".into(),
                reason: None,
                expires: None
            }
        );
        let full =
            parse(r#"{ id = "CVE-2", reason = "not reachable", expires = "2026-03-31" }"#).unwrap();
        assert_eq!(full.reason.as_deref(), Some("not reachable"));
        assert_eq!(full.expires.unwrap().to_string(), "2026-03-31");
        let bare_date = parse(r#"{ id = "CVE-3", expires = 2026-03-31 }"#).unwrap();
        assert_eq!(bare_date.expires.unwrap().to_string(), "2026-03-31");
        let err = |s| parse(s).unwrap_err().to_string();
        assert!(err(r#"{ reason = "x" }"#).contains("without `id`"));
        assert!(err(r#"{ id = "CVE-4", until = "2026-01-01" }"#).contains("unknown key `until`"));
        assert!(err(r#"{ id = "CVE-4", expires = "31.03.2026" }"#).contains("YYYY-MM-DD"));
        assert!(err(r#"{ id = "CVE-4", reason = " " }"#).contains("`reason` is empty"));
        assert!(err("42").contains("is not an ID"));
        assert!(err(r#""CVE 5""#).contains("not a vulnerability ID"));
    }
}
