//! A minimal streaming tar reader for `docker save` output: ustar headers, octal and base-256
//! sizes, PAX (`x`) and GNU long-name (`L`) records. Each entry's body is handed to a visitor as
//! a reader bounded to the entry; whatever the visitor leaves unread is skipped.

use anyhow::{bail, Context, Result};
use std::io::{self, Read};

const BLOCK: usize = 512;

/// One archive member as the visitor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    /// The ustar type flag: `b'0'` (or 0) for a regular file, `b'5'` for a directory, ….
    pub kind: u8,
}

impl Entry {
    pub fn is_file(&self) -> bool {
        matches!(self.kind, b'0' | 0 | b'7')
    }
}

/// Reads every member of a tar stream, calling `visit` with each entry (directories and links
/// included) and a reader over its body.
pub fn for_each<R: Read>(
    mut input: R,
    mut visit: impl FnMut(&Entry, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let mut long_name: Option<String> = None;
    let mut pax_path: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    loop {
        let mut header = [0u8; BLOCK];
        if !read_block(&mut input, &mut header)? || header.iter().all(|&b| b == 0) {
            // End of archive: two zero blocks, or a stream that simply ends.
            return Ok(());
        }
        check_checksum(&header)?;
        let kind = header[156];
        let size = match pax_size.take() {
            Some(size) => size,
            None => parse_size(&header[124..136])?,
        };
        match kind {
            b'x' | b'g' | b'L' => {
                let mut body = Vec::new();
                (&mut input)
                    .take(size)
                    .read_to_end(&mut body)
                    .context("reading a tar extension header")?;
                if body.len() as u64 != size {
                    bail!("the tar stream ends inside an extension header");
                }
                skip(&mut input, padding(size))?;
                match kind {
                    b'x' => {
                        for (key, value) in parse_pax(&body)? {
                            match key.as_str() {
                                "path" => pax_path = Some(value),
                                "size" => {
                                    pax_size = Some(value.parse().with_context(|| {
                                        format!("bad PAX size `{value}` in the tar stream")
                                    })?)
                                }
                                _ => {}
                            }
                        }
                    }
                    b'L' => {
                        let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
                        long_name = Some(String::from_utf8_lossy(&body[..end]).into_owned());
                    }
                    _ => {} // global PAX headers carry nothing this reader needs
                }
                continue;
            }
            _ => {}
        }
        let path = match pax_path.take().or_else(|| long_name.take()) {
            Some(path) => path,
            None => ustar_path(&header),
        };
        let entry = Entry { path, size, kind };
        // Hard links, symlinks and directories have no body whatever their size field says.
        let body_len = if matches!(kind, b'1' | b'2' | b'5') {
            0
        } else {
            size
        };
        let mut body = (&mut input).take(body_len);
        visit(&entry, &mut body).with_context(|| format!("reading `{}`", entry.path))?;
        io::copy(&mut body, &mut io::sink()).context("reading the tar stream")?;
        if body.limit() != 0 {
            bail!(
                "the tar stream ends inside `{}` ({} of {} bytes missing)",
                entry.path,
                body.limit(),
                body_len
            );
        }
        skip(&mut input, padding(body_len))?;
    }
}

/// Fills `block`; false at a clean end of stream (no byte read).
fn read_block<R: Read>(input: &mut R, block: &mut [u8; BLOCK]) -> Result<bool> {
    let mut filled = 0;
    while filled < BLOCK {
        match input.read(&mut block[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => bail!("the tar stream ends inside a header"),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the tar stream"),
        }
    }
    Ok(true)
}

fn skip<R: Read>(input: &mut R, n: u64) -> Result<()> {
    let skipped =
        io::copy(&mut input.take(n), &mut io::sink()).context("reading the tar stream")?;
    if skipped != n {
        bail!("the tar stream ends inside padding");
    }
    Ok(())
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn check_checksum(header: &[u8; BLOCK]) -> Result<()> {
    let stored = parse_octal(&header[148..156])
        .map_err(|_| anyhow::anyhow!("not a tar stream (the header has no checksum)"))?;
    let sum: u64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(b)
            }
        })
        .sum();
    if sum != stored {
        bail!("not a tar stream (header checksum {stored} does not match {sum})");
    }
    Ok(())
}

/// A size field: octal ASCII, or GNU base-256 when the high bit of the first byte is set.
fn parse_size(field: &[u8]) -> Result<u64> {
    if field[0] & 0x80 != 0 {
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .context("tar entry size overflows 64 bits")?;
        }
        return Ok(value);
    }
    parse_octal(field).context("bad tar entry size")
}

fn parse_octal(field: &[u8]) -> Result<u64> {
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).with_context(|| format!("`{text}` is not an octal number"))
}

fn ustar_path(header: &[u8; BLOCK]) -> String {
    let field = |range: std::ops::Range<usize>| {
        let bytes = &header[range];
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let name = field(0..100);
    let prefix = if &header[257..262] == b"ustar" {
        field(345..500)
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// PAX records: `"<len> <key>=<value>\n"`, where len counts the whole record.
fn parse_pax(body: &[u8]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .context("bad PAX record (no length)")?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .context("bad PAX record length")?;
        if len <= space + 1 || len > rest.len() {
            bail!("bad PAX record length {len}");
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let text = String::from_utf8_lossy(record);
        if let Some((key, value)) = text.split_once('=') {
            out.push((key.to_string(), value.to_string()));
        }
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ustar header block for tests (and for building tiny archives in other unit tests).
    pub fn header(path: &str, size: u64, kind: u8) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..path.len()].copy_from_slice(path.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    /// A tar archive of regular files.
    pub fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, body) in files {
            out.extend_from_slice(&header(path, body.len() as u64, b'0'));
            out.extend_from_slice(body);
            out.resize(out.len() + padding(body.len() as u64) as usize, 0);
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }

    fn entries(data: &[u8]) -> Vec<(Entry, Vec<u8>)> {
        let mut seen = Vec::new();
        for_each(data, |e, body| {
            let mut buf = Vec::new();
            body.read_to_end(&mut buf)?;
            seen.push((e.clone(), buf));
            Ok(())
        })
        .unwrap();
        seen
    }

    #[test]
    fn reads_files_and_skips_padding() {
        let data = archive(&[("blobs/sha256/aa", b"hello"), ("index.json", b"{}")]);
        let seen = entries(&data);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0.path, "blobs/sha256/aa");
        assert_eq!(seen[0].1, b"hello");
        assert_eq!(seen[1].0.path, "index.json");
        assert_eq!(seen[1].1, b"{}");
        assert!(seen[0].0.is_file());
    }

    #[test]
    fn unread_bodies_are_skipped() {
        let data = archive(&[("a", &[7u8; 1500]), ("b", b"x")]);
        let mut names = Vec::new();
        for_each(&data[..], |e, _| {
            names.push(e.path.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn pax_size_and_path_apply_to_the_next_entry() {
        // A record's length counts its own digits.
        let record = |key: &str, value: &str| {
            let body = format!(" {key}={value}\n");
            let mut len = body.len() + 1;
            while len.to_string().len() + body.len() != len {
                len += 1;
            }
            format!("{len}{body}")
        };
        let pax = record("path", "blobs/sha256/long-name") + &record("size", "3");
        let mut data = Vec::new();
        data.extend_from_slice(&header("PaxHeader", pax.len() as u64, b'x'));
        data.extend_from_slice(pax.as_bytes());
        data.resize(data.len() + padding(pax.len() as u64) as usize, 0);
        // The ustar size field says 0; the PAX record says 3.
        data.extend_from_slice(&header("short", 0, b'0'));
        data.extend_from_slice(b"abc");
        data.resize(data.len() + padding(3) as usize + 2 * BLOCK, 0);
        let seen = entries(&data);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0.path, "blobs/sha256/long-name");
        assert_eq!(seen[0].1, b"abc");
    }

    #[test]
    fn base256_sizes_parse() {
        // 10 GB does not fit the 11 octal digits of ustar (8 GiB): GNU tar writes base-256.
        let value: u64 = 10_000_000_000;
        let mut field = [0u8; 12];
        field[4..].copy_from_slice(&value.to_be_bytes());
        field[0] = 0x80;
        assert_eq!(parse_size(&field).unwrap(), value);
        assert_eq!(parse_size(b"00000000012\0").unwrap(), 10);
    }

    #[test]
    fn garbage_is_not_a_tar_stream() {
        let data = vec![b'x'; 1024];
        let err = for_each(&data[..], |_, _| Ok(())).unwrap_err().to_string();
        assert!(err.contains("not a tar stream"), "{err}");
    }

    #[test]
    fn truncated_body_is_an_error() {
        let mut data = archive(&[("a", &[1u8; 600])]);
        data.truncate(BLOCK + 100);
        assert!(for_each(&data[..], |_, _| Ok(())).is_err());
    }
}
