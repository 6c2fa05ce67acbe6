//! `[project]` and `[base]` of images.toml: the version every tag carries, and the values
//! mmdebstrap and the image labels take.

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use toml::Spanned;

use super::located::{Located, Str};
use super::names::{self, Reference};
use super::registry::Registry;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Project {
    /// Image title (OCI `title` label) and default repository name.
    pub(crate) name: String,
    pub(crate) description: String,
    /// SPDX licence expression (OCI `licenses` label).
    pub(crate) licenses: String,
    /// URL of the source repository (OCI `source` label); defaults to git's `origin` remote.
    pub(crate) source: Option<String>,
    /// The version: given here, or read from `[project].version` of this pyproject.toml.
    pub(crate) version: Option<String>,
    pub(crate) version_from: Option<Utf8PathBuf>,
    /// Where `build --push`, `sign` and `verify` publish (`--registry` and `XTASK_REGISTRY` win).
    pub(crate) registry: Option<Registry>,
}

/// The offline Debian base image (`cargo xtask base`).
#[derive(Debug, Clone, Serialize)]
pub struct Base {
    /// Name the base image is stored under, e.g. `localhost/debian:trixie-slim`.
    pub image: String,
    pub(crate) suite: String,
    pub(crate) variant: String,
    pub(crate) include: Vec<String>,
    /// Fixed timestamp: the same inputs give the same image ID.
    pub(crate) source_date_epoch: u64,
    /// dpkg `path-exclude` globs (docs, man pages, locales).
    pub(crate) path_exclude: Vec<String>,
    /// dpkg `path-include` globs that win over `path_exclude` (licence files).
    pub(crate) path_include: Vec<String>,
    /// Absolute path globs removed once every package is installed (each must match): what a
    /// package's maintainer script needs at install time but an image never reads.
    pub(crate) remove: Vec<String>,
    /// Debian mirror; default: the host's apt sources, else mmdebstrap's default.
    pub(crate) mirror: Option<String>,
    /// Debian security mirror; default: the host's apt sources, else mmdebstrap's default.
    pub(crate) security_mirror: Option<String>,
    /// The platforms the base image's index holds (`linux/amd64` when not given), each a
    /// Debian architecture; foreign ones are built under emulation.
    pub(crate) platforms: Vec<String>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { name = "voxserve", description = "…", licenses = "Apache-2.0" }"#
)]
pub(super) struct RawProject {
    name: String,
    description: String,
    licenses: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    version: Option<Str>,
    #[serde(default)]
    version_from: Option<Str>,
    #[serde(default)]
    registry: Option<Str>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { image = "localhost/debian:trixie-slim", suite = "trixie", source_date_epoch = 1764288000 }"#
)]
pub(super) struct RawBase {
    image: Str,
    suite: Str,
    #[serde(default)]
    variant: Option<Str>,
    #[serde(default)]
    include: Vec<Str>,
    source_date_epoch: Spanned<u64>,
    #[serde(default)]
    path_exclude: Vec<Str>,
    #[serde(default)]
    path_include: Vec<Str>,
    #[serde(default)]
    remove: Vec<Str>,
    #[serde(default)]
    mirror: Option<Str>,
    #[serde(default)]
    security_mirror: Option<Str>,
    #[serde(default)]
    platforms: Option<Spanned<Vec<Str>>>,
}

pub(crate) struct ResolvedProject {
    pub(crate) project: Project,
    /// Where the version came from, for errors about it.
    pub(crate) version_span: Option<Range<usize>>,
}

pub(crate) fn resolve_project(
    loc: &Located,
    dir: &Utf8Path,
    raw: RawProject,
) -> Result<ResolvedProject> {
    let version_span = raw
        .version
        .as_ref()
        .or(raw.version_from.as_ref())
        .map(Spanned::span);
    let version = match (&raw.version, &raw.version_from) {
        (Some(v), _) => Some(v.get_ref().clone()),
        (None, Some(from)) => Some(
            read_pyproject_version(&crate::util::host_join(dir, from.get_ref()))
                .map_err(|e| loc.at(Some(from.span()), None, format!("version_from: {e}")))?,
        ),
        (None, None) => None,
    };
    let registry = match &raw.registry {
        Some(r) => Some(
            Registry::parse(r.get_ref(), "registry")
                .map_err(|e| loc.at(Some(r.span()), None, e))?,
        ),
        None => None,
    };
    Ok(ResolvedProject {
        project: Project {
            name: raw.name,
            description: raw.description,
            licenses: raw.licenses,
            source: raw.source,
            version,
            version_from: raw.version_from.map(|f| f.into_inner().into()),
            registry,
        },
        version_span,
    })
}

fn read_pyproject_version(path: &Utf8Path) -> Result<String> {
    let shown = crate::util::shown(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!("cannot read {shown} ({e}); name an existing pyproject.toml")
    })?;
    let doc: toml::Table = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{shown} is not valid TOML: {}", e.message().trim_end()))?;
    doc.get("project")
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .with_context(|| format!("{shown} has no [project].version; add one or set `version`"))
}

/// mmdebstrap's `--variant` values.
const MMDEBSTRAP_VARIANTS: &[&str] = &[
    "extract",
    "custom",
    "essential",
    "apt",
    "required",
    "minbase",
    "buildd",
    "important",
    "debootstrap",
    "-",
    "standard",
];

/// The base's platform when `[base].platforms` is not given.
pub(crate) const DEFAULT_PLATFORM: &str = "linux/amd64";

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z): the `created` label needs it.
const MAX_EPOCH: u64 = 253_402_300_799;

/// `[base]`, every value checked as mmdebstrap, dpkg and the image labels take it.
pub(crate) fn resolve_base(loc: &Located, raw: RawBase) -> Result<Base> {
    let err =
        |s: &Str, key: &str, msg: String| loc.at(Some(s.span()), None, format!("{key}: {msg}"));
    names::check_reference(raw.image.get_ref(), Reference::Tagged)
        .map_err(|e| err(&raw.image, "image", e.to_string()))?;
    check(&err, "suite", &raw.suite, check_suite)?;
    if let Some(variant) = &raw.variant {
        check(&err, "variant", variant, check_variant)?;
    }
    for package in &raw.include {
        check(&err, "include", package, check_package)?;
    }
    check_epoch(loc, &raw.source_date_epoch)?;
    for glob in &raw.path_exclude {
        check(&err, "path_exclude", glob, check_dpkg_glob)?;
    }
    for glob in &raw.path_include {
        check(&err, "path_include", glob, check_dpkg_glob)?;
    }
    for glob in &raw.remove {
        check(&err, "remove", glob, check_remove_glob)?;
    }
    for (key, mirror) in [
        ("mirror", &raw.mirror),
        ("security_mirror", &raw.security_mirror),
    ] {
        if let Some(m) = mirror {
            check(&err, key, m, check_mirror)?;
        }
    }
    let platforms = platforms(loc, &err, raw.platforms)?;
    let list = |v: Vec<Str>| v.into_iter().map(Spanned::into_inner).collect();
    Ok(Base {
        image: raw.image.into_inner(),
        suite: raw.suite.into_inner(),
        variant: raw
            .variant
            .map_or_else(|| "minbase".into(), Spanned::into_inner),
        include: list(raw.include),
        source_date_epoch: raw.source_date_epoch.into_inner(),
        path_exclude: list(raw.path_exclude),
        path_include: list(raw.path_include),
        remove: list(raw.remove),
        mirror: raw.mirror.map(Spanned::into_inner),
        security_mirror: raw.security_mirror.map(Spanned::into_inner),
        platforms,
    })
}

/// Makes the error of a value: its place, `key: message`.
type Err<'a> = &'a dyn Fn(&Str, &str, String) -> anyhow::Error;

/// The value `check` accepts, or its message at the value.
fn check(err: Err, key: &str, value: &Str, check: fn(&str) -> Option<String>) -> Result<()> {
    match check(value.get_ref()) {
        Some(msg) => Err(err(value, key, msg)),
        None => Ok(()),
    }
}

fn check_suite(suite: &str) -> Option<String> {
    let valid = !suite.is_empty()
        && suite
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
    (!valid).then(|| {
        format!("`{suite}` is not a Debian suite; write a codename or suite such as `trixie` or `stable`")
    })
}

fn check_variant(variant: &str) -> Option<String> {
    (!MMDEBSTRAP_VARIANTS.contains(&variant)).then(|| {
        format!(
            "`{variant}` is not an mmdebstrap variant; use one of {}",
            MMDEBSTRAP_VARIANTS.join(", ")
        )
    })
}

fn check_package(p: &str) -> Option<String> {
    let name = p.split(['=', '/']).next().unwrap_or("");
    let valid = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
    (!valid).then(|| {
        format!("`{p}` is not a Debian package name (lowercase letters, digits, `+`, `-`, `.`; optionally `=VERSION`)")
    })
}

fn check_epoch(loc: &Located, epoch: &Spanned<u64>) -> Result<()> {
    if *epoch.get_ref() > MAX_EPOCH {
        return Err(loc.at(
            Some(epoch.span()),
            None,
            format!("source_date_epoch: {} is after the year 9999, which image timestamps cannot say; use seconds since 1970 such as 1764288000", epoch.get_ref()),
        ));
    }
    Ok(())
}

fn check_dpkg_glob(glob: &str) -> Option<String> {
    (!glob.starts_with('/')).then(|| {
        format!("`{glob}` is not an absolute path glob; dpkg's filters start with `/`, e.g. `/usr/share/doc/*`")
    })
}

fn check_remove_glob(g: &str) -> Option<String> {
    let safe = g.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '/' | '.' | '_' | '-' | '+' | '*' | '?' | '[' | ']')
    });
    let valid = g.starts_with('/') && g != "/" && safe && !g.contains("..");
    (!valid).then(|| {
        format!("`{g}` is not an absolute path glob of letters, digits, `/._-+` and `*?[]`, e.g. `/usr/lib/python3.*/test`")
    })
}

fn check_mirror(uri: &str) -> Option<String> {
    let scheme = uri.split_once("://").map(|(s, _)| s);
    let valid = scheme.is_some_and(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    (!valid || uri.contains(char::is_whitespace)).then(|| {
        format!("`{uri}` is not a URI; write the mirror's URL, e.g. `http://mirror.example/debian`")
    })
}

/// `platforms`: `linux/amd64` when not given; each a Debian architecture, listed once.
fn platforms(loc: &Located, err: Err, raw: Option<Spanned<Vec<Str>>>) -> Result<Vec<String>> {
    let platforms = match raw {
        Some(list) if list.get_ref().is_empty() => {
            return Err(loc.at(
                Some(list.span()),
                None,
                "platforms: the list is empty; name at least one, e.g. [\"linux/amd64\"]",
            ))
        }
        Some(list) => list.into_inner(),
        None => vec![Spanned::new(0..0, DEFAULT_PLATFORM.to_string())],
    };
    for (i, p) in platforms.iter().enumerate() {
        let platform = p.get_ref();
        names::check_platform(platform).map_err(|e| err(p, "platforms", e.to_string()))?;
        crate::emulation::debian_arch(platform).map_err(|e| err(p, "platforms", e.to_string()))?;
        if platforms[..i].iter().any(|q| q.get_ref() == platform) {
            return Err(err(p, "platforms", format!("`{platform}` is listed twice")));
        }
    }
    Ok(platforms.into_iter().map(Spanned::into_inner).collect())
}
