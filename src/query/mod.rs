//! Queriers: select series by matchers and iterate their samples (or hand out their chunks)
//! within a time range, across the persisted blocks and the head.
//!
//! Every source is read through the read interface ([`crate::reader`]): the head through the
//! consistent range reader that [`Head::select`] hands out (the block
//! list is taken under the same guard, so a select sees every commit and every head
//! compaction wholly or not at all), blocks through their index and chunk readers. Series
//! from several sources are merged by labels; overlapping chunks are merged by time with
//! duplicate timestamps removed. Samples are decoded lazily, without any lock.

mod iter;
mod select;
mod series;
mod value;

use std::collections::BTreeSet;
use std::sync::Arc;

pub use iter::SampleIter;
pub use series::{RawChunk, RawChunks, Series, SeriesSet};
pub use value::ValueIter;

use crate::block::BlockSet;
use crate::error::Result;
use crate::head::Head;
use crate::model::Matcher;
use crate::reader::{BlockReader, IndexReader};

/// Reads the database as of each `select` call, restricted to `[mint, maxt]` (both
/// inclusive). Cheap to keep: one querier serves any number of selects, from any thread.
pub struct Querier {
    head: Arc<Head>,
    blocks: Arc<BlockSet>,
    mint: i64,
    maxt: i64,
}

impl Querier {
    pub(crate) fn new(head: Arc<Head>, blocks: Arc<BlockSet>, mint: i64, maxt: i64) -> Self {
        Querier {
            head,
            blocks,
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
        select::select(self, matchers, true)
    }

    /// As [`select`](Self::select), in no particular order: the label sort is skipped when
    /// a single source (the head or one block) holds the selected series, and series held by
    /// several sources are joined by hashing their labels instead.
    pub fn select_unsorted(&self, matchers: &[Matcher]) -> Result<SeriesSet> {
        select::select(self, matchers, false)
    }

    /// Sorted label names of the series matching `matchers` (of all series when empty).
    ///
    /// Without matchers, a source counts as a whole when its time range overlaps the
    /// querier's, as Prometheus's index readers answer: every label name of a block or of the
    /// head, or none when the ranges are disjoint.
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        if matchers.is_empty() {
            if self.head_overlaps() {
                names.extend(self.head.range(self.mint, self.maxt).label_names()?);
            }
            for b in self.blocks.current().iter() {
                if b.reader_meta().overlaps(self.mint, self.maxt) {
                    names.extend(IndexReader::label_names(b.index())?);
                }
            }
        } else {
            for s in self.select_unsorted(matchers)? {
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
    /// empty; then, as for [`label_names`](Self::label_names), each source whose time range
    /// overlaps the querier's counts as a whole).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut values = BTreeSet::new();
        if matchers.is_empty() {
            if self.head_overlaps() {
                values.extend(self.head.range(self.mint, self.maxt).label_values(name)?);
            }
            for b in self.blocks.current().iter() {
                if b.reader_meta().overlaps(self.mint, self.maxt) {
                    values.extend(IndexReader::label_values(b.index(), name)?);
                }
            }
        } else {
            for s in self.select_unsorted(matchers)? {
                if let Some(v) = s.labels().get(name) {
                    if !values.contains(v) {
                        values.insert(v.to_owned());
                    }
                }
            }
        }
        Ok(values.into_iter().collect())
    }

    /// Whether the head holds samples in the querier's range as its time bounds say
    /// (Prometheus's `headIndexReader` answers no label names or values otherwise).
    fn head_overlaps(&self) -> bool {
        matches!(
            (self.head.min_time(), self.head.max_time()),
            (Some(lo), Some(hi)) if self.maxt >= lo && self.mint <= hi
        )
    }
}
