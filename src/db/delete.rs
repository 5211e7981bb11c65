//! Deletion: tombstones in the head (logged to the WAL) and in blocks (brief §2.5).

use std::sync::Arc;

use super::{Db, DbInner};
use crate::error::Result;
use crate::head::CommitLog;
use crate::model::Matcher;
use crate::options::WalSync;

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
        let log = self.wal.as_deref().map(|w| w as &dyn CommitLog);
        let logged_to = self.head.delete(mint, maxt, matchers, log)?;
        if let (Some(pos), WalSync::EveryCommit, Some(w)) =
            (logged_to, self.opts.wal_sync, &self.wal)
        {
            w.sync_to(pos)?;
        }
        Ok(())
    }

    fn delete_in_blocks(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<()> {
        let (mut old, mut new) = (Vec::new(), Vec::new());
        for b in self
            .blocks
            .current()
            .iter()
            .filter(|b| b.overlaps(mint, maxt))
        {
            if let Some(reopened) = b.delete(mint, maxt, matchers)? {
                old.push(b.clone());
                new.push(Arc::new(reopened));
            }
        }
        // Queries see the deletion in every block at once.
        if !old.is_empty() {
            self.blocks.replace(&old, new);
        }
        Ok(())
    }
}
