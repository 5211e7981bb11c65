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
//! An appender remembers the newest sample it holds for each series in its own table (open
//! addressing keyed by series ref, no shared memory written), so `append` rejects a sample
//! that is out of order or a conflicting duplicate against its own earlier samples, and
//! `commit` never drops what `append` accepted for that reason.

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

/// Where [`check_order`] places a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// Newer than the series' newest: buffer it for the in-order chunk.
    New,
    /// The same sample again (federation, retries): accepted, nothing to store.
    Repeat,
    /// Older than the series' newest, inside the out-of-order window: buffer it for the
    /// series' out-of-order chunk (`head/ooo.rs`).
    Late,
}

/// The order rule of `append`: where a sample `(t, v)` stands against `newest`, the newest
/// sample (time, value bits) before it in its series, which is the later of the series'
/// newest committed sample and the newest sample the same appender holds for it.
///
/// `ooo_min` is the oldest time the out-of-order window accepts (Prometheus: the head's
/// newest sample minus `out_of_order_time_window`), `i64::MAX` without a window. An older
/// sample is [`Order::Late`] if it is at or after `ooo_min`, else an
/// [`Error::OutOfOrderSample`]; the same time with another value is an
/// [`Error::DuplicateSample`].
#[inline]
pub(super) fn check_order(
    newest: Option<(i64, u64)>,
    t: i64,
    v: f64,
    ooo_min: i64,
) -> Result<Order> {
    let Some((last_t, last_v)) = newest else {
        return Ok(Order::New);
    };
    if t > last_t {
        Ok(Order::New)
    } else if t < last_t {
        if t >= ooo_min {
            return Ok(Order::Late);
        }
        Err(Error::OutOfOrderSample {
            timestamp: t,
            last_timestamp: last_t,
        })
    } else if v.to_bits() == last_v {
        Ok(Order::Repeat)
    } else {
        Err(Error::DuplicateSample { timestamp: t })
    }
}

pub(super) struct Pending {
    pub(super) series: SeriesPtr,
    /// `series.series_ref`, so the WAL record is encoded without touching the series.
    pub(super) series_ref: u64,
    pub(super) t: i64,
    pub(super) v: f64,
}

/// One entry of a [`HeldTable`]: a series and its newest buffered sample.
#[derive(Clone, Copy, Default)]
struct Held {
    /// The series ref (refs are below 2^30), 0 when the entry is free.
    series_ref: u32,
    /// Index of the series' newest sample in the appender's buffer.
    sample: u32,
}

/// Where the newest sample an appender holds for each series is: open addressing by series
/// ref, Fibonacci hashing, linear probing, at most half full, 8-byte entries. Emptied when
/// an appender starts, on the thread that uses it, so its lines are in that core's cache
/// (1,000 series take 16 KiB): a first sample of a series costs one cached probe.
struct HeldTable {
    entries: Vec<Held>,
    used: usize,
    shift: u32,
}

impl Default for HeldTable {
    fn default() -> Self {
        HeldTable {
            entries: Vec::new(),
            used: 0,
            shift: 64,
        }
    }
}

impl HeldTable {
    /// Tables larger than this are freed rather than emptied for reuse.
    const KEEP_ENTRIES: usize = 1 << 16;

    #[inline]
    fn home(&self, key: u32) -> usize {
        (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The entry of `series_ref`, or the free entry where it goes, after making room for one
    /// more; `true` if found.
    #[inline]
    fn find(&mut self, series_ref: u64) -> (usize, bool) {
        if (self.used + 1) * 2 > self.entries.len() {
            self.grow();
        }
        self.probe(series_ref)
    }

    /// The entry of `series_ref` if `true`, else the free entry where it would go (the
    /// table must have a free entry).
    #[inline]
    fn probe(&self, series_ref: u64) -> (usize, bool) {
        debug_assert!(series_ref > 0 && series_ref <= u64::from(u32::MAX));
        let key = series_ref as u32;
        let mask = self.entries.len() - 1;
        let mut i = self.home(key);
        loop {
            match self.entries[i].series_ref {
                0 => return (i, false),
                k if k == key => return (i, true),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The entry of `series_ref`, if any (no room is made).
    fn find_existing(&self, series_ref: u64) -> Option<usize> {
        if self.used == 0 {
            return None;
        }
        match self.probe(series_ref) {
            (i, true) => Some(i),
            _ => None,
        }
    }

    /// The buffer index of the newest sample held at entry `i`.
    #[inline]
    fn sample(&self, i: usize) -> usize {
        self.entries[i].sample as usize
    }

    /// Sets entry `i` (from [`find`](Self::find) for `series_ref`).
    #[inline]
    fn set(&mut self, i: usize, series_ref: u64, sample: usize) {
        let e = &mut self.entries[i];
        if e.series_ref == 0 {
            self.used += 1;
        }
        *e = Held {
            series_ref: series_ref as u32,
            sample: u32::try_from(sample).expect("fewer than 2^32 samples in one appender"),
        };
    }

    #[cold]
    fn grow(&mut self) {
        let cap = (self.entries.len() * 2).max(64);
        let old = std::mem::replace(&mut self.entries, vec![Held::default(); cap]);
        self.shift = 64 - cap.trailing_zeros();
        self.used = 0;
        for e in old.into_iter().filter(|e| e.series_ref != 0) {
            let (i, _) = self.probe(u64::from(e.series_ref));
            self.set(i, u64::from(e.series_ref), e.sample as usize);
        }
    }

    /// Forgets every entry; a table much larger than its last use needed shrinks.
    fn clear(&mut self) {
        let len = self.entries.len();
        if len > Self::KEEP_ENTRIES || (len > 64 && self.used * 8 < len) {
            let keep = (len / 2).min(Self::KEEP_ENTRIES);
            *self = HeldTable::default();
            if keep >= 64 {
                self.entries = vec![Held::default(); keep];
                self.shift = 64 - keep.trailing_zeros();
            }
            return;
        }
        if self.used > 0 {
            self.entries.fill(Held::default());
            self.used = 0;
        }
    }
}

/// Reusable buffers, recycled between appenders so steady-state appends do not allocate.
#[derive(Default)]
pub(crate) struct AppendBuffers {
    pub(super) samples: Vec<Pending>,
    /// The newest sample held per series.
    held: HeldTable,
    pub(super) series_rec: Vec<u8>,
    pub(super) samples_rec: Vec<u8>,
    /// Buffered native histograms (`head/histogram.rs`).
    pub(super) hists: super::histogram::HistBuffers,
    /// Out-of-order samples (`head/ooo.rs`), applied after the in-order ones.
    pub(super) late: Vec<Pending>,
    /// The late samples held, by (series ref, time): value bits (duplicates within the
    /// appender).
    pub(super) late_seen: HashMap<(u64, i64), u64>,
}

/// The head-side state of one transaction. [`crate::Appender`] wraps it with the database's
/// lifecycle (closed checks, WAL sync, buffer recycling).
pub(crate) struct Appender {
    pub(super) head: Arc<Head>,
    /// Keeps every series in `bufs.samples` alive; dropped (unregistered) last.
    pub(super) epoch: EpochGuard,
    /// Refs from here on were handed out after this appender registered.
    first_new_ref: u64,
    /// Buffered series that a head truncation removed, by label hash, and the removal
    /// generation they were collected at (see [`twin_of`](Self::twin_of)).
    twins: Option<(u64, HashMap<u64, Vec<SeriesPtr>>)>,
    min_valid_time: i64,
    /// The oldest buffered timestamp (`i64::MAX` if none).
    oldest: i64,
    /// Newest timestamp accepted (`Options::max_future_ms` ahead of the clock as last read;
    /// `i64::MAX` without a bound).
    max_valid_time: i64,
    /// Whether a buffered series had no Series record in the WAL when it was appended (only
    /// then does the commit look for series to log).
    pub(super) maybe_unlogged: bool,
    /// Oldest time the out-of-order window accepts (`i64::MAX` without a window, or while
    /// the head is empty), fixed when the appender starts as Prometheus's `headMaxt`.
    pub(super) ooo_min: i64,
    /// Where the commit's out-of-order records went in the WBL, to sync to.
    pub(crate) wbl_logged_to: Option<u64>,
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
        let first_new_ref = head.next_ref.load(std::sync::atomic::Ordering::Acquire);
        let min_valid_time = epoch.min_valid_time;
        let max_valid_time = head.max_valid_time();
        bufs.samples.clear();
        bufs.held.clear();
        bufs.hists.clear();
        bufs.late.clear();
        bufs.late_seen.clear();
        let ooo_min = head.ooo_min_time();
        Appender {
            head,
            epoch,
            first_new_ref,
            twins: None,
            min_valid_time,
            oldest: i64::MAX,
            max_valid_time,
            maybe_unlogged: false,
            ooo_min,
            wbl_logged_to: None,
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
            if self.ooo_min == i64::MAX {
                return Err(Error::OutOfBounds {
                    timestamp: t,
                    min_valid_time: self.min_valid_time,
                });
            }
            return self.append_below_window(hint, labels, t, v);
        }
        if t > self.max_valid_time {
            self.check_future(t)?;
        }
        // With a known ref, the held table is probed from the ref itself, so the probe does
        // not wait for the series' cache line.
        let (ptr, series_ref) =
            match hint.and_then(|r| Some((self.head.series_fast(r.0, &self.epoch)?, r))) {
                Some(found) => found,
                None => {
                    // The series stays valid after the `Arc` is dropped: it is in the table, or was
                    // removed after we registered and waits for us in the epoch's retired list.
                    let s = self.head.get_or_create(labels)?.0;
                    (SeriesPtr::of(&s), SeriesRef(s.series_ref))
                }
            };
        let (i, found) = self.bufs.held.find(series_ref.0);
        // SAFETY: `ptr` was obtained while `self.epoch` is registered, which outlives it.
        let series = unsafe { ptr.get() };
        debug_assert_eq!(
            series.series_ref, series_ref.0,
            "a table slot holds its ref"
        );
        let held = if found {
            let p = &self.bufs.samples[self.bufs.held.sample(i)];
            Some((p.t, p.v.to_bits()))
        } else if series_ref.0 >= self.first_new_ref && self.head.series_removed_since(&self.epoch)
        {
            self.twin_of(series)
        } else {
            None
        };
        if series
            .last_is_hist
            .load(std::sync::atomic::Ordering::Relaxed)
            || !self.bufs.hists.is_empty()
        {
            if let Some(r) = self.float_against_histograms(series, series_ref, labels, t, v) {
                return r;
            }
        }
        let newest = match (series.last_committed(), held) {
            (Some(c), Some(h)) if c.0 >= h.0 => Some(c),
            (c, None) => c,
            (_, h) => h,
        };
        match check_order(newest, t, v, self.ooo_min)? {
            Order::New => {}
            Order::Repeat => return Ok(series_ref),
            Order::Late => return self.buffer_late(ptr, series_ref, t, v),
        }
        let at = self.bufs.samples.len();
        self.bufs.held.set(i, series_ref.0, at);
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

    /// Rejects `t` outside the appendable window: older than the head's floor, or past the
    /// future bound (the slow path of [`append`](Self::append), for histograms).
    pub(super) fn check_bounds(&mut self, t: i64) -> Result<()> {
        if t < self.min_valid_time {
            return Err(Error::OutOfBounds {
                timestamp: t,
                min_valid_time: self.min_valid_time,
            });
        }
        if t > self.max_valid_time {
            self.check_future(t)?;
        }
        Ok(())
    }

    /// The series for `hint` or, failing that, `labels` (created if absent), as
    /// [`append`](Self::append) finds it.
    pub(super) fn find_series(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
    ) -> Result<(SeriesPtr, SeriesRef)> {
        if let Some(found) = hint.and_then(|r| Some((self.head.series_fast(r.0, &self.epoch)?, r)))
        {
            return Ok(found);
        }
        let s = self.head.get_or_create(labels)?.0;
        Ok((SeriesPtr::of(&s), SeriesRef(s.series_ref)))
    }

    /// Time of the newest float sample this appender holds for the series, if any.
    pub(super) fn held_float_time(&self, series_ref: u64) -> Option<i64> {
        let i = self.bufs.held.find_existing(series_ref)?;
        Some(self.bufs.samples[self.bufs.held.sample(i)].t)
    }

    /// Notes a buffered sample of `series` at `t` (for the commit's Series record and floor
    /// check).
    pub(super) fn note_buffered(&mut self, series: &MemSeries, t: i64) {
        self.maybe_unlogged |= !series.is_logged();
        self.oldest = self.oldest.min(t);
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

    /// The newest sample this appender holds for a series that a head truncation removed
    /// while this appender held samples of it, and that the labels of `series` (created
    /// since this appender registered) recreated: those samples go to `series` at commit, so
    /// they count as its own. Rare (a removal since registration and a series created since);
    /// the removed series are collected once per removal generation.
    #[cold]
    fn twin_of(&mut self, series: &MemSeries) -> Option<(i64, u64)> {
        let generation = self.head.table.epochs.generation();
        if self.twins.as_ref().is_none_or(|(g, _)| *g != generation) {
            let mut map: HashMap<u64, Vec<SeriesPtr>> = HashMap::new();
            for p in &self.bufs.samples {
                // SAFETY: obtained under `self.epoch`, which is still registered.
                let s = unsafe { p.series.get() };
                if s.is_removed() {
                    let v = map.entry(s.labels.stable_hash()).or_default();
                    if !v.contains(&p.series) {
                        v.push(p.series);
                    }
                }
            }
            self.twins = Some((generation, map));
        }
        let (_, map) = self.twins.as_ref().expect("collected above");
        let newest = map
            .get(&series.labels.stable_hash())?
            .iter()
            // SAFETY: obtained under `self.epoch`, which is still registered.
            .map(|p| unsafe { p.get() })
            .filter(|old| old.labels == series.labels)
            .filter_map(|old| {
                let i = self.bufs.held.find_existing(old.series_ref)?;
                let p = &self.bufs.samples[self.bufs.held.sample(i)];
                Some((p.t, p.v.to_bits()))
            })
            .max_by_key(|h| h.0);
        newest
    }

    /// Number of buffered samples.
    pub(crate) fn pending(&self) -> usize {
        self.bufs.samples.len() + self.bufs.hists.len() + self.bufs.late.len()
    }

    /// The oldest buffered timestamp, if any sample is buffered.
    pub(super) fn oldest(&self) -> Option<i64> {
        (!self.bufs.samples.is_empty() || !self.bufs.hists.is_empty()).then_some(self.oldest)
    }

    /// Encodes the Samples record of the buffered samples into `rec` (§1.10; left empty when
    /// there are none). Needs no lock: it reads only the appender's own buffer. If
    /// [`resolve`](Self::resolve) later reports changed refs, encode again.
    pub(super) fn encode_samples(&self, rec: &mut Vec<u8>) {
        rec.clear();
        if self.bufs.samples.is_empty() && self.bufs.late.is_empty() {
            return;
        }
        // Late samples are logged in the WAL too, as Prometheus 2.42 logs them (its replay of
        // the WAL rejects them as out of order; the WBL brings them back).
        wal::encode_samples(
            self.bufs
                .samples
                .iter()
                .chain(&self.bufs.late)
                .map(|p| wal::RefSample {
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
        let mut changed = self.resolve_histograms()?;
        self.maybe_unlogged |= changed;
        for p in self.bufs.samples.iter_mut().chain(&mut self.bufs.late) {
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
            .chain(&self.bufs.late)
            .map(|p| &p.series)
            .chain(self.bufs.hists.series())
            // SAFETY: obtained under `self.epoch`, which is still registered.
            .map(|p| unsafe { p.get() })
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
    /// duplicate since `append` (concurrent appenders on one series) is dropped and counted,
    /// as Prometheus does. Nothing else is dropped: `append` already rejected samples out of
    /// order against the appender's own, and none lies below the head's floor:
    /// [`Head::commit`] failed the commit before logging if one did.
    pub(super) fn apply(&mut self, apply: &mut ApplyWrite<'_>) {
        let cfg = self.head.cfg;
        debug_assert!(self
            .oldest()
            .is_none_or(|t| t >= self.head.persisted_floor()));
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        let (mut appended, mut dropped) = (0u64, 0u64);
        let mut demoted = Vec::new();
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
            } else if self.ooo_min != i64::MAX
                && series.last_committed().is_some_and(|(l, _)| p.t < l)
                && p.t >= self.ooo_min
            {
                // Another commit made it out of order since `append`: within the window,
                // it goes to the out-of-order chunk (Prometheus re-checks at commit too).
                demoted.push(i);
            } else {
                dropped += 1;
            }
        }
        if !self.bufs.hists.is_empty() {
            let (mut range, mut counts) = ((mint, maxt), (appended, dropped));
            self.apply_histograms(apply, &mut range, &mut counts);
            ((mint, maxt), (appended, dropped)) = (range, counts);
        }
        self.head.note_committed(mint, maxt, appended, dropped);
        for i in demoted {
            let p = &self.bufs.samples[i];
            let late = Pending {
                series: p.series,
                series_ref: p.series_ref,
                t: p.t,
                v: p.v,
            };
            self.bufs.late.push(late);
        }
    }

    /// Hands the buffers back, emptied, for reuse.
    pub(crate) fn into_buffers(mut self) -> AppendBuffers {
        let mut bufs = std::mem::take(&mut self.bufs);
        bufs.samples.clear();
        bufs.hists.clear();
        bufs.late.clear();
        bufs.late_seen.clear();
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

    /// The held table against a map: growth keeps entries, clearing forgets them, a table
    /// far larger than its use shrinks, a huge one is freed.
    #[test]
    fn held_table_follows_a_map() {
        let mut table = HeldTable::default();
        let mut model = std::collections::HashMap::new();
        let mut seed = 7u64;
        for round in 0..6u64 {
            let distinct = if round < 3 { 5000 } else { 40 };
            for k in 0..3000usize {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let r = seed % distinct + 1;
                let (i, found) = table.find(r);
                assert_eq!(found, model.contains_key(&r));
                if found {
                    assert_eq!(table.sample(i), model[&r]);
                }
                table.set(i, r, k);
                model.insert(r, k);
            }
            for (&r, &k) in &model {
                assert_eq!(table.find_existing(r).map(|i| table.sample(i)), Some(k));
            }
            assert_eq!(table.used, model.len());
            table.clear();
            model.clear();
            assert_eq!(table.find_existing(1), None);
        }
        assert!(table.entries.len() <= 1024, "shrunk after small uses");
        for r in 1..=(HeldTable::KEEP_ENTRIES as u64) {
            let (i, _) = table.find(r);
            table.set(i, r, 0);
        }
        table.clear();
        assert!(table.entries.len() <= HeldTable::KEEP_ENTRIES);
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
