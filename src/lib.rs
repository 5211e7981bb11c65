//! annals: an embeddable time-series storage engine with Prometheus-compatible on-disk formats.
//!
//! A [`Db`] holds a head of in-memory series, each a list of Gorilla/XOR-compressed chunks
//! ([`chunkenc`]), indexed by label ([`index::postings`]). Samples are added through an
//! [`Appender`] (one transaction, committed atomically) and read through a [`Querier`].
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
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod block;
pub mod chunkenc;
pub mod compact;
mod db;
pub mod encoding;
mod error;
mod fs;
mod head;
pub mod index;
pub mod model;
mod options;
mod query;
mod reader;
#[cfg(test)]
mod testutil;
pub mod tombstones;
pub mod wal;

/// The head chunk file format (`chunks_head/`, Prometheus `tsdb/chunks/head_chunks.go`) and
/// the series records of memory snapshots (`chunk_snapshot.*`, `Head.ChunkSnapshot`).
pub mod head_chunks {
    pub use crate::head::chunk_format::{decode_file, HeadChunk};
    pub use crate::head::mem_snapshot::{
        decode_series_record as decode_snapshot_series, SnapshotSeries,
    };
}

#[cfg(feature = "fault-injection")]
pub use fs::fault;

pub use db::{Appender, CompactionStats, Db, HeadStats, ReplayStats};
pub use error::{Error, Limit, Result};
pub use model::{
    parse_selector, Label, Labels, LabelsBuilder, MatchType, Matcher, Sample, SeriesRef,
};
pub use options::{Options, Recovery, WalCompression, WalSync};
pub use query::{Querier, RawChunk, RawChunks, SampleIter, Series, SeriesSet};
