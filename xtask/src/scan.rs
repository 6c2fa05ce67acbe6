//! `cargo xtask scan`: vulnerability scan of each variant's image with Trivy, judged against the
//! scan policy of images.toml (`scan.fail_on`, `scan.ignore_unfixed`, `scan.ignore`).
//!
//! Story: targets and Trivy's argv (pure) → run Trivy, or read a report it wrote elsewhere with
//! `--from-report` → judge every finding against the policy (pure) → render (report.rs).
//!
//! Trivy is asked for every severity and for unfixed vulnerabilities too, with `--exit-code 0`:
//! its exit status then means only "the tool could not run", and the policy is applied here, so
//! the report shows what was ignored and why instead of hiding it.
//!
//! Not run here: Trivy cannot be installed on the machine this was written on and its
//! vulnerability DB cannot be downloaded, so the `trivy image` step has never been executed.
//! The parser follows Trivy's documented JSON report (SchemaVersion 2) and is tested with
//! hand-written reports in `xtask/tests/fixtures/trivy/`.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::config::{Scan, Variant};
use crate::report::{self, Format, Section, Table};
use crate::util::{CheckFailed, Ctx, TempDir};

/// Version of our JSON report's shape.
const REPORT_SCHEMA: u32 = 1;
/// The only Trivy report schema understood (Trivy ≥ 0.20).
const TRIVY_SCHEMA: u64 = 2;
/// Where to learn how to install Trivy.
const INSTALL_DOCS: &str = "https://trivy.dev/latest/getting-started/installation/";
/// How many failing IDs the error message names before "and N more".
const NAMED_IN_ERROR: usize = 10;

#[derive(clap::Args)]
pub struct Args {
    /// Variants to scan (their images `<image>:<variant>` and their scan policies).
    variants: Vec<String>,
    /// Scan every variant of images.toml.
    #[arg(long, conflicts_with = "variants")]
    all: bool,
    /// Scan this local image instead of the variant's tag, with the variant's policy.
    #[arg(long, value_name = "REF", conflicts_with_all = ["all", "from_report"])]
    image: Option<String>,
    /// Judge an existing Trivy JSON report (`trivy image --format json`) instead of running
    /// Trivy, with the policy of the one variant named (or the only variant).
    #[arg(long, value_name = "FILE", conflicts_with = "all")]
    from_report: Option<Utf8PathBuf>,
    /// Write the JSON report to FILE (what `--format json` prints).
    #[arg(long, value_name = "FILE")]
    save: Option<Utf8PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

// ---------------------------------------------------------------------------------------------
// Trivy's JSON report (the fields used; everything else is ignored).

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrivyReport {
    #[serde(default)]
    pub artifact_name: String,
    #[serde(default)]
    pub artifact_type: String,
    #[serde(default)]
    pub results: Option<Vec<TrivyResult>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrivyResult {
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub class: String,
    #[serde(default, rename = "Type")]
    pub kind: String,
    #[serde(default)]
    pub vulnerabilities: Option<Vec<TrivyVulnerability>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TrivyVulnerability {
    #[serde(rename = "VulnerabilityID")]
    pub id: String,
    #[serde(rename = "PkgName", default)]
    pub pkg_name: String,
    #[serde(rename = "PkgID", default)]
    pub pkg_id: String,
    #[serde(rename = "InstalledVersion", default)]
    pub installed: String,
    #[serde(rename = "FixedVersion", default)]
    pub fixed: String,
    /// `fixed`, `affected`, `will_not_fix`, `fix_deferred`, `end_of_life`, … (Trivy ≥ 0.37).
    #[serde(rename = "Status", default)]
    pub status: String,
    #[serde(rename = "Severity", default)]
    pub severity: String,
    #[serde(rename = "Title", default)]
    pub title: String,
    #[serde(rename = "PrimaryURL", default)]
    pub url: String,
}

/// Parses a Trivy JSON report; `source` names it in errors.
pub fn parse_trivy(source: &str, text: &str) -> Result<TrivyReport> {
    let value: serde_json::Value = serde_json::from_str(text)
        .with_context(|| format!("{source} is not valid JSON (a truncated or partial report?)"))?;
    let schema = match &value {
        serde_json::Value::Object(map) => map.get("SchemaVersion").and_then(|v| v.as_u64()),
        serde_json::Value::Array(_) => bail!(
            "{source}: a bare JSON array is Trivy's report format before 0.20, which is not \
             supported; run Trivy ≥ 0.20 with `--format json` (SchemaVersion {TRIVY_SCHEMA})"
        ),
        _ => bail!("{source}: not a Trivy JSON report (expected an object with SchemaVersion)"),
    };
    match schema {
        Some(TRIVY_SCHEMA) => {}
        Some(other) => bail!(
            "{source}: Trivy report SchemaVersion {other} is not supported; expected \
             {TRIVY_SCHEMA} (`trivy image --format json` of Trivy ≥ 0.20)"
        ),
        None => bail!(
            "{source}: no SchemaVersion: not a Trivy JSON report (`trivy image --format json`)"
        ),
    }
    serde_json::from_value(value)
        .with_context(|| format!("{source}: unexpected shape of a Trivy JSON report"))
}

// ---------------------------------------------------------------------------------------------
// Plan.

/// The Trivy command line for one image (argv[0] is `trivy`). Every severity and unfixed
/// vulnerabilities are requested; the policy is applied by [`judge`].
pub fn trivy_argv(image: &str, output: &Utf8Path) -> Vec<String> {
    [
        "trivy",
        "image",
        "--format",
        "json",
        "--output",
        output.as_str(),
        "--quiet",
        "--scanners",
        "vuln",
        "--severity",
        "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL",
        "--exit-code",
        "0",
        // The image built here, from the local engine; never a registry's namesake.
        "--image-src",
        "docker",
        image,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One scan: a variant's policy and where its findings come from.
#[derive(Debug, Clone)]
pub struct Target {
    pub variant: String,
    pub image: String,
    pub policy: Scan,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Trivy,
    Report(Utf8PathBuf),
}

impl Args {
    fn targets(&self, ctx: &Ctx) -> Result<Vec<Target>> {
        let config = ctx.config()?;
        let single = self.image.is_some() || self.from_report.is_some();
        let variants: Vec<&Variant> = if single {
            let flag = if self.image.is_some() {
                "--image"
            } else {
                "--from-report"
            };
            match (self.variants.as_slice(), config.variants.as_slice()) {
                ([name], _) => vec![config.variant(name)?],
                ([], [only]) => vec![only],
                _ => bail!(
                    "{flag} takes the scan policy of one variant: name exactly one of {}",
                    config.variant_names().join(", ")
                ),
            }
        } else {
            config.select(&self.variants, self.all)?
        };
        Ok(variants
            .into_iter()
            .map(|v| Target {
                variant: v.name.clone(),
                image: self.image.clone().unwrap_or_else(|| v.image_ref()),
                policy: v.scan.clone(),
                source: match &self.from_report {
                    Some(path) => Source::Report(path.clone()),
                    None => Source::Trivy,
                },
            })
            .collect())
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let targets = self.targets(ctx)?;
        let mut scans = Vec::new();
        for target in &targets {
            let (source, trivy) = match &target.source {
                Source::Report(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading the Trivy report {path}"))?;
                    (format!("report {path}"), parse_trivy(path.as_str(), &text)?)
                }
                Source::Trivy => ("trivy".to_string(), run_trivy(ctx, &target.image)?),
            };
            for id in unused_ignores(&target.policy, &trivy) {
                eprintln!(
                    "warning: {}: scan.ignore lists {id}, which the scan did not find; remove it",
                    target.variant
                );
            }
            scans.push(judge(target, source, &trivy));
        }
        let report = Report {
            schema: REPORT_SCHEMA,
            scans,
        };

        let sections = sections(&report);
        report::emit_sections(self.format, &sections, &report)?;
        report::step_summary("Vulnerability scan", &report::sections_markdown(&sections));
        if let Some(path) = &self.save {
            let json = serde_json::to_vec_pretty(&report).context("serializing the report")?;
            report::write_atomic(path, &json)
                .with_context(|| format!("saving the report to {path}"))?;
        }
        match failure_message(&report) {
            Some(message) => Err(CheckFailed(message).into()),
            None => Ok(()),
        }
    }
}

/// Runs Trivy on one local image and parses its report.
fn run_trivy(ctx: &Ctx, image: &str) -> Result<TrivyReport> {
    which::which("trivy").map_err(|_| {
        anyhow::anyhow!(
            "trivy is not installed: install it ({INSTALL_DOCS}: a distro package, aquasecurity's \
             apt repository or a release binary), or run Trivy in its own step and judge its \
             report with `cargo xtask scan VARIANT --from-report FILE`"
        )
    })?;
    let tmp = TempDir::new(ctx, "scan")?;
    let output = tmp.path().join("trivy.json");
    let argv = trivy_argv(image, &output);
    crate::util::progress!("scanning {image} with trivy");
    duct::cmd(&argv[0], &argv[1..])
        .stdout_to_stderr()
        .run()
        .with_context(|| format!("running `{}`", argv.join(" ")))?;
    let text = std::fs::read_to_string(&output)
        .with_context(|| format!("reading trivy's report of {image} ({output})"))?;
    parse_trivy(&format!("trivy's report of {image}"), &text)
}

// ---------------------------------------------------------------------------------------------
// Judge.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Its severity is in `fail_on` and nothing ignores it.
    Fail,
    /// Its severity is not in `fail_on`.
    BelowThreshold,
    /// No fix exists and `ignore_unfixed` is set.
    IgnoredUnfixed,
    /// Listed in `scan.ignore`.
    Ignored,
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
    /// Trivy's result class and type, e.g. `os-pkgs` / `debian`, `lang-pkgs` / `python-pkg`.
    pub class: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub url: String,
    pub unfixed: bool,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub fail_on: Vec<String>,
    pub ignore_unfixed: bool,
    pub ignore: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantScan {
    pub variant: String,
    pub image: String,
    /// `trivy`, or `report FILE` for --from-report.
    pub source: String,
    /// Trivy's `ArtifactName` and `ArtifactType`.
    pub artifact: String,
    pub artifact_type: String,
    pub policy: Policy,
    /// Every finding, by severity.
    pub counts: BTreeMap<Severity, usize>,
    pub failing: usize,
    pub ignored: usize,
    pub passed: bool,
    /// Failing findings first, then by severity (highest first) and ID.
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    pub scans: Vec<VariantScan>,
}

/// No fix to install: no fixed version, or a status other than `fixed` (reports of Trivy
/// before 0.37 have no status; the fixed version alone decides there).
pub fn is_unfixed(v: &TrivyVulnerability) -> bool {
    v.fixed.trim().is_empty() || (!v.status.is_empty() && v.status != "fixed")
}

pub fn verdict(policy: &Scan, v: &TrivyVulnerability) -> Verdict {
    let severity = Severity::parse(&v.severity);
    if policy
        .ignore
        .iter()
        .any(|id| id.eq_ignore_ascii_case(&v.id))
    {
        Verdict::Ignored
    } else if !policy.fail_on.iter().any(|s| s == severity.as_str()) {
        Verdict::BelowThreshold
    } else if policy.ignore_unfixed && is_unfixed(v) {
        Verdict::IgnoredUnfixed
    } else {
        Verdict::Fail
    }
}

fn vulnerabilities(
    trivy: &TrivyReport,
) -> impl Iterator<Item = (&TrivyResult, &TrivyVulnerability)> {
    trivy
        .results
        .iter()
        .flatten()
        .flat_map(|r| r.vulnerabilities.iter().flatten().map(move |v| (r, v)))
}

pub fn judge(target: &Target, source: String, trivy: &TrivyReport) -> VariantScan {
    let mut findings: Vec<Finding> = vulnerabilities(trivy)
        .map(|(result, v)| Finding {
            id: v.id.clone(),
            package: if v.pkg_name.is_empty() {
                v.pkg_id.clone()
            } else {
                v.pkg_name.clone()
            },
            installed: v.installed.clone(),
            fixed: v.fixed.clone(),
            status: v.status.clone(),
            severity: Severity::parse(&v.severity),
            target: result.target.clone(),
            class: result.class.clone(),
            kind: result.kind.clone(),
            title: v.title.clone(),
            url: v.url.clone(),
            unfixed: is_unfixed(v),
            verdict: verdict(&target.policy, v),
        })
        .collect();
    findings.sort_by(|a, b| {
        (b.verdict == Verdict::Fail)
            .cmp(&(a.verdict == Verdict::Fail))
            .then(b.severity.cmp(&a.severity))
            .then(a.id.cmp(&b.id))
            .then(a.package.cmp(&b.package))
    });
    let mut counts: BTreeMap<Severity, usize> =
        Severity::DESCENDING.iter().map(|s| (*s, 0)).collect();
    for f in &findings {
        *counts.entry(f.severity).or_default() += 1;
    }
    let count =
        |pred: &dyn Fn(Verdict) -> bool| findings.iter().filter(|f| pred(f.verdict)).count();
    let failing = count(&|v| v == Verdict::Fail);
    let ignored = count(&|v| matches!(v, Verdict::Ignored | Verdict::IgnoredUnfixed));
    VariantScan {
        variant: target.variant.clone(),
        // A report judged with --from-report names the image it was made of.
        image: match target.source {
            Source::Report(_) if !trivy.artifact_name.is_empty() => trivy.artifact_name.clone(),
            _ => target.image.clone(),
        },
        source,
        artifact: trivy.artifact_name.clone(),
        artifact_type: trivy.artifact_type.clone(),
        policy: Policy {
            fail_on: target.policy.fail_on.clone(),
            ignore_unfixed: target.policy.ignore_unfixed,
            ignore: target.policy.ignore.clone(),
        },
        counts,
        failing,
        ignored,
        passed: failing == 0,
        findings,
    }
}

/// IDs of `scan.ignore` the report does not contain (stale exceptions).
pub fn unused_ignores<'a>(policy: &'a Scan, trivy: &TrivyReport) -> Vec<&'a str> {
    policy
        .ignore
        .iter()
        .filter(|id| !vulnerabilities(trivy).any(|(_, v)| v.id.eq_ignore_ascii_case(id)))
        .map(String::as_str)
        .collect()
}

/// The error of a failed scan, naming the failing vulnerabilities of each variant.
pub fn failure_message(report: &Report) -> Option<String> {
    let parts: Vec<String> = report
        .scans
        .iter()
        .filter(|s| !s.passed)
        .map(|s| {
            let mut ids: Vec<&str> = Vec::new();
            for f in s.findings.iter().filter(|f| f.verdict == Verdict::Fail) {
                if !ids.contains(&f.id.as_str()) {
                    ids.push(&f.id);
                }
            }
            let more = ids.len().saturating_sub(NAMED_IN_ERROR);
            ids.truncate(NAMED_IN_ERROR);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "{}: {} failing finding(s) ({}{more})",
                s.variant,
                s.failing,
                ids.join(", ")
            )
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "vulnerability scan failed: {}; fix them (rebuild on updated packages) or accept \
             one with `scan.ignore` in images.toml",
            parts.join("; ")
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Render.

pub fn sections(report: &Report) -> Vec<Section> {
    let mut headers = vec!["variant", "image"];
    headers.extend(Severity::DESCENDING.iter().map(|s| s.as_str()));
    headers.extend(["ignored", "failing", "fail on", "verdict"]);
    let mut summary = Table::new(&headers).right_align(&[2, 3, 4, 5, 6, 7, 8]);
    for s in &report.scans {
        let mut row = vec![s.variant.clone(), s.image.clone()];
        row.extend(
            Severity::DESCENDING
                .iter()
                .map(|sev| s.counts.get(sev).copied().unwrap_or(0).to_string()),
        );
        let unfixed = if s.policy.ignore_unfixed {
            " (unfixed ignored)"
        } else {
            ""
        };
        row.extend([
            s.ignored.to_string(),
            s.failing.to_string(),
            format!("{}{unfixed}", s.policy.fail_on.join(",")),
            if s.passed { "ok" } else { "FAIL" }.to_string(),
        ]);
        summary.row(row);
    }
    let mut out = vec![Section {
        title: None,
        table: summary,
    }];

    let listed = |verdicts: &[Verdict], title: &str| -> Option<Section> {
        let mut table = Table::new(&[
            "variant",
            "vulnerability",
            "package",
            "installed",
            "fixed",
            "severity",
            "target",
        ]);
        for s in &report.scans {
            for f in s.findings.iter().filter(|f| verdicts.contains(&f.verdict)) {
                table.row(vec![
                    s.variant.clone(),
                    f.id.clone(),
                    f.package.clone(),
                    f.installed.clone(),
                    if f.fixed.is_empty() {
                        format!("({})", non_empty(&f.status, "no fix"))
                    } else {
                        f.fixed.clone()
                    },
                    f.severity.as_str().to_string(),
                    f.target.clone(),
                ]);
            }
        }
        (!table.rows.is_empty()).then(|| Section {
            title: Some(title.to_string()),
            table,
        })
    };
    out.extend(listed(&[Verdict::Fail], "Failing"));
    out.extend(listed(&[Verdict::Ignored], "Ignored by scan.ignore"));
    out
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() {
        default
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vuln(id: &str, severity: &str, fixed: &str, status: &str) -> TrivyVulnerability {
        TrivyVulnerability {
            id: id.into(),
            pkg_name: "libfoo".into(),
            pkg_id: String::new(),
            installed: "1.0".into(),
            fixed: fixed.into(),
            status: status.into(),
            severity: severity.into(),
            title: String::new(),
            url: String::new(),
        }
    }

    fn policy(fail_on: &[&str], ignore_unfixed: bool, ignore: &[&str]) -> Scan {
        Scan {
            fail_on: fail_on.iter().map(|s| s.to_string()).collect(),
            ignore_unfixed,
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn report_of(vulns: Vec<TrivyVulnerability>) -> TrivyReport {
        TrivyReport {
            artifact_name: "img".into(),
            artifact_type: "container_image".into(),
            results: Some(vec![TrivyResult {
                target: "img (debian 13.2)".into(),
                class: "os-pkgs".into(),
                kind: "debian".into(),
                vulnerabilities: Some(vulns),
            }]),
        }
    }

    #[test]
    fn argv_asks_for_everything_and_leaves_the_verdict_to_us() {
        let argv = trivy_argv("voxserve:cpu", Utf8Path::new("/tmp/r.json"));
        assert_eq!(
            argv.join(" "),
            "trivy image --format json --output /tmp/r.json --quiet --scanners vuln \
             --severity UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL --exit-code 0 --image-src docker voxserve:cpu"
        );
        assert!(!argv.iter().any(|a| a == "--ignore-unfixed"));
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
    fn verdicts_follow_the_policy() {
        let p = policy(&["CRITICAL", "HIGH"], true, &["CVE-9"]);
        assert_eq!(
            verdict(&p, &vuln("A", "HIGH", "1.1", "fixed")),
            Verdict::Fail
        );
        assert_eq!(
            verdict(&p, &vuln("A", "CRITICAL", "", "affected")),
            Verdict::IgnoredUnfixed
        );
        assert_eq!(
            verdict(&p, &vuln("A", "LOW", "1.1", "fixed")),
            Verdict::BelowThreshold
        );
        assert_eq!(
            verdict(&p, &vuln("cve-9", "CRITICAL", "1.1", "fixed")),
            Verdict::Ignored
        );
        let strict = policy(&["CRITICAL"], false, &[]);
        assert_eq!(
            verdict(&strict, &vuln("A", "CRITICAL", "", "affected")),
            Verdict::Fail
        );
        assert_eq!(
            verdict(&strict, &vuln("A", "HIGH", "1.1", "fixed")),
            Verdict::BelowThreshold
        );
    }

    #[test]
    fn judge_counts_and_orders_failing_first() {
        let target = Target {
            variant: "cpu".into(),
            image: "voxserve:cpu".into(),
            policy: policy(&["CRITICAL", "HIGH"], true, &[]),
            source: Source::Trivy,
        };
        let trivy = report_of(vec![
            vuln("CVE-1", "LOW", "2", "fixed"),
            vuln("CVE-2", "CRITICAL", "", "affected"),
            vuln("CVE-3", "HIGH", "2", "fixed"),
        ]);
        let scan = judge(&target, "trivy".into(), &trivy);
        assert_eq!(scan.failing, 1);
        assert_eq!(scan.ignored, 1);
        assert!(!scan.passed);
        assert_eq!(scan.findings[0].id, "CVE-3");
        assert_eq!(scan.counts[&Severity::Critical], 1);
        assert_eq!(scan.counts[&Severity::Medium], 0);
        let report = Report {
            schema: REPORT_SCHEMA,
            scans: vec![scan],
        };
        let msg = failure_message(&report).unwrap();
        assert!(msg.contains("cpu: 1 failing finding(s) (CVE-3)"), "{msg}");
    }

    #[test]
    fn parse_accepts_schema_2_and_null_lists() {
        let r = parse_trivy(
            "r",
            r#"{"SchemaVersion":2,"ArtifactName":"x","Results":[{"Target":"t","Vulnerabilities":null}]}"#,
        )
        .unwrap();
        assert_eq!(vulnerabilities(&r).count(), 0);
        let r = parse_trivy("r", r#"{"SchemaVersion":2,"ArtifactName":"x"}"#).unwrap();
        assert!(r.results.is_none());
    }

    #[test]
    fn parse_rejects_other_schemas_and_broken_json() {
        let err = |text| parse_trivy("r.json", text).unwrap_err().to_string();
        assert!(err(r#"{"SchemaVersion":1}"#).contains("SchemaVersion 1 is not supported"));
        assert!(err("[]").contains("before 0.20"));
        assert!(err(r#"{"Results":[]}"#).contains("no SchemaVersion"));
        assert!(err(r#"{"SchemaVersion":2,"Res"#).contains("not valid JSON"));
    }

    #[test]
    fn unused_ignores_are_named() {
        let p = policy(&["HIGH"], true, &["CVE-1", "CVE-404"]);
        let trivy = report_of(vec![vuln("CVE-1", "HIGH", "2", "fixed")]);
        assert_eq!(unused_ignores(&p, &trivy), vec!["CVE-404"]);
    }
}
