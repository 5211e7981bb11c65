//! Writing one block from several: the k-way merge of series by label set, chunk merging per
//! series (see [`super::series`]), the new block's meta, and the meta flags Prometheus sets
//! on the inputs afterwards.

use std::borrow::Cow;
use std::path::Path;

use ulid::Ulid;

use super::plan::{HINT_FROM_OUT_OF_ORDER, HINT_FROM_STALE_SERIES};
use super::series::{self, Candidate, ChunkSource, Trim};
use crate::block::{chunks, Block, BlockDesc, BlockOptions, BlockWriter, Meta};
use crate::error::{Error, Result};
use crate::index::{self, BlockSeriesRef, ChunkMeta, SERIES_ALIGN};
use crate::model::Labels;

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
            segment_size: chunks::DEFAULT_SEGMENT_SIZE,
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
/// no sample survives (nothing is written; Prometheus then marks the inputs deletable, see
/// [`mark_deletable`]). The meta follows [`compact_block_metas`].
///
/// The block is written through [`BlockWriter`]: in `<ULID>.tmp-for-creation/`, fsynced,
/// then renamed, so it appears complete or not at all. On error the temporary directory is
/// removed before returning (a crash leaves it to [`remove_tmp_dirs`] at the next open).
/// The inputs are only read: deleting them once the new block is durable, or marking them
/// failed ([`mark_compaction_failed`]), is the caller's job.
///
/// Memory holds one series of each input at a time, the inputs' postings lists and the
/// writer's symbols and postings; chunk bytes are read from the inputs' memory maps.
///
/// Errors: damaged input data is [`Error::Corruption`] naming the input file; chunks that
/// would need decoding but are not XOR (native histograms that overlap or are cut by
/// tombstones) are [`Error::Unsupported`].
///
/// [`remove_tmp_dirs`]: crate::block::remove_tmp_dirs
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
    write(parent_dir, blocks, meta, opts)
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
    write(parent_dir, &[block], meta, opts)
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
pub(super) fn write(
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
    let mut w = BlockWriter::create(parent_dir, bopts)?;
    // Dropping the writer on error removes its temporary directory.
    populate(&mut w, blocks, meta.min_time, meta.max_time - 1)?;
    w.finish()
}

/// One input's cursor over its series in index (= label) order.
struct Input<'a> {
    block: &'a Block,
    postings: Vec<BlockSeriesRef>,
    next: usize,
    /// The current series: ref, labels, chunk metas.
    cur: Option<(BlockSeriesRef, Labels)>,
    metas: Vec<ChunkMeta>,
}

impl<'a> Input<'a> {
    fn new(block: &'a Block) -> Result<Input<'a>> {
        let mut input = Input {
            block,
            postings: block.index().all_postings()?,
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
        let Some(&sref) = self.postings.get(self.next) else {
            self.cur = None;
            return Ok(());
        };
        self.next += 1;
        let labels = self.block.index().series_into(sref, &mut self.metas)?;
        if let Some((_, prev)) = &self.cur {
            if labels <= *prev {
                return Err(Error::corruption(
                    self.block.index().path(),
                    u64::from(sref) * SERIES_ALIGN,
                    format!("series {labels} does not sort after the previous series {prev}"),
                ));
            }
        }
        self.cur = Some((sref, labels));
        Ok(())
    }

    /// Turns the current series' chunks into merge candidates (trimmed to `[mint, maxt]`,
    /// deleted samples removed).
    fn candidates(
        &self,
        sref: BlockSeriesRef,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Candidate<'a>>,
        buf: &mut Vec<(i64, f64)>,
    ) -> Result<()> {
        let b = self.block;
        let deleted = b.tombstones().get(u64::from(sref));
        for m in &self.metas {
            if m.min_time > m.max_time {
                return Err(Error::corruption(
                    b.index().path(),
                    u64::from(sref) * SERIES_ALIGN,
                    format!(
                        "series {sref}: chunk range [{}, {}] is inverted",
                        m.min_time, m.max_time
                    ),
                ));
            }
            let how = series::trim(m, mint, maxt, deleted);
            if matches!(how, Trim::Drop) {
                continue;
            }
            let chunk = b.chunk(m)?;
            let file = b
                .chunks()
                .segment_path(m.chunk_ref)
                .expect("a chunk was read from this segment");
            let source = ChunkSource::new(file, m, &chunk);
            match chunk.num_samples() {
                Some(n) if n > 0 => {}
                Some(_) => {
                    return Err(Error::corruption(
                        file,
                        source.offset,
                        format!("chunk {:#x} holds no samples", m.chunk_ref),
                    ))
                }
                None => {
                    return Err(Error::corruption(
                        file,
                        source.offset,
                        format!("chunk {:#x} is shorter than its sample count", m.chunk_ref),
                    ))
                }
            }
            match how {
                Trim::Keep => out.push(Candidate {
                    min_time: m.min_time,
                    max_time: m.max_time,
                    encoding: chunk.encoding,
                    data: Cow::Borrowed(chunk.data),
                    source,
                }),
                _ => out.extend(series::filter(&chunk, source, mint, maxt, deleted, buf)?),
            }
        }
        Ok(())
    }
}

/// Streams the union of `blocks`' series into `w`, restricted to `[mint, maxt]`.
fn populate(w: &mut BlockWriter, blocks: &[&Block], mint: i64, maxt: i64) -> Result<()> {
    let mut inputs = blocks
        .iter()
        .map(|b| Input::new(b))
        .collect::<Result<Vec<_>>>()?;
    let mut cands = Vec::new();
    let mut samples = Vec::new();
    let mut out = Vec::new();
    loop {
        // Linear k-way selection: compactions merge a handful of blocks, so a scan beats a
        // heap that would own copies of the labels.
        let Some(min) = inputs
            .iter()
            .filter_map(|i| i.cur.as_ref().map(|(_, l)| l))
            .min()
            .cloned()
        else {
            return Ok(());
        };
        cands.clear();
        for input in inputs.iter_mut() {
            let Some((sref, _)) = input.cur.as_ref().filter(|(_, l)| *l == min) else {
                continue;
            };
            let sref = *sref;
            input.candidates(sref, mint, maxt, &mut cands, &mut samples)?;
            input.advance()?;
        }
        series::merge(&mut cands, &mut samples, &mut out)?;
        if !out.is_empty() {
            w.add_series(&min, &out)?;
        }
    }
}
