//! Opens an index from arbitrary bytes and walks everything it offers: symbols, label names
//! and values, postings, series. The reader must return errors, never panic.
//!
//! The first byte is a control byte: when its low bit is set, the CRCs of the TOC, the symbol
//! table, the postings offset table, the postings lists it names and the series entries are
//! recomputed first, so that mutations reach the decoders behind the checksums.
//!
//! Seed corpus: `mkdir -p corpus/index_reader && for f in ../../shared/fixtures/prometheus-2.42/{promtool-2.42-block,node-exporter-blocks/*}/index; do (printf '\001'; cat $f) > corpus/index_reader/$(echo $f | md5sum | cut -c1-8); done`
#![no_main]

use annals::unstable::index::Reader;
use libfuzzer_sys::fuzz_target;

fn crc32c(b: &[u8]) -> u32 {
    annals::unstable::encoding::crc32c(b)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn uvarint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for i in 0..10 {
        let c = *b.get(at.checked_add(i)?)?;
        x |= u64::from(c & 0x7f) << (7 * i);
        if c < 0x80 {
            return Some((x, at + i + 1));
        }
    }
    None
}

/// Rewrites the CRC of the `len ‖ body ‖ crc` section at `off`; returns the body range.
fn fix_section(b: &mut [u8], off: usize) -> Option<(usize, usize)> {
    let len = be32(b, off)? as usize;
    let body = off.checked_add(4)?;
    let end = body.checked_add(len)?;
    let crc = crc32c(b.get(body..end)?);
    b.get_mut(end..end.checked_add(4)?)?
        .copy_from_slice(&crc.to_be_bytes());
    Some((body, end))
}

fn fix_crcs(b: &mut [u8]) -> Option<()> {
    let toc = b.len().checked_sub(52)?;
    let crc = crc32c(&b[toc..toc + 48]);
    b[toc + 48..].copy_from_slice(&crc.to_be_bytes());
    let field = |i: usize| be64(b, toc + 8 * i).and_then(|v| usize::try_from(v).ok());
    let (symbols, series, label_indices, postings_table) =
        (field(0)?, field(1)?, field(2)?, field(5)?);
    let _ = fix_section(b, symbols);
    // Series entries: 16-aligned from TOC.series up to the label indices.
    let mut pos = series;
    while pos < label_indices.min(toc) {
        pos = pos.next_multiple_of(16);
        let Some((len, body)) = uvarint(b, pos) else {
            break;
        };
        let Some(end) = body.checked_add(len as usize) else {
            break;
        };
        let Some(s) = b.get(body..end) else { break };
        let crc = crc32c(s);
        let Some(dst) = end.checked_add(4).and_then(|e| b.get_mut(end..e)) else {
            break;
        };
        dst.copy_from_slice(&crc.to_be_bytes());
        pos = end + 4;
    }
    // The postings offset table, then every list it names.
    let (body, end) = fix_section(b, postings_table)?;
    let count = be32(b, body)?;
    let mut pos = body + 4;
    for _ in 0..count {
        let (_, p) = uvarint(b, pos)?;
        let (n, p) = uvarint(b, p)?;
        let (v, p) = uvarint(b, p.checked_add(n as usize)?)?;
        let (off, p) = uvarint(b, p.checked_add(v as usize)?)?;
        if p > end {
            break;
        }
        let _ = fix_section(b, usize::try_from(off).ok()?);
        pos = p;
    }
    let _ = fix_section(b, postings_table);
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if ctl & 1 == 1 {
        let _ = fix_crcs(&mut bytes);
    }
    let Ok(r) = Reader::from_vec(bytes, "fuzz/index") else {
        return;
    };
    for s in r.symbols() {
        if s.is_err() {
            break;
        }
    }
    for i in 0..r.num_symbols().min(100) {
        let _ = r.symbol(i);
    }
    let _ = r.symbol(u32::MAX);
    for name in r.label_names() {
        if let Ok(values) = r.label_values(name) {
            for v in values.iter().take(200) {
                let _ = r.postings(name, v);
            }
        }
        for probe in ["", "0", "zzzz", "\u{10ffff}"] {
            let _ = r.postings(name, probe);
        }
    }
    let _ = r.postings("", "x");
    let _ = r.postings("\u{10ffff}", "");
    if let Ok(all) = r.all_postings() {
        for sref in all.into_iter().take(500) {
            let _ = r.series(sref);
        }
    }
    for w in rest.chunks_exact(4).take(8) {
        let x = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
        let _ = r.series(x);
        let _ = r.series(x % 64);
    }
});
