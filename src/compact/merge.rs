//! Writing one block from several sources (blocks, or a range of the head), read through the
//! read interface ([`crate::reader`]): the k-way merge of series by label set, chunk merging
//! per series ([`crate::reader::chunks`]), the new block's meta, and the meta flags
//! Prometheus sets on the inputs afterwards.

use std::path::Path;

use ulid::Ulid;

use super::plan::{HINT_FROM_OUT_OF_ORDER, HINT_FROM_STALE_SERIES};
use crate::block::{chunks as segments, Block, BlockDesc, BlockOptions, BlockWriter, Meta};
use crate::error::{Error, Result};
use crate::index;
use crate::model::Labels;
use crate::reader::chunks::{self, Candidate};
use crate::reader::{BlockReader, ChunkMeta, IndexReader};

/// How [`compact_blocks`] and [`clean_tombstones`] write the new block.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Id of the new block; `None` generates one from the current time (as Prometheus does).
    pub ulid: Option<Ulid>,
    /// Maximum chunk segment size; 0 means 512 MiB (Prometheus's default).
    pub segment_size: u64,
    /// Index layout options (defaults match Prometheus 2.x).
    pub index: index::WriterOptions,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            ulid: None,
            segment_size: segments::DEFAULT_SEGMENT_SIZE,
            index: index::WriterOptions::default(),
        }
    }
}

/// The meta of a block merged from `metas` (Prometheus `CompactBlockMetas`): range from the
/// smallest `min_time` to the largest `max_time`, level = highest parent level + 1, sources
/// = sorted union of the parents' sources, parents = the inputs in the given order, and the
/// `from-stale-series` hint if any input has it (the planner only merges such blocks with
/// each other). Stats are left zero: the writer counts them.
///
/// # Panics
/// If `metas` is empty.
pub fn compact_block_metas(ulid: Ulid, metas: &[&Meta]) -> Meta {
    assert!(!metas.is_empty(), "a merged meta needs at least one parent");
    let mut m = Meta::new(ulid, metas[0].min_time, metas[0].max_time);
    m.compaction.sources.clear();
    m.compaction.level = 0;
    for p in metas {
        m.min_time = m.min_time.min(p.min_time);
        m.max_time = m.max_time.max(p.max_time);
        m.compaction.level = m.compaction.level.max(p.compaction.level);
        m.compaction
            .sources
            .extend_from_slice(&p.compaction.sources);
        m.compaction.parents.push(BlockDesc {
            ulid: p.ulid,
            min_time: p.min_time,
            max_time: p.max_time,
        });
        if has_hint(p, HINT_FROM_STALE_SERIES) && !has_hint(&m, HINT_FROM_STALE_SERIES) {
            m.compaction.hints.push(HINT_FROM_STALE_SERIES.into());
        }
    }
    m.compaction.level += 1;
    m.compaction.sources.sort();
    m.compaction.sources.dedup();
    m
}

fn has_hint(m: &Meta, hint: &str) -> bool {
    m.compaction.hints.iter().any(|h| h == hint)
}

/// Merges `blocks` into one new block in `parent_dir` and returns its ULID, or `None` when
/// no sample survives (nothing is written; Prometheus then marks the inputs deletable in
/// their `meta.json`). The meta is Prometheus's `CompactBlockMetas`: the inputs' range, level
/// + 1, their sources, the inputs as parents.
///
/// The block is written through [`BlockWriter`]: in `<ULID>.tmp-for-creation/`, fsynced,
/// then renamed, so it appears complete or not at all. On error the temporary directory is
/// removed before returning (a crash leaves it to the next open of the database). The
/// inputs are only read: deleting them once the new block is durable, or marking them failed,
/// is the caller's job.
///
/// Memory holds one series of each input at a time, the inputs' postings lists and the
/// writer's symbols and postings; chunk bytes are read from the inputs' memory maps.
///
/// Errors: damaged input data is [`Error::Corruption`] naming the input file. Native-histogram
/// chunks that overlap or that tombstones cut are decoded and re-encoded like XOR chunks
/// (`reader::values`).
pub fn compact_blocks(
    parent_dir: &Path,
    blocks: &[&Block],
    opts: &CompactOptions,
) -> Result<Option<Ulid>> {
    if blocks.is_empty() {
        return Err(Error::InvalidArgument("no blocks to compact".into()));
    }
    for (i, b) in blocks.iter().enumerate() {
        if blocks[..i].iter().any(|o| o.ulid() == b.ulid()) {
            return Err(Error::InvalidArgument(format!(
                "block {} is given twice for compaction",
                b.ulid()
            )));
        }
    }
    let ulid = opts.ulid.unwrap_or_else(Ulid::generate);
    let metas: Vec<&Meta> = blocks.iter().map(|b| b.meta()).collect();
    let meta = compact_block_metas(ulid, &metas);
    write_merged(parent_dir, blocks, meta, opts)
}

/// Rewrites `block` without its deleted samples (Prometheus `Block.CleanTombstones`, which
/// calls `LeveledCompactor.Write`) and returns the new block's ULID, or `None` when nothing
/// is left. Like Prometheus, the new block has level 1, is its own only source, lists
/// `block` as its parent, keeps its time range and its `from-out-of-order` and
/// `from-stale-series` hints. Prometheus only calls this for blocks with tombstones; the
/// caller checks [`Block::tombstones`]. Atomicity and errors as for [`compact_blocks`].
pub fn clean_tombstones(
    parent_dir: &Path,
    block: &Block,
    opts: &CompactOptions,
) -> Result<Option<Ulid>> {
    let ulid = opts.ulid.unwrap_or_else(Ulid::generate);
    let src = block.meta();
    let mut meta = Meta::new(ulid, src.min_time, src.max_time);
    meta.compaction.parents.push(BlockDesc {
        ulid: src.ulid,
        min_time: src.min_time,
        max_time: src.max_time,
    });
    for hint in [HINT_FROM_OUT_OF_ORDER, HINT_FROM_STALE_SERIES] {
        if has_hint(src, hint) {
            meta.compaction.hints.push(hint.into());
        }
    }
    write_merged(parent_dir, &[block], meta, opts)
}

/// Sets `compaction.failed` in `<dir>/meta.json`, so the planner skips ranges containing the
/// block. Prometheus does this to every input of a failed compaction.
pub fn mark_compaction_failed(dir: &Path) -> Result<()> {
    update_meta(dir, |m| m.compaction.failed = true)
}

/// Sets `compaction.deletable` in `<dir>/meta.json`: the block is removed at the next reload.
/// Prometheus does this to the inputs of a compaction whose result is empty.
pub fn mark_deletable(dir: &Path) -> Result<()> {
    update_meta(dir, |m| m.compaction.deletable = true)
}

fn update_meta(dir: &Path, f: impl FnOnce(&mut Meta)) -> Result<()> {
    let mut m = Meta::read(dir)?;
    f(&mut m);
    m.write(dir).map(|_| ())
}

/// Writes the series of `blocks`, restricted to `meta`'s time range, into a new block with
/// `meta`'s id, range and compaction fields.
pub(super) fn write_merged(
    parent_dir: &Path,
    blocks: &[&Block],
    meta: Meta,
    opts: &CompactOptions,
) -> Result<Option<Ulid>> {
    let c = meta.compaction;
    let bopts = BlockOptions {
        ulid: Some(meta.ulid),
        time_range: Some((meta.min_time, meta.max_time)),
        level: c.level,
        sources: c.sources,
        parents: c.parents,
        hints: c.hints,
        segment_size: opts.segment_size,
        index: opts.index,
    };
    write(parent_dir, blocks, bopts)
}

/// Writes the union of the series of `inputs` (blocks, or a range of the head) restricted to
/// `opts.time_range` into a new block, through [`BlockWriter`] (see [`compact_blocks`] for
/// atomicity): series merged by label set, chunks copied verbatim unless they overlap another
/// chunk of their series or a deleted interval or the range cuts them. Returns its ULID, or
/// `None` when no sample survives (nothing is written then).
pub(crate) fn write<R: BlockReader>(
    parent_dir: &Path,
    inputs: &[&R],
    opts: BlockOptions,
) -> Result<Option<Ulid>> {
    let Some((mint, maxt)) = opts.time_range else {
        return Err(Error::Internal(
            "a compaction without the new block's time range".into(),
        ));
    };
    let mut w = BlockWriter::create(parent_dir, opts)?;
    // Dropping the writer on error removes its temporary directory.
    populate(&mut w, inputs, mint, crate::block::meta::last_time(maxt))?;
    w.finish()
}

/// One input's cursor over its series in label order.
struct Input<'a, R: BlockReader> {
    reader: &'a R,
    postings: Vec<u64>,
    next: usize,
    /// The current series: ref, labels, chunk metas.
    cur: Option<(u64, Labels)>,
    metas: Vec<ChunkMeta>,
}

impl<'a, R: BlockReader> Input<'a, R> {
    fn new(reader: &'a R) -> Result<Input<'a, R>> {
        let ix = reader.index();
        let mut input = Input {
            reader,
            postings: ix.sorted_postings(ix.all_postings()?)?,
            next: 0,
            cur: None,
            metas: Vec::new(),
        };
        input.advance()?;
        Ok(input)
    }

    /// Moves to the next series, checking that labels strictly increase (the merge relies
    /// on it; Prometheus writes series in label order and numbers refs by offset).
    fn advance(&mut self) -> Result<()> {
        let ix = self.reader.index();
        loop {
            let Some(&sref) = self.postings.get(self.next) else {
                self.cur = None;
                return Ok(());
            };
            self.next += 1;
            // A head series removed since its ref was read holds nothing to write.
            let Some(labels) = ix.series(sref, &mut self.metas)? else {
                continue;
            };
            if let Some((_, prev)) = &self.cur {
                if labels <= *prev {
                    return Err(ix.series_error(
                        sref,
                        format!("series {labels} does not sort after the previous series {prev}"),
                    ));
                }
            }
            self.cur = Some((sref, labels));
            return Ok(());
        }
    }

    /// Turns the current series' chunks into merge candidates (trimmed to `[mint, maxt]`,
    /// deleted samples removed).
    fn candidates<'b>(
        &'b self,
        sref: u64,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Candidate<'b>>,
        buf: &mut Vec<(i64, f64)>,
    ) -> Result<()> {
        let deleted = self.reader.deleted(sref);
        for m in &self.metas {
            if m.min_time > m.max_time {
                return Err(self.reader.index().series_error(
                    sref,
                    format!(
                        "series {sref}: chunk range [{}, {}] is inverted",
                        m.min_time, m.max_time
                    ),
                ));
            }
            chunks::candidate(
                self.reader.chunks(),
                m,
                mint,
                maxt,
                deleted.as_deref(),
                out,
                buf,
            )?;
        }
        Ok(())
    }
}

/// Streams the union of `inputs`' series into `w`, restricted to `[mint, maxt]`.
fn populate<R: BlockReader>(
    w: &mut BlockWriter,
    inputs: &[&R],
    mint: i64,
    maxt: i64,
) -> Result<()> {
    let mut inputs = inputs
        .iter()
        .map(|r| Input::new(*r))
        .collect::<Result<Vec<_>>>()?;
    let mut samples = Vec::new();
    let total: usize = inputs.iter().map(|i| i.postings.len()).sum();
    let mut progress = crate::progress::Progress::new("compaction", "series");
    let mut written = 0u64;
    loop {
        if written.is_multiple_of(64) {
            let done: usize = inputs.iter().map(|i| i.next).sum();
            progress.tick(done as u64, total as u64, w.samples());
        }
        written += 1;
        // Linear k-way selection: compactions merge a handful of inputs, so a scan beats a
        // heap that would own copies of the labels.
        let Some(min) = inputs
            .iter()
            .filter_map(|i| i.cur.as_ref().map(|(_, l)| l))
            .min()
            .cloned()
        else {
            return Ok(());
        };
        {
            // Candidates borrow the inputs' current chunk metas (head chunks carry their
            // bytes there), so they are written before any input advances.
            let mut cands = Vec::new();
            for input in &inputs {
                if let Some((sref, _)) = input.cur.as_ref().filter(|(_, l)| *l == min) {
                    input.candidates(*sref, mint, maxt, &mut cands, &mut samples)?;
                }
            }
            let mut out = Vec::new();
            chunks::merge(&mut cands, &mut samples, &mut out)?;
            if !out.is_empty() {
                w.add_series(&min, &out)?;
            }
        }
        for input in inputs.iter_mut() {
            if input.cur.as_ref().is_some_and(|(_, l)| *l == min) {
                input.advance()?;
            }
        }
    }
}
