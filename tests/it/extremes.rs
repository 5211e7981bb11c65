//! Timestamps at the ends of `i64` (issue 16, item 2): every conversion between a closed
//! range `[mint, maxt]` and a block's half-open one (snapshot, head compaction, block merges,
//! retention, deletion, queries, tombstones) against a `BTreeMap` model.

use std::collections::BTreeMap;
use std::path::Path;

use annals::{Db, Labels, MatchType, Matcher, Options};
use proptest::prelude::*;

use crate::support;

const H2: i64 = 2 * 60 * 60 * 1000;

/// Timestamps at and next to the ends of `i64`, zero, and the edges of aligned block ranges.
const TIMES: [i64; 12] = [
    i64::MIN,
    i64::MIN + 1,
    -H2,
    -1,
    0,
    1,
    H2 - 1,
    H2,
    i64::MAX - H2,
    i64::MAX - 2,
    i64::MAX - 1,
    i64::MAX,
];

type Model = BTreeMap<Labels, BTreeMap<i64, u64>>;

fn labels(i: usize) -> Labels {
    Labels::new([("__name__", "x"), ("i", &i.to_string())]).unwrap()
}

fn opts(snapshot_on_close: bool) -> Options {
    let mut o = Options::default();
    o.compaction = false;
    // Retention would delete what the model keeps: blocks here are eons apart.
    o.retention_ms = None;
    // Leveled merges of up to nine level-1 ranges.
    o.max_block_range_ms = Some(9 * H2);
    o.snapshot_on_close = snapshot_on_close;
    o
}

/// The database answers `model` for every range with ends in `TIMES` that touch an end of
/// `i64`, and in full.
fn check(db: &Db, model: &Model) -> Result<(), TestCaseError> {
    for (mint, maxt) in [
        (i64::MIN, i64::MAX),
        (i64::MIN, i64::MIN),
        (i64::MAX, i64::MAX),
        (i64::MIN, 0),
        (0, i64::MAX),
        (i64::MAX - 1, i64::MAX),
        (i64::MIN, i64::MIN + 1),
    ] {
        prop_assert_eq!(
            support::select(db, &[], mint, maxt),
            support::model_select(model, &[], mint, maxt),
            "range [{}, {}]",
            mint,
            maxt
        );
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    /// One commit of samples (series, index into `TIMES`).
    Commit(Vec<(usize, usize)>),
    Compact,
    /// Delete `[TIMES[a], TIMES[b]]` (a <= b) of one series.
    Delete(usize, usize, usize),
    CleanTombstones,
    /// A snapshot with the head, opened read-only and compared.
    Snapshot,
    /// Close and open again; the next close writes a memory snapshot or not.
    Reopen(bool),
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TIMES.len();
    prop_oneof![
        6 => proptest::collection::vec((0..3usize, t.clone()), 1..5).prop_map(Op::Commit),
        2 => Just(Op::Compact),
        2 => (0..3usize, t.clone(), t).prop_map(|(s, a, b)| Op::Delete(s, a.min(b), a.max(b))),
        1 => Just(Op::CleanTombstones),
        2 => Just(Op::Snapshot),
        2 => any::<bool>().prop_map(Op::Reopen),
    ]
}

fn run(dir: &Path, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let data = dir.join("db");
    let mut db = Db::open(&data, opts(true)).unwrap();
    let mut model = Model::new();
    let mut value = 0u64;
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Commit(samples) => {
                let mut app = db.appender();
                let mut accepted = Vec::new();
                for (s, ti) in samples {
                    value += 1;
                    let v = value as f64;
                    match app.append(None, &labels(s), TIMES[ti], v) {
                        Ok(_) => accepted.push((labels(s), TIMES[ti], v.to_bits())),
                        Err(e) => prop_assert!(e.is_sample_rejection(), "{e}"),
                    }
                }
                app.commit().unwrap();
                for (l, t, v) in accepted {
                    model.entry(l).or_default().insert(t, v);
                }
            }
            Op::Compact => {
                db.compact().unwrap();
            }
            Op::Delete(s, a, b) => {
                let m = Matcher::new(MatchType::Equal, "i", &s.to_string()).unwrap();
                db.delete(TIMES[a], TIMES[b], &[m]).unwrap();
                if let Some(series) = model.get_mut(&labels(s)) {
                    series.retain(|t, _| !(TIMES[a]..=TIMES[b]).contains(t));
                }
            }
            Op::CleanTombstones => {
                db.clean_tombstones().unwrap();
            }
            Op::Snapshot => {
                let snap = dir.join(format!("snap{n}"));
                db.snapshot(&snap, true).unwrap();
                let ro = Db::open_read_only(&snap, opts(false)).unwrap();
                check(&ro, &model)?;
                ro.close().unwrap();
            }
            Op::Reopen(snapshot_on_close) => {
                db.close().unwrap();
                db = Db::open(&data, opts(snapshot_on_close)).unwrap();
            }
        }
        model.retain(|_, s| !s.is_empty());
        check(&db, &model)?;
    }
    db.close().unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn extreme_timestamps_survive_every_range_conversion(ops in proptest::collection::vec(op(), 1..14)) {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), ops)?;
    }
}

/// The sequence: `a@0` and `b@i64::MAX` committed, compacted, snapshotted with the
/// head; the snapshot holds both.
#[test]
fn snapshot_keeps_a_head_sample_at_i64_max() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), opts(true)).unwrap();
    let (a, b) = (labels(0), labels(1));
    let mut app = db.appender();
    app.append(None, &a, 0, 1.0).unwrap();
    app.append(None, &b, i64::MAX, 2.0).unwrap();
    app.commit().unwrap();
    db.compact().unwrap();
    let snap = dir.path().join("snap");
    let written = db.snapshot(&snap, true).unwrap();
    let ro = Db::open_read_only(&snap, opts(false)).unwrap();
    assert_eq!(written.len(), 2, "the block and the head");
    assert_eq!(
        support::select(&ro, &[], i64::MIN, i64::MAX),
        vec![
            (a, vec![(0, 1f64.to_bits())]),
            (b, vec![(i64::MAX, 2f64.to_bits())])
        ]
    );
}

/// A series whose newest sample is at `i64::MIN` has one: another value there is a
/// duplicate at `append`, not a drop at commit.
#[test]
fn a_sample_at_i64_min_is_a_newest_sample() {
    let db = Db::open_in_memory(opts(true)).unwrap();
    let a = labels(0);
    let mut app = db.appender();
    app.append(None, &a, i64::MIN, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &a, i64::MIN, 2.0),
        Err(annals::Error::DuplicateSample { .. })
    ));
    app.commit().unwrap();
    assert_eq!(db.head_stats().samples_dropped_at_commit, 0);
}

/// Retention compares block ends without overflowing: a block at the start of time is far
/// beyond any retention when the newest block ends near the end of time.
#[test]
fn retention_spans_the_whole_i64_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(true);
    o.retention_ms = Some(H2 * 12);
    let db = Db::open(dir.path().join("db"), o).unwrap();
    let a = labels(0);
    for t in [i64::MIN, i64::MAX - 3 * H2, i64::MAX - H2] {
        let mut app = db.appender();
        app.append(None, &a, t, 1.0).unwrap();
        app.commit().unwrap();
        db.compact().unwrap();
    }
    let blocks = db.blocks();
    assert!(
        blocks.iter().all(|b| b.min_time > 0),
        "the block at i64::MIN is beyond retention: {:?}",
        blocks
            .iter()
            .map(|b| (b.min_time, b.max_time))
            .collect::<Vec<_>>()
    );
    assert!(!blocks.is_empty());
}
