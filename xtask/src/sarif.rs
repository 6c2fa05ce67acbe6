//! SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format): the part of the schema GitHub
//! code scanning reads, as serde types, and a writer. Shared by the commands that upload to the
//! Security tab: `scan` (one run per image variant, category `trivy/<variant>`) and `lint` (one
//! file per linter, category `lint/<tool>`).
//!
//! Not the `serde-sarif` crate: it generates every type of the schema at build time (schemafy,
//! syn), a heavier build than the rest of the xtask's dependencies, for the few types used here.
//! The tests check what this writes against the OASIS schema and GitHub's rules
//! (`tests/sarif.rs`, `tests/common/sarif.rs`).

use anyhow::{Context, Result};
use camino::Utf8Path;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(crate) const VERSION: &str = "2.1.0";
/// The `$schema` of every log written (the OASIS standard's published schema).
pub(crate) const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
/// The `uriBaseId` of locations relative to the repository root: GitHub resolves them against
/// the checkout. (No `originalUriBaseIds` entry: the checkout's place differs per machine, and
/// the standard wants an absolute URI there.)
pub(crate) const SRCROOT: &str = "%SRCROOT%";

/// Arbitrary extra data (`properties`); GitHub reads `tags`, `precision` and
/// `security-severity` from a rule's bag.
pub type PropertyBag = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    #[serde(rename = "$schema")]
    pub(crate) schema: String,
    pub(crate) version: String,
    pub(crate) runs: Vec<Run>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub(crate) tool: Tool,
    /// GitHub's analysis category is `id` up to its last `/`: one category per uploaded run,
    /// or a later upload replaces the alerts of an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) automation_details: Option<AutomationDetails>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) original_uri_base_ids: BTreeMap<String, ArtifactLocation>,
    pub results: Vec<SarifResult>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: PropertyBag,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tool {
    pub(crate) driver: ToolComponent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolComponent {
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub information_uri: Option<String>,
    /// Written even when empty: GitHub refuses a driver without `rules` (GH1018).
    #[serde(default)]
    pub(crate) rules: Vec<ReportingDescriptor>,
}

/// A rule: for a scanner, one vulnerability ID; for a linter, one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportingDescriptor {
    pub(crate) id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_description: Option<MultiformatMessageString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_description: Option<MultiformatMessageString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<MultiformatMessageString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_configuration: Option<ReportingConfiguration>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: PropertyBag,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportingConfiguration {
    pub level: Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    None,
    Note,
    Warning,
    Error,
}

/// `result` in the schema (renamed: it would shadow `Result`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifResult {
    pub rule_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_index: Option<usize>,
    pub level: Level,
    pub message: Message,
    pub locations: Vec<Location>,
    /// Stable identities of a result across runs (GitHub computes its own from the file's
    /// text when none is given).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partial_fingerprints: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: PropertyBag,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
}

impl Message {
    pub(crate) fn text(text: impl Into<String>) -> Message {
        Message {
            text: text.into(),
            markdown: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiformatMessageString {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
}

impl MultiformatMessageString {
    pub fn text(text: impl Into<String>) -> MultiformatMessageString {
        MultiformatMessageString {
            text: text.into(),
            markdown: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub(crate) physical_location: PhysicalLocation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<Message>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PhysicalLocation {
    pub(crate) artifact_location: ArtifactLocation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) region: Option<Region>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ArtifactLocation {
    pub(crate) uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) uri_base_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    pub(crate) start_line: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start_column: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) end_line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) end_column: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AutomationDetails {
    pub(crate) id: String,
}

impl Log {
    pub fn new(runs: Vec<Run>) -> Log {
        Log {
            schema: SCHEMA_URI.into(),
            version: VERSION.into(),
            runs,
        }
    }

    pub(crate) fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self).context("serializing SARIF")? + "\n")
    }

    /// Writes the log atomically: an interrupted run leaves no half-written file.
    pub fn write(&self, path: &Utf8Path) -> Result<()> {
        crate::report::write_atomic(path, self.to_json()?.as_bytes())
            .with_context(|| format!("writing the SARIF file {}", crate::util::shown(path)))
    }
}

impl Run {
    /// A run of `driver` in GitHub's analysis category `category` (e.g. `trivy/cpu`,
    /// `lint/hadolint`): `automationDetails.id` is the category followed by `/`.
    pub fn new(driver: ToolComponent, category: &str) -> Run {
        Run {
            tool: Tool { driver },
            automation_details: Some(AutomationDetails {
                id: format!("{}/", category.trim_end_matches('/')),
            }),
            original_uri_base_ids: BTreeMap::new(),
            results: Vec::new(),
            properties: PropertyBag::new(),
        }
    }

    /// The index of the rule `rule.id`, adding it the first time it is seen.
    pub fn rule_index(&mut self, rule: ReportingDescriptor) -> usize {
        let rules = &mut self.tool.driver.rules;
        match rules.iter().position(|r| r.id == rule.id) {
            Some(i) => i,
            None => {
                rules.push(rule);
                rules.len() - 1
            }
        }
    }
}

impl ToolComponent {
    pub fn new(name: impl Into<String>) -> ToolComponent {
        ToolComponent {
            name: name.into(),
            full_name: None,
            version: None,
            information_uri: None,
            rules: Vec::new(),
        }
    }
}

impl ReportingDescriptor {
    pub fn new(id: impl Into<String>) -> ReportingDescriptor {
        ReportingDescriptor {
            id: id.into(),
            name: None,
            short_description: None,
            full_description: None,
            help_uri: None,
            help: None,
            default_configuration: None,
            properties: PropertyBag::new(),
        }
    }
}

impl Location {
    /// A place in `file`: relative to the repository root (`%SRCROOT%`), or an absolute host
    /// path as a `file://` URI.
    pub fn new(file: &str, region: Option<Region>, message: Option<String>) -> Location {
        let artifact_location = if Utf8Path::new(file).is_absolute() {
            let path = file.replace('\\', "/");
            let root = if path.starts_with('/') { "" } else { "/" };
            ArtifactLocation {
                uri: format!("file://{root}{}", encode_uri_path(&path)),
                uri_base_id: None,
            }
        } else {
            ArtifactLocation {
                uri: encode_uri_path(file),
                uri_base_id: Some(SRCROOT.into()),
            }
        };
        Location {
            physical_location: PhysicalLocation {
                artifact_location,
                region,
            },
            message: message.map(Message::text),
        }
    }
}

impl Region {
    /// Line `line` (1-based; 0 is taken as 1), from `column` when known.
    pub fn line(line: usize, column: Option<usize>) -> Region {
        Region {
            start_line: line.max(1),
            start_column: column,
            end_line: None,
            end_column: None,
        }
    }
}

/// A path relative to `root` with `/` separators, or None when it is not below `root`.
pub(crate) fn relative_to(root: &Utf8Path, path: &Utf8Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rel.components().map(|c| c.as_str()).collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

/// Percent-encodes what a relative URI reference may not contain (RFC 3986 `pchar`, plus `/`).
pub(crate) fn encode_uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'-'
                    | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_carries_its_category_and_dedups_rules() {
        let mut run = Run::new(ToolComponent::new("Trivy"), "trivy/cpu");
        assert_eq!(run.automation_details.as_ref().unwrap().id, "trivy/cpu/");
        assert_eq!(run.rule_index(ReportingDescriptor::new("CVE-1")), 0);
        assert_eq!(run.rule_index(ReportingDescriptor::new("CVE-2")), 1);
        assert_eq!(run.rule_index(ReportingDescriptor::new("CVE-1")), 0);
        assert_eq!(run.tool.driver.rules.len(), 2);
        let lint = Run::new(ToolComponent::new("hadolint"), "lint/hadolint/");
        assert_eq!(lint.automation_details.unwrap().id, "lint/hadolint/");
    }

    #[test]
    fn serializes_with_sarif_names_and_round_trips() {
        let mut run = Run::new(ToolComponent::new("Trivy"), "trivy/cpu");
        let index = run.rule_index(ReportingDescriptor::new("CVE-1"));
        run.results.push(SarifResult {
            rule_id: "CVE-1".into(),
            rule_index: Some(index),
            level: Level::Warning,
            message: Message::text("libfoo 1.0"),
            locations: vec![Location::new(
                "docker files/Dockerfile",
                Some(Region::line(3, None)),
                None,
            )],
            partial_fingerprints: BTreeMap::new(),
            properties: PropertyBag::new(),
        });
        let log = Log::new(vec![run]);
        let json = log.to_json().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["$schema"], SCHEMA_URI);
        assert_eq!(value["version"], "2.1.0");
        let run = &value["runs"][0];
        assert_eq!(run["automationDetails"]["id"], "trivy/cpu/");
        assert!(run.get("originalUriBaseIds").is_none());
        let result = &run["results"][0];
        assert_eq!(result["ruleId"], "CVE-1");
        assert_eq!(result["level"], "warning");
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(
            location["artifactLocation"]["uri"],
            "docker%20files/Dockerfile"
        );
        assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert_eq!(location["region"]["startLine"], 3);
        assert!(result.get("partialFingerprints").is_none());
        let back: Log = serde_json::from_str(&json).unwrap();
        assert_eq!(back, log);
    }

    #[test]
    fn paths_relative_to_the_repository() {
        let root = Utf8Path::new("/src/repo");
        assert_eq!(
            relative_to(root, Utf8Path::new("/src/repo/app/requirements.lock")).as_deref(),
            Some("app/requirements.lock")
        );
        assert_eq!(
            relative_to(root, Utf8Path::new("/elsewhere/Dockerfile")),
            None
        );
        assert_eq!(relative_to(root, root), None);
        assert_eq!(encode_uri_path("a b/c#d%"), "a%20b/c%23d%25");
        assert_eq!(
            encode_uri_path("xtask/tests/Dockerfile"),
            "xtask/tests/Dockerfile"
        );
    }
}
