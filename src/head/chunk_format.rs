//! The head chunk file format (brief §1.12; Prometheus `tsdb/chunks/head_chunks.go`,
//! `tsdb/docs/format/head_chunks.md`): file header and entries, encoded and decoded without
//! I/O. Decoding never panics on any input.

use std::path::Path;

use crate::encoding::{crc32c, put_uvarint, uvarint_len};
use crate::error::{Error, Result};

/// File magic (§1.12).
pub(crate) const MAGIC: u32 = 0x0130_BC91;
/// The only format version.
pub(crate) const VERSION: u8 = 1;
/// Magic, version and 3 bytes of padding.
pub(crate) const FILE_HEADER_SIZE: usize = 8;
/// Series ref, mint, maxt, encoding, the longest uvarint32 length, CRC: fewer bytes than this
/// left in a file can hold no entry, and must be zero padding.
pub(crate) const MAX_ENTRY_OVERHEAD: usize = 8 + 8 + 8 + 1 + 5 + 4;

/// Bytes of the entry of a `data_len`-byte chunk, CRC included.
pub(crate) fn entry_len(data_len: usize) -> usize {
    25 + uvarint_len(data_len as u64) + data_len + 4
}

/// Appends the entry of an XOR chunk of series `series_ref` over `[min_t, max_t]` to `buf`.
#[cfg(test)]
pub(crate) fn encode_entry(
    buf: &mut Vec<u8>,
    series_ref: u64,
    min_t: i64,
    max_t: i64,
    data: &[u8],
) {
    let xor = crate::chunkenc::Encoding::Xor.as_u8();
    encode_entry_as(buf, series_ref, min_t, max_t, xor, data)
}

/// Bit 7 of an entry's encoding byte: the chunk holds out-of-order samples (§1.12;
/// Prometheus `chunkenc.OutOfOrderMask`), so `0x81` is an out-of-order XOR chunk.
pub(crate) const OUT_OF_ORDER_FLAG: u8 = 0x80;

/// [`encode_entry`] with the encoding byte given (`0x81` for an out-of-order XOR chunk).
pub(crate) fn encode_entry_as(
    buf: &mut Vec<u8>,
    series_ref: u64,
    min_t: i64,
    max_t: i64,
    encoding: u8,
    data: &[u8],
) {
    let start = buf.len();
    buf.extend_from_slice(&series_ref.to_be_bytes());
    buf.extend_from_slice(&min_t.to_be_bytes());
    buf.extend_from_slice(&max_t.to_be_bytes());
    buf.push(encoding);
    put_uvarint(buf, data.len() as u64);
    buf.extend_from_slice(data);
    let crc = crc32c(&buf[start..]);
    buf.extend_from_slice(&crc.to_be_bytes());
}

/// One decoded entry of a chunk file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) series_ref: u64,
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) encoding: u8,
    /// Offset of the payload from the start of the entry.
    pub(crate) data_start: usize,
    pub(crate) data_len: usize,
    /// Length of the whole entry, CRC included.
    pub(crate) total_len: usize,
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// Decodes the entry at the start of `b` (which runs to the end of the readable data).
/// `Ok(None)` is the end of the data (§1.12: an all-zero ref/mint/maxt triple, or a short
/// all-zero tail). Errors give the offset relative to `b` and the reason.
pub(crate) fn decode_entry(b: &[u8]) -> std::result::Result<Option<Entry>, (usize, String)> {
    if b.len() < MAX_ENTRY_OVERHEAD && b.iter().all(|&x| x == 0) {
        return Ok(None);
    }
    let truncated = || {
        (
            0,
            format!(
                "{} trailing bytes are neither a whole entry nor zero padding",
                b.len()
            ),
        )
    };
    if b.len() < 24 {
        return Err(truncated());
    }
    let series_ref = be64(b, 0);
    let min_t = be64(b, 8) as i64;
    let max_t = be64(b, 16) as i64;
    // Files may be preallocated: a zero ref/mint/maxt triple ends the data (refs start at 1).
    if series_ref == 0 && min_t == 0 && max_t == 0 {
        return Ok(None);
    }
    let encoding = *b.get(24).ok_or_else(truncated)?;
    let mut len = 0u64;
    let mut shift = 0;
    let mut pos = 25;
    loop {
        let byte = *b.get(pos).ok_or_else(truncated)?;
        pos += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            break;
        }
        shift += 7;
        if pos == 30 {
            return Err((25, "chunk length varint is longer than 5 bytes".into()));
        }
    }
    let data_start = pos;
    let available = b.len() - data_start;
    if len + 4 > available as u64 {
        return Err((
            0,
            format!("chunk of {len} bytes and its CRC run past the end of the data ({available} bytes left)"),
        ));
    }
    let data_len = len as usize;
    let end = data_start + data_len;
    let want = u32::from_be_bytes([b[end], b[end + 1], b[end + 2], b[end + 3]]);
    let got = crc32c(&b[..end]);
    if want != got {
        return Err((
            0,
            format!("CRC32C mismatch: stored {want:#010x}, computed {got:#010x}"),
        ));
    }
    if series_ref == 0 {
        return Err((0, "chunk of series ref 0".into()));
    }
    if min_t > max_t {
        return Err((
            8,
            format!("chunk min time {min_t} after its max time {max_t}"),
        ));
    }
    Ok(Some(Entry {
        series_ref,
        min_t,
        max_t,
        encoding,
        data_start,
        data_len,
        total_len: end + 4,
    }))
}

/// Checks a file's 8-byte header. `Ok(false)`: the file holds no header (empty or zero),
/// which for the last file is a cut interrupted by a crash.
pub(crate) fn check_header(b: &[u8]) -> std::result::Result<bool, String> {
    let head = &b[..b.len().min(FILE_HEADER_SIZE)];
    if head.iter().all(|&x| x == 0) {
        return Ok(false);
    }
    if b.len() < FILE_HEADER_SIZE {
        return Err(format!(
            "file of {} bytes is shorter than its header",
            b.len()
        ));
    }
    let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if magic != MAGIC {
        return Err(format!("bad magic {magic:#010x}, want {MAGIC:#010x}"));
    }
    if b[4] != VERSION {
        return Err(format!("unsupported version {}", b[4]));
    }
    Ok(true)
}

/// Iterates the entries of a whole file's bytes, calling `f(offset, entry)` for each; returns
/// the corruption (offset, reason) that ended it early, if any. `b` must start with a valid
/// header (see [`check_header`]).
pub(crate) fn for_each_entry(
    b: &[u8],
    mut f: impl FnMut(usize, &Entry),
) -> std::result::Result<(), (usize, String)> {
    let mut at = FILE_HEADER_SIZE;
    while at < b.len() {
        match decode_entry(&b[at..]) {
            Ok(Some(e)) => {
                f(at, &e);
                at += e.total_len;
            }
            Ok(None) => return Ok(()),
            Err((rel, reason)) => return Err((at + rel, reason)),
        }
    }
    Ok(())
}

/// One chunk of a head chunk file, as the file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadChunk {
    /// `file_number << 32 | offset of the entry` (Prometheus `ChunkDiskMapperRef`).
    pub chunk_ref: u64,
    /// The series' head reference (the ref of its WAL series record).
    pub series_ref: u64,
    /// Time of the first sample.
    pub min_time: i64,
    /// Time of the last sample.
    pub max_time: i64,
    /// Encoding byte (§1.6; bit 7 marks an out-of-order chunk).
    pub encoding: u8,
    /// Where the payload is in the file's bytes.
    pub data: std::ops::Range<usize>,
}

/// Decodes a whole head chunk file (§1.12) numbered `file_number`: the header, then every
/// entry (CRC-checked) up to the end of the data. Never panics; damage is
/// [`Error::Corruption`] naming `path` and the offset. A file without a header (empty or
/// zero) holds no chunks.
pub fn decode_file(bytes: &[u8], file_number: u32, path: &Path) -> Result<Vec<HeadChunk>> {
    match check_header(bytes) {
        Ok(true) => {}
        Ok(false) => return Ok(Vec::new()),
        Err(reason) => return Err(Error::corruption(path, 0, reason)),
    }
    let mut out = Vec::new();
    for_each_entry(bytes, |at, e| {
        out.push(HeadChunk {
            chunk_ref: (u64::from(file_number) << 32) | at as u64,
            series_ref: e.series_ref,
            min_time: e.min_t,
            max_time: e.max_t,
            encoding: e.encoding,
            data: at + e.data_start..at + e.data_start + e.data_len,
        })
    })
    .map_err(|(at, reason)| Error::corruption(path, at as u64, reason))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prometheus_head_chunk_file_parses() {
        let path = crate::testutil::fixture("prometheus-2.42-datadir/chunks_head/000001");
        let b = std::fs::read(path).unwrap();
        assert_eq!(b.len(), 131_072, "preallocated");
        assert_eq!(check_header(&b), Ok(true));
        let mut n = 0;
        let mut refs = std::collections::HashSet::new();
        let mut last_end = 0;
        for_each_entry(&b, |at, e| {
            n += 1;
            assert_eq!(e.encoding, 1);
            refs.insert(e.series_ref);
            let samples = u16::from_be_bytes([b[at + e.data_start], b[at + e.data_start + 1]]);
            assert!(samples <= 118 && samples > 0);
            let it = crate::chunkenc::XorIter::new(
                &b[at + e.data_start..at + e.data_start + e.data_len],
            );
            let all: Vec<_> = it.map(|s| s.unwrap()).collect();
            assert_eq!(all.first().unwrap().t, e.min_t);
            assert_eq!(all.last().unwrap().t, e.max_t);
            last_end = at + e.total_len;
        })
        .unwrap();
        assert_eq!(n, 336);
        assert_eq!(refs.len(), 336);
        assert_eq!(refs.iter().min(), Some(&1));
        assert!(b[last_end..].iter().all(|&x| x == 0));
        let all = decode_file(&b, 1, Path::new("000001")).unwrap();
        assert_eq!(all.len(), 336);
        assert_eq!(all[0].chunk_ref, (1 << 32) | 8);
        assert_eq!(all[0].series_ref, 1);
        let mut torn = b[..all[100].data.end].to_vec();
        torn.push(1);
        let err = decode_file(&torn, 1, Path::new("000001")).unwrap_err();
        // Entry 100 lost its CRC: the error points at that entry.
        let at = all[100].chunk_ref & 0xffff_ffff;
        assert!(matches!(err, Error::Corruption { offset, .. } if offset == Some(at)));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = check_header(&b);
            let mut framed = MAGIC.to_be_bytes().to_vec();
            framed.extend_from_slice(&[VERSION, 0, 0, 0]);
            framed.extend_from_slice(&b);
            let _ = for_each_entry(&framed, |_, e| assert!(e.total_len <= framed.len()));
        }

        #[test]
        fn entries_round_trip(chunks in proptest::collection::vec(
            (1u64..u64::MAX, any::<i64>(), 0i64..1000, proptest::collection::vec(any::<u8>(), 0..300)), 0..20)) {
            let mut b = MAGIC.to_be_bytes().to_vec();
            b.extend_from_slice(&[VERSION, 0, 0, 0]);
            let mut offsets = Vec::new();
            for (s, t, d, data) in &chunks {
                offsets.push(b.len());
                encode_entry(&mut b, *s, *t, t.saturating_add(*d), data);
                prop_assert_eq!(b.len() - offsets.last().unwrap(), entry_len(data.len()));
            }
            // Zero padding after the data, as in a preallocated file.
            b.extend_from_slice(&[0; 100]);
            let mut got = Vec::new();
            for_each_entry(&b, |at, e| got.push((at, *e))).unwrap();
            prop_assert_eq!(got.len(), chunks.len());
            for ((at, e), ((s, t, d, data), off)) in got.iter().zip(chunks.iter().zip(&offsets)) {
                prop_assert_eq!(*at, *off);
                prop_assert_eq!((e.series_ref, e.min_t, e.max_t), (*s, *t, t.saturating_add(*d)));
                prop_assert_eq!(&b[at + e.data_start..at + e.data_start + e.data_len], &data[..]);
            }
        }
    }
}
