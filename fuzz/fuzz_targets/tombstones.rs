//! The tombstones file decoder (brief §1.8) on arbitrary bytes: it never panics; what it
//! accepts is a valid tombstone set (intervals sorted, disjoint, non-adjacent, non-empty) that
//! encodes to bytes decoding to the same set; every error is a `Corruption` naming the file
//! at an offset inside the input.
//!
//! First byte: bit 0 set recomputes the CRC before decoding, so that mutations reach the
//! entries behind it.
//!
//! Seed corpus: the fixture `tombstones` files and one with entries, each prefixed by 0x01.
#![no_main]

use std::path::Path;

use annals::unstable::tombstones::Tombstones;
use annals::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mut b = rest.to_vec();
    if ctl & 1 == 1 && b.len() >= 9 {
        let at = b.len() - 4;
        let crc = annals::unstable::encoding::crc32c(&b[5..at]);
        b[at..].copy_from_slice(&crc.to_be_bytes());
    }
    let file = Path::new("tombstones");
    match Tombstones::decode(&b, file) {
        Ok(t) => {
            let mut total = 0u64;
            for (_, ivs) in t.iter() {
                let s = ivs.as_slice();
                assert!(!s.is_empty(), "a series without intervals is not kept");
                for iv in s {
                    assert!(iv.min_time <= iv.max_time, "empty interval kept: {iv:?}");
                }
                for w in s.windows(2) {
                    assert!(
                        w[0].max_time < w[1].min_time.saturating_sub(1),
                        "intervals overlap or touch: {w:?}"
                    );
                }
                total += s.len() as u64;
            }
            assert_eq!(t.total(), total);
            let enc = t.encode();
            let again = Tombstones::decode(&enc, file).expect("re-encoded tombstones decode");
            assert_eq!(again, t);
            assert_eq!(again.encode(), enc, "encoding is canonical");
        }
        Err(Error::Corruption {
            file: f, offset, ..
        }) => {
            assert_eq!(f, file);
            assert!(offset.is_some_and(|o| o <= b.len() as u64), "{offset:?}");
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
});
