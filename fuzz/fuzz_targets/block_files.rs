//! The block file decoders other than the index on arbitrary bytes: chunk segments (open, every
//! chunk by walking and by refs taken from the input), tombstones, and meta.json. None may
//! panic.
//!
//! First byte: `b % 3` picks the decoder (0 chunk segment, 1 tombstones, 2 meta.json); bit 7
//! asks to recompute the checksums first (every chunk CRC while walking the segment, the
//! tombstones CRC) so that mutations reach the decoding behind them.
//!
//! Seed corpus: the fixture `chunks/000001`, `tombstones` and `meta.json` files, each prefixed
//! with the byte selecting its decoder (0x80, 0x81, 0x02).
#![no_main]

use std::path::{Path, PathBuf};

use annals::unstable::block::{chunks, Meta};
use annals::unstable::tombstones::Tombstones;
use libfuzzer_sys::fuzz_target;

fn fix_chunk_crcs(b: &mut [u8]) {
    let mut pos = 8usize;
    while pos < b.len() {
        let mut len = 0u64;
        let mut p = pos;
        let mut ok = false;
        for i in 0..10 {
            let Some(&c) = b.get(pos + i) else { return };
            len |= u64::from(c & 0x7f) << (7 * i);
            if c < 0x80 {
                p = pos + i + 1;
                ok = true;
                break;
            }
        }
        if !ok {
            return;
        }
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| p.checked_add(1)?.checked_add(l))
        else {
            return;
        };
        let Some(s) = b.get(p..end) else { return };
        let crc = annals::unstable::encoding::crc32c(s);
        let Some(dst) = end.checked_add(4).and_then(|e| b.get_mut(end..e)) else {
            return;
        };
        dst.copy_from_slice(&crc.to_be_bytes());
        pos = end + 4;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let fix = ctl & 0x80 != 0;
    let mut b = rest.to_vec();
    match ctl % 3 {
        0 => {
            if fix {
                fix_chunk_crcs(&mut b);
            }
            let refs: Vec<u64> = rest
                .chunks_exact(8)
                .take(8)
                .map(|w| u64::from_be_bytes(w.try_into().expect("8 bytes")))
                .collect();
            let Ok(r) = chunks::Reader::from_segments(vec![(PathBuf::from("000001"), b)]) else {
                return;
            };
            for c in r.segment_chunks(0) {
                if let Ok((_, c)) = c {
                    let _ = c.num_samples();
                }
            }
            for x in refs {
                let _ = r.chunk(x);
                let _ = r.chunk(x & 0xffff);
            }
        }
        1 => {
            if fix && b.len() >= 9 {
                let at = b.len() - 4;
                let crc = annals::unstable::encoding::crc32c(&b[5..at]);
                b[at..].copy_from_slice(&crc.to_be_bytes());
            }
            if let Ok(t) = Tombstones::decode(&b, Path::new("tombstones")) {
                // What decodes must encode and decode to the same.
                let again = Tombstones::decode(&t.encode(), Path::new("tombstones"))
                    .expect("re-encoded tombstones decode");
                assert_eq!(again, t);
            }
        }
        _ => {
            if let Ok(m) = Meta::from_json_any_version(&b, Path::new("meta.json")) {
                // What parses must serialize and parse to the same.
                let again = Meta::from_json_any_version(&m.to_json(), Path::new("meta.json"))
                    .expect("re-serialized meta parses");
                assert_eq!(again, m);
            }
        }
    }
});
