//! Head truncation after its oldest range went into a block (brief §2.7, §2.8).

use std::sync::atomic::Ordering;

use super::Head;
use crate::error::Result;

impl Head {
    /// Raises the floor below which no sample is accepted and no commit applies (the max time
    /// of persisted blocks). Under both locks: a commit applied before is in what a reader of
    /// the range below sees; one that logs after fails whole if it holds a sample below `t`
    /// ([`Error::CommitOutOfBounds`](crate::error::Error::CommitOutOfBounds)): nothing it
    /// accepted is dropped after `Ok`. Head compaction calls
    /// [`close_window_below`](Self::close_window_below) first, so that no commit normally
    /// does.
    pub(crate) fn raise_floor(&self, t: i64) {
        let _order = self.locks.wal_order();
        let _apply = self.locks.apply_write();
        self.table.epochs.raise(|| {
            self.min_valid_time.fetch_max(t, Ordering::AcqRel);
        });
        self.persisted_floor.fetch_max(t, Ordering::AcqRel);
    }

    /// The first step of persisting the range below `t` (Prometheus
    /// `WaitForAppendersOverlapping`): appenders opened from now on accept no sample below
    /// `t`, and this waits until the open appenders that do have committed or rolled back,
    /// for at most `timeout` (or until the head is sealed). Returns how many are still open;
    /// a commit of theirs holding a sample below `t` will fail whole after
    /// [`raise_floor`](Self::raise_floor).
    pub(crate) fn close_window_below(&self, t: i64, timeout: std::time::Duration) -> usize {
        self.table.epochs.raise(|| {
            self.min_valid_time.fetch_max(t, Ordering::AcqRel);
        });
        self.table
            .epochs
            .wait_for_windows_below(t, timeout, || self.sealed.load(Ordering::Acquire))
    }

    /// Makes what lies before `mint` someone else's: runs `publish` (which makes the block
    /// holding it visible) and then drops every chunk that ends before `mint` and the series
    /// left empty and unused, as one step for readers (both locks are held: no reader sees
    /// the block and the chunks, or neither; no commit between its WAL write and its apply
    /// sees a series go). The head's min time becomes `mint` as in Prometheus, so the next
    /// block starts where this one ended (or the head is empty). Returns the series removed.
    pub(crate) fn truncate(&self, mint: i64, publish: impl FnOnce()) -> usize {
        let _order = self.locks.wal_order();
        let apply = self.locks.apply_write();
        publish();
        self.table.epochs.raise(|| {
            self.min_valid_time.fetch_max(mint, Ordering::AcqRel);
        });
        self.persisted_floor.fetch_max(mint, Ordering::AcqRel);
        let refs = self.postings.read().all().to_vec();
        // The oldest sample left: the head's min time jumps to it, as Prometheus's
        // `truncateMemory` does with the min time `gc` reports, so that compaction does not
        // step through the empty ranges of a sparse head one block range at a time.
        let mut oldest_left: Option<i64> = None;
        let mut removed = 0;
        for r in refs {
            let Some(s) = self.table.get(r) else { continue };
            let empty = {
                let mut data = s.data(&apply);
                let empty = data.truncate(mint);
                if let Some(t) = data.min_time() {
                    oldest_left = Some(oldest_left.map_or(t, |o| o.min(t)));
                }
                empty
            };
            if empty && self.table.remove_if_unused(&s) {
                self.postings.write().remove(s.series_ref, &s.labels);
                self.tombstones.write().remove(s.series_ref);
                self.num_series.fetch_sub(1, Ordering::Relaxed);
                removed += 1;
            }
        }
        // An option, not a sentinel: a sample at `i64::MAX` may be the oldest left.
        if let Some(oldest_left) = oldest_left {
            // The start of the aligned range holding it, by floor division: Go's truncating
            // division (`range_end`) would put a negative sample's range after it, leaving the
            // head's min time above its oldest sample.
            let range = self.cfg.chunk_range;
            let oldest_range_start = oldest_left.div_euclid(range).saturating_mul(range);
            self.min_time
                .store(mint.max(oldest_range_start), Ordering::Release);
        } else {
            self.min_time.store(i64::MAX, Ordering::Release);
            self.max_time.store(i64::MIN, Ordering::Release);
        }
        removed
    }

    /// Deletes the head chunk files left without chunks by [`Head::truncate`] and starts a new
    /// file (Prometheus `ChunkDiskMapper.Truncate`). Returns the file numbers deleted.
    pub(crate) fn truncate_chunk_files(&self, mint: i64) -> Result<Vec<u32>> {
        match &self.chunk_files {
            // Files holding out-of-order chunks the head still has stay, whatever their times.
            Some(f) => f.truncate_keeping(mint, self.ooo_min_file()),
            None => Ok(Vec::new()),
        }
    }
}
