//! Gathering a selection's series from the head and the blocks, and joining those that
//! several sources hold.

use std::collections::HashMap;
use std::sync::Arc;

use super::series::{SelectedChunk, Series, SeriesSet};
use super::Querier;
use crate::block::Block;
use crate::error::Result;
use crate::model::{Labels, Matcher};
use crate::reader::{postings_for_matchers, BlockReader, IndexReader};

/// One source's part of a series.
type Part = (Labels, Vec<SelectedChunk>);

/// The series `matchers` select in `q`'s range, sorted by labels if `sorted`.
pub(super) fn select(q: &Querier, matchers: &[Matcher], sorted: bool) -> Result<SeriesSet> {
    let (mint, maxt) = (q.mint, q.maxt);
    let mut parts = Vec::new();
    let from_head;
    let blocks = {
        let (head, refs) = q.head.select(mint, maxt, matchers)?;
        // Under the head's read guard: a head compaction publishes its block and truncates
        // the head in one step, which this sees wholly or not at all.
        let blocks = q.blocks.current();
        if head.reader_meta().overlaps(mint, maxt) {
            collect(&head, &refs, None, mint, maxt, &mut parts)?;
        }
        from_head = !parts.is_empty();
        blocks
    };
    let mut sources = usize::from(!parts.is_empty());
    for b in blocks
        .iter()
        .filter(|b| b.reader_meta().overlaps(mint, maxt))
    {
        let before = parts.len();
        let refs = postings_for_matchers(b.index(), matchers)?;
        collect_parallel(b, &refs, mint, maxt, &mut parts)?;
        sources += usize::from(parts.len() > before);
    }
    // A block's postings are series refs in ascending order, and a block numbers its series
    // in label order (index format §1.7.3; `BlockReader::sorted_postings`, and Prometheus's
    // block querier, rely on it): one block alone is already in label order. The head's
    // refs are in creation order.
    let one_block = sources == 1 && !from_head;
    let series = if sorted && !one_block {
        join_sorted(parts, mint, maxt)
    } else if sources <= 1 {
        parts
            .into_iter()
            .map(|(labels, chunks)| Series::new(labels, chunks, mint, maxt))
            .collect()
    } else {
        join_hashed(parts, mint, maxt)
    };
    Ok(SeriesSet::new(series))
}

/// Appends the series `refs` of `source` that have chunks overlapping `[mint, maxt]`. `block`
/// is the block the chunks are read from later (`None`: head chunks carry their bytes).
fn collect<R: BlockReader>(
    source: &R,
    refs: &[u64],
    block: Option<&Arc<Block>>,
    mint: i64,
    maxt: i64,
    out: &mut Vec<Part>,
) -> Result<()> {
    let ix = source.index();
    let mut metas = Vec::new();
    for &r in refs {
        let Some(labels) = ix.series(r, &mut metas)? else {
            continue;
        };
        if !metas.iter().any(|m| m.overlaps(mint, maxt)) {
            continue;
        }
        let deleted = source.deleted(r);
        let chunks = metas
            .drain(..)
            .filter(|m| m.overlaps(mint, maxt))
            .map(|meta| SelectedChunk {
                meta,
                block: block.cloned(),
                deleted: deleted.clone(),
            })
            .collect();
        out.push((labels, chunks));
    }
    Ok(())
}

/// Selections of a block at least this large decode their series entries on several threads.
const PARALLEL_MIN_SERIES: usize = 8192;

/// [`collect`] for a block, on up to 4 threads for large selections (decoding labels and chunk
/// metas is what a select spends its time on): contiguous runs of `refs`, appended in order,
/// so the result is the same as on one thread.
fn collect_parallel(
    b: &Arc<Block>,
    refs: &[u64],
    mint: i64,
    maxt: i64,
    out: &mut Vec<Part>,
) -> Result<()> {
    let threads = if refs.len() >= PARALLEL_MIN_SERIES {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    } else {
        1
    };
    if threads <= 1 {
        return collect(b.as_ref(), refs, Some(b), mint, maxt, out);
    }
    let per = refs.len().div_ceil(threads);
    let runs: Vec<Result<Vec<Part>>> = std::thread::scope(|sc| {
        let handles: Vec<_> = refs
            .chunks(per)
            .map(|run| {
                sc.spawn(move || {
                    let mut parts = Vec::with_capacity(run.len());
                    collect(b.as_ref(), run, Some(b), mint, maxt, &mut parts).map(|()| parts)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("series decoding does not panic"))
            .collect()
    });
    for run in runs {
        out.extend(run?);
    }
    Ok(())
}

/// Sorts by labels and joins the chunk lists of equal label sets (one series in several
/// sources); the iterators merge chunks that overlap in time.
fn join_sorted(mut parts: Vec<Part>, mint: i64, maxt: i64) -> Vec<Series> {
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<Series> = Vec::with_capacity(parts.len());
    for (labels, chunks) in parts {
        match out.last_mut() {
            Some(last) if *last.labels() == labels => last.extend(chunks),
            _ => out.push(Series::new(labels, chunks, mint, maxt)),
        }
    }
    out
}

/// Joins the chunk lists of equal label sets, keeping the order in which series first appear.
fn join_hashed(parts: Vec<Part>, mint: i64, maxt: i64) -> Vec<Series> {
    let mut at: HashMap<Labels, usize> = HashMap::with_capacity(parts.len());
    let mut out: Vec<Series> = Vec::with_capacity(parts.len());
    for (labels, chunks) in parts {
        match at.get(&labels) {
            Some(&i) => out[i].extend(chunks),
            None => {
                at.insert(labels.clone(), out.len());
                out.push(Series::new(labels, chunks, mint, maxt));
            }
        }
    }
    out
}
