//! Blob uploads into the bench's registry: the bytes go out as they come (one chunked PATCH),
//! hashed on the way, so no blob is held in memory or on disk.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::net::TcpStream;

pub use xtask::registry::serve::digest;
use xtask::registry::serve::{connect, read_response, request, LocalRegistry};

/// Starts a blob upload to `repo`: write the blob into it, then [`BlobUpload::finish`].
pub fn upload(registry: &LocalRegistry, repo: &str) -> Result<BlobUpload> {
    let started = registry
        .request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[])
        .with_context(|| format!("starting a blob upload to {}", registry.repo(repo)))?;
    let location = started.location(202, "POST blobs/uploads")?;
    let mut stream = connect(&registry.host).context("connecting to the registry")?;
    write!(
        stream,
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        registry.host
    )
    .context("sending the upload's head")?;
    Ok(BlobUpload {
        host: registry.host.clone(),
        stream,
        buf: Vec::with_capacity(CHUNK),
        hasher: Sha256::new(),
        size: 0,
    })
}

/// Bytes sent per HTTP chunk.
const CHUNK: usize = 1 << 20;

/// A blob on its way into the registry (see [`upload`]).
pub struct BlobUpload {
    host: String,
    stream: TcpStream,
    buf: Vec<u8>,
    hasher: Sha256,
    size: u64,
}

/// A blob the registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:…`
    pub digest: String,
    pub size: u64,
}

impl BlobUpload {
    fn send_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        write!(self.stream, "{:x}\r\n", self.buf.len())?;
        self.stream.write_all(&self.buf)?;
        self.stream.write_all(b"\r\n")?;
        self.buf.clear();
        Ok(())
    }

    /// Ends the upload: the last chunk, then the PUT that names the digest (the registry checks
    /// it against what it received).
    pub fn finish(mut self) -> Result<Blob> {
        self.send_chunk()
            .and_then(|()| self.stream.write_all(b"0\r\n\r\n"))
            .context("sending the blob")?;
        let patched = read_response(&mut self.stream).context("reading the upload's answer")?;
        let location = patched.location(202, "PATCH of the blob")?;
        let digest = digest(std::mem::take(&mut self.hasher));
        let sep = if location.contains('?') { '&' } else { '?' };
        let done = request(
            &self.host,
            "PUT",
            &format!("{location}{sep}digest={digest}"),
            &[],
            &[],
        )
        .context("completing the blob upload")?;
        if done.status != 201 {
            bail!(
                "the registry did not accept blob {digest} ({}): {}",
                done.status,
                String::from_utf8_lossy(&done.body).trim()
            );
        }
        Ok(Blob {
            digest,
            size: self.size,
        })
    }
}

impl Write for BlobUpload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_chunk()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
