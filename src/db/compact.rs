//! Compaction driven by the database: the head into level-1 blocks, the WAL into checkpoints,
//! and retention.

use std::sync::Arc;

use super::{blocks, Db, DbInner};
use crate::block::{self, Block, BlockId, BlockOptions};
use crate::chunkenc::range_end;
use crate::compact::{self, CompactOptions, Planner};
use crate::error::Result;
use crate::wal;

/// What one call of [`Db::compact`](crate::Db::compact) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionStats {
    /// Blocks written from the head.
    pub head_blocks: Vec<BlockId>,
    /// Series removed from the head because all their data is in blocks now.
    pub series_removed: usize,
    /// WAL checkpoints written (their indices).
    pub checkpoints: Vec<u32>,
    /// Blocks deleted by retention.
    pub blocks_deleted: Vec<BlockId>,
    /// Blocks written by merging blocks (leveled and vertical compaction, tombstone cleaning).
    pub merged_blocks: Vec<BlockId>,
    /// Blocks replaced by merged blocks and deleted.
    pub blocks_replaced: Vec<BlockId>,
}

/// Every [`Db::compact`](crate::Db::compact) call since the database was opened, summed
/// (what Prometheus exports as `prometheus_tsdb_compactions_total`,
/// `prometheus_tsdb_compactions_failed_total` and the compaction duration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionTotals {
    /// Calls, background ones included.
    pub runs: u64,
    /// Calls that returned an error.
    pub failed: u64,
    /// Time spent in them, summed.
    pub duration: std::time::Duration,
    /// Blocks written from the head.
    pub head_blocks_written: u64,
    /// Blocks written by merging blocks.
    pub merged_blocks_written: u64,
    /// Blocks deleted by retention.
    pub blocks_deleted_by_retention: u64,
    /// WAL checkpoints written.
    pub checkpoints: u64,
}

/// Opens a block just written. If that fails the block is deleted again: the caller keeps
/// its sources (head range or input blocks), and a block left on disk would return at the next
/// open without the changes made to them since, replacing them as their child.
fn open_new_block(dir: &std::path::Path, ulid: ulid::Ulid) -> Result<Arc<Block>> {
    let path = dir.join(ulid.to_string());
    Block::open(&path).map(Arc::new).inspect_err(|_| {
        if let Err(e) = block::delete_block_dir(&path) {
            tracing::error!(block = %ulid, error = %e, "could not delete a new block that failed to open");
        }
    })
}

impl DbInner {
    /// Whether the head spans more than 1.5 block ranges (Prometheus `Head.compactable`).
    pub(super) fn head_compactable(&self) -> bool {
        let head = &self.head;
        match (head.min_time(), head.max_time()) {
            (Some(min), Some(max)) => max.saturating_sub(min) > self.opts.block_range_ms / 2 * 3,
            _ => false,
        }
    }

    /// Persists the head's oldest block ranges while it is compactable, truncating the head and
    /// checkpointing the WAL after each.
    pub(super) fn compact_head(&self, stats: &mut CompactionStats) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        while self.head_compactable() {
            let head = &self.head;
            let mint = head.min_time().expect("a compactable head has data");
            let maxt = range_end(mint, self.opts.block_range_ms);
            // No commit that returns `Ok` may lose a sample to this compaction. Appenders
            // opened from now on accept nothing below `maxt`; those open now that do are
            // waited for (as Prometheus's `WaitForAppendersOverlapping`). Then the floor is
            // raised before the range is read: a commit applied before is in what the range
            // reader reads, one that comes later with a sample below `maxt` (an appender the
            // wait gave up on) fails whole instead of landing in a range already read and
            // then truncated away.
            let open = head.close_window_below(maxt, self.opts.compaction_appender_wait);
            if open > 0 {
                tracing::warn!(
                    appenders = open,
                    maxt,
                    "head compaction stopped waiting for open appenders; their commits fail \
                     if they hold samples before maxt"
                );
            }
            head.raise_floor(maxt);
            let opts = BlockOptions {
                time_range: Some((mint, maxt)),
                ..BlockOptions::default()
            };
            let last = block::meta::last_time(maxt);
            let written = compact::write(dir, &[&head.range(mint, last)], opts)?;
            let new_block = match written {
                Some(ulid) => Some(open_new_block(dir, ulid)?),
                None => None,
            };
            // Publish the block and drop its range from the head in one step for readers.
            stats.series_removed += head.truncate(maxt, || {
                if let Some(b) = &new_block {
                    self.blocks.publish(b.clone());
                }
            });
            // After the series dropped their chunks below `maxt`: files holding only such
            // chunks are no longer referenced by the head (queries keep their own mappings).
            head.truncate_chunk_files(maxt)?;
            if let Some(b) = new_block {
                tracing::info!(block = %b.ulid(), mint, maxt, "persisted a head block");
                stats.head_blocks.push(b.ulid().into());
            }
            if let Some(cp) = self.checkpoint_wal(maxt)? {
                stats.checkpoints.push(cp);
            }
        }
        Ok(())
    }

    /// Prometheus `truncateWAL`: start a new segment, then fold the oldest two thirds of the
    /// older segments into a checkpoint that keeps the head's live series and samples from
    /// `mint` on, and delete what it replaced.
    fn checkpoint_wal(&self, mint: i64) -> Result<Option<u32>> {
        let Some(w) = &self.wal else { return Ok(None) };
        let current = w.cut_segment()?;
        let Some((first, _)) = wal::segment_range(w.dir())? else {
            return Ok(None);
        };
        let last = current.saturating_sub(1);
        if last <= first {
            return Ok(None);
        }
        let to = first + (last - first) * 2 / 3;
        if to <= first {
            return Ok(None);
        }
        let head = &self.head;
        let keep = |r: u64| head.has_series(r);
        let stats = wal::checkpoint(w.dir(), first, to, &keep, mint, self.opts.wal_compression)?;
        wal::delete_segments_before(w.dir(), to + 1)?;
        wal::delete_checkpoints_before(w.dir(), to)?;
        tracing::info!(to, ?stats, "WAL checkpoint written");
        Ok(Some(to))
    }

    /// The planner's ranges: the block range times 3^k (Prometheus `ExponentialBlockRanges`),
    /// up to the maximum block range.
    fn planner(&self) -> Result<Planner> {
        let min = self.opts.block_range_ms;
        let ranges = compact::truncate_ranges(
            &compact::exponential_ranges(min, 10, 3),
            self.opts.max_block_range(),
        );
        Planner::new(ranges)
    }

    /// Merges blocks as the planner says (adjacent blocks into larger ranges, overlapping
    /// blocks into one, blocks with many tombstones rewritten) until it has nothing to do.
    pub(super) fn compact_blocks(&self, stats: &mut CompactionStats) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let planner = self.planner()?;
        loop {
            let current = self.blocks.current();
            let plan = planner.plan(current.iter().map(|b| b.meta()));
            if plan.is_empty() {
                return Ok(());
            }
            let inputs: Vec<Arc<Block>> = plan
                .iter()
                .filter_map(|u| current.iter().find(|b| b.ulid() == *u).cloned())
                .collect();
            self.replace_blocks(dir, &inputs, stats, |refs| {
                compact::compact_blocks(dir, refs, &CompactOptions::default())
            })?;
        }
    }

    /// Runs `merge` over `inputs`; on success publishes its output in their place and deletes
    /// them (only after the output is durable: the block writer renames a synced directory).
    /// On failure marks the inputs failed so the planner skips them, as Prometheus does.
    fn replace_blocks(
        &self,
        dir: &std::path::Path,
        inputs: &[Arc<Block>],
        stats: &mut CompactionStats,
        merge: impl FnOnce(&[&Block]) -> Result<Option<ulid::Ulid>>,
    ) -> Result<()> {
        let refs: Vec<&Block> = inputs.iter().map(|b| b.as_ref()).collect();
        let output = match merge(&refs) {
            Ok(Some(u)) => Some(open_new_block(dir, u)?),
            Ok(None) => None,
            Err(e) => {
                for b in inputs {
                    if let Err(m) = compact::mark_compaction_failed(b.dir()) {
                        tracing::error!(block = %b.ulid(), error = %m, "could not mark a block as failed");
                    }
                }
                return Err(e);
            }
        };
        self.blocks.replace(inputs, output.iter().cloned());
        if let Some(o) = &output {
            tracing::info!(block = %o.ulid(), inputs = inputs.len(), "compacted blocks");
            stats.merged_blocks.push(o.ulid().into());
        }
        if output.is_none() {
            for b in inputs {
                // Nothing survived: if deleting fails midway, the next open finishes it.
                compact::mark_deletable(b.dir())?;
            }
        }
        stats
            .blocks_replaced
            .extend(inputs.iter().map(|b| BlockId::from(b.ulid())));
        self.delete_block_dirs(inputs.iter().map(|b| b.dir().to_path_buf()).collect())
    }

    /// Deletes blocks beyond the time and size retention.
    pub(super) fn apply_retention(&self, stats: &mut CompactionStats) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let current = self.blocks.current();
        let wal_bytes = match &self.wal {
            Some(w) => block::dir_size(w.dir())?,
            None => 0,
        };
        let doomed = blocks::beyond_retention(
            &current,
            self.opts.retention_ms,
            self.opts.max_bytes,
            wal_bytes,
        );
        if doomed.is_empty() {
            return Ok(());
        }
        self.blocks.replace(&doomed, []);
        for b in &doomed {
            tracing::info!(block = %b.ulid(), "deleting a block beyond retention");
            stats.blocks_deleted.push(b.ulid().into());
        }
        self.delete_block_dirs(
            doomed
                .iter()
                .map(|b| dir.join(b.ulid().to_string()))
                .collect(),
        )
    }

    /// Deletes block directories already dropped from the block list; those it cannot delete
    /// are kept for [`delete_undeleted`](Self::delete_undeleted).
    fn delete_block_dirs(&self, dirs: Vec<std::path::PathBuf>) -> Result<()> {
        let mut undeleted = self.undeleted.lock();
        undeleted.extend(dirs);
        while let Some(d) = undeleted.first() {
            match block::delete_block_dir(d) {
                Err(crate::error::Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && !d.exists() => {}
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            undeleted.remove(0);
        }
        Ok(())
    }

    /// Retries the deletions that failed earlier. Must succeed before blocks are rewritten.
    pub(super) fn delete_undeleted(&self) -> Result<()> {
        self.delete_block_dirs(Vec::new())
    }
}

impl Db {
    /// Rewrites every block that has tombstones without the deleted samples (Prometheus
    /// `CleanTombstones`): the new block is level 1 with the old one as parent; a block whose
    /// samples are all deleted disappears.
    pub fn clean_tombstones(&self) -> Result<CompactionStats> {
        self.check_writable()?;
        let _one_at_a_time = self.inner.compacting.lock();
        let mut stats = CompactionStats::default();
        let Some(dir) = &self.inner.dir else {
            return Ok(stats);
        };
        self.inner.delete_undeleted()?;
        for b in self
            .inner
            .blocks
            .current()
            .iter()
            .filter(|b| !b.tombstones().is_empty())
        {
            self.inner
                .replace_blocks(dir, std::slice::from_ref(b), &mut stats, |refs| {
                    compact::clean_tombstones(dir, refs[0], &CompactOptions::default())
                })?;
        }
        Ok(stats)
    }
}
