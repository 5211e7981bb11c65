//! The integer native-histogram chunk (encoding 2, Prometheus 2.42
//! `tsdb/chunkenc/histogram.go`; format brief §1.6, Prometheus `tsdb/docs/format/chunks.md`).
//!
//! Payload: BE16 sample count, one header byte (top two bits: [`CounterResetHeader`]), then a
//! bit stream: the layout (zero threshold, schema, spans) and the first sample raw (varbit
//! timestamp, varbit count, varbit zero count, 64-bit sum, varbit bucket deltas); every later
//! sample as varbit delta-of-deltas of timestamp, count, zero count and each bucket, and the
//! sum XOR-coded. A stale marker writes only its timestamp, zero count dods and its sum.

use std::borrow::Cow;

use super::bstream::BitReader;
use super::histogram_meta::{
    read_layout, write_layout, AppendError, Appendable, CounterResetHeader, GaugeAppendable,
    Insert, Layout, Pushed, HIST_HEADER_LEN,
};
use super::histogram_shared::{
    check_append, chunk_appender, insert_buckets, payload_methods, push, recode, ChunkTail, Cursor,
    SampleDecoder,
};
use super::varbit::{read_varbit_int, read_varbit_uint, read_xor, HistBits};
use crate::encoding::DecodeError;
use crate::model::histogram::{span_buckets, FloatHistogram, Histogram, Span};
use crate::model::STALE_NAN_BITS;

/// Builds an integer histogram chunk payload, byte-identical to what Prometheus 2.42 writes
/// for the same histograms, recodings and header.
///
/// Two levels: [`appendable`](Self::appendable) / [`appendable_gauge`](Self::appendable_gauge)
/// say what a histogram needs, [`recode`](Self::recode),
/// [`recode_histogram`](Self::recode_histogram) and [`append`](Self::append) do it; or
/// [`push`](Self::push) decides and acts as Prometheus's head does for one chunk sequence.
#[derive(Debug, Clone)]
pub struct HistogramAppender {
    buf: Vec<u8>,
    /// `(tail, free)` of the bit stream, see `bstream.rs`.
    state: (u8, u8),
    /// The last sample written, as the iterator holds it after reading it.
    s: IntSamples,
}

impl Default for HistogramAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl HistogramAppender {
    /// An empty chunk (count 0, header unknown).
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[0; HIST_HEADER_LEN]);
        HistogramAppender {
            buf,
            state: (0, 0),
            s: IntSamples {
                leading: 0xff,
                ..IntSamples::default()
            },
        }
    }

    /// Re-opens a chunk payload for appending, with the state Prometheus's `Appender()`
    /// rebuilds by iterating (so the sum's XOR window is the last one written in full, or
    /// `(0, 0)`; see `XorAppender::from_chunk` for that quirk and for where appending
    /// continues). Fails if the payload does not decode or anything but zero padding follows
    /// the last sample.
    pub fn from_chunk(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        let mut it = HistogramIter::new(&bytes);
        while let Some(r) = it.next_sample() {
            r?;
        }
        let end = it.cur.r.pos();
        let num = it.cur.num_total;
        let state = resume_state(&bytes, if num == 0 { HIST_HEADER_LEN * 8 } else { end })?;
        let mut s = it.s;
        if num == 0 {
            s.leading = 0xff;
        }
        Ok(HistogramAppender {
            buf: bytes,
            state,
            s,
        })
    }

    payload_methods!();

    fn last_is_stale(&self) -> bool {
        self.s.sum == STALE_NAN_BITS
    }

    /// Whether the counter histogram `h` can be appended, in Prometheus 2.42's order of
    /// checks (`HistogramAppender.Appendable`): a gauge chunk takes no counter histograms; a
    /// stale marker always fits; nothing but stale markers follows one; a smaller count is a
    /// counter reset; then schema and zero threshold must match; a smaller zero count,
    /// missing buckets or a smaller bucket are counter resets; new buckets need a recode. An
    /// empty chunk takes anything.
    pub fn appendable(&self, h: &Histogram) -> Appendable {
        self.tail().appendable(h, || {
            (
                Cow::Borrowed(&self.s.p_buckets[..]),
                Cow::Borrowed(&self.s.n_buckets[..]),
            )
        })
    }

    fn tail(&self) -> ChunkTail<'_, Histogram> {
        ChunkTail {
            num_samples: self.num_samples(),
            header: self.counter_reset_header(),
            last_is_stale: self.last_is_stale(),
            layout: &self.s.layout,
            counts: (self.s.cnt, self.s.zcnt),
        }
    }

    /// Whether the gauge histogram `h` can be appended (`AppendableGauge`): only to a gauge
    /// chunk (or an empty one), not after a stale marker, with the same schema and zero
    /// threshold; buckets are widened both ways.
    pub fn appendable_gauge(&self, h: &Histogram) -> GaugeAppendable {
        self.tail().appendable_gauge(h)
    }

    /// The chunk re-encoded with new (empty) buckets inserted into every sample and the
    /// layout `positive_spans`/`negative_spans` (Prometheus's `Recode`: decode and append
    /// again, same header). Fails if the inserts do not turn the chunk's buckets into the
    /// given spans' buckets.
    pub fn recode(
        &self,
        positive_inserts: &[Insert],
        negative_inserts: &[Insert],
        positive_spans: &[Span],
        negative_spans: &[Span],
    ) -> Result<HistogramAppender, AppendError> {
        recode(
            self,
            positive_inserts,
            negative_inserts,
            positive_spans,
            negative_spans,
        )
    }

    /// Inserts new (empty) buckets into a gauge histogram whose spans the caller has set to
    /// the merged spans of [`GaugeAppendable::Append`] (`RecodeHistogram`).
    pub fn recode_histogram(h: &mut Histogram, positive: &[Insert], negative: &[Insert]) {
        insert_buckets(h, positive, negative);
    }

    /// Appends `h` at `t` (Prometheus's `AppendHistogram`). The first sample sets the layout;
    /// later ones must hold exactly the chunk's buckets (check [`appendable`](Self::appendable)
    /// and recode first). A stale marker is written as its sum alone. The caller keeps
    /// timestamps increasing.
    pub fn append(&mut self, t: i64, h: &Histogram) -> Result<(), AppendError> {
        let num = self.num_samples();
        let chunk_buckets = (self.s.p_buckets.len(), self.s.n_buckets.len());
        let h = check_append(num, self.last_is_stale(), chunk_buckets, h)?;
        if num == 0 {
            self.append_first(t, &h);
        } else {
            self.append_next(t, &h);
        }
        self.s.t = t;
        self.s.cnt = h.count;
        self.s.zcnt = h.zero_count;
        self.s.sum = h.sum.to_bits();
        self.buf[..2].copy_from_slice(&(num + 1).to_be_bytes());
        Ok(())
    }

    fn append_first(&mut self, t: i64, h: &Histogram) {
        self.s.layout = Layout {
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            positive_spans: h.positive_spans.clone(),
            negative_spans: h.negative_spans.clone(),
        };
        let mut w = HistBits::resume(&mut self.buf, self.state);
        write_layout(&mut w, &self.s.layout);
        w.varbit_int(t);
        w.varbit_uint(h.count);
        w.varbit_uint(h.zero_count);
        w.bits(h.sum.to_bits(), 64);
        for &b in h.positive_buckets.iter().chain(&h.negative_buckets) {
            w.varbit_int(b);
        }
        self.state = w.finish();
        self.s.p_buckets.clone_from(&h.positive_buckets);
        self.s.n_buckets.clone_from(&h.negative_buckets);
        self.s.p_deltas = vec![0; h.positive_buckets.len()];
        self.s.n_deltas = vec![0; h.negative_buckets.len()];
        (self.s.t_delta, self.s.cnt_delta, self.s.zcnt_delta) = (0, 0, 0);
    }

    fn append_next(&mut self, t: i64, h: &Histogram) {
        let t_delta = t.wrapping_sub(self.s.t);
        let cnt_delta = (h.count as i64).wrapping_sub(self.s.cnt as i64);
        let zcnt_delta = (h.zero_count as i64).wrapping_sub(self.s.zcnt as i64);
        let (mut cnt_dod, mut zcnt_dod) = (
            cnt_delta.wrapping_sub(self.s.cnt_delta),
            zcnt_delta.wrapping_sub(self.s.zcnt_delta),
        );
        if h.is_stale() {
            (cnt_dod, zcnt_dod) = (0, 0);
        }
        let mut w = HistBits::resume(&mut self.buf, self.state);
        w.varbit_int(t_delta.wrapping_sub(self.s.t_delta));
        w.varbit_int(cnt_dod);
        w.varbit_int(zcnt_dod);
        w.xor(
            h.sum.to_bits(),
            self.s.sum,
            &mut self.s.leading,
            &mut self.s.trailing,
        );
        for (side, (cur, deltas)) in [
            (
                &h.positive_buckets,
                (&mut self.s.p_buckets, &mut self.s.p_deltas),
            ),
            (
                &h.negative_buckets,
                (&mut self.s.n_buckets, &mut self.s.n_deltas),
            ),
        ] {
            // Empty for stale markers, else as long as the chunk's buckets (checked).
            for ((&b, old), last_delta) in side.iter().zip(cur.iter_mut()).zip(deltas.iter_mut()) {
                let delta = b.wrapping_sub(*old);
                w.varbit_int(delta.wrapping_sub(*last_delta));
                *last_delta = delta;
                *old = b;
            }
        }
        self.state = w.finish();
        (self.s.t_delta, self.s.cnt_delta, self.s.zcnt_delta) = (t_delta, cnt_delta, zcnt_delta);
    }

    /// Appends `h` at `t` the way Prometheus 2.42's head does (`memSeries.appendHistogram`)
    /// for one series' chunk sequence: the hint decides between the counter and the gauge
    /// rules (a `CounterReset` hint always starts a chunk), then the chunk is recoded, or a new
    /// chunk is started with the header Prometheus gives it. `cut` asks for a new chunk
    /// anyway (the head's own rules: chunk time range, samples per chunk); a chunk started
    /// that way still gets the header of the decision against the old chunk, as in
    /// Prometheus. An empty appender is the first chunk of a series. Structural errors are
    /// found before anything changes: buckets that do not match the spans, and spans after the
    /// first with a negative offset (which Prometheus's validation rejects).
    pub fn push(
        &mut self,
        t: i64,
        h: Histogram,
        cut: bool,
    ) -> Result<Pushed<HistogramAppender>, AppendError> {
        push(self, t, h, cut)
    }
}

chunk_appender!(HistogramAppender, Histogram, HistogramIter);

/// `(tail, free)` for continuing a chunk whose samples end at bit `end`: only zero padding
/// (and Prometheus's one empty trailing byte) may follow.
pub(crate) fn resume_state(bytes: &[u8], end: usize) -> Result<(u8, u8), DecodeError> {
    let (whole, used) = (end / 8, (end % 8) as u32);
    match (used, bytes.get(whole..).unwrap_or(&[])) {
        (0, []) => Ok((0, 0)),
        (0, [0]) => Ok((0, 8)),
        (1..=7, &[last]) if last & (0xff >> used) == 0 => Ok((last, 8 - used as u8)),
        _ => Err(DecodeError {
            offset: whole,
            reason: "data after the last sample of a chunk being re-opened",
        }),
    }
}

/// Iterator over the samples of an integer histogram chunk payload. Never panics and never
/// allocates more than the payload could describe: damage yields one `Err` with the byte
/// offset of the failing sample, then the end.
///
/// [`next_sample`](Self::next_sample) advances without allocating; [`at`](Self::at) and
/// [`at_into`](Self::at_into) read the current sample. As an [`Iterator`] it yields owned
/// histograms.
#[derive(Debug, Clone)]
pub struct HistogramIter<'a> {
    cur: Cursor<'a>,
    s: IntSamples,
}

/// The decoding state of an integer histogram chunk: the layout and the last sample with the
/// deltas the next one is coded against.
#[derive(Debug, Clone, Default)]
struct IntSamples {
    layout: Layout,
    t: i64,
    cnt: u64,
    zcnt: u64,
    t_delta: i64,
    cnt_delta: i64,
    zcnt_delta: i64,
    p_buckets: Vec<i64>,
    n_buckets: Vec<i64>,
    p_deltas: Vec<i64>,
    n_deltas: Vec<i64>,
    sum: u64,
    leading: u8,
    trailing: u8,
}

impl<'a> HistogramIter<'a> {
    /// An iterator over `chunk`; errors surface from [`next_sample`](Self::next_sample).
    pub fn new(chunk: &'a [u8]) -> Self {
        HistogramIter {
            cur: Cursor::new(chunk),
            s: IntSamples::default(),
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

    /// Advances to the first sample at or after `t` (the current one counts, as Prometheus's
    /// `Seek`) and returns its timestamp.
    pub fn seek(&mut self, t: i64) -> Option<Result<i64, DecodeError>> {
        self.cur.seek(&mut self.s, t)
    }

    /// The current sample (after `next_sample` returned `Ok`). A stale marker comes back as
    /// [`Histogram::stale_marker`]; other samples carry the hint of the chunk header and their
    /// position.
    pub fn at(&self) -> Histogram {
        let mut h = Histogram::default();
        self.at_into(&mut h);
        h
    }

    /// [`at`](Self::at) into `h`, reusing its buffers.
    pub fn at_into(&self, h: &mut Histogram) {
        if self.s.sum == STALE_NAN_BITS {
            *h = Histogram::stale_marker();
            return;
        }
        h.counter_reset_hint = self.cur.header.hint_for(self.cur.num_read);
        h.schema = self.s.layout.schema;
        h.zero_threshold = self.s.layout.zero_threshold;
        h.zero_count = self.s.zcnt;
        h.count = self.s.cnt;
        h.sum = f64::from_bits(self.s.sum);
        h.positive_spans.clone_from(&self.s.layout.positive_spans);
        h.negative_spans.clone_from(&self.s.layout.negative_spans);
        h.positive_buckets.clone_from(&self.s.p_buckets);
        h.negative_buckets.clone_from(&self.s.n_buckets);
    }

    /// The current sample as a float histogram (Prometheus's `AtFloatHistogram`).
    pub fn at_float(&self) -> FloatHistogram {
        self.at().to_float()
    }
}

impl Iterator for HistogramIter<'_> {
    type Item = Result<(i64, Histogram), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_sample()?.map(|t| (t, self.at())))
    }
}

impl SampleDecoder for IntSamples {
    const SHORT_HEADER: &'static str = "histogram chunk shorter than its 3-byte header";
    const OVERRUN: &'static str = "histogram chunk data ends inside a sample";

    fn decode_first(&mut self, r: &mut BitReader<'_>, end_bit: usize) -> Result<(), &'static str> {
        self.layout = read_layout(r, end_bit)?;
        let np = span_buckets(&self.layout.positive_spans);
        let nn = span_buckets(&self.layout.negative_spans);
        // Each bucket of the first sample takes at least one bit.
        if np.saturating_add(nn) > end_bit.saturating_sub(r.pos()) as u64 {
            return Err("histogram bucket count larger than the chunk");
        }
        self.t = read_varbit_int(r);
        self.cnt = read_varbit_uint(r);
        self.zcnt = read_varbit_uint(r);
        self.sum = r.read_bits(64);
        self.p_buckets = (0..np).map(|_| read_varbit_int(r)).collect();
        self.n_buckets = (0..nn).map(|_| read_varbit_int(r)).collect();
        self.p_deltas = vec![0; np as usize];
        self.n_deltas = vec![0; nn as usize];
        Ok(())
    }

    fn decode_next(&mut self, r: &mut BitReader<'_>) -> Result<(), &'static str> {
        self.t_delta = self.t_delta.wrapping_add(read_varbit_int(r));
        self.t = self.t.wrapping_add(self.t_delta);
        self.cnt_delta = self.cnt_delta.wrapping_add(read_varbit_int(r));
        self.cnt = (self.cnt as i64).wrapping_add(self.cnt_delta) as u64;
        self.zcnt_delta = self.zcnt_delta.wrapping_add(read_varbit_int(r));
        self.zcnt = (self.zcnt as i64).wrapping_add(self.zcnt_delta) as u64;
        read_xor(r, &mut self.sum, &mut self.leading, &mut self.trailing)?;
        if self.sum == STALE_NAN_BITS {
            return Ok(());
        }
        for (b, d) in self
            .p_buckets
            .iter_mut()
            .zip(self.p_deltas.iter_mut())
            .chain(self.n_buckets.iter_mut().zip(self.n_deltas.iter_mut()))
        {
            *d = d.wrapping_add(read_varbit_int(r));
            *b = b.wrapping_add(*d);
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
#[path = "histogram_tests.rs"]
pub(crate) mod tests;
