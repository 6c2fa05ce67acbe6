//! The plan of `bench rebuild` (pure but for reading the files): the four builds in order, the
//! files two of them touch (checked before any build starts), and the `cargo xtask build`
//! arguments they share.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::touch::{validate_touch, DEFAULT_APP_FILE, DEFAULT_DEP_FILE};
use xtask::build_cmd::{self as build, CacheMode};
use xtask::config::{Config, Variant};
use xtask::util::Ctx;

/// The four builds, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// With `--platform`: the cold build for the engine's own platform, the reference of the
    /// platform's cold build.
    ColdNative,
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
            Scenario::ColdNative => "cold, the engine's platform (--no-cache)",
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
    /// The peer Dockerfile built as a variant of its own after each of ours, with the same
    /// change (None: no peer).
    pub peer: Option<Variant>,
}

/// Where a variant's peer lives by default: bench data, `xtask/benches/peer/<variant>.Dockerfile`.
pub fn default_peer(root: &Utf8Path, variant: &str) -> Utf8PathBuf {
    root.join("xtask")
        .join("benches")
        .join("peer")
        .join(format!("{variant}.Dockerfile"))
}

/// The peer as a variant: our context and platforms, its own Dockerfile and image, no target
/// and no build arguments but the offline base the build adds.
pub fn peer_variant(ours: &Variant, dockerfile: Utf8PathBuf) -> Variant {
    let mut peer = ours.clone();
    peer.name = format!("{}-peer", ours.name);
    peer.description = format!("the peer of {} (bench data)", ours.name);
    peer.dockerfile = dockerfile;
    peer.target = None;
    peer.image = PEER_IMAGE.into();
    peer.tags = vec![];
    peer.build_args = Default::default();
    peer
}

/// The repository the peer's images are tagged in; the bench removes them afterwards.
pub const PEER_IMAGE: &str = "localhost/xtask-bench-peer";

impl<'a> Plan<'a> {
    /// Resolves the variant and the files (relative to the current directory; by default the
    /// project's own) and refuses files that cannot affect the build or were left modified.
    pub fn new(
        ctx: &Ctx,
        config: &'a Config,
        variant: &str,
        app_file: Option<&Utf8PathBuf>,
        dep_file: Option<&Utf8PathBuf>,
        peer: Option<Utf8PathBuf>,
    ) -> Result<Plan<'a>> {
        let variant = config
            .select(&[variant.to_string()], false)?
            .into_iter()
            .next()
            .context("no variant selected")?;
        let resolve = |given: Option<&Utf8PathBuf>, default: &str| match given {
            Some(p) => xtask::util::absolute(p),
            None => Ok(ctx.root.join(default)),
        };
        let app_file = resolve(app_file, DEFAULT_APP_FILE)?;
        let dep_file = resolve(dep_file, DEFAULT_DEP_FILE)?;
        let read = |path: &Utf8Path| -> Result<Vec<u8>> {
            let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
            validate_touch(path, &variant.context, &bytes)?;
            Ok(bytes)
        };
        let app_original = read(&app_file)?;
        let dep_original = read(&dep_file)?;
        let peer = match peer {
            Some(file) if !file.is_file() => bail!(
                "the peer Dockerfile {file} does not exist: pass another with --peer, or --no-peer"
            ),
            Some(file) => Some(peer_variant(variant, file)),
            None => None,
        };
        Ok(Plan {
            variant,
            base_image: &config.base.image,
            app_file,
            dep_file,
            app_original,
            dep_original,
            peer,
        })
    }

    /// What every build of the bench runs: `cargo xtask build <variant> --load` with the cache
    /// `cargo xtask build` uses by default (`none` outside CI: the engine's build cache) or the
    /// given one (`local` in a directory of the bench's own, so it neither uses nor rotates that
    /// of `cargo xtask build`), plain progress, and its build report written under `report_dir`.
    pub fn build_args(
        &self,
        report_dir: &Utf8Path,
        cache: Option<CacheMode>,
        cache_dir: Utf8PathBuf,
        builder: Option<String>,
        platform: Option<&str>,
    ) -> build::Options {
        build::Options {
            platform: platform.map(str::to_owned).into_iter().collect(),
            builder,
            cache,
            cache_dir: Some(cache_dir),
            progress: build::Progress::Plain,
            report_dir: Some(report_dir.to_owned()),
            ..build::Options::default()
        }
    }
}
