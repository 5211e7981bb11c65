//! Tests of the integer histogram chunk: Prometheus 2.42's `histogram_test.go` cases, a
//! bit-at-a-time transcription of its appender as the byte oracle, and round trips.

use super::*;
use crate::chunkenc::bstream::ReferenceBstream;
use crate::chunkenc::NewChunkReason;
use crate::model::histogram::{CounterResetHint, Side, Span};
use proptest::prelude::*;

fn sp(s: &[(i32, u32)]) -> Vec<Span> {
    s.iter().map(|&(o, l)| Span::new(o, l)).collect()
}

/// `h1` of `TestHistogramChunkAppendable`.
fn h1() -> Histogram {
    Histogram {
        count: 5,
        zero_count: 2,
        sum: 18.4,
        zero_threshold: 1e-125,
        schema: 1,
        positive_spans: sp(&[(0, 2), (2, 1), (3, 2), (3, 1), (1, 1)]),
        positive_buckets: vec![6, -3, 0, -1, 2, 1, -4],
        ..Histogram::default()
    }
}

fn decode(bytes: &[u8]) -> Vec<(i64, Histogram)> {
    HistogramIter::new(bytes).map(|r| r.unwrap()).collect()
}

/// `TestHistogramChunkSameBuckets`: three histograms, the third through a re-opened
/// appender; hints, float view and seek.
#[test]
fn same_buckets() {
    let mut app = HistogramAppender::new();
    let mut ts = 1_234_567_890;
    let mut h = Histogram {
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
    let mut exp = Vec::new();
    app.append(ts, &h).unwrap();
    exp.push((ts, h.clone()));
    ts += 16;
    h.count = 32;
    h.zero_count += 1;
    h.sum = 24.4;
    h.positive_buckets = vec![5, -2, 1, -2];
    h.negative_buckets = vec![4, -1, 1, -1];
    app.append(ts, &h).unwrap();
    exp.push((
        ts,
        Histogram {
            counter_reset_hint: CounterResetHint::NotCounterReset,
            ..h.clone()
        },
    ));
    let mut app = HistogramAppender::from_chunk(app.into_bytes()).unwrap();
    ts += 14;
    h.count = 54;
    h.zero_count += 2;
    h.positive_buckets = vec![6, 1, -3, 6];
    h.negative_buckets = vec![5, 1, -2, 3];
    app.append(ts, &h).unwrap();
    exp.push((
        ts,
        Histogram {
            counter_reset_hint: CounterResetHint::NotCounterReset,
            ..h.clone()
        },
    ));
    assert_eq!(app.num_samples(), 3);
    assert_eq!(decode(app.bytes()), exp);
    let mut it = HistogramIter::new(app.bytes());
    while let Some(t) = it.next_sample() {
        let t = t.unwrap();
        let (_, want) = exp.iter().find(|e| e.0 == t).unwrap();
        assert_eq!(it.at_float(), want.to_float());
    }
    let mut it = HistogramIter::new(app.bytes());
    assert_eq!(it.seek(exp[1].0).unwrap().unwrap(), exp[1].0);
    assert_eq!(it.seek(exp[1].0).unwrap().unwrap(), exp[1].0);
    assert_eq!(it.at(), exp[1].1);
    assert_eq!(it.seek(exp[2].0 + 1), None);
}

/// `TestHistogramChunkBucketChanges`: new buckets recode the chunk; the first histogram
/// comes back in the new layout with empty buckets.
#[test]
fn bucket_changes_recode() {
    let mut app = HistogramAppender::new();
    let ts1 = 1_234_567_890;
    let mut a = h1();
    a.count = 27;
    a.negative_spans = sp(&[(1, 1)]);
    a.negative_buckets = vec![1];
    app.append(ts1, &a).unwrap();
    let mut b = a.clone();
    b.positive_spans = sp(&[(0, 3), (1, 1), (1, 4), (3, 3)]);
    b.negative_spans = sp(&[(0, 2)]);
    b.count = 35;
    b.zero_count += 1;
    b.sum = 30.0;
    b.positive_buckets = vec![7, -2, -4, 2, -2, -1, 2, 3, 0, -5, 1];
    b.negative_buckets = vec![2, -1];
    let Appendable::Recode {
        positive_inserts,
        negative_inserts,
    } = app.appendable(&b)
    else {
        panic!("only new buckets came in")
    };
    assert!(!positive_inserts.is_empty() && !negative_inserts.is_empty());
    let mut app = app
        .recode(
            &positive_inserts,
            &negative_inserts,
            &b.positive_spans,
            &b.negative_spans,
        )
        .unwrap();
    let ts2 = ts1 + 16;
    app.append(ts2, &b).unwrap();
    let mut a_exp = a.clone();
    a_exp.positive_spans = b.positive_spans.clone();
    a_exp.positive_buckets = vec![6, -3, -3, 3, -3, 0, 2, 2, 1, -5, 1];
    a_exp.negative_spans = b.negative_spans.clone();
    a_exp.negative_buckets = vec![0, 1];
    b.counter_reset_hint = CounterResetHint::NotCounterReset;
    assert_eq!(
        decode(app.bytes()),
        [(ts1, a_exp.clone()), (ts2, b.clone())]
    );
    // A recoded chunk is exactly the chunk of the recoded histograms appended afresh.
    let mut fresh = HistogramAppender::new();
    fresh.append(ts1, &a_exp).unwrap();
    fresh.append(ts2, &b).unwrap();
    assert_eq!(fresh.bytes(), app.bytes());
}

/// `TestHistogramChunkAppendable`, case by case.
#[test]
fn appendable_cases() {
    let mut app = HistogramAppender::new();
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

    // More buckets: recode.
    let mut h = h1();
    h.positive_spans = sp(&[(0, 3), (1, 1), (1, 4), (3, 3)]);
    h.count += 9;
    h.zero_count += 1;
    h.sum = 30.0;
    h.positive_buckets = vec![7, -2, -4, 2, -2, -1, 2, 3, 0, -5, 1];
    let Appendable::Recode {
        positive_inserts,
        negative_inserts,
    } = app.appendable(&h)
    else {
        panic!("new buckets need a recode")
    };
    assert!(!positive_inserts.is_empty());
    assert!(negative_inserts.is_empty());

    // A bucket missing.
    let mut h = h1();
    h.positive_spans = sp(&[(0, 2), (5, 2), (3, 1), (1, 1)]);
    h.sum = 21.0;
    h.positive_buckets = vec![6, -3, -1, 2, 1, -4];
    assert_eq!(app.appendable(&h), reset);

    // A smaller bucket, same buckets.
    let mut h = h1();
    h.sum = 23.0;
    h.positive_buckets = vec![6, -4, 1, -1, 2, 1, -4];
    assert_eq!(app.appendable(&h), reset);

    // A smaller bucket among new buckets.
    let mut h = h1();
    h.positive_spans = sp(&[(0, 3), (1, 1), (1, 4), (3, 3)]);
    h.sum = 29.0;
    h.positive_buckets = vec![7, -2, -4, 2, -2, -1, 2, 3, 0, -5, 0];
    assert_eq!(app.appendable(&h), reset);

    // New buckets before the first one, and the first one smaller.
    let mut h = h1();
    h.positive_spans = sp(&[(-3, 2), (1, 2), (2, 1), (3, 2), (3, 1), (1, 1)]);
    h.sum = 26.0;
    h.positive_buckets = vec![1, 1, 3, -2, 0, -1, 2, 1, -4];
    assert_eq!(app.appendable(&h), reset);

    // Smaller count and zero count; stale markers fit, and then only stale markers.
    let mut h = h1();
    h.count = 4;
    assert_eq!(app.appendable(&h), reset);
    let mut h = h1();
    h.zero_count = 1;
    assert_eq!(app.appendable(&h), reset);
    assert_eq!(
        app.appendable(&Histogram::stale_marker()),
        Appendable::Append
    );
    assert_eq!(app.appendable(&h1()), Appendable::Append);
    app.append(1_234_567_900, &Histogram::stale_marker())
        .unwrap();
    assert_eq!(
        app.appendable(&h1()),
        Appendable::NewChunk(NewChunkReason::AfterStaleMarker)
    );
    assert_eq!(
        app.append(1_234_567_910, &h1()),
        Err(AppendError::AfterStaleMarker)
    );
    assert_eq!(
        app.appendable(&Histogram::stale_marker()),
        Appendable::Append
    );
    // A gauge chunk takes no counter histograms.
    let mut g = HistogramAppender::new();
    g.append(1, &h1()).unwrap();
    g.set_counter_reset_header(CounterResetHeader::Gauge);
    assert_eq!(
        g.appendable(&h1()),
        Appendable::NewChunk(NewChunkReason::KindChanged)
    );
}

/// `TestHistogramChunkAppendableGauge`, case by case.
#[test]
fn appendable_gauge_cases() {
    let mut app = HistogramAppender::new();
    app.append(1_234_567_890, &h1()).unwrap();
    assert_eq!(
        app.appendable_gauge(&h1()),
        GaugeAppendable::NewChunk(NewChunkReason::KindChanged)
    );
    app.set_counter_reset_header(CounterResetHeader::Gauge);
    let lens = |a: GaugeAppendable| match a {
        GaugeAppendable::Append {
            positive_inserts,
            negative_inserts,
            backward_positive_inserts,
            backward_negative_inserts,
            ..
        } => Some([
            positive_inserts.len(),
            negative_inserts.len(),
            backward_positive_inserts.len(),
            backward_negative_inserts.len(),
        ]),
        GaugeAppendable::NewChunk(_) => None,
    };
    let mut h = h1();
    h.schema += 1;
    assert_eq!(lens(app.appendable_gauge(&h)), None);
    let mut h = h1();
    h.zero_threshold += 0.1;
    assert_eq!(lens(app.appendable_gauge(&h)), None);
    // More buckets.
    let mut h = h1();
    h.positive_spans = sp(&[(0, 3), (1, 1), (1, 4), (3, 3)]);
    h.positive_buckets = vec![7, -2, -4, 2, -2, -1, 2, 3, 0, -5, 1];
    let [p, n, bp, bn] = lens(app.appendable_gauge(&h)).unwrap();
    assert!(p > 0 && n == 0 && bp == 0 && bn == 0);
    // Buckets missing.
    let mut h = h1();
    h.positive_spans = sp(&[(0, 2), (2, 1), (3, 1), (4, 1), (1, 1)]);
    h.positive_buckets = vec![6, -3, 0, -1, 3, -4];
    let [p, n, bp, bn] = lens(app.appendable_gauge(&h)).unwrap();
    assert!(p == 0 && n == 0 && bp > 0 && bn == 0);
    // Missing and new.
    let mut h = h1();
    h.positive_spans = sp(&[(0, 2), (5, 2), (3, 1), (1, 1)]);
    h.positive_buckets = vec![6, -3, -1, 2, 1, -4];
    let [p, n, bp, bn] = lens(app.appendable_gauge(&h)).unwrap();
    assert!(p > 0 && n == 0 && bp > 0 && bn == 0);
    // Smaller counts are fine for gauges.
    let mut h = h1();
    h.positive_buckets = vec![6, -4, 1, -1, 2, 1, -4];
    assert_eq!(lens(app.appendable_gauge(&h)), Some([0, 0, 0, 0]));
    let mut h = h1();
    h.positive_spans = sp(&[(-3, 2), (1, 2), (2, 1), (3, 2), (3, 1), (1, 1)]);
    h.positive_buckets = vec![1, 1, 3, -2, 0, -1, 2, 1, -4];
    let [p, n, bp, bn] = lens(app.appendable_gauge(&h)).unwrap();
    assert!(p > 0 && n == 0 && bp == 0 && bn == 0);
}

/// Headers and cuts of `push`, as Prometheus 2.42's `memSeries.appendHistogram` sets them.
#[test]
fn push_headers() {
    let mut app = HistogramAppender::new();
    let cut = |p: &Pushed<HistogramAppender>| match p {
        Pushed::Cut { header, reason, .. } => Some((*header, *reason)),
        _ => None,
    };
    // The first chunk of a series: unknown.
    let p = app.push(1000, h1(), false).unwrap();
    assert_eq!(cut(&p), Some((CounterResetHeader::Unknown, None)));
    assert!(matches!(
        p,
        Pushed::Cut {
            completed: None,
            ..
        }
    ));
    let mut h = h1();
    h.count += 1;
    assert!(matches!(
        app.push(2000, h.clone(), false).unwrap(),
        Pushed::Appended
    ));
    // A new bucket: recoded in place.
    let mut wider = h.clone();
    wider.positive_spans = sp(&[(0, 2), (2, 1), (3, 2), (3, 1), (1, 2)]);
    wider.positive_buckets.push(0);
    assert!(matches!(
        app.push(3000, wider.clone(), false).unwrap(),
        Pushed::Recoded
    ));
    // The head's own cut while the histogram would have fitted: "not a reset".
    wider.count += 1;
    let p = app.push(4000, wider.clone(), true).unwrap();
    assert_eq!(cut(&p), Some((CounterResetHeader::NotCounterReset, None)));
    let Pushed::Cut {
        completed: Some(old),
        ..
    } = p
    else {
        panic!("the previous chunk comes back")
    };
    assert_eq!(old.num_samples(), 3);
    assert_eq!(old.counter_reset_header(), CounterResetHeader::Unknown);
    // A counter reset.
    let mut smaller = wider.clone();
    smaller.count = 1;
    let p = app.push(5000, smaller.clone(), false).unwrap();
    assert_eq!(
        cut(&p),
        Some((
            CounterResetHeader::CounterReset,
            Some(NewChunkReason::CounterReset)
        ))
    );
    // A schema change: unknown.
    let mut other = smaller.clone();
    other.schema = 0;
    let p = app.push(6000, other.clone(), false).unwrap();
    assert_eq!(
        cut(&p),
        Some((
            CounterResetHeader::Unknown,
            Some(NewChunkReason::SchemaChanged)
        ))
    );
    // The hint "counter reset" always cuts.
    let mut hinted = other.clone();
    hinted.counter_reset_hint = CounterResetHint::CounterReset;
    let p = app.push(7000, hinted, false).unwrap();
    assert_eq!(
        cut(&p),
        Some((
            CounterResetHeader::CounterReset,
            Some(NewChunkReason::CounterReset)
        ))
    );
    // Stale, then a value: a new chunk, unknown.
    assert!(matches!(
        app.push(8000, Histogram::stale_marker(), false).unwrap(),
        Pushed::Appended
    ));
    let p = app.push(9000, other.clone(), false).unwrap();
    assert_eq!(
        cut(&p),
        Some((
            CounterResetHeader::Unknown,
            Some(NewChunkReason::AfterStaleMarker)
        ))
    );
    // A gauge: gauge chunk; missing buckets are added to the histogram, new ones to the chunk.
    let mut g = other.clone();
    g.counter_reset_hint = CounterResetHint::Gauge;
    let p = app.push(10_000, g.clone(), false).unwrap();
    assert_eq!(
        cut(&p),
        Some((CounterResetHeader::Gauge, Some(NewChunkReason::KindChanged)))
    );
    let mut g2 = g.clone();
    g2.positive_spans = sp(&[(0, 2), (5, 2), (3, 1), (1, 1)]);
    g2.positive_buckets = vec![6, -3, -1, 2, 1, -4];
    g2.count = 1;
    assert!(matches!(
        app.push(11_000, g2.clone(), false).unwrap(),
        Pushed::Recoded
    ));
    let got = decode(app.bytes());
    assert_eq!(got.len(), 2);
    let (_, last) = &got[1];
    // Indices 0 1 7 8 12 14 as sent; the chunk's other buckets (4 9 13 15 16) come back empty.
    let abs: Vec<_> = last.positive_bucket_counts().collect();
    assert_eq!(
        abs,
        [
            (0, 6),
            (1, 3),
            (4, 0),
            (7, 2),
            (8, 4),
            (9, 0),
            (12, 5),
            (13, 0),
            (14, 1),
            (15, 0),
            (16, 0)
        ]
    );
    assert_eq!(
        g2.positive_bucket_counts().collect::<Vec<_>>(),
        abs.iter().copied().filter(|b| b.1 != 0).collect::<Vec<_>>()
    );
    assert!(got
        .iter()
        .all(|(_, h)| h.counter_reset_hint == CounterResetHint::Gauge));
    // Structural errors leave the chunk alone.
    let before = app.bytes().to_vec();
    let mut bad = g.clone();
    bad.positive_buckets.pop();
    assert!(matches!(
        app.push(12_000, bad, false),
        Err(AppendError::BucketCountMismatch {
            side: Side::Positive,
            ..
        })
    ));
    assert_eq!(app.bytes(), before);
    let mut backwards = g.clone();
    backwards.positive_spans[1].offset = -1;
    assert!(matches!(
        app.push(12_000, backwards, false),
        Err(AppendError::NegativeSpanOffset {
            side: Side::Positive,
            number: 2
        })
    ));
    assert_eq!(app.bytes(), before);
}

/// Re-opening keeps the bytes; appending after the re-open gives the continuous bytes when
/// the sum has a window, and Prometheus's `(0, 0)`-window bytes when it never had one.
#[test]
fn reopen_continues_like_prometheus() {
    let mut h = h1();
    let mut cont = HistogramAppender::new();
    for i in 0..5 {
        h.count += 1;
        h.sum += 1.5;
        cont.append(i * 1000, &h).unwrap();
    }
    let mut re = HistogramAppender::from_chunk(cont.bytes().to_vec()).unwrap();
    assert_eq!(re.bytes(), cont.bytes());
    h.sum += 1.5;
    cont.append(5000, &h).unwrap();
    re.append(5000, &h).unwrap();
    assert_eq!(re.bytes(), cont.bytes());
    // Constant sum: the chunk never wrote a window, the re-opened appender reuses (0, 0).
    let mut cont = HistogramAppender::new();
    let h = h1();
    cont.append(0, &h).unwrap();
    cont.append(1000, &h).unwrap();
    let mut re = HistogramAppender::from_chunk(cont.bytes().to_vec()).unwrap();
    let mut h2 = h.clone();
    h2.sum = 99.0;
    cont.append(2000, &h2).unwrap();
    re.append(2000, &h2).unwrap();
    assert_ne!(re.bytes(), cont.bytes());
    assert_eq!(decode(re.bytes()), decode(cont.bytes()));
    // Anything but padding after the last sample is refused.
    let mut bytes = cont.into_bytes();
    bytes.push(1);
    assert!(HistogramAppender::from_chunk(bytes).is_err());
    // An empty chunk re-opens as a fresh one.
    let empty = HistogramAppender::from_chunk(vec![0, 0, 0]).unwrap();
    assert_eq!(empty.num_samples(), 0);
}

#[test]
fn damaged_chunks_are_errors() {
    let mut app = HistogramAppender::new();
    let mut h = h1();
    for i in 0..10 {
        h.count += i;
        h.positive_buckets[0] += i as i64;
        app.append(i as i64 * 15_000, &h).unwrap();
    }
    let b = app.bytes();
    for cut in 0..b.len() - 1 {
        let errs = HistogramIter::new(&b[..cut]).filter(Result::is_err).count();
        // Cutting into the padding of the last byte may leave every sample intact.
        assert!(errs == 1 || cut + 1 >= b.len(), "cut {cut}");
    }
    // A count larger than the data.
    let mut more = b.to_vec();
    more[1] += 1;
    let r: Vec<_> = HistogramIter::new(&more).collect();
    assert_eq!(r.len(), 11);
    assert!(r[10].is_err());
    // A huge bucket count is refused before anything is allocated for it.
    let mut w = HistogramAppender::new().into_bytes();
    w[1] = 1;
    let mut hb = HistBits::resume(&mut w, (0, 0));
    write_layout(
        &mut hb,
        &Layout {
            positive_spans: sp(&[(0, u32::MAX), (0, u32::MAX)]),
            ..Layout::default()
        },
    );
    hb.finish();
    let e = HistogramIter::new(&w).next().unwrap().unwrap_err();
    assert_eq!(e.reason, "histogram bucket count larger than the chunk");
}

// --- A transcription of Prometheus 2.42's HistogramAppender, one bit at a time. ---

struct Reference {
    b: ReferenceBstream,
    n: u16,
    t: i64,
    cnt: u64,
    zcnt: u64,
    t_delta: i64,
    cnt_delta: i64,
    zcnt_delta: i64,
    pb: Vec<i64>,
    nb: Vec<i64>,
    pd: Vec<i64>,
    nd: Vec<i64>,
    sum: f64,
    leading: u8,
    trailing: u8,
}

pub(crate) fn ref_int(b: &mut ReferenceBstream, v: i64) {
    let fits = |n: u32| -((1i64 << (n - 1)) - 1) <= v && v <= 1i64 << (n - 1);
    if v == 0 {
        return b.write_bit(false);
    }
    for (i, n) in [3u32, 6, 9, 12, 18, 25, 56].into_iter().enumerate() {
        if fits(n) {
            let ones = i as u32 + 1;
            b.write_bits(((1u128 << ones) - 1) << 1, ones + 1);
            return b.write_bits(v as u64 as u128 & ((1 << n) - 1), n);
        }
    }
    b.write_bits(0xff, 8);
    b.write_bits(v as u64 as u128, 64);
}

pub(crate) fn ref_uint(b: &mut ReferenceBstream, v: u64) {
    if v == 0 {
        return b.write_bit(false);
    }
    for (i, n) in [3u32, 6, 9, 12, 18, 25, 56].into_iter().enumerate() {
        if v >> n == 0 {
            let ones = i as u32 + 1;
            b.write_bits(((1u128 << ones) - 1) << 1, ones + 1);
            return b.write_bits(v as u128, n);
        }
    }
    b.write_bits(0xff, 8);
    b.write_bits(v as u128, 64);
}

pub(crate) fn ref_xor(
    b: &mut ReferenceBstream,
    new: f64,
    cur: f64,
    leading: &mut u8,
    trailing: &mut u8,
) {
    let delta = new.to_bits() ^ cur.to_bits();
    if delta == 0 {
        return b.write_bit(false);
    }
    b.write_bit(true);
    let nl = (delta.leading_zeros() as u8).min(31);
    let nt = delta.trailing_zeros() as u8;
    if *leading != 0xff && nl >= *leading && nt >= *trailing {
        b.write_bit(false);
        let sig = 64 - u32::from(*leading) - u32::from(*trailing);
        return b.write_bits((delta >> *trailing) as u128, sig);
    }
    *leading = nl;
    *trailing = nt;
    b.write_bit(true);
    b.write_bits(u128::from(nl), 5);
    let sig = 64 - u32::from(nl) - u32::from(nt);
    b.write_bits(u128::from(sig) & 63, 6);
    b.write_bits((delta >> nt) as u128, sig);
}

pub(crate) fn ref_layout(b: &mut ReferenceBstream, schema: i32, zt: f64, p: &[Span], n: &[Span]) {
    if zt == 0.0 {
        b.write_byte(0);
    } else {
        let bits = zt.to_bits();
        let e = ((bits >> 52) & 0x7ff) as i64 - 1022;
        if bits >> 63 == 0 && bits & ((1 << 52) - 1) == 0 && (-242..=11).contains(&e) {
            b.write_byte((e + 243) as u8);
        } else {
            b.write_byte(255);
            b.write_bits(u128::from(bits), 64);
        }
    }
    ref_int(b, i64::from(schema));
    for spans in [p, n] {
        ref_uint(b, spans.len() as u64);
        for s in spans {
            ref_uint(b, u64::from(s.length));
            ref_int(b, i64::from(s.offset));
        }
    }
}

pub(crate) fn ref_stream() -> ReferenceBstream {
    ReferenceBstream {
        stream: vec![0, 0, 0],
        count: 0,
    }
}

impl Reference {
    fn new() -> Self {
        Reference {
            b: ref_stream(),
            n: 0,
            t: 0,
            cnt: 0,
            zcnt: 0,
            t_delta: 0,
            cnt_delta: 0,
            zcnt_delta: 0,
            pb: vec![],
            nb: vec![],
            pd: vec![],
            nd: vec![],
            sum: 0.0,
            leading: 0xff,
            trailing: 0,
        }
    }

    fn append(&mut self, t: i64, h: &Histogram) {
        let h = if h.is_stale() {
            Histogram::stale_marker()
        } else {
            h.clone()
        };
        let (mut td, mut cd, mut zd) = (0, 0, 0);
        if self.n == 0 {
            ref_layout(
                &mut self.b,
                h.schema,
                h.zero_threshold,
                &h.positive_spans,
                &h.negative_spans,
            );
            self.pb = vec![0; h.positive_buckets.len()];
            self.nb = vec![0; h.negative_buckets.len()];
            self.pd = self.pb.clone();
            self.nd = self.nb.clone();
            ref_int(&mut self.b, t);
            ref_uint(&mut self.b, h.count);
            ref_uint(&mut self.b, h.zero_count);
            self.b.write_bits(u128::from(h.sum.to_bits()), 64);
            for &x in h.positive_buckets.iter().chain(&h.negative_buckets) {
                ref_int(&mut self.b, x);
            }
        } else {
            td = t.wrapping_sub(self.t);
            cd = (h.count as i64).wrapping_sub(self.cnt as i64);
            zd = (h.zero_count as i64).wrapping_sub(self.zcnt as i64);
            let (mut cdod, mut zdod) = (
                cd.wrapping_sub(self.cnt_delta),
                zd.wrapping_sub(self.zcnt_delta),
            );
            if h.is_stale() {
                (cdod, zdod) = (0, 0);
            }
            ref_int(&mut self.b, td.wrapping_sub(self.t_delta));
            ref_int(&mut self.b, cdod);
            ref_int(&mut self.b, zdod);
            ref_xor(
                &mut self.b,
                h.sum,
                self.sum,
                &mut self.leading,
                &mut self.trailing,
            );
            for (i, &x) in h.positive_buckets.iter().enumerate() {
                let d = x.wrapping_sub(self.pb[i]);
                ref_int(&mut self.b, d.wrapping_sub(self.pd[i]));
                self.pd[i] = d;
            }
            for (i, &x) in h.negative_buckets.iter().enumerate() {
                let d = x.wrapping_sub(self.nb[i]);
                ref_int(&mut self.b, d.wrapping_sub(self.nd[i]));
                self.nd[i] = d;
            }
        }
        self.n += 1;
        self.b.stream[..2].copy_from_slice(&self.n.to_be_bytes());
        self.t = t;
        self.cnt = h.count;
        self.zcnt = h.zero_count;
        (self.t_delta, self.cnt_delta, self.zcnt_delta) = (td, cd, zd);
        for (i, &x) in h.positive_buckets.iter().enumerate() {
            self.pb[i] = x;
        }
        for (i, &x) in h.negative_buckets.iter().enumerate() {
            self.nb[i] = x;
        }
        self.sum = h.sum;
    }
}

pub(crate) fn arb_spans() -> impl Strategy<Value = Vec<Span>> {
    proptest::collection::vec((-3i32..4, 0u32..4), 0..4).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (o, l))| Span::new(if i == 0 { o * 7 } else { o.abs() }, l))
            .collect()
    })
}

pub(crate) fn arb_sum() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..1000).prop_map(|x| f64::from(x) * 0.25),
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::NAN),
    ]
}

pub(crate) fn arb_zero_threshold() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(2f64.powi(-128)),
        Just(0.001),
        (-243i32..=12).prop_map(|e| 2f64.powi(e)),
    ]
}

/// A sequence on one layout: arbitrary counts (deltas of any size exercise every varbit
/// width), timestamps, sums; maybe stale markers at the end.
fn arb_same_layout() -> impl Strategy<Value = Vec<(i64, Histogram)>> {
    (
        arb_spans(),
        arb_spans(),
        -4i32..9,
        arb_zero_threshold(),
        1usize..40,
        0usize..3,
    )
        .prop_flat_map(|(p, n, schema, zt, len, stale)| {
            let np = span_buckets(&p) as usize;
            let nn = span_buckets(&n) as usize;
            let val = prop_oneof![-5i64..5, any::<i64>(), -100_000i64..100_000];
            let one = (
                prop_oneof![0i64..100_000, any::<i64>()],
                any::<u64>(),
                prop_oneof![0u64..10, any::<u64>()],
                arb_sum(),
                proptest::collection::vec(val.clone(), np),
                proptest::collection::vec(val, nn),
            );
            proptest::collection::vec(one, len).prop_map(move |v| {
                let mut t = 1_700_000_000_000i64;
                let k = v.len();
                v.into_iter()
                    .enumerate()
                    .map(|(i, (dt, count, zc, sum, pb, nb))| {
                        t = t.wrapping_add(dt);
                        let h = if i + stale >= k + 2 && i > 0 {
                            Histogram::stale_marker()
                        } else {
                            Histogram {
                                schema,
                                zero_threshold: zt,
                                count,
                                zero_count: zc,
                                sum,
                                positive_spans: p.clone(),
                                negative_spans: n.clone(),
                                positive_buckets: pb,
                                negative_buckets: nb,
                                ..Histogram::default()
                            }
                        };
                        (t, h)
                    })
                    .collect()
            })
        })
}

proptest! {
    /// Byte for byte Prometheus's appender, after every append, and decodes back.
    #[test]
    fn appender_matches_prometheus_bits(seq in arb_same_layout()) {
        let mut app = HistogramAppender::new();
        let mut reference = Reference::new();
        for (t, h) in &seq {
            app.append(*t, h).unwrap();
            reference.append(*t, h);
            prop_assert_eq!(app.bytes(), &reference.b.stream[..]);
        }
        let got = decode(app.bytes());
        prop_assert_eq!(got.len(), seq.len());
        for ((t, h), (gt, gh)) in seq.iter().zip(&got) {
            prop_assert_eq!(t, gt);
            let want = if h.is_stale() { Histogram::stale_marker() } else {
                Histogram { counter_reset_hint: gh.counter_reset_hint, ..h.clone() }
            };
            prop_assert_eq!(gh, &want);
        }
        // Re-opened, the chunk is the same and decodes the same.
        let re = HistogramAppender::from_chunk(app.bytes().to_vec()).unwrap();
        prop_assert_eq!(re.bytes(), app.bytes());
    }

    /// `push` over changing layouts, counts and hints: every histogram comes back from the
    /// chunks (with the empty buckets recoding added), chunks only grow buckets, and a
    /// recoded chunk equals its histograms appended afresh.
    #[test]
    fn push_keeps_every_histogram(
        steps in proptest::collection::vec((arb_spans(), 0u64..6, 0u8..8, prop::bool::ANY), 1..40)
    ) {
        let mut app = HistogramAppender::new();
        let mut chunks = Vec::new();
        let mut want = Vec::new();
        let mut t = 0;
        for (spans, grow, hint, cut) in steps {
            t += 1000;
            let nb = span_buckets(&spans) as usize;
            let h = if hint == 7 {
                Histogram::stale_marker()
            } else {
                let abs: Vec<i64> = (0..nb as i64).map(|i| i * grow as i64 + 1).collect();
                let mut deltas = abs.clone();
                for i in (1..deltas.len()).rev() {
                    deltas[i] -= deltas[i - 1];
                }
                Histogram {
                    counter_reset_hint: CounterResetHint::from_u8(hint % 4).unwrap(),
                    schema: i32::from(hint == 5),
                    count: abs.iter().sum::<i64>() as u64 + grow,
                    sum: grow as f64,
                    positive_spans: spans,
                    positive_buckets: deltas,
                    ..Histogram::default()
                }
            };
            want.push((t, h.clone()));
            if let Pushed::Cut { completed: Some(c), .. } = app.push(t, h, cut).unwrap() {
                chunks.push(c);
            }
        }
        chunks.push(app);
        let mut got = Vec::new();
        for c in &chunks {
            let dec = decode(c.bytes());
            let mut fresh = HistogramAppender::new();
            for (t, h) in &dec {
                fresh.append(*t, h).unwrap();
            }
            fresh.set_counter_reset_header(c.counter_reset_header());
            prop_assert_eq!(fresh.bytes(), c.bytes());
            got.extend(dec);
        }
        prop_assert_eq!(got.len(), want.len());
        for ((t, h), (gt, gh)) in want.iter().zip(&got) {
            prop_assert_eq!(t, gt);
            prop_assert_eq!(h.is_stale(), gh.is_stale());
            if !h.is_stale() {
                let nonzero = |x: &Histogram| x.positive_bucket_counts().filter(|b| b.1 != 0).collect::<Vec<_>>();
                prop_assert_eq!(nonzero(h), nonzero(gh));
                prop_assert_eq!(h.count, gh.count);
                prop_assert_eq!(h.schema, gh.schema);
            }
        }
    }

    /// Arbitrary bytes never make the iterator panic, and what decodes re-opens.
    #[test]
    fn iterator_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut it = HistogramIter::new(&b);
        let n = it.num_samples();
        let mut k = 0;
        while let Some(r) = it.next_sample() {
            if r.is_err() { break; }
            let _ = it.at_float();
            k += 1;
        }
        prop_assert!(k <= n);
        prop_assert!(it.next_sample().is_none());
        let _ = HistogramAppender::from_chunk(b);
    }
}
