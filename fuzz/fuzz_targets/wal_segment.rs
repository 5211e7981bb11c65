//! The WAL reader over arbitrary bytes as one segment file: it must never panic, and every
//! error must be a typed corruption (or unsupported-compression) error with an offset
//! inside the input.
#![no_main]

use annals::wal::Reader;
use annals::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let mut r = Reader::from_bytes("fuzz/00000000", 0, data.to_vec());
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
            Err(Error::Corruption { offset: Some(o), .. })
            | Err(Error::Unsupported { offset: Some(o), .. }) => {
                assert!(o < len.max(1));
                break;
            }
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
});
