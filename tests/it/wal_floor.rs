//! The WAL retention floor (`Db::set_wal_retention_floor`): head compaction's WAL truncation
//! keeps the segments a WAL reader still needs, within `Options::wal_retention_floor_max_lag_ms`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use annals::unstable::wal::{self, RecordType, RefSample, RefSeries};
use annals::{Db, Labels, Options, WalSync};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000;

fn opts() -> Options {
    let mut o = Options::default();
    o.wal_sync = WalSync::Never;
    o.compaction = false;
    o.snapshot_on_close = false;
    o.wal_segment_size = 32 * 1024;
    o.retention_ms = None;
    o
}

/// Scrapes every 15 s over `[from, to)`: 10 stable series and 10 that are replaced every
/// hour (so head truncation drops series whose samples are still in the WAL). Returns the
/// samples appended, by series labels.
fn scrape(db: &Db, from: i64, to: i64) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for i in 0..20 {
            let gen = if i < 10 { 0 } else { t / HOUR };
            let l = Labels::new([
                ("__name__", "m"),
                ("i", &i.to_string()),
                ("gen", &gen.to_string()),
            ])
            .unwrap();
            app.append(None, &l, t, i as f64).unwrap();
            out.entry(l.to_string()).or_default().push(t);
        }
        app.commit().unwrap();
        t += 15_000;
    }
    out
}

fn merge(a: &mut BTreeMap<String, Vec<i64>>, b: BTreeMap<String, Vec<i64>>) {
    for (k, v) in b {
        a.entry(k).or_default().extend(v);
    }
}

/// What a WAL reader finds: the samples of segments `from` and later, by series labels (a
/// series record in the last checkpoint or any segment resolves a ref), and how many
/// samples had a ref no series record names.
fn read_wal(dir: &Path, from: u32) -> (BTreeMap<String, Vec<i64>>, usize) {
    let wal_dir = dir.join("wal");
    let mut names: BTreeMap<u64, String> = BTreeMap::new();
    let mut series: Vec<RefSeries> = Vec::new();
    let mut samples: Vec<RefSample> = Vec::new();
    let mut pending: Vec<RefSample> = Vec::new();
    if let Some((cp, _)) = wal::last_checkpoint(&wal_dir).unwrap() {
        let mut r = wal::Reader::open_dir(&cp, 0).unwrap();
        while let Some((rec, _)) = r.next_record().unwrap() {
            if wal::record_type(rec) == RecordType::Series {
                series.clear();
                wal::decode_series(rec, &mut series).unwrap();
                for s in &series {
                    names.insert(s.series_ref, s.labels.to_string());
                }
            }
        }
    }
    let mut r = wal::Reader::open_dir(&wal_dir, 0).unwrap();
    while let Some((rec, pos)) = r.next_record().unwrap() {
        match wal::record_type(rec) {
            RecordType::Series => {
                series.clear();
                wal::decode_series(rec, &mut series).unwrap();
                for s in &series {
                    names.insert(s.series_ref, s.labels.to_string());
                }
            }
            RecordType::Samples if pos.segment >= from => {
                samples.clear();
                wal::decode_samples(rec, &mut samples).unwrap();
                pending.extend_from_slice(&samples);
            }
            _ => {}
        }
    }
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut unresolved = 0;
    for s in pending {
        match names.get(&s.series_ref) {
            Some(n) => out.entry(n.clone()).or_default().push(s.t),
            None => unresolved += 1,
        }
    }
    (out, unresolved)
}

/// The samples at or after `from`.
fn since(m: BTreeMap<String, Vec<i64>>, from: i64) -> BTreeMap<String, Vec<i64>> {
    m.into_iter()
        .map(|(k, v)| (k, v.into_iter().filter(|&t| t >= from).collect::<Vec<_>>()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn segments(dir: &Path) -> (u32, u32) {
    wal::segment_range(&dir.join("wal")).unwrap().unwrap()
}

#[test]
fn without_a_floor_truncation_deletes_old_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    scrape(&db, T0, T0 + 3 * HOUR);
    let (_, mark) = segments(tmp.path());
    scrape(&db, T0 + 3 * HOUR, T0 + 9 * HOUR);
    let stats = db.compact().unwrap();
    assert!(!stats.checkpoints.is_empty(), "{stats:?}");
    assert!(stats.wal_segments_past_floor.is_empty());
    let (first, _) = segments(tmp.path());
    assert!(
        first > mark,
        "segment {mark} was truncated away: first is {first}"
    );
}

#[test]
fn a_floor_keeps_every_sample_and_series_a_reader_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    // Unbounded: the outage below lasts longer than the default 4 h.
    o.wal_retention_floor_max_lag_ms = None;
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    assert_eq!(db.wal_retention_floor(), None);
    scrape(&db, T0, T0 + 6 * HOUR);
    assert!(segments(tmp.path()).1 >= 4, "{:?}", segments(tmp.path()));
    // A reader has everything before segment `mark`; all later samples go to `mark` or later.
    let (_, mark) = segments(tmp.path());
    db.set_wal_retention_floor(Some(mark));
    assert_eq!(db.wal_retention_floor(), Some(mark));
    let mut appended = BTreeMap::new();
    // Compact every two hours, as the background compactor would: ten hours of outage.
    let mut checkpoints = 0;
    for h in (6..16).step_by(2) {
        merge(
            &mut appended,
            scrape(&db, T0 + h * HOUR, T0 + (h + 2) * HOUR),
        );
        let stats = db.compact().unwrap();
        assert!(stats.wal_segments_past_floor.is_empty(), "{stats:?}");
        checkpoints += stats.checkpoints.len();
    }
    assert!(checkpoints > 0, "segments below the floor are checkpointed");
    let (first, last) = segments(tmp.path());
    assert!(
        first <= mark && last > mark,
        "{first}..{last}, floor {mark}"
    );
    let (found, unresolved) = read_wal(tmp.path(), mark);
    assert_eq!(unresolved, 0, "every sample's series record is kept");
    // Segment `mark` also holds samples from before the floor was set.
    let found = since(found, T0 + 6 * HOUR);
    assert!(
        found == appended,
        "the reader finds every sample appended after the floor"
    );

    // The same after a restart (replay from the checkpoint and the held segments).
    db.close().unwrap();
    let db = Db::open(tmp.path(), o).unwrap();
    let (found, unresolved) = read_wal(tmp.path(), mark);
    assert_eq!(unresolved, 0);
    assert!(since(found, T0 + 6 * HOUR) == appended);

    // Without the floor, the next truncation moves past it.
    db.set_wal_retention_floor(None);
    scrape(&db, T0 + 16 * HOUR, T0 + 20 * HOUR);
    let stats = db.compact().unwrap();
    assert!(!stats.checkpoints.is_empty(), "{stats:?}");
    let (first, _) = segments(tmp.path());
    assert!(first > mark, "first segment {first}, old floor {mark}");
    db.close().unwrap();
}

#[test]
fn a_stuck_floor_gives_way_after_the_maximum_lag() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.wal_retention_floor_max_lag_ms = Some(4 * HOUR);
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    scrape(&db, T0, T0 + HOUR);
    let (_, mark) = segments(tmp.path());
    db.set_wal_retention_floor(Some(mark));
    let mut appended = BTreeMap::new();
    let mut past = Vec::new();
    let mut end = T0 + HOUR;
    for h in (1..21).step_by(2) {
        end = T0 + (h + 2) * HOUR;
        merge(&mut appended, scrape(&db, T0 + h * HOUR, end));
        past.extend(db.compact().unwrap().wal_segments_past_floor);
    }
    assert!(!past.is_empty(), "segments past the floor were released");
    assert_eq!(past[0], mark, "the oldest held segment goes first");
    let (first, _) = segments(tmp.path());
    assert!(first > mark);
    // What is newer than the lag bound (the head's newest sample minus 4 h) is all there.
    let newest = end - 15_000;
    let (found, unresolved) = read_wal(tmp.path(), 0);
    assert_eq!(unresolved, 0);
    let mut recent_missing = 0;
    let got: HashSet<(String, i64)> = found
        .into_iter()
        .flat_map(|(k, v)| v.into_iter().map(move |t| (k.clone(), t)))
        .collect();
    for (k, ts) in &appended {
        for &t in ts {
            if t >= newest - 4 * HOUR && !got.contains(&(k.clone(), t)) {
                recent_missing += 1;
            }
        }
    }
    assert_eq!(recent_missing, 0);
    db.close().unwrap();
}

#[test]
fn a_negative_maximum_lag_is_rejected() {
    let mut o = opts();
    o.wal_retention_floor_max_lag_ms = Some(-1);
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        Db::open(tmp.path(), o),
        Err(annals::Error::InvalidArgument(_))
    ));
}
