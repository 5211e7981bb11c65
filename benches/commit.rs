//! Commits on disk: the path of one 1,000-sample commit with refs passed (the `bench write`
//! shape: WAL encode, `write(2)`, apply; default sync policy) without and with snappy, and
//! commit throughput under each WAL sync policy: commits of 100 samples from 1 and 4 threads
//! (with `EveryCommit`, concurrent commits share fsyncs: group commit).

use std::hint::black_box;
use std::thread;
use std::time::Duration;

use annals::{Db, Labels, Options, SeriesRef, WalCompression, WalSync};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SERIES: usize = 100;
const COMMITS_PER_THREAD: i64 = 50;

fn commit_1000_samples(c: &mut Criterion) {
    const N: usize = 1000;
    let mut g = c.benchmark_group("commit_1000_samples");
    g.throughput(Throughput::Elements(N as u64));
    let labels: Vec<Labels> = (0..N)
        .map(|i| Labels::new([("__name__", "m"), ("i", &i.to_string())]).unwrap())
        .collect();
    for (name, compression) in [
        ("wal_none", WalCompression::None),
        ("wal_snappy", WalCompression::Snappy),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = Options::default();
        opts.compaction = false;
        opts.wal_compression = compression;
        let db = Db::open(dir.path(), opts).unwrap();
        let mut refs: Vec<Option<SeriesRef>> = vec![None; N];
        let mut t = 0i64;
        g.bench_function(name, |b| {
            b.iter(|| {
                t += 30_000;
                let mut app = db.appender();
                for (i, (l, r)) in labels.iter().zip(refs.iter_mut()).enumerate() {
                    *r = Some(app.append(*r, l, t, (t + i as i64) as f64).unwrap());
                }
                app.commit().unwrap();
            })
        });
        db.close().unwrap();
    }
    g.finish();
}

fn commit_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    let policies = [
        ("every_commit", WalSync::EveryCommit),
        ("interval_1s", WalSync::Interval(Duration::from_secs(1))),
        ("never", WalSync::Never),
    ];
    for (name, sync) in policies {
        for threads in [1usize, 4] {
            g.throughput(Throughput::Elements(
                threads as u64 * COMMITS_PER_THREAD as u64,
            ));
            g.bench_with_input(
                BenchmarkId::new(name, format!("{threads}_threads")),
                &threads,
                |b, &threads| {
                    let dir = tempfile::tempdir().unwrap();
                    let mut opts = Options::default();
                    opts.wal_sync = sync;
                    opts.compaction = false;
                    let db = Db::open(dir.path(), opts).unwrap();
                    let sets: Vec<Vec<Labels>> = (0..threads)
                        .map(|t| {
                            (0..SERIES)
                                .map(|i| {
                                    Labels::new([
                                        ("__name__", "m"),
                                        ("t", &t.to_string()),
                                        ("i", &i.to_string()),
                                    ])
                                    .unwrap()
                                })
                                .collect()
                        })
                        .collect();
                    let mut round = 0i64;
                    b.iter(|| {
                        round += 1;
                        thread::scope(|s| {
                            for set in &sets {
                                let db = db.clone();
                                s.spawn(move || {
                                    for c in 0..COMMITS_PER_THREAD {
                                        let mut app = db.appender();
                                        let t = (round * COMMITS_PER_THREAD + c) * 15_000;
                                        for l in set {
                                            app.append(None, l, t, c as f64).unwrap();
                                        }
                                        app.commit().unwrap();
                                    }
                                });
                            }
                        });
                        black_box(&db);
                    });
                    db.close().unwrap();
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, commit_1000_samples, commit_throughput);
criterion_main!(benches);
