//! The write-ahead log in Prometheus 2.x format (format brief §1.9–1.11).
//!
//! A WAL directory holds segment files named `%08d` with contiguous indices. Each segment is a
//! sequence of 32 KiB pages holding record fragments (§1.9); records are typed byte strings
//! (§1.10, [`encode_series`], [`decode_samples`], ...). [`Wal`] appends, [`Reader`] reads a
//! sequence of segments back and reports damage as [`Error::Corruption`](crate::Error::Corruption)
//! naming the segment file and offset (and as a [`Position`], [`Reader::damage`]),
//! [`is_torn_tail`] tells a torn write from damage in the middle of the log, [`repair`] cuts a
//! damaged WAL back to its last intact record, and
//! [`checkpoint()`] folds old segments into a `checkpoint.N` directory (§1.11).
//!
//! Files written here are byte-compatible with Prometheus 2.x: the page and fragment layout is
//! Prometheus's writer algorithm step by step, so a WAL written by [`Wal`] replays in
//! Prometheus, and Prometheus's WALs read here.
//!
//! ```
//! use annals::unstable::wal::{self, Reader, Wal, WalOptions};
//! # fn main() -> annals::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let w = Wal::open(dir.path(), WalOptions::default())?;
//! let mut buf = Vec::new();
//! wal::encode_samples([wal::RefSample { series_ref: 1, t: 1000, v: 2.5 }], &mut buf);
//! let pos = w.log(&[&buf])?;
//! w.sync_to(pos)?;
//! w.close()?;
//!
//! let mut r = Reader::open_dir(dir.path(), 0)?;
//! let (rec, _at) = r.next_record()?.expect("one record");
//! let mut samples = Vec::new();
//! wal::decode_samples(rec, &mut samples).unwrap();
//! assert_eq!(samples[0].v, 2.5);
//! # Ok(()) }
//! ```

mod checkpoint;
mod filter;
mod fragment;
mod histogram_record;
mod reader;
pub(crate) mod record;
mod repair;
mod segment;
mod writer;

pub use checkpoint::{
    checkpoint, checkpoint_dir, delete_checkpoints_before, last_checkpoint, remove_tmp_checkpoints,
};
pub use histogram_record::{
    decode_float_histogram_samples, decode_histogram_samples, decode_mmap_markers,
    encode_float_histogram_samples, encode_histogram_samples, encode_mmap_markers,
    RefFloatHistogramSample, RefHistogramSample, RefMmapMarker,
};
pub use reader::Reader;
pub use record::{
    decode_exemplars, decode_metadata, decode_samples, decode_series, decode_tombstones,
    encode_exemplars, encode_metadata, encode_samples, encode_series, encode_tombstones,
    record_type, RecordType, RefExemplar, RefMetadata, RefSample, RefSeries, Stone,
};
pub use repair::{is_torn_tail, repair, RepairReport};
pub use segment::{
    delete_segments_before, list_segments, segment_path, segment_range, SegmentListing,
};
pub use writer::{Wal, WalStats};

/// Size of a page: fragments are packed into pages of this size (§1.9).
pub const PAGE_SIZE: usize = 32 * 1024;

/// Size of a fragment header: type byte, BE16 length, BE32 CRC-32C (§1.9).
pub const FRAGMENT_HEADER_SIZE: usize = 7;

/// Default maximum segment size (Prometheus's `DefaultSegmentSize`).
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 * 1024 * 1024;

/// How records are compressed before fragmentation (§1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Records are stored as they are.
    None,
    /// Each record is compressed with snappy's block format (Go `snappy.Encode`, Rust
    /// `snap::raw`), and stored compressed only when that makes it smaller. Prometheus's
    /// default since 2.20.
    #[default]
    Snappy,
}

/// Options of a [`Wal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// Maximum size of a segment file in bytes; must be a positive multiple of [`PAGE_SIZE`].
    /// A record never spans two segments, so one record larger than a segment gets a segment
    /// of its own that grows past this size. Default [`DEFAULT_SEGMENT_SIZE`] (128 MiB).
    pub segment_size: u64,
    /// Record compression. Default [`Compression::Snappy`].
    pub compression: Compression,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            compression: Compression::Snappy,
        }
    }
}

/// A byte position in a WAL: a segment index and an offset within that segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Index of the segment file (its `%08d` name).
    pub segment: u32,
    /// Byte offset within the segment file.
    pub offset: u64,
}

#[cfg(test)]
mod tests;
