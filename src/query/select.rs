//! Gathering series from the head and the blocks, and merging them by labels.

use std::sync::Arc;

use super::{ChunkData, ChunkSnap, Series};
use crate::block::Block;
use crate::error::Result;
use crate::head::{ChunkBytes, MemSeries};
use crate::index::postings;
use crate::model::{Labels, Matcher};

/// Copies the chunk references of the head series overlapping `[mint, maxt]` (chunks in head
/// chunk files by their mapping, which outlives the file). The caller holds the head's apply
/// lock for reading.
pub(super) fn snapshot_head(
    candidates: &[Arc<MemSeries>],
    mint: i64,
    maxt: i64,
) -> Result<Vec<(Labels, Vec<ChunkSnap>)>> {
    let mut out = Vec::with_capacity(candidates.len());
    for s in candidates {
        let data = s.data.lock();
        let deleted = data.deleted.clone();
        let mut chunks = Vec::new();
        for c in data
            .closed
            .iter()
            .filter(|c| c.max_t >= mint && c.min_t <= maxt)
        {
            chunks.push(ChunkSnap {
                min_t: c.min_t,
                max_t: c.max_t,
                data: ChunkData::Mem(data.bytes(c)?),
                deleted: deleted.clone(),
            });
        }
        if let Some(o) = data
            .open
            .as_ref()
            .filter(|o| o.max_t >= mint && o.min_t <= maxt)
        {
            chunks.push(ChunkSnap {
                min_t: o.min_t,
                max_t: o.max_t,
                data: ChunkData::Mem(ChunkBytes::Mem(Arc::from(o.app.bytes()))),
                deleted: deleted.clone(),
            });
        }
        if !chunks.is_empty() {
            out.push((s.labels.clone(), chunks));
        }
    }
    Ok(out)
}

/// Refs of the block's series selected by `matchers`, with the same semantics as the head's
/// `postings_for_matchers`.
pub(crate) fn block_postings(block: &Block, matchers: &[Matcher]) -> Result<Vec<u64>> {
    let index = block.index();
    let to_u64 = |v: Vec<u32>| v.into_iter().map(u64::from).collect::<Vec<u64>>();
    let union_where = |m: &Matcher, want: bool| -> Result<Vec<u64>> {
        let mut lists = Vec::new();
        match m.set_matches().filter(|_| want) {
            Some(set) => {
                for v in set {
                    lists.push(to_u64(index.postings(m.name(), v)?));
                }
            }
            None => {
                for v in index.label_values(m.name())? {
                    if m.matches(v) == want {
                        lists.push(to_u64(index.postings(m.name(), v)?));
                    }
                }
            }
        }
        let refs: Vec<&[u64]> = lists.iter().map(Vec::as_slice).collect();
        Ok(postings::union(&refs))
    };
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for m in matchers {
        if m.matches_empty() {
            let removed = union_where(m, false)?;
            if !removed.is_empty() {
                exclude.push(removed);
            }
        } else {
            let selected = union_where(m, true)?;
            if selected.is_empty() {
                return Ok(Vec::new());
            }
            include.push(selected);
        }
    }
    let base = if include.is_empty() {
        to_u64(index.all_postings()?)
    } else {
        postings::intersect(include.iter().map(Vec::as_slice).collect())
    };
    let removed: Vec<&[u64]> = exclude.iter().map(Vec::as_slice).collect();
    Ok(postings::subtract(&base, &postings::union(&removed)))
}

/// Appends the block's series selected by `matchers` with chunks overlapping `[mint, maxt]`.
pub(super) fn block_series(
    block: &Arc<Block>,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
    out: &mut Vec<(Labels, Vec<ChunkSnap>)>,
) -> Result<()> {
    let mut metas = Vec::new();
    for r in block_postings(block, matchers)? {
        let sref = r as u32;
        let labels = block.index().series_into(sref, &mut metas)?;
        let deleted = block.tombstones().get(r).map(|iv| Arc::new(iv.clone()));
        let chunks: Vec<ChunkSnap> = metas
            .iter()
            .filter(|c| c.overlaps(mint, maxt))
            .map(|c| ChunkSnap {
                min_t: c.min_time,
                max_t: c.max_time,
                data: ChunkData::Block {
                    block: block.clone(),
                    chunk_ref: c.chunk_ref,
                },
                deleted: deleted.clone(),
            })
            .collect();
        if !chunks.is_empty() {
            out.push((labels, chunks));
        }
    }
    Ok(())
}

/// Sorts by labels and joins the chunk lists of equal label sets (one series in several
/// sources); the iterator merges chunks that overlap in time.
pub(super) fn merge_by_labels(
    mut all: Vec<(Labels, Vec<ChunkSnap>)>,
    mint: i64,
    maxt: i64,
) -> Vec<Series> {
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<Series> = Vec::with_capacity(all.len());
    for (labels, chunks) in all {
        match out.last_mut() {
            Some(last) if last.labels == labels => {
                last.chunks.extend(chunks);
                last.chunks.sort_by_key(|c| c.min_t);
            }
            _ => out.push(Series {
                labels,
                chunks,
                mint,
                maxt,
            }),
        }
    }
    out
}
