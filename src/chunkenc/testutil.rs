//! Shared helpers of the chunk codec tests: encoding, decoding and sample generators that hit
//! every delta-of-delta bucket edge, wrapping timestamps and special float bit patterns.

use super::{XorAppender, XorIter};
use crate::encoding::DecodeError;
use crate::model::{Sample, STALE_NAN_BITS};
use proptest::prelude::*;

pub(crate) fn encode(samples: &[Sample]) -> XorAppender {
    let mut app = XorAppender::new();
    for s in samples {
        app.append(s.t, s.v);
    }
    app
}

pub(crate) fn decode(chunk: &[u8]) -> Result<Vec<Sample>, DecodeError> {
    XorIter::new(chunk).collect()
}

pub(crate) fn samples(pairs: &[(i64, f64)]) -> Vec<Sample> {
    pairs.iter().map(|&(t, v)| Sample { t, v }).collect()
}

/// Bit offset just past the last sample of a valid chunk.
pub(crate) fn end_bits(chunk: &[u8]) -> usize {
    let mut it = XorIter::new(chunk);
    for s in it.by_ref() {
        s.unwrap();
    }
    it.state().bit_pos
}

#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Next delta = previous delta + dod (clamped to stay positive).
    Dod(i64),
    /// An arbitrary positive delta.
    Delta(u64),
}

pub(crate) fn step() -> impl Strategy<Value = Step> {
    let mut edges = vec![0i64, 1, -1, 15, -15];
    for n in [14u32, 17, 20] {
        let hi = 1i64 << (n - 1);
        edges.extend([hi - 1, hi, hi + 1, -(hi - 2), -(hi - 1), -hi, -(hi + 1)]);
    }
    prop_oneof![
        4 => proptest::sample::select(edges).prop_map(Step::Dod),
        2 => (-2000i64..2000).prop_map(Step::Dod),
        1 => (1u64..=u64::MAX / 2).prop_map(Step::Delta),
        1 => (1u64..10_000_000_000).prop_map(Step::Delta),
    ]
}

#[derive(Debug, Clone)]
pub(crate) enum Val {
    Repeat,
    Increment(u16),
    Bits(u64),
    Special(u64),
    Float(f64),
}

pub(crate) fn val() -> impl Strategy<Value = Val> {
    let specials = vec![
        0u64,
        (-0.0f64).to_bits(),
        f64::INFINITY.to_bits(),
        f64::NEG_INFINITY.to_bits(),
        1,
        0x000f_ffff_ffff_ffff,
        STALE_NAN_BITS,
        0x7ff8_0000_0000_0001,
        f64::MAX.to_bits(),
    ];
    prop_oneof![
        3 => Just(Val::Repeat),
        3 => any::<u16>().prop_map(Val::Increment),
        1 => any::<u64>().prop_map(Val::Bits),
        1 => (any::<u64>(), any::<bool>()).prop_map(|(p, neg)| Val::Bits(
            (0x7ff0_0000_0000_0000 | (p & 0x000f_ffff_ffff_ffff) | 1) | ((neg as u64) << 63)
        )),
        1 => proptest::sample::select(specials).prop_map(Val::Special),
        2 => (-1e6f64..1e6).prop_map(Val::Float),
    ]
}

pub(crate) fn build(t0: i64, steps: &[(Step, Val)]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(steps.len() + 1);
    let (mut t, mut delta, mut v) = (t0, 15_000u64, 0.0f64);
    out.push(Sample { t, v });
    for (step, value) in steps {
        delta = match *step {
            Step::Dod(d) => (delta as i128 + d as i128).clamp(1, u64::MAX as i128) as u64,
            Step::Delta(d) => d,
        };
        let Some(next) = i64::try_from(delta).ok().and_then(|d| t.checked_add(d)) else {
            break;
        };
        t = next;
        v = match *value {
            Val::Repeat => v,
            Val::Increment(i) => v + i as f64,
            Val::Bits(b) | Val::Special(b) => f64::from_bits(b),
            Val::Float(f) => f,
        };
        out.push(Sample { t, v });
    }
    out
}

pub(crate) fn t0() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(1_700_000_000_000i64),
        Just(0),
        Just(i64::MIN),
        Just(-1),
        any::<i64>(),
    ]
}
