//! The plan of `bench rebuild` (pure but for reading the files): the four builds in order, the
//! files two of them touch (checked before any build starts), and the `cargo xtask build`
//! arguments they share.

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::bench::touch::{validate_touch, DEFAULT_APP_FILE, DEFAULT_DEP_FILE};
use crate::build_cmd::{self as build, CacheMode, Progress};
use crate::config::{Config, Variant};
use crate::report::Format;
use crate::util::Ctx;

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
