//! The database facade: open, append, query, compact, close.

mod appender;
mod blocks;
mod compact;
mod delete;
mod ooo_compact;
mod ooo_recover;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

pub use appender::Appender;
pub use compact::{CompactionStats, CompactionTotals};

use crate::block::{self, BlockSet};
use crate::error::{Error, IoContext, Result};
use crate::fs::DirLock;
use crate::head::{self, AppendBuffers, Head};
pub use crate::head::{HeadStats, ReplayStats};
use crate::options::{Options, Recovery, WalSync};
use crate::query::Querier;
use crate::wal::{self, Wal, WalStats};

/// An open time-series database. Cheap to clone and share between threads; all clones refer
/// to the same database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    dir: Option<PathBuf>,
    opts: Options,
    head: Arc<Head>,
    blocks: Arc<BlockSet>,
    closed: AtomicBool,
    read_only: bool,
    /// Emptied appender buffers kept for reuse.
    buffers: Mutex<Vec<AppendBuffers>>,
    /// Held while open; `None` in memory, read-only, and after close.
    lock: Mutex<Option<DirLock>>,
    /// The write-ahead log; `None` in memory and read-only.
    wal: Option<Arc<Wal>>,
    syncer: Mutex<Option<Worker>>,
    compactor: Mutex<Option<Worker>>,
    /// One compaction at a time.
    compacting: Mutex<()>,
    /// Block directories dropped from the block list whose deletion failed. They are deleted
    /// before the next compaction or tombstone cleaning, which may rewrite the blocks that
    /// replaced them: left on disk without those children naming them as parents, they would
    /// come back at the next open.
    undeleted: Mutex<Vec<PathBuf>>,
    replay: Option<ReplayStats>,
    unreadable: Vec<(PathBuf, String)>,
    /// What every [`Db::compact`] call did, summed.
    compactions: Mutex<CompactionTotals>,
    /// The WAL retention floor and what bounds it (see [`Db::set_wal_retention_floor`]).
    wal_floor: Mutex<compact::WalFloor>,
}

/// A background thread that wakes up periodically or when notified, until stopped.
struct Worker {
    state: Arc<(Mutex<WorkerState>, Condvar)>,
    thread: JoinHandle<()>,
}

#[derive(Default)]
struct WorkerState {
    stop: bool,
    kick: bool,
}

impl Worker {
    /// Runs `work` every `every`, or sooner when kicked; `work` returning false ends the thread.
    fn start(
        name: &str,
        every: Duration,
        mut work: impl FnMut() -> bool + Send + 'static,
    ) -> Worker {
        let state = Arc::new((Mutex::new(WorkerState::default()), Condvar::new()));
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let (lock, cv) = &*shared;
                loop {
                    {
                        let mut st = lock.lock();
                        if !st.kick && !st.stop {
                            cv.wait_for(&mut st, every);
                        }
                        if st.stop {
                            return;
                        }
                        st.kick = false;
                    }
                    if !work() {
                        return;
                    }
                }
            })
            .expect("spawn a background thread");
        Worker { state, thread }
    }

    fn kick(&self) {
        self.state.0.lock().kick = true;
        self.state.1.notify_all();
    }

    fn stop(self) {
        self.state.0.lock().stop = true;
        self.state.1.notify_all();
        let _ = self.thread.join();
    }
}

/// Where and how a database is opened.
enum Mode<'a> {
    ReadWrite(&'a Path),
    ReadOnly(&'a Path),
    InMemory,
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: takes the directory lock, loads the
    /// blocks (cleaning up what an interrupted compaction left), replays the WAL (repairing a
    /// torn tail, see [`Recovery`]) and starts a new WAL segment. What the replay did is in
    /// [`Db::replay_stats`].
    ///
    /// # Errors that say what to do
    ///
    /// [`Error::NotADirectory`] when `dir`, its `wal/` or `chunks_head/` is a file;
    /// [`Error::NotWritable`] on a read-only file system (open it with
    /// [`Db::open_read_only`]); [`Error::AlreadyOpen`] when a `Db` of this process has it
    /// open (clone that one); [`Error::Locked`] when another process holds `<dir>/lock`;
    /// [`Error::PrometheusRunning`] when a live Prometheus writes to it. A failed open removes
    /// what it created (the directory if it was new and is empty, `lock`, `wal/`,
    /// `chunks_head/`), so a directory that is not a database is left as it was.
    ///
    /// # What is excluded
    ///
    /// An exclusive `flock` on `<dir>/lock` excludes other annals processes and a Prometheus
    /// that takes its lock file (it flocks the same file). Prometheus 2.42 as packaged here
    /// takes none, so before opening, `/proc` is searched (Linux) for a process holding the
    /// directory's `queries.active` open or mapped, or a WAL segment open for writing. Not
    /// excluded: a Prometheus without a lock file started after this open, and processes of
    /// other users unless this one runs as root (their `/proc` entries are unreadable).
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        Db::open_with(Mode::ReadWrite(dir.as_ref()), opts)
    }

    /// Opens `dir` for reading only, as `promtool tsdb dump` does: blocks are loaded and the
    /// WAL replayed into memory, and nothing in the directory is created, changed or locked.
    /// Damage in the WAL ends the replay there (reported in [`Db::replay_stats`]) instead of
    /// being repaired. Appends fail with [`Error::ReadOnly`].
    pub fn open_read_only(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        Db::open_with(Mode::ReadOnly(dir.as_ref()), opts)
    }

    /// A database that lives only in memory: nothing is written to disk, everything is lost
    /// when the last clone is dropped. For tests, embedding and benchmark harnesses.
    pub fn open_in_memory(opts: Options) -> Result<Db> {
        Db::open_with(Mode::InMemory, opts)
    }

    /// The one open path. On disk: the lock (read-write only), the blocks, the head chunk
    /// files, the memory snapshot or the WAL (§2.9), and a new WAL segment (read-write only).
    fn open_with(mode: Mode<'_>, opts: Options) -> Result<Db> {
        opts.validate()?;
        let (dir, read_only) = match mode {
            Mode::ReadWrite(d) => (Some(d), false),
            Mode::ReadOnly(d) => (Some(d), true),
            Mode::InMemory => (None, false),
        };
        let mut lock = None;
        let mut wal = None;
        let mut replay = None;
        // What this open creates, removed again if it fails: a failed open leaves nothing
        // behind (no `lock` file in a directory that turned out not to be a database).
        // Declared after `lock`, so that it is dropped (and removes) while the lock is held.
        let mut created = CreatedOnOpen::default();
        let (head, loaded) = match dir {
            None => (Head::new(&opts), blocks::Loaded::default()),
            Some(dir) => {
                check_directories(dir)?;
                if read_only {
                    if !dir.is_dir() {
                        return Err(Error::io(
                            dir,
                            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
                        ));
                    }
                } else {
                    created.dirs_up_to(dir);
                    crate::fs::create_dir_all(dir).map_err(|e| not_writable(dir, e))?;
                    let lock_file = dir.join("lock");
                    let lock_existed = lock_file.exists();
                    lock = Some(DirLock::acquire(dir)?);
                    // Only once the lock is ours: an open that lost the race for a new
                    // directory must not remove the winner's lock file.
                    if !lock_existed {
                        created.push(lock_file, Created::File);
                    }
                    // No annals process holds the directory now; a Prometheus takes no lock.
                    if let Some(h) = crate::fs::holders::foreign_writer(dir) {
                        return Err(Error::PrometheusRunning {
                            dir: dir.to_path_buf(),
                            pid: h.pid,
                            process: h.process,
                            file: h.file,
                        });
                    }
                    for sub in [head::chunk_files::DIR_NAME, "wal"] {
                        if !dir.join(sub).exists() {
                            created.push(dir.join(sub), Created::Tree);
                        }
                    }
                }
                // Prometheus opens the WBL when a window is set or the WBL holds data.
                let wbl_wanted = opts.out_of_order_time_window > 0 || head::wbl_has_data(dir)?;
                let loaded = blocks::load(dir, &opts, read_only)?;
                let (mut head, mmapped) = open_head(dir, &opts, &loaded, read_only)?;
                let wal_dir = dir.join("wal");
                if !read_only {
                    head::mem_snapshot::remove_tmp(dir)?;
                }
                let mut stats = ReplayStats::default();
                if wal_dir.is_dir() {
                    if !read_only {
                        wal::remove_tmp_checkpoints(&wal_dir)?;
                    }
                    let (snapshot, ignored) = load_snapshot(dir, &wal_dir)?;
                    // Read-only: damage ends the replay where it is; nothing is repaired.
                    let recovery = match read_only {
                        true => Recovery::TruncateAtCorruption,
                        false => opts.wal_recovery,
                    };
                    stats = head::replay(&head, &wal_dir, recovery, read_only, mmapped, snapshot)?;
                    if ignored.is_some() {
                        stats.snapshot_ignored = ignored;
                    }
                }
                if !read_only {
                    wal = Some(Arc::new(Wal::open(&wal_dir, opts.wal_options())?));
                    if wbl_wanted {
                        let wbl_dir = dir.join(head::WBL_DIR);
                        if !wbl_dir.exists() {
                            created.push(wbl_dir.clone(), Created::Tree);
                        }
                        head.set_wbl(Arc::new(Wal::open(&wbl_dir, opts.wal_options())?));
                    }
                }
                replay = Some(stats);
                (head, loaded)
            }
        };
        let db = Db {
            inner: Arc::new(DbInner {
                dir: dir.map(Path::to_path_buf),
                head: Arc::new(head),
                blocks: Arc::new(BlockSet::new(loaded.blocks)),
                opts,
                closed: AtomicBool::new(false),
                read_only,
                buffers: Mutex::new(Vec::new()),
                lock: Mutex::new(lock),
                wal,
                syncer: Mutex::new(None),
                compactor: Mutex::new(None),
                compacting: Mutex::new(()),
                wal_floor: Mutex::new(compact::WalFloor::default()),
                undeleted: Mutex::new(Vec::new()),
                replay,
                unreadable: loaded.unreadable,
                compactions: Mutex::new(CompactionTotals::default()),
            }),
        };
        if dir.is_some() && !read_only {
            db.log_wal_late()?;
            db.start_workers();
        }
        created.keep();
        Ok(db)
    }

    fn start_workers(&self) {
        if let (WalSync::Interval(every), Some(w)) = (self.inner.opts.wal_sync, &self.inner.wal) {
            let w = w.clone();
            let wbl = self.inner.head.wbl().cloned();
            // A failed fsync is sticky in the WAL: every later commit reports it.
            *self.inner.syncer.lock() = Some(Worker::start("annals-wal-sync", every, move || {
                w.sync()
                    .and_then(|()| wbl.as_ref().map_or(Ok(()), |b| b.sync()))
                    .map_err(|e| tracing::error!(error = %e, "periodic WAL fsync failed"))
                    .is_ok()
            }));
        }
        if self.inner.opts.compaction {
            let weak: Weak<DbInner> = Arc::downgrade(&self.inner);
            *self.inner.compactor.lock() = Some(Worker::start(
                "annals-compact",
                Duration::from_secs(60),
                move || {
                    let Some(inner) = weak.upgrade() else {
                        return false;
                    };
                    if let Err(e) = (Db { inner }).compact() {
                        tracing::error!(error = %e, "background compaction failed; retrying later");
                    }
                    true
                },
            ));
        }
    }

    /// Wakes the background compactor when the head has grown compactable.
    pub(crate) fn maybe_trigger_compaction(&self) {
        if self.inner.head_compactable() {
            if let Some(c) = self.inner.compactor.lock().as_ref() {
                c.kick();
            }
        }
    }

    /// What the WAL replay at open read, applied, dropped and repaired (`None` in memory).
    pub fn replay_stats(&self) -> Option<&ReplayStats> {
        self.inner.replay.as_ref()
    }

    /// Blocks that could not be read and were skipped at open (only with
    /// [`Options::skip_unreadable_blocks`]), with the reason.
    pub fn unreadable_blocks(&self) -> &[(PathBuf, String)] {
        &self.inner.unreadable
    }

    /// The data directory, or `None` for an in-memory database.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.dir.as_deref()
    }

    /// The persisted blocks, oldest first.
    pub fn blocks(&self) -> Vec<block::Meta> {
        self.inner
            .blocks
            .current()
            .iter()
            .map(|b| b.meta().clone())
            .collect()
    }

    /// Starts a transaction. Appenders are independent: use one per thread.
    pub fn appender(&self) -> Appender {
        let bufs = self.inner.buffers.lock().pop().unwrap_or_default();
        Appender {
            db: self.clone(),
            inner: Some(head::Appender::new(self.inner.head.clone(), bufs)),
        }
    }

    /// A querier over `[mint, maxt]`, both inclusive, reading blocks and the head.
    ///
    /// # Time ranges
    ///
    /// Every time range of the API (`querier`, [`Db::delete`], [`Db::delete_all`], the
    /// `annals dump` command) follows one rule: `[mint, maxt]` includes both ends, so
    /// `mint == maxt` selects one millisecond and `i64::MIN..=i64::MAX` everything; and
    /// `mint > maxt` is an [`Error::InvalidArgument`] naming both ends, never a silent empty
    /// result, since it is almost always a mistake (arguments swapped).
    pub fn querier(&self, mint: i64, maxt: i64) -> Result<Querier> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("database"));
        }
        check_range("Db::querier", mint, maxt)?;
        Ok(Querier::new(
            self.inner.head.clone(),
            self.inner.blocks.clone(),
            mint,
            maxt,
        ))
    }

    /// Counters of the head.
    pub fn head_stats(&self) -> HeadStats {
        self.inner.head.stats()
    }

    /// Chunks held by the head, as Prometheus's `prometheus_tsdb_head_chunks` gauge counts
    /// them (what `/api/v1/status/tsdb` reports as `chunkCount`). Walks the head's series,
    /// taking the commit lock one series at a time, so it costs O(series): unlike
    /// [`head_stats`](Self::head_stats), which is O(1).
    pub fn head_chunk_count(&self) -> u64 {
        self.inner.head.num_chunks()
    }

    /// Holds WAL segments `segment` and later back from checkpointing: head compaction's WAL
    /// truncation folds and deletes only segments before the floor, so a reader of the WAL
    /// that still needs them (a remote-write queue: the oldest segment it has not had
    /// acknowledged) finds them. `None` (the default) removes the floor.
    ///
    /// The floor is bounded by [`Options::wal_retention_floor_max_lag_ms`]: a segment whose
    /// samples are all older than that much behind the head's newest sample is truncated
    /// anyway, with a warning in the log and counted in
    /// [`CompactionStats::wal_segments_past_floor`]; a reader finds it gone and counts its
    /// loss. While the floor holds segments back, the checkpoint keeps the records of every
    /// series it folds (not only of those still in the head), so samples in the kept segments
    /// never lose their series. Takes effect at the next checkpoint; cheap enough to call
    /// after every progress update.
    pub fn set_wal_retention_floor(&self, segment: Option<u32>) {
        self.inner.wal_floor.lock().segment = segment;
    }

    /// The WAL retention floor set by [`set_wal_retention_floor`](Self::set_wal_retention_floor).
    pub fn wal_retention_floor(&self) -> Option<u32> {
        self.inner.wal_floor.lock().segment
    }

    /// Bytes of chunk data and of label sets held by the head (an estimate that excludes
    /// allocator and index overhead).
    pub fn head_data_bytes(&self) -> (usize, usize) {
        self.inner.head.data_bytes()
    }

    /// Runs compaction now: persists the head's oldest ranges into blocks while it spans more
    /// than 1.5 block ranges (truncating the head and checkpointing the WAL), merges blocks as
    /// Prometheus's leveled planner says (adjacent blocks into ranges ×3 up to
    /// [`Options::max_block_range_ms`], overlapping blocks into one, heavily deleted blocks
    /// rewritten), then applies retention. The background compactor (see [`Options::compaction`]) calls the same.
    pub fn compact(&self) -> Result<CompactionStats> {
        self.check_writable()?;
        let _one_at_a_time = self.inner.compacting.lock();
        let started = std::time::Instant::now();
        let mut stats = CompactionStats::default();
        let res = self
            .inner
            .delete_undeleted()
            .and_then(|()| self.inner.compact_head(&mut stats))
            .and_then(|()| self.inner.compact_blocks(&mut stats))
            .and_then(|()| self.inner.apply_retention(&mut stats));
        let mut totals = self.inner.compactions.lock();
        totals.runs += 1;
        totals.failed += u64::from(res.is_err());
        totals.duration += started.elapsed();
        // Also what a failed run did before it failed: those blocks are written or deleted.
        totals.head_blocks_written += stats.head_blocks.len() as u64;
        totals.merged_blocks_written += stats.merged_blocks.len() as u64;
        totals.blocks_deleted_by_retention += stats.blocks_deleted.len() as u64;
        totals.checkpoints += stats.checkpoints.len() as u64;
        drop(totals);
        res.map(|()| stats)
    }

    /// What every [`compact`](Self::compact) call since open did, summed (the background
    /// compactor's runs included), for metrics.
    pub fn compaction_totals(&self) -> CompactionTotals {
        self.inner.compactions.lock().clone()
    }

    /// The write-ahead log's counters since open (writes, bytes, fsyncs and their summed
    /// duration); `None` for a database without a WAL (in memory or read-only).
    pub fn wal_stats(&self) -> Option<WalStats> {
        self.inner.wal.as_ref().map(|w| w.stats())
    }

    /// Closes the database: stops the background threads, fsyncs and closes the WAL, and
    /// releases the directory lock. Later calls on it or its appenders return
    /// [`Error::Closed`]; closing twice is a no-op. Dropping the last handle without closing is
    /// also safe: every commit is already in the OS, and the next open replays it.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Wait for commits in flight; later ones fail.
        self.inner.head.seal();
        self.inner.stop_workers();
        let _no_compaction = self.inner.compacting.lock();
        let mut res = match &self.inner.wal {
            Some(w) => w.close(),
            None => Ok(()),
        };
        if let Some(w) = self.inner.head.wbl() {
            res = res.and(w.close());
        }
        if let (Some(f), false) = (self.inner.head.chunk_files(), self.inner.read_only) {
            let chunks = f.close();
            res = res.and(chunks);
        }
        if let (true, true, Ok(()), Some(dir)) = (
            self.inner.opts.snapshot_on_close,
            self.inner.head.holds_histograms(),
            &res,
            &self.inner.dir,
        ) {
            // The snapshot carries float chunks only: the WAL is replayed instead.
            res = head::mem_snapshot::remove_all(dir);
        }
        if let (true, false, Ok(()), Some(dir), Some(w)) = (
            self.inner.opts.snapshot_on_close,
            self.inner.head.holds_histograms(),
            &res,
            &self.inner.dir,
            &self.inner.wal,
        ) {
            // After the WAL is closed: the snapshot covers all of its last segment.
            let segment = w.current_segment();
            let seg_path = wal::segment_path(w.dir(), segment);
            res = std::fs::metadata(&seg_path).at(&seg_path).and_then(|m| {
                head::mem_snapshot::write(
                    &self.inner.head,
                    dir,
                    segment,
                    m.len(),
                    self.inner.opts.wal_compression,
                )
                .map(drop)
            });
        }
        self.inner.lock.lock().take();
        res
    }
}

/// Refuses a data directory, `wal/` or `chunks_head/` that exists as something other than a
/// directory, and a data directory below a file ([`Error::NotADirectory`]).
fn check_directories(dir: &Path) -> Result<()> {
    for p in [
        dir.to_path_buf(),
        dir.join("wal"),
        dir.join(head::chunk_files::DIR_NAME),
    ] {
        if p.exists() && !p.is_dir() {
            return Err(Error::NotADirectory { path: p });
        }
    }
    // `a/b` where `a` is a file: the first ancestor that exists must be a directory.
    if let Some(a) = dir.ancestors().skip(1).find(|a| a.exists()) {
        if !a.is_dir() {
            return Err(Error::NotADirectory {
                path: a.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// A failure to create the data directory, naming [`Db::open_read_only`] when the file
/// system or the permissions forbid writing.
fn not_writable(dir: &Path, e: std::io::Error) -> Error {
    match crate::fs::is_not_writable(&e) {
        true => Error::NotWritable {
            dir: dir.to_path_buf(),
            source: e,
        },
        false => Error::io(dir, e),
    }
}

/// How to remove a path an open created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Created {
    /// A file.
    File,
    /// A directory, removed only if empty (the data directory and its missing ancestors).
    EmptyDir,
    /// A directory and everything in it (`wal/`, `chunks_head/`: all of it is this open's).
    Tree,
}

/// Paths an open created, removed in reverse order when dropped unless [`keep`](Self::keep)
/// was called. Removal is best effort: a failed open reports its own error.
#[derive(Debug, Default)]
struct CreatedOnOpen {
    paths: Vec<(PathBuf, Created)>,
}

impl CreatedOnOpen {
    fn push(&mut self, path: PathBuf, how: Created) {
        self.paths.push((path, how));
    }

    /// Records the missing directories from the first existing ancestor of `dir` down.
    fn dirs_up_to(&mut self, dir: &Path) {
        let missing: Vec<&Path> = dir.ancestors().take_while(|a| !a.exists()).collect();
        for d in missing.into_iter().rev() {
            if !d.as_os_str().is_empty() {
                self.push(d.to_path_buf(), Created::EmptyDir);
            }
        }
    }

    fn keep(mut self) {
        self.paths.clear();
    }
}

impl Drop for CreatedOnOpen {
    fn drop(&mut self) {
        for (p, how) in self.paths.drain(..).rev() {
            let res = match how {
                Created::File => crate::fs::remove_file(&p),
                Created::EmptyDir => std::fs::remove_dir(&p),
                Created::Tree => crate::fs::remove_dir_all(&p),
            };
            match res {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "could not remove what a failed open created")
                }
            }
        }
    }
}

/// The one rule for time ranges (see [`Db::querier`]): `mint > maxt` is an error.
pub(crate) fn check_range(call: &str, mint: i64, maxt: i64) -> Result<()> {
    if mint > maxt {
        return Err(Error::InvalidArgument(format!(
            "{call}: empty time range, mint {mint} is after maxt {maxt}; both ends are \
             inclusive (mint == maxt selects one millisecond): pass mint <= maxt"
        )));
    }
    Ok(())
}

/// The newest memory snapshot if it is usable, else why it is not.
fn load_snapshot(
    dir: &Path,
    wal_dir: &Path,
) -> Result<(Option<head::mem_snapshot::Snapshot>, Option<String>)> {
    Ok(match head::mem_snapshot::load(dir, wal_dir)? {
        Ok(s) => (s, None),
        Err(reason) => {
            tracing::warn!(%reason, "memory snapshot ignored; replaying the whole WAL");
            (None, Some(reason))
        }
    })
}

/// A head for the data directory `dir` with its head chunk files loaded (§2.9 step 3): the
/// floor of accepted samples is the newest block's max time, and chunks below it are ignored.
fn open_head(
    dir: &Path,
    opts: &Options,
    loaded: &blocks::Loaded,
    read_only: bool,
) -> Result<(Head, head::chunk_files::Loaded)> {
    // Blocks of out-of-order data do not raise it (Prometheus `inOrderBlocksMaxTime`): they
    // may reach past the in-order head, whose samples the WAL replay would then drop.
    let floor = loaded
        .blocks
        .iter()
        .filter(|b| !ooo_compact::is_out_of_order(b.meta()))
        .map(|b| b.max_time())
        .max();
    let chunks_dir = dir.join(head::chunk_files::DIR_NAME);
    let (files, mmapped) =
        head::ChunkFiles::open(&chunks_dir, read_only, floor.unwrap_or(i64::MIN))?;
    let head = Head::with_chunk_files(opts, Arc::new(files));
    if let Some(max) = floor {
        head.raise_floor(max);
    }
    Ok((head, mmapped))
}

impl DbInner {
    fn stop_workers(&self) {
        if let Some(w) = self.compactor.lock().take() {
            w.stop();
        }
        if let Some(w) = self.syncer.lock().take() {
            w.stop();
        }
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        // The compactor holds only a weak reference, so it cannot be what keeps us alive; but
        // it may be the thread dropping the last strong one, and must not join itself.
        if let Some(w) = self.compactor.get_mut().take() {
            if w.thread.thread().id() == std::thread::current().id() {
                w.state.0.lock().stop = true;
            } else {
                w.stop();
            }
        }
        if let Some(w) = self.syncer.get_mut().take() {
            w.stop();
        }
        if let Some(w) = &self.wal {
            if let Err(e) = w.close() {
                tracing::warn!(error = %e, "closing the WAL on drop failed");
            }
        }
        if let Some(w) = self.head.wbl() {
            if let Err(e) = w.close() {
                tracing::warn!(error = %e, "closing the WBL on drop failed");
            }
        }
    }
}

/// The labels of the head's series `series_ref` (the ref of WAL records), if the head holds
/// it: a copy shared with the head, for a WAL tailer that would otherwise keep its own (see
/// `annals::unstable::wal`). `None` once the series left the head.
pub fn head_series_labels(db: &Db, series_ref: u64) -> Option<crate::Labels> {
    db.inner.head.series_labels(series_ref)
}
