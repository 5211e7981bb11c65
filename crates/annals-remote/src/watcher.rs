//! The WAL watcher: follows a WAL directory as Prometheus's `tsdb/wlog/watcher.go` does and
//! hands series and samples to a [`Sink`].
//!
//! On start it reads the newest checkpoint's Series records, then every segment from the
//! first: Series records always (the sink needs every label set), Samples records only from
//! the resume mark on (earlier ones are skipped without decoding). At the newest segment it
//! tails: it reads what the file holds, then waits for [`Wake::notify`] (called by the writer
//! after each commit) or a poll interval, and moves to the next segment once one exists and
//! the current one is read to its end. When a newer checkpoint appears it reads its series
//! and drops series the checkpoint no longer holds (Prometheus's `SeriesReset`).
//!
//! Segments deleted before they were read (the engine checkpointed them away) are reported to
//! the sink as lost, never skipped silently.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::live::{LiveError, LiveReader};
use crate::progress::Mark;
use crate::wal_source::{self as ws, Kind, RefSample, RefSeries};

/// Receives what the watcher reads.
pub trait Sink {
    /// Series records, read from `segment` (a checkpoint's index for checkpoint records).
    fn series(&mut self, series: &[RefSeries], segment: u32);
    /// Samples of the record at (`segment`, `offset`). Returns false to stop the watcher.
    fn samples(&mut self, samples: &[RefSample], segment: u32, offset: u64) -> bool;
    /// Every record up to and including the one at `last` was handed over.
    fn read_up_to(&mut self, last: Mark);
    /// Forget series last seen in a segment before `segment`.
    fn reset_series(&mut self, segment: u32);
    /// Segments `from..=to` were deleted before they could be read.
    fn lost_segments(&mut self, from: u32, to: u32);
    /// A segment is damaged from `offset` on; the rest of it is skipped.
    fn corrupt_segment(&mut self, err: &LiveError);
}

/// Wakes the watcher: new data, or stop.
#[derive(Debug, Default)]
pub struct Wake {
    pending: Mutex<bool>,
    cv: Condvar,
    stop: AtomicBool,
}

impl Wake {
    /// Tells the watcher that the WAL has new records.
    pub fn notify(&self) {
        let mut p = self.pending.lock();
        if !*p {
            *p = true;
            self.cv.notify_one();
        }
    }

    /// Asks the watcher to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut p = self.pending.lock();
        *p = true;
        self.cv.notify_all();
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn wait(&self, timeout: Duration) {
        let mut p = self.pending.lock();
        if !*p {
            self.cv.wait_for(&mut p, timeout);
        }
        *p = false;
    }
}

/// Follows one WAL directory.
pub struct Watcher {
    dir: PathBuf,
    resume: Option<Mark>,
    wake: Arc<Wake>,
    poll: Duration,
    series_buf: Vec<RefSeries>,
    samples_buf: Vec<RefSample>,
    checkpoint: Option<u32>,
}

/// The watcher cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Listing or reading the WAL directory failed.
    #[error("WAL directory: {0}")]
    Wal(#[from] annals::Error),
    /// A segment cannot be opened.
    #[error("opening {path}: {source}")]
    Io {
        /// The segment file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl Watcher {
    /// A watcher of `dir` that hands over samples from `resume` on (`None`: from the start).
    pub fn new(dir: PathBuf, resume: Option<Mark>, wake: Arc<Wake>, poll: Duration) -> Watcher {
        Watcher {
            dir,
            resume,
            wake,
            poll,
            series_buf: Vec::new(),
            samples_buf: Vec::new(),
            checkpoint: None,
        }
    }

    fn read_checkpoint(&mut self, sink: &mut dyn Sink) -> Result<(), WatchError> {
        let Some((path, idx)) = ws::last_checkpoint(&self.dir)? else {
            return Ok(());
        };
        if self.checkpoint.is_some_and(|c| c >= idx) {
            return Ok(());
        }
        let buf = &mut self.series_buf;
        let mut bad = None;
        ws::read_checkpoint(&path, |rec| {
            if ws::kind(rec) == Kind::Series {
                match ws::decode_series(rec, buf) {
                    Ok(()) => sink.series(buf, idx),
                    Err(e) => bad = Some(e),
                }
            }
        })?;
        if let Some(e) = bad {
            tracing::warn!(checkpoint = %path.display(), error = %e, "undecodable series record in checkpoint");
        }
        if self.checkpoint.is_some() {
            sink.reset_series(idx);
        }
        self.checkpoint = Some(idx);
        Ok(())
    }

    /// Runs until [`Wake::stop`] or the sink asks to stop.
    pub fn run(&mut self, sink: &mut dyn Sink) -> Result<(), WatchError> {
        self.read_checkpoint(sink)?;
        let mut seg = loop {
            match ws::segment_range(&self.dir)? {
                Some((first, _)) => break first,
                None => {
                    if self.wake.stopped() {
                        return Ok(());
                    }
                    self.wake.wait(self.poll);
                }
            }
        };
        if let Some(r) = self.resume {
            if r.segment < seg {
                sink.lost_segments(r.segment, seg - 1);
            }
        }
        loop {
            if self.wake.stopped() {
                return Ok(());
            }
            let file = match ws::open_segment(&self.dir, seg) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Deleted under us (checkpointed) or not created yet.
                    match ws::segment_range(&self.dir)? {
                        Some((first, _)) if first > seg => {
                            sink.lost_segments(seg, first - 1);
                            seg = first;
                        }
                        _ => self.wake.wait(self.poll),
                    }
                    continue;
                }
                Err(e) => {
                    return Err(WatchError::Io {
                        path: ws::segment_path(&self.dir, seg),
                        source: e,
                    })
                }
            };
            let mut reader = LiveReader::new(file, seg);
            if !self.follow(&mut reader, sink)? {
                return Ok(());
            }
            seg += 1;
            self.read_checkpoint(sink)?;
        }
    }

    /// Reads segment `reader` until a newer segment exists and this one is exhausted.
    /// Returns false when stopping.
    fn follow(
        &mut self,
        reader: &mut LiveReader<std::fs::File>,
        sink: &mut dyn Sink,
    ) -> Result<bool, WatchError> {
        let seg = reader.segment();
        loop {
            match self.drain(reader, sink) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    tracing::error!(error = %e, "WAL segment damaged; skipping to the next");
                    sink.corrupt_segment(&e);
                    loop {
                        if self.wake.stopped() {
                            return Ok(false);
                        }
                        if ws::segment_range(&self.dir)?.is_some_and(|(_, last)| last > seg) {
                            return Ok(true);
                        }
                        self.wake.wait(self.poll);
                    }
                }
            }
            if self.wake.stopped() {
                return Ok(false);
            }
            let newer = ws::segment_range(&self.dir)?.is_some_and(|(_, last)| last > seg);
            if newer {
                // The writer moved on; read what it wrote here before it did.
                match self.drain(reader, sink) {
                    Ok(true) => {}
                    Ok(false) => return Ok(false),
                    Err(e) => {
                        sink.corrupt_segment(&e);
                        return Ok(true);
                    }
                }
                if reader.has_partial() {
                    let e = LiveError::Corruption {
                        segment: seg,
                        offset: reader.offset(),
                        reason: "the segment ends inside a record".into(),
                    };
                    tracing::error!(error = %e, "torn WAL segment");
                    sink.corrupt_segment(&e);
                }
                return Ok(true);
            }
            self.wake.wait(self.poll);
        }
    }

    /// Hands over every complete record the segment holds now. Returns false when stopping.
    fn drain(
        &mut self,
        reader: &mut LiveReader<std::fs::File>,
        sink: &mut dyn Sink,
    ) -> Result<bool, LiveError> {
        let seg = reader.segment();
        let mut last = None;
        while let Some((rec, offset)) = reader.next_record()? {
            last = Some(offset);
            match ws::kind(rec) {
                Kind::Series => match ws::decode_series(rec, &mut self.series_buf) {
                    Ok(()) => sink.series(&self.series_buf, seg),
                    Err(e) => {
                        tracing::warn!(segment = seg, offset, error = %e, "undecodable series record")
                    }
                },
                Kind::Samples => {
                    let skip = self
                        .resume
                        .is_some_and(|r| (seg, offset) < (r.segment, r.offset));
                    if skip {
                        continue;
                    }
                    match ws::decode_samples(rec, &mut self.samples_buf) {
                        Ok(()) => {
                            if !sink.samples(&self.samples_buf, seg, offset) {
                                return Ok(false);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(segment = seg, offset, error = %e, "undecodable samples record")
                        }
                    }
                }
                Kind::Other => {}
            }
        }
        if let Some(offset) = last {
            sink.read_up_to(Mark {
                segment: seg,
                offset,
                index: u32::MAX,
            });
        }
        Ok(true)
    }
}
