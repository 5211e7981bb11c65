//! The commit protocol: an appender's samples go to the WAL, then into the series, as one
//! step that readers see wholly or not at all.

use std::sync::atomic::Ordering;

use super::{Appender, Head};
use crate::error::{Error, Result};
use crate::wal::Wal;

/// Where a commit's (or a deletion's) records go before the head changes: the WAL of an
/// on-disk database. Returns the position to wait for in a group commit.
pub(crate) trait CommitLog {
    /// Writes `records` in one go, in this order.
    fn log(&self, records: &[&[u8]]) -> Result<u64>;
}

impl CommitLog for Wal {
    fn log(&self, records: &[&[u8]]) -> Result<u64> {
        Wal::log(self, records)
    }
}

impl Head {
    /// Commits `app`'s buffered samples, logging them to `log` first (none in memory), and
    /// returns the log position to sync to. If logging fails, nothing is applied.
    ///
    /// 1. The Samples record is encoded without any lock.
    /// 2. `wal_order` is taken; if a head compaction persisted (or is reading) the range of a
    ///    buffered sample, the commit fails whole with [`Error::CommitOutOfBounds`]; buffered
    ///    series that a head truncation removed meanwhile are
    ///    recreated (new refs: the record is encoded again), a Series record is encoded for
    ///    series not yet logged, and both go to the log in one write.
    /// 3. `apply` is taken for writing and `wal_order` let go (lock coupling: the next commit
    ///    logs while this one applies, and WAL order stays apply order); the samples apply.
    pub(crate) fn commit(
        &self,
        app: &mut Appender,
        log: Option<&dyn CommitLog>,
    ) -> Result<Option<u64>> {
        debug_assert!(
            std::ptr::eq(self, &*app.head),
            "an appender commits to its own head"
        );
        let (mut series, mut samples) = (
            std::mem::take(&mut app.bufs.series_rec),
            std::mem::take(&mut app.bufs.samples_rec),
        );
        let res = (|| {
            let hists = !app.bufs.hists.is_empty();
            if log.is_some() {
                app.encode_samples(&mut samples);
            }
            let order = self.locks.wal_order();
            if self.sealed.load(Ordering::Acquire) {
                return Err(Error::Closed("database"));
            }
            // Exact: the floor is raised only under `wal_order` (and `apply`), and this
            // commit applies before the next raise can take `apply`.
            let floor = self.persisted_floor();
            if let Some(t) = app.oldest().filter(|&t| t < floor) {
                return Err(Error::CommitOutOfBounds {
                    timestamp: t,
                    min_valid_time: floor,
                });
            }
            if app.resolve(&order)? && log.is_some() {
                app.encode_samples(&mut samples);
            }
            if hists && log.is_some() {
                // After `resolve`: the records name the refs the samples apply to.
                app.encode_histograms();
            }
            let mut logged_to = None;
            // A Series record only ever accompanies samples.
            if let (Some(log), false) = (log, samples.is_empty() && !hists) {
                app.encode_series(&order, &mut series);
                let logged = if hists {
                    // Series, Samples, HistogramSamples, FloatHistogramSamples (2.42's order),
                    // the empty ones left out.
                    let [ints, floats] = app.histogram_records();
                    let records: Vec<&[u8]> = [series.as_slice(), samples.as_slice(), ints, floats]
                        .into_iter()
                        .filter(|r| !r.is_empty())
                        .collect();
                    log.log(&records)
                } else {
                    let records = [series.as_slice(), samples.as_slice()];
                    let first = usize::from(series.is_empty());
                    log.log(&records[first..])
                };
                logged_to = Some(logged?);
            }
            let mut apply = self.locks.couple(order);
            app.apply(&mut apply);
            // Out-of-order samples: into their chunks and the WBL, in apply order.
            app.wbl_logged_to = app.apply_late(&mut apply)?;
            Ok(logged_to)
        })();
        app.bufs.series_rec = series;
        app.bufs.samples_rec = samples;
        res
    }

    /// Ends commits: waits for those in flight; every later one fails with
    /// [`Error::Closed`]. Readers are not affected.
    pub(crate) fn seal(&self) {
        let _order = self.locks.wal_order();
        self.sealed.store(true, Ordering::Release);
        // A head compaction waiting for open appenders need not: none of them commits now.
        self.table.epochs.wake();
        // Commits that logged before the flag was set apply before this returns.
        drop(self.locks.apply_write());
    }
}
