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
//!
//! Records are read with the engine's own WAL reader ([`annals::unstable::wal::Reader`]), one
//! per segment, [following](annals::unstable::wal::Reader::follow) the segment while it is
//! the newest: a record the end of the file cuts is not written yet, not torn. Once a newer
//! segment exists the reader stops following, reads the rest, and a record still cut is a torn
//! tail, reported as damage.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::progress::Mark;
use crate::wal_source::{self as ws, Kind, RefSample, RefSeries, SegmentReader};

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
    /// A segment is damaged (the error names the file and the offset of the damage); the
    /// rest of it is skipped.
    fn corrupt_segment(&mut self, err: &annals::Error);
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
            if !ws::segment_path(&self.dir, seg).exists() {
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
            let mut reader = ws::follow_segment(&self.dir, seg);
            if !self.follow(&mut reader, seg, sink)? {
                return Ok(());
            }
            seg += 1;
            self.read_checkpoint(sink)?;
        }
    }

    /// A segment's read failed: damage is reported and the rest of the segment skipped; a
    /// segment deleted between the listing and the read is lost.
    fn failed(&self, seg: u32, e: &annals::Error, sink: &mut dyn Sink) {
        if matches!(e, annals::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        {
            sink.lost_segments(seg, seg);
        } else {
            tracing::error!(error = %e, "WAL segment damaged; skipping to the next");
            sink.corrupt_segment(e);
        }
    }

    /// Reads segment `seg` until a newer segment exists and this one is exhausted.
    /// Returns false when stopping.
    fn follow(
        &mut self,
        reader: &mut SegmentReader,
        seg: u32,
        sink: &mut dyn Sink,
    ) -> Result<bool, WatchError> {
        loop {
            match self.drain(reader, seg, sink) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    self.failed(seg, &e, sink);
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
                // The writer moved on and never appends here again: read what it wrote before
                // it did; a record the end still cuts is torn.
                reader.stop_following();
                match self.drain(reader, seg, sink) {
                    Ok(true) => {}
                    Ok(false) => return Ok(false),
                    Err(e) => self.failed(seg, &e, sink),
                }
                return Ok(true);
            }
            self.wake.wait(self.poll);
        }
    }

    /// Hands over every complete record the segment holds now. Returns false when stopping.
    fn drain(
        &mut self,
        reader: &mut SegmentReader,
        seg: u32,
        sink: &mut dyn Sink,
    ) -> Result<bool, annals::Error> {
        let mut last = None;
        while let Some((rec, pos)) = reader.next_record()? {
            let offset = pos.offset;
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;
    use std::time::Instant;

    use annals::unstable::wal::{self, Wal, WalOptions};
    use annals::Labels;

    use super::*;

    /// Series ref, timestamp, value bits.
    type Sample = (u64, i64, u64);

    #[derive(Default)]
    struct Rec {
        series: Vec<u64>,
        samples: Vec<Sample>,
        marks: Vec<Mark>,
        lost: Vec<(u32, u32)>,
        corrupt: Vec<String>,
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Rec>>);

    impl Sink for Shared {
        fn series(&mut self, series: &[RefSeries], _segment: u32) {
            self.0
                .lock()
                .series
                .extend(series.iter().map(|s| s.series_ref));
        }
        fn samples(&mut self, samples: &[RefSample], _segment: u32, _offset: u64) -> bool {
            let mut r = self.0.lock();
            r.samples
                .extend(samples.iter().map(|s| (s.series_ref, s.t, s.v.to_bits())));
            true
        }
        fn read_up_to(&mut self, last: Mark) {
            self.0.lock().marks.push(last);
        }
        fn reset_series(&mut self, _segment: u32) {}
        fn lost_segments(&mut self, from: u32, to: u32) {
            self.0.lock().lost.push((from, to));
        }
        fn corrupt_segment(&mut self, err: &annals::Error) {
            self.0.lock().corrupt.push(err.to_string());
        }
    }

    /// Segment files written by the engine's WAL writer: per segment, a Series record and
    /// Samples records of every size (some span several pages). Returns the files' bytes and
    /// the samples in WAL order.
    fn engine_segments(segments: u32, snappy: bool) -> (Vec<Vec<u8>>, Vec<Sample>) {
        let d = tempfile::tempdir().unwrap();
        let w = Wal::open(
            d.path(),
            WalOptions {
                compression: if snappy {
                    wal::Compression::Snappy
                } else {
                    wal::Compression::None
                },
                ..WalOptions::default()
            },
        )
        .unwrap();
        let mut want = Vec::new();
        let mut t = 0i64;
        for seg in 0..segments {
            let refs: Vec<(u64, Labels)> = (0..50u64)
                .map(|i| {
                    let r = u64::from(seg) * 100 + i + 1;
                    let l = Labels::new(vec![
                        ("__name__".to_string(), "m".to_string()),
                        ("i".to_string(), r.to_string()),
                    ])
                    .unwrap();
                    (r, l)
                })
                .collect();
            let mut buf = Vec::new();
            wal::encode_series(refs.iter().map(|(r, l)| (*r, l)), &mut buf);
            w.log(&[&buf]).unwrap();
            for n in [1usize, 7, 3000, 40, 9000, 2] {
                let samples: Vec<RefSample> = (0..n)
                    .map(|k| {
                        t += 1;
                        RefSample {
                            series_ref: refs[k % refs.len()].0,
                            t,
                            v: (t as f64).sqrt() * 1e3,
                        }
                    })
                    .collect();
                want.extend(samples.iter().map(|s| (s.series_ref, s.t, s.v.to_bits())));
                buf.clear();
                wal::encode_samples(samples, &mut buf);
                w.log(&[&buf]).unwrap();
            }
            if seg + 1 < segments {
                w.cut_segment().unwrap();
            }
        }
        w.close().unwrap();
        let (first, last) = wal::segment_range(d.path()).unwrap().unwrap();
        let files = (first..=last)
            .map(|i| std::fs::read(wal::segment_path(d.path(), i)).unwrap())
            .filter(|b| !b.is_empty())
            .collect();
        (files, want)
    }

    fn start(dir: &Path, resume: Option<Mark>) -> (Shared, Arc<Wake>, std::thread::JoinHandle<()>) {
        let sink = Shared::default();
        let wake = Arc::new(Wake::default());
        let (mut s, w, d) = (sink.clone(), wake.clone(), dir.to_owned());
        let h = std::thread::spawn(move || {
            Watcher::new(d, resume, w, Duration::from_millis(5))
                .run(&mut s)
                .unwrap()
        });
        (sink, wake, h)
    }

    fn wait_for(sink: &Shared, what: &str, done: impl Fn(&Rec) -> bool) {
        let t = Instant::now();
        while !done(&sink.0.lock()) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The segments appear and grow in steps of every size, cutting records anywhere (inside
    /// headers, payloads, between fragments and in page padding): the watcher hands over every
    /// sample once, in order, and reports no damage.
    #[test]
    fn follows_segments_growing_in_arbitrary_steps() {
        for snappy in [false, true] {
            let (files, want) = engine_segments(3, snappy);
            assert!(files.len() >= 3);
            let d = tempfile::tempdir().unwrap();
            let (sink, wake, h) = start(d.path(), None);
            let mut step = 1usize;
            for (i, bytes) in files.iter().enumerate() {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(wal::segment_path(d.path(), i as u32))
                    .unwrap();
                let mut at = 0;
                while at < bytes.len() {
                    let n = step.min(bytes.len() - at);
                    f.write_all(&bytes[at..at + n]).unwrap();
                    at += n;
                    step = step * 7 % 20011 + 1;
                    wake.notify();
                    if step.is_multiple_of(3) {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }
            wait_for(&sink, "every sample", |r| r.samples.len() >= want.len());
            wake.stop();
            h.join().unwrap();
            let r = sink.0.lock();
            assert_eq!(r.samples, want, "snappy {snappy}");
            assert!(r.corrupt.is_empty() && r.lost.is_empty(), "{:?}", r.corrupt);
            assert_eq!(r.series.len(), 150);
        }
    }

    /// A segment that ends inside a record is torn once a newer segment exists: reported with
    /// the record's offset, and the watcher goes on with the next segment.
    #[test]
    fn a_torn_tail_is_reported_when_the_next_segment_appears() {
        let (files, want) = engine_segments(2, false);
        let d = tempfile::tempdir().unwrap();
        // Segment 0 without the last 10 bytes of its last record (a cut segment may end in
        // zero padding, which is not a record).
        let end = files[0].iter().rposition(|&b| b != 0).unwrap() + 1;
        let cut = end - 10;
        std::fs::write(wal::segment_path(d.path(), 0), &files[0][..cut]).unwrap();
        let (sink, wake, h) = start(d.path(), None);
        let before = |r: &Rec| r.marks.iter().any(|m| m.segment == 0);
        wait_for(&sink, "segment 0's complete records", before);
        assert!(
            sink.0.lock().corrupt.is_empty(),
            "a live segment is not torn"
        );
        std::fs::write(wal::segment_path(d.path(), 1), &files[1]).unwrap();
        wake.notify();
        wait_for(&sink, "segment 1", |r| {
            r.marks.iter().any(|m| m.segment == 1) && !r.corrupt.is_empty()
        });
        wake.stop();
        h.join().unwrap();
        let r = sink.0.lock();
        assert_eq!(r.corrupt.len(), 1, "{:?}", r.corrupt);
        assert!(r.corrupt[0].contains("torn"), "{}", r.corrupt[0]);
        // Everything but segment 0's last record (2 samples) arrived, in order.
        let seg0 = want.len() / 2;
        assert_eq!(r.samples[..seg0 - 2], want[..seg0 - 2]);
        assert_eq!(r.samples[seg0 - 2..], want[seg0..]);
    }

    /// Segments deleted before they were read are reported lost, and reading resumes at the
    /// first that exists, from the resume mark on.
    #[test]
    fn deleted_segments_are_reported_lost() {
        let (files, want) = engine_segments(3, true);
        let d = tempfile::tempdir().unwrap();
        std::fs::write(wal::segment_path(d.path(), 2), &files[2]).unwrap();
        let (sink, wake, h) = start(
            d.path(),
            Some(Mark {
                segment: 0,
                offset: 0,
                index: 0,
            }),
        );
        wait_for(&sink, "segment 2", |r| {
            r.marks.iter().any(|m| m.segment == 2)
        });
        wake.stop();
        h.join().unwrap();
        let r = sink.0.lock();
        assert_eq!(r.lost, vec![(0, 1)]);
        assert_eq!(r.samples[..], want[want.len() * 2 / 3..]);
    }
}
