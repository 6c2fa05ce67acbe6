//! One layer's files as its tar records them: type, mode, owner, size, mtime, link target,
//! extended attributes, and the sha256 of the content. gzip, zstd or plain, told by its first bytes.

use anyhow::{Context, Result};
use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

/// A file of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FileFacts {
    /// `file`, `dir`, `symlink`, `hardlink`, `char`, `block`, `fifo`.
    pub(crate) kind: &'static str,
    /// Permission bits and set-ID bits, octal.
    pub(crate) mode: String,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) size: u64,
    pub(crate) mtime: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) link: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) xattrs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sha256: Option<String>,
}

/// A layer's files by absolute path (`/etc/passwd`); whiteouts (`.wh.*`) are files like others.
pub(crate) type Files = BTreeMap<String, FileFacts>;

/// Reads a layer blob to the end.
pub(crate) fn read(blob: impl Read) -> Result<Files> {
    let mut tar = tar::Archive::new(decoder(blob)?);
    let mut files = Files::new();
    for entry in tar.entries().context("reading the layer as a tar")? {
        let mut entry = entry.context("reading the layer as a tar")?;
        let path = absolute(&entry.path()?.to_string_lossy());
        let facts = facts(&mut entry).with_context(|| format!("reading {path}"))?;
        files.insert(path, facts);
    }
    Ok(files)
}

/// The content of a zstd stream of one frame or several, one after the other (ruzstd, pure Rust,
/// decodes one frame at a time).
struct ZstdFrames<R: BufRead> {
    input: Option<R>,
    frame: Option<StreamingDecoder<R, FrameDecoder>>,
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(frame) = &mut self.frame {
                match frame.read(buf)? {
                    0 => self.input = self.frame.take().map(StreamingDecoder::into_inner),
                    n => return Ok(n),
                }
            }
            let Some(mut input) = self.input.take() else {
                return Ok(0);
            };
            if input.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let frame = StreamingDecoder::new_with_decoder(input, FrameDecoder::new())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            self.frame = Some(frame);
        }
    }
}

fn decoder<'a>(blob: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(1 << 20, blob);
    let head = buffered.fill_buf().context("reading the layer")?;
    Ok(match head {
        [0x1f, 0x8b, ..] => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(ZstdFrames {
            input: Some(buffered),
            frame: None,
        }),
        _ => Box::new(buffered),
    })
}

fn facts<R: Read>(entry: &mut tar::Entry<R>) -> Result<FileFacts> {
    let header = entry.header();
    let kind = kind(header.entry_type());
    let mode = format!("{:04o}", header.mode()? & 0o7777);
    let (uid, gid, mtime) = (header.uid()?, header.gid()?, header.mtime()?);
    let link = entry
        .link_name()?
        .map(|l| l.to_string_lossy().into_owned())
        .map(|l| if kind == "hardlink" { absolute(&l) } else { l });
    let xattrs = xattrs(entry)?;
    let size = entry.size();
    let sha256 = if kind == "file" {
        Some(sha256(entry).context("reading the content")?)
    } else {
        None
    };
    Ok(FileFacts {
        kind,
        mode,
        uid,
        gid,
        size,
        mtime,
        link,
        xattrs,
        sha256,
    })
}

/// `sha256:<hex>` of everything `reader` gives.
fn sha256(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(crate::registry::serve::digest(hasher)),
            n => hasher.update(&buf[..n]),
        }
    }
}

/// PAX `SCHILY.xattr.NAME` records: the name and its value (text where it is UTF-8, else hex).
fn xattrs<R: Read>(entry: &mut tar::Entry<R>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(extensions) = entry.pax_extensions()? else {
        return Ok(out);
    };
    for ext in extensions {
        let ext = ext?;
        let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) else {
            continue;
        };
        let value = match std::str::from_utf8(ext.value_bytes()) {
            Ok(text) => text.to_string(),
            Err(_) => ext
                .value_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        };
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

fn kind(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Directory => "dir",
        tar::EntryType::Symlink => "symlink",
        tar::EntryType::Link => "hardlink",
        tar::EntryType::Char => "char",
        tar::EntryType::Block => "block",
        tar::EntryType::Fifo => "fifo",
        _ => "file",
    }
}

/// `/`-rooted, without `./` or a trailing `/`: `opt/venv/` → `/opt/venv`.
pub(crate) fn absolute(path: &str) -> String {
    let trimmed = path.trim_start_matches("./").trim_matches('/');
    format!("/{trimmed}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, &[u8], u64)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data, mtime) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(*mtime);
            header.set_uid(0);
            header.set_gid(0);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_layer_lists_its_files_with_their_facts() {
        let tar = layer(&[("./stamp", b"Fri\n", 7), ("etc/x", b"", 0)]);
        let files = read(&tar[..]).unwrap();
        let stamp = &files["/stamp"];
        assert_eq!(
            (stamp.kind, stamp.mode.as_str(), stamp.mtime),
            ("file", "0644", 7)
        );
        assert_eq!(stamp.size, 4);
        let want = crate::registry::serve::digest(Sha256::new().chain_update(b"Fri\n"));
        assert_eq!(stamp.sha256.as_deref(), Some(want.as_str()));
        assert!(files.contains_key("/etc/x"));
        // gzip-compressed, the same files.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        assert_eq!(read(&gz.finish().unwrap()[..]).unwrap(), files);
        // zstd, in two frames: the same files.
        use ruzstd::encoding::{compress_to_vec, CompressionLevel};
        let (head, rest) = tar.split_at(700);
        let mut zst = compress_to_vec(head, CompressionLevel::Fastest);
        zst.extend(compress_to_vec(rest, CompressionLevel::Fastest));
        assert_eq!(read(&zst[..]).unwrap(), files);
    }

    #[test]
    fn paths_are_rooted_and_trimmed() {
        assert_eq!(absolute("./opt/venv/"), "/opt/venv");
        assert_eq!(absolute("stamp"), "/stamp");
    }
}
