//! The public appender: one transaction over the head and the WAL.

use std::sync::atomic::Ordering;

use super::Db;
use crate::error::{Error, Result};
use crate::head;
use crate::model::{Labels, SeriesRef};
use crate::options::WalSync;

/// One transaction: samples appended to it become visible, atomically, on [`commit`].
///
/// A sample rejected by [`append`] (out of order, duplicate, out of bounds) fails alone; the
/// rest of the batch stays appendable. Dropping an appender without committing rolls back.
///
/// [`commit`]: Appender::commit
/// [`append`]: Appender::append
pub struct Appender {
    pub(super) db: Db,
    pub(super) inner: Option<head::Appender>,
}

impl Appender {
    /// Adds a sample. Pass the [`SeriesRef`] returned by an earlier call for the same series
    /// to skip the label lookup (the labels are then ignored); an unknown ref falls back to
    /// the labels.
    #[inline]
    pub fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef> {
        self.db.check_writable()?;
        let Some(inner) = self.inner.as_mut() else {
            return Err(Error::Closed("appender"));
        };
        inner.append(series, labels, t, v)
    }

    /// Number of samples waiting for commit.
    pub fn pending(&self) -> usize {
        self.inner.as_ref().map_or(0, |a| a.pending())
    }

    /// Writes the pending samples to the WAL and makes them visible at once. Returns when
    /// the commit is as durable as the [`WalSync`] policy promises. If the WAL write fails,
    /// nothing of the commit is applied and the error is returned.
    pub fn commit(mut self) -> Result<()> {
        let mut inner = self.inner.take().ok_or(Error::Closed("appender"))?;
        let db = &self.db.inner;
        let mut synced_to = None;
        {
            let _apply = db.sources.head.apply.write();
            self.db.check_writable()?;
            inner.resolve_locked()?;
            if let Some(w) = &db.wal {
                let (mut series, mut samples) = (
                    std::mem::take(&mut inner.bufs.series_rec),
                    std::mem::take(&mut inner.bufs.samples_rec),
                );
                inner.encode_wal(&mut series, &mut samples);
                // A Series record only ever accompanies samples.
                let records = [series.as_slice(), samples.as_slice()];
                let first = usize::from(series.is_empty());
                let logged = match samples.is_empty() {
                    true => Ok(None),
                    false => w.log(&records[first..]).map(Some),
                };
                inner.bufs.series_rec = series;
                inner.bufs.samples_rec = samples;
                synced_to = logged?;
            }
            inner.apply_locked();
        }
        self.recycle(inner);
        if let (Some(pos), WalSync::EveryCommit, Some(w)) = (synced_to, db.opts.wal_sync, &db.wal) {
            w.sync_to(pos)?;
        }
        self.db.maybe_trigger_compaction();
        Ok(())
    }

    /// Discards every pending sample.
    pub fn rollback(mut self) -> Result<()> {
        if let Some(inner) = self.inner.take() {
            self.recycle(inner);
        }
        Ok(())
    }

    fn recycle(&self, inner: head::Appender) {
        let mut pool = self.db.inner.buffers.lock();
        if pool.len() < 64 {
            pool.push(inner.into_buffers());
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            self.recycle(inner);
        }
    }
}

impl Db {
    /// Fails if the database is closed or read-only.
    #[inline]
    pub(super) fn check_writable(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("database"));
        }
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }
}
