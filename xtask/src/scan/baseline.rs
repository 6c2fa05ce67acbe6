//! `--baseline FILE`: an earlier `cargo xtask scan --save` report (e.g. made on main). Per
//! variant, which findings and secrets are new since then and which are gone. A finding is
//! the same when its ID, package and result class are (a new package version with the same
//! vulnerability is not new).

use anyhow::Result;
use camino::Utf8Path;
use serde::Deserialize;

use super::judge::{Gone, VariantScan};
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
pub struct Baseline {
    scans: Vec<SavedScan>,
}

pub fn load(path: &Utf8Path) -> Result<Baseline> {
    let saved: Saved = report::read(path, Kind::Scan)?;
    Ok(Baseline { scans: saved.scans })
}

fn key(id: &str, package: &str, class: &str) -> (String, String, String) {
    (
        id.to_ascii_lowercase(),
        package.to_string(),
        class.to_string(),
    )
}

impl Baseline {
    /// Marks every finding and secret of `scan` new or not and lists what is gone. False when
    /// the baseline has no scan of this variant (then everything is new).
    pub fn apply(&self, scan: &mut VariantScan) -> bool {
        let before = self.scans.iter().find(|s| s.variant == scan.variant);
        let empty = SavedScan {
            variant: scan.variant.clone(),
            findings: vec![],
            secrets: vec![],
        };
        let before_scan = before.unwrap_or(&empty);
        let old: Vec<_> = before_scan
            .findings
            .iter()
            .map(|f| key(&f.id, &f.package, &f.class))
            .collect();
        let old_secrets: Vec<_> = before_scan
            .secrets
            .iter()
            .map(|s| (s.rule.clone(), s.file.clone()))
            .collect();
        for f in &mut scan.findings {
            f.new = Some(!old.contains(&key(&f.id, &f.package, &f.class)));
        }
        for s in &mut scan.secrets {
            s.new = Some(!old_secrets.contains(&(s.rule.clone(), s.file.clone())));
        }
        let now: Vec<_> = scan
            .findings
            .iter()
            .map(|f| key(&f.id, &f.package, &f.class))
            .collect();
        let mut gone: Vec<Gone> = Vec::new();
        for f in &before_scan.findings {
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
        for s in &before_scan.secrets {
            if !scan
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
        scan.fixed_since_baseline = Some(gone);
        before.is_some()
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
