//! XOR chunk append and decode speed on 120-sample chunks (the head's target size, §2.8).
//!
//! Data: 15 s scrape interval with a few ms of jitter; a counter (integer increments), a
//! float-seconds counter (node_cpu_seconds_total-like), a gauge (random walk with two
//! decimals), and every chunk of the real node-exporter fixture blocks.
//!
//! `cargo bench --bench chunkenc`; per-sample time = reported time / 120 (criterion's
//! throughput line gives samples/s directly). On a shared, busy machine wall-clock times
//! include waiting for a core: `ANNALS_BENCH_CPU_TIME=1` measures this thread's CPU time
//! instead (Unix only).

use annals::unstable::chunkenc::{XorAppender, XorIter};
use annals::Sample;
use criterion::measurement::Measurement;
#[cfg(unix)]
use criterion::measurement::{ValueFormatter, WallTime};
use criterion::{Criterion, Throughput};
use std::hint::black_box;
#[cfg(unix)]
use std::time::Duration;

const SAMPLES_PER_CHUNK: usize = 120;

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 15 s scrapes with -5..=5 ms of jitter.
fn timestamps(rng: &mut Rng) -> Vec<i64> {
    let base = 1_700_000_000_000i64;
    (0..SAMPLES_PER_CHUNK as i64)
        .map(|i| base + i * 15_000 + rng.below(11) as i64 - 5)
        .collect()
}

fn series(kind: &str, seed: u64) -> Vec<Sample> {
    let mut rng = Rng(seed | 1);
    let ts = timestamps(&mut rng);
    let mut v = match kind {
        "counter" => 1_234_567.0,
        "seconds" => 81_234.56,
        _ => 512.25,
    };
    ts.into_iter()
        .map(|t| {
            match kind {
                // Requests served: mostly small integer increments, sometimes none.
                "counter" => v += rng.below(40) as f64,
                // CPU seconds: increments with centisecond resolution.
                "seconds" => v += rng.below(1500) as f64 / 100.0,
                // A gauge wandering up and down with two decimals.
                _ => v = ((v * 100.0) + rng.below(2001) as f64 - 1000.0).round() / 100.0,
            }
            Sample { t, v }
        })
        .collect()
}

fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut app = XorAppender::new();
    for s in samples {
        app.append(s.t, s.v);
    }
    app.into_bytes()
}

/// The XOR payloads of a block segment file (§1.4); the bench trusts the fixture.
fn fixture_chunks() -> Vec<Vec<u8>> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/prometheus-2.42/node-exporter-blocks"
    );
    let mut out = Vec::new();
    let Ok(blocks) = std::fs::read_dir(dir) else {
        return out;
    };
    for block in blocks.flatten() {
        let Ok(file) = std::fs::read(block.path().join("chunks/000001")) else {
            continue;
        };
        let mut i = 8;
        while i < file.len() {
            let (mut len, mut shift) = (0usize, 0);
            loop {
                let b = file[i];
                i += 1;
                len |= ((b & 0x7f) as usize) << shift;
                shift += 7;
                if b < 0x80 {
                    break;
                }
            }
            out.push(file[i + 1..i + 1 + len].to_vec());
            i += 1 + len + 4;
        }
    }
    out
}

fn bench_append<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(SAMPLES_PER_CHUNK as u64));
    for kind in ["counter", "seconds", "gauge"] {
        let samples = series(kind, 42);
        g.bench_function(format!("{kind}/120"), |b| {
            b.iter(|| {
                let mut app = XorAppender::new();
                for s in black_box(&samples) {
                    app.append(s.t, s.v);
                }
                black_box(app.bytes().len())
            })
        });
    }

    let fixture: Vec<Vec<Sample>> = fixture_chunks()
        .iter()
        .map(|c| XorIter::new(c).map(|s| s.expect("valid chunk")).collect())
        .collect();
    let total: usize = fixture.iter().map(Vec::len).sum();
    if total > 0 {
        g.throughput(Throughput::Elements(total as u64));
        g.bench_function("node_exporter_fixture", |b| {
            b.iter(|| {
                let mut bytes = 0;
                for samples in &fixture {
                    let mut app = XorAppender::new();
                    for s in black_box(samples) {
                        app.append(s.t, s.v);
                    }
                    bytes += app.bytes().len();
                }
                black_box(bytes)
            })
        });
    }
    g.finish();
}

fn bench_decode<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(SAMPLES_PER_CHUNK as u64));
    for kind in ["counter", "seconds", "gauge"] {
        let chunk = encode(&series(kind, 42));
        g.bench_function(format!("{kind}/120"), |b| {
            b.iter(|| {
                let mut acc = 0.0;
                let mut last = 0;
                for s in XorIter::new(black_box(&chunk)) {
                    let s = s.expect("valid chunk");
                    acc += s.v;
                    last = s.t;
                }
                black_box((acc, last))
            })
        });
    }

    let chunks = fixture_chunks();
    let total: usize = chunks
        .iter()
        .map(|c| XorIter::new(c).num_samples() as usize)
        .sum();
    if total > 0 {
        g.throughput(Throughput::Elements(total as u64));
        g.bench_function("node_exporter_fixture", |b| {
            b.iter(|| {
                let mut acc = 0.0;
                for chunk in &chunks {
                    for s in XorIter::new(black_box(chunk)) {
                        acc += s.expect("valid chunk").v;
                    }
                }
                black_box(acc)
            })
        });
    }
    g.finish();
}

/// CPU time of the calling thread (criterion runs a benchmark on one thread).
#[cfg(unix)]
struct ThreadCpuTime;

#[cfg(unix)]
impl ThreadCpuTime {
    fn now() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call's duration.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

#[cfg(unix)]
impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        Self::now()
    }
    fn end(&self, start: Duration) -> Duration {
        Self::now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

fn run<M: Measurement>(mut c: Criterion<M>) {
    bench_append(&mut c);
    bench_decode(&mut c);
    c.final_summary();
}

fn main() {
    #[cfg(unix)]
    if std::env::var_os("ANNALS_BENCH_CPU_TIME").is_some() {
        return run(Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args());
    }
    run(Criterion::default().configure_from_args());
}
