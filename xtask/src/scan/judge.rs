//! Judging one image's Trivy report against its variant's policy, pure: a report that saw
//! nothing is refused; every vulnerability gets a verdict (`fail_on`, `ignore_unfixed`,
//! `scan.ignore` entries and their expiry dates); every secret fails; every ignore entry is
//! accounted for; and the gate decides, after the baseline, whether the variant passed.

use anyhow::{bail, Result};
use camino::Utf8Path;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::locate::{Locator, Place};
use super::trivy::{TrivyReport, TrivyResult, TrivySecret, TrivyVulnerability};
use crate::config::{Date, Ignore, Scan, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Verdict {
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
    pub(crate) fn ignored(self) -> bool {
        matches!(self, Verdict::Ignored | Verdict::IgnoredUnfixed)
    }
}

/// A place in the repository, relative to its root (`Dockerfile.cpu`, line 24).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Location {
    pub(crate) file: String,
    pub(crate) line: usize,
    /// `base image`, `install line`, `lockfile`, `instruction`, `stage`.
    pub(crate) why: String,
    /// False when the file is outside the repository (then `file` is absolute).
    pub(crate) in_repo: bool,
}

impl Location {
    fn of(place: &Place, root: &Utf8Path) -> Location {
        let relative = crate::sarif::relative_to(root, &place.file);
        Location {
            in_repo: relative.is_some(),
            file: relative.unwrap_or_else(|| place.file.to_string()),
            line: place.line,
            why: place.why.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    pub(crate) id: String,
    pub(crate) package: String,
    pub(crate) installed: String,
    /// Empty when no fixed version is known.
    pub(crate) fixed: String,
    pub(crate) status: String,
    pub(crate) severity: Severity,
    pub(crate) target: String,
    /// Where in the image a language package was found (its `METADATA` file, …).
    pub(crate) path: String,
    /// Trivy's result class and type, e.g. `os-pkgs` / `debian`, `lang-pkgs` / `python-pkg`.
    pub(crate) class: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) title: String,
    pub(crate) url: String,
    pub(crate) unfixed: bool,
    pub(crate) verdict: Verdict,
    /// The `scan.ignore` entry listing it expired on this day: it is judged as not listed.
    pub(crate) ignore_expired: Option<Date>,
    /// The layer the package is in (diff ID) and the history entry that made it.
    pub(crate) layer: String,
    pub(crate) created_by: Option<String>,
    pub(crate) location: Location,
    /// Not in the baseline (None without `--baseline`).
    pub(crate) new: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Secret {
    /// Trivy's rule, e.g. `private-key`.
    pub(crate) rule: String,
    pub(crate) category: String,
    pub(crate) severity: Severity,
    pub(crate) title: String,
    /// The file in the image.
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) layer: String,
    pub(crate) created_by: Option<String>,
    pub(crate) location: Location,
    pub(crate) new: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum IgnoreStatus {
    /// It matched findings, which are ignored.
    Applied,
    /// Its date has passed: the findings it lists are judged again.
    Expired,
    /// The scan found nothing it lists: stale.
    Unused,
}

/// A `scan.ignore` entry and what it did in this scan.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IgnoreUse {
    pub(crate) id: String,
    pub(crate) reason: Option<String>,
    pub(crate) expires: Option<Date>,
    pub(crate) status: IgnoreStatus,
    /// Findings with this ID.
    pub(crate) findings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Policy {
    pub(crate) fail_on: Vec<Severity>,
    pub(crate) ignore_unfixed: bool,
}

impl Policy {
    /// `CRITICAL,HIGH`.
    pub(crate) fn fail_on_names(&self, separator: &str) -> String {
        let names: Vec<&str> = self.fail_on.iter().map(|s| s.as_str()).collect();
        names.join(separator)
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct VariantScan {
    pub(crate) variant: String,
    pub(crate) image: String,
    /// The image ID scanned (the tag may move while a scan runs; the ID does not).
    pub(crate) image_id: String,
    /// `trivy`, `trivy --input FILE`, or `report FILE` for --from-report.
    pub(crate) source: String,
    /// Trivy's `ArtifactName` and `ArtifactType`.
    pub(crate) artifact: String,
    pub(crate) artifact_type: String,
    /// The version of Trivy that made the report, when it says.
    pub(crate) trivy_version: Option<String>,
    /// `debian 13.8`; empty when Trivy detected no OS.
    pub(crate) os: String,
    /// Trivy says the OS release is past its end of life: no more fixes will come.
    pub(crate) os_end_of_life: bool,
    /// Packages Trivy found (OS and language), the proof it saw something.
    pub(crate) packages: usize,
    pub(crate) policy: Policy,
    /// Every finding, by severity.
    pub(crate) counts: BTreeMap<Severity, usize>,
    pub(crate) failing: usize,
    pub(crate) ignored: usize,
    /// Whether the gate passed: no failing finding and no secret (with `--fail-on new`: none
    /// that is new).
    pub(crate) passed: bool,
    /// Failing findings first, then by severity (highest first) and ID.
    pub(crate) findings: Vec<Finding>,
    pub(crate) secrets: Vec<Secret>,
    pub(crate) ignores: Vec<IgnoreUse>,
    /// With `--baseline`: what was there before and is not any more.
    pub(crate) fixed_since_baseline: Option<Vec<Gone>>,
}

/// A finding of the baseline the scan no longer has (a secret: `secret` class, its rule as ID
/// and its file as package).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Gone {
    pub(crate) id: String,
    pub(crate) package: String,
    pub(crate) class: String,
    pub(crate) installed: String,
}

/// Refuses a report in which Trivy saw nothing: no OS packages, no language packages and no
/// finding, which would pass any policy. Returns the packages it saw.
pub(crate) fn check_saw_something(what: &str, trivy: &TrivyReport) -> Result<usize> {
    let results = || trivy.results.iter().flatten();
    let listed = |class: &str| -> usize {
        results()
            .filter(|r| r.class == class)
            .map(|r| r.packages.as_ref().map_or(0, Vec::len))
            .sum()
    };
    let packages = listed("os-pkgs") + listed("lang-pkgs");
    let findings = trivy.vulnerabilities().count() + trivy.secrets().count();
    if packages > 0 || findings > 0 {
        return Ok(packages.max(trivy.vulnerabilities().count()));
    }
    let cause = "the wrong image, or one Trivy cannot read";
    let seen = match trivy.os_name() {
        None => "no operating system,".to_string(),
        Some(os) if !results().any(|r| r.class == "os-pkgs") => {
            format!("{os}, an OS it has no vulnerability data for,")
        }
        Some(os) => format!(
            "{os} but no OS packages (its package database, e.g. /var/lib/dpkg/status, is \
             missing; a report made elsewhere needs `--list-all-pkgs`),"
        ),
    };
    bail!(
        "Trivy found nothing to scan in {what}: it detected {seen} no language packages and no \
         findings ({cause}, e.g. `FROM scratch` without a package database); scan the image \
         the variant builds"
    )
}

/// No fix to install: no fixed version, or a status other than `fixed` (reports of Trivy
/// before 0.37 have no status; the fixed version alone decides there).
pub(crate) fn is_unfixed(v: &TrivyVulnerability) -> bool {
    v.fixed.trim().is_empty() || (!v.status.is_empty() && v.status != "fixed")
}

/// The verdict on one vulnerability, and the expiry date of an ignore entry that no longer
/// applies to it.
pub(crate) fn verdict(
    policy: &Scan,
    today: Date,
    v: &TrivyVulnerability,
) -> (Verdict, Option<Date>) {
    let listed = policy
        .ignore
        .iter()
        .find(|i| i.id.eq_ignore_ascii_case(&v.id));
    let expired = listed.filter(|i| i.expired(today)).and_then(|i| i.expires);
    let verdict = if listed.is_some() && expired.is_none() {
        Verdict::Ignored
    } else if !policy.fail_on.contains(&severity(&v.severity)) {
        Verdict::BelowThreshold
    } else if policy.ignore_unfixed && is_unfixed(v) {
        Verdict::IgnoredUnfixed
    } else {
        Verdict::Fail
    };
    (verdict, expired)
}

/// Trivy's severity names; anything else counts as UNKNOWN.
fn severity(name: &str) -> Severity {
    Severity::named(name).unwrap_or(Severity::Unknown)
}

/// What the judge needs to know about the scan besides the report.
pub(crate) struct Subject<'a> {
    pub(crate) variant: &'a str,
    pub(crate) image: String,
    pub(crate) source: String,
    pub(crate) policy: &'a Scan,
    pub(crate) today: Date,
    pub(crate) locator: &'a Locator<'a>,
    /// The repository root, which locations are relative to.
    pub(crate) root: &'a Utf8Path,
}

/// Every vulnerability (failing first) and secret of a report, judged and located.
pub(crate) struct Judged {
    pub(crate) findings: Vec<Finding>,
    pub(crate) secrets: Vec<Secret>,
}

pub(crate) fn judge(subject: &Subject, trivy: &TrivyReport) -> Judged {
    let mut findings: Vec<Finding> = trivy
        .vulnerabilities()
        .map(|(result, v)| finding(subject, trivy, result, v))
        .collect();
    findings.sort_by(|a, b| {
        (b.verdict == Verdict::Fail)
            .cmp(&(a.verdict == Verdict::Fail))
            .then(b.severity.cmp(&a.severity))
            .then(a.id.cmp(&b.id))
            .then(a.package.cmp(&b.package))
    });
    let secrets = trivy
        .secrets()
        .map(|(result, s)| secret(subject, trivy, result, s))
        .collect();
    Judged { findings, secrets }
}

fn finding(
    subject: &Subject,
    trivy: &TrivyReport,
    result: &TrivyResult,
    v: &TrivyVulnerability,
) -> Finding {
    let package = if v.pkg_name.is_empty() {
        &v.pkg_id
    } else {
        &v.pkg_name
    };
    let (verdict, ignore_expired) = verdict(subject.policy, subject.today, v);
    let place = place(subject.locator, trivy, result, v, package);
    Finding {
        id: v.id.clone(),
        package: package.clone(),
        installed: v.installed.clone(),
        fixed: v.fixed.clone(),
        status: v.status.clone(),
        severity: severity(&v.severity),
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
        location: Location::of(&place, subject.root),
        new: None,
    }
}

/// Where a vulnerable package came from: an OS package's install line (or the base image's
/// FROM), a Python package's pin, else the instruction that made its layer.
fn place(
    locator: &Locator,
    trivy: &TrivyReport,
    result: &TrivyResult,
    v: &TrivyVulnerability,
    package: &str,
) -> Place {
    let layer = &v.layer.diff_id;
    if result.class == "os-pkgs" {
        let source = trivy.source_package(&v.pkg_id).unwrap_or("");
        locator.os_package(layer, &[package, source])
    } else if result.kind.starts_with("python") || result.kind == "pip" {
        locator.python_package(layer, package)
    } else {
        locator.layer(layer)
    }
}

fn secret(subject: &Subject, trivy: &TrivyReport, result: &TrivyResult, s: &TrivySecret) -> Secret {
    Secret {
        rule: s.rule_id.clone(),
        category: s.category.clone(),
        severity: severity(&s.severity),
        title: s.title.clone(),
        file: result.target.clone(),
        line: s.start_line,
        layer: s.layer.diff_id.clone(),
        created_by: trivy.created_by(&s.layer),
        location: Location::of(&subject.locator.layer(&s.layer.diff_id), subject.root),
        new: None,
    }
}

/// The variant's scan, and the one place it passes or fails: after the baseline marked what
/// is new (`gone`: what the baseline had and this scan has not).
pub(crate) fn variant_scan(
    subject: &Subject,
    trivy: &TrivyReport,
    packages: usize,
    judged: Judged,
    gone: Option<Vec<Gone>>,
    mode: FailOn,
) -> VariantScan {
    let Judged { findings, secrets } = judged;
    let (gating_findings, gating_secrets) = gate(&findings, &secrets, mode);
    let passed = gating_findings.is_empty() && gating_secrets.is_empty();
    let mut counts: BTreeMap<Severity, usize> =
        Severity::DESCENDING.iter().map(|s| (*s, 0)).collect();
    for f in &findings {
        *counts.entry(f.severity).or_default() += 1;
    }
    let ignores = subject
        .policy
        .ignore
        .iter()
        .map(|i| ignore_use(i, subject.today, &findings))
        .collect();
    VariantScan {
        variant: subject.variant.to_string(),
        image: subject.image.clone(),
        image_id: trivy.metadata.image_id.clone(),
        source: subject.source.clone(),
        artifact: trivy.artifact_name.clone(),
        artifact_type: trivy.artifact_type.clone(),
        trivy_version: trivy.version(),
        os: trivy.os_name().unwrap_or_default(),
        os_end_of_life: trivy.metadata.os.as_ref().is_some_and(|o| o.eosl),
        packages,
        policy: Policy {
            fail_on: subject.policy.fail_on.clone(),
            ignore_unfixed: subject.policy.ignore_unfixed,
        },
        counts,
        failing: findings
            .iter()
            .filter(|f| f.verdict == Verdict::Fail)
            .count(),
        ignored: findings.iter().filter(|f| f.verdict.ignored()).count(),
        passed,
        findings,
        secrets,
        ignores,
        fixed_since_baseline: gone,
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
pub(crate) enum FailOn {
    /// Every finding the policy fails, and every secret.
    All,
    /// Only those not in the `--baseline` report (a pull request's gate).
    New,
}

/// The findings and secrets that fail the gate: failing verdicts and secrets, only the new
/// ones with `--fail-on new`.
fn gate<'a>(
    findings: &'a [Finding],
    secrets: &'a [Secret],
    mode: FailOn,
) -> (Vec<&'a Finding>, Vec<&'a Secret>) {
    let counts = |new: Option<bool>| mode == FailOn::All || new != Some(false);
    (
        findings
            .iter()
            .filter(|f| f.verdict == Verdict::Fail && counts(f.new))
            .collect(),
        secrets.iter().filter(|s| counts(s.new)).collect(),
    )
}

/// How many failing IDs the error message names before "and N more".
const NAMED_IN_ERROR: usize = 10;

/// The error of a failed scan, naming what failed in each variant that did not pass.
pub(crate) fn failure_message(scans: &[VariantScan], mode: FailOn) -> Option<String> {
    let parts: Vec<String> = scans
        .iter()
        .filter(|s| !s.passed)
        .map(|s| format!("{}: {}", s.variant, what_failed(s, mode).join(", ")))
        .collect();
    if parts.is_empty() {
        return None;
    }
    let secrets = scans
        .iter()
        .any(|s| !gate(&s.findings, &s.secrets, mode).1.is_empty());
    let fix = if secrets {
        "remove secrets from the image (a later layer that deletes a file does not), rebuild on \
         updated packages, or accept a finding with `scan.ignore` in images.toml"
    } else {
        "fix them (rebuild on updated packages) or accept one with `scan.ignore` in images.toml"
    };
    Some(format!("scan failed: {}; {fix}", parts.join("; ")))
}

/// `2 failing finding(s) (CVE-1, CVE-2)`, then each secret with its file and layer.
fn what_failed(s: &VariantScan, mode: FailOn) -> Vec<String> {
    let (findings, secrets) = gate(&s.findings, &s.secrets, mode);
    let new = if mode == FailOn::New { "new " } else { "" };
    let mut what = Vec::new();
    if !findings.is_empty() {
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
        let more = match ids.len().saturating_sub(NAMED_IN_ERROR) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        ids.truncate(NAMED_IN_ERROR);
        what.push(format!(
            "{} {new}failing finding(s) ({}{more})",
            findings.len(),
            ids.join(", ")
        ));
    }
    for secret in &secrets {
        let made_by = secret.created_by.as_deref().map(short_command);
        what.push(format!(
            "a {new}secret ({}) in {}, layer {}{}",
            secret.rule,
            secret.file,
            short_layer(&secret.layer),
            made_by.map(|c| format!(" (`{c}`)")).unwrap_or_default()
        ));
    }
    what
}

/// `sha256:cb6853fbb591`.
pub(crate) fn short_layer(diff_id: &str) -> String {
    let (algo, hex) = diff_id.split_once(':').unwrap_or(("", diff_id));
    let hex = crate::util::short_id(hex);
    if algo.is_empty() {
        hex
    } else {
        format!("{algo}:{hex}")
    }
}

/// A history entry without BuildKit's marker, cut to a readable length.
pub(crate) fn short_command(created_by: &str) -> String {
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
            fail_on: fail_on
                .iter()
                .map(|s| Severity::named(s).unwrap())
                .collect(),
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
        // No OS, but Go modules with findings (a repository scan, a binary FROM scratch).
        let go = report(
            r#"{"SchemaVersion":2,"Results":[{"Class":"lang-pkgs","Type":"gomod",
                "Vulnerabilities":[{"VulnerabilityID":"CVE-1","PkgName":"example.com/a"},
                                   {"VulnerabilityID":"CVE-2","PkgName":"example.com/b"}]}]}"#,
        );
        assert_eq!(check_saw_something("repo", &go).unwrap(), 2);
        let listed = report(
            r#"{"SchemaVersion":2,"Results":[{"Class":"lang-pkgs","Packages":[{"Name":"c"}]}]}"#,
        );
        assert_eq!(check_saw_something("img", &listed).unwrap(), 1);
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
