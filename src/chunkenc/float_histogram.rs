//! The float native-histogram chunk (encoding 3, Prometheus 2.42
//! `tsdb/chunkenc/float_histogram.go`; format brief §1.6, Prometheus
//! `tsdb/docs/format/chunks.md`).
//!
//! Same header and layout as the integer chunk; the first sample stores its timestamp as a
//! varbit integer and count, zero count, sum and every bucket as raw 64-bit floats; later
//! samples store a varbit timestamp delta-of-delta and every float XOR-coded against the same
//! field of the previous sample, each field with its own XOR window.

use std::borrow::Cow;

use super::bstream::BitReader;
use super::histogram::resume_state;
use super::histogram_meta::{
    read_layout, write_layout, AppendError, Appendable, CounterResetHeader, GaugeAppendable,
    Insert, Layout, Pushed, HIST_HEADER_LEN,
};
use super::histogram_shared::{
    check_append, chunk_appender, insert_buckets, payload_methods, push, recode, ChunkTail, Cursor,
    SampleDecoder,
};
use super::varbit::{read_varbit_int, read_xor, HistBits};
use crate::encoding::DecodeError;
use crate::model::histogram::{span_buckets, FloatHistogram, Span};
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
    /// The last sample written, as the iterator holds it after reading it.
    s: FloatSamples,
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
            s: FloatSamples::fresh(),
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
        let num = it.cur.num_total;
        let state = resume_state(
            &bytes,
            if num == 0 {
                HIST_HEADER_LEN * 8
            } else {
                it.cur.r.pos()
            },
        )?;
        let mut s = it.s;
        if num == 0 {
            (s.sum, s.cnt, s.zcnt) = (XorField::FRESH, XorField::FRESH, XorField::FRESH);
        }
        Ok(FloatHistogramAppender {
            buf: bytes,
            state,
            s,
        })
    }

    payload_methods!();

    fn last_is_stale(&self) -> bool {
        self.s.sum.bits == STALE_NAN_BITS
    }

    /// Whether the counter histogram `h` can be appended; the rules and their order are those
    /// of [`HistogramAppender::appendable`](super::HistogramAppender::appendable), with float
    /// comparisons (a NaN count is never smaller).
    pub fn appendable(&self, h: &FloatHistogram) -> Appendable {
        let values = |b: &[XorField]| b.iter().map(XorField::value).collect::<Vec<f64>>();
        self.tail().appendable(h, || {
            (
                Cow::Owned(values(&self.s.p_buckets)),
                Cow::Owned(values(&self.s.n_buckets)),
            )
        })
    }

    fn tail(&self) -> ChunkTail<'_, FloatHistogram> {
        ChunkTail {
            num_samples: self.num_samples(),
            header: self.counter_reset_header(),
            last_is_stale: self.last_is_stale(),
            layout: &self.s.layout,
            counts: (self.s.cnt.value(), self.s.zcnt.value()),
        }
    }

    /// Whether the gauge histogram `h` can be appended (`AppendableGauge`), as for integer
    /// chunks.
    pub fn appendable_gauge(&self, h: &FloatHistogram) -> GaugeAppendable {
        self.tail().appendable_gauge(h)
    }

    /// The chunk re-encoded with new (zero) buckets and the given layout (`Recode`).
    pub fn recode(
        &self,
        positive_inserts: &[Insert],
        negative_inserts: &[Insert],
        positive_spans: &[Span],
        negative_spans: &[Span],
    ) -> Result<FloatHistogramAppender, AppendError> {
        recode(
            self,
            positive_inserts,
            negative_inserts,
            positive_spans,
            negative_spans,
        )
    }

    /// Inserts new (zero) buckets into a gauge histogram whose spans the caller has set to the
    /// merged spans (`RecodeHistogramm`).
    pub fn recode_histogram(h: &mut FloatHistogram, positive: &[Insert], negative: &[Insert]) {
        insert_buckets(h, positive, negative);
    }

    /// Appends `h` at `t` (`AppendFloatHistogram`); the rules of
    /// [`HistogramAppender::append`](super::HistogramAppender::append).
    pub fn append(&mut self, t: i64, h: &FloatHistogram) -> Result<(), AppendError> {
        let num = self.num_samples();
        let chunk_buckets = (self.s.p_buckets.len(), self.s.n_buckets.len());
        let h = check_append(num, self.last_is_stale(), chunk_buckets, h)?;
        if num == 0 {
            self.append_first(t, &h);
        } else {
            self.append_next(t, &h);
        }
        self.s.t = t;
        self.buf[..2].copy_from_slice(&(num + 1).to_be_bytes());
        Ok(())
    }

    fn append_first(&mut self, t: i64, h: &FloatHistogram) {
        self.s.layout = Layout {
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            positive_spans: h.positive_spans.clone(),
            negative_spans: h.negative_spans.clone(),
        };
        let mut w = HistBits::resume(&mut self.buf, self.state);
        write_layout(&mut w, &self.s.layout);
        w.varbit_int(t);
        for v in [h.count, h.zero_count, h.sum] {
            w.bits(v.to_bits(), 64);
        }
        for &b in h.positive_buckets.iter().chain(&h.negative_buckets) {
            w.bits(b.to_bits(), 64);
        }
        self.state = w.finish();
        self.s.cnt.bits = h.count.to_bits();
        self.s.zcnt.bits = h.zero_count.to_bits();
        self.s.sum.bits = h.sum.to_bits();
        let fresh = |b: &f64| XorField {
            bits: b.to_bits(),
            ..XorField::FRESH
        };
        self.s.p_buckets = h.positive_buckets.iter().map(fresh).collect();
        self.s.n_buckets = h.negative_buckets.iter().map(fresh).collect();
        self.s.t_delta = 0;
    }

    fn append_next(&mut self, t: i64, h: &FloatHistogram) {
        let t_delta = t.wrapping_sub(self.s.t);
        let mut w = HistBits::resume(&mut self.buf, self.state);
        w.varbit_int(t_delta.wrapping_sub(self.s.t_delta));
        self.s.cnt.write(&mut w, h.count);
        self.s.zcnt.write(&mut w, h.zero_count);
        self.s.sum.write(&mut w, h.sum);
        // Empty for stale markers, else as long as the chunk's buckets (checked).
        for (f, &v) in self.s.p_buckets.iter_mut().zip(&h.positive_buckets) {
            f.write(&mut w, v);
        }
        for (f, &v) in self.s.n_buckets.iter_mut().zip(&h.negative_buckets) {
            f.write(&mut w, v);
        }
        self.state = w.finish();
        self.s.t_delta = t_delta;
    }

    /// Appends `h` at `t` as Prometheus 2.42's head does (`memSeries.appendFloatHistogram`);
    /// see [`HistogramAppender::push`](super::HistogramAppender::push).
    pub fn push(
        &mut self,
        t: i64,
        h: FloatHistogram,
        cut: bool,
    ) -> Result<Pushed<FloatHistogramAppender>, AppendError> {
        push(self, t, h, cut)
    }
}

chunk_appender!(FloatHistogramAppender, FloatHistogram, FloatHistogramIter);

/// Iterator over the samples of a float histogram chunk payload; the contract of
/// [`HistogramIter`](super::HistogramIter).
#[derive(Debug, Clone)]
pub struct FloatHistogramIter<'a> {
    cur: Cursor<'a>,
    s: FloatSamples,
}

/// The decoding state of a float histogram chunk: the layout, the last timestamp and its
/// delta, and every float field with its XOR window.
#[derive(Debug, Clone)]
struct FloatSamples {
    layout: Layout,
    t: i64,
    t_delta: i64,
    sum: XorField,
    cnt: XorField,
    zcnt: XorField,
    p_buckets: Vec<XorField>,
    n_buckets: Vec<XorField>,
}

impl FloatSamples {
    /// The state of an iterator before the first sample.
    fn read() -> Self {
        FloatSamples {
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

    /// The state of an empty appender.
    fn fresh() -> Self {
        FloatSamples {
            sum: XorField::FRESH,
            cnt: XorField::FRESH,
            zcnt: XorField::FRESH,
            ..Self::read()
        }
    }
}

impl<'a> FloatHistogramIter<'a> {
    /// An iterator over `chunk`; errors surface from [`next_sample`](Self::next_sample).
    pub fn new(chunk: &'a [u8]) -> Self {
        FloatHistogramIter {
            cur: Cursor::new(chunk),
            s: FloatSamples::read(),
        }
    }

    /// The header's sample count.
    pub fn num_samples(&self) -> u16 {
        self.cur.num_total
    }

    /// The chunk's counter-reset header.
    pub fn counter_reset_header(&self) -> CounterResetHeader {
        self.cur.header
    }

    /// Decodes the next sample and returns its timestamp; `None` at the end (or after an
    /// error).
    pub fn next_sample(&mut self) -> Option<Result<i64, DecodeError>> {
        self.cur.next_sample(&mut self.s)
    }

    /// Advances to the first sample at or after `t` (the current one counts) and returns its
    /// timestamp.
    pub fn seek(&mut self, t: i64) -> Option<Result<i64, DecodeError>> {
        self.cur.seek(&mut self.s, t)
    }

    /// The current sample; a stale marker comes back as [`FloatHistogram::stale_marker`].
    pub fn at(&self) -> FloatHistogram {
        let mut h = FloatHistogram::default();
        self.at_into(&mut h);
        h
    }

    /// [`at`](Self::at) into `h`, reusing its buffers.
    pub fn at_into(&self, h: &mut FloatHistogram) {
        if self.s.sum.bits == STALE_NAN_BITS {
            *h = FloatHistogram::stale_marker();
            return;
        }
        h.counter_reset_hint = self.cur.header.hint_for(self.cur.num_read);
        h.schema = self.s.layout.schema;
        h.zero_threshold = self.s.layout.zero_threshold;
        h.zero_count = self.s.zcnt.value();
        h.count = self.s.cnt.value();
        h.sum = self.s.sum.value();
        h.positive_spans.clone_from(&self.s.layout.positive_spans);
        h.negative_spans.clone_from(&self.s.layout.negative_spans);
        h.positive_buckets.clear();
        h.positive_buckets
            .extend(self.s.p_buckets.iter().map(XorField::value));
        h.negative_buckets.clear();
        h.negative_buckets
            .extend(self.s.n_buckets.iter().map(XorField::value));
    }
}

impl Iterator for FloatHistogramIter<'_> {
    type Item = Result<(i64, FloatHistogram), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_sample()?.map(|t| (t, self.at())))
    }
}

impl SampleDecoder for FloatSamples {
    const SHORT_HEADER: &'static str = "float histogram chunk shorter than its 3-byte header";
    const OVERRUN: &'static str = "float histogram chunk data ends inside a sample";

    fn decode_first(&mut self, r: &mut BitReader<'_>, end_bit: usize) -> Result<(), &'static str> {
        self.layout = read_layout(r, end_bit)?;
        let np = span_buckets(&self.layout.positive_spans);
        let nn = span_buckets(&self.layout.negative_spans);
        // Each bucket of the first sample takes 64 bits.
        if np.saturating_add(nn) > (end_bit.saturating_sub(r.pos()) / 64) as u64 {
            return Err("float histogram bucket count larger than the chunk");
        }
        self.t = read_varbit_int(r);
        self.cnt.bits = r.read_bits(64);
        self.zcnt.bits = r.read_bits(64);
        self.sum.bits = r.read_bits(64);
        let mut raw = |_| XorField {
            bits: r.read_bits(64),
            ..XorField::READ
        };
        self.p_buckets = (0..np).map(&mut raw).collect();
        self.n_buckets = (0..nn).map(&mut raw).collect();
        Ok(())
    }

    fn decode_next(&mut self, r: &mut BitReader<'_>) -> Result<(), &'static str> {
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

    fn t(&self) -> i64 {
        self.t
    }
}

#[cfg(test)]
#[path = "float_histogram_tests.rs"]
mod tests;
