//! Chunk segment files `<block>/chunks/NNNNNN` (brief §1.4).
//!
//! A chunk is addressed by a `BlockChunkRef`: `(segment_index << 32) | offset`, where the
//! index is the 0-based position of the file among the numerically named files sorted by name
//! and the offset is that of the chunk's length field. The [`Writer`] cuts segments exactly
//! where Prometheus does, so the same chunks give the same files and refs.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::chunkenc::{Chunk, Encoding};
use crate::encoding::{crc32c, crc32c_append, put_uvarint, uvarint_len, Decbuf};
use crate::error::{Error, IoContext, Result};
use crate::fs::{sync_dir, File, FileBytes};
use crate::reader::{self, ChunkRef, ChunkSource};

/// First four bytes of a chunk segment file.
pub const MAGIC: u32 = 0x85BD_40DD;
/// Segment format version.
pub const FORMAT_V1: u8 = 1;
/// Magic, version and 3 bytes of padding.
pub const SEGMENT_HEADER_LEN: u64 = 8;
/// Default maximum segment size (Prometheus `DefaultChunkSegmentSize`).
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 << 20;
/// Upper bound of the bytes a chunk's length field takes, as Prometheus budgets it.
const MAX_LEN_FIELD: u64 = 5;

/// Packs a segment index and an offset into a `BlockChunkRef`.
pub fn chunk_ref(segment_index: u32, offset: u32) -> u64 {
    u64::from(segment_index) << 32 | u64::from(offset)
}

/// Splits a `BlockChunkRef` into segment index and offset.
pub fn unpack_ref(chunk_ref: u64) -> (u32, u32) {
    ((chunk_ref >> 32) as u32, chunk_ref as u32)
}

/// Bytes a chunk takes in a segment file: length field, encoding byte, payload, CRC.
fn stored_len(c: &Chunk<'_>) -> u64 {
    uvarint_len(c.data.len() as u64) as u64 + 1 + c.data.len() as u64 + 4
}

/// Writes chunk segment files into one directory.
pub struct Writer {
    dir: PathBuf,
    segment_size: u64,
    /// Files created by this writer, in order; the last one is open.
    files: Vec<PathBuf>,
    out: Option<BufWriter<File>>,
    /// Bytes in the current segment (0 before the first one is cut).
    n: u64,
    /// Bytes in all finished segments.
    finished_bytes: u64,
    next_seq: u64,
    failed: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("chunks::Writer")
            .field("dir", &self.dir)
            .field("segment_size", &self.segment_size)
            .field("segments", &self.files.len())
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// A writer into `dir` (created if missing) that cuts segments at `segment_size` bytes
    /// (0 means [`DEFAULT_SEGMENT_SIZE`]). `dir` should hold no segment files: refs count
    /// this writer's files from index 0.
    pub fn create(dir: impl AsRef<Path>, segment_size: u64) -> Result<Writer> {
        let dir = dir.as_ref().to_path_buf();
        crate::fs::create_dir_all(&dir).at(&dir)?;
        let mut max_seq = 0;
        for e in std::fs::read_dir(&dir).at(&dir)? {
            let e = e.at(&dir)?;
            if let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) {
                max_seq = max_seq.max(n);
            }
        }
        Ok(Writer {
            dir,
            segment_size: if segment_size == 0 {
                DEFAULT_SEGMENT_SIZE
            } else {
                segment_size
            },
            files: Vec::new(),
            out: None,
            n: 0,
            finished_bytes: 0,
            next_seq: max_seq + 1,
            failed: false,
        })
    }

    /// Writes the chunks of one series and appends their refs to `refs`.
    ///
    /// All chunks of a series form one batch: a new segment is cut before it if it would not
    /// fit the current one, and inside it only when the batch alone exceeds the segment size
    /// (Prometheus `Writer.WriteChunks`).
    pub fn write_series_chunks(&mut self, chunks: &[Chunk<'_>], refs: &mut Vec<u64>) -> Result<()> {
        if self.failed {
            return Err(Error::InvalidArgument(format!(
                "chunk writer for {} failed earlier",
                self.dir.display()
            )));
        }
        let res = self.write_batches(chunks, refs);
        if res.is_err() {
            self.failed = true;
        }
        res
    }

    fn write_batches(&mut self, chunks: &[Chunk<'_>], refs: &mut Vec<u64>) -> Result<()> {
        // Split into batches exactly as Prometheus does; sizes budget 5 bytes per length field.
        let mut batches: Vec<std::ops::Range<usize>> = Vec::with_capacity(2);
        batches.push(0..0);
        let mut batch_size = 0u64;
        let mut batch_start = 0;
        let mut first_batch = true;
        for (i, c) in chunks.iter().enumerate() {
            let size = MAX_LEN_FIELD + 1 + c.data.len() as u64 + 4;
            batch_size += size;
            let mut cut = i != 0 && batch_size + SEGMENT_HEADER_LEN > self.segment_size;
            if first_batch && self.n > SEGMENT_HEADER_LEN {
                cut = batch_size + self.n > self.segment_size;
                if cut {
                    first_batch = false;
                }
            }
            if cut {
                batch_start = i;
                batches.push(i..i);
                batch_size = size;
            }
            *batches.last_mut().expect("never empty") = batch_start..i + 1;
        }
        if self.n == 0 {
            self.cut()?;
        }
        let last = batches.len() - 1;
        for (i, b) in batches.into_iter().enumerate() {
            for c in &chunks[b] {
                refs.push(self.write_chunk(c)?);
            }
            if i < last {
                self.cut()?;
            }
        }
        Ok(())
    }

    fn write_chunk(&mut self, c: &Chunk<'_>) -> Result<u64> {
        let seg = (self.files.len() - 1) as u32;
        let offset = u32::try_from(self.n).map_err(|_| Error::LimitExceeded {
            limit: crate::error::Limit::Format,
            reason: format!(
                "chunk segment {} exceeds 4 GiB; chunk refs hold 32-bit offsets",
                self.files[seg as usize].display()
            ),
        })?;
        let mut head = Vec::with_capacity(11);
        put_uvarint(&mut head, c.data.len() as u64);
        head.push(c.encoding.as_u8());
        let crc = crc32c_append(crc32c(&[c.encoding.as_u8()]), c.data);
        let path = &self.files[seg as usize];
        let out = self.out.as_mut().expect("a segment is open after cut");
        out.write_all(&head)
            .and_then(|_| out.write_all(c.data))
            .and_then(|_| out.write_all(&crc.to_be_bytes()))
            .at(path)?;
        self.n += stored_len(c);
        Ok(chunk_ref(seg, offset))
    }

    /// Finishes the current segment (flush, fsync) and starts the next one.
    fn cut(&mut self) -> Result<()> {
        self.finalize_tail()?;
        let path = self.dir.join(format!("{:06}", self.next_seq));
        self.next_seq += 1;
        let f = File::create(&path).at(&path)?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = FORMAT_V1;
        out.write_all(&header).at(&path)?;
        self.files.push(path);
        self.out = Some(out);
        self.n = SEGMENT_HEADER_LEN;
        Ok(())
    }

    fn finalize_tail(&mut self) -> Result<()> {
        if let Some(out) = self.out.take() {
            let path = self.files.last().expect("open segment has a path");
            let f = out
                .into_inner()
                .map_err(|e| Error::io(path, e.into_error()))?;
            f.sync_all().at(path)?;
            self.finished_bytes += self.n;
        }
        Ok(())
    }

    /// Flushes and fsyncs the last segment and the directory. Returns the total bytes written
    /// and the segment files, in order.
    pub fn finish(mut self) -> Result<(u64, Vec<PathBuf>)> {
        if self.failed {
            return Err(Error::InvalidArgument(format!(
                "chunk writer for {} failed earlier",
                self.dir.display()
            )));
        }
        self.finalize_tail()?;
        sync_dir(&self.dir)?;
        Ok((self.finished_bytes, std::mem::take(&mut self.files)))
    }
}

/// Reads the chunk segment files of one block.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    segments: Vec<(PathBuf, FileBytes)>,
    size: u64,
}

impl Reader {
    /// Maps every numerically named file of `dir`, in name order, and checks each header.
    pub fn open(dir: impl AsRef<Path>) -> Result<Reader> {
        let dir = dir.as_ref().to_path_buf();
        let mut names = Vec::new();
        for e in std::fs::read_dir(&dir).at(&dir)? {
            let e = e.at(&dir)?;
            let name = e.file_name();
            if name.to_str().is_some_and(|s| s.parse::<u64>().is_ok()) {
                names.push(name);
            }
        }
        // Go's os.ReadDir order: by name, not by number (§1.4).
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        for n in names {
            let p = dir.join(n);
            let b = FileBytes::open(&p)?;
            segments.push((p, b));
        }
        Reader::new(dir, segments)
    }

    /// A reader over in-memory segments (tests, fuzzing); paths are for error messages.
    pub fn from_segments(segments: Vec<(PathBuf, Vec<u8>)>) -> Result<Reader> {
        let segments = segments
            .into_iter()
            .map(|(p, b)| (p, FileBytes::Owned(b)))
            .collect();
        Reader::new(PathBuf::from("chunks"), segments)
    }

    fn new(dir: PathBuf, segments: Vec<(PathBuf, FileBytes)>) -> Result<Reader> {
        let mut size = 0;
        for (p, b) in &segments {
            if (b.len() as u64) < SEGMENT_HEADER_LEN {
                return Err(Error::corruption(
                    p,
                    0,
                    format!("segment of {} bytes is shorter than its header", b.len()),
                ));
            }
            let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            if magic != MAGIC {
                return Err(Error::corruption(
                    p,
                    0,
                    format!("invalid chunk segment magic {magic:#010x}"),
                ));
            }
            if b[4] != FORMAT_V1 {
                return Err(Error::corruption(
                    p,
                    4,
                    format!("invalid chunk segment format version {}", b[4]),
                ));
            }
            size += b.len() as u64;
        }
        Ok(Reader {
            dir,
            segments,
            size,
        })
    }

    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of segment files.
    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// The chunk at `chunk_ref`, CRC-checked.
    pub fn chunk(&self, chunk_ref: u64) -> Result<Chunk<'_>> {
        let (seg, offset) = unpack_ref(chunk_ref);
        let Some((path, b)) = self.segments.get(seg as usize) else {
            return Err(Error::corruption(
                &self.dir,
                None,
                format!(
                    "chunk ref {chunk_ref:#x} names segment index {seg}, but there are {} \
                     segments",
                    self.segments.len()
                ),
            ));
        };
        read_chunk(path, b, u64::from(offset)).map(|(c, _)| c)
    }

    /// The segment file a chunk ref points into (for naming it in errors), if it exists.
    pub fn segment_path(&self, chunk_ref: u64) -> Option<&Path> {
        let (seg, _) = unpack_ref(chunk_ref);
        self.segments.get(seg as usize).map(|(p, _)| p.as_path())
    }

    /// Walks the chunks of segment `index` from its header to its end, yielding each ref and
    /// chunk; stops after the first error. Prometheus-written segments end exactly after
    /// their last chunk.
    pub fn segment_chunks(&self, index: usize) -> SegmentChunks<'_> {
        SegmentChunks {
            seg: self
                .segments
                .get(index)
                .map(|(p, b)| (index as u32, p.as_path(), &b[..])),
            pos: SEGMENT_HEADER_LEN,
        }
    }
}

impl reader::ChunkReader for Reader {
    fn chunk<'a>(&'a self, meta: &'a reader::ChunkMeta) -> Result<Chunk<'a>> {
        match &meta.chunk {
            ChunkRef::Block(r) => Reader::chunk(self, *r),
            ChunkRef::Head { .. } => Err(Error::Internal(format!(
                "a head chunk read through the chunk reader of {}",
                self.dir.display()
            ))),
        }
    }

    fn source(&self, meta: &reader::ChunkMeta, chunk: &Chunk<'_>) -> ChunkSource<'_> {
        let r = match &meta.chunk {
            ChunkRef::Block(r) => *r,
            ChunkRef::Head { .. } => 0,
        };
        let (_, offset) = unpack_ref(r);
        ChunkSource {
            file: self.segment_path(r).unwrap_or(&self.dir),
            offset: u64::from(offset) + uvarint_len(chunk.data.len() as u64) as u64 + 1,
        }
    }
}

/// Reads the chunk at `offset` of a segment; returns it and the offset after it.
fn read_chunk<'a>(path: &Path, b: &'a [u8], offset: u64) -> Result<(Chunk<'a>, u64)> {
    let corrupt = |reason: String| Error::corruption(path, offset, reason);
    if offset < SEGMENT_HEADER_LEN || offset >= b.len() as u64 {
        return Err(corrupt(format!(
            "chunk offset outside the chunk data of a {}-byte segment",
            b.len()
        )));
    }
    let mut d = Decbuf::new(&b[offset as usize..]);
    let len = d
        .uvarint()
        .map_err(|e| corrupt(format!("chunk length: {}", e.reason)))?;
    // Encoding byte, payload and CRC must all be there.
    let left = d.remaining() as u64;
    if left < 5 || len > left - 5 {
        return Err(corrupt(format!(
            "chunk of {len} bytes runs past the end of the segment ({} bytes left)",
            d.remaining()
        )));
    }
    let enc_and_data = &d.rest()[..1 + len as usize];
    let encoding = d.u8().map_err(|e| corrupt(e.reason.into()))?;
    let data = d
        .bytes(len as usize)
        .map_err(|e| corrupt(e.reason.into()))?;
    let want = d.be32().map_err(|e| corrupt(e.reason.into()))?;
    let got = crc32c(enc_and_data);
    if got != want {
        return Err(corrupt(format!(
            "chunk CRC mismatch: stored {want:#010x}, computed {got:#010x}"
        )));
    }
    // Checked after the CRC: an unknown byte that the CRC covers was written that way, by a
    // writer with an encoding annals does not know.
    let encoding = Encoding::from_u8(encoding).ok_or_else(|| Error::Unsupported {
        file: path.to_path_buf(),
        offset: Some(offset),
        reason: format!("chunk encoding {encoding}, which annals does not know"),
    })?;
    let next = offset + d.position() as u64;
    Ok((Chunk { encoding, data }, next))
}

/// Iterator over the chunks of one segment, see [`Reader::segment_chunks`].
pub struct SegmentChunks<'a> {
    seg: Option<(u32, &'a Path, &'a [u8])>,
    pos: u64,
}

impl<'a> Iterator for SegmentChunks<'a> {
    type Item = Result<(u64, Chunk<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let (index, path, b) = self.seg?;
        if self.pos >= b.len() as u64 {
            return None;
        }
        let Ok(offset) = u32::try_from(self.pos) else {
            self.seg = None;
            return Some(Err(Error::corruption(
                path,
                self.pos,
                "segment longer than 4 GiB",
            )));
        };
        match read_chunk(path, b, self.pos) {
            Ok((c, next)) => {
                self.pos = next;
                Some(Ok((chunk_ref(index, offset), c)))
            }
            Err(e) => {
                self.seg = None;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::testutil::fixture;

    fn xor(data: &[u8]) -> Chunk<'_> {
        Chunk {
            encoding: Encoding::Xor,
            data,
        }
    }

    /// The first chunk of the golden block, §1.5's worked example.
    const GOLDEN_CHUNK_1: [u8; 25] = [
        0x00, 0x04, 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x98, 0x75,
        0xc2, 0x5f, 0xff, 0x40, 0x05, 0xb0, 0x2c,
    ];

    #[test]
    fn golden_segment_reads_and_rewrites_byte_identical() {
        let dir = fixture("promtool-2.42-block/chunks");
        let r = Reader::open(&dir).unwrap();
        assert_eq!(r.num_segments(), 1);
        assert_eq!(r.size(), 88);
        let c = r.chunk(8).unwrap();
        assert_eq!(c, xor(&GOLDEN_CHUNK_1));
        assert_eq!(c.num_samples(), Some(4));
        assert_eq!(r.chunk(39).unwrap().num_samples(), Some(2));
        assert_eq!(r.chunk(65).unwrap().num_samples(), Some(1));
        let walked: Vec<u64> = r.segment_chunks(0).map(|c| c.unwrap().0).collect();
        assert_eq!(walked, [8, 39, 65]);
        assert!(r.segment_chunks(1).next().is_none());

        // One series per chunk, as the compactor writes them.
        let out = tempfile::tempdir().unwrap();
        let mut w = Writer::create(out.path(), 0).unwrap();
        let mut refs = Vec::new();
        for c in r.segment_chunks(0) {
            w.write_series_chunks(&[c.unwrap().1], &mut refs).unwrap();
        }
        let (size, files) = w.finish().unwrap();
        assert_eq!(refs, [8, 39, 65]);
        assert_eq!(size, 88);
        assert_eq!(files, [out.path().join("000001")]);
        assert!(std::fs::read(&files[0]).unwrap() == std::fs::read(dir.join("000001")).unwrap());
    }

    #[test]
    fn node_exporter_segments_rewrite_byte_identical() {
        for b in [
            "node-exporter-blocks/01M8396A503TACQT84BKW870RK",
            "node-exporter-blocks/01M8396ANRP6M7K730VKK2CXKZ",
        ] {
            let dir = fixture(b).join("chunks");
            let r = Reader::open(&dir).unwrap();
            let chunks: Vec<(u64, Chunk<'_>)> = r.segment_chunks(0).map(|c| c.unwrap()).collect();
            assert_eq!(chunks.len(), 2028);
            // Every 4 consecutive chunks belong to one series (120 samples each).
            let out = tempfile::tempdir().unwrap();
            let mut w = Writer::create(out.path(), 0).unwrap();
            let mut refs = Vec::new();
            for batch in chunks.chunks(4) {
                let cs: Vec<Chunk<'_>> = batch.iter().map(|(_, c)| *c).collect();
                w.write_series_chunks(&cs, &mut refs).unwrap();
            }
            w.finish().unwrap();
            assert_eq!(refs, chunks.iter().map(|(r, _)| *r).collect::<Vec<_>>());
            assert!(
                std::fs::read(out.path().join("000001")).unwrap()
                    == std::fs::read(dir.join("000001")).unwrap()
            );
        }
    }

    fn one_chunk_segment() -> Vec<u8> {
        std::fs::read(fixture("promtool-2.42-block/chunks/000001")).unwrap()[..39].to_vec()
    }

    fn open_mem(b: Vec<u8>) -> Result<Reader> {
        Reader::from_segments(vec![(PathBuf::from("chunks/000001"), b)])
    }

    /// Prometheus `TestCorruptedChunk`.
    #[test]
    fn corrupted_chunks_are_reported_with_file_and_offset() {
        let corruption = |r: Result<Reader>| match r {
            Err(Error::Corruption {
                file,
                offset,
                reason,
            }) => (file, offset, reason),
            other => panic!("expected corruption, got {other:?}"),
        };
        // Bad magic.
        let mut b = one_chunk_segment();
        b[0] ^= 0xff;
        let (file, offset, reason) = corruption(open_mem(b));
        assert_eq!((file.to_str().unwrap(), offset), ("chunks/000001", Some(0)));
        assert!(reason.contains("magic"), "{reason}");
        // Bad version.
        let mut b = one_chunk_segment();
        b[4] = 2;
        let (_, offset, reason) = corruption(open_mem(b));
        assert_eq!(offset, Some(4));
        assert!(reason.contains("version 2"), "{reason}");
        // Shorter than a header.
        let (_, _, reason) = corruption(open_mem(vec![0x85, 0xbd, 0x40]));
        assert!(reason.contains("shorter"), "{reason}");

        let read = |b: Vec<u8>, r: u64| match open_mem(b).unwrap().chunk(r) {
            Err(Error::Corruption { offset, reason, .. }) => (offset, reason),
            other => panic!("expected corruption, got {other:?}"),
        };
        // CRC mismatch: a flipped payload bit.
        let mut b = one_chunk_segment();
        b[20] ^= 0x10;
        let (offset, reason) = read(b, 8);
        assert_eq!(offset, Some(8));
        assert!(reason.contains("CRC"), "{reason}");
        // Truncated: the chunk's length runs past the end.
        let mut b = one_chunk_segment();
        b.truncate(30);
        let (_, reason) = read(b, 8);
        assert!(reason.contains("past the end"), "{reason}");
        let mut b = one_chunk_segment();
        b.truncate(37); // CRC cut short.
        let (_, reason) = read(b, 8);
        assert!(reason.contains("past the end"), "{reason}");
        // Refs outside the file, into the header, or into a missing segment.
        let (_, reason) = read(one_chunk_segment(), 39);
        assert!(reason.contains("outside"), "{reason}");
        let (_, reason) = read(one_chunk_segment(), 4);
        assert!(reason.contains("outside"), "{reason}");
        let (_, reason) = read(one_chunk_segment(), chunk_ref(1, 8));
        assert!(reason.contains("segment index 1"), "{reason}");
        // The intact segment reads.
        assert_eq!(
            open_mem(one_chunk_segment()).unwrap().chunk(8).unwrap(),
            xor(&GOLDEN_CHUNK_1)
        );
    }

    /// Fuzz find (block_files): a zero length field as the last byte of a segment passed
    /// the bounds check (`saturating_sub`) and sliced past the end.
    #[test]
    fn regression_length_field_at_the_very_end() {
        let mut seg = one_chunk_segment()[..8].to_vec();
        seg.push(0);
        let r = open_mem(seg).unwrap();
        assert!(matches!(
            r.chunk(8),
            Err(Error::Corruption {
                offset: Some(8),
                ..
            })
        ));
        assert!(matches!(
            r.segment_chunks(0).next(),
            Some(Err(Error::Corruption { .. }))
        ));
        // The fuzz input itself (its first byte selected the segment decoder).
        let input = [0x00, 0x85, 0xbd, 0x40, 0xdd, 0x01, 0xff, 0x38, 0x00, 0x00];
        let r = open_mem(input[1..].to_vec()).unwrap();
        assert!(r.segment_chunks(0).all(|c| c.is_err()));
    }

    #[test]
    fn open_rejects_a_damaged_segment_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = one_chunk_segment();
        b[4] = 9;
        std::fs::write(dir.path().join("000001"), b).unwrap();
        std::fs::write(dir.path().join("not-a-segment"), b"x").unwrap();
        let e = Reader::open(dir.path()).unwrap_err();
        assert!(
            matches!(&e, Error::Corruption { file, .. } if file.ends_with("000001")),
            "{e}"
        );
    }

    #[test]
    fn segments_are_cut_where_prometheus_cuts_them() {
        let data = [7u8; 10];
        let c = xor(&data);
        // Each chunk is budgeted 5 + 1 + 10 + 4 = 20 bytes (stored: 16).
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::create(dir.path(), 8 + 40).unwrap();
        let mut refs = Vec::new();
        // Two chunks fit a fresh segment exactly.
        w.write_series_chunks(&[c, c], &mut refs).unwrap();
        // 40 + 20 > 48: the next series goes to a new segment.
        w.write_series_chunks(&[c], &mut refs).unwrap();
        // 24 + 20 <= 48: same segment.
        w.write_series_chunks(&[c], &mut refs).unwrap();
        // A batch larger than a segment is split, never leaving an empty segment.
        w.write_series_chunks(&[c, c, c, c, c], &mut refs).unwrap();
        let (size, files) = w.finish().unwrap();
        assert_eq!(
            refs,
            [
                chunk_ref(0, 8),
                chunk_ref(0, 24),
                chunk_ref(1, 8),
                chunk_ref(1, 24),
                chunk_ref(2, 8),
                chunk_ref(2, 24),
                chunk_ref(3, 8),
                chunk_ref(3, 24),
                chunk_ref(4, 8),
            ]
        );
        assert_eq!(files.len(), 5);
        assert_eq!(size, 4 * 40 + 24);
        let r = Reader::open(dir.path()).unwrap();
        for &x in &refs {
            assert_eq!(r.chunk(x).unwrap(), c);
        }
        // A single chunk larger than a segment still gets written.
        let dir = tempfile::tempdir().unwrap();
        let big = vec![1u8; 100];
        let mut w = Writer::create(dir.path(), 48).unwrap();
        let mut refs = Vec::new();
        w.write_series_chunks(&[xor(&big)], &mut refs).unwrap();
        w.write_series_chunks(&[xor(&big)], &mut refs).unwrap();
        w.finish().unwrap();
        assert_eq!(refs, [chunk_ref(0, 8), chunk_ref(1, 8)]);
    }

    proptest! {
        // Each case creates and fsyncs files.
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn written_chunks_read_back(
            series in prop::collection::vec(
                prop::collection::vec((1u8..4, prop::collection::vec(any::<u8>(), 0..300)), 0..5),
                0..30),
            segment_size in 40u64..3000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = Writer::create(dir.path(), segment_size).unwrap();
            let mut refs = Vec::new();
            for s in &series {
                let cs: Vec<Chunk<'_>> = s
                    .iter()
                    .map(|(e, d)| Chunk { encoding: Encoding::from_u8(*e).unwrap(), data: d })
                    .collect();
                w.write_series_chunks(&cs, &mut refs).unwrap();
            }
            let (size, files) = w.finish().unwrap();
            let r = Reader::open(dir.path()).unwrap();
            prop_assert_eq!(r.size(), size);
            prop_assert_eq!(r.num_segments(), files.len());
            let flat: Vec<&(u8, Vec<u8>)> = series.iter().flatten().collect();
            prop_assert_eq!(refs.len(), flat.len());
            for (x, (e, d)) in refs.iter().zip(flat.iter()) {
                let c = r.chunk(*x).unwrap();
                prop_assert_eq!((c.encoding.as_u8(), c.data), (*e, &d[..]));
            }
            prop_assert!(refs.windows(2).all(|w| w[0] < w[1]));
            let walked: Vec<u64> = (0..r.num_segments())
                .flat_map(|i| r.segment_chunks(i).map(|c| c.unwrap().0).collect::<Vec<_>>())
                .collect();
            prop_assert_eq!(walked, refs);
        }

        #[test]
        fn arbitrary_segments_never_panic(b in prop::collection::vec(any::<u8>(), 0..200), refs in prop::collection::vec(any::<u64>(), 0..8)) {
            let mut seg = MAGIC.to_be_bytes().to_vec();
            seg.extend_from_slice(&[FORMAT_V1, 0, 0, 0]);
            seg.extend_from_slice(&b);
            let r = open_mem(seg).unwrap();
            for x in refs {
                let _ = r.chunk(x);
                let _ = r.chunk(x & 0xff);
            }
            for c in r.segment_chunks(0) {
                let _ = c;
            }
        }
    }
}
