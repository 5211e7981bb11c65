//! The WAL reader over arbitrary bytes as one segment file: it must never panic, and every
//! error must be a typed corruption (or unsupported-compression) error with an offset
//! inside the input.
//!
//! The first input byte selects a mode: with its low bit set, the CRCs of the fragments are
//! fixed up before reading, so that mutations reach the fragment-sequence, padding and
//! decompression rules instead of stopping at the first checksum.
#![no_main]

use annals::unstable::encoding::crc32c;
use annals::unstable::wal::Reader;
use annals::Error;
use libfuzzer_sys::fuzz_target;

const PAGE: usize = 32 * 1024;

fn fix_crcs(b: &mut [u8]) {
    let mut off = 0;
    while off + 7 <= b.len() {
        if b[off] & 7 == 0 {
            off = (off / PAGE + 1) * PAGE;
            continue;
        }
        let len = u16::from_be_bytes([b[off + 1], b[off + 2]]) as usize;
        let end = off + 7 + len;
        if end > b.len() {
            return;
        }
        let crc = crc32c(&b[off + 7..end]);
        b[off + 3..off + 7].copy_from_slice(&crc.to_be_bytes());
        off = end;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        fix_crcs(&mut bytes);
    }
    let len = bytes.len() as u64;
    let mut r = Reader::from_bytes("fuzz/00000000", 0, bytes);
    let mut last_end = 0;
    loop {
        match r.next_record() {
            Ok(Some((_rec, pos))) => {
                assert_eq!(pos.segment, 0);
                assert!(pos.offset < len);
                let end = r.end_position().offset;
                assert!(end > pos.offset && end <= len && pos.offset >= last_end);
                last_end = end;
            }
            Ok(None) => break,
            Err(Error::Corruption {
                offset: Some(o), ..
            })
            | Err(Error::Unsupported {
                offset: Some(o), ..
            }) => {
                assert!(o < len.max(1));
                break;
            }
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
});
