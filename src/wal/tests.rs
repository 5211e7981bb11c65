//! Tests across writer, reader and repair: round trips, Prometheus's repair cases, failure
//! handling and group commit.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Barrier};

use super::*;
use crate::error::Error;

const HDR: usize = FRAGMENT_HEADER_SIZE;

/// splitmix64: a deterministic generator for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize, compressible: bool) -> Vec<u8> {
        (0..n)
            .map(|i| {
                if compressible {
                    (i / 64) as u8
                } else {
                    self.next() as u8
                }
            })
            .collect()
    }
}

fn opts(pages: u64, compression: Compression) -> WalOptions {
    WalOptions {
        segment_size: pages * PAGE_SIZE as u64,
        compression,
    }
}

fn read_dir_records(dir: &Path) -> Result<Vec<(Vec<u8>, Position)>, Error> {
    read_dir_damage(dir).map_err(|(e, _)| e)
}

/// Records read, or the error that stopped the reader and where the damage is.
type Damaged<T> = Result<T, (Error, Option<Position>)>;

/// As [`read_dir_records`], with the position of the damage that stopped the reader.
fn read_dir_damage(dir: &Path) -> Damaged<Vec<(Vec<u8>, Position)>> {
    let mut r = Reader::open_dir(dir, 0).map_err(|e| (e, None))?;
    let mut out = Vec::new();
    loop {
        match r.next_record() {
            Ok(Some((rec, pos))) => out.push((rec.to_vec(), pos)),
            Ok(None) => return Ok(out),
            Err(e) => return Err((e, r.damage())),
        }
    }
}

/// Prometheus `TestReaderFuzz`: random records from 0 bytes to several pages, randomly
/// batched, across many segments of a tiny segment size, with and without compression.
#[test]
fn random_records_round_trip() {
    for compression in [Compression::None, Compression::Snappy] {
        for seed in 0..4u64 {
            let d = tempfile::tempdir().unwrap();
            let w = Wal::open(d.path(), opts(4, compression)).unwrap();
            let mut rng = Rng(seed);
            let mut want = Vec::new();
            let mut batch: Vec<Vec<u8>> = Vec::new();
            let mut last_pos = 0;
            for i in 0..300 {
                let max = match i % 5 {
                    0 | 1 => 50,
                    2 | 3 => PAGE_SIZE as u64,
                    _ => 8 * PAGE_SIZE as u64,
                };
                let (len, compressible) = (rng.below(max) as usize, rng.below(2) == 0);
                let rec = rng.bytes(len, compressible);
                want.push(rec.clone());
                batch.push(rec);
                if rng.below(4) < 3 {
                    let refs: Vec<&[u8]> = batch.iter().map(|r| r.as_slice()).collect();
                    let pos = w.log(&refs).unwrap();
                    assert!(pos > last_pos);
                    last_pos = pos;
                    batch.clear();
                }
            }
            let refs: Vec<&[u8]> = batch.iter().map(|r| r.as_slice()).collect();
            w.log(&refs).unwrap();
            let stats = w.stats();
            assert_eq!(stats.records, 300);
            if compression == Compression::Snappy {
                assert!(stats.records_compressed > 50, "{stats:?}");
            } else {
                assert_eq!(stats.records_compressed, 0);
            }
            w.close().unwrap();
            let got = read_dir_records(d.path()).unwrap();
            assert_eq!(got.len(), want.len());
            for (i, ((g, _), w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g == w,
                    "record {i} differs ({} vs {} bytes)",
                    g.len(),
                    w.len()
                );
            }
            // Positions grow; records never span segments, so every segment reads alone.
            assert!(got.windows(2).all(|p| p[0].1 < p[1].1));
            let (first, last) = segment_range(d.path()).unwrap().unwrap();
            assert!(
                last - first > 5,
                "expected many segments, got {first}..={last}"
            );
            let mut n = 0;
            for i in first..=last {
                let mut r = Reader::open_range(d.path(), i, Some(i)).unwrap();
                while r.next_record().unwrap().is_some() {
                    n += 1;
                }
                let len = fs::metadata(segment_path(d.path(), i)).unwrap().len();
                assert_eq!(len % PAGE_SIZE as u64, 0, "segment {i} is padded");
            }
            assert_eq!(n, want.len());
        }
    }
}

#[test]
fn record_larger_than_a_segment_gets_its_own_segment() {
    let d = tempfile::tempdir().unwrap();
    let w = Wal::open(d.path(), opts(2, Compression::None)).unwrap();
    let big = vec![7u8; 5 * PAGE_SIZE];
    w.log(&[b"small"]).unwrap();
    w.log(&[&big]).unwrap();
    w.log(&[b"after"]).unwrap();
    w.close().unwrap();
    let got = read_dir_records(d.path()).unwrap();
    let segs: Vec<u32> = got.iter().map(|g| g.1.segment).collect();
    assert_eq!(segs, [0, 1, 2]);
    assert_eq!(got[1].0, big);
    assert!(fs::metadata(segment_path(d.path(), 1)).unwrap().len() > 2 * PAGE_SIZE as u64);
}

#[test]
fn open_starts_a_new_segment_and_close_pads() {
    let d = tempfile::tempdir().unwrap();
    let w = Wal::open(d.path(), opts(4, Compression::Snappy)).unwrap();
    assert_eq!(w.current_segment(), 0);
    let pos = w.log(&[b"abc", b""]).unwrap();
    assert_eq!(pos, (2 * HDR + 3) as u64, "partial page written at once");
    assert_eq!(
        fs::metadata(segment_path(d.path(), 0)).unwrap().len(),
        pos,
        "log() wrote everything"
    );
    assert_eq!(
        w.segment_position(),
        Position {
            segment: 0,
            offset: pos
        }
    );
    // One write(2) per log() call, also for a batch that fills several pages.
    let writes = w.stats().writes;
    let big = vec![1u8; 20_000];
    w.log(&[&big, &big, &big]).unwrap();
    assert_eq!(w.stats().writes, writes + 1);
    assert_eq!(w.cut_segment().unwrap(), 1);
    assert_eq!(
        fs::metadata(segment_path(d.path(), 0)).unwrap().len(),
        PAGE_SIZE as u64
    );
    w.log(&[b"x"]).unwrap();
    w.close().unwrap();
    w.close().unwrap();
    assert!(matches!(w.log(&[b"y"]), Err(Error::Closed(_))));
    assert!(matches!(w.cut_segment(), Err(Error::Closed(_))));
    assert_eq!(
        fs::metadata(segment_path(d.path(), 1)).unwrap().len(),
        PAGE_SIZE as u64
    );
    let w = Wal::open(d.path(), opts(4, Compression::Snappy)).unwrap();
    assert_eq!(w.current_segment(), 2);
    drop(w);
    let got = read_dir_records(d.path()).unwrap();
    let recs: Vec<&[u8]> = got.iter().map(|g| g.0.as_slice()).collect();
    assert_eq!(recs, [&b"abc"[..], b"", &big, &big, &big, b"x"]);
}

#[test]
fn invalid_segment_size_is_rejected() {
    let d = tempfile::tempdir().unwrap();
    for size in [0, 1000, PAGE_SIZE as u64 + 1] {
        let o = WalOptions {
            segment_size: size,
            compression: Compression::None,
        };
        assert!(matches!(
            Wal::open(d.path(), o),
            Err(Error::InvalidArgument(_))
        ));
    }
}

/// Writes Prometheus's repair-test WAL: 3 segments of 3 pages, 9 page-sized records.
fn nine_page_records(dir: &Path) -> Vec<Vec<u8>> {
    let w = Wal::open(dir, opts(3, Compression::None)).unwrap();
    let mut recs = Vec::new();
    for i in 1..=9u8 {
        let mut b = vec![0u8; PAGE_SIZE - HDR];
        b[0] = i;
        w.log(&[&b]).unwrap();
        recs.push(b);
    }
    assert_eq!(segment_range(dir).unwrap(), Some((0, 2)));
    w.close().unwrap();
    recs
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

/// Reads the WAL segment by segment as a replay would, repairing at the first corruption.
fn read_and_repair(dir: &Path) -> Option<RepairReport> {
    let (first, last) = segment_range(dir).unwrap().unwrap();
    for i in first..=last {
        let mut r = Reader::open_range(dir, i, Some(i)).unwrap();
        loop {
            match r.next_record() {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    let at = r.damage().unwrap_or_else(|| panic!("not damage: {e}"));
                    assert_eq!(at.segment, i);
                    return Some(repair(dir, at).unwrap());
                }
            }
        }
    }
    None
}

/// Prometheus `TestWALRepair_ReadingError`: every corruption kind is found and repaired.
#[test]
fn repair_reading_errors() {
    let p = PAGE_SIZE as u64;
    let cases: [(&str, u32, u64, &[u8], usize); 7] = [
        ("torn_last_record", 2, 2 * p, &[2], 8),
        ("bad_header", 1, p, &[0], 4),
        ("bad_fragment_sequence", 1, p, &[4], 4),
        ("bad_fragment_flag", 1, p, &[123], 4),
        ("bad_checksum", 1, p + 4, &[0], 4),
        ("bad_length", 1, p + 2, &[0], 4),
        ("bad_content", 1, p + 100, b"beef", 4),
    ];
    for (name, seg, off, bytes, intact) in cases {
        let d = tempfile::tempdir().unwrap();
        let recs = nine_page_records(d.path());
        write_at(&segment_path(d.path(), seg), off, bytes);

        let report = read_and_repair(d.path()).unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(report.segment, seg, "{name}");
        assert_eq!(report.records_kept, intact - 3 * seg as usize, "{name}");
        let want_deleted: Vec<u32> = (seg + 1..=2).collect();
        assert_eq!(report.segments_deleted, want_deleted, "{name}");

        // The writer continues with an empty segment right after the repaired one.
        let w = Wal::open(d.path(), opts(3, Compression::None)).unwrap();
        assert_eq!(w.current_segment(), seg + 1, "{name}");
        let next = segment_path(d.path(), seg + 1);
        assert_eq!(fs::metadata(&next).unwrap().len(), 0, "{name}");
        drop(w);

        let got = read_dir_records(d.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.len(), intact, "{name}");
        for (i, (g, _)) in got.iter().enumerate() {
            assert!(*g == recs[i], "{name}: record {i} differs");
        }
    }
}

/// Prometheus `TestCorruptAndCarryOn`: a segment truncated mid-record is repaired and
/// writing carries on; everything before the damage and after the repair is readable.
#[test]
fn corrupt_and_carry_on() {
    let d = tempfile::tempdir().unwrap();
    let rec_size = PAGE_SIZE / 3 - HDR;
    let mut rng = Rng(7);
    let mut want = Vec::new();
    {
        let w = Wal::open(d.path(), opts(3, Compression::None)).unwrap();
        for _ in 0..18 {
            let b = rng.bytes(rec_size, false);
            w.log(&[&b]).unwrap();
            want.push(b);
        }
        w.close().unwrap();
    }
    for i in 0..=1 {
        let len = fs::metadata(segment_path(d.path(), i)).unwrap().len();
        assert_eq!(len, 3 * PAGE_SIZE as u64);
    }
    let seg0 = segment_path(d.path(), 0);
    OpenOptions::new()
        .write(true)
        .open(&seg0)
        .unwrap()
        .set_len(3 * PAGE_SIZE as u64 / 2)
        .unwrap();

    let mut r = Reader::open_dir(d.path(), 0).unwrap();
    for _ in 0..4 {
        assert_eq!(r.next_record().unwrap().unwrap().0.len(), rec_size);
    }
    r.next_record().unwrap_err();
    let at = r.damage().unwrap();
    assert_eq!(at.segment, 0);
    let report = repair(d.path(), at).unwrap();
    assert_eq!(report.records_kept, 4);
    assert_eq!(report.segments_deleted, [1]);

    let w = Wal::open(d.path(), opts(3, Compression::None)).unwrap();
    assert_eq!(w.current_segment(), 1);
    for _ in 0..5 {
        let b = rng.bytes(rec_size, false);
        w.log(&[&b]).unwrap();
        want.push(b);
    }
    w.close().unwrap();
    let got = read_dir_records(d.path()).unwrap();
    assert_eq!(got.len(), 9);
    let expect: Vec<&Vec<u8>> = want[..4].iter().chain(&want[18..]).collect();
    for (g, w) in got.iter().zip(expect) {
        assert!(&g.0 == w);
    }
}

#[test]
fn zero_tail_and_truncated_partial_page() {
    let d = tempfile::tempdir().unwrap();
    let w = Wal::open(d.path(), opts(8, Compression::None)).unwrap();
    let end_first = w.log(&[b"one", b"two"]).unwrap();
    w.log(&[&[5u8; 40_000]]).unwrap();
    drop(w); // no close: the last page stays partial, like after a crash
    let seg = segment_path(d.path(), 0);
    let len = fs::metadata(&seg).unwrap().len();
    assert_ne!(len % PAGE_SIZE as u64, 0);

    // A zero-filled tail (preallocation, or zeroed blocks after a crash) reads cleanly.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len + 3 * PAGE_SIZE as u64)
        .unwrap();
    assert_eq!(read_dir_records(d.path()).unwrap().len(), 3);

    // Cut inside the multi-page record: torn, and repair keeps the first two.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let (e, at) = read_dir_damage(d.path()).unwrap_err();
    assert!(e.to_string().contains("torn"), "{e}");
    let at = at.unwrap();
    assert_eq!(at.offset, PAGE_SIZE as u64, "at the torn fragment");
    let rep = repair(d.path(), at).unwrap();
    assert_eq!((rep.records_kept, rep.truncated_at), (2, end_first));
    assert_eq!(rep.bytes_dropped, len - 100 - end_first);
    assert_eq!(fs::metadata(&seg).unwrap().len(), PAGE_SIZE as u64);
    let got = read_dir_records(d.path()).unwrap();
    assert_eq!(got.len(), 2);

    // Cut exactly at a record boundary mid-page: a clean end.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(end_first)
        .unwrap();
    assert_eq!(read_dir_records(d.path()).unwrap().len(), 2);
}

#[test]
fn failed_write_poisons_the_wal_until_repaired() {
    let d = tempfile::tempdir().unwrap();
    let w = Wal::open(d.path(), opts(4, Compression::None)).unwrap();
    let good = w.log(&[b"first record"]).unwrap();
    w.fail_writes_after(5);
    let e = w.log(&[b"second record, torn"]).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    let e = w.log(&[b"third"]).unwrap_err();
    assert!(e.to_string().contains("refuses writes"), "{e}");
    assert!(w.sync_to(good).is_err());
    assert!(w.close().is_err());
    drop(w);

    // The segment ends in a partial fragment: reading finds it, repair removes it.
    let (_, at) = read_dir_damage(d.path()).unwrap_err();
    let at = at.unwrap();
    assert_eq!(at.offset, good);
    repair(d.path(), at).unwrap();
    let w = Wal::open(d.path(), opts(4, Compression::None)).unwrap();
    w.log(&[b"after repair"]).unwrap();
    w.close().unwrap();
    let got: Vec<Vec<u8>> = read_dir_records(d.path())
        .unwrap()
        .into_iter()
        .map(|g| g.0)
        .collect();
    assert_eq!(got, [b"first record".to_vec(), b"after repair".to_vec()]);
}

#[test]
fn covered_positions_do_not_fsync_again() {
    let d = tempfile::tempdir().unwrap();
    let w = Wal::open(d.path(), opts(4, Compression::None)).unwrap();
    let a = w.log(&[b"a"]).unwrap();
    let b = w.log(&[b"b"]).unwrap();
    w.sync_to(b).unwrap();
    assert_eq!(w.stats().fsyncs, 1);
    w.sync_to(a).unwrap();
    w.sync_to(b).unwrap();
    assert_eq!(w.stats().fsyncs, 1, "positions already covered");
    assert!(matches!(w.sync_to(b + 1), Err(Error::InvalidArgument(_))));
    // Cutting a segment fsyncs the finished one.
    let before = w.stats().fsyncs;
    w.cut_segment().unwrap();
    assert_eq!(w.stats().fsyncs, before + 1);
}

#[test]
fn concurrent_syncs_share_one_fsync() {
    let d = tempfile::tempdir().unwrap();
    let w = Arc::new(Wal::open(d.path(), opts(4, Compression::Snappy)).unwrap());
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (w, barrier) = (w.clone(), barrier.clone());
            std::thread::spawn(move || {
                let pos = w.log(&[format!("record {i}").as_bytes()]).unwrap();
                // Everyone has logged before anyone syncs: the first leader's fsync covers
                // all positions, so nobody else may fsync.
                barrier.wait();
                w.sync_to(pos).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(w.stats().fsyncs, 1);
}

#[test]
fn group_commit_under_contention() {
    let d = tempfile::tempdir().unwrap();
    let w = Arc::new(Wal::open(d.path(), opts(2, Compression::Snappy)).unwrap());
    let threads = 6;
    let per_thread = 200;
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let w = w.clone();
            std::thread::spawn(move || {
                let mut max = 0;
                for j in 0..per_thread {
                    let rec = vec![(i * 31 + j) as u8; 300 + j];
                    let pos = w.log(&[&rec]).unwrap();
                    w.sync_to(pos).unwrap();
                    max = max.max(pos);
                }
                max
            })
        })
        .collect();
    let max = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap();
    let stats = w.stats();
    // Each sync_to covered its position, and nothing fsynced more than once per call plus
    // once per finished segment.
    let segments = u64::from(w.current_segment()) + 1;
    assert!(
        stats.fsyncs <= (threads * per_thread) as u64 + segments,
        "{stats:?}"
    );
    assert!(max <= stats.bytes_written);
    println!(
        "group commit: {} sync_to calls, {} fsyncs",
        threads * per_thread,
        stats.fsyncs
    );
    w.close().unwrap();
    assert_eq!(
        read_dir_records(d.path()).unwrap().len(),
        threads * per_thread
    );
}

/// The reader reports damage as a position in the numbering of its own sources, and not
/// for I/O errors.
#[test]
fn damage_is_reported_as_a_position() {
    let d = tempfile::tempdir().unwrap();
    let w = Wal::open(d.path(), opts(4, Compression::None)).unwrap();
    w.log(&[b"one"]).unwrap();
    w.cut_segment().unwrap();
    w.log(&[b"two"]).unwrap();
    w.log(&[b"three"]).unwrap();
    w.close().unwrap();
    let seg = segment_path(d.path(), 1);
    let mut b = fs::read(&seg).unwrap();
    // "three" starts after "two"'s 7-byte header and 3-byte payload.
    let second = 7 + 3;
    b[second as usize + 8] ^= 1;
    fs::write(&seg, b).unwrap();
    let (e, at) = read_dir_damage(d.path()).unwrap_err();
    assert!(matches!(e, Error::Corruption { .. }), "{e}");
    assert_eq!(
        at,
        Some(Position {
            segment: 1,
            offset: second
        })
    );
    fs::remove_file(&seg).unwrap();
    let mut r = Reader::from_segments(vec![(1, seg)]);
    assert!(matches!(r.next_record(), Err(Error::Io { .. })));
    assert_eq!(r.damage(), None);
}

/// A reader resumes where an earlier one ended, and follows the live segment of an open WAL:
/// records logged after it reached the end are read on later calls; a segment cut later is
/// read by a reader opened at its start.
#[test]
fn readers_resume_at_a_position_and_follow_a_live_segment() {
    let d = tempfile::tempdir().unwrap();
    let w = Wal::open(d.path(), opts(4, Compression::Snappy)).unwrap();
    w.log(&[b"one"]).unwrap();
    w.log(&[b"two"]).unwrap();
    let mut first = Reader::open_dir(d.path(), 0).unwrap();
    assert_eq!(first.next_record().unwrap().unwrap().0, b"one");
    let at = first.end_position();
    let mut r = Reader::open_at(d.path(), at).unwrap().follow();
    assert_eq!(r.end_position(), at);
    let (rec, pos) = r.next_record().unwrap().unwrap();
    assert_eq!((rec, pos), (&b"two"[..], at));
    assert!(r.next_record().unwrap().is_none());
    let big = vec![7u8; 3 * PAGE_SIZE];
    w.log(&[b"three", &big]).unwrap();
    assert_eq!(r.next_record().unwrap().unwrap().0, b"three");
    assert_eq!(r.next_record().unwrap().unwrap().0, &big[..]);
    assert!(r.next_record().unwrap().is_none());
    // The segment is complete once the next exists; the tailer reads it to its end, then
    // moves on.
    w.log(&[b"last of 0"]).unwrap();
    let next = w.cut_segment().unwrap();
    w.log(&[b"first of 1"]).unwrap();
    assert_eq!(r.next_record().unwrap().unwrap().0, b"last of 0");
    assert!(r.next_record().unwrap().is_none());
    let mut r = Reader::open_at(
        d.path(),
        Position {
            segment: next,
            offset: 0,
        },
    )
    .unwrap()
    .follow();
    assert_eq!(r.next_record().unwrap().unwrap().0, b"first of 1");
    assert!(r.next_record().unwrap().is_none());
    w.close().unwrap();
    // A position in a segment a checkpoint removed starts at the next one.
    fs::remove_file(segment_path(d.path(), 0)).unwrap();
    let mut r = Reader::open_at(d.path(), at).unwrap();
    assert_eq!(r.next_record().unwrap().unwrap().0, b"first of 1");
}

#[test]
fn defaults_match_prometheus() {
    let o = WalOptions::default();
    assert_eq!(o.segment_size, 128 << 20);
    assert_eq!(o.compression, Compression::Snappy);
}

fn fixture_wal() -> std::path::PathBuf {
    crate::testutil::fixture("prometheus-2.42-datadir/wal")
}

/// Golden: the snappy WAL a real Prometheus 2.42 server wrote (§1.10 "Decoded real data").
#[test]
fn decodes_prometheus_2_42_wal() {
    let mut r = Reader::open_dir(&fixture_wal(), 0).unwrap();
    let mut types = Vec::new();
    let mut declared = std::collections::BTreeSet::new();
    let (mut series, mut samples) = (Vec::new(), Vec::new());
    let mut total_samples = 0;
    let mut records = Vec::new();
    while let Some((rec, pos)) = r.next_record().unwrap() {
        records.push(rec.to_vec());
        types.push(record_type(rec));
        match record_type(rec) {
            RecordType::Series => {
                series.clear();
                decode_series(rec, &mut series).unwrap();
                if types.len() == 1 {
                    assert_eq!(
                        pos,
                        Position {
                            segment: 0,
                            offset: 0
                        }
                    );
                    assert_eq!(series.len(), 298);
                    assert_eq!(series[0].series_ref, 1);
                    assert_eq!(
                        series[0].labels.to_string(),
                        r#"{__name__="go_gc_duration_seconds", instance="127.0.0.1:19091", job="self", quantile="0"}"#
                    );
                } else {
                    assert_eq!(series.len(), 38);
                    assert_eq!(series[0].series_ref, 299);
                    assert_eq!(
                        series[0].labels.get("__name__"),
                        Some("prometheus_http_request_duration_seconds_bucket")
                    );
                }
                for s in &series {
                    assert!(
                        declared.insert(s.series_ref),
                        "ref {} declared twice",
                        s.series_ref
                    );
                }
            }
            RecordType::Samples => {
                samples.clear();
                decode_samples(rec, &mut samples).unwrap();
                total_samples += samples.len();
                assert!(samples.iter().all(|s| declared.contains(&s.series_ref)));
                let t0 = samples[0].t;
                assert!(
                    samples.iter().all(|s| s.t == t0),
                    "one timestamp per scrape"
                );
                if types.len() == 2 {
                    assert_eq!(t0, 1_795_405_906_035);
                    let mut refs: Vec<u64> = samples.iter().map(|s| s.series_ref).collect();
                    refs.sort_unstable();
                    assert_eq!(refs, (1..=298).collect::<Vec<u64>>());
                } else {
                    assert_eq!(samples.len(), 336);
                }
            }
            t => panic!("unexpected record type {t:?}"),
        }
    }
    assert_eq!(types.len(), 202);
    assert_eq!(
        types[..3],
        [RecordType::Series, RecordType::Samples, RecordType::Series]
    );
    assert_eq!(declared, (1..=336).collect());
    assert_eq!(total_samples, 298 + 199 * 336);
    // The server was closed: the last page is zero-padded, 11 pages in all.
    assert_eq!(
        r.end_position(),
        Position {
            segment: 0,
            offset: 359_968
        }
    );
    let fixture = fs::read(fixture_wal().join("00000000")).unwrap();
    assert_eq!(fixture.len(), 11 * PAGE_SIZE);

    // Logging the same records through our writer reproduces Prometheus's file byte for byte:
    // page layout, fragment headers, compression decisions and snappy output.
    let d = tempfile::tempdir().unwrap();
    let w = Wal::open(d.path(), WalOptions::default()).unwrap();
    for rec in &records {
        w.log(&[rec]).unwrap();
    }
    w.close().unwrap();
    let ours = fs::read(segment_path(d.path(), 0)).unwrap();
    assert_eq!(ours.len(), fixture.len());
    let first_diff = ours.iter().zip(&fixture).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "first differing byte");
}

/// The record with sequence number `seq` of the crash test: self-describing, so a reader can
/// check every record it gets back.
fn crash_record(seq: u64) -> Vec<u8> {
    let mut rng = Rng(seq);
    let len = 8 + rng.below(6000) as usize;
    let mut rec = rng.bytes(len, seq.is_multiple_of(3));
    rec[..8].copy_from_slice(&seq.to_be_bytes());
    rec
}

const CRASH_CHILD_ENV: &str = "ANNALS_WAL_CRASH_CHILD";

/// Crash safety through real process death: a child process logs records until it is killed
/// with SIGKILL at some point; the WAL is then read back (repairing a torn tail if the kill
/// interrupted a write) and must hold an unbroken prefix of the records, every one intact,
/// including every record whose `log()` had returned.
#[test]
fn survives_kill_9_of_the_writer() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    if let Some(dir) = std::env::var_os(CRASH_CHILD_ENV) {
        let w = Wal::open(Path::new(&dir), opts(4, Compression::Snappy)).unwrap();
        for seq in 0..200_000u64 {
            w.log(&[&crash_record(seq)]).unwrap();
            if seq == 300 {
                println!("logged {seq}");
            }
        }
        return;
    }
    for (round, delay_ms) in [0u64, 2, 10].into_iter().enumerate() {
        let d = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "wal::tests::survives_kill_9_of_the_writer",
                "--nocapture",
            ])
            .env(CRASH_CHILD_ENV, d.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(lines.any(|l| l.unwrap().starts_with("logged 300")));
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();

        if let Err((e, at)) = read_dir_damage(d.path()) {
            let at = at.unwrap_or_else(|| panic!("{e}"));
            let last = segment_range(d.path()).unwrap().unwrap().1;
            assert_eq!(
                at.segment, last,
                "round {round}: damage only at the tail: {e}"
            );
            repair(d.path(), at).unwrap();
        }
        let got = read_dir_records(d.path()).unwrap();
        assert!(got.len() > 300, "round {round}: {} records", got.len());
        for (seq, (rec, _)) in got.iter().enumerate() {
            assert!(
                *rec == crash_record(seq as u64),
                "round {round}: record {seq}"
            );
        }
        // The repaired WAL takes new writes.
        let w = Wal::open(d.path(), opts(4, Compression::Snappy)).unwrap();
        w.log(&[b"after the crash"]).unwrap();
        w.close().unwrap();
        assert_eq!(read_dir_records(d.path()).unwrap().len(), got.len() + 1);
    }
}

#[test]
fn open_without_segments_continues_after_the_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(checkpoint_dir(d.path(), 6)).unwrap();
    let w = Wal::open(d.path(), WalOptions::default()).unwrap();
    assert_eq!(w.current_segment(), 7);
}
