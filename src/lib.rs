//! annals: an embeddable time-series storage engine with Prometheus-compatible on-disk formats.
//!
//! A [`Db`] holds a head of in-memory series, each a list of Gorilla/XOR-compressed chunks,
//! made durable by a write-ahead log, and the persisted blocks cut from it; both in
//! Prometheus 2.x's formats. Samples are added through an [`Appender`] (one transaction,
//! committed atomically) and read through a [`Querier`]: as samples ([`Series::samples`],
//! with a cheap forward [`seek`](SampleIter::seek)) or as the stored chunks
//! ([`Series::chunks`]).
//!
//! ```
//! use annals::{Db, Labels, Matcher, Options};
//!
//! # fn main() -> annals::Result<()> {
//! let db = Db::open_in_memory(Options::default())?;
//! let up = Labels::new([("__name__", "up"), ("job", "node"), ("instance", "a:9100")])?;
//!
//! let mut app = db.appender();
//! let r = app.append(None, &up, 1_700_000_000_000, 1.0)?; // returns a SeriesRef
//! app.append(Some(r), &up, 1_700_000_015_000, 1.0)?;      // the ref skips the label lookup
//! app.commit()?;                                          // visible atomically
//!
//! let q = db.querier(1_700_000_000_000, 1_700_000_015_000)?; // both ends inclusive
//! let series: Vec<_> = q.select(&[Matcher::equal("job", "node")])?.collect();
//! assert_eq!(series.len(), 1);
//! let samples = series[0].to_vec()?;
//! assert_eq!(samples.len(), 2);
//! assert_eq!(series[0].labels().to_string(), r#"{__name__="up", instance="a:9100", job="node"}"#);
//! # Ok(())
//! # }
//! ```
//!
//! # What is stable
//!
//! Everything exported at the crate root (below) is the API: what an embedding program, a
//! query engine or a server uses. [`unstable`] gives tools low-level access to the on-disk
//! formats (blocks, index, chunks, WAL records, head chunk files); it follows the formats and
//! this crate's internals and may change in any release. `tests/public_api.txt` lists both,
//! and a test fails when either changes without the list.
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod block;
mod chunkenc;
mod compact;
mod db;
mod encoding;
mod error;
mod fs;
mod head;
mod index;
mod model;
mod options;
mod progress;
mod query;
mod reader;
#[cfg(test)]
mod testutil;
mod tombstones;
/// Native histograms (Prometheus 2.40+): integer and float histograms with their spans and
/// buckets, and validation as 2.42's `ValidateHistogram`: what
/// [`Appender::append_histogram`] and [`Appender::append_float_histogram`] take and
/// [`Value`] holds.
pub mod histogram {
    pub use crate::model::histogram::{
        span_buckets, BucketCounts, BucketValue, CounterResetHint, FloatHistogram, Histogram,
        HistogramError, Side, Span,
    };
}
pub mod unstable;

mod wal;

pub use block::{
    BlockDesc, BlockId, Compaction as BlockCompaction, Meta as BlockMeta, Stats as BlockStats,
};
pub use chunkenc::Encoding as ChunkEncoding;
pub use db::{Appender, CompactionStats, CompactionTotals, Db, HeadStats, ReplayStats};
pub use error::{Error, InputError, Limit, Result};
pub use model::{
    display_selector, is_stale_marker, is_valid_label_name, is_valid_metric_name, parse_selector,
    stale_nan, GoRegex, Label, Labels, LabelsBuilder, LabelsIter, MatchType, Matcher, Sample,
    SelectorDisplay, SeriesRef, Value, METRIC_NAME, STALE_NAN_BITS,
};
pub use options::{Options, Recovery, WalCompression, WalSync};
pub use query::{Querier, RawChunk, RawChunks, SampleIter, Series, SeriesSet, ValueIter};
pub use wal::{Position as WalPosition, RepairReport, WalStats};
