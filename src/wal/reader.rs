//! [`Reader`]: reads records back from a sequence of segment files (§1.9 reader rules).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::fragment::{
    FRAG_FIRST, FRAG_FULL, FRAG_LAST, FRAG_MIDDLE, FRAG_ZERO, MAX_FRAGMENT, SNAPPY_FLAG, TYPE_MASK,
    ZSTD_FLAG,
};
use super::segment::list_segments;
use super::{Position, FRAGMENT_HEADER_SIZE as HDR, PAGE_SIZE};
use crate::encoding::crc32c;
use crate::error::{Error, IoContext, Result};

/// Valid snappy expands at most 64 bytes out of a 3-byte copy element, so a claimed length
/// above this multiple of the input is corrupt (and is never allocated).
const MAX_SNAPPY_RATIO: usize = 22;

/// Read buffer of a segment file: 16 pages, few system calls for whole segments.
const DEFAULT_BUFFER: usize = 16 * PAGE_SIZE;

enum Source {
    File {
        index: u32,
        path: PathBuf,
        /// Where reading starts (a record boundary).
        start: u64,
    },
    Bytes {
        index: u32,
        path: PathBuf,
        data: Vec<u8>,
    },
}

/// A segment's bytes, read from the start or from a record boundary.
trait SegmentBytes: Read + Seek + Send {}
impl<T: Read + Seek + Send> SegmentBytes for T {}

struct Cursor {
    src: Box<dyn SegmentBytes>,
    index: u32,
    path: PathBuf,
    offset: u64,
    is_last: bool,
}

/// Reads the records of a sequence of segment files: a WAL directory from a given segment, a
/// checkpoint directory, or both one after the other.
///
/// Every rule of §1.9 is checked, and a violation is an [`Error::Corruption`] naming the
/// segment file and the offset at which the bad fragment or the torn record starts (records
/// that end at or before that offset are intact; a repair keeps exactly those);
/// [`Reader::damage`] gives that position as a value.
/// zstd-compressed records are an [`Error::Unsupported`]. The reader never panics and
/// allocates at most a constant multiple of the bytes it has read. After an error every
/// further call returns the same error.
///
/// A reader can start at a record boundary ([`Reader::open_at`], with a position an earlier
/// reader returned) and [`follow`](Reader::follow) a segment still being written, as a WAL
/// tailer (Prometheus's `wlog.Watcher`) does: see there for how to move on to segments
/// created after the reader was opened.
pub struct Reader {
    sources: std::vec::IntoIter<Source>,
    remaining: usize,
    cur: Option<Cursor>,
    scratch: Box<[u8]>,
    rec: Vec<u8>,
    out: Vec<u8>,
    decoder: snap::raw::Decoder,
    failure: Option<Error>,
    damage: Option<Position>,
    end: Position,
    /// The last segment is live: a record its end cuts is not complete yet.
    follow: bool,
    /// Capacity of each segment file's read buffer.
    buffer_size: usize,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("segment", &self.cur.as_ref().map(|c| c.index))
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

fn read_full(src: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Rebuilds an error the reader already returned, for the calls after a failure.
fn repeat(e: &Error) -> Error {
    match e {
        Error::Corruption {
            file,
            offset,
            reason,
        } => Error::corruption(file.clone(), *offset, reason.clone()),
        Error::Unsupported {
            file,
            offset,
            reason,
        } => Error::Unsupported {
            file: file.clone(),
            offset: *offset,
            reason: reason.clone(),
        },
        Error::Io { path, source } => Error::io(
            path.clone(),
            io::Error::new(source.kind(), source.to_string()),
        ),
        // The reader fails only with the kinds above.
        other => Error::Internal(format!("unexpected WAL reader error: {other}")),
    }
}

impl Reader {
    /// Reads the segments of `dir` from index `from_segment` (or the first one after it) to
    /// the last. Non-segment entries are ignored; a gap between segments is an error.
    pub fn open_dir(dir: &Path, from_segment: u32) -> Result<Reader> {
        Self::open_range(dir, from_segment, None)
    }

    /// Reads the segments of `dir` with indices in `first..=last` (`None`: to the last).
    pub fn open_range(dir: &Path, first: u32, last: Option<u32>) -> Result<Reader> {
        let segs = list_segments(dir)?
            .segments
            .into_iter()
            .filter(|(i, _)| *i >= first && last.is_none_or(|l| *i <= l))
            .collect();
        Ok(Self::from_segments(segs))
    }

    /// Reads the segments of `dir` from `from` on: segment `from.segment` from byte
    /// `from.offset`, which must be a record boundary (the [`end_position`](Self::end_position)
    /// or a record position an earlier reader returned), then every later segment. If that
    /// segment no longer exists (a checkpoint replaced it), reading starts at the beginning
    /// of the first later one.
    pub fn open_at(dir: &Path, from: Position) -> Result<Reader> {
        let segs = list_segments(dir)?
            .segments
            .into_iter()
            .filter(|(i, _)| *i >= from.segment)
            .map(|(index, path)| Source::File {
                index,
                path,
                start: if index == from.segment {
                    from.offset
                } else {
                    0
                },
            })
            .collect();
        Ok(Self::new(segs))
    }

    /// Reads the given segment files in the given order; each is named by its index.
    pub fn from_segments(segments: Vec<(u32, PathBuf)>) -> Reader {
        Self::new(
            segments
                .into_iter()
                .map(|(index, path)| Source::File {
                    index,
                    path,
                    start: 0,
                })
                .collect(),
        )
    }

    /// Treats the last segment as live, as a WAL tailer must: at its end, a record whose
    /// fragments are not all there yet is not torn but incomplete, so
    /// [`next_record`](Self::next_record) returns `Ok(None)` and reads it again on a later
    /// call, as it does records appended after a clean end.
    ///
    /// The segments are those that existed when the reader was opened. A segment is complete
    /// once a later one exists (the writer never appends to it again): to move on, read the
    /// live segment until `next_record` returns `Ok(None)` *after* the next segment has
    /// appeared, then open a reader at the start of the next segment.
    pub fn follow(mut self) -> Reader {
        self.follow = true;
        self
    }

    /// Ends [`follow`](Self::follow): the live segment is complete now (a later segment
    /// exists), so the next [`next_record`](Self::next_record) returns the records still in it
    /// and then, if its end cuts a record, the torn-tail [`Error::Corruption`] at that record.
    pub fn stop_following(&mut self) {
        self.follow = false;
    }

    /// Reads each segment file through a buffer of `bytes` (at least 1; default 512 KiB,
    /// few system calls over whole segments). A tailer that reads a few KiB per wake-up keeps
    /// less memory resident with a smaller one.
    pub fn buffer_size(mut self, bytes: usize) -> Reader {
        self.buffer_size = bytes.max(1);
        self
    }

    /// Reads `data` as the content of one segment file at `path` with index `index` (for
    /// tests and fuzzing; errors name `path`).
    pub fn from_bytes(path: impl Into<PathBuf>, index: u32, data: Vec<u8>) -> Reader {
        Self::new(vec![Source::Bytes {
            index,
            path: path.into(),
            data,
        }])
    }

    fn new(sources: Vec<Source>) -> Reader {
        let end = match sources.first() {
            Some(Source::File { index, start, .. }) => Position {
                segment: *index,
                offset: *start,
            },
            Some(Source::Bytes { index, .. }) => Position {
                segment: *index,
                offset: 0,
            },
            None => Position {
                segment: 0,
                offset: 0,
            },
        };
        Reader {
            remaining: sources.len(),
            sources: sources.into_iter(),
            cur: None,
            scratch: vec![0u8; PAGE_SIZE].into_boxed_slice(),
            rec: Vec::new(),
            out: Vec::new(),
            decoder: snap::raw::Decoder::new(),
            failure: None,
            damage: None,
            end,
            follow: false,
            buffer_size: DEFAULT_BUFFER,
        }
    }

    /// The position just after the last record returned (where the next one may start).
    pub fn end_position(&self) -> Position {
        self.end
    }

    /// Where the damage that failed [`next_record`](Self::next_record) starts: the index of
    /// the segment being read (in the numbering of the reader's sources) and the offset of the
    /// bad fragment or torn record in it. `None` before any error and after an I/O error.
    pub fn damage(&self) -> Option<Position> {
        self.damage
    }

    /// The file of the segment being read (that of the last record returned).
    pub fn current_file(&self) -> Option<&Path> {
        self.cur.as_ref().map(|c| c.path.as_path())
    }

    /// The next record, decompressed, with the position at which its first fragment starts;
    /// `None` at the clean end of the last segment. The slice is valid until the next call.
    pub fn next_record(&mut self) -> Result<Option<(&[u8], Position)>> {
        if let Some(e) = &self.failure {
            return Err(repeat(e));
        }
        match self.advance() {
            Ok(Some((pos, decompressed_len))) => {
                let rec = match decompressed_len {
                    Some(n) => &self.out[..n],
                    None => &self.rec[..],
                };
                Ok(Some((rec, pos)))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                if let (
                    Error::Corruption {
                        offset: Some(offset),
                        ..
                    }
                    | Error::Unsupported {
                        offset: Some(offset),
                        ..
                    },
                    Some(cur),
                ) = (&e, &self.cur)
                {
                    self.damage = Some(Position {
                        segment: cur.index,
                        offset: *offset,
                    });
                }
                self.failure = Some(repeat(&e));
                Err(e)
            }
        }
    }

    /// Reads the next record into `rec` (or `out` when decompressed, returning its length).
    fn advance(&mut self) -> Result<Option<(Position, Option<usize>)>> {
        loop {
            if self.cur.is_none() {
                let Some(src) = self.sources.next() else {
                    return Ok(None);
                };
                self.remaining -= 1;
                let is_last = self.remaining == 0;
                self.cur = Some(match src {
                    Source::File { index, path, start } => {
                        let mut f = File::open(&path).at(&path)?;
                        if start > 0 {
                            f.seek(SeekFrom::Start(start)).at(&path)?;
                        }
                        Cursor {
                            src: Box::new(BufReader::with_capacity(self.buffer_size, f)),
                            index,
                            path,
                            offset: start,
                            is_last,
                        }
                    }
                    Source::Bytes { index, path, data } => Cursor {
                        src: Box::new(io::Cursor::new(data)),
                        index,
                        path,
                        offset: 0,
                        is_last,
                    },
                });
                let c = self.cur.as_ref().expect("just set");
                self.end = Position {
                    segment: c.index,
                    offset: c.offset,
                };
            }
            let cur = self.cur.as_mut().expect("checked above");
            let live = self.follow && cur.is_last;
            match read_record(cur, &mut self.scratch, &mut self.rec, live)? {
                // The live segment stays open: more may be appended to it.
                None if live => return Ok(None),
                None => self.cur = None,
                Some((start, flags)) => {
                    let pos = Position {
                        segment: cur.index,
                        offset: start,
                    };
                    self.end = Position {
                        segment: cur.index,
                        offset: cur.offset,
                    };
                    if flags & SNAPPY_FLAG == 0 || self.rec.is_empty() {
                        return Ok(Some((pos, None)));
                    }
                    let n = decompress(
                        &cur.path,
                        start,
                        &self.rec,
                        &mut self.out,
                        &mut self.decoder,
                    )?;
                    return Ok(Some((pos, Some(n))));
                }
            }
        }
    }
}

/// Decompresses the snappy record `rec` into `out`; returns its length.
fn decompress(
    path: &Path,
    start: u64,
    rec: &[u8],
    out: &mut Vec<u8>,
    decoder: &mut snap::raw::Decoder,
) -> Result<usize> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::corruption(
            path,
            start,
            format!("record does not decompress as snappy: {e}"),
        )
    };
    let n = snap::raw::decompress_len(rec).map_err(|e| bad(&e))?;
    if n > rec.len().saturating_mul(MAX_SNAPPY_RATIO) {
        return Err(bad(&format_args!(
            "claimed length {n} is impossible for {} compressed bytes",
            rec.len()
        )));
    }
    // `out` only grows, so steady-state reading neither reallocates nor zero-fills.
    if out.len() < n {
        out.resize(n, 0);
    }
    let got = decoder
        .decompress(rec, &mut out[..n])
        .map_err(|e| bad(&e))?;
    if got != n {
        return Err(bad(&format_args!("{got} bytes decoded, {n} claimed")));
    }
    Ok(n)
}

/// Goes back to `at` (the start of a record the end of a live segment cut) to read it again
/// once it is complete.
fn rewind(cur: &mut Cursor, at: u64) -> Result<Option<(u64, u8)>> {
    cur.src.seek(SeekFrom::Start(at)).at(&cur.path)?;
    cur.offset = at;
    Ok(None)
}

/// Reads the fragments of one record from `cur` into `rec`. Returns the offset of its first
/// fragment and its compression flags, or `None` at the clean end of the segment (and, if the
/// segment is `live`, at a record its end cuts, which is read again on the next call).
fn read_record(
    cur: &mut Cursor,
    scratch: &mut [u8],
    rec: &mut Vec<u8>,
    live: bool,
) -> Result<Option<(u64, u8)>> {
    rec.clear();
    let mut open: Option<(u64, u8)> = None;
    let corrupt = |cur: &Cursor, at: u64, reason: String| Error::corruption(&cur.path, at, reason);
    loop {
        let start = cur.offset;
        let mut hdr = [0u8; HDR];
        if read_full(&mut cur.src, &mut hdr[..1]).at(&cur.path)? == 0 {
            return match open {
                None => Ok(None),
                Some((rec_start, _)) if live => rewind(cur, rec_start),
                Some((rec_start, _)) if cur.is_last => Err(corrupt(
                    cur,
                    rec_start,
                    "last record is torn: the segment ends inside it".into(),
                )),
                Some((rec_start, _)) => Err(corrupt(
                    cur,
                    rec_start,
                    "record is torn at the end of the segment (records never span segments)".into(),
                )),
            };
        }
        cur.offset += 1;
        let typ = hdr[0] & TYPE_MASK;
        if typ == FRAG_ZERO {
            // The rest of the page is padding and must be zero; a segment that ends inside
            // the page counts as zero-padded to its end.
            let k = (PAGE_SIZE - (cur.offset % PAGE_SIZE as u64) as usize) % PAGE_SIZE;
            let n = read_full(&mut cur.src, &mut scratch[..k]).at(&cur.path)?;
            cur.offset += n as u64;
            if let Some(i) = scratch[..n].iter().position(|&b| b != 0) {
                return Err(corrupt(
                    cur,
                    start,
                    format!(
                        "non-zero byte at offset {} in the padding of a page",
                        start + 1 + i as u64
                    ),
                ));
            }
            continue;
        }
        if typ > FRAG_LAST {
            return Err(corrupt(cur, start, format!("invalid fragment type {typ}")));
        }
        let n = read_full(&mut cur.src, &mut hdr[1..]).at(&cur.path)?;
        cur.offset += n as u64;
        if n < HDR - 1 && live {
            return rewind(cur, open.map_or(start, |(s, _)| s));
        }
        if n < HDR - 1 {
            return Err(corrupt(
                cur,
                start,
                "fragment header torn by the end of the segment".into(),
            ));
        }
        let len = u16::from_be_bytes([hdr[1], hdr[2]]) as usize;
        let crc = u32::from_be_bytes([hdr[3], hdr[4], hdr[5], hdr[6]]);
        if len > MAX_FRAGMENT {
            return Err(corrupt(
                cur,
                start,
                format!("fragment length {len} is larger than a page allows ({MAX_FRAGMENT})"),
            ));
        }
        let n = read_full(&mut cur.src, &mut scratch[..len]).at(&cur.path)?;
        cur.offset += n as u64;
        if n < len && live {
            return rewind(cur, open.map_or(start, |(s, _)| s));
        }
        if n < len {
            return Err(corrupt(
                cur,
                start,
                format!("fragment torn by the end of the segment: {n} of {len} payload bytes"),
            ));
        }
        let payload = &scratch[..len];
        let got = crc32c(payload);
        if got != crc {
            return Err(corrupt(
                cur,
                start,
                format!("fragment checksum mismatch: stored {crc:#010x}, computed {got:#010x}"),
            ));
        }
        let flags = hdr[0] & (SNAPPY_FLAG | ZSTD_FLAG);
        match (typ, open) {
            (FRAG_FULL | FRAG_FIRST, Some(_)) => {
                return Err(corrupt(
                    cur,
                    start,
                    format!("unexpected {} fragment inside a record", frag_name(typ)),
                ))
            }
            (FRAG_MIDDLE | FRAG_LAST, None) => {
                return Err(corrupt(
                    cur,
                    start,
                    format!(
                        "unexpected {} fragment without a first fragment",
                        frag_name(typ)
                    ),
                ))
            }
            (_, Some((_, f))) if f != flags => {
                return Err(corrupt(
                    cur,
                    start,
                    "fragments of one record differ in their compression flags".into(),
                ))
            }
            _ => {}
        }
        if flags == SNAPPY_FLAG | ZSTD_FLAG {
            return Err(corrupt(
                cur,
                start,
                "fragment has both compression flags set".into(),
            ));
        }
        let rec_start = open.map_or(start, |(s, _)| s);
        if flags == ZSTD_FLAG {
            return Err(Error::Unsupported {
                file: cur.path.clone(),
                offset: Some(rec_start),
                reason: "zstd-compressed WAL record (Prometheus 2.46+ \
                         --storage.tsdb.wal-compression-type=zstd); restart Prometheus with \
                         snappy compression and let it cut a new segment"
                    .into(),
            });
        }
        rec.extend_from_slice(payload);
        if typ == FRAG_FULL || typ == FRAG_LAST {
            return Ok(Some((rec_start, flags)));
        }
        open = Some((rec_start, flags));
    }
}

fn frag_name(typ: u8) -> &'static str {
    match typ {
        FRAG_FULL => "full",
        FRAG_FIRST => "first",
        FRAG_MIDDLE => "middle",
        FRAG_LAST => "last",
        _ => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes one fragment like Prometheus's `encodedRecord` test helper: a page terminator is
    /// a zero byte followed by `b`.
    fn frag(t: u8, b: &[u8]) -> Vec<u8> {
        if t == FRAG_ZERO {
            let mut v = vec![0u8];
            v.extend_from_slice(b);
            return v;
        }
        let mut v = vec![t];
        v.extend_from_slice(&(b.len() as u16).to_be_bytes());
        v.extend_from_slice(&crc32c(b).to_be_bytes());
        v.extend_from_slice(b);
        v
    }

    fn read_all(bytes: Vec<u8>) -> (Vec<Vec<u8>>, Option<Error>) {
        let mut r = Reader::from_bytes("seg", 0, bytes);
        let mut out = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some((rec, _))) => out.push(rec.to_vec()),
                Ok(None) => return (out, None),
                Err(e) => {
                    // The error repeats.
                    assert_eq!(r.next_record().unwrap_err().to_string(), e.to_string());
                    return (out, Some(e));
                }
            }
        }
    }

    /// Prometheus `TestReader`'s table of fragment sequences.
    #[test]
    fn prometheus_reader_table() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
        let d = |a: usize, b: usize| data[a..b].to_vec();
        type Case = (Vec<(u8, Vec<u8>)>, Vec<Vec<u8>>, bool);
        let cases: Vec<Case> = vec![
            (
                vec![
                    (FRAG_FULL, d(0, 200)),
                    (FRAG_FIRST, d(200, 300)),
                    (FRAG_LAST, d(300, 400)),
                    (FRAG_FIRST, d(400, 800)),
                    (FRAG_MIDDLE, d(800, 900)),
                    // Lines up exactly with the page boundary, inside an open record.
                    (FRAG_ZERO, vec![0; PAGE_SIZE - 900 - HDR * 5 - 1]),
                    (FRAG_LAST, d(900, 900)),
                    (FRAG_FIRST, d(900, 1000)),
                    (FRAG_MIDDLE, d(1000, 1200)),
                    (FRAG_MIDDLE, d(1200, 30000)),
                    (FRAG_MIDDLE, d(30000, 30001)),
                    (FRAG_MIDDLE, d(30001, 30001)),
                    (FRAG_LAST, d(30001, 32000)),
                ],
                vec![d(0, 200), d(200, 400), d(400, 900), d(900, 32000)],
                false,
            ),
            (
                vec![(FRAG_FULL, d(0, PAGE_SIZE - HDR))],
                vec![d(0, PAGE_SIZE - HDR)],
                false,
            ),
            (vec![(FRAG_FULL, d(0, PAGE_SIZE + 1))], vec![], true),
            // Two records crossing a page boundary: Prometheus's reader accepts this (seen in
            // production), so this one does too.
            (
                vec![
                    (FRAG_FULL, d(0, PAGE_SIZE / 2)),
                    (FRAG_FULL, d(0, PAGE_SIZE / 2)),
                ],
                vec![d(0, PAGE_SIZE / 2), d(0, PAGE_SIZE / 2)],
                false,
            ),
            (vec![(FRAG_MIDDLE, d(0, 200))], vec![], true),
            (vec![(FRAG_LAST, d(0, 200))], vec![], true),
            (
                vec![(FRAG_FIRST, d(0, 200)), (FRAG_FULL, d(200, 400))],
                vec![],
                true,
            ),
            (
                vec![
                    (FRAG_FIRST, d(0, 100)),
                    (FRAG_MIDDLE, d(100, 200)),
                    (FRAG_FULL, d(200, 400)),
                ],
                vec![],
                true,
            ),
            (
                vec![
                    (FRAG_FULL, d(0, 100)),
                    (FRAG_ZERO, {
                        let mut z = vec![0u8; PAGE_SIZE - HDR - 102];
                        z.push(1);
                        z
                    }),
                ],
                vec![d(0, 100)],
                true,
            ),
        ];
        for (i, (frags, want, fail)) in cases.into_iter().enumerate() {
            let mut bytes = Vec::new();
            for (t, b) in &frags {
                // A length past u16 is written truncated, as Prometheus's helper does.
                let mut f = frag(*t, b);
                if *t != FRAG_ZERO && b.len() > u16::MAX as usize {
                    f[1..3].copy_from_slice(&(b.len() as u16).to_be_bytes());
                }
                bytes.extend_from_slice(&f);
            }
            let (got, err) = read_all(bytes);
            assert_eq!(got, want, "case {i}");
            assert_eq!(err.is_some(), fail, "case {i}: {err:?}");
            if let Some(e) = err {
                assert!(matches!(e, Error::Corruption { .. }), "case {i}: {e}");
            }
        }
    }

    #[test]
    fn corruption_names_file_and_fragment_offset() {
        let mut bytes = frag(FRAG_FULL, b"hello");
        let second = bytes.len() as u64;
        bytes.extend_from_slice(&frag(FRAG_FULL, b"world"));
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        let mut r = Reader::from_bytes("/wal/00000007", 7, bytes);
        let (rec, pos) = r.next_record().unwrap().unwrap();
        assert_eq!(
            (rec, pos),
            (
                &b"hello"[..],
                Position {
                    segment: 7,
                    offset: 0
                }
            )
        );
        assert_eq!(
            r.end_position(),
            Position {
                segment: 7,
                offset: second
            }
        );
        let e = r.next_record().unwrap_err();
        let Error::Corruption {
            file,
            offset,
            reason,
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!(file, Path::new("/wal/00000007"));
        assert_eq!(*offset, Some(second));
        assert!(reason.contains("checksum"), "{reason}");
        assert_eq!(
            r.damage(),
            Some(Position {
                segment: 7,
                offset: second
            })
        );
    }

    #[test]
    fn reserved_types_and_flags() {
        for t in 5..=7u8 {
            let (_, e) = read_all(frag(t, b"x"));
            assert!(e.unwrap().to_string().contains("invalid fragment type"));
        }
        // Reserved high bits are not checked, as in Prometheus.
        let (got, e) = read_all(frag(FRAG_FULL | 0x80, b"x"));
        assert!(e.is_none());
        assert_eq!(got, [b"x".to_vec()]);
        let (_, e) = read_all(frag(FRAG_FULL | ZSTD_FLAG, b"x"));
        assert!(
            matches!(
                e,
                Some(Error::Unsupported {
                    offset: Some(0),
                    ..
                })
            ),
            "{e:?}"
        );
        let (_, e) = read_all(frag(FRAG_FULL | ZSTD_FLAG | SNAPPY_FLAG, b"x"));
        assert!(matches!(e, Some(Error::Corruption { .. })), "{e:?}");
        let mut mixed = frag(FRAG_FIRST | SNAPPY_FLAG, b"x");
        mixed.extend_from_slice(&frag(FRAG_LAST, b"y"));
        let (_, e) = read_all(mixed);
        assert!(e.unwrap().to_string().contains("compression flags"));
        // Bad snappy is corruption at the record.
        let (_, e) = read_all(frag(
            FRAG_FULL | SNAPPY_FLAG,
            &[0xff, 0xff, 0xff, 0xff, 0x0f, 1],
        ));
        assert!(
            matches!(
                e,
                Some(Error::Corruption {
                    offset: Some(0),
                    ..
                })
            ),
            "{e:?}"
        );
        // An empty snappy-flagged record is an empty record, as in Prometheus.
        let (got, e) = read_all(frag(FRAG_FULL | SNAPPY_FLAG, b""));
        assert!(e.is_none());
        assert_eq!(got, [Vec::<u8>::new()]);
    }

    #[test]
    fn eof_rules() {
        // Clean EOF mid-page after a record, and a zero tail to EOF.
        let mut b = frag(FRAG_FULL, b"abc");
        let (got, e) = read_all(b.clone());
        assert!(e.is_none());
        assert_eq!(got, [b"abc".to_vec()]);
        b.resize(b.len() + 100, 0);
        assert!(read_all(b.clone()).1.is_none());
        b.resize(3 * PAGE_SIZE, 0);
        let (got, e) = read_all(b);
        assert!(e.is_none());
        assert_eq!(got.len(), 1);
        // EOF inside a header, inside a payload, and after a first fragment.
        let whole = frag(FRAG_FULL, b"abcdef");
        for cut in 1..whole.len() {
            let (got, e) = read_all(whole[..cut].to_vec());
            assert!(got.is_empty());
            assert!(
                matches!(
                    e,
                    Some(Error::Corruption {
                        offset: Some(0),
                        ..
                    })
                ),
                "cut {cut}"
            );
        }
        let mut torn = frag(FRAG_FULL, b"ok");
        torn.extend_from_slice(&frag(FRAG_FIRST, b"partial"));
        let (got, e) = read_all(torn);
        assert_eq!(got, [b"ok".to_vec()]);
        assert!(e.unwrap().to_string().contains("last record is torn"));
        // Nothing at all is a clean, empty segment.
        let (got, e) = read_all(Vec::new());
        assert!(got.is_empty() && e.is_none());
    }

    /// In a followed segment, a record that the end of the file cuts (inside a header, a
    /// payload, or between its fragments) is not torn: it is read once the rest arrives.
    #[test]
    fn a_followed_segment_waits_for_incomplete_records() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("00000000");
        let mut bytes = frag(FRAG_FULL, b"ok");
        let first = bytes.len();
        bytes.extend_from_slice(&frag(FRAG_FIRST, b"par"));
        bytes.extend_from_slice(&frag(FRAG_LAST, b"tial"));
        let second = bytes.len();
        bytes.extend_from_slice(&frag(FRAG_FULL, b"end"));
        let segment = || Reader::from_segments(vec![(0, path.clone())]);
        let read = |r: &mut Reader| r.next_record().unwrap().map(|(rec, _)| rec.to_vec());
        for cut in (first + 1..second).chain(second + 1..bytes.len()) {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let mut r = segment().follow();
            let mut want: Vec<&[u8]> = vec![b"ok", b"partial", b"end"];
            let complete = if cut < second { 1 } else { 2 };
            for w in want.drain(..complete) {
                assert_eq!(read(&mut r).as_deref(), Some(w), "cut {cut}");
            }
            assert_eq!(read(&mut r), None, "cut {cut}");
            assert_eq!(read(&mut r), None, "cut {cut}");
            std::fs::write(&path, &bytes).unwrap();
            for w in want {
                assert_eq!(read(&mut r).as_deref(), Some(w), "cut {cut}");
            }
            assert_eq!(read(&mut r), None);
            // Without following, the cut record is torn.
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let mut r = segment();
            for _ in 0..complete {
                read(&mut r);
            }
            assert!(
                matches!(r.next_record(), Err(Error::Corruption { .. })),
                "cut {cut}"
            );
        }
    }

    /// A tailer whose live segment was finished by a newer one: records written before the
    /// end are read, a record the end cuts is torn, at its offset.
    #[test]
    fn stop_following_turns_a_cut_record_into_a_torn_tail() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("00000000");
        let mut bytes = frag(FRAG_FULL, b"ok");
        let first = bytes.len();
        bytes.extend_from_slice(&frag(FRAG_FULL, b"late"));
        let second = bytes.len();
        bytes.extend_from_slice(&frag(FRAG_FIRST, b"cut"));
        std::fs::write(&path, &bytes[..first]).unwrap();
        let mut r = Reader::from_segments(vec![(0, path.clone())]).follow();
        assert_eq!(r.next_record().unwrap().unwrap().0, b"ok");
        assert!(r.next_record().unwrap().is_none());
        std::fs::write(&path, &bytes).unwrap();
        r.stop_following();
        assert_eq!(r.next_record().unwrap().unwrap().0, b"late");
        let e = r.next_record().unwrap_err();
        assert!(
            matches!(e, Error::Corruption { offset: Some(o), .. } if o == second as u64),
            "{e}"
        );
        assert_eq!(
            r.damage(),
            Some(Position {
                segment: 0,
                offset: second as u64
            })
        );
        // A complete segment ends cleanly.
        std::fs::write(&path, &bytes[..second]).unwrap();
        let mut r = Reader::from_segments(vec![(0, path)]).follow();
        r.stop_following();
        assert_eq!(r.next_record().unwrap().unwrap().0, b"ok");
        assert_eq!(r.next_record().unwrap().unwrap().0, b"late");
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn any_buffer_size_reads_the_same_records() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("00000000");
        let mut bytes = Vec::new();
        for i in 0..50usize {
            let payload: Vec<u8> = (0..i * 97 % 700).map(|k| (k * i) as u8).collect();
            bytes.extend_from_slice(&frag(FRAG_FULL, &payload));
        }
        std::fs::write(&path, &bytes).unwrap();
        let read = |size: Option<usize>| {
            let mut r = Reader::from_segments(vec![(0, path.clone())]);
            if let Some(n) = size {
                r = r.buffer_size(n);
            }
            let mut out = Vec::new();
            while let Some((rec, pos)) = r.next_record().unwrap() {
                out.push((rec.to_vec(), pos));
            }
            out
        };
        let want = read(None);
        assert_eq!(want.len(), 50);
        for n in [0, 1, 7, 4096, PAGE_SIZE] {
            assert_eq!(read(Some(n)), want, "buffer {n}");
        }
    }

    #[test]
    fn impossible_snappy_length_is_not_allocated() {
        // Claims 4 GiB from a 6-byte payload.
        let (_, e) = read_all(frag(
            FRAG_FULL | SNAPPY_FLAG,
            &[0xff, 0xff, 0xff, 0xff, 0x0f, 0],
        ));
        assert!(e.unwrap().to_string().contains("impossible"));
    }
}
