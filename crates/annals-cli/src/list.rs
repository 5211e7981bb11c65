//! `annals list`: the blocks of a data directory as `promtool tsdb list` prints them.

use std::path::Path;

use annals::unstable::block::{self, Block, Meta};

use crate::error::Result;
use crate::gofmt::{base2_bytes, duration, unix_utc, Table};

/// A block as listed: its meta and its size on disk (index, chunks, tombstones, meta.json).
#[derive(Debug, Clone)]
pub struct Listed {
    /// The block's meta.json.
    pub meta: Meta,
    /// Bytes on disk, as Prometheus' `Block.Size()`.
    pub size: u64,
}

/// Opens every block of `dir` (each is checked as [`Block::open`] does) and returns them
/// sorted by min time, as Prometheus orders blocks. Directories named by a ULID without a
/// `meta.json` are skipped, as Prometheus skips them; any other unreadable block is an error.
/// Nothing in `dir` is changed; the WAL is not read.
pub fn list_blocks(dir: &Path) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    for path in block_dirs(dir)? {
        let b = Block::open(&path)?;
        out.push(Listed {
            meta: b.meta().clone(),
            size: b.size(),
        });
    }
    out.sort_by_key(|b| (b.meta.min_time, b.meta.ulid));
    Ok(out)
}

/// Block directories of `dir` that have a `meta.json`, by ULID.
pub fn block_dirs(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    Ok(block::list_block_dirs(dir)?
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.join(block::META_FILE_NAME).exists())
        .collect())
}

/// `promtool tsdb list` output: a header and one aligned row per block. With
/// `human_readable`, times are UTC dates (seconds) and sizes binary units.
pub fn render(blocks: &[Listed], human_readable: bool) -> String {
    let time = |ms: i64| {
        if human_readable {
            // Go: time.Unix(ms/1000, 0), a truncating division.
            unix_utc(ms / 1000)
        } else {
            ms.to_string()
        }
    };
    let mut t = Table::new(13, 2);
    t.row([
        "BLOCK ULID",
        "MIN TIME",
        "MAX TIME",
        "DURATION",
        "NUM SAMPLES",
        "NUM CHUNKS",
        "NUM SERIES",
        "SIZE",
    ]);
    for b in blocks {
        let m = &b.meta;
        let size = i64::try_from(b.size).unwrap_or(i64::MAX);
        t.row([
            m.ulid.to_string(),
            time(m.min_time),
            time(m.max_time),
            duration(m.max_time.wrapping_sub(m.min_time).wrapping_mul(1_000_000)),
            m.stats.num_samples.to_string(),
            m.stats.num_chunks.to_string(),
            m.stats.num_series.to_string(),
            if human_readable {
                base2_bytes(size)
            } else {
                size.to_string()
            },
        ]);
    }
    t.render()
}
