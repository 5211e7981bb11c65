//! Blocks against the real Prometheus 2.42 `promtool`: blocks we write are listed, analysed
//! and dumped by promtool exactly as we wrote them, and our reader sees in Prometheus-written
//! blocks the samples promtool sees.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use annals::unstable::block::{self, write_block, Block, BlockOptions, SeriesChunk};
use annals::unstable::chunkenc::{XorAppender, XorIter};
use annals::unstable::index::WriterOptions;
use annals::Labels;
use annals::{is_stale_marker, stale_nan};

use crate::promtool;

/// Prometheus' head cuts chunks at 120 samples.
const SAMPLES_PER_CHUNK: usize = 120;

/// splitmix64: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Model = BTreeMap<Labels, Vec<(i64, f64)>>;

/// Several hundred series of mixed shapes: counters, gauges with arbitrary doubles, special
/// values, stale markers, irregular scrape intervals, 1 to 4 chunks each.
fn random_series(seed: u64) -> Model {
    let mut rng = Rng(seed);
    let names = [
        "node_cpu_seconds_total",
        "process_resident_memory_bytes",
        "http_requests_total",
        "temperature_celsius",
        "up",
    ];
    let mut model = Model::new();
    while model.len() < 320 {
        let i = model.len();
        let name = names[rng.below(names.len() as u64) as usize];
        let mut pairs = vec![
            ("__name__".to_string(), name.to_string()),
            (
                "instance".to_string(),
                format!("host-{}:9100", rng.below(40)),
            ),
            (
                "job".to_string(),
                ["node", "api", "db"][rng.below(3) as usize].to_string(),
            ),
        ];
        if i.is_multiple_of(7) {
            pairs.push(("path".into(), format!("/api/v{}/ü?q=\"x\"\\", rng.below(5))));
        }
        let labels = Labels::new(pairs).unwrap();
        let n = 1 + rng.below(4 * SAMPLES_PER_CHUNK as u64) as usize;
        let mut t = 1_700_000_000_000 + rng.below(60_000) as i64;
        let mut counter = 0.0;
        let mut samples = Vec::with_capacity(n);
        for k in 0..n {
            let v = match (i % 5, rng.below(50)) {
                (_, 0) => stale_nan(),
                (0, _) => {
                    counter += rng.below(1000) as f64;
                    counter
                }
                (1, _) => f64::from_bits(rng.next() >> 2) * if k % 2 == 0 { 1.0 } else { -1.0 },
                (2, 1) => f64::INFINITY,
                (2, 2) => f64::NEG_INFINITY,
                (2, 3) => -0.0,
                (2, _) => (rng.below(2_000_001) as f64 - 1_000_000.0) / 1024.0,
                (3, _) => 1e-300 * rng.below(1000) as f64,
                _ => rng.below(2) as f64,
            };
            samples.push((t, v));
            // Mostly 15 s, sometimes jittered, sometimes a long gap.
            t += match rng.below(20) {
                0 => 1 + rng.below(1_000_000) as i64,
                1..=4 => 14_000 + rng.below(2_000) as i64,
                _ => 15_000,
            };
        }
        model.insert(labels, samples);
    }
    model
}

fn to_chunks(samples: &[(i64, f64)]) -> Vec<SeriesChunk> {
    samples
        .chunks(SAMPLES_PER_CHUNK)
        .map(|part| {
            let mut app = XorAppender::new();
            for &(t, v) in part {
                app.append(t, v);
            }
            SeriesChunk {
                min_time: part[0].0,
                max_time: part[part.len() - 1].0,
                encoding: annals::unstable::chunkenc::Encoding::Xor,
                data: app.into_bytes(),
            }
        })
        .collect()
}

/// `promtool tsdb dump` lines as (labels text, timestamp) -> value.
fn dump_map(lines: &[String]) -> HashMap<(String, i64), f64> {
    let mut m = HashMap::with_capacity(lines.len());
    for l in lines {
        let (labels, v, t) = promtool::parse_dump_line(l);
        assert!(
            m.insert((labels, t), v).is_none(),
            "duplicate dump line {l}"
        );
    }
    m
}

/// promtool prints `%g`: 6 significant digits.
fn assert_printed_value(key: &(String, i64), got: f64, want: f64) {
    let ok = if want.is_nan() {
        got.is_nan()
    } else if want.is_infinite() || want == 0.0 {
        got == want
    } else {
        ((got - want) / want).abs() <= 5e-6
    };
    assert!(ok, "{key:?}: promtool printed {got}, we wrote {want}");
}

fn assert_dump_matches(dump: &HashMap<(String, i64), f64>, want: &Model) {
    let total: usize = want.values().map(Vec::len).sum();
    assert_eq!(
        dump.len(),
        total,
        "promtool dumped a different number of samples"
    );
    for (labels, samples) in want {
        let text = labels.to_string();
        for &(t, v) in samples {
            let key = (text.clone(), t);
            let got = *dump
                .get(&key)
                .unwrap_or_else(|| panic!("promtool did not dump {key:?}"));
            assert_printed_value(&key, got, v);
        }
    }
}

#[test]
fn promtool_lists_analyses_and_dumps_our_blocks() {
    check_with_promtool(42, WriterOptions::default());
}

/// Without the `""` symbol and the legacy label index sections (the 3.7+ layout, §1.7.6),
/// Prometheus 2.42 reads our blocks just the same.
#[test]
fn promtool_reads_our_blocks_without_the_optional_index_sections() {
    check_with_promtool(
        7,
        WriterOptions {
            include_empty_symbol: false,
            legacy_label_indices: false,
        },
    );
}

fn check_with_promtool(seed: u64, index: WriterOptions) {
    let Some(pt) = promtool::promtool() else {
        return;
    };
    let model = random_series(seed);
    let data = tempfile::tempdir().unwrap();
    let series = model.iter().map(|(l, s)| (l.clone(), to_chunks(s)));
    let opts = BlockOptions {
        index,
        ..BlockOptions::default()
    };
    let ulid = write_block(data.path(), opts, series)
        .unwrap()
        .expect("samples were written");
    let ulid = ulid.to_string();
    let ours = Block::open(data.path().join(&ulid)).unwrap();

    let samples: usize = model.values().map(Vec::len).sum();
    let chunks: usize = model
        .values()
        .map(|s| s.len().div_ceil(SAMPLES_PER_CHUNK))
        .sum();
    let mint = model.values().map(|s| s[0].0).min().unwrap();
    let maxt = model.values().map(|s| s[s.len() - 1].0).max().unwrap() + 1;

    let dir = data.path().to_str().unwrap();
    let list = promtool::run(&pt, &["tsdb", "list", dir]);
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with(&ulid))
        .unwrap_or_else(|| panic!("promtool does not list {ulid}:\n{list}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], mint.to_string(), "{list}");
    assert_eq!(row[2], maxt.to_string(), "{list}");
    assert_eq!(row[4], samples.to_string(), "{list}");
    assert_eq!(row[5], chunks.to_string(), "{list}");
    assert_eq!(row[6], model.len().to_string(), "{list}");
    assert_eq!(row[7], ours.size().to_string(), "{list}");

    let analysis = promtool::run(&pt, &["tsdb", "analyze", "--extended", dir, &ulid]);
    assert!(
        analysis.contains(&format!("Series: {}", model.len())),
        "{analysis}"
    );

    let scratch = tempfile::tempdir().unwrap();
    promtool::copy_dir(data.path(), scratch.path());
    let dump = dump_map(&promtool::dump(&pt, scratch.path(), &[]));
    assert_dump_matches(&dump, &model);
    let stale: usize = model
        .values()
        .flatten()
        .filter(|(_, v)| is_stale_marker(*v))
        .count();
    assert!(
        stale > 100,
        "the data set should carry stale markers ({stale})"
    );
}

#[test]
fn our_reader_sees_what_promtool_sees_in_prometheus_blocks() {
    let Some(pt) = promtool::promtool() else {
        return;
    };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/prometheus-2.42/node-exporter-blocks");
    let mut ours = Model::new();
    for (_, dir) in block::list_block_dirs(&fixtures).unwrap() {
        let b = Block::open(&dir).unwrap();
        for sref in b.index().all_postings().unwrap() {
            let (labels, metas) = b.series(sref).unwrap();
            let samples = ours.entry(labels).or_default();
            for m in &metas {
                let c = b.chunk(m).unwrap();
                assert_eq!(c.encoding, annals::unstable::chunkenc::Encoding::Xor);
                let before = samples.len();
                for s in XorIter::new(c.data) {
                    let s = s.unwrap();
                    assert!((m.min_time..=m.max_time).contains(&s.t));
                    samples.push((s.t, s.v));
                }
                assert_eq!(samples[before].0, m.min_time);
                assert_eq!(samples[samples.len() - 1].0, m.max_time);
            }
        }
    }
    assert_eq!(ours.len(), 507);
    assert_eq!(ours.values().map(Vec::len).sum::<usize>(), 456_300);

    let scratch = tempfile::tempdir().unwrap();
    promtool::copy_dir(&fixtures, scratch.path());
    let dump = dump_map(&promtool::dump(&pt, scratch.path(), &[]));
    assert_dump_matches(&dump, &ours);
}
