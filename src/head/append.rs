//! Appenders: buffer samples, validate them against committed data, and apply them to the
//! head atomically on commit ([`Head::commit`](super::Head::commit) runs the steps).
//!
//! The per-sample path takes no lock, no reference count and no hash lookup when the caller
//! passes the series ref: the series is found with two loads ([`Head::series_fast`]) and
//! held as a plain pointer, kept valid by the appender's epoch registration (see
//! `head/table.rs`). A commit applies its samples under the apply write lock without locking
//! each series (see [`MemSeries`]). An appender's buffered samples live here and only here.

use std::sync::Arc;

use super::locks::{ApplyWrite, WalOrder};
use super::{EpochGuard, Head, MemSeries, SeriesPtr};
use crate::error::{Error, Result};
use crate::model::{Labels, SeriesRef};
use crate::wal;

/// How far ahead the apply loop prefetches, in samples: the series (its hot fields) at twice
/// this distance, the end of its open chunk's buffer (where the sample's bits go; found
/// through the then cached series) at this distance. Enough to overlap the cache misses of
/// scattered series, few enough that the lines are still cached when their turn comes.
const PREFETCH_AHEAD: usize = 8;

/// Hints the CPU to load the cache line holding `p`.
#[inline]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching never faults, whatever the address; nothing is read.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

struct Pending {
    series: SeriesPtr,
    /// `series.series_ref`, so the WAL record is encoded without touching the series.
    series_ref: u64,
    t: i64,
    v: f64,
}

/// Reusable buffers, recycled between appenders so steady-state appends do not allocate.
#[derive(Default)]
pub(crate) struct AppendBuffers {
    samples: Vec<Pending>,
    pub(super) series_rec: Vec<u8>,
    pub(super) samples_rec: Vec<u8>,
}

/// The head-side state of one transaction. [`crate::Appender`] wraps it with the database's
/// lifecycle (closed checks, WAL sync, buffer recycling).
pub(crate) struct Appender {
    pub(super) head: Arc<Head>,
    /// Keeps every series in `bufs.samples` alive; dropped (unregistered) last.
    epoch: EpochGuard,
    min_valid_time: i64,
    /// The oldest buffered timestamp (`i64::MAX` if none).
    oldest: i64,
    /// Whether a buffered series had no Series record in the WAL when it was appended (only
    /// then does the commit look for series to log).
    maybe_unlogged: bool,
    pub(super) bufs: AppendBuffers,
}

impl Appender {
    pub(crate) fn new(head: Arc<Head>, bufs: AppendBuffers) -> Self {
        let epoch = head.register_appender();
        let min_valid_time = epoch.min_valid_time;
        Appender {
            head,
            epoch,
            min_valid_time,
            oldest: i64::MAX,
            maybe_unlogged: false,
            bufs,
        }
    }

    /// Validates one sample against the committed state of its series and buffers it.
    #[inline]
    pub(crate) fn append(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef> {
        if t < self.min_valid_time {
            return Err(Error::OutOfBounds {
                timestamp: t,
                min_valid_time: self.min_valid_time,
            });
        }
        let ptr = match hint.and_then(|r| self.head.series_fast(r.0, &self.epoch)) {
            Some(p) => p,
            // The series stays valid after the `Arc` is dropped: it is in the table, or was
            // removed after we registered and waits for us in the epoch's retired list.
            None => SeriesPtr::of(&self.head.get_or_create(labels)?.0),
        };
        // SAFETY: `ptr` was obtained while `self.epoch` is registered, which outlives it.
        let series = unsafe { ptr.get() };
        let series_ref = SeriesRef(series.series_ref);
        if let Some((last_t, last_v)) = series.last_committed() {
            if t < last_t {
                return Err(Error::OutOfOrderSample {
                    timestamp: t,
                    last_timestamp: last_t,
                });
            }
            if t == last_t {
                if v.to_bits() == last_v {
                    // The same sample again (e.g. federation): accepted, nothing to store.
                    return Ok(series_ref);
                }
                return Err(Error::DuplicateSample { timestamp: t });
            }
        }
        // A series once logged stays logged; one removed later is caught at commit.
        self.maybe_unlogged |= !series.is_logged();
        self.oldest = self.oldest.min(t);
        self.bufs.samples.push(Pending {
            series: ptr,
            series_ref: series_ref.0,
            t,
            v,
        });
        Ok(series_ref)
    }

    /// Number of buffered samples.
    pub(crate) fn pending(&self) -> usize {
        self.bufs.samples.len()
    }

    /// The oldest buffered timestamp, if any sample is buffered.
    pub(super) fn oldest(&self) -> Option<i64> {
        (!self.bufs.samples.is_empty()).then_some(self.oldest)
    }

    /// Encodes the Samples record of the buffered samples into `rec` (§1.10; left empty when
    /// there are none). Needs no lock: it reads only the appender's own buffer. If
    /// [`resolve`](Self::resolve) later reports changed refs, encode again.
    pub(super) fn encode_samples(&self, rec: &mut Vec<u8>) {
        rec.clear();
        if self.bufs.samples.is_empty() {
            return;
        }
        wal::encode_samples(
            self.bufs.samples.iter().map(|p| wal::RefSample {
                series_ref: p.series_ref,
                t: p.t,
                v: p.v,
            }),
            rec,
        );
    }

    /// Prepares the commit. `_order` is held until the samples apply, so no series can be
    /// removed before then. A buffered series that a head truncation removed since it was
    /// appended is recreated by its labels (with a new ref), as a sample for a new series
    /// would be. Returns whether any ref changed (the Samples record must then be encoded
    /// again); fails only if a creation does.
    pub(super) fn resolve(&mut self, _order: &WalOrder<'_>) -> Result<bool> {
        if !self.head.series_removed_since(&self.epoch) {
            return Ok(false);
        }
        let mut changed = false;
        for p in &mut self.bufs.samples {
            // SAFETY: obtained under `self.epoch`, which is still registered.
            let old: &MemSeries = unsafe { p.series.get() };
            if old.is_removed() {
                let (series, _) = self.head.get_or_create(&old.labels)?;
                p.series = SeriesPtr::of(&series);
                p.series_ref = series.series_ref;
                self.maybe_unlogged |= !series.is_logged();
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Encodes into `rec` a Series record (§1.10) for every buffered series not yet in the
    /// WAL, marking them logged; leaves `rec` empty if there is none. The caller writes `rec`
    /// to the WAL before letting go of `_order`, so no commit logs a sample of these series
    /// before their Series record.
    pub(super) fn encode_series(&self, _order: &WalOrder<'_>, rec: &mut Vec<u8>) {
        rec.clear();
        if !self.maybe_unlogged {
            return;
        }
        let mut unlogged = self
            .bufs
            .samples
            .iter()
            // SAFETY: obtained under `self.epoch`, which is still registered.
            .map(|p| unsafe { p.series.get() })
            .filter(|s| !s.is_logged())
            .peekable();
        if unlogged.peek().is_some() {
            wal::encode_series(
                unlogged
                    .filter(|s| !s.mark_logged())
                    .map(|s| (s.series_ref, &s.labels)),
                rec,
            );
        }
    }

    /// Applies the buffered samples to the head under `apply`, taken (by lock coupling) before
    /// the `wal_order` guard passed to [`resolve`](Self::resolve) was let go.
    ///
    /// Samples are re-validated in order: one that another commit made out of order or
    /// duplicate since `append` is dropped and counted, as Prometheus does. None lies below
    /// the head's floor: [`Head::commit`] failed the commit before logging if one did.
    pub(super) fn apply(&mut self, apply: &mut ApplyWrite<'_>) {
        let cfg = self.head.cfg;
        debug_assert!(self
            .oldest()
            .is_none_or(|t| t >= self.head.persisted_floor()));
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        let (mut appended, mut dropped) = (0u64, 0u64);
        let samples = &self.bufs.samples;
        for (i, p) in samples.iter().enumerate() {
            if let Some(far) = samples.get(i + 2 * PREFETCH_AHEAD) {
                far.series.prefetch();
            }
            if let Some(near) = samples.get(i + PREFETCH_AHEAD) {
                // SAFETY: obtained under `self.epoch`, which is still registered.
                let data = unsafe { near.series.get() }.data_mut(apply);
                if let Some(o) = &data.open {
                    prefetch_line(o.app.bytes().as_ptr_range().end);
                }
            }
            // SAFETY: obtained under `self.epoch`, which is still registered.
            let series = unsafe { p.series.get() };
            if series.append_locked(series.data_mut(apply), p.t, p.v, cfg) {
                appended += 1;
                mint = mint.min(p.t);
                maxt = maxt.max(p.t);
            } else {
                dropped += 1;
            }
        }
        self.head.note_committed(mint, maxt, appended, dropped);
    }

    /// Hands the buffers back, emptied, for reuse.
    pub(crate) fn into_buffers(mut self) -> AppendBuffers {
        let mut bufs = std::mem::take(&mut self.bufs);
        bufs.samples.clear();
        self.oldest = i64::MAX;
        bufs
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        // Last: the buffered series pointers are dead from here on.
        self.head.unregister_appender(&self.epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;

    fn head() -> Arc<Head> {
        Arc::new(Head::new(&Options::default()))
    }

    /// A log that keeps the records it is given.
    #[derive(Default)]
    struct Kept(parking_lot::Mutex<Vec<Vec<u8>>>);

    impl crate::head::CommitLog for Kept {
        fn log(&self, records: &[&[u8]]) -> Result<u64> {
            let mut k = self.0.lock();
            k.extend(records.iter().map(|r| r.to_vec()));
            Ok(k.len() as u64)
        }
    }

    /// Commits `app` through [`Head::commit`]; returns its Series record (empty if none) and
    /// its Samples record.
    fn commit(app: &mut Appender) -> (Vec<u8>, Vec<u8>) {
        let head = app.head.clone();
        let log = Kept::default();
        head.commit(app, Some(&log)).unwrap();
        let mut recs = log.0.into_inner();
        let samples = recs.pop().unwrap_or_default();
        (recs.pop().unwrap_or_default(), samples)
    }

    #[test]
    fn commit_logs_new_series_once_and_applies_samples() {
        let head = head();
        let a = Labels::new([("a", "1")]).unwrap();
        let mut app = Appender::new(head.clone(), AppendBuffers::default());
        let r = app.append(None, &a, 1000, 1.0).unwrap();
        assert_eq!(app.append(Some(r), &a, 2000, 2.0).unwrap(), r);
        let (series, samples) = commit(&mut app);
        let mut got = Vec::new();
        wal::decode_series(&series, &mut got).unwrap();
        assert_eq!(got.len(), 1, "one Series record entry for two samples");
        assert_eq!((got[0].series_ref, &got[0].labels), (r.0, &a));
        let mut s = Vec::new();
        wal::decode_samples(&samples, &mut s).unwrap();
        assert_eq!(s.len(), 2);
        drop(app);

        let mut app = Appender::new(head.clone(), AppendBuffers::default());
        app.append(Some(r), &a, 3000, 3.0).unwrap();
        let (series, _) = commit(&mut app);
        assert!(series.is_empty(), "a logged series is not logged again");
        let s = head.table.get(r.0).unwrap();
        assert_eq!(s.last_committed(), Some((3000, 3f64.to_bits())));
        assert_eq!(head.stats().samples_appended, 3);
    }

    #[test]
    fn sample_of_a_series_removed_before_commit_goes_to_a_recreated_series() {
        let head = head();
        let a = Labels::new([("a", "1")]).unwrap();
        let mut app = Appender::new(head.clone(), AppendBuffers::default());
        let r = app.append(None, &a, 1000, 1.0).unwrap();
        // A head truncation collects the series: it has no data yet.
        assert_eq!(head.truncate(0, || {}), 1);
        assert!(!head.has_series(r.0));
        let (series, samples) = commit(&mut app);
        let now = head.get_or_create(&a).unwrap().0;
        assert_ne!(now.series_ref, r.0, "recreated with a new ref");
        assert_eq!(now.last_committed(), Some((1000, 1f64.to_bits())));
        // The WAL names the new ref in both records, so replay finds the sample.
        let mut got = Vec::new();
        wal::decode_series(&series, &mut got).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].series_ref, &got[0].labels), (now.series_ref, &a));
        let mut s = Vec::new();
        wal::decode_samples(&samples, &mut s).unwrap();
        assert_eq!(s[0].series_ref, now.series_ref);
        assert_eq!(head.stats().samples_appended, 1);
        assert_eq!(head.stats().samples_dropped_at_commit, 0);
    }

    #[test]
    fn samples_made_invalid_by_another_commit_are_dropped_at_commit() {
        let head = head();
        let a = Labels::new([("a", "1")]).unwrap();
        let mut first = Appender::new(head.clone(), AppendBuffers::default());
        let mut second = Appender::new(head.clone(), AppendBuffers::default());
        let r = first.append(None, &a, 2000, 2.0).unwrap();
        second.append(Some(r), &a, 1000, 1.0).unwrap();
        commit(&mut first);
        commit(&mut second);
        let st = head.stats();
        assert_eq!((st.samples_appended, st.samples_dropped_at_commit), (1, 1));
        let mut third = Appender::new(head.clone(), AppendBuffers::default());
        assert!(matches!(
            third.append(Some(r), &a, 1500, 1.0),
            Err(Error::OutOfOrderSample { .. })
        ));
        assert!(matches!(
            third.append(Some(r), &a, 2000, 9.0),
            Err(Error::DuplicateSample { .. })
        ));
        assert_eq!(third.append(Some(r), &a, 2000, 2.0).unwrap(), r);
        assert_eq!(third.pending(), 0, "an exact repeat stores nothing");
    }

    #[test]
    fn unknown_ref_hint_falls_back_to_labels() {
        let head = head();
        let a = Labels::new([("a", "1")]).unwrap();
        let mut app = Appender::new(head.clone(), AppendBuffers::default());
        let r = app.append(Some(SeriesRef(12345)), &a, 1000, 1.0).unwrap();
        assert_eq!(r, SeriesRef(1));
    }
}
