//! The queue manager of one endpoint: the watcher side ([`QueueWriter`], a [`Sink`]) maps
//! WAL series to relabeled, pre-encoded label sets and hands samples to shards; each shard (a
//! task on the runtime) batches its samples, sends them with retries and records progress.
//!
//! Plain data between the parts: the writer pushes [`Entry`]s into a shard's bounded queue
//! (blocking the watcher thread when it is full, as Prometheus blocks its watcher); a shard
//! takes at most `max_samples_per_send` of them, waits at most `batch_send_deadline` for a
//! batch to fill, and sends. Series go to shard `hash(labels) % shards`, so each series'
//! samples reach the remote in WAL order.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use annals::Labels;
use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::Notify;

use crate::backoff::Backoff;
use crate::client::{SendError, WriteClient};
use crate::encode::{encode_labels_with_external, encode_request, BatchSample};
use crate::metrics::QueueMetrics;
use crate::progress::{Mark, Progress, ShardProgress};
use crate::reshard::{Period, Resharder, UPDATE_PERIOD};
use crate::wal_source::{RefSample, RefSeries};
use crate::watcher::{Sink, Wake};

/// Rewrites a series' labels (with the endpoint's external labels) before sending, as
/// `write_relabel_configs` do; `None` drops the series.
pub type SeriesMapper = Arc<dyn Fn(&Labels) -> Option<Vec<(String, String)>> + Send + Sync>;

/// The labels of the database head's series with a WAL series ref, if the head has it (see
/// [`annals::unstable::wal::head_series_labels`]): a queue then shares the head's copy.
pub type LabelsLookup = Arc<dyn Fn(u64) -> Option<Labels> + Send + Sync>;

/// `queue_config` of an endpoint, with Prometheus 2.42's defaults.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Samples buffered per shard before the WAL reader waits. Default 2500.
    pub capacity: usize,
    /// Most shards. Default 200.
    pub max_shards: usize,
    /// Fewest shards (and the starting count). Default 1.
    pub min_shards: usize,
    /// Samples per request. Default 500.
    pub max_samples_per_send: usize,
    /// Longest a sample waits for its batch to fill. Default 5 s.
    pub batch_send_deadline: Duration,
    /// First retry delay. Default 30 ms.
    pub min_backoff: Duration,
    /// Longest retry delay. Default 5 s.
    pub max_backoff: Duration,
    /// Samples older than this (by their timestamp, against the wall clock) when their turn
    /// comes are dropped and counted (`annals_remote_samples_lost_total{reason="max_lag"}`)
    /// instead of sent; also bounds how much WAL the queue holds back from truncation.
    /// Default 2 h. `None`: never.
    pub max_lag: Option<Duration>,
    /// On stop, how long shards may keep sending what they hold. Default 5 s; whatever is
    /// not acknowledged then is sent after the next start.
    pub flush_deadline: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 2500,
            max_shards: 200,
            min_shards: 1,
            max_samples_per_send: 500,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            max_lag: Some(Duration::from_secs(2 * 3600)),
            flush_deadline: Duration::from_secs(5),
        }
    }
}

/// One sample waiting in a shard.
#[derive(Clone)]
pub(crate) struct Entry {
    labels: Labels,
    series_ref: u64,
    t: i64,
    v: f64,
    mark: Mark,
}

impl BatchSample for Entry {
    fn labels(&self) -> &Labels {
        &self.labels
    }
    fn series_id(&self) -> u64 {
        self.series_ref
    }
    fn t(&self) -> i64 {
        self.t
    }
    fn v(&self) -> f64 {
        self.v
    }
}

#[derive(Default)]
struct ShardQ {
    entries: VecDeque<Entry>,
    /// The shard holds a batch it has not finished with.
    busy: bool,
    /// Send what is queued now, without waiting for the deadline (drain before resharding
    /// or stopping).
    flush: bool,
    /// The shard's task has ended.
    done: bool,
}

struct Shard {
    q: Mutex<ShardQ>,
    /// Wakes the shard's task.
    wake: Notify,
    /// Wakes the watcher waiting for room or for the shard to drain.
    room: Condvar,
    retire: AtomicBool,
}

impl Shard {
    fn new() -> Arc<Shard> {
        Arc::new(Shard {
            q: Mutex::new(ShardQ::default()),
            wake: Notify::new(),
            room: Condvar::new(),
            retire: AtomicBool::new(false),
        })
    }
}

struct ProgressState {
    p: Progress,
    dirty: bool,
    seq: u64,
}

/// State shared by the writer, the shards and the handle.
pub(crate) struct Shared {
    pub(crate) name: String,
    cfg: QueueConfig,
    /// External labels merged into every series when it is sent (empty when a mapper applies
    /// them with the relabeling, at the time the series is read).
    external: Vec<(String, String)>,
    client: Arc<dyn WriteClient>,
    pub(crate) metrics: QueueMetrics,
    shards: RwLock<Vec<Arc<Shard>>>,
    progress: Mutex<ProgressState>,
    progress_path: PathBuf,
    /// Every WAL record up to this mark was handed to the shards.
    watermark: Mutex<Option<Mark>>,
    stopping: AtomicBool,
    /// Shards stop retrying (after the flush deadline).
    abort: AtomicBool,
    abort_tx: tokio::sync::watch::Sender<bool>,
    reshard_to: AtomicUsize,
    samples_in: AtomicU64,
    samples_out: AtomicU64,
    samples_dropped: AtomicU64,
    send_nanos: AtomicU64,
    highest_in_ms: AtomicI64,
    highest_sent_ms: AtomicI64,
    last_success_ms: AtomicI64,
    rt: tokio::runtime::Handle,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: String,
        cfg: QueueConfig,
        external: Vec<(String, String)>,
        client: Arc<dyn WriteClient>,
        metrics: QueueMetrics,
        progress_path: PathBuf,
        progress: Progress,
        seq: u64,
        rt: tokio::runtime::Handle,
    ) -> Arc<Shared> {
        let n = progress.shards.len().max(1);
        let shards = (0..n).map(|_| Shard::new()).collect();
        metrics.shards.set(n as i64);
        metrics.min_shards.set(cfg.min_shards as i64);
        metrics.max_shards.set(cfg.max_shards as i64);
        Arc::new(Shared {
            name,
            cfg,
            external,
            client,
            metrics,
            shards: RwLock::new(shards),
            progress: Mutex::new(ProgressState {
                p: progress,
                dirty: true,
                seq,
            }),
            progress_path,
            watermark: Mutex::new(None),
            stopping: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            abort_tx: tokio::sync::watch::channel(false).0,
            reshard_to: AtomicUsize::new(0),
            samples_in: AtomicU64::new(0),
            samples_out: AtomicU64::new(0),
            samples_dropped: AtomicU64::new(0),
            send_nanos: AtomicU64::new(0),
            highest_in_ms: AtomicI64::new(i64::MIN),
            highest_sent_ms: AtomicI64::new(i64::MIN),
            last_success_ms: AtomicI64::new(now_ms()),
            rt,
        })
    }

    /// Starts one task per shard; `replay[i]` is the end of shard i's batch in flight at the
    /// last stop, sent again first and alone.
    pub(crate) fn spawn_shards(self: &Arc<Self>) {
        let shards = self.shards.read().clone();
        let replay: Vec<Option<Mark>> = {
            let p = self.progress.lock();
            (0..shards.len())
                .map(|i| p.p.shards.get(i).and_then(|s| s.sent))
                .collect()
        };
        for (i, s) in shards.into_iter().enumerate() {
            let me = self.clone();
            let r = replay[i];
            self.rt.spawn(async move { me.run_shard(i, s, r).await });
        }
    }

    /// Writes the progress file if it changed; `sync` also fsyncs it.
    pub(crate) fn persist(&self, sync: bool) {
        let mut st = self.progress.lock();
        if !st.dirty && !sync {
            return;
        }
        st.seq += 1;
        match st.p.store(&self.progress_path, st.seq, sync) {
            Ok(()) => st.dirty = false,
            Err(e) => {
                tracing::error!(queue = %self.name, error = %e, "cannot record remote-write progress")
            }
        }
    }

    fn set_sent(&self, shard: usize, mark: Mark) {
        let mut st = self.progress.lock();
        if let Some(s) = st.p.shards.get_mut(shard) {
            s.sent = Some(mark);
        }
        // Durable before the request leaves: a restart re-sends exactly this batch.
        st.seq += 1;
        match st.p.store(&self.progress_path, st.seq, false) {
            Ok(()) => st.dirty = false,
            Err(e) => {
                tracing::error!(queue = %self.name, error = %e, "cannot record remote-write progress")
            }
        }
    }

    fn set_acked(&self, shard: usize, mark: Mark) {
        let mut st = self.progress.lock();
        if let Some(s) = st.p.shards.get_mut(shard) {
            if s.acked.is_none_or(|a| a < mark) {
                s.acked = Some(mark);
            }
            if s.sent.is_some_and(|x| x <= mark) {
                s.sent = None;
            }
            st.dirty = true;
        }
    }

    /// The oldest WAL segment the queue still needs (for the engine's retention floor).
    pub(crate) fn needed_segment(&self) -> Option<u32> {
        let st = self.progress.lock();
        st.p.resume_from().map(|m| m.segment)
    }

    pub(crate) fn pending(&self) -> usize {
        self.shards
            .read()
            .iter()
            .map(|s| s.q.lock().entries.len())
            .sum()
    }

    async fn run_shard(self: Arc<Self>, idx: usize, shard: Arc<Shard>, mut replay: Option<Mark>) {
        let max = self.cfg.max_samples_per_send.max(1);
        let mut batch: Vec<Entry> = Vec::with_capacity(max);
        let mut order = Vec::with_capacity(max);
        let mut labels = Vec::new();
        let mut pb = Vec::new();
        let mut snappy = snap::raw::Encoder::new();
        loop {
            let deadline = tokio::time::Instant::now() + self.cfg.batch_send_deadline;
            let mut stop = false;
            loop {
                let notified = shard.wake.notified();
                let (ready, flush_empty) = {
                    let mut q = shard.q.lock();
                    let mut cut = false;
                    while batch.len() < max {
                        let Some(front) = q.entries.front() else {
                            break;
                        };
                        if let Some(u) = replay {
                            if front.mark > u {
                                cut = true;
                                break;
                            }
                        }
                        let e = q.entries.pop_front().expect("front exists");
                        batch.push(e);
                    }
                    if let Some(u) = replay {
                        if !cut
                            && self.watermark.lock().is_some_and(|w| w >= u)
                            && q.entries.is_empty()
                        {
                            cut = true;
                        }
                        if cut {
                            replay = None;
                        }
                    }
                    q.busy = !batch.is_empty();
                    shard.room.notify_all();
                    (cut || batch.len() >= max, q.flush && q.entries.is_empty())
                };
                if ready || (flush_empty && !batch.is_empty()) {
                    break;
                }
                if self.stopping.load(Ordering::SeqCst) || shard.retire.load(Ordering::SeqCst) {
                    stop = true;
                    break;
                }
                if flush_empty {
                    // Drained and idle: let the waiting watcher proceed.
                    shard.room.notify_all();
                }
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            self.drop_too_old(&mut batch);
            if batch.is_empty() {
                self.advance_idle(idx, &shard);
                if stop {
                    break;
                }
                continue;
            }
            self.send(idx, &batch, &mut order, &mut labels, &mut pb, &mut snappy)
                .await;
            batch.clear();
            {
                let mut q = shard.q.lock();
                q.busy = false;
                shard.room.notify_all();
            }
            if stop && shard.q.lock().entries.is_empty() {
                break;
            }
            if self.abort.load(Ordering::SeqCst) {
                break;
            }
        }
        let mut q = shard.q.lock();
        q.busy = false;
        q.done = true;
        shard.room.notify_all();
    }

    /// An idle shard has sent everything handed to it up to the watermark.
    fn advance_idle(&self, idx: usize, shard: &Shard) {
        let w = *self.watermark.lock();
        let Some(w) = w else { return };
        let q = shard.q.lock();
        if q.entries.is_empty() && !q.busy {
            drop(q);
            self.set_acked(idx, w);
        }
    }

    fn drop_too_old(&self, batch: &mut Vec<Entry>) {
        let Some(lag) = self.cfg.max_lag else { return };
        let floor = now_ms() - lag.as_millis() as i64;
        let before = batch.len();
        if batch.iter().any(|e| e.t < floor) {
            batch.retain(|e| e.t >= floor);
            let n = (before - batch.len()) as u64;
            self.metrics.lost_max_lag.inc_by(n);
            self.samples_dropped.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(queue = %self.name, samples = n, "dropping samples older than max_lag");
        }
    }

    async fn send(
        &self,
        idx: usize,
        batch: &[Entry],
        order: &mut Vec<u32>,
        labels: &mut Vec<u8>,
        pb: &mut Vec<u8>,
        snappy: &mut snap::raw::Encoder,
    ) {
        let last = batch
            .iter()
            .map(|e| e.mark)
            .max()
            .expect("batch is not empty");
        let highest = batch.iter().map(|e| e.t).max().expect("batch is not empty");
        self.set_sent(idx, last);
        encode_request(batch, &self.external, order, labels, pb);
        let body = Bytes::from(
            snappy
                .compress_vec(pb)
                .expect("snappy compresses any buffer below 4 GiB"),
        );
        let n = batch.len() as u64;
        let mut backoff = Backoff::new(self.cfg.min_backoff, self.cfg.max_backoff);
        let mut abort = self.abort_tx.subscribe();
        loop {
            let start = Instant::now();
            let res = tokio::select! {
                r = self.client.store(body.clone()) => r,
                _ = abort.wait_for(|a| *a) => {
                    // Not acknowledged: stays in the progress file for the next start.
                    return;
                }
            };
            let took = start.elapsed();
            self.send_nanos
                .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
            self.metrics.sent_batch_duration.observe(took.as_secs_f64());
            match res {
                Ok(()) => {
                    self.metrics.samples_total.inc_by(n);
                    self.metrics.bytes_total.inc_by(body.len() as u64);
                    self.samples_out.fetch_add(n, Ordering::Relaxed);
                    self.highest_sent_ms.fetch_max(highest, Ordering::Relaxed);
                    self.metrics
                        .highest_sent_timestamp
                        .set(self.highest_sent_ms.load(Ordering::Relaxed) as f64 / 1000.0);
                    self.last_success_ms.store(now_ms(), Ordering::Relaxed);
                    break;
                }
                Err(SendError::Rejected { status, reason }) => {
                    tracing::error!(queue = %self.name, status, error = %reason, samples = n, "remote rejected a batch; dropping it");
                    self.metrics.samples_failed.inc_by(n);
                    self.samples_out.fetch_add(n, Ordering::Relaxed);
                    break;
                }
                Err(SendError::Recoverable {
                    reason,
                    retry_after,
                }) => {
                    self.metrics.samples_retried.inc_by(n);
                    if self.abort.load(Ordering::SeqCst) {
                        // Not acknowledged: stays in the progress file for the next start.
                        return;
                    }
                    if let Some(lag) = self.cfg.max_lag {
                        if highest < now_ms() - lag.as_millis() as i64 {
                            tracing::warn!(queue = %self.name, samples = n, "dropping a batch older than max_lag");
                            self.metrics.lost_max_lag.inc_by(n);
                            self.samples_dropped.fetch_add(n, Ordering::Relaxed);
                            break;
                        }
                    }
                    let d = backoff.delay(retry_after);
                    tracing::warn!(queue = %self.name, error = %reason, retry_in = ?d, "failed to send batch, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = abort.wait_for(|a| *a) => return,
                    }
                }
            }
        }
        self.set_acked(idx, last);
    }

    /// Resharding: called every [`UPDATE_PERIOD`] by the handle's timer task.
    pub(crate) fn reshard_tick(&self, r: &mut Resharder, last: &mut (u64, u64, u64, u64)) {
        let (i, o, d, s) = (
            self.samples_in.load(Ordering::Relaxed),
            self.samples_out.load(Ordering::Relaxed),
            self.samples_dropped.load(Ordering::Relaxed),
            self.send_nanos.load(Ordering::Relaxed),
        );
        let p = Period {
            samples_in: i - last.0,
            samples_out: o - last.1,
            samples_dropped: d - last.2,
            send_time: Duration::from_nanos(s - last.3),
            highest_in: self.highest_in_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            highest_sent: self.highest_sent_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            since_last_success: (now_ms() - self.last_success_ms.load(Ordering::Relaxed)) as f64
                / 1000.0,
        };
        *last = (i, o, d, s);
        self.metrics.pending.set(self.pending() as i64);
        let cur = self.shards.read().len();
        if let Some(n) = r.tick(p, cur) {
            tracing::info!(queue = %self.name, from = cur, to = n, "remote storage resharding");
            self.metrics.desired_shards.set(n as i64);
            self.reshard_to.store(n, Ordering::SeqCst);
        }
    }

    /// Stops the shards: they send what they hold for up to the flush deadline.
    pub(crate) async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let shards = self.shards.read().clone();
        for s in &shards {
            s.q.lock().flush = true;
            s.wake.notify_one();
        }
        let deadline = tokio::time::Instant::now() + self.cfg.flush_deadline;
        loop {
            if shards.iter().all(|s| s.q.lock().done) {
                break;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                self.abort.store(true, Ordering::SeqCst);
                self.abort_tx.send_replace(true);
                for s in &shards {
                    s.wake.notify_one();
                }
            }
            if now >= deadline + Duration::from_secs(1) {
                // A shard that does not end is dropped with the runtime; its batch was not
                // acknowledged, so it is sent again after the next start.
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.persist(true);
    }
}

struct SeriesEntry {
    /// `None`: dropped by relabeling. Without a mapper, the head's own copy when it has it.
    labels: Option<Labels>,
    /// Picks the shard: XXH3 of the labels' protobuf encoding as sent.
    hash: u64,
    segment: u32,
}

/// The watcher side of a queue: series table, relabeling, hand-off to shards.
pub(crate) struct QueueWriter {
    shared: Arc<Shared>,
    mapper: Option<SeriesMapper>,
    /// The endpoint's external labels, sorted by name (merged before `mapper` runs).
    external: Vec<(String, String)>,
    lookup: Option<LabelsLookup>,
    series: HashMap<u64, SeriesEntry>,
    /// Scratch for a series' encoded labels.
    pb: Vec<u8>,
    staged: Vec<Vec<Entry>>,
    /// Per shard, what was acknowledged before the start (skipped when read again).
    resume: Vec<ShardProgress>,
    wake: Arc<Wake>,
}

impl QueueWriter {
    pub(crate) fn new(
        shared: Arc<Shared>,
        mapper: Option<SeriesMapper>,
        external: Vec<(String, String)>,
        lookup: Option<LabelsLookup>,
        wake: Arc<Wake>,
    ) -> Self {
        let resume = shared.progress.lock().p.shards.clone();
        let n = shared.shards.read().len();
        QueueWriter {
            shared,
            mapper,
            external,
            lookup,
            series: HashMap::new(),
            pb: Vec::new(),
            staged: (0..n).map(|_| Vec::new()).collect(),
            resume,
            wake,
        }
    }

    /// Hands staged entries to their shards, waiting for room. Returns false when stopping.
    fn flush_staged(&mut self) -> bool {
        let shards = self.shared.shards.read().clone();
        let cap = self
            .shared
            .cfg
            .capacity
            .max(self.shared.cfg.max_samples_per_send);
        let max = self.shared.cfg.max_samples_per_send;
        for (i, staged) in self.staged.iter_mut().enumerate() {
            if staged.is_empty() {
                continue;
            }
            let shard = &shards[i];
            let mut q = shard.q.lock();
            while q.entries.len() >= cap {
                if self.wake.stopped() || q.done {
                    return false;
                }
                self.shared.metrics.enqueue_retries.inc();
                shard.room.wait_for(&mut q, Duration::from_millis(100));
            }
            let before = q.entries.len();
            q.entries.extend(staged.drain(..));
            if before < max && q.entries.len() >= max {
                shard.wake.notify_one();
            }
        }
        true
    }

    /// Drains every shard and switches to `n` shards (the watcher waits meanwhile).
    fn reshard(&mut self, n: usize) -> bool {
        let old = self.shared.shards.read().clone();
        for s in &old {
            s.q.lock().flush = true;
            s.wake.notify_one();
        }
        for s in &old {
            let mut q = s.q.lock();
            while !q.entries.is_empty() || q.busy {
                if self.wake.stopped() {
                    return false;
                }
                s.room.wait_for(&mut q, Duration::from_millis(100));
                s.wake.notify_one();
            }
        }
        let w = *self.shared.watermark.lock();
        for s in &old {
            s.retire.store(true, Ordering::SeqCst);
            s.wake.notify_one();
        }
        {
            let mut st = self.shared.progress.lock();
            // Everything read so far is acknowledged in every shard.
            let base = st.p.resume_from().max(w);
            st.p.shards = vec![
                ShardProgress {
                    acked: base,
                    sent: None
                };
                n
            ];
            st.dirty = true;
        }
        self.shared.persist(false);
        *self.shared.shards.write() = (0..n).map(|_| Shard::new()).collect();
        self.shared.metrics.shards.set(n as i64);
        self.resume = vec![ShardProgress::default(); n];
        self.staged = (0..n).map(|_| Vec::new()).collect();
        self.shared.spawn_shards();
        true
    }
}

impl Sink for QueueWriter {
    fn series(&mut self, series: &[RefSeries], segment: u32) {
        for s in series {
            let labels = match &self.mapper {
                Some(m) => {
                    // Relabeling sees the external labels (Prometheus 2.42's StoreSeries).
                    let absent = self
                        .external
                        .iter()
                        .filter(|(n, _)| s.labels.get(n).is_none());
                    Labels::new(
                        s.labels
                            .iter()
                            .map(|l| (l.name, l.value))
                            .chain(absent.map(|(n, v)| (n.as_str(), v.as_str()))),
                    )
                    .ok()
                    .and_then(|merged| m(&merged))
                    .and_then(|ls| {
                        Labels::new(ls.iter().map(|(n, v)| (n.as_str(), v.as_str()))).ok()
                    })
                }
                None => Some(
                    self.lookup
                        .as_ref()
                        .and_then(|l| l(s.series_ref))
                        .filter(|h| *h == s.labels)
                        .unwrap_or_else(|| s.labels.clone()),
                ),
            };
            let hash = match &labels {
                Some(l) => {
                    self.pb.clear();
                    encode_labels_with_external(l, &self.shared.external, &mut self.pb);
                    xxhash_rust::xxh3::xxh3_64(&self.pb)
                }
                None => 0,
            };
            self.series.insert(
                s.series_ref,
                SeriesEntry {
                    labels,
                    hash,
                    segment,
                },
            );
        }
    }

    fn samples(&mut self, samples: &[RefSample], segment: u32, offset: u64) -> bool {
        let want = self.shared.reshard_to.swap(0, Ordering::SeqCst);
        if want > 0 && want != self.staged.len() && !self.reshard(want) {
            return false;
        }
        let n = self.staged.len() as u64;
        let mut highest = i64::MIN;
        let mut dropped = 0u64;
        let mut unknown = 0u64;
        let mut count = 0u64;
        for (i, s) in samples.iter().enumerate() {
            let Some(e) = self.series.get(&s.series_ref) else {
                unknown += 1;
                continue;
            };
            let Some(labels) = &e.labels else {
                dropped += 1;
                continue;
            };
            let mark = Mark {
                segment,
                offset,
                index: i as u32,
            };
            let shard = (e.hash % n) as usize;
            if let Some(p) = self.resume.get(shard) {
                if p.acked.is_some_and(|a| mark <= a) {
                    continue;
                }
            }
            count += 1;
            highest = highest.max(s.t);
            self.staged[shard].push(Entry {
                labels: labels.clone(),
                series_ref: s.series_ref,
                t: s.t,
                v: s.v,
                mark,
            });
        }
        if unknown > 0 {
            tracing::warn!(queue = %self.shared.name, samples = unknown, segment, offset, "samples of unknown series");
            self.shared.metrics.lost_unknown_series.inc_by(unknown);
        }
        self.shared
            .samples_dropped
            .fetch_add(dropped, Ordering::Relaxed);
        self.shared.metrics.samples_dropped.inc_by(dropped);
        self.shared.samples_in.fetch_add(count, Ordering::Relaxed);
        self.shared.metrics.samples_in.inc_by(count);
        if highest > i64::MIN {
            self.shared
                .highest_in_ms
                .fetch_max(highest, Ordering::Relaxed);
            self.shared
                .metrics
                .highest_timestamp
                .set(self.shared.highest_in_ms.load(Ordering::Relaxed) as f64 / 1000.0);
        }
        self.flush_staged()
    }

    fn read_up_to(&mut self, last: Mark) {
        *self.shared.watermark.lock() = Some(last);
    }

    fn reset_series(&mut self, segment: u32) {
        self.series.retain(|_, e| e.segment >= segment);
    }

    fn lost_segments(&mut self, from: u32, to: u32) {
        tracing::error!(queue = %self.shared.name, from, to, "WAL segments were deleted before they were sent");
        self.shared
            .metrics
            .lost_segments
            .inc_by(u64::from(to - from + 1));
    }

    fn corrupt_segment(&mut self, err: &annals::Error) {
        tracing::error!(queue = %self.shared.name, error = %err, "skipping the rest of a damaged WAL segment");
        self.shared.metrics.corrupt_segments.inc();
    }
}

/// Runs the resharding timer and the periodic progress flush until stopped.
pub(crate) async fn housekeeping(shared: Arc<Shared>, cfg: QueueConfig) {
    let mut r = Resharder::new(cfg.min_shards, cfg.max_shards, cfg.batch_send_deadline);
    let mut last = (0, 0, 0, 0);
    let mut reshard = tokio::time::interval(UPDATE_PERIOD);
    reshard.tick().await;
    let mut flush = tokio::time::interval(Duration::from_secs(1));
    let mut ticks = 0u64;
    while !shared.stopping.load(Ordering::SeqCst) {
        tokio::select! {
            _ = reshard.tick() => shared.reshard_tick(&mut r, &mut last),
            _ = flush.tick() => {
                ticks += 1;
                // fsync every 10 s; otherwise only replace the file if it changed.
                shared.persist(ticks.is_multiple_of(10));
                shared.metrics.pending.set(shared.pending() as i64);
            }
        }
    }
}
