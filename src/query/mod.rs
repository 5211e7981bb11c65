//! Queriers: select series by matchers and iterate their samples within a time range, across
//! the persisted blocks and the head.
//!
//! `select` takes, under the head's apply read-lock, the current block list and a snapshot of
//! the selected head series (closed chunks are shared, the open chunk's bytes copied), so it
//! sees every commit and every head compaction wholly or not at all. Block postings are
//! resolved afterwards (blocks are immutable) and chunks are read lazily from their mmaps.
//! Series from several sources are merged by labels; overlapping chunks are merged by time with
//! duplicate timestamps removed.

mod iter;
mod select;

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::RwLock;

pub use iter::SampleIter;
pub(crate) use select::block_postings;

use crate::block::Block;
use crate::error::Result;
use crate::head::Head;
use crate::model::{Labels, Matcher, Sample};
use crate::tombstones::Intervals;

/// Everything a query reads: the head and the current list of blocks (sorted by min time).
pub(crate) struct Sources {
    pub(crate) head: Arc<Head>,
    pub(crate) blocks: RwLock<Arc<Vec<Arc<Block>>>>,
}

impl Sources {
    pub(crate) fn new(head: Arc<Head>, blocks: Vec<Arc<Block>>) -> Self {
        Sources {
            head,
            blocks: RwLock::new(Arc::new(blocks)),
        }
    }

    /// The current blocks.
    pub(crate) fn blocks(&self) -> Arc<Vec<Arc<Block>>> {
        self.blocks.read().clone()
    }
}

/// Reads the database as of each `select` call, restricted to `[mint, maxt]` (both inclusive).
pub struct Querier {
    sources: Arc<Sources>,
    mint: i64,
    maxt: i64,
}

/// Where a chunk's bytes are.
#[derive(Clone)]
enum ChunkData {
    /// Head chunk bytes (shared, mapped or copied at snapshot time).
    Mem(crate::head::ChunkBytes),
    /// A chunk in a block's segment files, read (and CRC-checked) when iterated.
    Block { block: Arc<Block>, chunk_ref: u64 },
}

/// One encoded chunk of a series.
#[derive(Clone)]
struct ChunkSnap {
    min_t: i64,
    max_t: i64,
    data: ChunkData,
    /// Deleted intervals of the series in the chunk's source.
    deleted: Option<Arc<Intervals>>,
}

impl Querier {
    pub(crate) fn new(sources: Arc<Sources>, mint: i64, maxt: i64) -> Self {
        Querier {
            sources,
            mint,
            maxt,
        }
    }

    /// The time range this querier reads, inclusive at both ends.
    pub fn range(&self) -> (i64, i64) {
        (self.mint, self.maxt)
    }

    /// Series matching all `matchers` that have samples in range, sorted by labels.
    ///
    /// Every commit is either wholly visible in the result or not at all. An empty matcher
    /// list selects every series. Samples of the same series from several blocks and the head
    /// are merged; equal timestamps appear once.
    pub fn select(&self, matchers: &[Matcher]) -> Result<SeriesSet> {
        let head = &self.sources.head;
        let generation = head.series_generation();
        let mut candidates = head.select_series(matchers);
        let (blocks, head_series) = {
            let _consistent = head.apply.read();
            if head.series_generation() != generation {
                // A series created since the selection may belong to a commit applied since:
                // select again, now that no commit can apply, so that commit is seen whole.
                candidates = head.select_series(matchers);
            }
            let blocks = self.sources.blocks();
            let series = select::snapshot_head(&candidates, self.mint, self.maxt)?;
            (blocks, series)
        };
        let mut all = Vec::new();
        for b in blocks.iter().filter(|b| b.overlaps(self.mint, self.maxt)) {
            select::block_series(b, matchers, self.mint, self.maxt, &mut all)?;
        }
        all.extend(head_series);
        Ok(SeriesSet {
            inner: select::merge_by_labels(all, self.mint, self.maxt).into_iter(),
        })
    }

    /// Sorted label names of the series matching `matchers` (of all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        if matchers.is_empty() {
            names.extend(self.sources.head.label_names());
            for b in self.overlapping_blocks() {
                names.extend(b.index().label_names().into_iter().map(str::to_owned));
            }
        } else {
            for s in self.select(matchers)? {
                for l in s.labels() {
                    if !names.contains(l.name) {
                        names.insert(l.name.to_owned());
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Sorted values of label `name` among the series matching `matchers` (all series when
    /// empty).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut values = BTreeSet::new();
        if matchers.is_empty() {
            values.extend(self.sources.head.label_values(name));
            for b in self.overlapping_blocks() {
                values.extend(b.index().label_values(name)?.into_iter().map(str::to_owned));
            }
        } else {
            for s in self.select(matchers)? {
                if let Some(v) = s.labels().get(name) {
                    if !values.contains(v) {
                        values.insert(v.to_owned());
                    }
                }
            }
        }
        Ok(values.into_iter().collect())
    }

    fn overlapping_blocks(&self) -> Vec<Arc<Block>> {
        let (mint, maxt) = (self.mint, self.maxt);
        self.sources
            .blocks()
            .iter()
            .filter(|b| b.overlaps(mint, maxt))
            .cloned()
            .collect()
    }
}

/// The series returned by [`Querier::select`], in label order.
pub struct SeriesSet {
    inner: std::vec::IntoIter<Series>,
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

/// One selected series: its labels and its samples in the querier's range.
pub struct Series {
    labels: Labels,
    /// Sorted by min time; may overlap when several sources hold the series.
    chunks: Vec<ChunkSnap>,
    mint: i64,
    maxt: i64,
}

impl Series {
    /// The series' labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Whether a sample lies in range. A chunk wholly inside the range with no deletions
    /// proves it without decoding; otherwise chunks are decoded up to the first sample in
    /// range. A read error counts as "yes", so that iteration reports it.
    fn has_samples(&self) -> bool {
        self.chunks
            .iter()
            .any(|c| c.min_t >= self.mint && c.max_t <= self.maxt && c.deleted.is_none())
            || self.samples().next().is_some()
    }

    /// Iterates the samples in range, oldest first.
    pub fn samples(&self) -> SampleIter<'_> {
        SampleIter::new(&self.chunks, self.mint, self.maxt)
    }

    /// All samples in range, collected.
    pub fn to_vec(&self) -> Result<Vec<Sample>> {
        self.samples().collect()
    }
}
