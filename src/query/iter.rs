//! Iterating a series' samples: chunk after chunk, with overlapping chunks merged by time.

use super::{ChunkData, ChunkSnap};
use crate::chunkenc::Encoding;
use crate::chunkenc::XorIter;
use crate::encoding::DecodeError;
use crate::error::{Error, Result};
use crate::model::Sample;
use crate::tombstones::Intervals;

/// Iterator over a series' samples within the querier's range, oldest first, without
/// deleted samples and with duplicate timestamps (from overlapping sources) removed.
pub struct SampleIter<'a> {
    chunks: &'a [ChunkSnap],
    cur: Cur<'a>,
    mint: i64,
    maxt: i64,
    done: bool,
}

enum Cur<'a> {
    None,
    /// One chunk that overlaps no other.
    Single(XorIter<'a>, &'a ChunkSnap),
    /// A run of overlapping chunks, decoded, merged and de-duplicated.
    Merged(std::vec::IntoIter<Sample>),
}

fn deleted(c: &ChunkSnap, t: i64) -> bool {
    c.deleted
        .as_deref()
        .is_some_and(|d: &Intervals| d.contains(t))
}

/// The XOR payload of a chunk; block chunks are read and CRC-checked here.
fn payload(c: &ChunkSnap) -> Result<&[u8]> {
    match &c.data {
        ChunkData::Mem(b) => Ok(b),
        ChunkData::Block { block, chunk_ref } => {
            let chunk = block.chunks().chunk(*chunk_ref)?;
            if chunk.encoding != Encoding::Xor {
                return Err(Error::Unsupported {
                    file: block.dir().join("chunks"),
                    offset: Some(*chunk_ref & 0xffff_ffff),
                    reason: format!(
                        "chunk encoding {} (native histograms) is not supported",
                        chunk.encoding
                    ),
                });
            }
            Ok(chunk.data)
        }
    }
}

fn decode_error(c: &ChunkSnap, e: DecodeError) -> Error {
    match &c.data {
        ChunkData::Mem(_) => Error::corruption("<head chunk>", e.offset as u64, e.reason),
        ChunkData::Block { block, chunk_ref } => Error::corruption(
            block.dir().join("chunks"),
            (*chunk_ref & 0xffff_ffff) + e.offset as u64,
            format!("chunk {chunk_ref:#x}: {}", e.reason),
        ),
    }
}

impl<'a> SampleIter<'a> {
    pub(super) fn new(chunks: &'a [ChunkSnap], mint: i64, maxt: i64) -> Self {
        SampleIter {
            chunks,
            cur: Cur::None,
            mint,
            maxt,
            done: false,
        }
    }

    /// Skips to the first sample at or after `t` that was not returned yet, and returns it.
    pub fn seek(&mut self, t: i64) -> Option<Result<Sample>> {
        if t > self.mint {
            self.mint = t;
            // Whole chunks before `t` need no decoding.
            let skip = self.chunks.iter().take_while(|c| c.max_t < t).count();
            if skip > 0 {
                self.chunks = &self.chunks[skip..];
                self.cur = Cur::None;
            }
        }
        self.next()
    }

    /// Opens the next chunk, or the next run of overlapping chunks.
    fn open_next(&mut self) -> Result<bool> {
        let Some(first) = self.chunks.first() else {
            return Ok(false);
        };
        let mut end = first.max_t;
        let run = 1 + self.chunks[1..]
            .iter()
            .take_while(|c| {
                let overlaps = c.min_t <= end;
                end = end.max(c.max_t);
                overlaps
            })
            .count();
        let (run, rest) = self.chunks.split_at(run);
        self.chunks = rest;
        if run.len() == 1 {
            self.cur = Cur::Single(XorIter::new(payload(first)?), first);
            return Ok(true);
        }
        let mut samples = Vec::new();
        for c in run {
            for s in XorIter::new(payload(c)?) {
                let s = s.map_err(|e| decode_error(c, e))?;
                if s.t >= self.mint && s.t <= self.maxt && !deleted(c, s.t) {
                    samples.push(s);
                }
            }
        }
        // Of equal timestamps keep the greatest value in IEEE total order: the rule block
        // compaction merges by, so reads agree with what compaction will write.
        samples.sort_by(|a, b| a.t.cmp(&b.t).then_with(|| b.v.total_cmp(&a.v)));
        samples.dedup_by_key(|s| s.t);
        self.cur = Cur::Merged(samples.into_iter());
        Ok(true)
    }
}

impl Iterator for SampleIter<'_> {
    type Item = Result<Sample>;

    fn next(&mut self) -> Option<Result<Sample>> {
        while !self.done {
            let next = match &mut self.cur {
                Cur::None => {
                    match self.chunks.first() {
                        Some(c) if c.min_t > self.maxt => self.done = true,
                        Some(_) => {
                            if let Err(e) = self.open_next() {
                                self.done = true;
                                return Some(Err(e));
                            }
                        }
                        None => self.done = true,
                    }
                    continue;
                }
                Cur::Single(it, c) => match it.next() {
                    Some(Ok(s)) if deleted(c, s.t) => continue,
                    Some(Ok(s)) => Some(Ok(s)),
                    Some(Err(e)) => Some(Err(decode_error(c, e))),
                    None => None,
                },
                Cur::Merged(it) => it.next().map(Ok),
            };
            match next {
                None => self.cur = Cur::None,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok(s)) if s.t > self.maxt => self.done = true,
                Some(Ok(s)) if s.t < self.mint => {}
                Some(Ok(s)) => return Some(Ok(s)),
            }
        }
        None
    }
}
