//! The fuzz targets on stable Rust, for CI: each target's own body (the file under
//! `fuzz/fuzz_targets/`, compiled here through a stand-in for `libfuzzer_sys::fuzz_target!`)
//! runs on a seed corpus built from the Prometheus fixtures and on seeded mutations of it
//! (bit flips, truncations, byte splices). This is a short, deterministic fuzz run: a crash
//! here is a crash of the target. The full coverage-guided runs use `cargo fuzz` (nightly).

use std::path::{Path, PathBuf};

/// Turns a fuzz target's body into `pub fn run(data: &[u8])`; reached by the targets'
/// `use libfuzzer_sys::fuzz_target;` through `extern crate self as libfuzzer_sys` in main.rs.
#[macro_export]
macro_rules! fuzz_target {
    (|$data:ident: &[u8]| $body:block) => {
        pub fn run($data: &[u8]) $body
    };
}

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/tombstones.rs"]
mod tombstones_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/meta_json.rs"]
mod meta_json_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/db_model.rs"]
mod db_model_target;

#[allow(unused_attributes, unused_imports, clippy::manual_flatten)]
#[path = "../../fuzz/fuzz_targets/block_files.rs"]
mod block_files_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/index_reader.rs"]
mod index_reader_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/wal_segment.rs"]
mod wal_segment_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/wal_record.rs"]
mod wal_record_target;

#[allow(unused_attributes, unused_imports, clippy::single_match)]
#[path = "../../fuzz/fuzz_targets/xor_chunk.rs"]
mod xor_chunk_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/selector_parse.rs"]
mod selector_parse_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/head_chunks.rs"]
mod head_chunks_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../fuzz/fuzz_targets/mem_snapshot.rs"]
mod mem_snapshot_target;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/prometheus-2.42")
}

fn blocks() -> Vec<PathBuf> {
    let mut v = vec![fixtures().join("promtool-2.42-block")];
    let ne = fixtures().join("node-exporter-blocks");
    let mut more: Vec<PathBuf> = std::fs::read_dir(ne)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    more.sort();
    v.extend(more);
    v
}

fn with_prefix(prefix: u8, b: &[u8]) -> Vec<u8> {
    let mut v = vec![prefix];
    v.extend_from_slice(b);
    v
}

/// Seeded mutations of each seed: the seed itself, then `n` variants.
fn run_mutated(seeds: &[Vec<u8>], n: usize, keep_prefix: usize, run: fn(&[u8])) -> usize {
    let mut s = 0x0dd_ba11u64;
    let mut runs = 0;
    for seed in seeds {
        run(seed);
        runs += 1;
        for _ in 0..n {
            let mut b = seed.clone();
            let body = b.len().saturating_sub(keep_prefix);
            if body > 0 {
                let r = crate::support::next_random(&mut s);
                let at = keep_prefix + (r as usize >> 8) % body;
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

#[test]
fn tombstones() {
    let mut seeds = Vec::new();
    for b in blocks() {
        seeds.push(with_prefix(
            1,
            &std::fs::read(b.join("tombstones")).unwrap(),
        ));
    }
    let mut t = annals::unstable::tombstones::Tombstones::new();
    for r in [1u64, 7, 300] {
        t.add_interval(r, annals::unstable::tombstones::Interval::new(-5, 10));
        t.add_interval(
            r,
            annals::unstable::tombstones::Interval::new(100, i64::MAX),
        );
    }
    seeds.push(with_prefix(1, &t.encode()));
    seeds.push(with_prefix(0, &t.encode()));
    assert!(run_mutated(&seeds, 300, 1, tombstones_target::run) > 1000);
}

#[test]
fn meta_json() {
    let seeds: Vec<Vec<u8>> = blocks()
        .iter()
        .map(|b| std::fs::read(b.join("meta.json")).unwrap())
        .collect();
    assert!(run_mutated(&seeds, 400, 0, meta_json_target::run) > 1000);
}

#[test]
fn block_files() {
    let mut seeds = Vec::new();
    for b in blocks() {
        seeds.push(with_prefix(
            0x80,
            &std::fs::read(b.join("chunks/000001")).unwrap(),
        ));
        seeds.push(with_prefix(
            0x81,
            &std::fs::read(b.join("tombstones")).unwrap(),
        ));
        seeds.push(with_prefix(
            0x02,
            &std::fs::read(b.join("meta.json")).unwrap(),
        ));
    }
    assert!(run_mutated(&seeds, 60, 1, block_files_target::run) > 500);
}

#[test]
fn index_reader() {
    let seeds: Vec<Vec<u8>> = blocks()
        .iter()
        .map(|b| with_prefix(1, &std::fs::read(b.join("index")).unwrap()))
        .collect();
    assert!(run_mutated(&seeds, 100, 1, index_reader_target::run) > 300);
}

#[test]
fn wal_segment_and_record() {
    let wal = fixtures().join("prometheus-2.42-datadir/wal");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    segs.sort();
    // The first 64 KiB of each segment keeps a run short.
    let seeds: Vec<Vec<u8>> = segs
        .iter()
        .map(|p| {
            let b = std::fs::read(p).unwrap();
            with_prefix(1, &b[..b.len().min(64 << 10)])
        })
        .collect();
    assert!(!seeds.is_empty());
    run_mutated(&seeds, 30, 1, wal_segment_target::run);
    // Records: the decoded records of the first segment are the record target's seeds.
    let mut r =
        annals::unstable::wal::Reader::from_bytes("seed", 0, std::fs::read(&segs[0]).unwrap());
    let mut records = Vec::new();
    while let Ok(Some((rec, _))) = r.next_record() {
        records.push(rec.to_vec());
        if records.len() == 50 {
            break;
        }
    }
    assert!(!records.is_empty());
    run_mutated(&records, 20, 0, wal_record_target::run);
}

#[test]
fn xor_chunk_and_selector_parse() {
    let chunk = std::fs::read(fixtures().join("promtool-2.42-block/chunks/000001")).unwrap();
    run_mutated(
        &[chunk[8..chunk.len().min(400)].to_vec()],
        300,
        0,
        xor_chunk_target::run,
    );
    let selectors: Vec<Vec<u8>> = [
        r#"up{job="node", instance=~"a.*", mode!="idle", x!~"^$"}"#,
        r#"{__name__=~"http_.+_total", code=~"5.."}"#,
        "node_cpu_seconds_total",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    run_mutated(&selectors, 300, 0, selector_parse_target::run);
}

/// Found by `cargo fuzz run db_model` (a model bug, not an engine one): a sample deleted and
/// then appended again with the same value is the head's newest sample, so the append is a
/// no-op and the sample stays deleted, as in Prometheus; the model had stored it again.
const DB_MODEL_DELETED_THEN_REAPPENDED: &[u8] = &[
    0xb8, 0xb8, 0xb8, 0xb8, 0xb8, 0xb8, 0xb8, 0xb8, 0xb8, 0xb8, 0xb8, 0xb8, 0xb8, 0xb8, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x02, 0x05, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x02, 0x24,
    0x01, 0xb8, 0xb8, 0xb8, 0x00, 0x00, 0x00, 0x05, 0x4f, 0x00, 0x00, 0x00, 0x00, 0x04, 0x07, 0x06,
    0x00, 0x00, 0x06, 0x7a,
];

#[test]
fn db_model_regressions() {
    db_model_target::run(DB_MODEL_DELETED_THEN_REAPPENDED);
}

#[test]
fn db_model() {
    // Programs of operations; mutations of them are new programs.
    let seeds: Vec<Vec<u8>> = vec![
        (0..600u32).map(|i| (i * 7 + i / 3) as u8).collect(),
        [
            0u8, 1, 2, 0, 2, 3, 2, 0, 0, 4, 0, 200, 5, 1, 30, 6, 0, 0, 7, 0, 0, 4, 0, 255,
        ]
        .repeat(20),
        (0..900u32)
            .map(|i| match i % 3 {
                0 => [0, 0, 2, 6, 4, 5, 7, 1][(i / 3 % 8) as usize],
                _ => (i * 13) as u8,
            })
            .collect(),
    ];
    assert!(run_mutated(&seeds, 8, 0, db_model_target::run) >= 27);
}

#[test]
fn head_chunks() {
    let file = std::fs::read(
        fixtures()
            .join("prometheus-2.42-datadir")
            .join("chunks_head")
            .join("000001"),
    )
    .unwrap();
    // Prefix bit 0 asks the target to recompute entry CRCs, so mutations reach the checks
    // behind them.
    let seeds = [with_prefix(0, &file), with_prefix(1, &file)];
    assert!(run_mutated(&seeds, 600, 1, head_chunks_target::run) > 1000);
}

#[test]
fn mem_snapshot() {
    let seg = fixtures()
        .join("prometheus-2.42-datadir/chunk_snapshot.000000.0000360448")
        .join("00000000");
    let mut r = annals::unstable::wal::Reader::from_bytes("seed", 0, std::fs::read(seg).unwrap());
    let mut records = Vec::new();
    while let Ok(Some((rec, _))) = r.next_record() {
        // Series records (type 1) only: the tombstones record has its own target.
        if rec.first() == Some(&1) {
            records.push(rec.to_vec());
        }
        if records.len() == 40 {
            break;
        }
    }
    assert_eq!(records.len(), 40);
    // The seeds themselves are Prometheus's records: they decode.
    for rec in &records {
        annals::unstable::head_chunks::decode_snapshot_series(rec).unwrap();
    }
    assert!(run_mutated(&records, 30, 0, mem_snapshot_target::run) > 1000);
}
