//! [`Wal`]: the thread-safe appender with group commit (§1.9 writer algorithm, durability).
//!
//! Invariants:
//! * every byte a `log()` call lays out is handed to the OS before it returns (one `write(2)`
//!   in the common case); nothing is buffered between calls;
//! * positions returned by `log()` count every byte written since open, padding included, so
//!   they grow monotonically across segments;
//! * `synced` only grows, and every byte below it is on stable storage: it is advanced by the
//!   one sync leader after fsyncing every segment that holds bytes below its target;
//! * after a failed write or fsync the WAL is poisoned: the segment may end in a partial
//!   record, so `log()` and `sync_to()` fail until the database reopens and repairs the WAL.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::checkpoint::last_checkpoint;
use super::fragment::{Pager, SNAPPY_FLAG};
use super::segment::{segment_path, segment_range, sync_dir};
use super::{Compression, Position, WalOptions, PAGE_SIZE};
use crate::error::{Error, IoContext, Result};
use crate::fs::{self, File};

/// A batch grows its write buffer up to this size before writing it out mid-batch, which
/// bounds the memory of huge batches without adding writes for ordinary ones.
const FLUSH_THRESHOLD: usize = 1 << 20;

/// One open segment file.
#[derive(Debug)]
struct Segment {
    file: File,
    index: u32,
    path: PathBuf,
    /// Whether the directory entry of this file is known durable.
    dir_synced: AtomicBool,
}

#[derive(Debug)]
enum State {
    Open,
    Closed,
    /// A write or fsync failed; holds the reason, for the errors of later calls.
    Failed(Poison),
}

#[derive(Debug)]
struct Inner {
    state: State,
    seg: Arc<Segment>,
    pager: Pager,
    /// Bytes laid out but not yet written.
    pending: Vec<u8>,
    /// Snappy output buffer; only ever grows, so compression never reallocates or memsets.
    comp: Vec<u8>,
    encoder: snap::raw::Encoder,
    /// Logical position: bytes handed to the OS since open.
    written: u64,
    /// Finished segments whose fsync has not completed yet.
    unsynced: Vec<Arc<Segment>>,
    #[cfg(test)]
    fail_after: Option<usize>,
}

#[derive(Debug, Default)]
struct SyncState {
    synced: u64,
    leader: bool,
    failed: Option<Poison>,
}

/// Counters of a [`Wal`], for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStats {
    /// `fsync` calls on segment files (directory syncs excluded).
    pub fsyncs: u64,
    /// Time spent in those `fsync` calls, summed (Prometheus's
    /// `prometheus_tsdb_wal_fsync_duration_seconds` sum).
    pub fsync_duration: std::time::Duration,
    /// `write` calls on segment files.
    pub writes: u64,
    /// Bytes written to segment files, padding included.
    pub bytes_written: u64,
    /// Records logged.
    pub records: u64,
    /// Records stored compressed.
    pub records_compressed: u64,
}

/// An open write-ahead log: appends records to the newest segment of a directory.
///
/// Thread-safe: `log` calls are serialised by an internal lock, `sync_to` calls share fsyncs
/// (group commit). See the module invariants in the source for what each call guarantees.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    inner: Mutex<Inner>,
    sync: Mutex<SyncState>,
    sync_done: Condvar,
    fsyncs: AtomicU64,
    fsync_nanos: AtomicU64,
    writes: AtomicU64,
    records: AtomicU64,
    records_compressed: AtomicU64,
}

/// Why the WAL refuses writes: the first failure, whose I/O error kind later errors keep (so
/// that [`Error::is_disk_full`] still holds for them).
#[derive(Debug, Clone)]
struct Poison {
    kind: io::ErrorKind,
    reason: String,
}

impl From<&Error> for Poison {
    fn from(e: &Error) -> Poison {
        let kind = match e {
            Error::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        Poison {
            kind,
            reason: e.to_string(),
        }
    }
}

fn failed_error(path: &Path, poison: &Poison) -> Error {
    let reason = &poison.reason;
    Error::io(
        path,
        io::Error::new(
            poison.kind,
            format!(
                "the WAL refuses writes after an earlier failure ({reason}); its last segment may \
             end in a partial record: reopen the database to repair the WAL"
            ),
        ),
    )
}

impl Wal {
    /// Opens the WAL in `dir` (created if missing) and starts a new segment after the last
    /// existing one, as Prometheus does: existing segments are never appended to. Without
    /// segments it starts after the newest checkpoint, or at 0.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal> {
        if opts.segment_size == 0 || !opts.segment_size.is_multiple_of(PAGE_SIZE as u64) {
            return Err(Error::InvalidArgument(format!(
                "WAL segment size {} is not a positive multiple of the 32 KiB page size",
                opts.segment_size
            )));
        }
        if !dir.is_dir() {
            fs::create_dir_all(dir).at(dir)?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let next = match segment_range(dir)? {
            // After a truncation that left no segment, continue after the checkpoint, which
            // replay reads before the segments following it.
            None => last_checkpoint(dir)?.map_or(0, |(_, i)| i.saturating_add(1)),
            Some((_, last)) => last.checked_add(1).ok_or_else(|| {
                Error::corruption(dir, None, "the last WAL segment index is u32::MAX")
            })?,
        };
        let seg = create_segment(dir, next)?;
        sync_dir(dir)?;
        seg.dir_synced.store(true, Ordering::Relaxed);
        Ok(Wal {
            dir: dir.to_path_buf(),
            opts,
            inner: Mutex::new(Inner {
                state: State::Open,
                seg: Arc::new(seg),
                pager: Pager::new(opts.segment_size),
                pending: Vec::with_capacity(2 * PAGE_SIZE),
                comp: Vec::new(),
                encoder: snap::raw::Encoder::new(),
                written: 0,
                unsynced: Vec::new(),
                #[cfg(test)]
                fail_after: None,
            }),
            sync: Mutex::new(SyncState::default()),
            sync_done: Condvar::new(),
            fsyncs: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            records: AtomicU64::new(0),
            records_compressed: AtomicU64::new(0),
        })
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the WAL was opened with.
    pub fn options(&self) -> WalOptions {
        self.opts
    }

    /// Index of the segment being written.
    pub fn current_segment(&self) -> u32 {
        self.inner.lock().seg.index
    }

    /// The segment being written and the offset up to which it is laid out (Prometheus's
    /// `LastSegmentAndOffset`, which names memory snapshots, §1.13).
    pub fn segment_position(&self) -> Position {
        let inner = self.inner.lock();
        Position {
            segment: inner.seg.index,
            offset: inner.pager.segment_offset(),
        }
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        let bytes_written = self.inner.lock().written;
        WalStats {
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            fsync_duration: std::time::Duration::from_nanos(
                self.fsync_nanos.load(Ordering::Relaxed),
            ),
            writes: self.writes.load(Ordering::Relaxed),
            bytes_written,
            records: self.records.load(Ordering::Relaxed),
            records_compressed: self.records_compressed.load(Ordering::Relaxed),
        }
    }

    /// Appends one batch of complete encoded records.
    ///
    /// When it returns, every byte of the batch was written to the OS with `write(2)`: it
    /// survives a crash of the process but not of the machine until [`sync_to`](Self::sync_to)
    /// covers the returned position. A record never spans two segments; a batch may. Returns
    /// the logical end position of the batch.
    ///
    /// After an I/O error the WAL may end in a partial record: this and every later call
    /// fail, and the WAL must be reopened and repaired. This includes a failed fsync of a
    /// segment that this call finished (the batch itself was written in that case).
    pub fn log(&self, records: &[&[u8]]) -> Result<u64> {
        if self.opts.compression == Compression::Snappy {
            if let Some(r) = records
                .iter()
                .find(|r| snap::raw::max_compress_len(r.len()) == 0)
            {
                return Err(Error::InvalidArgument(format!(
                    "a WAL record of {} bytes is too large for snappy compression",
                    r.len()
                )));
            }
        }
        let mut inner = self.inner.lock();
        inner.check_open()?;
        let mut cut = false;
        let res = inner.log_batch(self, records, &mut cut);
        let res = res.and_then(|()| inner.flush(self));
        if let Err(e) = &res {
            inner.state = State::Failed(Poison::from(e));
        }
        let pos = inner.written;
        drop(inner);
        res?;
        if cut {
            self.sync_finished_segments()?;
        }
        Ok(pos)
    }

    /// Returns once every byte up to `pos` (a position returned by [`log`](Self::log)) is on
    /// stable storage. Concurrent callers share fsyncs: one leader fsyncs everything logged
    /// so far while the others wait, and a caller whose position the leader covered returns
    /// without an fsync of its own.
    pub fn sync_to(&self, pos: u64) -> Result<()> {
        let mut st = self.sync.lock();
        loop {
            if let Some(reason) = &st.failed {
                return Err(failed_error(&self.dir, reason));
            }
            if st.synced >= pos {
                return Ok(());
            }
            if !st.leader {
                break;
            }
            self.sync_done.wait(&mut st);
        }
        st.leader = true;
        drop(st);
        let res = self.sync_everything_logged();
        let mut st = self.sync.lock();
        st.leader = false;
        match &res {
            Ok(target) => st.synced = st.synced.max(*target),
            Err(e) => st.failed = Some(Poison::from(e)),
        }
        self.sync_done.notify_all();
        let target = res?;
        if target < pos {
            return Err(Error::InvalidArgument(format!(
                "sync_to({pos}) is past the end of the WAL ({target}); pass a position returned \
                 by log()"
            )));
        }
        Ok(())
    }

    /// fsyncs everything logged so far.
    pub fn sync(&self) -> Result<()> {
        let pos = self.inner.lock().written;
        self.sync_to(pos)
    }

    /// Finishes the current segment (pads its last page, fsyncs it) and starts the next one.
    /// Returns the index of the new segment.
    pub fn cut_segment(&self) -> Result<u32> {
        let mut inner = self.inner.lock();
        inner.check_open()?;
        let res = inner.next_segment(self);
        if let Err(e) = &res {
            inner.state = State::Failed(Poison::from(e));
        }
        drop(inner);
        let index = res?;
        self.sync_finished_segments()?;
        Ok(index)
    }

    /// Pads the last page to 32 KiB as Prometheus does, fsyncs, and closes the WAL. Later
    /// `log` calls fail with [`Error::Closed`]. Closing twice is a no-op.
    pub fn close(&self) -> Result<()> {
        let mut inner = self.inner.lock();
        match &inner.state {
            State::Closed => return Ok(()),
            State::Failed(reason) => {
                let e = failed_error(&inner.seg.path, reason);
                inner.state = State::Closed;
                return Err(e);
            }
            State::Open => {}
        }
        let res = (|| {
            if inner.pager.page_started() {
                let Inner { pager, pending, .. } = &mut *inner;
                pager.pad_page(pending);
                inner.flush(self)?;
            }
            let mut files: Vec<Arc<Segment>> = inner.unsynced.drain(..).collect();
            files.push(inner.seg.clone());
            self.fsync_segments(&files)
        })();
        let written = inner.written;
        inner.state = match &res {
            Ok(()) => State::Closed,
            Err(e) => State::Failed(Poison::from(e)),
        };
        drop(inner);
        let mut st = self.sync.lock();
        match &res {
            Ok(()) => st.synced = st.synced.max(written),
            Err(e) => st.failed = Some(Poison::from(e)),
        }
        self.sync_done.notify_all();
        res
    }

    /// fsyncs the finished segments not yet synced, then the directory (whose entry for the
    /// new segment must be durable too).
    fn sync_finished_segments(&self) -> Result<()> {
        let (files, current) = {
            let inner = self.inner.lock();
            (inner.unsynced.clone(), inner.seg.clone())
        };
        let res = self.fsync_segments(&files);
        if let Err(e) = &res {
            let poison = Poison::from(e);
            self.inner.lock().state = State::Failed(poison.clone());
            self.sync.lock().failed = Some(poison);
            return res;
        }
        let mut inner = self.inner.lock();
        inner
            .unsynced
            .retain(|s| !files.iter().any(|f| Arc::ptr_eq(f, s)));
        drop(inner);
        if !current.dir_synced.load(Ordering::Acquire) {
            sync_dir(&self.dir)?;
            current.dir_synced.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// The leader's work: fsyncs every segment holding bytes logged so far. Returns the
    /// position that is durable afterwards.
    fn sync_everything_logged(&self) -> Result<u64> {
        let (target, files) = {
            let inner = self.inner.lock();
            if let State::Failed(reason) = &inner.state {
                return Err(failed_error(&inner.seg.path, reason));
            }
            let mut files = inner.unsynced.clone();
            files.push(inner.seg.clone());
            (inner.written, files)
        };
        self.fsync_segments(&files)?;
        Ok(target)
    }

    fn fsync_segments(&self, files: &[Arc<Segment>]) -> Result<()> {
        let mut dir_needed = false;
        for s in files {
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let res = s.file.sync_data().at(&s.path);
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.fsync_nanos.fetch_add(nanos, Ordering::Relaxed);
            res?;
            dir_needed |= !s.dir_synced.load(Ordering::Acquire);
        }
        if dir_needed {
            sync_dir(&self.dir)?;
            for s in files {
                s.dir_synced.store(true, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Makes the next write fail after `n` more bytes (a short write), for tests of the
    /// failure path.
    #[cfg(test)]
    pub(crate) fn fail_writes_after(&self, n: usize) {
        self.inner.lock().fail_after = Some(n);
    }
}

fn create_segment(dir: &Path, index: u32) -> Result<Segment> {
    let path = segment_path(dir, index);
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .at(&path)?;
    Ok(Segment {
        file,
        index,
        path,
        dir_synced: AtomicBool::new(false),
    })
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        match &self.state {
            State::Open => Ok(()),
            State::Closed => Err(Error::Closed("WAL")),
            State::Failed(reason) => Err(failed_error(&self.seg.path, reason)),
        }
    }

    fn log_batch(&mut self, wal: &Wal, records: &[&[u8]], cut: &mut bool) -> Result<()> {
        for rec in records {
            // §1.9 step 1: a full page is padded before anything else.
            if self.pager.page_full() {
                self.pager.pad_page(&mut self.pending);
            }
            // Step 2: compress, keeping the result only if it is smaller.
            let compressed_len = match wal.opts.compression {
                Compression::None => None,
                Compression::Snappy => {
                    let need = snap::raw::max_compress_len(rec.len());
                    if self.comp.len() < need {
                        self.comp.resize(need, 0);
                    }
                    // snappy refuses only inputs beyond its 4 GiB block size.
                    let n = self.encoder.compress(rec, &mut self.comp).map_err(|e| {
                        Error::limit(
                            crate::error::Limit::Format,
                            format!(
                                "WAL record of {} bytes cannot be compressed: {e}",
                                rec.len()
                            ),
                        )
                    })?;
                    (n < rec.len()).then_some(n)
                }
            };
            // Step 3: records never span segments.
            if !self.pager.fits(compressed_len.unwrap_or(rec.len())) {
                self.next_segment(wal)?;
                *cut = true;
            }
            // Step 4: fragments.
            match compressed_len {
                Some(n) => {
                    let Inner {
                        pager,
                        pending,
                        comp,
                        ..
                    } = self;
                    pager.put_record(&comp[..n], SNAPPY_FLAG, pending);
                    wal.records_compressed.fetch_add(1, Ordering::Relaxed);
                }
                None => self.pager.put_record(rec, 0, &mut self.pending),
            }
            wal.records.fetch_add(1, Ordering::Relaxed);
            if self.pending.len() >= FLUSH_THRESHOLD {
                self.flush(wal)?;
            }
        }
        Ok(())
    }

    /// Writes the pending bytes to the current segment.
    fn flush(&mut self, wal: &Wal) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        wal.writes.fetch_add(1, Ordering::Relaxed);
        let res = self.write_pending();
        self.written += self.pending.len() as u64;
        self.pending.clear();
        res.at(&self.seg.path)
    }

    #[cfg(not(test))]
    fn write_pending(&mut self) -> io::Result<()> {
        (&self.seg.file).write_all(&self.pending)
    }

    #[cfg(test)]
    fn write_pending(&mut self) -> io::Result<()> {
        if let Some(n) = self.fail_after {
            if n < self.pending.len() {
                self.fail_after = None;
                (&self.seg.file).write_all(&self.pending[..n])?;
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "injected short write",
                ));
            }
            self.fail_after = Some(n - self.pending.len());
        }
        (&self.seg.file).write_all(&self.pending)
    }

    /// Pads and writes the current page if it holds data, and starts the next segment. The
    /// finished segment is queued for fsync (done by the caller outside the lock).
    fn next_segment(&mut self, wal: &Wal) -> Result<u32> {
        if self.pager.page_started() {
            self.pager.pad_page(&mut self.pending);
        }
        self.flush(wal)?;
        let index = self.seg.index.checked_add(1).ok_or_else(|| {
            Error::corruption(&wal.dir, None, "the WAL segment index overflows u32")
        })?;
        let next = Arc::new(create_segment(&wal.dir, index)?);
        let prev = std::mem::replace(&mut self.seg, next);
        self.unsynced.push(prev);
        self.pager.reset();
        Ok(index)
    }
}
