//! What a push sends, for a variant whose `push_compression` is zstd: the store keeps gzip
//! blobs, so BuildKit compresses the image's layers anew with the options `build --push` gives it
//! (`FROM image`, built into the store under a passing tag where this user can read the content
//! store, else exported as an OCI layout read as a stream), and the sizes of those layers are the
//! figures, each cached by the stored blob's digest. Layers already stored as zstd count as they
//! are.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;

use super::content::{image_documents, ContentStore};
use super::facts::{ImageFacts, Layer, Method};
use super::layout::{Descriptor, ManifestDoc, MAX_JSON_BLOB};
use super::measure::Source;
use crate::cleanup::Guard;
use crate::docker;
use crate::util::progress;

/// What the sizes were made with.
pub(crate) const COMPRESSOR: &str = "zstd (BuildKit's, as pushed)";
/// The buildx output options of a push with zstd layers (`cargo xtask build --push`).
const ZSTD_PUSH: &str = "compression=zstd,force-compression=true,oci-mediatypes=true";
/// The file name suffix of a cached size; another compressor gets another suffix.
const CACHE_SUFFIX: &str = "buildkit-zstd";

/// Where and how the zstd sizes are found.
pub(crate) struct PushOptions<'a> {
    pub(crate) cache_dir: &'a Utf8Path,
    /// False with `--no-cache`: compress again.
    pub(crate) read_cache: bool,
    /// `--source`: docker-save streams the export, as a user who cannot read the store must.
    pub(crate) source: Source,
    pub(crate) docker_root_dir: &'a str,
}

/// `facts` (of `image` for `platform`) with every layer's compressed size as a zstd push sends it.
pub(crate) fn as_zstd_push(
    facts: &ImageFacts,
    image: &str,
    platform: &str,
    options: &PushOptions,
) -> Result<ImageFacts> {
    let known = |l: &Layer| {
        let cached = || cached(options.cache_dir, l).filter(|_| options.read_cache);
        already_zstd(l).or_else(cached)
    };
    let sizes = match facts.layers.iter().map(known).collect::<Option<Vec<u64>>>() {
        Some(sizes) => sizes,
        None => {
            let sizes = recompressed_sizes(facts, image, platform, options)
                .with_context(|| format!("compressing the layers of {image} with zstd"))?;
            cache_sizes(options.cache_dir, &facts.layers, &sizes)?;
            sizes
        }
    };
    let mut out = facts.clone();
    for (layer, size) in out.layers.iter_mut().zip(sizes) {
        layer.compressed = size;
    }
    out.method = Method::PushZstd;
    out.compressor = Some(COMPRESSOR.into());
    Ok(out)
}

/// Each layer's size as BuildKit compresses it for a push, checked to be the measured layer.
fn recompressed_sizes(
    facts: &ImageFacts,
    image: &str,
    platform: &str,
    options: &PushOptions,
) -> Result<Vec<u64>> {
    progress!("sizes: BuildKit compresses the layers of {image} with zstd, as a push does");
    let store = match options.source {
        Source::DockerSave => None,
        Source::Auto => ContentStore::locate(options.docker_root_dir, &[&facts.id]).ok(),
        Source::ContentStore => Some(
            ContentStore::locate(options.docker_root_dir, &[&facts.id])
                .map_err(|why| anyhow::anyhow!("--source content-store: {why}"))?,
        ),
    };
    let exported = match store {
        Some(store) => stored_layers(&store, image, platform)?,
        None => streamed_layers(docker::export_recompressed(image, platform, ZSTD_PUSH)?)?,
    };
    matched_sizes(&facts.layers, &exported)
        .with_context(|| format!("{image} changed while it was measured: measure again"))
}

/// The layers of `image` stored anew under a passing tag, read from the content store.
fn stored_layers(store: &ContentStore, image: &str, platform: &str) -> Result<Vec<Exported>> {
    let name = format!("xtask-sizes-zstd:{}", crate::util::unique_suffix());
    let untag = name.clone();
    let _tag = Guard::new(move || {
        if let Err(err) = docker::untag_image(None, &untag) {
            crate::output::notice(format_args!("warning: {err:#}"));
        }
    });
    let stored = docker::store_recompressed(image, platform, ZSTD_PUSH, &name)?;
    let (manifest, config) = image_documents(store, &stored)?;
    layers_of(&manifest, &config)
}

/// A layer stored as zstd is pushed as it is.
fn already_zstd(layer: &Layer) -> Option<u64> {
    layer
        .media_type
        .contains("zstd")
        .then_some(layer.compressed)
}

fn cache_file(cache_dir: &Utf8Path, layer: &Layer) -> Utf8PathBuf {
    let name = layer.digest.replace(':', "-");
    cache_dir.join(format!("{name}.{CACHE_SUFFIX}"))
}

fn cached(cache_dir: &Utf8Path, layer: &Layer) -> Option<u64> {
    let text = std::fs::read_to_string(cache_file(cache_dir, layer)).ok()?;
    text.trim().parse().ok()
}

fn cache_sizes(cache_dir: &Utf8Path, layers: &[Layer], sizes: &[u64]) -> Result<()> {
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating {}", crate::util::shown(cache_dir)))?;
    for (layer, size) in layers.iter().zip(sizes) {
        let file = cache_file(cache_dir, layer);
        std::fs::write(&file, format!("{size}\n"))
            .with_context(|| format!("writing {}", crate::util::shown(&file)))?;
    }
    Ok(())
}

/// One layer as BuildKit compressed it: its diff ID and its blob's length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exported {
    diff_id: String,
    size: u64,
}

/// The layers of the one image of an OCI layout tar stream, read to the end (for the exit status).
fn streamed_layers(mut stream: docker::TarStream) -> Result<Vec<Exported>> {
    let json = json_blobs(&mut stream);
    // docker's own failure explains a broken stream better than the parser does.
    stream.finish()?;
    export_layers(&json?)
}

/// The layers of the one image `index.json` names, from the JSON blobs of an OCI layout.
fn export_layers(json: &BTreeMap<String, Vec<u8>>) -> Result<Vec<Exported>> {
    let doc = |name: &str| {
        json.get(name)
            .with_context(|| format!("the export has no {name}"))
    };
    let index: Index = serde_json::from_slice(doc("index.json")?).context("parsing index.json")?;
    let [manifest] = &index.manifests[..] else {
        bail!("the export holds {} images, not one", index.manifests.len());
    };
    let manifest: ManifestDoc =
        serde_json::from_slice(doc(&manifest.digest)?).context("parsing the exported manifest")?;
    layers_of(&manifest, doc(&manifest.config.digest)?)
}

/// `index.json` and every JSON blob small enough to be a manifest or config, by digest.
fn json_blobs(stream: impl Read) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut found = BTreeMap::new();
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().context("reading the export")? {
        let mut entry = entry.context("reading the export")?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = match path.trim_start_matches("./").strip_prefix("blobs/") {
            Some(blob) => blob.replacen('/', ":", 1),
            None => path.trim_start_matches("./").to_string(),
        };
        if entry.size() <= MAX_JSON_BLOB && (name == "index.json" || name.contains(':')) {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading `{path}` of the export"))?;
            if bytes.first() == Some(&b'{') {
                found.insert(name, bytes);
            }
        }
    }
    Ok(found)
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// The manifest's layers with their diff IDs from the image's config.
fn layers_of(manifest: &ManifestDoc, config: &[u8]) -> Result<Vec<Exported>> {
    let config: Config = serde_json::from_slice(config).context("parsing the image config")?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!("the manifest and the config disagree on the number of layers");
    }
    Ok(manifest
        .layers
        .iter()
        .zip(config.rootfs.diff_ids)
        .map(|(layer, diff_id)| Exported {
            diff_id,
            size: layer.size,
        })
        .collect())
}

/// The exported size of each layer, checked to be the same layer (diff ID) in the same place.
fn matched_sizes(layers: &[Layer], exported: &[Exported]) -> Result<Vec<u64>> {
    let same = layers.len() == exported.len()
        && layers
            .iter()
            .zip(exported)
            .all(|(l, e)| l.diff_id == e.diff_id);
    if !same {
        bail!("BuildKit exported other layers than those measured");
    }
    Ok(exported.iter().map(|e| e.size).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sizes::facts::UnpackedFrom;

    fn streamed_layers_of(tar: &[u8]) -> Result<Vec<Exported>> {
        export_layers(&json_blobs(tar)?)
    }

    fn tar_of(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o444);
            tar.append_data(&mut header, path, &bytes[..]).unwrap();
        }
        tar.into_inner().unwrap()
    }

    fn layer(diff_id: &str) -> Layer {
        Layer {
            digest: format!("sha256:{diff_id}gz"),
            diff_id: format!("sha256:{diff_id}"),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            compressed: 1,
            unpacked: 2,
            unpacked_from: UnpackedFrom::Decompressed,
            created_by: String::new(),
        }
    }

    #[test]
    fn the_exported_manifest_gives_each_layer_its_size() {
        let config = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:a","sha256:b"]}}"#;
        let manifest = br#"{"config":{"digest":"sha256:c0","size":60},"layers":[
            {"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"sha256:z1","size":300},
            {"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"sha256:z2","size":20}]}"#;
        let index = br#"{"manifests":[{"digest":"sha256:m0","size":300}]}"#;
        let stream = tar_of(&[
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("blobs/sha256/c0", config.to_vec()),
            ("blobs/sha256/m0", manifest.to_vec()),
            ("blobs/sha256/z1", vec![0x28; 300]),
            ("blobs/sha256/z2", vec![0x28; 20]),
            ("index.json", index.to_vec()),
        ]);
        let exported = streamed_layers_of(&stream).unwrap();
        assert_eq!(
            exported.iter().map(|e| e.size).collect::<Vec<_>>(),
            [300, 20]
        );
        let sizes = matched_sizes(&[layer("a"), layer("b")], &exported).unwrap();
        assert_eq!(sizes, [300, 20]);
        // Another image (a tag moved meanwhile) is refused, not measured.
        assert!(matched_sizes(&[layer("a"), layer("x")], &exported).is_err());
        assert!(matched_sizes(&[layer("a")], &exported).is_err());
    }

    #[test]
    fn an_export_without_exactly_one_image_is_refused() {
        let two =
            br#"{"manifests":[{"digest":"sha256:m0","size":1},{"digest":"sha256:m1","size":1}]}"#;
        let stream = tar_of(&[("index.json", two.to_vec())]);
        let err = streamed_layers_of(&stream).unwrap_err();
        assert!(err.to_string().contains("2 images"), "{err}");
        let none = tar_of(&[("oci-layout", b"{}".to_vec())]);
        let err = streamed_layers_of(&none).unwrap_err();
        assert!(err.to_string().contains("no index.json"), "{err}");
    }

    #[test]
    fn layers_stored_as_zstd_and_cached_sizes_need_no_export() {
        let dir = Utf8PathBuf::from_path_buf(std::env::temp_dir())
            .unwrap()
            .join(format!("xtask-push-{}", std::process::id()));
        let mut zstd = layer("a");
        zstd.media_type = "application/vnd.oci.image.layer.v1.tar+zstd".into();
        assert_eq!(already_zstd(&zstd), Some(1));
        assert_eq!(already_zstd(&layer("a")), None);
        let facts = ImageFacts {
            version: crate::sizes::facts::FACTS_VERSION,
            id: "sha256:i".into(),
            store: crate::sizes::facts::Store::Containerd,
            method: Method::Stored,
            compressor: None,
            layers: vec![zstd, layer("b")],
        };
        cache_sizes(&dir, &facts.layers[1..], &[77]).unwrap();
        // Every size known: no export is started (the image does not exist).
        let options = PushOptions {
            cache_dir: &dir,
            read_cache: true,
            source: Source::Auto,
            docker_root_dir: "/nonexistent",
        };
        let pushed = as_zstd_push(&facts, "xtask-no-such-image", "linux/amd64", &options).unwrap();
        let sizes: Vec<u64> = pushed.layers.iter().map(|l| l.compressed).collect();
        assert_eq!(sizes, [1, 77]);
        assert_eq!(pushed.method, Method::PushZstd);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
