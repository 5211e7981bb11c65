//! What the integer (encoding 2) and float (encoding 3) histogram chunks share: the
//! appendability rules, the head's push decision and the iterator's framing (format brief
//! §1.6). Only the bits of a sample differ between the two; those stay in `histogram.rs` and
//! `float_histogram.rs`.

use std::borrow::Cow;

use super::bstream::BitReader;
use super::histogram_meta::{
    check_layout_counts, check_push, counter_reset_in_any_bucket, expand_spans_both_ways,
    expand_spans_forward, insert, new_chunk_header, AppendError, Appendable, CounterResetHeader,
    GaugeAppendable, Insert, InsertValue, Layout, NewChunkReason, Pushed, HIST_HEADER_LEN,
};
use crate::encoding::DecodeError;
use crate::model::histogram::{
    BucketValue, CounterResetHint, FloatHistogram, Histogram, Side, Span,
};

/// A histogram a chunk stores: [`Histogram`] (integer counts, delta-encoded buckets) or
/// [`FloatHistogram`] (float counts, absolute buckets).
pub(crate) trait ChunkHistogram: Default + Clone {
    /// The type of `count` and `zero_count`.
    type Count: PartialOrd + Copy;
    /// The type of a stored bucket.
    type Bucket: BucketValue + InsertValue + PartialOrd;
    /// Whether buckets are delta-encoded (the `deltas` argument of `insert`).
    const DELTAS: bool;

    fn stale_marker() -> Self;
    fn is_stale(&self) -> bool;
    fn hint(&self) -> CounterResetHint;
    fn counts(&self) -> (Self::Count, Self::Count);
    fn schema(&self) -> i32;
    fn zero_threshold(&self) -> f64;
    fn spans(&self) -> (&[Span], &[Span]);
    fn buckets(&self) -> (&[Self::Bucket], &[Self::Bucket]);
    fn spans_mut(&mut self) -> (&mut Vec<Span>, &mut Vec<Span>);
    fn buckets_mut(&mut self) -> (&mut Vec<Self::Bucket>, &mut Vec<Self::Bucket>);
}

macro_rules! chunk_histogram {
    ($h:ty, $count:ty, $bucket:ty, $deltas:expr) => {
        impl ChunkHistogram for $h {
            type Count = $count;
            type Bucket = $bucket;
            const DELTAS: bool = $deltas;

            fn stale_marker() -> Self {
                <$h>::stale_marker()
            }
            fn is_stale(&self) -> bool {
                <$h>::is_stale(self)
            }
            fn hint(&self) -> CounterResetHint {
                self.counter_reset_hint
            }
            fn counts(&self) -> ($count, $count) {
                (self.count, self.zero_count)
            }
            fn schema(&self) -> i32 {
                self.schema
            }
            fn zero_threshold(&self) -> f64 {
                self.zero_threshold
            }
            fn spans(&self) -> (&[Span], &[Span]) {
                (&self.positive_spans, &self.negative_spans)
            }
            fn buckets(&self) -> (&[$bucket], &[$bucket]) {
                (&self.positive_buckets, &self.negative_buckets)
            }
            fn spans_mut(&mut self) -> (&mut Vec<Span>, &mut Vec<Span>) {
                (&mut self.positive_spans, &mut self.negative_spans)
            }
            fn buckets_mut(&mut self) -> (&mut Vec<$bucket>, &mut Vec<$bucket>) {
                (&mut self.positive_buckets, &mut self.negative_buckets)
            }
        }
    };
}

chunk_histogram!(Histogram, u64, i64, true);
chunk_histogram!(FloatHistogram, f64, f64, false);

/// What the appendability rules read of a chunk: its header, layout and last sample.
pub(crate) struct ChunkTail<'a, H: ChunkHistogram> {
    pub(crate) num_samples: u16,
    pub(crate) header: CounterResetHeader,
    pub(crate) last_is_stale: bool,
    pub(crate) layout: &'a Layout,
    /// `(count, zero_count)` of the last sample.
    pub(crate) counts: (H::Count, H::Count),
}

impl<H: ChunkHistogram> ChunkTail<'_, H> {
    fn layout_change(&self, h: &H) -> Option<NewChunkReason> {
        if h.schema() != self.layout.schema {
            Some(NewChunkReason::SchemaChanged)
        } else if h.zero_threshold() != self.layout.zero_threshold {
            Some(NewChunkReason::ZeroThresholdChanged)
        } else {
            None
        }
    }

    /// Whether the counter histogram `h` can be appended, in Prometheus 2.42's order of
    /// checks (`HistogramAppender.Appendable`): a gauge chunk takes no counter histograms; a
    /// stale marker always fits; nothing but stale markers follows one; a smaller count is a
    /// counter reset; then schema and zero threshold must match; a smaller zero count,
    /// missing buckets or a smaller bucket are counter resets; new buckets need a recode. An
    /// empty chunk takes anything. `buckets` gives the last sample's buckets, read only when
    /// the earlier checks pass.
    pub(crate) fn appendable<'b>(
        &self,
        h: &H,
        buckets: impl FnOnce() -> (Cow<'b, [H::Bucket]>, Cow<'b, [H::Bucket]>),
    ) -> Appendable
    where
        H::Bucket: 'b,
    {
        if self.num_samples == 0 {
            return Appendable::Append;
        }
        if self.header == CounterResetHeader::Gauge {
            return Appendable::NewChunk(NewChunkReason::KindChanged);
        }
        if h.is_stale() {
            return Appendable::Append;
        }
        if self.last_is_stale {
            return Appendable::NewChunk(NewChunkReason::AfterStaleMarker);
        }
        let (count, zero_count) = h.counts();
        if count < self.counts.0 {
            return Appendable::NewChunk(NewChunkReason::CounterReset);
        }
        if let Some(r) = self.layout_change(h) {
            return Appendable::NewChunk(r);
        }
        if zero_count < self.counts.1 {
            return Appendable::NewChunk(NewChunkReason::CounterReset);
        }
        let (positive_spans, negative_spans) = h.spans();
        let Some(positive_inserts) =
            expand_spans_forward(&self.layout.positive_spans, positive_spans)
        else {
            return Appendable::NewChunk(NewChunkReason::CounterReset);
        };
        let Some(negative_inserts) =
            expand_spans_forward(&self.layout.negative_spans, negative_spans)
        else {
            return Appendable::NewChunk(NewChunkReason::CounterReset);
        };
        let (p_buckets, n_buckets) = buckets();
        let (positive_buckets, negative_buckets) = h.buckets();
        if counter_reset_in_any_bucket(
            &self.layout.positive_spans,
            &p_buckets,
            positive_spans,
            positive_buckets,
        ) || counter_reset_in_any_bucket(
            &self.layout.negative_spans,
            &n_buckets,
            negative_spans,
            negative_buckets,
        ) {
            return Appendable::NewChunk(NewChunkReason::CounterReset);
        }
        if positive_inserts.is_empty() && negative_inserts.is_empty() {
            Appendable::Append
        } else {
            Appendable::Recode {
                positive_inserts,
                negative_inserts,
            }
        }
    }

    /// Whether the gauge histogram `h` can be appended (`AppendableGauge`): only to a gauge
    /// chunk (or an empty one), not after a stale marker, with the same schema and zero
    /// threshold; buckets are widened both ways.
    pub(crate) fn appendable_gauge(&self, h: &H) -> GaugeAppendable {
        if self.num_samples > 0 && self.header != CounterResetHeader::Gauge {
            return GaugeAppendable::NewChunk(NewChunkReason::KindChanged);
        }
        if h.is_stale() || self.num_samples == 0 {
            return GaugeAppendable::Append {
                positive_inserts: Vec::new(),
                negative_inserts: Vec::new(),
                backward_positive_inserts: Vec::new(),
                backward_negative_inserts: Vec::new(),
                positive_spans: Vec::new(),
                negative_spans: Vec::new(),
            };
        }
        if self.last_is_stale {
            return GaugeAppendable::NewChunk(NewChunkReason::AfterStaleMarker);
        }
        if let Some(r) = self.layout_change(h) {
            return GaugeAppendable::NewChunk(r);
        }
        let (p, n) = h.spans();
        let (positive_inserts, backward_positive_inserts, positive_spans) =
            expand_spans_both_ways(&self.layout.positive_spans, p);
        let (negative_inserts, backward_negative_inserts, negative_spans) =
            expand_spans_both_ways(&self.layout.negative_spans, n);
        GaugeAppendable::Append {
            positive_inserts,
            negative_inserts,
            backward_positive_inserts,
            backward_negative_inserts,
            positive_spans,
            negative_spans,
        }
    }
}

/// Inserts new (empty) buckets into `h` (Prometheus's `RecodeHistogram`).
pub(crate) fn insert_buckets<H: ChunkHistogram>(
    h: &mut H,
    positive: &[Insert],
    negative: &[Insert],
) {
    let (p, n) = h.buckets_mut();
    if !positive.is_empty() {
        *p = insert(p, positive, H::DELTAS);
    }
    if !negative.is_empty() {
        *n = insert(n, negative, H::DELTAS);
    }
}

/// The payload accessors of both appenders (fields `buf`, the payload, and `s.t`, the last
/// timestamp): BE16 sample count, then the header byte (§1.6).
macro_rules! payload_methods {
    () => {
        /// The payload (what follows the encoding byte on disk).
        pub fn bytes(&self) -> &[u8] {
            &self.buf
        }

        /// The payload, by value.
        pub fn into_bytes(self) -> Vec<u8> {
            self.buf
        }

        /// Number of samples.
        pub fn num_samples(&self) -> u16 {
            u16::from_be_bytes([self.buf[0], self.buf[1]])
        }

        /// Timestamp of the last sample, if any.
        pub fn last_time(&self) -> Option<i64> {
            (self.num_samples() > 0).then_some(self.s.t)
        }

        /// The chunk's counter-reset header.
        pub fn counter_reset_header(&self) -> CounterResetHeader {
            CounterResetHeader::from_byte(self.buf[2])
        }

        /// Sets the chunk's counter-reset header.
        pub fn set_counter_reset_header(&mut self, h: CounterResetHeader) {
            self.buf[2] = (self.buf[2] & 0b0011_1111) | h.bits();
        }
    };
}
pub(crate) use payload_methods;

/// The appender operations [`push`] and [`recode`] use.
pub(crate) trait ChunkAppender: Default {
    type H: ChunkHistogram;
    fn num_samples(&self) -> u16;
    fn counter_reset_header(&self) -> CounterResetHeader;
    fn set_counter_reset_header(&mut self, h: CounterResetHeader);
    fn appendable(&self, h: &Self::H) -> Appendable;
    fn appendable_gauge(&self, h: &Self::H) -> GaugeAppendable;
    fn append(&mut self, t: i64, h: &Self::H) -> Result<(), AppendError>;
    /// Calls `f` with every sample of the chunk, decoded into `h`.
    fn each_sample(
        &self,
        h: &mut Self::H,
        f: impl FnMut(i64, &mut Self::H) -> Result<(), AppendError>,
    ) -> Result<(), AppendError>;
}

macro_rules! chunk_appender {
    ($a:ty, $h:ty, $iter:ident) => {
        impl $crate::chunkenc::histogram_shared::ChunkAppender for $a {
            type H = $h;
            fn num_samples(&self) -> u16 {
                <$a>::num_samples(self)
            }
            fn counter_reset_header(&self) -> CounterResetHeader {
                <$a>::counter_reset_header(self)
            }
            fn set_counter_reset_header(&mut self, h: CounterResetHeader) {
                <$a>::set_counter_reset_header(self, h)
            }
            fn appendable(&self, h: &$h) -> Appendable {
                <$a>::appendable(self, h)
            }
            fn appendable_gauge(&self, h: &$h) -> GaugeAppendable {
                <$a>::appendable_gauge(self, h)
            }
            fn append(&mut self, t: i64, h: &$h) -> Result<(), AppendError> {
                <$a>::append(self, t, h)
            }
            fn each_sample(
                &self,
                h: &mut $h,
                mut f: impl FnMut(i64, &mut $h) -> Result<(), AppendError>,
            ) -> Result<(), AppendError> {
                let mut it = $iter::new(&self.buf);
                while let Some(r) = it.next_sample() {
                    let t =
                        r.expect("an appender's chunk decodes: appends and from_chunk ensure it");
                    it.at_into(h);
                    f(t, h)?;
                }
                Ok(())
            }
        }
    };
}
pub(crate) use chunk_appender;

/// The chunk re-encoded with new (empty) buckets inserted into every sample and the layout
/// `positive_spans`/`negative_spans` (Prometheus's `Recode`: decode and append again, same
/// header). Fails if the inserts do not turn the chunk's buckets into the given spans'
/// buckets.
pub(crate) fn recode<A: ChunkAppender>(
    a: &A,
    positive_inserts: &[Insert],
    negative_inserts: &[Insert],
    positive_spans: &[Span],
    negative_spans: &[Span],
) -> Result<A, AppendError> {
    let mut out = A::default();
    let mut h = A::H::default();
    a.each_sample(&mut h, |t, h| {
        if !h.is_stale() {
            let (p, n) = h.spans_mut();
            p.clear();
            p.extend_from_slice(positive_spans);
            n.clear();
            n.extend_from_slice(negative_spans);
            insert_buckets(h, positive_inserts, negative_inserts);
        }
        out.append(t, h)
    })?;
    out.set_counter_reset_header(a.counter_reset_header());
    Ok(out)
}

/// The checks of `append` (Prometheus's `AppendHistogram`), in its order, for a chunk of
/// `num` samples with `chunk_buckets` (positive, negative) buckets: returns what to write,
/// `h` or the stale marker for any stale histogram.
pub(crate) fn check_append<H: ChunkHistogram>(
    num: u16,
    last_is_stale: bool,
    chunk_buckets: (usize, usize),
    h: &H,
) -> Result<Cow<'_, H>, AppendError> {
    if num == u16::MAX {
        return Err(AppendError::ChunkFull);
    }
    let stale = h.is_stale();
    if num > 0 && !stale && last_is_stale {
        return Err(AppendError::AfterStaleMarker);
    }
    let h = if stale {
        Cow::Owned(H::stale_marker())
    } else {
        Cow::Borrowed(h)
    };
    let ((ps, ns), (pb, nb)) = (h.spans(), h.buckets());
    if num == 0 {
        check_layout_counts(ps, pb.len(), Side::Positive)?;
        check_layout_counts(ns, nb.len(), Side::Negative)?;
    } else if !stale {
        check_bucket_count(chunk_buckets.0, pb.len(), Side::Positive)?;
        check_bucket_count(chunk_buckets.1, nb.len(), Side::Negative)?;
    }
    Ok(h)
}

/// Appends `h` at `t` the way Prometheus 2.42's head does (`memSeries.appendHistogram` and
/// `appendFloatHistogram`); see [`HistogramAppender::push`](super::HistogramAppender::push).
pub(crate) fn push<A: ChunkAppender>(
    a: &mut A,
    t: i64,
    mut h: A::H,
    cut: bool,
) -> Result<Pushed<A>, AppendError> {
    if !h.is_stale() {
        let ((ps, ns), (pb, nb)) = (h.spans(), h.buckets());
        check_push(ps, pb.len(), Side::Positive)?;
        check_push(ns, nb.len(), Side::Negative)?;
    }
    let empty = a.num_samples() == 0;
    let (mut gauge, mut counter_reset, mut ok) = (false, false, false);
    let mut reason = None;
    let mut forward = (Vec::new(), Vec::new());
    let mut backward = (Vec::new(), Vec::new());
    let mut merged = (Vec::new(), Vec::new());
    match h.hint() {
        CounterResetHint::Gauge => {
            gauge = true;
            if !empty {
                match a.appendable_gauge(&h) {
                    GaugeAppendable::Append {
                        positive_inserts,
                        negative_inserts,
                        backward_positive_inserts,
                        backward_negative_inserts,
                        positive_spans,
                        negative_spans,
                    } => {
                        ok = true;
                        forward = (positive_inserts, negative_inserts);
                        backward = (backward_positive_inserts, backward_negative_inserts);
                        merged = (positive_spans, negative_spans);
                    }
                    GaugeAppendable::NewChunk(r) => reason = Some(r),
                }
            }
        }
        CounterResetHint::CounterReset => {
            counter_reset = true;
            reason = Some(NewChunkReason::CounterReset);
        }
        _ if empty => {}
        _ => match a.appendable(&h) {
            Appendable::Append => ok = true,
            Appendable::Recode {
                positive_inserts,
                negative_inserts,
            } => {
                ok = true;
                forward = (positive_inserts, negative_inserts);
            }
            Appendable::NewChunk(r) => {
                counter_reset = r == NewChunkReason::CounterReset;
                reason = Some(r);
            }
        },
    }
    let full = a.num_samples() == u16::MAX;
    if !(cut || empty || full) {
        if !backward.0.is_empty() || !backward.1.is_empty() {
            let (p, n) = h.spans_mut();
            (*p, *n) = merged;
            insert_buckets(&mut h, &backward.0, &backward.1);
        }
        if ok && !counter_reset {
            let pushed = if forward.0.is_empty() && forward.1.is_empty() {
                Pushed::Appended
            } else {
                let (ps, ns) = h.spans();
                *a = recode(a, &forward.0, &forward.1, ps, ns)
                    .expect("appendable's inserts widen the chunk to the histogram's spans");
                Pushed::Recoded
            };
            a.append(t, &h)
                .expect("the recoded chunk has the histogram's buckets");
            return Ok(pushed);
        }
    }
    let header = new_chunk_header(gauge, counter_reset, ok);
    let previous = std::mem::take(a);
    let completed = (!empty).then_some(previous);
    a.set_counter_reset_header(header);
    a.append(t, &h)
        .expect("a histogram whose buckets match its spans starts a chunk");
    Ok(Pushed::Cut {
        completed,
        header,
        reason,
    })
}

/// Checks that a later sample has exactly the chunk's number of buckets on one side.
fn check_bucket_count(chunk: usize, h: usize, side: Side) -> Result<(), AppendError> {
    if chunk != h {
        return Err(AppendError::BucketCountMismatch {
            side,
            expected: chunk as u64,
            got: h,
        });
    }
    Ok(())
}

/// The sample-level decoding of one chunk encoding, driven by [`Cursor`].
pub(crate) trait SampleDecoder {
    /// The error for a payload shorter than its header.
    const SHORT_HEADER: &'static str;
    /// The error for data that ends inside a sample.
    const OVERRUN: &'static str;
    /// Reads the layout and the first sample.
    fn decode_first(&mut self, r: &mut BitReader<'_>, end_bit: usize) -> Result<(), &'static str>;
    /// Reads a later sample.
    fn decode_next(&mut self, r: &mut BitReader<'_>) -> Result<(), &'static str>;
    /// The current sample's timestamp.
    fn t(&self) -> i64;
}

/// Where a histogram chunk iterator stands: the bit reader and the sample counts. Never panics:
/// damage yields one `Err` with the byte offset of the failing sample, then the end.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    pub(crate) r: BitReader<'a>,
    pub(crate) end_bit: usize,
    pub(crate) num_total: u16,
    /// Samples to decode: `num_total`, 1 to report a short header, or the count read when an
    /// error ended the iteration.
    limit: u16,
    pub(crate) num_read: u16,
    /// Whether an error ended the iteration (the state is then not a sample).
    failed: bool,
    pub(crate) header: CounterResetHeader,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(chunk: &'a [u8]) -> Self {
        let (num_total, limit, header) = match chunk {
            [a, b, c, ..] => {
                let n = u16::from_be_bytes([*a, *b]);
                (n, n, CounterResetHeader::from_byte(*c))
            }
            _ => (0, 1, CounterResetHeader::Unknown),
        };
        Cursor {
            r: BitReader::new(chunk, HIST_HEADER_LEN * 8),
            end_bit: chunk.len() * 8,
            num_total,
            limit,
            num_read: 0,
            failed: false,
            header,
        }
    }

    /// Decodes the next sample into `d` and returns its timestamp; `None` at the end (or
    /// after an error).
    pub(crate) fn next_sample<D: SampleDecoder>(
        &mut self,
        d: &mut D,
    ) -> Option<Result<i64, DecodeError>> {
        if self.num_read >= self.limit {
            return None;
        }
        let start = self.r.pos();
        let res = if self.limit > self.num_total {
            Err(D::SHORT_HEADER)
        } else if self.num_read == 0 {
            d.decode_first(&mut self.r, self.end_bit)
        } else {
            d.decode_next(&mut self.r)
        };
        let res = res.and_then(|()| {
            if self.r.overran() {
                Err(D::OVERRUN)
            } else {
                Ok(())
            }
        });
        match res {
            Ok(()) => {
                self.num_read += 1;
                Some(Ok(d.t()))
            }
            Err(reason) => {
                self.limit = self.num_read;
                self.failed = true;
                Some(Err(DecodeError {
                    offset: start / 8,
                    reason,
                }))
            }
        }
    }

    /// Advances to the first sample at or after `t` (the current one counts, as Prometheus's
    /// `Seek`) and returns its timestamp.
    pub(crate) fn seek<D: SampleDecoder>(
        &mut self,
        d: &mut D,
        t: i64,
    ) -> Option<Result<i64, DecodeError>> {
        if self.failed {
            return None;
        }
        if self.num_read > 0 && d.t() >= t {
            return Some(Ok(d.t()));
        }
        loop {
            match self.next_sample(d)? {
                Ok(x) if x < t => {}
                other => return Some(other),
            }
        }
    }
}
