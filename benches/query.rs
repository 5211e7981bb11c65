//! Reading through the querier, as a PromQL engine and a remote-read server will: samples per
//! second of a whole selection against the XOR decode rate of the same chunks, a range query
//! that walks each series once with forward seeks, and raw chunks (remote read's
//! `STREAMED_XOR_CHUNKS`), over 1,000 series of 4 h at 15 s (960 samples, 8 chunks each) in
//! the head.

use std::hint::black_box;

use annals::unstable::chunkenc::XorIter;
use annals::{Db, Labels, Options, SeriesSet};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SERIES: usize = 1000;
const SAMPLES: i64 = 960;
const STEP: i64 = 15_000;

fn db() -> Db {
    let mut opts = Options::default();
    opts.compaction = false;
    let db = Db::open_in_memory(opts).unwrap();
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| {
            Labels::new([
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", &(i % 8).to_string()),
                ("instance", &format!("host-{}:9100", i / 8)),
            ])
            .unwrap()
        })
        .collect();
    let mut refs = vec![None; SERIES];
    for s in 0..SAMPLES {
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            let v = (s * 3 + i as i64) as f64 * 0.25;
            refs[i] = Some(app.append(refs[i], l, s * STEP, v).unwrap());
        }
        app.commit().unwrap();
    }
    db
}

/// Reads every sample of `set` (and counts the positive ones, so none is optimised away).
fn positive_samples(set: SeriesSet) -> u64 {
    let mut n = 0u64;
    for s in set {
        for x in s.samples() {
            n += u64::from(x.unwrap().v > 0.0);
        }
    }
    n
}

fn read(c: &mut Criterion) {
    let db = db();
    let q = db.querier(0, SAMPLES * STEP).unwrap();
    let mut g = c.benchmark_group("query_1000_series_960_samples");
    g.throughput(Throughput::Elements(SERIES as u64 * SAMPLES as u64));
    g.sample_size(20);
    g.bench_function("xor_decode_of_the_raw_chunks", |b| {
        let set: Vec<_> = q.select(&[]).unwrap().collect();
        b.iter(|| {
            let mut n = 0u64;
            for s in &set {
                for c in s.chunks() {
                    for x in XorIter::new(&c.unwrap().data) {
                        n += u64::from(x.unwrap().v > 0.0);
                    }
                }
            }
            black_box(n)
        })
    });
    g.bench_function("select_only", |b| {
        b.iter(|| black_box(q.select(&[]).unwrap().count()))
    });
    g.bench_function("select_and_iterate_samples", |b| {
        b.iter(|| black_box(positive_samples(q.select(&[]).unwrap())))
    });
    g.bench_function("select_unsorted_and_iterate_samples", |b| {
        b.iter(|| black_box(positive_samples(q.select_unsorted(&[]).unwrap())))
    });
    // A range query with a 30 min step over 1 min windows (`rate(x[1m])`): each series is
    // walked once, forward; each step seeks to its window (whole chunks before it are
    // skipped undecoded) and reads to the window's end.
    g.bench_function("range_query_seek_per_step", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for s in q.select(&[]).unwrap() {
                let mut it = s.samples();
                for end in (60_000..SAMPLES * STEP).step_by(1_800_000) {
                    let mut x = it.seek(end - 60_000).map(|r| r.unwrap());
                    while let Some(smp) = x.filter(|smp| smp.t <= end) {
                        n += u64::from(smp.v > 0.0);
                        x = it.next().map(|r| r.unwrap());
                    }
                }
            }
            black_box(n)
        })
    });
    g.bench_function("raw_chunks", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for s in q.select(&[]).unwrap() {
                for c in s.chunks() {
                    n += c.unwrap().data.len();
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, read);
criterion_main!(benches);
