//! SARIF checks shared by the tests of the commands that write it (`scan`, `lint`).

use super::{fixtures, Run};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The OASIS SARIF 2.1.0 schema committed as test data (see fixtures/sarif/README.md).
pub fn sarif_schema() -> PathBuf {
    fixtures().join("sarif").join("sarif-schema-2.1.0.json")
}

/// Panics unless `path` validates against the SARIF 2.1.0 schema (check-jsonschema, from
/// .ci/tools.txt) and reads back as JSON.
pub fn assert_valid_sarif(path: &Path) -> serde_json::Value {
    let run = Run::of(
        Command::new("check-jsonschema")
            .args(["--regex-variant", "nonunicode", "--schemafile"])
            .arg(sarif_schema())
            .arg(path),
    );
    assert_eq!(
        run.code,
        0,
        "{} is not valid SARIF 2.1.0 (check-jsonschema: pip install -r .ci/tools.txt):\n{}{}",
        path.display(),
        run.stdout,
        run.stderr
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
