//! A bounds-checked reader over a byte slice. Every read returns a [`DecodeError`] instead of
//! panicking; callers turn it into `Error::Corruption` with the file and offset.

use std::fmt;

/// Why a decode failed, and where in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset within the decoded buffer at which the failing read started.
    pub offset: usize,
    /// What went wrong.
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Sequential reader of big-endian integers, varints and strings from a slice.
#[derive(Debug, Clone)]
pub struct Decbuf<'a> {
    buf: &'a [u8],
    pos: usize,
}

type R<T> = Result<T, DecodeError>;

impl<'a> Decbuf<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Decbuf { buf, pos: 0 }
    }

    /// Current position from the start of the buffer.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn err<T>(&self, reason: &'static str) -> R<T> {
        Err(DecodeError {
            offset: self.pos,
            reason,
        })
    }

    /// Reads `n` raw bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> R<&'a [u8]> {
        if n > self.remaining() {
            return self.err("unexpected end of data");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> R<()> {
        self.bytes(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> R<[u8; N]> {
        let b = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    /// Reads one byte.
    #[inline]
    pub fn u8(&mut self) -> R<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a big-endian u16.
    #[inline]
    pub fn be16(&mut self) -> R<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian u32.
    #[inline]
    pub fn be32(&mut self) -> R<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian u64.
    #[inline]
    pub fn be64(&mut self) -> R<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Reads a Go uvarint; more than 10 bytes or a value past 64 bits is an error.
    #[inline]
    pub fn uvarint(&mut self) -> R<u64> {
        let start = self.pos;
        let mut x: u64 = 0;
        let mut shift = 0u32;
        for i in 0..10 {
            let Some(&b) = self.buf.get(start + i) else {
                self.pos = start;
                return self.err("unexpected end of data in varint");
            };
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return self.err("varint overflows 64 bits");
                }
                self.pos = start + i + 1;
                return Ok(x | (b as u64) << shift);
            }
            x |= ((b & 0x7f) as u64) << shift;
            shift += 7;
        }
        self.err("varint longer than 10 bytes")
    }

    /// Reads a uvarint that must fit in 32 bits.
    pub fn uvarint32(&mut self) -> R<u32> {
        let start = self.pos;
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| DecodeError {
            offset: start,
            reason: "varint does not fit in 32 bits",
        })
    }

    /// Reads a Go zig-zag varint.
    #[inline]
    pub fn varint(&mut self) -> R<i64> {
        self.uvarint().map(super::zigzag_decode)
    }

    /// Reads a uvarint-length-prefixed byte string.
    pub fn uvarint_bytes(&mut self) -> R<&'a [u8]> {
        let start = self.pos;
        let n = self.uvarint()?;
        if n > self.remaining() as u64 {
            self.pos = start;
            return self.err("string length past end of data");
        }
        self.bytes(n as usize)
    }

    /// Reads a uvarint-length-prefixed UTF-8 string.
    pub fn uvarint_str(&mut self) -> R<&'a str> {
        let start = self.pos;
        let b = self.uvarint_bytes()?;
        std::str::from_utf8(b).map_err(|_| DecodeError {
            offset: start,
            reason: "string is not valid UTF-8",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_end_are_errors_not_panics() {
        let mut d = Decbuf::new(&[0x01, 0x02]);
        assert_eq!(d.be32().unwrap_err().reason, "unexpected end of data");
        assert_eq!(d.be16().unwrap(), 0x0102);
        assert!(d.u8().is_err());
        let mut d = Decbuf::new(&[0x80, 0x80]);
        assert!(d.uvarint().is_err());
        assert_eq!(d.position(), 0);
        let mut d = Decbuf::new(&[0xff; 11]);
        assert!(d.uvarint().is_err());
        let mut d = Decbuf::new(&[0x05, b'a']);
        assert!(d.uvarint_bytes().is_err());
        let mut d = Decbuf::new(&[0x02, 0xff, 0xfe]);
        assert_eq!(
            d.uvarint_str().unwrap_err().reason,
            "string is not valid UTF-8"
        );
    }

    #[test]
    fn ten_byte_varint_overflow_is_rejected() {
        let mut over = vec![0xffu8; 9];
        over.push(0x02);
        assert!(Decbuf::new(&over).uvarint().is_err());
        let mut max = vec![0xffu8; 9];
        max.push(0x01);
        assert_eq!(Decbuf::new(&max).uvarint().unwrap(), u64::MAX);
    }
}
