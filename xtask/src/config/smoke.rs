//! `smoke` of a variant in images.toml: the `docker run` limits and the checks, each value
//! checked against what docker and HTTP take.

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

use super::located::Str;
use super::values::{self, parse_health_timeout};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Smoke {
    /// How long the container may take to become healthy.
    #[serde(serialize_with = "ser_secs")]
    pub(crate) health_timeout: Duration,
    /// `docker run --memory`, e.g. `1g`.
    pub(crate) memory: Option<String>,
    /// `docker run --cpus`, e.g. `1.5`.
    pub(crate) cpus: Option<String>,
    /// Port the service listens on inside the container.
    pub(crate) port: u16,
    /// HTTP path probed when the image has no HEALTHCHECK.
    pub(crate) http_probe: Option<String>,
    /// Environment variables the image must define (`NAME` or `NAME=VALUE`).
    pub(crate) env: Vec<String>,
    /// Labels the image must carry.
    pub(crate) labels: Vec<String>,
    /// Paths that must not exist in the image.
    pub(crate) forbidden_paths: Vec<String>,
    /// Python distributions that must not be installed (globs such as `nvidia-*`).
    pub(crate) forbidden_packages: Vec<String>,
    /// Shared libraries (sonames) the host provides at run time, such as the GPU driver's
    /// `libcuda.so.1`: the check that every ELF file's DT_NEEDED resolves inside the image
    /// reports them apart instead of failing.
    pub(crate) host_libraries: Vec<String>,
    /// Check that torch finds and loads every library it loads by name (torch images).
    pub(crate) torch_libraries: bool,
    pub(crate) exec: Vec<ExecCheck>,
    pub(crate) http: Vec<HttpCheck>,
    pub(crate) pytest: Vec<PytestCheck>,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A command run in the container, with its expected exit code and output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecCheck {
    pub(crate) name: String,
    pub(crate) cmd: Vec<String>,
    #[serde(default)]
    pub(crate) exit_code: i32,
    /// Stdout must contain this text.
    #[serde(default)]
    pub(crate) stdout_contains: Option<String>,
}

/// An HTTP request made from inside the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpCheck {
    pub(crate) name: String,
    #[serde(default = "default_method")]
    pub(crate) method: String,
    pub(crate) path: String,
    #[serde(default = "default_status")]
    pub(crate) status: u16,
    /// Top-level JSON fields the response must have, with these values.
    #[serde(default)]
    pub(crate) json: BTreeMap<String, toml::Value>,
    /// Upload a generated WAV of this many seconds as the multipart field `file`.
    #[serde(default)]
    pub(crate) wav_seconds: Option<f64>,
}

/// A pytest file of the repository, run inside the container with the image's own Python and
/// packages (e.g. tests that need the image's torch); pytest itself comes from `requirements`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct PytestCheck {
    pub(crate) name: String,
    /// The test file (absolute; images.toml names it relative to itself).
    #[serde(serialize_with = "crate::util::serialize_shown")]
    pub(crate) path: Utf8PathBuf,
    /// A hash-pinned requirements file that pins pytest and what it needs (absolute).
    #[serde(serialize_with = "crate::util::serialize_shown")]
    pub(crate) requirements: Utf8PathBuf,
}

fn default_method() -> String {
    "GET".into()
}
fn default_status() -> u16 {
    200
}

#[derive(Deserialize, Default, Clone)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { health_timeout = "120s", memory = "2g", cpus = "2" }"#
)]
pub(super) struct RawSmoke {
    health_timeout: Option<Str>,
    memory: Option<Str>,
    cpus: Option<Str>,
    port: Option<Spanned<u16>>,
    http_probe: Option<Str>,
    env: Option<Vec<Str>>,
    labels: Option<Vec<Str>>,
    forbidden_paths: Option<Vec<Str>>,
    forbidden_packages: Option<Vec<Str>>,
    host_libraries: Option<Vec<Str>>,
    torch_libraries: Option<bool>,
    exec: Option<Vec<RawExecCheck>>,
    http: Option<Vec<RawHttpCheck>>,
    pytest: Option<Vec<RawPytestCheck>>,
}

#[derive(Deserialize, Clone)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { name = "parity", path = "app/tests/test_parity.py", requirements = "app/requirements-dev.lock" }"#
)]
struct RawPytestCheck {
    name: Str,
    path: Str,
    requirements: Str,
}

#[derive(Deserialize, Clone)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { name = "imports", cmd = ["python3", "-c", "import voxserve"] }"#
)]
struct RawExecCheck {
    name: Str,
    cmd: Spanned<Vec<String>>,
    #[serde(default)]
    exit_code: Option<Spanned<i32>>,
    #[serde(default)]
    stdout_contains: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { name = "health", path = "/health", status = 200 }"#
)]
struct RawHttpCheck {
    name: Str,
    #[serde(default)]
    method: Option<Str>,
    path: Str,
    #[serde(default)]
    status: Option<Spanned<u16>>,
    #[serde(default)]
    json: BTreeMap<String, toml::Value>,
    #[serde(default)]
    wav_seconds: Option<Spanned<f64>>,
}

/// Makes the error of a value: its place, `key: message`.
type Bad<'a> = &'a dyn Fn(&Str, &str, String) -> anyhow::Error;

/// The smoke settings of a variant over the defaults', each value checked against what
/// `docker run` and the checks take.
pub(crate) fn resolve_smoke(bad: Bad, dir: &Utf8Path, ds: RawSmoke, vs: RawSmoke) -> Result<Smoke> {
    let health_timeout = match vs.health_timeout.or(ds.health_timeout) {
        Some(t) => parse_health_timeout(t.get_ref())
            .map_err(|e| bad(&t, "smoke.health_timeout", e.to_string()))?,
        None => Duration::from_secs(120),
    };
    Ok(Smoke {
        health_timeout,
        memory: checked(
            bad,
            "smoke.memory",
            vs.memory.or(ds.memory),
            values::check_memory,
        )?,
        cpus: checked(bad, "smoke.cpus", vs.cpus.or(ds.cpus), values::check_cpus)?,
        port: port(bad, vs.port.or(ds.port))?,
        http_probe: checked(
            bad,
            "smoke.http_probe",
            vs.http_probe.or(ds.http_probe),
            check_url_path,
        )?,
        env: each(bad, "smoke.env", vs.env.or(ds.env), check_env)?,
        labels: each(bad, "smoke.labels", vs.labels.or(ds.labels), check_label)?,
        forbidden_paths: each(
            bad,
            "smoke.forbidden_paths",
            vs.forbidden_paths.or(ds.forbidden_paths),
            check_image_path,
        )?,
        forbidden_packages: each(
            bad,
            "smoke.forbidden_packages",
            vs.forbidden_packages.or(ds.forbidden_packages),
            check_package_glob,
        )?,
        host_libraries: each(
            bad,
            "smoke.host_libraries",
            vs.host_libraries.or(ds.host_libraries),
            check_soname,
        )?,
        torch_libraries: vs.torch_libraries.or(ds.torch_libraries).unwrap_or(false),
        exec: resolve_checks(
            bad,
            "smoke.exec",
            ds.exec,
            vs.exec,
            |c| &c.name,
            resolve_exec,
        )?,
        http: resolve_checks(
            bad,
            "smoke.http",
            ds.http,
            vs.http,
            |c| &c.name,
            resolve_http,
        )?,
        pytest: resolve_checks(
            bad,
            "smoke.pytest",
            ds.pytest,
            vs.pytest,
            |c| &c.name,
            |bad, c| resolve_pytest(bad, dir, c),
        )?,
    })
}

/// The port the service listens on: 8000 unless given.
fn port(bad: Bad, port: Option<Spanned<u16>>) -> Result<u16> {
    match port {
        Some(p) if *p.get_ref() == 0 => {
            let s = Spanned::new(p.span(), "0".to_string());
            let msg = "0 is no port; give the port the service listens on, 1 to 65535";
            Err(bad(&s, "smoke.port", msg.into()))
        }
        Some(p) => Ok(p.into_inner()),
        None => Ok(8000),
    }
}

/// A value `check` accepts, or its error at the value.
fn checked<E: std::fmt::Display>(
    bad: Bad,
    key: &str,
    value: Option<Str>,
    check: impl Fn(&str) -> std::result::Result<(), E>,
) -> Result<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    check(value.get_ref()).map_err(|e| bad(&value, key, e.to_string()))?;
    Ok(Some(value.into_inner()))
}

/// Every value of a list `check` accepts, or the first one's error at it.
fn each<E: std::fmt::Display>(
    bad: Bad,
    key: &str,
    values: Option<Vec<Str>>,
    check: impl Fn(&str) -> std::result::Result<(), E>,
) -> Result<Vec<String>> {
    let values = values.unwrap_or_default();
    values
        .into_iter()
        .map(|v| checked(bad, key, Some(v), &check).map(Option::unwrap_or_default))
        .collect()
}

fn check_env(entry: &str) -> std::result::Result<(), String> {
    let name = entry.split_once('=').map_or(entry, |(n, _)| n);
    if is_env_name(name) {
        return Ok(());
    }
    Err(format!(
        "`{entry}` is not `NAME` or `NAME=VALUE` (a name is letters, digits and `_`, not \
         starting with a digit)"
    ))
}

fn check_label(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() || key.contains(['=', ' ', '\t', '\n']) {
        return Err(format!(
            "`{key}` is not a label key; list keys such as `org.opencontainers.image.version`"
        ));
    }
    Ok(())
}

fn check_image_path(path: &str) -> std::result::Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "`{path}` is not an absolute path; write it as seen in the image, e.g. `/usr/bin/gcc`"
        ));
    }
    Ok(())
}

fn check_package_glob(glob: &str) -> std::result::Result<(), String> {
    let valid = !glob.is_empty()
        && glob.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '?' | '[' | ']' | '!')
        });
    if !valid {
        return Err(format!(
            "`{glob}` is not a Python distribution name or glob, e.g. `torch` or `nvidia-*`"
        ));
    }
    Ok(())
}

fn check_soname(name: &str) -> std::result::Result<(), String> {
    if !name.starts_with("lib") || !name.contains(".so") || name.contains('/') {
        return Err(format!(
            "`{name}` is not a library's soname as DT_NEEDED names it, e.g. `libcuda.so.1`"
        ));
    }
    Ok(())
}

/// The checks of [defaults] and of the variant, merged by name and each checked. Within one
/// list names must differ; across the two a variant check replaces the default of its name.
fn resolve_checks<R, T>(
    bad: Bad,
    key: &str,
    defaults: Option<Vec<R>>,
    variant: Option<Vec<R>>,
    name: fn(&R) -> &Str,
    resolve: impl Fn(Bad, R) -> Result<T>,
) -> Result<Vec<T>> {
    for list in [&defaults, &variant].into_iter().flatten() {
        unique_names(bad, key, list.iter().map(name))?;
    }
    merge_checks(
        defaults.unwrap_or_default(),
        variant.unwrap_or_default(),
        |c| name(c).get_ref(),
    )
    .into_iter()
    .map(|c| resolve(bad, c))
    .collect()
}

fn unique_names<'a>(bad: Bad, key: &str, names: impl Iterator<Item = &'a Str>) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for name in names {
        if !seen.insert(name.get_ref()) {
            return Err(bad(
                name,
                key,
                format!(
                    "two checks are named `{}`; give each its own name",
                    name.get_ref()
                ),
            ));
        }
    }
    Ok(())
}

fn resolve_exec(bad: Bad, c: RawExecCheck) -> Result<ExecCheck> {
    let name = c.name.get_ref();
    if name.trim().is_empty() {
        return Err(bad(
            &c.name,
            "smoke.exec",
            "a check needs a `name` to be reported by".into(),
        ));
    }
    let cmd_span = Spanned::new(c.cmd.span(), String::new());
    if c.cmd.get_ref().first().is_none_or(|p| p.is_empty()) {
        return Err(bad(
            &cmd_span,
            "smoke.exec",
            format!("check `{name}` has an empty `cmd`; give the program and its arguments, e.g. [\"python3\", \"-c\", \"print('ok')\"]"),
        ));
    }
    let exit_code = match c.exit_code {
        Some(code) if !(0..=255).contains(code.get_ref()) => {
            let s = Spanned::new(code.span(), String::new());
            return Err(bad(
                &s,
                "smoke.exec",
                format!("check `{name}` expects exit code {}, which no process returns; exit codes are 0 to 255", code.get_ref()),
            ));
        }
        Some(code) => code.into_inner(),
        None => 0,
    };
    Ok(ExecCheck {
        name: c.name.into_inner(),
        cmd: c.cmd.into_inner(),
        exit_code,
        stdout_contains: c.stdout_contains,
    })
}

fn resolve_pytest(bad: Bad, dir: &Utf8Path, c: RawPytestCheck) -> Result<PytestCheck> {
    let name = c.name.get_ref();
    if name.trim().is_empty() {
        return Err(bad(
            &c.name,
            "smoke.pytest",
            "a check needs a `name` to be reported by".into(),
        ));
    }
    let path = crate::util::host_join(dir, c.path.get_ref());
    if !(path.is_file() && path.extension() == Some("py")) {
        return Err(bad(
            &c.path,
            "smoke.pytest",
            format!(
                "check `{name}`: `{}` is not a Python test file (looked for {}); name a \
                 `test_*.py` file, relative to images.toml",
                c.path.get_ref(),
                crate::util::shown(&path)
            ),
        ));
    }
    let requirements = crate::util::host_join(dir, c.requirements.get_ref());
    if !requirements.is_file() {
        return Err(bad(
            &c.requirements,
            "smoke.pytest",
            format!(
                "check `{name}`: the requirements file `{}` does not exist (looked for \
                 {}); name a hash-pinned lock that pins pytest",
                c.requirements.get_ref(),
                crate::util::shown(&requirements)
            ),
        ));
    }
    Ok(PytestCheck {
        name: c.name.into_inner(),
        path,
        requirements,
    })
}

/// HTTP methods (RFC 9110 and PATCH).
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The longest WAV the probe can make: a RIFF file holds at most 4 GiB, at 16 kHz 16-bit mono.
const MAX_WAV_SECONDS: f64 = (u32::MAX / 2 / 16_000) as f64;

fn resolve_http(bad: Bad, c: RawHttpCheck) -> Result<HttpCheck> {
    let name = c.name.get_ref();
    if name.trim().is_empty() {
        return Err(bad(
            &c.name,
            "smoke.http",
            "a check needs a `name` to be reported by".into(),
        ));
    }
    let method = match &c.method {
        Some(m) if !METHODS.contains(&m.get_ref().as_str()) => {
            let upper = m.get_ref().to_ascii_uppercase();
            let hint = if METHODS.contains(&upper.as_str()) {
                format!("write `{upper}`")
            } else {
                format!("use one of {}", METHODS.join(", "))
            };
            return Err(bad(
                m,
                "smoke.http",
                format!(
                    "check `{name}`: `{}` is not an HTTP method; {hint}",
                    m.get_ref()
                ),
            ));
        }
        Some(m) => m.get_ref().clone(),
        None => default_method(),
    };
    check_url_path(c.path.get_ref())
        .map_err(|e| bad(&c.path, "smoke.http", format!("check `{name}`: {e}")))?;
    let status = match &c.status {
        Some(s) if !(100..=599).contains(s.get_ref()) => {
            let at = Spanned::new(s.span(), String::new());
            return Err(bad(
                &at,
                "smoke.http",
                format!("check `{name}` expects status {}, which is no HTTP status; use 100 to 599, e.g. 200", s.get_ref()),
            ));
        }
        Some(s) => *s.get_ref(),
        None => default_status(),
    };
    let wav_seconds = match &c.wav_seconds {
        Some(w)
            if !(w.get_ref().is_finite()
                && *w.get_ref() > 0.0
                && *w.get_ref() <= MAX_WAV_SECONDS) =>
        {
            let at = Spanned::new(w.span(), String::new());
            return Err(bad(
                &at,
                "smoke.http",
                format!(
                    "check `{name}`: wav_seconds = {} is no WAV length; give seconds above 0 and at most {MAX_WAV_SECONDS} (4 GiB at 16 kHz), or remove it to send no file",
                    w.get_ref()
                ),
            ));
        }
        Some(w) => Some(*w.get_ref()),
        None => None,
    };
    Ok(HttpCheck {
        name: c.name.into_inner(),
        method,
        path: c.path.into_inner(),
        status,
        json: c.json,
        wav_seconds,
    })
}

/// A path the checks request as `http://127.0.0.1:PORT{path}`.
fn check_url_path(path: &str) -> std::result::Result<(), String> {
    if !path.starts_with('/') || path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{path}` is not a URL path; write one that starts with `/` and has no spaces, e.g. `/health`"
        ));
    }
    Ok(())
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Default checks first, then the variant's; a variant check replaces a default of the same name.
fn merge_checks<T>(defaults: Vec<T>, variant: Vec<T>, name: impl Fn(&T) -> &String) -> Vec<T> {
    let mut out: Vec<T> = defaults
        .into_iter()
        .filter(|d| !variant.iter().any(|v| name(v) == name(d)))
        .collect();
    out.extend(variant);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_merge_by_name() {
        let merged = merge_checks(
            vec!["a".to_string(), "b".into()],
            vec!["b".into(), "c".into()],
            |s| s,
        );
        assert_eq!(merged, vec!["a", "b", "c"]);
    }
}
