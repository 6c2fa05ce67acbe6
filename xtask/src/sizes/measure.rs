//! Layer facts of local images, the same way on both image stores, and a cache of facts keyed by
//! content digests. The layers are read either from containerd's content store on this machine
//! (see `content.rs`: the fast path) or from one `docker save` of every image not yet measured,
//! read as a stream (nothing lands on disk).
//!
//! Per layer:
//! - unpacked = length of the uncompressed layer tar (on the containerd store, where blobs are
//!   kept compressed: gunzip-counted, or read from the gzip trailer; the blob's own length on the
//!   classic store, which saves layers uncompressed). The tar bytes are the same on both stores
//!   (their sha256 is the diff ID).
//! - compressed = the stored blob's length on the containerd store ("stored"), or the length of
//!   the layer tar gzip-compressed at level 6 on the classic store ("computed").
//!
//! Image IDs and blob digests name immutable content, so facts about them are cached as such
//! under `target/xtask/sizes-cache/` and never go stale.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use flate2::{read::MultiGzDecoder, write::GzEncoder, Compression};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::sync::mpsc;

use super::content::{self, ContentStore};
use super::tar;
use crate::docker::{self, ImageInspect};

/// Bumped when the meaning of a cached fact changes; older cache files are then ignored.
pub const FACTS_VERSION: u32 = 2;
/// How `computed` compressed sizes are made; part of every cached computed fact.
pub const COMPRESSOR: &str = "gzip level 6 (flate2 with zlib-rs)";
const GZIP_LEVEL: u32 = 6;
/// JSON blobs (manifests, configs, indexes) are kept in memory up to this size.
pub(super) const MAX_JSON_BLOB: u64 = 16 << 20;

/// Where the engine keeps images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Store {
    /// The containerd image store (snapshotter): compressed blobs are kept.
    Containerd,
    /// The classic graph-driver store (overlay2, …): only unpacked layers are kept.
    Classic,
}

impl Store {
    pub fn of(info: &docker::Info) -> Store {
        if info.containerd_store() {
            Store::Containerd
        } else {
            Store::Classic
        }
    }

    pub fn method(self) -> Method {
        match self {
            Store::Containerd => Method::Stored,
            Store::Classic => Method::Computed,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Store::Containerd => "containerd",
            Store::Classic => "classic",
        }
    }
}

/// How the compressed size was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// The lengths of the layer blobs the store keeps (and would push).
    #[serde(rename = "stored (registry blobs)")]
    Stored,
    /// Each layer tar gzip-compressed here, as a push from the classic store compresses it.
    #[serde(rename = "computed (gzip of layer tars)")]
    Computed,
}

impl Method {
    pub fn describe(self) -> &'static str {
        match self {
            Method::Stored => "stored (registry blobs)",
            Method::Computed => "computed (gzip of layer tars)",
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

/// Where the layers are read from (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// containerd's content store when this user can read it, else `docker save`.
    Auto,
    /// containerd's content store on this machine (needs the containerd image store and read
    /// access to the engine's data directory, usually root).
    ContentStore,
    /// `docker save`, streamed: works with any engine and user, slower.
    DockerSave,
}

/// How to measure.
pub struct Options<'a> {
    pub source: Source,
    /// Decompress every gzip layer instead of reading lengths from gzip trailers.
    pub decompress: bool,
    pub info: &'a docker::Info,
    pub sh: &'a xshell::Shell,
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
pub struct ImageFacts {
    pub version: u32,
    pub id: String,
    pub store: Store,
    pub method: Method,
    /// The compressor of computed sizes; None when sizes are stored.
    pub compressor: Option<String>,
    pub layers: Vec<Layer>,
}

impl ImageFacts {
    pub fn compressed(&self) -> u64 {
        self.layers.iter().map(|l| l.compressed).sum()
    }

    pub fn unpacked(&self) -> u64 {
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
    pub version: u32,
    pub size: u64,
    pub encoding: Encoding,
    /// Length of the uncompressed content (None for zstd, which this tool cannot decompress).
    pub unpacked: Option<u64>,
    pub unpacked_from: UnpackedFrom,
    /// Length after gzip with `compressor`, for uncompressed layer tars on the classic store.
    pub gzip: Option<u64>,
    pub compressor: Option<String>,
}

/// The sizes cache: `images/<store>-<algo>-<hex>.json` and `blobs/<algo>-<hex>.json`.
pub struct Cache {
    dir: Utf8PathBuf,
    /// False with `--no-cache`: measure again, then refresh the cache.
    read: bool,
    /// False with `--decompress`: facts read from gzip trailers are measured again.
    trust_trailers: bool,
}

impl Cache {
    pub fn new(dir: Utf8PathBuf, read: bool, trust_trailers: bool) -> Cache {
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

    pub fn image(&self, store: Store, id: &str) -> Option<ImageFacts> {
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

    fn put_image(&self, facts: &ImageFacts) -> Result<()> {
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

    fn put_blob(&self, digest: &str, facts: &BlobFacts) -> Result<()> {
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

/// An image to measure: the reference to save it by and what `docker image inspect` said.
pub struct Wanted<'a> {
    pub reference: &'a str,
    pub inspect: &'a ImageInspect,
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

/// Facts for each wanted image ID: from the cache, else from one `docker save` of the rest.
pub fn measure(
    store: Store,
    wanted: &[Wanted],
    cache: &Cache,
    options: &Options,
    warn: &mut dyn FnMut(String),
) -> Result<(BTreeMap<String, ImageFacts>, Stats)> {
    if store == Store::Classic && options.source == Source::ContentStore {
        bail!(
            "--source content-store needs the containerd image store, but this engine uses the \
             classic store, whose layers only `docker save` reads: drop --source"
        );
    }
    let mut stats = Stats::default();
    let mut facts = BTreeMap::new();
    let mut todo: Vec<&Wanted> = Vec::new();
    for w in wanted {
        let id = &w.inspect.id;
        if facts.contains_key(id) || todo.iter().any(|t| &t.inspect.id == id) {
            continue;
        }
        match cache.image(store, id) {
            Some(f) => {
                stats.from_cache += 1;
                facts.insert(id.clone(), f);
            }
            None => todo.push(w),
        }
    }
    if todo.is_empty() {
        return Ok((facts, stats));
    }

    let layout = match (store, options.source) {
        (Store::Classic, _) | (Store::Containerd, Source::DockerSave) => None,
        (Store::Containerd, source) => {
            let ids: Vec<&str> = todo.iter().map(|w| w.inspect.id.as_str()).collect();
            match ContentStore::locate(&options.info.docker_root_dir, &ids) {
                Ok(found) => Some(found),
                Err(why) if source == Source::ContentStore => bail!(
                    "--source content-store: {why}. Run as root on the engine's machine, or use \
                     --source docker-save"
                ),
                Err(why) => {
                    crate::util::progress!(
                        "{why}; reading the layers with `docker save` instead, which is slower"
                    );
                    None
                }
            }
        }
    };
    let layout = match layout {
        Some(found) => {
            crate::util::progress!(
                "reading {} from containerd's content store ({})",
                todo.iter()
                    .map(|w| w.reference)
                    .collect::<Vec<_>>()
                    .join(", "),
                found.dir()
            );
            stats.from_store = todo.len();
            content::read_layout(&found, &todo, cache, options, &mut stats)?
        }
        None => save_layout(store, &todo, cache, &mut stats)?,
    };

    for w in todo {
        let f = layout
            .image_facts(store, w.inspect)
            .with_context(|| format!("measuring {} ({})", w.reference, w.inspect.id))?;
        if let Err(e) = cache.put_image(&f) {
            warn(format!("cannot cache the sizes of {}: {e:#}", w.reference));
        }
        facts.insert(w.inspect.id.clone(), f);
    }
    for (digest, blob) in &layout.new_blobs {
        if let Err(e) = cache.put_blob(digest, blob) {
            warn(format!("cannot cache the facts of blob {digest}: {e:#}"));
            break;
        }
    }
    Ok((facts, stats))
}

/// The layout of the `todo` images from one `docker save`.
fn save_layout(store: Store, todo: &[&Wanted], cache: &Cache, stats: &mut Stats) -> Result<Layout> {
    let refs: Vec<String> = todo.iter().map(|w| w.reference.to_string()).collect();
    // On the classic store the saved layer blobs are the uncompressed tars, named by diff ID.
    let to_compress: BTreeSet<String> = match store {
        Store::Classic => todo
            .iter()
            .flat_map(|w| w.inspect.root_fs.layers.iter().cloned())
            .collect(),
        Store::Containerd => BTreeSet::new(),
    };
    crate::util::progress!(
        "reading {} from the engine (`docker save`){}",
        refs.join(", "),
        if to_compress.is_empty() {
            String::new()
        } else {
            format!("; gzip-compressing {} layer tars", to_compress.len())
        }
    );
    stats.saved = todo.len();
    read_layout(docker::save(&refs)?, &to_compress, cache, stats)
        .with_context(|| format!("reading `docker save {}`", refs.join(" ")))
}

/// What the saved layout (or the content store) held, minus the layer bytes.
#[derive(Default)]
pub(super) struct Layout {
    pub blobs: BTreeMap<String, BlobFacts>,
    /// Blobs measured in this run (not from the cache), to cache afterwards.
    pub new_blobs: BTreeMap<String, BlobFacts>,
    pub json: BTreeMap<String, Vec<u8>>,
}

/// Reads a `docker save` stream to the end (on a second thread, so that the engine writes while
/// this one decompresses) and measures each blob.
fn read_layout(
    save: docker::SaveStream,
    to_compress: &BTreeSet<String>,
    cache: &Cache,
    stats: &mut Stats,
) -> Result<Layout> {
    let (tx, rx) = mpsc::sync_channel::<Chunk>(8);
    let reader = std::thread::spawn(move || pump(save, tx));
    let mut pipe = Pipe {
        rx,
        buf: Vec::new(),
        pos: 0,
        total: 0,
        ended: false,
    };
    let mut layout = Layout::default();
    let parsed = tar::for_each(&mut pipe, |entry, body| {
        let Some(digest) = blob_digest(&entry.path) else {
            return Ok(());
        };
        if !entry.is_file() {
            return Ok(());
        }
        let cached = cache.blob(&digest).filter(|b| {
            b.size == entry.size
                && (!to_compress.contains(&digest)
                    || b.encoding != Encoding::Plain
                    || b.compressor.as_deref() == Some(COMPRESSOR))
        });
        let (facts, json) = match cached {
            Some(facts) => (facts, None),
            None => {
                let (facts, json, processed) =
                    measure_blob(entry.size, body, to_compress.contains(&digest))?;
                stats.processed += processed;
                if json.is_none() {
                    if facts.unpacked_from == UnpackedFrom::Decompressed {
                        stats.decompressed += 1;
                    }
                    layout.new_blobs.insert(digest.clone(), facts.clone());
                }
                (facts, json)
            }
        };
        // A cached blob that may be JSON metadata is read again: manifests are tiny.
        let json = match json {
            Some(json) => Some(json),
            None if facts.encoding == Encoding::Plain && entry.size <= MAX_JSON_BLOB => {
                let mut buf = Vec::new();
                body.read_to_end(&mut buf)?;
                looks_like_json(&buf).then_some(buf)
            }
            None => None,
        };
        if let Some(json) = json {
            layout.json.insert(digest.clone(), json);
        }
        layout.blobs.insert(digest, facts);
        Ok(())
    });
    // On success read to the end for docker's exit status; on failure drop the pipe at once,
    // which ends the reader thread and kills `docker save`.
    let drained = if parsed.is_ok() {
        pipe.finish()
    } else {
        Ok(())
    };
    stats.read = pipe.total;
    drop(pipe);
    let status = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the `docker save` reader thread panicked"))?;
    // docker's own failure explains a broken stream better than the parser does.
    status?;
    parsed?;
    drained?;
    Ok(layout)
}

/// `blobs/sha256/<hex>` → `sha256:<hex>`.
fn blob_digest(path: &str) -> Option<String> {
    let rest = path.trim_start_matches("./").strip_prefix("blobs/")?;
    let (algo, hex) = rest.split_once('/')?;
    if hex.contains('/') || hex.is_empty() {
        return None;
    }
    Some(format!("{algo}:{hex}"))
}

pub(super) fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{') && serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
}

/// Measures one blob from its bytes: returns its facts, its bytes when it is JSON metadata, and
/// how many bytes were (de)compressed.
pub(super) fn measure_blob(
    size: u64,
    body: &mut dyn Read,
    compress: bool,
) -> Result<(BlobFacts, Option<Vec<u8>>, u64)> {
    let mut head = [0u8; 4];
    let n = read_up_to(body, &mut head)?;
    let head = &head[..n];
    let mut facts = BlobFacts {
        version: FACTS_VERSION,
        size,
        encoding: Encoding::Plain,
        unpacked: Some(size),
        unpacked_from: UnpackedFrom::Tar,
        gzip: None,
        compressor: None,
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = MultiGzDecoder::new(head.chain(body));
        let unpacked = count(&mut decoder).context("decompressing a gzip layer")?;
        facts.encoding = Encoding::Gzip;
        facts.unpacked = Some(unpacked);
        facts.unpacked_from = UnpackedFrom::Decompressed;
        return Ok((facts, None, unpacked));
    }
    if head == [0x28, 0xb5, 0x2f, 0xfd] {
        facts.encoding = Encoding::Zstd;
        facts.unpacked = None;
        return Ok((facts, None, 0));
    }
    if head.first() == Some(&b'{') && size <= MAX_JSON_BLOB {
        let mut buf = head.to_vec();
        body.read_to_end(&mut buf)?;
        if looks_like_json(&buf) {
            return Ok((facts, Some(buf), 0));
        }
        // Not JSON after all: an uncompressed tar whose first name starts with `{`.
        if compress {
            facts.gzip = Some(gzip_len(&mut &buf[..])?);
            facts.compressor = Some(COMPRESSOR.into());
        }
        return Ok((facts, None, if compress { size } else { 0 }));
    }
    if compress {
        facts.gzip = Some(gzip_len(&mut head.chain(body))?);
        facts.compressor = Some(COMPRESSOR.into());
        return Ok((facts, None, size));
    }
    Ok((facts, None, 0))
}

pub(super) fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Counts bytes written and drops them.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn count(r: &mut dyn Read) -> io::Result<u64> {
    let mut counter = Counter(0);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(counter.0),
            Ok(n) => counter.0 += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The length of `r` gzip-compressed at level 6 (a 10-byte header with no name, as Go's and
/// zlib's gzip writers make it, the deflate stream, and the 8-byte trailer).
pub fn gzip_len(r: &mut dyn Read) -> Result<u64> {
    let mut encoder = GzEncoder::new(Counter(0), Compression::new(GZIP_LEVEL));
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading a layer tar"),
        };
        encoder
            .write_all(&buf[..n])
            .context("gzip-compressing a layer tar")?;
    }
    Ok(encoder.finish().context("finishing gzip")?.0)
}

enum Chunk {
    Data(Vec<u8>),
    End(Result<()>),
}

/// The reader thread: forwards `docker save` output in 1 MiB chunks, then its exit status.
/// Returns docker's failure, if any, so that it can be reported first.
fn pump(mut save: docker::SaveStream, tx: mpsc::SyncSender<Chunk>) -> Result<()> {
    loop {
        let mut buf = vec![0u8; 1 << 20];
        let n = match read_up_to(&mut save, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let err = anyhow::Error::new(e).context("reading `docker save` output");
                let _ = tx.send(Chunk::End(Err(anyhow::anyhow!("{err:#}"))));
                return Err(err);
            }
        };
        if n == 0 {
            let status = save.finish();
            let message = status.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"));
            let _ = tx.send(Chunk::End(message.map(|_| ())));
            return status;
        }
        buf.truncate(n);
        if tx.send(Chunk::Data(buf)).is_err() {
            // The parser stopped early; dropping `save` kills docker.
            return Ok(());
        }
    }
}

/// The parser's end of the reader thread's channel.
struct Pipe {
    rx: mpsc::Receiver<Chunk>,
    buf: Vec<u8>,
    pos: usize,
    total: u64,
    ended: bool,
}

impl Read for Pipe {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(data)) => {
                    self.total += data.len() as u64;
                    self.buf = data;
                    self.pos = 0;
                }
                Ok(Chunk::End(Ok(()))) | Err(_) => {
                    self.ended = true;
                }
                Ok(Chunk::End(Err(e))) => {
                    self.ended = true;
                    return Err(io::Error::other(format!("{e:#}")));
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Pipe {
    /// Reads past the end of the tar archive (docker may pad it) until the stream ends.
    fn finish(&mut self) -> Result<()> {
        io::copy(self, &mut io::sink()).context("reading the end of `docker save` output")?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The OCI layout documents.

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
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
pub(super) struct ManifestDoc {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
pub(super) struct IndexDoc {
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ConfigDoc {
    rootfs: RootFsDoc,
    #[serde(default)]
    pub history: Vec<HistoryDoc>,
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
    pub created_by: String,
    #[serde(default)]
    pub empty_layer: bool,
}

impl Layout {
    pub fn doc<T: for<'de> Deserialize<'de>>(&self, digest: &str) -> Option<Result<T>> {
        self.json.get(digest).map(|bytes| {
            serde_json::from_slice(bytes).with_context(|| format!("parsing blob {digest}"))
        })
    }

    /// The image manifest of an image ID: on the containerd store the ID is the digest of the
    /// manifest (or of an index, resolved to the image's platform); on the classic store it is
    /// the digest of the config.
    pub fn manifest_for(&self, inspect: &ImageInspect) -> Result<ManifestDoc> {
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

    fn image_facts(&self, store: Store, inspect: &ImageInspect) -> Result<ImageFacts> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn blob_paths_become_digests() {
        assert_eq!(
            blob_digest("blobs/sha256/abc").as_deref(),
            Some("sha256:abc")
        );
        assert_eq!(blob_digest("index.json"), None);
        assert_eq!(blob_digest("blobs/sha256/"), None);
        assert_eq!(blob_digest("blobs/sha256"), None);
    }

    #[test]
    fn digest_file_names_refuse_paths() {
        assert_eq!(
            digest_file_name("sha256:00ff").as_deref(),
            Some("sha256-00ff")
        );
        assert_eq!(digest_file_name("sha256:../../etc"), None);
        assert_eq!(digest_file_name("nocolon"), None);
    }

    #[test]
    fn gzip_blobs_are_counted_uncompressed() {
        let data = vec![42u8; 100_000];
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&data).unwrap();
        let gz = enc.finish().unwrap();
        let (facts, json, _) = measure_blob(gz.len() as u64, &mut &gz[..], false).unwrap();
        assert_eq!(facts.encoding, Encoding::Gzip);
        assert_eq!(facts.unpacked, Some(100_000));
        assert!(json.is_none());
    }

    #[test]
    fn plain_blobs_are_gzip_counted_when_asked() {
        let data = tar::tests::archive(&[("f", &[7u8; 50_000])]);
        let (facts, _, processed) = measure_blob(data.len() as u64, &mut &data[..], true).unwrap();
        assert_eq!(facts.encoding, Encoding::Plain);
        assert_eq!(facts.unpacked, Some(data.len() as u64));
        assert_eq!(processed, data.len() as u64);
        let gzip = facts.gzip.unwrap();
        assert_eq!(gzip, gzip_len(&mut &data[..]).unwrap());
        assert!(gzip < 1000, "{gzip}");
        let (facts, _, _) = measure_blob(data.len() as u64, &mut &data[..], false).unwrap();
        assert_eq!(facts.gzip, None);
    }

    #[test]
    fn json_blobs_are_kept() {
        let doc = br#"{"schemaVersion":2,"layers":[]}"#;
        let (facts, json, _) = measure_blob(doc.len() as u64, &mut &doc[..], false).unwrap();
        assert_eq!(facts.encoding, Encoding::Plain);
        assert_eq!(json.as_deref(), Some(&doc[..]));
    }

    #[test]
    fn zstd_blobs_have_no_unpacked_size() {
        let blob = [0x28, 0xb5, 0x2f, 0xfd, 0, 0];
        let (facts, _, _) = measure_blob(6, &mut &blob[..], false).unwrap();
        assert_eq!(facts.encoding, Encoding::Zstd);
        assert_eq!(facts.unpacked, None);
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
