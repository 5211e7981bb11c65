//! Immutable on-disk blocks (brief §1.2–1.8): `meta.json`, chunk segment files, the index
//! (see [`crate::index`]) and tombstones (see [`crate::tombstones`]); the writer that creates a
//! block directory atomically, the [`Block`] that reads one (through the read interface,
//! [`crate::reader`]) and deletes samples in it, and a database's block list (`BlockSet`).
//!
//! ```text
//! <ULID>/meta.json  index  chunks/000001 …  tombstones
//! ```

pub mod chunks;
mod dir;
mod id;
pub mod meta;
mod reader;
mod set;
mod writer;

pub use crate::chunkenc::SeriesChunk;
pub use dir::{delete_block_dir, dir_size, list_block_dirs, parse_ulid_strict, remove_tmp_dirs};
pub use id::BlockId;
pub use meta::{BlockDesc, Compaction, Meta, Stats};
pub use reader::Block;
pub(crate) use set::BlockSet;
pub use writer::{write_block, BlockOptions, BlockWriter};
