//! Appends ~10 M realistic samples to XOR chunks of 120 and prints the CPU time per sample; the
//! workload for counting instructions per sample of `XorAppender::append` with valgrind.
//!
//! Series: 15 s or 30 s scrape intervals, most scrapes on time and some with a few ms of
//! jitter; integer counters, centisecond counters (CPU seconds), two-decimal gauges and
//! constant gauges (`up`-like): about 3.4 bytes per sample. Samples are generated before the measured loop.
//!
//! ```text
//! cargo build --release --example xor_append
//! valgrind --tool=callgrind --toggle-collect='xor_append::encode_all' \
//!     target/release/examples/xor_append
//! ```
//!
//! Instructions per sample = the `Collected` count divided by the printed sample count.

use std::hint::black_box;
use std::time::Duration;

use annals::unstable::chunkenc::XorAppender;
use annals::Sample;

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

/// One chunk of one series; `k % 8` picks the kind: two in eight are integer counters, one a
/// CPU-seconds counter, one a noisy gauge and four constant gauges (as most of a real
/// Prometheus's series: `up`, info metrics, idle resources).
fn chunk(rng: &mut Rng, k: usize, out: &mut Vec<Sample>) {
    let interval = if k.is_multiple_of(3) { 30_000 } else { 15_000 };
    let mut t = 1_700_000_000_000i64 + rng.below(interval as u64) as i64;
    let kind = (k % 8).min(4);
    let mut v = match kind {
        0 | 1 => rng.below(10_000_000) as f64,
        2 => rng.below(1_000_000) as f64 / 100.0,
        3 => rng.below(100_000) as f64 / 100.0,
        _ => 1.0,
    };
    for _ in 0..SAMPLES_PER_CHUNK {
        // Three scrapes in four land on time; the others are off by up to ±5 ms.
        let jitter = if rng.below(4) == 0 {
            rng.below(11) as i64 - 5
        } else {
            0
        };
        out.push(Sample { t: t + jitter, v });
        t += interval;
        match kind {
            // Requests served: small integer increments, sometimes none.
            0 | 1 => v += rng.below(40) as f64,
            // CPU seconds: increments with centisecond resolution.
            2 => v += rng.below(1500) as f64 / 100.0,
            // A gauge wandering up and down with two decimals.
            3 => v = ((v * 100.0) + rng.below(2001) as f64 - 1000.0).round() / 100.0,
            // A constant gauge.
            _ => {}
        }
    }
}

/// CPU time of the calling thread: on a shared machine, wall-clock time would include waiting
/// for a core.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Encodes every 120-sample chunk of `samples`; returns the total payload bytes.
#[inline(never)]
fn encode_all(samples: &[Sample]) -> usize {
    let mut bytes = 0;
    for chunk in samples.chunks(SAMPLES_PER_CHUNK) {
        let mut app = XorAppender::new();
        for s in chunk {
            app.append(s.t, s.v);
        }
        bytes += black_box(app.bytes()).len();
    }
    bytes
}

fn main() {
    let chunks: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("number of chunks"))
        .unwrap_or(83_334);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut samples = Vec::with_capacity(chunks * SAMPLES_PER_CHUNK);
    for k in 0..chunks {
        chunk(&mut rng, k, &mut samples);
    }
    let start = thread_cpu_time();
    let bytes = encode_all(black_box(&samples));
    let elapsed = thread_cpu_time() - start;
    println!(
        "{} samples, {} chunk bytes ({:.3} bytes/sample), {:.2} ns/sample (thread CPU time)",
        samples.len(),
        bytes,
        bytes as f64 / samples.len() as f64,
        elapsed.as_nanos() as f64 / samples.len() as f64
    );
}
