//! Golden tests: every XOR chunk real Prometheus 2.42 wrote into the fixtures decodes, and a
//! fresh [`XorAppender`] fed the decoded samples reproduces its bytes exactly.
//!
//! The file parsers here are deliberately small test-only readers of the containers (§1.4
//! block segments, §1.12 head chunks, §1.9/§1.13 the memory snapshot); they verify every CRC.

use super::{Encoding, XorAppender, XorIter};
use crate::encoding::{crc32c, Decbuf};
use crate::model::Sample;
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;

use crate::testutil::fixture;

/// The chunks of a block segment file (§1.4), CRC-checked, as `(offset, encoding, payload)`.
fn segment_chunks(path: &Path) -> Result<Vec<(usize, u8, Vec<u8>)>> {
    let file = std::fs::read(path).with_context(|| path.display().to_string())?;
    let mut d = Decbuf::new(&file);
    ensure!(d.be32()? == 0x85BD_40DD, "bad magic");
    ensure!(d.u8()? == 1, "bad version");
    d.skip(3)?;
    let mut out = Vec::new();
    while !d.is_empty() {
        let offset = d.position();
        let len = d.uvarint()? as usize;
        let enc_and_data = d.bytes(len + 1)?;
        let crc = d.be32()?;
        ensure!(crc32c(enc_and_data) == crc, "CRC mismatch at {offset}");
        out.push((offset, enc_and_data[0], enc_and_data[1..].to_vec()));
    }
    Ok(out)
}

/// A chunk of `chunks_head/` (§1.12).
struct HeadChunk {
    series_ref: u64,
    mint: i64,
    maxt: i64,
    encoding: u8,
    data: Vec<u8>,
}

/// The chunks of a head chunk file, CRC-checked, up to the all-zero end marker.
fn head_chunks(path: &Path) -> Result<Vec<HeadChunk>> {
    let file = std::fs::read(path).with_context(|| path.display().to_string())?;
    let mut d = Decbuf::new(&file);
    ensure!(d.be32()? == 0x0130_BC91, "bad magic");
    ensure!(d.u8()? == 1, "bad version");
    d.skip(3)?;
    let mut out = Vec::new();
    while d.remaining() >= 34 {
        let start = d.rest();
        let (series_ref, mint, maxt) = (d.be64()?, d.be64()? as i64, d.be64()? as i64);
        if series_ref == 0 && mint == 0 && maxt == 0 {
            ensure!(start.iter().all(|&b| b == 0), "data after the end marker");
            break;
        }
        let encoding = d.u8()?;
        let data = d.uvarint_bytes()?.to_vec();
        let covered = start.len() - d.remaining();
        ensure!(crc32c(&start[..covered]) == d.be32()?, "CRC mismatch");
        out.push(HeadChunk {
            series_ref,
            mint,
            maxt,
            encoding,
            data,
        });
    }
    Ok(out)
}

/// The records of a WAL-format segment (§1.9), reassembled and decompressed.
fn wal_records(path: &Path) -> Result<Vec<Vec<u8>>> {
    let file = std::fs::read(path).with_context(|| path.display().to_string())?;
    let mut records = Vec::new();
    let mut pending: Option<(Vec<u8>, bool)> = None;
    for page in file.chunks(32 * 1024) {
        let mut d = Decbuf::new(page);
        while d.remaining() >= 7 {
            let head = d.u8()?;
            if head == 0 {
                ensure!(d.rest().iter().all(|&b| b == 0), "non-zero page padding");
                break;
            }
            let len = d.be16()? as usize;
            let crc = d.be32()?;
            let frag = d.bytes(len)?;
            ensure!(crc32c(frag) == crc, "fragment CRC mismatch");
            let snappy = head & 0x08 != 0;
            let (buf, _) = pending.get_or_insert_with(|| (Vec::new(), snappy));
            buf.extend_from_slice(frag);
            match head & 0x07 {
                1 | 4 => {
                    let (rec, snappy) = pending.take().expect("fragment was just added");
                    records.push(if snappy {
                        snap::raw::Decoder::new().decompress_vec(&rec)?
                    } else {
                        rec
                    });
                }
                2 | 3 => {}
                t => bail!("fragment type {t}"),
            }
        }
    }
    ensure!(pending.is_none(), "torn last record");
    Ok(records)
}

/// The open head chunk of one memory-snapshot series record (§1.13).
struct SnapshotChunk {
    mint: i64,
    maxt: i64,
    data: Vec<u8>,
    last_value: f64,
}

fn snapshot_chunks(path: &Path) -> Result<Vec<SnapshotChunk>> {
    let mut out = Vec::new();
    for rec in wal_records(path)? {
        let mut d = Decbuf::new(&rec);
        if d.u8()? != 1 {
            continue; // tombstones, exemplars
        }
        d.be64()?;
        for _ in 0..2 * d.uvarint()? {
            d.uvarint_bytes()?;
        }
        d.be64()?;
        if d.uvarint()? == 0 {
            continue;
        }
        let (mint, maxt) = (d.be64()? as i64, d.be64()? as i64);
        ensure!(d.u8()? == Encoding::Xor.as_u8(), "not an XOR chunk");
        let data = d.uvarint_bytes()?.to_vec();
        d.skip(3 * 16 + 8)?;
        let last_value = f64::from_bits(d.be64()?);
        ensure!(d.is_empty(), "trailing bytes in series record");
        out.push(SnapshotChunk {
            mint,
            maxt,
            data,
            last_value,
        });
    }
    Ok(out)
}

/// Decodes a chunk completely, checking count and time order.
fn decode(data: &[u8]) -> Result<Vec<Sample>> {
    let it = XorIter::new(data);
    let n = it.num_samples() as usize;
    let samples = it.collect::<Result<Vec<_>, _>>()?;
    ensure!(
        samples.len() == n && n > 0,
        "count {n}, decoded {}",
        samples.len()
    );
    ensure!(samples.windows(2).all(|w| w[0].t < w[1].t), "time order");
    Ok(samples)
}

/// Appends `samples` to a fresh appender.
fn reencode(samples: &[Sample]) -> XorAppender {
    let mut app = XorAppender::new();
    for s in samples {
        app.append(s.t, s.v);
    }
    app
}

#[test]
fn node_exporter_blocks_decode_and_reencode_byte_identical() -> Result<()> {
    let mut total_samples = 0;
    let mut empty_byte_endings = 0;
    // (block, numSamples and numChunks of its meta.json)
    for (block, want_samples, want_chunks) in [
        ("01M8396A503TACQT84BKW870RK", 243_360, 2028),
        ("01M8396ANRP6M7K730VKK2CXKZ", 212_940, 2028),
    ] {
        let path = fixture(&format!("node-exporter-blocks/{block}/chunks/000001"));
        let chunks = segment_chunks(&path)?;
        assert_eq!(chunks.len(), want_chunks, "{block}");
        let mut block_samples = 0;
        for (offset, enc, data) in &chunks {
            assert_eq!(Encoding::from_u8(*enc), Some(Encoding::Xor));
            let samples = decode(data).with_context(|| format!("{block} chunk at {offset}"))?;
            block_samples += samples.len();
            let app = reencode(&samples);
            assert_eq!(app.bytes(), &data[..], "{block} chunk at {offset}");
            empty_byte_endings += app.ends_with_empty_byte() as usize;
        }
        assert_eq!(block_samples, want_samples, "{block}");
        total_samples += block_samples;
    }
    assert_eq!(total_samples, 456_300);
    // Real data exercises Prometheus's empty trailing byte.
    assert!(empty_byte_endings > 0);
    Ok(())
}

#[test]
fn promtool_block_holds_the_openmetrics_input() -> Result<()> {
    let chunks = segment_chunks(&fixture("promtool-2.42-block/chunks/000001"))?;
    // The input file, one line per sample: series, value, timestamp in seconds. Series are
    // written in label order, which is also the file's order.
    let om = std::fs::read_to_string(fixture("promtool-2.42-block.input.om"))?;
    let mut want: Vec<(String, Vec<Sample>)> = Vec::new();
    for line in om.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.rsplitn(3, ' ');
        let (ts, v, series) = (f.next(), f.next(), f.next());
        let (Some(ts), Some(v), Some(series)) = (ts, v, series) else {
            bail!("bad line {line}");
        };
        let s = Sample {
            t: ts.parse::<i64>()? * 1000,
            v: v.parse()?,
        };
        match want.last_mut() {
            Some((name, samples)) if name == series => samples.push(s),
            _ => want.push((series.to_string(), vec![s])),
        }
    }
    assert_eq!(want.len(), 3);
    assert_eq!(chunks.len(), want.len());
    for ((_, enc, data), (series, samples)) in chunks.iter().zip(&want) {
        assert_eq!(*enc, 1);
        assert_eq!(&decode(data)?, samples, "{series}");
        assert_eq!(reencode(samples).bytes(), &data[..], "{series}");
    }
    Ok(())
}

#[test]
fn head_chunks_decode_and_reencode_byte_identical() -> Result<()> {
    let chunks = head_chunks(&fixture("prometheus-2.42-datadir/chunks_head/000001"))?;
    assert_eq!(chunks.len(), 336);
    let mut total = 0;
    for c in &chunks {
        assert!(c.series_ref >= 1);
        // Bit 7 would flag an out-of-order chunk (§1.12); this data has none.
        assert_eq!(Encoding::from_u8(c.encoding), Some(Encoding::Xor));
        let samples = decode(&c.data)?;
        assert!(samples.len() <= 118);
        assert_eq!(samples[0].t, c.mint);
        assert_eq!(samples[samples.len() - 1].t, c.maxt);
        total += samples.len();
        // These chunks were cut and m-mapped by the head, which builds every chunk with a
        // fresh appender (a chunk loaded from a snapshot is never appended to in 2.42: the
        // head cuts a new one on the next sample), so the bytes are a fresh appender's.
        assert_eq!(
            reencode(&samples).bytes(),
            &c.data[..],
            "series {}",
            c.series_ref
        );
    }
    assert_eq!(total, 39_648);
    Ok(())
}

#[test]
fn snapshot_head_chunks_reencode_and_reopen() -> Result<()> {
    let dir = "prometheus-2.42-datadir/chunk_snapshot.000000.0000360448/00000000";
    let chunks = snapshot_chunks(&fixture(dir))?;
    assert_eq!(chunks.len(), 336);
    for c in &chunks {
        let samples = decode(&c.data)?;
        let last = samples[samples.len() - 1];
        assert_eq!((samples[0].t, last.t), (c.mint, c.maxt));
        assert_eq!(last.v.to_bits(), c.last_value.to_bits());
        assert_eq!(reencode(&samples).bytes(), &c.data[..]);

        // Re-opening an open chunk keeps its bytes and state; appending continues it.
        let mut app = XorAppender::from_chunk(c.data.clone())?;
        assert_eq!(app.bytes(), &c.data[..]);
        assert_eq!(app.first_time(), Some(c.mint));
        assert_eq!(app.last_time(), Some(c.maxt));
        let extra = [
            Sample {
                t: c.maxt + 15_000,
                v: last.v + 1.0,
            },
            Sample {
                t: c.maxt + 30_000,
                v: last.v,
            },
        ];
        for s in &extra {
            app.append(s.t, s.v);
        }
        let mut all = samples.clone();
        all.extend_from_slice(&extra);
        assert_eq!(decode(app.bytes())?, all);
    }
    Ok(())
}
