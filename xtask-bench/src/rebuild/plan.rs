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
use xtask::util;

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
    /// The peer Dockerfiles, each built as a variant of its own after each of ours, in this
    /// order, with the same change (empty: no peer).
    pub peers: Vec<Peer>,
    /// The copy the builds read; removed with the plan.
    _scratch: Scratch,
}

/// A peer Dockerfile as the bench builds it.
pub struct Peer {
    /// What the report calls it: `peer`, or the `<name>` of `<variant>.<name>.Dockerfile`.
    pub name: String,
    /// The Dockerfile as the user reads its path.
    pub file: String,
    pub variant: Variant,
}

/// Where a variant's peers live: bench data, `xtask/benches/peer/`.
fn peer_dir(root: &Utf8Path) -> Utf8PathBuf {
    root.join("xtask").join("benches").join("peer")
}

/// A variant's committed peers: `<variant>.Dockerfile` (the repository's own) first, then every
/// `<variant>.<name>.Dockerfile` by name.
pub fn default_peers(root: &Utf8Path, variant: &str) -> Vec<Utf8PathBuf> {
    let names: Vec<String> = std::fs::read_dir(peer_dir(root))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    peer_files_of(variant, names)
        .into_iter()
        .map(|name| peer_dir(root).join(name))
        .collect()
}

/// The file names among `names` that are `variant`'s peers, in the order they run.
fn peer_files_of(variant: &str, mut names: Vec<String>) -> Vec<String> {
    names.retain(|n| peer_name_of(variant, n).is_some());
    names.sort_by_key(|n| (peer_name_of(variant, n) != Some("peer"), n.clone()));
    names
}

/// `peer` for `<variant>.Dockerfile`, `<name>` for `<variant>.<name>.Dockerfile`, else None.
fn peer_name_of<'n>(variant: &str, file_name: &'n str) -> Option<&'n str> {
    let middle = file_name
        .strip_prefix(variant)?
        .strip_prefix('.')?
        .strip_suffix("Dockerfile")?;
    match middle.strip_suffix('.') {
        _ if middle.is_empty() => Some("peer"),
        Some(name) if !name.is_empty() && !name.contains('.') => Some(name),
        _ => None,
    }
}

/// What the report calls each of `files`: `peer` when there is one; else by the name its file
/// gives (`<variant>.Dockerfile` is `peer`, `<variant>.<name>.Dockerfile` is `<name>`), else
/// by the path as given (also when two names would be the same).
pub fn peer_names(variant: &str, files: &[Utf8PathBuf]) -> Vec<String> {
    if files.len() == 1 {
        return vec!["peer".into()];
    }
    let names: Vec<String> = files
        .iter()
        .map(
            |f| match f.file_name().and_then(|n| peer_name_of(variant, n)) {
                Some(name) => name.to_string(),
                None => f.to_string(),
            },
        )
        .collect();
    let unique = names
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        == names.len();
    match unique {
        true => names,
        false => files.iter().map(|f| f.to_string()).collect(),
    }
}

/// How the report names a peer in a column or a check: `peer`, or `<name> peer`.
pub fn peer_title(name: &str) -> String {
    match name {
        "peer" => "peer".into(),
        _ => format!("{name} peer"),
    }
}

/// The peer as a variant: our context and platforms, its own Dockerfile and image, no target
/// and no build arguments but the offline base the build adds. `index` tells peers apart.
pub fn peer_variant(ours: &Variant, dockerfile: Utf8PathBuf, index: usize) -> Variant {
    let mut peer = ours.clone();
    peer.name = match index {
        0 => format!("{}-peer", ours.name),
        n => format!("{}-peer-{}", ours.name, n + 1),
    };
    peer.description = format!("a peer of {} (bench data)", ours.name);
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
        peers: Vec<Utf8PathBuf>,
    ) -> Result<Plan<'a>> {
        let variant = config.variant(variant)?;
        if let Some(file) = peers.iter().find(|f| !f.is_file()) {
            bail!(
                "the peer Dockerfile {} does not exist: pass another with --peer, or --no-peer",
                util::shown(file)
            );
        }
        let scratch = Scratch::copy(ctx, &variant.context)?;
        let ours = bench_variant(variant, &scratch);
        let names = peer_names(&variant.name, &peers);
        let peers = (peers.into_iter().zip(names).enumerate())
            .map(|(index, (file, name))| Peer {
                name,
                file: util::shown(&file),
                variant: peer_variant(&ours, file, index),
            })
            .collect();
        Ok(Plan {
            variant,
            base_image: &config.base.image,
            app: File::resolve(ctx, &scratch, app_file, DEFAULT_APP_FILE)?,
            dep: File::resolve(ctx, &scratch, dep_file, DEFAULT_DEP_FILE)?,
            peers,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_variants_committed_peers_are_its_own_first_then_by_name() {
        let dir = strings(&[
            "cpu-minimal.uv-guide.Dockerfile",
            "cpu-minimal-distroless.Dockerfile",
            "cpu-minimal.Dockerfile",
            "cpu-minimal.a.Dockerfile",
            "cpu-minimal.Dockerfile.orig",
            "cpu-minimal..Dockerfile",
            "cpu-minimal.a.b.Dockerfile",
            "cuda.Dockerfile",
            "README.md",
        ]);
        assert_eq!(
            peer_files_of("cpu-minimal", dir.clone()),
            [
                "cpu-minimal.Dockerfile",
                "cpu-minimal.a.Dockerfile",
                "cpu-minimal.uv-guide.Dockerfile"
            ]
        );
        assert_eq!(
            peer_files_of("cpu-minimal-distroless", dir.clone()),
            ["cpu-minimal-distroless.Dockerfile"]
        );
        assert!(peer_files_of("cpu", dir).is_empty());
    }

    #[test]
    fn peers_are_named_by_their_files_and_one_peer_is_the_peer() {
        let files = |paths: &[&str]| -> Vec<Utf8PathBuf> {
            paths.iter().map(|p| Utf8PathBuf::from(*p)).collect()
        };
        let committed = files(&[
            "xtask/benches/peer/cpu-minimal.Dockerfile",
            "xtask/benches/peer/cpu-minimal.uv-guide.Dockerfile",
        ]);
        assert_eq!(peer_names("cpu-minimal", &committed), ["peer", "uv-guide"]);
        assert_eq!(peer_names("cpu-minimal", &committed[1..]), ["peer"]);
        assert_eq!(
            peer_names(
                "cpu-minimal",
                &files(&["a/Dockerfile", "b/cpu-minimal.x.Dockerfile"])
            ),
            ["a/Dockerfile", "x"]
        );
        // Two files that would have the same name are told apart by their paths.
        assert_eq!(
            peer_names("fx", &files(&["a/fx.Dockerfile", "b/fx.Dockerfile"])),
            ["a/fx.Dockerfile", "b/fx.Dockerfile"]
        );
        assert!(peer_names("fx", &[]).is_empty());
        assert_eq!(peer_title("peer"), "peer");
        assert_eq!(peer_title("uv-guide"), "uv-guide peer");
    }
}
