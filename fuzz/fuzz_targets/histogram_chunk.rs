//! Integer native-histogram chunk codec (encoding 2, brief §1.6).
//!
//! (a) The input as a chunk payload: iterating (also as floats), seeking and re-opening never
//!     panic; a payload that re-opens keeps its bytes, and a stale marker appended to it
//!     decodes after the old samples.
//! (b) The input as a program of histograms pushed through Prometheus's head rules
//!     (`push`): every histogram comes back from the chunks, and each chunk is the fresh
//!     encoding of what it decodes to.
#![no_main]

use annals::histogram::{CounterResetHint, Histogram, Span};
use annals::unstable::chunkenc::{HistogramAppender, HistogramIter, Pushed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    as_chunk(data);
    pushed(data);
});

fn as_chunk(data: &[u8]) {
    let mut it = HistogramIter::new(data);
    let total = it.num_samples();
    let mut decoded = Vec::new();
    let mut failed = false;
    while let Some(r) = it.next_sample() {
        match r {
            Ok(t) => {
                let h = it.at();
                let f = it.at_float();
                assert_eq!(f.count, h.count as f64);
                decoded.push((t, h));
            }
            Err(_) => failed = true,
        }
    }
    assert!(it.next_sample().is_none());
    assert!(decoded.len() <= total as usize);
    if let Some((t, _)) = decoded.first() {
        let mut it = HistogramIter::new(data);
        let _ = it.seek(t.saturating_add(1));
        let _ = it.seek(i64::MIN);
        let _ = it.next_sample();
    }
    if let Ok(mut app) = HistogramAppender::from_chunk(data.to_vec()) {
        assert!(!failed);
        assert_eq!(app.bytes(), data);
        let Some(t) = decoded.last().map_or(Some(0), |(t, _)| t.checked_add(1)) else {
            return;
        };
        if app.append(t, &Histogram::stale_marker()).is_ok() {
            let again: Vec<(i64, Histogram)> = HistogramIter::new(app.bytes())
                .collect::<Result<_, _>>()
                .expect("a re-opened chunk stays decodable");
            assert_eq!(again.len(), decoded.len() + 1);
            assert_eq!(again[..decoded.len()], decoded[..]);
            assert!(again[decoded.len()].1.is_stale());
        }
    }
}

/// Each 4-byte step: spans selector, count growth, hint, and whether the head cuts.
fn pushed(data: &[u8]) {
    let mut app = HistogramAppender::new();
    let mut chunks = Vec::new();
    let mut want = Vec::new();
    for (i, step) in data.chunks_exact(4).take(300).enumerate() {
        let t = i as i64 * 15_000 + i64::from(step[3] >> 4);
        let spans: Vec<Span> = (0..step[0] % 4)
            .map(|j| {
                let o = i32::from((step[0] >> (2 + j)) & 3);
                Span::new(if j == 0 { o - 1 } else { o }, u32::from(j % 3))
            })
            .collect();
        let n: u32 = spans.iter().map(|s| s.length).sum();
        let h = if step[2] == 0xff {
            Histogram::stale_marker()
        } else {
            let grow = i64::from(step[1]);
            let abs: Vec<i64> = (0..i64::from(n))
                .map(|j| j * grow + i64::from(step[1] & 7))
                .collect();
            let mut deltas = abs.clone();
            for j in (1..deltas.len()).rev() {
                deltas[j] -= deltas[j - 1];
            }
            Histogram {
                counter_reset_hint: CounterResetHint::from_u8(step[2] % 4).expect("0..4"),
                schema: i32::from(step[2] >> 6) - 1,
                zero_threshold: if step[2] & 0x10 != 0 { 0.001 } else { 0.0 },
                count: abs.iter().sum::<i64>() as u64 + u64::from(step[1]),
                zero_count: u64::from(step[1] >> 4),
                sum: f64::from(step[1]) * 0.5,
                positive_spans: spans,
                positive_buckets: deltas,
                ..Histogram::default()
            }
        };
        want.push((t, h.clone()));
        if let Pushed::Cut {
            completed: Some(c), ..
        } = app
            .push(t, h, step[3] & 1 == 1)
            .expect("consistent histograms push")
        {
            chunks.push(c);
        }
    }
    chunks.push(app);
    let mut got = Vec::new();
    for c in &chunks {
        let dec: Vec<(i64, Histogram)> = HistogramIter::new(c.bytes())
            .collect::<Result<_, _>>()
            .expect("pushed chunks decode");
        let mut fresh = HistogramAppender::new();
        for (t, h) in &dec {
            fresh.append(*t, h).expect("decoded histograms re-append");
        }
        fresh.set_counter_reset_header(c.counter_reset_header());
        assert_eq!(fresh.bytes(), c.bytes());
        got.extend(dec);
    }
    assert_eq!(got.len(), want.len());
    for ((t, h), (gt, gh)) in want.iter().zip(&got) {
        assert_eq!(t, gt);
        assert_eq!(h.is_stale(), gh.is_stale());
        if !h.is_stale() {
            let nz = |x: &Histogram| {
                x.positive_bucket_counts()
                    .filter(|b| b.1 != 0)
                    .collect::<Vec<_>>()
            };
            assert_eq!(nz(h), nz(gh));
            assert_eq!(
                (h.count, h.zero_count, h.schema),
                (gh.count, gh.zero_count, gh.schema)
            );
        }
    }
}
