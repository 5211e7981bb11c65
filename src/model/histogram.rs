//! Native (sparse) histograms as Prometheus 2.42 models them (`model/histogram`): an integer
//! [`Histogram`] (counts as `u64`, buckets delta-encoded) and a [`FloatHistogram`] (counts as
//! `f64`, buckets absolute), both with a schema, a zero bucket, spans and a counter-reset hint.
//!
//! Bucket `i` of schema `s` covers `(2^((i-1)/2^s), 2^(i/2^s)]` for positive values and the
//! mirror image for negative ones; spans say which indices are present (the first span's offset
//! is the first index, later offsets are gaps). Only the vocabulary lives here: the chunk
//! encodings are in [`crate::chunkenc`], the WAL records in [`crate::wal`].

use std::fmt;

use super::STALE_NAN_BITS;

/// A run of consecutive buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// For the first span, the index of its first bucket (may be negative); for later spans,
    /// the number of absent buckets since the previous span (never negative in a valid
    /// histogram).
    pub offset: i32,
    /// Number of buckets in the span (0 is allowed and means nothing).
    pub length: u32,
}

impl Span {
    /// A span.
    pub const fn new(offset: i32, length: u32) -> Span {
        Span { offset, length }
    }
}

/// What a histogram says about counter resets (`histogram.CounterResetHint`, the byte of WAL
/// histogram records and of remote-write's `ResetHint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum CounterResetHint {
    /// Whether this histogram follows a counter reset must be found out by comparing it with
    /// the previous one.
    #[default]
    Unknown = 0,
    /// A counter reset happened right before this histogram.
    CounterReset = 1,
    /// No counter reset happened since the previous histogram.
    NotCounterReset = 2,
    /// A gauge histogram: counts go up and down, counter resets do not apply.
    Gauge = 3,
}

impl CounterResetHint {
    /// The hint for its byte; `None` for values Prometheus 2.x does not define.
    pub fn from_u8(b: u8) -> Option<CounterResetHint> {
        match b {
            0 => Some(CounterResetHint::Unknown),
            1 => Some(CounterResetHint::CounterReset),
            2 => Some(CounterResetHint::NotCounterReset),
            3 => Some(CounterResetHint::Gauge),
            _ => None,
        }
    }

    /// The byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Which bucket side a validation error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Buckets of positive values.
    Positive,
    /// Buckets of negative values.
    Negative,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Positive => "positive side",
            Side::Negative => "negative side",
        })
    }
}

/// Why a histogram is not valid (Prometheus 2.42's `ValidateHistogram` errors; it rejects the
/// same histograms, in the same order of checks).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HistogramError {
    /// The spans of one side name a different number of buckets than that side holds.
    #[error("{side}: spans need {spans} buckets, have {buckets} buckets: histogram spans specify different number of buckets than provided")]
    SpansBucketsMismatch {
        /// The side.
        side: Side,
        /// Buckets the spans name.
        spans: u64,
        /// Buckets present.
        buckets: usize,
    },
    /// A span after the first has a negative offset.
    #[error("{side}: span number {number} with offset {offset}: histogram has a span whose offset is negative")]
    SpanNegativeOffset {
        /// The side.
        side: Side,
        /// 1-based number of the span.
        number: usize,
        /// Its offset.
        offset: i32,
    },
    /// A bucket's (absolute) count is negative.
    #[error("{side}: bucket number {number} has observation count of {count}: histogram has a bucket whose observation count is negative")]
    NegativeBucketCount {
        /// The side.
        side: Side,
        /// 1-based number of the bucket.
        number: usize,
        /// Its count.
        count: f64,
    },
    /// The buckets hold more observations than the histogram's count.
    #[error("{in_buckets} observations found in buckets, but the Count field is {count}: histogram's observation count should be at least the number of observations found in the buckets")]
    CountNotBigEnough {
        /// Observations in the buckets (zero bucket excluded, as in Prometheus 2.42).
        in_buckets: f64,
        /// The count field.
        count: f64,
    },
}

/// A native histogram with integer counts (`histogram.Histogram`).
///
/// `positive_buckets` and `negative_buckets` are delta-encoded: the first element is the
/// count of the first bucket, each later one the difference to the previous bucket's count.
/// Equality compares floats bit for bit, so stale markers equal themselves.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Counter-reset information.
    pub counter_reset_hint: CounterResetHint,
    /// Bucket resolution: each power of two is split into `2^schema` buckets; Prometheus 2.42
    /// produces `-4..=8`.
    pub schema: i32,
    /// Half-width of the zero bucket (observations with `|v| <= zero_threshold`).
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// All observations.
    pub count: u64,
    /// Sum of observations; the stale marker (`STALE_NAN_BITS`) marks a stale sample.
    pub sum: f64,
    /// Spans of the positive buckets.
    pub positive_spans: Vec<Span>,
    /// Spans of the negative buckets.
    pub negative_spans: Vec<Span>,
    /// Positive bucket counts, delta-encoded.
    pub positive_buckets: Vec<i64>,
    /// Negative bucket counts, delta-encoded.
    pub negative_buckets: Vec<i64>,
}

/// A native histogram with float counts (`histogram.FloatHistogram`): what rates and other
/// PromQL results are, and what remote-write senders may send.
///
/// Buckets hold absolute counts. Equality compares floats bit for bit.
#[derive(Debug, Clone, Default)]
pub struct FloatHistogram {
    /// Counter-reset information.
    pub counter_reset_hint: CounterResetHint,
    /// Bucket resolution, as for [`Histogram::schema`].
    pub schema: i32,
    /// Half-width of the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: f64,
    /// All observations.
    pub count: f64,
    /// Sum of observations; the stale marker marks a stale sample.
    pub sum: f64,
    /// Spans of the positive buckets.
    pub positive_spans: Vec<Span>,
    /// Spans of the negative buckets.
    pub negative_spans: Vec<Span>,
    /// Positive bucket counts (absolute).
    pub positive_buckets: Vec<f64>,
    /// Negative bucket counts (absolute).
    pub negative_buckets: Vec<f64>,
}

/// Number of buckets the spans name (sum of lengths).
pub fn span_buckets(spans: &[Span]) -> u64 {
    spans.iter().map(|s| u64::from(s.length)).sum()
}

fn check_spans(side: Side, spans: &[Span], buckets: usize) -> Result<(), HistogramError> {
    for (n, s) in spans.iter().enumerate() {
        if n > 0 && s.offset < 0 {
            return Err(HistogramError::SpanNegativeOffset {
                side,
                number: n + 1,
                offset: s.offset,
            });
        }
    }
    let need = span_buckets(spans);
    if need != buckets as u64 {
        return Err(HistogramError::SpansBucketsMismatch {
            side,
            spans: need,
            buckets,
        });
    }
    Ok(())
}

/// The span checks of `validate`, negative side first as in Prometheus.
fn check_both_spans(
    (negative, nb): (&[Span], usize),
    (positive, pb): (&[Span], usize),
) -> Result<(), HistogramError> {
    check_spans(Side::Negative, negative, nb)?;
    check_spans(Side::Positive, positive, pb)
}

/// `stale_marker` and `is_stale`, the same for both histogram types.
macro_rules! stale_marker_methods {
    ($h:ident) => {
        /// The stale marker: a histogram whose sum is Prometheus's stale NaN and nothing else.
        pub fn stale_marker() -> $h {
            $h {
                sum: f64::from_bits(STALE_NAN_BITS),
                ..$h::default()
            }
        }

        /// Whether this is a stale marker (the sum is the stale NaN, bit for bit).
        pub fn is_stale(&self) -> bool {
            self.sum.to_bits() == STALE_NAN_BITS
        }
    };
}

fn f64_bits_eq(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

fn f64_slices_eq(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| f64_bits_eq(*x, *y))
}

impl Histogram {
    stale_marker_methods!(Histogram);

    /// Checks the histogram as Prometheus 2.42 does before appending it: span offsets after
    /// the first are not negative, spans name as many buckets as there are, no absolute
    /// bucket count is negative, and the buckets hold at most `count` observations. Sums wrap
    /// as in Go, so exactly the histograms 2.42 accepts pass.
    pub fn validate(&self) -> Result<(), HistogramError> {
        check_both_spans(
            (&self.negative_spans, self.negative_buckets.len()),
            (&self.positive_spans, self.positive_buckets.len()),
        )?;
        let n = sum_delta_buckets(Side::Negative, &self.negative_buckets)?;
        let p = sum_delta_buckets(Side::Positive, &self.positive_buckets)?;
        let in_buckets = n.wrapping_add(p);
        if in_buckets > self.count {
            return Err(HistogramError::CountNotBigEnough {
                in_buckets: in_buckets as f64,
                count: self.count as f64,
            });
        }
        Ok(())
    }

    /// The same histogram with float counts and absolute buckets (`ToFloat`).
    pub fn to_float(&self) -> FloatHistogram {
        FloatHistogram {
            counter_reset_hint: self.counter_reset_hint,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count as f64,
            count: self.count as f64,
            sum: self.sum,
            positive_spans: self.positive_spans.clone(),
            negative_spans: self.negative_spans.clone(),
            positive_buckets: absolute_f64(&self.positive_buckets),
            negative_buckets: absolute_f64(&self.negative_buckets),
        }
    }

    /// The positive buckets as `(index, absolute count)`, in index order.
    pub fn positive_bucket_counts(&self) -> BucketCounts<'_, i64> {
        BucketCounts::new(&self.positive_spans, &self.positive_buckets)
    }

    /// The negative buckets as `(index, absolute count)`; index `i` covers
    /// `[-2^(i/2^schema), -2^((i-1)/2^schema))`.
    pub fn negative_bucket_counts(&self) -> BucketCounts<'_, i64> {
        BucketCounts::new(&self.negative_spans, &self.negative_buckets)
    }
}

impl PartialEq for Histogram {
    fn eq(&self, o: &Self) -> bool {
        self.counter_reset_hint == o.counter_reset_hint
            && self.schema == o.schema
            && f64_bits_eq(self.zero_threshold, o.zero_threshold)
            && self.zero_count == o.zero_count
            && self.count == o.count
            && f64_bits_eq(self.sum, o.sum)
            && self.positive_spans == o.positive_spans
            && self.negative_spans == o.negative_spans
            && self.positive_buckets == o.positive_buckets
            && self.negative_buckets == o.negative_buckets
    }
}

impl FloatHistogram {
    stale_marker_methods!(FloatHistogram);

    /// Checks the histogram as Prometheus 2.42's `ValidateFloatHistogram` does (see
    /// [`Histogram::validate`]).
    pub fn validate(&self) -> Result<(), HistogramError> {
        check_both_spans(
            (&self.negative_spans, self.negative_buckets.len()),
            (&self.positive_spans, self.positive_buckets.len()),
        )?;
        let n = sum_float_buckets(Side::Negative, &self.negative_buckets)?;
        let p = sum_float_buckets(Side::Positive, &self.positive_buckets)?;
        if n + p > self.count {
            return Err(HistogramError::CountNotBigEnough {
                in_buckets: n + p,
                count: self.count,
            });
        }
        Ok(())
    }

    /// The positive buckets as `(index, count)`, in index order.
    pub fn positive_bucket_counts(&self) -> BucketCounts<'_, f64> {
        BucketCounts::new(&self.positive_spans, &self.positive_buckets)
    }

    /// The negative buckets as `(index, count)`.
    pub fn negative_bucket_counts(&self) -> BucketCounts<'_, f64> {
        BucketCounts::new(&self.negative_spans, &self.negative_buckets)
    }
}

impl PartialEq for FloatHistogram {
    fn eq(&self, o: &Self) -> bool {
        self.counter_reset_hint == o.counter_reset_hint
            && self.schema == o.schema
            && f64_bits_eq(self.zero_threshold, o.zero_threshold)
            && f64_bits_eq(self.zero_count, o.zero_count)
            && f64_bits_eq(self.count, o.count)
            && f64_bits_eq(self.sum, o.sum)
            && self.positive_spans == o.positive_spans
            && self.negative_spans == o.negative_spans
            && f64_slices_eq(&self.positive_buckets, &o.positive_buckets)
            && f64_slices_eq(&self.negative_buckets, &o.negative_buckets)
    }
}

/// Absolute counts of delta-encoded buckets, as floats (running sum in `f64`, as Go's
/// `ToFloat` computes it).
fn absolute_f64(deltas: &[i64]) -> Vec<f64> {
    let mut cur = 0.0;
    deltas
        .iter()
        .map(|&d| {
            cur += d as f64;
            cur
        })
        .collect()
}

fn sum_delta_buckets(side: Side, deltas: &[i64]) -> Result<u64, HistogramError> {
    let (mut last, mut total) = (0i64, 0u64);
    for (i, &d) in deltas.iter().enumerate() {
        let c = last.wrapping_add(d);
        if c < 0 {
            return Err(HistogramError::NegativeBucketCount {
                side,
                number: i + 1,
                count: c as f64,
            });
        }
        last = c;
        total = total.wrapping_add(c as u64);
    }
    Ok(total)
}

fn sum_float_buckets(side: Side, counts: &[f64]) -> Result<f64, HistogramError> {
    let mut total = 0.0;
    for (i, &c) in counts.iter().enumerate() {
        if c < 0.0 {
            return Err(HistogramError::NegativeBucketCount {
                side,
                number: i + 1,
                count: c,
            });
        }
        total += c;
    }
    Ok(total)
}

/// How a bucket count turns into an absolute count while iterating: integer histograms hold
/// deltas, float histograms absolute counts.
pub trait BucketValue: Copy {
    /// The count of this bucket given the previous bucket's count.
    fn absolute(prev: Self, stored: Self) -> Self;
    /// The count before the first bucket.
    const ZERO: Self;
}

impl BucketValue for i64 {
    fn absolute(prev: i64, stored: i64) -> i64 {
        prev.wrapping_add(stored)
    }
    const ZERO: i64 = 0;
}

impl BucketValue for f64 {
    fn absolute(_prev: f64, stored: f64) -> f64 {
        stored
    }
    const ZERO: f64 = 0.0;
}

/// Iterator over `(bucket index, absolute count)` of one side of a histogram. Spans of length
/// 0 are skipped; iteration stops at the shorter of spans and buckets, so an invalid
/// histogram cannot make it panic.
#[derive(Debug, Clone)]
pub struct BucketCounts<'a, V> {
    spans: std::slice::Iter<'a, Span>,
    buckets: std::slice::Iter<'a, V>,
    left_in_span: u32,
    next_index: i64,
    count: V,
    started: bool,
}

impl<'a, V: BucketValue> BucketCounts<'a, V> {
    /// The buckets of one side: its spans and its stored bucket values.
    pub fn new(spans: &'a [Span], buckets: &'a [V]) -> Self {
        BucketCounts {
            spans: spans.iter(),
            buckets: buckets.iter(),
            left_in_span: 0,
            next_index: 0,
            count: V::ZERO,
            started: false,
        }
    }
}

impl<V: BucketValue> Iterator for BucketCounts<'_, V> {
    type Item = (i64, V);

    fn next(&mut self) -> Option<(i64, V)> {
        while self.left_in_span == 0 {
            let s = self.spans.next()?;
            if self.started {
                self.next_index += i64::from(s.offset);
            } else {
                self.next_index = i64::from(s.offset);
                self.started = true;
            }
            self.left_in_span = s.length;
        }
        let stored = *self.buckets.next()?;
        self.count = V::absolute(self.count, stored);
        let idx = self.next_index;
        self.next_index += 1;
        self.left_in_span -= 1;
        Some((idx, self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Histogram {
        Histogram {
            counter_reset_hint: CounterResetHint::Unknown,
            schema: 0,
            zero_threshold: 1e-128,
            zero_count: 2,
            count: 14,
            sum: 18.4,
            positive_spans: vec![Span::new(-2, 2), Span::new(1, 2)],
            negative_spans: vec![Span::new(0, 1)],
            positive_buckets: vec![1, 1, -1, 0],
            negative_buckets: vec![3],
        }
    }

    #[test]
    fn bucket_counts_follow_spans_and_deltas() {
        let h = h();
        let got: Vec<_> = h.positive_bucket_counts().collect();
        assert_eq!(got, [(-2, 1), (-1, 2), (1, 1), (2, 1)]);
        let f = h.to_float();
        let got: Vec<_> = f.positive_bucket_counts().collect();
        assert_eq!(got, [(-2, 1.0), (-1, 2.0), (1, 1.0), (2, 1.0)]);
        assert_eq!(f.negative_buckets, [3.0]);
        assert_eq!(f.count, 14.0);
        // Zero-length spans are nothing; their offsets still count.
        let z = Histogram {
            positive_spans: vec![
                Span::new(3, 0),
                Span::new(2, 1),
                Span::new(0, 0),
                Span::new(1, 1),
            ],
            positive_buckets: vec![4, -1],
            ..Histogram::default()
        };
        let got: Vec<_> = z.positive_bucket_counts().collect();
        assert_eq!(got, [(5, 4), (7, 3)]);
    }

    #[test]
    fn validation_matches_prometheus() {
        assert_eq!(h().validate(), Ok(()));
        let mut bad = h();
        bad.positive_spans[1].offset = -1;
        assert!(matches!(
            bad.validate(),
            Err(HistogramError::SpanNegativeOffset {
                side: Side::Positive,
                number: 2,
                offset: -1
            })
        ));
        let mut bad = h();
        bad.negative_buckets.push(1);
        assert!(matches!(
            bad.validate(),
            Err(HistogramError::SpansBucketsMismatch {
                side: Side::Negative,
                spans: 1,
                buckets: 2
            })
        ));
        let mut bad = h();
        bad.positive_buckets[2] = -3;
        let e = bad.validate().unwrap_err();
        assert!(matches!(
            e,
            HistogramError::NegativeBucketCount {
                side: Side::Positive,
                number: 3,
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "positive side: bucket number 3 has observation count of -1: histogram has a bucket \
             whose observation count is negative"
        );
        let mut bad = h();
        bad.count = 7;
        assert!(matches!(
            bad.validate(),
            Err(HistogramError::CountNotBigEnough { .. })
        ));
        // Exactly the observations in the buckets (the zero bucket is not counted, as in 2.42).
        bad.count = 8;
        assert_eq!(bad.validate(), Ok(()));
        // The first span may start at a negative index.
        let mut ok = h();
        ok.positive_spans[0].offset = -100;
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(h().to_float().validate(), Ok(()));
        let mut f = h().to_float();
        f.negative_buckets[0] = -0.5;
        assert!(matches!(
            f.validate(),
            Err(HistogramError::NegativeBucketCount { .. })
        ));
    }

    #[test]
    fn stale_markers_compare_bitwise() {
        let s = Histogram::stale_marker();
        assert!(s.is_stale());
        assert_eq!(s, Histogram::stale_marker());
        assert!(!h().is_stale());
        let mut nan = h();
        nan.sum = f64::NAN;
        assert!(!nan.is_stale());
        assert_eq!(nan, nan.clone());
        assert!(FloatHistogram::stale_marker().is_stale());
        assert_eq!(s.to_float(), FloatHistogram::stale_marker());
    }

    #[test]
    fn hints_round_trip() {
        for b in 0..4 {
            assert_eq!(CounterResetHint::from_u8(b).unwrap().as_u8(), b);
        }
        assert_eq!(CounterResetHint::from_u8(4), None);
    }
}
