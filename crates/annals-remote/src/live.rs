//! [`LiveReader`]: reads the records of a WAL segment that is still being written (format
//! brief §1.9), as Prometheus's `wlog.LiveReader` does for its WAL watcher.
//!
//! The engine's [`annals::unstable::wal::Reader`] treats a record cut by the end of the last segment as a
//! torn tail. A tailer must instead wait for the rest: the writer hands every commit to the
//! OS with one `write(2)`, so bytes visible below the file size are complete, and a record or
//! a page's padding that the file does not hold yet simply has not been written. This reader
//! returns `Ok(None)` in that case and continues from the same place on the next call.
//!
//! It reads bytes from disk, so it never panics: every violation of §1.9 (bad fragment type,
//! length past the page, checksum mismatch, fragments out of order, bad snappy) is a
//! [`LiveError::Corruption`] with the byte offset of the fragment, and it allocates at most a
//! constant multiple of the bytes read.

use std::io::{self, Read};

/// Size of a WAL page.
pub const PAGE_SIZE: usize = 32 * 1024;
const HDR: usize = 7;
const FRAG_ZERO: u8 = 0;
const FRAG_FULL: u8 = 1;
const FRAG_FIRST: u8 = 2;
const FRAG_MIDDLE: u8 = 3;
const FRAG_LAST: u8 = 4;
const TYPE_MASK: u8 = 0x07;
const SNAPPY_FLAG: u8 = 0x08;
const ZSTD_FLAG: u8 = 0x10;
/// Snappy expands at most 64 bytes out of a 3-byte element: a larger claimed length is
/// corrupt and is never allocated.
const MAX_SNAPPY_RATIO: usize = 22;

/// Why a segment cannot be read on.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The bytes violate the WAL format.
    #[error("WAL segment {segment:08} is corrupt at byte {offset}: {reason}")]
    Corruption {
        /// Segment index.
        segment: u32,
        /// Offset of the bad fragment (or record) in the segment.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Reading the file failed.
    #[error("reading WAL segment {segment:08}: {source}")]
    Io {
        /// Segment index.
        segment: u32,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Reads complete records from a growing segment; see the module docs.
pub struct LiveReader<R> {
    src: R,
    segment: u32,
    /// Unconsumed bytes read from `src`; `buf[0]` is at segment offset `buf_offset`.
    buf: Vec<u8>,
    buf_offset: u64,
    /// Payload of the record being assembled, and the offset and flags of its first fragment.
    rec: Vec<u8>,
    open: Option<(u64, u8)>,
    out: Vec<u8>,
    decoder: snap::raw::Decoder,
    /// Offset just past the last complete record returned (or padding consumed).
    consumed: u64,
    failed: bool,
}

impl<R: Read> LiveReader<R> {
    /// A reader of segment `segment` whose bytes `src` yields from offset 0.
    pub fn new(src: R, segment: u32) -> Self {
        LiveReader {
            src,
            segment,
            buf: Vec::with_capacity(PAGE_SIZE),
            buf_offset: 0,
            rec: Vec::new(),
            open: None,
            out: Vec::new(),
            decoder: snap::raw::Decoder::new(),
            consumed: 0,
            failed: false,
        }
    }

    /// The source, e.g. to let a test reveal more of a file.
    pub fn get_mut_source(&mut self) -> &mut R {
        &mut self.src
    }

    /// The segment's index.
    pub fn segment(&self) -> u32 {
        self.segment
    }

    /// Offset in the segment just past the last record returned: where reading resumes.
    pub fn offset(&self) -> u64 {
        self.consumed
    }

    /// Whether bytes were read that do not yet form a complete record (a segment that ends
    /// so when a newer segment exists is torn).
    pub fn has_partial(&self) -> bool {
        let from = (self.consumed.saturating_sub(self.buf_offset) as usize).min(self.buf.len());
        // A finished segment may end inside a page's zero padding: that is not a record.
        self.buf[from..].iter().any(|&b| b != 0)
    }

    fn corrupt(&mut self, offset: u64, reason: impl Into<String>) -> LiveError {
        self.failed = true;
        LiveError::Corruption {
            segment: self.segment,
            offset,
            reason: reason.into(),
        }
    }

    /// Reads what the file holds now into the buffer; returns the number of new bytes.
    fn fill(&mut self) -> Result<usize, LiveError> {
        // Drop consumed bytes first, so the buffer stays about a page or two.
        let keep_from =
            (self.consumed.saturating_sub(self.buf_offset) as usize).min(self.buf.len());
        if keep_from > 0 {
            self.buf.drain(..keep_from);
            self.buf_offset += keep_from as u64;
        }
        let mut total = 0;
        loop {
            let len = self.buf.len();
            if self.buf.capacity() - len < PAGE_SIZE {
                self.buf.reserve(PAGE_SIZE);
            }
            let cap = self.buf.capacity();
            self.buf.resize(cap, 0);
            let r = self.src.read(&mut self.buf[len..]);
            match r {
                Ok(0) => {
                    self.buf.truncate(len);
                    return Ok(total);
                }
                Ok(n) => {
                    self.buf.truncate(len + n);
                    total += n;
                    if total >= 4 * PAGE_SIZE {
                        return Ok(total);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(len),
                Err(e) => {
                    self.buf.truncate(len);
                    self.failed = true;
                    return Err(LiveError::Io {
                        segment: self.segment,
                        source: e,
                    });
                }
            }
        }
    }

    /// The next complete record, decompressed, with the offset of its first fragment;
    /// `Ok(None)` when the file holds no further complete record yet. The slice is valid until
    /// the next call.
    pub fn next_record(&mut self) -> Result<Option<(&[u8], u64)>, LiveError> {
        if self.failed {
            return Err(LiveError::Corruption {
                segment: self.segment,
                offset: self.consumed,
                reason: "the reader failed earlier".into(),
            });
        }
        loop {
            match self.parse()? {
                Parsed::Record(start, flags) => {
                    if flags & SNAPPY_FLAG == 0 || self.rec.is_empty() {
                        return Ok(Some((&self.rec, start)));
                    }
                    let n = self.decompress(start)?;
                    return Ok(Some((&self.out[..n], start)));
                }
                Parsed::NeedMore => {
                    if self.fill()? == 0 {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn decompress(&mut self, start: u64) -> Result<usize, LiveError> {
        let n = match snap::raw::decompress_len(&self.rec) {
            Ok(n) => n,
            Err(e) => return Err(self.corrupt(start, format!("record is not valid snappy: {e}"))),
        };
        if n > self.rec.len().saturating_mul(MAX_SNAPPY_RATIO) {
            return Err(self.corrupt(
                start,
                format!(
                    "snappy length {n} is impossible for {} bytes",
                    self.rec.len()
                ),
            ));
        }
        if self.out.len() < n {
            self.out.resize(n, 0);
        }
        match self.decoder.decompress(&self.rec, &mut self.out[..n]) {
            Ok(got) if got == n => Ok(n),
            Ok(got) => Err(self.corrupt(start, format!("snappy gave {got} bytes, claimed {n}"))),
            Err(e) => Err(self.corrupt(start, format!("record is not valid snappy: {e}"))),
        }
    }

    /// Parses fragments from the buffer until a record completes or bytes run out. Fragments
    /// of an unfinished record stay in the buffer (not consumed), so `consumed` always sits on
    /// a record boundary; `rec` is rebuilt from them on the next call.
    fn parse(&mut self) -> Result<Parsed, LiveError> {
        self.rec.clear();
        self.open = None;
        let mut at = (self.consumed - self.buf_offset) as usize;
        loop {
            let off = self.buf_offset + at as u64;
            let Some(&first) = self.buf.get(at) else {
                return Ok(Parsed::NeedMore);
            };
            let typ = first & TYPE_MASK;
            if typ == FRAG_ZERO {
                if self.open.is_some() {
                    return Err(self.corrupt(off, "page padding inside a record"));
                }
                let page_end = (off / PAGE_SIZE as u64 + 1) * PAGE_SIZE as u64;
                let end = (page_end - self.buf_offset) as usize;
                let avail = end.min(self.buf.len());
                if let Some(i) = self.buf[at..avail].iter().position(|&b| b != 0) {
                    return Err(
                        self.corrupt(off + i as u64, "non-zero byte in the padding of a page")
                    );
                }
                if avail < end {
                    // The padding is not all there yet; nothing after it can be.
                    return Ok(Parsed::NeedMore);
                }
                at = end;
                self.consumed = page_end;
                continue;
            }
            if typ > FRAG_LAST {
                return Err(self.corrupt(off, format!("invalid fragment type {typ}")));
            }
            if self.buf.len() - at < HDR {
                return Ok(Parsed::NeedMore);
            }
            let h = &self.buf[at..at + HDR];
            let len = u16::from_be_bytes([h[1], h[2]]) as usize;
            let crc = u32::from_be_bytes([h[3], h[4], h[5], h[6]]);
            let in_page = (off % PAGE_SIZE as u64) as usize;
            if in_page + HDR + len > PAGE_SIZE {
                return Err(self.corrupt(off, format!("fragment of {len} bytes crosses a page")));
            }
            if self.buf.len() - at - HDR < len {
                return Ok(Parsed::NeedMore);
            }
            let payload = &self.buf[at + HDR..at + HDR + len];
            let got = crc32c::crc32c(payload);
            if got != crc {
                return Err(self.corrupt(
                    off,
                    format!("fragment checksum mismatch: stored {crc:#010x}, computed {got:#010x}"),
                ));
            }
            let flags = first & (SNAPPY_FLAG | ZSTD_FLAG);
            match (typ, self.open) {
                (FRAG_FULL | FRAG_FIRST, Some(_)) => {
                    return Err(self.corrupt(off, "a record starts inside another"));
                }
                (FRAG_MIDDLE | FRAG_LAST, None) => {
                    return Err(self.corrupt(off, "a record continues without a first fragment"));
                }
                (_, Some((_, f))) if f != flags => {
                    return Err(self.corrupt(off, "fragments of a record differ in compression"));
                }
                _ => {}
            }
            if flags & ZSTD_FLAG != 0 {
                return Err(self.corrupt(off, "zstd-compressed records are not supported"));
            }
            let start = self.open.map_or(off, |(s, _)| s);
            self.rec
                .extend_from_slice(&self.buf[at + HDR..at + HDR + len]);
            at += HDR + len;
            if typ == FRAG_FULL || typ == FRAG_LAST {
                self.consumed = self.buf_offset + at as u64;
                self.open = None;
                return Ok(Parsed::Record(start, flags));
            }
            self.open = Some((start, flags));
        }
    }
}

enum Parsed {
    Record(u64, u8),
    NeedMore,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::{Arc, Mutex};

    use annals::unstable::wal::{self, Wal, WalOptions};

    /// A source that reveals a growing prefix of `data`, like a file being appended to.
    #[derive(Clone)]
    struct Growing {
        data: Arc<Vec<u8>>,
        visible: Arc<Mutex<usize>>,
        pos: usize,
    }

    impl Read for Growing {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let end = *self.visible.lock().unwrap();
            let n = out.len().min(end.saturating_sub(self.pos));
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn write_wal(records: &[Vec<u8>], compression: wal::Compression) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let w = Wal::open(
            dir.path(),
            WalOptions {
                compression,
                ..WalOptions::default()
            },
        )
        .unwrap();
        for r in records {
            w.log(&[r.as_slice()]).unwrap();
        }
        w.close().unwrap();
        let (first, _) = wal::segment_range(dir.path()).unwrap().unwrap();
        std::fs::read(wal::segment_path(dir.path(), first)).unwrap()
    }

    fn records(n: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut x = seed;
        (0..n)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let len = match i % 4 {
                    0 => (x >> 40) as usize % 50,
                    1 => (x >> 40) as usize % 5000,
                    2 => 40_000 + (x >> 40) as usize % 70_000,
                    _ => 1,
                };
                (0..len).map(|j| ((j as u64 * 31 + x) % 7) as u8).collect()
            })
            .collect()
    }

    #[test]
    fn reads_what_the_engine_wrote_at_every_visible_prefix() {
        for comp in [wal::Compression::None, wal::Compression::Snappy] {
            let recs = records(24, 7);
            let data = Arc::new(write_wal(&recs, comp));
            let visible = Arc::new(Mutex::new(0usize));
            let src = Growing {
                data: data.clone(),
                visible: visible.clone(),
                pos: 0,
            };
            let mut r = LiveReader::new(src, 0);
            let mut got = Vec::new();
            let mut step = 1usize;
            while *visible.lock().unwrap() < data.len() {
                {
                    let mut v = visible.lock().unwrap();
                    *v = (*v + step).min(data.len());
                }
                step = step * 3 % 9973 + 1;
                while let Some((rec, _)) = r.next_record().unwrap() {
                    got.push(rec.to_vec());
                }
            }
            assert_eq!(got, recs, "{comp:?}");
            assert!(!r.has_partial());
        }
    }

    #[test]
    fn corruption_is_reported_with_its_offset() {
        let recs = records(4, 3);
        let mut data = write_wal(&recs, wal::Compression::None);
        data[3] ^= 0xff;
        let mut r = LiveReader::new(Cursor::new(data), 5);
        let e = r.next_record().unwrap_err();
        assert!(
            matches!(
                e,
                LiveError::Corruption {
                    segment: 5,
                    offset: 0,
                    ..
                }
            ),
            "{e}"
        );
        assert!(r.next_record().is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 1u64;
        for len in [0usize, 1, 6, 7, 8, 100, 40_000] {
            for _ in 0..50 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (x >> 56) as u8
                    })
                    .collect();
                let mut r = LiveReader::new(Cursor::new(bytes), 0);
                for _ in 0..100 {
                    match r.next_record() {
                        Ok(Some(_)) => {}
                        _ => break,
                    }
                }
            }
        }
    }
}
