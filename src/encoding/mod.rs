//! Primitive encodings shared by every on-disk format (format brief §1.0): Go-compatible
//! varints, big-endian integers, CRC-32C, and a bounds-checked decode buffer.
//!
//! Nothing here does I/O and nothing here panics on any input.

mod decbuf;
mod varint;

pub use decbuf::{Decbuf, DecodeError};
pub use varint::{put_uvarint, put_varint, uvarint_len, zigzag_decode, zigzag_encode};

/// CRC-32C (Castagnoli) of `data`, the checksum of every Prometheus format (§1.0).
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continues a CRC-32C computation over more bytes.
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// Appends a Prometheus string: uvarint byte length, then the bytes.
#[inline]
pub fn put_string(buf: &mut Vec<u8>, s: &[u8]) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C (§1.0).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c_append(crc32c(b"1234"), b"56789"), 0xE306_9283);
    }
}
