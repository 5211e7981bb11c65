//! The head: the in-memory, writable part of the database.
//!
//! Series live in a [`SeriesTable`] (by ref and by labels) and are indexed by a
//! [`MemPostings`]. Commits apply under the write side of `apply`; query snapshots take its
//! read side, so a snapshot sees every commit wholly or not at all. Validation at append time
//! reads per-series atomics and takes no lock.
//!
//! On disk, completed chunks are written to the head chunk files ([`chunk_files`]) and read
//! back through mappings; series keep only descriptors of them.

mod append;
pub(crate) mod chunk_files;
pub mod chunk_format;
mod index;
mod limits;
pub(crate) mod mem_snapshot;
mod persist;
mod replay;
mod series;
mod table;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

pub(crate) use append::{AppendBuffers, Appender};
pub(crate) use chunk_files::{ChunkBytes, ChunkFiles};
pub(crate) use replay::replay;
pub use replay::ReplayStats;
pub(crate) use series::MemSeries;
pub(crate) use table::{EpochGuard, SeriesPtr};

use crate::error::Result;
use crate::model::{Labels, Matcher};
use crate::options::Options;
use index::MemPostings;
use limits::Limits;
use table::SeriesTable;

/// Counters describing the head, for monitoring and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeadStats {
    /// Series currently in the head.
    pub num_series: u64,
    /// Samples committed since the database was opened.
    pub samples_appended: u64,
    /// Samples accepted by `append` but dropped at commit because another commit made them
    /// out of order or duplicate in the meantime (Prometheus drops these silently too).
    pub samples_dropped_at_commit: u64,
    /// Oldest sample time in the head, if any.
    pub min_time: Option<i64>,
    /// Newest sample time in the head, if any.
    pub max_time: Option<i64>,
}

pub(crate) struct Head {
    table: SeriesTable,
    postings: RwLock<MemPostings>,
    /// Commits hold it for writing while they apply samples; query snapshots hold it for
    /// reading. Never held across I/O of a whole query.
    pub(crate) apply: RwLock<()>,
    /// Orders WAL writes like applies: whoever logs to the WAL and then changes the head
    /// (commit, deletion) holds it from before logging until it holds `apply` for writing
    /// (lock coupling), so one commit's WAL write overlaps the previous one's apply while WAL
    /// order stays apply order. Series are removed (truncation) only with both held. Lock
    /// order: `wal_order`, then `apply`.
    pub(crate) wal_order: parking_lot::Mutex<()>,
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// Samples older than this are out of bounds regardless of the head's max time (the max
    /// time of persisted blocks).
    min_valid_time: AtomicI64,
    next_ref: AtomicU64,
    /// Bumped after each series creation is visible in the postings: a query that selected
    /// its candidates before a commit must select again if a series appeared meanwhile.
    series_generation: AtomicU64,
    num_series: AtomicU64,
    samples_appended: AtomicU64,
    samples_dropped: AtomicU64,
    pub(crate) cfg: crate::chunkenc::CutPolicy,
    limits: Limits,
    /// Where completed chunks go; `None` in memory (they stay on the heap).
    chunk_files: Option<Arc<ChunkFiles>>,
}

impl Head {
    pub(crate) fn new(opts: &Options) -> Self {
        Head {
            table: SeriesTable::new(),
            postings: RwLock::new(MemPostings::default()),
            apply: RwLock::new(()),
            wal_order: parking_lot::Mutex::new(()),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(i64::MIN),
            next_ref: AtomicU64::new(1),
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
        }
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

    /// The series with this ref.
    #[inline]
    pub(crate) fn series(&self, series_ref: u64) -> Option<Arc<MemSeries>> {
        self.table.get(series_ref)
    }

    /// The series with this ref, for an appender registered with `guard` (no lock, no
    /// reference count; valid while `guard` lives).
    #[inline]
    pub(crate) fn series_fast(&self, series_ref: u64, guard: &EpochGuard) -> Option<SeriesPtr> {
        self.table.get_fast(series_ref, guard)
    }

    /// Registers an appender: series pointers it obtains from now on stay valid until it
    /// unregisters.
    pub(crate) fn register_appender(&self) -> EpochGuard {
        self.table.epochs.register()
    }

    /// Ends the registration of an appender.
    pub(crate) fn unregister_appender(&self, guard: &EpochGuard) {
        self.table.epochs.unregister(guard)
    }

    /// Whether a series was removed from the table since `guard` registered.
    #[inline]
    pub(crate) fn series_removed_since(&self, guard: &EpochGuard) -> bool {
        self.table.epochs.removed_since(guard)
    }

    /// The series with these labels, created (and indexed) if absent. A new series must
    /// satisfy the [`Limits`] of the options; an existing one is returned whatever they are.
    pub(crate) fn get_or_create(&self, labels: &Labels) -> Result<(Arc<MemSeries>, bool)> {
        let hash = labels.stable_hash();
        if let Some(s) = self.table.get_by_labels(hash, labels) {
            return Ok((s, false));
        }
        // Slow path: the series is (probably) new.
        self.limits.check_labels(labels)?;
        // No commit may apply samples to a new series before it knows the chunk files: other
        // appenders can find it as soon as it is in the table, but only commits (which take
        // `apply` for writing) cut chunks.
        let _no_commit = self.chunk_files.as_ref().map(|_| self.apply.read());
        self.limits.reserve_series(&self.num_series)?;
        let res = self.table.get_or_create(hash, labels, || {
            self.next_ref.fetch_add(1, Ordering::Relaxed)
        });
        match res {
            Ok((series, true)) => {
                series.data.lock().files = self.chunk_files.clone();
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
    pub(crate) fn create_with_ref(
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
            .get_or_create(hash, labels, || series_ref)
            .map_err(|e| e.to_string())?;
        series.mark_logged();
        if created {
            series.data.lock().files = self.chunk_files.clone();
            self.postings.write().add(series.series_ref, labels);
            self.num_series.fetch_add(1, Ordering::Relaxed);
        }
        Ok(series)
    }

    /// Changes whenever a series has been created (and indexed) since the last read.
    pub(crate) fn series_generation(&self) -> u64 {
        self.series_generation.load(Ordering::Acquire)
    }

    /// Makes sure refs handed out from now on are at least `r`.
    pub(crate) fn next_ref_at_least(&self, r: u64) {
        self.next_ref.fetch_max(r, Ordering::AcqRel);
    }

    /// The floor below which no sample is accepted (the max time of persisted blocks).
    pub(crate) fn min_valid_time(&self) -> i64 {
        self.min_valid_time.load(Ordering::Acquire)
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

    pub(crate) fn min_time(&self) -> Option<i64> {
        let t = self.min_time.load(Ordering::Acquire);
        (t != i64::MAX).then_some(t)
    }

    pub(crate) fn max_time(&self) -> Option<i64> {
        let t = self.max_time.load(Ordering::Acquire);
        (t != i64::MIN).then_some(t)
    }

    /// Widens the head's time range to `[mint, maxt]` (replay of chunks restored from disk).
    pub(crate) fn widen_time_range(&self, mint: i64, maxt: i64) {
        if mint <= maxt {
            self.min_time.fetch_min(mint, Ordering::AcqRel);
            self.max_time.fetch_max(maxt, Ordering::AcqRel);
        }
    }

    /// Widens the head's time range after a commit.
    pub(crate) fn note_committed(&self, mint: i64, maxt: i64, appended: u64, dropped: u64) {
        if appended > 0 {
            self.min_time.fetch_min(mint, Ordering::AcqRel);
            self.max_time.fetch_max(maxt, Ordering::AcqRel);
        }
        self.samples_appended.fetch_add(appended, Ordering::Relaxed);
        self.samples_dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// The series selected by `matchers`, in ref order.
    pub(crate) fn select_series(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let refs = self.postings.read().postings_for_matchers(matchers);
        refs.into_iter().filter_map(|r| self.table.get(r)).collect()
    }

    pub(crate) fn label_names(&self) -> Vec<String> {
        self.postings.read().label_names()
    }

    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        self.postings.read().label_values(name)
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

    /// Heap bytes of chunk payloads and label sets (an estimate of the head's data size,
    /// excluding allocator and index overhead).
    pub(crate) fn data_bytes(&self) -> (usize, usize) {
        let all = self.postings.read().postings_for_matchers(&[]);
        let (mut chunks, mut labels) = (0, 0);
        for r in all {
            if let Some(s) = self.table.get(r) {
                // Commits write `data` without its mutex (see `MemSeries`).
                let _apply = self.apply.read();
                chunks += s.data.lock().chunk_bytes();
                labels += s.labels.heap_bytes();
            }
        }
        (chunks, labels)
    }
}
