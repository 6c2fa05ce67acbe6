//! Trivy's JSON report (`trivy image --format json`, SchemaVersion 2): the fields the scan
//! reads, and the parser. Everything else Trivy writes is ignored.

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The only Trivy report schema understood (Trivy ≥ 0.20).
pub(crate) const TRIVY_SCHEMA: u64 = 2;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct TrivyReport {
    pub(crate) artifact_name: String,
    pub(crate) artifact_type: String,
    /// Absent in reports of Trivy before 0.48.
    pub(crate) trivy: Option<TrivyTool>,
    pub(crate) metadata: Metadata,
    pub(crate) results: Option<Vec<TrivyResult>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct TrivyTool {
    pub(crate) version: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Metadata {
    /// The OS Trivy detected; None when it found none it knows.
    #[serde(rename = "OS")]
    pub(crate) os: Option<Os>,
    #[serde(rename = "ImageID")]
    pub(crate) image_id: String,
    pub(crate) image_config: ImageConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Os {
    pub(crate) family: String,
    pub(crate) name: String,
    /// End of service life: the distribution no longer publishes fixes.
    #[serde(rename = "EOSL")]
    pub(crate) eosl: bool,
}

/// The image's OCI config as Trivy copied it: its history says which instruction made a layer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ImageConfig {
    pub(crate) history: Vec<History>,
    pub(crate) rootfs: RootFs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct History {
    pub(crate) created_by: String,
    pub(crate) empty_layer: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RootFs {
    pub(crate) diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct TrivyResult {
    pub(crate) target: String,
    /// `os-pkgs`, `lang-pkgs`, `secret`, …
    pub(crate) class: String,
    /// `debian`, `python-pkg`, …
    #[serde(rename = "Type")]
    pub(crate) kind: String,
    /// Every package found (Trivy ≥ 0.52 lists them in JSON by default); None when not listed.
    pub(crate) packages: Option<Vec<Package>>,
    pub(crate) vulnerabilities: Option<Vec<TrivyVulnerability>>,
    pub(crate) secrets: Option<Vec<TrivySecret>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Package {
    #[serde(rename = "ID")]
    pub(crate) id: String,
    /// The Debian source package a binary package was built from.
    pub(crate) src_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TrivyVulnerability {
    #[serde(rename = "VulnerabilityID")]
    pub(crate) id: String,
    #[serde(rename = "PkgName", default)]
    pub(crate) pkg_name: String,
    #[serde(rename = "PkgID", default)]
    pub(crate) pkg_id: String,
    /// Where a language package was found (e.g. its `METADATA` file).
    #[serde(rename = "PkgPath", default)]
    pub(crate) pkg_path: String,
    #[serde(rename = "InstalledVersion", default)]
    pub(crate) installed: String,
    #[serde(rename = "FixedVersion", default)]
    pub(crate) fixed: String,
    /// `fixed`, `affected`, `will_not_fix`, `fix_deferred`, `end_of_life`, … (Trivy ≥ 0.37).
    #[serde(rename = "Status", default)]
    pub(crate) status: String,
    #[serde(rename = "Severity", default)]
    pub(crate) severity: String,
    #[serde(rename = "Title", default)]
    pub(crate) title: String,
    #[serde(rename = "PrimaryURL", default)]
    pub(crate) url: String,
    #[serde(rename = "Layer", default)]
    pub(crate) layer: Layer,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct TrivySecret {
    #[serde(rename = "RuleID")]
    pub(crate) rule_id: String,
    pub(crate) category: String,
    pub(crate) severity: String,
    pub(crate) title: String,
    pub(crate) start_line: usize,
    pub(crate) layer: Layer,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Layer {
    pub digest: String,
    #[serde(rename = "DiffID")]
    pub diff_id: String,
    /// The history entry that made the layer (secrets carry it; vulnerabilities do not).
    pub created_by: String,
}

/// Parses a Trivy JSON report; `source` names it in errors.
pub(crate) fn parse(source: &str, text: &str) -> Result<TrivyReport> {
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

impl TrivyReport {
    pub(crate) fn vulnerabilities(
        &self,
    ) -> impl Iterator<Item = (&TrivyResult, &TrivyVulnerability)> {
        self.results
            .iter()
            .flatten()
            .flat_map(|r| r.vulnerabilities.iter().flatten().map(move |v| (r, v)))
    }

    pub(crate) fn secrets(&self) -> impl Iterator<Item = (&TrivyResult, &TrivySecret)> {
        self.results
            .iter()
            .flatten()
            .flat_map(|r| r.secrets.iter().flatten().map(move |s| (r, s)))
    }

    /// The Debian source package of an OS package, from the package list (`PkgID` → `SrcName`).
    pub(crate) fn source_package(&self, pkg_id: &str) -> Option<&str> {
        self.results
            .iter()
            .flatten()
            .filter(|r| r.class == "os-pkgs")
            .flat_map(|r| r.packages.iter().flatten())
            .find(|p| p.id == pkg_id && !p.src_name.is_empty())
            .map(|p| p.src_name.as_str())
    }

    /// The version of Trivy that made the report, when it says.
    pub(crate) fn version(&self) -> Option<String> {
        let version = &self.trivy.as_ref()?.version;
        (!version.is_empty()).then(|| version.clone())
    }

    /// `debian 13.8`, or None.
    pub(crate) fn os_name(&self) -> Option<String> {
        let os = self.metadata.os.as_ref()?;
        (!os.family.is_empty()).then(|| format!("{} {}", os.family, os.name).trim().to_string())
    }

    /// The command that made each layer, by diff ID, from the image history (the entries
    /// that are not `empty_layer` are the layers, in order).
    pub(crate) fn layer_commands(&self) -> Vec<(String, String)> {
        let config = &self.metadata.image_config;
        config
            .history
            .iter()
            .filter(|h| !h.empty_layer)
            .zip(&config.rootfs.diff_ids)
            .map(|(h, id)| (id.clone(), h.created_by.clone()))
            .collect()
    }

    /// The command that made the layer `diff_id`, if the report's history says.
    pub(crate) fn created_by(&self, layer: &Layer) -> Option<String> {
        if !layer.created_by.is_empty() {
            return Some(layer.created_by.clone());
        }
        self.layer_commands()
            .into_iter()
            .find(|(id, _)| *id == layer.diff_id)
            .map(|(_, by)| by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_schema_2_and_null_lists() {
        let r = parse(
            "r",
            r#"{"SchemaVersion":2,"ArtifactName":"x","Results":[{"Target":"t","Vulnerabilities":null}]}"#,
        )
        .unwrap();
        assert_eq!(r.vulnerabilities().count(), 0);
        let r = parse("r", r#"{"SchemaVersion":2,"ArtifactName":"x"}"#).unwrap();
        assert!(r.results.is_none());
        assert!(r.os_name().is_none());
    }

    #[test]
    fn rejects_other_schemas_and_broken_json() {
        let err = |text| parse("r.json", text).unwrap_err().to_string();
        assert!(err(r#"{"SchemaVersion":1}"#).contains("SchemaVersion 1 is not supported"));
        assert!(err("[]").contains("before 0.20"));
        assert!(err(r#"{"Results":[]}"#).contains("no SchemaVersion"));
        assert!(err(r#"{"SchemaVersion":2,"Res"#).contains("not valid JSON"));
    }

    #[test]
    fn layers_are_matched_to_their_history_entries() {
        let r = parse(
            "r",
            r#"{"SchemaVersion":2,"Metadata":{"OS":{"Family":"debian","Name":"13.8"},
               "ImageConfig":{"history":[{"created_by":"ADD rootfs.tar / # buildkit"},
                 {"created_by":"CMD [\"bash\"]","empty_layer":true},
                 {"created_by":"RUN /bin/sh -c apt-get install -y python3 # buildkit"}],
               "rootfs":{"diff_ids":["sha256:a","sha256:b"]}}},
               "Results":[{"Class":"os-pkgs","Packages":[{"ID":"libc6@2.41","Name":"libc6","SrcName":"glibc"}]}]}"#,
        )
        .unwrap();
        assert_eq!(r.os_name().as_deref(), Some("debian 13.8"));
        let layer = Layer {
            diff_id: "sha256:b".into(),
            ..Layer::default()
        };
        assert_eq!(
            r.created_by(&layer).as_deref(),
            Some("RUN /bin/sh -c apt-get install -y python3 # buildkit")
        );
        assert_eq!(r.source_package("libc6@2.41"), Some("glibc"));
        assert_eq!(r.source_package("zlib1g@1"), None);
    }
}
