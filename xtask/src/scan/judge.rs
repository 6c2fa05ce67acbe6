//! Judging one image's Trivy report against its variant's policy, pure: a report that saw
//! nothing is refused; every vulnerability gets a verdict (`fail_on`, `ignore_unfixed`,
//! `scan.ignore` entries and their expiry dates); every secret fails; every ignore entry is
//! accounted for.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::locate::{Locator, Place};
use super::trivy::{TrivyReport, TrivyVulnerability};
use crate::config::{Date, Ignore, Scan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Trivy's severity names; anything else counts as UNKNOWN.
    pub fn parse(s: &str) -> Severity {
        match s.to_ascii_uppercase().as_str() {
            "LOW" => Severity::Low,
            "MEDIUM" => Severity::Medium,
            "HIGH" => Severity::High,
            "CRITICAL" => Severity::Critical,
            _ => Severity::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// Highest first, the order of the summary's columns.
    pub const DESCENDING: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Unknown,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Its severity is in `fail_on` and nothing ignores it.
    Fail,
    /// Its severity is not in `fail_on`.
    BelowThreshold,
    /// No fix exists and `ignore_unfixed` is set.
    IgnoredUnfixed,
    /// Listed in `scan.ignore` (and not expired).
    Ignored,
}

impl Verdict {
    /// Ignored by the policy: reported, but not a SARIF result and never failing.
    pub fn ignored(self) -> bool {
        matches!(self, Verdict::Ignored | Verdict::IgnoredUnfixed)
    }
}

/// A place in the repository, relative to its root (`Dockerfile.cpu`, line 24).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    /// `base image`, `install line`, `lockfile`, `instruction`, `stage`.
    pub why: String,
    /// False when the file is outside the repository (then `file` is absolute).
    pub in_repo: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: String,
    pub package: String,
    pub installed: String,
    /// Empty when no fixed version is known.
    pub fixed: String,
    pub status: String,
    pub severity: Severity,
    pub target: String,
    /// Where in the image a language package was found (its `METADATA` file, …).
    pub path: String,
    /// Trivy's result class and type, e.g. `os-pkgs` / `debian`, `lang-pkgs` / `python-pkg`.
    pub class: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub url: String,
    pub unfixed: bool,
    pub verdict: Verdict,
    /// The `scan.ignore` entry listing it expired on this day: it is judged as not listed.
    pub ignore_expired: Option<Date>,
    /// The layer the package is in (diff ID) and the history entry that made it.
    pub layer: String,
    pub created_by: Option<String>,
    pub location: Location,
    /// Not in the baseline (None without `--baseline`).
    pub new: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Secret {
    /// Trivy's rule, e.g. `private-key`.
    pub rule: String,
    pub category: String,
    pub severity: Severity,
    pub title: String,
    /// The file in the image.
    pub file: String,
    pub line: usize,
    pub layer: String,
    pub created_by: Option<String>,
    pub location: Location,
    pub new: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IgnoreStatus {
    /// It matched findings, which are ignored.
    Applied,
    /// Its date has passed: the findings it lists are judged again.
    Expired,
    /// The scan found nothing it lists: stale.
    Unused,
}

/// A `scan.ignore` entry and what it did in this scan.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoreUse {
    pub id: String,
    pub reason: Option<String>,
    pub expires: Option<Date>,
    pub status: IgnoreStatus,
    /// Findings with this ID.
    pub findings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub fail_on: Vec<String>,
    pub ignore_unfixed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantScan {
    pub variant: String,
    pub image: String,
    /// The image ID scanned (the tag may move while a scan runs; the ID does not).
    pub image_id: String,
    /// `trivy`, `trivy --input FILE`, or `report FILE` for --from-report.
    pub source: String,
    /// Trivy's `ArtifactName` and `ArtifactType`.
    pub artifact: String,
    pub artifact_type: String,
    /// The version of Trivy that made the report, when it says.
    pub trivy_version: Option<String>,
    /// `debian 13.8`.
    pub os: String,
    /// Trivy says the OS release is past its end of life: no more fixes will come.
    pub os_end_of_life: bool,
    /// Packages Trivy found (OS and language), the proof it saw something.
    pub packages: usize,
    pub policy: Policy,
    /// Every finding, by severity.
    pub counts: BTreeMap<Severity, usize>,
    pub failing: usize,
    pub ignored: usize,
    /// Whether the gate passed: no failing finding and no secret (with `--fail-on new`: none
    /// that is new).
    pub passed: bool,
    /// Failing findings first, then by severity (highest first) and ID.
    pub findings: Vec<Finding>,
    pub secrets: Vec<Secret>,
    pub ignores: Vec<IgnoreUse>,
    /// With `--baseline`: what was there before and is not any more.
    pub fixed_since_baseline: Option<Vec<Gone>>,
}

/// A finding of the baseline the scan no longer has (a secret: `secret` class, its rule as ID
/// and its file as package).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Gone {
    pub id: String,
    pub package: String,
    pub class: String,
    pub installed: String,
}

/// Refuses a report in which Trivy saw nothing to scan: no OS, an OS without a scanner, or no
/// packages at all. Such a "clean" report would pass any policy.
pub fn check_saw_something(what: &str, trivy: &TrivyReport) -> Result<usize> {
    let cause = "the wrong image, or one Trivy cannot read";
    let Some(os) = trivy.os_name() else {
        bail!(
            "Trivy found nothing to scan in {what}: it detected no operating system ({cause}, \
             e.g. `FROM scratch` or an image without a package database); scan the image the \
             variant builds"
        );
    };
    let results = trivy.results.iter().flatten();
    let os_results: Vec<_> = results.clone().filter(|r| r.class == "os-pkgs").collect();
    if os_results.is_empty() {
        bail!(
            "Trivy found nothing to scan in {what}: it detected {os}, an OS it has no \
             vulnerability data for ({cause})"
        );
    }
    let listed: usize = results
        .clone()
        .filter(|r| matches!(r.class.as_str(), "os-pkgs" | "lang-pkgs"))
        .filter_map(|r| r.packages.as_ref().map(Vec::len))
        .sum();
    let vulnerable = trivy.vulnerabilities().count();
    let os_packages: usize = os_results
        .iter()
        .map(|r| {
            r.packages.as_ref().map_or(0, Vec::len) + r.vulnerabilities.as_ref().map_or(0, Vec::len)
        })
        .sum();
    if os_packages == 0 {
        bail!(
            "Trivy found nothing to scan in {what}: it detected {os} but no OS packages ({cause}: \
             its package database, e.g. /var/lib/dpkg/status, is missing; a report made \
             elsewhere needs `--list-all-pkgs`)"
        );
    }
    Ok(listed.max(vulnerable))
}

/// No fix to install: no fixed version, or a status other than `fixed` (reports of Trivy
/// before 0.37 have no status; the fixed version alone decides there).
pub fn is_unfixed(v: &TrivyVulnerability) -> bool {
    v.fixed.trim().is_empty() || (!v.status.is_empty() && v.status != "fixed")
}

/// The verdict on one vulnerability, and the expiry date of an ignore entry that no longer
/// applies to it.
pub fn verdict(policy: &Scan, today: Date, v: &TrivyVulnerability) -> (Verdict, Option<Date>) {
    let severity = Severity::parse(&v.severity);
    let listed = policy
        .ignore
        .iter()
        .find(|i| i.id.eq_ignore_ascii_case(&v.id));
    let expired = listed.filter(|i| i.expired(today)).and_then(|i| i.expires);
    let verdict = if listed.is_some() && expired.is_none() {
        Verdict::Ignored
    } else if !policy.fail_on.iter().any(|s| s == severity.as_str()) {
        Verdict::BelowThreshold
    } else if policy.ignore_unfixed && is_unfixed(v) {
        Verdict::IgnoredUnfixed
    } else {
        Verdict::Fail
    };
    (verdict, expired)
}

/// What the judge needs to know about the scan besides the report.
pub struct Subject<'a> {
    pub variant: &'a str,
    pub image: &'a str,
    pub source: String,
    pub policy: &'a Scan,
    pub today: Date,
    pub locator: &'a Locator<'a>,
    /// Turns a place into a location relative to the repository.
    pub relative: &'a dyn Fn(&Place) -> Location,
}

pub fn judge(subject: &Subject, trivy: &TrivyReport, packages: usize) -> VariantScan {
    let locate = |place: Place| (subject.relative)(&place);
    let mut findings: Vec<Finding> = trivy
        .vulnerabilities()
        .map(|(result, v)| {
            let package = if v.pkg_name.is_empty() {
                v.pkg_id.clone()
            } else {
                v.pkg_name.clone()
            };
            let (verdict, ignore_expired) = verdict(subject.policy, subject.today, v);
            let place = if result.class == "os-pkgs" {
                let source = trivy.source_package(&v.pkg_id).unwrap_or("");
                subject
                    .locator
                    .os_package(&v.layer.diff_id, &[&package, source])
            } else if result.kind.starts_with("python") || result.kind == "pip" {
                subject.locator.python_package(&v.layer.diff_id, &package)
            } else {
                subject.locator.layer(&v.layer.diff_id)
            };
            Finding {
                id: v.id.clone(),
                installed: v.installed.clone(),
                fixed: v.fixed.clone(),
                status: v.status.clone(),
                severity: Severity::parse(&v.severity),
                target: result.target.clone(),
                path: v.pkg_path.clone(),
                class: result.class.clone(),
                kind: result.kind.clone(),
                title: v.title.clone(),
                url: v.url.clone(),
                unfixed: is_unfixed(v),
                verdict,
                ignore_expired,
                layer: v.layer.diff_id.clone(),
                created_by: trivy.created_by(&v.layer),
                location: locate(place),
                new: None,
                package,
            }
        })
        .collect();
    findings.sort_by(|a, b| {
        (b.verdict == Verdict::Fail)
            .cmp(&(a.verdict == Verdict::Fail))
            .then(b.severity.cmp(&a.severity))
            .then(a.id.cmp(&b.id))
            .then(a.package.cmp(&b.package))
    });
    let secrets: Vec<Secret> = trivy
        .secrets()
        .map(|(result, s)| Secret {
            rule: s.rule_id.clone(),
            category: s.category.clone(),
            severity: Severity::parse(&s.severity),
            title: s.title.clone(),
            file: result.target.clone(),
            line: s.start_line,
            layer: s.layer.diff_id.clone(),
            created_by: trivy.created_by(&s.layer),
            location: locate(subject.locator.layer(&s.layer.diff_id)),
            new: None,
        })
        .collect();

    let mut counts: BTreeMap<Severity, usize> =
        Severity::DESCENDING.iter().map(|s| (*s, 0)).collect();
    for f in &findings {
        *counts.entry(f.severity).or_default() += 1;
    }
    let failing = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Fail)
        .count();
    let ignored = findings.iter().filter(|f| f.verdict.ignored()).count();
    let ignores = subject
        .policy
        .ignore
        .iter()
        .map(|i| ignore_use(i, subject.today, &findings))
        .collect();
    VariantScan {
        variant: subject.variant.to_string(),
        image: subject.image.to_string(),
        image_id: trivy.metadata.image_id.clone(),
        source: subject.source.clone(),
        artifact: trivy.artifact_name.clone(),
        artifact_type: trivy.artifact_type.clone(),
        trivy_version: trivy
            .trivy
            .as_ref()
            .map(|t| t.version.clone())
            .filter(|v| !v.is_empty()),
        os: trivy.os_name().unwrap_or_default(),
        os_end_of_life: trivy.metadata.os.as_ref().is_some_and(|o| o.eosl),
        packages,
        policy: Policy {
            fail_on: subject.policy.fail_on.clone(),
            ignore_unfixed: subject.policy.ignore_unfixed,
        },
        counts,
        failing,
        ignored,
        passed: failing == 0 && secrets.is_empty(),
        findings,
        secrets,
        ignores,
        fixed_since_baseline: None,
    }
}

fn ignore_use(ignore: &Ignore, today: Date, findings: &[Finding]) -> IgnoreUse {
    let matched = findings
        .iter()
        .filter(|f| f.id.eq_ignore_ascii_case(&ignore.id))
        .count();
    IgnoreUse {
        id: ignore.id.clone(),
        reason: ignore.reason.clone(),
        expires: ignore.expires,
        status: if ignore.expired(today) {
            IgnoreStatus::Expired
        } else if matched == 0 {
            IgnoreStatus::Unused
        } else {
            IgnoreStatus::Applied
        },
        findings: matched,
    }
}

/// Which findings and secrets make the scan fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Every finding the policy fails, and every secret.
    All,
    /// Only those not in the `--baseline` report (a pull request's gate).
    New,
}

impl VariantScan {
    /// The findings and secrets that fail the gate.
    pub fn gate(&self, mode: FailOn) -> (Vec<&Finding>, Vec<&Secret>) {
        let counts = |new: Option<bool>| mode == FailOn::All || new != Some(false);
        (
            self.findings
                .iter()
                .filter(|f| f.verdict == Verdict::Fail && counts(f.new))
                .collect(),
            self.secrets.iter().filter(|s| counts(s.new)).collect(),
        )
    }

    pub fn set_passed(&mut self, mode: FailOn) {
        let (findings, secrets) = self.gate(mode);
        self.passed = findings.is_empty() && secrets.is_empty();
    }
}

/// How many failing IDs the error message names before "and N more".
const NAMED_IN_ERROR: usize = 10;

/// The error of a failed scan, naming what failed in each variant.
pub fn failure_message(scans: &[VariantScan], mode: FailOn) -> Option<String> {
    let parts: Vec<String> = scans
        .iter()
        .filter(|s| !s.passed)
        .map(|s| {
            let (findings, secrets) = s.gate(mode);
            let mut ids: Vec<String> = Vec::new();
            for f in &findings {
                let id = match f.ignore_expired {
                    Some(date) => format!("{} (its scan.ignore entry expired on {date})", f.id),
                    None => f.id.clone(),
                };
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            let more = ids.len().saturating_sub(NAMED_IN_ERROR);
            ids.truncate(NAMED_IN_ERROR);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let new = if mode == FailOn::New { "new " } else { "" };
            let mut what = Vec::new();
            if !findings.is_empty() {
                what.push(format!(
                    "{} {new}failing finding(s) ({}{more})",
                    findings.len(),
                    ids.join(", ")
                ));
            }
            for secret in &secrets {
                what.push(format!(
                    "a {new}secret ({}) in {}, layer {}{}",
                    secret.rule,
                    secret.file,
                    short_layer(&secret.layer),
                    secret
                        .created_by
                        .as_deref()
                        .map(|c| format!(" (`{}`)", short_command(c)))
                        .unwrap_or_default()
                ));
            }
            format!("{}: {}", s.variant, what.join(", "))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let secrets = scans.iter().any(|s| !s.gate(mode).1.is_empty());
    let fix = if secrets {
        "remove secrets from the image (a later layer that deletes a file does not), rebuild on \
         updated packages, or accept a finding with `scan.ignore` in images.toml"
    } else {
        "fix them (rebuild on updated packages) or accept one with `scan.ignore` in images.toml"
    };
    Some(format!("scan failed: {}; {fix}", parts.join("; ")))
}

/// `sha256:cb6853fbb591`.
pub fn short_layer(diff_id: &str) -> String {
    let (algo, hex) = diff_id.split_once(':').unwrap_or(("", diff_id));
    let hex = crate::util::short_id(hex);
    if algo.is_empty() {
        hex
    } else {
        format!("{algo}:{hex}")
    }
}

/// A history entry without BuildKit's marker, cut to a readable length.
pub fn short_command(created_by: &str) -> String {
    let c = created_by.trim();
    let c = c.strip_suffix("# buildkit").unwrap_or(c).trim();
    let c: String = c.split_whitespace().collect::<Vec<_>>().join(" ");
    if c.chars().count() > 80 {
        format!("{}…", c.chars().take(79).collect::<String>())
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vuln(id: &str, severity: &str, fixed: &str, status: &str) -> TrivyVulnerability {
        TrivyVulnerability {
            id: id.into(),
            pkg_name: "libfoo".into(),
            installed: "1.0".into(),
            fixed: fixed.into(),
            status: status.into(),
            severity: severity.into(),
            ..TrivyVulnerability::default()
        }
    }

    fn date(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn policy(fail_on: &[&str], ignore_unfixed: bool, ignore: &[(&str, Option<&str>)]) -> Scan {
        Scan {
            fail_on: fail_on.iter().map(|s| s.to_string()).collect(),
            ignore_unfixed,
            ignore: ignore
                .iter()
                .map(|(id, expires)| Ignore {
                    id: id.to_string(),
                    reason: Some("why".into()),
                    expires: expires.map(date),
                })
                .collect(),
            lockfiles: vec![],
        }
    }

    #[test]
    fn unfixed_means_no_fixed_version_or_a_status_other_than_fixed() {
        assert!(!is_unfixed(&vuln("A", "HIGH", "1.1", "fixed")));
        assert!(!is_unfixed(&vuln("A", "HIGH", "1.1", "")));
        assert!(is_unfixed(&vuln("A", "HIGH", "", "affected")));
        assert!(is_unfixed(&vuln("A", "HIGH", "", "")));
        assert!(is_unfixed(&vuln("A", "HIGH", "1.1", "will_not_fix")));
        assert!(is_unfixed(&vuln("A", "HIGH", "", "end_of_life")));
    }

    #[test]
    fn verdicts_follow_the_policy_and_expiry() {
        let today = date("2026-06-01");
        let p = policy(
            &["CRITICAL", "HIGH"],
            true,
            &[
                ("CVE-9", None),
                ("CVE-8", Some("2026-06-01")),
                ("CVE-7", Some("2026-06-02")),
            ],
        );
        let v = |id, sev, fixed, status| verdict(&p, today, &vuln(id, sev, fixed, status));
        assert_eq!(v("A", "HIGH", "1.1", "fixed"), (Verdict::Fail, None));
        assert_eq!(
            v("A", "CRITICAL", "", "affected").0,
            Verdict::IgnoredUnfixed
        );
        assert_eq!(v("A", "LOW", "1.1", "fixed").0, Verdict::BelowThreshold);
        assert_eq!(v("cve-9", "CRITICAL", "1.1", "fixed").0, Verdict::Ignored);
        // Expired today: judged as if not listed, and the date is kept for the report.
        assert_eq!(
            v("CVE-8", "CRITICAL", "1.1", "fixed"),
            (Verdict::Fail, Some(date("2026-06-01")))
        );
        assert_eq!(
            v("CVE-7", "CRITICAL", "1.1", "fixed"),
            (Verdict::Ignored, None)
        );
        let strict = policy(&["CRITICAL"], false, &[]);
        assert_eq!(
            verdict(&strict, today, &vuln("A", "CRITICAL", "", "affected")).0,
            Verdict::Fail
        );
    }

    #[test]
    fn ignore_entries_are_accounted_for() {
        let today = date("2026-06-01");
        let finding = |id: &str| Finding {
            id: id.into(),
            package: "p".into(),
            installed: String::new(),
            fixed: String::new(),
            status: String::new(),
            severity: Severity::High,
            target: String::new(),
            path: String::new(),
            class: String::new(),
            kind: String::new(),
            title: String::new(),
            url: String::new(),
            unfixed: false,
            verdict: Verdict::Fail,
            ignore_expired: None,
            layer: String::new(),
            created_by: None,
            location: Location {
                file: "Dockerfile".into(),
                line: 1,
                why: "base image".into(),
                in_repo: true,
            },
            new: None,
        };
        let findings = vec![finding("CVE-1"), finding("CVE-1"), finding("CVE-2")];
        let ignore = |id: &str, expires: Option<&str>| Ignore {
            id: id.into(),
            reason: None,
            expires: expires.map(date),
        };
        let applied = ignore_use(&ignore("cve-1", None), today, &findings);
        assert_eq!(
            (applied.status, applied.findings),
            (IgnoreStatus::Applied, 2)
        );
        let expired = ignore_use(&ignore("CVE-2", Some("2000-01-01")), today, &findings);
        assert_eq!(
            (expired.status, expired.findings),
            (IgnoreStatus::Expired, 1)
        );
        let unused = ignore_use(&ignore("CVE-404", None), today, &findings);
        assert_eq!(unused.status, IgnoreStatus::Unused);
    }

    #[test]
    fn reports_that_saw_nothing_are_refused() {
        let report = |json: &str| super::super::trivy::parse("r", json).unwrap();
        let err = |json: &str| {
            check_saw_something("img", &report(json))
                .unwrap_err()
                .to_string()
        };
        assert!(err(r#"{"SchemaVersion":2}"#).contains("detected no operating system"));
        assert!(err(
            r#"{"SchemaVersion":2,"Metadata":{"OS":{"Family":"plan9","Name":"4"}},"Results":[]}"#
        )
        .contains("plan9 4, an OS it has no vulnerability data for"));
        assert!(err(
            r#"{"SchemaVersion":2,"Metadata":{"OS":{"Family":"debian","Name":"13.8"}},
                "Results":[{"Target":"t","Class":"os-pkgs","Type":"debian"}]}"#
        )
        .contains("no OS packages"));
        let ok = report(
            r#"{"SchemaVersion":2,"Metadata":{"OS":{"Family":"debian","Name":"13.8"}},
                "Results":[{"Class":"os-pkgs","Packages":[{"ID":"a@1"},{"ID":"b@1"}]},
                           {"Class":"lang-pkgs","Packages":[{"Name":"c"}]}]}"#,
        );
        assert_eq!(check_saw_something("img", &ok).unwrap(), 3);
    }

    #[test]
    fn short_forms() {
        assert_eq!(
            short_layer("sha256:cb6853fbb591a8da5e25"),
            "sha256:cb6853fbb591"
        );
        assert_eq!(
            short_command("RUN /bin/sh -c mkdir  -p /srv # buildkit"),
            "RUN /bin/sh -c mkdir -p /srv"
        );
    }
}
