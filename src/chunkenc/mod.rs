//! Chunk encodings (format brief §1.5, §1.6): the encoding byte every chunk carries
//! ([`Encoding`]), a stored chunk ([`Chunk`]), the XOR ("Gorilla") float chunk and the integer
//! and float native-histogram chunks.
//!
//! A chunk payload is what follows the encoding byte in a segment file (§1.4) or a head chunk
//! file (§1.12). [`XorAppender`], [`HistogramAppender`] and [`FloatHistogramAppender`] build
//! payloads byte-identical to Prometheus 2.42's; [`XorIter`], [`HistogramIter`] and
//! [`FloatHistogramIter`] decode any payload without panicking.
//!
//! ```
//! use annals::unstable::chunkenc::{XorAppender, XorIter};
//!
//! let mut app = XorAppender::new();
//! for (i, v) in [1.0, 2.0, 4.0, 7.0].into_iter().enumerate() {
//!     app.append(1_700_000_000_000 + 15_000 * i as i64, v);
//! }
//! assert_eq!(app.len(), 25);
//! let values: Vec<f64> = XorIter::new(app.bytes()).map(|s| s.unwrap().v).collect();
//! assert_eq!(values, [1.0, 2.0, 4.0, 7.0]);
//! ```

mod appender;
mod bstream;
mod cut;
mod float_histogram;
#[cfg(test)]
mod golden;
mod histogram;
mod histogram_meta;
mod histogram_shared;
mod iter;
#[cfg(test)]
mod testutil;
mod varbit;

use std::fmt;

pub use appender::XorAppender;
pub use cut::{range_end, CutPolicy};
pub use float_histogram::{FloatHistogramAppender, FloatHistogramIter};
pub use histogram::{HistogramAppender, HistogramIter};
pub use histogram_meta::{
    AppendError, Appendable, CounterResetHeader, GaugeAppendable, Insert, NewChunkReason, Pushed,
};
pub use iter::XorIter;

/// Offset of the bit stream in an XOR payload, after the BE16 sample count.
const HEADER_LEN: usize = 2;

/// The encoding byte that precedes a chunk payload (§1.6).
///
/// Each has its codec here ([`XorIter`], [`HistogramIter`], [`FloatHistogramIter`]); what
/// reads chunks must name an encoding it does not handle rather than call it corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    /// Float samples, XOR-compressed (§1.5).
    Xor = 1,
    /// Native histograms with integer counts (Prometheus 2.40+).
    Histogram = 2,
    /// Native histograms with float counts (Prometheus 2.42+).
    FloatHistogram = 3,
}

impl Encoding {
    /// The encoding for an on-disk byte; `None` for 0 (invalid) and values Prometheus 2.x does
    /// not write. Head chunk files flag out-of-order chunks with bit 7, which the caller must
    /// strip first (§1.12).
    pub fn from_u8(b: u8) -> Option<Encoding> {
        match b {
            1 => Some(Encoding::Xor),
            2 => Some(Encoding::Histogram),
            3 => Some(Encoding::FloatHistogram),
            _ => None,
        }
    }

    /// The on-disk byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A chunk as stored: its encoding and its payload, which starts with the BE16 sample count
/// for every encoding Prometheus 2.x writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// How the payload is encoded.
    pub encoding: Encoding,
    /// The encoded payload.
    pub data: &'a [u8],
}

/// One chunk of a series with its closed time range: what the block writer takes and what
/// merging a series' chunks produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesChunk<D = Vec<u8>> {
    /// Timestamp of the first sample (ms).
    pub min_time: i64,
    /// Timestamp of the last sample (ms), inclusive.
    pub max_time: i64,
    /// How the payload is encoded (§1.6).
    pub encoding: Encoding,
    /// The chunk payload, starting with its BE16 sample count.
    pub data: D,
}

impl Chunk<'_> {
    /// Number of samples, from the payload's BE16 header; `None` for a payload shorter than
    /// 2 bytes.
    pub fn num_samples(&self) -> Option<u16> {
        match self.data {
            [a, b, ..] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }
}

impl fmt::Display for Encoding {
    /// Prometheus's names for the encodings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Xor => "XOR",
            Encoding::Histogram => "histogram",
            Encoding::FloatHistogram => "floathistogram",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_bytes_round_trip_and_reject_others() {
        for e in [Encoding::Xor, Encoding::Histogram, Encoding::FloatHistogram] {
            assert_eq!(Encoding::from_u8(e.as_u8()), Some(e));
        }
        assert_eq!(Encoding::Xor.as_u8(), 1);
        assert_eq!(Encoding::from_u8(0), None);
        assert_eq!(Encoding::from_u8(4), None);
        assert_eq!(Encoding::from_u8(0x81), None);
        assert_eq!(Encoding::Xor.to_string(), "XOR");
    }
}
