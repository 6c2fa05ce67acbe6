//! The `docker save` path of `sizes`, for any engine and user: one `docker save` of every image
//! not yet measured, read as a stream (nothing lands on disk) on a second thread, so that the
//! engine writes while this one decompresses; each blob of the saved OCI layout is measured as
//! it passes. On the classic store the layer tars are gzip-compressed here.

use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::io::{self, Read};
use std::sync::mpsc;
use tar::EntryType;

use super::blob::{measure_blob, read_up_to};
use super::cache::Cache;
use super::facts::{Encoding, Stats, Store, UnpackedFrom, Wanted, COMPRESSOR};
use super::layout::{looks_like_json, Layout, MAX_JSON_BLOB};
use crate::docker;

/// The layout of the `todo` images from one `docker save`.
pub(super) fn read_layout(
    store: Store,
    todo: &[&Wanted],
    cache: &Cache,
    stats: &mut Stats,
) -> Result<Layout> {
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
    read_stream(docker::save(&refs)?, &to_compress, cache, stats)
        .with_context(|| format!("reading `docker save {}`", refs.join(" ")))
}

/// Reads a `docker save` stream to the end (on a second thread, so that the engine writes while
/// this one decompresses) and measures each blob.
fn read_stream(
    save: docker::TarStream,
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
    let parsed = read_blobs(&mut pipe, to_compress, cache, stats, &mut layout);
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

/// Measures each blob of a saved OCI layout (a tar stream) as it passes: the `tar` crate hands
/// out each member as a reader bounded to it (PAX and GNU long names and sizes applied) and
/// skips whatever is left unread.
fn read_blobs(
    input: impl Read,
    to_compress: &BTreeSet<String>,
    cache: &Cache,
    stats: &mut Stats,
    layout: &mut Layout,
) -> Result<()> {
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().context("reading the tar stream")? {
        let mut entry = entry.context("reading the tar stream")?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(digest) = blob_digest(&path) else {
            continue;
        };
        if !matches!(
            entry.header().entry_type(),
            EntryType::Regular | EntryType::Continuous
        ) {
            continue;
        }
        let size = entry.size();
        read_blob(&digest, size, &mut entry, to_compress, cache, stats, layout)
            .with_context(|| format!("reading `{path}`"))?;
    }
    Ok(())
}

/// Measures one blob (or takes its facts from the cache) into the layout.
fn read_blob(
    digest: &str,
    size: u64,
    body: &mut dyn Read,
    to_compress: &BTreeSet<String>,
    cache: &Cache,
    stats: &mut Stats,
    layout: &mut Layout,
) -> Result<()> {
    let cached = cache.blob(digest).filter(|b| {
        b.size == size
            && (!to_compress.contains(digest)
                || b.encoding != Encoding::Plain
                || b.compressor.as_deref() == Some(COMPRESSOR))
    });
    let (facts, json) = match cached {
        Some(facts) => (facts, None),
        None => {
            let (facts, json, processed) = measure_blob(size, body, to_compress.contains(digest))?;
            stats.processed += processed;
            if json.is_none() {
                if facts.unpacked_from == UnpackedFrom::Decompressed {
                    stats.decompressed += 1;
                }
                layout.new_blobs.insert(digest.to_string(), facts.clone());
            }
            (facts, json)
        }
    };
    // A cached blob that may be JSON metadata is read again: manifests are tiny.
    let json = match json {
        Some(json) => Some(json),
        None if facts.encoding == Encoding::Plain && size <= MAX_JSON_BLOB => {
            let mut buf = Vec::new();
            body.read_to_end(&mut buf)?;
            looks_like_json(&buf).then_some(buf)
        }
        None => None,
    };
    if let Some(json) = json {
        layout.json.insert(digest.to_string(), json);
    }
    layout.blobs.insert(digest.to_string(), facts);
    Ok(())
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

enum Chunk {
    Data(Vec<u8>),
    End(Result<()>),
}

/// The reader thread: forwards `docker save` output in 1 MiB chunks, then its exit status.
/// Returns docker's failure, if any, so that it can be reported first.
fn pump(mut save: docker::TarStream, tx: mpsc::SyncSender<Chunk>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    use tar::{Builder, Header};

    fn file(size: usize) -> Header {
        let mut header = Header::new_gnu();
        header.set_size(size as u64);
        header.set_mode(0o644);
        header.set_entry_type(EntryType::Regular);
        header
    }

    /// A saved layout as docker writes one (directories, `index.json`, blobs), with one blob
    /// named by a GNU long name and one by a PAX `path` record.
    fn saved_layout(blobs: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Builder::new(Vec::new());
        let mut dir = Header::new_gnu();
        dir.set_entry_type(EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        out.append_data(&mut dir, "blobs/sha256/", io::empty())
            .unwrap();
        out.append_data(&mut file(2), "index.json", &b"{}"[..])
            .unwrap();
        for (i, (path, body)) in blobs.iter().enumerate() {
            if i == 0 {
                // PAX: the ustar name is a placeholder, the record holds the real path.
                let record = format!(" path={path}\n");
                let mut len = record.len() + 2;
                while len.to_string().len() + record.len() != len {
                    len += 1;
                }
                let pax = format!("{len}{record}");
                let mut header = file(pax.len());
                header.set_entry_type(EntryType::XHeader);
                out.append_data(&mut header, "PaxHeaders/0", pax.as_bytes())
                    .unwrap();
                out.append_data(&mut file(body.len()), "placeholder", *body)
                    .unwrap();
            } else {
                // Names over 100 bytes get a GNU long-name entry from the builder.
                out.append_data(&mut file(body.len()), path, *body).unwrap();
            }
        }
        out.into_inner().unwrap()
    }

    #[test]
    fn every_blob_of_a_saved_layout_is_measured_and_json_kept() {
        let manifest = br#"{"schemaVersion":2,"layers":[]}"#;
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&[9u8; 70_000]).unwrap();
        let gz = gz.finish().unwrap();
        let layer_tar = vec![0u8; 3 * 512];
        let long = format!("sha256:{}", "ab".repeat(60));
        let data = saved_layout(&[
            ("blobs/sha256/m", manifest),
            (&format!("blobs/{}", long.replace(':', "/")), &gz),
            ("blobs/sha256/t", &layer_tar),
        ]);
        let cache = Cache::new("/nonexistent".into(), false, true);
        let mut stats = Stats::default();
        let mut layout = Layout::default();
        read_blobs(&data[..], &BTreeSet::new(), &cache, &mut stats, &mut layout).unwrap();
        assert_eq!(
            layout.blobs.keys().collect::<Vec<_>>(),
            [&long, "sha256:m", "sha256:t"]
        );
        assert_eq!(
            layout.json.get("sha256:m").map(Vec::as_slice),
            Some(&manifest[..])
        );
        assert_eq!(layout.blobs[&long].encoding, Encoding::Gzip);
        assert_eq!(layout.blobs[&long].unpacked, Some(70_000));
        // The layer tar was left unread past its first bytes; the reader skipped the rest.
        assert_eq!(layout.blobs["sha256:t"].unpacked, Some(3 * 512));
        assert_eq!(layout.blobs["sha256:t"].encoding, Encoding::Plain);
        assert_eq!(stats.decompressed, 1);
        assert_eq!(stats.processed, 70_000);
        // The JSON blob is not cached; the two layer blobs are.
        assert_eq!(layout.new_blobs.len(), 2);
    }

    #[test]
    fn a_truncated_stream_is_an_error() {
        let data = saved_layout(&[("blobs/sha256/t", &[1u8; 4000])]);
        let cut = &data[..data.len() - 1024 - 3000];
        let cache = Cache::new("/nonexistent".into(), false, true);
        let err = read_blobs(
            cut,
            &BTreeSet::new(),
            &cache,
            &mut Stats::default(),
            &mut Layout::default(),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("reading the tar stream"),
            "{err:#}"
        );
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
}
