//! Exit codes, host and container paths, and small helpers.

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::process::ExitCode;

/// The workspace root, from this crate's manifest directory (never the current directory).
pub fn project_root() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the project root")
        .to_path_buf()
}

/// A check ran and said no (budget exceeded, smoke check failed, tool missing): exit code 1.
/// Every other error is a usage, input or tool error: exit code 2.
#[derive(Debug)]
pub struct CheckFailed(pub String);

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckFailed {}

/// Prints an error as one `error:` line that carries what was being done and the root cause
/// (which says what to do), then the causes between them when they add something; returns the
/// exit code (1 for a [`CheckFailed`], else 2).
pub fn report_error(err: &anyhow::Error) -> ExitCode {
    let (first, rest) = error_lines(err);
    crate::output::notice(format_args!("error: {first}"));
    for line in rest {
        crate::output::notice(format_args!("{line}"));
    }
    if err.downcast_ref::<CheckFailed>().is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::from(2)
    }
}

/// The first line of an error, `context: root cause`, then the lines after it: the rest of a
/// root cause that spans lines (a tool's stderr), and the causes between context and root that
/// the first line does not already say.
fn error_lines(err: &anyhow::Error) -> (String, Vec<String>) {
    let chain: Vec<String> = err
        .chain()
        .map(|c| c.to_string().trim().to_string())
        .collect();
    let (outer, root) = (&chain[0], &chain[chain.len() - 1]);
    let mut root_lines = root.lines().map(str::trim).filter(|l| !l.is_empty());
    let root_first = root_lines.next().unwrap_or_default();
    let first = if chain.len() == 1 {
        outer.lines().next().unwrap_or_default().to_string()
    } else if outer.contains(root_first) {
        outer.clone()
    } else {
        format!("{outer}: {root_first}")
    };
    let mut rest: Vec<String> = root_lines
        .filter(|l| !first.contains(l))
        .map(|l| format!("  {l}"))
        .collect();
    if chain.len() > 2 {
        rest.extend(
            chain[1..chain.len() - 1]
                .iter()
                .filter(|c| !first.contains(c.as_str()))
                .map(|c| format!("  caused by: {c}")),
        );
    }
    (first, rest)
}

pub(crate) use crate::output::progress;

/// True when this process runs as root (always false elsewhere than on Unix).
pub fn is_root() -> bool {
    #[cfg(unix)]
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    return unsafe { libc::geteuid() } == 0;
    #[cfg(not(unix))]
    return false;
}

/// The last second RFC 3339 can write, 9999-12-31T23:59:59Z.
const MAX_RFC3339_EPOCH: u64 = 253_402_300_799;

/// Seconds since the epoch as an RFC 3339 UTC timestamp (`2025-11-28T00:00:00Z`); a later
/// second than RFC 3339 can write is written as its last.
pub fn rfc3339(epoch: u64) -> String {
    let seconds = epoch.min(MAX_RFC3339_EPOCH) as i64;
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The time since the epoch of an RFC 3339 timestamp as the Docker engine and Trivy write them
/// (`2026-11-28T03:30:26.264194744Z`, or with an offset such as `+01:00`), to the nanosecond
/// whatever the host clock's resolution; None for another text or a time before the epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Option<std::time::Duration> {
    let format = time::format_description::well_known::Rfc3339;
    let at = time::OffsetDateTime::parse(s.trim(), &format).ok()?;
    let nanos = u64::try_from(at.unix_timestamp_nanos()).ok()?;
    Some(std::time::Duration::from_nanos(nanos))
}

/// The last non-blank line of a tool's output (its error, usually), trimmed; "no message" when
/// there is none.
pub(crate) fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
}

/// Decodes standard base64, with or without padding (buildx's metadata file encodes BuildKit's
/// warnings so). None on anything else.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
        .decode(text)
        .ok()
}

/// `path` as given when absolute, else relative to the current directory (where the user typed it).
pub fn absolute(path: &Utf8Path) -> Result<Utf8PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = Utf8PathBuf::try_from(std::env::current_dir()?)
        .context("the current directory is not UTF-8")?;
    Ok(cwd.join(path))
}

/// `base/rel` as the host writes it: `rel`'s parts (images.toml and this code write them with
/// `/`) joined with the separator `base` already uses, so that no path mixes `/` and `\` (Windows
/// takes both). An absolute `rel` replaces `base`, as with [`Utf8Path::join`].
pub(crate) fn host_join(base: &Utf8Path, rel: impl AsRef<Utf8Path>) -> Utf8PathBuf {
    let rel = rel.as_ref();
    if !cfg!(windows) || rel.has_root() {
        return base.join(rel);
    }
    let sep = match (base.as_str().contains('\\'), base.as_str().contains('/')) {
        (false, true) => '/',
        _ => '\\',
    };
    let mut out = base.as_str().to_string();
    for part in rel.components() {
        if !out.is_empty() && !out.ends_with(['/', '\\']) {
            out.push(sep);
        }
        out.push_str(part.as_str());
    }
    out.into()
}

/// A host path as a user reads it: relative to the repository root when inside it, its parts
/// joined with the host's separator (`target/xtask/build-cpu.json`, on Windows
/// `target\xtask\build-cpu.json`), else as given. Every path a command prints, in a message or a
/// report, goes through it, so that no output carries the machine's own directories.
pub fn shown(path: impl AsRef<std::path::Path>) -> String {
    let path = path.as_ref().to_string_lossy();
    relative_to_root(project_root().as_str(), &path, cfg!(windows))
        .unwrap_or_else(|| path.into_owned())
}

/// [`shown`] for `#[serde(serialize_with = …)]`: a path field of a report a user reads.
pub(crate) fn serialize_shown<P: AsRef<std::path::Path>, S: serde::Serializer>(
    path: &P,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&shown(path))
}

/// [`serialize_shown`] for an optional path.
pub(crate) fn serialize_shown_opt<P: AsRef<std::path::Path>, S: serde::Serializer>(
    path: &Option<P>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => serialize_shown(path, serializer),
        None => serializer.serialize_none(),
    }
}

/// [`serialize_shown`] for a list of paths.
pub(crate) fn serialize_shown_all<P: AsRef<std::path::Path>, S: serde::Serializer>(
    paths: &[P],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(paths.iter().map(shown))
}

/// `path` relative to `root` (both as the host writes them), or None when it is not inside it.
/// On Windows both separators count, case does not, and a `\\?\` prefix is ignored.
fn relative_to_root(root: &str, path: &str, windows: bool) -> Option<String> {
    let same = |a: &&str, b: &&str| {
        if windows {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let (root, path) = (lexical_parts(root, windows), lexical_parts(path, windows));
    let rest = path.get(root.len()..)?;
    if !root.iter().zip(&path).all(|(a, b)| same(a, b)) {
        return None;
    }
    let sep = if windows { "\\" } else { "/" };
    Some(if rest.is_empty() {
        ".".into()
    } else {
        rest.join(sep)
    })
}

/// A Windows path without the verbatim prefix `\\?\` that canonical paths carry.
pub(crate) fn without_verbatim_prefix(path: &str) -> &str {
    path.strip_prefix("\\\\?\\").unwrap_or(path)
}

/// A path's parts with `.` and empty parts dropped and `..` applied; an absolute path's first
/// part is its root (`""`, or the drive `C:` on Windows).
fn lexical_parts(path: &str, windows: bool) -> Vec<&str> {
    let path = match windows {
        true => without_verbatim_prefix(path),
        false => path,
    };
    let mut parts: Vec<&str> = Vec::new();
    for (i, part) in path
        .split(|c| c == '/' || (windows && c == '\\'))
        .enumerate()
    {
        match part {
            "" if i == 0 => parts.push(part),
            "" | "." => {}
            ".." if parts.len() > 1 && parts.last() != Some(&"..") => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts
}

/// A path inside a container, an image or a Dockerfile (a bind mount's target, a file a check
/// runs): `/`-separated on every host, since the Linux in the container reads it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub(crate) struct ContainerPath(String);

impl ContainerPath {
    pub(crate) fn new(path: impl Into<String>) -> ContainerPath {
        ContainerPath(path.into())
    }

    /// `self/rel`; `rel` may be a host path relative to a directory (`app\tests` on Windows):
    /// its parts are joined with `/` too. An absolute `rel` replaces `self`.
    pub(crate) fn join(&self, rel: impl AsRef<Utf8Path>) -> ContainerPath {
        let mut out = self.0.clone();
        for part in rel.as_ref().components() {
            match part {
                camino::Utf8Component::Prefix(_) => {}
                camino::Utf8Component::RootDir => out = "/".into(),
                part => {
                    if !out.is_empty() && !out.ends_with('/') {
                        out.push('/');
                    }
                    out.push_str(part.as_str());
                }
            }
        }
        ContainerPath(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContainerPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `s` cut to `max` characters for a table cell, the cut marked with `…`.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// An image ID or digest as `docker image ls` shows it: 12 hex digits, without `sha256:`.
pub fn short_id(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, hex)| hex);
    hex.chars().take(12).collect()
}

/// A short random-enough suffix for names of containers and temporary directories.
pub fn unique_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{:08x}", std::process::id(), nanos)
}

/// A Python distribution name as PEP 503 compares names: lower case, each run of `-`, `_` and `.`
/// one `-` (`Typing__Extensions` → `typing-extensions`).
pub fn pep503_name(name: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortened_cell_says_it_was_cut() {
        assert_eq!(
            shorten("COPY /voxserve /opt/voxserve/voxserve", 20),
            "COPY /voxserve /opt…"
        );
        assert_eq!(shorten("COPY /a /b", 10), "COPY /a /b");
    }

    #[test]
    fn the_first_error_line_has_the_context_and_the_root_cause() {
        let root = anyhow::anyhow!("no such image: run `cargo xtask build cpu` first");
        let err = root
            .context("inspecting voxserve:cpu")
            .context("smoke-testing variant `cpu`");
        let (first, rest) = error_lines(&err);
        assert_eq!(
            first,
            "smoke-testing variant `cpu`: no such image: run `cargo xtask build cpu` first"
        );
        assert_eq!(rest, ["  caused by: inspecting voxserve:cpu"]);

        // A context that already quotes its cause is not repeated, nor is a middle one.
        let err = anyhow::anyhow!("disk full")
            .context("writing x: disk full")
            .context("saving: writing x: disk full");
        assert_eq!(
            error_lines(&err),
            ("saving: writing x: disk full".into(), vec![])
        );

        let (first, rest) = error_lines(&anyhow::anyhow!("unknown variant `x`"));
        assert_eq!((first.as_str(), rest.len()), ("unknown variant `x`", 0));

        let err = anyhow::anyhow!("root").context("outer");
        assert_eq!(error_lines(&err), ("outer: root".into(), vec![]));

        // A tool's stderr of several lines: its first line joins the context, the rest follows.
        let err = anyhow::anyhow!(
            "docker: range of CPUs is from 0.01 to 2.00\n\nRun 'docker run --help'"
        )
        .context("starting c")
        .context("smoke-testing variant `cpu`");
        assert_eq!(
            error_lines(&err),
            (
                "smoke-testing variant `cpu`: docker: range of CPUs is from 0.01 to 2.00".into(),
                vec![
                    "  Run 'docker run --help'".to_string(),
                    "  caused by: starting c".into()
                ]
            )
        );
    }

    #[test]
    fn host_paths_keep_the_separator_they_are_written_with() {
        assert_eq!(
            host_join("/src".as_ref(), "images.toml"),
            "/src/images.toml"
        );
        assert_eq!(
            host_join("/src".as_ref(), "app/tests/test_x.py"),
            "/src/app/tests/test_x.py"
        );
        assert_eq!(host_join("/src/".as_ref(), "a"), "/src/a");
        assert_eq!(host_join("/src".as_ref(), "/etc/hostname"), "/etc/hostname");
        #[cfg(windows)]
        {
            assert_eq!(
                host_join(r"C:\src".as_ref(), "app/tests/test_x.py"),
                r"C:\src\app\tests\test_x.py"
            );
            assert_eq!(host_join("C:/src".as_ref(), "a"), "C:/src/a");
            assert_eq!(host_join(".".as_ref(), "Dockerfile"), r".\Dockerfile");
        }
    }

    #[test]
    fn paths_inside_the_repository_are_shown_relative_to_it() {
        let unix = |root, path| relative_to_root(root, path, false);
        assert_eq!(
            unix("/src/repo", "/src/repo/images.toml").as_deref(),
            Some("images.toml")
        );
        assert_eq!(
            unix("/src/repo", "/src/repo/target/xtask/build-cpu.json").as_deref(),
            Some("target/xtask/build-cpu.json")
        );
        assert_eq!(unix("/src/repo/", "/src/repo").as_deref(), Some("."));
        assert_eq!(
            unix("/src/repo", "/src/repo/xtask/../images.toml").as_deref(),
            Some("images.toml")
        );
        assert_eq!(
            unix("/src/repo", "/src/repo//./docs/").as_deref(),
            Some("docs")
        );
        // Outside the repository, or relative already: as given.
        assert_eq!(unix("/src/repo", "/src/repo2/images.toml"), None);
        assert_eq!(unix("/src/repo", "/src/repo/../elsewhere"), None);
        assert_eq!(unix("/src/repo", "/tmp/xtask"), None);
        assert_eq!(unix("/src/repo", "/src"), None);
        assert_eq!(unix("/src/repo", "src/repo/images.toml"), None);
        assert_eq!(unix("/src/repo", "images.toml"), None);
        // A backslash is part of a Unix file name.
        assert_eq!(unix("/src/repo", r"/src\repo/a"), None);

        let windows = |root, path| relative_to_root(root, path, true);
        assert_eq!(
            windows(r"C:\src\repo", r"C:\src\repo\target\xtask\build-cpu.json").as_deref(),
            Some(r"target\xtask\build-cpu.json")
        );
        assert_eq!(
            windows(r"C:\src\repo", "C:/src/repo/images.toml").as_deref(),
            Some("images.toml")
        );
        assert_eq!(
            windows(r"c:\Src\Repo", r"C:\src\repo\app/tests").as_deref(),
            Some(r"app\tests")
        );
        assert_eq!(
            windows(r"C:\src\repo", r"\\?\C:\src\repo\Dockerfile").as_deref(),
            Some("Dockerfile")
        );
        assert_eq!(windows(r"C:\src\repo", r"D:\src\repo\Dockerfile"), None);
        assert_eq!(windows(r"C:\src\repo", r"C:\src\repository\x"), None);
        assert_eq!(windows(r"C:\src\repo", r".\Dockerfile"), None);

        let root = project_root();
        let expected = if cfg!(windows) {
            r"target\xtask"
        } else {
            "target/xtask"
        };
        assert_eq!(shown(host_join(&root, "target/xtask")), expected);
        assert_eq!(shown(&root), ".");
        assert_eq!(shown("/nowhere/images.toml"), "/nowhere/images.toml");
        assert_eq!(shown("images.toml"), "images.toml");
    }

    #[test]
    fn container_paths_join_with_a_slash_on_every_host() {
        let mounts = ContainerPath::new("/xtask-smoke/pytest");
        assert_eq!(
            mounts.join("tests-0").as_str(),
            "/xtask-smoke/pytest/tests-0"
        );
        assert_eq!(
            mounts.join(Utf8Path::new("app").join("tests")).as_str(),
            "/xtask-smoke/pytest/app/tests"
        );
        assert_eq!(ContainerPath::new("/").join("etc").to_string(), "/etc");
        assert_eq!(mounts.join("/etc").as_str(), "/etc");
        assert_eq!(ContainerPath::new("").join("a/b").as_str(), "a/b");
    }

    #[test]
    fn ids_are_shortened_to_twelve_hex_digits() {
        assert_eq!(short_id("sha256:cb6853fbb591a8da5e25"), "cb6853fbb591");
        assert_eq!(short_id("cb6853fbb591a8da5e25"), "cb6853fbb591");
        assert_eq!(short_id("sha256:abc"), "abc");
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert_eq!(base64_decode("aGV5").unwrap(), b"hey");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(
            base64_decode("SW52YWxpZEJhc2VJbWFnZVBsYXRmb3Jt").unwrap(),
            b"InvalidBaseImagePlatform"
        );
        assert_eq!(base64_decode("a"), None);
        assert_eq!(base64_decode("a*=="), None);
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_288_000), "2025-11-28T00:00:00Z");
        assert_eq!(rfc3339(1_764_288_000 + 3_661), "2025-11-28T01:01:01Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_parses_engine_timestamps() {
        use std::time::Duration;
        let at = parse_rfc3339;
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(
            at("2000-02-29T00:00:00Z"),
            Some(Duration::from_secs(951_782_400))
        );
        assert_eq!(
            at("2025-11-28T01:01:01.25Z"),
            Some(Duration::new(1_764_288_000 + 3_661, 250_000_000))
        );
        assert_eq!(
            at("2025-11-28T02:01:01.000000001+01:00"),
            Some(Duration::new(1_764_288_000 + 3_661, 1))
        );
        assert_eq!(at("0001-01-01T00:00:00Z"), None);
        assert_eq!(at("yesterday"), None);
    }
}
