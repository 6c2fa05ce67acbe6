//! Each linter's machine output → findings `file:line: tool rule message`. Pure: the unit tests
//! feed output captured from the real tools.

use anyhow::{Context, Result};
use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use super::files::relative;
use super::plan::Tool;
use crate::docker::BuildCheck;

/// How bad a finding is, in SARIF's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    Error,
    Warning,
    Note,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// One thing a linter reported. Every finding fails `cargo xtask lint`; the level says how bad.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(crate) struct Finding {
    /// Relative to the project directory, `/`-separated.
    pub(crate) file: String,
    /// 1-based; None for findings about a whole file or image (dive).
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
    pub(crate) tool: Tool,
    pub(crate) rule: String,
    pub(crate) level: Level,
    pub(crate) message: String,
    /// The rule's documentation.
    pub(crate) url: Option<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}:", self.file)?,
            None => write!(f, "{}:", self.file)?,
        }
        write!(f, " {} {} {}", self.tool, self.rule, self.message)
    }
}

fn finding(tool: Tool, file: &str, line: Option<u32>, rule: &str, level: Level) -> Finding {
    Finding {
        file: file.replace('\\', "/").trim_start_matches("./").to_string(),
        line: line.filter(|&l| l > 0),
        column: None,
        tool,
        rule: rule.to_string(),
        level,
        message: String::new(),
        url: None,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// -----------------------------------------------------------------------------------------------
// hadolint --format=json

#[derive(Deserialize)]
struct Hadolint {
    code: String,
    file: String,
    line: u32,
    #[serde(default)]
    column: Option<u32>,
    level: String,
    message: String,
}

pub(crate) fn hadolint(stdout: &str) -> Result<Vec<Finding>> {
    let items: Vec<Hadolint> =
        serde_json::from_str(stdout.trim()).context("parsing hadolint's JSON")?;
    Ok(items
        .into_iter()
        .map(|h| {
            let level = match h.level.as_str() {
                "error" => Level::Error,
                "warning" => Level::Warning,
                _ => Level::Note,
            };
            let mut f = finding(Tool::Hadolint, &h.file, Some(h.line), &h.code, level);
            f.column = h.column;
            f.message = one_line(&h.message);
            f.url = Some(if h.code.starts_with("SC") {
                format!("https://www.shellcheck.net/wiki/{}", h.code)
            } else {
                format!("https://github.com/hadolint/hadolint/wiki/{}", h.code)
            });
            f
        })
        .collect())
}

// -----------------------------------------------------------------------------------------------
// shellcheck --format=json1

#[derive(Deserialize)]
struct ShellcheckDoc {
    comments: Vec<ShellcheckComment>,
}

#[derive(Deserialize)]
struct ShellcheckComment {
    file: String,
    line: u32,
    column: u32,
    level: String,
    code: u32,
    message: String,
}

pub(crate) fn shellcheck(stdout: &str) -> Result<Vec<Finding>> {
    let doc: ShellcheckDoc =
        serde_json::from_str(stdout.trim()).context("parsing shellcheck's JSON")?;
    Ok(doc
        .comments
        .into_iter()
        .map(|c| {
            let level = match c.level.as_str() {
                "error" => Level::Error,
                "warning" => Level::Warning,
                _ => Level::Note,
            };
            let rule = format!("SC{}", c.code);
            let mut f = finding(Tool::Shellcheck, &c.file, Some(c.line), &rule, level);
            f.column = Some(c.column);
            f.message = one_line(&c.message);
            f.url = Some(format!("https://www.shellcheck.net/wiki/{rule}"));
            f
        })
        .collect())
}

// -----------------------------------------------------------------------------------------------
// actionlint -format '{{json .}}'

#[derive(Deserialize)]
struct Actionlint {
    message: String,
    filepath: String,
    line: u32,
    column: u32,
    kind: String,
}

pub(crate) fn actionlint(stdout: &str) -> Result<Vec<Finding>> {
    let stdout = stdout.trim();
    // actionlint prints nothing at all (not `[]`) when there is nothing to report.
    if stdout.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<Actionlint> =
        serde_json::from_str(stdout).context("parsing actionlint's JSON")?;
    Ok(items
        .into_iter()
        .map(|a| {
            let mut f = finding(
                Tool::Actionlint,
                &a.filepath,
                Some(a.line),
                &a.kind,
                Level::Error,
            );
            f.column = Some(a.column);
            f.message = one_line(&a.message);
            f
        })
        .collect())
}

// -----------------------------------------------------------------------------------------------
// zizmor --format=json

#[derive(Deserialize)]
struct Zizmor {
    ident: String,
    desc: String,
    #[serde(default)]
    url: Option<String>,
    determinations: ZizmorDeterminations,
    locations: Vec<ZizmorLocation>,
    #[serde(default)]
    ignored: bool,
}

#[derive(Deserialize)]
struct ZizmorDeterminations {
    severity: String,
}

#[derive(Deserialize)]
struct ZizmorLocation {
    symbolic: ZizmorSymbolic,
    concrete: ZizmorConcrete,
}

#[derive(Deserialize)]
struct ZizmorSymbolic {
    key: serde_json::Value,
    #[serde(default)]
    annotation: String,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize)]
struct ZizmorConcrete {
    location: ZizmorSpan,
}

#[derive(Deserialize)]
struct ZizmorSpan {
    start_point: ZizmorPoint,
}

#[derive(Deserialize)]
struct ZizmorPoint {
    /// 0-based.
    row: u32,
    column: u32,
}

pub(crate) fn zizmor(stdout: &str) -> Result<Vec<Finding>> {
    let items: Vec<Zizmor> =
        serde_json::from_str(stdout.trim()).context("parsing zizmor's JSON")?;
    let mut out = Vec::new();
    for z in items.into_iter().filter(|z| !z.ignored) {
        // The primary location is the expression or key at fault; the others add context.
        let Some(loc) = z
            .locations
            .iter()
            .find(|l| l.symbolic.kind == "Primary")
            .or(z.locations.first())
        else {
            continue;
        };
        let key = &loc.symbolic.key;
        let file = key
            .pointer("/Local/given_path")
            .or_else(|| key.pointer("/Local/verbatim_path"))
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        let level = match z.determinations.severity.as_str() {
            "High" => Level::Error,
            "Medium" => Level::Warning,
            _ => Level::Note,
        };
        let point = &loc.concrete.location.start_point;
        let mut f = finding(Tool::Zizmor, file, Some(point.row + 1), &z.ident, level);
        f.column = Some(point.column + 1);
        f.message = if loc.symbolic.annotation.is_empty() {
            one_line(&z.desc)
        } else {
            format!(
                "{}: {}",
                one_line(&z.desc),
                one_line(&loc.symbolic.annotation)
            )
        };
        f.url = z.url;
        out.push(f);
    }
    Ok(out)
}

// -----------------------------------------------------------------------------------------------
// docker buildx build --call=check,format=json

pub(crate) fn buildkit(check: &BuildCheck, dockerfile: &Utf8Path) -> Vec<Finding> {
    let file = dockerfile.as_str();
    let mut out = Vec::new();
    for w in check.warnings.iter().flatten() {
        let line = w.location.as_ref().and_then(|l| l.line());
        let mut f = finding(Tool::Buildkit, file, line, &w.rule_name, Level::Warning);
        f.message = one_line(if w.detail.is_empty() {
            &w.description
        } else {
            &w.detail
        });
        f.url = w.url.clone();
        out.push(f);
    }
    if let Some(e) = &check.build_error {
        let line = e.location.as_ref().and_then(|l| l.line());
        let mut f = finding(Tool::Buildkit, file, line, "BuildError", Level::Error);
        f.message = one_line(&e.message);
        if e.message.contains("failed to resolve source metadata") {
            f.message += " (the base image cannot be resolved: build the offline base with \
                          `cargo xtask base`, or make its registry reachable)";
        }
        out.push(f);
    }
    out
}

// -----------------------------------------------------------------------------------------------
// cargo clippy --message-format=json

#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    #[serde(default)]
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct Diagnostic {
    message: String,
    level: String,
    #[serde(default)]
    code: Option<DiagnosticCode>,
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Deserialize)]
struct DiagnosticCode {
    code: String,
}

#[derive(Deserialize)]
struct Span {
    file_name: String,
    line_start: u32,
    column_start: u32,
    is_primary: bool,
}

/// Compiler and clippy diagnostics at error or warning level that point into a file.
pub(crate) fn clippy(stdout: &str, workspace: &Utf8Path) -> Result<Vec<Finding>> {
    let mut out: Vec<Finding> = Vec::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let msg: CargoMessage = serde_json::from_str(line).context("parsing cargo's JSON")?;
        if msg.reason != "compiler-message" {
            continue;
        }
        let Some(d) = msg.message else { continue };
        let level = match d.level.as_str() {
            "error" => Level::Error,
            "warning" => Level::Warning,
            _ => continue,
        };
        let Some(span) = d.spans.iter().find(|s| s.is_primary) else {
            continue;
        };
        let rule = d.code.map_or_else(|| d.level.clone(), |c| c.code);
        let file = relative(workspace, Utf8Path::new(&span.file_name));
        let mut f = finding(
            Tool::Clippy,
            file.as_str(),
            Some(span.line_start),
            &rule,
            level,
        );
        f.column = Some(span.column_start);
        f.message = one_line(&d.message);
        if let Some(lint) = rule.strip_prefix("clippy::") {
            f.url = Some(format!(
                "https://rust-lang.github.io/rust-clippy/master/index.html#{lint}"
            ));
        }
        // A diagnostic of code shared by several targets (lib and its tests) comes once per target.
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

// -----------------------------------------------------------------------------------------------
// cargo fmt -- --check

/// One finding per hunk rustfmt would change (`Diff in FILE:LINE:`, or `… at line N:` in older
/// releases).
pub(crate) fn rustfmt(stdout: &str, workspace: &Utf8Path) -> Vec<Finding> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("Diff in ") else {
            continue;
        };
        let rest = rest.trim_end().trim_end_matches(':');
        let (file, number) = match rest.rsplit_once(" at line ") {
            Some((file, n)) => (file, n.trim().parse().ok()),
            None => match rest.rsplit_once(':') {
                Some((file, n)) if n.chars().all(|c| c.is_ascii_digit()) => (file, n.parse().ok()),
                _ => (rest, None),
            },
        };
        let file = relative(
            workspace,
            Utf8Path::new(crate::util::without_verbatim_prefix(file)),
        );
        let mut f = finding(Tool::Rustfmt, file.as_str(), number, "fmt", Level::Warning);
        f.message = "not formatted as rustfmt formats it: run `cargo fmt --all`".into();
        out.push(f);
    }
    out
}

// -----------------------------------------------------------------------------------------------
// dive --ci

/// The rules dive's CI mode failed (`FAIL: rule: why`), as findings on the variant's Dockerfile.
pub(crate) fn dive(stdout: &str, image: &str, dockerfile: &Utf8Path) -> Vec<Finding> {
    let mut out = Vec::new();
    for line in strip_ansi(stdout).lines() {
        let Some(rest) = line.trim().strip_prefix("FAIL:") else {
            continue;
        };
        let (rule, why) = rest.trim().split_once(':').unwrap_or((rest.trim(), ""));
        let mut f = finding(
            Tool::Dive,
            dockerfile.as_str(),
            None,
            rule.trim(),
            Level::Error,
        );
        f.message = format!("{image}: {}", one_line(why));
        f.url = Some("https://github.com/wagoodman/dive#ci-integration".into());
        out.push(f);
    }
    out
}

/// dive's measurements (`efficiency: 99.9126 %`, `wastedBytes: 322451 bytes`,
/// `userWastedPercent: 0.2748 %`) as one line for the report.
pub(crate) fn dive_stats(stdout: &str) -> Option<String> {
    let text = strip_ansi(stdout);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let efficiency = value("efficiency:")?;
    let wasted = value("wastedBytes:")?;
    let user = value("userWastedPercent:");
    let mut out = format!(
        "efficiency {efficiency:.2} %, {} wasted",
        crate::config::human_size(wasted as u64)
    );
    if let Some(user) = user.filter(|u| u.is_finite()) {
        out += &format!(" ({user:.2} % of the bytes its own layers add)");
    }
    Some(out)
}

/// Removes ANSI escape sequences (`ESC [ … letter`).
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(findings: &[Finding]) -> Vec<String> {
        findings.iter().map(ToString::to_string).collect()
    }

    // The outputs below were captured from the real tools on the fixtures of
    // xtask/tests/fixtures/lint-bad (shortened where marked).

    #[test]
    fn hadolint_json() {
        let out = r#"[{"code":"DL3000","column":1,"file":"Dockerfile","level":"error","line":6,"message":"Use absolute WORKDIR"},{"code":"SC2086","column":1,"file":"Dockerfile","level":"info","line":7,"message":"Double quote to prevent globbing and word splitting."}]"#;
        let f = hadolint(out).unwrap();
        assert_eq!(
            lines(&f),
            [
                "Dockerfile:6: hadolint DL3000 Use absolute WORKDIR",
                "Dockerfile:7: hadolint SC2086 Double quote to prevent globbing and word splitting."
            ]
        );
        assert_eq!(f[0].level, Level::Error);
        assert_eq!(f[1].level, Level::Note);
        assert_eq!(
            f[1].url.as_deref(),
            Some("https://www.shellcheck.net/wiki/SC2086")
        );
        assert!(hadolint("[]").unwrap().is_empty());
        assert!(hadolint("Dockerfile:1 DL3000").is_err());
    }

    #[test]
    fn shellcheck_json1() {
        let out = r#"{"comments":[{"file":"scripts/bad.sh","line":3,"endLine":3,"column":6,"endColumn":8,"level":"info","code":2086,"message":"Double quote to prevent globbing and word splitting.","fix":null},{"file":"scripts/bad.sh","line":4,"endLine":4,"column":1,"endColumn":7,"level":"warning","code":2164,"message":"Use 'cd ... || exit' or 'cd ... || return' in case cd fails.","fix":null}]}"#;
        let f = shellcheck(out).unwrap();
        assert_eq!(
            lines(&f),
            [
                "scripts/bad.sh:3: shellcheck SC2086 Double quote to prevent globbing and word splitting.",
                "scripts/bad.sh:4: shellcheck SC2164 Use 'cd ... || exit' or 'cd ... || return' in case cd fails."
            ]
        );
        assert_eq!(f[1].level, Level::Warning);
        assert_eq!(f[1].column, Some(1));
        assert!(shellcheck(r#"{"comments":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn actionlint_json() {
        let out = r#"[{"message":"\"github.event.issue.title\" is potentially untrusted. avoid using it directly in inline scripts. instead, pass it through an environment variable. see https://docs.github.com/en/actions/reference/security/secure-use#good-practices-for-mitigating-script-injection-attacks for more details","filepath":".github/workflows/injection.yml","line":13,"column":24,"kind":"expression","snippet":"...","end_column":47}]"#;
        let f = actionlint(out).unwrap();
        assert_eq!(f.len(), 1);
        assert!(
            f[0].to_string().starts_with(
                ".github/workflows/injection.yml:13: actionlint expression \"github.event.issue.title\" is potentially untrusted."
            ),
            "{}",
            f[0]
        );
        assert!(actionlint("").unwrap().is_empty());
        assert!(actionlint("\n").unwrap().is_empty());
    }

    #[test]
    fn zizmor_json_uses_the_primary_location() {
        // Shortened: the Hidden and Related locations before and after the Primary one.
        let out = r#"[{"ident":"template-injection","desc":"code injection via template expansion","url":"https://docs.zizmor.sh/audits/#template-injection","determinations":{"confidence":"High","severity":"High","persona":"Regular"},"locations":[{"symbolic":{"key":{"Local":{"verbatim_path":".github/workflows/injection.yml"}},"annotation":"this step","route":{"route":[]},"feature_kind":"Normal","kind":"Hidden"},"concrete":{"location":{"start_point":{"row":11,"column":8},"end_point":{"row":12,"column":0},"offset_span":{"start":1,"end":2}},"feature":"run","comments":[]}},{"symbolic":{"key":{"Local":{"verbatim_path":".github/workflows/injection.yml"}},"annotation":"may expand into attacker-controllable code","route":{"route":[]},"feature_kind":"Normal","kind":"Primary"},"concrete":{"location":{"start_point":{"row":12,"column":23},"end_point":{"row":12,"column":47},"offset_span":{"start":1,"end":2}},"feature":"x","comments":[]}}],"ignored":false,"fixes":[]},{"ident":"excessive-permissions","desc":"overly broad permissions","url":null,"determinations":{"confidence":"High","severity":"Medium","persona":"Regular"},"locations":[{"symbolic":{"key":{"Local":{"verbatim_path":"w.yml"}},"annotation":"","route":{"route":[]},"feature_kind":"Normal","kind":"Primary"},"concrete":{"location":{"start_point":{"row":0,"column":0},"end_point":{"row":0,"column":1},"offset_span":{"start":1,"end":2}},"feature":"x","comments":[]}}],"ignored":true,"fixes":[]}]"#;
        let f = zizmor(out).unwrap();
        assert_eq!(
            lines(&f),
            [".github/workflows/injection.yml:13: zizmor template-injection code injection via template expansion: may expand into attacker-controllable code"]
        );
        assert_eq!(f[0].column, Some(24));
        assert_eq!(f[0].level, Level::Error);
        assert!(zizmor("[]").unwrap().is_empty());
    }

    #[test]
    fn buildkit_check_json() {
        // Shortened: `sources` (the Dockerfile, base64, and its LLB definition) left out.
        let out = r#"{"warnings":[{"ruleName":"FromAsCasing","description":"The 'as' keyword should match the case of the 'from' keyword","url":"https://docs.docker.com/go/dockerfile/rule/from-as-casing/","detail":"'as' and 'FROM' keywords' casing do not match","location":{"ranges":[{"start":{"line":4},"end":{"line":4}}]}}],"sources":[]}"#;
        let check = crate::docker::parse_build_check(out).unwrap();
        let f = buildkit(&check, Utf8Path::new("Dockerfile"));
        assert_eq!(
            lines(&f),
            ["Dockerfile:4: buildkit FromAsCasing 'as' and 'FROM' keywords' casing do not match"]
        );
        assert_eq!(f[0].level, Level::Warning);

        let out = r#"{"warnings":null,"sources":[],"buildError":{"message":"debian:trixie-slim: failed to resolve source metadata for docker.io/library/debian:trixie-slim: failed to do request","location":{"ranges":[{"start":{"line":1},"end":{"line":1}}]}}}"#;
        let check = crate::docker::parse_build_check(out).unwrap();
        let f = buildkit(&check, Utf8Path::new("Dockerfile.cpu"));
        assert_eq!(f[0].rule, "BuildError");
        assert_eq!(f[0].line, Some(1));
        assert!(
            f[0].message.contains("cargo xtask base"),
            "{}",
            f[0].message
        );

        let clean = crate::docker::parse_build_check(r#"{"warnings":null,"sources":[]}"#).unwrap();
        assert!(buildkit(&clean, Utf8Path::new("Dockerfile")).is_empty());
    }

    #[test]
    fn clippy_json_lines() {
        // Shortened to the fields read; two identical diagnostics (bin and test target).
        let diag = r#"{"reason":"compiler-message","message":{"rendered":"…","$message_type":"diagnostic","children":[],"level":"error","message":"length comparison to zero","spans":[{"file_name":"src/main.rs","line_start":3,"line_end":3,"column_start":13,"column_end":25,"is_primary":true}],"code":{"code":"clippy::len_zero","explanation":null}}}"#;
        let summary = r#"{"reason":"compiler-message","message":{"level":"error","message":"could not compile `fx` (bin \"fx\") due to 1 previous error","spans":[],"code":null}}"#;
        let out = format!(
            "{diag}\n{diag}\n{summary}\n{{\"reason\":\"build-finished\",\"success\":false}}\n"
        );
        let f = clippy(&out, Utf8Path::new("/p")).unwrap();
        assert_eq!(
            lines(&f),
            ["src/main.rs:3: clippy clippy::len_zero length comparison to zero"]
        );
        assert_eq!(
            f[0].url.as_deref(),
            Some("https://rust-lang.github.io/rust-clippy/master/index.html#len_zero")
        );
    }

    #[test]
    fn rustfmt_check_output() {
        let out = "Diff in /p/src/main.rs:1:\n-fn main() {   let x=1;\n+fn main() {\nDiff in /p/src/lib.rs at line 7:\n";
        let f = rustfmt(out, Utf8Path::new("/p"));
        assert_eq!(
            lines(&f),
            [
                "src/main.rs:1: rustfmt fmt not formatted as rustfmt formats it: run `cargo fmt --all`",
                "src/lib.rs:7: rustfmt fmt not formatted as rustfmt formats it: run `cargo fmt --all`"
            ]
        );
        assert!(rustfmt("", Utf8Path::new("/p")).is_empty());
    }

    #[test]
    fn dive_ci_output() {
        let out = "  Using default CI config\n\u{1b}[1mResults:\u{1b}[0m\n  \u{1b}[1;7;31mFAIL\u{1b}[0m: highestWastedBytes: too many bytes wasted (wasted-bytes=3000000 > threshold=1000000)\n  \u{1b}[34mSKIP\u{1b}[0m: highestUserWastedPercent: rule disabled\n  PASS: lowestEfficiency\n";
        let f = dive(out, "voxserve:cpu", Utf8Path::new("Dockerfile.cpu"));
        assert_eq!(
            lines(&f),
            ["Dockerfile.cpu: dive highestWastedBytes voxserve:cpu: too many bytes wasted (wasted-bytes=3000000 > threshold=1000000)"]
        );
        let stats = "\u{1b}[1mAnalyzing image...\u{1b}[0m\n  efficiency: 99.9126 %\n  wastedBytes: 322451 bytes (322 kB)\n  userWastedPercent: 0.2748 %\n";
        assert_eq!(
            dive_stats(stats).as_deref(),
            Some("efficiency 99.91 %, 322.5 kB wasted (0.27 % of the bytes its own layers add)")
        );
        // An image without layers of its own: dive prints NaN.
        let base =
            "  efficiency: 100.0000 %\n  wastedBytes: 0 bytes (0 B)\n  userWastedPercent: NaN %\n";
        assert_eq!(
            dive_stats(base).as_deref(),
            Some("efficiency 100.00 %, 0 B wasted")
        );
        assert_eq!(dive_stats("nothing"), None);
    }
}
