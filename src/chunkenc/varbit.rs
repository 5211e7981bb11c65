//! Bit-level codes of the native-histogram chunks (Prometheus `tsdb/chunkenc/varbit.go` and
//! the XOR value code of §1.5): variable-width integers with bit buckets tuned for histogram
//! deltas, and the Gorilla XOR code for the float fields.
//!
//! Writers go through [`HistBits`], a [`BitWriter`] that also remembers whether Prometheus's
//! last primitive write of an append was a whole-byte write, which decides the empty trailing
//! byte Prometheus's `bstream` leaves (see `bstream.rs`). Readers use the zero-extending
//! [`BitReader`]; callers check [`BitReader::overran`] once per sample.

use super::bstream::{BitReader, BitWriter};

/// The bucket of a varbit code: payload width for each number of leading one bits of the
/// prefix (the prefix is `ones` ones then a zero, or eight ones for the 64-bit form).
const WIDTHS: [u32; 9] = [0, 3, 6, 9, 12, 18, 25, 56, 64];

/// One append's worth of bits for a histogram chunk.
pub(crate) struct HistBits<'a> {
    w: BitWriter<'a>,
    /// Whether the last write would have been a `writeByte` in Prometheus's `bstream`.
    last_was_byte: bool,
}

impl<'a> HistBits<'a> {
    /// Resumes writing at the end of `buf`, whose partial last byte is `(tail, free)`.
    pub(crate) fn resume(buf: &'a mut Vec<u8>, (tail, free): (u8, u8)) -> Self {
        HistBits {
            w: BitWriter::resume(buf, tail, free),
            last_was_byte: false,
        }
    }

    /// Writes the `n` (1..=64) low bits of `v` (higher bits are ignored), as Go's
    /// `writeBits`: whole bytes first, then single bits.
    pub(crate) fn bits(&mut self, v: u64, n: u32) {
        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
        self.w.write_bits(v, n);
        self.last_was_byte = n.is_multiple_of(8);
    }

    /// Go's `writeByte`.
    pub(crate) fn byte(&mut self, b: u8) {
        self.bits(u64::from(b), 8);
    }

    /// `putVarbitInt`: `0` for zero, else a prefix and a two's-complement-like payload whose
    /// width is the smallest of 3, 6, 9, 12, 18, 25, 56 bits holding `-(2^(n-1)-1)..=2^(n-1)`,
    /// else eight ones and 64 bits.
    pub(crate) fn varbit_int(&mut self, v: i64) {
        if v == 0 {
            self.bits(0, 1);
            return;
        }
        for (ones, &n) in WIDTHS.iter().enumerate().skip(1).take(7) {
            if -((1i64 << (n - 1)) - 1) <= v && v <= 1i64 << (n - 1) {
                self.prefix(ones as u32);
                self.bits(v as u64, n);
                return;
            }
        }
        self.bits(0xff, 8);
        self.bits(v as u64, 64);
    }

    /// `putVarbitUint`: the same buckets, with payloads `0..2^n`.
    pub(crate) fn varbit_uint(&mut self, v: u64) {
        if v == 0 {
            self.bits(0, 1);
            return;
        }
        for (ones, &n) in WIDTHS.iter().enumerate().skip(1).take(7) {
            if v >> n == 0 {
                self.prefix(ones as u32);
                self.bits(v, n);
                return;
            }
        }
        self.bits(0xff, 8);
        self.bits(v, 64);
    }

    /// `ones` one bits and a zero, written as Go writes them: one `writeBits` call.
    fn prefix(&mut self, ones: u32) {
        let n = ones + 1;
        self.bits(((1u64 << ones) - 1) << 1, n);
    }

    /// The XOR code of `new` against `cur` (§1.5) with the window `(leading, trailing)`,
    /// `leading == 0xff` meaning "no window yet"; updates the window as Prometheus's
    /// `xorWrite` does.
    pub(crate) fn xor(&mut self, new: u64, cur: u64, leading: &mut u8, trailing: &mut u8) {
        let delta = new ^ cur;
        if delta == 0 {
            self.bits(0, 1);
            return;
        }
        let lz = (delta.leading_zeros() as u8).min(31);
        let tz = delta.trailing_zeros() as u8;
        if *leading != 0xff && lz >= *leading && tz >= *trailing {
            self.bits(0b10, 2);
            let sig = 64 - u32::from(*leading) - u32::from(*trailing);
            self.bits(delta >> *trailing, sig);
            return;
        }
        *leading = lz;
        *trailing = tz;
        let sig = 64 - u32::from(lz) - u32::from(tz);
        // `1`, `1`, 5 bits of leading zeros, 6 bits of significant bits (64 written as 0):
        // Go writes these as one bit, one bit and two `writeBits` calls.
        self.bits(0b11, 2);
        self.bits(u64::from(lz), 5);
        self.bits(u64::from(sig), 6);
        self.bits(delta >> tz, sig);
    }

    /// Stores the pending bits and returns the stream's new `(tail, free)`.
    pub(crate) fn finish(self) -> (u8, u8) {
        self.w.finish(self.last_was_byte)
    }
}

/// Reads a `putVarbitInt` code. Past the end of the data it reads zero bits; the caller checks
/// [`BitReader::overran`].
#[inline]
pub(crate) fn read_varbit_int(r: &mut BitReader<'_>) -> i64 {
    match read_prefix(r) {
        0 => 0,
        64 => r.read_bits(64) as i64,
        n => {
            let u = r.read_bits(n);
            if u > 1 << (n - 1) {
                u.wrapping_sub(1 << n) as i64
            } else {
                u as i64
            }
        }
    }
}

/// Reads a `putVarbitUint` code (see [`read_varbit_int`]).
#[inline]
pub(crate) fn read_varbit_uint(r: &mut BitReader<'_>) -> u64 {
    match read_prefix(r) {
        0 => 0,
        n => r.read_bits(n),
    }
}

/// Consumes a varbit prefix; returns the payload width.
#[inline]
fn read_prefix(r: &mut BitReader<'_>) -> u32 {
    let top = (r.peek() >> 56) as u8;
    let ones = top.leading_ones();
    // Eight ones are the whole prefix; otherwise the terminating zero is part of it.
    r.skip(if ones == 8 { 8 } else { ones + 1 });
    WIDTHS[ones as usize]
}

/// Reads an XOR code into `value` (bits) with the window `(leading, trailing)`, as Prometheus's
/// `xorRead` does (a reader's window starts at `(0, 0)`). A window of more than 64 bits is
/// an error; reads past the end are the caller's to check.
#[inline]
pub(crate) fn read_xor(
    r: &mut BitReader<'_>,
    value: &mut u64,
    leading: &mut u8,
    trailing: &mut u8,
) -> Result<(), &'static str> {
    let w = r.peek();
    if w >> 63 == 0 {
        r.skip(1);
        return Ok(());
    }
    if w & (1 << 62) == 0 {
        r.skip(2);
    } else {
        let lz = ((w >> 57) & 31) as u8;
        let sig = match ((w >> 51) & 63) as u8 {
            0 => 64,
            s => s,
        };
        if lz + sig > 64 {
            return Err("XOR window with more than 64 leading and significant bits");
        }
        *leading = lz;
        *trailing = 64 - lz - sig;
        r.skip(13);
    }
    let sig = 64 - u32::from(*leading) - u32::from(*trailing);
    if sig == 0 {
        // Only a reused window of a corrupt stream can be empty.
        return Err("XOR window with no significant bits");
    }
    *value ^= r.read_bits(sig) << *trailing;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::bstream::ReferenceBstream;

    /// Prometheus's `putVarbitInt`, on the one-bit-at-a-time reference stream.
    fn reference_int(b: &mut ReferenceBstream, v: i64) {
        let fits = |n: u32| -((1i64 << (n - 1)) - 1) <= v && v <= 1i64 << (n - 1);
        match v {
            0 => b.write_bit(false),
            _ if fits(3) => {
                b.write_bits(0b10, 2);
                b.write_bits(v as u128 & 0b111, 3)
            }
            _ if fits(6) => {
                b.write_bits(0b110, 3);
                b.write_bits(v as u128 & 0x3f, 6)
            }
            _ if fits(9) => {
                b.write_bits(0b1110, 4);
                b.write_bits(v as u128 & 0x1ff, 9)
            }
            _ if fits(12) => {
                b.write_bits(0b11110, 5);
                b.write_bits(v as u128 & 0xfff, 12)
            }
            _ if fits(18) => {
                b.write_bits(0b111110, 6);
                b.write_bits(v as u128 & 0x3ffff, 18)
            }
            _ if fits(25) => {
                b.write_bits(0b1111110, 7);
                b.write_bits(v as u128 & 0x1ff_ffff, 25)
            }
            _ if fits(56) => {
                b.write_bits(0b11111110, 8);
                b.write_bits(v as u128 & ((1 << 56) - 1), 56)
            }
            _ => {
                b.write_bits(0xff, 8);
                b.write_bits(v as u64 as u128, 64)
            }
        }
    }

    fn edges() -> Vec<i64> {
        let mut v = vec![0, 1, -1, i64::MIN, i64::MAX];
        for n in [3u32, 6, 9, 12, 18, 25, 56] {
            let hi = 1i64 << (n - 1);
            v.extend([hi, hi + 1, -(hi - 1), -hi, hi - 1]);
        }
        v
    }

    #[test]
    fn varbit_int_matches_prometheus_buckets_and_round_trips() {
        for &x in &edges() {
            let mut reference = ReferenceBstream::default();
            reference.write_bits(0b101, 3);
            reference_int(&mut reference, x);
            let mut buf = Vec::new();
            let mut w = HistBits::resume(&mut buf, (0, 0));
            w.bits(0b101, 3);
            w.varbit_int(x);
            let (_, free) = w.finish();
            assert_eq!(buf, reference.stream, "{x}");
            assert_eq!(free, reference.count, "{x}");
            let mut r = BitReader::new(&buf, 3);
            assert_eq!(read_varbit_int(&mut r), x);
            assert!(!r.overran());
        }
        // Widths: 1, 5, 9, 13, 17, 24, 32, 64 and 72 bits.
        let width = |x: i64| {
            let mut buf = Vec::new();
            let mut w = HistBits::resume(&mut buf, (0, 0));
            w.varbit_int(x);
            w.finish();
            let mut r = BitReader::new(&buf, 0);
            read_varbit_int(&mut r);
            r.pos()
        };
        assert_eq!(
            [0, 4, -3, 32, 256, 2048, 131072, 16777216, 1 << 55, 1 << 56].map(width),
            [1, 5, 5, 9, 13, 17, 24, 32, 64, 72]
        );
    }

    #[test]
    fn varbit_uint_round_trips_at_every_edge() {
        for n in 0..64 {
            for x in [1u64 << n, (1u64 << n) - 1, (1u64 << n) + 1, u64::MAX] {
                let mut buf = Vec::new();
                let mut w = HistBits::resume(&mut buf, (0, 0));
                w.varbit_uint(x);
                w.bits(1, 1);
                w.finish();
                let mut r = BitReader::new(&buf, 0);
                assert_eq!(read_varbit_uint(&mut r), x);
                assert_eq!(r.read_bits(1), 1);
                assert!(!r.overran());
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn varbit_codes_round_trip(xs in proptest::collection::vec(proptest::num::i64::ANY, 1..50)) {
            let mut buf = Vec::new();
            let mut w = HistBits::resume(&mut buf, (0, 0));
            for &x in &xs {
                w.varbit_int(x);
                w.varbit_uint(x as u64);
            }
            w.finish();
            let mut r = BitReader::new(&buf, 0);
            for &x in &xs {
                proptest::prop_assert_eq!(read_varbit_int(&mut r), x);
                proptest::prop_assert_eq!(read_varbit_uint(&mut r), x as u64);
            }
            proptest::prop_assert!(!r.overran());
        }

        #[test]
        fn xor_codes_round_trip(vals in proptest::collection::vec(proptest::num::u64::ANY, 1..50)) {
            let mut buf = Vec::new();
            let mut w = HistBits::resume(&mut buf, (0, 0));
            let (mut cur, mut l, mut t) = (0u64, 0xffu8, 0u8);
            for &v in &vals {
                w.xor(v, cur, &mut l, &mut t);
                cur = v;
            }
            w.finish();
            let mut r = BitReader::new(&buf, 0);
            // A reader starts with window (0, 0): the first code is never a reuse.
            let (mut got, mut rl, mut rt) = (0u64, 0u8, 0u8);
            for &v in &vals {
                read_xor(&mut r, &mut got, &mut rl, &mut rt).unwrap();
                proptest::prop_assert_eq!(got, v);
            }
            proptest::prop_assert!(!r.overran());
        }
    }
}
