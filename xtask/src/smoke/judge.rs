//! Judge (pure): what a check's command printed in the container, or the image config, → a
//! [`CheckResult`] with expected and actual; and the container's state → a [`StateVerdict`].

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::plan::{Check, HealthMode};
use crate::config::{ExecCheck, HttpCheck};
use crate::docker::{ContainerState, ExecOutput, HealthProbe, ImageConfig};
use crate::util;

/// One check's verdict: what was expected, and what the container or its image showed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct CheckResult {
    pub(crate) name: String,
    pub(crate) passed: bool,
    pub(crate) expected: String,
    pub(crate) actual: String,
}

impl CheckResult {
    pub(super) fn new(
        name: impl Into<String>,
        passed: bool,
        expected: String,
        actual: String,
    ) -> Self {
        CheckResult {
            name: name.into(),
            passed,
            expected,
            actual,
        }
    }
}

impl Check {
    /// Judges what the check's command did.
    pub(crate) fn judge(&self, out: &ExecOutput, config: &ImageConfig) -> CheckResult {
        match self {
            Check::Exec(c) => judge_exec(c, out),
            Check::Http(c) => judge_http(c, out),
            Check::NotRoot => judge_not_root(out),
            Check::Env(want) => judge_env(want, config.env.as_deref().unwrap_or_default()),
            Check::Labels(want) => judge_labels(want, config.labels.as_ref()),
            Check::ForbiddenPaths(paths) => judge_paths(paths, out),
            Check::ForbiddenPackages(globs) => judge_packages(globs, out),
            Check::SharedLibraries { host } => judge_shared_libraries(host, out),
            Check::TorchLibraries => judge_torch_libraries(out),
            Check::Pytest { name, file, .. } => judge_pytest(name, file.as_str(), out),
        }
    }
}

/// The last `max` characters of a command's output, trimmed, on one line when short.
fn tail(text: &str, max: usize) -> String {
    let text = text.trim();
    let count = text.chars().count();
    if count <= max {
        text.to_string()
    } else {
        let skip = count - max;
        format!("…{}", text.chars().skip(skip).collect::<String>())
    }
}

/// What went wrong running a command, when it did not run to completion.
fn exec_problem(out: &ExecOutput, program: &str, why: &str) -> Option<String> {
    if out.timed_out {
        Some("timed out (killed)".into())
    } else if out.missing_executable() {
        Some(format!("`{program}` is not in the image ({why})"))
    } else {
        None
    }
}

pub(super) fn describe_exec(out: &ExecOutput) -> String {
    let mut s = if out.timed_out {
        "timed out (killed)".to_string()
    } else {
        format!("exit {}", out.code)
    };
    if !out.stdout.trim().is_empty() {
        s.push_str(&format!(", stdout: {:?}", tail(&out.stdout, 400)));
    }
    if !out.stderr.trim().is_empty() {
        s.push_str(&format!(", stderr: {:?}", tail(&out.stderr, 400)));
    }
    s
}

pub(crate) fn judge_exec(check: &ExecCheck, out: &ExecOutput) -> CheckResult {
    let mut expected = format!("exit {}", check.exit_code);
    if let Some(text) = &check.stdout_contains {
        expected.push_str(&format!(", stdout contains {text:?}"));
    }
    let passed = !out.timed_out
        && out.code == check.exit_code
        && check
            .stdout_contains
            .as_ref()
            .is_none_or(|t| out.stdout.contains(t.as_str()));
    CheckResult::new(&check.name, passed, expected, describe_exec(out))
}

/// What the HTTP snippet printed.
#[derive(Debug, serde::Deserialize)]
struct HttpAnswer {
    status: Option<u16>,
    error: Option<String>,
    json: Option<serde_json::Value>,
    #[serde(default)]
    body: String,
}

/// Equal as JSON, numbers compared by value (TOML `1` matches JSON `1.0`).
fn json_eq(want: &serde_json::Value, got: &serde_json::Value) -> bool {
    match (want, got) {
        (serde_json::Value::Number(a), serde_json::Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => want == got,
    }
}

/// The status the HTTP snippet got, if it got an answer.
pub(super) fn http_status(out: &ExecOutput) -> Option<u16> {
    let line = out.stdout.lines().rfind(|l| !l.trim().is_empty())?;
    serde_json::from_str::<HttpAnswer>(line).ok()?.status
}

pub(crate) fn judge_http(check: &HttpCheck, out: &ExecOutput) -> CheckResult {
    let mut expected = format!("{} {} → status {}", check.method, check.path, check.status);
    let want: BTreeMap<&String, serde_json::Value> = check
        .json
        .iter()
        .map(|(k, v)| {
            (
                k,
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
            )
        })
        .collect();
    for (k, v) in &want {
        expected.push_str(&format!(", json {k} = {v}"));
    }
    let fail = |actual: String| CheckResult::new(&check.name, false, expected.clone(), actual);
    if let Some(problem) = exec_problem(out, "python3", "HTTP checks run python3 in the container")
    {
        return fail(problem);
    }
    let line = out
        .stdout
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("");
    let answer: HttpAnswer = match serde_json::from_str(line) {
        Ok(a) if out.code == 0 => a,
        _ => return fail(format!("the request did not run: {}", describe_exec(out))),
    };
    let Some(status) = answer.status else {
        return fail(format!(
            "no answer: {}",
            answer.error.unwrap_or_else(|| "unknown error".into())
        ));
    };
    let mut problems = Vec::new();
    if status != check.status {
        problems.push(format!("status {status}"));
    }
    for (k, v) in &want {
        match answer.json.as_ref().and_then(|j| j.get(k.as_str())) {
            Some(got) if json_eq(v, got) => {}
            Some(got) => problems.push(format!("json {k} = {got}")),
            None => problems.push(format!("json has no {k}")),
        }
    }
    let body = tail(&answer.body, 300);
    if problems.is_empty() {
        CheckResult::new(
            &check.name,
            true,
            expected,
            format!("status {status}, body {body}"),
        )
    } else {
        fail(format!("{}; body: {body}", problems.join(", ")))
    }
}

/// pytest's summary line (`5 passed, 1 skipped in 0.52s`), the last one that counts tests.
fn pytest_summary(stdout: &str) -> Option<&str> {
    stdout.lines().map(str::trim).rfind(|l| {
        [" passed", " failed", " skipped", " error", " no tests ran"]
            .iter()
            .any(|w| l.contains(w))
    })
}

/// Every test of the file passed, and none was skipped: a skip (torch not importable…) would
/// make the check pass without testing what it names.
pub(crate) fn judge_pytest(name: &str, file: &str, out: &ExecOutput) -> CheckResult {
    let short = file.rsplit('/').next().unwrap_or(file);
    let expected = format!("pytest {short}: every test passed, none skipped");
    let fail = |actual: String| CheckResult::new(name, false, expected.clone(), actual);
    if let Some(problem) = exec_problem(out, "python3", "pytest checks run python3 in the image") {
        return fail(problem);
    }
    let Some(summary) = pytest_summary(&out.stdout) else {
        return fail(format!("pytest printed no summary: {}", describe_exec(out)));
    };
    let summary = summary.trim_matches('=').trim().to_string();
    if out.code != 0 || summary.contains("skipped") || !summary.contains("passed") {
        let failures: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| {
                l.starts_with("FAILED ") || l.starts_with("ERROR ") || l.starts_with("SKIPPED ")
            })
            .collect();
        return fail(if failures.is_empty() {
            format!("exit {}: {summary}", out.code)
        } else {
            format!("exit {}: {summary}; {}", out.code, failures.join("; "))
        });
    }
    CheckResult::new(name, true, expected, summary)
}

pub(crate) fn judge_not_root(out: &ExecOutput) -> CheckResult {
    let expected = "uid ≠ 0 (`id -u`, or Python's os.getuid() where there is no `id`)".to_string();
    let name = Check::NotRoot.name();
    if let Some(problem) = exec_problem(out, "id", "nor python3: they tell the user's ID") {
        return CheckResult::new(name, false, expected, problem);
    }
    match out.stdout.trim().parse::<u32>() {
        Ok(uid) if out.code == 0 => {
            CheckResult::new(name, uid != 0, expected, format!("uid {uid}"))
        }
        _ => CheckResult::new(name, false, expected, describe_exec(out)),
    }
}

/// `NAME` must be defined; `NAME=VALUE` must have that value.
pub(crate) fn judge_env(want: &[String], env: &[String]) -> CheckResult {
    let defined: BTreeMap<&str, &str> = env
        .iter()
        .map(|e| e.split_once('=').unwrap_or((e.as_str(), "")))
        .collect();
    let mut problems = Vec::new();
    for spec in want {
        match spec.split_once('=') {
            Some((name, value)) => match defined.get(name) {
                Some(got) if *got == value => {}
                Some(got) => problems.push(format!("{name}={got}")),
                None => problems.push(format!("{name} undefined")),
            },
            None if defined.contains_key(spec.as_str()) => {}
            None => problems.push(format!("{spec} undefined")),
        }
    }
    let passed = problems.is_empty();
    let actual = if passed {
        format!("all {} defined", want.len())
    } else {
        problems.join(", ")
    };
    CheckResult::new("env vars", passed, want.join(", "), actual)
}

pub(crate) fn judge_labels(
    want: &[String],
    labels: Option<&BTreeMap<String, String>>,
) -> CheckResult {
    let missing: Vec<&str> = want
        .iter()
        .filter(|l| !labels.is_some_and(|m| m.contains_key(l.as_str())))
        .map(String::as_str)
        .collect();
    let passed = missing.is_empty();
    let actual = if passed {
        format!("all {} present", want.len())
    } else {
        format!("missing: {}", missing.join(", "))
    };
    CheckResult::new("labels", passed, want.join(", "), actual)
}

#[derive(Debug, Default, serde::Deserialize, Serialize)]
pub(super) struct PathsAnswer {
    pub(crate) present: Vec<String>,
    pub(crate) unreadable: Vec<String>,
}

pub(crate) fn judge_paths(paths: &[String], out: &ExecOutput) -> CheckResult {
    let name = "forbidden paths absent";
    let expected = format!("none of {}", paths.join(", "));
    let answer: PathsAnswer = match serde_json::from_str(out.stdout.trim()) {
        Ok(a) if out.code == 0 => a,
        _ => {
            let problem = exec_problem(out, "python3", "and no `test` either")
                .unwrap_or_else(|| describe_exec(out));
            return CheckResult::new(name, false, expected, problem);
        }
    };
    let mut problems = Vec::new();
    if !answer.present.is_empty() {
        problems.push(format!("present: {}", answer.present.join(", ")));
    }
    if !answer.unreadable.is_empty() {
        problems.push(format!("cannot tell: {}", answer.unreadable.join(", ")));
    }
    let passed = problems.is_empty();
    let actual = if passed {
        format!("all {} absent", paths.len())
    } else {
        problems.join("; ")
    };
    CheckResult::new(name, passed, expected, actual)
}

pub(crate) fn judge_packages(globs: &[String], out: &ExecOutput) -> CheckResult {
    let name = "forbidden python packages absent";
    let expected = format!("no distribution matching {}", globs.join(", "));
    if let Some(problem) = exec_problem(out, "python3", "it lists the installed packages") {
        return CheckResult::new(name, false, expected, problem);
    }
    match serde_json::from_str::<Vec<String>>(out.stdout.trim()) {
        Ok(found) if out.code == 0 => {
            let passed = found.is_empty();
            let actual = if passed {
                "none installed".into()
            } else {
                format!("installed: {}", found.join(", "))
            };
            CheckResult::new(name, passed, expected, actual)
        }
        _ => CheckResult::new(name, false, expected, describe_exec(out)),
    }
}

/// One DT_NEEDED entry the probe looked for: the ELF file and the library it names.
#[derive(Debug, serde::Deserialize)]
struct Needed {
    file: String,
    needed: String,
}

#[derive(Debug, serde::Deserialize)]
struct LibrariesAnswer {
    elf_files: u64,
    unresolved: Vec<Needed>,
    host: Vec<Needed>,
}

/// How many entries an error names before "and N more".
const NAMED: usize = 8;

fn name_some(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > NAMED {
        text.push_str(&format!("; and {} more", items.len() - NAMED));
    }
    text
}

pub(crate) fn judge_shared_libraries(host: &[String], out: &ExecOutput) -> CheckResult {
    let name = Check::SharedLibraries { host: vec![] }.name();
    let expected = if host.is_empty() {
        "every DT_NEEDED of every ELF file found in the image".to_string()
    } else {
        format!(
            "every DT_NEEDED of every ELF file found in the image, but those the host provides ({})",
            host.join(", ")
        )
    };
    if let Some(problem) = exec_problem(out, "python3", "it reads the ELF files") {
        return CheckResult::new(name, false, expected, problem);
    }
    let answer: LibrariesAnswer = match serde_json::from_str(out.stdout.trim()) {
        Ok(a) if out.code == 0 => a,
        _ => return CheckResult::new(name, false, expected, describe_exec(out)),
    };
    if answer.unresolved.is_empty() {
        let mut actual = format!("{} ELF files, every DT_NEEDED resolves", answer.elf_files);
        if !answer.host.is_empty() {
            let mut sonames: Vec<&str> = answer.host.iter().map(|n| n.needed.as_str()).collect();
            sonames.sort_unstable();
            sonames.dedup();
            actual.push_str(&format!(
                " but {} entries the host provides ({})",
                answer.host.len(),
                sonames.join(", ")
            ));
        }
        return CheckResult::new(name, true, expected, actual);
    }
    let missing: Vec<String> = answer
        .unresolved
        .iter()
        .map(|n| format!("{} (needed by {})", n.needed, n.file))
        .collect();
    CheckResult::new(
        name,
        false,
        expected,
        format!("not found: {}", name_some(&missing)),
    )
}

#[derive(Debug, serde::Deserialize)]
struct TorchAnswer {
    problems: Vec<String>,
    torch: String,
    cuda: Option<String>,
    mapped: Vec<String>,
    preloaded: Vec<String>,
    dlopened: Vec<String>,
}

pub(crate) fn judge_torch_libraries(out: &ExecOutput) -> CheckResult {
    let name = Check::TorchLibraries.name();
    let expected = "`import torch` works; every library torch preloads, and every one its \
                    libraries dlopen by name, is there and loads"
        .to_string();
    if let Some(problem) = exec_problem(out, "python3", "it imports torch") {
        return CheckResult::new(name, false, expected, problem);
    }
    let answer: TorchAnswer = match serde_json::from_str(out.stdout.trim()) {
        Ok(a) if out.code == 0 => a,
        _ => return CheckResult::new(name, false, expected, describe_exec(out)),
    };
    if !answer.problems.is_empty() {
        return CheckResult::new(name, false, expected, name_some(&answer.problems));
    }
    let build = answer
        .cuda
        .map_or("no CUDA".to_string(), |v| format!("CUDA {v}"));
    CheckResult::new(
        name,
        true,
        expected,
        format!(
            "torch {} ({build}): {} GPU libraries mapped after import, {} preloaded and {} \
             dlopened by name, all loaded",
            answer.torch,
            answer.mapped.len(),
            answer.preloaded.len(),
            answer.dlopened.len()
        ),
    )
}

/// What one look at the container's state says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StateVerdict {
    Waiting,
    Healthy,
    Unhealthy(String),
    Exited(String),
}

pub(crate) fn judge_state(state: &ContainerState, mode: &HealthMode) -> StateVerdict {
    if !state.running && matches!(state.status.as_str(), "exited" | "dead" | "created") {
        if state.status == "created" && state.error.is_empty() {
            return StateVerdict::Waiting;
        }
        let mut why = format!("the container exited with code {}", state.exit_code);
        if state.oom_killed {
            why.push_str(" (killed: out of memory; raise smoke.memory?)");
        }
        if !state.error.is_empty() {
            why.push_str(&format!(": {}", state.error));
        }
        return StateVerdict::Exited(why);
    }
    if *mode != HealthMode::Engine {
        return StateVerdict::Waiting;
    }
    match state.health.as_ref().map(|h| h.status.as_str()) {
        Some("healthy") => StateVerdict::Healthy,
        Some("unhealthy") => StateVerdict::Unhealthy(format!(
            "the health check reports unhealthy ({} failing probes in a row)",
            state.health.as_ref().map_or(0, |h| h.failing_streak)
        )),
        _ => StateVerdict::Waiting,
    }
}

/// The end of the first passing probe in the engine's log: the app's first healthy answer.
pub(crate) fn first_pass_end(log: &[HealthProbe]) -> Option<SystemTime> {
    log.iter()
        .find(|p| p.exit_code == 0)
        .and_then(|p| util::parse_rfc3339(&p.end))
        .map(|since_epoch| std::time::UNIX_EPOCH + since_epoch)
}

/// Why a container that never became healthy failed, once its time is up.
pub(crate) fn not_healthy_within(timeout: Duration, state: &ContainerState) -> String {
    let status = state
        .health
        .as_ref()
        .map_or("no health status".to_string(), |h| {
            format!("health status `{}`", h.status)
        });
    format!("not healthy within {} ({status})", human_duration(timeout))
}

fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(10) && d.subsec_millis() != 0 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} s", d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker;

    fn out(code: i32, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
            timed_out: false,
        }
    }

    fn exec_check(stdout_contains: Option<&str>) -> ExecCheck {
        ExecCheck {
            name: "imports".into(),
            cmd: vec!["python3".into()],
            exit_code: 0,
            stdout_contains: stdout_contains.map(String::from),
        }
    }

    #[test]
    fn exec_checks_report_expected_and_actual() {
        let r = judge_exec(&exec_check(Some("ok")), &out(0, "ok\n", ""));
        assert!(r.passed, "{r:?}");
        let r = judge_exec(
            &exec_check(Some("ok")),
            &out(1, "", "ModuleNotFoundError: torch"),
        );
        assert!(!r.passed);
        assert_eq!(r.expected, "exit 0, stdout contains \"ok\"");
        assert_eq!(r.actual, "exit 1, stderr: \"ModuleNotFoundError: torch\"");
        let r = judge_exec(&exec_check(Some("ok")), &out(0, "nope", ""));
        assert!(!r.passed && r.actual.contains("nope"));
        let timed_out = ExecOutput {
            timed_out: true,
            code: -1,
            ..ExecOutput::default()
        };
        assert!(!judge_exec(&exec_check(None), &timed_out).passed);
    }

    fn http_check(json: &str) -> HttpCheck {
        toml::from_str(&format!(
            "name = \"health\"\npath = \"/health\"\njson = {json}\n"
        ))
        .unwrap()
    }

    #[test]
    fn http_checks_compare_status_and_json_fields() {
        let check = http_check("{ status = \"ok\", n = 1 }");
        let answer =
            r#"{"status": 200, "error": null, "json": {"status": "ok", "n": 1.0}, "body": "{}"}"#;
        assert!(judge_http(&check, &out(0, answer, "")).passed);

        let answer = r#"{"status": 503, "error": null, "json": {"status": "starting"}, "body": "{\"status\": \"starting\"}"}"#;
        let r = judge_http(&check, &out(0, answer, ""));
        assert!(!r.passed);
        assert_eq!(
            r.expected,
            "GET /health → status 200, json n = 1, json status = \"ok\""
        );
        assert!(
            r.actual
                .starts_with("status 503, json has no n, json status = \"starting\""),
            "{}",
            r.actual
        );

        let refused = r#"{"status": null, "error": "URLError: refused", "json": null, "body": ""}"#;
        let r = judge_http(&check, &out(0, refused, ""));
        assert_eq!(r.actual, "no answer: URLError: refused");

        let missing = out(
            127,
            "",
            "exec: \"python3\": executable file not found in $PATH",
        );
        let r = judge_http(&check, &missing);
        assert!(
            r.actual.contains("`python3` is not in the image"),
            "{}",
            r.actual
        );
    }

    #[test]
    fn user_env_and_labels_are_judged() {
        assert!(judge_not_root(&out(0, "10001\n", "")).passed);
        let r = judge_not_root(&out(0, "0\n", ""));
        assert!(!r.passed && r.actual == "uid 0");

        let env = ["PATH=/usr/bin".to_string(), "A=1".into(), "B=".into()];
        assert!(judge_env(&["A=1".into(), "B".into()], &env).passed);
        let r = judge_env(&["A=2".into(), "C".into()], &env);
        assert!(!r.passed);
        assert_eq!(r.actual, "A=1, C undefined");

        let labels: BTreeMap<String, String> = [("a".to_string(), "x".to_string())].into();
        assert!(judge_labels(&["a".into()], Some(&labels)).passed);
        let r = judge_labels(&["a".into(), "b".into()], Some(&labels));
        assert_eq!(r.actual, "missing: b");
        assert!(!judge_labels(&["a".into()], None).passed);
    }

    #[test]
    fn forbidden_paths_and_packages_are_judged() {
        let paths = ["/a".to_string(), "/root/.cache".into()];
        assert!(judge_paths(&paths, &out(0, r#"{"present": [], "unreadable": []}"#, "")).passed);
        let r = judge_paths(
            &paths,
            &out(
                0,
                r#"{"present": ["/a"], "unreadable": ["/root/.cache (Permission denied)"]}"#,
                "",
            ),
        );
        assert!(!r.passed);
        assert_eq!(
            r.actual,
            "present: /a; cannot tell: /root/.cache (Permission denied)"
        );

        let globs = ["nvidia-*".to_string()];
        assert!(judge_packages(&globs, &out(0, "[]", "")).passed);
        let r = judge_packages(&globs, &out(0, r#"["nvidia-cublas-cu12 12.8"]"#, ""));
        assert_eq!(r.actual, "installed: nvidia-cublas-cu12 12.8");
        let r = judge_packages(&globs, &out(127, "", "executable file not found in $PATH"));
        assert!(
            r.actual.contains("`python3` is not in the image"),
            "{}",
            r.actual
        );
    }

    #[test]
    fn shared_libraries_name_what_is_missing_and_what_the_host_provides() {
        let ok = out(0, r#"{"elf_files": 9, "unresolved": [], "host": []}"#, "");
        let r = judge_shared_libraries(&[], &ok);
        assert!(r.passed, "{r:?}");
        assert_eq!(r.actual, "9 ELF files, every DT_NEEDED resolves");
        let host = out(
            0,
            r#"{"elf_files": 9, "unresolved": [], "host": [
                {"file": "/a/libx.so", "needed": "libcuda.so.1"},
                {"file": "/a/liby.so", "needed": "libcuda.so.1"}]}"#,
            "",
        );
        let r = judge_shared_libraries(&["libcuda.so.1".into()], &host);
        assert!(r.passed);
        assert!(
            r.actual
                .ends_with("but 2 entries the host provides (libcuda.so.1)"),
            "{}",
            r.actual
        );
        assert!(r.expected.contains("(libcuda.so.1)"), "{}", r.expected);
        let missing = out(
            0,
            r#"{"elf_files": 9, "unresolved": [
                {"file": "/usr/lib/python3.13/lib-dynload/_sqlite3.so", "needed": "libsqlite3.so.0"}],
                "host": []}"#,
            "",
        );
        let r = judge_shared_libraries(&[], &missing);
        assert!(!r.passed);
        assert_eq!(
            r.actual,
            "not found: libsqlite3.so.0 (needed by /usr/lib/python3.13/lib-dynload/_sqlite3.so)"
        );
        let r = judge_shared_libraries(&[], &out(127, "", "executable file not found in $PATH"));
        assert!(
            r.actual.contains("`python3` is not in the image"),
            "{}",
            r.actual
        );
        let many: Vec<String> = (0..10).map(|i| format!("l{i}")).collect();
        assert!(name_some(&many).ends_with("; and 2 more"));
    }

    #[test]
    fn torch_libraries_pass_only_without_problems() {
        let good = out(
            0,
            r#"{"problems": [], "torch": "2.15.0+cu132", "cuda": "13.2", "mapped": ["a", "b"],
                "preloaded": ["c"], "dlopened": ["d", "e", "f"]}"#,
            "",
        );
        let r = judge_torch_libraries(&good);
        assert!(r.passed);
        assert_eq!(
            r.actual,
            "torch 2.15.0+cu132 (CUDA 13.2): 2 GPU libraries mapped after import, 1 preloaded \
             and 3 dlopened by name, all loaded"
        );
        let bad = out(
            0,
            r#"{"problems": ["torch preloads cudnn/libcudnn.so.*[0-9]: not found"],
                "torch": "2.15.0", "cuda": "13.2", "mapped": [], "preloaded": [], "dlopened": []}"#,
            "",
        );
        let r = judge_torch_libraries(&bad);
        assert!(!r.passed);
        assert_eq!(
            r.actual,
            "torch preloads cudnn/libcudnn.so.*[0-9]: not found"
        );
        let r = judge_torch_libraries(&out(1, "", "ModuleNotFoundError: No module named 'torch'"));
        assert!(!r.passed && r.actual.contains("torch"), "{}", r.actual);
    }

    fn state(status: &str, health: Option<&str>) -> ContainerState {
        ContainerState {
            status: status.into(),
            running: status == "running",
            exit_code: if status == "exited" { 3 } else { 0 },
            health: health.map(|h| docker::Health {
                status: h.into(),
                failing_streak: 4,
                log: None,
            }),
            ..ContainerState::default()
        }
    }

    #[test]
    fn container_states_are_judged() {
        let engine = HealthMode::Engine;
        assert_eq!(
            judge_state(&state("created", None), &engine),
            StateVerdict::Waiting
        );
        assert_eq!(
            judge_state(&state("running", Some("starting")), &engine),
            StateVerdict::Waiting
        );
        assert_eq!(
            judge_state(&state("running", Some("healthy")), &engine),
            StateVerdict::Healthy
        );
        assert_eq!(
            judge_state(&state("running", Some("unhealthy")), &engine),
            StateVerdict::Unhealthy(
                "the health check reports unhealthy (4 failing probes in a row)".into()
            )
        );
        assert_eq!(
            judge_state(&state("exited", Some("starting")), &engine),
            StateVerdict::Exited("the container exited with code 3".into())
        );
        let mut oom = state("exited", None);
        oom.oom_killed = true;
        assert!(
            matches!(judge_state(&oom, &engine), StateVerdict::Exited(w) if w.contains("out of memory"))
        );
        // With xtask's own probe, the engine's health status is not consulted.
        let probe = HealthMode::Probe("/health".into());
        assert_eq!(
            judge_state(&state("running", None), &probe),
            StateVerdict::Waiting
        );
    }

    #[test]
    fn the_first_passing_probe_marks_the_healthy_answer() {
        let probe = |code, end: &str| HealthProbe {
            exit_code: code,
            end: end.into(),
            ..HealthProbe::default()
        };
        let log = [
            probe(1, "2026-11-28T03:30:26.5Z"),
            probe(0, "2026-11-28T03:30:27.25Z"),
            probe(0, "2026-11-28T03:30:28Z"),
        ];
        assert_eq!(
            first_pass_end(&log),
            util::parse_rfc3339("2026-11-28T03:30:27.25Z").map(|d| std::time::UNIX_EPOCH + d)
        );
        assert_eq!(first_pass_end(&log[..1]), None);
    }

    #[test]
    fn time_outs_say_how_long_and_the_last_health_status() {
        let starting = state("running", Some("starting"));
        assert_eq!(
            not_healthy_within(Duration::from_millis(1500), &starting),
            "not healthy within 1.5 s (health status `starting`)"
        );
        assert_eq!(
            not_healthy_within(Duration::from_secs(90), &state("running", None)),
            "not healthy within 90 s (no health status)"
        );
    }

    #[test]
    fn a_pytest_check_passes_only_when_every_test_passed() {
        let run = |code: i32, stdout: &str| ExecOutput {
            code,
            stdout: stdout.into(),
            ..ExecOutput::default()
        };
        let judge = |out: &ExecOutput| judge_pytest("parity", "/m/tests-0/test_parity.py", out);
        let ok = judge(&run(
            0,
            "......                                   [100%]\n6 passed in 0.52s\n",
        ));
        assert!(ok.passed, "{ok:?}");
        assert_eq!(ok.actual, "6 passed in 0.52s");
        assert_eq!(
            ok.expected,
            "pytest test_parity.py: every test passed, none skipped"
        );

        let skipped = judge(&run(
            0,
            "s\n=== short test summary info ===\nSKIPPED [1] test_parity.py:15: could not import 'torch'\n1 skipped in 0.01s\n",
        ));
        assert!(!skipped.passed);
        assert!(
            skipped.actual.contains("1 skipped")
                && skipped.actual.contains("could not import 'torch'"),
            "{}",
            skipped.actual
        );
        let failed = judge(&run(
            1,
            "F.\nFAILED test_parity.py::test_x - assert 1 == 2\n1 failed, 1 passed in 0.1s\n",
        ));
        assert!(!failed.passed);
        assert!(
            failed.actual.contains("FAILED test_parity.py::test_x"),
            "{}",
            failed.actual
        );
        let missing = judge(&ExecOutput {
            code: 127,
            stderr: "exec: \"python3\": executable file not found in $PATH".into(),
            ..ExecOutput::default()
        });
        assert!(!missing.passed && missing.actual.contains("`python3` is not in the image"));
        assert!(!judge(&run(1, "ModuleNotFoundError: No module named 'pytest'\n")).passed);
    }
}
