//! SARIF checks shared by the tests of the commands that write it (`scan`, `lint`).

use super::{fixtures, Run, Scratch};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The OASIS SARIF 2.1.0 schema committed as test data (see fixtures/sarif/README.md).
pub fn sarif_schema() -> PathBuf {
    fixtures().join("sarif").join("sarif-schema-2.1.0.json")
}

/// Panics unless `path` validates against the SARIF 2.1.0 schema (check-jsonschema, from
/// .ci/tools.txt), passes GitHub's ingestion rules ([`assert_github_accepts`]) and reads back as
/// JSON.
pub fn assert_valid_sarif(path: &Path) -> serde_json::Value {
    let mut check = Command::new("check-jsonschema");
    check
        .args(["--regex-variant", "nonunicode", "--schemafile"])
        .arg(sarif_schema())
        .arg(path);
    if which(&check).is_none() {
        panic!("check-jsonschema is not on PATH: pip install -r .ci/tools.txt");
    }
    let run = Run::of(&mut check);
    assert_eq!(
        run.code,
        0,
        "{} is not valid SARIF 2.1.0 (check-jsonschema: pip install -r .ci/tools.txt):\n{}{}",
        path.display(),
        run.stdout,
        run.stderr
    );
    assert_github_accepts(path);
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The program a command runs, found on PATH.
fn which(cmd: &Command) -> Option<PathBuf> {
    let mut exe = cmd.get_program().to_owned();
    exe.push(std::env::consts::EXE_SUFFIX);
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(&exe))
        .find(|p| p.is_file())
}

/// Microsoft's SARIF Multitool: `$SARIF_MULTITOOL` (.ci/run sets it, so CI cannot skip the
/// check), else `Sarif.Multitool` on PATH.
fn multitool() -> Option<PathBuf> {
    match std::env::var_os("SARIF_MULTITOOL") {
        Some(path) => Some(path.into()),
        None => which(&Command::new("Sarif.Multitool")),
    }
}

/// Panics when the SARIF Multitool's `validate --rule-kind "Gh;Sarif"` (the SARIF spec's rules
/// and GitHub code scanning's GH1xxx) reports an error or a warning for `path`; notes pass.
/// Skipped, saying so, only where the Multitool is not installed.
pub fn assert_github_accepts(path: &Path) {
    let Some(tool) = multitool() else {
        eprintln!(
            "skipped: GitHub's SARIF rules not checked on {}: the SARIF Multitool is not \
             installed (bash .ci/install-sarif-multitool DIR, then DIR/bin on PATH)",
            path.display()
        );
        return;
    };
    // One directory per check: tests run in parallel.
    static CHECKS: AtomicUsize = AtomicUsize::new(0);
    let n = CHECKS.fetch_add(1, Ordering::Relaxed);
    let dir = Scratch::new(&format!("sarif-multitool-{n}"));
    let out = dir.path().join("validation.sarif");
    let run = Run::of(
        Command::new(&tool)
            .args(["validate", "--rule-kind", "Gh;Sarif"])
            .args(["--level", "Error;Warning;Note", "--output"])
            .arg(&out)
            .arg(path),
    );
    assert_eq!(
        run.code,
        0,
        "{} validate {}:\n{}{}",
        tool.display(),
        path.display(),
        run.stdout,
        run.stderr
    );
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let problems: Vec<String> = log["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["results"].as_array().into_iter().flatten())
        .filter(|r| r["level"] == "error" || r["level"] == "warning")
        .map(|r| format!("{} {}: {}", r["level"], r["ruleId"], r["message"]))
        .collect();
    assert!(
        problems.is_empty(),
        "{} breaks SARIF or GitHub's rules (Multitool `validate --rule-kind Gh;Sarif`):\n{}\n{}",
        path.display(),
        problems.join("\n"),
        run.stdout
    );
}
