//! The read interface every source of stored series offers, a range of the head as much as a
//! persisted block (Prometheus `tsdb/block.go`: `IndexReader`, `ChunkReader`, `BlockReader`).
//!
//! Queries, compaction (of head ranges and of blocks), [`Db::snapshot`](crate::Db::snapshot)
//! and deletion read through it, so none of them knows which kind of source it reads:
//!
//! * [`IndexReader`]: label names and values, postings (sorted series refs) for label pairs,
//!   for the values a predicate keeps and for all series, and a series' labels and chunk metas
//!   by ref. [`postings_for_matchers`] is the one resolution of matchers into refs over it.
//! * [`ChunkReader`]: the bytes of the chunk a [`ChunkMeta`] names.
//! * [`BlockReader`]: both, plus the tombstones and a [`ReaderMeta`] (time range, counts).
//!
//! Refs are the source's own: head series refs, or a block's series offsets / 16 (§1.14). A
//! [`ChunkMeta`] names its chunk by a [`ChunkRef`]: a block's chunk reference, which the
//! block's chunk reader resolves from its mapped segment files, or the bytes of a head chunk,
//! captured when the head handed out the meta (under its read guard, so a reader never sees
//! part of a commit; see `head::read`). [`chunks`] merges one series' chunks from several
//! sources, cut by tombstones or a time range, as compaction writes them and as queries read
//! them.

pub(crate) mod chunks;
mod postings;
pub(crate) mod values;

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

pub(crate) use chunks::ChunkSource;
pub(crate) use postings::postings_for_matchers;

use crate::chunkenc::{Chunk, Encoding};
use crate::error::{Error, Result};
use crate::model::Labels;
use crate::tombstones::Intervals;

/// Labels, postings and series of one source.
pub(crate) trait IndexReader {
    /// Label names of all series, sorted.
    fn label_names(&self) -> Result<Vec<String>>;

    /// Values of label `name` among all series, sorted; empty if no series has it.
    fn label_values(&self, name: &str) -> Result<Vec<String>>;

    /// Refs of the series with label `name` set to one of `values`: sorted, without
    /// duplicates.
    fn postings(&self, name: &str, values: &[&str]) -> Result<Vec<u64>>;

    /// Refs of the series with label `name` set to a value that `keep` accepts: sorted,
    /// without duplicates. Series without the label are not included.
    fn postings_matching(&self, name: &str, keep: &dyn Fn(&str) -> bool) -> Result<Vec<u64>>;

    /// Refs of every series, sorted.
    fn all_postings(&self) -> Result<Vec<u64>>;

    /// `refs` reordered so that their series' label sets increase (Prometheus
    /// `SortedPostings`); refs whose series no longer exist may be dropped.
    fn sorted_postings(&self, refs: Vec<u64>) -> Result<Vec<u64>>;

    /// The labels of series `r` and, into `chunks` (cleared first), the metas of its chunks
    /// (sorted by min time) that the reader's range covers. `None` when the series no longer
    /// exists (the head removed it after its ref was read from the postings).
    fn series(&self, r: u64, chunks: &mut Vec<ChunkMeta>) -> Result<Option<Labels>>;

    /// An error about series `r` whose data contradicts the format (for example labels out
    /// of order), naming where the series is stored.
    fn series_error(&self, r: u64, reason: String) -> Error;
}

/// Chunk bytes of one source.
pub(crate) trait ChunkReader {
    /// The chunk `meta` names; block chunks are CRC-checked here.
    fn chunk<'a>(&'a self, meta: &'a ChunkMeta) -> Result<Chunk<'a>>;

    /// Where the payload of `chunk` (read through `meta`) lies, for naming it in errors.
    fn source(&self, meta: &ChunkMeta, chunk: &Chunk<'_>) -> ChunkSource<'_>;
}

/// One source of series: its index, its chunks, its tombstones and its meta.
pub(crate) trait BlockReader {
    /// The index reader.
    type Index: IndexReader + ?Sized;
    /// The chunk reader.
    type Chunks: ChunkReader + ?Sized;

    /// Labels, postings and series.
    fn index(&self) -> &Self::Index;

    /// Chunk bytes.
    fn chunks(&self) -> &Self::Chunks;

    /// The deleted intervals (tombstones) of series `r`, if any.
    fn deleted(&self, r: u64) -> Option<Arc<Intervals>>;

    /// Time range and counts.
    fn reader_meta(&self) -> ReaderMeta;
}

/// What a [`BlockReader`] says about itself (Prometheus `BlockMeta`'s range and stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReaderMeta {
    /// Oldest sample time it may hold, inclusive (ms).
    pub(crate) min_time: i64,
    /// Newest sample time it may hold, inclusive (ms): a block's `maxTime` - 1.
    pub(crate) max_time: i64,
    /// Series (a head range counts every series of the head).
    pub(crate) num_series: u64,
}

impl ReaderMeta {
    /// Whether `[min_time, max_time]` overlaps `[mint, maxt]` (both closed).
    pub(crate) fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint <= self.max_time
    }
}

/// One chunk of a series: its closed time range and where its bytes are.
#[derive(Clone)]
pub(crate) struct ChunkMeta {
    /// Timestamp of the first sample (ms).
    pub(crate) min_time: i64,
    /// Timestamp of the last sample (ms), inclusive.
    pub(crate) max_time: i64,
    /// The chunk's bytes, or how to find them.
    pub(crate) chunk: ChunkRef,
}

impl ChunkMeta {
    /// Whether the chunk's closed range overlaps the closed range `[mint, maxt]`.
    #[inline]
    pub(crate) fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint <= self.max_time
    }
}

/// Where a chunk's bytes are. The encoding of a block chunk is stored beside its payload in
/// the segment file, not in the index (§1.4, §1.7.3), so it arrives with the bytes
/// ([`Chunk::encoding`]); a head chunk's is known when its meta is made.
#[derive(Clone)]
pub(crate) enum ChunkRef {
    /// A block chunk: `(segment index << 32) | offset` in the block's segment files (§1.4).
    Block(u64),
    /// A head chunk, resolved when the head handed out the meta: a closed chunk's shared or
    /// mapped bytes, or a copy of the open chunk's.
    Head {
        /// How the bytes are encoded.
        encoding: Encoding,
        /// The payload.
        bytes: ChunkBytes,
    },
}

/// The bytes of one chunk's payload: shared heap bytes, or a range of a file mapping that
/// stays valid while this handle lives (even after the file is deleted).
#[derive(Clone)]
pub(crate) enum ChunkBytes {
    /// Bytes on the heap.
    Mem(Arc<[u8]>),
    /// A closed chunk's bytes on the heap.
    Vec(Arc<Vec<u8>>),
    /// `map[start..start + len]`.
    Mapped {
        /// The mapping of a head chunk file.
        map: Arc<Mmap>,
        /// Offset of the payload in the mapping.
        start: usize,
        /// Length of the payload.
        len: usize,
    },
}

impl Deref for ChunkBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            ChunkBytes::Mem(b) => b,
            ChunkBytes::Vec(b) => b,
            ChunkBytes::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }
}

impl AsRef<[u8]> for ChunkBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// The chunk reader of head chunk metas, which carry their bytes: it needs no head.
pub(crate) struct HeadChunks;

/// Names head chunks in errors (they have no file of their own to name).
const HEAD_CHUNK: &str = "<head chunk>";

impl ChunkReader for HeadChunks {
    fn chunk<'a>(&'a self, meta: &'a ChunkMeta) -> Result<Chunk<'a>> {
        match &meta.chunk {
            ChunkRef::Head { encoding, bytes } => Ok(Chunk {
                encoding: *encoding,
                data: bytes,
            }),
            ChunkRef::Block(r) => Err(Error::Internal(format!(
                "block chunk {r:#x} read through the head's chunk reader"
            ))),
        }
    }

    fn source(&self, _meta: &ChunkMeta, _chunk: &Chunk<'_>) -> ChunkSource<'_> {
        ChunkSource {
            file: Path::new(HEAD_CHUNK),
            offset: 0,
        }
    }
}
