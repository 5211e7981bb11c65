//! Moving head data into blocks: exporting a time range as block series, and truncating the
//! head afterwards (brief §2.7, §2.8).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{ChunkBytes, Head};
use crate::block::SeriesChunk;
use crate::chunkenc::Encoding;
use crate::chunkenc::{XorAppender, XorIter};
use crate::error::{Error, Result};
use crate::model::Labels;
use crate::tombstones::Intervals;

/// A series' chunks as a block stores them.
pub(crate) type BlockSeries = (Labels, Vec<SeriesChunk<ChunkBytes>>);

/// A chunk's first and last timestamps and its bytes.
type RangedChunk = (i64, i64, ChunkBytes);

/// Re-encodes `data` without the samples inside `deleted`; `None` if nothing is left.
fn without_deleted(data: &[u8], deleted: &Intervals) -> Result<Option<RangedChunk>> {
    let mut app = XorAppender::new();
    for s in XorIter::new(data) {
        let s = s.map_err(|e| Error::corruption("<head chunk>", e.offset as u64, e.reason))?;
        if !deleted.contains(s.t) {
            app.append(s.t, s.v);
        }
    }
    Ok(match (app.first_time(), app.last_time()) {
        (Some(a), Some(b)) => Some((a, b, ChunkBytes::Mem(app.into_bytes().into()))),
        _ => None,
    })
}

impl Head {
    /// Deletes `iv` from the series `series_ref` (queries skip it; compaction drops it).
    pub(crate) fn add_tombstone(&self, series_ref: u64, iv: crate::tombstones::Interval) -> bool {
        let Some(s) = self.table.get(series_ref) else {
            return false;
        };
        let mut data = s.data.lock();
        let mut d = data.deleted.as_deref().cloned().unwrap_or_default();
        d.add(iv);
        data.deleted = Some(Arc::new(d));
        true
    }

    /// Raises the floor below which no sample is accepted (the max time of persisted blocks).
    pub(crate) fn set_min_valid_time(&self, t: i64) {
        self.min_valid_time.fetch_max(t, Ordering::AcqRel);
    }

    /// The head's samples in `[mint, maxt)` as block series, sorted by labels, without deleted
    /// samples. Head chunks never cross a multiple of the chunk range, so with a range-aligned
    /// `maxt` every chunk is wholly inside or outside; a chunk that is not is an error.
    pub(crate) fn block_series(&self, mint: i64, maxt: i64) -> Result<Vec<BlockSeries>> {
        let refs = self.postings.read().all().to_vec();
        let mut out = Vec::new();
        for r in refs {
            let Some(s) = self.table.get(r) else { continue };
            // Commits write `data` without its mutex (see `MemSeries`); one series at a time
            // keeps commits waiting only briefly.
            let _apply = self.apply.read();
            let data = s.data.lock();
            let mut chunks = Vec::new();
            let open = data
                .open
                .as_ref()
                .map(|o| (o.min_t, o.max_t, None, Some(o.app.bytes())));
            let closed = data
                .closed
                .iter()
                .map(|c| (c.min_t, c.max_t, Some(c), None));
            for (min_t, max_t, closed, open_bytes) in closed.chain(open) {
                if max_t < mint || min_t >= maxt {
                    continue;
                }
                let bytes = match (closed, open_bytes) {
                    (Some(c), _) => data.bytes(c)?,
                    (None, b) => ChunkBytes::Mem(Arc::from(b.unwrap_or_default())),
                };
                if min_t < mint || max_t >= maxt {
                    return Err(Error::InvalidArgument(format!(
                        "head chunk [{min_t}, {max_t}] of {} crosses the block range [{mint}, {maxt})",
                        s.labels
                    )));
                }
                let chunk = match &data.deleted {
                    Some(d)
                        if d.as_slice()
                            .iter()
                            .any(|iv| iv.min_time <= max_t && min_t <= iv.max_time) =>
                    {
                        without_deleted(&bytes, d)?
                    }
                    _ => Some((min_t, max_t, bytes)),
                };
                if let Some((min_time, max_time, data)) = chunk {
                    chunks.push(SeriesChunk {
                        min_time,
                        max_time,
                        encoding: Encoding::Xor,
                        data,
                    });
                }
            }
            if !chunks.is_empty() {
                out.push((s.labels.clone(), chunks));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Drops every chunk that ends before `mint` and removes series left empty and unused.
    /// The head's min time becomes `mint` as in Prometheus, so the next block starts where this
    /// one ended (or the head is empty). The caller holds `apply` for writing and has persisted
    /// (or given up) the dropped range, and holds `wal_order` (series are removed here).
    pub(crate) fn truncate(&self, mint: i64) -> usize {
        self.set_min_valid_time(mint);
        let refs = self.postings.read().all().to_vec();
        // The oldest sample left: the head's min time jumps to it, as Prometheus's
        // `truncateMemory` does with the min time `gc` reports, so that compaction does not
        // step through the empty ranges of a sparse head one block range at a time.
        let mut oldest_left = i64::MAX;
        let mut removed = 0;
        for r in refs {
            let Some(s) = self.table.get(r) else { continue };
            let empty = {
                let mut data = s.data.lock();
                let empty = data.truncate(mint);
                if let Some(t) = data.min_time() {
                    oldest_left = oldest_left.min(t);
                }
                empty
            };
            if empty && self.table.remove_if_unused(&s) {
                self.postings.write().remove(s.series_ref, &s.labels);
                self.num_series.fetch_sub(1, Ordering::Relaxed);
                removed += 1;
            }
        }
        if oldest_left != i64::MAX {
            let range = self.cfg.chunk_range;
            let oldest_range_start =
                crate::chunkenc::range_end(oldest_left, range).saturating_sub(range);
            self.min_time
                .store(mint.max(oldest_range_start), Ordering::Release);
        } else {
            self.min_time.store(i64::MAX, Ordering::Release);
            self.max_time.store(i64::MIN, Ordering::Release);
        }
        removed
    }

    /// Deletes the head chunk files left without chunks by [`Head::truncate`] and starts a new
    /// file (Prometheus `ChunkDiskMapper.Truncate`). Returns the file numbers deleted.
    pub(crate) fn truncate_chunk_files(&self, mint: i64) -> Result<Vec<u32>> {
        match &self.chunk_files {
            Some(f) => f.truncate(mint),
            None => Ok(Vec::new()),
        }
    }
}
