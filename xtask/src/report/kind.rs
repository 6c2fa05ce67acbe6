//! Reports know what they are: every JSON report the xtask writes starts with its `kind` and
//! the `schema` (version) of its shape, and every command that reads one ([`read`], [`parse`])
//! refuses another kind, naming both. Reports written before they named their kind are still
//! read where their shape says what they are.

use anyhow::{bail, Result};
use camino::Utf8Path;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// What a JSON report is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `build-<variant>.json` of `build` (and of `merge`): one build.
    Build,
    /// `build --format json`: every build of the run.
    Builds,
    Config,
    /// `diff --format json`: two images compared.
    Diff,
    Doctor,
    Lint,
    /// `reproduce --format json`: two images of each variant compared.
    Reproduce,
    Sbom,
    Scan,
    Sign,
    Sizes,
    Smoke,
    Verify,
    BenchPull,
    BenchRebuild,
    BenchSizes,
    BenchSmoke,
    BenchUpdate,
}

impl Kind {
    const ALL: [Kind; 18] = [
        Kind::Build,
        Kind::Builds,
        Kind::Config,
        Kind::Diff,
        Kind::Doctor,
        Kind::Lint,
        Kind::Reproduce,
        Kind::Sbom,
        Kind::Scan,
        Kind::Sign,
        Kind::Sizes,
        Kind::Smoke,
        Kind::Verify,
        Kind::BenchPull,
        Kind::BenchRebuild,
        Kind::BenchSizes,
        Kind::BenchSmoke,
        Kind::BenchUpdate,
    ];

    /// The `kind` written into the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Build => "build",
            Kind::Builds => "builds",
            Kind::Config => "config",
            Kind::Diff => "diff",
            Kind::Doctor => "doctor",
            Kind::Lint => "lint",
            Kind::Reproduce => "reproduce",
            Kind::Sbom => "sbom",
            Kind::Scan => "scan",
            Kind::Sign => "sign",
            Kind::Sizes => "sizes",
            Kind::Smoke => "smoke",
            Kind::Verify => "verify",
            Kind::BenchPull => "bench-pull",
            Kind::BenchRebuild => "bench-rebuild",
            Kind::BenchSizes => "bench-sizes",
            Kind::BenchSmoke => "bench-smoke",
            Kind::BenchUpdate => "bench-update",
        }
    }

    /// The version of its shape this xtask writes; readers take every one from 1 up to it.
    pub(crate) fn schema(self) -> u64 {
        match self {
            // 1: before secrets and ignore dates were reported.
            Kind::Scan => 2,
            _ => 1,
        }
    }

    /// What to pass instead of a report of another kind.
    fn hint(self) -> String {
        match self {
            Kind::Scan | Kind::Sizes => format!("pass a `cargo xtask {self} --save` report"),
            Kind::Build => "pass the build-<variant>.json that `cargo xtask build --push` (or \
                            `merge`) wrote"
                .into(),
            _ => format!(
                "pass what `cargo xtask {} --format json` printed",
                self.name().replace('-', " ")
            ),
        }
    }

    /// The schema of a report of this kind written before reports named their kind, told by
    /// its shape; None when it has not that shape.
    fn unnamed_schema(self, doc: &Value) -> Option<u64> {
        let schema = doc["schema"].as_u64();
        match self {
            Kind::Scan if doc["scans"].is_array() => schema,
            Kind::Sizes if doc["images"].is_array() => schema,
            Kind::Build if doc["variant"].is_string() && doc["tags"].is_array() => Some(1),
            _ => None,
        }
    }

    /// `{"kind": …, "schema": …, <the report's fields>}`; the report must serialize as a map.
    fn tag<T: Serialize + ?Sized>(self, report: &T) -> Tagged<'_, T> {
        Tagged {
            kind: self.name(),
            schema: self.schema(),
            report,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Serialize)]
struct Tagged<'a, T: ?Sized> {
    kind: &'static str,
    schema: u64,
    #[serde(flatten)]
    report: &'a T,
}

/// The report as pretty JSON with its kind and schema first, ending in a newline.
pub(crate) fn to_json<T: Serialize + ?Sized>(kind: Kind, report: &T) -> Result<String> {
    let json = serde_json::to_string_pretty(&kind.tag(report))
        .map_err(|e| anyhow::anyhow!("serializing the `{kind}` report: {e}"))?;
    Ok(json + "\n")
}

/// Reads the report of `kind` at `path`; any other document is an error naming what it is.
pub(crate) fn read<T: DeserializeOwned>(path: &Utf8Path, kind: Kind) -> Result<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => bail!(
            "cannot read the `{kind}` report {} ({e}): {}",
            crate::util::shown(path),
            kind.hint()
        ),
    };
    parse(&crate::util::shown(path), &text, kind)
}

/// Parses `text` (from `source`, a path or a command) as a report of `kind`.
pub(crate) fn parse<T: DeserializeOwned>(source: &str, text: &str, kind: Kind) -> Result<T> {
    let doc: Value = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => bail!(
            "{source} is not a `{kind}` report (not JSON: {e}): {}",
            kind.hint()
        ),
    };
    check(source, &doc, kind)?;
    match serde_json::from_value(doc) {
        Ok(report) => Ok(report),
        Err(e) => bail!(
            "{source} is a `{kind}` report this xtask cannot read ({e}): {}",
            kind.hint()
        ),
    }
}

/// Judges what `doc` is against the kind wanted (pure).
fn check(source: &str, doc: &Value, kind: Kind) -> Result<()> {
    let schema = match doc.get("kind").map(|k| k.as_str()) {
        Some(Some(found)) if found == kind.name() => doc["schema"].as_u64(),
        Some(Some(found)) => bail!(
            "{source} is a `{found}` report, not a `{kind}` report: {}",
            kind.hint()
        ),
        _ => match kind.unnamed_schema(doc) {
            Some(schema) => Some(schema),
            None => bail!(
                "{source} is {}, not a `{kind}` report: {}",
                describe(doc),
                kind.hint()
            ),
        },
    };
    match schema {
        Some(s) if (1..=kind.schema()).contains(&s) => Ok(()),
        Some(s) => bail!(
            "{source} is a `{kind}` report of schema {s}; this xtask reads schema 1 to {}: make \
             it again with this xtask ({})",
            kind.schema(),
            kind.hint()
        ),
        None => bail!(
            "{source} is a `{kind}` report without a schema number: {}",
            kind.hint()
        ),
    }
}

/// What a document that is not the report wanted looks like it is.
fn describe(doc: &Value) -> String {
    if let Some(kind) = Kind::ALL
        .into_iter()
        .find(|k| k.unnamed_schema(doc).is_some())
    {
        return format!("a `{kind}` report");
    }
    let foreign = if doc.get("SchemaVersion").is_some() {
        "a Trivy report"
    } else if doc.get("spdxVersion").is_some() {
        "an SPDX document"
    } else if doc["bomFormat"] == "CycloneDX" {
        "a CycloneDX document"
    } else if doc["$schema"].as_str().is_some_and(|s| s.contains("sarif")) {
        "a SARIF log"
    } else {
        "no report of this xtask (it names no kind)"
    };
    foreign.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
    struct Scans {
        scans: Vec<u32>,
    }

    fn err(text: &str, kind: Kind) -> String {
        parse::<Value>("r.json", text, kind)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_report_starts_with_its_kind_and_schema_and_reads_back() {
        let json = to_json(Kind::Scan, &Scans { scans: vec![1] }).unwrap();
        assert!(
            json.starts_with("{\n  \"kind\": \"scan\",\n  \"schema\": 2,\n  \"scans\""),
            "{json}"
        );
        assert_eq!(
            parse::<Scans>("r.json", &json, Kind::Scan).unwrap(),
            Scans { scans: vec![1] }
        );
        assert!(json.ends_with("}\n"));
    }

    #[test]
    fn another_kind_is_refused_naming_both() {
        let sizes = to_json(Kind::Sizes, &serde_json::json!({"images": []})).unwrap();
        assert_eq!(
            err(&sizes, Kind::Scan),
            "r.json is a `sizes` report, not a `scan` report: pass a `cargo xtask scan --save` report"
        );
        let doctor = to_json(Kind::Doctor, &serde_json::json!({"checks": []})).unwrap();
        assert!(err(&doctor, Kind::Build)
            .contains("is a `doctor` report, not a `build` report: pass the build-<variant>.json"));
        let e = err(&sizes, Kind::BenchSmoke);
        assert!(
            e.ends_with("pass what `cargo xtask bench smoke --format json` printed"),
            "{e}"
        );
    }

    #[test]
    fn reports_from_before_kinds_are_read_by_their_shape() {
        // What scan --save and sizes --save wrote before: both `"schema": 1`.
        let scan = r#"{"schema":1,"scans":[7]}"#;
        let sizes = r#"{"schema":1,"engine":"28","images":[]}"#;
        assert_eq!(
            parse::<Scans>("r.json", scan, Kind::Scan).unwrap().scans,
            [7]
        );
        assert!(parse::<Value>("r.json", sizes, Kind::Sizes).is_ok());
        assert!(err(sizes, Kind::Scan).starts_with("r.json is a `sizes` report, not a `scan`"));
        assert!(err(scan, Kind::Sizes).starts_with("r.json is a `scan` report, not a `sizes`"));
        let build = r#"{"variant":"cpu","tags":["v:cpu"],"pushed":false}"#;
        assert!(parse::<Value>("r.json", build, Kind::Build).is_ok());
        assert!(err(build, Kind::Scan).contains("is a `build` report"));
    }

    #[test]
    fn other_documents_are_named() {
        let e = err(r#"{"SchemaVersion":2,"Results":[]}"#, Kind::Scan);
        assert!(
            e.starts_with("r.json is a Trivy report, not a `scan` report"),
            "{e}"
        );
        assert!(err(r#"{"spdxVersion":"SPDX-2.3"}"#, Kind::Build).contains("an SPDX document"));
        assert!(err(r#"{"bomFormat":"CycloneDX"}"#, Kind::Build).contains("a CycloneDX document"));
        assert!(err("[1, 2]", Kind::Scan).contains("no report of this xtask (it names no kind)"));
        assert!(err("{", Kind::Scan).starts_with("r.json is not a `scan` report (not JSON: "));
    }

    #[test]
    fn schemas_this_xtask_cannot_read_are_refused() {
        let e = err(r#"{"kind":"scan","schema":9,"scans":[]}"#, Kind::Scan);
        assert!(
            e.contains("is a `scan` report of schema 9; this xtask reads schema 1 to 2"),
            "{e}"
        );
        assert!(err(r#"{"schema":9,"scans":[]}"#, Kind::Scan).contains("of schema 9"));
        assert!(err(r#"{"kind":"scan","scans":[]}"#, Kind::Scan).contains("without a schema"));
        let e = parse::<Scans>(
            "r.json",
            r#"{"kind":"scan","schema":2,"scans":"x"}"#,
            Kind::Scan,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("is a `scan` report this xtask cannot read (invalid type"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_file_says_what_to_pass() {
        let e = read::<Value>(Utf8Path::new("/nonexistent/s.json"), Kind::Sizes)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read the `sizes` report /nonexistent/s.json (")
                && e.ends_with("pass a `cargo xtask sizes --save` report"),
            "{e}"
        );
    }

    #[test]
    fn every_kind_has_its_own_name() {
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
