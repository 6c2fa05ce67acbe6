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

/// Pushes `plan` as `repo:<tag>`.
pub fn push(
    registry: &LocalRegistry,
    repo: &str,
    source: &Source,
    plan: &ImagePlan,
) -> Result<Pushed> {
    let started = Instant::now();
    let want = Encoding::of_compression(plan.compression);
    let mut layers = Vec::new();
    for part in &plan.parts {
        let layer = match part {
            Part::Layer(i) => {
                let src = &source.layers[*i];
                let (blob, diff_id) = if Encoding::of(&src.media_type)? == want {
                    let (mut file, path) = source.store.open(&src.digest)?;
                    let mut sending = upload(registry, repo)?;
                    io::copy(&mut file, &mut sending)
                        .with_context(|| format!("sending {}", path))?;
                    let blob = sending.finish()?;
                    if blob.digest != src.digest {
                        bail!(
                            "the content store's blob {} hashed to {}: the store is damaged",
                            src.digest,
                            blob.digest
                        );
                    }
                    (blob, src.diff_id.clone())
                } else {
                    progress!(
                        "bench pull: {}: layer {} compressed with {}",
                        plan.label(),
                        i + 1,
                        plan.compression.as_str()
                    );
                    let (blob, diff_id) = compressed(registry, repo, plan.compression, |out| {
                        io::copy(&mut source.tar(*i)?, out)
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
                PushedLayer {
                    digest: blob.digest,
                    diff_id,
                    media_type: layer_media_type(plan.compression).into(),
                    size: blob.size,
                    from: vec![i + 1],
                }
            }
            Part::Merged(range) => {
                progress!(
                    "bench pull: {}: layers {}–{} merged into one, compressed with {}",
                    plan.label(),
                    range.start + 1,
                    range.end,
                    plan.compression.as_str()
                );
                let index = merge::index(range.clone().map(|i| source.tar(i)))?;
                let (blob, diff_id) = compressed(registry, repo, plan.compression, |out| {
                    merge::write(&index, range.clone().map(|i| source.tar(i)), out)?;
                    Ok(())
                })?;
                PushedLayer {
                    digest: blob.digest,
                    diff_id,
                    media_type: layer_media_type(plan.compression).into(),
                    size: blob.size,
                    from: range.clone().map(|i| i + 1).collect(),
                }
            }
        };
        layers.push(layer);
    }
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let config = config_for(&source.config, &plan.parts, &diff_ids)?;
    let mut sending = upload(registry, repo)?;
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
    let tag = plan.tag();
    let digest = registry.put_manifest(repo, &tag, MANIFEST_TYPE, &body)?;
    Ok(Pushed {
        reference: format!("{}:{tag}", registry.repo(repo)),
        digest,
        layers,
        secs: started.elapsed().as_secs_f64(),
    })
}
