//! Query results: scalars, strings, instant vectors and matrices, as Prometheus returns them.

use annals::Labels;

/// Bit pattern of Prometheus's stale marker (`value.StaleNaN`): a sample with this value
/// ends its series at once.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is the stale marker (compared bitwise; other NaNs are ordinary values).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A value at a time (milliseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels.
    pub labels: Labels,
    /// Milliseconds since the Unix epoch (the evaluation time for instant queries).
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// A series of a matrix: its labels and its points, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// The points, oldest first.
    pub points: Vec<Point>,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A float at a time.
    Scalar {
        /// Milliseconds since the Unix epoch.
        t: i64,
        /// The value.
        v: f64,
    },
    /// A string at a time.
    String {
        /// Milliseconds since the Unix epoch.
        t: i64,
        /// The value.
        v: String,
    },
    /// An instant vector: one sample per series, all at the evaluation time.
    Vector(Vec<Sample>),
    /// A matrix: the result of a range query (series sorted by labels), or of an instant query
    /// of a range vector.
    Matrix(Vec<Series>),
}

impl Value {
    /// The result type as the HTTP API names it (`scalar`, `string`, `vector`, `matrix`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}
