//! annals: an embeddable time-series storage engine with Prometheus-compatible on-disk formats.
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod block;
pub mod chunkenc;
pub mod encoding;
mod error;
pub mod index;
pub mod model;
pub mod wal;

pub use error::{Error, Result};
pub use model::{Label, Labels, LabelsBuilder, MatchType, Matcher, Sample, SeriesRef};
