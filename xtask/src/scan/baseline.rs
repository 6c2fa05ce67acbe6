//! `--baseline FILE`: an earlier `cargo xtask scan --save` report (e.g. made on main). Per
//! variant, which findings and secrets are new since then and which are gone. A finding is
//! the same when its ID, package and result class are (a new package version with the same
//! vulnerability is not new).

use anyhow::Result;
use camino::Utf8Path;
use serde::Deserialize;

use super::judge::{Gone, Judged};
use crate::report::{self, Kind};

#[derive(Debug, Deserialize)]
struct Saved {
    #[serde(default)]
    scans: Vec<SavedScan>,
}

#[derive(Debug, Clone, Deserialize)]
struct SavedScan {
    variant: String,
    #[serde(default)]
    findings: Vec<SavedFinding>,
    #[serde(default)]
    secrets: Vec<SavedSecret>,
}

#[derive(Debug, Clone, Deserialize)]
struct SavedFinding {
    id: String,
    package: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    installed: String,
}

#[derive(Debug, Clone, Deserialize)]
struct SavedSecret {
    rule: String,
    file: String,
}

#[derive(Debug)]
pub(crate) struct Baseline {
    scans: Vec<SavedScan>,
}

pub(crate) fn load(path: &Utf8Path) -> Result<Baseline> {
    let saved: Saved = report::read(path, Kind::Scan)?;
    Ok(Baseline { scans: saved.scans })
}

/// What makes two findings the same one across scans.
fn key(id: &str, package: &str, class: &str) -> (String, String, String) {
    (
        id.to_ascii_lowercase(),
        package.to_string(),
        class.to_string(),
    )
}

impl Baseline {
    pub(crate) fn has(&self, variant: &str) -> bool {
        self.scans.iter().any(|s| s.variant == variant)
    }

    /// Marks every finding and secret of `variant` new or not, and lists what is gone (all
    /// is new for a variant the baseline has no scan of).
    pub(crate) fn compare(&self, variant: &str, judged: &mut Judged) -> Vec<Gone> {
        let before = self.scans.iter().find(|s| s.variant == variant);
        let old_findings = before.map_or(&[][..], |s| &s.findings);
        let old_secrets = before.map_or(&[][..], |s| &s.secrets);
        let old: Vec<_> = old_findings
            .iter()
            .map(|f| key(&f.id, &f.package, &f.class))
            .collect();
        for f in &mut judged.findings {
            f.new = Some(!old.contains(&key(&f.id, &f.package, &f.class)));
        }
        for s in &mut judged.secrets {
            s.new = Some(
                !old_secrets
                    .iter()
                    .any(|o| o.rule == s.rule && o.file == s.file),
            );
        }
        let now: Vec<_> = judged
            .findings
            .iter()
            .map(|f| key(&f.id, &f.package, &f.class))
            .collect();
        let mut gone: Vec<Gone> = Vec::new();
        for f in old_findings {
            let g = Gone {
                id: f.id.clone(),
                package: f.package.clone(),
                class: f.class.clone(),
                installed: f.installed.clone(),
            };
            if !now.contains(&key(&f.id, &f.package, &f.class)) && !gone.contains(&g) {
                gone.push(g);
            }
        }
        for s in old_secrets {
            if !judged
                .secrets
                .iter()
                .any(|n| n.rule == s.rule && n.file == s.file)
            {
                gone.push(Gone {
                    id: s.rule.clone(),
                    package: s.file.clone(),
                    class: "secret".into(),
                    installed: String::new(),
                });
            }
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str, text: &str) -> Result<Saved> {
        report::parse(source, text, Kind::Scan)
    }

    #[test]
    fn only_scan_reports_are_baselines() {
        let err = |text: &str| parse("b.json", text).unwrap_err().to_string();
        assert!(err(r#"{"SchemaVersion":2,"Results":[]}"#).contains("is a Trivy report"));
        assert!(err(r#"{"schema":9,"scans":[]}"#).contains("of schema 9"));
        assert!(err(r#"{"scans":[]}"#).contains("it names no kind"));
        assert!(err("{").contains("pass a `cargo xtask scan --save` report"));
        assert!(err(r#"{"schema":1,"images":[]}"#).contains("is a `sizes` report"));
        // Schema 1 (before secrets were saved) still reads.
        let b = parse(
            "b.json",
            r#"{"schema":1,"scans":[{"variant":"cpu","findings":[{"id":"CVE-1","package":"p","class":"os-pkgs"}]}]}"#,
        )
        .unwrap();
        assert_eq!(b.scans[0].findings.len(), 1);
    }
}
