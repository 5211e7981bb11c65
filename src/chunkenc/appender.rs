//! [`XorAppender`]: builds XOR chunk payloads (format brief §1.5) byte-identical to
//! Prometheus 2.42's.

use super::bstream::{write_short, write_wide, BitWriter, MAX_SHORT_BITS};
use super::iter::{IterState, XorIter};
use super::HEADER_LEN;
use crate::encoding::{zigzag_encode, Decbuf, DecodeError};

/// `leading` value meaning "no window yet" (Prometheus's sentinel). It is larger than any
/// clamped leading-zero count (at most 31), so the window-reuse test fails on it without a
/// separate check.
const NO_WINDOW: u8 = 0xff;

/// Initial capacity of [`XorAppender::new`]: room for the header, the first sample (up to 19
/// bytes) and the writer's 8-byte register store. Head chunks of ~120 samples at 1–2 bytes
/// each then grow through 64, 128 and 256 bytes.
const DEFAULT_CAPACITY: usize = 32;

/// A growable XOR chunk being appended to.
///
/// [`bytes`](Self::bytes) is at all times a complete chunk payload (BE16 sample count, then the
/// bit stream), readable by [`XorIter`] and byte-identical to what Prometheus 2.42 writes for the
/// same samples appended to a fresh chunk, including the empty trailing byte Prometheus leaves
/// after a byte-aligned whole-byte write (see the `bstream` module).
///
/// The struct is 56 bytes: the `Vec`, the previous sample and delta, and six bytes of state
/// (count, XOR window, partial last byte), so that one lives in every in-memory series cheaply.
#[derive(Debug, Clone)]
pub struct XorAppender {
    buf: Vec<u8>,
    /// Previous timestamp.
    t: i64,
    /// Bits of the previous value.
    v: u64,
    /// Previous timestamp delta (wrapping arithmetic, as Prometheus).
    t_delta: u64,
    /// Samples in the chunk; mirrors the BE16 header.
    num: u16,
    /// XOR window: leading zeros (clamped to 31) or [`NO_WINDOW`], and trailing zeros.
    leading: u8,
    trailing: u8,
    /// Value of the partial last byte of `buf`, and its free low bits (Go's `bstream.count`).
    tail: u8,
    free: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    /// An empty chunk with a small initial buffer.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// An empty chunk whose buffer holds `bytes` bytes before it reallocates.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER_LEN));
        buf.extend_from_slice(&[0, 0]);
        XorAppender {
            buf,
            t: 0,
            v: 0,
            t_delta: 0,
            num: 0,
            leading: NO_WINDOW,
            trailing: 0,
            tail: 0,
            free: 0,
        }
    }

    /// Re-opens a chunk payload for appending, with Prometheus's semantics: the appender state
    /// is what its iterator holds after the last sample, so the XOR window is the last one the
    /// chunk wrote in full, or `(0, 0)` if it never wrote one (a fresh chunk has "no window").
    /// Appending to a re-opened chunk therefore gives Prometheus's bytes, and differs from a
    /// fresh appender only in that quirk (brief §1.5).
    ///
    /// Appending continues at the exact bit where the last sample ends. (Prometheus 2.42's
    /// `FromData` restarts at the next whole byte, which would leave the padding bits inside
    /// the stream and make the chunk undecodable; its head normally cuts a new chunk on the
    /// first append after loading a snapshot, so that path is rarely taken there.)
    ///
    /// Fails if the payload does not decode, or if anything but zero padding follows the last
    /// sample (up to the end of its byte, plus Prometheus's one empty trailing byte), since
    /// new bits would land after it.
    pub fn from_chunk(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        let mut it = XorIter::new(&bytes);
        for sample in it.by_ref() {
            sample?;
        }
        let num = it.num_samples();
        let IterState {
            bit_pos: end,
            t,
            v,
            t_delta,
            leading,
            trailing,
        } = it.state();
        let (whole, used) = (end / 8, (end % 8) as u32);
        let trailing_garbage = DecodeError {
            offset: whole,
            reason: "data after the last sample of a chunk being re-opened",
        };
        // What may follow the last sample: zero padding to the end of its byte, or, when it
        // ends on a byte boundary, nothing or Prometheus's empty byte.
        let (tail, free) = match (used, bytes.get(whole..).unwrap_or(&[])) {
            (0, []) => (0, 0),
            (0, [0]) => (0, 8),
            (1..=7, &[last]) if last & (0xff >> used) == 0 => (last, 8 - used as u8),
            _ => return Err(trailing_garbage),
        };
        Ok(XorAppender {
            buf: bytes,
            t,
            v,
            t_delta,
            num,
            leading: if num == 0 { NO_WINDOW } else { leading },
            trailing,
            tail,
            free,
        })
    }

    /// Appends a sample. The caller guarantees `t` is greater than the previous timestamp and
    /// that the chunk holds fewer than 65 535 samples (Prometheus cuts chunks at ~120).
    ///
    /// # Panics
    /// If the chunk already holds 65 535 samples (the count field is 16 bits).
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) {
        let num = self.num;
        debug_assert!(num == 0 || t > self.t, "timestamps must increase");
        let vbits = v.to_bits();
        if (2..u16::MAX).contains(&num) {
            let dt = (t as u64).wrapping_sub(self.t as u64);
            let dod = dt.wrapping_sub(self.t_delta) as i64;
            let value = self.value_code(vbits);
            let (dcode, dlen) = dod_code(dod);
            let len = dlen + value.control_len + value.sig;
            let state = (self.tail, self.free);
            let ended = value.ends_with_byte_write();
            if len <= MAX_SHORT_BITS {
                // Most samples: both codes in one 64-bit write (then `sig < 64`).
                let code = (dcode << value.control_len | value.control) << value.sig | value.bits;
                (self.tail, self.free) = write_short(&mut self.buf, state, code, len, ended);
            } else if dlen <= 24 {
                // All but 64-bit-bucket timestamps: both codes in one write of at most
                // 24 + 13 + 64 bits.
                let prefix = dcode << value.control_len | value.control;
                let code = (prefix as u128) << value.sig | value.bits as u128;
                (self.tail, self.free) = write_wide(&mut self.buf, state, code, len, ended);
            } else {
                self.append_long(dod, value);
            }
            self.t_delta = dt;
        } else {
            self.append_first_two(t, vbits);
        }
        self.t = t;
        self.v = vbits;
        self.num = num + 1;
        self.buf[..HEADER_LEN].copy_from_slice(&self.num.to_be_bytes());
    }

    /// Writes a sample after the second whose timestamp needs the 64-bit bucket.
    #[cold]
    #[inline(never)]
    fn append_long(&mut self, dod: i64, value: ValueCode) {
        let mut w = BitWriter::resume(&mut self.buf, self.tail, self.free);
        match dod_code(dod) {
            (_, 68) => {
                w.write_bits(0b1111, 4);
                w.write_bits(dod as u64, 64);
            }
            (code, len) => w.write_bits(code, len),
        }
        value.write(&mut w);
        (self.tail, self.free) = w.finish(value.ends_with_byte_write());
    }

    /// Samples 0 and 1 start byte-aligned with varints (§1.5); also rejects a full chunk.
    #[cold]
    fn append_first_two(&mut self, t: i64, vbits: u64) {
        assert!(self.num < u16::MAX, "XOR chunk is full (65535 samples)");
        if self.num == 0 {
            let mut w = BitWriter::resume(&mut self.buf, self.tail, self.free);
            w.write_aligned_uvarint(zigzag_encode(t));
            w.write_bits(vbits, 64);
            (self.tail, self.free) = w.finish(true);
            self.t_delta = 0;
        } else {
            let dt = (t as u64).wrapping_sub(self.t as u64);
            let value = self.value_code(vbits);
            let mut w = BitWriter::resume(&mut self.buf, self.tail, self.free);
            w.write_aligned_uvarint(dt);
            value.write(&mut w);
            (self.tail, self.free) = w.finish(value.ends_with_byte_write());
            self.t_delta = dt;
        }
    }

    /// The XOR code of `vbits` against the previous value; updates the window when the code
    /// writes a new one. Branch-free: whether a value repeats, reuses the window or needs a
    /// new one is data-dependent and mispredicts often.
    #[inline(always)]
    fn value_code(&mut self, vbits: u64) -> ValueCode {
        let x = vbits ^ self.v;
        let changed = x != 0;
        // For x == 0 these are 31 and 64; the results below are then discarded.
        let lz = x.leading_zeros().min(31) as u8;
        let tz = x.trailing_zeros().min(63) as u8;
        let reuse = (lz >= self.leading) & (tz >= self.trailing);
        let new_window = changed & !reuse;
        if new_window {
            self.leading = lz;
            self.trailing = tz;
        }
        let (l, tr) = (self.leading as u32, self.trailing as u32);
        // Wraps only for "no window" with an unchanged value, whose code is discarded.
        let sig = 64u32.wrapping_sub(l).wrapping_sub(tr) & 127;
        let control = if reuse {
            0b10
        } else {
            (0b11 << 11) | (l as u64) << 6 | (sig & 63) as u64
        };
        let control_len = if reuse { 2 } else { 13 };
        if changed {
            ValueCode {
                control,
                control_len,
                bits: x >> (tr & 63),
                sig,
            }
        } else {
            ValueCode {
                control: 0,
                control_len: 1,
                bits: 0,
                sig: 0,
            }
        }
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> u16 {
        self.num
    }

    /// The chunk payload: BE16 sample count and bit stream.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Length of the payload in bytes (2 for an empty chunk).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no sample was appended (the payload is then just the zero count).
    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// Timestamp of the first sample.
    pub fn first_time(&self) -> Option<i64> {
        if self.num == 0 {
            return None;
        }
        Decbuf::new(&self.buf[HEADER_LEN..]).varint().ok()
    }

    /// Timestamp of the last sample.
    pub fn last_time(&self) -> Option<i64> {
        (self.num != 0).then_some(self.t)
    }

    /// Value of the last sample, bit for bit.
    pub fn last_value(&self) -> Option<f64> {
        (self.num != 0).then(|| f64::from_bits(self.v))
    }

    /// Whether the payload ends with Prometheus's empty trailing byte.
    #[cfg(test)]
    pub(crate) fn ends_with_empty_byte(&self) -> bool {
        self.free == 8
    }

    /// Empties the chunk for reuse, keeping its allocation: afterwards it is exactly a
    /// [`new`](Self::new) appender with a larger buffer.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&[0, 0]);
        self.t = 0;
        self.v = 0;
        self.t_delta = 0;
        self.num = 0;
        self.leading = NO_WINDOW;
        self.trailing = 0;
        self.tail = 0;
        self.free = 0;
    }

    /// The finished chunk payload, its allocation shrunk to fit.
    pub fn into_bytes(self) -> Vec<u8> {
        let mut buf = self.buf;
        buf.shrink_to_fit();
        buf
    }
}

/// The timestamp delta-of-delta code (§1.5) and its length in bits; the length is 68 for the
/// 64-bit bucket, whose code is then not returned (see `append_long`). The ranges are
/// Prometheus's asymmetric `-(2^(n-1) - 1) ..= 2^(n-1)`.
#[inline(always)]
fn dod_code(dod: i64) -> (u64, u32) {
    const fn fits(dod: i64, n: u32) -> bool {
        -((1 << (n - 1)) - 1) <= dod && dod <= 1 << (n - 1)
    }
    let field = |prefix: u64, plen: u32, n: u32| {
        let low = dod as u64 & ((1u64 << n) - 1);
        ((prefix << n) | low, plen + n)
    };
    if dod == 0 {
        (0, 1)
    } else if fits(dod, 14) {
        field(0b10, 2, 14)
    } else if fits(dod, 17) {
        field(0b110, 3, 17)
    } else if fits(dod, 20) {
        field(0b1110, 4, 20)
    } else {
        (0, 68)
    }
}

/// A value's XOR code: `control_len` control bits (`0`; `10`; or `11`, 5 bits of leading
/// zeros and 6 of significant bits), then `sig` significant bits.
#[derive(Clone, Copy)]
struct ValueCode {
    control: u64,
    control_len: u32,
    bits: u64,
    sig: u32,
}

impl ValueCode {
    #[inline]
    fn write(self, w: &mut BitWriter<'_>) {
        let len = self.control_len + self.sig;
        if len <= 64 {
            // `sig < 64` here, so the shift is in range.
            w.write_bits((self.control << self.sig) | self.bits, len);
        } else {
            w.write_bits(self.control, self.control_len);
            w.write_bits(self.bits, self.sig);
        }
    }

    /// Whether Prometheus's last primitive write for this code is a whole byte: its
    /// `writeBits` of the significant bits emits bytes first, then single bits.
    #[inline]
    fn ends_with_byte_write(self) -> bool {
        self.sig != 0 && self.sig.is_multiple_of(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::bstream::ReferenceBstream;
    use crate::chunkenc::testutil::*;
    use crate::encoding::{put_uvarint, put_varint};
    use crate::model::{Sample, STALE_NAN_BITS};
    use proptest::prelude::*;

    /// Prometheus 2.42's `xorAppender`, transcribed one primitive `bstream` write at a time:
    /// the oracle the fast appender must match byte for byte.
    struct Reference {
        b: ReferenceBstream,
        num: u16,
        t: i64,
        v: u64,
        t_delta: u64,
        leading: u8,
        trailing: u8,
        /// Whether a `11` window was written (what re-opening depends on).
        wrote_window: bool,
    }

    impl Reference {
        fn new() -> Self {
            Reference {
                b: ReferenceBstream {
                    stream: vec![0, 0],
                    count: 0,
                },
                num: 0,
                t: 0,
                v: 0,
                t_delta: 0,
                leading: 0xff,
                trailing: 0,
                wrote_window: false,
            }
        }

        /// The state Prometheus's `Appender()` rebuilds from its iterator on a non-empty chunk.
        fn reopen(&mut self) {
            if self.num > 0 && !self.wrote_window {
                self.leading = 0;
                self.trailing = 0;
            }
        }

        fn append(&mut self, t: i64, v: f64) {
            let mut t_delta = 0;
            let mut tmp = Vec::new();
            match self.num {
                0 => {
                    put_varint(&mut tmp, t);
                    for &byt in &tmp {
                        self.b.write_byte(byt);
                    }
                    self.b.write_bits(v.to_bits() as u128, 64);
                }
                1 => {
                    t_delta = (t as u64).wrapping_sub(self.t as u64);
                    put_uvarint(&mut tmp, t_delta);
                    for &byt in &tmp {
                        self.b.write_byte(byt);
                    }
                    self.write_vdelta(v.to_bits());
                }
                _ => {
                    t_delta = (t as u64).wrapping_sub(self.t as u64);
                    let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                    let bit_range =
                        |n: u32| -((1i64 << (n - 1)) - 1) <= dod && dod <= 1i64 << (n - 1);
                    let d = dod as u64 as u128;
                    if dod == 0 {
                        self.b.write_bit(false);
                    } else if bit_range(14) {
                        self.b.write_bits(0b10, 2);
                        self.b.write_bits(d & 0x3fff, 14);
                    } else if bit_range(17) {
                        self.b.write_bits(0b110, 3);
                        self.b.write_bits(d & 0x1ffff, 17);
                    } else if bit_range(20) {
                        self.b.write_bits(0b1110, 4);
                        self.b.write_bits(d & 0xfffff, 20);
                    } else {
                        self.b.write_bits(0b1111, 4);
                        self.b.write_bits(d, 64);
                    }
                    self.write_vdelta(v.to_bits());
                }
            }
            self.t = t;
            self.v = v.to_bits();
            self.num += 1;
            self.b.stream[..2].copy_from_slice(&self.num.to_be_bytes());
            self.t_delta = t_delta;
        }

        fn write_vdelta(&mut self, v: u64) {
            let x = v ^ self.v;
            if x == 0 {
                self.b.write_bit(false);
                return;
            }
            self.b.write_bit(true);
            let mut leading = x.leading_zeros() as u8;
            let trailing = x.trailing_zeros() as u8;
            if leading >= 32 {
                leading = 31;
            }
            if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
                self.b.write_bit(false);
                let sig = 64 - self.leading as u32 - self.trailing as u32;
                self.b.write_bits((x >> self.trailing) as u128, sig);
            } else {
                self.leading = leading;
                self.trailing = trailing;
                self.wrote_window = true;
                self.b.write_bit(true);
                self.b.write_bits(leading as u128, 5);
                let sig = 64 - leading as u32 - trailing as u32;
                self.b.write_bits((sig & 63) as u128, 6);
                self.b.write_bits((x >> trailing) as u128, sig);
            }
        }
    }

    /// Appends `input` to both appenders, comparing bytes after every append, and decodes.
    fn check_against_reference(input: &[Sample]) {
        let mut app = XorAppender::new();
        let mut reference = Reference::new();
        for s in input {
            app.append(s.t, s.v);
            reference.append(s.t, s.v);
            assert_eq!(app.bytes(), reference.b.stream, "after sample {s:?}");
        }
        assert_eq!(decode(app.bytes()).unwrap(), input);
    }

    #[test]
    fn a_reset_appender_writes_what_a_new_one_writes() {
        let mut reused = XorAppender::new();
        for i in 0..200i64 {
            reused.append(i * 15_000 + i % 7, (i * i) as f64 / 3.0);
        }
        reused.reset();
        assert_eq!(reused.bytes(), XorAppender::new().bytes());
        let mut fresh = XorAppender::new();
        for i in 0..150i64 {
            let (t, v) = (
                1_000 + i * 30_000,
                f64::from_bits(0x7ff0_0000_0000_0002 ^ i as u64),
            );
            reused.append(t, v);
            fresh.append(t, v);
            assert_eq!(reused.bytes(), fresh.bytes(), "after sample {i}");
        }
    }

    #[test]
    fn worked_example_of_the_brief() {
        // §1.5: the first chunk of the golden block.
        let t0 = 1_700_000_000_000;
        let input = samples(&[
            (t0, 1.0),
            (t0 + 15_000, 2.0),
            (t0 + 30_000, 4.0),
            (t0 + 45_000, 7.0),
        ]);
        let app = encode(&input);
        let expected = [
            0x00, 0x04, 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x98,
            0x75, 0xc2, 0x5f, 0xff, 0x40, 0x05, 0xb0, 0x2c,
        ];
        assert_eq!(app.bytes(), expected);
        assert_eq!(decode(&expected).unwrap(), input);
        assert_eq!(app.first_time(), Some(t0));
        assert_eq!(app.last_time(), Some(t0 + 45_000));
        assert_eq!(app.last_value(), Some(7.0));
        assert_eq!(app.num_samples(), 4);
        assert_eq!(app.into_bytes(), expected);
    }

    #[test]
    fn one_sample_chunk_ends_with_prometheus_empty_byte() {
        let mut app = XorAppender::new();
        assert!(app.is_empty());
        assert_eq!(app.bytes(), [0, 0]);
        assert_eq!(
            (app.first_time(), app.last_time(), app.last_value()),
            (None, None, None)
        );
        app.append(0, 0.0);
        // Count, varint 0, 64 zero bits, then the empty byte of bstream.writeByte.
        assert_eq!(app.bytes(), [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode(app.bytes()).unwrap(), samples(&[(0, 0.0)]));
    }

    #[test]
    fn appender_is_small() {
        assert_eq!(std::mem::size_of::<XorAppender>(), 56);
    }

    #[test]
    fn every_dod_bucket_edge_round_trips_and_matches_reference() {
        let mut dods = vec![0i64, 1, -1, i64::MAX, i64::MIN, i64::MIN + 1];
        for n in [14u32, 17, 20] {
            let hi = 1i64 << (n - 1);
            dods.extend([hi - 1, hi, hi + 1, -(hi - 2), -(hi - 1), -hi, -(hi + 1)]);
        }
        for &dod in &dods {
            // Start from a delta large enough that the second delta stays positive.
            for base in [1_000_000i64, 1 << 40] {
                let Some(d2) = base.checked_add(dod).filter(|d| *d > 0) else {
                    continue;
                };
                let t0 = 1_700_000_000_000i64;
                let ts = [t0, t0 + base, t0 + base + d2, t0 + 2 * base + d2 + 15];
                let input: Vec<Sample> = ts.iter().map(|&t| Sample { t, v: 1.5 }).collect();
                check_against_reference(&input);
            }
        }
    }

    #[test]
    fn timestamp_arithmetic_wraps_like_go() {
        for ts in [
            vec![i64::MIN, i64::MIN + 1, i64::MAX],
            vec![i64::MIN, -1, i64::MAX],
            vec![i64::MIN, 0, 1, i64::MAX - 1, i64::MAX],
            vec![-5, i64::MAX - 10, i64::MAX],
        ] {
            let input: Vec<Sample> = ts.iter().map(|&t| Sample { t, v: t as f64 }).collect();
            check_against_reference(&input);
        }
    }

    #[test]
    fn special_values_keep_their_bits() {
        let bits = [
            0u64,
            (-0.0f64).to_bits(),
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            1,                     // smallest subnormal
            0x000f_ffff_ffff_ffff, // largest subnormal
            STALE_NAN_BITS,
            0x7ff8_0000_0000_0001, // Go's math.NaN()
            0xfff0_dead_beef_0001, // negative NaN with payload
            0x7ff0_0000_0000_0002,
            f64::MAX.to_bits(),
            f64::MIN_POSITIVE.to_bits(),
            u64::MAX,
            1 << 63,
        ];
        let input: Vec<Sample> = bits
            .iter()
            .chain(bits.iter().rev())
            .enumerate()
            .map(|(i, &b)| Sample {
                t: 1000 * i as i64,
                v: f64::from_bits(b),
            })
            .collect();
        check_against_reference(&input);
        let decoded = decode(encode(&input).bytes()).unwrap();
        assert_eq!(decoded[6].v.to_bits(), STALE_NAN_BITS);
    }

    #[test]
    fn full_chunk_of_65535_samples() {
        let mut app = XorAppender::with_capacity(0);
        let mut input = Vec::with_capacity(65535);
        let mut t = -1_000_000i64;
        for i in 0..65535u32 {
            t += 1 + (i % 7) as i64 * 1000;
            let v = if i % 5 == 0 {
                i as f64
            } else {
                (i as f64).sqrt()
            };
            app.append(t, v);
            input.push(Sample { t, v });
        }
        assert_eq!(app.num_samples(), 65535);
        assert_eq!(&app.bytes()[..2], [0xff, 0xff]);
        assert_eq!(decode(app.bytes()).unwrap(), input);
        let mut reference = Reference::new();
        for s in &input {
            reference.append(s.t, s.v);
        }
        assert_eq!(app.bytes(), reference.b.stream);
    }

    #[test]
    #[should_panic(expected = "XOR chunk is full")]
    fn appending_past_65535_samples_panics() {
        let mut app = XorAppender::new();
        for t in 0..65536 {
            app.append(t, 0.0);
        }
    }

    #[test]
    fn reopen_without_window_writes_the_prometheus_quirk() {
        // No sample after the first changed the value, so Prometheus's rebuilt appender has
        // window (0, 0) and writes the next change as `10` + 64 bits instead of `11` + window.
        let input = samples(&[(1000, 5.0), (2000, 5.0), (3000, 6.0)]);
        let mut app = XorAppender::from_chunk(encode(&input[..2]).into_bytes()).unwrap();
        app.append(input[2].t, input[2].v);
        let mut reference = Reference::new();
        reference.append(input[0].t, input[0].v);
        reference.append(input[1].t, input[1].v);
        reference.reopen();
        reference.append(input[2].t, input[2].v);
        assert_eq!(app.bytes(), reference.b.stream);
        assert_ne!(app.bytes(), encode(&input).bytes());
        assert_eq!(decode(app.bytes()).unwrap(), input);
        // Stream after the 2-byte Δ1: `0` (same value), `0` (dod 0), `10`, then the XOR.
        let x = 5.0f64.to_bits() ^ 6.0f64.to_bits();
        let tail = &app.bytes()[2 + 2 + 8 + 2..];
        let mut expected = vec![0u8; 9];
        let bits = (0b0010u128 << 64 | x as u128) << (128 - 68);
        expected.copy_from_slice(&bits.to_be_bytes()[..9]);
        assert_eq!(tail, expected);
    }

    #[test]
    fn reopen_rejects_trailing_data_and_keeps_bytes() {
        let input = samples(&[(10, 1.0), (20, 2.0), (30, 3.0)]);
        let chunk = encode(&input).into_bytes();
        let end = end_bits(&chunk);
        assert_ne!(end % 8, 0, "this chunk ends mid-byte");
        let app = XorAppender::from_chunk(chunk.clone()).unwrap();
        assert_eq!(app.bytes(), chunk);
        assert_eq!(app.num_samples(), 3);
        assert_eq!(app.first_time(), Some(10));
        assert_eq!(app.last_time(), Some(30));
        assert_eq!(app.last_value(), Some(3.0));

        let mut extra = chunk.clone();
        extra.push(0);
        assert!(XorAppender::from_chunk(extra).is_err());
        let mut dirty = chunk.clone();
        *dirty.last_mut().unwrap() |= 1;
        assert!(matches!(XorAppender::from_chunk(dirty), Err(e) if e.offset == end / 8));

        // A chunk ending on a byte boundary may carry Prometheus's one empty byte, no more.
        let one = encode(&input[..1]).into_bytes();
        assert_eq!(end_bits(&one) / 8 + 1, one.len());
        assert_eq!(XorAppender::from_chunk(one.clone()).unwrap().bytes(), one);
        let mut two = one.clone();
        two.push(0);
        assert!(XorAppender::from_chunk(two).is_err());
        let mut dirty = one.clone();
        *dirty.last_mut().unwrap() = 0x80;
        assert!(XorAppender::from_chunk(dirty).is_err());
        // An empty chunk re-opens to a fresh appender.
        let mut app = XorAppender::from_chunk(vec![0, 0]).unwrap();
        app.append(10, 1.0);
        app.append(20, 2.0);
        assert_eq!(app.bytes(), encode(&input[..2]).bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Bytes equal the transcribed Prometheus appender after every append, and decode back
        /// bit for bit.
        #[test]
        fn round_trip_matches_reference(
            t0 in t0(),
            steps in proptest::collection::vec((step(), val()), 0..600),
        ) {
            let input = build(t0, &steps);
            let mut app = XorAppender::new();
            let mut reference = Reference::new();
            for s in &input {
                app.append(s.t, s.v);
                reference.append(s.t, s.v);
                prop_assert_eq!(app.bytes(), &reference.b.stream[..]);
            }
            prop_assert_eq!(decode(app.bytes()).unwrap(), input.clone());
            prop_assert_eq!(app.first_time(), input.first().map(|s| s.t));
            prop_assert_eq!(app.last_time(), input.last().map(|s| s.t));
            prop_assert_eq!(
                app.last_value().map(f64::to_bits),
                input.last().map(|s| s.v.to_bits())
            );
        }

        /// Re-opening after any prefix continues with Prometheus's re-opened state; the bytes
        /// equal a fresh appender's unless the prefix never wrote a window.
        #[test]
        fn reopen_after_any_prefix(
            t0 in t0(),
            steps in proptest::collection::vec((step(), val()), 0..200),
            cut in any::<proptest::sample::Index>(),
        ) {
            let input = build(t0, &steps);
            let k = cut.index(input.len() + 1);
            let mut app = XorAppender::from_chunk(encode(&input[..k]).into_bytes()).unwrap();
            let mut reference = Reference::new();
            for s in &input[..k] {
                reference.append(s.t, s.v);
            }
            reference.reopen();
            let quirk = k > 0 && !reference.wrote_window;
            for s in &input[k..] {
                app.append(s.t, s.v);
                reference.append(s.t, s.v);
            }
            prop_assert_eq!(app.bytes(), &reference.b.stream[..]);
            prop_assert_eq!(decode(app.bytes()).unwrap(), input.clone());
            if !quirk {
                prop_assert_eq!(app.bytes(), &encode(&input).into_bytes()[..]);
            }
        }
    }
}
