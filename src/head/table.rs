//! The head's series table: series by reference (an array indexed by ref, no hashing) and by
//! label set (a striped hash map keyed by the labels' stable hash).
//!
//! Appenders look series up without any lock or reference count: a slot also holds a plain
//! pointer to its series, and a removed series is only freed once every appender that was
//! open when it was removed has finished ([`Epochs`], a grace period in the manner of RCU).
//! Everything else gets an `Arc` under the slot's read lock.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::chunk_files::ChunkFiles;
use super::series::MemSeries;
use crate::error::{Error, Result};
use crate::model::Labels;

const SEGMENT_BITS: u32 = 14;
const SEGMENT_LEN: usize = 1 << SEGMENT_BITS;
const SEGMENTS: usize = 1 << 16;
/// Largest series reference the table can hold (2^30 - 1).
pub(crate) const MAX_REF: u64 = (SEGMENTS * SEGMENT_LEN) as u64 - 1;
const STRIPES: usize = 1024;

/// One series reference. `fast` mirrors `series` (null when empty); both change only under
/// the slot's write lock.
struct Slot {
    series: RwLock<Option<Arc<MemSeries>>>,
    fast: AtomicPtr<MemSeries>,
}

impl Slot {
    fn empty() -> Self {
        Slot {
            series: RwLock::new(None),
            fast: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

/// A series pointer an appender holds without a reference count. Valid while the
/// [`EpochGuard`] that was registered before the pointer was obtained is alive: a series is
/// freed only after every appender registered before its removal has unregistered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct SeriesPtr(NonNull<MemSeries>);

// SAFETY: `MemSeries` is `Send + Sync`; the pointer is only dereferenced while the owning
// appender's epoch registration keeps the series alive (see `SeriesPtr`).
unsafe impl Send for SeriesPtr {}
// SAFETY: as above; shared access only reads through `&MemSeries`.
unsafe impl Sync for SeriesPtr {}

impl SeriesPtr {
    pub(crate) fn of(series: &Arc<MemSeries>) -> Self {
        SeriesPtr(NonNull::from(&**series))
    }

    /// The series.
    ///
    /// # Safety
    /// The caller holds the [`EpochGuard`] under which this pointer was obtained (from
    /// [`SeriesTable::get_fast`] or from an `Arc` the table handed out), and does not let the
    /// reference outlive it.
    #[inline]
    pub(crate) unsafe fn get<'a>(self) -> &'a MemSeries {
        // SAFETY: the caller guarantees the series is not freed yet (see above).
        unsafe { self.0.as_ref() }
    }

    /// Hints the CPU to load the series' first cache lines (its hot fields).
    #[inline]
    pub(crate) fn prefetch(self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = self.0.as_ptr() as *const i8;
            // SAFETY: prefetching never faults, whatever the address; nothing is read.
            unsafe {
                _mm_prefetch(p, _MM_HINT_T0);
                _mm_prefetch(p.wrapping_add(64), _MM_HINT_T0);
                _mm_prefetch(p.wrapping_add(128), _MM_HINT_T0);
            }
        }
    }
}

/// Grace periods for removed series (see the module docs), and the open appenders' windows.
/// Appenders register at creation and unregister when they finish (one uncontended mutex
/// operation each, not one per sample); removed series wait in `retired` until no appender
/// registered at or before their removal is open. Head compaction waits here for the
/// appenders whose window reaches into the range it persists
/// ([`Epochs::wait_for_windows_below`]).
#[derive(Default)]
pub(crate) struct Epochs {
    state: Mutex<EpochState>,
    /// Mirror of `EpochState::current`, for the commit's "anything removed since I
    /// registered?" test.
    current: AtomicU64,
    /// Signalled when an appender that a head compaction waits for ends, and on
    /// [`Epochs::wake`].
    ended: Condvar,
}

#[derive(Default)]
struct EpochState {
    /// Generation new registrations get; a removal bumps it.
    current: u64,
    /// Open appenders per generation, ascending (registrations always use `current`, the
    /// largest generation so far).
    open: Vec<(u64, usize)>,
    /// Removed series with the generation in which they were removed, ascending.
    retired: Vec<(u64, Arc<MemSeries>)>,
    /// Open appenders by the oldest timestamp they accept (fixed at registration), with
    /// counts; few distinct values, as appenders open at about the same time share one.
    windows: Vec<(i64, usize)>,
    /// Threads waiting in [`Epochs::wait_for_windows_below`].
    waiting: usize,
}

impl EpochState {
    /// Takes the retired series no open appender can hold any more.
    fn reclaimable(&mut self) -> Vec<Arc<MemSeries>> {
        let oldest_open = self.open.first().map_or(u64::MAX, |o| o.0);
        let n = self.retired.partition_point(|r| r.0 < oldest_open);
        if n == 0 {
            return Vec::new();
        }
        self.retired.drain(..n).map(|r| r.1).collect()
    }
}

/// An appender's registration: series pointers it obtains after registering stay valid
/// until it is dropped.
pub(crate) struct EpochGuard {
    generation: u64,
    /// The oldest timestamp the appender accepts.
    pub(crate) min_valid_time: i64,
}

impl Epochs {
    /// Registers an appender whose window starts at `min_valid_time()`, computed under the
    /// registry's lock: a floor raised through [`Epochs::raise`] before is seen by it, and an
    /// appender registered before the raise is found by the waits after it.
    pub(crate) fn register(&self, min_valid_time: impl FnOnce() -> i64) -> EpochGuard {
        let mut st = self.state.lock();
        let generation = st.current;
        match st.open.last_mut() {
            Some(last) if last.0 == generation => last.1 += 1,
            _ => st.open.push((generation, 1)),
        }
        let min_valid_time = min_valid_time();
        match st.windows.iter_mut().find(|w| w.0 == min_valid_time) {
            Some(w) => w.1 += 1,
            None => st.windows.push((min_valid_time, 1)),
        }
        EpochGuard {
            generation,
            min_valid_time,
        }
    }

    /// Runs `raise` (which raises the floor new appenders' windows start from) under the
    /// registry's lock; see [`Epochs::register`].
    pub(crate) fn raise(&self, raise: impl FnOnce()) {
        let _st = self.state.lock();
        raise();
    }

    /// Waits until no open appender accepts timestamps below `t`, or until `timeout` passed,
    /// or `stop()` holds (checked whenever woken). Returns how many such appenders are still
    /// open. Call after raising the floor to `t` ([`Epochs::raise`]), so that no new one
    /// appears.
    pub(crate) fn wait_for_windows_below(
        &self,
        t: i64,
        timeout: std::time::Duration,
        stop: impl Fn() -> bool,
    ) -> usize {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.state.lock();
        loop {
            let open: usize = st.windows.iter().filter(|w| w.0 < t).map(|w| w.1).sum();
            if open == 0 || stop() {
                return open;
            }
            st.waiting += 1;
            let timed_out = self.ended.wait_until(&mut st, deadline).timed_out();
            st.waiting -= 1;
            if timed_out {
                return st.windows.iter().filter(|w| w.0 < t).map(|w| w.1).sum();
            }
        }
    }

    /// Wakes the waits of [`Epochs::wait_for_windows_below`] so they check `stop()` again.
    pub(crate) fn wake(&self) {
        let _st = self.state.lock();
        self.ended.notify_all();
    }

    /// Whether a series was removed since `guard` registered. Only then can a series the
    /// appender holds be a removed one. Exact while the caller holds the apply write lock,
    /// under which every removal happens.
    #[inline]
    pub(crate) fn removed_since(&self, guard: &EpochGuard) -> bool {
        self.current.load(Ordering::Acquire) != guard.generation
    }

    /// The removal generation now (it changes with every removal).
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    pub(crate) fn unregister(&self, guard: &EpochGuard) {
        let freed = {
            let mut st = self.state.lock();
            if let Some(i) = st.open.iter().position(|o| o.0 == guard.generation) {
                st.open[i].1 -= 1;
                if st.open[i].1 == 0 {
                    st.open.remove(i);
                }
            }
            if let Some(i) = st.windows.iter().position(|w| w.0 == guard.min_valid_time) {
                st.windows[i].1 -= 1;
                if st.windows[i].1 == 0 {
                    st.windows.swap_remove(i);
                }
            }
            if st.waiting > 0 {
                self.ended.notify_all();
            }
            st.reclaimable()
        };
        // Series are dropped (and their memory freed) outside the lock.
        drop(freed);
    }

    /// Keeps `series`, just removed from the table, alive until no appender that may have
    /// seen it is open. The caller removed it from both maps before.
    fn retire(&self, series: Arc<MemSeries>) {
        let freed = {
            let mut st = self.state.lock();
            let generation = st.current;
            st.retired.push((generation, series));
            st.current += 1;
            self.current.store(st.current, Ordering::Release);
            st.reclaimable()
        };
        drop(freed);
    }

    /// Removed series waiting for their grace period.
    #[cfg(test)]
    fn retired(&self) -> usize {
        self.state.lock().retired.len()
    }
}

/// Keys are already hashes; hashing them again would be wasted work.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type ByHash = HashMap<u64, Vec<Arc<MemSeries>>, BuildHasherDefault<IdentityHasher>>;

pub(super) struct SeriesTable {
    /// `segments[ref >> SEGMENT_BITS][ref & (SEGMENT_LEN - 1)]`: each entry null or a leaked
    /// `Box<[Slot]>` of `SEGMENT_LEN` slots, allocated on first use, set once, freed on drop.
    /// The 512 KiB array is allocated zeroed and never written but where a segment is
    /// installed, so an empty or small table keeps it out of RSS (an array of `OnceLock`s
    /// had to be initialised: 1.5 MiB resident from the start).
    segments: Box<[AtomicPtr<Slot>]>,
    stripes: Box<[RwLock<ByHash>]>,
    pub(crate) epochs: Epochs,
}

/// `SEGMENTS` null pointers from `alloc_zeroed`, which the allocator serves from untouched
/// (not resident) pages; `Box::new_zeroed_slice` needs Rust 1.92.
fn null_segments() -> Box<[AtomicPtr<Slot>]> {
    let layout = std::alloc::Layout::array::<AtomicPtr<Slot>>(SEGMENTS)
        .expect("2^16 pointers fit in a layout");
    // SAFETY: the layout is not empty; the all-zero bit pattern of `AtomicPtr` is the null
    // pointer; pointer and length describe exactly this allocation made with the global
    // allocator and this layout, as `Box<[T]>` requires.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout).cast::<AtomicPtr<Slot>>();
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, SEGMENTS))
    }
}

impl Drop for SeriesTable {
    fn drop(&mut self) {
        for seg in self.segments.iter_mut() {
            let p = *seg.get_mut();
            if !p.is_null() {
                // SAFETY: installed by `segment` from `Box::into_raw` of `SEGMENT_LEN` slots,
                // and nothing can reach it once the table is being dropped.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, SEGMENT_LEN)) });
            }
        }
    }
}

impl SeriesTable {
    pub(crate) fn new() -> Self {
        SeriesTable {
            segments: null_segments(),
            stripes: (0..STRIPES)
                .map(|_| RwLock::new(ByHash::default()))
                .collect(),
            epochs: Epochs::default(),
        }
    }

    fn slot(&self, series_ref: u64) -> Option<&Slot> {
        if series_ref > MAX_REF {
            return None;
        }
        let seg = self.segments[(series_ref >> SEGMENT_BITS) as usize].load(Ordering::Acquire);
        if seg.is_null() {
            return None;
        }
        // SAFETY: a non-null entry points to `SEGMENT_LEN` slots that live until the table is
        // dropped (installed once in `segment`, freed only in `Drop`).
        Some(unsafe { &*seg.add((series_ref as usize) & (SEGMENT_LEN - 1)) })
    }

    /// The slots of segment `i`, allocated and installed if it has none yet.
    fn segment(&self, i: usize) -> *mut Slot {
        let cur = self.segments[i].load(Ordering::Acquire);
        if !cur.is_null() {
            return cur;
        }
        let fresh: Box<[Slot]> = (0..SEGMENT_LEN).map(|_| Slot::empty()).collect();
        let fresh = Box::into_raw(fresh).cast::<Slot>();
        match self.segments[i].compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: `fresh` came from `Box::into_raw` above and was never shared.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, SEGMENT_LEN))
                });
                winner
            }
        }
    }

    /// The series with this reference.
    #[inline]
    pub(crate) fn get(&self, series_ref: u64) -> Option<Arc<MemSeries>> {
        self.slot(series_ref)?.series.read().clone()
    }

    /// The series with this reference, without a lock or reference count: two loads. The
    /// pointer is valid while the caller's [`EpochGuard`], registered before this call, lives.
    #[inline]
    pub(crate) fn get_fast(&self, series_ref: u64, _guard: &EpochGuard) -> Option<SeriesPtr> {
        let p = self.slot(series_ref)?.fast.load(Ordering::Acquire);
        NonNull::new(p).map(SeriesPtr)
    }

    /// The series with these labels.
    pub(crate) fn get_by_labels(&self, hash: u64, labels: &Labels) -> Option<Arc<MemSeries>> {
        let stripe = self.stripes[(hash as usize) % STRIPES].read();
        stripe
            .get(&hash)?
            .iter()
            .find(|s| &s.labels == labels)
            .cloned()
    }

    /// Returns the series with `labels`, creating it with a reference from `new_ref` (and its
    /// completed chunks going to `files`) if absent. The bool is true when the series was
    /// created.
    pub(crate) fn get_or_create(
        &self,
        hash: u64,
        labels: &Labels,
        new_ref: impl FnOnce() -> u64,
        files: Option<&Arc<ChunkFiles>>,
    ) -> Result<(Arc<MemSeries>, bool)> {
        if let Some(s) = self.get_by_labels(hash, labels) {
            return Ok((s, false));
        }
        let mut stripe = self.stripes[(hash as usize) % STRIPES].write();
        let entry = stripe.entry(hash).or_default();
        if let Some(s) = entry.iter().find(|s| &s.labels == labels) {
            return Ok((s.clone(), false));
        }
        let series_ref = new_ref();
        let series = Arc::new(MemSeries::new(series_ref, labels.clone(), files.cloned()));
        self.set(series_ref, series.clone())?;
        entry.push(series.clone());
        Ok((series, true))
    }

    fn set(&self, series_ref: u64, series: Arc<MemSeries>) -> Result<()> {
        if series_ref > MAX_REF {
            return Err(Error::limit(
                crate::error::Limit::SeriesRefs,
                format!("series reference {series_ref} exceeds the maximum {MAX_REF}"),
            ));
        }
        let seg = self.segment((series_ref >> SEGMENT_BITS) as usize);
        // SAFETY: `segment` returns `SEGMENT_LEN` slots that live as long as the table.
        let slot = unsafe { &*seg.add((series_ref as usize) & (SEGMENT_LEN - 1)) };
        let mut owner = slot.series.write();
        // The slot keeps the series alive; the fast pointer only mirrors it.
        slot.fast
            .store(Arc::as_ptr(&series).cast_mut(), Ordering::Release);
        *owner = Some(series);
        Ok(())
    }
}

impl SeriesTable {
    /// Removes `series` from both maps unless a query holds it. The caller holds the head's
    /// apply lock for writing, so no commit runs meanwhile. Appenders hold series without a
    /// reference count: one that buffered a sample for `series` finds it marked removed at
    /// commit and recreates it by labels, and the memory stays valid until it finishes
    /// ([`Epochs`]). Returns whether it was removed.
    pub(crate) fn remove_if_unused(&self, series: &Arc<MemSeries>) -> bool {
        let hash = series.labels.stable_hash();
        let mut stripe = self.stripes[(hash as usize) % STRIPES].write();
        let Some(slot) = self.slot(series.series_ref) else {
            return false;
        };
        let mut owner = slot.series.write();
        // The table slot, the stripe entry and the caller's handle: more is a query.
        if Arc::strong_count(series) > 3 {
            return false;
        }
        slot.fast.store(std::ptr::null_mut(), Ordering::Release);
        let Some(owned) = owner.take() else {
            return false;
        };
        series.mark_removed();
        if let Some(v) = stripe.get_mut(&hash) {
            v.retain(|s| s.series_ref != series.series_ref);
            if v.is_empty() {
                stripe.remove(&hash);
            }
        }
        drop(owner);
        drop(stripe);
        self.epochs.retire(owned);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_ref_and_labels() {
        let t = SeriesTable::new();
        let a = Labels::new([("a", "1")]).unwrap();
        let (s, created) = t.get_or_create(a.stable_hash(), &a, || 7, None).unwrap();
        assert!(created);
        assert_eq!(s.series_ref, 7);
        let (again, created) = t.get_or_create(a.stable_hash(), &a, || 8, None).unwrap();
        assert!(!created);
        assert_eq!(again.series_ref, 7);
        assert_eq!(t.get(7).unwrap().labels, a);
        assert!(t.get(8).is_none());
        assert!(t.get(MAX_REF + 1).is_none());
    }

    #[test]
    fn fast_lookup_sees_what_the_slot_holds() {
        let t = SeriesTable::new();
        let a = Labels::new([("a", "1")]).unwrap();
        let g = t.epochs.register(|| 0);
        let (s, _) = t.get_or_create(a.stable_hash(), &a, || 3, None).unwrap();
        assert!(t.get_fast(3, &g) == Some(SeriesPtr::of(&s)));
        assert!(t.get_fast(4, &g).is_none());
        assert!(t.get_fast(MAX_REF + 1, &g).is_none());
        assert!(
            t.get_fast(1 << SEGMENT_BITS, &g).is_none(),
            "unallocated segment"
        );
        t.epochs.unregister(&g);
    }

    #[test]
    fn removed_series_live_until_older_appenders_finish() {
        let t = SeriesTable::new();
        let a = Labels::new([("a", "1")]).unwrap();
        let b = Labels::new([("b", "1")]).unwrap();
        let old = t.epochs.register(|| 0);
        let (s, _) = t.get_or_create(a.stable_hash(), &a, || 1, None).unwrap();
        let p = t.get_fast(1, &old).unwrap();
        let weak = Arc::downgrade(&s);
        assert!(t.remove_if_unused(&s));
        drop(s);
        assert!(t.get_fast(1, &old).is_none(), "unpublished at once");
        assert!(t.epochs.removed_since(&old));
        // Registered after the removal: cannot have seen it, does not delay it.
        let young = t.epochs.register(|| 0);
        assert!(!t.epochs.removed_since(&young));
        t.epochs.unregister(&young);
        assert_eq!(t.epochs.retired(), 1);
        // SAFETY: `old` is still registered.
        let held = unsafe { p.get() };
        assert!(held.is_removed());
        assert_eq!(held.labels, a);
        t.epochs.unregister(&old);
        assert_eq!(t.epochs.retired(), 0);
        assert!(weak.upgrade().is_none(), "freed after the grace period");
        // Without open appenders a removal frees at once.
        let (s, _) = t.get_or_create(b.stable_hash(), &b, || 2, None).unwrap();
        assert!(t.remove_if_unused(&s));
        assert_eq!(t.epochs.retired(), 0);
    }

    #[test]
    fn series_in_use_are_not_removed() {
        let t = SeriesTable::new();
        let a = Labels::new([("a", "1")]).unwrap();
        let (s, _) = t.get_or_create(a.stable_hash(), &a, || 1, None).unwrap();
        let held = t.get(1).unwrap();
        assert!(!t.remove_if_unused(&s), "a query holds it");
        drop(held);
        assert!(t.remove_if_unused(&s));
        assert!(t.get(1).is_none());
        assert!(t.get_by_labels(a.stable_hash(), &a).is_none());
    }

    #[test]
    fn colliding_hashes_keep_both_series() {
        let t = SeriesTable::new();
        let a = Labels::new([("a", "1")]).unwrap();
        let b = Labels::new([("b", "1")]).unwrap();
        t.get_or_create(42, &a, || 1, None).unwrap();
        t.get_or_create(42, &b, || 2, None).unwrap();
        assert_eq!(t.get_by_labels(42, &a).unwrap().series_ref, 1);
        assert_eq!(t.get_by_labels(42, &b).unwrap().series_ref, 2);
    }

    #[test]
    fn refs_past_the_limit_are_refused() {
        let t = SeriesTable::new();
        let a = Labels::new([("a", "1")]).unwrap();
        let err = t
            .get_or_create(a.stable_hash(), &a, || MAX_REF + 1, None)
            .err()
            .unwrap();
        assert!(matches!(err, Error::LimitExceeded { .. }));
    }
}
