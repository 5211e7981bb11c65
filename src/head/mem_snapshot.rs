//! Memory snapshot on close (brief §1.13, §2.10; Prometheus `Head.ChunkSnapshot` and
//! `loadChunkSnapshot` in `tsdb/head_wal.go`, `tsdb/docs/format/memory_snapshot.md`).
//!
//! `chunk_snapshot.NNNNNN.MMMMMMMMMM/` is a WAL-format directory: one series record per series
//! (labels and the open head chunk), then one tombstones record. Its name is the WAL position
//! (last segment, byte offset) that it is complete up to. It is written after the WAL is
//! closed, so the position is the end of that segment, which no later open appends to (every
//! open starts a new segment). A snapshot is used only while that segment still exists with
//! exactly that size: otherwise (a checkpoint deleted it, it was repaired) it is ignored and
//! the WAL is replayed in full.

use std::path::{Path, PathBuf};

use super::Head;
use crate::chunkenc::XorAppender;
use crate::encoding::{put_uvarint, Decbuf, DecodeError};
use crate::error::{Error, IoContext, Result};
use crate::model::Labels;
use crate::tombstones::Tombstones;
use crate::wal::{self, Reader, Wal, WalOptions};

const PREFIX: &str = "chunk_snapshot.";
const REC_SERIES: u8 = 1;
const REC_TOMBSTONES: u8 = 2;

/// The directory name of a snapshot complete up to WAL `(segment, offset)`.
pub(crate) fn dir_name(segment: u32, offset: u64) -> String {
    format!("{PREFIX}{segment:06}.{offset:010}")
}

/// `(segment, offset)` of a snapshot directory name; `None` for other names (and `.tmp`).
fn parse_name(name: &str) -> Option<(u32, u64)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (seg, off) = rest.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(seg) || !digits(off) {
        return None;
    }
    Some((seg.parse().ok()?, off.parse().ok()?))
}

/// Snapshots in `dir` (complete ones), oldest first.
fn list(dir: &Path) -> Result<Vec<(u32, u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        if let Some((s, o)) = e.file_name().to_str().and_then(parse_name) {
            out.push((s, o, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes every snapshot in `dir`: when the head holds native histograms, which a snapshot
/// does not carry, no snapshot is written and an older one must not be restored instead of
/// the WAL that holds them.
pub(crate) fn remove_all(dir: &Path) -> Result<()> {
    for (_, _, p) in list(dir)? {
        crate::fs::remove_dir_all(&p).at(&p)?;
    }
    Ok(())
}

/// Deletes `chunk_snapshot.*.tmp` directories left by an interrupted snapshot (§1.1).
pub(crate) fn remove_tmp(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(".tmp") {
            crate::fs::remove_dir_all(e.path()).at(e.path())?;
        }
    }
    Ok(())
}

/// A series as the snapshot holds it.
pub(crate) struct SnapSeries {
    pub(crate) series_ref: u64,
    pub(crate) labels: Labels,
    /// The open chunk: min time, max time, appender continuing it, bits of the last value.
    pub(crate) open: Option<(i64, i64, XorAppender, u64)>,
}

/// A snapshot read back whole (nothing is applied until all of it decoded).
pub(crate) struct Snapshot {
    /// WAL position it is complete up to.
    pub(crate) segment: u32,
    pub(crate) offset: u64,
    pub(crate) series: Vec<SnapSeries>,
    pub(crate) tombstones: Tombstones,
}

/// Encodes one series record (§1.13): ref, labels, the unused chunk range, and the open chunk
/// with Prometheus's legacy 4-sample buffer of which only the last value is meaningful.
fn encode_series(
    b: &mut Vec<u8>,
    series_ref: u64,
    labels: &Labels,
    open: Option<(i64, i64, &[u8])>,
    last_v: u64,
) {
    b.push(REC_SERIES);
    b.extend_from_slice(&series_ref.to_be_bytes());
    wal::record::put_labels(b, labels);
    b.extend_from_slice(&0i64.to_be_bytes());
    match open {
        None => put_uvarint(b, 0),
        Some((min_t, max_t, bytes)) => {
            put_uvarint(b, 1);
            b.extend_from_slice(&min_t.to_be_bytes());
            b.extend_from_slice(&max_t.to_be_bytes());
            b.push(crate::chunkenc::Encoding::Xor.as_u8());
            put_uvarint(b, bytes.len() as u64);
            b.extend_from_slice(bytes);
            b.extend_from_slice(&[0; 7 * 8]);
            b.extend_from_slice(&last_v.to_be_bytes());
        }
    }
}

/// A series record of a memory snapshot, as [`decode_series_record`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotSeries {
    /// The head series ref.
    pub series_ref: u64,
    /// The series' labels.
    pub labels: Labels,
    /// Min and max time of its open chunk, checked against the chunk's own samples.
    pub open_chunk: Option<(i64, i64)>,
}

/// Decodes one series record of a memory snapshot (§1.13). Never panics on any input.
pub fn decode_series_record(rec: &[u8]) -> std::result::Result<SnapshotSeries, DecodeError> {
    decode_series(rec).map(|s| SnapshotSeries {
        series_ref: s.series_ref,
        labels: s.labels,
        open_chunk: s.open.map(|(min_t, max_t, _, _)| (min_t, max_t)),
    })
}

fn decode_series(rec: &[u8]) -> std::result::Result<SnapSeries, DecodeError> {
    let bad = |offset, reason| DecodeError { offset, reason };
    let mut d = Decbuf::new(rec);
    d.u8()?;
    let series_ref = d.be64()?;
    let labels = wal::record::decode_labels(&mut d)?;
    d.be64()?; // Former chunk range, always 0.
    let open = match d.uvarint()? {
        0 => None,
        1 => {
            let min_t = d.be64()? as i64;
            let max_t = d.be64()? as i64;
            let at = d.position();
            if d.u8()? != crate::chunkenc::Encoding::Xor.as_u8() {
                return Err(bad(at, "head chunk is not an XOR chunk"));
            }
            let at = d.position();
            let bytes = d.uvarint_bytes()?.to_vec();
            d.skip(7 * 8)?;
            let last_v = d.be64()?;
            let app = XorAppender::from_chunk(bytes).map_err(|e| bad(at + e.offset, e.reason))?;
            if app.first_time() != Some(min_t) || app.last_time() != Some(max_t) {
                return Err(bad(at, "head chunk times differ from the record's"));
            }
            Some((min_t, max_t, app, last_v))
        }
        _ => return Err(bad(d.position(), "head chunk flag is neither 0 nor 1")),
    };
    if !d.is_empty() {
        return Err(bad(d.position(), "bytes after the series record"));
    }
    Ok(SnapSeries {
        series_ref,
        labels,
        open,
    })
}

/// Writes the snapshot of `head` into `data_dir` for WAL position `(segment, offset)`: a
/// `.tmp` directory, fsynced, renamed into place; older snapshots are deleted afterwards.
/// The caller keeps commits out (the database is closing).
pub(crate) fn write(
    head: &Head,
    data_dir: &Path,
    segment: u32,
    offset: u64,
    compression: crate::wal::Compression,
) -> Result<PathBuf> {
    let name = dir_name(segment, offset);
    let dst = data_dir.join(&name);
    let tmp = data_dir.join(format!("{name}.tmp"));
    if tmp.exists() {
        crate::fs::remove_dir_all(&tmp).at(&tmp)?;
    }
    let res = (|| {
        let w = Wal::open(
            &tmp,
            WalOptions {
                compression,
                ..WalOptions::default()
            },
        )?;
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0;
        // No commit applies while the snapshot is read (and none can start: the database is
        // closing).
        let apply = head.locks.apply_read();
        let stones = head.tombstones.read().clone();
        for r in head.postings.read().all().to_vec() {
            let Some(s) = head.table.get(r) else { continue };
            let mut rec = Vec::new();
            {
                let data = s.data(&apply);
                let last_v = s.last_committed().map_or(0, |(_, v)| v);
                let open = data
                    .open
                    .as_ref()
                    .map(|o| (o.min_t, o.max_t, o.app.bytes()));
                encode_series(&mut rec, s.series_ref, &s.labels, open, last_v);
            }
            bytes += rec.len();
            batch.push(rec);
            if bytes >= 1 << 20 {
                let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                w.log(&refs)?;
                batch.clear();
                bytes = 0;
            }
        }
        // The tombstones file's version byte and entries, without magic and CRC.
        let mut body = Vec::new();
        stones.encode_body(&mut body);
        let mut rec = vec![REC_TOMBSTONES];
        put_uvarint(&mut rec, body.len() as u64);
        rec.extend_from_slice(&body);
        batch.push(rec);
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        w.log(&refs)?;
        w.close()?;
        crate::fs::sync_dir(&tmp)?;
        crate::fs::rename(&tmp, &dst).at(&dst)?;
        crate::fs::sync_dir(data_dir)
    })();
    if let Err(e) = res {
        let _ = crate::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    for (s, o, p) in list(data_dir)? {
        if (s, o) < (segment, offset) {
            crate::fs::remove_dir_all(&p).at(&p)?;
        }
    }
    Ok(dst)
}

/// Reads the newest snapshot in `data_dir` if it is usable with the WAL in `wal_dir`: `Ok(None)`
/// when there is none, `Err(reason)` when it is stale or damaged (the caller replays the WAL
/// in full and reports the reason).
pub(crate) fn load(
    data_dir: &Path,
    wal_dir: &Path,
) -> Result<std::result::Result<Option<Snapshot>, String>> {
    let Some((segment, offset, path)) = list(data_dir)?.pop() else {
        return Ok(Ok(None));
    };
    let seg_path = wal::segment_path(wal_dir, segment);
    match std::fs::metadata(&seg_path) {
        Ok(m) if m.len() == offset => {}
        Ok(m) => {
            return Ok(Err(format!(
                "{}: WAL segment {segment} is {} bytes, the snapshot covers {offset}",
                path.display(),
                m.len()
            )))
        }
        Err(_) => {
            return Ok(Err(format!(
                "{}: WAL segment {segment} no longer exists",
                path.display()
            )))
        }
    }
    let mut reader = match Reader::open_dir(&path, 0) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut snap = Snapshot {
        segment,
        offset,
        series: Vec::new(),
        tombstones: Tombstones::new(),
    };
    let mut seen = std::collections::HashSet::new();
    loop {
        let (rec, at) = match reader.next_record() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let file = wal::segment_path(&path, at.segment);
        let corrupt = |e: DecodeError| {
            Error::corruption(&file, at.offset, format!("snapshot record: {}", e.reason))
                .to_string()
        };
        match rec.first() {
            Some(&REC_SERIES) => {
                let s = match decode_series(rec) {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(corrupt(e))),
                };
                if s.series_ref == 0
                    || s.series_ref > super::table::MAX_REF
                    || !seen.insert(s.series_ref)
                {
                    return Ok(Err(corrupt(DecodeError {
                        offset: 1,
                        reason: "series ref is 0, too large or repeated",
                    })));
                }
                snap.series.push(s);
            }
            Some(&REC_TOMBSTONES) => {
                let mut d = Decbuf::new(&rec[1..]);
                let body = match d.uvarint_bytes() {
                    Ok(b) if d.is_empty() => b,
                    Ok(_) => {
                        return Ok(Err(corrupt(DecodeError {
                            offset: d.position(),
                            reason: "bytes after the tombstones",
                        })))
                    }
                    Err(e) => return Ok(Err(corrupt(e))),
                };
                match Tombstones::decode_body(body, &file, at.offset) {
                    Ok(t) => snap.tombstones = t,
                    Err(e) => return Ok(Err(e.to_string())),
                }
            }
            // Exemplars (3) and anything newer: not stored by this head.
            _ => {}
        }
    }
    Ok(Ok(Some(snap)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip_and_tmp_is_not_a_snapshot() {
        assert_eq!(dir_name(3, 360_448), "chunk_snapshot.000003.0000360448");
        assert_eq!(
            parse_name("chunk_snapshot.000003.0000360448"),
            Some((3, 360_448))
        );
        assert_eq!(parse_name("chunk_snapshot.000003.0000360448.tmp"), None);
        assert_eq!(parse_name("chunk_snapshot.x.1"), None);
    }

    #[test]
    fn series_records_round_trip() {
        let labels = Labels::new([("__name__", "up"), ("job", "a")]).unwrap();
        let mut app = XorAppender::new();
        for i in 0..50 {
            app.append(1000 + i * 15, i as f64 * 1.5);
        }
        let mut rec = Vec::new();
        encode_series(
            &mut rec,
            42,
            &labels,
            Some((1000, 1000 + 49 * 15, app.bytes())),
            73.5f64.to_bits(),
        );
        let s = decode_series(&rec).unwrap();
        assert_eq!((s.series_ref, &s.labels), (42, &labels));
        let (min_t, max_t, got, last_v) = s.open.unwrap();
        assert_eq!((min_t, max_t, last_v), (1000, 1735, 73.5f64.to_bits()));
        assert_eq!(got.bytes(), app.bytes());
        rec.clear();
        encode_series(&mut rec, 7, &labels, None, 0);
        assert!(decode_series(&rec).unwrap().open.is_none());
        // Times that disagree with the chunk are corruption.
        rec.clear();
        encode_series(&mut rec, 42, &labels, Some((999, 1735, app.bytes())), 0);
        assert!(decode_series(&rec).is_err());
    }

    #[test]
    fn prometheus_snapshot_decodes() {
        let data = &crate::testutil::fixture("prometheus-2.42-datadir");
        let snap = load(data, &data.join("wal")).unwrap().unwrap().unwrap();
        assert_eq!((snap.segment, snap.offset), (0, 360_448));
        assert_eq!(snap.series.len(), 336);
        assert!(snap.tombstones.is_empty());
        assert!(snap.series.iter().all(|s| s.open.is_some()));
        // The empty tombstones record is `02 01 01` (§1.13): what we write for none.
        let file = Tombstones::new().encode();
        let mut rec = vec![REC_TOMBSTONES];
        put_uvarint(&mut rec, (file.len() - 8) as u64);
        rec.extend_from_slice(&file[4..file.len() - 4]);
        assert_eq!(rec, [2, 1, 1]);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_series_records_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut rec = vec![REC_SERIES];
            rec.extend_from_slice(&b);
            let _ = decode_series(&rec);
        }
    }
}
