//! Compaction against the real Prometheus 2.42 `promtool`: a block we compact from
//! overlapping inputs with tombstones opens in promtool (`list`, `analyze`), and `dump` of it
//! prints exactly what `dump` of the inputs prints — Prometheus's own query-time merge of the
//! overlapping blocks, with the deleted samples hidden.

use std::collections::BTreeMap;
use std::path::Path;

use annals::stale_nan;
use annals::unstable::block::{write_block, Block, BlockOptions, Meta, SeriesChunk};
use annals::unstable::chunkenc::{XorAppender, XorIter};
use annals::unstable::compact::{compact_blocks, CompactOptions};
use annals::unstable::tombstones::{Interval, Tombstones};
use annals::Labels;

use crate::promtool;

const H: i64 = 3_600_000;
/// A 2 h-aligned start, as blocks cut from a head are.
const BASE: i64 = 1_699_999_200_000;
const STEP: i64 = 15_000;

/// The one value a series has at `t`, so that overlapping blocks agree on duplicates and
/// Prometheus's arbitrary choice among them cannot matter.
fn value(series: usize, t: i64) -> f64 {
    let k = (t - BASE) / STEP;
    if (k + series as i64) % 97 == 0 {
        stale_nan()
    } else if series.is_multiple_of(3) {
        // A counter.
        (k * (series as i64 + 1)) as f64
    } else {
        // A gauge with fractions and negative values.
        ((k * 7919 + series as i64 * 104_729) % 20_011) as f64 / 8.0 - 1000.0
    }
}

fn labels(series: usize) -> Labels {
    let mut pairs = vec![
        ("__name__".to_string(), format!("metric_{}", series % 4)),
        ("instance".to_string(), format!("host-{}:9100", series % 17)),
        ("series".to_string(), format!("{series:03}")),
    ];
    if series.is_multiple_of(11) {
        pairs.push(("path".into(), format!("/ü/\"{series}\"\\")));
    }
    Labels::new(pairs).unwrap()
}

fn chunks(samples: &[(i64, f64)]) -> Vec<SeriesChunk> {
    samples
        .chunks(120)
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

/// Writes a block holding `series` over `[from, to)` and deletes `deletes` in it.
fn input_block(
    dir: &Path,
    from: i64,
    to: i64,
    series: impl Iterator<Item = usize>,
    deletes: &[(usize, i64, i64)],
) -> Block {
    let mut all: Vec<(Labels, Vec<SeriesChunk>)> = series
        .map(|s| {
            let samples: Vec<(i64, f64)> = (from..to)
                .step_by(STEP as usize)
                .map(|t| (t, value(s, t)))
                .collect();
            (labels(s), chunks(&samples))
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let opts = BlockOptions {
        time_range: Some((from, to)),
        ..BlockOptions::default()
    };
    let ulid = write_block(dir, opts, all).unwrap().unwrap();
    let bdir = dir.join(ulid.to_string());
    let b = Block::open(&bdir).unwrap();
    let mut ts = Tombstones::new();
    for sref in b.index().all_postings().unwrap() {
        let (l, _) = b.series(sref).unwrap();
        for &(s, a, z) in deletes {
            if labels(s) == l {
                ts.add_interval(u64::from(sref), Interval::new(a, z));
            }
        }
    }
    drop(b);
    ts.write(&bdir).unwrap();
    let mut meta = Meta::read(&bdir).unwrap();
    meta.stats.num_tombstones = ts.total();
    meta.write(&bdir).unwrap();
    Block::open(&bdir).unwrap()
}

#[test]
fn promtool_sees_our_compacted_block_as_it_sees_the_inputs() {
    let Some(pt) = promtool::promtool() else {
        return;
    };
    let inputs_dir = tempfile::tempdir().unwrap();
    let d = inputs_dir.path();
    // Two adjacent 2 h blocks and a backfilled one overlapping the second; series shared
    // and disjoint; whole-series and partial deletions.
    let a = input_block(
        d,
        BASE,
        BASE + 2 * H,
        0..150,
        &[(3, BASE, BASE + 2 * H), (4, BASE + H, BASE + H + 10 * STEP)],
    );
    let b = input_block(d, BASE + 2 * H, BASE + 4 * H, 50..200, &[(60, 0, i64::MAX)]);
    let c = input_block(
        d,
        BASE + 3 * H,
        BASE + 5 * H,
        100..260,
        &[(120, BASE + 3 * H + 30 * STEP, BASE + 4 * H + 30 * STEP)],
    );
    let blocks = [&a, &b, &c];

    let out_dir = tempfile::tempdir().unwrap();
    let ulid = compact_blocks(out_dir.path(), &blocks, &CompactOptions::default())
        .unwrap()
        .unwrap();
    let out = Block::open(out_dir.path().join(ulid.to_string())).unwrap();

    // What Prometheus shows of the inputs, and of our block.
    let copy_in = tempfile::tempdir().unwrap();
    promtool::copy_dir(d, copy_in.path());
    let want = promtool::dump(&pt, copy_in.path(), &[]);
    let copy_out = tempfile::tempdir().unwrap();
    promtool::copy_dir(out_dir.path(), copy_out.path());
    let got = promtool::dump(&pt, copy_out.path(), &[]);
    assert!(want.len() > 100_000, "{} samples", want.len());
    assert_eq!(got.len(), want.len());
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!("first difference: ours {:?}, inputs {:?}", got[i], want[i]);
    }

    // Our reader agrees bit for bit with the values we wrote, and so do the stats.
    let mut samples = 0u64;
    let mut per_series: BTreeMap<String, u64> = BTreeMap::new();
    for sref in out.index().all_postings().unwrap() {
        let (l, metas) = out.series(sref).unwrap();
        let s: usize = l.get("series").unwrap().parse().unwrap();
        for m in &metas {
            for x in XorIter::new(out.chunk(m).unwrap().data) {
                let x = x.unwrap();
                assert_eq!(x.v.to_bits(), value(s, x.t).to_bits(), "{l} at {}", x.t);
                samples += 1;
            }
        }
        *per_series.entry(l.to_string()).or_default() += 1;
    }
    let m = out.meta();
    assert_eq!(samples, m.stats.num_samples);
    assert_eq!(samples, want.len() as u64);
    // Series 3 is wholly deleted; series 60 only in the second block, the first keeps it.
    assert_eq!(m.stats.num_series, 260 - 1);
    assert_eq!((m.min_time, m.max_time), (BASE, BASE + 5 * H));

    let dir = out_dir.path().to_str().unwrap();
    let list = promtool::run(&pt, &["tsdb", "list", dir]);
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with(&ulid.to_string()))
        .unwrap_or_else(|| panic!("promtool does not list {ulid}:\n{list}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], m.min_time.to_string(), "{list}");
    assert_eq!(row[2], m.max_time.to_string(), "{list}");
    assert_eq!(row[4], m.stats.num_samples.to_string(), "{list}");
    assert_eq!(row[5], m.stats.num_chunks.to_string(), "{list}");
    assert_eq!(row[6], m.stats.num_series.to_string(), "{list}");
    let analysis = promtool::run(
        &pt,
        &["tsdb", "analyze", "--extended", dir, &ulid.to_string()],
    );
    assert!(
        analysis.contains(&format!("Series: {}", m.stats.num_series)),
        "{analysis}"
    );
}
