//! Deletion: tombstones in the head (logged to the WAL) and in blocks (brief §2.5).

use std::sync::Arc;

use super::{Db, DbInner};
use crate::block::Block;
use crate::error::Result;
use crate::model::Matcher;
use crate::query::block_postings;
use crate::tombstones::Interval;
use crate::wal;

impl Db {
    /// Deletes the samples in `[mint, maxt]` (both inclusive) of every series matching
    /// `matchers`, in the head and in every block. Queries stop returning them at once; the
    /// space is reclaimed when the head is compacted and when blocks are rewritten (by leveled
    /// compaction or [`Db::clean_tombstones`]). Deletions of the head are logged to the WAL
    /// and survive restarts; those of blocks are in the blocks' `tombstones` files.
    pub fn delete(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<()> {
        self.check_writable()?;
        if mint > maxt {
            return Ok(());
        }
        let _one_at_a_time = self.inner.compacting.lock();
        self.inner.delete_in_blocks(mint, maxt, matchers)?;
        self.inner.delete_in_head(mint, maxt, matchers)
    }
}

impl DbInner {
    fn delete_in_head(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<()> {
        let head = &self.sources.head;
        let series = head.select_series(matchers);
        // WAL order must be apply order (see `Head::wal_order`).
        let _order = head.wal_order.lock();
        let _apply = head.apply.write();
        let mut stones = Vec::new();
        for s in &series {
            // Clamped to the series' data, as Prometheus does; series without data in range
            // need no tombstone.
            let data = s.data.lock();
            let (Some(lo), Some(hi)) = (data.min_time(), data.max_time()) else {
                continue;
            };
            let (a, b) = (mint.max(lo), maxt.min(hi));
            if a <= b {
                stones.push(wal::Stone {
                    series_ref: s.series_ref,
                    interval: Interval::new(a, b),
                });
            }
        }
        if stones.is_empty() {
            return Ok(());
        }
        if let Some(w) = &self.wal {
            let mut rec = Vec::new();
            wal::encode_tombstones(&stones, &mut rec);
            let pos = w.log(&[&rec])?;
            if self.opts.wal_sync == crate::options::WalSync::EveryCommit {
                w.sync_to(pos)?;
            }
        }
        for st in &stones {
            head.add_tombstone(st.series_ref, st.interval);
        }
        Ok(())
    }

    fn delete_in_blocks(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<()> {
        let blocks = self.sources.blocks();
        let mut replaced: Vec<(Arc<Block>, Arc<Block>)> = Vec::new();
        for b in blocks.iter().filter(|b| b.overlaps(mint, maxt)) {
            let mut stones = b.tombstones().clone();
            let mut added = 0;
            let mut metas = Vec::new();
            for r in block_postings(b, matchers)? {
                b.index().series_into(r as u32, &mut metas)?;
                let (Some(first), Some(last)) = (metas.first(), metas.last()) else {
                    continue;
                };
                let (lo, hi) = (mint.max(first.min_time), maxt.min(last.max_time));
                if lo <= hi {
                    stones.add_interval(r, Interval::new(lo, hi));
                    added += 1;
                }
            }
            if added == 0 {
                continue;
            }
            stones.write(b.dir())?;
            let mut meta = b.meta().clone();
            meta.stats.num_tombstones = stones.total();
            meta.write(b.dir())?;
            crate::fs::sync_dir(b.dir())?;
            replaced.push((b.clone(), Arc::new(Block::open(b.dir())?)));
        }
        if !replaced.is_empty() {
            let mut list = self.sources.blocks.write();
            let v = list
                .iter()
                .map(|b| {
                    replaced
                        .iter()
                        .find(|(old, _)| Arc::ptr_eq(old, b))
                        .map_or(b.clone(), |(_, new)| new.clone())
                })
                .collect();
            *list = Arc::new(v);
        }
        Ok(())
    }
}
