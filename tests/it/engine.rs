//! Appender and querier behaviour through the public API.

use annals::{Db, Error, Labels, Matcher, Options, Sample};

use crate::support;

fn db() -> Db {
    Db::open_in_memory(Options::default()).unwrap()
}

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied()).unwrap()
}

fn samples(db: &Db, ms: &[Matcher]) -> Vec<(String, Vec<(i64, u64)>)> {
    let selected = support::select(db, ms, i64::MIN, i64::MAX);
    selected
        .into_iter()
        .map(|(l, s)| (l.to_string(), s))
        .collect()
}

#[test]
fn data_is_visible_only_after_commit() {
    let db = db();
    let up = ls(&[("__name__", "up"), ("job", "a")]);
    let mut app = db.appender();
    app.append(None, &up, 1000, 1.0).unwrap();
    assert!(samples(&db, &[]).is_empty());
    app.commit().unwrap();
    assert_eq!(
        samples(&db, &[]),
        vec![(up.to_string(), vec![(1000, 1f64.to_bits())])]
    );
}

#[test]
fn rollback_and_drop_discard_samples() {
    let db = db();
    let up = ls(&[("__name__", "up")]);
    let mut app = db.appender();
    app.append(None, &up, 1000, 1.0).unwrap();
    app.rollback().unwrap();
    let mut app = db.appender();
    app.append(None, &up, 2000, 1.0).unwrap();
    drop(app);
    assert!(samples(&db, &[]).is_empty());
}

#[test]
fn refs_skip_the_label_lookup_and_survive_across_appenders() {
    let db = db();
    let a = ls(&[("__name__", "a")]);
    let mut app = db.appender();
    let r = app.append(None, &a, 1, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    // With a valid ref the labels are not consulted.
    assert_eq!(app.append(Some(r), &Labels::empty(), 2, 2.0).unwrap(), r);
    // An unknown ref falls back to the labels.
    let bogus = annals::SeriesRef::from_raw(999_999);
    assert_eq!(app.append(Some(bogus), &a, 3, 3.0).unwrap(), r);
    app.commit().unwrap();
    assert_eq!(samples(&db, &[])[0].1.len(), 3);
}

#[test]
fn prometheus_sample_errors() {
    let db = db();
    let s = ls(&[("__name__", "x")]);
    let mut app = db.appender();
    app.append(None, &s, 10_000_000, 1.0).unwrap();
    app.commit().unwrap();

    let mut app = db.appender();
    let err = app.append(None, &s, 9_999_999, 1.0).unwrap_err();
    assert!(matches!(
        err,
        Error::OutOfOrderSample {
            timestamp: 9_999_999,
            last_timestamp: 10_000_000
        }
    ));
    let err = app.append(None, &s, 10_000_000, 2.0).unwrap_err();
    assert!(matches!(
        err,
        Error::DuplicateSample {
            timestamp: 10_000_000
        }
    ));
    // Same timestamp, same bits: accepted silently.
    app.append(None, &s, 10_000_000, 1.0).unwrap();
    // Older than half a block range behind the head's max time.
    let err = app
        .append(None, &s, 10_000_000 - 3_600_001, 1.0)
        .unwrap_err();
    assert!(matches!(err, Error::OutOfBounds { .. }), "{err}");
    assert!(err.is_sample_rejection());
    // The rejected samples failed alone; the batch still commits.
    app.append(None, &s, 10_000_001, 5.0).unwrap();
    app.commit().unwrap();
    let got = samples(&db, &[]);
    assert_eq!(
        got[0].1,
        vec![(10_000_000, 1f64.to_bits()), (10_000_001, 5f64.to_bits())]
    );
}

#[test]
fn nan_payloads_and_stale_markers_are_kept_bit_exact() {
    let db = db();
    let s = ls(&[("__name__", "x")]);
    let stale = annals::stale_nan();
    let other_nan = f64::from_bits(0x7ff8_0000_0000_0001);
    let mut app = db.appender();
    app.append(None, &s, 1, other_nan).unwrap();
    app.append(None, &s, 2, stale).unwrap();
    app.append(None, &s, 3, -0.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    // Different NaN payload at the same timestamp is a duplicate; the same payload is not.
    assert!(matches!(
        app.append(None, &s, 3, 0.0),
        Err(Error::DuplicateSample { .. })
    ));
    let got = samples(&db, &[]);
    assert_eq!(
        got[0].1,
        vec![
            (1, other_nan.to_bits()),
            (2, stale.to_bits()),
            (3, (-0.0f64).to_bits())
        ]
    );
    assert!(annals::is_stale_marker(stale));
}

#[test]
fn querier_range_is_inclusive_and_seek_works() {
    let db = db();
    let s = ls(&[("__name__", "x")]);
    let mut app = db.appender();
    for t in 0..1000 {
        app.append(None, &s, t * 10, t as f64).unwrap();
    }
    app.commit().unwrap();
    let q = db.querier(100, 200).unwrap();
    let series: Vec<_> = q.select(&[]).unwrap().collect();
    let got: Vec<i64> = series[0].to_vec().unwrap().iter().map(|s| s.t).collect();
    assert_eq!(got, (10..=20).map(|t| t * 10).collect::<Vec<_>>());
    let q = db.querier(0, i64::MAX).unwrap();
    let series: Vec<_> = q.select(&[]).unwrap().collect();
    let mut it = series[0].samples();
    assert_eq!(
        it.seek(5005).unwrap().unwrap(),
        Sample { t: 5010, v: 501.0 }
    );
    assert_eq!(it.next().unwrap().unwrap().t, 5020);
    assert_eq!(it.seek(9990).unwrap().unwrap().t, 9990);
    assert!(it.next().is_none());
    assert!(matches!(db.querier(5, 4), Err(Error::InvalidArgument(_))));
}

#[test]
fn select_sorts_by_labels_and_applies_matcher_semantics() {
    let db = db();
    let mut app = db.appender();
    let sets = [
        ls(&[("__name__", "up"), ("job", "b")]),
        ls(&[("__name__", "up"), ("job", "a"), ("env", "prod")]),
        ls(&[("__name__", "up")]),
        ls(&[("__name__", "down"), ("job", "a")]),
    ];
    for l in &sets {
        app.append(None, l, 1, 1.0).unwrap();
    }
    app.commit().unwrap();
    let names =
        |ms: &[Matcher]| -> Vec<String> { samples(&db, ms).into_iter().map(|x| x.0).collect() };
    assert_eq!(
        names(&[]),
        vec![
            r#"{__name__="down", job="a"}"#,
            r#"{__name__="up"}"#,
            r#"{__name__="up", env="prod", job="a"}"#,
            r#"{__name__="up", job="b"}"#,
        ]
    );
    assert_eq!(
        names(&[Matcher::equal("job", "")]),
        vec![r#"{__name__="up"}"#]
    );
    assert_eq!(
        names(&[
            Matcher::equal("__name__", "up"),
            Matcher::not_equal("job", "a")
        ])
        .len(),
        2
    );
    assert_eq!(names(&[Matcher::regex("job", "a|b").unwrap()]).len(), 3);
    assert_eq!(
        names(&[Matcher::not_regex("__name__", "u.*").unwrap()]),
        vec![r#"{__name__="down", job="a"}"#]
    );
    let q = db.querier(0, 10).unwrap();
    assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__", "env", "job"]);
    assert_eq!(
        q.label_names(&[Matcher::equal("__name__", "down")])
            .unwrap(),
        vec!["__name__", "job"]
    );
    assert_eq!(q.label_values("job", &[]).unwrap(), vec!["a", "b"]);
    assert_eq!(
        q.label_values("job", &[Matcher::equal("__name__", "up")])
            .unwrap(),
        vec!["a", "b"]
    );
}

#[test]
fn closed_database_refuses_work() {
    let db = db();
    let mut app = db.appender();
    db.close().unwrap();
    let err = app.append(None, &ls(&[("a", "b")]), 1, 1.0).unwrap_err();
    assert!(matches!(err, Error::Closed(_)));
    assert!(matches!(db.querier(0, 1), Err(Error::Closed(_))));
}

#[test]
fn open_creates_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let db = Db::open(&dir, Options::default()).unwrap();
    assert!(dir.is_dir());
    assert_eq!(db.dir(), Some(dir.as_path()));
    // A second open of the same directory is refused while the first is open, saying that
    // this process has it open (issue 16 item 7).
    let err = Db::open(&dir, Options::default()).err().expect("locked");
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err}");
    assert!(
        err.to_string().contains("already open in this process"),
        "{err}"
    );
    db.close().unwrap();
    Db::open(&dir, Options::default()).unwrap();
}
