//! Head chunk files (`chunks_head/`, brief §1.12): what reopening, damage, head compaction and
//! queries racing truncation do with them.

use crate::support::{on_path, KillOnDrop};
use std::path::{Path, PathBuf};

use annals::{Db, Labels, Options, WalSync};

use crate::support::{self, dump, Dump};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000;

fn opts() -> Options {
    let mut o = Options::default();
    o.wal_sync = WalSync::Never;
    o.compaction = false;
    o.retention_ms = None;
    // These tests are about chunks_head/ and the WAL; snapshots are tested below.
    o.snapshot_on_close = false;
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
    let after: Dump = support::read_set(set)
        .into_iter()
        .map(|(l, v)| (l.to_string(), v))
        .collect();
    assert_eq!(after, before);
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

// ---- memory snapshot on close (§1.13, §2.10) --------------------------------------------------

fn snapshots(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("chunk_snapshot."))
        .collect();
    v.sort();
    v
}

fn snapshot_opts() -> Options {
    let mut o = opts();
    o.snapshot_on_close = true;
    o
}

#[test]
fn a_snapshot_restores_the_head_without_reading_the_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), snapshot_opts()).unwrap();
    scrape(&db, 30, T0, T0 + 3 * HOUR);
    db.delete(
        T0 + HOUR,
        T0 + HOUR + 60_000,
        &[annals::Matcher::equal("i", "3")],
    )
    .unwrap();
    let before = dump(&db, &[]);
    db.close().unwrap();
    let snaps = snapshots(tmp.path());
    assert_eq!(snaps.len(), 1, "{snaps:?}");

    let db = Db::open(tmp.path(), snapshot_opts()).unwrap();
    let stats = db.replay_stats().unwrap().clone();
    assert!(stats.snapshot.is_some(), "{stats:?}");
    assert_eq!(stats.snapshot_series, 30);
    assert_eq!(stats.records, 0, "nothing after the snapshot: {stats:?}");
    assert_eq!(stats.tombstones, 1);
    assert_eq!(
        stats.mmapped_samples + stats.samples_in_snapshot,
        30 * 720_u64
    );
    assert_eq!(dump(&db, &[]), before);
    // The restored open chunks continue, and the last sample is known for validation.
    let l = Labels::new([("__name__", "m"), ("i", "5")]).unwrap();
    let last = *before[&l.to_string()].last().unwrap();
    let mut app = db.appender();
    app.append(None, &l, last.0, f64::from_bits(last.1))
        .unwrap();
    assert!(app.append(None, &l, last.0, 0.5).is_err());
    drop(app);
    scrape(&db, 30, T0 + 3 * HOUR, T0 + 4 * HOUR);
    let before = dump(&db, &[]);
    // Dropped without close: no new snapshot, so the old one plus the WAL after it.
    drop(db);
    assert_eq!(snapshots(tmp.path()), snaps);
    let db = Db::open(tmp.path(), snapshot_opts()).unwrap();
    let stats = db.replay_stats().unwrap().clone();
    assert!(stats.snapshot.is_some() && stats.records > 0, "{stats:?}");
    assert_eq!(dump(&db, &[]), before);
    db.close().unwrap();
    // A new snapshot replaces the old one.
    let now = snapshots(tmp.path());
    assert_eq!(now.len(), 1);
    assert_ne!(now, snaps);
}

#[test]
fn stale_or_damaged_snapshots_are_ignored_and_the_wal_replayed() {
    type Damage = fn(&Path, &str);
    let cases: [(&str, Damage); 3] = [
        ("bit flip", |d, snap| {
            let p = d.join(snap).join("00000000");
            let mut b = std::fs::read(&p).unwrap();
            b[100] ^= 0x01;
            std::fs::write(&p, b).unwrap();
        }),
        ("WAL segment gone", |d, snap| {
            // As after a checkpoint folded the snapshot's segment in.
            let seg: u32 = snap[15..21].parse().unwrap();
            std::fs::remove_file(d.join(format!("wal/{seg:08}"))).unwrap();
        }),
        ("WAL segment of another size", |d, snap| {
            let seg: u32 = snap[15..21].parse().unwrap();
            let p = d.join(format!("wal/{seg:08}"));
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() - 32 * 1024]).unwrap();
        }),
    ];
    for (what, damage) in cases {
        let tmp = tempfile::tempdir().unwrap();
        // Two sessions: the second one's segment is the snapshot's.
        for k in 0..2 {
            let db = Db::open(tmp.path(), snapshot_opts()).unwrap();
            scrape(&db, 10, T0 + k * HOUR, T0 + (k + 1) * HOUR);
            db.close().unwrap();
        }
        let snap = snapshots(tmp.path()).pop().unwrap();
        let db = Db::open_read_only(tmp.path(), opts()).unwrap();
        let full = dump(&db, &[]);
        drop(db);
        damage(tmp.path(), &snap);
        let db = Db::open(tmp.path(), opts()).unwrap();
        let stats = db.replay_stats().unwrap().clone();
        assert!(stats.snapshot.is_none(), "{what}: {stats:?}");
        assert!(stats.snapshot_ignored.is_some(), "{what}");
        let got = dump(&db, &[]);
        if what == "bit flip" {
            assert_eq!(got, full, "{what}");
        } else {
            // The WAL lost data here; what is left is still consistent (a prefix per series).
            for (k, v) in &got {
                assert!(full[k].starts_with(v), "{what}");
            }
        }
    }
}

/// The snapshot holds only open chunks and relies on `chunks_head/` for the closed ones, and
/// the WAL before its segment is not replayed: when a chunk file turns out damaged at open,
/// the snapshot is ignored and the whole WAL (which still holds those samples) replayed.
#[test]
fn a_snapshot_is_ignored_when_head_chunk_files_are_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    for k in 0..2 {
        let db = Db::open(tmp.path(), snapshot_opts()).unwrap();
        scrape(&db, 10, T0 + k * HOUR, T0 + (k + 1) * HOUR);
        db.close().unwrap();
    }
    assert_eq!(snapshots(tmp.path()).len(), 1);
    let db = Db::open_read_only(tmp.path(), snapshot_opts()).unwrap();
    assert!(db.replay_stats().unwrap().snapshot.is_some());
    let full = dump(&db, &[]);
    drop(db);
    let p = tmp.path().join("chunks_head/000001");
    let mut b = std::fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(&p, b).unwrap();
    let db = Db::open(tmp.path(), snapshot_opts()).unwrap();
    let stats = db.replay_stats().unwrap().clone();
    assert!(stats.chunk_files_repair.is_some(), "{stats:?}");
    assert!(stats.snapshot.is_none(), "{stats:?}");
    assert!(stats.snapshot_ignored.is_some(), "{stats:?}");
    assert_eq!(dump(&db, &[]), full);
}

#[test]
fn annals_restores_the_memory_snapshot_prometheus_wrote() {
    let Some(pt) = crate::promtool::promtool() else {
        return;
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/prometheus-2.42/prometheus-2.42-datadir");
    let ours = tempfile::tempdir().unwrap();
    crate::promtool::copy_dir(&fixture, ours.path());
    let theirs = tempfile::tempdir().unwrap();
    crate::promtool::copy_dir(&fixture, theirs.path());
    let db = Db::open(ours.path(), snapshot_opts()).unwrap();
    let stats = db.replay_stats().unwrap().clone();
    // §1.13: 336 series records, segment 0 up to 360448 bytes (the whole segment).
    assert_eq!(stats.snapshot, Some((0, 360_448)), "{stats:?}");
    assert_eq!(stats.snapshot_series, 336);
    assert_eq!(stats.mmapped_chunks, 336);
    assert_eq!(stats.records, 0);
    let got = dump(&db, &[]);
    let lines = crate::promtool::dump(&pt, theirs.path(), &[]);
    // promtool 2.42 prints some samples of this directory twice (with the WAL alone too):
    // compare distinct timestamps.
    let mut want: std::collections::BTreeMap<String, std::collections::BTreeMap<i64, u64>> =
        Default::default();
    for line in &lines {
        let (series, v, t) = crate::promtool::parse_dump_line(line);
        want.entry(series).or_default().insert(t, v.to_bits());
    }
    let want: Dump = want
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect();
    assert_eq!(got.len(), want.len());
    for (k, v) in &want {
        let g = &got[k];
        assert_eq!(g.len(), v.len(), "{k}");
        for (a, b) in g.iter().zip(v) {
            assert_eq!(a.0, b.0, "{k}");
            let (x, y) = (f64::from_bits(a.1), f64::from_bits(b.1));
            assert!(x == y || (x.is_nan() && y.is_nan()), "{k} at {}", a.0);
        }
    }
}

#[test]
fn prometheus_serves_an_annals_directory_from_its_snapshot_and_chunk_files() {
    let (Some(prometheus), Some(curl)) = (on_path("prometheus"), on_path("curl")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let db = Db::open(&data, snapshot_opts()).unwrap();
    scrape(&db, 20, T0, T0 + 3 * HOUR);
    let before = dump(&db, &[]);
    db.close().unwrap();
    assert_eq!(snapshots(&data).len(), 1);
    assert!(!chunk_files(&data).is_empty());
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1h\nscrape_configs: []\n",
    )
    .unwrap();
    let port = crate::support::free_port();
    let log = std::fs::File::create(tmp.path().join("prometheus.log")).unwrap();
    let _server = KillOnDrop(
        std::process::Command::new(prometheus)
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y")
            .arg("--enable-feature=memory-snapshot-on-shutdown")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let get = |path: &str| -> Option<String> {
        let out = std::process::Command::new(&curl)
            .args(["-sf", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    };
    let ready = (0..600).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        get("/-/ready").is_some()
    });
    let log = std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap();
    assert!(ready, "prometheus did not start: {log}");
    assert!(log.contains("chunk snapshot loaded"), "{log}");
    // Every sample, and the newest value of one series, as Prometheus serves them.
    let end = (T0 + 3 * HOUR) / 1000;
    let total = get(&format!(
        "/api/v1/query?query=sum(count_over_time(m%5B4h%5D))&time={end}"
    ))
    .unwrap();
    let want: usize = before.values().map(Vec::len).sum();
    assert!(total.contains(&format!("\"{want}\"")), "{total}");
    let l = Labels::new([("__name__", "m"), ("i", "7")]).unwrap();
    let (t, v) = *before[&l.to_string()].last().unwrap();
    let at = get(&format!(
        "/api/v1/query?query=m%7Bi%3D%227%22%7D&time={}",
        t / 1000
    ))
    .unwrap();
    assert!(at.contains(&format!("\"{}\"", f64::from_bits(v))), "{at}");
}
