//! Pushing one planned image into the bench's registry, from the layer blobs of the local image
//! (containerd's content store): a layer already stored with the planned compression is sent as
//! it is (the blob a `build --push` sends); any other is decompressed and compressed again —
//! gzip at level 6 and zstd at level 3, the defaults BuildKit uses; merged layers are written by
//! `merge` and compressed on the way. Every blob streams into the registry, hashed as it goes:
//! nothing is held on disk.

use anyhow::{bail, Context, Result};
use flate2::{read::MultiGzDecoder, write::GzEncoder};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{self, BufReader, Read, Write};
use std::ops::Range;
use std::time::Instant;

use super::merge;
use super::plan::{config_for, layer_media_type, Encoding, ImagePlan, Part, SourceLayer};
use super::upload::{digest, upload, Blob, BlobUpload};
use xtask::build_cmd::Compression;
use xtask::output::progress;
use xtask::registry::serve::LocalRegistry;
use xtask::sizes::ContentStore;

const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The local image a bench pushes from.
pub struct Source<'a> {
    pub store: &'a ContentStore,
    pub layers: Vec<SourceLayer>,
    /// Its config as stored.
    pub config: Vec<u8>,
}

/// A layer as the registry holds it.
#[derive(Debug, Clone, Serialize)]
pub struct PushedLayer {
    pub digest: String,
    pub diff_id: String,
    pub media_type: String,
    pub size: u64,
    /// The source layers it holds (1-based, as `sizes` numbers them).
    pub from: Vec<usize>,
}

/// An image in the registry.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    /// `127.0.0.1:PORT/repo:tag`, what the engine pulls.
    pub reference: String,
    /// Of the manifest.
    pub digest: String,
    pub layers: Vec<PushedLayer>,
    /// Time to compress and send every blob.
    pub secs: f64,
}

impl Pushed {
    pub fn compressed(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }
}

/// A writer that hashes what passes through (a diff ID is the digest of the uncompressed tar).
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A compressor in front of an upload.
enum Encoder {
    Gzip(GzEncoder<BlobUpload>),
    Zstd(zstd::stream::write::Encoder<'static, BlobUpload>),
}

impl Encoder {
    fn new(c: Compression, upload: BlobUpload) -> Result<Encoder> {
        Ok(match c {
            Compression::Gzip => {
                Encoder::Gzip(GzEncoder::new(upload, flate2::Compression::new(GZIP_LEVEL)))
            }
            Compression::Zstd => Encoder::Zstd(
                zstd::stream::write::Encoder::new(upload, ZSTD_LEVEL)
                    .context("starting the zstd encoder")?,
            ),
        })
    }

    fn finish(self) -> Result<BlobUpload> {
        match self {
            Encoder::Gzip(e) => e.finish().context("finishing the gzip stream"),
            Encoder::Zstd(e) => e.finish().context("finishing the zstd stream"),
        }
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

impl Source<'_> {
    /// The uncompressed tar of layer `i`.
    fn tar(&self, i: usize) -> Result<Box<dyn Read>> {
        let layer = &self.layers[i];
        let (file, _) = self.store.open(&layer.digest)?;
        let file = BufReader::with_capacity(1 << 20, file);
        Ok(match Encoding::of(&layer.media_type)? {
            Encoding::Plain => Box::new(file),
            Encoding::Gzip => Box::new(MultiGzDecoder::new(file)),
            Encoding::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(file)
                    .context("starting the zstd decoder")?,
            ),
        })
    }
}

/// Sends the uncompressed tar that `write` produces as one layer compressed with `c`; returns
/// the blob and the tar's diff ID.
fn compressed(
    registry: &LocalRegistry,
    repo: &str,
    c: Compression,
    write: impl FnOnce(&mut Hashing<Encoder>) -> Result<()>,
) -> Result<(Blob, String)> {
    let mut tar = Hashing {
        inner: Encoder::new(c, upload(registry, repo)?)?,
        hasher: Sha256::new(),
    };
    write(&mut tar)?;
    let diff_id = digest(tar.hasher);
    let blob = tar.inner.finish()?.finish()?;
    Ok((blob, diff_id))
}

/// Where a planned image goes: a repository of the bench's registry.
struct Target<'a> {
    registry: &'a LocalRegistry,
    repo: &'a str,
    plan: &'a ImagePlan,
}

/// Pushes `plan` as `repo:<tag>`.
pub fn push(
    registry: &LocalRegistry,
    repo: &str,
    source: &Source,
    plan: &ImagePlan,
) -> Result<Pushed> {
    let started = Instant::now();
    let to = Target {
        registry,
        repo,
        plan,
    };
    let layers = plan
        .parts
        .iter()
        .map(|part| match part {
            Part::Layer(i) => push_layer(&to, source, *i),
            Part::Merged(range) => push_merged(&to, source, range),
        })
        .collect::<Result<Vec<_>>>()?;
    let (reference, digest) = put_image(&to, source, &layers)?;
    Ok(Pushed {
        reference,
        digest,
        layers,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Source layer `i`: its blob as stored when the plan's compression is the store's, else its tar
/// compressed again (and its diff ID checked).
fn push_layer(to: &Target, source: &Source, i: usize) -> Result<PushedLayer> {
    let src = &source.layers[i];
    let compression = to.plan.compression;
    let (blob, diff_id) = if Encoding::of(&src.media_type)? == Encoding::of_compression(compression)
    {
        (send_stored(to, source, src)?, src.diff_id.clone())
    } else {
        progress!(
            "bench pull: {}: layer {} compressed with {}",
            to.plan.label(),
            i + 1,
            compression.as_str()
        );
        let (blob, diff_id) = compressed(to.registry, to.repo, compression, |out| {
            io::copy(&mut source.tar(i)?, out)
                .with_context(|| format!("recompressing layer {}", i + 1))?;
            Ok(())
        })?;
        if diff_id != src.diff_id {
            bail!(
                "layer {} decompressed to {diff_id}, but the image names {}",
                i + 1,
                src.diff_id
            );
        }
        (blob, diff_id)
    };
    Ok(PushedLayer {
        digest: blob.digest,
        diff_id,
        media_type: layer_media_type(compression).into(),
        size: blob.size,
        from: vec![i + 1],
    })
}

/// A blob of the content store as it is (the blob a `build --push` sends), its digest checked.
fn send_stored(to: &Target, source: &Source, src: &SourceLayer) -> Result<Blob> {
    let (mut file, path) = source.store.open(&src.digest)?;
    let mut sending = upload(to.registry, to.repo)?;
    io::copy(&mut file, &mut sending)
        .with_context(|| format!("sending {}", xtask::util::shown(&path)))?;
    let blob = sending.finish()?;
    if blob.digest != src.digest {
        bail!(
            "the content store's blob {} hashed to {}: the store is damaged",
            src.digest,
            blob.digest
        );
    }
    Ok(blob)
}

/// Source layers `range` as one layer, written by `merge` and compressed on the way.
fn push_merged(to: &Target, source: &Source, range: &Range<usize>) -> Result<PushedLayer> {
    let compression = to.plan.compression;
    progress!(
        "bench pull: {}: layers {}–{} merged into one, compressed with {}",
        to.plan.label(),
        range.start + 1,
        range.end,
        compression.as_str()
    );
    let index = merge::index(range.clone().map(|i| source.tar(i)))?;
    let (blob, diff_id) = compressed(to.registry, to.repo, compression, |out| {
        merge::write(&index, range.clone().map(|i| source.tar(i)), out)?;
        Ok(())
    })?;
    Ok(PushedLayer {
        digest: blob.digest,
        diff_id,
        media_type: layer_media_type(compression).into(),
        size: blob.size,
        from: range.clone().map(|i| i + 1).collect(),
    })
}

/// The image's config and manifest, tagged; returns its reference and the manifest's digest.
fn put_image(to: &Target, source: &Source, layers: &[PushedLayer]) -> Result<(String, String)> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let config = config_for(&source.config, &to.plan.parts, &diff_ids)?;
    let mut sending = upload(to.registry, to.repo)?;
    sending.write_all(&config).context("sending the config")?;
    let config_blob = sending.finish()?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": CONFIG_TYPE,
            "digest": config_blob.digest,
            "size": config_blob.size,
        },
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type,
            "digest": l.digest,
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let body = serde_json::to_vec(&manifest).context("writing the manifest")?;
    let tag = to.plan.tag();
    let digest = to
        .registry
        .put_manifest(to.repo, &tag, MANIFEST_TYPE, &body)?;
    Ok((format!("{}:{tag}", to.registry.repo(to.repo)), digest))
}
