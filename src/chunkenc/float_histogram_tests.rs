//! Tests of the float histogram chunk: Prometheus 2.42's `float_histogram_test.go` cases, a
//! bit-at-a-time transcription of its appender as the byte oracle, and round trips.

use super::*;
use crate::chunkenc::bstream::ReferenceBstream;
use crate::chunkenc::histogram::tests::{
    arb_spans, arb_sum, arb_zero_threshold, ref_int, ref_layout, ref_stream, ref_xor,
};
use crate::chunkenc::NewChunkReason;
use crate::model::histogram::{CounterResetHint, Histogram};
use proptest::prelude::*;

fn sp(s: &[(i32, u32)]) -> Vec<Span> {
    s.iter().map(|&(o, l)| Span::new(o, l)).collect()
}

/// `h1` of `TestFloatHistogramChunkAppendable`.
fn h1() -> FloatHistogram {
    FloatHistogram {
        count: 5.0,
        zero_count: 2.0,
        sum: 18.4,
        zero_threshold: 1e-125,
        schema: 1,
        positive_spans: sp(&[(0, 2), (2, 1), (3, 2), (3, 1), (1, 1)]),
        positive_buckets: vec![6.0, 3.0, 3.0, 2.0, 4.0, 5.0, 1.0],
        ..FloatHistogram::default()
    }
}

fn decode(bytes: &[u8]) -> Vec<(i64, FloatHistogram)> {
    FloatHistogramIter::new(bytes).map(|r| r.unwrap()).collect()
}

/// `TestFloatHistogramChunkSameBuckets` and `...BucketChanges`.
#[test]
fn same_buckets_and_recode() {
    let int = Histogram {
        count: 15,
        zero_count: 2,
        sum: 18.4,
        zero_threshold: 1e-100,
        schema: 1,
        positive_spans: sp(&[(0, 2), (1, 2)]),
        positive_buckets: vec![1, 1, -1, 0],
        negative_spans: sp(&[(1, 1), (2, 3)]),
        negative_buckets: vec![2, 1, -1, -1],
        ..Histogram::default()
    };
    let mut h = int.to_float();
    let mut app = FloatHistogramAppender::new();
    let mut exp = Vec::new();
    for (i, ts) in [1_234_567_890i64, 1_234_567_906, 1_234_567_920]
        .into_iter()
        .enumerate()
    {
        if i == 2 {
            app = FloatHistogramAppender::from_chunk(app.into_bytes()).unwrap();
        }
        app.append(ts, &h).unwrap();
        let hint = if i == 0 {
            CounterResetHint::Unknown
        } else {
            CounterResetHint::NotCounterReset
        };
        exp.push((
            ts,
            FloatHistogram {
                counter_reset_hint: hint,
                ..h.clone()
            },
        ));
        h.count += 17.0;
        h.zero_count += 1.0;
        h.sum = 24.4;
        h.positive_buckets.iter_mut().for_each(|b| *b += 2.0);
        h.negative_buckets.iter_mut().for_each(|b| *b += 0.5);
    }
    assert_eq!(decode(app.bytes()), exp);
    let mut it = FloatHistogramIter::new(app.bytes());
    assert_eq!(it.seek(exp[1].0).unwrap().unwrap(), exp[1].0);
    assert_eq!(it.at(), exp[1].1);

    // New buckets on both sides: the chunk is recoded with zeros.
    let mut a = h1();
    a.count = 27.0;
    a.negative_spans = sp(&[(1, 1)]);
    a.negative_buckets = vec![1.0];
    let mut app = FloatHistogramAppender::new();
    app.append(1, &a).unwrap();
    let mut b = a.clone();
    b.positive_spans = sp(&[(0, 3), (1, 1), (1, 4), (3, 3)]);
    b.negative_spans = sp(&[(0, 2)]);
    b.count = 35.0;
    b.positive_buckets = vec![7.0, 5.0, 1.0, 3.0, 1.0, 0.0, 2.0, 5.0, 5.0, 0.0, 1.0];
    b.negative_buckets = vec![2.0, 1.0];
    let Appendable::Recode {
        positive_inserts,
        negative_inserts,
    } = app.appendable(&b)
    else {
        panic!("only new buckets came in")
    };
    let mut app = app
        .recode(
            &positive_inserts,
            &negative_inserts,
            &b.positive_spans,
            &b.negative_spans,
        )
        .unwrap();
    app.append(2, &b).unwrap();
    let got = decode(app.bytes());
    assert_eq!(
        got[0].1.positive_buckets,
        [6.0, 3.0, 0.0, 3.0, 0.0, 0.0, 2.0, 4.0, 5.0, 0.0, 1.0]
    );
    assert_eq!(got[0].1.negative_buckets, [0.0, 1.0]);
    let mut fresh = FloatHistogramAppender::new();
    for (t, h) in &got {
        fresh.append(*t, h).unwrap();
    }
    assert_eq!(fresh.bytes(), app.bytes());
}

/// `TestFloatHistogramChunkAppendable` and `...AppendableGauge`.
#[test]
fn appendable_cases() {
    let mut app = FloatHistogramAppender::new();
    app.append(1_234_567_890, &h1()).unwrap();
    let reset = Appendable::NewChunk(NewChunkReason::CounterReset);
    let mut h = h1();
    h.schema += 1;
    assert_eq!(
        app.appendable(&h),
        Appendable::NewChunk(NewChunkReason::SchemaChanged)
    );
    let mut h = h1();
    h.zero_threshold += 0.1;
    assert_eq!(
        app.appendable(&h),
        Appendable::NewChunk(NewChunkReason::ZeroThresholdChanged)
    );
    let mut more = h1();
    more.positive_spans = sp(&[(0, 3), (1, 1), (1, 4), (3, 3)]);
    more.count += 9.0;
    more.positive_buckets = vec![7.0, 5.0, 1.0, 3.0, 1.0, 0.0, 2.0, 5.0, 5.0, 0.0, 1.0];
    assert!(matches!(app.appendable(&more), Appendable::Recode { .. }));
    let mut missing = h1();
    missing.positive_spans = sp(&[(0, 2), (5, 2), (3, 1), (1, 1)]);
    missing.positive_buckets = vec![6.0, 3.0, 2.0, 4.0, 5.0, 1.0];
    assert_eq!(app.appendable(&missing), reset);
    let mut smaller = h1();
    smaller.positive_buckets[1] = 2.0;
    assert_eq!(app.appendable(&smaller), reset);
    let mut smaller_new = more.clone();
    smaller_new.positive_buckets[10] = 0.0;
    assert_eq!(app.appendable(&smaller_new), reset);
    let mut nan = h1();
    nan.count = f64::NAN;
    assert_eq!(app.appendable(&nan), Appendable::Append);

    let mut g = FloatHistogramAppender::new();
    g.append(1, &h1()).unwrap();
    g.set_counter_reset_header(CounterResetHeader::Gauge);
    assert_eq!(
        g.appendable(&h1()),
        Appendable::NewChunk(NewChunkReason::KindChanged)
    );
    let GaugeAppendable::Append {
        positive_inserts,
        backward_positive_inserts,
        positive_spans,
        ..
    } = g.appendable_gauge(&missing)
    else {
        panic!("gauges take missing buckets")
    };
    // Index 7 is new to the chunk, 4 9 13 15 are missing from the histogram.
    assert!(!positive_inserts.is_empty() && !backward_positive_inserts.is_empty());
    let mut m = missing.clone();
    m.positive_spans = positive_spans;
    FloatHistogramAppender::recode_histogram(&mut m, &backward_positive_inserts, &[]);
    assert_eq!(
        m.positive_bucket_counts().collect::<Vec<_>>(),
        [
            (0, 6.0),
            (1, 3.0),
            (4, 0.0),
            (7, 2.0),
            (8, 4.0),
            (9, 0.0),
            (12, 5.0),
            (13, 0.0),
            (14, 1.0),
            (15, 0.0)
        ]
    );
    assert!(matches!(
        g.appendable_gauge(&more),
        GaugeAppendable::Append { .. }
    ));
    assert!(matches!(
        g.appendable_gauge(&smaller),
        GaugeAppendable::Append { .. }
    ));
}

#[test]
fn push_headers_and_stale_markers() {
    let mut app = FloatHistogramAppender::new();
    let header = |p: Pushed<FloatHistogramAppender>| match p {
        Pushed::Cut { header, .. } => Some(header),
        _ => None,
    };
    assert_eq!(
        header(app.push(1, h1(), false).unwrap()),
        Some(CounterResetHeader::Unknown)
    );
    assert_eq!(
        header(app.push(2, h1(), true).unwrap()),
        Some(CounterResetHeader::NotCounterReset)
    );
    assert_eq!(
        header(app.push(3, FloatHistogram::stale_marker(), false).unwrap()),
        None
    );
    assert_eq!(
        header(app.push(4, h1(), false).unwrap()),
        Some(CounterResetHeader::Unknown)
    );
    let mut g = h1();
    g.counter_reset_hint = CounterResetHint::Gauge;
    assert_eq!(
        header(app.push(5, g.clone(), false).unwrap()),
        Some(CounterResetHeader::Gauge)
    );
    g.count = 1.0;
    assert_eq!(header(app.push(6, g, false).unwrap()), None);
    let got = decode(app.bytes());
    assert_eq!(got[1].1.count, 1.0);
    // A stale marker first: an empty layout, and only stale markers after it.
    let mut s = FloatHistogramAppender::new();
    s.append(1, &FloatHistogram::stale_marker()).unwrap();
    assert_eq!(s.append(2, &h1()), Err(AppendError::AfterStaleMarker));
    s.append(2, &FloatHistogram::stale_marker()).unwrap();
    assert_eq!(
        decode(s.bytes()),
        [
            (1, FloatHistogram::stale_marker()),
            (2, FloatHistogram::stale_marker())
        ]
    );
}

#[test]
fn reopen_and_damage() {
    let mut app = FloatHistogramAppender::new();
    let mut h = h1();
    for i in 0..8 {
        h.count += 1.0;
        h.sum += 0.1;
        h.positive_buckets[3] += 1.0;
        app.append(i * 1000, &h).unwrap();
    }
    let mut re = FloatHistogramAppender::from_chunk(app.bytes().to_vec()).unwrap();
    assert_eq!(re.bytes(), app.bytes());
    h.count += 1.0;
    h.sum += 0.1;
    app.append(9000, &h).unwrap();
    re.append(9000, &h).unwrap();
    assert_eq!(decode(re.bytes()), decode(app.bytes()));
    let b = app.bytes();
    for cut in 0..b.len() - 1 {
        assert_eq!(
            FloatHistogramIter::new(&b[..cut])
                .filter(Result::is_err)
                .count(),
            1,
            "cut {cut}"
        );
    }
}

// --- A transcription of Prometheus 2.42's FloatHistogramAppender, one bit at a time. ---

struct Field(f64, u8, u8);

struct Reference {
    b: ReferenceBstream,
    n: u16,
    t: i64,
    t_delta: i64,
    sum: Field,
    cnt: Field,
    zcnt: Field,
    pb: Vec<Field>,
    nb: Vec<Field>,
}

impl Reference {
    fn new() -> Self {
        Reference {
            b: ref_stream(),
            n: 0,
            t: 0,
            t_delta: 0,
            sum: Field(0.0, 0xff, 0),
            cnt: Field(0.0, 0xff, 0),
            zcnt: Field(0.0, 0xff, 0),
            pb: vec![],
            nb: vec![],
        }
    }

    fn append(&mut self, t: i64, h: &FloatHistogram) {
        let h = if h.is_stale() {
            FloatHistogram::stale_marker()
        } else {
            h.clone()
        };
        let mut td = 0;
        let b = &mut self.b;
        if self.n == 0 {
            ref_layout(
                b,
                h.schema,
                h.zero_threshold,
                &h.positive_spans,
                &h.negative_spans,
            );
            self.pb = h
                .positive_buckets
                .iter()
                .map(|&v| Field(v, 0xff, 0))
                .collect();
            self.nb = h
                .negative_buckets
                .iter()
                .map(|&v| Field(v, 0xff, 0))
                .collect();
            ref_int(b, t);
            for v in [h.count, h.zero_count, h.sum] {
                b.write_bits(u128::from(v.to_bits()), 64);
            }
            for v in h.positive_buckets.iter().chain(&h.negative_buckets) {
                b.write_bits(u128::from(v.to_bits()), 64);
            }
            self.cnt.0 = h.count;
            self.zcnt.0 = h.zero_count;
            self.sum.0 = h.sum;
        } else {
            td = t.wrapping_sub(self.t);
            ref_int(b, td.wrapping_sub(self.t_delta));
            let mut put = |f: &mut Field, v: f64| {
                ref_xor(b, v, f.0, &mut f.1, &mut f.2);
                f.0 = v;
            };
            put(&mut self.cnt, h.count);
            put(&mut self.zcnt, h.zero_count);
            put(&mut self.sum, h.sum);
            for (f, &v) in self.pb.iter_mut().zip(&h.positive_buckets) {
                put(f, v);
            }
            for (f, &v) in self.nb.iter_mut().zip(&h.negative_buckets) {
                put(f, v);
            }
        }
        self.n += 1;
        self.b.stream[..2].copy_from_slice(&self.n.to_be_bytes());
        self.t = t;
        self.t_delta = td;
    }
}

fn arb_float_seq() -> impl Strategy<Value = Vec<(i64, FloatHistogram)>> {
    (
        arb_spans(),
        arb_spans(),
        -4i32..9,
        arb_zero_threshold(),
        1usize..30,
        prop::bool::ANY,
    )
        .prop_flat_map(|(p, n, schema, zt, len, stale_end)| {
            let np = span_buckets(&p) as usize;
            let nn = span_buckets(&n) as usize;
            let one = (
                prop_oneof![0i64..100_000, any::<i64>()],
                arb_sum(),
                arb_sum(),
                arb_sum(),
                proptest::collection::vec(arb_sum(), np),
                proptest::collection::vec(arb_sum(), nn),
            );
            proptest::collection::vec(one, len).prop_map(move |v| {
                let mut t = 0i64;
                let k = v.len();
                v.into_iter()
                    .enumerate()
                    .map(|(i, (dt, count, zc, sum, pb, nb))| {
                        t = t.wrapping_add(dt);
                        if stale_end && i + 1 == k && i > 0 {
                            return (t, FloatHistogram::stale_marker());
                        }
                        let h = FloatHistogram {
                            schema,
                            zero_threshold: zt,
                            count,
                            zero_count: zc,
                            sum,
                            positive_spans: p.clone(),
                            negative_spans: n.clone(),
                            positive_buckets: pb,
                            negative_buckets: nb,
                            ..FloatHistogram::default()
                        };
                        (t, h)
                    })
                    .collect()
            })
        })
}

proptest! {
    /// Byte for byte Prometheus's appender, after every append, and decodes back bit for bit.
    #[test]
    fn appender_matches_prometheus_bits(seq in arb_float_seq()) {
        let mut app = FloatHistogramAppender::new();
        let mut reference = Reference::new();
        for (t, h) in &seq {
            app.append(*t, h).unwrap();
            reference.append(*t, h);
            prop_assert_eq!(app.bytes(), &reference.b.stream[..]);
        }
        let got = decode(app.bytes());
        for ((t, h), (gt, gh)) in seq.iter().zip(&got) {
            prop_assert_eq!(t, gt);
            let want = if h.is_stale() { FloatHistogram::stale_marker() } else {
                FloatHistogram { counter_reset_hint: gh.counter_reset_hint, ..h.clone() }
            };
            prop_assert_eq!(gh, &want);
        }
        let re = FloatHistogramAppender::from_chunk(app.bytes().to_vec()).unwrap();
        prop_assert_eq!(re.bytes(), app.bytes());
    }

    /// Arbitrary bytes never make the iterator panic.
    #[test]
    fn iterator_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut it = FloatHistogramIter::new(&b);
        let n = it.num_samples();
        let mut k = 0;
        while let Some(r) = it.next_sample() {
            if r.is_err() { break; }
            let _ = it.at();
            k += 1;
        }
        prop_assert!(k <= n);
        prop_assert!(it.next_sample().is_none());
        let _ = FloatHistogramAppender::from_chunk(b);
    }

    /// Float histograms pushed through counter and gauge rules all come back.
    #[test]
    fn push_keeps_every_histogram(
        steps in proptest::collection::vec((arb_spans(), 0u32..6, 0u8..8, prop::bool::ANY), 1..30)
    ) {
        let mut app = FloatHistogramAppender::new();
        let mut chunks = Vec::new();
        let mut want = Vec::new();
        for (i, (spans, grow, hint, cut)) in steps.into_iter().enumerate() {
            let t = i as i64 * 1000;
            let nb = span_buckets(&spans) as usize;
            let h = if hint == 7 {
                FloatHistogram::stale_marker()
            } else {
                let buckets: Vec<f64> = (0..nb).map(|i| (i as f64) * f64::from(grow) + 0.5).collect();
                FloatHistogram {
                    counter_reset_hint: CounterResetHint::from_u8(hint % 4).unwrap(),
                    schema: i32::from(hint == 5),
                    count: buckets.iter().sum::<f64>() + f64::from(grow),
                    sum: f64::from(grow),
                    positive_spans: spans,
                    positive_buckets: buckets,
                    ..FloatHistogram::default()
                }
            };
            want.push((t, h.clone()));
            if let Pushed::Cut { completed: Some(c), .. } = app.push(t, h, cut).unwrap() {
                chunks.push(c);
            }
        }
        chunks.push(app);
        let got: Vec<_> = chunks.iter().flat_map(|c| decode(c.bytes())).collect();
        prop_assert_eq!(got.len(), want.len());
        for ((t, h), (gt, gh)) in want.iter().zip(&got) {
            prop_assert_eq!(t, gt);
            let nonzero = |x: &FloatHistogram| x.positive_bucket_counts().filter(|b| b.1 != 0.0).collect::<Vec<_>>();
            prop_assert_eq!(nonzero(h), nonzero(gh));
            prop_assert_eq!(h.count.to_bits(), gh.count.to_bits());
        }
    }
}
