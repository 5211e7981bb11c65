//! Appenders: buffer samples, validate them against committed data and against what the
//! same appender already holds, and apply them to the head atomically on commit
//! ([`Head::commit`](super::Head::commit) runs the steps).
//!
//! The per-sample path takes no lock, no reference count and no hash lookup when the caller
//! passes the series ref: the series is found with two loads ([`Head::series_fast`]) and
//! held as a plain pointer, kept valid by the appender's epoch registration (see
//! `head/table.rs`). A commit applies its samples under the apply write lock without locking
//! each series (see [`MemSeries`]). An appender's buffered samples live here and only here.
//!
//! An appender remembers the newest sample it holds for each series in its own slot table,
//! so `append` rejects a sample that is out of order or a conflicting duplicate against its
//! own earlier samples, and `commit` never drops what `append` accepted for that reason. A
//! series records which open appender holds its slot (one compare-and-swap on the appender's
//! first sample of the series) and the slot's index, so finding the slot takes two loads of
//! the series' cache line, which the committed-sample check reads anyway; a series another
//! open appender holds (concurrent appenders on one series) goes to a map instead.

use std::collections::HashMap;
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

/// The order rule of `append`: where a sample `(t, v)` stands against `newest`, the newest
/// sample (time, value bits) before it in its series, which is the later of the series'
/// newest committed sample and the newest sample the same appender holds for it.
///
/// `Ok(true)`: newer, buffer it. `Ok(false)`: the same sample again (federation, retries):
/// accepted, nothing to store. Otherwise [`Error::OutOfOrderSample`] or
/// [`Error::DuplicateSample`]. An out-of-order window (issue 15) widens this rule here.
#[inline]
pub(super) fn check_order(newest: Option<(i64, u64)>, t: i64, v: f64) -> Result<bool> {
    let Some((last_t, last_v)) = newest else {
        return Ok(true);
    };
    if t > last_t {
        Ok(true)
    } else if t < last_t {
        Err(Error::OutOfOrderSample {
            timestamp: t,
            last_timestamp: last_t,
        })
    } else if v.to_bits() == last_v {
        Ok(false)
    } else {
        Err(Error::DuplicateSample { timestamp: t })
    }
}

struct Pending {
    series: SeriesPtr,
    /// `series.series_ref`, so the WAL record is encoded without touching the series.
    series_ref: u64,
    t: i64,
    v: f64,
}

/// The newest sample an appender holds for one series.
struct Slot {
    series: SeriesPtr,
    /// Whether the series names this appender as its holder (else `AppendBuffers::shared`
    /// maps it to this slot).
    held: bool,
    t: i64,
    v_bits: u64,
}

/// Reusable buffers, recycled between appenders so steady-state appends do not allocate.
#[derive(Default)]
pub(crate) struct AppendBuffers {
    samples: Vec<Pending>,
    /// One per series the appender holds samples of.
    slots: Vec<Slot>,
    /// Slots of series another open appender held when this one first appended to them, by
    /// series address.
    shared: HashMap<usize, u32>,
    pub(super) series_rec: Vec<u8>,
    pub(super) samples_rec: Vec<u8>,
}

/// The head-side state of one transaction. [`crate::Appender`] wraps it with the database's
/// lifecycle (closed checks, WAL sync, buffer recycling).
pub(crate) struct Appender {
    pub(super) head: Arc<Head>,
    /// Keeps every series in `bufs.samples` alive; dropped (unregistered) last.
    epoch: EpochGuard,
    /// This appender's id as a series' holder (non-zero, unique in the head).
    id: u64,
    min_valid_time: i64,
    /// Newest timestamp accepted (`Options::max_future_ms` ahead of the clock as last read;
    /// `i64::MAX` without a bound).
    max_valid_time: i64,
    /// Whether a buffered series had no Series record in the WAL when it was appended (only
    /// then does the commit look for series to log).
    maybe_unlogged: bool,
    pub(super) bufs: AppendBuffers,
}

/// Milliseconds since the Unix epoch now.
fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Head {
    /// Newest timestamp an appender accepts now: `Options::max_future_ms` ahead of the wall
    /// clock, `i64::MAX` without a bound.
    fn max_valid_time(&self) -> i64 {
        match self.max_future_ms {
            Some(bound) => now_ms().saturating_add(bound),
            None => i64::MAX,
        }
    }
}

impl Appender {
    pub(crate) fn new(head: Arc<Head>, mut bufs: AppendBuffers) -> Self {
        let epoch = head.register_appender();
        let id = head
            .next_appender_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let min_valid_time = head.appendable_min_valid_time();
        let max_valid_time = head.max_valid_time();
        debug_assert!(bufs.slots.is_empty() && bufs.shared.is_empty());
        bufs.samples.clear();
        Appender {
            head,
            epoch,
            id,
            min_valid_time,
            max_valid_time,
            maybe_unlogged: false,
            bufs,
        }
    }

    /// Validates one sample against the committed state of its series and against what this
    /// appender holds for it, and buffers it.
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
        if t > self.max_valid_time {
            self.check_future(t)?;
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
        let slot = self.slot_of(ptr, series);
        let held = slot.map(|i| {
            let s = &self.bufs.slots[i];
            (s.t, s.v_bits)
        });
        let newest = match (series.last_committed(), held) {
            (Some(c), Some(h)) if c.0 >= h.0 => Some(c),
            (c, None) => c,
            (_, h) => h,
        };
        if !check_order(newest, t, v)? {
            return Ok(series_ref);
        }
        match slot {
            Some(i) if self.bufs.slots[i].series == ptr => {
                let s = &mut self.bufs.slots[i];
                s.t = t;
                s.v_bits = v.to_bits();
            }
            _ => self.new_slot(ptr, series, t, v),
        }
        // A series once logged stays logged; one removed later is caught at commit.
        self.maybe_unlogged |= !series.is_logged();
        self.bufs.samples.push(Pending {
            series: ptr,
            series_ref: series_ref.0,
            t,
            v,
        });
        Ok(series_ref)
    }

    /// Rejects `t` if it is past the future bound by the clock now (the bound computed at
    /// creation is refreshed first, so a long-lived appender follows the clock).
    #[cold]
    fn check_future(&mut self, t: i64) -> Result<()> {
        self.max_valid_time = self.head.max_valid_time();
        match self.head.max_future_ms {
            Some(bound) if t > self.max_valid_time => Err(Error::TooFarInFuture {
                timestamp: t,
                max_valid_time: self.max_valid_time,
                max_future_ms: bound,
            }),
            _ => Ok(()),
        }
    }

    /// The slot holding this appender's newest sample of `series`, if it has one. A series
    /// that a head truncation removed and the labels recreated since this appender buffered
    /// samples of it has the slot of the removed one (whose samples go to the new series at
    /// commit): the caller then starts a slot for the new series.
    #[inline]
    fn slot_of(&self, ptr: SeriesPtr, series: &MemSeries) -> Option<usize> {
        if let Some(i) = series.held_slot(self.id) {
            return Some(i as usize);
        }
        if !self.bufs.shared.is_empty() {
            if let Some(&i) = self.bufs.shared.get(&ptr.addr()) {
                return Some(i as usize);
            }
        }
        if self.bufs.slots.is_empty() || !self.head.series_removed_since(&self.epoch) {
            return None;
        }
        // Rare: series were removed while this appender was open. Keep the newest twin.
        self.bufs
            .slots
            .iter()
            .enumerate()
            .rev()
            // SAFETY: obtained under `self.epoch`, which is still registered.
            .find(|(_, s)| {
                let old = unsafe { s.series.get() };
                old.is_removed() && old.labels == series.labels
            })
            .map(|(i, _)| i)
    }

    /// Starts the slot of a series this appender holds no sample of yet.
    fn new_slot(&mut self, ptr: SeriesPtr, series: &MemSeries, t: i64, v: f64) {
        let i = u32::try_from(self.bufs.slots.len()).expect("fewer series than u32::MAX");
        let held = series.try_hold(self.id, i);
        if !held {
            self.bufs.shared.insert(ptr.addr(), i);
        }
        self.bufs.slots.push(Slot {
            series: ptr,
            held,
            t,
            v_bits: v.to_bits(),
        });
    }

    /// Lets go of the series this appender holds (at its end).
    fn release_slots(&mut self) {
        for s in self.bufs.slots.drain(..) {
            if s.held {
                // SAFETY: obtained under `self.epoch`, which is still registered.
                unsafe { s.series.get() }.release_hold(self.id);
            }
        }
        self.bufs.shared.clear();
    }

    /// Number of buffered samples.
    pub(crate) fn pending(&self) -> usize {
        self.bufs.samples.len()
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
    /// duplicate since `append` (concurrent appenders on one series), or that a head
    /// compaction put below the head's floor, is dropped and counted, as Prometheus does.
    /// Nothing else is dropped: `append` already rejected samples out of order against the
    /// appender's own.
    pub(super) fn apply(&mut self, apply: &mut ApplyWrite<'_>) {
        let cfg = self.head.cfg;
        // A head compaction since `append` may have persisted the sample's range: what lies
        // below the new floor would never reach a block, so it is dropped here, as replay
        // drops it from the WAL.
        let floor = self.head.min_valid_time();
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
            if p.t < floor {
                dropped += 1;
                continue;
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
        self.release_slots();
        let mut bufs = std::mem::take(&mut self.bufs);
        bufs.samples.clear();
        bufs
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        self.release_slots();
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

    /// A series removed by a head truncation while the appender held samples of it, and
    /// recreated by the labels: its samples go to the new series at commit, so the order
    /// check spans both.
    #[test]
    fn order_is_kept_across_a_series_recreated_while_buffered() {
        let head = head();
        let a = Labels::new([("a", "1")]).unwrap();
        let mut app = Appender::new(head.clone(), AppendBuffers::default());
        let r = app.append(None, &a, 2000, 2.0).unwrap();
        assert_eq!(head.truncate(0, || {}), 1);
        assert!(matches!(
            app.append(Some(r), &a, 1000, 1.0),
            Err(Error::OutOfOrderSample {
                last_timestamp: 2000,
                ..
            })
        ));
        let r2 = app.append(Some(r), &a, 3000, 3.0).unwrap();
        assert_ne!(r2, r, "recreated");
        assert!(matches!(
            app.append(Some(r2), &a, 2500, 1.0),
            Err(Error::OutOfOrderSample {
                last_timestamp: 3000,
                ..
            })
        ));
        commit(&mut app);
        let st = head.stats();
        assert_eq!((st.samples_appended, st.samples_dropped_at_commit), (2, 0));
    }

    #[test]
    fn an_ended_appender_lets_go_of_its_series() {
        let head = head();
        let a = Labels::new([("a", "1")]).unwrap();
        let mut app = Appender::new(head.clone(), AppendBuffers::default());
        app.append(None, &a, 1000, 1.0).unwrap();
        let s = head.get_or_create(&a).unwrap().0;
        assert_eq!(s.held_slot(app.id), Some(0));
        let id = app.id;
        let bufs = app.into_buffers();
        assert_eq!(s.held_slot(id), None);
        assert!(s.try_hold(id + 100, 0), "free again");
        s.release_hold(id + 100);
        let mut app = Appender::new(head.clone(), bufs);
        app.append(None, &a, 2000, 1.0).unwrap();
        assert_eq!(s.held_slot(app.id), Some(0));
        drop(app);
        assert_eq!(s.held_slot(0), Some(0), "dropping lets go too");
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
