//! The shared vocabulary: label sets, matchers, samples and series references.

mod fast_regex;
pub mod histogram;
mod labels;
mod matcher;
#[cfg(test)]
pub(crate) use matcher::test_cases;
mod parse;
mod re2;
mod value;

pub(crate) use labels::{write_quoted, SortedLabelsWriter};
pub use labels::{Iter as LabelsIter, Label, Labels, LabelsBuilder, METRIC_NAME};
pub(crate) use matcher::check_matchers;
pub use matcher::{MatchType, Matcher};
pub(crate) use parse::write_label_name;
pub use parse::{
    display_selector, is_valid_label_name, is_valid_metric_name, parse_selector, SelectorDisplay,
};
pub use re2::GoRegex;
pub use value::Value;

/// Bit pattern of Prometheus's stale marker (`StaleNaN`), written when a series disappears.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker as an `f64`. Compare with [`is_stale_marker`], never with `==`.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is exactly the stale marker (bitwise).
pub fn is_stale_marker(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: a millisecond timestamp and a value.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value; NaN payloads (stale markers) are preserved bit for bit.
    pub v: f64,
}

impl PartialEq for Sample {
    /// Bitwise on the value, as the storage layer compares samples.
    fn eq(&self, o: &Sample) -> bool {
        self.t == o.t && self.v.to_bits() == o.v.to_bits()
    }
}

impl Eq for Sample {}

/// Reference to a series of the head, returned by [`Appender::append`](crate::Appender::append)
/// and accepted back as a hint that skips the label lookup.
///
/// Refs are assigned from 1 upwards and are stable for the life of the series in the head
/// (they are the series refs of the WAL, §1.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesRef(pub(crate) u64);

impl SeriesRef {
    /// The raw reference number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// A reference from its raw number (as stored by the caller). Unknown refs are reported
    /// when used.
    pub fn from_raw(v: u64) -> Self {
        SeriesRef(v)
    }
}
