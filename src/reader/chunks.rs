//! Merging the chunks of one series from several sources, the way Prometheus's compacting
//! chunk merger (`storage.compactChunkIterator`) and its tombstone-aware chunk iterator
//! (`populateWithDelChunkSeriesIterator`) do: what compaction writes, and what a query hands
//! out as raw chunks.
//!
//! 1. Chunks outside the output range are dropped, chunks wholly inside one deleted interval
//!    are dropped without being read, and chunks that a deleted interval or the output range
//!    cuts are decoded, filtered and re-encoded as one chunk.
//! 2. The surviving chunks, ordered by `(min_time, max_time)`, form groups of transitively
//!    overlapping chunks (closed ranges: touching at one timestamp is overlapping). A chunk
//!    identical to the previous one of its group (same range and bytes) is skipped.
//! 3. A group of one chunk is written as it is: verbatim bytes for untouched chunks. A larger
//!    group is decoded, merged by timestamp with duplicates removed (see [duplicate samples](crate::compact#duplicate-samples)) and
//!    re-encoded into XOR chunks of at most [`MAX_SAMPLES_PER_CHUNK`] samples.

use std::borrow::Cow;
use std::path::Path;

use super::{ChunkMeta, ChunkReader};
use crate::chunkenc::{Chunk, Encoding, SeriesChunk, XorAppender, XorIter};
use crate::error::{Error, Result};
use crate::tombstones::Intervals;

/// Samples per re-encoded chunk, Prometheus's `seriesToChunkEncoderSplit`.
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// Where a chunk's payload lies (a segment file, or a head chunk), for naming it in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkSource<'a> {
    /// The chunk segment file.
    pub(crate) file: &'a Path,
    /// Offset of the payload (after length and encoding) in the file.
    pub(crate) offset: u64,
}

impl ChunkSource<'_> {
    /// Damage `offset` bytes into the payload.
    pub(crate) fn corrupt(&self, offset: usize, reason: impl Into<String>) -> Error {
        Error::corruption(self.file, self.offset + offset as u64, reason)
    }
}

/// One chunk of a series, ready to be merged: bytes borrowed from an input block, or owned
/// after filtering.
#[derive(Debug, Clone)]
pub(crate) struct Candidate<'a> {
    pub min_time: i64,
    pub max_time: i64,
    pub encoding: Encoding,
    pub data: Cow<'a, [u8]>,
    pub source: ChunkSource<'a>,
}

impl Candidate<'_> {
    fn same_as(&self, o: &Candidate<'_>) -> bool {
        self.min_time == o.min_time
            && self.max_time == o.max_time
            && self.encoding == o.encoding
            && self.data == o.data
    }
}

/// Decodes an XOR payload into `out`, checking that timestamps strictly increase.
fn decode_xor(data: &[u8], source: &ChunkSource<'_>, out: &mut Vec<(i64, f64)>) -> Result<()> {
    let mut prev: Option<i64> = None;
    for s in XorIter::new(data) {
        let s = s.map_err(|e| source.corrupt(e.offset, format!("XOR chunk: {}", e.reason)))?;
        if prev.is_some_and(|p| s.t <= p) {
            return Err(source.corrupt(
                0,
                format!(
                    "XOR chunk timestamps do not increase: {} after {prev:?}",
                    s.t
                ),
            ));
        }
        prev = Some(s.t);
        out.push((s.t, s.v));
    }
    Ok(())
}

/// What to keep of a chunk of an input series.
pub(crate) enum Trim {
    /// Nothing: outside the output range or wholly deleted. The chunk need not be read.
    Drop,
    /// Everything: copy verbatim.
    Keep,
    /// Some samples: decode and filter.
    Filter,
}

/// Classifies a chunk against the output's closed range `[mint, maxt]` and the series'
/// deleted intervals (Prometheus `blockBaseSeriesSet.Next`).
pub(crate) fn trim(meta: &ChunkMeta, mint: i64, maxt: i64, deleted: Option<&Intervals>) -> Trim {
    if meta.max_time < mint || meta.min_time > maxt {
        return Trim::Drop;
    }
    let deleted = deleted.map(Intervals::as_slice).unwrap_or_default();
    if deleted
        .iter()
        .any(|iv| iv.min_time <= meta.min_time && meta.max_time <= iv.max_time)
    {
        return Trim::Drop;
    }
    let cut = meta.min_time < mint
        || meta.max_time > maxt
        || deleted
            .iter()
            .any(|iv| iv.min_time <= meta.max_time && meta.min_time <= iv.max_time);
    if cut {
        Trim::Filter
    } else {
        Trim::Keep
    }
}

/// Adds to `out` what is left of the chunk `meta` names (read through `chunks`) inside
/// `[mint, maxt]` without the `deleted` samples: nothing, the chunk as it is, or one chunk
/// re-encoded without the samples cut away ([`trim`], [`filter`]). A chunk without samples is
/// corruption.
pub(crate) fn candidate<'a, C: ChunkReader + ?Sized>(
    chunks: &'a C,
    meta: &'a ChunkMeta,
    mint: i64,
    maxt: i64,
    deleted: Option<&Intervals>,
    out: &mut Vec<Candidate<'a>>,
    buf: &mut Vec<(i64, f64)>,
) -> Result<()> {
    let how = trim(meta, mint, maxt, deleted);
    if matches!(how, Trim::Drop) {
        return Ok(());
    }
    let chunk = chunks.chunk(meta)?;
    let source = chunks.source(meta, &chunk);
    match chunk.num_samples() {
        Some(n) if n > 0 => {}
        Some(_) => return Err(source.corrupt(0, "chunk holds no samples")),
        None => return Err(source.corrupt(0, "chunk is shorter than its sample count")),
    }
    match how {
        Trim::Keep => out.push(Candidate {
            min_time: meta.min_time,
            max_time: meta.max_time,
            encoding: chunk.encoding,
            data: Cow::Borrowed(chunk.data),
            source,
        }),
        _ if chunk.encoding != Encoding::Xor => {
            filter_values(&chunk, source, mint, maxt, deleted, out)?
        }
        _ => out.extend(filter(&chunk, source, mint, maxt, deleted, buf)?),
    }
    Ok(())
}

/// Decodes `chunk`, keeps its samples inside `[mint, maxt]` and not deleted, and encodes
/// them as one XOR chunk. `None` when no sample is left.
pub(crate) fn filter<'a>(
    chunk: &Chunk<'_>,
    source: ChunkSource<'a>,
    mint: i64,
    maxt: i64,
    deleted: Option<&Intervals>,
    buf: &mut Vec<(i64, f64)>,
) -> Result<Option<Candidate<'a>>> {
    if chunk.encoding != Encoding::Xor {
        let mut out = Vec::new();
        filter_values(chunk, source, mint, maxt, deleted, &mut out)?;
        let mut out = out.into_iter();
        return match (out.next(), out.next()) {
            (c, None) => Ok(c),
            (Some(c), Some(_)) => Err(c.source.corrupt(
                0,
                "a histogram chunk whose samples do not re-encode as one chunk",
            )),
            (None, Some(_)) => unreachable!("an iterator that ended yields nothing more"),
        };
    }
    buf.clear();
    decode_xor(chunk.data, &source, buf)?;
    buf.retain(|&(t, _)| mint <= t && t <= maxt && !deleted.is_some_and(|d| d.contains(t)));
    let (Some(&(first, _)), Some(&(last, _))) = (buf.first(), buf.last()) else {
        return Ok(None);
    };
    let mut app = XorAppender::new();
    for &(t, v) in buf.iter() {
        app.append(t, v);
    }
    Ok(Some(Candidate {
        min_time: first,
        max_time: last,
        encoding: Encoding::Xor,
        data: Cow::Owned(app.into_bytes()),
        source,
    }))
}

/// As [`filter`], for a chunk of any encoding: its values inside `[mint, maxt]` and not
/// deleted, re-encoded (see [`super::values::encode`]) into as many chunks as they need.
pub(crate) fn filter_values<'a>(
    chunk: &Chunk<'_>,
    source: ChunkSource<'a>,
    mint: i64,
    maxt: i64,
    deleted: Option<&Intervals>,
    out: &mut Vec<Candidate<'a>>,
) -> Result<()> {
    let mut values = Vec::new();
    super::values::decode(chunk, &source, &mut values)?;
    values.retain(|(t, _)| mint <= *t && *t <= maxt && !deleted.is_some_and(|d| d.contains(*t)));
    let mut chunks = Vec::new();
    super::values::encode(&values, &mut chunks);
    out.extend(chunks.into_iter().map(|c| Candidate {
        min_time: c.min_time,
        max_time: c.max_time,
        encoding: c.encoding,
        data: Cow::Owned(c.data.into_owned()),
        source,
    }));
    Ok(())
}

/// Merges the candidate chunks of one series into `out` (cleared first), see the module docs.
/// `samples` is scratch space; `cands` is left empty.
pub(crate) fn merge<'a>(
    cands: &mut Vec<Candidate<'a>>,
    samples: &mut Vec<(i64, f64)>,
    out: &mut Vec<SeriesChunk<Cow<'a, [u8]>>>,
) -> Result<()> {
    out.clear();
    // Stable: equal ranges keep input order, so skipping identical chunks is deterministic.
    cands.sort_by_key(|c| (c.min_time, c.max_time));
    let mut group: Vec<Candidate<'a>> = Vec::new();
    let mut iter = cands.drain(..).peekable();
    while let Some(first) = iter.next() {
        let mut max = first.max_time;
        group.clear();
        group.push(first);
        while let Some(next) = iter.next_if(|c| c.min_time <= max) {
            if !next.same_as(&group[group.len() - 1]) {
                max = max.max(next.max_time);
                group.push(next);
            }
        }
        if group.len() == 1 {
            let c = group.pop().expect("one chunk in the group");
            out.push(SeriesChunk {
                min_time: c.min_time,
                max_time: c.max_time,
                encoding: c.encoding,
                data: c.data,
            });
            continue;
        }
        samples.clear();
        if group.iter().any(|c| c.encoding != Encoding::Xor) {
            // Histograms among them: merged as values of every type, re-encoded by type.
            let mut values = Vec::new();
            for c in &group {
                let chunk = Chunk {
                    encoding: c.encoding,
                    data: &c.data,
                };
                super::values::decode(&chunk, &c.source, &mut values)?;
            }
            super::values::dedup(&mut values);
            super::values::encode(&values, out);
            continue;
        }
        for c in &group {
            decode_xor(&c.data, &c.source, samples)?;
        }
        dedup_samples(samples);
        encode_chunks(samples, out);
    }
    Ok(())
}

/// Sorts samples by timestamp and keeps one per timestamp: the greatest value in IEEE 754
/// total order (see [duplicate samples](crate::compact#duplicate-samples)).
pub(crate) fn dedup_samples(samples: &mut Vec<(i64, f64)>) {
    samples.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.total_cmp(&a.1)));
    samples.dedup_by_key(|s| s.0);
}

/// Encodes sorted samples as XOR chunks of at most [`MAX_SAMPLES_PER_CHUNK`] samples.
fn encode_chunks<'a>(samples: &[(i64, f64)], out: &mut Vec<SeriesChunk<Cow<'a, [u8]>>>) {
    for part in samples.chunks(MAX_SAMPLES_PER_CHUNK) {
        let mut app = XorAppender::new();
        for &(t, v) in part {
            app.append(t, v);
        }
        out.push(SeriesChunk {
            min_time: part[0].0,
            max_time: part[part.len() - 1].0,
            encoding: Encoding::Xor,
            data: Cow::Owned(app.into_bytes()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tombstones::Interval;
    use proptest::prelude::*;

    fn src() -> ChunkSource<'static> {
        ChunkSource {
            file: Path::new("chunks/000001"),
            offset: 10,
        }
    }

    fn xor(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut app = XorAppender::new();
        for &(t, v) in samples {
            app.append(t, v);
        }
        app.into_bytes()
    }

    fn cand(samples: &[(i64, f64)]) -> Candidate<'static> {
        Candidate {
            min_time: samples[0].0,
            max_time: samples[samples.len() - 1].0,
            encoding: Encoding::Xor,
            data: Cow::Owned(xor(samples)),
            source: src(),
        }
    }

    fn decode(c: &SeriesChunk<Cow<'_, [u8]>>) -> Vec<(i64, u64)> {
        XorIter::new(&c.data)
            .map(|s| s.map(|s| (s.t, s.v.to_bits())).unwrap())
            .collect()
    }

    fn meta(min_time: i64, max_time: i64) -> ChunkMeta {
        ChunkMeta {
            min_time,
            max_time,
            chunk: crate::reader::ChunkRef::Block(0),
        }
    }

    #[test]
    fn trim_rules() {
        let d: Intervals = [Interval::new(10, 20), Interval::new(30, 30)]
            .into_iter()
            .collect();
        assert!(matches!(trim(&meta(0, 5), 6, 100, None), Trim::Drop));
        assert!(matches!(trim(&meta(101, 105), 6, 100, None), Trim::Drop));
        assert!(matches!(trim(&meta(0, 6), 6, 100, None), Trim::Filter));
        assert!(matches!(trim(&meta(100, 101), 6, 100, None), Trim::Filter));
        assert!(matches!(trim(&meta(6, 100), 6, 100, None), Trim::Keep));
        assert!(matches!(trim(&meta(11, 19), 0, 100, Some(&d)), Trim::Drop));
        assert!(matches!(trim(&meta(10, 20), 0, 100, Some(&d)), Trim::Drop));
        assert!(matches!(trim(&meta(30, 30), 0, 100, Some(&d)), Trim::Drop));
        assert!(matches!(
            trim(&meta(20, 29), 0, 100, Some(&d)),
            Trim::Filter
        ));
        assert!(matches!(trim(&meta(0, 10), 0, 100, Some(&d)), Trim::Filter));
        assert!(matches!(trim(&meta(21, 29), 0, 100, Some(&d)), Trim::Keep));
        // Covered by two intervals but not one: filtered (and possibly emptied).
        assert!(matches!(
            trim(&meta(25, 35), 0, 100, Some(&d)),
            Trim::Filter
        ));
    }

    #[test]
    fn filter_drops_deleted_and_out_of_range_samples() {
        let samples: Vec<(i64, f64)> = (0..10).map(|t| (t, t as f64)).collect();
        let data = xor(&samples);
        let chunk = Chunk {
            encoding: Encoding::Xor,
            data: &data,
        };
        let d: Intervals = [Interval::new(3, 4)].into_iter().collect();
        let mut buf = Vec::new();
        let c = filter(&chunk, src(), 1, 8, Some(&d), &mut buf)
            .unwrap()
            .unwrap();
        assert_eq!((c.min_time, c.max_time), (1, 8));
        let got: Vec<i64> = XorIter::new(&c.data).map(|s| s.unwrap().t).collect();
        assert_eq!(got, [1, 2, 5, 6, 7, 8]);
        // Deleted by two intervals together, though by neither alone: nothing is left.
        let gappy = xor(&[(0, 0.0), (1, 0.0), (8, 0.0), (9, 0.0)]);
        let gappy = Chunk {
            encoding: Encoding::Xor,
            data: &gappy,
        };
        let two: Intervals = [Interval::new(0, 4), Interval::new(6, 9)]
            .into_iter()
            .collect();
        assert_eq!(two.len(), 2);
        assert!(matches!(trim(&meta(0, 9), 0, 9, Some(&two)), Trim::Filter));
        assert!(filter(&gappy, src(), 0, 9, Some(&two), &mut buf)
            .unwrap()
            .is_none());
        // An XOR payload read as a histogram chunk is corruption, named so.
        let hist = Chunk {
            encoding: Encoding::Histogram,
            data: &data,
        };
        let e = filter(&hist, src(), 0, 9, None, &mut buf).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e}");
    }

    #[test]
    fn corrupt_chunks_name_file_and_offset() {
        let mut data = xor(&[(1, 1.0), (2, 2.0), (3, 3.0)]);
        data.truncate(data.len() - 1);
        data[1] = 9; // claims 9 samples
        let chunk = Chunk {
            encoding: Encoding::Xor,
            data: &data,
        };
        let e = filter(&chunk, src(), 0, 9, None, &mut Vec::new()).unwrap_err();
        match e {
            Error::Corruption { file, offset, .. } => {
                assert_eq!(file, Path::new("chunks/000001"));
                assert!(offset.unwrap() >= 10);
            }
            e => panic!("{e}"),
        }
        // Timestamps that do not increase are corruption too: set the second sample's
        // delta (the byte after header, varint t and 64-bit value) to 0.
        let mut data = xor(&[(5, 1.0), (6, 2.0)]);
        assert_eq!(data[11], 1);
        data[11] = 0;
        let chunk = Chunk {
            encoding: Encoding::Xor,
            data: &data,
        };
        let e = filter(&chunk, src(), 0, 9, None, &mut Vec::new()).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e}");
    }

    #[test]
    fn non_overlapping_chunks_pass_through_and_identical_ones_collapse() {
        let a = cand(&[(1, 1.0), (2, 2.0)]);
        let b = cand(&[(3, 3.0), (4, 4.0)]);
        let mut out = Vec::new();
        merge(
            &mut vec![b.clone(), a.clone(), a.clone()],
            &mut Vec::new(),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data, a.data);
        assert_eq!(out[1].data, b.data);
    }

    #[test]
    fn touching_chunks_merge_and_duplicates_keep_the_greatest_value() {
        let a = cand(&[(1, 1.0), (5, 1.0)]);
        let b = cand(&[(5, 2.0), (6, 2.0)]);
        let mut out = Vec::new();
        merge(&mut vec![a.clone(), b.clone()], &mut Vec::new(), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            decode(&out[0]),
            [
                (1, 1f64.to_bits()),
                (5, 2f64.to_bits()),
                (6, 2f64.to_bits())
            ]
        );
        // Order of the inputs does not matter.
        let mut out2 = Vec::new();
        merge(&mut vec![b, a], &mut Vec::new(), &mut out2).unwrap();
        assert_eq!(out, out2);
        // total order: -0 < +0 < stale NaN.
        let mut s = vec![
            (1, 0.0),
            (1, -0.0),
            (2, crate::model::stale_nan()),
            (2, f64::INFINITY),
        ];
        dedup_samples(&mut s);
        assert_eq!(s[0].1.to_bits(), 0f64.to_bits());
        assert!(crate::model::is_stale_marker(s[1].1));
    }

    #[test]
    fn merged_groups_are_cut_every_120_samples() {
        let a: Vec<(i64, f64)> = (0..200).map(|i| (2 * i, 1.0)).collect();
        let b: Vec<(i64, f64)> = (0..200).map(|i| (2 * i + 1, 2.0)).collect();
        let mut out = Vec::new();
        merge(&mut vec![cand(&a), cand(&b)], &mut Vec::new(), &mut out).unwrap();
        let counts: Vec<usize> = out.iter().map(|c| decode(c).len()).collect();
        assert_eq!(counts, [120, 120, 120, 40]);
        for c in &out {
            let d = decode(c);
            assert_eq!((c.min_time, c.max_time), (d[0].0, d[d.len() - 1].0));
        }
    }

    /// Overlapping histogram chunks (vertical compaction) are decoded, merged by time and
    /// re-encoded by type: a float chunk overlapping them keeps its floats, in chunks of their
    /// own between the histograms'.
    #[test]
    fn overlapping_histogram_chunks_merge_by_time() {
        use crate::chunkenc::HistogramAppender;
        use crate::model::histogram::{Histogram, Span};
        use crate::model::Value;
        let h = |c: u64| Histogram {
            count: c,
            sum: c as f64,
            positive_spans: vec![Span {
                offset: 0,
                length: 1,
            }],
            positive_buckets: vec![c as i64],
            ..Histogram::default()
        };
        let chunk = |ts: &[i64]| {
            let mut a = HistogramAppender::new();
            for &t in ts {
                a.push(t, h(t as u64), false).unwrap();
            }
            Candidate {
                min_time: ts[0],
                max_time: ts[ts.len() - 1],
                encoding: Encoding::Histogram,
                data: Cow::Owned(a.into_bytes()),
                source: src(),
            }
        };
        let mut cands = vec![
            chunk(&[1, 3, 5, 7]),
            chunk(&[2, 3, 4]),
            cand(&[(6, 1.0), (8, 2.0)]),
        ];
        let mut out = Vec::new();
        merge(&mut cands, &mut Vec::new(), &mut out).unwrap();
        let encodings: Vec<Encoding> = out.iter().map(|c| c.encoding).collect();
        assert_eq!(
            encodings,
            [
                Encoding::Histogram,
                Encoding::Xor,
                Encoding::Histogram,
                Encoding::Xor
            ]
        );
        let mut values = Vec::new();
        for c in &out {
            let chunk = Chunk {
                encoding: c.encoding,
                data: &c.data,
            };
            crate::reader::values::decode(&chunk, &src(), &mut values).unwrap();
        }
        let times: Vec<i64> = values.iter().map(|v| v.0).collect();
        assert_eq!(times, [1, 2, 3, 4, 5, 6, 7, 8]);
        for (t, v) in &values {
            match t {
                6 | 8 => assert!(matches!(v, Value::Float(_)), "{t}: {v:?}"),
                _ => assert!(
                    matches!(v, Value::Histogram(x) if x.count == *t as u64),
                    "{t}: {v:?}"
                ),
            }
        }
    }

    proptest! {
        /// Merging any set of chunks gives the sorted union of their samples, one value per
        /// timestamp (the greatest), in non-overlapping chunks of at most 120 samples (or
        /// verbatim input chunks), whatever the input order.
        #[test]
        fn merge_matches_model(
            chunks in prop::collection::vec(
                prop::collection::btree_map(0i64..400, any::<u64>(), 1..150), 1..6),
            rot in 0usize..6,
        ) {
            let cands: Vec<Candidate<'static>> = chunks
                .iter()
                .map(|m| {
                    let s: Vec<(i64, f64)> = m.iter().map(|(&t, &b)| (t, f64::from_bits(b))).collect();
                    cand(&s)
                })
                .collect();
            let mut model: std::collections::BTreeMap<i64, f64> = Default::default();
            for m in &chunks {
                for (&t, &bits) in m {
                    let v = f64::from_bits(bits);
                    model
                        .entry(t)
                        .and_modify(|w| if v.total_cmp(w).is_gt() { *w = v })
                        .or_insert(v);
                }
            }
            let want: Vec<(i64, u64)> = model.iter().map(|(&t, v)| (t, v.to_bits())).collect();
            let inputs: Vec<Vec<u8>> = cands.iter().map(|c| c.data.to_vec()).collect();
            let mut rotated = cands.clone();
            rotated.rotate_left(rot % cands.len());
            for mut input in [cands, rotated] {
                let mut out = Vec::new();
                merge(&mut input, &mut Vec::new(), &mut out).unwrap();
                let got: Vec<(i64, u64)> = out.iter().flat_map(decode).collect();
                prop_assert_eq!(&got, &want);
                for w in out.windows(2) {
                    prop_assert!(w[0].max_time < w[1].min_time);
                }
                for c in &out {
                    let verbatim = inputs.iter().any(|i| **i == *c.data);
                    prop_assert!(verbatim || decode(c).len() <= MAX_SAMPLES_PER_CHUNK);
                }
            }
        }
    }
}
