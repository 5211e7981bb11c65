//! Iterating a series' samples: chunk after chunk, with overlapping chunks merged by time.

use super::series::SelectedChunk;
use crate::chunkenc::{Encoding, XorIter};
use crate::encoding::DecodeError;
use crate::error::{Error, Result};
use crate::model::Sample;
use crate::reader::chunks::dedup_samples;

/// Iterator over a series' samples within the querier's range, oldest first, without
/// deleted samples and with duplicate timestamps (from overlapping sources) removed.
pub struct SampleIter<'a> {
    chunks: &'a [SelectedChunk],
    cur: Cur<'a>,
    mint: i64,
    maxt: i64,
    done: bool,
}

enum Cur<'a> {
    None,
    /// One chunk that overlaps no other.
    Single(XorIter<'a>, &'a SelectedChunk),
    /// A run of overlapping chunks, decoded, merged and de-duplicated.
    Merged(std::vec::IntoIter<Sample>),
}

/// The XOR payload of a chunk; block chunks are read and CRC-checked here.
fn payload(c: &SelectedChunk) -> Result<&[u8]> {
    let chunk = c.read()?;
    if chunk.encoding != Encoding::Xor {
        return Err(c.source(&chunk).unsupported(format!(
            "chunk encoding {} is not supported by queries",
            chunk.encoding
        )));
    }
    Ok(chunk.data)
}

/// A decoding error of chunk `c`, naming its file and offset.
fn decode_error(c: &SelectedChunk, e: DecodeError) -> Error {
    match c.read() {
        Ok(chunk) => c.source(&chunk).corrupt(e.offset, e.reason),
        Err(read) => read,
    }
}

impl<'a> SampleIter<'a> {
    pub(super) fn new(chunks: &'a [SelectedChunk], mint: i64, maxt: i64) -> Self {
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
            let skip = self
                .chunks
                .iter()
                .take_while(|c| c.meta.max_time < t)
                .count();
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
        if run.len() == 1 {
            self.cur = Cur::Single(XorIter::new(payload(first)?), first);
            return Ok(true);
        }
        let mut samples = Vec::new();
        for c in run {
            for s in XorIter::new(payload(c)?) {
                let s = s.map_err(|e| decode_error(c, e))?;
                if s.t >= self.mint && s.t <= self.maxt && !c.is_deleted(s.t) {
                    samples.push((s.t, s.v));
                }
            }
        }
        // Of equal timestamps keep the greatest value in IEEE total order: the rule block
        // compaction merges by, so reads agree with what compaction will write.
        dedup_samples(&mut samples);
        let samples: Vec<Sample> = samples.into_iter().map(|(t, v)| Sample { t, v }).collect();
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
                        Some(c) if c.meta.min_time > self.maxt => self.done = true,
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
                    Some(Ok(s)) if c.is_deleted(s.t) => continue,
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
