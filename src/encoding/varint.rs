//! Go `encoding/binary` varints: unsigned LEB128 and zig-zag signed (§1.0).

/// Appends `v` as a Go uvarint (1 to 10 bytes).
#[inline]
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends `v` as a Go zig-zag varint (the same bytes as protobuf `sint64`).
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, zigzag_encode(v));
}

/// Number of bytes `put_uvarint` writes for `v`.
#[inline]
pub fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Zig-zag maps signed to unsigned so that small magnitudes stay small.
#[inline]
pub fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag_encode`].
#[inline]
pub fn zigzag_decode(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::Decbuf;

    #[test]
    fn known_encodings_match_go() {
        let mut b = Vec::new();
        put_uvarint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
        b.clear();
        put_varint(&mut b, -1);
        assert_eq!(b, [0x01]);
        b.clear();
        put_varint(&mut b, 1);
        assert_eq!(b, [0x02]);
        b.clear();
        put_uvarint(&mut b, u64::MAX);
        assert_eq!(b.len(), 10);
        assert_eq!(uvarint_len(u64::MAX), 10);
        assert_eq!(uvarint_len(0), 1);
        assert_eq!(uvarint_len(127), 1);
        assert_eq!(uvarint_len(128), 2);
    }

    #[test]
    fn round_trip_extremes() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            i64::MAX,
            i64::MIN,
            1_700_000_000_000,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut d = Decbuf::new(&b);
            assert_eq!(d.varint().unwrap(), v);
            assert!(d.is_empty());
        }
    }

    proptest::proptest! {
        #[test]
        fn uvarint_round_trips(v: u64) {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            proptest::prop_assert_eq!(b.len(), uvarint_len(v));
            let mut d = Decbuf::new(&b);
            proptest::prop_assert_eq!(d.uvarint().unwrap(), v);
        }

        #[test]
        fn varint_round_trips(v: i64) {
            proptest::prop_assert_eq!(zigzag_decode(zigzag_encode(v)), v);
        }
    }
}
