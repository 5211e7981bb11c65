//! Model-based fuzzing of an on-disk `Db`: the input is a program of operations (append,
//! commit, rollback, query, delete, compact, reopen) run against a database in a temporary
//! directory and against a `BTreeMap` model of what must be stored. Every query must return
//! exactly the model's data; every rejected append must be a typed sample rejection the model
//! agrees with.
//!
//! Bytes are read three at a time: an opcode and two operands. Timestamps live in a small
//! window and the block range is one second, so compaction, head truncation, WAL checkpoints
//! and block merges happen within a few hundred operations.
//!
//! Seed corpus: any bytes; `printf '\0\1\2\0\2\3\1\0\0\5\0\0\3\0\0' > corpus/db_model/seed`.
#![no_main]

use std::collections::BTreeMap;

use annals::{Db, Error, Labels, Matcher, Options, WalSync};
use libfuzzer_sys::fuzz_target;

const SERIES: u8 = 4;
/// Milliseconds per unit of a timestamp operand.
const TICK: i64 = 50;

type Model = BTreeMap<Labels, BTreeMap<i64, u64>>;

fn labels(i: u8) -> Labels {
    Labels::new([
        ("__name__", "fuzz"),
        ("s", &(i % SERIES).to_string()),
        ("odd", if i % 2 == 1 { "yes" } else { "" }),
    ])
    .expect("valid labels")
}

fn opts() -> Options {
    let mut o = Options::default();
    o.block_range_ms = 1_000;
    o.samples_per_chunk = 4;
    o.wal_sync = WalSync::Never;
    o.wal_segment_size = 32 * 1024;
    o.compaction = false;
    o.retention_ms = None;
    o.max_block_range_ms = Some(9_000);
    o
}

fn matcher(b: u8) -> Vec<Matcher> {
    match b % 4 {
        0 => vec![],
        1 => vec![Matcher::equal("s", &(b / 4 % SERIES).to_string())],
        2 => vec![Matcher::equal("odd", "yes")],
        _ => vec![Matcher::not_equal("odd", "yes")],
    }
}

fn selects(l: &Labels, ms: &[Matcher]) -> bool {
    ms.iter().all(|m| m.matches(l.get(m.name()).unwrap_or("")))
}

/// Compares a query over `[mint, maxt]` with the model.
fn check_query(db: &Db, model: &Model, mint: i64, maxt: i64, ms: &[Matcher]) {
    let got: Vec<(Labels, Vec<(i64, u64)>)> = db
        .querier(mint, maxt)
        .expect("querier")
        .select(ms)
        .expect("select")
        .map(|s| {
            let v = s.to_vec().expect("samples decode");
            (
                s.labels().clone(),
                v.iter().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .collect();
    let want: Vec<(Labels, Vec<(i64, u64)>)> = model
        .iter()
        .filter(|(l, _)| selects(l, ms))
        .map(|(l, s)| {
            (
                l.clone(),
                s.range(mint..=maxt)
                    .map(|(&t, &v)| (t, v))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, s)| !s.is_empty())
        .collect();
    assert_eq!(got, want, "query [{mint}, {maxt}] {ms:?}");
}

/// The head floor: nothing older than the newest block's end is accepted or kept at commit.
fn floor(db: &Db) -> i64 {
    db.blocks()
        .iter()
        .map(|m| m.max_time)
        .max()
        .unwrap_or(i64::MIN)
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut db = Db::open(dir.path(), opts()).expect("open");
    let mut model = Model::new();
    // Each series' newest applied sample as the head knows it: deletes hide samples but do
    // not change it, and appending it again is accepted as a no-op (as in Prometheus), so a
    // deleted sample appended again with the same value stays deleted.
    let mut newest: BTreeMap<Labels, (i64, u64)> = BTreeMap::new();
    // The open transaction: the model's view of its accepted samples.
    let mut app = None;
    let mut pending: Vec<(Labels, i64, u64)> = Vec::new();
    let mut clock = 0i64;

    for op in data.chunks(3) {
        let (code, a, b) = (op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0));
        match code % 8 {
            // Append; `a` picks the series, `b` the time (mostly forward) and value.
            0 | 1 => {
                let l = labels(a);
                let t = if b & 0x80 == 0 {
                    clock += i64::from(b & 0x1f) * TICK;
                    clock
                } else {
                    clock - i64::from(b & 0x3f) * TICK
                };
                let v = f64::from(b) * 0.5 + f64::from(a);
                let app = app.get_or_insert_with(|| db.appender());
                match app.append(None, &l, t, v) {
                    Ok(_) => {
                        let last = model.get(&l).and_then(|s| s.last_key_value());
                        if let Some((&lt, &lv)) = last {
                            assert!(
                                t > lt || (t == lt && lv == v.to_bits()),
                                "accepted t={t} v={v} after committed ({lt}, {lv:#x})"
                            );
                        }
                        if newest.get(&l) != Some(&(t, v.to_bits())) {
                            pending.push((l, t, v.to_bits()));
                        }
                    }
                    Err(Error::OutOfBounds { timestamp, .. }) => assert_eq!(timestamp, t),
                    // The head compares with the series' newest sample, deleted or not, so the
                    // model (which forgets deleted samples) cannot say more than this.
                    Err(Error::OutOfOrderSample {
                        timestamp,
                        last_timestamp,
                    }) => {
                        assert!(timestamp == t && t < last_timestamp);
                    }
                    Err(Error::DuplicateSample { timestamp }) => assert_eq!(timestamp, t),
                    Err(e) => panic!("append: unexpected error {e}"),
                }
            }
            // Commit: samples apply in order; one made out of order or duplicate by an earlier
            // sample of the batch, or below the floor, is dropped (as the head does).
            2 => {
                if let Some(a) = app.take() {
                    a.commit().expect("commit");
                    let f = floor(&db);
                    for (l, t, v) in pending.drain(..) {
                        let last = newest.get(&l).map(|x| x.0);
                        if t >= f && last.is_none_or(|lt| t > lt) {
                            newest.insert(l.clone(), (t, v));
                            model.entry(l).or_default().insert(t, v);
                        }
                    }
                    model.retain(|_, s| !s.is_empty());
                }
            }
            3 => {
                if let Some(a) = app.take() {
                    a.rollback().expect("rollback");
                    pending.clear();
                }
            }
            // Query a window; `a` picks the matchers.
            4 => {
                let mint = clock - i64::from(b) * TICK;
                let maxt = mint + i64::from(a % 64) * TICK;
                check_query(&db, &model, mint, maxt, &matcher(a));
            }
            // Delete a window of the matched series.
            5 => {
                let mint = clock - i64::from(b) * TICK;
                let maxt = mint + i64::from(a % 32) * TICK;
                let ms = matcher(a);
                match ms.is_empty() {
                    true => db.delete_all(mint, maxt).expect("delete all"),
                    false => db.delete(mint, maxt, &ms).expect("delete"),
                }
                for (l, s) in model.iter_mut() {
                    if selects(l, &ms) {
                        let doomed: Vec<i64> = s.range(mint..=maxt).map(|x| *x.0).collect();
                        for t in doomed {
                            s.remove(&t);
                        }
                    }
                }
                model.retain(|_, s| !s.is_empty());
            }
            6 => {
                if a % 2 == 0 {
                    db.compact().expect("compact");
                } else {
                    db.clean_tombstones().expect("clean tombstones");
                }
            }
            // Reopen: an open transaction is dropped first (rolled back).
            7 => {
                // EXTENSION POINT (I/O faults): when the fault-injecting file layer is merged,
                // this opcode also arms a fault (EIO, ENOSPC, dropped unsynced bytes) chosen by
                // `a` for the next `b` file operations, and the model then accepts either the
                // operation's effect or its typed `Io` error, and after a simulated power loss
                // only what was synced. Until then it reopens cleanly.
                drop(app.take());
                pending.clear();
                db.close().expect("close");
                drop(db);
                db = Db::open(dir.path(), opts()).expect("reopen");
                clock = clock.max(db.head_stats().max_time.unwrap_or(i64::MIN));
            }
            _ => unreachable!(),
        }
    }
    drop(app.take());
    check_query(&db, &model, i64::MIN, i64::MAX, &[]);
    db.close().expect("close");
    let db = Db::open(dir.path(), opts()).expect("final reopen");
    check_query(&db, &model, i64::MIN, i64::MAX, &[]);
    db.close().expect("close");
});
