//! An OCI image layout in a tar file (`docker save`, `docker buildx build --output type=oci`):
//! one pass lists where each member's bytes start, then blobs are read in place by seeking.

use anyhow::{anyhow, bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use crate::util;

const USAGE: &str = "pass a `docker save` or `docker buildx build --output type=oci` tar";

pub(crate) struct Archive {
    path: Utf8PathBuf,
    /// Member path (without `./`) → (offset of its data, its size).
    members: BTreeMap<String, (u64, u64)>,
}

impl Archive {
    pub(crate) fn open(path: &Utf8Path) -> Result<Archive> {
        let file = File::open(path).with_context(|| format!("opening {}", util::shown(path)))?;
        let mut tar = tar::Archive::new(file);
        let mut members = BTreeMap::new();
        let not_tar = || format!("{} is not a tar archive: {USAGE}", util::shown(path));
        for entry in tar.entries().map_err(|_| anyhow!(not_tar()))? {
            let entry = entry.map_err(|_| anyhow!(not_tar()))?;
            let name = entry.path()?.to_string_lossy().into_owned();
            let name = name.trim_start_matches("./").to_string();
            members.insert(name, (entry.raw_file_position(), entry.size()));
        }
        if !members.contains_key("index.json") {
            bail!(
                "{} is not an OCI image archive (no index.json): {USAGE}",
                util::shown(path)
            );
        }
        Ok(Archive {
            path: path.to_owned(),
            members,
        })
    }

    /// `index.json`, the layout's top document.
    pub(crate) fn index_json(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.member("index.json")?
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading index.json of {}", util::shown(&self.path)))?;
        Ok(bytes)
    }

    pub(crate) fn has_blob(&self, digest: &str) -> bool {
        blob_path(digest).is_some_and(|p| self.members.contains_key(&p))
    }

    pub(crate) fn blob(&self, digest: &str) -> Result<std::io::Take<File>> {
        let path = blob_path(digest).with_context(|| format!("`{digest}` is not a digest"))?;
        self.member(&path)
            .with_context(|| format!("blob {digest} is not in {}", util::shown(&self.path)))
    }

    fn member(&self, name: &str) -> Result<std::io::Take<File>> {
        let &(offset, size) = self
            .members
            .get(name)
            .with_context(|| format!("{} holds no {name}", util::shown(&self.path)))?;
        let mut file = File::open(&self.path)
            .with_context(|| format!("opening {}", util::shown(&self.path)))?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(file.take(size))
    }
}

/// `blobs/<algorithm>/<hex>`; None for anything that is not `algorithm:hex`.
fn blob_path(digest: &str) -> Option<String> {
    let (algo, hex) = digest.split_once(':')?;
    let ok = !algo.is_empty()
        && algo.chars().all(|c| c.is_ascii_alphanumeric())
        && !hex.is_empty()
        && hex.chars().all(|c| c.is_ascii_hexdigit());
    ok.then(|| format!("blobs/{algo}/{hex}"))
}

#[cfg(test)]
mod tests {
    use super::blob_path;

    #[test]
    fn blob_paths_refuse_anything_but_digests() {
        assert_eq!(
            blob_path("sha256:00ff").as_deref(),
            Some("blobs/sha256/00ff")
        );
        assert_eq!(blob_path("sha256:../../etc"), None);
        assert_eq!(blob_path("index.json"), None);
    }
}
