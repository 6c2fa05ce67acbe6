//! The `docker save` path of `sizes`, for any engine and user: one `docker save` of every image
//! not yet measured, read as a stream (nothing lands on disk) on a second thread, so that the
//! engine writes while this one decompresses; each blob of the saved OCI layout is measured as
//! it passes. On the classic store the layer tars are gzip-compressed here.

use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::io::{self, Read};
use std::sync::mpsc;

use super::blob::{measure_blob, read_up_to};
use super::cache::Cache;
use super::facts::{Encoding, Stats, Store, UnpackedFrom, Wanted, COMPRESSOR};
use super::layout::{looks_like_json, Layout, MAX_JSON_BLOB};
use super::tar;
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

#[cfg(test)]
mod tests {
    use super::*;

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
