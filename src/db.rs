//! The database facade: open, append, query, close.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, IoContext, Result};
use crate::fs::DirLock;
use crate::head::{self, AppendBuffers, Head};
pub use crate::head::{HeadStats, ReplayStats};
use crate::model::{Labels, SeriesRef};
use crate::options::{Options, WalSync};
use crate::query::Querier;
use crate::wal::{self, Wal};

/// An open time-series database. Cheap to clone and share between threads; all clones refer
/// to the same database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    dir: Option<PathBuf>,
    head: Arc<Head>,
    closed: AtomicBool,
    /// Emptied appender buffers kept for reuse.
    buffers: Mutex<Vec<AppendBuffers>>,
    /// Held while open; `None` in memory and after close.
    lock: Mutex<Option<DirLock>>,
    /// The write-ahead log; `None` in memory.
    wal: Option<Arc<Wal>>,
    sync: WalSync,
    syncer: Mutex<Option<Syncer>>,
    replay: Option<ReplayStats>,
}

/// The background thread of `WalSync::Interval`.
struct Syncer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Syncer {
    fn start(wal: Arc<Wal>, every: Duration) -> Syncer {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("annals-wal-sync".into())
            .spawn(move || {
                let (lock, cv) = &*flag;
                let mut stopped = lock.lock();
                while !*stopped {
                    cv.wait_for(&mut stopped, every);
                    if *stopped {
                        break;
                    }
                    // A failed fsync is sticky in the WAL: every later commit reports it.
                    if let Err(e) = wal.sync() {
                        tracing::error!(error = %e, "periodic WAL fsync failed");
                        break;
                    }
                }
            })
            .expect("spawn the WAL sync thread");
        Syncer { stop, thread }
    }

    fn stop(self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
    }
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: takes the directory lock, replays
    /// the WAL (repairing a torn tail, see [`Recovery`](crate::Recovery)) and starts a new WAL
    /// segment. What the replay did is in [`Db::replay_stats`].
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        opts.validate()?;
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).at(dir)?;
        let lock = DirLock::acquire(dir)?;
        let wal_dir = dir.join("wal");
        let head = Head::new(&opts);
        let stats = if wal_dir.is_dir() {
            wal::remove_tmp_checkpoints(&wal_dir)?;
            head::replay(&head, &wal_dir, opts.wal_recovery)?
        } else {
            ReplayStats::default()
        };
        let wal = Arc::new(Wal::open(&wal_dir, opts.wal_options())?);
        let syncer = match opts.wal_sync {
            WalSync::Interval(every) => Some(Syncer::start(wal.clone(), every)),
            WalSync::EveryCommit | WalSync::Never => None,
        };
        Ok(Db::build(
            Some(dir.to_path_buf()),
            Some(lock),
            head,
            Some(wal),
            syncer,
            Some(stats),
            &opts,
        ))
    }

    /// A database that lives only in memory: nothing is written to disk, everything is lost
    /// when the last clone is dropped. For tests, embedding and benchmark harnesses.
    pub fn open_in_memory(opts: Options) -> Result<Db> {
        opts.validate()?;
        Ok(Db::build(
            None,
            None,
            Head::new(&opts),
            None,
            None,
            None,
            &opts,
        ))
    }

    fn build(
        dir: Option<PathBuf>,
        lock: Option<DirLock>,
        head: Head,
        wal: Option<Arc<Wal>>,
        syncer: Option<Syncer>,
        replay: Option<ReplayStats>,
        opts: &Options,
    ) -> Db {
        Db {
            inner: Arc::new(DbInner {
                dir,
                head: Arc::new(head),
                closed: AtomicBool::new(false),
                buffers: Mutex::new(Vec::new()),
                lock: Mutex::new(lock),
                wal,
                sync: opts.wal_sync,
                syncer: Mutex::new(syncer),
                replay,
            }),
        }
    }

    /// What the WAL replay at open read, applied, dropped and repaired (`None` in memory).
    pub fn replay_stats(&self) -> Option<&ReplayStats> {
        self.inner.replay.as_ref()
    }

    /// The data directory, or `None` for an in-memory database.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.dir.as_deref()
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("database"));
        }
        Ok(())
    }

    /// Starts a transaction. Appenders are independent: use one per thread.
    pub fn appender(&self) -> Appender {
        let bufs = self.inner.buffers.lock().pop().unwrap_or_default();
        Appender {
            db: self.clone(),
            inner: Some(head::Appender::new(self.inner.head.clone(), bufs)),
        }
    }

    /// A querier over `[mint, maxt]`, both inclusive.
    pub fn querier(&self, mint: i64, maxt: i64) -> Result<Querier> {
        self.check_open()?;
        if mint > maxt {
            return Err(Error::InvalidArgument(format!(
                "querier range is empty: mint {mint} > maxt {maxt}"
            )));
        }
        Ok(Querier::new(self.inner.head.clone(), mint, maxt))
    }

    /// Counters of the head.
    pub fn head_stats(&self) -> HeadStats {
        self.inner.head.stats()
    }

    /// Bytes of chunk data and of label sets held by the head (an estimate that excludes
    /// allocator and index overhead).
    pub fn head_data_bytes(&self) -> (usize, usize) {
        self.inner.head.data_bytes()
    }

    /// Closes the database: stops the sync thread, fsyncs and closes the WAL, and releases
    /// the directory lock. Later calls on it or its appenders return [`Error::Closed`];
    /// closing twice is a no-op. Dropping the last handle without closing is also safe: every
    /// commit is already in the OS, and the next open replays it.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Wait for commits in flight, then stop accepting.
        drop(self.inner.head.apply.write());
        if let Some(s) = self.inner.syncer.lock().take() {
            s.stop();
        }
        let res = match &self.inner.wal {
            Some(w) => w.close(),
            None => Ok(()),
        };
        self.inner.lock.lock().take();
        res
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        if let Some(s) = self.syncer.get_mut().take() {
            s.stop();
        }
        if let Some(w) = &self.wal {
            if let Err(e) = w.close() {
                tracing::warn!(error = %e, "closing the WAL on drop failed");
            }
        }
    }
}

/// One transaction: samples appended to it become visible, atomically, on [`commit`].
///
/// A sample rejected by [`append`] (out of order, duplicate, out of bounds) fails alone; the
/// rest of the batch stays appendable. Dropping an appender without committing rolls back.
///
/// [`commit`]: Appender::commit
/// [`append`]: Appender::append
pub struct Appender {
    db: Db,
    inner: Option<head::Appender>,
}

impl Appender {
    /// Adds a sample. Pass the [`SeriesRef`] returned by an earlier call for the same series
    /// to skip the label lookup (the labels are then ignored); an unknown ref falls back to
    /// the labels.
    #[inline]
    pub fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef> {
        self.db.check_open()?;
        let inner = self.inner.as_mut().ok_or(Error::Closed("appender"))?;
        inner.append(series, labels, t, v)
    }

    /// Number of samples waiting for commit.
    pub fn pending(&self) -> usize {
        self.inner.as_ref().map_or(0, |a| a.pending())
    }

    /// Writes the pending samples to the WAL and makes them visible at once. Returns when
    /// the commit is as durable as the [`WalSync`] policy promises. If the WAL write fails,
    /// nothing of the commit is applied and the error is returned.
    pub fn commit(mut self) -> Result<()> {
        let mut inner = self.inner.take().ok_or(Error::Closed("appender"))?;
        let db = &self.db.inner;
        let mut synced_to = None;
        {
            let _apply = db.head.apply.write();
            if db.closed.load(Ordering::Acquire) {
                return Err(Error::Closed("database"));
            }
            if let Some(w) = &db.wal {
                let (mut series, mut samples) = (
                    std::mem::take(&mut inner.bufs.series_rec),
                    std::mem::take(&mut inner.bufs.samples_rec),
                );
                inner.encode_wal(&mut series, &mut samples);
                // A Series record only ever accompanies samples.
                let records = [series.as_slice(), samples.as_slice()];
                let first = usize::from(series.is_empty());
                let logged = match samples.is_empty() {
                    true => Ok(None),
                    false => w.log(&records[first..]).map(Some),
                };
                inner.bufs.series_rec = series;
                inner.bufs.samples_rec = samples;
                synced_to = logged?;
            }
            inner.apply_locked();
        }
        self.recycle(inner);
        if let (Some(pos), WalSync::EveryCommit, Some(w)) = (synced_to, db.sync, &db.wal) {
            w.sync_to(pos)?;
        }
        Ok(())
    }

    /// Discards every pending sample.
    pub fn rollback(mut self) -> Result<()> {
        if let Some(inner) = self.inner.take() {
            self.recycle(inner);
        }
        Ok(())
    }

    fn recycle(&self, inner: head::Appender) {
        let mut pool = self.db.inner.buffers.lock();
        if pool.len() < 64 {
            pool.push(inner.into_buffers());
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            self.recycle(inner);
        }
    }
}
