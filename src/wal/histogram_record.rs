//! WAL/WBL records of native histograms and m-map markers (§1.10, Prometheus 2.42
//! `tsdb/record/record.go`): `HistogramSamples` (type 7), `FloatHistogramSamples` (type 8) and
//! `MmapMarkers` (type 5, written to the out-of-order WBL when an out-of-order head chunk is
//! m-mapped). Metadata (type 6) is in `record.rs`.
//!
//! Histogram records share the sample records' base: the first entry's ref and time as BE64,
//! then per entry signed varint deltas to them, followed by the histogram: hint byte, varint
//! schema, BE64 zero threshold, the counts (uvarints for integer histograms, BE64 floats for
//! float ones), BE64 sum, then uvarint-counted spans (varint offset, uvarint length) and
//! buckets (varint deltas, or BE64 floats). Decoders never panic, reject leftover bytes and
//! values Prometheus cannot hold (a schema or span offset beyond 32 bits, an unknown hint), and
//! allocate at most what the record's length can hold.

use crate::encoding::{put_uvarint, put_varint, Decbuf};
use crate::model::histogram::{CounterResetHint, FloatHistogram, Histogram, Span};

#[cfg(test)]
use super::record::record_type;
use super::record::{
    decode_base, decode_entry_base, err, finish, open, put_base, put_entry_base, RecordType, R,
};

/// An m-map marker: every out-of-order sample of `series_ref` logged before it is in the
/// out-of-order head chunk at `mmap_ref` or an earlier one (`RefMmapMarker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefMmapMarker {
    /// Head series ref.
    pub series_ref: u64,
    /// `ChunkDiskMapperRef` of the m-mapped chunk: head chunk file number << 32 | offset
    /// (§1.12).
    pub mmap_ref: u64,
}

/// An integer histogram sample of the series `series_ref`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefHistogramSample {
    /// Head series ref.
    pub series_ref: u64,
    /// Timestamp (ms).
    pub t: i64,
    /// The histogram, as appended.
    pub h: Histogram,
}

/// A float histogram sample of the series `series_ref`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefFloatHistogramSample {
    /// Head series ref.
    pub series_ref: u64,
    /// Timestamp (ms).
    pub t: i64,
    /// The histogram, as appended.
    pub h: FloatHistogram,
}

/// Appends an MmapMarkers record.
pub fn encode_mmap_markers(markers: &[RefMmapMarker], buf: &mut Vec<u8>) {
    buf.push(RecordType::MmapMarkers.as_u8());
    for m in markers {
        buf.extend_from_slice(&m.series_ref.to_be_bytes());
        buf.extend_from_slice(&m.mmap_ref.to_be_bytes());
    }
}

/// Appends the markers of an MmapMarkers record to `out`.
pub fn decode_mmap_markers(rec: &[u8], out: &mut Vec<RefMmapMarker>) -> R {
    let mut d = open(rec, RecordType::MmapMarkers)?;
    out.reserve(d.remaining() / 16);
    while !d.is_empty() {
        out.push(RefMmapMarker {
            series_ref: d.be64()?,
            mmap_ref: d.be64()?,
        });
    }
    finish(&d)
}

fn put_spans(buf: &mut Vec<u8>, spans: &[Span]) {
    put_uvarint(buf, spans.len() as u64);
    for s in spans {
        put_varint(buf, i64::from(s.offset));
        put_uvarint(buf, u64::from(s.length));
    }
}

/// Appends a HistogramSamples record.
pub fn encode_histogram_samples(samples: &[RefHistogramSample], buf: &mut Vec<u8>) {
    encode(samples, buf);
}

/// Appends a FloatHistogramSamples record.
pub fn encode_float_histogram_samples(samples: &[RefFloatHistogramSample], buf: &mut Vec<u8>) {
    encode(samples, buf);
}

/// A number of a histogram entry as the record stores it: uvarint counts and varint bucket
/// deltas in integer histograms, BE64 floats in float ones.
trait Field: Copy {
    /// The fewest bytes one takes.
    const MIN_LEN: usize;
    fn put(self, buf: &mut Vec<u8>);
    fn get(d: &mut Decbuf<'_>) -> R<Self>;
}

impl Field for u64 {
    const MIN_LEN: usize = 1;
    fn put(self, buf: &mut Vec<u8>) {
        put_uvarint(buf, self);
    }
    fn get(d: &mut Decbuf<'_>) -> R<u64> {
        d.uvarint()
    }
}

impl Field for i64 {
    const MIN_LEN: usize = 1;
    fn put(self, buf: &mut Vec<u8>) {
        put_varint(buf, self);
    }
    fn get(d: &mut Decbuf<'_>) -> R<i64> {
        d.varint()
    }
}

impl Field for f64 {
    const MIN_LEN: usize = 8;
    fn put(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.to_bits().to_be_bytes());
    }
    fn get(d: &mut Decbuf<'_>) -> R<f64> {
        Ok(f64::from_bits(d.be64()?))
    }
}

/// A histogram entry's fields other than its ref and time, in record order.
struct Entry<C, S, V> {
    hint: CounterResetHint,
    schema: i32,
    zero_threshold: f64,
    zero_count: C,
    count: C,
    sum: f64,
    spans: [S; 2],
    buckets: [V; 2],
}

/// A histogram sample record entry: [`RefHistogramSample`] or [`RefFloatHistogramSample`].
trait HistogramSample: Sized {
    const TYPE: RecordType;
    type Count: Field;
    type Bucket: Field;
    fn ref_t(&self) -> (u64, i64);
    fn entry(&self) -> Entry<Self::Count, &[Span], &[Self::Bucket]>;
    fn from_entry(
        series_ref: u64,
        t: i64,
        e: Entry<Self::Count, Vec<Span>, Vec<Self::Bucket>>,
    ) -> Self;
}

macro_rules! histogram_sample {
    ($sample:ident, $h:ident, $typ:ident, $count:ty, $bucket:ty) => {
        impl HistogramSample for $sample {
            const TYPE: RecordType = RecordType::$typ;
            type Count = $count;
            type Bucket = $bucket;

            fn ref_t(&self) -> (u64, i64) {
                (self.series_ref, self.t)
            }

            fn entry(&self) -> Entry<$count, &[Span], &[$bucket]> {
                let h = &self.h;
                Entry {
                    hint: h.counter_reset_hint,
                    schema: h.schema,
                    zero_threshold: h.zero_threshold,
                    zero_count: h.zero_count,
                    count: h.count,
                    sum: h.sum,
                    spans: [&h.positive_spans, &h.negative_spans],
                    buckets: [&h.positive_buckets, &h.negative_buckets],
                }
            }

            fn from_entry(
                series_ref: u64,
                t: i64,
                e: Entry<$count, Vec<Span>, Vec<$bucket>>,
            ) -> Self {
                let [positive_spans, negative_spans] = e.spans;
                let [positive_buckets, negative_buckets] = e.buckets;
                $sample {
                    series_ref,
                    t,
                    h: $h {
                        counter_reset_hint: e.hint,
                        schema: e.schema,
                        zero_threshold: e.zero_threshold,
                        zero_count: e.zero_count,
                        count: e.count,
                        sum: e.sum,
                        positive_spans,
                        negative_spans,
                        positive_buckets,
                        negative_buckets,
                    },
                }
            }
        }
    };
}

histogram_sample!(RefHistogramSample, Histogram, HistogramSamples, u64, i64);
histogram_sample!(
    RefFloatHistogramSample,
    FloatHistogram,
    FloatHistogramSamples,
    f64,
    f64
);

fn encode<S: HistogramSample>(samples: &[S], buf: &mut Vec<u8>) {
    buf.push(S::TYPE.as_u8());
    let Some(first) = samples.first() else {
        return;
    };
    let base = first.ref_t();
    put_base(buf, base);
    for s in samples {
        let (r, t) = s.ref_t();
        put_entry_base(buf, base, r, t);
        let e = s.entry();
        buf.push(e.hint.as_u8());
        put_varint(buf, i64::from(e.schema));
        e.zero_threshold.put(buf);
        e.zero_count.put(buf);
        e.count.put(buf);
        e.sum.put(buf);
        for spans in e.spans {
            put_spans(buf, spans);
        }
        for b in e.buckets {
            put_uvarint(buf, b.len() as u64);
            for &x in b {
                x.put(buf);
            }
        }
    }
}

fn decode<S: HistogramSample>(rec: &[u8], out: &mut Vec<S>) -> R {
    let mut d = open(rec, S::TYPE)?;
    let Some(base) = decode_base(&mut d)? else {
        return Ok(());
    };
    while !d.is_empty() {
        let (series_ref, t) = decode_entry_base(&mut d, base)?;
        let (hint, schema) = hint_and_schema(&mut d)?;
        let zero_threshold = f64::get(&mut d)?;
        let zero_count = S::Count::get(&mut d)?;
        let count_ = S::Count::get(&mut d)?;
        let sum = f64::get(&mut d)?;
        let spans = [spans(&mut d)?, spans(&mut d)?];
        let mut buckets = || -> R<Vec<S::Bucket>> {
            let min_len = S::Bucket::MIN_LEN;
            let n = count(
                &mut d,
                min_len,
                "histogram bucket count larger than the record",
            )?;
            (0..n).map(|_| S::Bucket::get(&mut d)).collect()
        };
        let buckets = [buckets()?, buckets()?];
        out.push(S::from_entry(
            series_ref,
            t,
            Entry {
                hint,
                schema,
                zero_threshold,
                zero_count,
                count: count_,
                sum,
                spans,
                buckets,
            },
        ));
    }
    finish(&d)
}

/// Reads a count of items that take at least `min_len` bytes each.
fn count(d: &mut Decbuf<'_>, min_len: usize, what: &'static str) -> R<usize> {
    let at = d.position();
    let n = d.uvarint()?;
    if n > (d.remaining() / min_len) as u64 {
        return err(at, what);
    }
    Ok(n as usize)
}

fn spans(d: &mut Decbuf<'_>) -> R<Vec<Span>> {
    let n = count(d, 2, "histogram span count larger than the record")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at = d.position();
        let offset = i32::try_from(d.varint()?)
            .or_else(|_| err(at, "histogram span offset out of range"))?;
        let length = d.uvarint32()?;
        out.push(Span { offset, length });
    }
    Ok(out)
}

fn hint_and_schema(d: &mut Decbuf<'_>) -> R<(CounterResetHint, i32)> {
    let at = d.position();
    let hint = CounterResetHint::from_u8(d.u8()?)
        .map_or_else(|| err(at, "unknown histogram counter reset hint"), Ok)?;
    let at = d.position();
    let schema =
        i32::try_from(d.varint()?).or_else(|_| err(at, "histogram schema out of range"))?;
    Ok((hint, schema))
}

/// Appends the samples of a HistogramSamples record to `out`.
pub fn decode_histogram_samples(rec: &[u8], out: &mut Vec<RefHistogramSample>) -> R {
    decode(rec, out)
}

/// Appends the samples of a FloatHistogramSamples record to `out`.
pub fn decode_float_histogram_samples(rec: &[u8], out: &mut Vec<RefFloatHistogramSample>) -> R {
    decode(rec, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h() -> Histogram {
        Histogram {
            counter_reset_hint: CounterResetHint::NotCounterReset,
            schema: -2,
            zero_threshold: 0.001,
            zero_count: 3,
            count: 300,
            sum: -4.5,
            positive_spans: vec![Span::new(-3, 2), Span::new(1, 1)],
            negative_spans: vec![Span::new(5, 1)],
            positive_buckets: vec![10, -3, 100],
            negative_buckets: vec![-1],
        }
    }

    /// The layout byte by byte, as Prometheus's encoder writes it.
    #[test]
    fn histogram_record_layout_is_prometheus() {
        let mut b = Vec::new();
        encode_histogram_samples(
            &[
                RefHistogramSample {
                    series_ref: 7,
                    t: 1000,
                    h: h(),
                },
                RefHistogramSample {
                    series_ref: 6,
                    t: 1015,
                    h: Histogram::stale_marker(),
                },
            ],
            &mut b,
        );
        let mut want = vec![7u8];
        want.extend(7u64.to_be_bytes());
        want.extend(1000i64.to_be_bytes());
        want.extend([0, 0, 2, 3]); // deltas, hint, zig-zag -2
        want.extend(0.001f64.to_bits().to_be_bytes());
        want.extend([3, 0xac, 0x02]); // zero count, count 300
        want.extend((-4.5f64).to_bits().to_be_bytes());
        want.extend([2, 5, 2, 2, 1, 1, 10, 1]); // spans: (-3,2) (1,1); (5,1)
        want.extend([3, 20, 5, 0xc8, 0x01, 1, 1]); // buckets 10 -3 100; -1
        want.extend([1, 30, 0, 0]); // ref -1, t +15, hint, schema
        want.extend(0u64.to_be_bytes());
        want.extend([0, 0]);
        want.extend(crate::model::STALE_NAN_BITS.to_be_bytes());
        want.extend([0, 0, 0, 0]);
        assert_eq!(b, want);
        let mut out = Vec::new();
        decode_histogram_samples(&b, &mut out).unwrap();
        assert_eq!(out[0].h, h());
        assert!(out[1].h.is_stale());
        assert_eq!((out[1].series_ref, out[1].t), (6, 1015));
    }

    #[test]
    fn empty_wrong_type_truncated_and_hostile_records() {
        for (typ, b) in [(5u8, vec![5u8]), (7, vec![7]), (8, vec![8])] {
            assert_eq!(record_type(&b).as_u8(), typ);
        }
        let mut b = Vec::new();
        encode_histogram_samples(&[], &mut b);
        assert_eq!(b, [7]);
        decode_histogram_samples(&b, &mut Vec::new()).unwrap();
        b.clear();
        encode_float_histogram_samples(&[], &mut b);
        assert_eq!(b, [8]);
        decode_float_histogram_samples(&b, &mut Vec::new()).unwrap();
        decode_mmap_markers(&[5], &mut Vec::new()).unwrap();
        assert!(decode_mmap_markers(&[7], &mut Vec::new()).is_err());
        assert!(decode_histogram_samples(&[8], &mut Vec::new()).is_err());
        assert!(decode_float_histogram_samples(&[7], &mut Vec::new()).is_err());

        let mut full = Vec::new();
        let s = RefHistogramSample {
            series_ref: 1,
            t: 2,
            h: h(),
        };
        encode_histogram_samples(&[s.clone(), s.clone()], &mut full);
        let mut one = Vec::new();
        encode_histogram_samples(std::slice::from_ref(&s), &mut one);
        // Cuts at the end of the base or of the first entry leave valid records.
        for cut in (2..full.len()).filter(|&c| c != 17 && c != one.len()) {
            assert!(
                decode_histogram_samples(&full[..cut], &mut Vec::new()).is_err(),
                "{cut}"
            );
        }
        let mut extra = full.clone();
        extra.push(0);
        assert!(decode_histogram_samples(&extra, &mut Vec::new()).is_err());
        // An unknown hint, a schema past 32 bits, and a huge span count.
        let at_hint = 1 + 16 + 2;
        let mut bad = full.clone();
        bad[at_hint] = 4;
        assert_eq!(
            decode_histogram_samples(&bad, &mut Vec::new())
                .unwrap_err()
                .reason,
            "unknown histogram counter reset hint"
        );
        let mut bad = full[..at_hint + 1].to_vec();
        put_varint(&mut bad, i64::from(i32::MAX) + 1);
        assert_eq!(
            decode_histogram_samples(&bad, &mut Vec::new())
                .unwrap_err()
                .reason,
            "histogram schema out of range"
        );
        let mut bad = full[..at_hint + 1].to_vec();
        bad.push(0);
        bad.extend([0; 8]);
        bad.extend([0, 0]);
        bad.extend([0; 8]);
        put_uvarint(&mut bad, u64::MAX);
        assert_eq!(
            decode_histogram_samples(&bad, &mut Vec::new())
                .unwrap_err()
                .reason,
            "histogram span count larger than the record"
        );
        let mut m = Vec::new();
        encode_mmap_markers(
            &[RefMmapMarker {
                series_ref: 3,
                mmap_ref: 1 << 32 | 8,
            }],
            &mut m,
        );
        assert_eq!(m.len(), 17);
        for cut in 2..m.len() {
            assert!(
                decode_mmap_markers(&m[..cut], &mut Vec::new()).is_err(),
                "{cut}"
            );
        }
    }

    fn arb_spans() -> impl Strategy<Value = Vec<Span>> {
        proptest::collection::vec((any::<i32>(), any::<u32>()), 0..4)
            .prop_map(|v| v.into_iter().map(|(o, l)| Span::new(o, l)).collect())
    }

    fn arb_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::from_bits(crate::model::STALE_NAN_BITS)),
            Just(0.0),
        ]
    }

    fn arb_hint() -> impl Strategy<Value = CounterResetHint> {
        (0u8..4).prop_map(|b| CounterResetHint::from_u8(b).unwrap())
    }

    fn arb_histogram() -> impl Strategy<Value = Histogram> {
        (
            arb_hint(),
            any::<i32>(),
            arb_f64(),
            any::<u64>(),
            any::<u64>(),
            arb_f64(),
            arb_spans(),
            arb_spans(),
            proptest::collection::vec(any::<i64>(), 0..6),
            proptest::collection::vec(any::<i64>(), 0..6),
        )
            .prop_map(|(hint, schema, zt, zc, c, sum, ps, ns, pb, nb)| Histogram {
                counter_reset_hint: hint,
                schema,
                zero_threshold: zt,
                zero_count: zc,
                count: c,
                sum,
                positive_spans: ps,
                negative_spans: ns,
                positive_buckets: pb,
                negative_buckets: nb,
            })
    }

    fn arb_float_histogram() -> impl Strategy<Value = FloatHistogram> {
        (
            arb_hint(),
            any::<i32>(),
            (arb_f64(), arb_f64(), arb_f64(), arb_f64()),
            arb_spans(),
            arb_spans(),
            proptest::collection::vec(arb_f64(), 0..6),
            proptest::collection::vec(arb_f64(), 0..6),
        )
            .prop_map(
                |(hint, schema, (zt, zc, c, sum), ps, ns, pb, nb)| FloatHistogram {
                    counter_reset_hint: hint,
                    schema,
                    zero_threshold: zt,
                    zero_count: zc,
                    count: c,
                    sum,
                    positive_spans: ps,
                    negative_spans: ns,
                    positive_buckets: pb,
                    negative_buckets: nb,
                },
            )
    }

    proptest! {
        #[test]
        fn histogram_samples_round_trip(s in proptest::collection::vec(
            (any::<u64>(), any::<i64>(), arb_histogram())
                .prop_map(|(series_ref, t, h)| RefHistogramSample { series_ref, t, h }), 0..12)) {
            let mut b = Vec::new();
            encode_histogram_samples(&s, &mut b);
            let mut out = Vec::new();
            decode_histogram_samples(&b, &mut out).unwrap();
            prop_assert_eq!(out, s);
        }

        #[test]
        fn float_histogram_samples_round_trip(s in proptest::collection::vec(
            (any::<u64>(), any::<i64>(), arb_float_histogram())
                .prop_map(|(series_ref, t, h)| RefFloatHistogramSample { series_ref, t, h }), 0..12)) {
            let mut b = Vec::new();
            encode_float_histogram_samples(&s, &mut b);
            let mut out = Vec::new();
            decode_float_histogram_samples(&b, &mut out).unwrap();
            prop_assert_eq!(out, s);
        }

        #[test]
        fn mmap_markers_round_trip(s in proptest::collection::vec(
            (any::<u64>(), any::<u64>()).prop_map(|(series_ref, mmap_ref)| RefMmapMarker { series_ref, mmap_ref }), 0..20)) {
            let mut b = Vec::new();
            encode_mmap_markers(&s, &mut b);
            let mut out = Vec::new();
            decode_mmap_markers(&b, &mut out).unwrap();
            prop_assert_eq!(out, s);
        }

        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_histogram_samples(&b, &mut Vec::new());
            let _ = decode_float_histogram_samples(&b, &mut Vec::new());
            let _ = decode_mmap_markers(&b, &mut Vec::new());
            for t in [5u8, 7, 8] {
                let mut r = vec![t];
                r.extend_from_slice(&b);
                let _ = decode_histogram_samples(&r, &mut Vec::new());
                let _ = decode_float_histogram_samples(&r, &mut Vec::new());
                let _ = decode_mmap_markers(&r, &mut Vec::new());
            }
        }
    }
}
