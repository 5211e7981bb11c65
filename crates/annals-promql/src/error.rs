//! Query errors. Each says what happened as Prometheus 2.42 words it, so that a server built on
//! the engine can answer with the same message and error type.

use crate::parser::ParseError;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query does not parse or type-check (HTTP API error type `bad_data`).
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// The query or its parameters are not acceptable for this kind of query, e.g. a range
    /// vector expression in a range query (`bad_data`).
    #[error("{0}")]
    BadQuery(String),
    /// Evaluation would hold more samples in memory than `max_samples` allows (`execution`).
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// The query ran past its timeout (`timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The query was canceled through its [`CancelToken`](crate::CancelToken) (`canceled`).
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// Evaluation failed: a many-to-many match, duplicate output series, a bad function
    /// argument... (`execution`).
    #[error("{0}")]
    Execution(String),
    /// Reading the database failed (`internal`).
    #[error("expanding series: {0}")]
    Storage(#[from] annals::Error),
}

impl Error {
    /// The HTTP API's error type for this error: `bad_data`, `execution`, `timeout`,
    /// `canceled` or `internal`.
    pub fn api_type(&self) -> &'static str {
        match self {
            Error::Parse(_) | Error::BadQuery(_) => "bad_data",
            Error::TooManySamples(_) | Error::Execution(_) => "execution",
            Error::Timeout(_) => "timeout",
            Error::Canceled(_) => "canceled",
            Error::Storage(_) => "internal",
        }
    }
}

/// Result of the engine's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn exec(msg: impl Into<String>) -> Error {
    Error::Execution(msg.into())
}
