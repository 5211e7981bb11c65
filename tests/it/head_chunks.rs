//! Head chunk files (`chunks_head/`, brief §1.12): what reopening, damage, head compaction and
//! queries racing truncation do with them.

use std::path::{Path, PathBuf};

use annals::{Db, Labels, Options, WalSync};

use crate::support::{dump, Dump};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000;

fn opts() -> Options {
    let mut o = Options::default();
    o.wal_sync = WalSync::Never;
    o.compaction = false;
    o.retention_ms = None;
    o
}

/// `series` series scraped every 15 s over `[from, to)`, one commit per scrape.
fn scrape(db: &Db, series: usize, from: i64, to: i64) {
    let labels: Vec<Labels> = (0..series)
        .map(|i| Labels::new([("__name__", "m"), ("i", &i.to_string())]).unwrap())
        .collect();
    let mut refs = vec![None; series];
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            let v = (t / 1000) as f64 * 0.25 + i as f64;
            refs[i] = Some(app.append(refs[i], l, t, v).unwrap());
        }
        app.commit().unwrap();
        t += 15_000;
    }
}

fn chunk_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("chunks_head"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Three restarts' worth of data: chunk files 000001..000003, each with chunks of 30 series.
fn three_sessions(dir: &Path) -> Dump {
    for k in 0..3 {
        let db = Db::open(dir, opts()).unwrap();
        scrape(&db, 30, T0 + k * HOUR, T0 + (k + 1) * HOUR);
        db.close().unwrap();
    }
    let files = chunk_files(dir);
    assert_eq!(files.len(), 3, "{files:?}");
    let db = Db::open_read_only(dir, opts()).unwrap();
    dump(&db, &[])
}

#[test]
fn reopen_uses_the_chunk_files_and_the_wal_for_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let before = three_sessions(tmp.path());
    let db = Db::open(tmp.path(), opts()).unwrap();
    let stats = db.replay_stats().unwrap().clone();
    // 3 hours of 15 s scrapes = 720 samples per series, in chunks of 120.
    assert!(stats.mmapped_chunks >= 30 * 5, "{stats:?}");
    assert_eq!(stats.samples + stats.samples_in_mmapped_chunks, 30 * 720);
    assert_eq!(stats.samples_dropped, 0);
    assert!(stats.chunk_files_repair.is_none());
    assert_eq!(dump(&db, &[]), before);
    // Appends continue after the m-mapped chunks' last sample, and duplicates of it are
    // recognised as such.
    let l = Labels::new([("__name__", "m"), ("i", "0")]).unwrap();
    let last = before[&l.to_string()].last().copied().unwrap();
    let mut app = db.appender();
    app.append(None, &l, last.0, f64::from_bits(last.1))
        .unwrap();
    assert!(app.append(None, &l, last.0, 12345.0).is_err());
    app.append(None, &l, last.0 + 15_000, 1.0).unwrap();
    app.commit().unwrap();
}

#[test]
fn damaged_chunk_files_fall_back_to_the_wal_and_lose_nothing() {
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 3] = [
        ("bit flip in the middle file", |d| {
            let p = d.join("chunks_head/000002");
            let mut b = std::fs::read(&p).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0x10;
            std::fs::write(&p, b).unwrap();
        }),
        ("torn last file", |d| {
            let p = d.join("chunks_head/000003");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() - 7]).unwrap();
        }),
        ("first file without magic", |d| {
            let p = d.join("chunks_head/000001");
            let mut b = std::fs::read(&p).unwrap();
            b[..4].copy_from_slice(b"nope");
            std::fs::write(&p, b).unwrap();
        }),
    ];
    for (what, damage) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let before = three_sessions(tmp.path());
        damage(tmp.path());
        // Read-only: the damage is reported and left in place.
        let ro = Db::open_read_only(tmp.path(), opts()).unwrap();
        assert!(
            ro.replay_stats().unwrap().chunk_files_repair.is_some(),
            "{what}"
        );
        assert_eq!(dump(&ro, &[]), before, "{what}");
        drop(ro);
        assert_eq!(chunk_files(tmp.path()).len(), 3, "{what}");

        let db = Db::open(tmp.path(), opts()).unwrap();
        let stats = db.replay_stats().unwrap().clone();
        let (_, deleted) = stats.chunk_files_repair.clone().expect(what);
        assert!(!deleted.is_empty(), "{what}");
        assert_eq!(
            stats.samples + stats.samples_in_mmapped_chunks,
            30 * 720,
            "{what}: {stats:?}"
        );
        assert_eq!(dump(&db, &[]), before, "{what}");
        db.close().unwrap();
        // The repaired directory is consistent: the next open finds no damage.
        let db = Db::open(tmp.path(), opts()).unwrap();
        assert!(
            db.replay_stats().unwrap().chunk_files_repair.is_none(),
            "{what}"
        );
        assert_eq!(dump(&db, &[]), before, "{what}");
    }
}

fn collect(set: annals::SeriesSet) -> Dump {
    set.map(|s| {
        let v = s
            .to_vec()
            .unwrap()
            .iter()
            .map(|x| (x.t, x.v.to_bits()))
            .collect();
        (s.labels().to_string(), v)
    })
    .collect()
}

#[test]
fn head_compaction_deletes_the_files_it_persisted_and_queries_keep_reading_them() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    scrape(&db, 20, T0, T0 + 7 * HOUR);
    let before = dump(&db, &[]);
    let stats = db.compact().unwrap();
    assert!(!stats.head_blocks.is_empty(), "{stats:?}");
    assert_eq!(dump(&db, &[]), before);
    // File 1 still holds chunks the head needs; the truncation cut file 2 for new chunks.
    let first = tmp.path().join("chunks_head/000001");
    let second = tmp.path().join("chunks_head/000002");
    assert_eq!(chunk_files(tmp.path()), vec![first.clone(), second.clone()]);
    scrape(&db, 20, T0 + 7 * HOUR, T0 + 12 * HOUR);
    let before = dump(&db, &[]);
    // A query selected before the compaction that persists every chunk of file 1, and
    // iterated after that file is deleted.
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let set = q.select(&[]).unwrap();
    db.compact().unwrap();
    assert!(!first.exists());
    assert!(
        second.exists(),
        "it holds chunks past the new head min time"
    );
    assert_eq!(collect(set), before);
    assert_eq!(dump(&db, &[]), before);
    db.close().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    let stats = db.replay_stats().unwrap().clone();
    assert!(stats.chunk_files_repair.is_none(), "{stats:?}");
    assert!(stats.mmapped_chunks > 0, "{stats:?}");
    assert_eq!(dump(&db, &[]), before);
}

#[test]
fn in_memory_databases_keep_chunks_on_the_heap() {
    let db = Db::open_in_memory(opts()).unwrap();
    scrape(&db, 5, T0, T0 + 3 * HOUR);
    let (chunk_bytes, _) = db.head_data_bytes();
    assert!(chunk_bytes > 5 * 720, "{chunk_bytes}");
    let d = dump(&db, &[]);
    assert_eq!(d.values().map(Vec::len).sum::<usize>(), 5 * 720);
}
