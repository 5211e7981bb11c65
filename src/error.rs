//! The one error type of the crate and the structured reasons it carries. A leaf: it names no
//! other module of the crate.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout annals.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in annals.
///
/// Callers can tell the rejection of a single sample (`OutOfOrderSample`, `DuplicateSample`,
/// `OutOfBounds`, `TooFarInFuture`) apart from bad input (`InvalidLabels`, `InvalidMatcher`), damaged files
/// (`Corruption`) and failures of the environment (`Io`, `Locked`, `Closed`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A label set was rejected; `reason` names the problem.
    #[error("invalid labels: {reason}")]
    InvalidLabels {
        /// What is wrong with the label set.
        reason: String,
    },

    /// A new series breaks Prometheus 2.x's name rules, which
    /// [`Options::prometheus_name_rules`](crate::Options::prometheus_name_rules) enforces.
    #[error(
        "{reason}: with Options::prometheus_name_rules, label names must match \
         [a-zA-Z_][a-zA-Z0-9_]* and must not start with \"__\" (reserved, except __name__), \
         and metric names must match [a-zA-Z_:][a-zA-Z0-9_:]*; rename it, or turn the rules off"
    )]
    InvalidLabelName {
        /// The offending label name, or the metric name (the value of `__name__`).
        name: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// A label matcher or a series selector could not be parsed or compiled.
    #[error("invalid matcher: {reason}")]
    InvalidMatcher {
        /// What is wrong with the matcher.
        reason: String,
    },

    /// The sample is older than the newest sample of its series: the newest committed one,
    /// or the newest one the same appender holds for it.
    #[error(
        "out of order sample: timestamp {timestamp} is older than the series' last sample at \
         {last_timestamp}; samples of one series must be appended in time order"
    )]
    OutOfOrderSample {
        /// Timestamp of the rejected sample (ms).
        timestamp: i64,
        /// Timestamp of the newest sample of the series before it (ms): committed, or held
        /// by the same appender.
        last_timestamp: i64,
    },

    /// A sample with the same timestamp but a different value exists already (committed, or
    /// held by the same appender).
    #[error(
        "duplicate sample for timestamp {timestamp} with a different value; a series holds one \
         value per timestamp"
    )]
    DuplicateSample {
        /// The timestamp that already holds another value (ms).
        timestamp: i64,
    },

    /// A native histogram that Prometheus 2.42 would not store (`ValidateHistogram`): its
    /// spans and buckets disagree, or its counts are inconsistent.
    #[error("invalid histogram: {0}")]
    InvalidHistogram(#[from] crate::model::histogram::HistogramError),

    /// The sample is older than the head's appendable window.
    #[error(
        "out of bounds: timestamp {timestamp} is older than the oldest appendable time \
         {min_valid_time}"
    )]
    OutOfBounds {
        /// Timestamp of the rejected sample (ms).
        timestamp: i64,
        /// The oldest timestamp the head accepts now (ms).
        min_valid_time: i64,
    },

    /// A commit failed whole, storing nothing: one of its samples lies in a range a head
    /// compaction persisted while the appender was open, after waiting
    /// [`Options::compaction_appender_wait`](crate::Options::compaction_appender_wait) for it
    /// to commit. Appenders that commit promptly never see this.
    #[error(
        "commit out of bounds: timestamp {timestamp} lies before {min_valid_time}, persisted \
         by a head compaction while the appender stayed open; nothing of the commit was stored"
    )]
    CommitOutOfBounds {
        /// Timestamp of the oldest sample of the commit (ms).
        timestamp: i64,
        /// Where the head starts now; older data is in blocks (ms).
        min_valid_time: i64,
    },

    /// The sample is further ahead of the wall clock than
    /// [`Options::max_future_ms`](crate::Options::max_future_ms) allows.
    #[error(
        "too far in the future: timestamp {timestamp} is more than {max_future_ms} ms ahead of \
         the wall clock (newest acceptable time {max_valid_time}; Options::max_future_ms)"
    )]
    TooFarInFuture {
        /// Timestamp of the rejected sample (ms).
        timestamp: i64,
        /// The newest timestamp the head accepted when the sample was appended (ms).
        max_valid_time: i64,
        /// The bound, `Options::max_future_ms`.
        max_future_ms: i64,
    },

    /// A limit was exceeded: one of [`Options`](crate::Options) (label lengths, label count,
    /// series count) or the head's capacity of series references, when a series is created
    /// (nothing of it was created; the appender stays usable), or a size the on-disk format
    /// can represent, when a block is written (the block is not written).
    #[error("limit exceeded: {reason}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The limit's value and what exceeded it.
        reason: String,
    },

    /// Bytes read from disk are not what the format allows.
    #[error("corruption in {}{}: {reason}", file.display(), fmt_offset(*offset))]
    Corruption {
        /// The file (or directory) holding the damaged bytes.
        file: PathBuf,
        /// Byte offset of the damage within the file, when known.
        offset: Option<u64>,
        /// What was expected and what was found.
        reason: String,
    },

    /// The data uses a feature of the format that annals does not implement (for example a
    /// zstd-compressed WAL record). Unlike `Corruption`, the bytes may be valid: do not repair.
    #[error("unsupported data in {}{}: {reason}", file.display(), fmt_offset(*offset))]
    Unsupported {
        /// The file holding the data.
        file: PathBuf,
        /// Byte offset of the data within the file, when known.
        offset: Option<u64>,
        /// Which feature is missing.
        reason: String,
    },

    /// An operating-system I/O call failed.
    #[error("I/O error on {}: {source}{}", path.display(), disk_full_hint(source))]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Another process holds the directory's lock file (an exclusive `flock` on
    /// `<dir>/lock`): another annals process, or a Prometheus that takes a lock file. A
    /// Prometheus that takes none (2.42 as packaged here) is found by
    /// [`Error::PrometheusRunning`] instead, and only when it is already running: see
    /// [`Db::open`](crate::Db::open) for what is and is not excluded.
    #[error(
        "directory {} is locked by another process (an flock on {}): close the other annals \
         or Prometheus process using it, or open it with Db::open_read_only to read it \
         meanwhile",
        dir.display(),
        dir.join("lock").display()
    )]
    Locked {
        /// The locked data directory.
        dir: PathBuf,
    },

    /// The directory is already open read-write by a [`Db`](crate::Db) of this process.
    #[error(
        "directory {} is already open in this process: clone the open Db (clones share one \
         database) instead of opening it again, or close it first",
        dir.display()
    )]
    AlreadyOpen {
        /// The data directory.
        dir: PathBuf,
    },

    /// A live Prometheus server (or another process that is not annals) is writing to the
    /// directory: it holds the directory's `queries.active` or a WAL segment open for writing
    /// (found through `/proc` on Linux). Opening it read-write would corrupt both.
    #[error(
        "directory {} is in use by process {pid} ({process}), which holds {} open: stop it \
         before opening the directory read-write, or open it with Db::open_read_only to read \
         it meanwhile",
        dir.display(),
        file.display()
    )]
    PrometheusRunning {
        /// The data directory.
        dir: PathBuf,
        /// The process id of the Prometheus.
        pid: u32,
        /// Its command name (`/proc/<pid>/comm`).
        process: String,
        /// The file of the directory it holds open or mapped.
        file: PathBuf,
    },

    /// A path that must be a directory (the data directory, its `wal/` or `chunks_head/`) is
    /// a file.
    #[error(
        "{} is not a directory: a database is a directory (holding wal/, chunks_head/ and one \
         directory per block); pass a directory, or move the file out of the way",
        path.display()
    )]
    NotADirectory {
        /// The path that is not a directory.
        path: PathBuf,
    },

    /// The data directory cannot be written (a read-only file system, or no permission), so
    /// it cannot be opened read-write.
    #[error(
        "cannot open {} for writing ({source}): to read it, open it with Db::open_read_only, \
         which writes nothing",
        dir.display()
    )]
    NotWritable {
        /// The data directory.
        dir: PathBuf,
        /// The error of the first write (creating the lock file or a directory).
        #[source]
        source: io::Error,
    },

    /// The database was opened read-only.
    #[error("the database is open read-only; open it with Db::open to write")]
    ReadOnly,

    /// The database, appender or querier was already closed.
    #[error("{0} is closed")]
    Closed(&'static str),

    /// An argument outside what the call accepts.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Series, symbols or chunks handed to an index or block writer break the ordering rules
    /// of the format (brief §1.4, §1.7); nothing of the rejected series was written.
    #[error("invalid index input: {0}")]
    InvalidIndexInput(#[from] InputError),

    /// An internal invariant of annals does not hold: a bug. Nothing on disk was changed by
    /// the failed call; please report the message.
    #[error("internal error (a bug in annals, please report it): {0}")]
    Internal(String),

    /// `meta.json` has a `version` other than 1 (and other than 2, see
    /// [`Error::BadIndexVersionBlock`]).
    #[error("unsupported meta.json version {version} in {}: only version 1 exists", file.display())]
    UnsupportedMetaVersion {
        /// The `meta.json` file.
        file: PathBuf,
        /// The version it declares.
        version: i64,
    },

    /// `meta.json` says version 2: a block written by Prometheus 2.1, whose index header
    /// carries a wrong version byte (brief §1.3). It must be repaired (index version byte set
    /// to 2, meta version back to 1) before it can be read.
    #[error(
        "{} has meta.json version 2, the Prometheus 2.1 bad-index-version bug: the block \
         must be repaired before use",
        dir.display()
    )]
    BadIndexVersionBlock {
        /// The block directory.
        dir: PathBuf,
    },
}

/// Why an index or block writer refused its input. The writer is left as it was before the
/// rejected call, so the caller may skip the offending series and go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Symbols must be strictly increasing byte-wise.
    #[error("symbol {symbol:?} does not sort after the previous symbol {previous:?}")]
    SymbolOutOfOrder {
        /// The offending symbol.
        symbol: String,
        /// The symbol before it.
        previous: String,
    },
    /// Series must be added in strictly increasing label order (`labels.Compare`).
    #[error("series {series} does not sort after the previous series {previous}")]
    SeriesOutOfOrder {
        /// The rejected series.
        series: String,
        /// The series added before it.
        previous: String,
    },
    /// A label name appears twice in one series.
    #[error("series {series} has label name {name:?} more than once")]
    DuplicateLabelName {
        /// The rejected series.
        series: String,
        /// The repeated name.
        name: String,
    },
    /// Labels of a series must be sorted by name.
    #[error("labels of series {series} are not sorted by name")]
    UnsortedLabels {
        /// The rejected series.
        series: String,
    },
    /// A label with an empty name or value, or a series without labels.
    #[error("series {series} has an empty label name or value, or no labels at all")]
    EmptyLabel {
        /// The rejected series.
        series: String,
    },
    /// A label name or value is not in the symbol table given at creation.
    #[error("symbol {symbol:?} of series {series} is not in the symbol table")]
    MissingSymbol {
        /// The series that uses it.
        series: String,
        /// The missing string.
        symbol: String,
    },
    /// Chunk references must never decrease across the whole index (§1.4).
    #[error("chunk reference {chunk_ref} of series {series} is below the previous one {previous}")]
    ChunkRefOutOfOrder {
        /// The rejected series.
        series: String,
        /// The offending reference.
        chunk_ref: u64,
        /// The reference before it.
        previous: u64,
    },
    /// Chunks of a series must be in time order and must not overlap.
    #[error(
        "chunk of series {series} starting at {min_time} does not start after the previous \
         chunk's end {previous_max_time}"
    )]
    ChunkTimeOverlap {
        /// The rejected series.
        series: String,
        /// Start of the offending chunk.
        min_time: i64,
        /// End of the chunk before it.
        previous_max_time: i64,
    },
    /// A chunk ends before it starts.
    #[error("chunk of series {series} ends at {max_time}, before its start {min_time}")]
    ChunkTimeInverted {
        /// The rejected series.
        series: String,
        /// Start of the chunk.
        min_time: i64,
        /// End of the chunk.
        max_time: i64,
    },
    /// A chunk holds no samples (blocks never contain empty chunks).
    #[error("a chunk of series {series} holds no samples")]
    EmptyChunk {
        /// The rejected series.
        series: String,
    },
    /// A chunk lies outside the half-open time range of the block being written.
    #[error(
        "chunk [{min_time}, {max_time}] of series {series} lies outside the block range \
         [{block_min_time}, {block_max_time})"
    )]
    ChunkOutsideBlock {
        /// The rejected series.
        series: String,
        /// Start of the chunk.
        min_time: i64,
        /// End of the chunk.
        max_time: i64,
        /// Block start, inclusive.
        block_min_time: i64,
        /// Block end, exclusive.
        block_max_time: i64,
    },
}

/// The limits [`Error::LimitExceeded`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Options::max_label_name_length`](crate::Options::max_label_name_length).
    LabelNameLength,
    /// [`Options::max_label_value_length`](crate::Options::max_label_value_length).
    LabelValueLength,
    /// [`Options::max_labels_per_series`](crate::Options::max_labels_per_series).
    LabelsPerSeries,
    /// [`Options::max_series`](crate::Options::max_series).
    Series,
    /// The head's series references are exhausted (2^30 series created since open).
    SeriesRefs,
    /// A count or size the on-disk format cannot represent (brief §1.4, §1.7).
    Format,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::LabelNameLength => "max_label_name_length",
            Limit::LabelValueLength => "max_label_value_length",
            Limit::LabelsPerSeries => "max_labels_per_series",
            Limit::Series => "max_series",
            Limit::SeriesRefs => "series references",
            Limit::Format => "on-disk format size",
        })
    }
}

fn fmt_offset(offset: Option<u64>) -> String {
    offset
        .map(|o| format!(" at offset {o}"))
        .unwrap_or_default()
}

fn disk_full_hint(err: &io::Error) -> &'static str {
    if err.kind() == io::ErrorKind::StorageFull {
        " (the disk is full: free space and retry)"
    } else {
        ""
    }
}

impl Error {
    /// An I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Corruption found in `file` at `offset`.
    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: impl Into<Option<u64>>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            file: file.into(),
            offset: offset.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn limit(limit: Limit, reason: impl Into<String>) -> Self {
        Error::LimitExceeded {
            limit,
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_labels(reason: impl Into<String>) -> Self {
        Error::InvalidLabels {
            reason: reason.into(),
        }
    }

    /// Whether this is an I/O error because the disk (or a quota) is full (ENOSPC). The
    /// failed call changed nothing visible; writes may succeed again once space is freed,
    /// except for a WAL write, after which the database must be reopened.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull)
    }

    /// Whether this error rejects a single sample and leaves the appender usable.
    pub fn is_sample_rejection(&self) -> bool {
        matches!(
            self,
            Error::OutOfOrderSample { .. }
                | Error::DuplicateSample { .. }
                | Error::OutOfBounds { .. }
                | Error::TooFarInFuture { .. }
                | Error::InvalidHistogram(_)
        )
    }
}

/// Attaches a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
