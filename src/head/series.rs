//! One in-memory series: its labels, its closed chunks and the open chunk being appended to.
//!
//! Closed chunks of an on-disk database live in the head chunk files and the series keeps only
//! a descriptor of each (reference and time range, 32 bytes); in memory, and when writing a chunk
//! file failed, closed chunks keep their bytes on the heap.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::chunk_files::ChunkFiles;
use super::locks::{ApplyWrite, NoCommitApplies};
use crate::chunkenc::{CutPolicy, Encoding, XorAppender};
use crate::error::Result;
use crate::model::Labels;
use crate::reader::ChunkBytes;

/// A series of the head.
///
/// Its chunks (`data`) are reached only through [`data`](Self::data) and
/// [`data_mut`](Self::data_mut), which take a guard of the head's apply lock: a commit holds it
/// for writing and writes without the mutex (no atomic operation per sample); every other
/// accessor holds either side and locks the mutex too, which orders the accessors that share
/// the read side.
pub(super) struct MemSeries {
    pub(super) series_ref: u64,
    pub(super) labels: Labels,
    data: Mutex<SeriesData>,
    /// Timestamp of the newest committed sample, `i64::MIN` when there is none. Read without a
    /// lock by appenders to validate samples.
    last_t: AtomicI64,
    /// Bits of the newest committed value.
    last_v: AtomicU64,
    /// Whether the series has a committed sample: tells a newest sample at `i64::MIN` from
    /// none (read only then).
    has_last: AtomicBool,
    /// Whether the newest committed sample is a native histogram (`last_v` then means
    /// nothing; the histogram is in the open histogram chunk, see `head/histogram.rs`).
    pub(super) last_is_hist: AtomicBool,
    /// Whether a Series record for this series is in the WAL. The first commit with a sample
    /// of the series logs it, whichever appender created the series, so no WAL sample ever
    /// precedes its series record.
    logged: AtomicBool,
    /// Set when the series table removed the series (under the apply write lock): an
    /// appender holding it recreates the series by labels at commit.
    removed: AtomicBool,
}

impl MemSeries {
    /// A series whose completed chunks go to `files` (`None`: they stay on the heap).
    pub(super) fn new(series_ref: u64, labels: Labels, files: Option<Arc<ChunkFiles>>) -> Self {
        MemSeries {
            series_ref,
            labels,
            data: Mutex::new(SeriesData {
                files,
                ..SeriesData::default()
            }),
            last_t: AtomicI64::new(i64::MIN),
            last_v: AtomicU64::new(0),
            has_last: AtomicBool::new(false),
            last_is_hist: AtomicBool::new(false),
            logged: AtomicBool::new(false),
            removed: AtomicBool::new(false),
        }
    }

    /// Marks the series as removed from the series table.
    pub(super) fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
    }

    /// Whether the series table removed this series. Stable while the apply lock is held.
    #[inline]
    pub(super) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// The series' chunks, for a reader. `_held` (a guard of the head this series belongs to)
    /// proves that no commit writes them meanwhile.
    #[inline]
    pub(super) fn data<'g>(
        &'g self,
        _held: &'g impl NoCommitApplies,
    ) -> MutexGuard<'g, SeriesData> {
        self.data.lock()
    }

    /// The series' chunks, for a commit, without the mutex. The apply write guard (of the head
    /// this series belongs to) is borrowed mutably for as long as the result lives, so no
    /// other reference into any series' chunks taken through the same guard coexists with it.
    #[inline]
    pub(super) fn data_mut<'g>(&'g self, _apply: &'g mut ApplyWrite<'_>) -> &'g mut SeriesData {
        debug_assert!(
            !self.data.is_locked(),
            "a data lock outlived the apply lock"
        );
        // SAFETY: the write guard excludes every other thread from `data` (each access takes
        // a guard of the apply lock), and it is borrowed mutably while the result lives, so
        // this thread holds no other reference into `data` either: `data` borrows a guard for
        // the life of its mutex guard, and this method borrows it mutably.
        unsafe { &mut *self.data.data_ptr() }
    }

    /// Marks the series as logged; returns whether it already was.
    #[inline]
    pub(super) fn mark_logged(&self) -> bool {
        self.logged.swap(true, Ordering::AcqRel)
    }

    #[inline]
    pub(super) fn is_logged(&self) -> bool {
        self.logged.load(Ordering::Acquire)
    }

    /// The newest committed sample as (t, value bits), if any.
    #[inline]
    pub(super) fn last_committed(&self) -> Option<(i64, u64)> {
        let t = self.last_t.load(Ordering::Acquire);
        if t == i64::MIN && !self.has_last.load(Ordering::Acquire) {
            return None;
        }
        Some((t, self.last_v.load(Ordering::Relaxed)))
    }

    /// Sets the newest committed sample (replay of m-mapped chunks and snapshots).
    pub(super) fn set_last(&self, t: i64, v_bits: u64) {
        self.has_last.store(true, Ordering::Release);
        self.last_v.store(v_bits, Ordering::Relaxed);
        self.last_t.store(t, Ordering::Release);
    }

    /// Appends a sample to `data` (which the caller locked from `self.data`) and publishes it
    /// as the newest committed sample. Returns false, appending nothing, if `t` is not newer
    /// than the newest sample.
    #[inline]
    pub(super) fn append_locked(
        &self,
        data: &mut SeriesData,
        t: i64,
        v: f64,
        cfg: CutPolicy,
    ) -> bool {
        if !data.append(self.series_ref, t, v, cfg) {
            return false;
        }
        if t == i64::MIN {
            self.has_last.store(true, Ordering::Release);
        }
        if self.last_is_hist.load(Ordering::Relaxed) {
            self.last_is_hist.store(false, Ordering::Relaxed);
        }
        self.last_v.store(v.to_bits(), Ordering::Relaxed);
        self.last_t.store(t, Ordering::Release);
        true
    }
}

/// Where a closed chunk's bytes are. Each carries the chunk's encoding, which shares the tag's
/// word: the descriptor stays 32 bytes.
#[derive(Clone)]
pub(super) enum ChunkLoc {
    /// On the heap (in-memory databases, or a chunk whose file write failed).
    Mem(Arc<Vec<u8>>, Encoding),
    /// In the head chunk files: `file_number << 32 | offset` (§1.12).
    File(u64, Encoding),
}

/// A chunk that no longer changes.
#[derive(Clone)]
pub(super) struct ClosedChunk {
    pub(super) min_t: i64,
    pub(super) max_t: i64,
    pub(super) loc: ChunkLoc,
}

impl ClosedChunk {
    /// XOR, or a native-histogram encoding.
    pub(super) fn encoding(&self) -> Encoding {
        match self.loc {
            ChunkLoc::Mem(_, e) | ChunkLoc::File(_, e) => e,
        }
    }
}

const _: () = assert!(std::mem::size_of::<ClosedChunk>() == 32);

/// The chunk being appended to.
pub(super) struct OpenChunk {
    pub(super) app: XorAppender,
    pub(super) min_t: i64,
    pub(super) max_t: i64,
    /// The chunk is cut when a sample reaches this time.
    next_at: i64,
}

impl OpenChunk {
    /// An open chunk continued from `app` (restored from a memory snapshot); the next cut is
    /// predicted as for a new chunk starting at `min_t`.
    pub(super) fn restored(app: XorAppender, min_t: i64, max_t: i64, cfg: CutPolicy) -> Self {
        OpenChunk {
            app,
            min_t,
            max_t,
            next_at: cfg.initial_end(min_t),
        }
    }
}

/// Chunks of a series in time order: closed ones, then the open one (a float chunk in `open`
/// or a histogram chunk in `hist`, never both).
#[derive(Default)]
pub(super) struct SeriesData {
    pub(super) closed: Vec<ClosedChunk>,
    pub(super) open: Option<OpenChunk>,
    /// The open native-histogram chunk (`head/histogram.rs`).
    pub(super) hist: Option<Box<super::histogram::HistOpen>>,
    /// Where closed chunks are written; `None` keeps them on the heap.
    files: Option<Arc<ChunkFiles>>,
    /// Out-of-order samples (`head/ooo.rs`), if the series ever had any.
    pub(super) ooo: Option<Box<super::ooo::OooData>>,
}

impl SeriesData {
    /// Where closed chunks are written (`None`: on the heap).
    pub(super) fn files(&self) -> Option<&Arc<ChunkFiles>> {
        self.files.as_ref()
    }

    /// Time of the newest sample, if any.
    pub(super) fn max_time(&self) -> Option<i64> {
        match &self.open {
            Some(o) => Some(o.max_t),
            None => match &self.hist {
                Some(h) => Some(h.max_t),
                None => self.closed.last().map(|c| c.max_t),
            },
        }
    }

    fn append(&mut self, series_ref: u64, t: i64, v: f64, cfg: CutPolicy) -> bool {
        if self.max_time().is_some_and(|m| t <= m) {
            return false;
        }
        let cut = match &mut self.open {
            None => true,
            Some(o) => cfg.must_cut(o.app.num_samples(), o.min_t, o.max_t, &mut o.next_at, t),
        };
        if cut {
            // A chunk copied into the chunk files leaves its buffer for the next one, so a
            // series does not reallocate its way up to a full chunk's size at every cut.
            let app = match self.close_open(series_ref) {
                Some(mut app) => {
                    app.reset();
                    app
                }
                None => XorAppender::new(),
            };
            self.open = Some(OpenChunk {
                app,
                min_t: t,
                max_t: t,
                next_at: cfg.initial_end(t),
            });
        }
        let o = self
            .open
            .as_mut()
            .expect("an open chunk exists after cutting");
        o.app.append(t, v);
        o.max_t = t;
        true
    }

    /// Freezes the open chunk, if any, into the closed list, writing it to the chunk files if
    /// there are any. A failed write keeps the chunk on the heap (the chunk files log it).
    /// Returns the appender of a chunk that went to the chunk files, whose buffer the caller
    /// may reuse.
    pub(super) fn close_open(&mut self, series_ref: u64) -> Option<XorAppender> {
        if self.hist.is_some() {
            self.close_hist(series_ref);
        }
        let o = self.open.take()?;
        if o.app.num_samples() == 0 {
            return None;
        }
        let (loc, spare) = match &self.files {
            Some(f) => match f.write(series_ref, o.min_t, o.max_t, o.app.bytes()) {
                Ok(r) => (ChunkLoc::File(r, Encoding::Xor), Some(o.app)),
                Err(_) => (
                    ChunkLoc::Mem(Arc::new(o.app.into_bytes()), Encoding::Xor),
                    None,
                ),
            },
            None => (
                ChunkLoc::Mem(Arc::new(o.app.into_bytes()), Encoding::Xor),
                None,
            ),
        };
        self.closed.push(ClosedChunk {
            min_t: o.min_t,
            max_t: o.max_t,
            loc,
        });
        spare
    }

    /// The bytes of a closed chunk of this series (read from its file if it is in one).
    /// Closes a chunk of `encoding` (a completed histogram chunk), writing it to the chunk
    /// files if there are any; a failed write keeps it on the heap.
    pub(super) fn push_closed(
        &mut self,
        series_ref: u64,
        min_t: i64,
        max_t: i64,
        encoding: Encoding,
        bytes: Vec<u8>,
    ) {
        let loc = match &self.files {
            Some(f) => match f.write_as(series_ref, min_t, max_t, encoding.as_u8(), &bytes) {
                Ok(r) => ChunkLoc::File(r, encoding),
                Err(_) => ChunkLoc::Mem(Arc::new(bytes), encoding),
            },
            None => ChunkLoc::Mem(Arc::new(bytes), encoding),
        };
        self.closed.push(ClosedChunk { min_t, max_t, loc });
    }

    pub(super) fn bytes(&self, c: &ClosedChunk) -> Result<ChunkBytes> {
        match (&c.loc, &self.files) {
            (ChunkLoc::Mem(b, _), _) => Ok(ChunkBytes::Vec(b.clone())),
            (ChunkLoc::File(r, _), Some(f)) => f.chunk(*r),
            (ChunkLoc::File(r, _), None) => Err(crate::error::Error::corruption(
                "<head chunk>",
                *r,
                "a head chunk file reference without chunk files",
            )),
        }
    }

    /// Drops every chunk that ends before `mint` (head truncation). Returns whether the
    /// series holds no chunk any more.
    pub(super) fn truncate(&mut self, mint: i64) -> bool {
        self.closed.retain(|c| c.max_t >= mint);
        if self.open.as_ref().is_some_and(|o| o.max_t < mint) {
            self.open = None;
        }
        if self.hist.as_ref().is_some_and(|h| h.max_t < mint) {
            self.hist = None;
        }
        self.closed.is_empty() && self.open.is_none() && self.hist.is_none() && self.ooo.is_none()
    }

    /// Time of the oldest sample, if any.
    pub(super) fn min_time(&self) -> Option<i64> {
        match self.closed.first() {
            Some(c) => Some(c.min_t),
            None => match &self.hist {
                Some(h) => Some(h.min_t),
                None => self.open.as_ref().map(|o| o.min_t),
            },
        }
    }

    /// Chunks of the series: closed ones and the open one.
    pub(super) fn num_chunks(&self) -> usize {
        self.closed.len()
            + usize::from(self.open.is_some())
            + usize::from(self.hist.is_some())
            + self
                .ooo
                .as_ref()
                .map_or(0, |o| o.mmapped.len() + usize::from(o.open.is_some()))
    }

    /// Heap bytes held by chunk payloads (chunks in files count their descriptor only).
    pub(super) fn chunk_bytes(&self) -> usize {
        self.closed
            .iter()
            .map(|c| match &c.loc {
                ChunkLoc::Mem(b, _) => b.len(),
                ChunkLoc::File(..) => 0,
            })
            .sum::<usize>()
            + self.closed.len() * std::mem::size_of::<ClosedChunk>()
            + self.open.as_ref().map_or(0, |o| o.app.len())
            + self.hist.as_ref().map_or(0, |h| h.bytes().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: CutPolicy = CutPolicy {
        chunk_range: 7_200_000,
        samples_per_chunk: 120,
    };

    #[test]
    fn chunks_hold_about_120_samples_and_respect_range_boundaries() {
        let mut d = SeriesData::default();
        // 15 s scrapes over 6 hours: 1440 samples, 480 per 2 h range -> 4 chunks of 120 each.
        for i in 0..1440 {
            assert!(d.append(1, i * 15_000, i as f64, CFG));
        }
        let _ = d.close_open(1);
        let counts: Vec<u16> = d
            .closed
            .iter()
            .map(|c| crate::chunkenc::XorIter::new(&d.bytes(c).unwrap()).num_samples())
            .collect();
        assert_eq!(counts.len(), 12, "{counts:?}");
        assert!(counts.iter().all(|&n| n == 120), "{counts:?}");
        for c in &d.closed {
            assert_eq!(CFG.initial_end(c.min_t), CFG.initial_end(c.max_t));
        }
    }

    #[test]
    fn dense_samples_are_cut_at_twice_the_target() {
        let mut d = SeriesData::default();
        for i in 0..1000 {
            assert!(d.append(1, i, 1.0, CFG));
        }
        assert!(d
            .closed
            .iter()
            .all(|c| crate::chunkenc::XorIter::new(&d.bytes(c).unwrap()).num_samples() <= 240));
        assert!(
            !d.append(1, 999, 1.0, CFG),
            "not newer than the last sample"
        );
        assert_eq!(d.max_time(), Some(999));
    }
}
