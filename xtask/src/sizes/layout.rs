//! The OCI layout documents (index, manifest, config) of the images measured, read from
//! `docker save` or the content store, and how an image ID resolves through them to its layers:
//! the step that turns blob facts into image facts.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::facts::{BlobFacts, Encoding, ImageFacts, Layer, Store, COMPRESSOR, FACTS_VERSION};
use crate::docker::ImageInspect;

/// JSON blobs (manifests, configs, indexes) are kept in memory up to this size.
pub(super) const MAX_JSON_BLOB: u64 = 16 << 20;

/// What the saved layout (or the content store) held, minus the layer bytes.
#[derive(Default)]
pub(super) struct Layout {
    pub(crate) blobs: BTreeMap<String, BlobFacts>,
    /// Blobs measured in this run (not from the cache), to cache afterwards.
    pub(crate) new_blobs: BTreeMap<String, BlobFacts>,
    pub(crate) json: BTreeMap<String, Vec<u8>>,
}

pub(super) fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{') && serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
}

#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ManifestDoc {
    pub(crate) config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
pub(super) struct IndexDoc {
    pub(crate) manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ConfigDoc {
    rootfs: RootFsDoc,
    #[serde(default)]
    pub(crate) history: Vec<HistoryDoc>,
}

#[derive(Debug, Deserialize)]
struct RootFsDoc {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// One entry of an image config's `history`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryDoc {
    #[serde(default)]
    pub(crate) created_by: String,
    #[serde(default)]
    pub(crate) empty_layer: bool,
}

impl Layout {
    pub(crate) fn doc<T: for<'de> Deserialize<'de>>(&self, digest: &str) -> Option<Result<T>> {
        self.json.get(digest).map(|bytes| {
            serde_json::from_slice(bytes).with_context(|| format!("parsing blob {digest}"))
        })
    }

    /// The image manifest of an image ID: on the containerd store the ID is the digest of the
    /// manifest (or of an index, resolved to the image's platform); on the classic store it is
    /// the digest of the config.
    pub(crate) fn manifest_for(&self, inspect: &ImageInspect) -> Result<ManifestDoc> {
        let id = &inspect.id;
        let is_manifest_or_index = self
            .doc::<serde_json::Value>(id)
            .and_then(Result::ok)
            .is_some_and(|v| v.get("layers").is_some() || v.get("manifests").is_some());
        if is_manifest_or_index {
            return self.resolve(id, inspect, 0);
        }
        for digest in self.json.keys() {
            if let Some(Ok(m)) = self.doc::<ManifestDoc>(digest) {
                if &m.config.digest == id {
                    return Ok(m);
                }
            }
        }
        bail!("the saved layout has no manifest for image {id}")
    }

    fn resolve(&self, digest: &str, inspect: &ImageInspect, depth: usize) -> Result<ManifestDoc> {
        if depth > 4 {
            bail!("image indexes nest too deeply at {digest}");
        }
        let value: serde_json::Value = self
            .doc(digest)
            .with_context(|| format!("blob {digest} is missing from the saved layout"))??;
        if value.get("layers").is_some() {
            return serde_json::from_value(value)
                .with_context(|| format!("parsing manifest {digest}"));
        }
        let index: IndexDoc =
            serde_json::from_value(value).with_context(|| format!("parsing index {digest}"))?;
        let candidates: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|d| self.json.contains_key(&d.digest))
            .filter(|d| {
                d.annotations
                    .get("vnd.docker.reference.type")
                    .map(String::as_str)
                    != Some("attestation-manifest")
            })
            .collect();
        let matching = candidates.iter().find(|d| match &d.platform {
            Some(p) => {
                p.os == inspect.os
                    && p.architecture == inspect.architecture
                    && (inspect.variant.is_none() || p.variant == inspect.variant)
            }
            None => false,
        });
        let chosen = match (matching, candidates.as_slice()) {
            (Some(d), _) => *d,
            (None, [only]) => *only,
            _ => bail!(
                "index {digest} has no saved manifest for {}/{}",
                inspect.os,
                inspect.architecture
            ),
        };
        self.resolve(&chosen.digest, inspect, depth + 1)
    }

    pub(super) fn image_facts(&self, store: Store, inspect: &ImageInspect) -> Result<ImageFacts> {
        let manifest = self.manifest_for(inspect)?;
        let config: ConfigDoc = self
            .doc(&manifest.config.digest)
            .with_context(|| format!("config {} is missing", manifest.config.digest))??;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            bail!(
                "the manifest lists {} layers but the config {} diff IDs",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            );
        }
        let created_by = layer_history(&config.history, manifest.layers.len());
        let mut layers = Vec::new();
        for ((desc, diff_id), created_by) in manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .zip(created_by)
        {
            let blob = self.blobs.get(&desc.digest).with_context(|| {
                format!(
                    "layer blob {} is missing from the saved layout",
                    desc.digest
                )
            })?;
            if blob.size != desc.size {
                bail!(
                    "layer blob {} is {} bytes but its manifest says {}",
                    desc.digest,
                    blob.size,
                    desc.size
                );
            }
            let unpacked = blob.unpacked.with_context(|| {
                format!(
                    "layer {} is zstd-compressed ({}): its unpacked size needs a zstd decoder, \
                     which this tool does not have; build with gzip layers (the default)",
                    desc.digest, desc.media_type
                )
            })?;
            let compressed = match store {
                Store::Containerd => blob.size,
                Store::Classic => match (blob.encoding, blob.gzip) {
                    (Encoding::Plain, Some(gzip)) => gzip,
                    // A classic store never saves compressed layers; should one appear, its
                    // stored length is what a push would send.
                    (Encoding::Gzip | Encoding::Zstd, _) => blob.size,
                    (Encoding::Plain, None) => bail!(
                        "layer blob {} was not compressed (it is not among the image's diff IDs)",
                        desc.digest
                    ),
                },
            };
            layers.push(Layer {
                digest: desc.digest.clone(),
                diff_id: diff_id.clone(),
                media_type: desc.media_type.clone(),
                compressed,
                unpacked,
                unpacked_from: blob.unpacked_from,
                created_by,
            });
        }
        Ok(ImageFacts {
            version: FACTS_VERSION,
            id: inspect.id.clone(),
            store,
            method: store.method(),
            compressor: (store == Store::Classic).then(|| COMPRESSOR.to_string()),
            layers,
        })
    }
}

/// The instruction that made each of `layers` layers: history entries that are not marked
/// `empty_layer` belong, in order, to the layers. Layers without such an entry (images imported
/// without history) get an empty string; surplus entries are ignored.
pub fn layer_history(history: &[HistoryDoc], layers: usize) -> Vec<String> {
    let mut out: Vec<String> = history
        .iter()
        .filter(|h| !h.empty_layer)
        .take(layers)
        .map(|h| h.created_by.clone())
        .collect();
    out.resize(layers, String::new());
    out
}

/// The disk usage of each of `layers` layers: `docker history` has one row per config history
/// entry (oldest first here), and the entries not marked `empty_layer` belong to the layers in
/// order. None when the two do not line up.
pub(crate) fn layer_usage(history: &[HistoryDoc], rows: &[u64], layers: usize) -> Option<Vec<u64>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sizes::facts::{Method, UnpackedFrom};

    fn h(created_by: &str, empty_layer: bool) -> HistoryDoc {
        HistoryDoc {
            created_by: created_by.into(),
            empty_layer,
        }
    }

    #[test]
    fn history_skips_empty_layer_entries() {
        let history = [
            h("ADD rootfs.tar / # buildkit", false),
            h("CMD [\"bash\"]", true),
            h("COPY random.bin /random.bin # buildkit", false),
            h("ENV FOO=bar", true),
            h("RUN /bin/sh -c true # buildkit", false),
        ];
        assert_eq!(
            layer_history(&history, 3),
            [
                "ADD rootfs.tar / # buildkit",
                "COPY random.bin /random.bin # buildkit",
                "RUN /bin/sh -c true # buildkit"
            ]
        );
    }

    #[test]
    fn history_shorter_or_longer_than_the_layers() {
        assert_eq!(layer_history(&[h("a", false)], 2), ["a", ""]);
        assert_eq!(layer_history(&[], 1), [""]);
        assert_eq!(layer_history(&[h("a", false), h("b", false)], 1), ["a"]);
    }

    #[test]
    fn history_rows_map_to_layers() {
        let history = [h("", false), h("", true), h("", false), h("", true)];
        assert_eq!(layer_usage(&history, &[90, 0, 7, 0], 2), Some(vec![90, 7]));
        // Rows and entries do not line up, or the layers are fewer than the entries say.
        assert_eq!(layer_usage(&history, &[90, 7], 2), None);
        assert_eq!(layer_usage(&history, &[90, 0, 7, 0], 3), None);
        assert_eq!(layer_usage(&[], &[], 1), None);
    }

    fn inspect(id: &str) -> ImageInspect {
        serde_json::from_value(serde_json::json!({
            "Id": id, "Architecture": "amd64", "Os": "linux",
            "Config": {}, "RootFS": {"Layers": []}
        }))
        .unwrap()
    }

    /// A layout with one gzip layer and one uncompressed layer, referenced by an index that also
    /// holds an attestation manifest.
    #[test]
    fn facts_come_from_the_platform_manifest_of_an_index() {
        let mut layout = Layout::default();
        let blob = |size, encoding, unpacked| BlobFacts {
            version: FACTS_VERSION,
            size,
            encoding,
            unpacked: Some(unpacked),
            unpacked_from: UnpackedFrom::Decompressed,
            gzip: None,
            compressor: None,
        };
        layout
            .blobs
            .insert("sha256:l1".into(), blob(100, Encoding::Gzip, 1000));
        layout
            .blobs
            .insert("sha256:l2".into(), blob(50, Encoding::Plain, 50));
        let manifest = serde_json::json!({
            "config": {"mediaType": "c", "digest": "sha256:cfg", "size": 10},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:l1", "size": 100},
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:l2", "size": 50}
            ]
        });
        let config = serde_json::json!({
            "rootfs": {"type": "layers", "diff_ids": ["sha256:d1", "sha256:d2"]},
            "history": [
                {"created_by": "ADD a /"}, {"created_by": "ENV X=1", "empty_layer": true},
                {"created_by": "RUN make"}
            ]
        });
        let index = serde_json::json!({
            "manifests": [
                {"mediaType": "m", "digest": "sha256:att", "size": 5,
                 "platform": {"architecture": "unknown", "os": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
                {"mediaType": "m", "digest": "sha256:man", "size": 5,
                 "platform": {"architecture": "amd64", "os": "linux"}}
            ]
        });
        for (digest, doc) in [
            ("sha256:man", &manifest),
            ("sha256:cfg", &config),
            ("sha256:idx", &index),
            (
                "sha256:att",
                &serde_json::json!({"config": {"digest": "x", "size": 1}, "layers": []}),
            ),
        ] {
            layout
                .json
                .insert(digest.into(), serde_json::to_vec(doc).unwrap());
        }
        let facts = layout
            .image_facts(Store::Containerd, &inspect("sha256:idx"))
            .unwrap();
        assert_eq!(facts.method, Method::Stored);
        assert_eq!(facts.compressed(), 150);
        assert_eq!(facts.unpacked(), 1050);
        assert_eq!(facts.layers[0].created_by, "ADD a /");
        assert_eq!(facts.layers[1].created_by, "RUN make");
        assert_eq!(facts.layers[1].diff_id, "sha256:d2");

        // The classic store names images by config digest and needs computed gzip sizes.
        let err = layout
            .image_facts(Store::Classic, &inspect("sha256:cfg"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("was not compressed"), "{err}");
    }
}
