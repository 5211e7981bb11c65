//! Rebuilding the head at open (brief §2.9): the chunks of the head chunk files (§1.12),
//! attached to their series as the WAL's series records create them, then the newest
//! checkpoint and every later segment, re-validating samples exactly like live appends and
//! skipping those the m-mapped chunks already hold.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::chunk_files::{Loaded, LoadedChunk};
use super::locks::ApplyWrite;
use super::mem_snapshot::Snapshot;
use super::series::{ChunkLoc, ClosedChunk, OpenChunk};
use super::{Head, HistSample, MemSeries};
use crate::encoding::DecodeError;
use crate::error::{Error, Result};
use crate::options::Recovery;
use crate::wal::{self, Position, Reader, RecordType, RefSample, RefSeries, RepairReport, Stone};

/// What a replay read and did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReplayStats {
    /// The checkpoint replayed first, if any (its index).
    pub checkpoint: Option<u32>,
    /// WAL records read (checkpoint included).
    pub records: u64,
    /// Series records' entries read.
    pub series: u64,
    /// Samples applied to the head.
    pub samples: u64,
    /// Samples dropped by validation (out of order, duplicate, out of bounds), as a live
    /// append would have rejected them.
    pub samples_dropped: u64,
    /// Samples whose series ref no Series record declared (Prometheus counts and skips these).
    pub unknown_refs: u64,
    /// Head chunks loaded from `chunks_head/` and attached to series.
    pub mmapped_chunks: u64,
    /// Samples in those chunks.
    pub mmapped_samples: u64,
    /// Head chunks in `chunks_head/` whose series no WAL series record declared (dropped).
    pub mmapped_chunks_orphaned: u64,
    /// WAL samples skipped because an m-mapped chunk (or the memory snapshot) already holds
    /// them.
    pub samples_in_mmapped_chunks: u64,
    /// The memory snapshot restored, named by the WAL position (segment, offset) it covers;
    /// the WAL was then replayed only after that segment.
    pub snapshot: Option<(u32, u64)>,
    /// Series restored from the memory snapshot.
    pub snapshot_series: u64,
    /// Samples in the open chunks restored from the memory snapshot.
    pub samples_in_snapshot: u64,
    /// Why a memory snapshot present was not used (stale or damaged); the WAL was replayed
    /// in full instead.
    pub snapshot_ignored: Option<String>,
    /// Damage found in `chunks_head/`: the error and the files deleted because of it (ignored
    /// and kept when read-only). Their samples came from the WAL instead.
    pub chunk_files_repair: Option<(String, Vec<std::path::PathBuf>)>,
    /// Tombstone entries applied (deletions logged by `Db::delete`).
    pub tombstones: u64,
    /// Records of types the head does not store (exemplars, metadata, unknown types). Native
    /// histogram records (7, 8) are replayed like Samples records.
    pub records_skipped: u64,
    /// The repair made to a damaged WAL, if one was needed.
    pub repair: Option<RepairReport>,
    /// Where a read-only replay stopped at damage it did not repair.
    pub stopped_at: Option<Position>,
    /// Out-of-order chunks (encoding byte `0x81`) loaded from `chunks_head/` and attached to
    /// their series.
    pub ooo_mmapped_chunks: u64,
    /// Write-behind log (`wbl/`) records read.
    pub wbl_records: u64,
    /// Out-of-order samples the WBL put back into out-of-order chunks.
    pub wbl_samples: u64,
    /// WBL m-map markers applied (samples before them are in an m-mapped chunk).
    pub wbl_markers: u64,
    /// The repair made to a damaged WBL, if one was needed.
    pub wbl_repair: Option<RepairReport>,
    /// Wall time of the replay.
    pub duration: Duration,
}

struct Replayer<'a> {
    head: &'a Head,
    /// Held for the whole replay: it runs before anything else can see the head, and the
    /// guard lets it write series' chunks without their mutexes.
    apply: ApplyWrite<'a>,
    stats: ReplayStats,
    /// WAL refs that name a series already created under another ref (Prometheus "multiRef").
    aliases: HashMap<u64, u64>,
    series: Vec<RefSeries>,
    samples: Vec<RefSample>,
    stones: Vec<Stone>,
    /// m-mapped chunks by series ref, until the series record that claims them.
    mmapped: HashMap<u64, Vec<LoadedChunk>>,
    /// By WAL series ref: the max time of the series' m-mapped chunks (`i64::MIN` if none).
    /// WAL samples at or before it are in those chunks (or were rejected when appended), so
    /// they are skipped without touching the series.
    covered: Vec<i64>,
    min_t: i64,
    max_t: i64,
    max_ref: u64,
    last_log: Instant,
    /// Progress events (see [`crate::progress`]), in segments.
    progress: crate::progress::Progress,
    /// The segments to replay, for progress: the first and the last.
    segments: (u32, u32),
    /// Float samples dropped at or after the floor, with an out-of-order window (see
    /// `head/ooo_recover.rs`), by series ref.
    late: Vec<RefSample>,
}

/// Replays `wal_dir` into `head`, which must be empty. A torn tail (damage in the last segment
/// with nothing intact after it) is always repaired; other damage is an error unless
/// `recovery` says to truncate.
///
/// `read_only` changes nothing on disk: damage ends the replay where it is, and the stats
/// report where (`stopped_at`).
///
/// `mmapped` are the chunks loaded from the head chunk files (see
/// [`ChunkFiles::open`](super::ChunkFiles::open)).
pub(crate) fn replay(
    head: &Head,
    wal_dir: &Path,
    recovery: Recovery,
    read_only: bool,
    mut mmapped: Loaded,
    snapshot: Option<Snapshot>,
) -> Result<ReplayStats> {
    let started = Instant::now();
    let mut stats = ReplayStats::default();
    let mut snapshot = snapshot;
    if let Some((err, files)) = mmapped.repair {
        // The snapshot relies on the chunk files for every chunk closed before it was
        // written, and the WAL before its segment is not replayed: with chunks lost to
        // damage, only the whole WAL (which holds every sample of the head) is complete.
        if let Some(snap) = snapshot.take() {
            stats.snapshot_ignored = Some(format!(
                "memory snapshot {}: head chunk files were damaged ({err})",
                super::mem_snapshot::dir_name(snap.segment, snap.offset)
            ));
        }
        stats.chunk_files_repair = Some((err.to_string(), files));
    }
    let ooo_chunks = std::mem::take(&mut mmapped.ooo_by_series);
    let last_ref = mmapped.last_ref;
    let mut r = Replayer {
        head,
        apply: head.locks.apply_write(),
        stats,
        aliases: HashMap::new(),
        series: Vec::new(),
        samples: Vec::new(),
        stones: Vec::new(),
        mmapped: mmapped.by_series,
        covered: Vec::new(),
        min_t: i64::MAX,
        max_t: i64::MIN,
        max_ref: 0,
        last_log: Instant::now(),
        progress: crate::progress::Progress::new("replay", "segments"),
        segments: (0, 0),
        late: Vec::new(),
    };
    let mut from = 0;
    if let Some(snap) = snapshot {
        // The snapshot holds the head as of the end of its segment; a checkpoint (which
        // deleted the segments it folded in) can only be older.
        from = snap.segment.saturating_add(1);
        r.restore(snap);
    } else if let Some((dir, index)) = wal::last_checkpoint(wal_dir)? {
        // A damaged checkpoint cannot be repaired: its data exists nowhere else.
        r.read_all(Reader::open_dir(&dir, 0)?, &dir)
            .map_err(|f| f.error)?;
        r.stats.checkpoint = Some(index);
        from = index + 1;
    }
    if let Some((first, last)) = wal::segment_range(wal_dir)? {
        if from <= last {
            let reader = Reader::open_dir(wal_dir, from.max(first))?;
            r.segments = (from.max(first), last);
            if let Err(Failure { error: e, damage }) = r.read_all(reader, wal_dir) {
                let Some(at) = damage else {
                    return Err(e);
                };
                if !wal::is_torn_tail(wal_dir, at, last)?
                    && recovery != Recovery::TruncateAtCorruption
                {
                    return Err(e);
                }
                if read_only {
                    tracing::warn!(error = %e, "WAL damaged; replay stops at the damage");
                    r.stats.stopped_at = Some(at);
                } else {
                    tracing::warn!(error = %e, "WAL damaged; truncating it at the last intact record");
                    r.stats.repair = Some(wal::repair(wal_dir, at)?);
                }
            }
        }
    }
    r.stats.mmapped_chunks_orphaned = r.mmapped.values().map(|v| v.len() as u64).sum();
    // Then the out-of-order data (Prometheus 2.42 `Head.Init`: WAL first, then WBL).
    let wbl_dir = super::wbl::dir(wal_dir.parent().unwrap_or(wal_dir));
    let ooo = super::wbl::replay(
        head,
        &mut r.apply,
        &r.aliases,
        ooo_chunks,
        last_ref,
        &wbl_dir,
        recovery,
        read_only,
    )?;
    r.stats.ooo_mmapped_chunks = ooo.mmapped_chunks;
    r.stats.mmapped_chunks_orphaned += ooo.orphaned_chunks;
    r.stats.wbl_records = ooo.records;
    r.stats.wbl_samples = ooo.samples;
    r.stats.wbl_markers = ooo.markers;
    r.stats.wbl_repair = ooo.repair;
    if !read_only {
        head.keep_wal_late(std::mem::take(&mut r.late));
    }
    head.next_ref_at_least(r.max_ref + 1);
    head.note_committed(r.min_t, r.max_t, r.stats.samples, r.stats.samples_dropped);
    // Chunks restored from chunks_head/ and the snapshot count even when no WAL sample does.
    head.widen_time_range(r.min_t, r.max_t);
    r.stats.duration = started.elapsed();
    tracing::info!(
        records = r.stats.records,
        series = r.stats.series,
        samples = r.stats.samples,
        mmapped_chunks = r.stats.mmapped_chunks,
        seconds = r.stats.duration.as_secs_f64(),
        "WAL replay done"
    );
    Ok(r.stats)
}

/// Why reading a log stopped: the error, and where the damage starts when the bytes of a
/// segment are at fault (a record the reader could not read, or one the head could not
/// decode).
struct Failure {
    error: Error,
    damage: Option<Position>,
}

/// Records read ahead by the reading thread: their bytes back to back, and where each ends
/// and starts in the log.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    records: Vec<(usize, Position)>,
}

/// About this many bytes of records per batch: large enough to amortise the hand-over, small
/// enough to stay in cache.
const BATCH_BYTES: usize = 1 << 20;

/// The reading thread: fills batches (recycled through `empty`) until the end of the log or
/// an error, which it passes on after the records read before it. Stops early when the
/// applying side hangs up.
fn read_batches(
    mut reader: Reader,
    full: &std::sync::mpsc::SyncSender<Result<Batch, Failure>>,
    empty: &std::sync::mpsc::Receiver<Batch>,
) {
    loop {
        let mut batch = empty.try_recv().unwrap_or_default();
        batch.bytes.clear();
        batch.records.clear();
        let mut failure = None;
        while batch.bytes.len() < BATCH_BYTES {
            match reader.next_record() {
                Ok(Some((rec, at))) => {
                    batch.bytes.extend_from_slice(rec);
                    batch.records.push((batch.bytes.len(), at));
                }
                Ok(None) => break,
                Err(error) => {
                    failure = Some(Failure {
                        error,
                        damage: reader.damage(),
                    });
                    break;
                }
            }
        }
        let done = failure.is_some() || batch.bytes.len() < BATCH_BYTES;
        if !batch.records.is_empty() && full.send(Ok(batch)).is_err() {
            return;
        }
        if let Some(e) = failure {
            let _ = full.send(Err(e));
        }
        if done {
            return;
        }
    }
}

impl Replayer<'_> {
    /// Gives a series created by a WAL series record its m-mapped chunks, unless it has data
    /// already (a second record for the same labels under another ref). The newest chunk's
    /// last sample becomes the series' last committed sample, for append validation.
    /// Returns the max time of the chunks attached.
    fn attach(&mut self, series: &MemSeries, chunks: Vec<LoadedChunk>) -> Option<i64> {
        let data = series.data_mut(&mut self.apply);
        if !data.closed.is_empty()
            || data.open.is_some()
            || data.hist.is_some()
            || chunks.is_empty()
        {
            self.stats.mmapped_chunks_orphaned += chunks.len() as u64;
            return None;
        }
        let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
            return None;
        };
        self.min_t = self.min_t.min(first.min_t);
        self.max_t = self.max_t.max(last.max_t);
        self.stats.mmapped_chunks += chunks.len() as u64;
        self.stats.mmapped_samples += chunks.iter().map(|c| u64::from(c.num_samples)).sum::<u64>();
        data.closed = chunks
            .iter()
            .map(|c| ClosedChunk {
                min_t: c.min_t,
                max_t: c.max_t,
                loc: ChunkLoc::File(c.chunk_ref, c.encoding),
            })
            .collect();
        if last.encoding != crate::chunkenc::Encoding::Xor {
            // The newest sample is a histogram; a histogram at its time is a duplicate, as in
            // 2.42 after a restart (its last histogram is not kept).
            series
                .last_is_hist
                .store(true, std::sync::atomic::Ordering::Relaxed);
            series.set_last(last.max_t, 0);
            self.head
                .holds_histograms
                .store(true, std::sync::atomic::Ordering::Release);
            return Some(last.max_t);
        }
        let last_sample = data
            .closed
            .last()
            .and_then(|c| data.bytes(c).ok())
            .and_then(|b| {
                crate::chunkenc::XorIter::new(&b)
                    .last()
                    .and_then(|s| s.ok())
            });
        match last_sample {
            Some(s) => series.set_last(s.t, s.v.to_bits()),
            None => series.set_last(last.max_t, 0),
        }
        Some(last.max_t)
    }

    /// Restores the series, open chunks and tombstones of a memory snapshot into the empty
    /// head, with their m-mapped chunks (§2.9 steps 2-3). An open chunk that an m-mapped chunk
    /// overlaps was completed after the snapshot and is dropped (Prometheus does the same);
    /// one entirely inside persisted blocks is dropped too.
    fn restore(&mut self, snap: Snapshot) {
        self.stats.snapshot = Some((snap.segment, snap.offset));
        let floor = self.head.min_valid_time();
        for s in snap.series {
            self.stats.snapshot_series += 1;
            self.max_ref = self.max_ref.max(s.series_ref);
            let series = match self.head.create_with_ref(s.series_ref, &s.labels) {
                Ok(series) => series,
                Err(e) => {
                    tracing::warn!(error = %e, "memory snapshot series skipped");
                    continue;
                }
            };
            if series.series_ref != s.series_ref {
                self.aliases.insert(s.series_ref, series.series_ref);
            }
            let mut covered = None;
            if let Some(chunks) = self.mmapped.remove(&s.series_ref) {
                covered = self.attach(&series, chunks);
            }
            if let Some((min_t, max_t, app, last_v)) = s.open {
                let data = series.data_mut(&mut self.apply);
                let overlapped = data.closed.last().is_some_and(|c| c.max_t >= min_t);
                if !overlapped && max_t >= floor && data.open.is_none() {
                    self.stats.samples_in_snapshot += u64::from(app.num_samples());
                    data.open = Some(OpenChunk::restored(app, min_t, max_t, self.head.cfg));
                    if data.closed.is_empty() {
                        self.min_t = self.min_t.min(min_t);
                    }
                    self.max_t = self.max_t.max(max_t);
                    series.set_last(max_t, last_v);
                    covered = Some(max_t);
                }
            }
            if let Some(max_t) = covered {
                self.cover(s.series_ref, max_t);
            }
        }
        let stones: Vec<Stone> = snap
            .tombstones
            .iter()
            .flat_map(|(r, ivs)| {
                ivs.as_slice().iter().map(move |iv| Stone {
                    series_ref: r,
                    interval: *iv,
                })
            })
            .collect();
        self.stats.tombstones += self.head.add_tombstones(&self.apply, &stones);
    }

    /// Records that WAL samples of `wal_ref` up to `max_t` are in m-mapped chunks. Refs beyond
    /// a dense table's reasonable size are not recorded; their samples take the path through
    /// the series, which recognises them too, only slower.
    fn cover(&mut self, wal_ref: u64, max_t: i64) {
        const DENSE_LIMIT: u64 = 1 << 22;
        if wal_ref < DENSE_LIMIT {
            let i = wal_ref as usize;
            if self.covered.len() <= i {
                self.covered.resize(i + 1, i64::MIN);
            }
            self.covered[i] = max_t;
        }
    }

    /// Applies every record of `reader`. Reading and decompressing run on a second thread,
    /// one batch of records ahead of decoding and applying them on this one; records are
    /// applied in log order, so the result is that of a sequential replay.
    fn read_all(&mut self, reader: Reader, dir: &Path) -> Result<(), Failure> {
        std::thread::scope(|scope| {
            let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Result<Batch, Failure>>(2);
            let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Batch>();
            scope.spawn(move || read_batches(reader, &full_tx, &empty_rx));
            for batch in full_rx {
                let batch = batch?;
                let mut start = 0;
                for &(end, at) in &batch.records {
                    let rec = &batch.bytes[start..end];
                    start = end;
                    self.stats.records += 1;
                    if let Err(e) = self.apply(rec) {
                        return Err(Failure {
                            error: Error::corruption(
                                wal::segment_path(dir, at.segment),
                                at.offset,
                                format!("undecodable WAL record: {e}"),
                            ),
                            damage: Some(at),
                        });
                    }
                }
                if let Some(seg) = batch.records.last().map(|r| r.1.segment) {
                    let (first, last) = self.segments;
                    self.progress.tick(
                        u64::from(seg.saturating_sub(first)),
                        u64::from(last.saturating_sub(first)) + 1,
                        self.stats.samples,
                    );
                }
                if self.last_log.elapsed() > Duration::from_secs(10) {
                    self.last_log = Instant::now();
                    tracing::info!(
                        segment = batch.records.last().map(|r| r.1.segment),
                        samples = self.stats.samples,
                        "replaying the WAL"
                    );
                }
                // The reader may have stopped already; the batch is then simply dropped.
                let _ = empty_tx.send(batch);
            }
            Ok(())
        })
    }

    fn apply(&mut self, rec: &[u8]) -> std::result::Result<(), DecodeError> {
        if rec.is_empty() {
            // Every record starts with its type byte (§1.10): none is written empty. A FULL
            // fragment header whose length and CRC were zeroed reads as an empty record and
            // the zeroes after it as page padding; skipping it would hide the records lost.
            return Err(DecodeError {
                offset: 0,
                reason: "empty record: every record holds at least its type byte",
            });
        }
        match wal::record_type(rec) {
            RecordType::Series => {
                self.series.clear();
                wal::decode_series(rec, &mut self.series)?;
                let mut records = std::mem::take(&mut self.series);
                for s in records.drain(..) {
                    self.stats.series += 1;
                    self.max_ref = self.max_ref.max(s.series_ref);
                    let series =
                        self.head
                            .create_with_ref(s.series_ref, &s.labels)
                            .map_err(|_| DecodeError {
                                offset: 0,
                                reason: "series ref conflicts with another series or the limit",
                            })?;
                    if series.series_ref != s.series_ref {
                        self.aliases.insert(s.series_ref, series.series_ref);
                    }
                    if let Some(chunks) = self.mmapped.remove(&s.series_ref) {
                        if let Some(max_t) = self.attach(&series, chunks) {
                            self.cover(s.series_ref, max_t);
                        }
                    }
                }
                self.series = records;
            }
            RecordType::Samples => {
                self.samples.clear();
                wal::decode_samples(rec, &mut self.samples)?;
                let cfg = self.head.cfg;
                let floor = self.head.min_valid_time();
                for s in &self.samples {
                    if usize::try_from(s.series_ref)
                        .ok()
                        .and_then(|i| self.covered.get(i))
                        .is_some_and(|&max| s.t <= max)
                    {
                        self.stats.samples_in_mmapped_chunks += 1;
                        continue;
                    }
                    let r = match self.aliases.is_empty() {
                        true => s.series_ref,
                        false => self
                            .aliases
                            .get(&s.series_ref)
                            .copied()
                            .unwrap_or(s.series_ref),
                    };
                    let Some(series) = self.head.table.get(r) else {
                        self.stats.unknown_refs += 1;
                        continue;
                    };
                    let data = series.data_mut(&mut self.apply);
                    // Until the first WAL sample opens a chunk, the closed chunks are the
                    // m-mapped ones, which already hold every sample up to their max time.
                    if data.open.is_none()
                        && data.hist.is_none()
                        && data.closed.last().is_some_and(|c| s.t <= c.max_t)
                    {
                        self.stats.samples_in_mmapped_chunks += 1;
                        continue;
                    }
                    if s.t >= floor && series.append_locked(data, s.t, s.v, cfg) {
                        self.stats.samples += 1;
                        self.min_t = self.min_t.min(s.t);
                        self.max_t = self.max_t.max(s.t);
                    } else {
                        self.stats.samples_dropped += 1;
                        if self.head.ooo_window > 0 && s.t >= floor {
                            self.late.push(RefSample {
                                series_ref: r,
                                ..*s
                            });
                        }
                    }
                }
            }
            RecordType::HistogramSamples => {
                let mut hs = Vec::new();
                wal::decode_histogram_samples(rec, &mut hs)?;
                for s in hs {
                    self.apply_hist(s.series_ref, s.t, HistSample::Int(s.h));
                }
            }
            RecordType::FloatHistogramSamples => {
                let mut hs = Vec::new();
                wal::decode_float_histogram_samples(rec, &mut hs)?;
                for s in hs {
                    self.apply_hist(s.series_ref, s.t, HistSample::Float(s.h));
                }
            }
            RecordType::Tombstones => {
                self.stones.clear();
                wal::decode_tombstones(rec, &mut self.stones)?;
                for st in &mut self.stones {
                    if let Some(&r) = self.aliases.get(&st.series_ref) {
                        st.series_ref = r;
                    }
                }
                self.stats.tombstones += self.head.add_tombstones(&self.apply, &self.stones);
            }
            _ => self.stats.records_skipped += 1,
        }
        Ok(())
    }
}

impl Replayer<'_> {
    /// Applies one histogram sample of a WAL record, as a Samples record's float sample is
    /// applied (skipped when an m-mapped chunk holds it, validated like a live append).
    fn apply_hist(&mut self, wal_ref: u64, t: i64, h: HistSample) {
        if usize::try_from(wal_ref)
            .ok()
            .and_then(|i| self.covered.get(i))
            .is_some_and(|&max| t <= max)
        {
            self.stats.samples_in_mmapped_chunks += 1;
            return;
        }
        let r = self.aliases.get(&wal_ref).copied().unwrap_or(wal_ref);
        let Some(series) = self.head.table.get(r) else {
            self.stats.unknown_refs += 1;
            return;
        };
        let (cfg, floor) = (self.head.cfg, self.head.min_valid_time());
        let data = series.data_mut(&mut self.apply);
        if data.open.is_none()
            && data.hist.is_none()
            && data.closed.last().is_some_and(|c| t <= c.max_t)
        {
            self.stats.samples_in_mmapped_chunks += 1;
            return;
        }
        if t >= floor && series.append_hist_locked(data, t, h, cfg) {
            self.stats.samples += 1;
            self.min_t = self.min_t.min(t);
            self.max_t = self.max_t.max(t);
            self.head
                .holds_histograms
                .store(true, std::sync::atomic::Ordering::Release);
        } else {
            self.stats.samples_dropped += 1;
        }
    }
}
