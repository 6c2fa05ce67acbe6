//! The scan as SARIF 2.1.0 for GitHub code scanning: one run per variant in its own category
//! (`automationDetails.id = "trivy/<variant>/"`: runs of several images in one category would
//! replace each other's alerts), Trivy as the driver, a result for every finding the policy
//! does not ignore and for every secret, each located in this repository.

use serde_json::json;

use super::judge::{Finding, Location, Secret, VariantScan, Verdict};
use crate::config::Severity;
use crate::sarif::{
    Level, Log, Message, MultiformatMessageString, Region, ReportingConfiguration,
    ReportingDescriptor, Run, SarifResult, ToolComponent,
};

/// The file `--sarif DIR` writes for a variant.
pub(crate) fn file_name(variant: &str) -> String {
    format!("trivy-{variant}.sarif")
}

/// GitHub's analysis category of a variant's run.
pub(crate) fn category(variant: &str) -> String {
    format!("trivy/{variant}")
}

pub(crate) fn log(scans: &[VariantScan]) -> Log {
    Log::new(scans.iter().map(run).collect())
}

/// Failing findings are errors; the others by severity: CRITICAL to MEDIUM warnings, LOW and
/// UNKNOWN notes. Ignored ones are no result at all.
pub(crate) fn level(f: &Finding) -> Option<Level> {
    match f.verdict {
        Verdict::Fail => Some(Level::Error),
        Verdict::BelowThreshold => Some(match f.severity {
            Severity::Critical | Severity::High | Severity::Medium => Level::Warning,
            Severity::Low | Severity::Unknown => Level::Note,
        }),
        Verdict::Ignored | Verdict::IgnoredUnfixed => None,
    }
}

/// GitHub's `security-severity` (its critical ≥ 9.0, high ≥ 7.0, medium ≥ 4.0, low > 0), with
/// the scores Trivy's own SARIF gives each severity.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Unknown => "0.0",
    }
}

pub(crate) fn run(scan: &VariantScan) -> Run {
    let mut driver = ToolComponent::new("Trivy");
    driver.full_name = Some("Trivy Vulnerability Scanner".into());
    driver.version = scan.trivy_version.clone();
    driver.information_uri = Some("https://trivy.dev/".into());
    let mut run = Run::new(driver, &category(&scan.variant));
    for f in &scan.findings {
        let Some(level) = level(f) else { continue };
        let index = run.rule_index(vulnerability_rule(f));
        run.results.push(SarifResult {
            rule_id: f.id.clone(),
            rule_index: Some(index),
            level,
            message: Message::text(finding_message(f, scan)),
            locations: vec![location(&f.location, &location_message(f))],
            partial_fingerprints: fingerprint(&[&f.id, &f.package, &f.class]),
            properties: Default::default(),
        });
    }
    for s in &scan.secrets {
        let id = format!("secret/{}", s.rule);
        let index = run.rule_index(secret_rule(&id, s));
        run.results.push(SarifResult {
            rule_id: id,
            rule_index: Some(index),
            level: Level::Error,
            message: Message::text(format!(
                "{} ({}) in {} (line {}) of image {}, in layer {} — remove the file from the \
                 image; deleting it in a later layer does not remove it",
                s.title,
                s.rule,
                s.file,
                s.line,
                scan.image,
                super::judge::short_layer(&s.layer)
            )),
            locations: vec![location(
                &s.location,
                &format!("the instruction that made the layer holding {}", s.file),
            )],
            partial_fingerprints: fingerprint(&[&s.rule, &s.file]),
            properties: Default::default(),
        });
    }
    run.properties.insert(
        "image".into(),
        json!({ "ref": scan.image, "id": scan.image_id, "os": scan.os, "packages": scan.packages }),
    );
    run
}

fn vulnerability_rule(f: &Finding) -> ReportingDescriptor {
    let mut rule = ReportingDescriptor::new(&f.id);
    rule.name = Some(
        if f.class == "os-pkgs" {
            "OsPackageVulnerability"
        } else {
            "LanguageSpecificPackageVulnerability"
        }
        .into(),
    );
    let title = if f.title.is_empty() { &f.id } else { &f.title };
    rule.short_description = Some(MultiformatMessageString::text(title.clone()));
    rule.full_description = Some(MultiformatMessageString::text(title.clone()));
    if !f.url.is_empty() {
        rule.help_uri = Some(f.url.clone());
    }
    rule.help = Some(MultiformatMessageString {
        text: format!(
            "Vulnerability {}\nSeverity: {}\n{}",
            f.id,
            f.severity.as_str(),
            f.url
        ),
        markdown: Some(format!(
            "**{}** ({})\n\n{}{}",
            f.id,
            f.severity.as_str(),
            title,
            if f.url.is_empty() {
                String::new()
            } else {
                format!("\n\n[{}]({})", f.id, f.url)
            }
        )),
    });
    rule.default_configuration = Some(ReportingConfiguration {
        level: match f.severity {
            Severity::Critical | Severity::High => Level::Error,
            Severity::Medium => Level::Warning,
            Severity::Low | Severity::Unknown => Level::Note,
        },
    });
    rule.properties.insert(
        "security-severity".into(),
        json!(security_severity(f.severity)),
    );
    rule.properties.insert(
        "tags".into(),
        json!(["vulnerability", "security", f.severity.as_str()]),
    );
    rule.properties
        .insert("precision".into(), json!("very-high"));
    rule
}

fn secret_rule(id: &str, s: &Secret) -> ReportingDescriptor {
    let mut rule = ReportingDescriptor::new(id);
    rule.name = Some("Secret".into());
    let title = format!("{} ({})", s.title, s.category);
    rule.short_description = Some(MultiformatMessageString::text(&title));
    rule.full_description = Some(MultiformatMessageString::text(&title));
    rule.help = Some(MultiformatMessageString::text(format!(
        "{title}: remove the file from the image and rebuild; deleting it in a later layer \
         leaves it in the earlier one"
    )));
    rule.default_configuration = Some(ReportingConfiguration {
        level: Level::Error,
    });
    rule.properties.insert(
        "security-severity".into(),
        json!(security_severity(s.severity)),
    );
    rule.properties.insert(
        "tags".into(),
        json!(["secret", "security", s.severity.as_str()]),
    );
    rule.properties
        .insert("precision".into(), json!("very-high"));
    rule
}

fn finding_message(f: &Finding, scan: &VariantScan) -> String {
    let fix = if f.fixed.is_empty() {
        format!(
            "no fixed version{}",
            if f.status.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.status)
            }
        )
    } else {
        format!("fixed in {}", f.fixed)
    };
    let verdict = match f.verdict {
        Verdict::Fail => format!(
            "It fails the policy (fail_on {}).",
            scan.policy.fail_on_names(", ")
        ),
        _ => "Below the policy's fail_on threshold.".to_string(),
    };
    let expired = f
        .ignore_expired
        .map(|d| format!(" Its scan.ignore entry expired on {d}."))
        .unwrap_or_default();
    let title = if f.title.is_empty() {
        String::new()
    } else {
        format!(": {}", f.title)
    };
    // Where in the image: a language package's metadata file (an OS package's place is the
    // package database, which says nothing more).
    let place = if f.path.is_empty() {
        String::new()
    } else {
        format!(" (/{})", f.path.trim_start_matches('/'))
    };
    format!(
        "{} {} in {}{place}: {} ({}), {fix}{title}. {verdict}{expired}",
        f.package,
        f.installed,
        scan.image,
        f.id,
        f.severity.as_str()
    )
}

fn location_message(f: &Finding) -> String {
    match f.location.why.as_str() {
        "base image" => format!("{} comes with the base image", f.package),
        "install line" => format!("{} is installed here", f.package),
        "lockfile" => format!("{} is pinned here", f.package),
        _ => format!("the instruction that made the layer holding {}", f.package),
    }
}

fn location(loc: &Location, message: &str) -> crate::sarif::Location {
    let region = Some(Region::line(loc.line, None));
    crate::sarif::Location::new(&loc.file, region, Some(message.to_string()))
}

/// One alert per (vulnerability, package), even when several share a Dockerfile line: GitHub
/// would otherwise merge results of one rule on one line. FNV-1a, stable across runs.
fn fingerprint(parts: &[&str]) -> std::collections::BTreeMap<String, String> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    let mut out = std::collections::BTreeMap::new();
    out.insert("voxserveFinding/v1".to_string(), format!("{hash:016x}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let a = fingerprint(&["CVE-1", "libssl3t64", "os-pkgs"]);
        assert_eq!(a, fingerprint(&["CVE-1", "libssl3t64", "os-pkgs"]));
        assert_ne!(a, fingerprint(&["CVE-1", "openssl", "os-pkgs"]));
        // Parts are delimited: ("ab", "c") is not ("a", "bc").
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
        assert_eq!(category("cpu"), "trivy/cpu");
        assert_eq!(file_name("cpu-minimal"), "trivy-cpu-minimal.sarif");
    }
}
