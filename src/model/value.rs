//! A sample value of any type a series stores: a float or a native histogram.

use super::histogram::{FloatHistogram, Histogram};

/// One stored value: what [`Series::values`](crate::Series::values) yields with its time.
///
/// A series may change type over time (Prometheus keeps each chunk to one type), so values of
/// one series can be of several kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A float sample (XOR chunks). Stale markers keep their NaN bits.
    Float(f64),
    /// A native histogram with integer counts (histogram chunks, encoding 2).
    Histogram(Histogram),
    /// A native histogram with float counts (float histogram chunks, encoding 3).
    FloatHistogram(FloatHistogram),
}

impl Value {
    /// Whether the value is a stale marker (float, or histogram whose sum is the stale NaN).
    pub fn is_stale(&self) -> bool {
        match self {
            Value::Float(v) => super::is_stale_marker(*v),
            Value::Histogram(h) => h.is_stale(),
            Value::FloatHistogram(h) => h.is_stale(),
        }
    }

    /// The float, if this is a float sample.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// 0 for floats, 1 for integer histograms, 2 for float histograms: among values at one
    /// timestamp (overlapping sources), the lowest rank is kept.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Value::Float(_) => 0,
            Value::Histogram(_) => 1,
            Value::FloatHistogram(_) => 2,
        }
    }
}
