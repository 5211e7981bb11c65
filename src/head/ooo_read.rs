//! The head's out-of-order data as a whole: its window and time range, and the three steps
//! of out-of-order compaction (Prometheus 2.42 `NewOOOCompactionHead`, `compactOOOHead`,
//! `truncateOOO`): take the chunks (m-mapping the open ones), read them as a
//! [`RangeHead`] per block range, release them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::read::{RangeHead, ReadMode};
use super::Head;
use crate::error::Result;

/// The out-of-order chunks an out-of-order compaction took (see
/// [`Head::ooo_compaction_start`]).
pub(crate) struct OooTaken {
    /// By series ref: how many of its m-mapped out-of-order chunks were taken (the first
    /// ones; later inserts only add chunks after them).
    pub(super) counts: Arc<HashMap<u64, usize>>,
    /// Time range of the chunks taken.
    pub(crate) range: Option<(i64, i64)>,
    /// Every out-of-order chunk in `chunks_head/` with a reference up to this one is in the
    /// blocks once the compaction is done (the chunks not taken were written again after
    /// it): the next open does not load them again (see `wbl::write_compacted_through`).
    pub(crate) compacted_through: u64,
    /// Whether every out-of-order chunk of the head is in `chunks_head/` (none stayed on
    /// the heap after a failed write): only then may the WBL before the compaction go.
    pub(crate) all_on_disk: bool,
}

impl Head {
    /// The oldest time the out-of-order window accepts now (Prometheus: the head's newest
    /// sample minus the window), `i64::MAX` without a window or samples.
    pub(super) fn ooo_min_time(&self) -> i64 {
        if self.ooo_window <= 0 {
            return i64::MAX;
        }
        match self.max_time() {
            Some(max) => max.saturating_sub(self.ooo_window),
            None => i64::MAX,
        }
    }

    /// Widens the out-of-order time range and counts a commit's out-of-order samples.
    pub(super) fn note_ooo_committed(&self, mint: i64, maxt: i64, appended: u64, dropped: u64) {
        if mint <= maxt {
            self.ooo_min_t.fetch_min(mint, Ordering::AcqRel);
            self.ooo_max_t.fetch_max(maxt, Ordering::AcqRel);
        }
        self.samples_appended.fetch_add(appended, Ordering::Relaxed);
        self.samples_dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// Time range of the out-of-order data (a bound: it only widens until an out-of-order
    /// compaction recomputes it), if there is any.
    pub(crate) fn ooo_time_range(&self) -> Option<(i64, i64)> {
        let (min, max) = (
            self.ooo_min_t.load(Ordering::Acquire),
            self.ooo_max_t.load(Ordering::Acquire),
        );
        (min <= max).then_some((min, max))
    }

    /// Step 1 of out-of-order compaction: under the apply write lock, m-maps every open
    /// out-of-order chunk and takes the m-mapped out-of-order chunks that end before
    /// `limit` (the end of the in-order data in blocks); commits after this start new chunks,
    /// which the compaction leaves, like the chunks it does not take (written again, after
    /// the others). The head chunk file is then finished (`ChunkFiles::finish_file`): the
    /// WBL segments holding the samples of all these chunks are deleted after the
    /// compaction. `None` if nothing is taken.
    ///
    /// Prometheus 2.42 compacts all out-of-order data, also past the in-order blocks; the
    /// block it writes there then raises the floor of the next open's WAL replay above
    /// in-order samples still in the head once a leveled compaction merges it with in-order
    /// blocks (which drops the hint that exempts it), and `promtool tsdb dump` (which takes
    /// the last block's end as that floor) omits those samples at once. Out-of-order data
    /// past `limit` waits for the in-order data to be compacted first.
    pub(crate) fn ooo_compaction_start(&self, limit: i64) -> Result<Option<OooTaken>> {
        if self.ooo_time_range().is_none() {
            return Ok(None);
        }
        let mut counts = HashMap::new();
        let mut range: Option<(i64, i64)> = None;
        let (mut through, mut all_on_disk) = (0u64, true);
        let mut moved = false;
        {
            let refs = self.postings.read().all().to_vec();
            let mut apply = self.locks.apply_write();
            for &r in &refs {
                let Some(s) = self.table.get(r) else { continue };
                let data = s.data_mut(&mut apply);
                let files = data.files().cloned();
                let Some(ooo) = data.ooo.as_mut() else {
                    continue;
                };
                moved |= ooo.mmap_open(r, files.as_ref()).is_some();
                // The chunks taken first (later inserts only add chunks after them).
                ooo.mmapped.sort_by_key(|c| c.max_t >= limit);
                let taken = ooo.mmapped.iter().take_while(|c| c.max_t < limit);
                let (mut n, mut lo, mut hi) = (0, i64::MAX, i64::MIN);
                for c in taken {
                    (n, lo, hi) = (n + 1, lo.min(c.min_t), hi.max(c.max_t));
                }
                if n == 0 {
                    continue;
                }
                range = Some(range.map_or((lo, hi), |(x, y)| (x.min(lo), y.max(hi))));
                counts.insert(r, n);
            }
            // Second pass, once every chunk taken has its reference: the chunks not taken
            // are written again after them.
            for &r in &refs {
                let Some(s) = self.table.get(r) else { continue };
                let data = s.data_mut(&mut apply);
                let files = data.files().cloned();
                let Some(ooo) = data.ooo.as_mut() else {
                    continue;
                };
                for c in &ooo.mmapped {
                    match c.loc {
                        super::series::ChunkLoc::File(at, _) => through = through.max(at),
                        super::series::ChunkLoc::Mem(..) => all_on_disk = false,
                    }
                }
                let n = counts.get(&r).copied().unwrap_or(0);
                if let (Some(f), true) = (files, n < ooo.mmapped.len()) {
                    if !counts.is_empty() {
                        ooo.rewrite_from(n, r, &f)?;
                    }
                }
            }
        }
        if counts.is_empty() {
            // Open chunks m-mapped above log no marker, and the next late sample of their
            // series starts a chunk with a ref-0 marker, at which the WBL replay drops the
            // samples it rebuilt: they must be in the file, not in the write buffer.
            if let (true, Some(f)) = (moved, &self.chunk_files) {
                f.finish_file()?;
            }
            return Ok(None);
        }
        if let Some(f) = &self.chunk_files {
            f.finish_file()?;
        }
        Ok(Some(OooTaken {
            counts: Arc::new(counts),
            range,
            compacted_through: through,
            all_on_disk,
        }))
    }

    /// Step 2: a reader of the chunks `taken` holds in `[mint, maxt]`.
    pub(crate) fn ooo_range(&self, taken: &OooTaken, mint: i64, maxt: i64) -> RangeHead<'_> {
        let mut r = self.range(mint, maxt);
        r.mode = ReadMode::OooOnly(taken.counts.clone());
        r
    }

    /// Step 3, once blocks hold them: drops the chunks `taken` took (under the apply write
    /// lock, together with `publish`, which makes those blocks visible), recomputes the
    /// out-of-order time range, and removes the series left empty. Returns the series removed.
    pub(crate) fn ooo_compaction_finish(&self, taken: OooTaken, publish: impl FnOnce()) -> usize {
        let (mut min, mut max) = (i64::MAX, i64::MIN);
        let _order = self.locks.wal_order();
        let mut apply = self.locks.apply_write();
        publish();
        let mut removed = 0;
        {
            let refs = self.postings.read().all().to_vec();
            for r in refs {
                let Some(s) = self.table.get(r) else { continue };
                let data = s.data_mut(&mut apply);
                let Some(ooo) = data.ooo.as_mut() else {
                    continue;
                };
                if let Some(&n) = taken.counts.get(&r) {
                    ooo.drop_compacted(n);
                }
                match ooo.time_range() {
                    Some((a, b)) => (min, max) = (min.min(a), max.max(b)),
                    None => data.ooo = None,
                }
                let empty = data.closed.is_empty() && data.open.is_none() && data.ooo.is_none();
                // Never a series an appender or query still holds (checked by the table).
                if empty && self.table.remove_if_unused(&s) {
                    self.postings.write().remove(s.series_ref, &s.labels);
                    self.tombstones.write().remove(s.series_ref);
                    self.num_series.fetch_sub(1, Ordering::Relaxed);
                    removed += 1;
                }
            }
            self.ooo_min_t.store(min, Ordering::Release);
            self.ooo_max_t.store(max, Ordering::Release);
        }
        drop(apply);
        removed
    }

    /// The lowest head chunk file an out-of-order chunk still lies in: head chunk file
    /// truncation keeps it and every later file.
    pub(crate) fn ooo_min_file(&self) -> Option<u32> {
        self.ooo_time_range()?;
        let refs = self.postings.read().all().to_vec();
        let apply = self.locks.apply_read();
        refs.iter()
            .filter_map(|&r| self.table.get(r))
            .filter_map(|s| s.data(&apply).ooo.as_ref().and_then(|o| o.min_file()))
            .min()
    }
}
