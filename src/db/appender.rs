//! The public appender: one transaction over the head and the WAL.

use std::sync::atomic::Ordering;

use super::Db;
use crate::error::{Error, Result};
use crate::head::{self, CommitLog};
use crate::model::histogram::{FloatHistogram, Histogram};
use crate::model::{Labels, SeriesRef};
use crate::options::WalSync;

/// One transaction: samples appended to it become visible, atomically, on [`commit`].
///
/// A sample rejected by [`append`] (out of order, duplicate, out of bounds, too far in the
/// future) fails alone; the rest of the batch stays appendable. Order is judged against the
/// series' committed samples and against the samples this appender holds for it, so
/// [`commit`] stores everything `append` accepted, except what
/// [`HeadStats::samples_dropped_at_commit`](crate::HeadStats::samples_dropped_at_commit)
/// counts (a concurrent commit on the same series, or a head compaction, in between).
/// Dropping an appender without committing rolls back.
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

    /// Adds a native histogram with integer counts (stored as Prometheus 2.42 stores it:
    /// histogram chunks, WAL record 7). The same rules as [`append`](Self::append) apply
    /// (bounds, order, duplicates: an exact repeat of the newest histogram is accepted and
    /// stores nothing; a histogram at the time of a float sample is a duplicate), and the
    /// histogram must pass Prometheus's validation ([`Error::InvalidHistogram`]).
    ///
    /// Within one appender, a series' float samples apply before its integer histograms,
    /// which apply before its float histograms (the order of their WAL records): a sample at
    /// or after one of a later kind held by the same appender fails with
    /// [`Error::OutOfOrderSample`]. A float stale marker for a series whose newest sample is a
    /// histogram is stored as a histogram stale marker, as 2.42 does.
    pub fn append_histogram(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        h: &Histogram,
    ) -> Result<SeriesRef> {
        self.db.check_writable()?;
        let Some(inner) = self.inner.as_mut() else {
            return Err(Error::Closed("appender"));
        };
        inner.append_hist(series, labels, t, head::HistSample::Int(h.clone()))
    }

    /// Adds a native histogram with float counts (chunk encoding 3, WAL record 8); see
    /// [`append_histogram`](Self::append_histogram).
    pub fn append_float_histogram(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        h: &FloatHistogram,
    ) -> Result<SeriesRef> {
        self.db.check_writable()?;
        let Some(inner) = self.inner.as_mut() else {
            return Err(Error::Closed("appender"));
        };
        inner.append_hist(series, labels, t, head::HistSample::Float(h.clone()))
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
        let res = self.db.check_writable().and_then(|()| {
            let log = db.wal.as_deref().map(|w| w as &dyn CommitLog);
            db.head.commit(&mut inner, log)
        });
        let wbl_logged_to = inner.wbl_logged_to.take();
        self.recycle(inner);
        let logged_to = res?;
        if let (Some(pos), WalSync::EveryCommit, Some(w)) = (logged_to, db.opts.wal_sync, &db.wal) {
            w.sync_to(pos)?;
        }
        if let (Some(pos), WalSync::EveryCommit, Some(w)) =
            (wbl_logged_to, db.opts.wal_sync, db.head.wbl())
        {
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

#[cfg(test)]
mod tests {
    use std::thread;

    use crate::{Db, Labels, Options, Sample, WalSync};

    /// Every series with its samples, as a query returns them.
    fn contents(db: &Db) -> Vec<(String, Vec<(i64, u64)>)> {
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        q.select(&[])
            .unwrap()
            .map(|s| {
                let samples: Vec<Sample> = s.to_vec().unwrap();
                let samples = samples.iter().map(|x| (x.t, x.v.to_bits())).collect();
                (s.labels().to_string(), samples)
            })
            .collect()
    }

    /// Commits racing on the same series drop each other's samples at append or at commit
    /// depending on the interleaving; replay re-validates in WAL order, so it reproduces the
    /// live head only if WAL order is apply order (the head's `wal_order` lock).
    #[test]
    fn replay_reproduces_racing_commits_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            compaction: false,
            wal_sync: WalSync::Never,
            // The WAL is what is under test: no memory snapshot to restore from instead.
            snapshot_on_close: false,
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        let labels: Vec<Labels> = (0..16)
            .map(|i| Labels::new([("__name__", "m"), ("i", &i.to_string())]).unwrap())
            .collect();
        thread::scope(|s| {
            for w in 0..3i64 {
                let (db, labels) = (db.clone(), &labels);
                s.spawn(move || {
                    let mut refs = vec![None; labels.len()];
                    for c in 0..400i64 {
                        let mut app = db.appender();
                        for (i, l) in labels.iter().enumerate() {
                            // Writers interleave timestamps and values on shared series.
                            let t = c * 4 + (w + i as i64) % 4;
                            if let Ok(r) = app.append(refs[i], l, t, (w * 1000 + c) as f64) {
                                refs[i] = Some(r);
                            }
                        }
                        app.commit().unwrap();
                    }
                });
            }
        });
        let live = contents(&db);
        let stats = db.head_stats();
        assert!(stats.samples_appended > 0);
        db.close().unwrap();
        let db = Db::open(dir.path(), opts).unwrap();
        assert_eq!(contents(&db), live);
        // Replay re-appends only what no head chunk file holds (it skips covered WAL samples,
        // including ones the live head dropped), so only the contents compare exactly.
        assert!(db.head_stats().samples_appended <= stats.samples_appended);
    }
}
