//! Iterating a series' samples: chunk after chunk, with overlapping chunks merged by time.

use super::series::SelectedChunk;
use crate::chunkenc::{Encoding, XorIter};
use crate::encoding::DecodeError;
use crate::error::{Error, Result};
use crate::model::Sample;
use crate::reader::chunks::dedup_samples;

/// Iterator over a series' float samples within the querier's range, oldest first, without
/// deleted samples and with duplicate timestamps (from overlapping sources) removed. Native
/// histogram chunks are skipped: [`Series::values`](super::Series::values) reads them.
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
    Merged(std::vec::IntoIter<Sample>, i64),
}

/// The XOR payload of a chunk, `None` for a native-histogram chunk (float samples only are
/// read here; [`ValueIter`](super::ValueIter) reads both); block chunks are read and
/// CRC-checked here.
fn payload(c: &SelectedChunk) -> Result<Option<&[u8]>> {
    let chunk = c.read()?;
    if chunk.encoding != Encoding::Xor {
        return Ok(None);
    }
    Ok(Some(chunk.data))
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
    /// Chunks (the one being read included) that end before `t` are dropped without decoding;
    /// the chunk holding `t` is decoded from its start.
    pub fn seek(&mut self, t: i64) -> Option<Result<Sample>> {
        if t > self.mint {
            self.mint = t;
            let cur_ends = match &self.cur {
                Cur::None => None,
                Cur::Single(_, c) => Some(c.meta.max_time),
                Cur::Merged(_, end) => Some(*end),
            };
            if cur_ends.is_some_and(|end| end < t) {
                self.cur = Cur::None;
            }
            let skip = self
                .chunks
                .iter()
                .take_while(|c| c.meta.max_time < t)
                .count();
            // Chunks after the current one start after it ends (chunks that overlap are read
            // as one run), so they end before `t` only if it does too.
            self.chunks = &self.chunks[skip..];
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
            if let Some(data) = payload(first)? {
                self.cur = Cur::Single(XorIter::new(data), first);
            }
            return Ok(true);
        }
        let mut samples = Vec::new();
        for c in run {
            let Some(data) = payload(c)? else { continue };
            for s in XorIter::new(data) {
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
        self.cur = Cur::Merged(samples.into_iter(), end);
        Ok(true)
    }
}

impl SampleIter<'_> {
    /// What follows a sample of a single chunk that is not returned as it is: the end of the
    /// range, a decoding error, or the end of the chunk.
    #[inline(never)]
    fn after_single(
        &mut self,
        item: Option<std::result::Result<Sample, DecodeError>>,
    ) -> Option<Result<Sample>> {
        let e = match (item, &self.cur) {
            (Some(Err(e)), Cur::Single(_, c)) => Some(decode_error(c, e)),
            // Past the range: nothing later is in it either.
            (Some(_), _) => None,
            (None, _) => {
                self.cur = Cur::None;
                return self.next_slow();
            }
        };
        self.done = true;
        self.cur = Cur::None;
        e.map(Err)
    }

    /// The next sample when no single chunk is being read: of a merged run, or of the next
    /// chunk or run, opened here.
    #[inline(never)]
    fn next_slow(&mut self) -> Option<Result<Sample>> {
        loop {
            match &mut self.cur {
                Cur::Single(..) => return self.next(),
                Cur::Merged(it, _) => {
                    // A merged run holds samples in the range it was opened for; a seek
                    // since may have raised `mint`.
                    match it.find(|s| s.t >= self.mint) {
                        Some(s) => return Some(Ok(s)),
                        None => self.cur = Cur::None,
                    }
                }
                Cur::None => {}
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

impl Iterator for SampleIter<'_> {
    type Item = Result<Sample>;

    /// Small enough to inline into the caller's loop: the common case, the next sample of a
    /// chunk that overlaps no other, is decoded here; everything else is out of line.
    #[inline]
    fn next(&mut self) -> Option<Result<Sample>> {
        if let Cur::Single(it, c) = &mut self.cur {
            loop {
                match it.next() {
                    Some(Ok(s)) if s.t <= self.maxt => {
                        if s.t >= self.mint && !c.is_deleted(s.t) {
                            return Some(Ok(s));
                        }
                    }
                    other => return self.after_single(other),
                }
            }
        }
        self.next_slow()
    }
}
