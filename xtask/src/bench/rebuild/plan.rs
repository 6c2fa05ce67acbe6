//! The plan of `bench rebuild` (pure but for reading the files): the four builds in order, the
//! files two of them touch (checked before any build starts), and the `cargo xtask build`
//! arguments they share.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::build_cmd::{self as build, CacheMode, Progress};
use crate::config::{Config, Variant};
use crate::report::Format;
use crate::util::Ctx;

/// The app source file touched by default (relative to the project root).
pub const DEFAULT_APP_FILE: &str = "app/src/voxserve/__init__.py";
/// The dependency file touched by default: the lock the deps stage installs from.
pub const DEFAULT_DEP_FILE: &str = "app/requirements.lock";
/// What the appended comment line says; also how a file left modified by a killed run is found.
const MARKER: &str = "xtask bench touch";

/// The four builds, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Cold,
    NoChange,
    AppChange,
    DepChange,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::Cold,
        Scenario::NoChange,
        Scenario::AppChange,
        Scenario::DepChange,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Scenario::Cold => "cold (--no-cache)",
            Scenario::NoChange => "warm, no change",
            Scenario::AppChange => "warm, one app file changed",
            Scenario::DepChange => "warm, dependency file changed",
        }
    }
}

/// The variant and the two files to touch, with their original bytes.
pub struct Plan<'a> {
    pub variant: &'a Variant,
    /// The base image, whose ID must not change during the bench.
    pub base_image: &'a str,
    pub app_file: Utf8PathBuf,
    pub dep_file: Utf8PathBuf,
    pub app_original: Vec<u8>,
    pub dep_original: Vec<u8>,
}

impl<'a> Plan<'a> {
    /// Resolves the variant and the files (relative to the current directory; by default the
    /// project's own) and refuses files that cannot affect the build or were left modified.
    pub fn new(
        ctx: &Ctx,
        config: &'a Config,
        variant: &str,
        app_file: Option<&Utf8PathBuf>,
        dep_file: Option<&Utf8PathBuf>,
    ) -> Result<Plan<'a>> {
        let variant = config
            .select(&[variant.to_string()], false)?
            .into_iter()
            .next()
            .context("no variant selected")?;
        let cwd = Utf8PathBuf::try_from(std::env::current_dir()?)
            .context("the current directory is not UTF-8")?;
        let resolve = |given: Option<&Utf8PathBuf>, default: &str| match given {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => cwd.join(p),
            None => ctx.root.join(default),
        };
        let app_file = resolve(app_file, DEFAULT_APP_FILE);
        let dep_file = resolve(dep_file, DEFAULT_DEP_FILE);
        let read = |path: &Utf8Path| -> Result<Vec<u8>> {
            let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
            validate_touch(path, &variant.context, &bytes)?;
            Ok(bytes)
        };
        let app_original = read(&app_file)?;
        let dep_original = read(&dep_file)?;
        Ok(Plan {
            variant,
            base_image: &config.base.image,
            app_file,
            dep_file,
            app_original,
            dep_original,
        })
    }

    /// What every build of the bench runs: `cargo xtask build <variant> --load` with a local
    /// cache of its own (so the bench neither uses nor rotates that of `cargo xtask build`),
    /// plain progress, and its build report written under `report_dir`.
    pub fn build_args(
        &self,
        report_dir: &Utf8Path,
        cache_dir: Utf8PathBuf,
        builder: Option<String>,
    ) -> build::Args {
        build::Args {
            variants: vec![self.variant.name.clone()],
            all: false,
            load: true,
            push: false,
            registry: None,
            provenance: None,
            sbom: false,
            sbom_generator: None,
            compression: None,
            platform: vec![],
            builder,
            no_cache: false,
            pull: false,
            build_args: vec![],
            tags: vec![],
            cache: Some(CacheMode::Local),
            progress: Progress::Plain,
            ca_bundle: None,
            format: Format::Table,
            report_dir: Some(report_dir.to_owned()),
            cache_dir: Some(cache_dir),
        }
    }
}

/// The bytes a touched file gets: the original with one comment line appended (after a newline
/// if the original lacks a final one). `nonce` makes the content new to every cache.
pub fn touched_contents(path: &Utf8Path, original: &[u8], nonce: &str) -> Vec<u8> {
    let mut out = original.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let line = format!("{} {MARKER} {nonce}\n", comment_prefix(path));
    out.extend_from_slice(line.as_bytes());
    out
}

/// The line-comment syntax of a file, by its name.
pub fn comment_prefix(path: &Utf8Path) -> &'static str {
    match path.extension().unwrap_or("") {
        "rs" | "js" | "ts" | "go" | "c" | "h" | "cc" | "cpp" | "java" => "//",
        "sql" | "lua" => "--",
        // Python, requirement files and locks, TOML, YAML, shell, Dockerfiles.
        _ => "#",
    }
}

/// Checks that a file to be touched exists, is inside the build context (else the change could
/// not affect the build) and carries no marker of an earlier, killed run.
pub fn validate_touch(path: &Utf8Path, context: &Utf8Path, contents: &[u8]) -> Result<()> {
    if !path.starts_with(context) {
        bail!(
            "{path} is outside the build context {context}: changing it cannot affect the build; \
             pick a file under the context"
        );
    }
    if contents
        .windows(MARKER.len())
        .any(|w| w == MARKER.as_bytes())
    {
        bail!(
            "{path} still holds a `{MARKER}` line from an earlier run that was killed: restore it \
             (`git checkout -- {path}`) and run again"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_appends_one_comment_line() {
        let py = Utf8Path::new("/p/app/src/voxserve/__init__.py");
        assert_eq!(
            touched_contents(py, b"x = 1\n", "n1"),
            b"x = 1\n# xtask bench touch n1\n"
        );
        // A missing final newline is added first, so the original last line stays intact.
        assert_eq!(
            touched_contents(py, b"x = 1", "n1"),
            b"x = 1\n# xtask bench touch n1\n"
        );
        assert_eq!(touched_contents(py, b"", "n1"), b"# xtask bench touch n1\n");
        let rs = Utf8Path::new("/p/src/main.rs");
        assert!(touched_contents(rs, b"", "n").starts_with(b"// "));
        assert_eq!(comment_prefix(Utf8Path::new("app/requirements.lock")), "#");
        assert_eq!(comment_prefix(Utf8Path::new("Dockerfile")), "#");
        // Different nonces give different contents (no earlier run's cache can match).
        assert_ne!(
            touched_contents(py, b"x", "a"),
            touched_contents(py, b"x", "b")
        );
    }

    #[test]
    fn touch_planning_refuses_files_outside_the_context_or_left_modified() {
        let ctx = Utf8Path::new("/p");
        assert!(validate_touch(Utf8Path::new("/p/app/a.py"), ctx, b"x").is_ok());
        let err = validate_touch(Utf8Path::new("/elsewhere/a.py"), ctx, b"x").unwrap_err();
        assert!(
            err.to_string().contains("outside the build context"),
            "{err}"
        );
        // `/pp` is not inside `/p`.
        assert!(validate_touch(Utf8Path::new("/pp/a.py"), ctx, b"x").is_err());
        let left = touched_contents(Utf8Path::new("/p/a.py"), b"x\n", "old");
        let err = validate_touch(Utf8Path::new("/p/a.py"), ctx, &left).unwrap_err();
        assert!(err.to_string().contains("git checkout"), "{err}");
    }
}
