//! The plan of `bench rebuild`: the four builds in order, the scratch copy of the build context
//! they build from, the files two of them touch (checked before any build starts), and the
//! build options they share.

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::context::Scratch;
use crate::touch::{bench_variant, File, DEFAULT_APP_FILE, DEFAULT_DEP_FILE};
use xtask::build_cmd::{self as build, CacheMode};
use xtask::config::{Config, Variant};
use xtask::ctx::Ctx;

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

/// The variant, the two files to touch and what the builds build.
pub struct Plan<'a> {
    /// The user's variant, which the report names.
    pub variant: &'a Variant,
    /// The variant as the bench builds it: from the scratch copy, tagged in its own repository.
    pub ours: Variant,
    /// The base image, whose ID must not change during the bench.
    pub base_image: &'a str,
    pub app: File,
    pub dep: File,
    /// The peer Dockerfile built as a variant of its own after each of ours, with the same
    /// change (None: no peer).
    pub peer: Option<Variant>,
    /// The copy the builds read; removed with the plan.
    _scratch: Scratch,
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
    /// project's own), copies the build context, and refuses files that cannot affect the
    /// build: all before any build starts.
    pub fn new(
        ctx: &Ctx,
        config: &'a Config,
        variant: &str,
        app_file: Option<&Utf8PathBuf>,
        dep_file: Option<&Utf8PathBuf>,
        peer: Option<Utf8PathBuf>,
    ) -> Result<Plan<'a>> {
        let variant = config.variant(variant)?;
        if let Some(file) = peer.as_ref().filter(|f| !f.is_file()) {
            bail!(
                "the peer Dockerfile {} does not exist: pass another with --peer, or --no-peer",
                xtask::util::shown(file)
            );
        }
        let scratch = Scratch::copy(ctx, &variant.context)?;
        let ours = bench_variant(variant, &scratch);
        Ok(Plan {
            variant,
            base_image: &config.base.image,
            app: File::resolve(ctx, &scratch, app_file, DEFAULT_APP_FILE)?,
            dep: File::resolve(ctx, &scratch, dep_file, DEFAULT_DEP_FILE)?,
            peer: peer.map(|file| peer_variant(&ours, file)),
            ours,
            _scratch: scratch,
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
