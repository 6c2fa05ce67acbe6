//! The scan tests' offline Trivy vulnerability DB: test data, not real advisories. A bbolt file
//! `<cache>/db/trivy.db` (Go bbolt's format, written by `bbolt.rs`) and
//! `<cache>/db/metadata.json`, in the layout of Trivy's own integration fixtures
//! (`integration/testdata/fixtures/db`): `debian 13` → source package → ID → fix or status,
//! `pip::GitHub Security Advisory pip` and `go::GitHub Security Advisory Go` → package → ID →
//! version ranges, `vulnerability` → ID →
//! title and severity, `data-source` → bucket → where it came from.
//!
//! Every ID is `CVE-2099-…` (no such CVE exists) and every fixed version is far beyond what
//! Debian 13 or PyPI ship, so the packages below stay "vulnerable" whatever the images update to.

use crate::bbolt::{self, Bucket};
use std::path::Path;

/// How an advisory ends: a fixed version, or a Trivy status without one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fix {
    Fixed(&'static str),
    /// trivy-db status numbers: 2 affected, 5 will_not_fix, 6 fix_deferred.
    Unfixed(u8),
}

#[derive(Clone, Copy, Debug)]
pub struct Advisory {
    pub id: &'static str,
    /// `debian` (a Debian 13 *source* package), `pip` (a PyPI distribution) or `go` (a module).
    pub ecosystem: &'static str,
    pub package: &'static str,
    pub severity: &'static str,
    pub fix: Fix,
}

const fn advisory_in(
    ecosystem: &'static str,
    id: &'static str,
    package: &'static str,
    severity: &'static str,
    fix: Fix,
) -> Advisory {
    Advisory {
        id,
        ecosystem,
        package,
        severity,
        fix,
    }
}

/// The advisories: source packages of the offline base (so of every fixture image and of
/// `voxserve:cpu-minimal`; python3 and expat among them since `[base].include` has python3),
/// Python distributions of cpu-minimal's venv, and `fixture-lib` (only in the `scan-more`
/// fixture). python3's is LOW, so the policies' verdicts on the base (CRITICAL and HIGH fail)
/// stay those of its C libraries. The Go modules are those `fixtures/scan-gomod/go.mod` requires.
#[rustfmt::skip]
pub const ADVISORIES: &[Advisory] = &[
    advisory_in("debian", "CVE-2099-0001", "openssl", "CRITICAL", Fix::Fixed("99.0")),
    advisory_in("debian", "CVE-2099-0002", "glibc", "HIGH", Fix::Unfixed(2)),
    advisory_in("debian", "CVE-2099-0003", "zlib", "MEDIUM", Fix::Fixed("1:99")),
    advisory_in("debian", "CVE-2099-0004", "tar", "LOW", Fix::Fixed("99")),
    advisory_in("debian", "CVE-2099-0005", "coreutils", "UNKNOWN", Fix::Unfixed(5)),
    advisory_in("debian", "CVE-2099-0006", "python3-defaults", "LOW", Fix::Fixed("99")),
    advisory_in("debian", "CVE-2099-0007", "expat", "MEDIUM", Fix::Unfixed(6)),
    advisory_in("pip", "CVE-2099-0101", "starlette", "HIGH", Fix::Fixed("99.0.0")),
    advisory_in("pip", "CVE-2099-0102", "click", "LOW", Fix::Unfixed(2)),
    advisory_in("pip", "CVE-2099-0103", "fixture-lib", "HIGH", Fix::Fixed("2.0.0")),
    advisory_in("go", "CVE-2099-0201", "example.com/fixture/alpha", "CRITICAL", Fix::Fixed("1.9.0")),
    advisory_in("go", "CVE-2099-0202", "example.com/fixture/bravo", "HIGH", Fix::Fixed("1.3.0")),
    advisory_in("go", "CVE-2099-0203", "example.com/fixture/charlie", "MEDIUM", Fix::Fixed("0.4.0")),
    advisory_in("go", "CVE-2099-0204", "example.com/fixture/delta", "LOW", Fix::Unfixed(2)),
    advisory_in("go", "CVE-2099-0205", "example.com/fixture/echo", "HIGH", Fix::Unfixed(2)),
];

pub fn advisory(id: &str) -> &'static Advisory {
    ADVISORIES
        .iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("no fixture advisory {id}"))
}

const DEBIAN_BUCKET: &str = "debian 13";
const PIP_BUCKET: &str = "pip::GitHub Security Advisory pip";
const GO_BUCKET: &str = "go::GitHub Security Advisory Go";

fn severity_number(s: &str) -> u8 {
    match s {
        "LOW" => 1,
        "MEDIUM" => 2,
        "HIGH" => 3,
        "CRITICAL" => 4,
        _ => 0,
    }
}

/// The DB's buckets.
fn buckets() -> Bucket {
    let mut root = Bucket::default();
    for a in ADVISORIES {
        let value = match (a.ecosystem, a.fix) {
            ("debian", Fix::Fixed(v)) => format!(r#"{{"FixedVersion":"{v}"}}"#),
            ("debian", Fix::Unfixed(status)) => format!(r#"{{"Status":{status}}}"#),
            (_, Fix::Fixed(v)) => {
                format!(r#"{{"PatchedVersions":["{v}"],"VulnerableVersions":["<{v}"]}}"#)
            }
            (_, Fix::Unfixed(_)) => r#"{"VulnerableVersions":[">=0"]}"#.to_string(),
        };
        let ecosystem = match a.ecosystem {
            "debian" => DEBIAN_BUCKET,
            "go" => GO_BUCKET,
            _ => PIP_BUCKET,
        };
        root.bucket(ecosystem).bucket(a.package).put(a.id, value);
        let vendor = if a.ecosystem == "debian" {
            "debian"
        } else {
            "ghsa"
        };
        root.bucket("vulnerability").put(
            a.id,
            format!(
                r#"{{"Title":"fixture advisory for {} (test data)","Description":"Not a real vulnerability: test data of the xtask scan tests.","Severity":"{}","VendorSeverity":{{"{vendor}":{}}}}}"#,
                a.package,
                a.severity,
                severity_number(a.severity)
            ),
        );
    }
    root.bucket("data-source")
        .put(
            DEBIAN_BUCKET,
            r#"{"ID":"debian","Name":"Debian Security Tracker (fixture)","URL":"https://security-tracker.debian.org/tracker/"}"#,
        )
        .put(
            PIP_BUCKET,
            r#"{"ID":"ghsa","Name":"GitHub Security Advisory pip (fixture)","URL":"https://github.com/advisories"}"#,
        )
        .put(
            GO_BUCKET,
            r#"{"ID":"ghsa","Name":"GitHub Security Advisory Go (fixture)","URL":"https://github.com/advisories"}"#,
        );
    root
}

/// Writes the DB into `cache_dir/db` (created; an existing DB there is replaced).
pub fn write(cache_dir: &Path) {
    let dir = cache_dir.join("db");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("trivy.db"), bbolt::file(&buckets()))
        .expect("writing the fixture trivy.db");
    std::fs::write(
        dir.join("metadata.json"),
        r#"{"Version":2,"NextUpdate":"2999-01-01T00:00:00Z","UpdatedAt":"2026-12-01T00:00:00Z","DownloadedAt":"2026-12-01T00:00:00Z"}"#,
    )
    .unwrap();
}

#[test]
fn the_db_is_a_bbolt_file_of_the_buckets() {
    // The metas, the freelist, the root, `debian 13`, `pip::…` and `go::…` (they hold buckets) and
    // `vulnerability` (over a quarter page); `data-source` and each package are inline.
    assert_eq!(bbolt::check::pages(&buckets()), 8);
}
