//! WAL benchmarks: encoding a 1000-sample Samples record alone (the commit's per-sample WAL
//! work), `log()` throughput of such records (encode + log) without and with snappy, and WAL
//! bytes per sample for regular 15 s scrapes of ~1000 real series.
//!
//! Before measuring, the bench checks that `log()` does not allocate in steady state (a
//! counting global allocator; it panics otherwise) and prints the size figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicU64, Ordering};

use annals::unstable::wal::{self, Compression, RefSample, Wal, WalOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/node-exporter-15s.om.gz"
);

/// Real node_exporter scrapes (507 series × 900 scrapes at 15 s), as one value vector per
/// scrape in a fixed series order; each series appears twice (two "instances") to make
/// 1014 series.
fn scrapes() -> Vec<(i64, Vec<f64>)> {
    let f = std::fs::File::open(DATA).expect("node exporter data in ../shared/data");
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    let mut index = std::collections::HashMap::new();
    let mut by_time: std::collections::BTreeMap<i64, Vec<(usize, f64)>> = Default::default();
    for line in r.lines() {
        let line = line.expect("read data");
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut it = line.rsplitn(3, ' ');
        let (Some(ts), Some(v), Some(series)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let t = (ts.parse::<f64>().expect("timestamp") * 1000.0) as i64;
        let v: f64 = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().expect("value"),
        };
        let n = index.len();
        let i = *index.entry(series.to_owned()).or_insert(n);
        by_time.entry(t).or_default().push((i, v));
    }
    let n = index.len();
    by_time
        .into_iter()
        .map(|(t, vs)| {
            let mut row = vec![0.0; 2 * n];
            for (i, v) in vs {
                row[i] = v;
                row[n + i] = v;
            }
            (t, row)
        })
        .collect()
}

fn samples(t: i64, row: &[f64]) -> impl Iterator<Item = RefSample> + Clone + '_ {
    row.iter().enumerate().map(move |(i, &v)| RefSample {
        series_ref: i as u64 + 1,
        t,
        v,
    })
}

fn opts(compression: Compression) -> WalOptions {
    WalOptions {
        compression,
        ..WalOptions::default()
    }
}

/// Fails loudly if `log()` of an encoded 1000-sample record allocates in steady state.
fn check_no_allocation(rows: &[(i64, Vec<f64>)]) {
    for c in [Compression::None, Compression::Snappy] {
        let d = tempfile::tempdir().expect("tempdir");
        let w = Wal::open(d.path(), opts(c)).expect("open");
        let mut buf = Vec::new();
        let mut run = |rows: &[(i64, Vec<f64>)]| {
            for (t, row) in rows {
                buf.clear();
                wal::encode_samples(samples(*t, &row[..1000]), &mut buf);
                w.log(&[&buf]).expect("log");
            }
        };
        run(&rows[..20]); // warm-up: buffers reach their steady size
        let before = ALLOCS.load(Ordering::Relaxed);
        run(&rows[20..220]);
        let n = ALLOCS.load(Ordering::Relaxed) - before;
        println!("allocations in 200 × (encode + log) of 1000 samples, {c:?}: {n}");
        assert_eq!(n, 0, "the WAL hot path allocates");
    }
}

fn report_size(rows: &[(i64, Vec<f64>)]) {
    for c in [Compression::None, Compression::Snappy] {
        let d = tempfile::tempdir().expect("tempdir");
        let w = Wal::open(d.path(), opts(c)).expect("open");
        let mut buf = Vec::new();
        let mut n = 0u64;
        for (t, row) in rows {
            buf.clear();
            wal::encode_samples(samples(*t, row), &mut buf);
            w.log(&[&buf]).expect("log");
            n += row.len() as u64;
        }
        let bytes = w.stats().bytes_written;
        println!(
            "WAL size, {} series × {} scrapes at 15 s, {c:?}: {bytes} bytes, {:.2} bytes/sample",
            rows[0].1.len(),
            rows.len(),
            bytes as f64 / n as f64
        );
    }
}

fn bench_log(c: &mut Criterion, rows: &[(i64, Vec<f64>)]) {
    let mut g = c.benchmark_group("wal_log_1000_samples");
    g.throughput(Throughput::Elements(1000));
    for comp in [Compression::None, Compression::Snappy] {
        let d = tempfile::tempdir().expect("tempdir");
        let w = Wal::open(d.path(), opts(comp)).expect("open");
        let mut buf = Vec::new();
        let mut i = 0;
        g.bench_function(format!("{comp:?}"), |b| {
            b.iter(|| {
                let (t, row) = &rows[i % rows.len()];
                // Later passes over the data move forward in time, like real scrapes.
                let t = t + (i / rows.len()) as i64 * 15_000 * rows.len() as i64;
                i += 1;
                buf.clear();
                wal::encode_samples(samples(t, &row[..1000]), &mut buf);
                w.log(&[&buf]).expect("log")
            })
        });
        w.close().expect("close");
    }
    g.finish();
}

fn bench_encode(c: &mut Criterion, rows: &[(i64, Vec<f64>)]) {
    let mut g = c.benchmark_group("wal_encode_1000_samples");
    g.throughput(Throughput::Elements(1000));
    let mut buf = Vec::new();
    let mut i = 0;
    g.bench_function("samples_record", |b| {
        b.iter(|| {
            let (t, row) = &rows[i % rows.len()];
            i += 1;
            buf.clear();
            wal::encode_samples(samples(*t, &row[..1000]), &mut buf);
            buf.len()
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let rows = scrapes();
    check_no_allocation(&rows);
    report_size(&rows);
    bench_encode(c, &rows);
    bench_log(c, &rows);
}

criterion_group!(wal_benches, benches);
criterion_main!(wal_benches);
