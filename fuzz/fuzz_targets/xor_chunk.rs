//! XOR chunk codec (format brief §1.5).
//!
//! (a) The input as a chunk payload: iterating, seeking and re-opening never panic, and a
//!     chunk that re-opens keeps its bytes and decodes a further appended sample.
//! (b) The input as samples, a sequence of (timestamp delta, value bits) records: append then
//!     iterate returns them bit for bit, and re-encoding reproduces the bytes.
#![no_main]

use annals::unstable::chunkenc::{XorAppender, XorIter};
use annals::Sample;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    as_chunk(data);
    round_trip(data);
});

fn as_chunk(data: &[u8]) {
    let mut decoded = Vec::new();
    let mut failed = false;
    let mut it = XorIter::new(data);
    let total = it.num_samples() as usize;
    for r in it.by_ref() {
        match r {
            Ok(s) => decoded.push(s),
            Err(_) => failed = true,
        }
    }
    assert!(it.next().is_none());
    assert!(decoded.len() <= total);

    if let Some(first) = decoded.first() {
        let mut it = XorIter::new(data);
        let t = first.t.saturating_add(1);
        let _ = it.seek(t);
        let _ = it.seek(i64::MIN);
        let _ = it.next();
    }

    match XorAppender::from_chunk(data.to_vec()) {
        Ok(mut app) => {
            assert!(!failed);
            assert_eq!(app.bytes(), data);
            assert_eq!(app.num_samples() as usize, decoded.len());
            let Some(t) = decoded.last().map_or(Some(0), |s| s.t.checked_add(1)) else {
                return;
            };
            if decoded.len() == u16::MAX as usize {
                return;
            }
            let extra = Sample {
                t,
                v: f64::from_bits(0x7ff0_0000_0000_0002),
            };
            app.append(extra.t, extra.v);
            decoded.push(extra);
            let again: Vec<Sample> = XorIter::new(app.bytes())
                .collect::<Result<_, _>>()
                .expect("a re-opened chunk stays decodable");
            assert_eq!(again, decoded);
        }
        // Undecodable, or data after the last sample.
        Err(_) => {}
    }
}

/// Reads the input as samples: 8 bytes of first timestamp, then records of one selector byte
/// followed by the operands it asks for. Low 2 bits: the next delta (same as before, previous
/// plus a signed 24-bit dod, 64 arbitrary bits, or one byte); next 2 bits: the value (repeat,
/// 64 arbitrary bits, previous bits with a 16-bit pattern flipped at a chosen shift, or +1).
fn round_trip(data: &[u8]) {
    let mut r = Reader(data);
    let Some(t0) = r.u64() else { return };
    let mut samples = vec![Sample {
        t: t0 as i64,
        v: 0.0,
    }];
    let mut delta: u64 = 15_000;
    while samples.len() < u16::MAX as usize {
        let Some(sel) = r.u8() else { break };
        let prev = samples[samples.len() - 1];
        delta = match sel & 3 {
            0 => delta,
            1 => {
                let Some(b) = r.bytes::<3>() else { break };
                let dod = (i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8) as i64;
                (delta as i64).wrapping_add(dod) as u64
            }
            2 => {
                let Some(d) = r.u64() else { break };
                d
            }
            _ => {
                let Some(d) = r.u8() else { break };
                d as u64
            }
        };
        // Timestamps must increase; stop where they would wrap.
        let Some(t) = i64::try_from(delta.max(1))
            .ok()
            .and_then(|d| prev.t.checked_add(d))
        else {
            break;
        };
        let bits = prev.v.to_bits();
        let v = match (sel >> 2) & 3 {
            0 => bits,
            1 => {
                let Some(b) = r.u64() else { break };
                b
            }
            2 => {
                let Some([a, b, s]) = r.bytes::<3>() else {
                    break;
                };
                bits ^ ((u16::from_be_bytes([a, b]) as u64) << (s % 64))
            }
            _ => (prev.v + 1.0).to_bits(),
        };
        samples.push(Sample {
            t,
            v: f64::from_bits(v),
        });
    }

    let mut app = XorAppender::new();
    for s in &samples {
        app.append(s.t, s.v);
    }
    assert_eq!(app.num_samples() as usize, samples.len());
    let decoded: Vec<Sample> = XorIter::new(app.bytes())
        .collect::<Result<_, _>>()
        .expect("an appended chunk decodes");
    assert_eq!(decoded, samples);
    let reopened = XorAppender::from_chunk(app.bytes().to_vec()).expect("re-open");
    assert_eq!(reopened.bytes(), app.bytes());
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.bytes::<1>().map(|[b]| b)
    }

    fn u64(&mut self) -> Option<u64> {
        self.bytes::<8>().map(u64::from_be_bytes)
    }
}
