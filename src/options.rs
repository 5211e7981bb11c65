//! Database options with their documented defaults.

use std::time::Duration;

pub use crate::wal::Compression as WalCompression;

/// Two hours in milliseconds: Prometheus's default block range.
pub const DEFAULT_BLOCK_RANGE_MS: i64 = 2 * 60 * 60 * 1000;

/// How a [`Db`](crate::Db) is configured. Build with `Options::default()` and adjust fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Length of the head's chunk range and of level-1 blocks, in ms. Default 2 h.
    ///
    /// Head chunks never cross a multiple of this range, and the head accepts samples no older
    /// than half a range behind its newest sample (Prometheus's appendable window).
    pub block_range_ms: i64,
    /// Samples a head chunk aims to hold before it is cut. Default 120, as in Prometheus.
    pub samples_per_chunk: usize,
    /// When commits reach stable storage. Default `WalSync::Interval(1 s)`.
    pub wal_sync: WalSync,
    /// Compression of WAL records. Default snappy, as Prometheus 2.20+ writes.
    pub wal_compression: WalCompression,
    /// Maximum size of a WAL segment file; a positive multiple of 32 KiB. Default 128 MiB.
    pub wal_segment_size: u64,
    /// What to do with a WAL damaged before its last segment. Default
    /// [`Recovery::TruncateTornTail`].
    pub wal_recovery: Recovery,
    /// Delete blocks whose max time is more than this behind the newest block's (ms), as
    /// Prometheus's time retention does. Default 15 days; `None` keeps everything.
    pub retention_ms: Option<i64>,
    /// Delete the oldest blocks while blocks and WAL together exceed this many bytes.
    /// Default `None`.
    pub max_bytes: Option<u64>,
    /// Largest block range leveled compaction builds (ms); ranges grow from `block_range_ms`
    /// by ×3. Default `None`: as the Prometheus server, min(31 days, retention / 10), and no
    /// merging beyond `block_range_ms` without retention.
    pub max_block_range_ms: Option<i64>,
    /// Run compaction (head into blocks, WAL checkpoints, retention) in a background thread,
    /// woken when the head spans more than 1.5 block ranges and every minute. Default true;
    /// [`Db::compact`](crate::Db::compact) runs it on demand either way.
    pub compaction: bool,
    /// Open the database even if some blocks cannot be read: they are skipped, logged and
    /// listed by [`Db::unreadable_blocks`](crate::Db::unreadable_blocks), and left on disk
    /// untouched. Default false: an unreadable block fails the open with an error naming it.
    pub skip_unreadable_blocks: bool,
    /// Longest label name, in bytes, a new series may have. Default 1 KiB (Prometheus has no
    /// engine limit; real names are identifiers of tens of bytes). `None`: unlimited.
    pub max_label_name_length: Option<usize>,
    /// Longest label value, in bytes, a new series may have. Default 64 KiB: far above real
    /// values (paths, URLs) and small enough that a runaway value cannot bloat the WAL, the
    /// symbol table and every block index it lands in. `None`: unlimited.
    pub max_label_value_length: Option<usize>,
    /// Most labels a new series may have. Default 512 (real series have tens). `None`:
    /// unlimited.
    pub max_labels_per_series: Option<usize>,
    /// Enforce Prometheus 2.x's name rules on new series: label names `[a-zA-Z_][a-zA-Z0-9_]*`
    /// not starting with `__` (reserved for internal use), except `__name__`, and metric names
    /// (the value of `__name__`) `[a-zA-Z_:][a-zA-Z0-9_:]*`. A series breaking them is
    /// refused with [`Error::InvalidLabelName`](crate::Error::InvalidLabelName) at `append`,
    /// and nothing of it is created. Default false: the engine stores any label set
    /// [`Labels`](crate::Labels) accepts (any non-empty UTF-8 name, any UTF-8 value), as
    /// Prometheus's TSDB does; servers that take data from the network turn this on. Series
    /// already in the WAL or in blocks are never refused, whatever this says.
    pub prometheus_name_rules: bool,
    /// Most series the head may hold; creating one more fails. Default `None` (unlimited), as
    /// in Prometheus: memory is the embedder's budget to set.
    pub max_series: Option<u64>,
    /// How far ahead of the wall clock (ms) a sample's timestamp may be; a later one is
    /// rejected by `Appender::append` with [`Error::TooFarInFuture`](crate::Error::TooFarInFuture).
    /// Default `None` (no bound), as in Prometheus's TSDB. Without a bound, one sample far in
    /// the future (say at `i64::MAX`) moves the head's appendable window with it, and every
    /// realistic sample after it is [`OutOfBounds`](crate::Error::OutOfBounds) until that
    /// sample has been compacted away; servers that take samples from the network should set
    /// a bound (Prometheus's remote-write receivers commonly use minutes to an hour). The
    /// clock is read when an appender is created and again only for a sample past the bound
    /// then computed. Must not be negative.
    pub max_future_ms: Option<i64>,
    /// Whether [`Db::close`](crate::Db::close) writes a memory snapshot
    /// (`chunk_snapshot.NNNNNN.MMMMMMMMMM/`, Prometheus's `memory-snapshot-on-shutdown`
    /// format) from which the next open restores the head without replaying the WAL. Default
    /// true: an embedded engine restarts often, and a snapshot costs one write of the open
    /// chunks at close (a few MB for 20 k series) against re-decoding every WAL sample at
    /// open. A snapshot the WAL has moved past, or a damaged one, is ignored (the WAL is
    /// replayed in full), so turning this on never risks data.
    pub snapshot_on_close: bool,
    /// How long a head compaction waits for open appenders that accept samples in the range
    /// it is about to persist (Prometheus waits for them without limit). Appenders opened
    /// once the compaction started cannot reach into that range. An appender still open
    /// when the wait ends, that holds a sample in the range, fails its commit whole with
    /// [`Error::CommitOutOfBounds`](crate::Error::CommitOutOfBounds): no commit that
    /// returns `Ok` loses a sample to head compaction. Default 10 s.
    pub compaction_appender_wait: Duration,
    /// How far behind the head's newest sample (ms) the WAL retention floor
    /// ([`Db::set_wal_retention_floor`](crate::Db::set_wal_retention_floor)) may hold WAL
    /// segments: a segment whose samples are all older is checkpointed away despite the
    /// floor, logged and counted. Default 4 h, as Prometheus's agent
    /// (`--storage.agent.retention.max-time`); `None`: the floor holds without bound (the
    /// WAL grows while its reader is stuck).
    pub wal_retention_floor_max_lag_ms: Option<i64>,
    /// How far behind the head's newest sample (ms) a sample older than its series' newest
    /// is still accepted (Prometheus's `out_of_order_time_window`). Default 0: out-of-order
    /// samples are rejected, as in Prometheus. Accepted ones go to per-series out-of-order
    /// head chunks and the write-behind log (`wbl/`), are merged into every query and
    /// compacted into blocks that may overlap others (then merged vertically). A directory
    /// holding out-of-order data (a `wbl/`, out-of-order head chunks) is read whatever this
    /// says. Must not be negative.
    pub out_of_order_time_window: i64,
    /// Samples an out-of-order head chunk holds before it is m-mapped to `chunks_head/` and
    /// a new one started. Default 32, as Prometheus 2.42's `out_of_order_cap_max`; between 1
    /// and 255.
    pub out_of_order_cap_max: usize,
}

/// When a commit's WAL bytes are fsynced. Under every policy a commit has handed its bytes to
/// the operating system (`write(2)`) before it returns, so a crash of the process loses no
/// acknowledged commit; the policies differ in what a crash of the machine (power loss,
/// kernel panic) can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalSync {
    /// A commit returns only after its bytes are fsynced: a power loss loses no acknowledged
    /// commit. Concurrent commits share one fsync (group commit).
    EveryCommit,
    /// A background thread fsyncs the WAL at this interval: a power loss loses at most the
    /// commits of the last interval (plus the time the fsync takes).
    Interval(Duration),
    /// annals never fsyncs the open segment; segments are fsynced when completed and on
    /// close, as Prometheus does. A power loss loses whatever the OS had not written back
    /// (on Linux typically up to ~30 s of commits).
    Never,
}

/// How replay treats a damaged WAL. A damaged *last* segment (a torn or partial write from a
/// crash) is always truncated after its last intact record and the repair is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Damage before the last segment is an [`Error::Corruption`](crate::Error::Corruption):
    /// nothing is thrown away without the user's consent.
    TruncateTornTail,
    /// Damage anywhere truncates the WAL at the last intact record before it and deletes
    /// later segments, as Prometheus does; what was dropped is reported in the replay stats.
    TruncateAtCorruption,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            block_range_ms: DEFAULT_BLOCK_RANGE_MS,
            samples_per_chunk: 120,
            wal_sync: WalSync::Interval(Duration::from_secs(1)),
            wal_compression: WalCompression::Snappy,
            wal_segment_size: crate::wal::DEFAULT_SEGMENT_SIZE,
            wal_recovery: Recovery::TruncateTornTail,
            retention_ms: Some(15 * 24 * 60 * 60 * 1000),
            max_bytes: None,
            max_block_range_ms: None,
            compaction: true,
            skip_unreadable_blocks: false,
            max_label_name_length: Some(1024),
            max_label_value_length: Some(64 * 1024),
            max_labels_per_series: Some(512),
            max_series: None,
            prometheus_name_rules: false,
            max_future_ms: None,
            snapshot_on_close: true,
            compaction_appender_wait: Duration::from_secs(10),
            wal_retention_floor_max_lag_ms: Some(4 * 60 * 60 * 1000),
            out_of_order_time_window: 0,
            out_of_order_cap_max: 32,
        }
    }
}

impl Options {
    pub(crate) fn validate(&self) -> crate::error::Result<()> {
        if self.block_range_ms <= 0 {
            return Err(crate::error::Error::InvalidArgument(format!(
                "block_range_ms must be positive, got {}",
                self.block_range_ms
            )));
        }
        if !(4..=30_000).contains(&self.samples_per_chunk) {
            return Err(crate::error::Error::InvalidArgument(format!(
                "samples_per_chunk must be between 4 and 30000, got {}",
                self.samples_per_chunk
            )));
        }
        if let Some(ms) = self.max_future_ms.filter(|ms| *ms < 0) {
            return Err(crate::error::Error::InvalidArgument(format!(
                "max_future_ms must not be negative, got {ms}"
            )));
        }
        if let WalSync::Interval(d) = self.wal_sync {
            if d.is_zero() {
                return Err(crate::error::Error::InvalidArgument(
                    "WalSync::Interval needs a non-zero interval; use EveryCommit instead".into(),
                ));
            }
        }
        if let Some(lag) = self.wal_retention_floor_max_lag_ms {
            if lag < 0 {
                return Err(crate::error::Error::InvalidArgument(format!(
                    "wal_retention_floor_max_lag_ms must not be negative, got {lag}"
                )));
            }
        }
        if self.out_of_order_time_window < 0 {
            return Err(crate::error::Error::InvalidArgument(format!(
                "out_of_order_time_window must not be negative, got {}",
                self.out_of_order_time_window
            )));
        }
        if !(1..=255).contains(&self.out_of_order_cap_max) {
            return Err(crate::error::Error::InvalidArgument(format!(
                "out_of_order_cap_max must be between 1 and 255, got {}",
                self.out_of_order_cap_max
            )));
        }
        Ok(())
    }

    /// The largest range leveled compaction builds.
    pub(crate) fn max_block_range(&self) -> i64 {
        const DAYS_31: i64 = 31 * 24 * 60 * 60 * 1000;
        let derived = self
            .retention_ms
            .map_or(self.block_range_ms, |r| DAYS_31.min(r / 10));
        self.max_block_range_ms
            .unwrap_or(derived)
            .max(self.block_range_ms)
    }

    pub(crate) fn wal_options(&self) -> crate::wal::WalOptions {
        crate::wal::WalOptions {
            segment_size: self.wal_segment_size,
            compression: self.wal_compression,
        }
    }
}
