//! The integer native-histogram chunk (encoding 2, Prometheus 2.42
//! `tsdb/chunkenc/histogram.go`; format brief §1.6, Prometheus `tsdb/docs/format/chunks.md`).
//!
//! Payload: BE16 sample count, one header byte (top two bits: [`CounterResetHeader`]), then a
//! bit stream: the layout (zero threshold, schema, spans) and the first sample raw (varbit
//! timestamp, varbit count, varbit zero count, 64-bit sum, varbit bucket deltas); every later
//! sample as varbit delta-of-deltas of timestamp, count, zero count and each bucket, and the
//! sum XOR-coded. A stale marker writes only its timestamp, zero count dods and its sum.

use super::bstream::BitReader;
use super::histogram_meta::{
    check_layout_counts, check_push, counter_reset_in_any_bucket, expand_spans_both_ways,
    expand_spans_forward, insert, new_chunk_header, read_layout, write_layout, AppendError,
    Appendable, CounterResetHeader, GaugeAppendable, Insert, Layout, NewChunkReason, Pushed,
    HIST_HEADER_LEN,
};
use super::varbit::{read_varbit_int, read_varbit_uint, read_xor, HistBits};
use crate::encoding::DecodeError;
use crate::model::histogram::{
    span_buckets, CounterResetHint, FloatHistogram, Histogram, Side, Span,
};
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
    sum: f64,
    leading: u8,
    trailing: u8,
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
            layout: Layout::default(),
            t: 0,
            cnt: 0,
            zcnt: 0,
            t_delta: 0,
            cnt_delta: 0,
            zcnt_delta: 0,
            p_buckets: Vec::new(),
            n_buckets: Vec::new(),
            p_deltas: Vec::new(),
            n_deltas: Vec::new(),
            sum: 0.0,
            leading: 0xff,
            trailing: 0,
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
        let end = it.r.pos();
        let num = it.num_total;
        let state = resume_state(&bytes, if num == 0 { HIST_HEADER_LEN * 8 } else { end })?;
        let HistogramIter {
            layout,
            t,
            cnt,
            zcnt,
            t_delta,
            cnt_delta,
            zcnt_delta,
            p_buckets,
            n_buckets,
            p_deltas,
            n_deltas,
            sum,
            leading,
            trailing,
            ..
        } = it;
        Ok(HistogramAppender {
            buf: bytes,
            state,
            layout,
            t,
            cnt,
            zcnt,
            t_delta,
            cnt_delta,
            zcnt_delta,
            p_buckets,
            n_buckets,
            p_deltas,
            n_deltas,
            sum: f64::from_bits(sum),
            leading: if num == 0 { 0xff } else { leading },
            trailing,
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
        self.sum.to_bits() == STALE_NAN_BITS
    }

    /// Whether the counter histogram `h` can be appended, in Prometheus 2.42's order of
    /// checks (`HistogramAppender.Appendable`): a gauge chunk takes no counter histograms; a
    /// stale marker always fits; nothing but stale markers follows one; a smaller count is a
    /// counter reset; then schema and zero threshold must match; a smaller zero count,
    /// missing buckets or a smaller bucket are counter resets; new buckets need a recode. An
    /// empty chunk takes anything.
    pub fn appendable(&self, h: &Histogram) -> Appendable {
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
        if h.count < self.cnt {
            return Appendable::NewChunk(NewChunkReason::CounterReset);
        }
        if let Some(r) = self.layout_change(h.schema, h.zero_threshold) {
            return Appendable::NewChunk(r);
        }
        if h.zero_count < self.zcnt {
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
        if counter_reset_in_any_bucket(
            &self.layout.positive_spans,
            &self.p_buckets,
            &h.positive_spans,
            &h.positive_buckets,
        ) || counter_reset_in_any_bucket(
            &self.layout.negative_spans,
            &self.n_buckets,
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

    fn layout_change(&self, schema: i32, zero_threshold: f64) -> Option<NewChunkReason> {
        if schema != self.layout.schema {
            Some(NewChunkReason::SchemaChanged)
        } else if zero_threshold != self.layout.zero_threshold {
            Some(NewChunkReason::ZeroThresholdChanged)
        } else {
            None
        }
    }

    /// Whether the gauge histogram `h` can be appended (`AppendableGauge`): only to a gauge
    /// chunk (or an empty one), not after a stale marker, with the same schema and zero
    /// threshold; buckets are widened both ways.
    pub fn appendable_gauge(&self, h: &Histogram) -> GaugeAppendable {
        if self.num_samples() > 0 && self.counter_reset_header() != CounterResetHeader::Gauge {
            return GaugeAppendable::NewChunk(NewChunkReason::KindChanged);
        }
        if h.is_stale() || self.num_samples() == 0 {
            return gauge_append_as_is();
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
        let mut out = HistogramAppender::new();
        let mut it = HistogramIter::new(&self.buf);
        let mut h = Histogram::default();
        while let Some(r) = it.next_sample() {
            let t = r.expect("an appender's chunk decodes: appends and from_chunk ensure it");
            it.at_into(&mut h);
            if !h.is_stale() {
                h.positive_spans.clear();
                h.positive_spans.extend_from_slice(positive_spans);
                h.negative_spans.clear();
                h.negative_spans.extend_from_slice(negative_spans);
                if !positive_inserts.is_empty() {
                    h.positive_buckets = insert(&h.positive_buckets, positive_inserts, true);
                }
                if !negative_inserts.is_empty() {
                    h.negative_buckets = insert(&h.negative_buckets, negative_inserts, true);
                }
            }
            out.append(t, &h)?;
        }
        out.set_counter_reset_header(self.counter_reset_header());
        Ok(out)
    }

    /// Inserts new (empty) buckets into a gauge histogram whose spans the caller has set to
    /// the merged spans of [`GaugeAppendable::Append`] (`RecodeHistogram`).
    pub fn recode_histogram(h: &mut Histogram, positive: &[Insert], negative: &[Insert]) {
        if !positive.is_empty() {
            h.positive_buckets = insert(&h.positive_buckets, positive, true);
        }
        if !negative.is_empty() {
            h.negative_buckets = insert(&h.negative_buckets, negative, true);
        }
    }

    /// Appends `h` at `t` (Prometheus's `AppendHistogram`). The first sample sets the layout;
    /// later ones must hold exactly the chunk's buckets (check [`appendable`](Self::appendable)
    /// and recode first). A stale marker is written as its sum alone. The caller keeps
    /// timestamps increasing.
    pub fn append(&mut self, t: i64, h: &Histogram) -> Result<(), AppendError> {
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
            stale_marker = Histogram::stale_marker();
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
                check_bucket_count(&self.p_buckets, &h.positive_buckets, Side::Positive)?;
                check_bucket_count(&self.n_buckets, &h.negative_buckets, Side::Negative)?;
            }
            self.append_next(t, h);
        }
        self.t = t;
        self.cnt = h.count;
        self.zcnt = h.zero_count;
        self.sum = h.sum;
        self.buf[..2].copy_from_slice(&(num + 1).to_be_bytes());
        Ok(())
    }

    fn append_first(&mut self, t: i64, h: &Histogram) {
        self.layout = Layout {
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            positive_spans: h.positive_spans.clone(),
            negative_spans: h.negative_spans.clone(),
        };
        let mut w = HistBits::resume(&mut self.buf, self.state);
        write_layout(&mut w, &self.layout);
        w.varbit_int(t);
        w.varbit_uint(h.count);
        w.varbit_uint(h.zero_count);
        w.bits(h.sum.to_bits(), 64);
        for &b in h.positive_buckets.iter().chain(&h.negative_buckets) {
            w.varbit_int(b);
        }
        self.state = w.finish();
        self.p_buckets.clone_from(&h.positive_buckets);
        self.n_buckets.clone_from(&h.negative_buckets);
        self.p_deltas = vec![0; h.positive_buckets.len()];
        self.n_deltas = vec![0; h.negative_buckets.len()];
        (self.t_delta, self.cnt_delta, self.zcnt_delta) = (0, 0, 0);
    }

    fn append_next(&mut self, t: i64, h: &Histogram) {
        let t_delta = t.wrapping_sub(self.t);
        let cnt_delta = (h.count as i64).wrapping_sub(self.cnt as i64);
        let zcnt_delta = (h.zero_count as i64).wrapping_sub(self.zcnt as i64);
        let (mut cnt_dod, mut zcnt_dod) = (
            cnt_delta.wrapping_sub(self.cnt_delta),
            zcnt_delta.wrapping_sub(self.zcnt_delta),
        );
        if h.is_stale() {
            (cnt_dod, zcnt_dod) = (0, 0);
        }
        let mut w = HistBits::resume(&mut self.buf, self.state);
        w.varbit_int(t_delta.wrapping_sub(self.t_delta));
        w.varbit_int(cnt_dod);
        w.varbit_int(zcnt_dod);
        w.xor(
            h.sum.to_bits(),
            self.sum.to_bits(),
            &mut self.leading,
            &mut self.trailing,
        );
        for (side, (cur, deltas)) in [
            (
                &h.positive_buckets,
                (&mut self.p_buckets, &mut self.p_deltas),
            ),
            (
                &h.negative_buckets,
                (&mut self.n_buckets, &mut self.n_deltas),
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
        (self.t_delta, self.cnt_delta, self.zcnt_delta) = (t_delta, cnt_delta, zcnt_delta);
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
        mut h: Histogram,
        cut: bool,
    ) -> Result<Pushed<HistogramAppender>, AppendError> {
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

fn gauge_append_as_is() -> GaugeAppendable {
    GaugeAppendable::Append {
        positive_inserts: Vec::new(),
        negative_inserts: Vec::new(),
        backward_positive_inserts: Vec::new(),
        backward_negative_inserts: Vec::new(),
        positive_spans: Vec::new(),
        negative_spans: Vec::new(),
    }
}

fn check_bucket_count<T>(chunk: &[T], h: &[T], side: Side) -> Result<(), AppendError> {
    if chunk.len() != h.len() {
        return Err(AppendError::BucketCountMismatch {
            side,
            expected: chunk.len() as u64,
            got: h.len(),
        });
    }
    Ok(())
}

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
    r: BitReader<'a>,
    end_bit: usize,
    num_total: u16,
    /// Samples to decode: `num_total`, 1 to report a short header, or the count read when an
    /// error ended the iteration.
    limit: u16,
    num_read: u16,
    /// Whether an error ended the iteration (the state is then not a sample).
    failed: bool,
    header: CounterResetHeader,
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
        let (num_total, limit, header) = match chunk {
            [a, b, c, ..] => {
                let n = u16::from_be_bytes([*a, *b]);
                (n, n, CounterResetHeader::from_byte(*c))
            }
            _ => (0, 1, CounterResetHeader::Unknown),
        };
        HistogramIter {
            r: BitReader::new(chunk, HIST_HEADER_LEN * 8),
            end_bit: chunk.len() * 8,
            num_total,
            limit,
            num_read: 0,
            failed: false,
            header,
            layout: Layout::default(),
            t: 0,
            cnt: 0,
            zcnt: 0,
            t_delta: 0,
            cnt_delta: 0,
            zcnt_delta: 0,
            p_buckets: Vec::new(),
            n_buckets: Vec::new(),
            p_deltas: Vec::new(),
            n_deltas: Vec::new(),
            sum: 0,
            leading: 0,
            trailing: 0,
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
            Err("histogram chunk shorter than its 3-byte header")
        } else if self.num_read == 0 {
            self.decode_first()
        } else {
            self.decode_next()
        };
        let res = res.and_then(|()| {
            if self.r.overran() {
                Err("histogram chunk data ends inside a sample")
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

    /// Advances to the first sample at or after `t` (the current one counts, as Prometheus's
    /// `Seek`) and returns its timestamp.
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
        // Each bucket of the first sample takes at least one bit.
        if np.saturating_add(nn) > self.end_bit.saturating_sub(self.r.pos()) as u64 {
            return Err("histogram bucket count larger than the chunk");
        }
        self.t = read_varbit_int(&mut self.r);
        self.cnt = read_varbit_uint(&mut self.r);
        self.zcnt = read_varbit_uint(&mut self.r);
        self.sum = self.r.read_bits(64);
        self.p_buckets = (0..np).map(|_| read_varbit_int(&mut self.r)).collect();
        self.n_buckets = (0..nn).map(|_| read_varbit_int(&mut self.r)).collect();
        self.p_deltas = vec![0; np as usize];
        self.n_deltas = vec![0; nn as usize];
        Ok(())
    }

    fn decode_next(&mut self) -> Result<(), &'static str> {
        let r = &mut self.r;
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
        if self.sum == STALE_NAN_BITS {
            *h = Histogram::stale_marker();
            return;
        }
        h.counter_reset_hint = self.header.hint_for(self.num_read);
        h.schema = self.layout.schema;
        h.zero_threshold = self.layout.zero_threshold;
        h.zero_count = self.zcnt;
        h.count = self.cnt;
        h.sum = f64::from_bits(self.sum);
        h.positive_spans.clone_from(&self.layout.positive_spans);
        h.negative_spans.clone_from(&self.layout.negative_spans);
        h.positive_buckets.clone_from(&self.p_buckets);
        h.negative_buckets.clone_from(&self.n_buckets);
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

#[cfg(test)]
#[path = "histogram_tests.rs"]
pub(crate) mod tests;
