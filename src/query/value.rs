//! Iterating a series' values of every type: floats and native histograms.

use super::series::SelectedChunk;
use crate::error::Result;
use crate::model::Value;
use crate::reader::values;

/// Iterator over a series' values within the querier's range, oldest first: floats and
/// native histograms (integer and float), without deleted samples and with one value per
/// timestamp where sources overlap (a float over a histogram; of floats the greatest in IEEE
/// 754 total order, as compaction merges). Each chunk (or run of overlapping chunks) is
/// decoded whole when reached; [`seek`](Self::seek) skips chunks that end before its time
/// without decoding them.
pub struct ValueIter<'a> {
    chunks: &'a [SelectedChunk],
    cur: std::vec::IntoIter<(i64, Value)>,
    mint: i64,
    maxt: i64,
    done: bool,
}

impl<'a> ValueIter<'a> {
    pub(super) fn new(chunks: &'a [SelectedChunk], mint: i64, maxt: i64) -> Self {
        ValueIter {
            chunks,
            cur: Vec::new().into_iter(),
            mint,
            maxt,
            done: false,
        }
    }

    /// Skips to the first value at or after `t` that was not returned yet, and returns it.
    pub fn seek(&mut self, t: i64) -> Option<Result<(i64, Value)>> {
        if t > self.mint {
            self.mint = t;
            let skip = self
                .chunks
                .iter()
                .take_while(|c| c.meta.max_time < t)
                .count();
            self.chunks = &self.chunks[skip..];
        }
        self.next()
    }

    /// Decodes the next chunk, or run of overlapping chunks.
    fn open_next(&mut self) -> Result<()> {
        let Some(first) = self.chunks.first() else {
            return Ok(());
        };
        let mut end = first.meta.max_time;
        let run = 1 + self.chunks[1..]
            .iter()
            .take_while(|c| {
                let overlaps = c.meta.min_time <= end;
                end = end.max(c.meta.max_time);
                overlaps
            })
            .count();
        let (run, rest) = self.chunks.split_at(run);
        self.chunks = rest;
        let (mut out, mut tmp) = (Vec::new(), Vec::new());
        let (mint, maxt) = (self.mint, self.maxt);
        for c in run {
            let chunk = c.read()?;
            tmp.clear();
            values::decode(&chunk, &c.source(&chunk), &mut tmp)?;
            out.extend(
                tmp.drain(..)
                    .filter(|(t, _)| mint <= *t && *t <= maxt && !c.is_deleted(*t)),
            );
        }
        if run.len() > 1 {
            values::dedup(&mut out);
        }
        self.cur = out.into_iter();
        Ok(())
    }
}

impl Iterator for ValueIter<'_> {
    type Item = Result<(i64, Value)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mint = self.mint;
            if let Some(v) = self.cur.find(|v| v.0 >= mint) {
                return Some(Ok(v));
            }
            if self.done {
                return None;
            }
            match self.chunks.first() {
                Some(c) if c.meta.min_time <= self.maxt => {
                    if let Err(e) = self.open_next() {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                _ => {
                    self.done = true;
                    return None;
                }
            }
        }
    }
}
