//! The server's own metrics, served at `/metrics` in the Prometheus text format (0.0.4):
//! HTTP requests, remote-write and remote-read traffic, queries, and the database's head and
//! block statistics read at scrape time.

use std::time::Instant;

use annals::Db;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of the HTTP request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandlerLabels {
    /// The route, e.g. `/api/v1/query`.
    pub handler: String,
    /// The status code.
    pub code: String,
}

/// Labels of per-handler histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandlerOnly {
    /// The route.
    pub handler: String,
}

/// Labels of sample counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `accepted` or the reason of a rejection.
    pub result: String,
}

/// Every metric the server updates, and the registry that serves them.
pub struct Metrics {
    registry: Registry,
    /// `annals_http_requests_total{handler,code}`.
    pub http_requests: Family<HandlerLabels, Counter>,
    /// `annals_http_request_duration_seconds{handler}`.
    pub http_duration: Family<HandlerOnly, Histogram>,
    /// `annals_remote_write_samples_total{result}`.
    pub write_samples: Family<ResultLabels, Counter>,
    /// `annals_remote_write_metadata_total`.
    pub write_metadata: Counter,
    /// `annals_remote_read_queries_total`.
    pub read_queries: Counter,
    /// `annals_remote_read_samples_total` (samples returned, `SAMPLES` responses).
    pub read_samples: Counter,
    /// `annals_remote_read_chunks_total` (chunks streamed, `STREAMED_XOR_CHUNKS` responses).
    pub read_chunks: Counter,
    /// `annals_queries_total{result}` (PromQL evaluations).
    pub queries: Family<ResultLabels, Counter>,
    /// `annals_query_duration_seconds`.
    pub query_duration: Histogram,
}

struct DbCollector {
    db: Db,
    start: Instant,
    started_unix: f64,
}

impl std::fmt::Debug for DbCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbCollector")
    }
}

impl Collector for DbCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let h = self.db.head_stats();
        let (chunk_bytes, label_bytes) = self.db.head_data_bytes();
        let blocks = self.db.blocks();
        gauge(
            &mut enc,
            "annals_head_series",
            "Series in the head",
            h.num_series as f64,
        )?;
        counter(
            &mut enc,
            "annals_head_samples_appended",
            "Samples committed to the head since the database was opened",
            h.samples_appended,
        )?;
        counter(
            &mut enc,
            "annals_head_samples_dropped_at_commit",
            "Samples accepted by append but dropped at commit (made out of order by a concurrent commit)",
            h.samples_dropped_at_commit,
        )?;
        gauge(
            &mut enc,
            "annals_head_chunks",
            "Chunks held by the head",
            self.db.head_chunk_count() as f64,
        )?;
        gauge(
            &mut enc,
            "annals_head_chunk_bytes",
            "Bytes of chunk data held by the head (estimate)",
            chunk_bytes as f64,
        )?;
        gauge(
            &mut enc,
            "annals_head_label_bytes",
            "Bytes of label sets held by the head (estimate)",
            label_bytes as f64,
        )?;
        if let (Some(min), Some(max)) = (h.min_time, h.max_time) {
            gauge(
                &mut enc,
                "annals_head_min_time_seconds",
                "Oldest sample time in the head",
                min as f64 / 1000.0,
            )?;
            gauge(
                &mut enc,
                "annals_head_max_time_seconds",
                "Newest sample time in the head",
                max as f64 / 1000.0,
            )?;
        }
        gauge(
            &mut enc,
            "annals_blocks_loaded",
            "Persisted blocks",
            blocks.len() as f64,
        )?;
        gauge(
            &mut enc,
            "annals_blocks_samples",
            "Samples in persisted blocks",
            blocks.iter().map(|b| b.stats.num_samples).sum::<u64>() as f64,
        )?;
        if let Some(w) = self.db.wal_stats() {
            counter(
                &mut enc,
                "annals_wal_writes",
                "write(2) calls on WAL segments",
                w.writes,
            )?;
            counter(
                &mut enc,
                "annals_wal_bytes_written",
                "Bytes written to WAL segments, page padding included",
                w.bytes_written,
            )?;
            counter(
                &mut enc,
                "annals_wal_records",
                "Records logged to the WAL",
                w.records,
            )?;
            counter(
                &mut enc,
                "annals_wal_fsyncs",
                "fsync calls on WAL segments",
                w.fsyncs,
            )?;
            counter_f64(
                &mut enc,
                "annals_wal_fsync_duration_seconds",
                "Time spent in fsync calls on WAL segments",
                w.fsync_duration.as_secs_f64(),
            )?;
        }
        let c = self.db.compaction_totals();
        counter(
            &mut enc,
            "annals_compactions",
            "Compaction runs (head, blocks, retention)",
            c.runs,
        )?;
        counter(
            &mut enc,
            "annals_compactions_failed",
            "Compaction runs that failed",
            c.failed,
        )?;
        counter_f64(
            &mut enc,
            "annals_compaction_duration_seconds",
            "Time spent in compaction runs",
            c.duration.as_secs_f64(),
        )?;
        counter(
            &mut enc,
            "annals_compaction_head_blocks_written",
            "Blocks written from the head",
            c.head_blocks_written,
        )?;
        counter(
            &mut enc,
            "annals_compaction_merged_blocks_written",
            "Blocks written by merging blocks",
            c.merged_blocks_written,
        )?;
        counter(
            &mut enc,
            "annals_retention_blocks_deleted",
            "Blocks deleted by retention",
            c.blocks_deleted_by_retention,
        )?;
        counter(
            &mut enc,
            "annals_wal_checkpoints",
            "WAL checkpoints written",
            c.checkpoints,
        )?;
        gauge(
            &mut enc,
            "annals_process_start_time_seconds",
            "Start time of the server since the Unix epoch",
            self.started_unix,
        )?;
        gauge(
            &mut enc,
            "annals_uptime_seconds",
            "Seconds since the server started",
            self.start.elapsed().as_secs_f64(),
        )?;
        Ok(())
    }
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: f64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    let m = enc.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    let m = enc.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

fn counter_f64(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: f64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    let m = enc.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

/// Latency buckets from 1 ms to about 66 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 9))
}

impl Metrics {
    /// Metrics of a server over `db`.
    pub fn new(db: Db) -> Metrics {
        let mut registry = Registry::default();
        let http_requests = Family::<HandlerLabels, Counter>::default();
        registry.register(
            "annals_http_requests",
            "HTTP requests by handler and status code",
            http_requests.clone(),
        );
        let http_duration: Family<HandlerOnly, Histogram> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "annals_http_request_duration_seconds",
            "HTTP request latency by handler",
            http_duration.clone(),
        );
        let write_samples = Family::<ResultLabels, Counter>::default();
        registry.register(
            "annals_remote_write_samples",
            "Samples received by remote write, by result",
            write_samples.clone(),
        );
        let write_metadata = Counter::default();
        registry.register(
            "annals_remote_write_metadata",
            "Metric metadata entries received by remote write",
            write_metadata.clone(),
        );
        let read_queries = Counter::default();
        registry.register(
            "annals_remote_read_queries",
            "Remote-read queries answered",
            read_queries.clone(),
        );
        let read_samples = Counter::default();
        registry.register(
            "annals_remote_read_samples",
            "Samples returned in SAMPLES remote-read responses",
            read_samples.clone(),
        );
        let read_chunks = Counter::default();
        registry.register(
            "annals_remote_read_chunks",
            "Chunks streamed in STREAMED_XOR_CHUNKS remote-read responses",
            read_chunks.clone(),
        );
        let queries = Family::<ResultLabels, Counter>::default();
        registry.register(
            "annals_queries",
            "PromQL queries by result",
            queries.clone(),
        );
        let query_duration = latency_histogram();
        registry.register(
            "annals_query_duration_seconds",
            "PromQL query latency",
            query_duration.clone(),
        );
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        registry.register_collector(Box::new(DbCollector {
            db,
            start: Instant::now(),
            started_unix,
        }));
        Metrics {
            registry,
            http_requests,
            http_duration,
            write_samples,
            write_metadata,
            read_queries,
            read_samples,
            read_chunks,
            queries,
            query_duration,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
