//! `sizes --image REGISTRY/IMAGE:TAG`: what a pushed image weighs, read from the registry's
//! manifests without pulling. Compressed = the sum of the layer sizes a platform's manifest lists,
//! i.e. the bytes a pull downloads, in whatever compression was pushed (zstd layers count as
//! pushed, not as the local gzip copy). One row per platform of an index (attestation manifests
//! left out). Unpacked only where the same image is also local (measured there).
//!
//! This path never estimates: where the perf work's local "as push_compression would push"
//! figure says what a push *would* weigh, this one says what a push *did* weigh.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::config::human_size;
use crate::docker;
pub(crate) use crate::registry::{index_platforms, platform_of};
use crate::report::Table;

/// How the registry rows were measured (the `method` of the JSON report).
pub(crate) const METHOD: &str = "registry manifest (layer sizes as pushed, no pull)";

/// One registry reference and its platforms.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RegistryEntry {
    pub(crate) image: String,
    /// Digest of the manifest or index the reference points at.
    pub(crate) digest: String,
    pub(crate) media_type: String,
    pub(crate) method: &'static str,
    pub(crate) platforms: Vec<PlatformSize>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct PlatformSize {
    /// `linux/amd64`, `linux/arm64/v8`.
    pub(crate) platform: String,
    /// Digest of this platform's image manifest.
    pub(crate) digest: String,
    pub(crate) layers: usize,
    /// `gzip`, `zstd`, `uncompressed`, or several joined by `+`.
    pub(crate) compression: String,
    /// Bytes: the sum of the manifest's layer sizes.
    pub(crate) compressed: u64,
    /// Bytes, from the local copy of the same image; None when there is none (or it cannot be
    /// measured: a warning says why).
    pub(crate) unpacked: Option<u64>,
}

/// True for references `sizes` reads from a registry: their first component is a registry host
/// with a dot or a port. A bare `localhost/…` is the conventional name of a local image (as the
/// offline base is), so it stays local.
pub(crate) fn is_registry_reference(reference: &str) -> bool {
    reference
        .split_once('/')
        .is_some_and(|(first, _)| first.contains('.') || first.contains(':'))
}

/// Layers, their summed size and their compression, from an image manifest.
pub(crate) fn manifest_size(manifest: &serde_json::Value) -> Result<(usize, u64, String)> {
    let layers = manifest["layers"]
        .as_array()
        .context("the manifest lists no layers (not an image manifest)")?;
    let mut total = 0u64;
    let mut kinds: Vec<&str> = Vec::new();
    for layer in layers {
        total += layer["size"]
            .as_u64()
            .context("a layer of the manifest has no size")?;
        let media = layer["mediaType"].as_str().unwrap_or("");
        let kind = if media.ends_with("zstd") {
            "zstd"
        } else if media.ends_with("gzip") {
            "gzip"
        } else {
            "uncompressed"
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok((layers.len(), total, kinds.join("+")))
}

/// Reads `reference` from its registry: its digest, then the manifest of each platform
/// `platforms` names (every platform when none is named).
pub(crate) fn measure(reference: &str, platforms: &[String]) -> Result<RegistryEntry> {
    let digest = docker::registry_digest(reference)?;
    let top = docker::registry_manifest(reference)?;
    let listed = match index_platforms(&top) {
        Some(listed) => listed,
        // A single manifest names its platform only in its image config.
        None => {
            let config = docker::registry_image_config(reference)?;
            let platform = platform_of(
                config["os"].as_str().unwrap_or("?"),
                config["architecture"].as_str().unwrap_or("?"),
                config["variant"].as_str(),
            );
            vec![(platform, digest.clone())]
        }
    };
    let repository = crate::registry::repository_of(reference);
    let mut sizes = Vec::new();
    for (platform, d) in chosen(reference, listed, platforms)? {
        let manifest = if d == digest {
            top.clone()
        } else {
            docker::registry_manifest(&format!("{repository}@{d}"))?
        };
        let (layers, compressed, compression) =
            manifest_size(&manifest).with_context(|| format!("{reference} ({platform})"))?;
        sizes.push(PlatformSize {
            platform,
            digest: d,
            layers,
            compression,
            compressed,
            unpacked: None,
        });
    }
    Ok(RegistryEntry {
        image: reference.to_string(),
        digest,
        media_type: top["mediaType"].as_str().unwrap_or_default().to_string(),
        method: METHOD,
        platforms: sizes,
    })
}

/// The platforms of `listed` (platform, digest) that `wanted` names, all when it names none; a
/// named platform the image lacks is an error.
fn chosen(
    reference: &str,
    listed: Vec<(String, String)>,
    wanted: &[String],
) -> Result<Vec<(String, String)>> {
    let named = |p: &str| wanted.iter().any(|w| docker::same_platform(p, w));
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|w| !listed.iter().any(|(p, _)| docker::same_platform(p, w)))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let has: Vec<&str> = listed.iter().map(|(p, _)| p.as_str()).collect();
        bail!(
            "{reference} has no {} image in its registry (it has {}): drop --platform or name \
             one of those",
            missing.join(", "),
            has.join(", ")
        );
    }
    Ok(listed
        .into_iter()
        .filter(|(p, _)| wanted.is_empty() || named(p))
        .collect())
}

/// The registry section's table.
/// The columns of [`table`].
pub(crate) const COLUMNS: [&str; 7] = [
    "image",
    "platform",
    "manifest",
    "layers",
    "compression",
    "compressed",
    "unpacked",
];

pub(crate) fn table(entries: &[RegistryEntry]) -> Table {
    let mut t = Table::new(&COLUMNS).right_align(&[3, 5, 6]);
    for e in entries {
        for p in &e.platforms {
            t.row(vec![
                e.image.clone(),
                p.platform.clone(),
                p.digest.chars().take(19).collect(),
                p.layers.to_string(),
                p.compression.clone(),
                human_size(p.compressed),
                p.unpacked.map_or("-".into(), human_size),
            ]);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_references_have_a_host_with_a_dot_or_a_port() {
        assert!(is_registry_reference("127.0.0.1:5000/a:t"));
        assert!(is_registry_reference("ghcr.io/acme/voxserve:cpu"));
        assert!(is_registry_reference("localhost:5000/a:t"));
        assert!(!is_registry_reference("localhost/debian:trixie-slim"));
        assert!(!is_registry_reference("voxserve:cpu"));
        assert!(!is_registry_reference("acme/voxserve:cpu"));
    }

    #[test]
    fn an_index_lists_platforms_without_attestations() {
        let index = json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:c", "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
        ]});
        assert_eq!(
            index_platforms(&index).unwrap(),
            [
                ("linux/amd64".to_string(), "sha256:a".to_string()),
                ("linux/arm64/v8".to_string(), "sha256:b".to_string())
            ]
        );
        assert_eq!(index_platforms(&json!({"layers": []})), None);
    }

    #[test]
    fn platforms_are_chosen_by_name_and_a_missing_one_is_refused() {
        let listed = vec![
            ("linux/amd64".to_string(), "sha256:a".to_string()),
            ("linux/arm64/v8".to_string(), "sha256:b".to_string()),
        ];
        let all = chosen("r/i:t", listed.clone(), &[]).unwrap();
        assert_eq!(all, listed);
        let arm = chosen("r/i:t", listed.clone(), &["linux/arm64".to_string()]).unwrap();
        assert_eq!(arm, listed[1..]);
        let err = chosen("r/i:t", listed, &["linux/s390x".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "r/i:t has no linux/s390x image in its registry (it has linux/amd64, linux/arm64/v8): \
             drop --platform or name one of those"
        );
    }

    #[test]
    fn a_manifest_weighs_the_sum_of_its_layers() {
        let m = json!({"layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "size": 100},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "size": 23}
        ]});
        assert_eq!(manifest_size(&m).unwrap(), (2, 123, "zstd".to_string()));
        let mixed = json!({"layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "size": 2},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": 3}
        ]});
        assert_eq!(manifest_size(&mixed).unwrap().2, "gzip+zstd+uncompressed");
        assert!(manifest_size(&json!({"manifests": []})).is_err());
    }
}
