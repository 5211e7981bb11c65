//! Selected series: labels and chunk metas, read lazily as samples or as raw chunks.

use std::borrow::Cow;
use std::sync::Arc;

use super::{SampleIter, ValueIter};
use crate::block::Block;
use crate::chunkenc::{Chunk, Encoding};
use crate::error::Result;
use crate::model::{Labels, Sample};
use crate::reader::chunks::{self, Candidate};
use crate::reader::{ChunkMeta, ChunkReader, ChunkSource, HeadChunks};
use crate::tombstones::Intervals;

/// One chunk of a selected series and where to read it.
#[derive(Clone)]
pub(super) struct SelectedChunk {
    pub(super) meta: ChunkMeta,
    /// The block whose chunk reader resolves `meta`; `None` for head chunks, whose metas
    /// carry their bytes.
    pub(super) block: Option<Arc<Block>>,
    /// Deleted intervals of the series in the chunk's source.
    pub(super) deleted: Option<Arc<Intervals>>,
}

impl SelectedChunk {
    /// Calls `f` with the chunk reader of the chunk's source.
    fn with_reader<'a, T>(&'a self, f: impl FnOnce(&'a dyn ChunkReader) -> T) -> T {
        match &self.block {
            Some(b) => f(b.chunks()),
            None => f(&HeadChunks),
        }
    }

    /// The chunk's encoding and bytes; block chunks are read and CRC-checked here.
    pub(super) fn read(&self) -> Result<Chunk<'_>> {
        self.with_reader(|r| r.chunk(&self.meta))
    }

    /// Where the chunk's payload lies, for naming it in errors.
    pub(super) fn source(&self, chunk: &Chunk<'_>) -> ChunkSource<'_> {
        self.with_reader(|r| r.source(&self.meta, chunk))
    }

    /// Whether sample time `t` is deleted.
    #[inline]
    pub(super) fn is_deleted(&self, t: i64) -> bool {
        self.deleted.as_deref().is_some_and(|d| d.contains(t))
    }
}

/// The series returned by [`Querier::select`](super::Querier::select), in label order (or
/// in no particular order, from [`Querier::select_unsorted`](super::Querier::select_unsorted)).
pub struct SeriesSet {
    inner: std::vec::IntoIter<Series>,
}

impl SeriesSet {
    pub(super) fn new(series: Vec<Series>) -> Self {
        SeriesSet {
            inner: series.into_iter(),
        }
    }
}

impl Iterator for SeriesSet {
    type Item = Series;

    /// The next series with at least one sample in range (chunks overlapping the range may
    /// still hold none, for example after a deletion: those series are skipped).
    fn next(&mut self) -> Option<Series> {
        self.inner.by_ref().find(Series::has_samples)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.inner.size_hint().1)
    }
}

/// One selected series: its labels and its samples in the querier's range. It holds what it
/// reads (mapped block files, head chunk bytes), so it stays readable whatever the database
/// does meanwhile; it is `Send` and `Sync`.
pub struct Series {
    labels: Labels,
    /// Sorted by min time; may overlap when several sources hold the series.
    chunks: Vec<SelectedChunk>,
    mint: i64,
    maxt: i64,
}

impl Series {
    pub(super) fn new(labels: Labels, chunks: Vec<SelectedChunk>, mint: i64, maxt: i64) -> Self {
        let mut s = Series {
            labels,
            chunks,
            mint,
            maxt,
        };
        s.chunks.sort_by_key(|c| c.meta.min_time);
        s
    }

    /// Adds the chunks another source holds of the same series.
    pub(super) fn extend(&mut self, chunks: Vec<SelectedChunk>) {
        self.chunks.extend(chunks);
        self.chunks.sort_by_key(|c| c.meta.min_time);
    }

    /// The series' labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Whether a sample lies in range. A chunk wholly inside the range with no deletions
    /// proves it without decoding; otherwise chunks are decoded up to the first float sample
    /// in range, and failing one, to the first value of any type (native histograms). A read error counts as "yes", so that iteration reports it.
    fn has_samples(&self) -> bool {
        self.chunks.iter().any(|c| {
            c.meta.min_time >= self.mint && c.meta.max_time <= self.maxt && c.deleted.is_none()
        }) || self.samples().next().is_some()
            || self.values().next().is_some()
    }

    /// Iterates the float samples in range, oldest first. [`SampleIter::seek`] skips forward,
    /// whole chunks without decoding them. Native-histogram chunks are skipped (a series of
    /// histograms only yields nothing here); [`values`](Self::values) yields every type.
    pub fn samples(&self) -> SampleIter<'_> {
        SampleIter::new(&self.chunks, self.mint, self.maxt)
    }

    /// Iterates the values in range of every type (floats, integer and float native
    /// histograms), oldest first, each with its timestamp; [`ValueIter::seek`] skips forward.
    pub fn values(&self) -> ValueIter<'_> {
        ValueIter::new(&self.chunks, self.mint, self.maxt)
    }

    /// All samples in range, collected.
    pub fn to_vec(&self) -> Result<Vec<Sample>> {
        self.samples().collect()
    }

    /// The closed time ranges `(min, max)` of the series' chunks that overlap the querier's
    /// range, by min time: what a reader of a window can skip without decoding. Chunks of
    /// different sources may overlap, and deleted samples still count.
    pub fn chunk_bounds(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.chunks
            .iter()
            .map(|c| (c.meta.min_time, c.meta.max_time))
    }

    /// The series' chunks in range as they are stored (what Prometheus's remote read sends as
    /// `STREAMED_XOR_CHUNKS`), by min time and without overlaps: a chunk is handed out
    /// verbatim, without decoding, unless a deletion or the querier's range cuts it or it
    /// overlaps another chunk of the series (several sources, or vertical blocks); those are
    /// decoded, merged as compaction merges them and re-encoded as chunks of their sample type
    /// of at most 120 samples. Each chunk carries its encoding (XOR, or a native-histogram
    /// encoding); the values of the chunks are exactly [`values`](Self::values), and those of
    /// the XOR chunks exactly [`samples`](Self::samples).
    pub fn chunks(&self) -> RawChunks<'_> {
        RawChunks {
            series: self,
            out: None,
        }
    }
}

/// One chunk of a series, as [`Series::chunks`] hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawChunk<'a> {
    /// How the payload is encoded.
    pub encoding: Encoding,
    /// Timestamp of the first sample (ms).
    pub min_time: i64,
    /// Timestamp of the last sample (ms), inclusive.
    pub max_time: i64,
    /// The payload (it starts with the BE16 sample count): borrowed from the store when the
    /// chunk is verbatim, owned when it was re-encoded.
    pub data: Cow<'a, [u8]>,
}

/// Iterator over the raw chunks of a [`Series`]; see [`Series::chunks`].
pub struct RawChunks<'a> {
    series: &'a Series,
    /// The chunks, once merged (on the first call); an error ends the iteration.
    out: Option<std::vec::IntoIter<Result<RawChunk<'a>>>>,
}

impl<'a> RawChunks<'a> {
    fn merged(series: &'a Series) -> Result<Vec<RawChunk<'a>>> {
        let mut cands: Vec<Candidate<'a>> = Vec::new();
        let mut buf = Vec::new();
        for c in &series.chunks {
            let deleted = c.deleted.as_deref();
            c.with_reader(|r| {
                chunks::candidate(
                    r,
                    &c.meta,
                    series.mint,
                    series.maxt,
                    deleted,
                    &mut cands,
                    &mut buf,
                )
            })?;
        }
        let mut out = Vec::new();
        chunks::merge(&mut cands, &mut buf, &mut out)?;
        Ok(out
            .into_iter()
            .map(|c| RawChunk {
                encoding: c.encoding,
                min_time: c.min_time,
                max_time: c.max_time,
                data: c.data,
            })
            .collect())
    }
}

impl<'a> Iterator for RawChunks<'a> {
    type Item = Result<RawChunk<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let series = self.series;
        self.out
            .get_or_insert_with(|| match RawChunks::merged(series) {
                Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>().into_iter(),
                Err(e) => vec![Err(e)].into_iter(),
            })
            .next()
    }
}
