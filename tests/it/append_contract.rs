//! The appender keeps its word (issue 16, items 1 and 3): what `append` accepts, `commit`
//! stores; a sample far ahead of the clock can be refused by `Options::max_future_ms`.

use std::collections::BTreeMap;

use annals::{Db, Error, Labels, Options, SeriesRef};
use proptest::prelude::*;

use crate::support;

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied()).unwrap()
}

fn all(db: &Db) -> support::Selected {
    support::select(db, &[], i64::MIN, i64::MAX)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The sequence: every sample `append` accepted is what the query returns, and
/// nothing is dropped at commit.
#[test]
fn append_rejects_out_of_order_and_duplicates_against_its_own_samples() {
    let db = Db::open_in_memory(Options::default()).unwrap();
    let s = ls(&[("__name__", "s")]);
    let mut app = db.appender();
    let r = app.append(None, &s, 20_000, 1.0).unwrap();
    assert!(matches!(
        app.append(Some(r), &s, 10_000, 1.0),
        Err(Error::OutOfOrderSample {
            timestamp: 10_000,
            last_timestamp: 20_000
        })
    ));
    assert!(matches!(
        app.append(Some(r), &s, 20_000, 2.0),
        Err(Error::DuplicateSample { timestamp: 20_000 })
    ));
    // Without the ref the series is found by labels: the same rule.
    assert!(matches!(
        app.append(None, &s, 19_999, 1.0),
        Err(Error::OutOfOrderSample { .. })
    ));
    // The same sample again is accepted and stores nothing.
    assert_eq!(app.append(Some(r), &s, 20_000, 1.0).unwrap(), r);
    assert_eq!(app.pending(), 1);
    app.append(Some(r), &s, 30_000, 3.0).unwrap();
    app.commit().unwrap();
    assert_eq!(
        all(&db),
        vec![(
            s.clone(),
            vec![(20_000, 1f64.to_bits()), (30_000, 3f64.to_bits())]
        )]
    );
    let st = db.head_stats();
    assert_eq!((st.samples_appended, st.samples_dropped_at_commit), (2, 0));
}

/// Two open appenders on one series: the second keeps its newest sample in a map (the
/// first holds the series' slot), and still rejects its own out-of-order samples, also after
/// the first ended and let go of the series.
#[test]
fn concurrent_appenders_on_one_series_each_keep_their_order() {
    let db = Db::open_in_memory(Options::default()).unwrap();
    let s = ls(&[("__name__", "s")]);
    let mut first = db.appender();
    let mut second = db.appender();
    let r = first.append(None, &s, 1_000, 1.0).unwrap();
    second.append(Some(r), &s, 5_000, 5.0).unwrap();
    assert!(matches!(
        second.append(Some(r), &s, 4_000, 4.0),
        Err(Error::OutOfOrderSample {
            last_timestamp: 5_000,
            ..
        })
    ));
    assert!(matches!(
        first.append(Some(r), &s, 500, 0.5),
        Err(Error::OutOfOrderSample {
            last_timestamp: 1_000,
            ..
        })
    ));
    first.append(Some(r), &s, 2_000, 2.0).unwrap();
    first.commit().unwrap();
    // The series is free again; `second` must still find its own sample.
    assert!(matches!(
        second.append(Some(r), &s, 4_500, 4.5),
        Err(Error::OutOfOrderSample {
            last_timestamp: 5_000,
            ..
        })
    ));
    assert!(matches!(
        second.append(Some(r), &s, 5_000, 9.0),
        Err(Error::DuplicateSample { .. })
    ));
    second.append(Some(r), &s, 6_000, 6.0).unwrap();
    second.commit().unwrap();
    assert_eq!(
        all(&db)[0].1.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![1_000, 2_000, 5_000, 6_000]
    );
    assert_eq!(db.head_stats().samples_dropped_at_commit, 0);
    // A rolled-back appender lets go of its series too.
    let mut third = db.appender();
    third.append(Some(r), &s, 7_000, 7.0).unwrap();
    third.rollback().unwrap();
    let mut fourth = db.appender();
    fourth.append(Some(r), &s, 7_000, 7.0).unwrap();
    assert!(matches!(
        fourth.append(Some(r), &s, 6_500, 7.0),
        Err(Error::OutOfOrderSample { .. })
    ));
    fourth.commit().unwrap();
}

/// A drop at commit that remains possible: another appender committed a newer sample of the
/// series between `append` and `commit`. It is counted.
#[test]
fn a_concurrent_commit_can_still_make_a_sample_out_of_order() {
    let db = Db::open_in_memory(Options::default()).unwrap();
    let s = ls(&[("__name__", "s")]);
    let mut slow = db.appender();
    let r = slow.append(None, &s, 1_000, 1.0).unwrap();
    let mut fast = db.appender();
    fast.append(Some(r), &s, 2_000, 2.0).unwrap();
    fast.commit().unwrap();
    slow.commit().unwrap();
    let st = db.head_stats();
    assert_eq!((st.samples_appended, st.samples_dropped_at_commit), (1, 1));
}

#[derive(Debug, Clone)]
enum Op {
    Append { series: usize, t: i64, v: u8 },
    Commit,
    Rollback,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..4usize, 0..40i64, 0..3u8).prop_map(|(series, t, v)| Op::Append { series, t, v }),
        1 => Just(Op::Commit),
        1 => Just(Op::Rollback),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// One appender at a time against a model of the committed samples and of the samples
    /// the open appender holds: every `append` result is the model's, the database equals
    /// the model after each commit, and nothing is ever dropped at commit.
    #[test]
    fn append_results_follow_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let db = Db::open_in_memory(Options::default()).unwrap();
        let labels: Vec<Labels> = (0..4).map(|i| ls(&[("__name__", "m"), ("i", &i.to_string())])).collect();
        let mut refs: Vec<Option<SeriesRef>> = vec![None; labels.len()];
        let mut committed: BTreeMap<Labels, BTreeMap<i64, u64>> = BTreeMap::new();
        let mut held: BTreeMap<Labels, BTreeMap<i64, u64>> = BTreeMap::new();
        let mut app = Some(db.appender());
        let mut accepted = 0u64;
        for op in ops {
            match op {
                Op::Append { series, t, v } => {
                    let (l, v) = (&labels[series], f64::from(v));
                    let newest = committed
                        .get(l)
                        .and_then(|m| m.last_key_value())
                        .into_iter()
                        .chain(held.get(l).and_then(|m| m.last_key_value()))
                        .max_by_key(|(t, _)| **t)
                        .map(|(t, v)| (*t, *v));
                    let got = app.as_mut().unwrap().append(refs[series], l, t, v);
                    match newest {
                        Some((nt, _)) if t < nt => prop_assert!(
                            matches!(got, Err(Error::OutOfOrderSample { last_timestamp, .. }) if last_timestamp == nt),
                            "{t} after {nt}: {got:?}"
                        ),
                        Some((nt, nv)) if t == nt && nv != v.to_bits() => prop_assert!(
                            matches!(got, Err(Error::DuplicateSample { .. })),
                            "{t} again: {got:?}"
                        ),
                        Some((nt, _)) if t == nt => prop_assert!(got.is_ok()),
                        _ => {
                            refs[series] = Some(got.unwrap());
                            held.entry(l.clone()).or_default().insert(t, v.to_bits());
                            accepted += 1;
                        }
                    }
                }
                Op::Commit => {
                    app.take().unwrap().commit().unwrap();
                    for (l, m) in std::mem::take(&mut held) {
                        committed.entry(l).or_default().extend(m);
                    }
                    prop_assert_eq!(all(&db), support::model_select(&committed, &[], i64::MIN, i64::MAX));
                    app = Some(db.appender());
                }
                Op::Rollback => {
                    app.take().unwrap().rollback().unwrap();
                    accepted -= held.values().map(|m| m.len() as u64).sum::<u64>();
                    held.clear();
                    app = Some(db.appender());
                }
            }
        }
        drop(app);
        let st = db.head_stats();
        prop_assert_eq!(st.samples_dropped_at_commit, 0);
        prop_assert_eq!(st.samples_appended, accepted - held.values().map(|m| m.len() as u64).sum::<u64>());
    }
}

/// Item 3: without a bound (the default) a sample at `i64::MAX` is accepted; with
/// `max_future_ms` it is refused with the bound named, and realistic samples keep flowing.
#[test]
fn the_future_bound_refuses_far_future_samples_by_name() {
    let s = ls(&[("__name__", "s")]);
    let db = Db::open_in_memory(Options::default()).unwrap();
    let mut app = db.appender();
    app.append(None, &s, i64::MAX, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &ls(&[("__name__", "t")]), now_ms(), 1.0),
        Err(Error::OutOfBounds { .. })
    ));
    drop(app);

    let mut opts = Options::default();
    opts.max_future_ms = Some(60_000);
    let db = Db::open_in_memory(opts).unwrap();
    let mut app = db.appender();
    let e = app.append(None, &s, i64::MAX, 1.0).unwrap_err();
    assert!(e.is_sample_rejection());
    assert!(matches!(
        e,
        Error::TooFarInFuture {
            timestamp: i64::MAX,
            max_future_ms: 60_000,
            ..
        }
    ));
    assert!(e.to_string().contains("max_future_ms"), "{e}");
    let now = now_ms();
    assert!(matches!(
        app.append(None, &s, now + 3_600_000, 1.0),
        Err(Error::TooFarInFuture { .. })
    ));
    app.append(None, &s, now, 1.0).unwrap();
    app.append(None, &s, now + 30_000, 2.0).unwrap();
    app.commit().unwrap();
    assert_eq!(all(&db)[0].1.len(), 2);
    let mut negative = Options::default();
    negative.max_future_ms = Some(-1);
    assert!(matches!(
        Db::open_in_memory(negative),
        Err(Error::InvalidArgument(_))
    ));
}
