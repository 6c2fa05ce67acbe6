//! What `sizes` measures, as data: the facts about an image and about each blob (what the cache
//! keeps), the images wanted, and how a run went. No I/O here.
//!
//! Per layer:
//! - unpacked = length of the uncompressed layer tar (on the containerd store, where blobs are
//!   kept compressed: gunzip-counted, or read from the gzip trailer; the blob's own length on the
//!   classic store, which saves layers uncompressed). The tar bytes are the same on both stores
//!   (their sha256 is the diff ID).
//! - compressed = the stored blob's length on the containerd store ("stored"), or the length of
//!   the layer tar gzip-compressed at level 6 on the classic store ("computed").

use serde::{Deserialize, Serialize};

use crate::docker::{self, ImageInspect};

/// Bumped when the meaning of a cached fact changes; older cache files are then ignored.
pub(crate) const FACTS_VERSION: u32 = 3;
/// How `computed` compressed sizes are made; part of every cached computed fact.
pub(crate) const COMPRESSOR: &str = "gzip level 6 (flate2 with zlib-rs)";

/// Where the engine keeps images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Store {
    /// The containerd image store (snapshotter): compressed blobs are kept.
    Containerd,
    /// The classic graph-driver store (overlay2, …): only unpacked layers are kept.
    Classic,
}

impl Store {
    pub(crate) fn of(info: &docker::Info) -> Store {
        if info.containerd_store() {
            Store::Containerd
        } else {
            Store::Classic
        }
    }

    pub(crate) fn method(self) -> Method {
        match self {
            Store::Containerd => Method::Stored,
            Store::Classic => Method::Computed,
        }
    }

    /// `containerd` or `classic`: in cache file names and the closing progress line.
    pub(super) fn key(self) -> &'static str {
        match self {
            Store::Containerd => "containerd",
            Store::Classic => "classic",
        }
    }
}

/// How the compressed size was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Method {
    /// The lengths of the layer blobs the store keeps (and would push).
    #[serde(rename = "stored (registry blobs)")]
    Stored,
    /// Each layer tar gzip-compressed here, as a push from the classic store compresses it.
    #[serde(rename = "computed (gzip of layer tars)")]
    Computed,
    /// Each layer tar zstd-compressed here, as a push with `push_compression = "zstd"` sends it.
    #[serde(rename = "computed (zstd of layer tars, as pushed)")]
    PushZstd,
}

impl Method {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Method::Stored => "stored (registry blobs)",
            Method::Computed => "computed (gzip of layer tars)",
            Method::PushZstd => "computed (zstd of layer tars, as pushed)",
        }
    }
}

/// How a layer's unpacked size was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnpackedFrom {
    /// The blob is the uncompressed layer tar: its length.
    Tar,
    /// The blob was gunzipped and the output counted.
    Decompressed,
    /// The gzip trailer's length field (the length modulo 4 GiB), with the wrap-arounds told
    /// apart by the layer's disk usage (see `content::unpacked_from_trailer`).
    GzipTrailer,
}

/// One layer of an image, in manifest order (base first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The layer blob's digest in the store (compressed blob on containerd; the diff ID on classic).
    pub digest: String,
    /// sha256 of the uncompressed layer tar.
    pub diff_id: String,
    pub media_type: String,
    /// Bytes.
    pub compressed: u64,
    /// Bytes.
    pub unpacked: u64,
    pub unpacked_from: UnpackedFrom,
    /// The history entry (Dockerfile instruction) that made the layer; empty when unknown.
    pub created_by: String,
}

/// The measured facts about one image ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImageFacts {
    pub(crate) version: u32,
    pub(crate) id: String,
    pub(crate) store: Store,
    pub(crate) method: Method,
    /// The compressor of computed sizes; None when sizes are stored.
    pub(crate) compressor: Option<String>,
    pub(crate) layers: Vec<Layer>,
}

impl ImageFacts {
    pub(crate) fn compressed(&self) -> u64 {
        self.layers.iter().map(|l| l.compressed).sum()
    }

    pub(crate) fn unpacked(&self) -> u64 {
        self.layers.iter().map(|l| l.unpacked).sum()
    }
}

/// What one blob of the saved layout turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Encoding {
    Gzip,
    Zstd,
    /// Not compressed (a layer tar, or JSON metadata).
    Plain,
}

/// Facts about one blob, cached by its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BlobFacts {
    pub(crate) version: u32,
    pub(crate) size: u64,
    pub(crate) encoding: Encoding,
    /// Length of the uncompressed content.
    pub(crate) unpacked: Option<u64>,
    pub(crate) unpacked_from: UnpackedFrom,
    /// Length after gzip with `compressor`, for uncompressed layer tars on the classic store.
    pub(crate) gzip: Option<u64>,
    pub(crate) compressor: Option<String>,
}

/// An image to measure: the reference to save it by and what `docker image inspect` said.
pub(crate) struct Wanted<'a> {
    pub(crate) reference: &'a str,
    pub(crate) inspect: &'a ImageInspect,
    /// Set for one platform of a multi-platform image: its `inspect.id` is that platform's
    /// manifest, which the engine names only as `reference` + `--platform`.
    pub(crate) platform: Option<&'a str>,
}

/// How a measurement went: the progress line, and `run` in the JSON report (which
/// `bench sizes` reads back).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Wall-clock seconds of the whole command up to the report.
    pub seconds: f64,
    /// Images whose facts were cached.
    pub from_cache: usize,
    /// Images read from containerd's content store.
    #[serde(rename = "from_content_store")]
    pub from_store: usize,
    /// Images read with `docker save`.
    #[serde(rename = "from_docker_save")]
    pub saved: usize,
    /// Bytes read from `docker save`.
    #[serde(rename = "bytes_read")]
    pub read: u64,
    /// Bytes gunzipped or gzipped here.
    #[serde(rename = "bytes_processed")]
    pub processed: u64,
    /// Layers measured in this run, by how their unpacked size was found.
    #[serde(rename = "layers_by_gzip_trailer")]
    pub by_trailer: usize,
    #[serde(rename = "layers_decompressed")]
    pub decompressed: usize,
}
