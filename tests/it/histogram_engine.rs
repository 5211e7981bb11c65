//! Native histograms stored end to end (issue 15 item 2): annals opens the directory a real
//! Prometheus 2.42 wrote with histograms and returns every sample it holds; histograms that
//! annals writes (append, commit, head compaction into a block, close) are read back by annals
//! after reopening, by a Prometheus 2.42 server started on the directory and by `promtool`.

use std::collections::BTreeMap;
use std::path::Path;

use annals::histogram::{FloatHistogram, Histogram};
use annals::{Db, Labels, Options, Value};

use crate::histogram_fixtures::{fixture, load, prometheus_agrees, union, Canonical};

const T0: i64 = 1_700_006_400_000;

type Contents = BTreeMap<String, BTreeMap<i64, Canonical>>;

/// A series' name, labels and values.
type SeriesValues = (String, Labels, Vec<(i64, Value)>);

fn canonical(v: &Value) -> Canonical {
    match v {
        Value::Float(f) => Canonical::Float(f.to_bits()),
        Value::Histogram(h) => Canonical::of(&h.to_float()),
        Value::FloatHistogram(h) => Canonical::of(h),
    }
}

/// Every series with its values, as a query over all time returns them.
fn contents(db: &Db) -> Contents {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    q.select(&[])
        .unwrap()
        .map(|s| {
            let values = s
                .values()
                .map(|r| {
                    let (t, v) = r.unwrap();
                    (t, canonical(&v))
                })
                .collect();
            (s.labels().to_string(), values)
        })
        .collect()
}

fn opts() -> Options {
    let mut o = Options::default();
    o.compaction = false;
    o.retention_ms = None;
    o
}

/// `{a="b", c="d"}` (how the fixture helpers name series) back into labels.
fn parse_labels(s: &str) -> Labels {
    let inner = s.trim_start_matches('{').trim_end_matches('}');
    let pairs: Vec<(String, String)> = inner
        .split(", ")
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect();
    Labels::new(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap()
}

fn assert_same(got: &Contents, want: &Contents, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: series"
    );
    for (s, w) in want {
        let g = &got[s];
        assert_eq!(g.len(), w.len(), "{what}: {s}: number of samples");
        for ((t, c), (gt, gc)) in w.iter().zip(g) {
            assert_eq!((t, c), (gt, gc), "{what}: {s}");
        }
    }
}

/// The fixture opened read-only and read-write, and after a close and reopen: annals returns
/// every sample the directory holds (block, m-mapped head chunks, WAL), histograms included,
/// exactly as the fixture's own decoding finds them (which
/// `histogram_fixture_matches_prometheus_api` checks against Prometheus's query API).
#[test]
fn annals_reads_every_sample_of_the_prometheus_histogram_fixture() {
    let src = fixture("prometheus-2.42-histograms");
    let want = union(&load(&src));
    assert_eq!(want.len(), 9);
    let tmp = tempfile::tempdir().unwrap();
    crate::promtool::copy_dir(&src, tmp.path());

    let db = Db::open_read_only(tmp.path(), opts()).unwrap();
    assert_same(&contents(&db), &want, "read-only");
    drop(db);

    let db = Db::open(tmp.path(), opts()).unwrap();
    let stats = db.replay_stats().unwrap().clone();
    assert!(stats.mmapped_chunks > 0, "{stats:?}");
    assert_same(&contents(&db), &want, "read-write");

    // `samples()` yields the float samples only; `values()` seeks.
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    for s in q.select(&[]).unwrap() {
        let name = s.labels().to_string();
        let floats: Vec<(i64, u64)> = s
            .samples()
            .map(|x| x.map(|x| (x.t, x.v.to_bits())).unwrap())
            .collect();
        let want_floats: Vec<(i64, u64)> = want[&name]
            .iter()
            .filter_map(|(t, c)| match c {
                Canonical::Float(b) => Some((*t, *b)),
                _ => None,
            })
            .collect();
        assert_eq!(floats, want_floats, "{name}");
        let mid = T0 + 3 * 3_600_000 + 1;
        let mut it = s.values();
        let (t, v) = it.seek(mid).unwrap().unwrap();
        let (wt, wv) = want[&name].range(mid..).next().unwrap();
        assert_eq!((t, &canonical(&v)), (*wt, wv), "{name}: seek");
    }
    db.close().unwrap();
    assert!(
        !std::fs::read_dir(tmp.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("chunk_snapshot")),
        "no memory snapshot is written while the head holds histograms"
    );
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_same(&contents(&db), &want, "reopened");
    db.close().unwrap();
}

/// Appends the fixture's WAL samples (every sample Prometheus's remote-write receiver took)
/// through annals's API in time order, ten minutes of every series at a time (as the fixture's
/// requests were sent), one commit per series and sample type; returns what a query must
/// return.
fn append_fixture_samples(db: &Db) -> Contents {
    let d = load(&fixture("prometheus-2.42-histograms"));
    let mut want = Contents::new();
    // In time order: a commit of 2.42 logs integer before float histograms, so the log order
    // of one series is not always time order.
    let series: Vec<SeriesValues> = d
        .wal
        .iter()
        .map(|(name, samples)| {
            let mut samples: Vec<(i64, Value)> = samples
                .iter()
                .map(|(t, v)| {
                    let v = match v {
                        crate::histogram_fixtures::Value::Float(b) => {
                            Value::Float(f64::from_bits(*b))
                        }
                        crate::histogram_fixtures::Value::Int(h) => Value::Histogram(h.clone()),
                        crate::histogram_fixtures::Value::FloatH(h) => {
                            Value::FloatHistogram(h.clone())
                        }
                    };
                    (*t, v)
                })
                .collect();
            samples.sort_by_key(|s| s.0);
            samples.dedup_by_key(|s| s.0);
            (name.clone(), parse_labels(name), samples)
        })
        .collect();
    let mut refs = vec![None; series.len()];
    let step = 10 * 60_000;
    for round in 0..24 {
        let (from, to) = (T0 + round * step, T0 + (round + 1) * step);
        for (i, (name, labels, samples)) in series.iter().enumerate() {
            let w = want.entry(name.clone()).or_default();
            let mut app = db.appender();
            let mut kind = None;
            for (t, v) in samples.iter().filter(|s| from <= s.0 && s.0 < to) {
                let k = std::mem::discriminant(v);
                if kind.is_some_and(|x| x != k) {
                    app.commit().unwrap();
                    app = db.appender();
                }
                kind = Some(k);
                let res = match v {
                    Value::Float(f) => app.append(refs[i], labels, *t, *f),
                    Value::Histogram(h) => app.append_histogram(refs[i], labels, *t, h),
                    Value::FloatHistogram(h) => app.append_float_histogram(refs[i], labels, *t, h),
                };
                refs[i] = Some(res.unwrap_or_else(|e| panic!("{name} at {t}: {e}")));
                w.insert(*t, canonical(v));
            }
            app.commit().unwrap();
        }
    }
    assert_eq!(want.values().map(BTreeMap::len).sum::<usize>(), 9 * 480);
    want
}

/// Histograms written by annals (append, commit, head compaction into a block, close) come
/// back from annals after reopening, and a Prometheus 2.42 server started on the directory
/// returns the same histograms (buckets, counts, sums) from the block and from the head.
#[test]
fn histograms_written_by_annals_read_back_by_annals_and_prometheus() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let db = Db::open(&dir, opts()).unwrap();
    let want = append_fixture_samples(&db);
    assert_same(&contents(&db), &want, "head");
    let stats = db.compact().unwrap();
    assert_eq!(stats.head_blocks.len(), 1, "{stats:?}");
    assert_same(&contents(&db), &want, "block and head");
    let blocks = db.blocks();
    assert_eq!(blocks.len(), 1);
    db.close().unwrap();

    let db = Db::open(&dir, opts()).unwrap();
    assert_same(&contents(&db), &want, "reopened");
    // The block holds histogram chunks, and the head chunk files did (encodings 2 and 3).
    let q = db.querier(T0, T0 + 2 * 3_600_000 - 1).unwrap();
    let mut encodings = std::collections::BTreeSet::new();
    for s in q.select(&[]).unwrap() {
        for c in s.chunks() {
            encodings.insert(c.unwrap().encoding.as_u8());
        }
    }
    assert_eq!(encodings.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    db.close().unwrap();

    // Prometheus 2.42 on what annals wrote. Its query path mishandles the ten float
    // histograms before integer stale markers of one series (see
    // `histogram_fixture_matches_prometheus_api`): those are left out of the count.
    let quirk_series = r#"{__name__="fx_float_stale_seconds", job="fixture"}"#;
    let quirk = T0 + 460 * 30_000;
    let expected = want
        .iter()
        .flat_map(|(s, m)| m.iter().map(move |(t, c)| (s, t, c)))
        .filter(|(s, t, c)| match c {
            Canonical::Histogram { sum, .. } => {
                *sum != annals::STALE_NAN_BITS && !(*s == quirk_series && **t >= quirk)
            }
            Canonical::Float(_) => false,
        })
        .count();
    if let Some(n) = prometheus_agrees(&dir, &want) {
        assert_eq!(n, expected);
    }
}

/// A histogram that Prometheus 2.42 would not store, out of order, duplicate, out of bounds
/// or mixed with floats at one timestamp is refused with the typed errors floats get; a float
/// stale marker after a histogram is stored as a histogram stale marker.
#[test]
fn histogram_appends_are_validated_like_floats() {
    let db = Db::open_in_memory(opts()).unwrap();
    let l = Labels::new([("__name__", "h")]).unwrap();
    let h = |count: u64| Histogram {
        count,
        sum: count as f64,
        positive_spans: vec![annals::histogram::Span {
            offset: 0,
            length: 1,
        }],
        positive_buckets: vec![count as i64],
        ..Histogram::default()
    };
    let mut app = db.appender();
    let r = app.append_histogram(None, &l, 1000, &h(1)).unwrap();
    let bad = Histogram { count: 0, ..h(5) };
    assert!(matches!(
        app.append_histogram(Some(r), &l, 2000, &bad),
        Err(annals::Error::InvalidHistogram(_))
    ));
    assert!(matches!(
        app.append_histogram(Some(r), &l, 500, &h(1)),
        Err(annals::Error::OutOfOrderSample { .. })
    ));
    // The same histogram again is accepted and stores nothing; another one is a duplicate.
    app.append_histogram(Some(r), &l, 1000, &h(1)).unwrap();
    assert!(matches!(
        app.append_histogram(Some(r), &l, 1000, &h(2)),
        Err(annals::Error::DuplicateSample { .. })
    ));
    // A float histogram follows integer ones held by the same appender; an integer one after
    // it would apply before it (WAL record order) and is refused.
    app.append_float_histogram(Some(r), &l, 3000, &h(3).to_float())
        .unwrap();
    assert!(matches!(
        app.append_histogram(Some(r), &l, 4000, &h(4)),
        Err(annals::Error::OutOfOrderSample { .. })
    ));
    assert!(matches!(
        app.append(Some(r), &l, 4000, 1.0),
        Err(annals::Error::OutOfOrderSample { .. })
    ));
    app.commit().unwrap();

    let mut app = db.appender();
    assert!(matches!(
        app.append(Some(r), &l, 3000, 1.0),
        Err(annals::Error::DuplicateSample { .. })
    ));
    app.append_float_histogram(Some(r), &l, 3000, &h(3).to_float())
        .unwrap();
    assert_eq!(app.pending(), 0, "an exact repeat stores nothing");
    // A float stale marker after a float histogram becomes a float-histogram stale marker.
    app.append(Some(r), &l, 5000, annals::stale_nan()).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    app.append(Some(r), &l, 6000, 2.0).unwrap();
    assert!(matches!(
        app.append_histogram(Some(r), &l, 6000, &h(1)),
        Err(annals::Error::DuplicateSample { .. })
    ));
    app.commit().unwrap();

    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let s = q.select(&[]).unwrap().next().unwrap();
    let got: Vec<(i64, Value)> = s.values().map(Result::unwrap).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], (1000, Value::Histogram(h(1))));
    assert!(matches!(&got[1], (3000, Value::FloatHistogram(x)) if *x == h(3).to_float()));
    assert!(matches!(&got[2], (5000, Value::FloatHistogram(x)) if x.is_stale()));
    assert!(matches!(got[3], (6000, Value::Float(v)) if v == 2.0));
    let floats: Vec<i64> = s.samples().map(|x| x.unwrap().t).collect();
    assert_eq!(floats, [6000]);
    let encodings: Vec<u8> = s.chunks().map(|c| c.unwrap().encoding.as_u8()).collect();
    assert_eq!(encodings, [2, 3, 1]);
    let _ = FloatHistogram::default();
}

/// Replay rebuilds exactly what commits applied: the same chunks (headers, recodings) from
/// the WAL alone, and from the m-mapped head chunks plus the WAL.
#[test]
fn histogram_head_survives_reopen_from_the_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.snapshot_on_close = false;
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    let want = append_fixture_samples(&db);
    let chunks = |db: &Db| -> Vec<(String, u8, i64, i64, Vec<u8>)> {
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        q.select(&[])
            .unwrap()
            .flat_map(|s| {
                let name = s.labels().to_string();
                s.chunks()
                    .map(|c| {
                        let c = c.unwrap();
                        (
                            name.clone(),
                            c.encoding.as_u8(),
                            c.min_time,
                            c.max_time,
                            c.data.to_vec(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let live = chunks(&db);
    let same = |got: &[(String, u8, i64, i64, Vec<u8>)], what: &str| {
        let show = |c: &[(String, u8, i64, i64, Vec<u8>)]| -> Vec<(String, u8, i64, i64, usize)> {
            c.iter()
                .map(|x| (x.0.clone(), x.1, x.2, x.3, x.4.len()))
                .collect()
        };
        assert_eq!(show(got), show(&live), "{what}: chunk ranges");
        let last_of_series = |i: usize| live.get(i + 1).is_none_or(|n| n.0 != live[i].0);
        for (i, (g, l)) in got.iter().zip(&live).enumerate() {
            if g.4 == l.4 {
                continue;
            }
            // The open chunk of a histogram series is rebuilt from the WAL after the m-mapped
            // chunks: its first sample starts a chunk without the chunk before it, so its
            // counter-reset header is "unknown" (2.42 does the same: `s.app` is nil after
            // a restart); everything else is identical.
            let header_only =
                g.1 != 1
                    && last_of_series(i)
                    && g.4.len() == l.4.len()
                    && g.4.iter().zip(&l.4).enumerate().all(|(k, (a, b))| {
                        a == b || (k == 2 && a & 0x3f == b & 0x3f && a >> 6 == 0)
                    });
            assert!(
                header_only,
                "{what}: bytes of {:?} differ",
                (&g.0, g.1, g.2, g.3)
            );
        }
    };
    db.close().unwrap();
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    assert_same(&contents(&db), &want, "reopened");
    same(&chunks(&db), "m-mapped chunks and WAL");
    db.close().unwrap();
    std::fs::remove_dir_all(tmp.path().join("chunks_head")).unwrap();
    let db = Db::open(tmp.path(), o).unwrap();
    assert_same(&contents(&db), &want, "WAL only");
    same(&chunks(&db), "WAL only");
    db.close().unwrap();
    let _ = Path::new("");
}
