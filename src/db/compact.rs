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
    /// WAL segments at or after the retention floor that were checkpointed away because
    /// their samples were older than [`Options::wal_retention_floor_max_lag_ms`](crate::Options::wal_retention_floor_max_lag_ms)
    /// allows (see [`Db::set_wal_retention_floor`](crate::Db::set_wal_retention_floor)).
    pub wal_segments_past_floor: Vec<u32>,
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

/// The WAL retention floor (see [`Db::set_wal_retention_floor`](crate::Db::set_wal_retention_floor)).
#[derive(Debug, Default)]
pub(super) struct WalFloor {
    /// Segments at and after this one are not checkpointed away (within the lag bound).
    pub(super) segment: Option<u32>,
    /// `(s, t)`: every sample in a segment before `s` is at most `t` (the head's newest
    /// sample when segment `s` was started by a checkpoint), oldest first. What bounds a
    /// segment's age for the floor's maximum lag.
    cuts: Vec<(u32, i64)>,
}

impl WalFloor {
    /// The newest sample time a segment can hold, if known.
    fn newest_in(&self, segment: u32) -> Option<i64> {
        self.cuts
            .iter()
            .find(|(s, _)| *s > segment)
            .map(|(_, t)| *t)
    }
}

/// Which of the segments `first..=to` a checkpoint may fold under the retention floor.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct FloorPlan {
    /// The last segment to fold (may be below `first`: nothing to fold).
    pub(super) to: Option<u32>,
    /// Whether the floor held segments back (the checkpoint then keeps every series).
    pub(super) held: bool,
    /// Segments at or after the floor folded anyway (too old for the lag bound): first, last.
    pub(super) past_floor: Option<(u32, u32)>,
}

impl WalFloor {
    /// Records that segment `current` was started when the head's newest sample was `newest`.
    pub(super) fn record_cut(&mut self, current: u32, newest: Option<i64>) {
        if let Some(t) = newest {
            if self.cuts.last().is_none_or(|(s, _)| *s < current) {
                self.cuts.push((current, t));
            }
        }
    }

    /// Plans a checkpoint of `first..=to` under the floor, with `max_lag` behind `newest`
    /// (the head's newest sample), and forgets what concerns segments before `first`.
    pub(super) fn plan(
        &mut self,
        first: u32,
        to: u32,
        newest: Option<i64>,
        max_lag: Option<i64>,
    ) -> FloorPlan {
        // A cut at or before `first` bounds no segment that still exists.
        if let Some(i) = self.cuts.iter().rposition(|(s, _)| *s <= first) {
            self.cuts.drain(..=i);
        }
        let none = FloorPlan {
            to: Some(to),
            held: false,
            past_floor: None,
        };
        let Some(floor) = self.segment else {
            return none;
        };
        if floor > to {
            return none;
        }
        // Segments `floor..=to` are held back, unless all their samples are too old.
        let limit = match (newest, max_lag) {
            (Some(n), Some(lag)) => Some(n.saturating_sub(lag)),
            _ => None,
        };
        let mut past = None;
        if let Some(limit) = limit {
            for s in (floor..=to).rev() {
                if self.newest_in(s).is_some_and(|t| t < limit) {
                    past = Some(s);
                    break;
                }
            }
        }
        match past {
            Some(s) => FloorPlan {
                to: Some(s),
                held: s < to,
                past_floor: Some((floor, s)),
            },
            None => FloorPlan {
                to: floor.checked_sub(1),
                held: true,
                past_floor: None,
            },
        }
    }
}

/// Opens a block just written. If that fails the block is deleted again: the caller keeps
/// its sources (head range or input blocks), and a block left on disk would return at the next
/// open without the changes made to them since, replacing them as their child.
pub(super) fn open_new_block(dir: &std::path::Path, ulid: ulid::Ulid) -> Result<Arc<Block>> {
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
        let mut persisted = None;
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
            if let Some(cp) = self.checkpoint_wal(maxt, stats)? {
                stats.checkpoints.push(cp);
            }
            persisted = Some(maxt);
        }
        // As Prometheus 2.42: the out-of-order data follows each head compaction.
        if let Some(maxt) = persisted {
            self.compact_ooo_head(stats)?;
            self.head.truncate_chunk_files(maxt)?;
        }
        Ok(())
    }

    /// Prometheus `truncateWAL`: start a new segment, then fold the oldest two thirds of the
    /// older segments into a checkpoint that keeps the head's live series and samples from
    /// `mint` on, and delete what it replaced. Segments at or after the WAL retention floor
    /// stay, within its lag bound.
    fn checkpoint_wal(&self, mint: i64, stats: &mut CompactionStats) -> Result<Option<u32>> {
        let Some(w) = &self.wal else { return Ok(None) };
        let current = w.cut_segment()?;
        self.wal_floor
            .lock()
            .record_cut(current, self.head.max_time());
        let Some((first, _)) = wal::segment_range(w.dir())? else {
            return Ok(None);
        };
        let last = current.saturating_sub(1);
        if last <= first {
            return Ok(None);
        }
        let to = first + (last - first) * 2 / 3;
        let plan = self.wal_floor.lock().plan(
            first,
            to,
            self.head.max_time(),
            self.opts.wal_retention_floor_max_lag_ms,
        );
        if let Some((from, to)) = plan.past_floor {
            tracing::warn!(
                from,
                to,
                "WAL segments a reader still needed are deleted: they are older than the retention floor's maximum lag"
            );
            stats.wal_segments_past_floor.extend(from..=to);
        }
        let Some(to) = plan.to else { return Ok(None) };
        if to <= first {
            return Ok(None);
        }
        let head = &self.head;
        // Held-back segments may hold samples of series the head has dropped since: their
        // records must survive in the checkpoint for a reader of those segments.
        let held = plan.held;
        let keep = |r: u64| held || head.has_series(r);
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
