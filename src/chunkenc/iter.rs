//! [`XorIter`]: decodes XOR chunk payloads (format brief §1.5), never panicking on any input.

use super::bstream::BitReader;
use super::HEADER_LEN;
use crate::encoding::{Decbuf, DecodeError};
use crate::model::Sample;

/// Iterator over the samples of an XOR chunk payload (the bytes after the encoding byte).
///
/// Never panics and never reads past the slice, whatever the bytes: a truncated stream, a
/// count larger than the data or an impossible XOR window yields one `Err` with the byte
/// offset of the failing sample, after which the iterator returns `None`. It decodes at most
/// the 65 535 samples the count allows and allocates nothing.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    /// The header's sample count (0 if the payload is shorter than the header).
    num_total: u16,
    /// Samples to decode before stopping: `num_total`, 1 to report a short header, or the
    /// number read when an error ended the iteration.
    limit: u16,
    num_read: u16,
    /// Whether an error ended the iteration.
    failed: bool,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

/// What [`XorAppender::from_chunk`](super::XorAppender::from_chunk) needs to continue a
/// chunk: the bit after the last sample read and the state Prometheus's appender rebuilds.
pub(super) struct IterState {
    pub(super) bit_pos: usize,
    pub(super) t: i64,
    pub(super) v: u64,
    pub(super) t_delta: u64,
    pub(super) leading: u8,
    pub(super) trailing: u8,
}

impl<'a> XorIter<'a> {
    /// An iterator over `chunk`; errors surface from [`next`](Iterator::next).
    pub fn new(chunk: &'a [u8]) -> Self {
        let (num_total, limit) = match chunk {
            [a, b, ..] => {
                let n = u16::from_be_bytes([*a, *b]);
                (n, n)
            }
            _ => (0, 1),
        };
        XorIter {
            r: BitReader::new(chunk, HEADER_LEN * 8),
            num_total,
            limit,
            num_read: 0,
            failed: false,
            t: 0,
            v: 0,
            t_delta: 0,
            // Prometheus's iterator starts with window (0, 0), not "no window".
            leading: 0,
            trailing: 0,
        }
    }

    /// The sample count of the chunk header.
    pub fn num_samples(&self) -> u16 {
        self.num_total
    }

    /// The decoder state after the samples read so far.
    pub(super) fn state(&self) -> IterState {
        IterState {
            bit_pos: self.r.pos(),
            t: self.t,
            v: self.v,
            t_delta: self.t_delta,
            leading: self.leading,
            trailing: self.trailing,
        }
    }

    /// Advances to the first sample with timestamp `>= t` and returns it. The current sample
    /// (the one last returned) counts, so seeking to a time at or before it returns it again,
    /// even after the end was reached, as Prometheus's `Seek` does; `next` then continues
    /// after the returned sample. `None` when no sample is left at or after `t`.
    pub fn seek(&mut self, t: i64) -> Option<Result<Sample, DecodeError>> {
        if self.failed {
            return None;
        }
        if self.num_read > 0 && self.t >= t {
            return Some(Ok(self.current()));
        }
        loop {
            match self.next()? {
                Ok(s) if s.t < t => {}
                other => return Some(other),
            }
        }
    }

    #[inline]
    fn current(&self) -> Sample {
        Sample {
            t: self.t,
            v: f64::from_bits(self.v),
        }
    }

    #[inline]
    fn decode_next(&mut self) -> Result<(), DecodeError> {
        if self.num_read >= 2 {
            self.decode_dod_sample()
        } else if self.num_read == 0 {
            self.decode_first()
        } else {
            self.decode_second()
        }
    }

    #[cold]
    fn decode_first(&mut self) -> Result<(), DecodeError> {
        // Only a payload shorter than the header sets the limit above the count.
        if self.limit > self.num_total {
            return Err(DecodeError {
                offset: 0,
                reason: "XOR chunk shorter than its 2-byte sample count",
            });
        }
        let mut d = Decbuf::new(self.r.aligned_rest());
        self.t = d
            .varint()
            .map_err(|e| at(HEADER_LEN + e.offset, e.reason))?;
        self.r.skip(8 * d.position() as u32);
        self.v = self.r.read_bits(64);
        self.check_end(HEADER_LEN * 8)
    }

    #[cold]
    fn decode_second(&mut self) -> Result<(), DecodeError> {
        let start = self.r.pos();
        let mut d = Decbuf::new(self.r.aligned_rest());
        let dt = d
            .uvarint()
            .map_err(|e| at(start / 8 + e.offset, e.reason))?;
        self.r.skip(8 * d.position() as u32);
        self.t_delta = dt;
        self.t = self.t.wrapping_add(dt as i64);
        self.decode_value(start)?;
        self.check_end(start)
    }

    #[inline]
    fn decode_dod_sample(&mut self) -> Result<(), DecodeError> {
        let start = self.r.pos();
        let w = self.r.peek();
        // The prefix is up to four bits, stopping at the first 0.
        let dod = match (!w).leading_zeros() {
            0 => {
                self.r.skip(1);
                0
            }
            1 => self.dod_field(w, 2, 14),
            2 => self.dod_field(w, 3, 17),
            3 => self.dod_field(w, 4, 20),
            _ => {
                self.r.skip(4);
                self.r.read_bits(64) as i64
            }
        };
        self.t_delta = self.t_delta.wrapping_add(dod as u64);
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.decode_value(start)?;
        self.check_end(start)
    }

    /// An `n`-bit two's-complement-ish field after a `plen`-bit prefix: values above
    /// `2^(n-1)` are negative (§1.5).
    #[inline]
    fn dod_field(&mut self, w: u64, plen: u32, n: u32) -> i64 {
        self.r.skip(plen + n);
        let u = ((w << plen) >> (64 - n)) as i64;
        if u > 1 << (n - 1) {
            u - (1 << n)
        } else {
            u
        }
    }

    #[inline]
    fn decode_value(&mut self, start: usize) -> Result<(), DecodeError> {
        let w = self.r.peek();
        if w >> 63 == 0 {
            self.r.skip(1);
            return Ok(());
        }
        if w & (1 << 62) == 0 {
            self.r.skip(2);
        } else {
            let leading = ((w >> 57) & 31) as u8;
            let sig = match ((w >> 51) & 63) as u8 {
                0 => 64,
                s => s,
            };
            if leading + sig > 64 {
                return Err(at(
                    start / 8,
                    "XOR window with more than 64 leading and significant bits",
                ));
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig;
            self.r.skip(13);
        }
        let sig = 64 - self.leading as u32 - self.trailing as u32;
        self.v ^= self.r.read_bits(sig) << self.trailing;
        Ok(())
    }

    /// Reports reads past the end of the data, done at the end of each sample.
    #[inline]
    fn check_end(&self, start: usize) -> Result<(), DecodeError> {
        if self.r.overran() {
            return Err(at(start / 8, "XOR chunk data ends inside a sample"));
        }
        Ok(())
    }
}

fn at(offset: usize, reason: &'static str) -> DecodeError {
    DecodeError { offset, reason }
}

impl Iterator for XorIter<'_> {
    type Item = Result<Sample, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.num_read >= self.limit {
            return None;
        }
        match self.decode_next() {
            Ok(()) => {
                self.num_read += 1;
                Some(Ok(self.current()))
            }
            Err(e) => {
                self.limit = self.num_read;
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some((self.limit - self.num_read) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::testutil::*;
    use crate::chunkenc::XorAppender;
    use proptest::prelude::*;

    #[test]
    fn seek_semantics() {
        let input: Vec<Sample> = (1..=10)
            .map(|i| Sample {
                t: i * 10,
                v: i as f64,
            })
            .collect();
        let app = encode(&input);
        let mut it = XorIter::new(app.bytes());
        assert_eq!(it.seek(5), Some(Ok(input[0])));
        // The current sample satisfies a seek to its own time or earlier.
        assert_eq!(it.seek(10), Some(Ok(input[0])));
        assert_eq!(it.seek(-100), Some(Ok(input[0])));
        assert_eq!(it.next(), Some(Ok(input[1])));
        assert_eq!(it.seek(15), Some(Ok(input[1])));
        assert_eq!(it.seek(21), Some(Ok(input[2])));
        assert_eq!(it.seek(40), Some(Ok(input[3])));
        assert_eq!(it.next(), Some(Ok(input[4])));
        assert_eq!(it.seek(1000), None);
        assert_eq!(it.next(), None);
        // Like Prometheus's Seek, the last sample stays current after the end.
        assert_eq!(it.seek(100), Some(Ok(input[9])));
        assert_eq!(it.seek(101), None);

        let mut it = XorIter::new(app.bytes());
        assert_eq!(it.seek(100), Some(Ok(input[9])));
        assert_eq!(it.next(), None);
        assert_eq!(XorIter::new(app.bytes()).seek(i64::MIN), Some(Ok(input[0])));
        assert_eq!(XorIter::new(&[0, 0]).seek(0), None);
    }

    #[test]
    fn short_or_empty_payloads() {
        for chunk in [&[][..], &[0x00][..]] {
            let mut it = XorIter::new(chunk);
            assert_eq!(it.num_samples(), 0);
            assert!(matches!(it.next(), Some(Err(e)) if e.offset == 0));
            assert_eq!(it.next(), None);
            assert_eq!(it.seek(0), None);
            assert!(XorAppender::from_chunk(chunk.to_vec()).is_err());
        }
        let mut it = XorIter::new(&[0, 0]);
        assert_eq!(it.num_samples(), 0);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn count_larger_than_data_is_an_error() {
        let input = samples(&[(1, 1.0), (2, 2.0), (3, 4.5), (1000, -3.0)]);
        let mut chunk = encode(&input).into_bytes();
        chunk[..2].copy_from_slice(&u16::MAX.to_be_bytes());
        let out: Vec<_> = XorIter::new(&chunk).collect();
        assert_eq!(
            out[..4],
            input.iter().map(|s| Ok(*s)).collect::<Vec<_>>()[..]
        );
        assert!(out.len() < 100, "bounded by the data, not by the count");
        assert!(matches!(out.last(), Some(Err(_))));
    }

    #[test]
    fn impossible_window_is_an_error() {
        // Sample 0, then sample 1 whose value has a `11` window of L=31, S=63.
        let mut chunk = vec![0, 2, 0];
        chunk.extend_from_slice(&[0; 8]);
        chunk.push(1); // Δ1 = 1
        let bits: u64 = (0b11 << 11) | (31 << 6) | 63; // 13 bits
        chunk.extend_from_slice(&((bits << 51) | (1 << 50)).to_be_bytes());
        let out: Vec<_> = XorIter::new(&chunk).collect();
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[1], Err(e) if e.offset == 11 && e.reason.contains("window")));
    }

    #[test]
    fn bad_first_varint_is_an_error_with_offset() {
        let mut chunk = vec![0, 1];
        chunk.extend_from_slice(&[0xff; 10]);
        assert!(matches!(&decode(&chunk), Err(e) if e.offset >= 2));
        // Truncated inside the first value.
        assert!(matches!(&decode(&[0, 1, 0, 0x3f, 0xf0]), Err(e) if e.offset == 2));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Every truncation decodes the samples that fit exactly, then fails; never panics.
        #[test]
        fn truncation_fails_cleanly(
            t0 in t0(),
            steps in proptest::collection::vec((step(), val()), 0..60),
        ) {
            let input = build(t0, &steps);
            let chunk = encode(&input).into_bytes();
            let need = end_bits(&chunk);
            for len in 0..chunk.len() {
                let out: Vec<_> = XorIter::new(&chunk[..len]).collect();
                let ok = out.iter().take_while(|r| r.is_ok()).count();
                for (r, s) in out.iter().zip(&input) {
                    if let Ok(d) = r {
                        prop_assert_eq!(d, s);
                    }
                }
                if len * 8 >= need {
                    prop_assert_eq!(ok, input.len());
                    prop_assert_eq!(out.len(), input.len());
                } else {
                    prop_assert!(ok < input.len().max(1));
                    prop_assert_eq!(out.len(), ok + 1, "exactly one error ends it");
                }
            }
        }

        /// Arbitrary bytes never panic, and iteration is bounded by the count.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut it = XorIter::new(&bytes);
            let total = it.num_samples() as usize;
            let mut n = 0;
            while let Some(r) = it.next() {
                n += 1;
                if r.is_err() {
                    prop_assert_eq!(it.next(), None);
                    break;
                }
            }
            prop_assert!(n <= total.max(1));
            let _ = XorAppender::from_chunk(bytes);
        }
    }
}
