//! `cargo xtask scan` with `--from-report`: the real xtask binary judges hand-written Trivy JSON
//! reports (tests/fixtures/trivy/) against the scan policies of a test images.toml.
//!
//! Not run here: Trivy itself. It cannot be installed on the machine these tests were written on
//! and its DB cannot be downloaded, so the fixtures follow Trivy's documented JSON report format
//! (SchemaVersion 2) instead of being Trivy's output, and the `trivy image` step is covered only
//! by its argv unit test and by the "trivy is missing" case below. No Docker engine is needed.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

const CONFIG: &str = r#"
[defaults]
image = "localhost/xtask-scan"

[defaults.scan]
fail_on = ["CRITICAL", "HIGH"]
ignore_unfixed = true

# The defaults: the fixed HIGH fails, the unfixed CRITICAL is ignored.
[variants.app]
dockerfile = "{dockerfile}"

# Only CRITICAL fails, unfixed ones ignored: the mixed report passes.
[variants.critical]
dockerfile = "{dockerfile}"
scan = { fail_on = ["CRITICAL"] }

# Only CRITICAL fails, unfixed ones count: the unfixed CRITICAL fails.
[variants.unfixed]
dockerfile = "{dockerfile}"
scan = { fail_on = ["CRITICAL"], ignore_unfixed = false }

# The fixed HIGH is accepted; the second ID is in no report.
[variants.accepted]
dockerfile = "{dockerfile}"
scan = { ignore = ["CVE-2099-0001", "CVE-2000-9999"] }
"#;

struct Setup {
    dir: Scratch,
    config: String,
}

fn setup(name: &str) -> Setup {
    let dir = Scratch::new(&format!("scan-{name}"));
    let dockerfile = fixtures().join("build-ok").join("Dockerfile");
    let body = CONFIG.replace("{dockerfile}", &dockerfile.display().to_string());
    let config = dir
        .write("images.toml", &format!("{}{body}", config_head()))
        .to_string_lossy()
        .into_owned();
    Setup { dir, config }
}

fn report(name: &str) -> String {
    fixtures()
        .join("trivy")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

impl Setup {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = xtask();
        cmd.args(["--config", &self.config, "scan"]).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.cmd(args))
    }

    /// `scan VARIANT --from-report FILE --format json`, parsed.
    fn json(&self, variant: &str, file: &str, code: i32) -> (Value, Run) {
        let run = self.run(&[variant, "--from-report", &report(file), "--format", "json"]);
        assert_eq!(
            run.code, code,
            "stdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        let value: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("--format json is not JSON ({e}):\n{}", run.stdout));
        (value, run)
    }
}

fn ids_with_verdict(scan: &Value, verdict: &str) -> Vec<String> {
    scan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["verdict"] == verdict)
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn clean_report_passes() {
    let s = setup("clean");
    let run = s
        .run(&["app", "--from-report", &report("clean.json")])
        .assert_ok();
    let summary = run.stdout.lines().nth(2).unwrap_or_default();
    assert!(summary.starts_with("app "), "{}", run.stdout);
    assert!(summary.ends_with(" ok"), "{}", run.stdout);
    assert!(!run.stdout.contains("Failing"), "{}", run.stdout);

    let (json, _) = s.json("app", "clean.json", 0);
    let scan = &json["scans"][0];
    assert_eq!(scan["passed"], true);
    assert_eq!(scan["failing"], 0);
    assert_eq!(scan["findings"].as_array().unwrap().len(), 0);
    assert_eq!(scan["artifact"], "localhost/xtask-scan:clean");
}

#[test]
fn default_policy_fails_the_fixed_high_and_ignores_the_unfixed_critical() {
    let s = setup("default");
    let (json, run) = s.json("app", "mixed.json", 1);
    let scan = &json["scans"][0];
    assert_eq!(scan["variant"], "app");
    // The image the report names, not the variant's tag.
    assert_eq!(scan["image"], "localhost/xtask-scan:mixed");
    assert_eq!(scan["source"], format!("report {}", report("mixed.json")));
    assert_eq!(scan["passed"], false);
    assert_eq!(scan["failing"], 1);
    assert_eq!(ids_with_verdict(scan, "fail"), ["CVE-2099-0001"]);
    assert_eq!(ids_with_verdict(scan, "ignored-unfixed"), ["CVE-2099-0002"]);
    assert_eq!(
        ids_with_verdict(scan, "below-threshold"),
        ["GHSA-0000-0000-0004", "CVE-2099-0003"]
    );
    for (sev, n) in [
        ("CRITICAL", 1),
        ("HIGH", 1),
        ("MEDIUM", 1),
        ("LOW", 1),
        ("UNKNOWN", 0),
    ] {
        assert_eq!(scan["counts"][sev], n, "{sev}: {}", scan["counts"]);
    }
    let high = &scan["findings"][0];
    assert_eq!(high["package"], "libexample1");
    assert_eq!(high["installed"], "1.2.3-1");
    assert_eq!(high["fixed"], "1.2.3-1+deb13u1");
    assert_eq!(high["type"], "debian");

    let error = run.error_line();
    assert!(
        error.contains("app: 1 failing finding(s) (CVE-2099-0001)"),
        "{error}"
    );
    assert!(!error.contains("CVE-2099-0002"), "{error}");

    // The table: the summary, then the failing finding with package, versions and target.
    let run = s.run(&["app", "--from-report", &report("mixed.json")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("FAIL"), "{}", run.stdout);
    let failing = run
        .stdout
        .lines()
        .find(|l| l.contains("CVE-2099-0001"))
        .unwrap_or_else(|| panic!("no failing row:\n{}", run.stdout));
    for cell in [
        "libexample1",
        "1.2.3-1+deb13u1",
        "HIGH",
        "localhost/xtask-scan:mixed (debian 13.2)",
    ] {
        assert!(failing.contains(cell), "{cell} not in {failing}");
    }
}

#[test]
fn ignore_unfixed_decides_the_unfixed_critical() {
    let s = setup("unfixed");
    let (json, _) = s.json("critical", "mixed.json", 0);
    assert_eq!(json["scans"][0]["passed"], true);
    assert_eq!(
        ids_with_verdict(&json["scans"][0], "ignored-unfixed"),
        ["CVE-2099-0002"]
    );

    let (json, run) = s.json("unfixed", "mixed.json", 1);
    assert_eq!(
        ids_with_verdict(&json["scans"][0], "fail"),
        ["CVE-2099-0002"]
    );
    assert!(run.error_line().contains("CVE-2099-0002"), "{}", run.stderr);
}

#[test]
fn scan_ignore_accepts_an_id_and_reports_it() {
    let s = setup("ignore");
    let run = s
        .run(&["accepted", "--from-report", &report("mixed.json")])
        .assert_ok();
    let section = run
        .stdout
        .split("Ignored by scan.ignore")
        .nth(1)
        .unwrap_or_else(|| panic!("no ignored section:\n{}", run.stdout));
    assert!(section.contains("CVE-2099-0001"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("scan.ignore lists CVE-2000-9999, which the scan did not find"),
        "{}",
        run.stderr
    );
    let (json, _) = s.json("accepted", "mixed.json", 0);
    assert_eq!(
        ids_with_verdict(&json["scans"][0], "ignored"),
        ["CVE-2099-0001"]
    );
}

#[test]
fn markdown_step_summary_and_save() {
    let s = setup("markdown");
    let summary = s.dir.path().join("summary.md");
    let saved = s.dir.path().join("out").join("scan.json");
    let run = Run::of(
        s.cmd(&[
            "app",
            "--from-report",
            &report("mixed.json"),
            "--format",
            "markdown",
            "--save",
            saved.to_str().unwrap(),
        ])
        .env("GITHUB_STEP_SUMMARY", &summary),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let tables: Vec<&str> = run.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        tables[0].starts_with("| variant | image | CRITICAL |"),
        "{}",
        run.stdout
    );
    assert!(
        tables
            .iter()
            .all(|l| l.starts_with("#### ") || (l.starts_with('|') && l.ends_with('|'))),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("#### Failing"), "{}", run.stdout);
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(written.starts_with("### Vulnerability scan\n"), "{written}");
    assert!(written.contains("CVE-2099-0001"), "{written}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(saved["schema"], 1);
    assert_eq!(saved["scans"][0]["failing"], 1);
}

#[test]
fn unusable_reports_are_input_errors() {
    let s = setup("bad");
    let run = s.run(&["app", "--from-report", &report("schema1.json")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error_line()
            .contains("Trivy report SchemaVersion 1 is not supported; expected 2"),
        "{}",
        run.stderr
    );

    let run = s.run(&["app", "--from-report", &report("truncated.json")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error_line().contains("is not valid JSON"),
        "{}",
        run.stderr
    );

    let run = s.run(&["app", "--from-report", &report("missing.json")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error_line().contains("reading the Trivy report"),
        "{}",
        run.stderr
    );

    let run = s.run(&["app", "critical", "--from-report", &report("clean.json")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error_line()
            .contains("--from-report takes the scan policy of one variant"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_trivy_is_a_tool_error_with_an_install_hint() {
    let s = setup("no-trivy");
    let empty = s.dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let run = Run::of(s.cmd(&["app"]).env("PATH", &empty));
    assert_eq!(run.code, 2, "{}", run.stderr);
    let error = run.error_line();
    assert!(error.contains("trivy is not installed"), "{error}");
    assert!(error.contains("--from-report FILE"), "{error}");
}

#[test]
fn help_lists_scan() {
    let run = xtask_run(&["--help"]).assert_ok();
    assert!(
        run.stdout.contains("scan") && run.stdout.contains("Trivy"),
        "{}",
        run.stdout
    );
}
