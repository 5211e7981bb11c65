//! What the two native-histogram chunk encodings share (Prometheus 2.42
//! `tsdb/chunkenc/histogram_meta.go`): the chunk header's counter-reset bits, the layout (zero
//! threshold, schema, spans) written before the first sample, and the span arithmetic behind
//! appending a histogram whose buckets differ from the chunk's ("inserts" and recoding).

use super::bstream::BitReader;
use super::varbit::{read_varbit_int, read_varbit_uint, HistBits};
use crate::model::histogram::{BucketCounts, BucketValue, CounterResetHint, Span};

/// Bytes before the bit stream of a histogram chunk: BE16 sample count, one header byte.
pub(crate) const HIST_HEADER_LEN: usize = 3;

/// The top two bits of a histogram chunk's third byte: why the chunk was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CounterResetHeader {
    /// Not known whether a counter reset started the chunk (`00`).
    #[default]
    Unknown,
    /// A counter reset started the chunk (`10`).
    CounterReset,
    /// The chunk was started without a counter reset (`01`).
    NotCounterReset,
    /// The chunk holds gauge histograms (`11`).
    Gauge,
}

impl CounterResetHeader {
    /// The header of a chunk's third byte (its top two bits).
    pub fn from_byte(b: u8) -> CounterResetHeader {
        match b >> 6 {
            0b10 => CounterResetHeader::CounterReset,
            0b01 => CounterResetHeader::NotCounterReset,
            0b11 => CounterResetHeader::Gauge,
            _ => CounterResetHeader::Unknown,
        }
    }

    /// The two bits, in place in a byte.
    pub fn bits(self) -> u8 {
        match self {
            CounterResetHeader::Unknown => 0,
            CounterResetHeader::CounterReset => 0b1000_0000,
            CounterResetHeader::NotCounterReset => 0b0100_0000,
            CounterResetHeader::Gauge => 0b1100_0000,
        }
    }

    /// The hint a sample gets when read back: `read` is its 1-based position in the chunk
    /// (Prometheus's `counterResetHint`). Only the first sample of a counter chunk can carry a
    /// reset; a chunk cut without one still answers "unknown" for its first sample, because the
    /// previous chunk may be gone.
    pub fn hint_for(self, read: u16) -> CounterResetHint {
        match self {
            CounterResetHeader::Gauge => CounterResetHint::Gauge,
            _ if read > 1 => CounterResetHint::NotCounterReset,
            CounterResetHeader::CounterReset => CounterResetHint::CounterReset,
            _ => CounterResetHint::Unknown,
        }
    }
}

/// The layout of a histogram chunk: fixed by its first sample, widened only by recoding.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Layout {
    pub(crate) schema: i32,
    pub(crate) zero_threshold: f64,
    pub(crate) positive_spans: Vec<Span>,
    pub(crate) negative_spans: Vec<Span>,
}

/// Writes the layout: zero threshold, schema, positive spans, negative spans.
pub(crate) fn write_layout(w: &mut HistBits<'_>, l: &Layout) {
    write_zero_threshold(w, l.zero_threshold);
    w.varbit_int(i64::from(l.schema));
    write_spans(w, &l.positive_spans);
    write_spans(w, &l.negative_spans);
}

fn write_spans(w: &mut HistBits<'_>, spans: &[Span]) {
    w.varbit_uint(spans.len() as u64);
    for s in spans {
        w.varbit_uint(u64::from(s.length));
        w.varbit_int(i64::from(s.offset));
    }
}

/// `putZeroThreshold`: one byte for 0 (also -0, which therefore reads back as +0) and for
/// powers of two from 2^-243 to 2^10 (the exponent plus 243), else 255 and the 64 bits.
fn write_zero_threshold(w: &mut HistBits<'_>, t: f64) {
    if t == 0.0 {
        w.byte(0);
        return;
    }
    let bits = t.to_bits();
    let biased = (bits >> 52) & 0x7ff;
    let is_power_of_two = bits >> 63 == 0 && bits & ((1 << 52) - 1) == 0 && biased != 0;
    // t = 0.5 * 2^exp, with t = 2^(biased - 1023).
    let exp = biased as i64 - 1022;
    if is_power_of_two && (-242..=11).contains(&exp) {
        w.byte((exp + 243) as u8);
    } else {
        w.byte(255);
        w.bits(bits, 64);
    }
}

/// Reads a layout written by [`write_layout`]. `end_bit` is the length of the data in bits;
/// counts that could not fit in it are errors, so nothing large is allocated for them.
pub(crate) fn read_layout(r: &mut BitReader<'_>, end_bit: usize) -> Result<Layout, &'static str> {
    let zero_threshold = match r.read_bits(8) as u8 {
        0 => 0.0,
        255 => f64::from_bits(r.read_bits(64)),
        // 0.5 * 2^(b - 243), a normal float for every b in 1..=254.
        b => f64::from_bits(((i64::from(b) - 244 + 1023) as u64) << 52),
    };
    let schema = i32::try_from(read_varbit_int(r)).map_err(|_| "histogram schema out of range")?;
    let positive_spans = read_spans(r, end_bit)?;
    let negative_spans = read_spans(r, end_bit)?;
    if r.overran() {
        return Err("histogram chunk ends inside its layout");
    }
    Ok(Layout {
        schema,
        zero_threshold,
        positive_spans,
        negative_spans,
    })
}

fn read_spans(r: &mut BitReader<'_>, end_bit: usize) -> Result<Vec<Span>, &'static str> {
    let n = read_varbit_uint(r);
    // A span takes at least two bits.
    if n > (end_bit.saturating_sub(r.pos()) / 2) as u64 {
        return Err("histogram span count larger than the chunk");
    }
    let mut spans = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let length =
            u32::try_from(read_varbit_uint(r)).map_err(|_| "histogram span length out of range")?;
        let offset =
            i32::try_from(read_varbit_int(r)).map_err(|_| "histogram span offset out of range")?;
        spans.push(Span { offset, length });
    }
    Ok(spans)
}

/// Bucket indices named by spans, in order (Prometheus's `bucketIterator`).
#[derive(Debug, Clone)]
pub(crate) struct BucketIndices<'a> {
    spans: std::slice::Iter<'a, Span>,
    left: u32,
    next: i64,
    started: bool,
}

impl<'a> BucketIndices<'a> {
    pub(crate) fn new(spans: &'a [Span]) -> Self {
        BucketIndices {
            spans: spans.iter(),
            left: 0,
            next: 0,
            started: false,
        }
    }
}

impl Iterator for BucketIndices<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        while self.left == 0 {
            let s = self.spans.next()?;
            if self.started {
                self.next += i64::from(s.offset);
            } else {
                self.next = i64::from(s.offset);
                self.started = true;
            }
            self.left = s.length;
        }
        let i = self.next;
        self.next += 1;
        self.left -= 1;
        Some(i)
    }
}

/// New buckets to add before the `pos`-th bucket of an existing bucket list: `num` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Insert {
    /// Position in the old bucket list before which the new buckets go.
    pub pos: usize,
    /// Number of new buckets.
    pub num: usize,
}

/// The inserts that widen the buckets of spans `a` to those of spans `b`, or `None` if `b`
/// lacks a bucket of `a` (`expandSpansForward`).
pub(crate) fn expand_spans_forward(a: &[Span], b: &[Span]) -> Option<Vec<Insert>> {
    let (mut ai, mut bi) = (BucketIndices::new(a), BucketIndices::new(b));
    let mut inserts = Vec::new();
    let mut cur = Insert { pos: 0, num: 0 };
    let (mut av, mut bv) = (ai.next(), bi.next());
    loop {
        match (av, bv) {
            (Some(x), Some(y)) if x == y => {
                if cur.num > 0 {
                    inserts.push(cur);
                }
                cur.num = 0;
                cur.pos += 1;
                av = ai.next();
                bv = bi.next();
            }
            (Some(x), Some(y)) if x < y => return None,
            (Some(_), Some(_)) | (None, Some(_)) => {
                cur.num += 1;
                bv = bi.next();
            }
            (Some(_), None) => return None,
            (None, None) => {
                if cur.num > 0 {
                    inserts.push(cur);
                }
                return Some(inserts);
            }
        }
    }
}

/// Widens both `a` and `b` to the union of their buckets (`expandSpansBothWays`): the inserts
/// for `a`, the inserts for `b`, and the spans of the union.
pub(crate) fn expand_spans_both_ways(
    a: &[Span],
    b: &[Span],
) -> (Vec<Insert>, Vec<Insert>, Vec<Span>) {
    let (mut ai, mut bi) = (BucketIndices::new(a), BucketIndices::new(b));
    let (mut fwd, mut bwd, mut merged) = (Vec::new(), Vec::new(), Vec::<Span>::new());
    let mut last = 0i64;
    let mut add = |idx: i64, merged: &mut Vec<Span>| {
        let mut offset = idx.wrapping_sub(last).wrapping_sub(1);
        match merged.last_mut() {
            Some(s) if offset == 0 => s.length += 1,
            _ => {
                if merged.is_empty() {
                    offset += 1;
                }
                merged.push(Span {
                    offset: offset as i32,
                    length: 1,
                });
            }
        }
        last = idx;
    };
    let (mut f, mut b_) = (Insert { pos: 0, num: 0 }, Insert { pos: 0, num: 0 });
    let (mut av, mut bv) = (ai.next(), bi.next());
    loop {
        match (av, bv) {
            (Some(x), Some(y)) if x == y => {
                flush(&mut fwd, &mut f);
                flush(&mut bwd, &mut b_);
                add(x, &mut merged);
                av = ai.next();
                bv = bi.next();
                f.pos += 1;
                b_.pos += 1;
            }
            (Some(x), Some(y)) if x < y => {
                b_.num += 1;
                flush(&mut fwd, &mut f);
                add(x, &mut merged);
                f.pos += 1;
                av = ai.next();
            }
            (Some(_), Some(y)) => {
                f.num += 1;
                flush(&mut bwd, &mut b_);
                add(y, &mut merged);
                b_.pos += 1;
                bv = bi.next();
            }
            (Some(x), None) => {
                b_.num += 1;
                add(x, &mut merged);
                av = ai.next();
            }
            (None, Some(y)) => {
                f.num += 1;
                add(y, &mut merged);
                bv = bi.next();
            }
            (None, None) => {
                flush(&mut fwd, &mut f);
                flush(&mut bwd, &mut b_);
                return (fwd, bwd, merged);
            }
        }
    }
}

/// Ends a run of new buckets: records it if it has any.
fn flush(out: &mut Vec<Insert>, cur: &mut Insert) {
    if cur.num > 0 {
        out.push(*cur);
        cur.num = 0;
    }
}

/// A bucket value that [`insert`] can place: new buckets are 0 (absolute) or cancel the
/// running count (deltas).
pub(crate) trait InsertValue: Copy {
    const ZERO: Self;
    fn plus(self, o: Self) -> Self;
    fn minus(self) -> Self;
}

impl InsertValue for i64 {
    const ZERO: i64 = 0;
    fn plus(self, o: i64) -> i64 {
        self.wrapping_add(o)
    }
    fn minus(self) -> i64 {
        self.wrapping_neg()
    }
}

impl InsertValue for f64 {
    const ZERO: f64 = 0.0;
    fn plus(self, o: f64) -> f64 {
        self + o
    }
    fn minus(self) -> f64 {
        -self
    }
}

/// The buckets `input` with empty buckets added where `inserts` say (Prometheus's `insert`).
/// With `deltas`, values are delta-encoded: an inserted run starts with minus the running
/// count, and the old bucket after it gets the count back.
pub(crate) fn insert<V: InsertValue>(input: &[V], inserts: &[Insert], deltas: bool) -> Vec<V> {
    let extra: usize = inserts.iter().map(|i| i.num).sum();
    let mut out = Vec::with_capacity(input.len() + extra);
    let mut running = V::ZERO;
    let mut ins = inserts.iter().peekable();
    let push_run = |out: &mut Vec<V>, num: usize, running: V| {
        out.push(if deltas { running.minus() } else { V::ZERO });
        out.extend(std::iter::repeat_n(V::ZERO, num.saturating_sub(1)));
    };
    for (i, &d) in input.iter().enumerate() {
        match ins.peek() {
            Some(x) if x.pos == i => {
                push_run(&mut out, x.num, running);
                ins.next();
                out.push(if deltas { d.plus(running) } else { d });
            }
            _ => out.push(d),
        }
        running = running.plus(d);
    }
    // Runs at the end (Prometheus produces at most one).
    for x in ins {
        if x.num > 0 {
            push_run(&mut out, x.num, running);
        }
    }
    out
}

/// Whether any bucket present in both `old` and `new` has a smaller absolute count in `new`
/// (`counterResetInAnyBucket`; the caller has checked that `new` has every bucket of `old`).
pub(crate) fn counter_reset_in_any_bucket<V: BucketValue + PartialOrd>(
    old_spans: &[Span],
    old: &[V],
    new_spans: &[Span],
    new: &[V],
) -> bool {
    let mut newer = BucketCounts::new(new_spans, new).peekable();
    for (oi, ov) in BucketCounts::new(old_spans, old) {
        while newer.next_if(|&(ni, _)| ni < oi).is_some() {}
        if let Some(&(ni, nv)) = newer.peek() {
            if ni == oi && nv < ov {
                return true;
            }
        }
    }
    false
}

/// Why a histogram cannot join the current chunk, so that a new chunk must be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NewChunkReason {
    /// Counts went down (total, zero bucket or any bucket) or buckets disappeared: the new
    /// chunk's header says `CounterReset`.
    CounterReset,
    /// The schema differs from the chunk's.
    SchemaChanged,
    /// The zero threshold differs from the chunk's.
    ZeroThresholdChanged,
    /// The chunk's last sample is a stale marker; only stale markers may follow it.
    AfterStaleMarker,
    /// A gauge histogram for a counter chunk, or a counter histogram for a gauge chunk.
    KindChanged,
}

/// Whether a counter histogram can be appended to a chunk (Prometheus 2.42's `Appendable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appendable {
    /// Append it as it is.
    Append,
    /// It has buckets the chunk lacks: recode the chunk with these inserts and the
    /// histogram's spans first (`recode`), then append.
    Recode {
        /// Inserts into the chunk's positive buckets.
        positive_inserts: Vec<Insert>,
        /// Inserts into the chunk's negative buckets.
        negative_inserts: Vec<Insert>,
    },
    /// Cut a new chunk for it.
    NewChunk(NewChunkReason),
}

/// Whether a gauge histogram can be appended to a chunk (Prometheus 2.42's
/// `AppendableGauge`): buckets may appear and disappear, so both the chunk and the histogram
/// may need new (empty) buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaugeAppendable {
    /// Append it. If a backward insert list is not empty, give the histogram the merged spans
    /// and its buckets these inserts (`recode_histogram`); if a forward one is not empty,
    /// recode the chunk to the histogram's spans. Stale markers get empty lists.
    Append {
        /// Inserts into the chunk's positive buckets.
        positive_inserts: Vec<Insert>,
        /// Inserts into the chunk's negative buckets.
        negative_inserts: Vec<Insert>,
        /// Inserts into the histogram's positive buckets.
        backward_positive_inserts: Vec<Insert>,
        /// Inserts into the histogram's negative buckets.
        backward_negative_inserts: Vec<Insert>,
        /// The union of the chunk's and the histogram's positive buckets.
        positive_spans: Vec<Span>,
        /// The union of the chunk's and the histogram's negative buckets.
        negative_spans: Vec<Span>,
    },
    /// Cut a new chunk for it.
    NewChunk(NewChunkReason),
}

/// What `push` did with a histogram.
#[derive(Debug)]
pub enum Pushed<A> {
    /// Appended to the current chunk.
    Appended,
    /// Appended after recoding the current chunk to a wider bucket layout (the appender now
    /// holds the recoded chunk).
    Recoded,
    /// Started a new chunk with this header; the appender now holds it, and `completed` is
    /// the chunk it held before (`None` if that was empty).
    Cut {
        /// The previous chunk, complete.
        completed: Option<A>,
        /// Header of the new chunk.
        header: CounterResetHeader,
        /// Why (`None`: the caller asked, or the chunk was empty or full).
        reason: Option<NewChunkReason>,
    },
}

/// Why a histogram cannot be appended (the chunk is left unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The histogram holds a different number of buckets on one side than the chunk's layout
    /// (or, for the first sample, than its own spans) names.
    #[error("{side}: histogram has {got} buckets, the chunk layout needs {expected}")]
    BucketCountMismatch {
        /// The side.
        side: crate::model::histogram::Side,
        /// Buckets the layout names.
        expected: u64,
        /// Buckets the histogram holds.
        got: usize,
    },
    /// A span after the first has a negative offset (`push` takes only histograms whose
    /// bucket indices increase, as Prometheus's validation ensures).
    #[error("{side}: span number {number} has a negative offset")]
    NegativeSpanOffset {
        /// The side.
        side: crate::model::histogram::Side,
        /// 1-based number of the span.
        number: usize,
    },
    /// A non-stale histogram after a stale marker (check `appendable` first).
    #[error("only stale markers may follow a stale marker in a histogram chunk")]
    AfterStaleMarker,
    /// The chunk holds 65 535 samples, the most its count field can say.
    #[error("the chunk holds 65535 samples")]
    ChunkFull,
}

/// The header a chunk started for a histogram gets (Prometheus 2.42's
/// `memSeries.appendHistogram`): gauge, counter reset, "not a reset" when the histogram would
/// have fitted the previous chunk, else unknown.
pub(crate) fn new_chunk_header(
    gauge: bool,
    counter_reset: bool,
    ok_to_append: bool,
) -> CounterResetHeader {
    if gauge {
        CounterResetHeader::Gauge
    } else if counter_reset {
        CounterResetHeader::CounterReset
    } else if ok_to_append {
        CounterResetHeader::NotCounterReset
    } else {
        CounterResetHeader::Unknown
    }
}

/// What `push` checks before it changes anything: buckets match spans, and bucket indices
/// increase (no negative offset after the first span).
pub(crate) fn check_push(
    spans: &[Span],
    buckets: usize,
    side: crate::model::histogram::Side,
) -> Result<(), AppendError> {
    if let Some(i) = spans.iter().skip(1).position(|s| s.offset < 0) {
        return Err(AppendError::NegativeSpanOffset {
            side,
            number: i + 2,
        });
    }
    check_layout_counts(spans, buckets, side)
}

/// Checks that a first sample's buckets match its spans.
pub(crate) fn check_layout_counts(
    spans: &[Span],
    buckets: usize,
    side: crate::model::histogram::Side,
) -> Result<(), AppendError> {
    let expected = crate::model::histogram::span_buckets(spans);
    if expected != buckets as u64 {
        return Err(AppendError::BucketCountMismatch {
            side,
            expected,
            got: buckets,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(s: &[(i32, u32)]) -> Vec<Span> {
        s.iter()
            .map(|&(offset, length)| Span { offset, length })
            .collect()
    }

    fn ins(s: &[(usize, usize)]) -> Vec<Insert> {
        s.iter().map(|&(pos, num)| Insert { pos, num }).collect()
    }

    /// The example of Prometheus's `expandSpansForward` doc comment (and
    /// `TestBucketIterator`'s layouts): an appended span, an unchanged one, a prepended one
    /// and two merges.
    #[test]
    fn expand_forward_prometheus_example() {
        let a = spans(&[(0, 2), (2, 1), (3, 2), (3, 1), (1, 1)]);
        let b = spans(&[(0, 3), (1, 1), (1, 4), (3, 3)]);
        assert_eq!(
            BucketIndices::new(&a).collect::<Vec<_>>(),
            [0, 1, 4, 8, 9, 13, 15]
        );
        assert_eq!(
            BucketIndices::new(&b).collect::<Vec<_>>(),
            [0, 1, 2, 4, 6, 7, 8, 9, 13, 14, 15]
        );
        let inserts = expand_spans_forward(&a, &b).unwrap();
        assert_eq!(inserts, ins(&[(2, 1), (3, 2), (6, 1)]));
        // Deltas of the example, before and after.
        let old = [6i64, -3, 0, -1, 2, 1, -4];
        assert_eq!(
            insert(&old, &inserts, true),
            [6, -3, -3, 3, -3, 0, 2, 2, 1, -5, 1]
        );
        let abs = [6.0, 3.0, 3.0, 2.0, 4.0, 5.0, 1.0];
        assert_eq!(
            insert(&abs, &inserts, false),
            [6.0, 3.0, 0.0, 3.0, 0.0, 0.0, 2.0, 4.0, 5.0, 0.0, 1.0]
        );
        // b lacks buckets of a: not appendable.
        assert_eq!(expand_spans_forward(&b, &a), None);
        assert_eq!(expand_spans_forward(&a, &a), Some(vec![]));
    }

    #[test]
    fn expand_forward_at_the_ends_and_with_empty_spans() {
        // New buckets before everything and after everything.
        let a = spans(&[(2, 2)]);
        let b = spans(&[(0, 6)]);
        assert_eq!(expand_spans_forward(&a, &b), Some(ins(&[(0, 2), (2, 2)])));
        assert_eq!(
            insert(&[5i64, 1], &ins(&[(0, 2), (2, 2)]), true),
            [0, 0, 5, 1, -6, 0]
        );
        // From nothing.
        assert_eq!(expand_spans_forward(&[], &b), Some(ins(&[(0, 6)])));
        assert_eq!(insert::<i64>(&[], &ins(&[(0, 3)]), true), [0, 0, 0]);
        // Zero-length spans name no buckets but keep their offsets.
        let z = spans(&[(1, 0), (1, 2), (0, 0)]);
        assert_eq!(BucketIndices::new(&z).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(expand_spans_forward(&z, &a), Some(vec![]));
    }

    /// `TestExpandSpansBothWaysAndInsert`-style cases: the merged layout holds both, and
    /// inserting into each side's buckets aligns them to it.
    #[test]
    fn expand_both_ways() {
        let a = spans(&[(-5, 4), (5, 3)]);
        let b = spans(&[(-3, 3), (2, 2), (4, 1)]);
        let (f, bw, merged) = expand_spans_both_ways(&a, &b);
        let mut union: Vec<i64> = BucketIndices::new(&a)
            .chain(BucketIndices::new(&b))
            .collect();
        union.sort();
        union.dedup();
        assert_eq!(BucketIndices::new(&merged).collect::<Vec<_>>(), union);
        let av: Vec<f64> = (1..=7).map(f64::from).collect();
        let bv: Vec<f64> = (10..=15).map(f64::from).collect();
        let wa = insert(&av, &f, false);
        let wb = insert(&bv, &bw, false);
        assert_eq!(wa.len(), union.len());
        assert_eq!(wb.len(), union.len());
        for (i, idx) in union.iter().enumerate() {
            let in_a = BucketIndices::new(&a).position(|x| x == *idx);
            let in_b = BucketIndices::new(&b).position(|x| x == *idx);
            assert_eq!(wa[i], in_a.map_or(0.0, |p| av[p]));
            assert_eq!(wb[i], in_b.map_or(0.0, |p| bv[p]));
        }
        assert_eq!(merged[0].offset, -5);
    }

    #[test]
    fn counter_resets_compare_common_buckets() {
        let a = spans(&[(0, 2), (2, 1)]);
        let b = spans(&[(0, 4)]);
        // old [0]=1 [1]=3 [4]=3 ; new [0]=1 [1]=3 [2]=0 [3]=5 (bucket 4 missing: caller's job)
        assert!(!counter_reset_in_any_bucket(
            &a,
            &[1i64, 2, 0],
            &a,
            &[1, 2, 0]
        ));
        assert!(counter_reset_in_any_bucket(
            &a,
            &[1i64, 2, 0],
            &a,
            &[1, 1, 0]
        ));
        assert!(!counter_reset_in_any_bucket(
            &a,
            &[1.0, 3.0, 3.0],
            &spans(&[(0, 5)]),
            &[1.0, 3.0, 0.0, 0.0, 3.0]
        ));
        assert!(counter_reset_in_any_bucket(
            &a,
            &[1.0, 3.0, 3.0],
            &spans(&[(0, 5)]),
            &[1.0, 3.0, 9.0, 9.0, 2.0]
        ));
        assert!(!counter_reset_in_any_bucket::<i64>(
            &[],
            &[],
            &b,
            &[1, 1, 1, 1]
        ));
    }

    #[test]
    fn zero_thresholds_round_trip() {
        let cases = [
            (0.0, 8),
            (2f64.powi(-128), 8),
            (2f64.powi(-243), 8),
            (2f64.powi(10), 8),
            (2f64.powi(11), 72),
            (2f64.powi(-244), 72),
            (0.001, 72),
            (-0.5, 72),
            (f64::INFINITY, 72),
        ];
        for (t, bits) in cases {
            let l = Layout {
                zero_threshold: t,
                ..Layout::default()
            };
            let mut buf = Vec::new();
            let mut w = HistBits::resume(&mut buf, (0, 0));
            write_zero_threshold(&mut w, l.zero_threshold);
            w.finish();
            let mut r = BitReader::new(&buf, 0);
            let mut full = buf.clone();
            full.extend([0, 0]);
            let mut rr = BitReader::new(&full, 0);
            let back = read_layout(&mut rr, full.len() * 8).unwrap().zero_threshold;
            assert_eq!(back.to_bits(), t.to_bits(), "{t}");
            r.skip(bits);
            assert!(!r.overran() && buf.len() * 8 >= bits as usize, "{t}");
        }
        // Prometheus's default 2^-128 is the byte 116.
        let mut buf = Vec::new();
        let mut w = HistBits::resume(&mut buf, (0, 0));
        write_zero_threshold(&mut w, 2f64.powi(-128));
        w.finish();
        assert_eq!(buf, [116, 0]);
    }

    #[test]
    fn hints_from_headers() {
        use CounterResetHeader as H;
        use CounterResetHint as C;
        assert_eq!(H::Gauge.hint_for(1), C::Gauge);
        assert_eq!(H::Gauge.hint_for(9), C::Gauge);
        assert_eq!(H::CounterReset.hint_for(1), C::CounterReset);
        assert_eq!(H::CounterReset.hint_for(2), C::NotCounterReset);
        assert_eq!(H::NotCounterReset.hint_for(1), C::Unknown);
        assert_eq!(H::Unknown.hint_for(3), C::NotCounterReset);
        for h in [H::Unknown, H::CounterReset, H::NotCounterReset, H::Gauge] {
            assert_eq!(H::from_byte(h.bits() | 0x15), h);
        }
    }
}
