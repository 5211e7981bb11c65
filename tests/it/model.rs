//! State-machine property test: random appends (valid and invalid), commits, rollbacks and
//! queries must agree with a `BTreeMap<Labels, BTreeMap<i64, f64>>` model.

use std::collections::BTreeMap;

use annals::{Db, Error, Labels, Matcher, Options};

use crate::support;
use proptest::prelude::*;

const RANGE: i64 = 1000;

#[derive(Debug, Clone)]
enum Op {
    Append {
        series: usize,
        t: i64,
        v: u8,
        use_ref: bool,
    },
    Commit,
    Rollback,
    Query {
        matcher: usize,
        mint: i64,
        maxt: i64,
    },
}

fn series_labels() -> Vec<Labels> {
    [
        vec![("__name__", "up"), ("job", "a")],
        vec![("__name__", "up"), ("job", "b")],
        vec![("__name__", "up"), ("job", "b"), ("zone", "x")],
        vec![("__name__", "cpu"), ("zone", "x")],
        vec![("__name__", "cpu")],
    ]
    .into_iter()
    .map(|p| Labels::new(p).unwrap())
    .collect()
}

fn matchers() -> Vec<Vec<Matcher>> {
    vec![
        vec![],
        vec![Matcher::equal("__name__", "up")],
        vec![Matcher::equal("zone", "")],
        vec![Matcher::not_equal("job", "a")],
        vec![
            Matcher::regex("job", "a|b").unwrap(),
            Matcher::equal("zone", "x"),
        ],
        vec![Matcher::not_regex("__name__", "c.*").unwrap()],
    ]
}

fn value(v: u8) -> f64 {
    match v % 8 {
        0 => 0.0,
        1 => -0.0,
        2 => f64::from_bits(annals::STALE_NAN_BITS),
        3 => f64::NAN,
        4 => f64::INFINITY,
        5 => 1e-310,
        6 => 42.5,
        _ => v as f64,
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..5usize, 0..4000i64, any::<u8>(), any::<bool>())
            .prop_map(|(series, t, v, use_ref)| Op::Append { series, t, v, use_ref }),
        2 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        2 => (0..6usize, 0..4000i64, 0..4000i64).prop_map(|(matcher, a, b)| Op::Query {
            matcher,
            mint: a.min(b),
            maxt: a.max(b),
        }),
    ]
}

#[derive(Default)]
struct Model {
    committed: BTreeMap<Labels, BTreeMap<i64, u64>>,
    pending: Vec<(Labels, i64, u64)>,
    /// Oldest time the current appender accepts, fixed when it was created.
    min_valid: i64,
}

impl Model {
    fn head_max(&self) -> Option<i64> {
        self.committed
            .values()
            .filter_map(|s| s.keys().next_back().copied())
            .max()
    }

    fn start_appender(&mut self) {
        self.pending.clear();
        self.min_valid = self.head_max().map_or(i64::MIN, |m| m - RANGE / 2);
    }

    /// What `append` must answer: Ok(true) buffered, Ok(false) accepted as a no-op, or the error.
    fn append(&mut self, l: &Labels, t: i64, v: u64) -> Result<bool, &'static str> {
        if t < self.min_valid {
            return Err("out of bounds");
        }
        // The newest sample before it: the later of the committed one and the newest one
        // the same appender holds (issue 16: `append` checks both).
        let held = self
            .pending
            .iter()
            .rev()
            .find(|p| &p.0 == l)
            .map(|p| (p.1, p.2));
        let newest = match (
            self.committed
                .get(l)
                .and_then(|s| s.iter().next_back())
                .map(|(&t, &v)| (t, v)),
            held,
        ) {
            (Some(c), Some(h)) if c.0 >= h.0 => Some(c),
            (c, None) => c,
            (_, h) => h,
        };
        if let Some((lt, lv)) = newest {
            if t < lt {
                return Err("out of order");
            }
            if t == lt {
                return if v == lv { Ok(false) } else { Err("duplicate") };
            }
        }
        self.pending.push((l.clone(), t, v));
        Ok(true)
    }

    fn commit(&mut self) {
        for (l, t, v) in std::mem::take(&mut self.pending) {
            let s = self.committed.entry(l).or_default();
            if s.keys().next_back().is_none_or(|&last| t > last) {
                s.insert(t, v);
            }
        }
        self.start_appender();
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut opts = Options::default();
    opts.block_range_ms = RANGE;
    let db = Db::open_in_memory(opts).unwrap();
    let labels = series_labels();
    let all_matchers = matchers();
    let mut refs = vec![None; labels.len()];
    let mut model = Model::default();
    model.start_appender();
    let mut app = db.appender();
    for op in ops {
        match op {
            Op::Append {
                series,
                t,
                v,
                use_ref,
            } => {
                let vb = value(v).to_bits();
                let want = model.append(&labels[series], t, vb);
                let hint = if use_ref { refs[series] } else { None };
                let got = app.append(hint, &labels[series], t, value(v));
                match (want, &got) {
                    (Ok(_), Ok(r)) => refs[series] = Some(*r),
                    (Err("out of bounds"), Err(Error::OutOfBounds { .. }))
                    | (Err("out of order"), Err(Error::OutOfOrderSample { .. }))
                    | (Err("duplicate"), Err(Error::DuplicateSample { .. })) => {}
                    _ => prop_assert!(
                        false,
                        "append {t} to {}: model {want:?}, db {got:?}",
                        labels[series]
                    ),
                }
            }
            Op::Commit => {
                app.commit().unwrap();
                model.commit();
                app = db.appender();
            }
            Op::Rollback => {
                app.rollback().unwrap();
                model.start_appender();
                app = db.appender();
            }
            Op::Query {
                matcher,
                mint,
                maxt,
            } => {
                let ms = &all_matchers[matcher];
                let got = support::select(&db, ms, mint, maxt);
                let want = support::model_select(&model.committed, ms, mint, maxt);
                prop_assert_eq!(&support::select_unsorted(&db, ms, mint, maxt), &got);
                prop_assert_eq!(got, want, "query {:?} [{}, {}]", ms, mint, maxt);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn head_agrees_with_model(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops)?;
    }
}

// ---- the same against a database on disk, with compaction, deletion and restarts -------

#[derive(Debug, Clone)]
enum DiskOp {
    Append {
        series: usize,
        t: i64,
        v: u8,
    },
    Commit,
    Rollback,
    Compact,
    Reopen,
    Delete {
        matcher: usize,
        mint: i64,
        maxt: i64,
    },
    /// Reopen with time retention `keep` (ms behind the newest block) and compact.
    Retention {
        keep: i64,
    },
    Query {
        matcher: usize,
        mint: i64,
        maxt: i64,
    },
}

fn disk_op() -> impl Strategy<Value = DiskOp> {
    prop_oneof![
        8 => (0..5usize, 0..8000i64, any::<u8>()).prop_map(|(series, t, v)| DiskOp::Append { series, t, v }),
        3 => Just(DiskOp::Commit),
        1 => Just(DiskOp::Rollback),
        1 => Just(DiskOp::Compact),
        1 => Just(DiskOp::Reopen),
        1 => (0..4000i64).prop_map(|keep| DiskOp::Retention { keep }),
        1 => (0..6usize, 0..8000i64, 0..2000i64).prop_map(|(matcher, a, len)| DiskOp::Delete { matcher, mint: a, maxt: a + len }),
        2 => (0..6usize, 0..8000i64, 0..8000i64).prop_map(|(matcher, a, b)| DiskOp::Query { matcher, mint: a.min(b), maxt: a.max(b) }),
    ]
}

#[derive(Default)]
struct DiskModel {
    visible: BTreeMap<Labels, BTreeMap<i64, u64>>,
    /// Newest committed sample per series, deleted or not (deletion does not change what is
    /// out of order).
    last: BTreeMap<Labels, (i64, u64)>,
    max_t: Option<i64>,
    pending: Vec<(Labels, i64, u64)>,
    min_valid: i64,
}

impl DiskModel {
    fn start_appender(&mut self, floor: i64) {
        self.pending.clear();
        self.min_valid = floor.max(self.max_t.map_or(i64::MIN, |m| m - RANGE / 2));
    }

    fn append(&mut self, l: &Labels, t: i64, v: u64) -> Result<bool, &'static str> {
        if t < self.min_valid {
            return Err("out of bounds");
        }
        // The newest sample before it: the later of the committed one and the newest one
        // the same appender holds (issue 16: `append` checks both).
        let held = self
            .pending
            .iter()
            .rev()
            .find(|p| &p.0 == l)
            .map(|p| (p.1, p.2));
        let newest = match (self.last.get(l).copied(), held) {
            (Some(c), Some(h)) if c.0 >= h.0 => Some(c),
            (c, None) => c,
            (_, h) => h,
        };
        if let Some((lt, lv)) = newest {
            if t < lt {
                return Err("out of order");
            }
            if t == lt {
                return if v == lv { Ok(false) } else { Err("duplicate") };
            }
        }
        self.pending.push((l.clone(), t, v));
        Ok(true)
    }

    fn commit(&mut self) {
        for (l, t, v) in std::mem::take(&mut self.pending) {
            if self.last.get(&l).is_none_or(|&(lt, _)| t > lt) {
                self.last.insert(l.clone(), (t, v));
                self.visible.entry(l).or_default().insert(t, v);
                self.max_t = Some(self.max_t.map_or(t, |m| m.max(t)));
            }
        }
    }
}

fn block_floor(db: &Db) -> i64 {
    db.blocks()
        .iter()
        .map(|m| m.max_time)
        .max()
        .unwrap_or(i64::MIN)
}

fn run_disk(ops: Vec<DiskOp>) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = Options::default();
    opts.block_range_ms = RANGE;
    opts.compaction = false;
    opts.retention_ms = None;
    opts.max_block_range_ms = Some(RANGE * 9); // leveled merges into 3- and 9-range blocks
    opts.wal_sync = annals::WalSync::Never;
    opts.wal_segment_size = 32 * 1024;
    let mut db = Db::open(tmp.path(), opts.clone()).unwrap();
    let labels = series_labels();
    let all_matchers = matchers();
    let mut model = DiskModel::default();
    model.start_appender(block_floor(&db));
    let mut app = Some(db.appender());
    for op in ops {
        match op {
            DiskOp::Append { series, t, v } => {
                let vb = value(v).to_bits();
                let want = model.append(&labels[series], t, vb);
                let got = app
                    .as_mut()
                    .unwrap()
                    .append(None, &labels[series], t, value(v));
                match (want, &got) {
                    (Ok(_), Ok(_))
                    | (Err("out of bounds"), Err(Error::OutOfBounds { .. }))
                    | (Err("out of order"), Err(Error::OutOfOrderSample { .. }))
                    | (Err("duplicate"), Err(Error::DuplicateSample { .. })) => {}
                    _ => prop_assert!(
                        false,
                        "append {t} to {}: model {want:?}, db {got:?}",
                        labels[series]
                    ),
                }
            }
            DiskOp::Commit => {
                app.take().unwrap().commit().unwrap();
                model.commit();
            }
            DiskOp::Rollback => {
                app.take().unwrap().rollback().unwrap();
            }
            DiskOp::Compact => {
                app.take().unwrap().rollback().unwrap();
                db.compact().unwrap();
            }
            DiskOp::Reopen => {
                app.take().unwrap().rollback().unwrap();
                db.close().unwrap();
                db = Db::open(tmp.path(), opts.clone()).unwrap();
            }
            DiskOp::Retention { keep } => {
                app.take().unwrap().rollback().unwrap();
                // Compact first, so that the second compaction below only applies retention.
                db.compact().unwrap();
                let before = db.blocks();
                db.close().unwrap();
                let mut with_retention = opts.clone();
                with_retention.retention_ms = Some(keep);
                let d = Db::open(tmp.path(), with_retention).unwrap();
                d.compact().unwrap();
                let after: Vec<_> = d.blocks().iter().map(|m| m.ulid).collect();
                d.close().unwrap();
                db = Db::open(tmp.path(), opts.clone()).unwrap();
                // The dropped blocks are the oldest ones; the head holds only later data.
                let dropped = before.iter().filter(|m| !after.contains(&m.ulid));
                if let Some(cut) = dropped.map(|m| m.max_time).max() {
                    for s in model.visible.values_mut() {
                        s.retain(|&t, _| t >= cut);
                    }
                }
            }
            DiskOp::Delete {
                matcher,
                mint,
                maxt,
            } => {
                app.take().unwrap().rollback().unwrap();
                let ms = &all_matchers[matcher];
                if ms.is_empty() {
                    db.delete_all(mint, maxt).unwrap();
                } else {
                    db.delete(mint, maxt, ms).unwrap();
                }
                for (l, s) in model.visible.iter_mut() {
                    if ms.iter().all(|m| m.matches(l.get(m.name()).unwrap_or(""))) {
                        s.retain(|t, _| !(mint..=maxt).contains(t));
                    }
                }
            }
            DiskOp::Query {
                matcher,
                mint,
                maxt,
            } => {
                let ms = &all_matchers[matcher];
                let got = support::select(&db, ms, mint, maxt);
                let want = support::model_select(&model.visible, ms, mint, maxt);
                prop_assert_eq!(&support::select_unsorted(&db, ms, mint, maxt), &got);
                prop_assert_eq!(got, want, "query {:?} [{}, {}]", ms, mint, maxt);
            }
        }
        if app.is_none() {
            model.start_appender(block_floor(&db));
            app = Some(db.appender());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn disk_database_agrees_with_model_across_compaction_deletion_and_restarts(
        ops in proptest::collection::vec(disk_op(), 1..120)
    ) {
        run_disk(ops)?;
    }
}
