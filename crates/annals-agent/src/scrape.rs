//! The scrape loop of one target, after Prometheus 2.42's `scrape/scrape.go`: fetch (Accept
//! and timeout headers, gzip), parse in place, look the raw series text up in the target's
//! cache (label set and series ref), append in one transaction, write staleness markers for
//! series that disappeared, and report `up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling` and
//! `scrape_series_added`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use annals::{Appender, Db, Error as DbError, Labels, SeriesRef};
use annals_remote::client::error_chain;
use annals_remote::tls::{Connector, TlsClient};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;

use crate::discovery::Target;
use crate::relabel::{self, LabelSet, Rule};
use crate::textparse::{parse_series, Entry, Format, Parser};

/// Prometheus 2.42's scrape `Accept` header (without the protobuf format).
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The value of a staleness marker.
pub fn stale_nan() -> f64 {
    f64::from_bits(0x7ff0_0000_0000_0002)
}

/// Settings of a scrape job that the loop needs.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// `honor_labels`.
    pub honor_labels: bool,
    /// `honor_timestamps`.
    pub honor_timestamps: bool,
    /// `sample_limit` (0: none).
    pub sample_limit: usize,
    /// `metric_relabel_configs`.
    pub metric_relabel: Vec<Rule>,
    /// `Authorization` header.
    pub auth: Option<String>,
}

struct CacheEntry {
    sref: SeriesRef,
    labels: Labels,
    /// The cache iteration (low 32 bits) that last saw the series.
    last_iter: u32,
    /// The append generation in which the series last got a sample without an explicit
    /// timestamp (0: never; report series are not tracked). Prometheus keeps two maps of the
    /// current and previous scrape's series for staleness; a stamp per entry does the same
    /// without a map insert per sample. Low 32 bits of the generation.
    seen: u32,
}

/// A cache key: the 128-bit XXH3 hash of a series' raw text (as exposed, before relabeling).
///
/// Prometheus keys its scrape cache by the text itself; a 10,000-series target then holds
/// about 0.5 MiB of key copies. Two texts of one target share a key with probability about
/// n^2 / 2^129 (below 10^-30 for 10^5 series), far below the rate of undetected memory
/// errors, so the hash stands for the text.
type SeriesKey = u128;

fn series_key(series: &[u8]) -> SeriesKey {
    xxhash_rust::xxh3::xxh3_128(series)
}

/// The keys are hashes already: the table takes their low bits as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used; fold anything else in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, k: u128) {
        self.0 = k as u64;
    }
}

type KeyMap<V> = HashMap<SeriesKey, V, BuildHasherDefault<KeyHasher>>;

/// What a target's scrapes remember: label sets and refs by raw series text (its hash, see
/// [`SeriesKey`]), dropped series, and which series the last scrapes had (for staleness).
pub struct ScrapeCache {
    iter: u64,
    /// Append generation: advances with every append that completes (as Prometheus swaps
    /// its current and previous series maps).
    gen: u64,
    successful_count: usize,
    series: KeyMap<CacheEntry>,
    dropped: KeyMap<u32>,
}

impl Default for ScrapeCache {
    fn default() -> Self {
        ScrapeCache {
            iter: 0,
            gen: 2,
            successful_count: 0,
            series: KeyMap::default(),
            dropped: KeyMap::default(),
        }
    }
}

impl ScrapeCache {
    fn iter_done(&mut self, flush: bool) {
        let count = self.series.len() + self.dropped.len();
        let mut flush = flush;
        if flush {
            self.successful_count = count;
        } else if count > self.successful_count * 2 + 1000 {
            flush = true;
        }
        if flush {
            let it = self.iter as u32;
            self.series.retain(|_, e| e.last_iter == it);
            self.dropped.retain(|_, i| *i == it);
            self.iter += 1;
        }
        self.gen += 1;
    }

    /// Number of series cached.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// HTTP failed.
    #[error("{0}")]
    Http(String),
    /// The body does not parse.
    #[error("{0}")]
    Parse(String),
    /// More samples than `sample_limit` after relabeling.
    #[error("sample limit exceeded")]
    SampleLimit,
    /// The database refused a series.
    #[error("{0}")]
    Storage(String),
}

/// Counts of one append.
#[derive(Debug, Default, Clone, Copy)]
pub struct AppendStats {
    /// Samples in the body.
    pub total: usize,
    /// Samples after metric relabeling.
    pub added: usize,
    /// New series.
    pub series_added: usize,
    /// Out-of-order, duplicate or out-of-bounds samples dropped.
    pub rejected: usize,
}

/// Target labels applied to a scraped label set (Prometheus's `mutateSampleLabels`), then
/// metric relabeling. Empty result: dropped.
fn mutate_sample_labels(
    exposed: LabelSet,
    target: &LabelSet,
    honor: bool,
    rules: &[Rule],
) -> LabelSet {
    let mut ls = exposed;
    let get = |ls: &LabelSet, n: &str| {
        ls.binary_search_by(|(k, _)| k.as_str().cmp(n))
            .ok()
            .map(|i| ls[i].1.clone())
    };
    if honor {
        for (n, v) in target {
            if get(&ls, n).is_none() {
                relabel::set(&mut ls, n, v);
            }
        }
    } else {
        let exposed = ls.clone();
        let mut conflicts: Vec<(String, String)> = Vec::new();
        for (n, v) in target {
            if let Some(ev) = get(&exposed, n) {
                conflicts.push((n.clone(), ev));
            }
            relabel::set(&mut ls, n, v);
        }
        if !conflicts.is_empty() {
            conflicts.sort_by_key(|(n, _)| n.len());
            for i in 0..conflicts.len() {
                let mut name = conflicts[i].0.clone();
                loop {
                    name = format!("exported_{name}");
                    let taken = get(&exposed, &name).is_some()
                        || target.iter().any(|(n, _)| *n == name)
                        || conflicts[..i].iter().any(|(n, _)| *n == name);
                    if !taken {
                        conflicts[i].0 = name;
                        break;
                    }
                }
            }
            for (n, v) in &conflicts {
                relabel::set(&mut ls, n, v);
            }
        }
    }
    if !rules.is_empty() && !relabel::process(&mut ls, rules) {
        return Vec::new();
    }
    ls
}

/// Report series labels: target labels win, the exposed value moves to `exported_*`.
fn report_labels(name: &str, target: &LabelSet) -> Labels {
    let mut ls: LabelSet = vec![("__name__".into(), name.into())];
    for (n, v) in target {
        if n == "__name__" {
            relabel::set(&mut ls, "exported___name__", name);
        }
        relabel::set(&mut ls, n, v);
    }
    Labels::new(ls.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .expect("target labels are validated when the target is built")
}

fn valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// Whether an append error drops just the sample (and is counted) rather than the scrape.
fn sample_error(e: &DbError) -> bool {
    matches!(
        e,
        DbError::OutOfOrderSample { .. }
            | DbError::DuplicateSample { .. }
            | DbError::OutOfBounds { .. }
            | DbError::TooFarInFuture { .. }
    )
}

/// Appends one scrape body (empty for a failed scrape: staleness markers only), as
/// Prometheus's `scrapeLoop.append`.
pub fn append_body(
    app: &mut Appender,
    cache: &mut ScrapeCache,
    cfg: &LoopConfig,
    target: &LabelSet,
    body: &[u8],
    format: Format,
    ts: i64,
) -> (AppendStats, Result<(), ScrapeError>) {
    let mut st = AppendStats::default();
    let mut parser = Parser::new(body, format);
    let mut limit_hit = false;
    let mut appended = 0usize;
    let mut err: Option<ScrapeError> = None;
    loop {
        let (series, value, timestamp) = match parser.next() {
            Ok(None) => break,
            Ok(Some(Entry::Sample {
                series,
                value,
                timestamp,
            })) => (series, value, timestamp),
            Ok(Some(_)) => continue,
            Err(e) => {
                err = Some(ScrapeError::Parse(e.to_string()));
                break;
            }
        };
        st.total += 1;
        let explicit = if cfg.honor_timestamps {
            timestamp
        } else {
            None
        };
        let t = explicit.unwrap_or(ts);
        let key = series_key(series);
        let iter = cache.iter as u32;
        let gen = cache.gen as u32;
        if let Some(i) = cache.dropped.get_mut(&key) {
            *i = iter;
            continue;
        }
        let (sref, labels, cached) = match cache.series.get_mut(&key) {
            Some(e) => {
                e.last_iter = iter;
                (Some(e.sref), e.labels.clone(), true)
            }
            None => {
                let (name, pairs) = match parse_series(series) {
                    Ok(x) => x,
                    Err(e) => {
                        err = Some(ScrapeError::Parse(e));
                        break;
                    }
                };
                let mut exposed: LabelSet = Vec::with_capacity(pairs.len() + 1);
                relabel::set(&mut exposed, "__name__", &name);
                let mut dup = false;
                for (n, v) in pairs {
                    if exposed.iter().any(|(k, _)| k == n.as_ref()) {
                        dup = true;
                    }
                    relabel::set(&mut exposed, &n, &v);
                }
                let ls =
                    mutate_sample_labels(exposed, target, cfg.honor_labels, &cfg.metric_relabel);
                if ls.is_empty() {
                    cache.dropped.insert(key, iter);
                    continue;
                }
                let name_ok = ls
                    .iter()
                    .find(|(n, _)| n == "__name__")
                    .is_some_and(|(_, v)| valid_metric_name(v));
                if !ls.iter().any(|(n, _)| n == "__name__") {
                    err = Some(ScrapeError::Storage("__name__ label is missing".into()));
                    break;
                }
                let labels = match Labels::new(ls.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
                    Ok(l)
                        if name_ok
                            && !dup
                            && ls.iter().all(|(n, _)| relabel::valid_label_name(n)) =>
                    {
                        l
                    }
                    _ => {
                        err = Some(ScrapeError::Storage(format!(
                            "invalid metric name or label names: {}",
                            String::from_utf8_lossy(series)
                        )));
                        break;
                    }
                };
                (None, labels, false)
            }
        };
        // The limit counts samples after relabeling; past it, keep parsing to count them.
        if cfg.sample_limit > 0 && appended >= cfg.sample_limit {
            limit_hit = true;
            st.added += 1;
            continue;
        }
        match app.append(sref, &labels, t, value) {
            Ok(r) => {
                appended += 1;
                let seen = if explicit.is_none() { gen } else { 0 };
                if cached {
                    if let Some(e) = cache.series.get_mut(&key) {
                        if explicit.is_none() {
                            e.seen = seen;
                        }
                    }
                } else {
                    cache.series.insert(
                        key,
                        CacheEntry {
                            sref: r,
                            labels,
                            last_iter: iter,
                            seen,
                        },
                    );
                    st.series_added += 1;
                }
            }
            Err(e) if sample_error(&e) => {
                st.rejected += 1;
            }
            Err(e) => {
                err = Some(ScrapeError::Storage(e.to_string()));
                break;
            }
        }
        st.added += 1;
    }
    if err.is_none() && limit_hit {
        err = Some(ScrapeError::SampleLimit);
    }
    if err.is_none() {
        // Series of the previous scrape that are gone get a staleness marker.
        let stale = stale_nan();
        let prev = (cache.gen - 1) as u32;
        for e in cache.series.values() {
            if e.seen == prev {
                match app.append(Some(e.sref), &e.labels, ts, stale) {
                    Ok(_) => {}
                    Err(e) if sample_error(&e) => {}
                    Err(e) => {
                        err = Some(ScrapeError::Storage(e.to_string()));
                        break;
                    }
                }
            }
        }
    }
    if err.is_none() {
        cache.iter_done(!body.is_empty());
    }
    (st, err.map_or(Ok(()), Err))
}

const REPORT: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Appends the five report samples (or their staleness markers when `values` is `None`).
pub fn append_report(
    app: &mut Appender,
    cache: &mut ScrapeCache,
    target: &LabelSet,
    ts: i64,
    values: Option<[f64; 5]>,
) -> Result<(), ScrapeError> {
    for (i, name) in REPORT.iter().enumerate() {
        let v = values.map_or_else(stale_nan, |vs| vs[i]);
        // Report series are keyed apart from any exposed text (which cannot hold 0xff).
        let key = series_key(&[name.as_bytes(), b"\xff"].concat());
        let (sref, labels) = match cache.series.get(&key) {
            Some(e) => (Some(e.sref), e.labels.clone()),
            None => (None, report_labels(name, target)),
        };
        match app.append(sref, &labels, ts, v) {
            Ok(r) => {
                if sref.is_none() {
                    cache.series.insert(
                        key,
                        CacheEntry {
                            sref: r,
                            labels,
                            last_iter: u32::MAX,
                            seen: 0,
                        },
                    );
                }
            }
            Err(e) if sample_error(&e) => {}
            Err(e) => return Err(ScrapeError::Storage(e.to_string())),
        }
    }
    Ok(())
}

/// Fetches target bodies over `http` or `https`.
#[derive(Clone)]
pub struct Fetcher {
    client: Client<Connector, Empty<Bytes>>,
}

impl Default for Fetcher {
    /// `https` verifies against the system's CAs.
    fn default() -> Self {
        Fetcher::new(None)
    }
}

impl Fetcher {
    /// A fetcher using a job's `tls_config` for `https` targets.
    pub fn new(tls: Option<TlsClient>) -> Fetcher {
        Fetcher {
            client: Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .build(Connector::new(tls, None)),
        }
    }

    /// GETs `url` within `timeout` into `out` (gunzipped); returns the `Content-Type`.
    pub async fn fetch(
        &self,
        url: &Uri,
        timeout: Duration,
        auth: Option<&str>,
        raw: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<String, ScrapeError> {
        let fut = async {
            let mut req = Request::get(url.clone())
                .header("Accept", ACCEPT)
                .header("Accept-Encoding", "gzip")
                .header(
                    "User-Agent",
                    concat!("annals-agent/", env!("CARGO_PKG_VERSION")),
                )
                .header(
                    "X-Prometheus-Scrape-Timeout-Seconds",
                    format!("{}", timeout.as_secs_f64()),
                );
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let req = req
                .body(Empty::new())
                .map_err(|e| ScrapeError::Http(e.to_string()))?;
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ScrapeError::Http(format!("Get {url:?}: {}", error_chain(&e))))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let mut body = resp.into_body();
            raw.clear();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ScrapeError::Http(e.to_string()))?;
                if let Some(d) = frame.data_ref() {
                    raw.extend_from_slice(d);
                }
            }
            if status != hyper::StatusCode::OK {
                return Err(ScrapeError::Http(format!(
                    "server returned HTTP status {status}"
                )));
            }
            let ct = headers
                .get("Content-Type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let gz = headers
                .get("Content-Encoding")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
            out.clear();
            if gz {
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_end(out)
                    .map_err(|e| ScrapeError::Http(format!("gzip: {e}")))?;
            } else {
                std::mem::swap(raw, out);
            }
            Ok(ct)
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Http(format!(
                "Get {url:?}: context deadline exceeded"
            ))),
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Target health for the agent's own metrics.
#[derive(Debug, Default)]
pub struct TargetHealth {
    /// Last scrape succeeded.
    pub up: std::sync::atomic::AtomicBool,
    /// Scrapes done.
    pub scrapes: std::sync::atomic::AtomicU64,
}

/// What a scrape loop needs from the agent.
#[derive(Clone)]
pub struct LoopEnv {
    /// The database.
    pub db: Db,
    /// Called after each commit (wakes remote write).
    pub on_commit: Arc<dyn Fn() + Send + Sync>,
    /// HTTP client.
    pub fetcher: Fetcher,
    /// Seed mixed into scrape offsets.
    pub jitter_seed: u64,
    /// Scrape body buffers.
    pub buffers: Arc<BufferPool>,
}

/// A few reusable byte buffers.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: parking_lot::Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    const KEEP: usize = 8;

    /// A buffer, empty, with whatever capacity it had.
    pub fn get(&self) -> Vec<u8> {
        self.free.lock().pop().unwrap_or_default()
    }

    /// Returns a buffer; beyond a few, it is freed.
    pub fn put(&self, mut b: Vec<u8>) {
        b.clear();
        let mut f = self.free.lock();
        if f.len() < Self::KEEP {
            f.push(b);
        }
    }
}

/// How a loop ends.
pub enum StopMode {
    /// Shutdown: no staleness markers, return the cache.
    Quiet,
    /// The target is gone: staleness markers as Prometheus's `endOfRunStaleness`.
    EndOfRun,
}

/// Runs the loop of `target` until `stop` fires; returns the cache for a replacement loop.
pub async fn run_loop(
    env: LoopEnv,
    target: Target,
    cfg: LoopConfig,
    mut cache: ScrapeCache,
    health: Arc<TargetHealth>,
    mut stop: tokio::sync::watch::Receiver<Option<bool>>,
) -> ScrapeCache {
    let url: Uri = match target.url.parse() {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(url = %target.url, error = %e, "invalid target URL");
            return cache;
        }
    };
    let interval = target.interval;
    let iv_ms = interval.as_millis().max(1) as u64;
    // Prometheus's offset: spread targets over the interval, stable per target.
    let now = now_ms() as u64;
    let base = iv_ms - now % iv_ms;
    let off = (target.hash() ^ env.jitter_seed) % iv_ms;
    let mut first = base + off;
    if first > iv_ms {
        first -= iv_ms;
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(first)) => {}
        _ = stop.changed() => return cache,
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut aligned = now_ms();
    let mut last_ts: Option<i64> = None;
    let mut last_err: Option<String> = None;
    let end_of_run;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => {
                end_of_run = (*stop.borrow()).unwrap_or(false);
                break;
            }
        }
        // Align timestamps to the interval within 2 ms, as Prometheus 2.42 does.
        let mut ts = now_ms();
        if iv_ms > 200 {
            while ts - aligned >= iv_ms as i64 {
                aligned += iv_ms as i64;
            }
            if ts - aligned <= 2 {
                ts = aligned;
            }
        }
        // Body buffers come from a pool shared by all targets: scrapes are spread over the
        // interval, so a few buffers serve them all (Prometheus pools them too).
        let (mut raw, mut body) = (env.buffers.get(), env.buffers.get());
        let start = Instant::now();
        let res = env
            .fetcher
            .fetch(
                &url,
                target.timeout,
                cfg.auth.as_deref(),
                &mut raw,
                &mut body,
            )
            .await;
        let took = start.elapsed();
        let (ok_body, format, scrape_err) = match res {
            Ok(ct) => (true, Format::for_content_type(&ct), None),
            Err(e) => (false, Format::Prometheus, Some(e)),
        };
        let db = env.db.clone();
        let tl = target.labels.clone();
        let c2 = cfg.clone();
        let b = body;
        let (c, b, up, err) = tokio::task::spawn_blocking(move || {
            let input: &[u8] = if ok_body { &b } else { &[] };
            let (up, err) = scrape_once(
                &db, &mut cache, &c2, &tl, input, format, ts, took, scrape_err,
            );
            (cache, b, up, err)
        })
        .await
        .expect("scrape append does not panic");
        cache = c;
        env.buffers.put(b);
        env.buffers.put(raw);
        // Each new error once at warn (a wrong CA, a refused connection), repeats at debug.
        match (&err, &last_err) {
            (Some(e), Some(prev)) if e.to_string() == *prev => {
                tracing::debug!(target = %target.url, error = %e, "scrape failed")
            }
            (Some(e), _) => {
                tracing::warn!(target = %target.url, error = %e, "scrape failed");
                last_err = Some(e.to_string());
            }
            (None, _) => last_err = None,
        }
        health.up.store(up, std::sync::atomic::Ordering::Relaxed);
        health
            .scrapes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (env.on_commit)();
        last_ts = Some(ts);
    }
    if end_of_run && last_ts.is_some() {
        // Wait for when the next scrape would have been, then one more interval and 10 %.
        ticker.tick().await;
        let stale_ts = now_ms();
        ticker.tick().await;
        tokio::time::sleep(interval / 10).await;
        let db = env.db.clone();
        let tl = target.labels.clone();
        let c2 = cfg.clone();
        cache = tokio::task::spawn_blocking(move || {
            let mut app = db.appender();
            let _ = append_body(
                &mut app,
                &mut cache,
                &c2,
                &tl,
                &[],
                Format::Prometheus,
                stale_ts,
            );
            let _ = append_report(&mut app, &mut cache, &tl, stale_ts, None);
            if let Err(e) = app.commit() {
                tracing::warn!(error = %e, "stale commit failed");
            }
            cache
        })
        .await
        .expect("stale append does not panic");
        (env.on_commit)();
    }
    cache
}

/// One scrape's appends, commit included: the body (or staleness markers for a failed
/// scrape), then the report. Returns `up` and the error.
#[allow(clippy::too_many_arguments)]
pub fn scrape_once(
    db: &Db,
    cache: &mut ScrapeCache,
    cfg: &LoopConfig,
    target: &LabelSet,
    body: &[u8],
    format: Format,
    ts: i64,
    took: Duration,
    scrape_err: Option<ScrapeError>,
) -> (bool, Option<ScrapeError>) {
    let mut app = db.appender();
    let (st, res) = append_body(&mut app, cache, cfg, target, body, format, ts);
    let mut err = scrape_err;
    if let Err(e) = res {
        // Roll back; an empty append writes the staleness markers.
        let _ = app.rollback();
        app = db.appender();
        let _ = append_body(&mut app, cache, cfg, target, &[], format, ts);
        if err.is_none() {
            err = Some(e);
        }
    }
    let up = err.is_none();
    let values = [
        if up { 1.0 } else { 0.0 },
        took.as_secs_f64(),
        st.total as f64,
        st.added as f64,
        st.series_added as f64,
    ];
    if let Err(e) = append_report(&mut app, cache, target, ts, Some(values)) {
        tracing::warn!(error = %e, "appending the scrape report failed");
    }
    if let Err(e) = app.commit() {
        tracing::error!(error = %e, "scrape commit failed");
    }
    (up, err)
}

#[cfg(test)]
mod tests;
