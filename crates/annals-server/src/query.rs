//! The seam between the HTTP API and a PromQL engine: `/api/v1/query` and
//! `/api/v1/query_range` parse and validate their parameters here, hand the expression to a
//! [`QueryEngine`], and render its [`Value`](crate::json::Value) or map its [`QueryError`] to
//! Prometheus's error types. Without an engine the two endpoints answer `unavailable`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::json::{ErrorType, Value};

/// Limits and controls of one evaluation.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// When the evaluation must give up with [`QueryError::Timeout`].
    pub deadline: Instant,
    /// Set when the client went away: the evaluation should stop with
    /// [`QueryError::Canceled`].
    pub cancel: Arc<AtomicBool>,
    /// Most samples the evaluation may hold in memory at once (`--query.max-samples`).
    pub max_samples: u64,
    /// How far back an instant selector looks (`--query.lookback-delta`).
    pub lookback_delta: Duration,
    /// Whether the client asked for the `stats` object (a non-empty `stats` parameter).
    pub stats: bool,
}

impl QueryOptions {
    /// Whether the evaluation should stop, and why.
    pub fn check(&self) -> Result<(), QueryError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(QueryError::Canceled("query was canceled".into()));
        }
        if Instant::now() >= self.deadline {
            return Err(QueryError::Timeout("query timed out".into()));
        }
        Ok(())
    }
}

/// Why an evaluation failed, as Prometheus's `returnAPIError` distinguishes it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// The expression does not parse, or its parameters are invalid (`bad_data`, 400).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (`execution`, 422): e.g. too many samples, many-to-many matching.
    #[error("{0}")]
    Execution(String),
    /// The deadline passed (`timeout`, 503).
    #[error("{0}")]
    Timeout(String),
    /// The client went away (`canceled`, 503).
    #[error("{0}")]
    Canceled(String),
    /// The storage failed (`internal`, 500).
    #[error("{0}")]
    Storage(String),
}

impl QueryError {
    /// The API error type of this error.
    pub fn error_type(&self) -> ErrorType {
        match self {
            QueryError::BadData(_) => ErrorType::BadData,
            QueryError::Execution(_) => ErrorType::Execution,
            QueryError::Timeout(_) => ErrorType::Timeout,
            QueryError::Canceled(_) => ErrorType::Canceled,
            QueryError::Storage(_) => ErrorType::Internal,
        }
    }
}

/// The result of an evaluation with the warnings to pass on.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// The value.
    pub value: Value,
    /// Warnings (`"warnings"` in the envelope).
    pub warnings: Vec<String>,
    /// The `stats` object, pre-rendered JSON, if the engine reports statistics and the client
    /// asked for them.
    pub stats: Option<String>,
}

/// A PromQL engine over the server's database. Calls are synchronous and may block on I/O;
/// the server runs them on the blocking thread pool.
pub trait QueryEngine: Send + Sync + 'static {
    /// Evaluates `expr` at `t` (ms).
    fn instant(&self, expr: &str, t: i64, opts: &QueryOptions) -> Result<Evaluated, QueryError>;
    /// Evaluates `expr` from `start` to `end` (ms, inclusive) every `step` ms.
    fn range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<Evaluated, QueryError>;
}
