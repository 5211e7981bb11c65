//! Loading the persisted blocks at open, and dropping blocks by retention.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::block::{self, Block};
use crate::error::{Error, Result};
use crate::options::Options;

/// Blocks found in a data directory.
#[derive(Default)]
pub(super) struct Loaded {
    /// Readable blocks, sorted by min time.
    pub(super) blocks: Vec<Arc<Block>>,
    /// Blocks skipped because they could not be read (only with `skip_unreadable_blocks`).
    pub(super) unreadable: Vec<(PathBuf, String)>,
}

/// Opens every block of `dir` as Prometheus does at open (brief §1.1, §1.3): temporary
/// directories are removed, blocks without `meta.json` ignored, and blocks that another block
/// names as a parent (an interrupted compaction) or that are marked deletable are deleted.
/// `read_only` changes nothing on disk.
pub(super) fn load(dir: &Path, opts: &Options, read_only: bool) -> Result<Loaded> {
    if !read_only {
        for removed in block::remove_tmp_dirs(dir)? {
            tracing::info!(dir = %removed.display(), "removed an unfinished temporary block directory");
        }
    }
    let mut blocks = Vec::new();
    let mut unreadable = Vec::new();
    for (_, path) in block::list_block_dirs(dir)? {
        if !path.join(block::meta::FILE_NAME).exists() {
            tracing::warn!(dir = %path.display(), "ignoring a block directory without meta.json");
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(e) if opts.skip_unreadable_blocks => {
                tracing::error!(dir = %path.display(), error = %e, "skipping an unreadable block");
                unreadable.push((path, e.to_string()));
            }
            Err(e) => return Err(with_block_hint(e, &path)),
        }
    }
    let parents: HashSet<_> = blocks
        .iter()
        .flat_map(|b| b.meta().compaction.parents.iter().map(|p| p.ulid))
        .collect();
    let mut kept = Vec::with_capacity(blocks.len());
    for b in blocks {
        if parents.contains(&b.ulid()) || b.meta().compaction.deletable {
            if !read_only {
                tracing::info!(block = %b.ulid(), "deleting a block replaced by compaction");
                block::delete_block_dir(b.dir())?;
            }
        } else {
            kept.push(b);
        }
    }
    kept.sort_by_key(|b| (b.min_time(), b.ulid()));
    Ok(Loaded {
        blocks: kept,
        unreadable,
    })
}

/// Adds to a block's error the way to open the database without it.
fn with_block_hint(e: Error, block: &Path) -> Error {
    match e {
        Error::Corruption {
            file,
            offset,
            reason,
        } => Error::Corruption {
            file,
            offset,
            reason: format!(
                "{reason} (block {}; set Options::skip_unreadable_blocks to open the database \
                 without it)",
                block.display()
            ),
        },
        other => other,
    }
}

/// Blocks to delete by retention, as Prometheus's `BeyondTimeRetention` and
/// `BeyondSizeRetention` choose them: with blocks ordered newest first (by min time), by time
/// the first block whose max time is more than `retention_ms` behind the newest block's, and
/// every older one; by size, the first block at which the running total (starting from
/// `extra_bytes`, the WAL) exceeds `max_bytes`, and every older one.
pub(super) fn beyond_retention(
    blocks: &[Arc<Block>],
    retention_ms: Option<i64>,
    max_bytes: Option<u64>,
    extra_bytes: u64,
) -> Vec<Arc<Block>> {
    let mut newest_first: Vec<&Arc<Block>> = blocks.iter().collect();
    newest_first.sort_by_key(|b| std::cmp::Reverse(b.min_time()));
    let mut cut = newest_first.len();
    if let (Some(r), Some(newest)) = (retention_ms, newest_first.first()) {
        let top = newest.max_time();
        if let Some(i) = newest_first
            .iter()
            .skip(1)
            .position(|b| top.saturating_sub(b.max_time()) > r)
        {
            cut = cut.min(i + 1);
        }
    }
    if let Some(limit) = max_bytes {
        let mut total = extra_bytes;
        for (i, b) in newest_first.iter().enumerate() {
            total += b.size();
            if total > limit {
                cut = cut.min(i);
                break;
            }
        }
    }
    newest_first[cut..].iter().map(|b| Arc::clone(b)).collect()
}
