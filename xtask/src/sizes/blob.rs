//! Sizing one blob: from a stream of its bytes (`docker save`, or a file read through) by what
//! its first bytes say it is — gzip (decompressed and counted), zstd, JSON metadata, or a plain
//! layer tar (gzip-compressed here when asked) — or, for a large gzip layer file of the content
//! store, from its gzip trailer.

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use flate2::{read::MultiGzDecoder, write::GzEncoder, Compression};
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};

use super::facts::{BlobFacts, Encoding, Stats, UnpackedFrom, COMPRESSOR, FACTS_VERSION};
use super::layout::{looks_like_json, Descriptor, MAX_JSON_BLOB};

const GZIP_LEVEL: u32 = 6;
/// Gzip layers smaller than this are decompressed (milliseconds) rather than sized from their
/// trailer.
const TRAILER_MIN: u64 = 4 << 20;
/// The gzip trailer's length field counts modulo 2^32.
const WRAP: u64 = 1 << 32;
/// Set by stargz/estargz layers, which are many gzip members: the trailer covers only the last.
const STARGZ_TOC: &str = "containerd.io/snapshot/stargz/toc.digest";

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
        // A zstd layer (a build with `compression=zstd` loaded into the store): counted through
        // the decoder, as gzip ones are.
        let unpacked = zstd_content_len(head.chain(body)).context("decompressing a zstd layer")?;
        facts.encoding = Encoding::Zstd;
        facts.unpacked = Some(unpacked);
        facts.unpacked_from = UnpackedFrom::Decompressed;
        return Ok((facts, None, unpacked));
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

/// The length of a zstd stream's content: each frame decoded and counted, skippable frames
/// skipped, as zstd's own decoder reads concatenated frames.
fn zstd_content_len(r: impl Read) -> Result<u64> {
    let mut r = BufReader::new(r);
    let mut decoder = FrameDecoder::new();
    let mut total = 0;
    while !r.fill_buf()?.is_empty() {
        match StreamingDecoder::new_with_decoder(&mut r, &mut decoder) {
            Ok(mut frame) => total += count(&mut frame)?,
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                io::copy(&mut (&mut r).take(length.into()), &mut io::sink())?;
            }
            Err(e) => return Err(e).context("reading a zstd frame"),
        }
    }
    Ok(total)
}

/// The length of `r` gzip-compressed at level 6 (a 10-byte header with no name, as Go's and
/// zlib's gzip writers make it, the deflate stream, and the 8-byte trailer).
pub(crate) fn gzip_len(r: &mut dyn Read) -> Result<u64> {
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

/// Facts of one layer blob from its file (of the content store): the trailer's length when it
/// can be trusted, else the gunzipped length.
pub(super) fn measure_file(
    mut file: File,
    path: &Utf8Path,
    desc: &Descriptor,
    decompress: bool,
    usage: &dyn Fn() -> Option<u64>,
    stats: &mut Stats,
) -> Result<BlobFacts> {
    let path = crate::util::shown(path);
    let size = file
        .metadata()
        .with_context(|| format!("reading the size of {path}"))?
        .len();
    if size != desc.size {
        bail!("{path} is {size} bytes but the manifest says {}", desc.size);
    }
    let mut head = [0u8; 2];
    let n = read_up_to(&mut file, &mut head).with_context(|| format!("reading {path}"))?;
    let gzip = n == 2 && head == [0x1f, 0x8b];
    if gzip && !decompress && size >= TRAILER_MIN && !desc.annotations.contains_key(STARGZ_TOC) {
        let mut trailer = [0u8; 4];
        file.seek(SeekFrom::End(-4))
            .and_then(|_| file.read_exact(&mut trailer))
            .with_context(|| format!("reading the gzip trailer of {path}"))?;
        let isize = u32::from_le_bytes(trailer);
        if let Some(unpacked) = usage().and_then(|u| unpacked_from_trailer(isize, size, u)) {
            stats.by_trailer += 1;
            return Ok(BlobFacts {
                version: FACTS_VERSION,
                size,
                encoding: Encoding::Gzip,
                unpacked: Some(unpacked),
                unpacked_from: UnpackedFrom::GzipTrailer,
                gzip: None,
                compressor: None,
            });
        }
    }
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("rewinding {path}"))?;
    let (facts, _, processed) =
        measure_blob(size, &mut BufReader::with_capacity(1 << 20, file), false)
            .with_context(|| format!("reading {path}"))?;
    if facts.unpacked_from == UnpackedFrom::Decompressed {
        stats.decompressed += 1;
        stats.processed += processed;
    }
    Ok(facts)
}

/// A gzip layer's unpacked length from its trailer's length field `isize` (the length modulo
/// 2^32), the blob's length, and the layer's disk usage as the engine reports it.
///
/// Of the candidates `isize + k·2^32`, the one nearest the disk usage is taken when it lies within
/// a quarter of the usage plus 16 MiB, and never more than 1 GiB, from it; the next candidate is
/// then at least 3 GiB away. A tar differs from the files' disk usage by its 512-byte headers
/// and padding against file-system blocks, which is far less. Anything else gives None, and the
/// caller decompresses: a layer whose usage is unknown or far off (sparse files, many empty files),
/// or a blob of several gzip members (whose trailer counts only the last).
pub(crate) fn unpacked_from_trailer(isize: u32, compressed: u64, usage: u64) -> Option<u64> {
    let base = u64::from(isize);
    let k = if usage > base {
        (usage - base + WRAP / 2) / WRAP
    } else {
        0
    };
    let unpacked = base + k * WRAP;
    let tolerance = (usage / 4 + (16 << 20)).min(1 << 30);
    if unpacked.abs_diff(usage) > tolerance {
        return None;
    }
    // Deflate adds at most 5 bytes per 64 KiB stored block (plus gzip's 18 header and trailer
    // bytes) and compresses at most 1032:1.
    let expanded_max = unpacked + unpacked / 8192 + 1024;
    let ratio_max = compressed.saturating_mul(1032) + 1024;
    (compressed <= expanded_max && unpacked <= ratio_max).then_some(unpacked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruzstd::encoding::CompressionLevel;

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
        // A layer tar of one file.
        let mut layer = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(50_000);
        header.set_mode(0o644);
        layer
            .append_data(&mut header, "f", &[7u8; 50_000][..])
            .unwrap();
        let data = layer.into_inner().unwrap();
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
    fn zstd_blobs_are_counted_through_the_decoder() {
        let tar = b"a layer tar, or as good as one\n".repeat(4_000);
        let frame = ruzstd::encoding::compress_to_vec(&tar[..], CompressionLevel::Fastest);
        // Two frames with a skippable one between them, as zstd's format allows.
        let skippable = [
            &0x184D_2A50u32.to_le_bytes()[..],
            &3u32.to_le_bytes(),
            b"abc",
        ]
        .concat();
        let blob = [&frame[..], &skippable, &frame].concat();
        let (facts, _, processed) = measure_blob(blob.len() as u64, &mut &blob[..], false).unwrap();
        assert_eq!(facts.encoding, Encoding::Zstd);
        assert_eq!(facts.unpacked, Some(2 * tar.len() as u64));
        assert_eq!(processed, 2 * tar.len() as u64);
        // Not zstd after all: an error, not a guess.
        let broken = [0x28, 0xb5, 0x2f, 0xfd, 0, 0];
        assert!(measure_blob(6, &mut &broken[..], false).is_err());
    }

    #[test]
    fn trailer_lengths_below_4_gib_are_taken_as_they_are() {
        // The offline Debian base layer, as measured here: tar 83,277,312 bytes, usage 90,357,760.
        assert_eq!(
            unpacked_from_trailer(83_277_312, 32_363_305, 90_357_760),
            Some(83_277_312)
        );
    }

    #[test]
    fn trailer_lengths_above_4_gib_are_unwrapped_by_the_disk_usage() {
        // The cuda image's venv layer, as measured here by decompressing it: 4,404,654,080
        // bytes, whose trailer says 109,686,784 (= 4,404,654,080 − 2^32); usage 4,426,956,800.
        assert_eq!(
            unpacked_from_trailer(109_686_784, 2_779_927_323, 4_426_956_800),
            Some(4_404_654_080)
        );
        // Two wraps.
        let truth = 2 * WRAP + 5_000_000;
        assert_eq!(
            unpacked_from_trailer(5_000_000, 3_000_000_000, truth + 40_000_000),
            Some(truth)
        );
    }

    #[test]
    fn doubtful_trailers_are_refused() {
        // Usage unknown (0) or far from every candidate.
        assert_eq!(unpacked_from_trailer(83_277_312, 32_363_305, 0), None);
        assert_eq!(
            unpacked_from_trailer(83_277_312, 32_363_305, 900_000_000),
            None
        );
        // Midway between two candidates: the nearest is over 1 GiB away.
        assert_eq!(
            unpacked_from_trailer(0, 3_000_000_000, WRAP + WRAP / 2),
            None
        );
        // A trailer that counts less than the compressed bytes (the last of several members).
        assert_eq!(
            unpacked_from_trailer(1_000_000, 50_000_000, 1_100_000),
            None
        );
        // More than deflate's 1032:1 from a tiny blob.
        assert_eq!(unpacked_from_trailer(80_000_000, 5_000, 80_000_000), None);
    }
}
