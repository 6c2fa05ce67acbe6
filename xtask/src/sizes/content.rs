//! The fast path of `sizes` on the containerd image store: when this user can read the engine's
//! content store (root on the engine's machine), manifests and configs come from their blob files
//! and a large gzip layer's unpacked length from its gzip trailer, told apart from its 4 GiB
//! wrap-arounds by the disk usage the engine reports for the layer. Nothing goes through
//! `docker save`; only small or doubtful layers are decompressed, from their files.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::cell::OnceCell;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

use super::measure::{
    self, BlobFacts, Cache, ConfigDoc, Descriptor, Encoding, HistoryDoc, IndexDoc, Layout,
    ManifestDoc, Options, Stats, UnpackedFrom, Wanted, FACTS_VERSION, MAX_JSON_BLOB,
};
use crate::docker;

/// containerd's content plugin directory under its root.
const CONTENT_DIR: &str = "io.containerd.content.v1.content";
/// Gzip layers smaller than this are decompressed (milliseconds) rather than sized from their
/// trailer.
const TRAILER_MIN: u64 = 4 << 20;
/// The gzip trailer's length field counts modulo 2^32.
const WRAP: u64 = 1 << 32;
/// Set by stargz/estargz layers, which are many gzip members: the trailer covers only the last.
const STARGZ_TOC: &str = "containerd.io/snapshot/stargz/toc.digest";

/// A content store directory (`…/io.containerd.content.v1.content`): blobs by digest.
pub struct ContentStore {
    dir: Utf8PathBuf,
}

impl ContentStore {
    /// The content stores this engine may use, in the order tried: the containerd that dockerd
    /// manages under its data directory, then the system containerd (its configured root, then
    /// its default root).
    pub fn candidates(docker_root_dir: &str) -> Vec<Utf8PathBuf> {
        let mut roots: Vec<Utf8PathBuf> = Vec::new();
        if !docker_root_dir.is_empty() {
            roots.push(
                Utf8Path::new(docker_root_dir)
                    .join("containerd")
                    .join("daemon"),
            );
        }
        if let Some(root) = configured_root(Utf8Path::new("/etc/containerd/config.toml")) {
            roots.push(root);
        }
        roots.push("/var/lib/containerd".into());
        let mut dirs: Vec<Utf8PathBuf> = Vec::new();
        for root in roots {
            let dir = root.join(CONTENT_DIR);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }

    /// The first candidate holding every one of `ids` (manifest or index digests) readable by
    /// this user. Blobs are addressed by digest, so a file found under the right name is that
    /// content, whichever containerd wrote it.
    pub fn locate(docker_root_dir: &str, ids: &[&str]) -> std::result::Result<Self, String> {
        let dirs = Self::candidates(docker_root_dir);
        for dir in &dirs {
            let store = ContentStore { dir: dir.clone() };
            if ids
                .iter()
                .all(|id| store.path(id).is_some_and(|p| File::open(p).is_ok()))
            {
                return Ok(store);
            }
        }
        let tried: Vec<String> = dirs.iter().map(|d| d.to_string()).collect();
        Err(format!(
            "containerd's content store is not readable here (tried {})",
            tried.join(", ")
        ))
    }

    pub fn dir(&self) -> &Utf8Path {
        &self.dir
    }

    /// `<dir>/blobs/<algo>/<hex>`; None for anything that is not `algo:hex`.
    fn path(&self, digest: &str) -> Option<Utf8PathBuf> {
        measure::digest_file_name(digest)?;
        let (algo, hex) = digest.split_once(':')?;
        Some(self.dir.join("blobs").join(algo).join(hex))
    }

    fn open(&self, digest: &str) -> Result<(File, Utf8PathBuf)> {
        let path = self
            .path(digest)
            .with_context(|| format!("`{digest}` is not a digest"))?;
        let file = File::open(&path).with_context(|| format!("opening blob {digest} ({path})"))?;
        Ok((file, path))
    }

    /// Reads a JSON document (manifest, index or config) into the layout.
    fn load_json(&self, digest: &str, layout: &mut Layout) -> Result<()> {
        if layout.json.contains_key(digest) {
            return Ok(());
        }
        let (file, path) = self.open(digest)?;
        let mut bytes = Vec::new();
        file.take(MAX_JSON_BLOB + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {path}"))?;
        if bytes.len() as u64 > MAX_JSON_BLOB || !measure::looks_like_json(&bytes) {
            bail!("blob {digest} ({path}) is not a JSON manifest, index or config");
        }
        layout.json.insert(digest.to_string(), bytes);
        Ok(())
    }

    /// Loads an image ID's documents: an index and those of its manifests that are present (an
    /// index lists platforms that were never pulled), a manifest and its config.
    fn load_tree(&self, digest: &str, layout: &mut Layout, depth: usize) -> Result<()> {
        if depth > 4 {
            bail!("image indexes nest too deeply at {digest}");
        }
        self.load_json(digest, layout)?;
        let value: serde_json::Value =
            layout.doc(digest).context("a loaded document vanished")??;
        if value.get("manifests").is_some() {
            let index: IndexDoc =
                serde_json::from_value(value).with_context(|| format!("parsing index {digest}"))?;
            for child in &index.manifests {
                let present = self.path(&child.digest).is_some_and(|p| p.is_file());
                if present && child.size <= MAX_JSON_BLOB {
                    self.load_tree(&child.digest, layout, depth + 1)?;
                }
            }
        } else if value.get("layers").is_some() {
            let manifest: ManifestDoc = serde_json::from_value(value)
                .with_context(|| format!("parsing manifest {digest}"))?;
            self.load_json(&manifest.config.digest, layout)?;
        }
        Ok(())
    }
}

/// `root = "…"` from containerd's config file, when it sets one.
fn configured_root(config: &Utf8Path) -> Option<Utf8PathBuf> {
    let text = std::fs::read_to_string(config).ok()?;
    let table: toml::Table = text.parse().ok()?;
    table.get("root")?.as_str().map(Utf8PathBuf::from)
}

/// The manifests, configs and layer facts of the `todo` images, from the content store.
pub fn read_layout(
    store: &ContentStore,
    todo: &[&Wanted],
    cache: &Cache,
    options: &Options,
    stats: &mut Stats,
) -> Result<Layout> {
    let mut layout = Layout::default();
    for w in todo {
        let id = &w.inspect.id;
        store
            .load_tree(id, &mut layout, 0)
            .with_context(|| format!("reading the manifest of {} ({id})", w.reference))?;
        let manifest = layout.manifest_for(w.inspect)?;
        let config: ConfigDoc = layout
            .doc(&manifest.config.digest)
            .with_context(|| format!("config {} is missing", manifest.config.digest))??;
        // The engine's disk usage per layer, asked for once per image and only when a layer
        // is sized from its trailer. Without it the layers are decompressed: slower, as exact.
        let usage: OnceCell<Option<Vec<u64>>> = OnceCell::new();
        let usage_of = |i: usize| -> Option<u64> {
            usage
                .get_or_init(|| {
                    let rows = docker::history_usage(options.sh, id)
                        .map_err(|e| {
                            crate::util::progress!(
                                "{e:#}; decompressing the layers of {} instead",
                                w.reference
                            )
                        })
                        .ok()?;
                    layer_usage(&config.history, &rows, manifest.layers.len())
                })
                .as_ref()
                .map(|u| u[i])
        };
        for (i, desc) in manifest.layers.iter().enumerate() {
            if layout.blobs.contains_key(&desc.digest) {
                continue;
            }
            if let Some(cached) = cache.blob(&desc.digest).filter(|b| b.size == desc.size) {
                layout.blobs.insert(desc.digest.clone(), cached);
                continue;
            }
            let facts = measure_layer(store, desc, options.decompress, &|| usage_of(i), stats)
                .with_context(|| format!("measuring layer {} of {}", desc.digest, w.reference))?;
            layout.new_blobs.insert(desc.digest.clone(), facts.clone());
            layout.blobs.insert(desc.digest.clone(), facts);
        }
    }
    Ok(layout)
}

/// Facts of one layer blob from its file: the trailer's length when it can be trusted, else
/// the gunzipped length.
fn measure_layer(
    store: &ContentStore,
    desc: &Descriptor,
    decompress: bool,
    usage: &dyn Fn() -> Option<u64>,
    stats: &mut Stats,
) -> Result<BlobFacts> {
    let (mut file, path) = store.open(&desc.digest)?;
    let size = file
        .metadata()
        .with_context(|| format!("reading the size of {path}"))?
        .len();
    if size != desc.size {
        bail!("{path} is {size} bytes but the manifest says {}", desc.size);
    }
    let mut head = [0u8; 2];
    let n = measure::read_up_to(&mut file, &mut head).with_context(|| format!("reading {path}"))?;
    let gzip = n == 2 && head == [0x1f, 0x8b];
    if gzip && !decompress && size >= TRAILER_MIN && !desc.annotations.contains_key(STARGZ_TOC) {
        let mut trailer = [0u8; 4];
        file.seek(SeekFrom::End(-4))
            .and_then(|_| file.read_exact(&mut trailer))
            .with_context(|| format!("reading the gzip trailer of {path}"))?;
        let isize = u32::from_le_bytes(trailer);
        if let Some(unpacked) = usage().and_then(|u| unpacked_from_trailer(isize, size, u)) {
            stats.by_trailer += 1;
            return Ok(BlobFacts {
                version: FACTS_VERSION,
                size,
                encoding: Encoding::Gzip,
                unpacked: Some(unpacked),
                unpacked_from: UnpackedFrom::GzipTrailer,
                gzip: None,
                compressor: None,
            });
        }
    }
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("rewinding {path}"))?;
    let (facts, _, processed) =
        measure::measure_blob(size, &mut BufReader::with_capacity(1 << 20, file), false)
            .with_context(|| format!("reading {path}"))?;
    if facts.unpacked_from == UnpackedFrom::Decompressed {
        stats.decompressed += 1;
        stats.processed += processed;
    }
    Ok(facts)
}

/// The disk usage of each of `layers` layers: `docker history` has one row per config history
/// entry (oldest first here), and the entries not marked `empty_layer` belong to the layers in
/// order. None when the two do not line up.
pub fn layer_usage(history: &[HistoryDoc], rows: &[u64], layers: usize) -> Option<Vec<u64>> {
    if history.len() != rows.len() {
        return None;
    }
    let usage: Vec<u64> = history
        .iter()
        .zip(rows)
        .filter(|(h, _)| !h.empty_layer)
        .map(|(_, &size)| size)
        .collect();
    (usage.len() == layers).then_some(usage)
}

/// A gzip layer's unpacked length from its trailer's length field `isize` (the length modulo
/// 2^32), the blob's length, and the layer's disk usage as the engine reports it.
///
/// Of the candidates `isize + k·2^32`, the one nearest the disk usage is taken when it lies within
/// a quarter of the usage plus 16 MiB, and never more than 1 GiB, from it; the next candidate is
/// then at least 3 GiB away. A tar differs from the files' disk usage by its 512-byte headers
/// and padding against file-system blocks, which is far less. Anything else gives None, and the
/// caller decompresses: a layer whose usage is unknown or far off (sparse files, many empty files),
/// or a blob of several gzip members (whose trailer counts only the last).
pub fn unpacked_from_trailer(isize: u32, compressed: u64, usage: u64) -> Option<u64> {
    let base = u64::from(isize);
    let k = if usage > base {
        (usage - base + WRAP / 2) / WRAP
    } else {
        0
    };
    let unpacked = base + k * WRAP;
    let tolerance = (usage / 4 + (16 << 20)).min(1 << 30);
    if unpacked.abs_diff(usage) > tolerance {
        return None;
    }
    // Deflate adds at most 5 bytes per 64 KiB stored block (plus gzip's 18 header and trailer
    // bytes) and compresses at most 1032:1.
    let expanded_max = unpacked + unpacked / 8192 + 1024;
    let ratio_max = compressed.saturating_mul(1032) + 1024;
    (compressed <= expanded_max && unpacked <= ratio_max).then_some(unpacked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_lengths_below_4_gib_are_taken_as_they_are() {
        // The offline Debian base layer, as measured here: tar 83,277,312 bytes, usage 90,357,760.
        assert_eq!(
            unpacked_from_trailer(83_277_312, 32_363_305, 90_357_760),
            Some(83_277_312)
        );
    }

    #[test]
    fn trailer_lengths_above_4_gib_are_unwrapped_by_the_disk_usage() {
        // The cuda image's venv layer, as measured here by decompressing it: 4,404,654,080
        // bytes, whose trailer says 109,686,784 (= 4,404,654,080 − 2^32); usage 4,426,956,800.
        assert_eq!(
            unpacked_from_trailer(109_686_784, 2_779_927_323, 4_426_956_800),
            Some(4_404_654_080)
        );
        // Two wraps.
        let truth = 2 * WRAP + 5_000_000;
        assert_eq!(
            unpacked_from_trailer(5_000_000, 3_000_000_000, truth + 40_000_000),
            Some(truth)
        );
    }

    #[test]
    fn doubtful_trailers_are_refused() {
        // Usage unknown (0) or far from every candidate.
        assert_eq!(unpacked_from_trailer(83_277_312, 32_363_305, 0), None);
        assert_eq!(
            unpacked_from_trailer(83_277_312, 32_363_305, 900_000_000),
            None
        );
        // Midway between two candidates: the nearest is over 1 GiB away.
        assert_eq!(
            unpacked_from_trailer(0, 3_000_000_000, WRAP + WRAP / 2),
            None
        );
        // A trailer that counts less than the compressed bytes (the last of several members).
        assert_eq!(
            unpacked_from_trailer(1_000_000, 50_000_000, 1_100_000),
            None
        );
        // More than deflate's 1032:1 from a tiny blob.
        assert_eq!(unpacked_from_trailer(80_000_000, 5_000, 80_000_000), None);
    }

    fn h(empty_layer: bool) -> HistoryDoc {
        HistoryDoc {
            created_by: String::new(),
            empty_layer,
        }
    }

    #[test]
    fn history_rows_map_to_layers() {
        let history = [h(false), h(true), h(false), h(true)];
        assert_eq!(layer_usage(&history, &[90, 0, 7, 0], 2), Some(vec![90, 7]));
        // Rows and entries do not line up, or the layers are fewer than the entries say.
        assert_eq!(layer_usage(&history, &[90, 7], 2), None);
        assert_eq!(layer_usage(&history, &[90, 0, 7, 0], 3), None);
        assert_eq!(layer_usage(&[], &[], 1), None);
    }

    #[test]
    fn candidates_start_with_the_managed_containerd() {
        let dirs = ContentStore::candidates("/srv/docker");
        assert_eq!(
            dirs[0],
            "/srv/docker/containerd/daemon/io.containerd.content.v1.content"
        );
        assert_eq!(
            dirs.last().unwrap(),
            "/var/lib/containerd/io.containerd.content.v1.content"
        );
    }

    #[test]
    fn configured_roots_are_read_from_the_config_file() {
        let dir = std::env::temp_dir().join(format!("xtask-content-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = Utf8PathBuf::from_path_buf(dir.join("config.toml")).unwrap();
        std::fs::write(&file, "version = 2\nroot = \"/data/containerd\"\n").unwrap();
        assert_eq!(
            configured_root(&file).as_deref(),
            Some(Utf8Path::new("/data/containerd"))
        );
        std::fs::write(&file, "version = 2\n").unwrap();
        assert_eq!(configured_root(&file), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
