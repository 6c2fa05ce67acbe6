//! The SARIF writer that `scan` and `lint` share: a log using every type it has, checked like
//! every SARIF file the commands write — against the OASIS schema (check-jsonschema) and
//! GitHub's ingestion rules (the SARIF Multitool).

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use std::collections::BTreeMap;
use xtask::sarif::{
    Level, Location, Log, Message, MultiformatMessageString, PropertyBag, Region,
    ReportingConfiguration, ReportingDescriptor, Run, SarifResult, ToolComponent,
};

#[test]
fn a_log_using_every_type_is_valid_sarif_that_github_accepts() {
    let mut driver = ToolComponent::new("Trivy");
    driver.full_name = Some("Trivy Vulnerability Scanner".into());
    driver.version = Some("0.76.0".into());
    driver.information_uri = Some("https://trivy.dev/".into());
    let mut run = Run::new(driver, "trivy/cpu");
    let mut rule = ReportingDescriptor::new("CVE-2099-0001");
    rule.name = Some("OsPackageVulnerability".into());
    rule.short_description = Some(MultiformatMessageString::text("short"));
    rule.full_description = Some(MultiformatMessageString::text("full"));
    rule.help_uri = Some("https://example.org/CVE-2099-0001".into());
    rule.help = Some(MultiformatMessageString {
        text: "help".into(),
        markdown: Some("**help**".into()),
    });
    rule.default_configuration = Some(ReportingConfiguration {
        level: Level::Error,
    });
    rule.properties
        .insert("security-severity".into(), serde_json::json!("9.5"));
    let index = run.rule_index(rule);
    let fingerprints = BTreeMap::from([("finding/v1".to_string(), "abc".to_string())]);
    for level in [Level::Error, Level::Warning, Level::Note, Level::None] {
        run.results.push(SarifResult {
            rule_id: "CVE-2099-0001".into(),
            rule_index: Some(index),
            level,
            message: Message {
                text: "libfoo 1.0".into(),
                markdown: Some("`libfoo` 1.0".into()),
            },
            locations: vec![Location::new(
                "Dockerfile",
                Some(Region::line(7, None)),
                Some("here".into()),
            )],
            partial_fingerprints: fingerprints.clone(),
            properties: PropertyBag::new(),
        });
    }
    run.properties
        .insert("variant".into(), serde_json::json!("cpu"));
    let dir = Scratch::new("sarif-every-type");
    let path = camino::Utf8PathBuf::try_from(dir.path().join("log.sarif")).unwrap();
    Log::new(vec![run]).write(&path).unwrap();
    let log = assert_valid_sarif(path.as_std_path());
    assert_eq!(log["runs"][0]["results"].as_array().unwrap().len(), 4);
}
