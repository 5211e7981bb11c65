//! Compaction benchmark: three adjacent 2 h blocks of 10 000 series × 240 samples (30 s
//! scrapes) merged into one, reported in samples per second. Adjacent blocks take the
//! verbatim-copy path; a second case shifts the blocks by 1 h so that every series overlaps
//! and is decoded, merged and re-encoded (vertical compaction).
//!
//! Only `compact_blocks` is timed (it includes writing and fsyncing the new block); the
//! output is deleted between iterations. Block sizes are printed once.

use std::path::Path;
use std::time::{Duration, Instant};

use annals::unstable::block::{dir_size, write_block, Block, BlockOptions, SeriesChunk};
use annals::unstable::chunkenc::XorAppender;
use annals::unstable::compact::{compact_blocks, CompactOptions};
use annals::Labels;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SERIES: usize = 10_000;
const SAMPLES: usize = 240;
const STEP: i64 = 30_000;
const H2: i64 = 2 * 3_600_000;
const BASE: i64 = 1_699_999_200_000;

/// A block over `[from, from + 2h)`: `SERIES` series of `SAMPLES` samples in chunks of 120,
/// gauge-like values with a few distinct decimals, like node_exporter output.
fn make_block(parent: &Path, from: i64) -> Block {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let series = (0..SERIES).map(|s| {
        let labels = Labels::new([
            ("__name__", format!("node_metric_{}", s % 50)),
            ("instance", format!("10.0.{}.{}:9100", s / 250, s % 250)),
            ("job", "node".to_string()),
        ])
        .expect("valid labels");
        let chunks = (0..SAMPLES / 120)
            .map(|c| {
                let mut app = XorAppender::new();
                let mut min_time = i64::MAX;
                let mut max_time = i64::MIN;
                for k in 0..120 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let t = from + ((c * 120 + k) as i64) * STEP + (state % 50) as i64;
                    let v = (s as f64) * 10.0 + (state % 1000) as f64 / 100.0;
                    app.append(t, v);
                    min_time = min_time.min(t);
                    max_time = max_time.max(t);
                }
                SeriesChunk {
                    min_time,
                    max_time,
                    encoding: annals::unstable::chunkenc::Encoding::Xor,
                    data: app.into_bytes(),
                }
            })
            .collect::<Vec<_>>();
        (labels, chunks)
    });
    let mut all: Vec<_> = series.collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let opts = BlockOptions {
        time_range: Some((from, from + H2)),
        ..BlockOptions::default()
    };
    let ulid = write_block(parent, opts, all)
        .expect("write input block")
        .expect("samples");
    Block::open(parent.join(ulid.to_string())).expect("open input block")
}

fn bench_case(c: &mut Criterion, name: &str, starts: [i64; 3]) {
    let inputs = tempfile::tempdir().expect("tempdir");
    let blocks: Vec<Block> = starts
        .iter()
        .map(|&s| make_block(inputs.path(), s))
        .collect();
    let refs: Vec<&Block> = blocks.iter().collect();
    let total = (3 * SERIES * SAMPLES) as u64;
    let out = tempfile::tempdir().expect("tempdir");

    let ulid = compact_blocks(out.path(), &refs, &CompactOptions::default())
        .expect("compact")
        .expect("samples");
    let dir = out.path().join(ulid.to_string());
    let b = Block::open(&dir).expect("open output");
    let in_size: u64 = blocks.iter().map(Block::size).sum();
    println!(
        "{name}: inputs {} bytes, output {} bytes, {} samples in {} chunks",
        in_size,
        dir_size(&dir).expect("size"),
        b.meta().stats.num_samples,
        b.meta().stats.num_chunks,
    );
    drop(b);
    std::fs::remove_dir_all(&dir).expect("remove output");

    let mut g = c.benchmark_group("compact");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(total));
    g.bench_function(name, |bench| {
        bench.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let ulid = compact_blocks(out.path(), &refs, &CompactOptions::default())
                    .expect("compact")
                    .expect("samples");
                spent += start.elapsed();
                std::fs::remove_dir_all(out.path().join(ulid.to_string())).expect("remove");
            }
            spent
        })
    });
    g.finish();
}

fn compact(c: &mut Criterion) {
    bench_case(
        c,
        "3x2h_10k_series_240_samples_adjacent",
        [BASE, BASE + H2, BASE + 2 * H2],
    );
    bench_case(
        c,
        "3x2h_10k_series_240_samples_overlapping_1h",
        [BASE, BASE + H2 / 2, BASE + H2],
    );
}

criterion_group!(benches, compact);
criterion_main!(benches);
