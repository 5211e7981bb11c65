//! Head benchmarks: the per-sample paths in isolation (`append` of a known series with its
//! ref, then rollback; append + commit, which adds the apply), ingestion throughput (1 and 2
//! threads), postings intersection, and select with 1-3 matchers over 100k series.

use std::hint::black_box;
use std::thread;

use annals::unstable::index::postings;
use annals::{Db, Labels, Matcher, Options, SeriesRef};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn series(n: usize, offset: usize) -> Vec<Labels> {
    (offset..offset + n)
        .map(|i| {
            Labels::new([
                ("__name__", format!("metric_{}", i % 100).as_str()),
                ("instance", format!("host-{}:9100", i / 100).as_str()),
                ("job", if i % 2 == 0 { "node" } else { "app" }),
                ("zone", ["a", "b", "c", "d"][i % 4]),
            ])
            .expect("valid labels")
        })
        .collect()
}

/// Appends `scrapes` commits of one sample per series, as a scraper would, reusing refs.
fn ingest(db: &Db, labels: &[Labels], scrapes: i64, t0: i64) {
    let mut refs = vec![None; labels.len()];
    for s in 0..scrapes {
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            refs[i] = Some(
                app.append(refs[i], l, t0 + s * 15_000, (s * 1000 + i as i64) as f64)
                    .unwrap(),
            );
        }
        app.commit().unwrap();
    }
}

/// One scrape of 1,000 existing series per iteration, refs passed: `append` alone (rolled
/// back) and `append` + `commit` (in memory, so the difference is the apply).
fn hot_paths(c: &mut Criterion) {
    const SERIES: usize = 1000;
    let mut g = c.benchmark_group("head_hot_path_1000_series");
    g.throughput(Throughput::Elements(SERIES as u64));
    let db = Db::open_in_memory(Options::default()).unwrap();
    let labels = series(SERIES, 0);
    let mut refs: Vec<Option<SeriesRef>> = vec![None; SERIES];
    let mut app = db.appender();
    for (l, r) in labels.iter().zip(refs.iter_mut()) {
        *r = Some(app.append(None, l, 0, 0.0).unwrap());
    }
    app.commit().unwrap();
    let mut t = 0i64;
    g.bench_function("append_rollback", |b| {
        b.iter(|| {
            let mut app = db.appender();
            for (l, r) in labels.iter().zip(&refs) {
                app.append(*r, l, 15_000, 1.0).unwrap();
            }
            app.rollback().unwrap();
        })
    });
    g.bench_function("append_commit", |b| {
        b.iter(|| {
            t += 15_000;
            let mut app = db.appender();
            for (i, (l, r)) in labels.iter().zip(&refs).enumerate() {
                app.append(*r, l, t, (t / 1000 + i as i64) as f64).unwrap();
            }
            app.commit().unwrap();
        })
    });
    g.finish();
}

fn head_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_append");
    const SERIES: usize = 1000;
    const SCRAPES: i64 = 100;
    for threads in [1usize, 2] {
        g.throughput(Throughput::Elements(
            (SERIES as i64 * SCRAPES) as u64 * threads as u64,
        ));
        g.bench_with_input(
            BenchmarkId::new("threads", threads),
            &threads,
            |b, &threads| {
                let sets: Vec<Vec<Labels>> =
                    (0..threads).map(|t| series(SERIES, t * SERIES)).collect();
                b.iter(|| {
                    let db = Db::open_in_memory(Options::default()).unwrap();
                    thread::scope(|s| {
                        for set in &sets {
                            let db = db.clone();
                            s.spawn(move || ingest(&db, set, SCRAPES, 0));
                        }
                    });
                    black_box(db)
                })
            },
        );
    }
    g.finish();
}

fn postings_intersection(c: &mut Criterion) {
    let a: Vec<u64> = (0..100_000).step_by(2).collect();
    let b: Vec<u64> = (0..100_000).step_by(3).collect();
    let small: Vec<u64> = (0..100_000).step_by(997).collect();
    let mut g = c.benchmark_group("postings");
    g.throughput(Throughput::Elements((a.len() + b.len()) as u64));
    g.bench_function("intersect_50k_33k", |bench| {
        bench.iter(|| black_box(postings::intersect(vec![&a, &b])))
    });
    g.bench_function("intersect_50k_33k_101", |bench| {
        bench.iter(|| black_box(postings::intersect(vec![&a, &b, &small])))
    });
    g.bench_function("union_50k_33k", |bench| {
        bench.iter(|| black_box(postings::union(&[&a, &b])))
    });
    g.finish();
}

fn select(c: &mut Criterion) {
    let db = Db::open_in_memory(Options::default()).unwrap();
    let labels = series(100_000, 0);
    ingest(&db, &labels, 2, 0);
    let q = db.querier(0, i64::MAX).unwrap();
    let cases: Vec<(&str, Vec<Matcher>)> = vec![
        ("1_matcher_eq", vec![Matcher::equal("__name__", "metric_7")]),
        (
            "2_matchers_eq_re",
            vec![
                Matcher::equal("__name__", "metric_7"),
                Matcher::regex("zone", "a|b").unwrap(),
            ],
        ),
        (
            "3_matchers_eq_re_neq",
            vec![
                Matcher::equal("job", "app"),
                Matcher::regex("instance", "host-1.*").unwrap(),
                Matcher::not_equal("zone", "d"),
            ],
        ),
    ];
    let mut g = c.benchmark_group("select_100k_series");
    for (name, ms) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| black_box(q.select(ms).unwrap().count()))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    hot_paths,
    head_append,
    postings_intersection,
    select
);
criterion_main!(benches);
