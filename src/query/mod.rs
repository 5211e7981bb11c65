//! Queriers: select series by matchers and iterate their samples within a time range.
//!
//! `select` resolves matchers through the postings algebra, then takes a snapshot of each
//! selected series' chunks under the head's apply read-lock (cheap: closed chunks are shared,
//! only the open chunk's bytes are copied). Decoding happens afterwards without any lock.

use std::sync::Arc;

use crate::chunkenc::XorIter;
use crate::error::{Error, Result};
use crate::head::Head;
use crate::model::{Labels, Matcher, Sample};

/// Reads the database as of each `select` call, restricted to `[mint, maxt]` (both inclusive).
pub struct Querier {
    head: Arc<Head>,
    mint: i64,
    maxt: i64,
}

/// Encoded chunk of a series snapshot.
#[derive(Clone)]
struct ChunkSnap {
    min_t: i64,
    max_t: i64,
    data: Arc<[u8]>,
}

impl Querier {
    pub(crate) fn new(head: Arc<Head>, mint: i64, maxt: i64) -> Self {
        Querier { head, mint, maxt }
    }

    /// The time range this querier reads, inclusive at both ends.
    pub fn range(&self) -> (i64, i64) {
        (self.mint, self.maxt)
    }

    /// Series matching all `matchers` that have samples in range, sorted by labels.
    ///
    /// Every commit is either wholly visible in the result or not at all. An empty matcher
    /// list selects every series.
    pub fn select(&self, matchers: &[Matcher]) -> Result<SeriesSet> {
        let candidates = self.head.select_series(matchers);
        let mut out = Vec::with_capacity(candidates.len());
        {
            let _consistent = self.head.apply.read();
            for s in &candidates {
                let data = s.data.lock();
                let mut chunks = Vec::new();
                for c in &data.closed {
                    if c.max_t >= self.mint && c.min_t <= self.maxt {
                        chunks.push(ChunkSnap {
                            min_t: c.min_t,
                            max_t: c.max_t,
                            data: c.data.clone(),
                        });
                    }
                }
                if let Some(o) = &data.open {
                    if o.max_t >= self.mint && o.min_t <= self.maxt && o.app.num_samples() > 0 {
                        chunks.push(ChunkSnap {
                            min_t: o.min_t,
                            max_t: o.max_t,
                            data: Arc::from(o.app.bytes()),
                        });
                    }
                }
                if !chunks.is_empty() {
                    out.push(Series {
                        labels: s.labels.clone(),
                        chunks,
                        mint: self.mint,
                        maxt: self.maxt,
                    });
                }
            }
        }
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        Ok(SeriesSet {
            inner: out.into_iter(),
        })
    }

    /// Sorted label names of the series matching `matchers` (of all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        if matchers.is_empty() {
            return Ok(self.head.label_names());
        }
        let mut names = std::collections::BTreeSet::new();
        for s in self.select(matchers)? {
            for l in s.labels() {
                if !names.contains(l.name) {
                    names.insert(l.name.to_owned());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Sorted values of label `name` among the series matching `matchers` (all series when
    /// empty).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        if matchers.is_empty() {
            return Ok(self.head.label_values(name));
        }
        let mut values = std::collections::BTreeSet::new();
        for s in self.select(matchers)? {
            if let Some(v) = s.labels().get(name) {
                if !values.contains(v) {
                    values.insert(v.to_owned());
                }
            }
        }
        Ok(values.into_iter().collect())
    }
}

/// The series returned by [`Querier::select`], in label order.
pub struct SeriesSet {
    inner: std::vec::IntoIter<Series>,
}

impl Iterator for SeriesSet {
    type Item = Series;

    /// The next series with at least one sample in range (chunks overlapping the range may
    /// still hold none: those series are skipped).
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
    chunks: Vec<ChunkSnap>,
    mint: i64,
    maxt: i64,
}

impl Series {
    /// The series' labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Whether a sample lies in range. A chunk wholly inside the range proves it without
    /// decoding; otherwise the boundary chunks are decoded up to the first sample in range.
    /// A decoding error counts as "yes", so that iteration reports it.
    fn has_samples(&self) -> bool {
        self.chunks
            .iter()
            .any(|c| c.min_t >= self.mint && c.max_t <= self.maxt)
            || self.samples().next().is_some()
    }

    /// Iterates the samples in range, oldest first.
    pub fn samples(&self) -> SampleIter<'_> {
        SampleIter {
            chunks: &self.chunks,
            cur: None,
            mint: self.mint,
            maxt: self.maxt,
            done: false,
        }
    }

    /// All samples in range, collected.
    pub fn to_vec(&self) -> Result<Vec<Sample>> {
        self.samples().collect()
    }
}

/// Iterator over a series' samples within the querier's range.
pub struct SampleIter<'a> {
    chunks: &'a [ChunkSnap],
    cur: Option<XorIter<'a>>,
    mint: i64,
    maxt: i64,
    done: bool,
}

impl SampleIter<'_> {
    /// Skips to the first sample at or after `t` that was not returned yet, and returns it.
    pub fn seek(&mut self, t: i64) -> Option<Result<Sample>> {
        if t > self.mint {
            self.mint = t;
            // Whole chunks before `t` need no decoding.
            let skip = self.chunks.iter().take_while(|c| c.max_t < t).count();
            if skip > 0 {
                self.chunks = &self.chunks[skip..];
                self.cur = None;
            }
        }
        self.next()
    }
}

fn head_corruption(e: crate::encoding::DecodeError) -> Error {
    Error::corruption("<head chunk>", e.offset as u64, e.reason)
}

impl Iterator for SampleIter<'_> {
    type Item = Result<Sample>;

    fn next(&mut self) -> Option<Result<Sample>> {
        while !self.done {
            if self.cur.is_none() {
                let (first, rest) = self.chunks.split_first()?;
                self.chunks = rest;
                if first.min_t > self.maxt {
                    self.done = true;
                    return None;
                }
                if first.max_t < self.mint {
                    continue;
                }
                self.cur = Some(XorIter::new(&first.data));
            }
            let it = self.cur.as_mut().expect("set above");
            match it.next() {
                None => self.cur = None,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(head_corruption(e)));
                }
                Some(Ok(s)) if s.t > self.maxt => {
                    self.done = true;
                    return None;
                }
                Some(Ok(s)) if s.t < self.mint => {}
                Some(Ok(s)) => return Some(Ok(s)),
            }
        }
        None
    }
}
