//! The head's side of the read interface ([`crate::reader`]): a [`RangeHead`] reads the
//! series of the head with their chunks in a time range, as a block reader reads a block.
//!
//! Chunk metas carry the chunk bytes (closed chunks shared or mapped, the open chunk copied),
//! taken while `apply` is held for reading, so what a reader gets never changes afterwards
//! and no lock is held while it decodes.

use std::sync::Arc;

use super::locks::ApplyRead;
use super::Head;
use crate::chunkenc::Encoding;
use crate::error::{Error, Result};
use crate::model::{Labels, Matcher};
use crate::reader::{
    postings_for_matchers, BlockReader, ChunkBytes, ChunkMeta, ChunkRef, HeadChunks, IndexReader,
    ReaderMeta,
};
use crate::tombstones::Intervals;

/// The head's series and their chunks overlapping `[mint, maxt]` (both inclusive).
pub(crate) struct RangeHead<'a> {
    head: &'a Head,
    mint: i64,
    maxt: i64,
    /// Held for the reader's whole life (a query's consistent view), or `None`: each
    /// [`series`](IndexReader::series) call takes it for that series only (compaction and
    /// snapshots, which read ranges no commit changes any more).
    held: Option<ApplyRead<'a>>,
    /// Which chunks it reads: in-order, out-of-order (`head/ooo_read.rs`), or both.
    pub(super) mode: ReadMode,
}

/// The chunks a [`RangeHead`] hands out.
#[derive(Clone)]
pub(super) enum ReadMode {
    /// In-order chunks only (head compaction: out-of-order data is compacted apart).
    InOrder,
    /// In-order and out-of-order chunks, overlapping (queries and snapshots; readers merge).
    Merged,
    /// The out-of-order chunks an out-of-order compaction took: by series ref, the number
    /// of m-mapped chunks (see `Head::ooo_compaction_start`).
    OooOnly(Arc<std::collections::HashMap<u64, usize>>),
}

impl Head {
    /// A reader of `[mint, maxt]` that takes the apply lock one series at a time, so commits
    /// wait only briefly. Series read at different times may reflect different commits: for
    /// ranges below the head's floor ([`Head::raise_floor`]) and for snapshots.
    pub(crate) fn range(&self, mint: i64, maxt: i64) -> RangeHead<'_> {
        RangeHead {
            head: self,
            mint,
            maxt,
            held: None,
            mode: ReadMode::InOrder,
        }
    }

    /// A consistent reader of `[mint, maxt]` and the refs of the series `matchers` select: no
    /// commit applies while it lives, so it shows every commit wholly or not at all. Hold it
    /// only while reading series metas, never while decoding samples.
    ///
    /// Postings are resolved before the lock is taken; if a series was created in between
    /// (it may belong to a commit applied since), they are resolved again under it.
    pub(crate) fn select(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<(RangeHead<'_>, Vec<u64>)> {
        let generation = self.series_generation();
        let refs = postings_for_matchers(&self.range(mint, maxt), matchers)?;
        let consistent = RangeHead {
            head: self,
            mint,
            maxt,
            held: Some(self.locks.apply_read()),
            mode: ReadMode::Merged,
        };
        let refs = if self.series_generation() != generation {
            postings_for_matchers(&consistent, matchers)?
        } else {
            refs
        };
        Ok((consistent, refs))
    }
}

impl IndexReader for RangeHead<'_> {
    fn label_names(&self) -> Result<Vec<String>> {
        Ok(self.head.postings.read().label_names())
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.head.postings.read().label_values(name))
    }

    fn postings(&self, name: &str, values: &[&str]) -> Result<Vec<u64>> {
        Ok(self.head.postings.read().postings(name, values))
    }

    fn postings_matching(&self, name: &str, keep: &dyn Fn(&str) -> bool) -> Result<Vec<u64>> {
        Ok(self.head.postings.read().postings_matching(name, keep))
    }

    fn all_postings(&self) -> Result<Vec<u64>> {
        Ok(self.head.postings.read().all().to_vec())
    }

    fn sorted_postings(&self, refs: Vec<u64>) -> Result<Vec<u64>> {
        let mut series: Vec<_> = refs
            .into_iter()
            .filter_map(|r| self.head.table.get(r))
            .collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(series.iter().map(|s| s.series_ref).collect())
    }

    fn series(&self, r: u64, chunks: &mut Vec<ChunkMeta>) -> Result<Option<Labels>> {
        chunks.clear();
        let Some(s) = self.head.table.get(r) else {
            return Ok(None);
        };
        let taken;
        let held = match &self.held {
            Some(h) => h,
            None => {
                taken = self.head.locks.apply_read();
                &taken
            }
        };
        let data = s.data(held);
        let (mint, maxt) = (self.mint, self.maxt);
        if !matches!(self.mode, ReadMode::InOrder) {
            let upto = match &self.mode {
                ReadMode::OooOnly(taken) => Some(taken.get(&r).copied().unwrap_or(0)),
                _ => None,
            };
            if let Some(ooo) = data.ooo.as_ref() {
                let with_open = upto.is_none();
                ooo.metas(mint, maxt, upto, with_open, |c| data.bytes(c), chunks)?;
            }
            if upto.is_some() {
                chunks.sort_by_key(|m| m.min_time);
                return Ok(Some(s.labels.clone()));
            }
        }
        for c in data
            .closed
            .iter()
            .filter(|c| c.max_t >= mint && c.min_t <= maxt)
        {
            chunks.push(ChunkMeta {
                min_time: c.min_t,
                max_time: c.max_t,
                chunk: ChunkRef::Head {
                    encoding: c.encoding(),
                    bytes: data.bytes(c)?,
                },
            });
        }
        if let Some(o) = data
            .open
            .as_ref()
            .filter(|o| o.max_t >= mint && o.min_t <= maxt)
        {
            chunks.push(ChunkMeta {
                min_time: o.min_t,
                max_time: o.max_t,
                chunk: ChunkRef::Head {
                    encoding: Encoding::Xor,
                    bytes: ChunkBytes::Mem(Arc::from(o.app.bytes())),
                },
            });
        }
        if let Some(h) = data
            .hist
            .as_ref()
            .filter(|h| h.max_t >= mint && h.min_t <= maxt)
        {
            chunks.push(ChunkMeta {
                min_time: h.min_t,
                max_time: h.max_t,
                chunk: ChunkRef::Head {
                    encoding: h.encoding(),
                    bytes: ChunkBytes::Mem(Arc::from(h.bytes())),
                },
            });
        }
        if data.ooo.is_some() {
            // Metas are sorted by min time (the read interface's order).
            chunks.sort_by_key(|m| m.min_time);
        }
        Ok(Some(s.labels.clone()))
    }

    fn series_error(&self, r: u64, reason: String) -> Error {
        Error::Internal(format!("head series {r}: {reason}"))
    }
}

impl BlockReader for RangeHead<'_> {
    type Index = Self;
    type Chunks = HeadChunks;

    fn index(&self) -> &Self {
        self
    }

    fn chunks(&self) -> &HeadChunks {
        &HeadChunks
    }

    fn deleted(&self, r: u64) -> Option<Arc<Intervals>> {
        self.head.tombstones.read().get_shared(r)
    }

    /// The head's time range clipped to the reader's (empty when the head is); with
    /// out-of-order data, its range too.
    fn reader_meta(&self) -> ReaderMeta {
        let st = self.head.stats();
        let in_order = st.min_time.zip(st.max_time);
        let range = match self.mode {
            ReadMode::InOrder => in_order,
            ReadMode::Merged => match (in_order, self.head.ooo_time_range()) {
                (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
                (a, b) => a.or(b),
            },
            ReadMode::OooOnly(_) => self.head.ooo_time_range(),
        };
        let (min, max) = match range {
            Some((min, max)) => (min.max(self.mint), max.min(self.maxt)),
            _ => (i64::MAX, i64::MIN),
        };
        ReaderMeta {
            min_time: min,
            max_time: max,
            num_series: st.num_series,
        }
    }
}
