//! The sizes cache under `target/xtask/sizes-cache/`: image IDs and blob digests name immutable
//! content, so the facts about them are kept as such and never go stale.

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::facts::{BlobFacts, ImageFacts, Method, Store, UnpackedFrom, COMPRESSOR, FACTS_VERSION};

/// The sizes cache: `images/<store>-<algo>-<hex>.json` and `blobs/<algo>-<hex>.json`.
pub(crate) struct Cache {
    dir: Utf8PathBuf,
    /// False with `--no-cache`: measure again, then refresh the cache.
    read: bool,
    /// False with `--decompress`: facts read from gzip trailers are measured again.
    trust_trailers: bool,
}

impl Cache {
    pub(crate) fn new(dir: Utf8PathBuf, read: bool, trust_trailers: bool) -> Cache {
        Cache {
            dir,
            read,
            trust_trailers,
        }
    }

    fn image_path(&self, store: Store, id: &str) -> Option<Utf8PathBuf> {
        Some(self.dir.join("images").join(format!(
            "{}-{}.json",
            store.key(),
            digest_file_name(id)?
        )))
    }

    fn blob_path(&self, digest: &str) -> Option<Utf8PathBuf> {
        Some(
            self.dir
                .join("blobs")
                .join(format!("{}.json", digest_file_name(digest)?)),
        )
    }

    pub(crate) fn image(&self, store: Store, id: &str) -> Option<ImageFacts> {
        if !self.read {
            return None;
        }
        let facts: ImageFacts = read_json(&self.image_path(store, id)?)?;
        (facts.version == FACTS_VERSION
            && facts.id == id
            && facts.store == store
            && (facts.method == Method::Stored || facts.compressor.as_deref() == Some(COMPRESSOR))
            && (self.trust_trailers
                || facts
                    .layers
                    .iter()
                    .all(|l| l.unpacked_from != UnpackedFrom::GzipTrailer)))
        .then_some(facts)
    }

    pub(super) fn put_image(&self, facts: &ImageFacts) -> Result<()> {
        let path = self
            .image_path(facts.store, &facts.id)
            .with_context(|| format!("`{}` is not a digest", facts.id))?;
        write_json(&path, facts)
    }

    pub(super) fn blob(&self, digest: &str) -> Option<BlobFacts> {
        if !self.read {
            return None;
        }
        let facts: BlobFacts = read_json(&self.blob_path(digest)?)?;
        (facts.version == FACTS_VERSION
            && (self.trust_trailers || facts.unpacked_from != UnpackedFrom::GzipTrailer))
            .then_some(facts)
    }

    pub(super) fn put_blob(&self, digest: &str, facts: &BlobFacts) -> Result<()> {
        let path = self
            .blob_path(digest)
            .with_context(|| format!("`{digest}` is not a digest"))?;
        write_json(&path, facts)
    }
}

/// `sha256:abc…` → `sha256-abc…`; None for anything that is not `algo:hex`.
pub(super) fn digest_file_name(digest: &str) -> Option<String> {
    let (algo, hex) = digest.split_once(':')?;
    let ok = !algo.is_empty()
        && algo.chars().all(|c| c.is_ascii_alphanumeric())
        && !hex.is_empty()
        && hex.chars().all(|c| c.is_ascii_hexdigit());
    ok.then(|| format!("{algo}-{hex}"))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Utf8Path) -> Option<T> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

fn write_json<T: Serialize>(path: &Utf8Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).context("serializing cached sizes")?;
    crate::report::write_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_file_names_refuse_paths() {
        assert_eq!(
            digest_file_name("sha256:00ff").as_deref(),
            Some("sha256-00ff")
        );
        assert_eq!(digest_file_name("sha256:../../etc"), None);
        assert_eq!(digest_file_name("nocolon"), None);
    }
}
