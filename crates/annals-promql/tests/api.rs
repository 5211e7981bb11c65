//! The embeddable API: options, limits (typed errors that leave the database serving),
//! statistics, and the same answers from the head, from blocks, and from both.

use std::time::Duration;

use annals::{Db, Labels, Options};
use annals_promql::{
    CancelToken, Engine, EngineOptions, Error, QueryOptions, Value, STALE_NAN_BITS,
};

const T0: i64 = 1_700_000_000_000;

/// 50 series `m{i}` with a sample every 15 s for 6 hours.
fn fill(db: &Db) {
    for k in 0..1440i64 {
        let mut app = db.appender();
        for i in 0..50 {
            let l = Labels::new([("__name__", "m"), ("i", &i.to_string()), ("job", "j")]).unwrap();
            let v = if k == 700 && i == 3 {
                f64::from_bits(STALE_NAN_BITS)
            } else {
                (k * (i + 1)) as f64
            };
            app.append(None, &l, T0 + k * 15_000, v).unwrap();
        }
        app.commit().unwrap();
    }
}

fn vector(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(s) => s.into_iter().map(|s| (s.labels.to_string(), s.v)).collect(),
        other => panic!("expected a vector, got {other:?}"),
    }
}

#[test]
fn limits_fail_with_typed_errors_and_the_database_keeps_serving() {
    let db = Db::open_in_memory(Options::default()).unwrap();
    fill(&db);
    let t = T0 + 6 * 3_600_000;
    let small = Engine::new(EngineOptions {
        max_samples: 1_000,
        ..EngineOptions::default()
    });
    // As in Prometheus, a range function holds one series' window at a time (241 samples here,
    // fine), but a range selector's result holds all of them (50 x 241).
    assert!(small.instant(&db, "sum_over_time(m[1h])", t).is_ok());
    let err = small.instant(&db, "m[1h]", t).unwrap_err();
    assert!(matches!(err, Error::TooManySamples(_)), "{err}");
    // A window of 1,441 samples.
    let err = small.instant(&db, "sum_over_time(m[6h])", t).unwrap_err();
    assert!(matches!(err, Error::TooManySamples(_)), "{err}");
    assert_eq!(err.api_type(), "execution");
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    let err = small.range(&db, "m", T0, t, 15_000).unwrap_err();
    assert!(matches!(err, Error::TooManySamples(_)), "{err}");
    // Within the limit it answers.
    let r = small.instant(&db, "count(m)", t).unwrap();
    assert_eq!(vector(r.value), vec![("{}".to_owned(), 50.0)]);

    let engine = Engine::default();
    let opts = QueryOptions {
        timeout: Some(Duration::ZERO),
        ..QueryOptions::default()
    };
    let err = engine.instant_with(&db, "sum(m)", t, &opts).unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    assert_eq!(err.api_type(), "timeout");

    let cancel = CancelToken::new();
    cancel.cancel();
    let opts = QueryOptions {
        cancel: Some(cancel),
        ..QueryOptions::default()
    };
    let err = engine
        .range_with(&db, "rate(m[5m])", T0, t, 60_000, &opts)
        .unwrap_err();
    assert!(matches!(err, Error::Canceled(_)), "{err}");
    assert_eq!(err.api_type(), "canceled");

    // Per-query limits, as a server passes them: a lower max_samples, a deadline, a flag.
    let opts = QueryOptions {
        max_samples: Some(100),
        ..QueryOptions::default()
    };
    let err = engine.instant_with(&db, "m[1h]", t, &opts).unwrap_err();
    assert!(matches!(err, Error::TooManySamples(_)), "{err}");
    let opts = QueryOptions {
        deadline: Some(std::time::Instant::now()),
        ..QueryOptions::default()
    };
    let err = engine.instant_with(&db, "sum(m)", t, &opts).unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let opts = QueryOptions {
        cancel: Some(CancelToken::from_flag(flag)),
        ..QueryOptions::default()
    };
    let err = engine.instant_with(&db, "sum(m)", t, &opts).unwrap_err();
    assert!(matches!(err, Error::Canceled(_)), "{err}");

    let r = engine.instant(&db, "sum(m{i=\"0\"})", t).unwrap();
    assert_eq!(vector(r.value), vec![("{}".to_owned(), 1439.0)]);
}

#[test]
fn bad_queries_are_typed() {
    let db = Db::open_in_memory(Options::default()).unwrap();
    let e = Engine::default();
    let err = e.instant(&db, "sum(m", 0).unwrap_err();
    let Error::Parse(p) = &err else {
        panic!("{err}")
    };
    assert_eq!((p.line, p.column), (1, 6));
    assert_eq!(
        err.to_string(),
        "1:6: parse error: unclosed left parenthesis"
    );
    assert_eq!(err.api_type(), "bad_data");
    let err = e.range(&db, "m[5m]", 0, 1000, 10).unwrap_err();
    assert!(matches!(err, Error::BadQuery(_)), "{err}");
    let err = e.range(&db, "m", 0, 1000, 0).unwrap_err();
    assert!(matches!(err, Error::BadQuery(_)), "{err}");
    let err = e.range(&db, "m", 1000, 0, 10).unwrap_err();
    assert!(matches!(err, Error::BadQuery(_)), "{err}");
    let err = e
        .instant(
            &db,
            "label_replace(vector(1), \"x\", \"y\", \"z\", \"(\")",
            0,
        )
        .unwrap_err();
    assert!(matches!(err, Error::Execution(_)), "{err}");
    assert_eq!(err.api_type(), "execution");
}

#[test]
fn stats_count_what_the_query_read() {
    let db = Db::open_in_memory(Options::default()).unwrap();
    fill(&db);
    let t = T0 + 3_600_000;
    let r = Engine::default()
        .instant(&db, "count_over_time(m{i=~\"1|2\"}[10m])", t)
        .unwrap();
    assert_eq!(r.stats.series, 2);
    // 41 samples in [t - 10m, t] for each; the reader decodes no sample after the window.
    assert!(r.stats.samples >= 82, "{:?}", r.stats);
    assert!(r.stats.peak_samples >= 41, "{:?}", r.stats);
    assert!(r.stats.total >= r.stats.eval);
    assert_eq!(
        vector(r.value),
        vec![
            ("{i=\"1\", job=\"j\"}".to_owned(), 41.0),
            ("{i=\"2\", job=\"j\"}".to_owned(), 41.0)
        ]
    );
}

/// The same data in the head only, and in blocks plus head on disk, answers the same.
#[test]
fn head_and_blocks_answer_alike() {
    let mem = Db::open_in_memory(Options::default()).unwrap();
    fill(&mem);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::default();
    opts.compaction = false;
    let disk = Db::open(dir.path(), opts).unwrap();
    fill(&disk);
    assert!(!disk.compact().unwrap().head_blocks.is_empty());
    assert!(!disk.blocks().is_empty());
    let single = Engine::new(EngineOptions {
        parallelism: 1,
        ..EngineOptions::default()
    });
    let e = Engine::default();
    let end = T0 + 6 * 3_600_000;
    for q in [
        "m{i=\"3\"}",
        "sum(rate(m[5m]))",
        "count_over_time(m[3h])",
        "max_over_time(m{i=\"3\"}[10m])",
        "topk(3, m)",
        "sum by (job) (increase(m[1h]))",
    ] {
        for t in [T0 + 3_600_000, T0 + 2 * 3_600_000, T0 + 175 * 60_000, end] {
            let a = e.instant(&mem, q, t).unwrap().value;
            let b = e.instant(&disk, q, t).unwrap().value;
            let c = single.instant(&disk, q, t).unwrap().value;
            assert_eq!(a, b, "{q} at {t}");
            assert_eq!(b, c, "{q} at {t} (one thread)");
        }
        let a = e.range(&mem, q, T0, end, 420_000).unwrap().value;
        let b = e.range(&disk, q, T0, end, 420_000).unwrap().value;
        assert_eq!(a, b, "{q} range");
    }
}
