//! Where an image's blobs come from, by what the user named: an OCI archive file (`docker save`,
//! `buildx --output type=oci`), an image of the engine (its content store when this user can
//! read it, else a `docker save` of it into a temporary archive), or a registry (through `crane`).
//! Then the walk from the top document through indexes to one platform's manifest and config.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

use super::archive::Archive;
use crate::ctx::{Ctx, TempDir};
use crate::docker;
use crate::process::Cmd;
use crate::sizes::{ContentStore, ManifestDoc};

/// Manifests, indexes and configs are read whole up to this size.
const MAX_JSON: u64 = 16 << 20;

/// What the user named, after its prefix (`archive:`, `local:`, `registry:`) or by what exists:
/// a file is an archive, an image the engine has is local, anything else is a registry's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Spec {
    Archive(Utf8PathBuf),
    Local(String),
    Registry(String),
}

impl Spec {
    /// The spec from its prefix; None when there is none (then [`Spec::detect`] decides).
    pub(crate) fn parse(text: &str) -> Option<Spec> {
        let (prefix, rest) = text.split_once(':')?;
        match prefix {
            "archive" | "oci-archive" | "docker-archive" => Some(Spec::Archive(rest.into())),
            "local" | "docker-daemon" => Some(Spec::Local(rest.to_string())),
            "registry" => Some(Spec::Registry(rest.to_string())),
            _ => None,
        }
    }

    /// Without a prefix: an existing file, else an image in the engine, else a registry's.
    pub(crate) fn detect(text: &str) -> Result<Spec> {
        if let Some(spec) = Spec::parse(text) {
            return Ok(spec);
        }
        if Utf8Path::new(text).is_file() {
            return Ok(Spec::Archive(text.into()));
        }
        let local = docker::info().is_ok() && docker::image_id(text)?.is_some();
        Ok(if local {
            Spec::Local(text.to_string())
        } else {
            Spec::Registry(text.to_string())
        })
    }
}

/// Blobs by digest, from one source.
pub(crate) enum Blobs {
    Archive(Archive),
    Store(ContentStore),
    Registry { repository: String, insecure: bool },
}

impl Blobs {
    /// Whether the source holds the blob (an index may list platforms never pulled or saved).
    pub(crate) fn has(&self, digest: &str) -> bool {
        match self {
            Blobs::Archive(archive) => archive.has_blob(digest),
            Blobs::Store(store) => store.open(digest).is_ok(),
            Blobs::Registry { .. } => true,
        }
    }

    /// The blob's bytes as a stream.
    pub(crate) fn open(&self, digest: &str) -> Result<Box<dyn Read + Send + '_>> {
        match self {
            Blobs::Archive(archive) => Ok(Box::new(archive.blob(digest)?)),
            Blobs::Store(store) => Ok(Box::new(store.open(digest)?.0)),
            Blobs::Registry {
                repository,
                insecure,
            } => {
                let reference = format!("{repository}@{digest}");
                let reader = crane(*insecure, &["blob", &reference])
                    .reader()
                    .with_context(|| format!("starting `crane blob {reference}`"))?;
                Ok(Box::new(reader))
            }
        }
    }

    /// A JSON document (manifest, index, config), whole.
    pub(crate) fn json(&self, digest: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(digest)?
            .take(MAX_JSON + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading blob {digest}"))?;
        if bytes.len() as u64 > MAX_JSON {
            bail!("blob {digest} is larger than a manifest or config can be");
        }
        Ok(bytes)
    }
}

/// An opened source: its blobs and the document the walk starts from.
pub(crate) struct Opened {
    pub(crate) name: String,
    pub(crate) blobs: Blobs,
    /// The top document: an archive's `index.json` (no digest), or the image ID's document.
    pub(crate) top: Vec<u8>,
    pub(crate) top_digest: Option<String>,
    /// A `docker save` archive made for this source, removed on drop.
    pub(crate) _temp: Option<TempDir>,
}

/// Opens what the user named.
pub(crate) fn open(ctx: &Ctx, text: &str) -> Result<Opened> {
    let name = text.to_string();
    match Spec::detect(text)? {
        Spec::Archive(path) => open_archive(crate::util::shown(&path), &path, None),
        Spec::Local(image) => open_local(ctx, name, &image),
        Spec::Registry(reference) => open_registry(name, &reference),
    }
}

fn open_archive(name: String, path: &Utf8Path, temp: Option<TempDir>) -> Result<Opened> {
    let archive = Archive::open(path)?;
    let top = archive.index_json()?;
    Ok(Opened {
        name,
        blobs: Blobs::Archive(archive),
        top,
        top_digest: None,
        _temp: temp,
    })
}

/// The engine's content store when readable here (no copy), else `docker save` into a file.
fn open_local(ctx: &Ctx, name: String, image: &str) -> Result<Opened> {
    let id = docker::image_id(image)?.with_context(|| format!("no image {image} in the engine"))?;
    let info = docker::info()?;
    if let Ok(store) = ContentStore::locate(&info.docker_root_dir, &[&id]) {
        let blobs = Blobs::Store(store);
        let top = blobs.json(&id)?;
        return Ok(Opened {
            name,
            blobs,
            top,
            top_digest: Some(id),
            _temp: None,
        });
    }
    let temp = TempDir::new(ctx, "diff-save")?;
    let path = temp.path().join("image.tar");
    save_to(image, &path)?;
    open_archive(name, &path, Some(temp))
}

fn save_to(image: &str, path: &Utf8Path) -> Result<()> {
    let mut save = docker::save(&[image.to_string()])?;
    let shown = crate::util::shown(path);
    let mut file = std::fs::File::create(path).with_context(|| format!("creating {shown}"))?;
    std::io::copy(&mut save, &mut file).with_context(|| format!("writing {shown}"))?;
    save.finish()
}

fn open_registry(name: String, reference: &str) -> Result<Opened> {
    let insecure = crate::registry::reference_is_loopback(reference);
    let out = crane(insecure, &["manifest", reference])
        .output()
        .context("running `crane manifest` (install crane to read images from a registry)")?;
    if !out.status.success() {
        bail!(
            "cannot read {reference} from its registry: {}",
            crate::util::last_line(&String::from_utf8_lossy(&out.stderr))
        );
    }
    Ok(Opened {
        name,
        blobs: Blobs::Registry {
            repository: crate::registry::repository_of(reference).to_string(),
            insecure,
        },
        top_digest: Some(sha256_of(&out.stdout)),
        top: out.stdout,
        _temp: None,
    })
}

/// `crane ARGS`, over plain HTTP for a loopback registry.
fn crane(insecure: bool, args: &[&str]) -> Cmd {
    let cmd = Cmd::new("crane");
    let cmd = if insecure { cmd.arg("--insecure") } else { cmd };
    cmd.args(args)
}

pub(crate) fn sha256_of(bytes: &[u8]) -> String {
    crate::registry::serve::digest(Sha256::new().chain_update(bytes))
}

/// An entry of an index.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IndexEntry {
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
}

impl Platform {
    pub(crate) fn name(&self) -> String {
        match self.variant.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

impl IndexEntry {
    /// BuildKit's attestation manifests (provenance, SBOM) sit in an index beside the images.
    fn is_attestation(&self) -> bool {
        self.annotations
            .get("vnd.docker.reference.type")
            .map(String::as_str)
            == Some("attestation-manifest")
            || self.platform.as_ref().is_some_and(|p| p.os == "unknown")
    }
}

/// The image of one platform, as its source holds it.
pub(crate) struct Picked {
    /// The innermost index it was found in (None: the source named a manifest).
    pub(crate) index: Option<String>,
    pub(crate) manifest_digest: String,
    pub(crate) manifest: ManifestDoc,
}

/// Walks from `doc` through indexes to the manifest of `want` (or the only image there is).
pub(crate) fn pick(
    blobs: &Blobs,
    doc: &[u8],
    digest: Option<&str>,
    want: Option<&str>,
    depth: usize,
) -> Result<Picked> {
    if depth > 4 {
        bail!("image indexes nest too deeply");
    }
    let value: serde_json::Value = serde_json::from_slice(doc).context("parsing a manifest")?;
    if value.get("layers").is_some() {
        return Ok(Picked {
            index: None,
            manifest_digest: digest.map_or_else(|| sha256_of(doc), str::to_owned),
            manifest: serde_json::from_value(value).context("parsing a manifest")?,
        });
    }
    let entries: Vec<IndexEntry> = serde_json::from_value(value["manifests"].clone())
        .context("parsing an index (neither an image manifest nor an index)")?;
    let present: Vec<IndexEntry> = entries
        .into_iter()
        .filter(|e| !e.is_attestation() && blobs.has(&e.digest))
        .collect();
    let chosen = choose(&present, want)?;
    let child = blobs.json(&chosen.digest)?;
    let mut picked = pick(blobs, &child, Some(&chosen.digest), want, depth + 1)?;
    if picked.index.is_none() {
        picked.index = digest.map(str::to_owned);
    }
    Ok(picked)
}

/// The entry of `want`, or the only one (an archive's `index.json` names an image's index without
/// a platform), or this machine's platform's.
pub(crate) fn choose<'a>(entries: &'a [IndexEntry], want: Option<&str>) -> Result<&'a IndexEntry> {
    let named: Vec<String> = entries
        .iter()
        .filter_map(|e| e.platform.as_ref().map(Platform::name))
        .collect();
    if let [only] = entries {
        let fits = match (want, &only.platform) {
            (Some(want), Some(p)) => docker::same_platform(want, &p.name()),
            _ => true,
        };
        if fits {
            return Ok(only);
        }
    }
    // Without --platform, this machine's platform where the index holds several.
    let target = want.unwrap_or(crate::emulation::host_platform());
    let found = entries.iter().find(|e| {
        e.platform
            .as_ref()
            .is_some_and(|p| docker::same_platform(target, &p.name()))
    });
    match (found, want) {
        (Some(entry), _) => Ok(entry),
        (None, Some(want)) => bail!(
            "no {want} image here; it holds {}",
            if named.is_empty() {
                "none".into()
            } else {
                named.join(", ")
            }
        ),
        (None, None) if entries.is_empty() => bail!("the index holds no image"),
        (None, None) => bail!(
            "the index holds {}: name one with --platform",
            named.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: &str, platform: Option<&str>) -> IndexEntry {
        IndexEntry {
            digest: digest.into(),
            platform: platform.map(|p| {
                let mut parts = p.split('/');
                Platform {
                    os: parts.next().unwrap().into(),
                    architecture: parts.next().unwrap().into(),
                    variant: parts.next().map(str::to_owned),
                }
            }),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn an_index_entry_is_chosen_by_platform_or_as_the_only_one() {
        let both = [
            entry("amd", Some("linux/amd64")),
            entry("arm", Some("linux/arm64/v8")),
        ];
        assert_eq!(choose(&both, Some("linux/arm64")).unwrap().digest, "arm");
        assert_eq!(
            choose(&both, None).unwrap().digest,
            if crate::emulation::host_platform() == "linux/arm64" {
                "arm"
            } else {
                "amd"
            }
        );
        let err = choose(&both, Some("linux/s390x")).unwrap_err().to_string();
        assert_eq!(
            err,
            "no linux/s390x image here; it holds linux/amd64, linux/arm64/v8"
        );
        // An archive's index.json names the image's index without a platform.
        let saved = [entry("index", None)];
        assert_eq!(choose(&saved, Some("linux/arm64")).unwrap().digest, "index");
        let only_arm = [entry("arm", Some("linux/arm64"))];
        assert!(choose(&only_arm, Some("linux/amd64")).is_err());
        assert!(choose(&[], None).is_err());
    }

    #[test]
    fn attestations_are_not_images() {
        let mut att = entry("att", Some("unknown/unknown"));
        assert!(att.is_attestation());
        att.platform = None;
        att.annotations.insert(
            "vnd.docker.reference.type".into(),
            "attestation-manifest".into(),
        );
        assert!(att.is_attestation());
        assert!(!entry("img", Some("linux/amd64")).is_attestation());
    }

    #[test]
    fn a_prefix_says_where_the_image_is() {
        assert_eq!(
            Spec::parse("archive:a.tar"),
            Some(Spec::Archive("a.tar".into()))
        );
        assert_eq!(
            Spec::parse("registry:127.0.0.1:5000/v:x"),
            Some(Spec::Registry("127.0.0.1:5000/v:x".into()))
        );
        assert_eq!(
            Spec::parse("local:voxserve:cpu"),
            Some(Spec::Local("voxserve:cpu".into()))
        );
        assert_eq!(Spec::parse("voxserve:cpu"), None);
    }
}
