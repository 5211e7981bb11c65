//! Deletion: tombstones in the head (logged to the WAL) and in blocks (brief §2.5).

use std::sync::Arc;

use super::{check_range, Db, DbInner};
use crate::error::{Error, Result};
use crate::head::CommitLog;
use crate::model::Matcher;
use crate::options::WalSync;

impl Db {
    /// Deletes the samples in `[mint, maxt]` (both inclusive) of every series matching
    /// `matchers`, in the head and in every block. Queries stop returning them at once; the
    /// space is reclaimed when the head is compacted and when blocks are rewritten (by leveled
    /// compaction or [`Db::clean_tombstones`]). Deletions of the head are logged to the WAL
    /// and survive restarts; those of blocks are in the blocks' `tombstones` files.
    ///
    /// `matchers` must not be empty, as Prometheus's delete API requires `match[]`: an empty
    /// list is [`Error::InvalidMatcher`] and deletes nothing. To delete every series, call
    /// [`Db::delete_all`]. `mint > maxt` is an [`Error::InvalidArgument`] (see
    /// [`Db::querier`] for the rule on time ranges).
    pub fn delete(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<()> {
        if matchers.is_empty() {
            return Err(Error::InvalidMatcher {
                reason: "Db::delete needs at least one matcher (an empty list would delete every \
                         series); to delete every series, call Db::delete_all"
                    .into(),
            });
        }
        crate::model::check_matchers(matchers)?;
        self.delete_matching(mint, maxt, matchers)
    }

    /// Deletes the samples in `[mint, maxt]` (both inclusive) of every series, as
    /// [`Db::delete`] does for the series it selects. `mint > maxt` is an
    /// [`Error::InvalidArgument`].
    pub fn delete_all(&self, mint: i64, maxt: i64) -> Result<()> {
        self.delete_matching(mint, maxt, &[])
    }

    /// Deletes `[mint, maxt]` of the series `matchers` select (every series when empty).
    fn delete_matching(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<()> {
        self.check_writable()?;
        check_range("Db::delete", mint, maxt)?;
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
