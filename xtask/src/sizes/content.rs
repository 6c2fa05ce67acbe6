//! The fast path of `sizes` on the containerd image store: when this user can read the engine's
//! content store (root on the engine's machine), manifests and configs come from their blob files
//! and a large gzip layer's unpacked length from its gzip trailer, told apart from its 4 GiB
//! wrap-arounds by the disk usage the engine reports for the layer. Nothing goes through
//! `docker save`; only small or doubtful layers are decompressed, from their files.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::cell::OnceCell;
use std::fs::File;
use std::io::Read;

use super::blob;
use super::cache::{self, Cache};
use super::facts::{Stats, Wanted};
use super::layout::{
    layer_usage, looks_like_json, ConfigDoc, IndexDoc, Layout, ManifestDoc, MAX_JSON_BLOB,
};
use crate::docker;

/// containerd's content plugin directory under its root.
const CONTENT_DIR: &str = "io.containerd.content.v1.content";

/// A content store directory (`…/io.containerd.content.v1.content`): blobs by digest.
pub struct ContentStore {
    dir: Utf8PathBuf,
}

impl ContentStore {
    /// The content stores this engine may use, in the order tried: the containerd that dockerd
    /// manages under its data directory, then the system containerd (its configured root, then
    /// its default root).
    pub(crate) fn candidates(docker_root_dir: &str) -> Vec<Utf8PathBuf> {
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
        let tried: Vec<String> = dirs.iter().map(crate::util::shown).collect();
        Err(format!(
            "containerd's content store is not readable here (tried {})",
            tried.join(", ")
        ))
    }

    pub(crate) fn dir(&self) -> &Utf8Path {
        &self.dir
    }

    /// `<dir>/blobs/<algo>/<hex>`; None for anything that is not `algo:hex`.
    fn path(&self, digest: &str) -> Option<Utf8PathBuf> {
        cache::digest_file_name(digest)?;
        let (algo, hex) = digest.split_once(':')?;
        Some(self.dir.join("blobs").join(algo).join(hex))
    }

    pub fn open(&self, digest: &str) -> Result<(File, Utf8PathBuf)> {
        let path = self
            .path(digest)
            .with_context(|| format!("`{digest}` is not a digest"))?;
        let file = File::open(&path)
            .with_context(|| format!("opening blob {digest} ({})", crate::util::shown(&path)))?;
        Ok((file, path))
    }

    /// Reads a JSON document (manifest, index or config) into the layout.
    fn load_json(&self, digest: &str, layout: &mut Layout) -> Result<()> {
        if layout.json.contains_key(digest) {
            return Ok(());
        }
        let (file, path) = self.open(digest)?;
        let path = crate::util::shown(path);
        let mut bytes = Vec::new();
        file.take(MAX_JSON_BLOB + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {path}"))?;
        if bytes.len() as u64 > MAX_JSON_BLOB || !looks_like_json(&bytes) {
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

/// The manifest of a local image (an index resolved to the image's platform) and its config as
/// stored, byte for byte, from the content store (`bench pull` rewrites images from them).
pub fn image_documents(
    store: &ContentStore,
    inspect: &docker::ImageInspect,
) -> Result<(ManifestDoc, Vec<u8>)> {
    let mut layout = Layout::default();
    store
        .load_tree(&inspect.id, &mut layout, 0)
        .with_context(|| format!("reading the manifest of {}", inspect.id))?;
    let manifest = layout.manifest_for(inspect)?;
    let config = layout
        .json
        .remove(&manifest.config.digest)
        .with_context(|| format!("config {} is missing", manifest.config.digest))?;
    Ok((manifest, config))
}

/// `root = "…"` from containerd's config file, when it sets one.
fn configured_root(config: &Utf8Path) -> Option<Utf8PathBuf> {
    let text = std::fs::read_to_string(config).ok()?;
    let table: toml::Table = text.parse().ok()?;
    table.get("root")?.as_str().map(Utf8PathBuf::from)
}

/// The manifests, configs and layer facts of the `todo` images, from the content store.
pub(crate) fn read_layout(
    store: &ContentStore,
    todo: &[&Wanted],
    cache: &Cache,
    decompress: bool,
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
                    let rows = match w.platform {
                        Some(p) => docker::history_usage(w.reference, Some(p)),
                        None => docker::history_usage(id, None),
                    }
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
            let facts = store
                .open(&desc.digest)
                .and_then(|(file, path)| {
                    blob::measure_file(file, &path, desc, decompress, &|| usage_of(i), stats)
                })
                .with_context(|| format!("measuring layer {} of {}", desc.digest, w.reference))?;
            layout.new_blobs.insert(desc.digest.clone(), facts.clone());
            layout.blobs.insert(desc.digest.clone(), facts);
        }
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

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
