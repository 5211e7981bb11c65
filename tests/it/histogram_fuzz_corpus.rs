//! The native-histogram fuzz targets (`histogram_chunk`, `float_histogram_chunk`,
//! `wal_histogram_record`) on stable Rust, for CI, as `fuzz_corpus.rs` does for the others:
//! each target's body runs on seeds from the Prometheus 2.42 fixtures of
//! `tests/fixtures/prometheus-2.42-{histograms,ooo}` (every histogram chunk of the block and of
//! `chunks_head/`, every histogram and m-map marker record) and on seeded mutations of them.

use std::path::{Path, PathBuf};

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/histogram_chunk.rs"]
mod histogram_chunk_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/float_histogram_chunk.rs"]
mod float_histogram_chunk_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/wal_histogram_record.rs"]
mod wal_histogram_record_target;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs `run` on each seed and on `n` seeded mutations of it (bit flips, truncations, byte
/// runs); returns the number of runs.
fn run_mutated(seeds: &[Vec<u8>], n: usize, run: fn(&[u8])) -> usize {
    let mut s = 0x5eed_4157u64;
    let mut runs = 0;
    for seed in seeds {
        run(seed);
        runs += 1;
        for _ in 0..n {
            let mut b = seed.clone();
            if !b.is_empty() {
                let r = crate::support::next_random(&mut s);
                let at = (r as usize >> 8) % b.len();
                match r % 4 {
                    0 | 1 => b[at] ^= 1 << (r >> 4 & 7),
                    2 => b.truncate(at),
                    _ => {
                        let len = ((r >> 32) as usize % 16).min(b.len() - at);
                        b[at..at + len].fill((r >> 40) as u8);
                    }
                }
            }
            run(&b);
            runs += 1;
        }
    }
    runs
}

/// Payloads of the histogram fixture's chunks of `encoding` (block and head chunks).
fn chunk_seeds(encoding: u8) -> Vec<Vec<u8>> {
    let dir = fixture("prometheus-2.42-histograms");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.join("meta.json").is_file() {
            let block = annals::unstable::block::Block::open(&p).unwrap();
            for r in block.index().all_postings().unwrap() {
                for m in block.series(r).unwrap().1 {
                    let c = block.chunk(&m).unwrap();
                    if c.encoding.as_u8() == encoding {
                        out.push(c.data.to_vec());
                    }
                }
            }
        }
    }
    let head = dir.join("chunks_head");
    for e in std::fs::read_dir(&head).unwrap() {
        let p = e.unwrap().path();
        let n: u32 = p.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let b = std::fs::read(&p).unwrap();
        for c in annals::unstable::head_chunks::decode_file(&b, n, &p).unwrap() {
            if c.encoding == encoding {
                out.push(b[c.data].to_vec());
            }
        }
    }
    out
}

#[test]
fn histogram_chunk() {
    let mut seeds = chunk_seeds(2);
    assert!(seeds.len() > 50);
    // The first 60 chunks; the push half of the target reads the same bytes as a program.
    seeds.truncate(60);
    assert!(run_mutated(&seeds, 40, histogram_chunk_target::run) > 2000);
}

#[test]
fn float_histogram_chunk() {
    let seeds = chunk_seeds(3);
    assert!(seeds.len() > 5);
    assert!(run_mutated(&seeds, 150, float_histogram_chunk_target::run) > 1000);
}

#[test]
fn wal_histogram_record() {
    let mut seeds = Vec::new();
    for (dir, types) in [
        ("prometheus-2.42-histograms/wal", [7u8, 8]),
        ("prometheus-2.42-ooo/wbl", [5, 5]),
    ] {
        let mut r = annals::unstable::wal::Reader::open_dir(&fixture(dir), 0).unwrap();
        let mut per_type = [0; 2];
        while let Some((rec, _)) = r.next_record().unwrap() {
            if let Some(i) = types.iter().position(|t| Some(t) == rec.first()) {
                if per_type[i] < 10 {
                    per_type[i] += 1;
                    seeds.push(rec.to_vec());
                }
            }
        }
    }
    assert!(seeds.len() >= 24);
    assert!(run_mutated(&seeds, 60, wal_histogram_record_target::run) > 1400);
}
