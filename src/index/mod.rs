//! The block index, format v2 (brief §1.7), and the postings algebra.
//!
//! [`Writer`] streams an index to disk: symbols first, then series in label order, then the
//! postings it collected in memory as compact `u32` lists. With the default
//! [`WriterOptions`] its output is byte-identical to a Prometheus 2.x writer given the same
//! symbols, series and chunk references. [`Reader`] memory-maps an index and answers symbol,
//! label-name, label-value, postings and series lookups; it never panics on any bytes.

pub mod postings;
mod reader;
mod writer;

pub use crate::error::InputError;
pub use reader::{Reader, Symbols};
pub(crate) use writer::validate_chunks;
pub use writer::{Writer, WriterOptions};

use crate::encoding::{crc32c, Decbuf};

/// First four bytes of an index file (§1.7.1).
pub const MAGIC: u32 = 0xBAAA_D700;
/// The index format version this crate writes and reads (§1.7.1).
pub const FORMAT_V2: u8 = 2;
/// Magic and version.
pub const HEADER_LEN: usize = 5;
/// Length of the table of contents at the end of the file: six BE64 offsets and a CRC (§1.7.7).
pub const TOC_LEN: usize = 6 * 8 + 4;
/// Series entries start at multiples of this; a v2 series ref is its entry offset divided by it.
pub const SERIES_ALIGN: u64 = 16;

/// Reference to a series within one block's index: its entry offset / 16 (§1.14).
pub type BlockSeriesRef = u32;

/// One chunk of a series as the index records it: its closed time range `[min_time,
/// max_time]` and its `BlockChunkRef` into the chunk segment files (§1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkMeta {
    /// Timestamp of the first sample (ms).
    pub min_time: i64,
    /// Timestamp of the last sample (ms), inclusive.
    pub max_time: i64,
    /// `(segment_index << 32) | offset` of the chunk in the block's `chunks/` files.
    pub chunk_ref: u64,
}

impl ChunkMeta {
    /// Whether the chunk's closed range overlaps the closed range `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint <= self.max_time
    }
}

/// The index table of contents: absolute offsets of the sections (§1.7.7). Zero means absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Toc {
    /// Symbol table (always 5 in files written by Prometheus and by this crate).
    pub symbols: u64,
    /// Start of the series section (the first entry is at the next multiple of 16).
    pub series: u64,
    /// Start of the legacy label index sections (2.x writers); else equal to `postings`.
    pub label_indices: u64,
    /// Legacy label offset table (2.x writers); else equal to `postings_offset_table`.
    pub label_indices_table: u64,
    /// Start of the postings lists; may point at padding before the first list.
    pub postings: u64,
    /// Postings offset table.
    pub postings_offset_table: u64,
}

impl Toc {
    /// The 52 bytes written at the end of the index.
    pub fn encode(&self) -> [u8; TOC_LEN] {
        let mut b = [0u8; TOC_LEN];
        let fields = [
            self.symbols,
            self.series,
            self.label_indices,
            self.label_indices_table,
            self.postings,
            self.postings_offset_table,
        ];
        for (i, f) in fields.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&f.to_be_bytes());
        }
        let crc = crc32c(&b[..48]);
        b[48..].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// Parses the last 52 bytes of an index, checking the CRC. The error is a reason
    /// for `Error::Corruption`.
    pub fn decode(b: &[u8]) -> Result<Toc, &'static str> {
        if b.len() != TOC_LEN {
            return Err("table of contents must be 52 bytes");
        }
        let mut d = Decbuf::new(b);
        let mut f = [0u64; 6];
        for x in f.iter_mut() {
            *x = d.be64().map_err(|_| "short table of contents")?;
        }
        let want = d.be32().map_err(|_| "short table of contents")?;
        if crc32c(&b[..48]) != want {
            return Err("table of contents CRC mismatch");
        }
        Ok(Toc {
            symbols: f[0],
            series: f[1],
            label_indices: f[2],
            label_indices_table: f[3],
            postings: f[4],
            postings_offset_table: f[5],
        })
    }
}

#[cfg(test)]
mod tests;
