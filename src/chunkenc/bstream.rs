//! Bit streams of chunk payloads (format brief §1.0 "Bit stream"): bits are written MSB-first
//! into successive bytes and the last byte is zero-padded.
//!
//! The writer reproduces one quirk of Prometheus 2.x's `bstream` byte for byte: a whole-byte write
//! (`writeByte`, used for varints and for every 8 bits of a `writeBits`) made while the stream is
//! byte-aligned leaves an extra, empty byte at the end of the stream, which later bit writes fill.
//! A chunk whose last write was such a byte therefore ends in one zero byte of padding (every
//! 1-sample chunk does, and about 1% of longer ones). Decoders ignore it.

/// Writes one append's worth of bits to the end of a stream. Bits collect in a 64-bit
/// register and reach the buffer as 8-byte stores, only when the register is full and once at
/// [`finish`](Self::finish): a typical sample (under ~57 bits) costs one store.
///
/// The stream's partial state between appends is `(tail, free)`: `free` is Go's
/// `bstream.count`, the number of unused low bits of the last byte (0..=8, 8 meaning the
/// last byte is the empty byte of the quirk above), and `tail` is that last byte's value, kept
/// out of the `Vec` so that the writer never reads the buffer back.
pub(crate) struct BitWriter<'a> {
    buf: &'a mut Vec<u8>,
    /// Pending bits, left-aligned: bit 63 is the next bit of the stream.
    acc: u64,
    /// Number of pending bits in `acc` (0..=64).
    n: u32,
}

impl<'a> BitWriter<'a> {
    /// Resumes writing at the end of `buf`, whose partial last byte is described by
    /// `(tail, free)` as above. The partial (or empty) last byte is taken back into the register.
    #[inline]
    pub(crate) fn resume(buf: &'a mut Vec<u8>, tail: u8, free: u8) -> Self {
        debug_assert!(free <= 8);
        if free != 0 {
            debug_assert!(!buf.is_empty());
            buf.truncate(buf.len() - 1);
        }
        BitWriter {
            buf,
            acc: (tail as u64) << 56,
            n: (8 - free as u32) & 7,
        }
    }

    /// Writes the `nbits` (1..=64) low bits of `code`, most significant first; the bits of
    /// `code` above `nbits` must be zero.
    #[inline]
    pub(crate) fn write_bits(&mut self, code: u64, nbits: u32) {
        debug_assert!((1..=64).contains(&nbits) && (nbits == 64 || code >> nbits == 0));
        if nbits <= 56 {
            self.put(code, nbits);
        } else {
            self.put(code >> 32, nbits - 32);
            self.put(code & 0xffff_ffff, 32);
        }
    }

    /// `write_bits` for `nbits <= 56`.
    #[inline]
    fn put(&mut self, code: u64, nbits: u32) {
        debug_assert!((1..=56).contains(&nbits) && code >> nbits == 0);
        if self.n + nbits > 64 {
            self.flush_whole_bytes();
        }
        // Now `n + nbits <= 64` (after a flush `n <= 7`), so the shift is in range.
        self.acc |= code << (64 - self.n - nbits);
        self.n += nbits;
    }

    /// Writes a Go uvarint as whole bytes; the stream must be byte-aligned (as it is for the
    /// varints of the first two samples, §1.5).
    #[inline]
    pub(crate) fn write_aligned_uvarint(&mut self, v: u64) {
        debug_assert!(self.n.is_multiple_of(8));
        self.flush_whole_bytes();
        crate::encoding::put_uvarint(self.buf, v);
    }

    /// Moves the whole bytes of the register into the buffer, keeping the `n % 8` others.
    #[inline]
    fn flush_whole_bytes(&mut self) {
        let whole = self.n / 8;
        let len = self.buf.len();
        self.buf.extend_from_slice(&self.acc.to_be_bytes());
        self.buf.truncate(len + whole as usize);
        // Two shifts because `8 * whole` may be 64.
        self.acc = (self.acc << (4 * whole)) << (4 * whole);
        self.n %= 8;
    }

    /// Stores the pending bits, the partial last byte zero-padded, and returns the new
    /// `(tail, free)`. `ended_with_byte_write` says whether Prometheus's last primitive write
    /// of this append was a whole-byte write; together with alignment that decides the empty
    /// trailing byte of the quirk.
    #[inline]
    pub(crate) fn finish(self, ended_with_byte_write: bool) -> (u8, u8) {
        let BitWriter { buf, acc, n } = self;
        let whole = (n / 8) as usize;
        let rem = n % 8;
        let len = buf.len();
        buf.extend_from_slice(&acc.to_be_bytes());
        if rem != 0 {
            buf.truncate(len + whole + 1);
            // The partial byte is byte `whole < 8` of the register.
            ((acc >> (56 - 8 * whole)) as u8, 8 - rem as u8)
        } else if ended_with_byte_write {
            // The empty byte is byte `whole` of the register, or past it when `n == 64`.
            buf.truncate(len + whole);
            buf.push(0);
            (0, 8)
        } else {
            buf.truncate(len + whole);
            (0, 0)
        }
    }
}

/// Widest code [`write_wide`] takes: what fits a 128-bit register after at most 7 bits of a
/// partial last byte.
pub(crate) const MAX_WIDE_BITS: u32 = 121;

/// Writes the `nbits` (1..=[`MAX_WIDE_BITS`]) low bits of `code` as one append's worth of bits
/// (a [`BitWriter`] `resume`, `write_bits`, `finish` in one step) with a single 16-byte store;
/// `state` and the result are the stream's `(tail, free)`, `ended_with_byte_write` as for
/// [`BitWriter::finish`].
#[inline(always)]
pub(crate) fn write_wide(
    buf: &mut Vec<u8>,
    (tail, free): (u8, u8),
    code: u128,
    nbits: u32,
    ended_with_byte_write: bool,
) -> (u8, u8) {
    debug_assert!(free <= 8 && (free == 0 || !buf.is_empty()));
    debug_assert!((1..=MAX_WIDE_BITS).contains(&nbits) && code >> nbits == 0);
    let pos = buf.len() - (free != 0) as usize;
    let n = ((8 - free as u32) & 7) + nbits;
    // `1 <= n <= 128`, so the shift is in range.
    let acc = (tail as u128) << 120 | code << (128 - n);
    if buf.capacity() - pos < 17 {
        grow(buf, pos, 17);
    }
    let whole = (n / 8) as usize;
    let rem = n % 8;
    let partial = rem != 0 || ended_with_byte_write;
    let end = pos + whole + partial as usize;
    // SAFETY: `pos + 17 <= capacity` (checked above), so the 16 bytes at `pos` and the one
    // after them are inside the allocation; `write_unaligned` has no alignment requirement and
    // `u8` no invalid values, so writing into spare capacity is sound.
    unsafe {
        let p = buf.as_mut_ptr().add(pos);
        p.cast::<[u8; 16]>().write_unaligned(acc.to_be_bytes());
        if end > pos + 16 {
            // A full register followed by the empty byte, which the store did not cover.
            p.add(16).write(0);
        }
    }
    // SAFETY: bytes below `pos` were initialized (`pos` is `len` or `len - 1`), the store
    // (plus the byte after it) covers `[pos, end)`, and `end <= pos + 17 <= capacity`.
    unsafe { buf.set_len(end) };
    // The partial byte is byte `whole <= 15` of the register; when aligned the tail is 0.
    let tail = if rem != 0 {
        (acc >> (120 - 8 * whole as u32)) as u8
    } else {
        0
    };
    let free = if rem != 0 {
        8 - rem as u8
    } else {
        8 * ended_with_byte_write as u8
    };
    (tail, free)
}

/// Widest code [`write_short`] takes: what fits a 64-bit register after at most 7 bits of a
/// partial last byte.
pub(crate) const MAX_SHORT_BITS: u32 = 57;

/// [`write_wide`] for codes of at most [`MAX_SHORT_BITS`] bits, with one 8-byte store.
#[inline(always)]
pub(crate) fn write_short(
    buf: &mut Vec<u8>,
    (tail, free): (u8, u8),
    code: u64,
    nbits: u32,
    ended_with_byte_write: bool,
) -> (u8, u8) {
    debug_assert!(free <= 8 && (free == 0 || !buf.is_empty()));
    debug_assert!((1..=MAX_SHORT_BITS).contains(&nbits) && code >> nbits == 0);
    let pos = buf.len() - (free != 0) as usize;
    let n = ((8 - free as u32) & 7) + nbits;
    // `1 <= n <= 64`, so the shift is in range.
    let acc = (tail as u64) << 56 | code << (64 - n);
    if buf.capacity() - pos < 9 {
        grow(buf, pos, 9);
    }
    let whole = (n / 8) as usize;
    let rem = n % 8;
    let partial = rem != 0 || ended_with_byte_write;
    let end = pos + whole + partial as usize;
    // SAFETY: `pos + 9 <= capacity` (checked above), so the 8 bytes at `pos` and the one
    // after them are inside the allocation; `write_unaligned` has no alignment requirement and
    // `u8` no invalid values, so writing into spare capacity is sound.
    unsafe {
        let p = buf.as_mut_ptr().add(pos);
        p.cast::<[u8; 8]>().write_unaligned(acc.to_be_bytes());
        if end > pos + 8 {
            // A full register followed by the empty byte, which the store did not cover.
            p.add(8).write(0);
        }
    }
    // SAFETY: bytes below `pos` were initialized (`pos` is `len` or `len - 1`), the store
    // (plus the byte after it) covers `[pos, end)`, and `end <= pos + 9 <= capacity`.
    unsafe { buf.set_len(end) };
    // The partial byte is byte `whole <= 7` of the register; when aligned the tail is 0.
    let tail = if rem != 0 {
        (acc >> (56 - 8 * whole as u32)) as u8
    } else {
        0
    };
    let free = if rem != 0 {
        8 - rem as u8
    } else {
        8 * ended_with_byte_write as u8
    };
    (tail, free)
}

/// Makes room for `room` bytes at `pos <= len`, keeping the bytes below it (the byte at
/// `pos`, if any, is the partial byte the caller's store rewrites).
#[cold]
#[inline(never)]
fn grow(buf: &mut Vec<u8>, pos: usize, room: usize) {
    buf.truncate(pos);
    // Past 128 bytes by a quarter, not by doubling: a head holds an open chunk per series,
    // whose buffer is reused for the series' next chunk, and doubling would leave a quarter
    // of all those buffers unused on average (an eighth this way). Below, doubling: a fresh
    // chunk (WAL replay, compaction) reaches a typical chunk's size in few reallocations.
    let cap = buf.capacity();
    let grown = if cap < 128 { cap * 2 } else { cap + cap / 4 };
    let want = (pos + room).max(grown);
    // malloc serves blocks of 16n bytes with an 8-byte header: ask for 16n + 8.
    let want = (want + 7) / 16 * 16 + 8;
    buf.reserve_exact(want - pos);
}

/// Reads bits from a byte slice with a bit cursor. Reads past the end see zero bits and move
/// the cursor past the end; callers check [`BitReader::overran`] once per decoded sample, so
/// hot paths carry no per-field error branches.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Bit offset of the next bit from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at bit `pos` of `data`.
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader { data, pos }
    }

    /// Bit offset of the next bit.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Whether a read went past the last bit of the data.
    #[inline]
    pub(crate) fn overran(&self) -> bool {
        self.pos > self.data.len() * 8
    }

    /// The next 64 bits, left-aligned, without consuming them. At least the top 57 bits are
    /// stream bits (zero past the end of the data).
    #[inline]
    pub(crate) fn peek(&self) -> u64 {
        let i = self.pos / 8;
        let w = match self.data.get(i..i + 8) {
            Some(b) => u64::from_be_bytes(b.try_into().expect("slice of length 8")),
            None => self.peek_tail(i),
        };
        w << (self.pos % 8)
    }

    #[cold]
    #[inline(never)]
    fn peek_tail(&self, i: usize) -> u64 {
        let mut b = [0u8; 8];
        let rest = self.data.get(i..).unwrap_or(&[]);
        let k = rest.len().min(8);
        b[..k].copy_from_slice(&rest[..k]);
        u64::from_be_bytes(b)
    }

    /// Consumes `n` bits.
    #[inline]
    pub(crate) fn skip(&mut self, n: u32) {
        self.pos += n as usize;
    }

    /// Reads `n` bits (1..=64) as the low bits of the result.
    #[inline]
    pub(crate) fn read_bits(&mut self, n: u32) -> u64 {
        debug_assert!((1..=64).contains(&n));
        let w = self.peek();
        if n <= 57 {
            self.pos += n as usize;
            w >> (64 - n)
        } else {
            // 58..=64 bits: 32 now, the rest after another peek.
            self.pos += 32;
            let lo_bits = n - 32;
            let lo = self.peek() >> (64 - lo_bits);
            self.pos += lo_bits as usize;
            (w >> 32) << lo_bits | lo
        }
    }

    /// The unread bytes from the current position, which must be byte-aligned.
    #[inline]
    pub(crate) fn aligned_rest(&self) -> &'a [u8] {
        debug_assert!(self.pos.is_multiple_of(8));
        self.data.get(self.pos / 8..).unwrap_or(&[])
    }
}

/// A slow reference writer, one bit at a time with the semantics of Prometheus 2.x's
/// `bstream` (including its empty trailing byte), against which tests check [`BitWriter`].
#[cfg(test)]
#[derive(Default)]
pub(crate) struct ReferenceBstream {
    pub(crate) stream: Vec<u8>,
    /// Free low bits of the last byte (0..=8).
    pub(crate) count: u8,
}

#[cfg(test)]
impl ReferenceBstream {
    pub(crate) fn write_bit(&mut self, bit: bool) {
        if self.count == 0 {
            self.stream.push(0);
            self.count = 8;
        }
        let i = self.stream.len() - 1;
        if bit {
            self.stream[i] |= 1 << (self.count - 1);
        }
        self.count -= 1;
    }

    pub(crate) fn write_byte(&mut self, byt: u8) {
        if self.count == 0 {
            self.stream.push(0);
            self.count = 8;
        }
        let i = self.stream.len() - 1;
        self.stream[i] |= ((byt as u16) >> (8 - self.count)) as u8;
        self.stream.push(((byt as u16) << self.count) as u8);
    }

    /// Writes the `nbits` (1..=128) low bits of `u`: whole bytes first, then single bits.
    pub(crate) fn write_bits(&mut self, u: u128, mut nbits: u32) {
        let mut u = u << (128 - nbits);
        while nbits >= 8 {
            self.write_byte((u >> 120) as u8);
            u <<= 8;
            nbits -= 8;
        }
        while nbits > 0 {
            self.write_bit(u >> 127 == 1);
            u <<= 1;
            nbits -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Groups of writes ("appends") of arbitrary widths produce Prometheus's bytes,
        /// including the empty trailing byte, after every group.
        #[test]
        fn writer_matches_reference(groups in proptest::collection::vec(
            proptest::collection::vec((proptest::num::u64::ANY, 1u32..=64), 1..5), 1..40)
        ) {
            let mut reference = ReferenceBstream::default();
            let mut buf = Vec::new();
            let (mut tail, mut free) = (0u8, 0u8);
            for group in &groups {
                let mut w = BitWriter::resume(&mut buf, tail, free);
                let mut last_width = 0;
                for &(code, nbits) in group {
                    let code = if nbits == 64 { code } else { code & ((1u64 << nbits) - 1) };
                    w.write_bits(code, nbits);
                    reference.write_bits(code as u128, nbits);
                    last_width = nbits;
                }
                (tail, free) = w.finish(last_width % 8 == 0);
                proptest::prop_assert_eq!(&buf, &reference.stream);
                proptest::prop_assert_eq!(free, reference.count);
            }
        }

        /// One-store writes, mixed with `BitWriter` appends, produce Prometheus's bytes and
        /// `(tail, free)` after every append, for every width and starting alignment
        /// (including the empty trailing byte and a full register followed by it).
        #[test]
        fn one_store_writes_match_reference(appends in proptest::collection::vec(
            (proptest::num::u128::ANY, 1u32..=MAX_WIDE_BITS, 0u8..3), 1..80)
        ) {
            let mut reference = ReferenceBstream::default();
            let mut buf = Vec::new();
            let mut state = (0u8, 0u8);
            for &(code, nbits, how) in &appends {
                let code = code & ((1u128 << nbits) - 1);
                let ended = nbits % 8 == 0;
                state = match how {
                    0 if nbits <= MAX_SHORT_BITS => {
                        write_short(&mut buf, state, code as u64, nbits, ended)
                    }
                    1 => write_wide(&mut buf, state, code, nbits, ended),
                    _ => {
                        let mut w = BitWriter::resume(&mut buf, state.0, state.1);
                        if nbits > 64 {
                            w.write_bits((code >> 64) as u64, nbits - 64);
                            w.write_bits(code as u64, 64);
                        } else {
                            w.write_bits(code as u64, nbits);
                        }
                        w.finish(ended)
                    }
                };
                reference.write_bits(code, nbits);
                proptest::prop_assert_eq!(&buf, &reference.stream);
                proptest::prop_assert_eq!(state.1, reference.count);
                let tail = if reference.count == 0 { 0 } else { *reference.stream.last().unwrap() };
                proptest::prop_assert_eq!(state.0, tail);
            }
        }

        /// The reader returns what was written, for every width.
        #[test]
        fn reader_round_trips(fields in proptest::collection::vec(
            (proptest::num::u64::ANY, 1u32..=64), 1..60)
        ) {
            let mut buf = Vec::new();
            let mut w = BitWriter::resume(&mut buf, 0, 0);
            for &(v, n) in &fields {
                let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
                w.write_bits(v, n);
            }
            w.finish(false);
            let mut r = BitReader::new(&buf, 0);
            for &(v, n) in &fields {
                let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
                proptest::prop_assert_eq!(r.read_bits(n), v);
            }
            proptest::prop_assert!(!r.overran());
            proptest::prop_assert!(buf.len() * 8 - r.pos() < 8);
        }
    }

    #[test]
    fn reads_past_the_end_are_zero_and_flagged() {
        let data = [0xffu8, 0x80];
        let mut r = BitReader::new(&data, 0);
        assert_eq!(r.read_bits(9), 0x1ff);
        assert!(!r.overran());
        assert_eq!(r.read_bits(7), 0);
        assert!(!r.overran());
        assert_eq!(r.read_bits(64), 0);
        assert!(r.overran());
        // Far past the end the reader still does not panic.
        r.skip(1000);
        assert_eq!(r.peek(), 0);
        assert!(r.aligned_rest().is_empty());
    }

    #[test]
    fn full_register_then_empty_byte_and_growth_from_empty() {
        // 7 pending bits + 57 = a full 8-byte register, then the empty byte past the store.
        let mut buf = Vec::new();
        let state = write_short(&mut buf, (0, 0), 0x7f, 7, false);
        assert_eq!(state, (0xfe, 1));
        let state = write_short(&mut buf, state, (1 << 56) | 1, 57, true);
        assert_eq!(state, (0, 8));
        assert_eq!(buf, [0xff, 0, 0, 0, 0, 0, 0, 1, 0]);
        // 7 + 121 bits fill a 16-byte register exactly.
        let mut buf = vec![0xfe];
        let state = write_wide(&mut buf, (0xfe, 1), 1 << 120 | 1, 121, true);
        assert_eq!(state, (0, 8));
        let mut expected = vec![0xffu8];
        expected.extend([0; 14]);
        expected.extend([1, 0]);
        assert_eq!(buf, expected);
    }

    #[test]
    fn aligned_byte_write_leaves_empty_trailing_byte() {
        let mut buf = vec![0u8, 0];
        let w = BitWriter::resume(&mut buf, 0, 0);
        let (tail, free) = w.finish(true);
        assert_eq!((tail, free), (0, 8));
        assert_eq!(buf, [0, 0, 0]);
        // The next bits fill that byte.
        let mut w = BitWriter::resume(&mut buf, tail, free);
        w.write_bits(0b1, 1);
        assert_eq!(w.finish(false), (0x80, 7));
        assert_eq!(buf, [0, 0, 0x80]);
    }
}
