//! images.toml: the one place image variants are declared. Schema, defaults inheritance,
//! validation, and errors that name file:line:col and the variant.
//!
//! Inheritance: every field of `[defaults]` applies to each `[variants.NAME]`. Scalars and
//! lists are replaced by the variant's value; tables (`build_args`, `budget`, `smoke`, `scan`)
//! are merged key by key; smoke checks (`smoke.exec`, `smoke.http`) are appended, and a variant
//! check with the same `name` as a default check replaces it.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// The resolved, validated config.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file it was read from.
    pub path: Utf8PathBuf,
    /// The directory relative paths in it are based on.
    pub dir: Utf8PathBuf,
    pub project: Project,
    pub base: Base,
    pub build: BuildSettings,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Image title (OCI `title` label) and default repository name.
    pub name: String,
    pub description: String,
    /// SPDX licence expression (OCI `licenses` label).
    pub licenses: String,
    /// URL of the source repository (OCI `source` label); defaults to git's `origin` remote.
    #[serde(default)]
    pub source: Option<String>,
    /// The version: given here, or read from `[project].version` of this pyproject.toml.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub version_from: Option<Utf8PathBuf>,
}

/// The offline Debian base image (`cargo xtask base`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// Name the base image is stored under, e.g. `localhost/debian:trixie-slim`.
    pub image: String,
    pub suite: String,
    #[serde(default = "default_mmdebstrap_variant")]
    pub variant: String,
    #[serde(default)]
    pub include: Vec<String>,
    /// Fixed timestamp: the same inputs give the same image ID.
    pub source_date_epoch: u64,
    /// dpkg `path-exclude` globs (docs, man pages, locales).
    #[serde(default)]
    pub path_exclude: Vec<String>,
    /// dpkg `path-include` globs that win over `path_exclude` (licence files).
    #[serde(default)]
    pub path_include: Vec<String>,
    /// Debian mirror; default: the host's apt sources, else mmdebstrap's default.
    #[serde(default)]
    pub mirror: Option<String>,
    /// Debian security mirror; default: the host's apt sources, else mmdebstrap's default.
    #[serde(default)]
    pub security_mirror: Option<String>,
}

fn default_mmdebstrap_variant() -> String {
    "minbase".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSettings {
    /// A CA bundle to pass to builds as the `ca-bundle` secret (besides SSL_CERT_FILE & co.).
    #[serde(default)]
    pub ca_bundle: Option<Utf8PathBuf>,
    /// Where `--cache local` keeps BuildKit's cache, one directory per variant.
    #[serde(default)]
    pub cache_dir: Option<Utf8PathBuf>,
}

/// One image variant with defaults applied.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub name: String,
    pub description: String,
    /// Absolute path of the Dockerfile.
    pub dockerfile: Utf8PathBuf,
    /// Absolute path of the build context.
    pub context: Utf8PathBuf,
    pub target: Option<String>,
    /// Repository name the image is tagged under (`<image>:<variant>`).
    pub image: String,
    /// Extra tags besides the standard ones.
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub platforms: Vec<String>,
    /// Layer compression for `cargo xtask build --push` when `--compression` is not given
    /// (None: buildx's default, gzip).
    pub push_compression: Option<Compression>,
    pub budget: Budget,
    pub smoke: Smoke,
    pub scan: Scan,
}

/// Layer compression of pushed images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    fn parse(s: &str) -> Result<Compression> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => bail!("unknown compression `{other}`; use gzip or zstd"),
        }
    }
}

impl Variant {
    /// The tag every command refers to the local image by.
    pub fn image_ref(&self) -> String {
        format!("{}:{}", self.image, self.name)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Budget {
    /// Bytes.
    pub compressed: Option<u64>,
    /// Bytes.
    pub unpacked: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Smoke {
    /// How long the container may take to become healthy.
    #[serde(serialize_with = "ser_secs")]
    pub health_timeout: Duration,
    /// `docker run --memory`, e.g. `1g`.
    pub memory: Option<String>,
    /// `docker run --cpus`, e.g. `1.5`.
    pub cpus: Option<String>,
    /// Port the service listens on inside the container.
    pub port: u16,
    /// HTTP path probed when the image has no HEALTHCHECK.
    pub http_probe: Option<String>,
    /// Environment variables the image must define (`NAME` or `NAME=VALUE`).
    pub env: Vec<String>,
    /// Labels the image must carry.
    pub labels: Vec<String>,
    /// Paths that must not exist in the image.
    pub forbidden_paths: Vec<String>,
    /// Python distributions that must not be installed (globs such as `nvidia-*`).
    pub forbidden_packages: Vec<String>,
    pub exec: Vec<ExecCheck>,
    pub http: Vec<HttpCheck>,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A command run in the container, with its expected exit code and output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExecCheck {
    pub name: String,
    pub cmd: Vec<String>,
    #[serde(default)]
    pub exit_code: i32,
    /// Stdout must contain this text.
    #[serde(default)]
    pub stdout_contains: Option<String>,
}

/// An HTTP request made from inside the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default = "default_status")]
    pub status: u16,
    /// Top-level JSON fields the response must have, with these values.
    #[serde(default)]
    pub json: BTreeMap<String, toml::Value>,
    /// Upload a generated WAV of this many seconds as the multipart field `file`.
    #[serde(default)]
    pub wav_seconds: Option<f64>,
}

fn default_method() -> String {
    "GET".into()
}
fn default_status() -> u16 {
    200
}

#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    /// Severities that fail the scan.
    pub fail_on: Vec<String>,
    /// Ignore vulnerabilities without a fixed version.
    pub ignore_unfixed: bool,
    /// Vulnerability IDs (`CVE-…`, `GHSA-…`) accepted for this variant: reported, never failing.
    pub ignore: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// The file as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    project: Project,
    base: Base,
    #[serde(default)]
    build: BuildSettings,
    #[serde(default)]
    defaults: RawVariant,
    #[serde(default)]
    variants: Option<Spanned<BTreeMap<String, Spanned<RawVariant>>>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    description: Option<String>,
    dockerfile: Option<Spanned<String>>,
    context: Option<Spanned<String>>,
    target: Option<String>,
    image: Option<String>,
    tags: Option<Vec<String>>,
    build_args: Option<BTreeMap<String, String>>,
    platforms: Option<Vec<String>>,
    push_compression: Option<Spanned<String>>,
    budget: Option<RawBudget>,
    smoke: Option<RawSmoke>,
    scan: Option<RawScan>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    compressed: Option<Spanned<String>>,
    unpacked: Option<Spanned<String>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawSmoke {
    health_timeout: Option<Spanned<String>>,
    memory: Option<String>,
    cpus: Option<String>,
    port: Option<u16>,
    http_probe: Option<String>,
    env: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    forbidden_paths: Option<Vec<String>>,
    forbidden_packages: Option<Vec<String>>,
    exec: Option<Vec<ExecCheck>>,
    http: Option<Vec<HttpCheck>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawScan {
    fail_on: Option<Vec<String>>,
    ignore_unfixed: Option<bool>,
    ignore: Option<Vec<String>>,
}

/// An error at a place in the file.
struct Located<'a> {
    path: &'a Utf8Path,
    text: &'a str,
}

impl Located<'_> {
    fn at(
        &self,
        span: Option<Range<usize>>,
        variant: Option<&str>,
        msg: impl std::fmt::Display,
    ) -> anyhow::Error {
        let variant = variant
            .map(str::to_owned)
            .or_else(|| span.clone().and_then(|s| self.variant_at(s.start)));
        let place = match span {
            Some(span) => {
                let (line, col) = line_col(self.text, span.start);
                format!("{}:{line}:{col}", self.path)
            }
            None => self.path.to_string(),
        };
        match variant {
            Some(v) => anyhow::anyhow!("{place}: variant `{v}`: {msg}"),
            None => anyhow::anyhow!("{place}: {msg}"),
        }
    }

    /// The variant whose table encloses a byte offset (the last `[variants.NAME…]` header before it).
    fn variant_at(&self, offset: usize) -> Option<String> {
        let before = &self.text[..offset.min(self.text.len())];
        before.lines().rev().find_map(|line| {
            let line = line.trim_start();
            if !line.starts_with('[') {
                return None;
            }
            let header = line.trim_start_matches('[').trim_start();
            match header.strip_prefix("variants.") {
                Some(rest) => {
                    let name: String = rest
                        .trim_start_matches('"')
                        .chars()
                        .take_while(|c| !matches!(c, '.' | ']' | '"'))
                        .collect();
                    Some(Some(name.trim().to_owned()))
                }
                None => Some(None),
            }
        })?
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Config {
    pub fn load(path: &Utf8Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("cannot read the images config {path}: pass an existing file with --config")
        })?;
        Config::parse(path, &text)
    }

    pub fn parse(path: &Utf8Path, text: &str) -> Result<Config> {
        let loc = Located { path, text };
        let raw: RawFile =
            toml::from_str(text).map_err(|e| loc.at(e.span(), None, e.message().trim_end()))?;
        let dir = path
            .parent()
            .map(Utf8Path::to_path_buf)
            .unwrap_or_else(|| ".".into());
        let dir = if dir.as_str().is_empty() {
            Utf8PathBuf::from(".")
        } else {
            dir
        };

        let Some(variants) = raw.variants.filter(|v| !v.get_ref().is_empty()) else {
            bail!("{path}: no variants declared: add at least one `[variants.NAME]` table");
        };
        let mut out = Vec::new();
        for (name, v) in variants.into_inner() {
            let span = v.span();
            out.push(resolve_variant(
                &loc,
                &dir,
                &raw.defaults,
                &name,
                v.into_inner(),
                span,
            )?);
        }
        let mut project = raw.project;
        if project.version.is_none() {
            if let Some(from) = &project.version_from {
                project.version = Some(read_pyproject_version(&dir.join(from))?);
            }
        }
        Ok(Config {
            path: path.to_owned(),
            dir,
            project,
            base: raw.base,
            build: raw.build,
            variants: out,
        })
    }

    pub fn variant(&self, name: &str) -> Result<&Variant> {
        self.variants
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown variant `{name}`; known variants: {} (declared in {})",
                    self.variant_names().join(", "),
                    self.path
                )
            })
    }

    /// The variants named on the command line, or all of them with `all`.
    pub fn select(&self, names: &[String], all: bool) -> Result<Vec<&Variant>> {
        if all {
            return Ok(self.variants.iter().collect());
        }
        if names.is_empty() {
            bail!(
                "name at least one variant or pass --all; known variants: {}",
                self.variant_names().join(", ")
            );
        }
        names.iter().map(|n| self.variant(n)).collect()
    }

    pub fn variant_names(&self) -> Vec<&str> {
        self.variants.iter().map(|v| v.name.as_str()).collect()
    }

    pub fn version(&self) -> &str {
        self.project.version.as_deref().unwrap_or("0.0.0")
    }
}

fn read_pyproject_version(path: &Utf8Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the version from {path}"))?;
    let doc: toml::Table = toml::from_str(&text).with_context(|| format!("parsing {path}"))?;
    doc.get("project")
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .with_context(|| format!("{path} has no [project].version"))
}

fn resolve_variant(
    loc: &Located,
    dir: &Utf8Path,
    defaults: &RawVariant,
    name: &str,
    v: RawVariant,
    span: Range<usize>,
) -> Result<Variant> {
    let err = |span: Option<Range<usize>>, msg: String| loc.at(span, Some(name), msg);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(err(
            Some(span),
            "variant names may use letters, digits, `-`, `_` and `.` (they become image tags)"
                .into(),
        ));
    }

    let dockerfile = v
        .dockerfile
        .or_else(|| defaults.dockerfile.clone())
        .ok_or_else(|| {
            err(
                Some(span.clone()),
                "no `dockerfile` (set it in the variant or in [defaults])".into(),
            )
        })?;
    let dockerfile_path = dir.join(dockerfile.get_ref());
    if !dockerfile_path.is_file() {
        return Err(err(
            Some(dockerfile.span()),
            format!(
                "Dockerfile `{}` does not exist (looked for {dockerfile_path})",
                dockerfile.get_ref()
            ),
        ));
    }
    let context = v.context.or_else(|| defaults.context.clone());
    let context_path = match &context {
        Some(c) => dir.join(c.get_ref()),
        None => dir.to_path_buf(),
    };
    if !context_path.is_dir() {
        let span = context.as_ref().map(Spanned::span);
        return Err(err(
            span,
            format!("build context {context_path} is not a directory"),
        ));
    }

    let mut build_args = defaults.build_args.clone().unwrap_or_default();
    build_args.extend(v.build_args.unwrap_or_default());

    let db = defaults.budget.clone().unwrap_or_default();
    let vb = v.budget.unwrap_or_default();
    let parse_budget = |s: Option<Spanned<String>>| -> Result<Option<u64>> {
        s.map(|s| parse_size(s.get_ref()).map_err(|e| err(Some(s.span()), format!("budget: {e}"))))
            .transpose()
    };
    let budget = Budget {
        compressed: parse_budget(vb.compressed.or(db.compressed))?,
        unpacked: parse_budget(vb.unpacked.or(db.unpacked))?,
    };

    let push_compression = v
        .push_compression
        .or_else(|| defaults.push_compression.clone())
        .map(|c| {
            Compression::parse(c.get_ref())
                .map_err(|e| err(Some(c.span()), format!("push_compression: {e}")))
        })
        .transpose()?;

    let ds = defaults.smoke.clone().unwrap_or_default();
    let vs = v.smoke.unwrap_or_default();
    let timeout = vs.health_timeout.or(ds.health_timeout);
    let health_timeout = match timeout {
        Some(t) => parse_duration(t.get_ref())
            .map_err(|e| err(Some(t.span()), format!("smoke.health_timeout: {e}")))?,
        None => Duration::from_secs(120),
    };
    let smoke = Smoke {
        health_timeout,
        memory: vs.memory.or(ds.memory),
        cpus: vs.cpus.or(ds.cpus),
        port: vs.port.or(ds.port).unwrap_or(8000),
        http_probe: vs.http_probe.or(ds.http_probe),
        env: vs.env.or(ds.env).unwrap_or_default(),
        labels: vs.labels.or(ds.labels).unwrap_or_default(),
        forbidden_paths: vs
            .forbidden_paths
            .or(ds.forbidden_paths)
            .unwrap_or_default(),
        forbidden_packages: vs
            .forbidden_packages
            .or(ds.forbidden_packages)
            .unwrap_or_default(),
        exec: merge_checks(
            ds.exec.unwrap_or_default(),
            vs.exec.unwrap_or_default(),
            |c| &c.name,
        ),
        http: merge_checks(
            ds.http.unwrap_or_default(),
            vs.http.unwrap_or_default(),
            |c| &c.name,
        ),
    };
    for check in &smoke.exec {
        if check.cmd.is_empty() {
            return Err(err(
                Some(span.clone()),
                format!("smoke check `{}` has an empty `cmd`", check.name),
            ));
        }
    }

    let dsc = defaults.scan.clone().unwrap_or_default();
    let vsc = v.scan.unwrap_or_default();
    let fail_on: Vec<String> = vsc
        .fail_on
        .or(dsc.fail_on)
        .unwrap_or_else(|| vec!["CRITICAL".into(), "HIGH".into()])
        .into_iter()
        .map(|s| s.to_ascii_uppercase())
        .collect();
    for sev in &fail_on {
        if !matches!(
            sev.as_str(),
            "UNKNOWN" | "LOW" | "MEDIUM" | "HIGH" | "CRITICAL"
        ) {
            return Err(err(
                Some(span.clone()),
                format!("scan.fail_on: unknown severity `{sev}`; use UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL"),
            ));
        }
    }
    let scan = Scan {
        fail_on,
        ignore_unfixed: vsc.ignore_unfixed.or(dsc.ignore_unfixed).unwrap_or(true),
        ignore: vsc.ignore.or(dsc.ignore).unwrap_or_default(),
    };

    let image = v.image.or_else(|| defaults.image.clone()).ok_or_else(|| {
        err(
            Some(span.clone()),
            "no `image` repository name (set it in the variant or in [defaults])".into(),
        )
    })?;

    Ok(Variant {
        name: name.to_owned(),
        description: v
            .description
            .or_else(|| defaults.description.clone())
            .unwrap_or_default(),
        dockerfile: dockerfile_path,
        context: context_path,
        target: v.target.or_else(|| defaults.target.clone()),
        image,
        tags: v.tags.or_else(|| defaults.tags.clone()).unwrap_or_default(),
        build_args,
        platforms: v
            .platforms
            .or_else(|| defaults.platforms.clone())
            .unwrap_or_default(),
        push_compression,
        budget,
        smoke,
        scan,
    })
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

/// Parses a size such as `950 MB`, `2.5 GiB`, `200MB`, `1024` (bytes). Decimal units are powers
/// of 1000 (as registries and `docker image ls` report), binary units powers of 1024.
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        anyhow::anyhow!(
            "`{s}` is not a size; write a number and a unit such as `950 MB` or `2.5 GiB`"
        )
    })?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0_f64.powi(4),
        other => {
            bail!("unknown unit `{other}` in `{s}`; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB")
        }
    };
    Ok((value * mult).round() as u64)
}

/// Parses a duration such as `90s`, `2m`, `1m30s`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        bail!("empty duration; write e.g. `90s` or `2m`");
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(split);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let value: f64 = num
            .parse()
            .map_err(|_| anyhow::anyhow!("`{s}` is not a duration; write e.g. `90s` or `2m`"))?;
        let secs = match unit.trim() {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            other => bail!("unknown unit `{other}` in `{s}`; use ms, s, m or h"),
        };
        total += Duration::from_secs_f64(secs);
        rest = next;
    }
    Ok(total)
}

/// Human-readable decimal size, e.g. `949.3 MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size("950 MB").unwrap(), 950_000_000);
        assert_eq!(parse_size("2.5 GiB").unwrap(), 2_684_354_560);
        assert_eq!(parse_size("200MB").unwrap(), 200_000_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("4.0 GB").unwrap(), 4_000_000_000);
        let err = parse_size("3 GX").unwrap_err().to_string();
        assert!(err.contains("unknown unit `GX`"), "{err}");
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(949_300_000), "949.3 MB");
        assert_eq!(human_size(2_500_000_000), "2.5 GB");
    }

    #[test]
    fn line_col_is_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    /// Parses `body` after a minimal head, in a directory that has a `Dockerfile`.
    fn parse_with(body: &str) -> Result<Config> {
        let dir =
            std::env::temp_dir().join(format!("xtask-config-{}", crate::util::unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
        let path = Utf8PathBuf::try_from(dir.join("images.toml")).unwrap();
        let text = format!(
            "[project]\nname = \"p\"\ndescription = \"d\"\nlicenses = \"MIT\"\nversion = \"1\"\n\n\
             [base]\nimage = \"b\"\nsuite = \"trixie\"\nsource_date_epoch = 0\n\n{body}"
        );
        let result = Config::parse(&path, &text);
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn push_compression_is_inherited_overridden_and_validated() {
        let config = parse_with(
            "[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\npush_compression = \"gzip\"\n\n\
             [variants.a]\n\n[variants.b]\npush_compression = \"zstd\"\n",
        )
        .unwrap();
        assert_eq!(
            config.variant("a").unwrap().push_compression,
            Some(Compression::Gzip)
        );
        assert_eq!(
            config.variant("b").unwrap().push_compression,
            Some(Compression::Zstd)
        );

        let config =
            parse_with("[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\n[variants.a]\n")
                .unwrap();
        assert_eq!(config.variant("a").unwrap().push_compression, None);

        let err = parse_with(
            "[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\n\
             [variants.a]\npush_compression = \"lz4\"\n",
        )
        .unwrap_err()
        .to_string();
        // Line 17 (11 head lines + 6), column 20: the value, not the key.
        assert!(err.ends_with("images.toml:17:20: variant `a`: push_compression: unknown compression `lz4`; use gzip or zstd"), "{err}");
    }

    #[test]
    fn scan_ignore_is_inherited_and_replaced() {
        let config = parse_with(
            "[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\
             [defaults.scan]\nignore = [\"CVE-1\"]\n\n\
             [variants.a]\n\n[variants.b]\nscan = { ignore = [\"CVE-2\"], fail_on = [\"low\"] }\n",
        )
        .unwrap();
        let a = &config.variant("a").unwrap().scan;
        assert_eq!(a.ignore, vec!["CVE-1"]);
        assert_eq!(a.fail_on, vec!["CRITICAL", "HIGH"]);
        assert!(a.ignore_unfixed);
        let b = &config.variant("b").unwrap().scan;
        assert_eq!(b.ignore, vec!["CVE-2"]);
        assert_eq!(b.fail_on, vec!["LOW"]);
    }

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
