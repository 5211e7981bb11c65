//! The head chunk file decoder (`chunks_head/NNNNNN`, brief §1.12) on arbitrary bytes: it
//! must never panic, every chunk it returns must lie inside the input, and the XOR decoder
//! must not panic on any returned payload.
//!
//! First byte: bit 0 asks to recompute the entry CRCs first (walking entries as the decoder
//! does), so that mutations reach the checks behind the CRC.
//!
//! Seed corpus: the fixture `prometheus-2.42-datadir/chunks_head/000001`, prefixed with 0x00
//! and with 0x01.
#![no_main]

use std::path::Path;

use annals::unstable::chunkenc::XorIter;
use annals::unstable::head_chunks::decode_file;
use libfuzzer_sys::fuzz_target;

/// Rewrites each entry's CRC over its bytes, as long as entries can be delimited.
fn fix_crcs(b: &mut [u8]) {
    let mut pos = 8usize;
    loop {
        let Some(hdr) = pos.checked_add(25) else {
            return;
        };
        let mut len = 0u64;
        let mut p = hdr;
        let mut ok = false;
        for i in 0..5 {
            let Some(&c) = b.get(hdr + i) else { return };
            len |= u64::from(c & 0x7f) << (7 * i);
            if c < 0x80 {
                p = hdr + i + 1;
                ok = true;
                break;
            }
        }
        if !ok {
            return;
        }
        let Some(end) = usize::try_from(len).ok().and_then(|l| p.checked_add(l)) else {
            return;
        };
        let Some(entry) = b.get(pos..end) else { return };
        let crc = annals::unstable::encoding::crc32c(entry);
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
    let mut b = rest.to_vec();
    if ctl & 1 != 0 {
        fix_crcs(&mut b);
    }
    if let Ok(chunks) = decode_file(&b, 1, Path::new("000001")) {
        for c in chunks {
            let payload = b
                .get(c.data.clone())
                .expect("chunk payload inside the file");
            assert!(c.min_time <= c.max_time);
            assert_eq!(c.chunk_ref >> 32, 1);
            for s in XorIter::new(payload) {
                if s.is_err() {
                    break;
                }
            }
        }
    }
});
