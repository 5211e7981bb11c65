//! Reading through the querier beyond samples: raw chunks (what remote read sends), the
//! unsorted select, chunk bounds, and seeks across chunks and sources.

use std::borrow::Cow;

use crate::support;
use annals::unstable::block::{write_block, BlockOptions, SeriesChunk};
use annals::unstable::chunkenc::{Encoding, XorAppender, XorIter};
use annals::{ChunkEncoding, Db, Labels, Matcher, Options, Querier, RawChunk, Series};

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied()).unwrap()
}

fn opts() -> Options {
    let mut o = Options::default();
    o.compaction = false;
    o.snapshot_on_close = false;
    o
}

const STEP: i64 = 15_000;

/// Two series with a sample every 15 s over `[0, 4 h)` in `db`, compacted: the first 2 h are
/// in a block, the rest in the head.
fn filled(db: &Db) -> Vec<Labels> {
    let series = vec![ls(&[("__name__", "a")]), ls(&[("__name__", "b")])];
    let mut refs = vec![None; series.len()];
    for k in 0..960i64 {
        let mut app = db.appender();
        for (i, l) in series.iter().enumerate() {
            refs[i] = Some(
                app.append(refs[i], l, k * STEP, (k + i as i64) as f64)
                    .unwrap(),
            );
        }
        app.commit().unwrap();
    }
    let stats = db.compact().unwrap();
    assert_eq!(
        stats.head_blocks.len(),
        1,
        "the first 2 h went into a block"
    );
    series
}

fn one(q: &Querier, name: &str) -> Series {
    let mut set = q.select(&[Matcher::equal("__name__", name)]).unwrap();
    let s = set.next().expect("the series is selected");
    assert!(set.next().is_none());
    s
}

fn samples_of(chunks: &[RawChunk<'_>]) -> Vec<(i64, u64)> {
    chunks
        .iter()
        .flat_map(|c| XorIter::new(&c.data).map(|x| x.map(|x| (x.t, x.v.to_bits())).unwrap()))
        .collect()
}

#[test]
fn raw_chunks_are_verbatim_unless_cut_by_the_range_or_a_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    filled(&db);
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let s = one(&q, "a");
    let chunks: Vec<RawChunk<'_>> = s.chunks().map(|c| c.unwrap()).collect();
    // 120 samples per chunk, half in the block and half in the head.
    assert_eq!(chunks.len(), 8);
    assert!(chunks.iter().all(|c| matches!(c.data, Cow::Borrowed(_))));
    assert!(chunks.iter().all(|c| c.encoding == ChunkEncoding::Xor));
    let bounds: Vec<(i64, i64)> = s.chunk_bounds().collect();
    let raw: Vec<(i64, i64)> = chunks.iter().map(|c| (c.min_time, c.max_time)).collect();
    assert_eq!(bounds, raw);
    let all = support::sample_bits(&s);
    assert_eq!(samples_of(&chunks), all);
    assert_eq!(all.len(), 960);

    // A range that cuts the first and the last chunk it touches re-encodes those two only.
    let (mint, maxt) = (10 * STEP, 700 * STEP + 1);
    let q = db.querier(mint, maxt).unwrap();
    let s = one(&q, "a");
    let chunks: Vec<RawChunk<'_>> = s.chunks().map(|c| c.unwrap()).collect();
    let owned: Vec<bool> = chunks
        .iter()
        .map(|c| matches!(c.data, Cow::Owned(_)))
        .collect();
    assert_eq!(owned, [true, false, false, false, false, true]);
    assert_eq!((chunks[0].min_time, chunks[5].max_time), (mint, 700 * STEP));
    let want: Vec<(i64, u64)> = all
        .iter()
        .copied()
        .filter(|&(t, _)| mint <= t && t <= maxt)
        .collect();
    assert_eq!(samples_of(&chunks), want);
    assert_eq!(s.to_vec().unwrap().len(), want.len());

    // A deletion inside one block chunk and one head chunk re-encodes just those.
    let a = [Matcher::equal("__name__", "a")];
    db.delete(130 * STEP, 131 * STEP, &a).unwrap();
    db.delete(600 * STEP, 600 * STEP, &a).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let s = one(&q, "a");
    let chunks: Vec<RawChunk<'_>> = s.chunks().map(|c| c.unwrap()).collect();
    let owned: Vec<usize> = (0..chunks.len())
        .filter(|&i| matches!(chunks[i].data, Cow::Owned(_)))
        .collect();
    assert_eq!(owned, [1, 5]);
    let want: Vec<(i64, u64)> = all
        .iter()
        .copied()
        .filter(|&(t, _)| !(130 * STEP..=131 * STEP).contains(&t) && t != 600 * STEP)
        .collect();
    assert_eq!(samples_of(&chunks), want);
    // The other series is untouched.
    let b = one(&q, "b");
    assert!(b
        .chunks()
        .all(|c| matches!(c.unwrap().data, Cow::Borrowed(_))));
    db.close().unwrap();
}

/// Two blocks holding the same series at overlapping times (backfill): the raw chunks of the
/// overlap are merged as compaction would merge them, the rest stay verbatim.
#[test]
fn overlapping_sources_are_merged_into_non_overlapping_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let l = ls(&[("__name__", "m")]);
    let chunk = |ts: std::ops::Range<i64>, v: f64| {
        let mut app = XorAppender::new();
        for t in ts.clone() {
            app.append(t * STEP, v);
        }
        SeriesChunk {
            min_time: ts.start * STEP,
            max_time: (ts.end - 1) * STEP,
            encoding: Encoding::Xor,
            data: app.into_bytes(),
        }
    };
    let block = |chunks: Vec<SeriesChunk>| {
        write_block(dir.path(), BlockOptions::default(), [(l.clone(), chunks)])
            .unwrap()
            .unwrap()
    };
    block(vec![chunk(0..100, 1.0), chunk(100..200, 1.0)]);
    block(vec![chunk(150..250, 2.0)]);
    let db = Db::open(dir.path(), opts()).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let s = one(&q, "m");
    assert_eq!(
        s.chunk_bounds().collect::<Vec<_>>(),
        [
            (0, 99 * STEP),
            (100 * STEP, 199 * STEP),
            (150 * STEP, 249 * STEP)
        ]
    );
    let chunks: Vec<RawChunk<'_>> = s.chunks().map(|c| c.unwrap()).collect();
    assert!(matches!(chunks[0].data, Cow::Borrowed(_)));
    assert!(chunks[1..].iter().all(|c| matches!(c.data, Cow::Owned(_))));
    assert!(chunks.windows(2).all(|w| w[0].max_time < w[1].min_time));
    let got = samples_of(&chunks);
    assert_eq!(got.len(), 250);
    // Of equal timestamps the greatest value wins, as in compaction.
    assert!(got[150..200].iter().all(|&(_, v)| v == 2f64.to_bits()));
    assert_eq!(got, support::sample_bits(&s));
    // Seeks cross chunks and the merged run.
    let mut it = s.samples();
    assert_eq!(it.seek(120 * STEP).unwrap().unwrap().t, 120 * STEP);
    assert_eq!(it.seek(199 * STEP).unwrap().unwrap().v, 2.0);
    assert_eq!(it.seek(249 * STEP).unwrap().unwrap().t, 249 * STEP);
    assert!(it.seek(250 * STEP).is_none());
    db.close().unwrap();
}

#[test]
fn unsorted_select_returns_the_same_series() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let series = filled(&db);
    // One more series only in the head, created after the others.
    let mut app = db.appender();
    app.append(None, &ls(&[("__name__", "0")]), 959 * STEP, 1.0)
        .unwrap();
    app.commit().unwrap();
    let q = db.querier(0, i64::MAX).unwrap();
    let sorted: Vec<String> = q
        .select(&[])
        .unwrap()
        .map(|s| s.labels().to_string())
        .collect();
    let mut unsorted: Vec<String> = q
        .select_unsorted(&[])
        .unwrap()
        .map(|s| s.labels().to_string())
        .collect();
    assert_eq!(sorted.len(), series.len() + 1);
    unsorted.sort();
    assert_eq!(unsorted, sorted);
    // Within one source no sort is needed: the head's order is creation order.
    let q = db.querier(500 * STEP, i64::MAX).unwrap();
    let head_only: Vec<String> = q
        .select_unsorted(&[])
        .unwrap()
        .map(|s| s.labels().to_string())
        .collect();
    assert_eq!(
        head_only,
        [
            r#"{__name__="a"}"#,
            r#"{__name__="b"}"#,
            r#"{__name__="0"}"#
        ]
    );
    db.close().unwrap();
}

#[test]
fn select_over_one_block_is_in_label_order() {
    // Series created in reverse label order: the head numbers them so, a block by labels,
    // and a select that reads only the block returns its order without sorting.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let names: Vec<String> = (0..40).rev().map(|i| format!("m{i:02}")).collect();
    let mut refs = vec![None; names.len()];
    for k in 0..960i64 {
        let mut app = db.appender();
        for (i, n) in names.iter().enumerate() {
            let l = ls(&[("__name__", n), ("job", "j")]);
            refs[i] = Some(app.append(refs[i], &l, k * STEP, k as f64).unwrap());
        }
        app.commit().unwrap();
    }
    assert_eq!(db.compact().unwrap().head_blocks.len(), 1);
    let mut sorted = names.clone();
    sorted.sort();
    let names_of = |q: &Querier| -> Vec<String> {
        q.select(&[Matcher::equal("job", "j")])
            .unwrap()
            .map(|s| s.labels().metric_name().unwrap().to_owned())
            .collect()
    };
    // The block alone, then the block and the head.
    assert_eq!(names_of(&db.querier(0, 10 * STEP).unwrap()), sorted);
    assert_eq!(names_of(&db.querier(0, i64::MAX).unwrap()), sorted);
    db.close().unwrap();
}

#[test]
fn queriers_and_series_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Querier>();
    send_sync::<Series>();
    send_sync::<annals::SeriesSet>();
    let db = Db::open_in_memory(Options::default()).unwrap();
    let mut app = db.appender();
    app.append(None, &ls(&[("__name__", "x")]), 1, 1.0).unwrap();
    app.commit().unwrap();
    let q = db.querier(0, 10).unwrap();
    let s = q.select(&[]).unwrap().next().unwrap();
    let n = std::thread::spawn(move || s.to_vec().unwrap().len())
        .join()
        .unwrap();
    assert_eq!(n, 1);
}

/// Label lookups without matchers take each source whole when its time range overlaps the
/// querier's, and the head too (Prometheus's `headIndexReader`): no head label outside it.
#[test]
fn label_lookups_without_matchers_respect_the_heads_time_range() {
    let db = Db::open_in_memory(opts()).unwrap();
    let mut app = db.appender();
    app.append(
        None,
        &ls(&[("__name__", "early"), ("job", "a")]),
        1_000,
        1.0,
    )
    .unwrap();
    app.append(None, &ls(&[("__name__", "late"), ("env", "p")]), 9_000, 1.0)
        .unwrap();
    app.commit().unwrap();
    let names = |lo, hi| db.querier(lo, hi).unwrap().label_names(&[]).unwrap();
    let jobs = |lo, hi| {
        db.querier(lo, hi)
            .unwrap()
            .label_values("job", &[])
            .unwrap()
    };
    // Disjoint from the head's [1000, 9000]: nothing.
    assert!(names(0, 999).is_empty());
    assert!(names(9_001, 20_000).is_empty());
    assert!(jobs(0, 999).is_empty());
    // Overlapping: the head whole (its index does not know sample times per label).
    assert_eq!(names(9_000, 20_000), ["__name__", "env", "job"]);
    assert_eq!(jobs(5_000, 5_000), ["a"]);
    // With matchers, series by series, as before.
    let q = db.querier(9_000, 20_000).unwrap();
    assert_eq!(
        q.label_names(&[Matcher::regex("__name__", ".+").unwrap()])
            .unwrap(),
        ["__name__", "env"]
    );
    // An empty head overlaps nothing.
    let empty = Db::open_in_memory(opts()).unwrap();
    let q = empty.querier(i64::MIN, i64::MAX).unwrap();
    assert!(q.label_names(&[]).unwrap().is_empty());
}

/// The head's chunk count: one open chunk per series, plus every cut chunk.
#[test]
fn head_chunk_count_counts_open_and_closed_chunks() {
    let db = Db::open_in_memory(opts()).unwrap();
    assert_eq!(db.head_chunk_count(), 0);
    let a = ls(&[("__name__", "a")]);
    let b = ls(&[("__name__", "b")]);
    let mut app = db.appender();
    // 300 samples at 15 s in one 2 h range: chunks of 120, 120, 60 (Prometheus cuts at 120
    // samples), and one sample of b.
    for i in 0..300 {
        app.append(None, &a, i * STEP, i as f64).unwrap();
    }
    app.append(None, &b, 0, 1.0).unwrap();
    app.commit().unwrap();
    let chunks_of_a = db
        .querier(0, i64::MAX)
        .unwrap()
        .select(&[Matcher::equal("__name__", "a")])
        .unwrap()
        .next()
        .unwrap()
        .chunk_bounds()
        .count() as u64;
    assert!(chunks_of_a >= 3, "{chunks_of_a}");
    assert_eq!(db.head_chunk_count(), chunks_of_a + 1);
}
