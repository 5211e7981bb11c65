//! The head: the in-memory, writable part of the database.
//!
//! Series live in a [`SeriesTable`] (by ref and by labels) and are indexed by a
//! [`MemPostings`]. The head carries out its own locking protocol ([`locks`]); nothing outside
//! `head/` sees a lock or a series' chunks:
//!
//! * [`Head::commit`] logs an appender's samples to the WAL and applies them under the write
//!   side of `apply`; validation at append time reads per-series atomics and takes no lock.
//! * Readers get a [`RangeHead`], the head's side of the read interface ([`crate::reader`]):
//!   [`Head::select`] hands out one that holds `apply`'s read side, so a query sees every
//!   commit wholly or not at all; [`Head::range`] one that takes it series by series.
//! * [`Head::delete`] (tombstones) and [`Head::truncate`] take both locks themselves.
//!
//! On disk, completed chunks are written to the head chunk files ([`chunk_files`]) and read
//! back through mappings; series keep only descriptors of them.

mod append;
pub(crate) mod chunk_files;
pub(crate) mod chunk_format;
mod commit;
mod delete;
mod histogram;
mod index;
mod limits;
mod locks;
pub(crate) mod mem_snapshot;
mod ooo;
mod ooo_append;
mod ooo_read;
mod ooo_recover;
mod read;
mod replay;
mod series;
mod table;
mod truncate;
mod wbl;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

pub(crate) use append::{AppendBuffers, Appender};
pub(crate) use chunk_files::ChunkFiles;
pub(crate) use commit::CommitLog;
pub(crate) use histogram::HistSample;
pub(crate) use replay::replay;
pub use replay::ReplayStats;
pub(crate) use wbl::{
    has_data as wbl_has_data, write_compacted_through as write_ooo_compacted_through,
    DIR_NAME as WBL_DIR,
};

use crate::error::Result;
use crate::model::Labels;
use crate::options::Options;
use crate::tombstones::Tombstones;
use index::MemPostings;
use limits::Limits;
use locks::Locks;
use series::MemSeries;
use table::{EpochGuard, SeriesPtr, SeriesTable};

/// Counters describing the head, for monitoring and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeadStats {
    /// Series currently in the head.
    pub num_series: u64,
    /// Samples committed since the database was opened.
    pub samples_appended: u64,
    /// Samples accepted by `append` but dropped at commit. `append` already rejects samples
    /// out of order or duplicate against the series' committed samples and against the
    /// samples the same appender holds, so one cause remains: a commit of *another* appender
    /// on the same series made the sample out of order or duplicate between its `append` and
    /// its `commit` (concurrent writers of one series; Prometheus drops these silently too).
    /// Head compaction never drops a sample of a commit that returns `Ok` (it waits for the
    /// appenders that reach into the range it persists; a commit that comes too late fails
    /// whole with [`Error::CommitOutOfBounds`](crate::Error::CommitOutOfBounds)).
    pub samples_dropped_at_commit: u64,
    /// Oldest sample time in the head, if any.
    pub min_time: Option<i64>,
    /// Newest sample time in the head, if any.
    pub max_time: Option<i64>,
}

pub(crate) struct Head {
    table: SeriesTable,
    postings: RwLock<MemPostings>,
    /// Deleted intervals by series ref. Changed only under the apply write lock (deletion,
    /// truncation, replay), so readers holding its read side see a deletion wholly or not.
    tombstones: RwLock<Tombstones>,
    /// `apply` (commits against readers) and `wal_order` (WAL order = apply order); see
    /// [`locks`].
    locks: Locks,
    /// Set by [`Head::seal`]: commits fail from then on.
    sealed: AtomicBool,
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// Samples older than this are out of bounds regardless of the head's max time (the max
    /// time of persisted blocks, or of the range a head compaction is about to persist).
    /// Appenders take it when they open; raised under the epochs' lock.
    min_valid_time: AtomicI64,
    /// A commit with a sample older than this fails whole: its range is in a block, or being
    /// read for one. Raised under both locks, after the head compaction waited for the
    /// appenders whose window reaches below it (see `Head::close_window_below`).
    persisted_floor: AtomicI64,
    next_ref: AtomicU64,
    /// How far ahead of the wall clock a sample may be (ms), `Options::max_future_ms`.
    max_future_ms: Option<i64>,
    /// Bumped after each series creation is visible in the postings: a query that selected
    /// its candidates before a commit must select again if a series appeared meanwhile.
    series_generation: AtomicU64,
    num_series: AtomicU64,
    samples_appended: AtomicU64,
    samples_dropped: AtomicU64,
    cfg: crate::chunkenc::CutPolicy,
    limits: Limits,
    /// Where completed chunks go; `None` in memory (they stay on the heap).
    chunk_files: Option<Arc<ChunkFiles>>,
    /// Set once a native histogram is stored (appended or replayed): the memory snapshot,
    /// which carries float chunks only, is then not written.
    holds_histograms: AtomicBool,
    /// `Options::out_of_order_time_window` (0: off) and `out_of_order_cap_max`.
    ooo_window: i64,
    ooo_cap: usize,
    /// Time range of the out-of-order data (`i64::MAX`, `i64::MIN` while there is none).
    ooo_min_t: AtomicI64,
    ooo_max_t: AtomicI64,
    /// The write-behind log of out-of-order samples (`head/wbl.rs`); `None` in memory and
    /// read-only.
    wbl: Option<Arc<crate::wal::Wal>>,
    /// WAL samples the replay dropped that may be late samples the WBL lacks
    /// (`head/ooo_recover.rs`), until the open logs them again.
    wal_late: parking_lot::Mutex<Vec<crate::wal::RefSample>>,
}

impl Head {
    pub(crate) fn new(opts: &Options) -> Self {
        Head {
            table: SeriesTable::new(),
            postings: RwLock::new(MemPostings::default()),
            tombstones: RwLock::new(Tombstones::new()),
            locks: Locks::default(),
            sealed: AtomicBool::new(false),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(i64::MIN),
            persisted_floor: AtomicI64::new(i64::MIN),
            next_ref: AtomicU64::new(1),
            max_future_ms: opts.max_future_ms,
            series_generation: AtomicU64::new(0),
            num_series: AtomicU64::new(0),
            samples_appended: AtomicU64::new(0),
            samples_dropped: AtomicU64::new(0),
            cfg: crate::chunkenc::CutPolicy {
                chunk_range: opts.block_range_ms,
                samples_per_chunk: opts.samples_per_chunk.min(u16::MAX as usize / 2) as u16,
            },
            limits: Limits::from_options(opts),
            chunk_files: None,
            holds_histograms: AtomicBool::new(false),
            ooo_window: opts.out_of_order_time_window,
            ooo_cap: opts.out_of_order_cap_max,
            ooo_min_t: AtomicI64::new(i64::MAX),
            ooo_max_t: AtomicI64::new(i64::MIN),
            wbl: None,
            wal_late: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Whether the head has stored a native histogram since it was opened.
    pub(crate) fn holds_histograms(&self) -> bool {
        self.holds_histograms.load(Ordering::Acquire)
    }

    /// A head whose completed chunks are written to (and read from) `files`.
    pub(crate) fn with_chunk_files(opts: &Options, files: Arc<ChunkFiles>) -> Self {
        Head {
            chunk_files: Some(files),
            ..Head::new(opts)
        }
    }

    /// The head chunk files, if the head has any.
    pub(crate) fn chunk_files(&self) -> Option<&Arc<ChunkFiles>> {
        self.chunk_files.as_ref()
    }

    /// The labels of the series with this ref, if it is in the head (a shared copy).
    pub(crate) fn series_labels(&self, series_ref: u64) -> Option<Labels> {
        self.table.get(series_ref).map(|s| s.labels.clone())
    }

    /// Whether a series with this ref is in the head (the WAL checkpoint keeps the records of
    /// these series only).
    pub(crate) fn has_series(&self, series_ref: u64) -> bool {
        self.table.get(series_ref).is_some()
    }

    /// The series with this ref, for an appender registered with `guard` (no lock, no
    /// reference count; valid while `guard` lives).
    #[inline]
    fn series_fast(&self, series_ref: u64, guard: &EpochGuard) -> Option<SeriesPtr> {
        self.table.get_fast(series_ref, guard)
    }

    /// Registers an appender: series pointers it obtains from now on stay valid until it
    /// unregisters.
    fn register_appender(&self) -> EpochGuard {
        self.table
            .epochs
            .register(|| self.appendable_min_valid_time())
    }

    /// Ends the registration of an appender.
    fn unregister_appender(&self, guard: &EpochGuard) {
        self.table.epochs.unregister(guard)
    }

    /// Whether a series was removed from the table since `guard` registered.
    #[inline]
    fn series_removed_since(&self, guard: &EpochGuard) -> bool {
        self.table.epochs.removed_since(guard)
    }

    /// The series with these labels, created (and indexed) if absent. A new series must
    /// satisfy the [`Limits`] of the options; an existing one is returned whatever they are.
    fn get_or_create(&self, labels: &Labels) -> Result<(Arc<MemSeries>, bool)> {
        let hash = labels.stable_hash();
        if let Some(s) = self.table.get_by_labels(hash, labels) {
            return Ok((s, false));
        }
        // Slow path: the series is (probably) new.
        self.limits.check_labels(labels)?;
        self.limits.reserve_series(&self.num_series)?;
        let res = self.table.get_or_create(
            hash,
            labels,
            || self.next_ref.fetch_add(1, Ordering::Relaxed),
            self.chunk_files.as_ref(),
        );
        match res {
            Ok((series, true)) => {
                self.postings.write().add(series.series_ref, labels);
                self.series_generation.fetch_add(1, Ordering::Release);
                Ok((series, true))
            }
            other => {
                // Created concurrently by another appender, or failed: hand the slot back.
                self.num_series.fetch_sub(1, Ordering::Relaxed);
                other
            }
        }
    }

    /// Creates the series `labels` with the given ref (WAL replay). If the labels exist
    /// already, the existing series is returned and its ref differs. Fails, with the reason,
    /// if the ref already names other labels (the log contradicts itself) or exceeds the
    /// table's capacity.
    fn create_with_ref(
        &self,
        series_ref: u64,
        labels: &Labels,
    ) -> std::result::Result<Arc<MemSeries>, String> {
        if let Some(existing) = self.table.get(series_ref) {
            if &existing.labels != labels {
                return Err(format!(
                    "series ref {series_ref} names both {} and {labels}",
                    existing.labels
                ));
            }
        }
        let hash = labels.stable_hash();
        let (series, created) = self
            .table
            .get_or_create(hash, labels, || series_ref, self.chunk_files.as_ref())
            .map_err(|e| e.to_string())?;
        series.mark_logged();
        if created {
            self.postings.write().add(series.series_ref, labels);
            self.num_series.fetch_add(1, Ordering::Relaxed);
        }
        Ok(series)
    }

    /// Changes whenever a series has been created (and indexed) since the last read.
    fn series_generation(&self) -> u64 {
        self.series_generation.load(Ordering::Acquire)
    }

    /// Makes sure refs handed out from now on are at least `r`.
    fn next_ref_at_least(&self, r: u64) {
        self.next_ref.fetch_max(r, Ordering::AcqRel);
    }

    /// The floor below which no sample is accepted (the max time of persisted blocks).
    pub(crate) fn min_valid_time(&self) -> i64 {
        self.min_valid_time.load(Ordering::Acquire)
    }

    /// The floor below which a commit fails (see `persisted_floor`).
    pub(crate) fn persisted_floor(&self) -> i64 {
        self.persisted_floor.load(Ordering::Acquire)
    }

    /// Oldest timestamp an appender created now accepts (Prometheus
    /// `appendableMinValidTime`): half a chunk range behind the newest sample, and never
    /// inside persisted blocks.
    pub(crate) fn appendable_min_valid_time(&self) -> i64 {
        let floor = self.min_valid_time.load(Ordering::Acquire);
        match self.max_time() {
            Some(max) => floor.max(max.saturating_sub(self.cfg.chunk_range / 2)),
            None => floor,
        }
    }

    /// Oldest sample time, if the head has samples. Emptiness is `min > max` (the empty head
    /// holds `(i64::MAX, i64::MIN)`), not a sentinel value, so a head whose only samples are
    /// at `i64::MAX` (or `i64::MIN`) is not taken for empty.
    pub(crate) fn min_time(&self) -> Option<i64> {
        let min = self.min_time.load(Ordering::Acquire);
        (min <= self.max_time.load(Ordering::Acquire)).then_some(min)
    }

    /// Newest sample time, if the head has samples (see [`min_time`](Self::min_time)).
    pub(crate) fn max_time(&self) -> Option<i64> {
        let max = self.max_time.load(Ordering::Acquire);
        (self.min_time.load(Ordering::Acquire) <= max).then_some(max)
    }

    /// Widens the head's time range to `[mint, maxt]` (replay of chunks restored from disk).
    fn widen_time_range(&self, mint: i64, maxt: i64) {
        if mint <= maxt {
            self.min_time.fetch_min(mint, Ordering::AcqRel);
            self.max_time.fetch_max(maxt, Ordering::AcqRel);
        }
    }

    /// Widens the head's time range after a commit.
    fn note_committed(&self, mint: i64, maxt: i64, appended: u64, dropped: u64) {
        if appended > 0 {
            self.min_time.fetch_min(mint, Ordering::AcqRel);
            self.max_time.fetch_max(maxt, Ordering::AcqRel);
        }
        self.samples_appended.fetch_add(appended, Ordering::Relaxed);
        self.samples_dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> HeadStats {
        HeadStats {
            num_series: self.num_series.load(Ordering::Relaxed),
            samples_appended: self.samples_appended.load(Ordering::Relaxed),
            samples_dropped_at_commit: self.samples_dropped.load(Ordering::Relaxed),
            min_time: self.min_time(),
            max_time: self.max_time(),
        }
    }

    /// Chunks held by the head (closed ones, in memory or in head chunk files, and open ones),
    /// counted series by series.
    pub(crate) fn num_chunks(&self) -> u64 {
        let all = self.postings.read().all().to_vec();
        let mut n = 0u64;
        for r in all {
            if let Some(s) = self.table.get(r) {
                let apply = self.locks.apply_read();
                n += s.data(&apply).num_chunks() as u64;
            }
        }
        n
    }

    /// Heap bytes of chunk payloads and label sets (an estimate of the head's data size,
    /// excluding allocator and index overhead).
    pub(crate) fn data_bytes(&self) -> (usize, usize) {
        let all = self.postings.read().all().to_vec();
        let (mut chunks, mut labels) = (0, 0);
        for r in all {
            if let Some(s) = self.table.get(r) {
                // One series at a time keeps commits waiting only briefly.
                let apply = self.locks.apply_read();
                chunks += s.data(&apply).chunk_bytes();
                labels += s.labels.heap_bytes();
            }
        }
        (chunks, labels)
    }
}
