//! The queue's own metrics, named as Prometheus 2.42 names its remote-storage metrics where
//! they mean the same (`prometheus_remote_storage_*`, labels `remote_name` and `url`), so
//! existing dashboards work; `annals_remote_*` for what Prometheus has no name for.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Metrics of one queue.
#[derive(Clone)]
pub struct QueueMetrics {
    /// Samples read from the WAL and queued.
    pub samples_in: Counter,
    /// Samples acknowledged by the remote.
    pub samples_total: Counter,
    /// Samples the remote rejected (4xx): dropped.
    pub samples_failed: Counter,
    /// Samples in attempts that failed and were retried.
    pub samples_retried: Counter,
    /// Samples dropped by `write_relabel_configs`.
    pub samples_dropped: Counter,
    /// Samples dropped because they were older than `max_lag`.
    pub lost_max_lag: Counter,
    /// Samples whose series record was never seen.
    pub lost_unknown_series: Counter,
    /// WAL segments deleted before they were read.
    pub lost_segments: Counter,
    /// WAL segments with damage (the rest of each was skipped).
    pub corrupt_segments: Counter,
    /// Compressed bytes acknowledged.
    pub bytes_total: Counter,
    /// Times the WAL reader waited for room in a shard.
    pub enqueue_retries: Counter,
    /// Samples queued in shards.
    pub pending: Gauge,
    /// Shards running.
    pub shards: Gauge,
    /// Shards the last computation asked for.
    pub desired_shards: Gauge,
    /// `min_shards`.
    pub min_shards: Gauge,
    /// `max_shards`.
    pub max_shards: Gauge,
    /// Newest timestamp read from the WAL, in seconds.
    pub highest_timestamp: Gauge<f64, AtomicU64>,
    /// Newest timestamp acknowledged, in seconds.
    pub highest_sent_timestamp: Gauge<f64, AtomicU64>,
    /// Duration of send attempts.
    pub sent_batch_duration: Histogram,
}

impl QueueMetrics {
    /// Creates the metrics and registers them in `registry` (which should carry the queue's
    /// `remote_name` and `url` labels).
    pub fn new(registry: &mut Registry) -> QueueMetrics {
        let m = QueueMetrics {
            samples_in: Counter::default(),
            samples_total: Counter::default(),
            samples_failed: Counter::default(),
            samples_retried: Counter::default(),
            samples_dropped: Counter::default(),
            lost_max_lag: Counter::default(),
            lost_unknown_series: Counter::default(),
            lost_segments: Counter::default(),
            corrupt_segments: Counter::default(),
            bytes_total: Counter::default(),
            enqueue_retries: Counter::default(),
            pending: Gauge::<i64, AtomicI64>::default(),
            shards: Gauge::<i64, AtomicI64>::default(),
            desired_shards: Gauge::<i64, AtomicI64>::default(),
            min_shards: Gauge::<i64, AtomicI64>::default(),
            max_shards: Gauge::<i64, AtomicI64>::default(),
            highest_timestamp: Gauge::default(),
            highest_sent_timestamp: Gauge::default(),
            sent_batch_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
        };
        let p = "prometheus_remote_storage_";
        let r = registry;
        r.register(
            format!("{p}samples_in"),
            "Samples read from the WAL and queued.",
            m.samples_in.clone(),
        );
        r.register(
            format!("{p}samples"),
            "Samples sent to the remote and acknowledged.",
            m.samples_total.clone(),
        );
        r.register(
            format!("{p}samples_failed"),
            "Samples the remote rejected (non-retryable errors).",
            m.samples_failed.clone(),
        );
        r.register(
            format!("{p}samples_retried"),
            "Samples in sends that failed and were retried.",
            m.samples_retried.clone(),
        );
        r.register(
            format!("{p}samples_dropped"),
            "Samples dropped by write relabeling.",
            m.samples_dropped.clone(),
        );
        r.register(
            format!("{p}bytes"),
            "Compressed request bytes acknowledged.",
            m.bytes_total.clone(),
        );
        r.register(
            format!("{p}enqueue_retries"),
            "Times the WAL reader waited for room in a full shard.",
            m.enqueue_retries.clone(),
        );
        r.register(
            format!("{p}samples_pending"),
            "Samples queued in shards.",
            m.pending.clone(),
        );
        r.register(format!("{p}shards"), "Shards running.", m.shards.clone());
        r.register(
            format!("{p}shards_desired"),
            "Shards the last computation asked for.",
            m.desired_shards.clone(),
        );
        r.register(
            format!("{p}shards_min"),
            "Fewest shards.",
            m.min_shards.clone(),
        );
        r.register(
            format!("{p}shards_max"),
            "Most shards.",
            m.max_shards.clone(),
        );
        r.register(
            format!("{p}highest_timestamp_in_seconds"),
            "Newest sample timestamp read from the WAL.",
            m.highest_timestamp.clone(),
        );
        r.register(
            format!("{p}queue_highest_sent_timestamp_seconds"),
            "Newest sample timestamp acknowledged.",
            m.highest_sent_timestamp.clone(),
        );
        r.register(
            format!("{p}sent_batch_duration_seconds"),
            "Duration of send attempts.",
            m.sent_batch_duration.clone(),
        );
        r.register(
            "annals_remote_samples_lost_max_lag",
            "Samples dropped unsent because they were older than max_lag.",
            m.lost_max_lag.clone(),
        );
        r.register(
            "annals_remote_samples_lost_unknown_series",
            "Samples whose series record was never read.",
            m.lost_unknown_series.clone(),
        );
        r.register(
            "annals_remote_segments_lost",
            "WAL segments deleted before they were read.",
            m.lost_segments.clone(),
        );
        r.register(
            "annals_remote_segments_corrupt",
            "WAL segments whose rest was skipped because of damage.",
            m.corrupt_segments.clone(),
        );
        m
    }
}
