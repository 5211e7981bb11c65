//! Immutable on-disk blocks: meta.json, chunk segment files, tombstones (brief §1.2–1.8).

pub mod chunks;
pub(crate) mod fsutil;
pub mod meta;
pub mod tombstones;

pub use meta::{BlockDesc, Compaction, Meta, Stats};
pub use tombstones::{Interval, Intervals, Tombstones};
