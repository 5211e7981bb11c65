//! Low-level access to the on-disk formats, for the tools of this workspace (the CLI's import,
//! list, dump and analyze, the fuzz targets, a WAL tailer) and for tests.
//!
//! **Unstable**: this module follows the formats and annals's internals and may change in any
//! release, including patch releases. An embedding program needs none of it: the crate root
//! is the API. Format details are cited from the format brief (`§n.m`) and Prometheus's
//! `tsdb/docs/format/*.md`.

/// The write-ahead log (§1.9–1.11): segment listing, a reader over checkpoints and segments
/// that resumes at a position and follows a live segment, typed record codecs, the writer.
pub mod wal {
    pub use crate::db::head_series_labels;
    pub use crate::wal::{
        checkpoint_dir, decode_exemplars, decode_metadata, decode_samples, decode_series,
        decode_tombstones, encode_exemplars, encode_metadata, encode_samples, encode_series,
        encode_tombstones, last_checkpoint, list_segments, record_type, segment_path,
        segment_range, Compression, Position, Reader, RecordType, RefExemplar, RefMetadata,
        RefSample, RefSeries, RepairReport, SegmentListing, Stone, Wal, WalOptions, WalStats,
        DEFAULT_SEGMENT_SIZE, PAGE_SIZE,
    };
    pub use crate::wal::{
        decode_float_histogram_samples, decode_histogram_samples, decode_mmap_markers,
        encode_float_histogram_samples, encode_histogram_samples, encode_mmap_markers,
        RefFloatHistogramSample, RefHistogramSample, RefMmapMarker,
    };
}

/// Blocks (§1.2–1.8): opening and reading one, listing a data directory's, writing one.
pub mod block {
    pub use crate::block::meta::FILE_NAME as META_FILE_NAME;
    pub use crate::block::{
        dir_size, list_block_dirs, write_block, Block, BlockDesc, BlockOptions, BlockWriter,
        Compaction, Meta, SeriesChunk, Stats,
    };

    /// Chunk segment files `<block>/chunks/NNNNNN` (§1.4).
    pub mod chunks {
        pub use crate::block::chunks::{chunk_ref, unpack_ref, Reader, SegmentChunks};
    }
}

/// The block index, format v2 (§1.7), and the postings algebra.
pub mod index {
    pub use crate::index::{BlockSeriesRef, ChunkMeta, Reader, Symbols, Toc, WriterOptions};

    /// Intersection, union and difference of sorted series refs.
    pub mod postings {
        pub use crate::index::postings::{intersect, subtract, union};
    }
}

/// Chunk encodings (§1.5, §1.6): the XOR chunk appender and iterator, the head's cut rules,
/// and the integer and float native-histogram chunks with Prometheus's appendability rules.
pub mod chunkenc {
    pub use crate::chunkenc::{range_end, Chunk, CutPolicy, Encoding, XorAppender, XorIter};
    pub use crate::chunkenc::{
        AppendError, Appendable, CounterResetHeader, FloatHistogramAppender, FloatHistogramIter,
        GaugeAppendable, HistogramAppender, HistogramIter, Insert, NewChunkReason, Pushed,
    };
}

/// Primitive encodings of every format (§1.0): varints, CRC-32C, a bounds-checked decoder.
pub mod encoding {
    pub use crate::encoding::{
        crc32c, put_uvarint, put_varint, zigzag_decode, zigzag_encode, Decbuf, DecodeError,
    };
}

/// Merging blocks into a new one (§2.7), as the database's compaction does.
pub mod compact {
    pub use crate::compact::{clean_tombstones, compact_blocks, CompactOptions};
}

/// Deleted intervals per series and the `tombstones` file (§1.8).
pub mod tombstones {
    pub use crate::tombstones::{Interval, Intervals, Tombstones};
}

/// The head chunk files (`chunks_head/`, §1.12) and the series records of memory snapshots
/// (`chunk_snapshot.*`, §1.13).
pub mod head_chunks {
    pub use crate::head::chunk_format::{decode_file, HeadChunk};
    pub use crate::head::mem_snapshot::{
        decode_series_record as decode_snapshot_series, SnapshotSeries,
    };
}

#[cfg(feature = "fault-injection")]
pub use crate::fs::fault;
