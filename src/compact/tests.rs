//! Execution tests: Prometheus's `TestCompaction_populateBlock`, `TestCompactBlockMetas`,
//! `TestCompactBlockMetasHints` and `TestCompactEmptyResultBlockWithTombstone` ported; a
//! property test against a model; verbatim copies; failures that leave nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use ulid::Ulid;

use super::merge::{self, compact_block_metas};
use super::plan::{HINT_FROM_OUT_OF_ORDER, HINT_FROM_STALE_SERIES};
use super::*;
use crate::block::{
    list_block_dirs, remove_tmp_dirs, write_block, Block, BlockDesc, BlockOptions, BlockWriter,
    Meta, SeriesChunk,
};
use crate::chunkenc::Encoding;
use crate::chunkenc::{XorAppender, XorIter};
use crate::error::Error;
use crate::model::{Labels, STALE_NAN_BITS};
use crate::reader::chunks::MAX_SAMPLES_PER_CHUNK;
use crate::tombstones::{Interval, Tombstones};

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied()).unwrap()
}

fn xor_chunk(samples: &[(i64, f64)]) -> SeriesChunk {
    let mut app = XorAppender::new();
    for &(t, v) in samples {
        app.append(t, v);
    }
    SeriesChunk {
        min_time: samples[0].0,
        max_time: samples[samples.len() - 1].0,
        encoding: Encoding::Xor,
        data: app.into_bytes(),
    }
}

/// A series given chunk by chunk.
type SeriesSpec = (Labels, Vec<Vec<(i64, f64)>>);

/// Writes a block in `parent` from `series` and opens it.
fn make_block(parent: &Path, opts: BlockOptions, series: Vec<SeriesSpec>) -> Block {
    let mut series: Vec<(Labels, Vec<SeriesChunk>)> = series
        .into_iter()
        .map(|(l, cs)| (l, cs.iter().map(|c| xor_chunk(c)).collect()))
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let ulid = write_block(parent, opts, series).unwrap().expect("samples");
    Block::open(parent.join(ulid.to_string())).unwrap()
}

/// A chunk as read back: range, bytes, samples (value bits).
#[derive(Debug, Clone, PartialEq)]
struct ReadChunk {
    min_time: i64,
    max_time: i64,
    data: Vec<u8>,
    samples: Vec<(i64, u64)>,
}

/// Every series of a block with its chunks, checking each chunk meta against its samples.
fn read_block(b: &Block) -> Vec<(Labels, Vec<ReadChunk>)> {
    let mut out = Vec::new();
    for sref in b.index().all_postings().unwrap() {
        let (l, metas) = b.series(sref).unwrap();
        let mut chunks = Vec::new();
        for m in &metas {
            let c = b.chunk(m).unwrap();
            assert_eq!(c.encoding, Encoding::Xor);
            let samples: Vec<(i64, u64)> = XorIter::new(c.data)
                .map(|s| s.map(|s| (s.t, s.v.to_bits())).unwrap())
                .collect();
            assert_eq!(
                (m.min_time, m.max_time),
                (samples[0].0, samples[samples.len() - 1].0),
                "{l}: chunk meta does not match its samples"
            );
            chunks.push(ReadChunk {
                min_time: m.min_time,
                max_time: m.max_time,
                data: c.data.to_vec(),
                samples,
            });
        }
        out.push((l, chunks));
    }
    out
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
            out.insert(p, Vec::new());
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    out
}

#[test]
fn test_compact_block_metas() {
    let u = |n| Ulid::from_parts(n, 0);
    let meta = |id, min, max, level, sources: Vec<Ulid>| {
        let mut m = Meta::new(u(id), min, max);
        m.compaction.level = level;
        m.compaction.sources = sources;
        m
    };
    let input = [
        meta(100, 1000, 2000, 2, vec![u(1), u(10)]),
        meta(200, 200, 500, 1, vec![]),
        meta(300, 500, 2500, 3, vec![u(5), u(6)]),
        meta(400, 100, 900, 1, vec![]),
    ];
    let refs: Vec<&Meta> = input.iter().collect();
    let got = compact_block_metas(u(1000), &refs);
    let mut want = Meta::new(u(1000), 100, 2500);
    want.compaction.level = 4;
    want.compaction.sources = vec![u(1), u(5), u(6), u(10)];
    want.compaction.parents = vec![
        BlockDesc {
            ulid: u(100),
            min_time: 1000,
            max_time: 2000,
        },
        BlockDesc {
            ulid: u(200),
            min_time: 200,
            max_time: 500,
        },
        BlockDesc {
            ulid: u(300),
            min_time: 500,
            max_time: 2500,
        },
        BlockDesc {
            ulid: u(400),
            min_time: 100,
            max_time: 900,
        },
    ];
    assert_eq!(got, want);
}

#[test]
fn test_compact_block_metas_hints() {
    let stale = |n| {
        let mut m = Meta::new(Ulid::from_parts(n, 0), 0, 1000);
        m.compaction.hints = vec![HINT_FROM_STALE_SERIES.into()];
        m
    };
    let plain = |n| Meta::new(Ulid::from_parts(n, 0), 0, 1000);
    let out = Ulid::from_parts(1000, 0);
    let got = compact_block_metas(out, &[&stale(100), &stale(200)]);
    assert_eq!(got.compaction.hints, [HINT_FROM_STALE_SERIES]);
    let got = compact_block_metas(out, &[&plain(100), &plain(200)]);
    assert!(got.compaction.hints.is_empty());
    // The out-of-order hint is not carried into merged blocks.
    let mut ooo = plain(300);
    ooo.compaction.hints = vec![HINT_FROM_OUT_OF_ORDER.into()];
    assert!(compact_block_metas(out, &[&ooo])
        .compaction
        .hints
        .is_empty());
}

/// One `TestCompaction_populateBlock` case: input blocks of series given as chunks of
/// timestamps (all values 0), the output range, the expected series.
struct PopulateCase {
    title: &'static str,
    inputs: Vec<Vec<(Labels, Vec<Vec<i64>>)>>,
    min_time: i64,
    max_time: Option<i64>,
    want: Vec<(Labels, Vec<Vec<i64>>)>,
}

fn samples_for_range(min: i64, max: i64, per_chunk: usize) -> Vec<Vec<i64>> {
    (min..=max)
        .collect::<Vec<_>>()
        .chunks(per_chunk)
        .map(<[i64]>::to_vec)
        .collect()
}

fn run_populate(c: PopulateCase) {
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<Block> = c
        .inputs
        .iter()
        .map(|series| {
            let series = series
                .iter()
                .map(|(l, cs)| {
                    (
                        l.clone(),
                        cs.iter()
                            .map(|c| c.iter().map(|&t| (t, 0.0)).collect())
                            .collect(),
                    )
                })
                .collect();
            make_block(dir.path(), BlockOptions::default(), series)
        })
        .collect();
    let refs: Vec<&Block> = inputs.iter().collect();
    let out = tempfile::tempdir().unwrap();
    let meta = Meta::new(Ulid::generate(), c.min_time, c.max_time.unwrap_or(i64::MAX));
    let res = merge::write_merged(out.path(), &refs, meta, &CompactOptions::default()).unwrap();
    let Some(ulid) = res else {
        assert!(c.want.is_empty(), "{}: no block written", c.title);
        return;
    };
    let b = Block::open(out.path().join(ulid.to_string())).unwrap();
    let got: Vec<(Labels, Vec<Vec<i64>>)> = read_block(&b)
        .into_iter()
        .map(|(l, cs)| {
            (
                l,
                cs.iter()
                    .map(|c| c.samples.iter().map(|s| s.0).collect())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(got, c.want, "{}", c.title);
    let s = &b.meta().stats;
    let chunks: usize = c.want.iter().map(|(_, cs)| cs.len()).sum();
    let samples: usize = c.want.iter().flat_map(|(_, cs)| cs).map(Vec::len).sum();
    assert_eq!(
        (s.num_series, s.num_chunks, s.num_samples),
        (c.want.len() as u64, chunks as u64, samples as u64),
        "{}: stats",
        c.title
    );
}

/// `TestCompaction_populateBlock`, every case that does not need native histograms or a
/// postings filter. (The "single block without chunks" case cannot be built: a block writer
/// keeps no block without samples.)
#[test]
fn test_compaction_populate_block() {
    let a = |v: &str| ls(&[("a", v)]);
    let ab = |x: &str, y: &str| ls(&[("a", x), ("b", y)]);
    let cases = vec![
        PopulateCase {
            title: "Populate from single block. We expect the same samples at the output.",
            inputs: vec![vec![(a("b"), vec![vec![0, 10], vec![11, 20]])]],
            min_time: 0,
            max_time: None,
            want: vec![(a("b"), vec![vec![0, 10], vec![11, 20]])],
        },
        PopulateCase {
            title: "Populate from two blocks.",
            inputs: vec![
                vec![
                    (a("b"), vec![vec![0, 10], vec![11, 20]]),
                    (a("c"), vec![vec![1, 9], vec![10, 19]]),
                    // no-chunk series should be dropped.
                    (a("empty"), vec![]),
                ],
                vec![(a("b"), vec![vec![21, 30]]), (a("c"), vec![vec![40, 45]])],
            ],
            min_time: 0,
            max_time: None,
            want: vec![
                (a("b"), vec![vec![0, 10], vec![11, 20], vec![21, 30]]),
                (a("c"), vec![vec![1, 9], vec![10, 19], vec![40, 45]]),
            ],
        },
        PopulateCase {
            title: "Populate from two blocks; chunks with negative time.",
            inputs: vec![
                vec![
                    (a("b"), vec![vec![0, 10], vec![11, 20]]),
                    (a("c"), vec![vec![-11, -9], vec![10, 19]]),
                    (a("empty"), vec![]),
                ],
                vec![(a("b"), vec![vec![21, 30]]), (a("c"), vec![vec![40, 45]])],
            ],
            min_time: -11,
            max_time: None,
            want: vec![
                (a("b"), vec![vec![0, 10], vec![11, 20], vec![21, 30]]),
                (a("c"), vec![vec![-11, -9], vec![10, 19], vec![40, 45]]),
            ],
        },
        PopulateCase {
            title: "Populate from two blocks showing that order is maintained.",
            inputs: vec![
                vec![
                    (a("b"), vec![vec![0, 10], vec![11, 20]]),
                    (a("c"), vec![vec![1, 9], vec![10, 19]]),
                ],
                vec![(a("b"), vec![vec![21, 30]]), (a("c"), vec![vec![40, 45]])],
            ],
            min_time: 0,
            max_time: None,
            want: vec![
                (a("b"), vec![vec![0, 10], vec![11, 20], vec![21, 30]]),
                (a("c"), vec![vec![1, 9], vec![10, 19], vec![40, 45]]),
            ],
        },
        PopulateCase {
            title: "Populate from two blocks showing that order of series is sorted.",
            inputs: vec![
                vec![
                    (a("4"), vec![vec![5, 7]]),
                    (a("3"), vec![vec![5, 6]]),
                    (a("same"), vec![vec![1, 4]]),
                ],
                vec![
                    (a("2"), vec![vec![1, 3]]),
                    (a("1"), vec![vec![1, 2]]),
                    (a("same"), vec![vec![5, 8]]),
                ],
            ],
            min_time: 0,
            max_time: None,
            want: vec![
                (a("1"), vec![vec![1, 2]]),
                (a("2"), vec![vec![1, 3]]),
                (a("3"), vec![vec![5, 6]]),
                (a("4"), vec![vec![5, 7]]),
                (a("same"), vec![vec![1, 4], vec![5, 8]]),
            ],
        },
        PopulateCase {
            title: "Populate from two blocks 1:1 duplicated chunks; with negative timestamps.",
            inputs: vec![
                vec![
                    (a("1"), vec![vec![1, 2], vec![3, 4]]),
                    (a("2"), vec![vec![-3, -2], vec![1, 3, 4], vec![5, 6]]),
                ],
                vec![
                    (a("1"), vec![vec![3, 4]]),
                    (a("2"), vec![vec![1, 3, 4], vec![7, 8]]),
                ],
            ],
            min_time: -3,
            max_time: None,
            want: vec![
                (a("1"), vec![vec![1, 2], vec![3, 4]]),
                (
                    a("2"),
                    vec![vec![-3, -2], vec![1, 3, 4], vec![5, 6], vec![7, 8]],
                ),
            ],
        },
        PopulateCase {
            title:
                "Populate from single block containing chunk outside of compact meta time range.",
            inputs: vec![vec![(a("b"), vec![vec![1, 2], vec![10, 30]])]],
            min_time: 0,
            max_time: Some(20),
            want: vec![(a("b"), vec![vec![1, 2], vec![10]])],
        },
        PopulateCase {
            title: "Populate from single block containing extra chunk",
            inputs: vec![vec![(a("issue347"), vec![vec![1, 2], vec![10, 20]])]],
            min_time: 0,
            max_time: Some(10),
            want: vec![(a("issue347"), vec![vec![1, 2]])],
        },
        PopulateCase {
            title: "Populate from two blocks containing duplicated chunk.",
            inputs: vec![
                vec![(a("b"), vec![vec![1, 2], vec![10, 20]])],
                vec![(a("b"), vec![vec![10, 20]])],
            ],
            min_time: 0,
            max_time: None,
            want: vec![(a("b"), vec![vec![1, 2], vec![10, 20]])],
        },
        PopulateCase {
            title: "Populate from three overlapping blocks.",
            inputs: vec![
                vec![
                    (a("overlap-all"), vec![vec![19, 30]]),
                    (a("overlap-beginning"), vec![vec![0, 5]]),
                    (a("overlap-ending"), vec![vec![21, 30]]),
                ],
                vec![
                    (a("overlap-all"), vec![vec![0, 10, 11, 20]]),
                    (a("overlap-beginning"), vec![vec![0, 10, 12, 20]]),
                    (a("overlap-ending"), vec![vec![0, 10, 13, 20]]),
                ],
                vec![
                    (a("overlap-all"), vec![vec![27, 35]]),
                    (a("overlap-ending"), vec![vec![27, 35]]),
                ],
            ],
            min_time: 0,
            max_time: None,
            want: vec![
                (a("overlap-all"), vec![vec![0, 10, 11, 19, 20, 27, 30, 35]]),
                (a("overlap-beginning"), vec![vec![0, 5, 10, 12, 20]]),
                (
                    a("overlap-ending"),
                    vec![vec![0, 10, 13, 20], vec![21, 27, 30, 35]],
                ),
            ],
        },
        PopulateCase {
            title: "Populate from three partially overlapping blocks with few full chunks.",
            inputs: vec![
                vec![
                    (ab("1", "1"), samples_for_range(0, 659, 120)),
                    (ab("1", "2"), samples_for_range(0, 659, 120)),
                ],
                vec![
                    (ab("1", "2"), samples_for_range(480, 1199, 120)),
                    (ab("1", "3"), samples_for_range(480, 1199, 120)),
                ],
                vec![
                    (ab("1", "2"), samples_for_range(960, 1499, 120)),
                    (ab("1", "4"), samples_for_range(960, 1499, 120)),
                ],
            ],
            min_time: 0,
            max_time: None,
            want: vec![
                (ab("1", "1"), samples_for_range(0, 659, 120)),
                (ab("1", "2"), samples_for_range(0, 1499, 120)),
                (ab("1", "3"), samples_for_range(480, 1199, 120)),
                (ab("1", "4"), samples_for_range(960, 1499, 120)),
            ],
        },
        PopulateCase {
            title:
                "Populate from three partially overlapping blocks with chunks that are expected \
                    to merge into single big chunks.",
            inputs: vec![
                vec![(ab("1", "2"), vec![vec![0, 6902464], vec![6961968, 7080976]])],
                vec![(
                    ab("1", "2"),
                    vec![vec![3600000, 13953696], vec![14042952, 14221464]],
                )],
                vec![(
                    ab("1", "2"),
                    vec![vec![10800000, 14251232], vec![14280984, 14340488]],
                )],
            ],
            min_time: 0,
            max_time: None,
            want: vec![(
                ab("1", "2"),
                vec![
                    vec![
                        0, 3600000, 6902464, 6961968, 7080976, 10800000, 13953696, 14042952,
                        14221464, 14251232,
                    ],
                    vec![14280984, 14340488],
                ],
            )],
        },
    ];
    for c in cases {
        run_populate(c);
    }
    let dir = tempfile::tempdir().unwrap();
    let e = compact_blocks(dir.path(), &[], &CompactOptions::default()).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

/// Three adjacent blocks: every chunk is copied byte for byte (the writer would cut chunks
/// longer than 120 samples), and the result's meta follows the inputs.
#[test]
fn non_overlapping_chunks_are_copied_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    for (i, (level, min)) in [(1u32, 0i64), (2, 1000), (1, 2000)].into_iter().enumerate() {
        let series = (0..5)
            .map(|s| {
                let samples: Vec<(i64, f64)> = (0..250)
                    .map(|k| (min + 4 * k, (s * 1000 + k) as f64 * 0.25 + i as f64))
                    .collect();
                // Longer than the 120 samples of a re-encoded chunk, so only a verbatim copy
                // gives the same chunks.
                (
                    ls(&[("__name__", "m"), ("s", &s.to_string())]),
                    samples.chunks(130).map(<[_]>::to_vec).collect(),
                )
            })
            .collect();
        let sources = if level == 2 {
            vec![Ulid::from_parts(7, 0), Ulid::from_parts(3, 0)]
        } else {
            vec![]
        };
        let opts = BlockOptions {
            level,
            sources,
            time_range: Some((min, min + 1000)),
            ..BlockOptions::default()
        };
        inputs.push(make_block(dir.path(), opts, series));
    }
    let refs: Vec<&Block> = inputs.iter().collect();
    let ulid = Ulid::from_parts(99, 0);
    let opts = CompactOptions {
        ulid: Some(ulid),
        ..CompactOptions::default()
    };
    assert_eq!(
        compact_blocks(dir.path(), &refs, &opts).unwrap(),
        Some(ulid)
    );
    let out = Block::open(dir.path().join(ulid.to_string())).unwrap();

    let want: BTreeMap<Labels, Vec<ReadChunk>> =
        refs.iter()
            .flat_map(|b| read_block(b))
            .fold(BTreeMap::new(), |mut m, (l, cs)| {
                m.entry(l).or_insert_with(Vec::new).extend(cs);
                m
            });
    let got: BTreeMap<Labels, Vec<ReadChunk>> = read_block(&out).into_iter().collect();
    assert_eq!(got, want);

    let m = out.meta();
    assert_eq!((m.min_time, m.max_time), (0, 3000));
    assert_eq!(m.compaction.level, 3);
    let mut sources = vec![
        inputs[0].ulid(),
        inputs[2].ulid(),
        Ulid::from_parts(7, 0),
        Ulid::from_parts(3, 0),
    ];
    sources.sort();
    assert_eq!(m.compaction.sources, sources);
    let parents: Vec<BlockDesc> = inputs
        .iter()
        .map(|b| BlockDesc {
            ulid: b.ulid(),
            min_time: b.min_time(),
            max_time: b.max_time(),
        })
        .collect();
    assert_eq!(m.compaction.parents, parents);
    assert_eq!(
        (m.stats.num_series, m.stats.num_chunks, m.stats.num_samples),
        (5, 5 * 3 * 2, 5 * 3 * 250)
    );
    assert_eq!(m.stats.num_tombstones, 0);
    assert!(out.tombstones().is_empty());
}

/// Writes `tombstones` (series labels, closed interval) into an open block's directory,
/// updates its meta's tombstone count and reopens it.
fn add_tombstones(b: Block, tombstones: &[(Labels, Interval)]) -> Block {
    let mut ts = Tombstones::new();
    for sref in b.index().all_postings().unwrap() {
        let (l, _) = b.series(sref).unwrap();
        for (tl, iv) in tombstones {
            if *tl == l {
                ts.add_interval(u64::from(sref), *iv);
            }
        }
    }
    let dir = b.dir().to_path_buf();
    drop(b);
    ts.write(&dir).unwrap();
    let mut meta = Meta::read(&dir).unwrap();
    meta.stats.num_tombstones = ts.total();
    meta.write(&dir).unwrap();
    Block::open(&dir).unwrap()
}

/// Prometheus `TestCompactEmptyResultBlockWithTombstone`: everything deleted, nothing
/// written; the caller can then mark the input deletable.
#[test]
fn test_compact_empty_result_block_with_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let l = ls(&[("a", "0")]);
    let samples: Vec<(i64, f64)> = (0..=10).map(|t| (t, t as f64)).collect();
    let b = make_block(
        dir.path(),
        BlockOptions::default(),
        vec![(l.clone(), vec![samples])],
    );
    let b = add_tombstones(b, &[(l, Interval::new(0, 10))]);
    let before = snapshot(dir.path());
    assert_eq!(
        compact_blocks(dir.path(), &[&b], &CompactOptions::default()).unwrap(),
        None
    );
    assert_eq!(
        clean_tombstones(dir.path(), &b, &CompactOptions::default()).unwrap(),
        None
    );
    assert_eq!(snapshot(dir.path()), before);

    mark_deletable(b.dir()).unwrap();
    assert!(Meta::read(b.dir()).unwrap().compaction.deletable);
    mark_compaction_failed(b.dir()).unwrap();
    let m = Meta::read(b.dir()).unwrap();
    assert!(m.compaction.failed && m.compaction.deletable);
    assert_eq!(m.ulid, b.ulid());
}

/// Prometheus `CleanTombstones` semantics: a level-1 block that is its own source, with the
/// rewritten block as parent, its range and its out-of-order hint; deleted samples gone,
/// untouched chunks copied, the input left as it was.
#[test]
fn clean_tombstones_rewrites_one_block() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y, z) = (ls(&[("s", "x")]), ls(&[("s", "y")]), ls(&[("s", "z")]));
    let samples: Vec<(i64, f64)> = (0..300).map(|t| (t * 10, t as f64)).collect();
    let chunks: Vec<Vec<(i64, f64)>> = samples.chunks(120).map(<[_]>::to_vec).collect();
    let opts = BlockOptions {
        level: 4,
        sources: vec![Ulid::from_parts(1, 0), Ulid::from_parts(2, 0)],
        hints: vec![HINT_FROM_OUT_OF_ORDER.into()],
        time_range: Some((-5, 5000)),
        ..BlockOptions::default()
    };
    let b = make_block(
        dir.path(),
        opts,
        vec![
            (x.clone(), chunks.clone()),
            (y.clone(), chunks.clone()),
            (z.clone(), chunks.clone()),
        ],
    );
    let b = add_tombstones(
        b,
        &[
            (x.clone(), Interval::new(100, 150)),
            (x.clone(), Interval::new(2990, 9999)),
            (y.clone(), Interval::new(-100, 9999)),
        ],
    );
    let before = snapshot(dir.path());
    let new = clean_tombstones(dir.path(), &b, &CompactOptions::default())
        .unwrap()
        .unwrap();
    let after = snapshot(dir.path());
    assert!(
        before.iter().all(|(p, bytes)| after.get(p) == Some(bytes)),
        "input changed"
    );

    let out = Block::open(dir.path().join(new.to_string())).unwrap();
    let m = out.meta();
    assert_eq!((m.min_time, m.max_time), (-5, 5000));
    assert_eq!(m.compaction.level, 1);
    assert_eq!(m.compaction.sources, [new]);
    assert_eq!(
        m.compaction.parents,
        [BlockDesc {
            ulid: b.ulid(),
            min_time: -5,
            max_time: 5000
        }]
    );
    assert_eq!(m.compaction.hints, [HINT_FROM_OUT_OF_ORDER]);
    let got = read_block(&out);
    assert_eq!(got.len(), 2, "series y is wholly deleted");
    let (gx, gz) = (&got[0], &got[1]);
    assert_eq!((&gx.0, &gz.0), (&x, &z));
    let ts: Vec<i64> =
        gx.1.iter()
            .flat_map(|c| c.samples.iter().map(|s| s.0))
            .collect();
    let want: Vec<i64> = (0..300)
        .map(|t| t * 10)
        .filter(|t| !(100..=150).contains(t) && *t < 2990)
        .collect();
    assert_eq!(ts, want);
    // x: first chunk cut (re-encoded), second untouched (verbatim), third cut.
    let input = read_block(&b);
    assert_eq!(gx.1.len(), 3);
    assert_ne!(gx.1[0].data, input[0].1[0].data);
    assert_eq!(gx.1[1], input[0].1[1]);
    assert_eq!(gz.1, input[2].1, "z is copied verbatim");
    assert_eq!(m.stats.num_samples as usize, ts.len() + 300);
}

/// A compaction that fails midway (a corrupt input) leaves no block and no temporary
/// directory, changes no input, and names the damaged file. A crash instead leaves the
/// temporary directory, which is not a block and which `remove_tmp_dirs` deletes.
#[test]
fn failed_compaction_leaves_nothing_behind() {
    for damage in ["chunk", "series"] {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for i in 0..3 {
            let series = (0..20)
                .map(|s| {
                    let samples: Vec<(i64, f64)> = (0..200)
                        .map(|k| (i * 10_000 + k * 7, (s * k) as f64))
                        .collect();
                    (
                        ls(&[("s", &format!("{s:02}"))]),
                        samples.chunks(120).map(<[_]>::to_vec).collect(),
                    )
                })
                .collect();
            let b = make_block(dir.path(), BlockOptions::default(), series);
            paths.push(b.dir().to_path_buf());
        }
        // Damage the middle block behind the reader's back, then open the inputs (opening
        // checks headers and tables only, as Prometheus does).
        let (file, at) = match damage {
            "chunk" => {
                let f = paths[1].join("chunks/000001");
                let len = std::fs::metadata(&f).unwrap().len();
                (f, len / 2)
            }
            _ => {
                let b = Block::open(&paths[1]).unwrap();
                let sref = b.index().all_postings().unwrap()[7];
                (paths[1].join("index"), u64::from(sref) * 16 + 4)
            }
        };
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[at as usize] ^= 0x5a;
        std::fs::write(&file, bytes).unwrap();
        let blocks: Vec<Block> = paths.iter().map(|p| Block::open(p).unwrap()).collect();
        let refs: Vec<&Block> = blocks.iter().collect();

        let before = snapshot(dir.path());
        let err = compact_blocks(dir.path(), &refs, &CompactOptions::default()).unwrap_err();
        match &err {
            Error::Corruption { file: f, .. } => assert_eq!(f, &file, "{err}"),
            e => panic!("{damage}: expected corruption, got {e}"),
        }
        assert_eq!(
            snapshot(dir.path()),
            before,
            "{damage}: the data dir changed"
        );
    }

    // A crash mid-write: the writer never finishes nor cleans up.
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::create(dir.path(), BlockOptions::default()).unwrap();
    w.add_series(&ls(&[("a", "1")]), &[xor_chunk(&[(1, 1.0)])])
        .unwrap();
    std::mem::forget(w);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert!(list_block_dirs(dir.path()).unwrap().is_empty());
    assert_eq!(remove_tmp_dirs(dir.path()).unwrap().len(), 1);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// The planner and the executor together, as the database's loop drives them: plan, merge,
/// delete the parents, plan again.
#[test]
fn plan_then_compact_until_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let planner = Planner::new(exponential_ranges(20, 3, 3)).unwrap();
    for w in 0..4 {
        let min = w * 20;
        let samples: Vec<(i64, f64)> = (min..min + 20).map(|t| (t, t as f64)).collect();
        let opts = BlockOptions {
            time_range: Some((min, min + 20)),
            ..BlockOptions::default()
        };
        make_block(dir.path(), opts, vec![(ls(&[("a", "b")]), vec![samples])]);
    }
    let mut rounds = 0;
    loop {
        let blocks: Vec<Block> = list_block_dirs(dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, p)| Block::open(p).unwrap())
            .collect();
        let plan = planner.plan(blocks.iter().map(Block::meta));
        if plan.is_empty() {
            break;
        }
        rounds += 1;
        let chosen: Vec<&Block> = plan
            .iter()
            .map(|u| blocks.iter().find(|b| b.ulid() == *u).unwrap())
            .collect();
        compact_blocks(dir.path(), &chosen, &CompactOptions::default())
            .unwrap()
            .unwrap();
        for b in chosen {
            crate::block::delete_block_dir(b.dir()).unwrap();
        }
    }
    assert_eq!(rounds, 1);
    let blocks: Vec<Block> = list_block_dirs(dir.path())
        .unwrap()
        .into_iter()
        .map(|(_, p)| Block::open(p).unwrap())
        .collect();
    let ranges: BTreeSet<(i64, i64, u32)> = blocks
        .iter()
        .map(|b| (b.min_time(), b.max_time(), b.meta().compaction.level))
        .collect();
    assert_eq!(ranges, [(0, 60, 2), (60, 80, 1)].into_iter().collect());
}

/// A generated input block: its first timestamp, chunk size, level, series (label value ->
/// timestamp offset -> value bits) and deletions (label value, offsets of a closed interval).
#[derive(Debug, Clone)]
struct GenBlock {
    start: i64,
    chunk_len: usize,
    level: u32,
    series: BTreeMap<u8, BTreeMap<i64, u64>>,
    deletes: Vec<(u8, i64, i64)>,
}

fn arb_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0f64.to_bits()),
        Just((-0f64).to_bits()),
        Just(1f64.to_bits()),
        Just(f64::NAN.to_bits()),
        Just(STALE_NAN_BITS),
    ]
}

fn arb_block() -> impl Strategy<Value = GenBlock> {
    (
        0i64..6,
        prop_oneof![1usize..=120, 121usize..=250],
        1u32..4,
        prop::collection::btree_map(
            0u8..6,
            prop::collection::btree_map(0i64..300, arb_value(), 1..250),
            1..5,
        ),
        prop::collection::vec((0u8..6, -20i64..3100, 0i64..600), 0..4),
    )
        .prop_map(|(start, chunk_len, level, series, deletes)| GenBlock {
            start: start * 1000,
            chunk_len,
            level,
            series,
            deletes,
        })
}

fn series_labels(v: u8) -> Labels {
    ls(&[("__name__", "m"), ("s", &v.to_string())])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Random series in 2-4 blocks (overlapping or not, shared or disjoint label sets,
    /// duplicates with differing values, tombstones) merge into exactly the model: the union
    /// of what each block has not deleted, one value per timestamp (the greatest in total
    /// order), compared bit for bit. Meta and stats follow the inputs; every input chunk
    /// that overlaps no other chunk of its series and no deleted interval is in the output
    /// byte for byte.
    #[test]
    fn compaction_matches_model(gen in prop::collection::vec(arb_block(), 2..=4)) {
        let dir = tempfile::tempdir().unwrap();
        let mut blocks = Vec::new();
        let mut model: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
        let mut fake_sources = BTreeSet::new();
        for (i, g) in gen.iter().enumerate() {
            let series = g
                .series
                .iter()
                .map(|(&s, samples)| {
                    let samples: Vec<(i64, f64)> = samples
                        .iter()
                        .map(|(&dt, &bits)| (g.start + dt * 10, f64::from_bits(bits)))
                        .collect();
                    (series_labels(s), samples.chunks(g.chunk_len).map(<[_]>::to_vec).collect())
                })
                .collect();
            let sources = if g.level > 1 {
                let s = vec![Ulid::from_parts(i as u64 + 1, 1), Ulid::from_parts(i as u64 + 1, 2)];
                fake_sources.extend(s.iter().copied());
                s
            } else {
                vec![]
            };
            let opts = BlockOptions { level: g.level, sources, ..BlockOptions::default() };
            let b = make_block(dir.path(), opts, series);
            if g.level == 1 {
                fake_sources.insert(b.ulid());
            }
            let deletes: Vec<(Labels, Interval)> = g
                .deletes
                .iter()
                .map(|&(s, a, len)| {
                    let a = g.start + a;
                    (series_labels(s), Interval::new(a, a + len))
                })
                .collect();
            let b = add_tombstones(b, &deletes);
            for (&s, samples) in &g.series {
                let l = series_labels(s);
                for (&dt, &bits) in samples {
                    let t = g.start + dt * 10;
                    if deletes.iter().any(|(dl, iv)| *dl == l && iv.contains(t)) {
                        continue;
                    }
                    let v = f64::from_bits(bits);
                    model
                        .entry(l.clone())
                        .or_default()
                        .entry(t)
                        .and_modify(|w| if v.total_cmp(w).is_gt() { *w = v })
                        .or_insert(v);
                }
            }
            blocks.push(b);
        }
        let refs: Vec<&Block> = blocks.iter().collect();
        let before = snapshot(dir.path());
        let res = compact_blocks(dir.path(), &refs, &CompactOptions::default()).unwrap();
        let after = snapshot(dir.path());
        prop_assert!(before.iter().all(|(p, b)| after.get(p) == Some(b)), "inputs changed");

        let want: BTreeMap<Labels, Vec<(i64, u64)>> = model
            .into_iter()
            .map(|(l, s)| (l, s.into_iter().map(|(t, v)| (t, v.to_bits())).collect()))
            .collect();
        let Some(ulid) = res else {
            prop_assert!(want.is_empty());
            prop_assert_eq!(after.len(), before.len(), "an empty result writes nothing");
            return Ok(());
        };
        prop_assert_eq!(after.len(), before.len() + 6, "one new block: dir, chunks dir, 4 files");
        let out = Block::open(dir.path().join(ulid.to_string())).unwrap();
        let got_chunks = read_block(&out);
        let got: BTreeMap<Labels, Vec<(i64, u64)>> = got_chunks
            .iter()
            .map(|(l, cs)| (l.clone(), cs.iter().flat_map(|c| c.samples.clone()).collect()))
            .collect();
        prop_assert_eq!(&got, &want);

        // Meta.
        let m = out.meta();
        prop_assert_eq!(m.min_time, blocks.iter().map(Block::min_time).min().unwrap());
        prop_assert_eq!(m.max_time, blocks.iter().map(Block::max_time).max().unwrap());
        prop_assert_eq!(m.compaction.level, gen.iter().map(|g| g.level).max().unwrap() + 1);
        prop_assert_eq!(&m.compaction.sources, &fake_sources.into_iter().collect::<Vec<_>>());
        let parents: Vec<Ulid> = m.compaction.parents.iter().map(|p| p.ulid).collect();
        prop_assert_eq!(parents, blocks.iter().map(Block::ulid).collect::<Vec<_>>());
        prop_assert_eq!(m.stats.num_series, want.len() as u64);
        prop_assert_eq!(m.stats.num_samples, want.values().map(|v| v.len() as u64).sum::<u64>());
        let chunks: usize = got_chunks.iter().map(|(_, cs)| cs.len()).sum();
        prop_assert_eq!(m.stats.num_chunks, chunks as u64);

        // Chunks: ordered; verbatim copies, or one input chunk's samples less deleted ones,
        // or merged and re-encoded with at most 120 samples; isolated untouched inputs copied
        // verbatim (inputs may hold up to 250 samples per chunk, so a re-encoded copy would
        // differ).
        let inputs: Vec<Vec<(Labels, Vec<ReadChunk>)>> = blocks.iter().map(read_block).collect();
        let out_chunks: BTreeMap<&Labels, &Vec<ReadChunk>> =
            got_chunks.iter().map(|(l, cs)| (l, cs)).collect();
        for cs in out_chunks.values() {
            for w in cs.windows(2) {
                prop_assert!(w[0].max_time < w[1].min_time);
            }
            for c in cs.iter() {
                let mut ics = inputs.iter().flatten().flat_map(|(_, ics)| ics);
                let ok = c.samples.len() <= MAX_SAMPLES_PER_CHUNK
                    || ics.any(|ic| ic == c || c.samples.iter().all(|s| ic.samples.contains(s)));
                prop_assert!(ok, "chunk [{}, {}] of {} samples", c.min_time, c.max_time, c.samples.len());
            }
        }
        for (bi, series) in inputs.iter().enumerate() {
            for (l, cs) in series {
                for c in cs {
                    let overlaps_other = inputs.iter().enumerate().any(|(bj, other)| {
                        other.iter().filter(|(ol, _)| ol == l).any(|(_, ocs)| {
                            ocs.iter().any(|o| {
                                !(bj == bi && o == c)
                                    && o.min_time <= c.max_time
                                    && c.min_time <= o.max_time
                            })
                        })
                    });
                    let g = &gen[bi];
                    let cut = g.deletes.iter().any(|&(s, a, len)| {
                        series_labels(s) == *l
                            && g.start + a <= c.max_time
                            && c.min_time <= g.start + a + len
                    });
                    if !overlaps_other && !cut {
                        let found = out_chunks
                            .get(l)
                            .is_some_and(|ocs| ocs.iter().any(|o| o == c));
                        prop_assert!(found, "{} chunk [{}, {}] not copied verbatim", l, c.min_time, c.max_time);
                    }
                }
            }
        }
    }
}

/// Chunks whose CRC is right but whose content cannot be merged: an encoding annals does
/// not know is `Unsupported`, a chunk without samples is `Corruption`; both name the
/// segment file and leave nothing behind.
#[test]
fn unknown_encodings_and_empty_chunks_are_reported() {
    for (what, patch) in [("encoding", 0usize), ("count", 1)] {
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<(i64, f64)> = (0..10).map(|t| (t, 1.0)).collect();
        let b = make_block(
            dir.path(),
            BlockOptions::default(),
            vec![(ls(&[("a", "b")]), vec![samples])],
        );
        let (_, metas) = b.series(b.index().all_postings().unwrap()[0]).unwrap();
        let (_, off) = crate::block::chunks::unpack_ref(metas[0].chunk_ref);
        let seg = b.dir().join("chunks/000001");
        drop(b);
        let mut bytes = std::fs::read(&seg).unwrap();
        let off = off as usize;
        let len = bytes[off] as usize; // one-byte uvarint for a small chunk
        let body = off + 1..off + 2 + len; // encoding byte and data
        if patch == 0 {
            bytes[off + 1] = 7;
        } else {
            bytes[off + 2] = 0;
            bytes[off + 3] = 0;
        }
        let crc = crate::encoding::crc32c(&bytes[body.clone()]);
        bytes[body.end..body.end + 4].copy_from_slice(&crc.to_be_bytes());
        std::fs::write(&seg, bytes).unwrap();

        let b = Block::open(seg.parent().unwrap().parent().unwrap()).unwrap();
        let before = snapshot(dir.path());
        let e = compact_blocks(dir.path(), &[&b], &CompactOptions::default()).unwrap_err();
        match (&e, what) {
            (Error::Unsupported { file, .. }, "encoding")
            | (Error::Corruption { file, .. }, "count") => {
                assert_eq!(file, &seg)
            }
            _ => panic!("{what}: {e}"),
        }
        assert_eq!(snapshot(dir.path()), before);
    }
}
