//! Float native-histogram chunk codec (encoding 3, brief §1.6).
//!
//! (a) The input as a chunk payload: iterating, seeking and re-opening never panic; a payload
//!     that re-opens keeps its bytes and takes a further stale marker.
//! (b) The input as float histograms with arbitrary float bits on one layout: append then
//!     iterate returns them bit for bit, and re-opening reproduces the bytes.
#![no_main]

use annals::histogram::{FloatHistogram, Span};
use annals::unstable::chunkenc::{FloatHistogramAppender, FloatHistogramIter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    as_chunk(data);
    round_trip(data);
});

fn as_chunk(data: &[u8]) {
    let mut it = FloatHistogramIter::new(data);
    let total = it.num_samples();
    let mut decoded = Vec::new();
    let mut failed = false;
    while let Some(r) = it.next_sample() {
        match r {
            Ok(t) => decoded.push((t, it.at())),
            Err(_) => failed = true,
        }
    }
    assert!(it.next_sample().is_none());
    assert!(decoded.len() <= total as usize);
    if let Some((t, _)) = decoded.first() {
        let mut it = FloatHistogramIter::new(data);
        let _ = it.seek(t.saturating_add(1));
        let _ = it.seek(i64::MIN);
        let _ = it.next_sample();
    }
    if let Ok(mut app) = FloatHistogramAppender::from_chunk(data.to_vec()) {
        assert!(!failed);
        assert_eq!(app.bytes(), data);
        let Some(t) = decoded.last().map_or(Some(0), |(t, _)| t.checked_add(1)) else {
            return;
        };
        if app.append(t, &FloatHistogram::stale_marker()).is_ok() {
            let again: Vec<(i64, FloatHistogram)> = FloatHistogramIter::new(app.bytes())
                .collect::<Result<_, _>>()
                .expect("a re-opened chunk stays decodable");
            assert_eq!(again[..decoded.len()], decoded[..]);
            assert!(again[decoded.len()].1.is_stale());
        }
    }
}

/// A layout byte, then per sample: 8 bytes of timestamp delta, then count, zero count, sum
/// and each bucket as 8 bytes of float bits.
fn round_trip(data: &[u8]) {
    let Some((&l, mut rest)) = data.split_first() else {
        return;
    };
    let spans = vec![
        Span::new(i32::from(l & 7) - 3, u32::from(l >> 3 & 3)),
        Span::new(1, u32::from(l >> 5)),
    ];
    let n = (spans[0].length + spans[1].length) as usize;
    let mut next = |k: usize| -> Option<&[u8]> {
        let (a, b) = rest.split_at_checked(k)?;
        rest = b;
        Some(a)
    };
    let f = |b: &[u8]| f64::from_bits(u64::from_be_bytes(b.try_into().expect("8 bytes")));
    let mut samples = Vec::new();
    let mut t = 0i64;
    while samples.len() < 200 {
        let Some(b) = next(8 * (4 + n)) else { break };
        t = t.wrapping_add(i64::from_be_bytes(b[..8].try_into().expect("8 bytes")));
        let h = FloatHistogram {
            schema: i32::from(l % 13) - 4,
            zero_threshold: 2f64.powi(-128),
            count: f(&b[8..16]),
            zero_count: f(&b[16..24]),
            sum: f(&b[24..32]),
            positive_spans: spans.clone(),
            positive_buckets: (0..n).map(|i| f(&b[32 + 8 * i..40 + 8 * i])).collect(),
            ..FloatHistogram::default()
        };
        // Only stale markers may follow a stale marker.
        if samples
            .last()
            .is_some_and(|(_, p): &(i64, FloatHistogram)| p.is_stale())
            && !h.is_stale()
        {
            break;
        }
        samples.push((t, h));
    }
    let mut app = FloatHistogramAppender::new();
    for (t, h) in &samples {
        app.append(*t, h).expect("consistent histograms append");
    }
    let got: Vec<(i64, FloatHistogram)> = FloatHistogramIter::new(app.bytes())
        .collect::<Result<_, _>>()
        .expect("appended chunks decode");
    assert_eq!(got.len(), samples.len());
    for ((t, h), (gt, gh)) in samples.iter().zip(&got) {
        assert_eq!(t, gt);
        if h.is_stale() {
            assert!(gh.is_stale());
        } else {
            let mut want = h.clone();
            want.counter_reset_hint = gh.counter_reset_hint;
            assert_eq!(&want, gh);
        }
    }
    let re = FloatHistogramAppender::from_chunk(app.bytes().to_vec()).expect("re-open");
    assert_eq!(re.bytes(), app.bytes());
}
