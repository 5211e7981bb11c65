//! The float native-histogram chunk (encoding 3, Prometheus 2.42
//! `tsdb/chunkenc/float_histogram.go`; format brief §1.6, Prometheus
//! `tsdb/docs/format/chunks.md`).
//!
//! Same header and layout as the integer chunk; the first sample stores its timestamp as a
//! varbit integer and count, zero count, sum and every bucket as raw 64-bit floats; later
//! samples store a varbit timestamp delta-of-delta and every float XOR-coded against the same
//! field of the previous sample, each field with its own XOR window.

use super::bstream::BitReader;
use super::histogram::resume_state;
use super::histogram_meta::{
    check_layout_counts, check_push, counter_reset_in_any_bucket, expand_spans_both_ways,
    expand_spans_forward, insert, new_chunk_header, read_layout, write_layout, AppendError,
    Appendable, CounterResetHeader, GaugeAppendable, Insert, Layout, NewChunkReason, Pushed,
    HIST_HEADER_LEN,
};
use super::varbit::{read_varbit_int, read_xor, HistBits};
use crate::encoding::DecodeError;
use crate::model::histogram::{span_buckets, CounterResetHint, FloatHistogram, Side, Span};
use crate::model::STALE_NAN_BITS;

/// One XOR-coded float field: its last value's bits and its window (`xorValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct XorField {
    bits: u64,
    leading: u8,
    trailing: u8,
}

impl XorField {
    /// A field of a fresh appender: no window yet.
    const FRESH: XorField = XorField {
        bits: 0,
        leading: 0xff,
        trailing: 0,
    };

    /// A field of an iterator: window `(0, 0)`, as Prometheus's iterator starts.
    const READ: XorField = XorField {
        bits: 0,
        leading: 0,
        trailing: 0,
    };

    fn value(&self) -> f64 {
        f64::from_bits(self.bits)
    }

    fn write(&mut self, w: &mut HistBits<'_>, v: f64) {
        w.xor(
            v.to_bits(),
            self.bits,
            &mut self.leading,
            &mut self.trailing,
        );
        self.bits = v.to_bits();
    }

    fn read(&mut self, r: &mut BitReader<'_>) -> Result<(), &'static str> {
        read_xor(r, &mut self.bits, &mut self.leading, &mut self.trailing)
    }
}

/// Builds a float histogram chunk payload, byte-identical to what Prometheus 2.42 writes;
/// the same two levels of API as [`HistogramAppender`](super::HistogramAppender).
#[derive(Debug, Clone)]
pub struct FloatHistogramAppender {
    buf: Vec<u8>,
    state: (u8, u8),
    layout: Layout,
    t: i64,
    t_delta: i64,
    sum: XorField,
    cnt: XorField,
    zcnt: XorField,
    p_buckets: Vec<XorField>,
    n_buckets: Vec<XorField>,
}

impl Default for FloatHistogramAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl FloatHistogramAppender {
    /// An empty chunk (count 0, header unknown).
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[0; HIST_HEADER_LEN]);
        FloatHistogramAppender {
            buf,
            state: (0, 0),
            layout: Layout::default(),
            t: 0,
            t_delta: 0,
            sum: XorField::FRESH,
            cnt: XorField::FRESH,
            zcnt: XorField::FRESH,
            p_buckets: Vec::new(),
            n_buckets: Vec::new(),
        }
    }

    /// Re-opens a chunk payload for appending with the state Prometheus's `Appender()`
    /// rebuilds by iterating (every field's XOR window as the iterator left it); see
    /// [`HistogramAppender::from_chunk`](super::HistogramAppender::from_chunk).
    pub fn from_chunk(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        let mut it = FloatHistogramIter::new(&bytes);
        while let Some(r) = it.next_sample() {
            r?;
        }
        let num = it.num_total;
        let state = resume_state(
            &bytes,
            if num == 0 {
                HIST_HEADER_LEN * 8
            } else {
                it.r.pos()
            },
        )?;
        let FloatHistogramIter {
            layout,
            t,
            t_delta,
            mut sum,
            mut cnt,
            mut zcnt,
            p_buckets,
            n_buckets,
            ..
        } = it;
        if num == 0 {
            (sum, cnt, zcnt) = (XorField::FRESH, XorField::FRESH, XorField::FRESH);
        }
        Ok(FloatHistogramAppender {
            buf: bytes,
            state,
            layout,
            t,
            t_delta,
            sum,
            cnt,
            zcnt,
            p_buckets,
            n_buckets,
        })
    }

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
        (self.num_samples() > 0).then_some(self.t)
    }

    /// The chunk's counter-reset header.
    pub fn counter_reset_header(&self) -> CounterResetHeader {
        CounterResetHeader::from_byte(self.buf[2])
    }

    /// Sets the chunk's counter-reset header.
    pub fn set_counter_reset_header(&mut self, h: CounterResetHeader) {
        self.buf[2] = (self.buf[2] & 0b0011_1111) | h.bits();
    }

    fn last_is_stale(&self) -> bool {
        self.sum.bits == STALE_NAN_BITS
    }

    fn layout_change(&self, schema: i32, zero_threshold: f64) -> Option<NewChunkReason> {
        if schema != self.layout.schema {
            Some(NewChunkReason::SchemaChanged)
        } else if zero_threshold != self.layout.zero_threshold {
            Some(NewChunkReason::ZeroThresholdChanged)
        } else {
            None
        }
    }

    /// Whether the counter histogram `h` can be appended; the rules and their order are those
    /// of [`HistogramAppender::appendable`](super::HistogramAppender::appendable), with float
    /// comparisons (a NaN count is never smaller).
    pub fn appendable(&self, h: &FloatHistogram) -> Appendable {
        if self.num_samples() == 0 {
            return Appendable::Append;
        }
        if self.counter_reset_header() == CounterResetHeader::Gauge {
            return Appendable::NewChunk(NewChunkReason::KindChanged);
        }
        if h.is_stale() {
            return Appendable::Append;
        }
        if self.last_is_stale() {
            return Appendable::NewChunk(NewChunkReason::AfterStaleMarker);
        }
        if h.count < self.cnt.value() {
            return Appendable::NewChunk(NewChunkReason::CounterReset);
        }
        if let Some(r) = self.layout_change(h.schema, h.zero_threshold) {
            return Appendable::NewChunk(r);
        }
        if h.zero_count < self.zcnt.value() {
            return Appendable::NewChunk(NewChunkReason::CounterReset);
        }
        let Some(positive_inserts) =
            expand_spans_forward(&self.layout.positive_spans, &h.positive_spans)
        else {
            return Appendable::NewChunk(NewChunkReason::CounterReset);
        };
        let Some(negative_inserts) =
            expand_spans_forward(&self.layout.negative_spans, &h.negative_spans)
        else {
            return Appendable::NewChunk(NewChunkReason::CounterReset);
        };
        let values = |b: &[XorField]| b.iter().map(XorField::value).collect::<Vec<f64>>();
        if counter_reset_in_any_bucket(
            &self.layout.positive_spans,
            &values(&self.p_buckets),
            &h.positive_spans,
            &h.positive_buckets,
        ) || counter_reset_in_any_bucket(
            &self.layout.negative_spans,
            &values(&self.n_buckets),
            &h.negative_spans,
            &h.negative_buckets,
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

    /// Whether the gauge histogram `h` can be appended (`AppendableGauge`), as for integer
    /// chunks.
    pub fn appendable_gauge(&self, h: &FloatHistogram) -> GaugeAppendable {
        if self.num_samples() > 0 && self.counter_reset_header() != CounterResetHeader::Gauge {
            return GaugeAppendable::NewChunk(NewChunkReason::KindChanged);
        }
        if h.is_stale() || self.num_samples() == 0 {
            return GaugeAppendable::Append {
                positive_inserts: Vec::new(),
                negative_inserts: Vec::new(),
                backward_positive_inserts: Vec::new(),
                backward_negative_inserts: Vec::new(),
                positive_spans: Vec::new(),
                negative_spans: Vec::new(),
            };
        }
        if self.last_is_stale() {
            return GaugeAppendable::NewChunk(NewChunkReason::AfterStaleMarker);
        }
        if let Some(r) = self.layout_change(h.schema, h.zero_threshold) {
            return GaugeAppendable::NewChunk(r);
        }
        let (positive_inserts, backward_positive_inserts, positive_spans) =
            expand_spans_both_ways(&self.layout.positive_spans, &h.positive_spans);
        let (negative_inserts, backward_negative_inserts, negative_spans) =
            expand_spans_both_ways(&self.layout.negative_spans, &h.negative_spans);
        GaugeAppendable::Append {
            positive_inserts,
            negative_inserts,
            backward_positive_inserts,
            backward_negative_inserts,
            positive_spans,
            negative_spans,
        }
    }

    /// The chunk re-encoded with new (zero) buckets and the given layout (`Recode`).
    pub fn recode(
        &self,
        positive_inserts: &[Insert],
        negative_inserts: &[Insert],
        positive_spans: &[Span],
        negative_spans: &[Span],
    ) -> Result<FloatHistogramAppender, AppendError> {
        let mut out = FloatHistogramAppender::new();
        let mut it = FloatHistogramIter::new(&self.buf);
        let mut h = FloatHistogram::default();
        while let Some(r) = it.next_sample() {
            let t = r.expect("an appender's chunk decodes: appends and from_chunk ensure it");
            it.at_into(&mut h);
            if !h.is_stale() {
                h.positive_spans.clear();
                h.positive_spans.extend_from_slice(positive_spans);
                h.negative_spans.clear();
                h.negative_spans.extend_from_slice(negative_spans);
                if !positive_inserts.is_empty() {
                    h.positive_buckets = insert(&h.positive_buckets, positive_inserts, false);
                }
                if !negative_inserts.is_empty() {
                    h.negative_buckets = insert(&h.negative_buckets, negative_inserts, false);
                }
            }
            out.append(t, &h)?;
        }
        out.set_counter_reset_header(self.counter_reset_header());
        Ok(out)
    }

    /// Inserts new (zero) buckets into a gauge histogram whose spans the caller has set to the
    /// merged spans (`RecodeHistogramm`).
    pub fn recode_histogram(h: &mut FloatHistogram, positive: &[Insert], negative: &[Insert]) {
        if !positive.is_empty() {
            h.positive_buckets = insert(&h.positive_buckets, positive, false);
        }
        if !negative.is_empty() {
            h.negative_buckets = insert(&h.negative_buckets, negative, false);
        }
    }

    /// Appends `h` at `t` (`AppendFloatHistogram`); the rules of
    /// [`HistogramAppender::append`](super::HistogramAppender::append).
    pub fn append(&mut self, t: i64, h: &FloatHistogram) -> Result<(), AppendError> {
        let num = self.num_samples();
        if num == u16::MAX {
            return Err(AppendError::ChunkFull);
        }
        let stale = h.is_stale();
        if num > 0 && !stale && self.last_is_stale() {
            return Err(AppendError::AfterStaleMarker);
        }
        let stale_marker;
        let h = if stale {
            stale_marker = FloatHistogram::stale_marker();
            &stale_marker
        } else {
            h
        };
        if num == 0 {
            check_layout_counts(&h.positive_spans, h.positive_buckets.len(), Side::Positive)?;
            check_layout_counts(&h.negative_spans, h.negative_buckets.len(), Side::Negative)?;
            self.append_first(t, h);
        } else {
            if !stale {
                check_count(
                    self.p_buckets.len(),
                    h.positive_buckets.len(),
                    Side::Positive,
                )?;
                check_count(
                    self.n_buckets.len(),
                    h.negative_buckets.len(),
                    Side::Negative,
                )?;
            }
            self.append_next(t, h);
        }
        self.t = t;
        self.buf[..2].copy_from_slice(&(num + 1).to_be_bytes());
        Ok(())
    }

    fn append_first(&mut self, t: i64, h: &FloatHistogram) {
        self.layout = Layout {
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            positive_spans: h.positive_spans.clone(),
            negative_spans: h.negative_spans.clone(),
        };
        let mut w = HistBits::resume(&mut self.buf, self.state);
        write_layout(&mut w, &self.layout);
        w.varbit_int(t);
        for v in [h.count, h.zero_count, h.sum] {
            w.bits(v.to_bits(), 64);
        }
        for &b in h.positive_buckets.iter().chain(&h.negative_buckets) {
            w.bits(b.to_bits(), 64);
        }
        self.state = w.finish();
        self.cnt.bits = h.count.to_bits();
        self.zcnt.bits = h.zero_count.to_bits();
        self.sum.bits = h.sum.to_bits();
        let fresh = |b: &f64| XorField {
            bits: b.to_bits(),
            ..XorField::FRESH
        };
        self.p_buckets = h.positive_buckets.iter().map(fresh).collect();
        self.n_buckets = h.negative_buckets.iter().map(fresh).collect();
        self.t_delta = 0;
    }

    fn append_next(&mut self, t: i64, h: &FloatHistogram) {
        let t_delta = t.wrapping_sub(self.t);
        let mut w = HistBits::resume(&mut self.buf, self.state);
        w.varbit_int(t_delta.wrapping_sub(self.t_delta));
        self.cnt.write(&mut w, h.count);
        self.zcnt.write(&mut w, h.zero_count);
        self.sum.write(&mut w, h.sum);
        // Empty for stale markers, else as long as the chunk's buckets (checked).
        for (f, &v) in self.p_buckets.iter_mut().zip(&h.positive_buckets) {
            f.write(&mut w, v);
        }
        for (f, &v) in self.n_buckets.iter_mut().zip(&h.negative_buckets) {
            f.write(&mut w, v);
        }
        self.state = w.finish();
        self.t_delta = t_delta;
    }

    /// Appends `h` at `t` as Prometheus 2.42's head does (`memSeries.appendFloatHistogram`);
    /// see [`HistogramAppender::push`](super::HistogramAppender::push).
    pub fn push(
        &mut self,
        t: i64,
        mut h: FloatHistogram,
        cut: bool,
    ) -> Result<Pushed<FloatHistogramAppender>, AppendError> {
        if !h.is_stale() {
            check_push(&h.positive_spans, h.positive_buckets.len(), Side::Positive)?;
            check_push(&h.negative_spans, h.negative_buckets.len(), Side::Negative)?;
        }
        let empty = self.num_samples() == 0;
        let (mut gauge, mut counter_reset, mut ok) = (false, false, false);
        let mut reason = None;
        let mut forward = (Vec::new(), Vec::new());
        let mut backward = (Vec::new(), Vec::new());
        let mut merged = (Vec::new(), Vec::new());
        match h.counter_reset_hint {
            CounterResetHint::Gauge => {
                gauge = true;
                if !empty {
                    match self.appendable_gauge(&h) {
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
            _ => match self.appendable(&h) {
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
        let full = self.num_samples() == u16::MAX;
        if !(cut || empty || full) {
            if !backward.0.is_empty() || !backward.1.is_empty() {
                (h.positive_spans, h.negative_spans) = merged;
                Self::recode_histogram(&mut h, &backward.0, &backward.1);
            }
            if ok && !counter_reset {
                let pushed = if forward.0.is_empty() && forward.1.is_empty() {
                    Pushed::Appended
                } else {
                    *self = self
                        .recode(&forward.0, &forward.1, &h.positive_spans, &h.negative_spans)
                        .expect("appendable's inserts widen the chunk to the histogram's spans");
                    Pushed::Recoded
                };
                self.append(t, &h)
                    .expect("the recoded chunk has the histogram's buckets");
                return Ok(pushed);
            }
        }
        let header = new_chunk_header(gauge, counter_reset, ok);
        let previous = std::mem::take(self);
        let completed = (!empty).then_some(previous);
        self.set_counter_reset_header(header);
        self.append(t, &h)
            .expect("a histogram whose buckets match its spans starts a chunk");
        Ok(Pushed::Cut {
            completed,
            header,
            reason,
        })
    }
}

fn check_count(chunk: usize, h: usize, side: Side) -> Result<(), AppendError> {
    if chunk != h {
        return Err(AppendError::BucketCountMismatch {
            side,
            expected: chunk as u64,
            got: h,
        });
    }
    Ok(())
}

/// Iterator over the samples of a float histogram chunk payload; the contract of
/// [`HistogramIter`](super::HistogramIter).
#[derive(Debug, Clone)]
pub struct FloatHistogramIter<'a> {
    r: BitReader<'a>,
    end_bit: usize,
    num_total: u16,
    limit: u16,
    num_read: u16,
    failed: bool,
    header: CounterResetHeader,
    layout: Layout,
    t: i64,
    t_delta: i64,
    sum: XorField,
    cnt: XorField,
    zcnt: XorField,
    p_buckets: Vec<XorField>,
    n_buckets: Vec<XorField>,
}

impl<'a> FloatHistogramIter<'a> {
    /// An iterator over `chunk`; errors surface from [`next_sample`](Self::next_sample).
    pub fn new(chunk: &'a [u8]) -> Self {
        let (num_total, limit, header) = match chunk {
            [a, b, c, ..] => {
                let n = u16::from_be_bytes([*a, *b]);
                (n, n, CounterResetHeader::from_byte(*c))
            }
            _ => (0, 1, CounterResetHeader::Unknown),
        };
        FloatHistogramIter {
            r: BitReader::new(chunk, HIST_HEADER_LEN * 8),
            end_bit: chunk.len() * 8,
            num_total,
            limit,
            num_read: 0,
            failed: false,
            header,
            layout: Layout::default(),
            t: 0,
            t_delta: 0,
            sum: XorField::READ,
            cnt: XorField::READ,
            zcnt: XorField::READ,
            p_buckets: Vec::new(),
            n_buckets: Vec::new(),
        }
    }

    /// The header's sample count.
    pub fn num_samples(&self) -> u16 {
        self.num_total
    }

    /// The chunk's counter-reset header.
    pub fn counter_reset_header(&self) -> CounterResetHeader {
        self.header
    }

    /// Decodes the next sample and returns its timestamp; `None` at the end (or after an
    /// error).
    pub fn next_sample(&mut self) -> Option<Result<i64, DecodeError>> {
        if self.num_read >= self.limit {
            return None;
        }
        let start = self.r.pos();
        let res = if self.limit > self.num_total {
            Err("float histogram chunk shorter than its 3-byte header")
        } else if self.num_read == 0 {
            self.decode_first()
        } else {
            self.decode_next()
        };
        let res = res.and_then(|()| {
            if self.r.overran() {
                Err("float histogram chunk data ends inside a sample")
            } else {
                Ok(())
            }
        });
        match res {
            Ok(()) => {
                self.num_read += 1;
                Some(Ok(self.t))
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

    /// Advances to the first sample at or after `t` (the current one counts) and returns its
    /// timestamp.
    pub fn seek(&mut self, t: i64) -> Option<Result<i64, DecodeError>> {
        if self.failed {
            return None;
        }
        if self.num_read > 0 && self.t >= t {
            return Some(Ok(self.t));
        }
        loop {
            match self.next_sample()? {
                Ok(x) if x < t => {}
                other => return Some(other),
            }
        }
    }

    fn decode_first(&mut self) -> Result<(), &'static str> {
        self.layout = read_layout(&mut self.r, self.end_bit)?;
        let np = span_buckets(&self.layout.positive_spans);
        let nn = span_buckets(&self.layout.negative_spans);
        // Each bucket of the first sample takes 64 bits.
        if np.saturating_add(nn) > (self.end_bit.saturating_sub(self.r.pos()) / 64) as u64 {
            return Err("float histogram bucket count larger than the chunk");
        }
        self.t = read_varbit_int(&mut self.r);
        self.cnt.bits = self.r.read_bits(64);
        self.zcnt.bits = self.r.read_bits(64);
        self.sum.bits = self.r.read_bits(64);
        let r = &mut self.r;
        let mut raw = |_| XorField {
            bits: r.read_bits(64),
            ..XorField::READ
        };
        self.p_buckets = (0..np).map(&mut raw).collect();
        self.n_buckets = (0..nn).map(&mut raw).collect();
        Ok(())
    }

    fn decode_next(&mut self) -> Result<(), &'static str> {
        let r = &mut self.r;
        self.t_delta = self.t_delta.wrapping_add(read_varbit_int(r));
        self.t = self.t.wrapping_add(self.t_delta);
        self.cnt.read(r)?;
        self.zcnt.read(r)?;
        self.sum.read(r)?;
        if self.sum.bits == STALE_NAN_BITS {
            return Ok(());
        }
        for f in self.p_buckets.iter_mut().chain(self.n_buckets.iter_mut()) {
            f.read(r)?;
            if r.overran() {
                break;
            }
        }
        Ok(())
    }

    /// The current sample; a stale marker comes back as [`FloatHistogram::stale_marker`].
    pub fn at(&self) -> FloatHistogram {
        let mut h = FloatHistogram::default();
        self.at_into(&mut h);
        h
    }

    /// [`at`](Self::at) into `h`, reusing its buffers.
    pub fn at_into(&self, h: &mut FloatHistogram) {
        if self.sum.bits == STALE_NAN_BITS {
            *h = FloatHistogram::stale_marker();
            return;
        }
        h.counter_reset_hint = self.header.hint_for(self.num_read);
        h.schema = self.layout.schema;
        h.zero_threshold = self.layout.zero_threshold;
        h.zero_count = self.zcnt.value();
        h.count = self.cnt.value();
        h.sum = self.sum.value();
        h.positive_spans.clone_from(&self.layout.positive_spans);
        h.negative_spans.clone_from(&self.layout.negative_spans);
        h.positive_buckets.clear();
        h.positive_buckets
            .extend(self.p_buckets.iter().map(XorField::value));
        h.negative_buckets.clear();
        h.negative_buckets
            .extend(self.n_buckets.iter().map(XorField::value));
    }
}

impl Iterator for FloatHistogramIter<'_> {
    type Item = Result<(i64, FloatHistogram), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_sample()?.map(|t| (t, self.at())))
    }
}

#[cfg(test)]
#[path = "float_histogram_tests.rs"]
mod tests;
