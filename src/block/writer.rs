//! Writing a complete block directory (brief §1.2).
//!
//! Everything is written into `<parent>/<ULID>.tmp-for-creation/`: chunk segments as series
//! arrive, then the index, `meta.json` and `tombstones`; every file and the directory are
//! fsynced before the directory is renamed to `<parent>/<ULID>` and the parent is fsynced. A
//! block directory therefore appears only complete. A block without samples is not kept.
//!
//! The index needs every symbol before the first series entry, but series arrive one at a
//! time. So the writer spills each series' labels and chunk metas to a scratch file in the
//! temporary directory and streams them into the index at the end: memory holds the symbols
//! and, inside the index writer, the postings — never all chunk metas.

use std::collections::HashSet;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use ulid::Ulid;

use super::chunks;
use super::meta::{BlockDesc, Meta};
use crate::chunkenc::{Chunk, SeriesChunk};
use crate::encoding::{put_string, put_uvarint, put_varint, Decbuf};
use crate::error::{Error, IoContext, Result};
use crate::fs::{sync_dir, File};
use crate::index::{self, ChunkMeta, InputError};
use crate::model::{Label, Labels};
use crate::tombstones::Tombstones;

/// Suffix of a block directory being written.
pub const TMP_FOR_CREATION_SUFFIX: &str = ".tmp-for-creation";
/// Scratch file holding spilled series inside the temporary block directory.
const SPILL_FILE: &str = "index_tmp_series";

/// What the new block's `meta.json` says beyond what the writer computes, and how to write.
#[derive(Debug, Clone)]
pub struct BlockOptions {
    /// Block id; `None` generates one from the current time.
    pub ulid: Option<Ulid>,
    /// Half-open `[min_time, max_time)`; `None` uses `[first sample, last sample + 1)` as
    /// `promtool` and Prometheus' `BlockWriter` do. When given, chunks outside are rejected.
    pub time_range: Option<(i64, i64)>,
    /// Compaction level (1 for blocks cut from the head).
    pub level: u32,
    /// Level-1 ancestors; empty means the block is its own source.
    pub sources: Vec<Ulid>,
    /// Direct inputs of a compaction.
    pub parents: Vec<BlockDesc>,
    /// Compaction hints, e.g. `from-out-of-order`.
    pub hints: Vec<String>,
    /// Maximum chunk segment size; 0 means 512 MiB.
    pub segment_size: u64,
    /// Index layout options (defaults match Prometheus 2.x byte for byte).
    pub index: index::WriterOptions,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            ulid: None,
            time_range: None,
            level: 1,
            sources: Vec::new(),
            parents: Vec::new(),
            hints: Vec::new(),
            segment_size: chunks::DEFAULT_SEGMENT_SIZE,
            index: index::WriterOptions::default(),
        }
    }
}

/// Writes one block; see the module docs. Dropping it unfinished removes the temporary
/// directory.
pub struct BlockWriter {
    parent: PathBuf,
    tmp_dir: PathBuf,
    ulid: Ulid,
    opts: BlockOptions,
    chunks: Option<chunks::Writer>,
    spill: Option<BufWriter<File>>,
    symbols: HashSet<Box<str>>,
    last: Option<Labels>,
    num_series: u64,
    num_chunks: u64,
    num_samples: u64,
    min_time: i64,
    max_time: i64,
    refs: Vec<u64>,
    rec: Vec<u8>,
    done: bool,
}

impl std::fmt::Debug for BlockWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockWriter")
            .field("tmp_dir", &self.tmp_dir)
            .field("series", &self.num_series)
            .field("chunks", &self.num_chunks)
            .field("samples", &self.num_samples)
            .finish_non_exhaustive()
    }
}

impl BlockWriter {
    /// Starts a block in `<parent>/<ULID>.tmp-for-creation/` (replacing a leftover one).
    pub fn create(parent: impl AsRef<Path>, opts: BlockOptions) -> Result<BlockWriter> {
        let parent = parent.as_ref().to_path_buf();
        if let Some((a, b)) = opts.time_range {
            // `[i64::MAX, i64::MAX)` holds `i64::MAX` (see `meta::last_time`).
            if a > super::meta::last_time(b) {
                return Err(Error::InvalidArgument(format!(
                    "block time range [{a}, {b}) is empty"
                )));
            }
        }
        let ulid = opts.ulid.unwrap_or_else(Ulid::generate);
        let tmp_dir = parent.join(format!("{ulid}{TMP_FOR_CREATION_SUFFIX}"));
        match crate::fs::remove_dir_all(&tmp_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(&tmp_dir, e))
            }
            _ => {}
        }
        crate::fs::create_dir_all(&tmp_dir).at(&tmp_dir)?;
        let mut w = BlockWriter {
            parent,
            tmp_dir,
            ulid,
            opts,
            chunks: None,
            spill: None,
            symbols: HashSet::new(),
            last: None,
            num_series: 0,
            num_chunks: 0,
            num_samples: 0,
            min_time: i64::MAX,
            max_time: i64::MIN,
            refs: Vec::new(),
            rec: Vec::new(),
            done: false,
        };
        w.chunks = Some(chunks::Writer::create(
            w.tmp_dir.join("chunks"),
            w.opts.segment_size,
        )?);
        let spill_path = w.tmp_dir.join(SPILL_FILE);
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&spill_path)
            .at(&spill_path)?;
        w.spill = Some(BufWriter::with_capacity(1 << 20, f));
        Ok(w)
    }

    /// Samples added so far (for progress reports).
    pub(crate) fn samples(&self) -> u64 {
        self.num_samples
    }

    /// The id of the block being written.
    pub fn ulid(&self) -> Ulid {
        self.ulid
    }

    /// Adds a series. Series must come in strictly increasing label order; chunks in time
    /// order without overlap, each holding at least one sample of a block encoding. A series
    /// without chunks is skipped (the compactor never writes one). On
    /// [`Error::InvalidIndexInput`] nothing was written and the writer stays usable.
    pub fn add_series<D: AsRef<[u8]>>(
        &mut self,
        labels: &Labels,
        chunks: &[SeriesChunk<D>],
    ) -> Result<()> {
        if self.done {
            return Err(Error::InvalidArgument("block writer already failed".into()));
        }
        let series = || labels.to_string();
        if labels.is_empty() {
            return Err(InputError::EmptyLabel { series: series() }.into());
        }
        if let Some(last) = &self.last {
            if labels <= last {
                return Err(InputError::SeriesOutOfOrder {
                    series: series(),
                    previous: last.to_string(),
                }
                .into());
            }
        }
        if chunks.is_empty() {
            self.last = Some(labels.clone());
            return Ok(());
        }
        let mut samples = 0u64;
        for c in chunks {
            let chunk = Chunk {
                encoding: c.encoding,
                data: c.data.as_ref(),
            };
            match chunk.num_samples() {
                Some(n) if n > 0 => samples += u64::from(n),
                _ => return Err(InputError::EmptyChunk { series: series() }.into()),
            }
            if let Some((bmin, bmax)) = self.opts.time_range {
                if c.min_time < bmin || c.max_time > super::meta::last_time(bmax) {
                    return Err(InputError::ChunkOutsideBlock {
                        series: series(),
                        min_time: c.min_time,
                        max_time: c.max_time,
                        block_min_time: bmin,
                        block_max_time: bmax,
                    }
                    .into());
                }
            }
        }
        let metas: Vec<ChunkMeta> = chunks
            .iter()
            .map(|c| ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                chunk_ref: 0,
            })
            .collect();
        index::validate_chunks(&metas, 0, series)?;

        let res = self.write_series(labels, chunks, metas);
        if res.is_err() {
            // The files are unusable: remove them now rather than at the next open.
            self.done = true;
            self.chunks.take();
            self.spill.take();
            let _ = crate::fs::remove_dir_all(&self.tmp_dir);
        }
        res?;
        self.num_series += 1;
        self.num_chunks += chunks.len() as u64;
        self.num_samples += samples;
        self.min_time = self.min_time.min(chunks[0].min_time);
        self.max_time = self.max_time.max(chunks[chunks.len() - 1].max_time);
        self.last = Some(labels.clone());
        Ok(())
    }

    fn write_series<D: AsRef<[u8]>>(
        &mut self,
        labels: &Labels,
        chunks: &[SeriesChunk<D>],
        mut metas: Vec<ChunkMeta>,
    ) -> Result<()> {
        let cs: Vec<Chunk<'_>> = chunks
            .iter()
            .map(|c| Chunk {
                encoding: c.encoding,
                data: c.data.as_ref(),
            })
            .collect();
        self.refs.clear();
        self.chunks
            .as_mut()
            .expect("open until finish")
            .write_series_chunks(&cs, &mut self.refs)?;
        for (m, r) in metas.iter_mut().zip(&self.refs) {
            m.chunk_ref = *r;
        }
        let r = &mut self.rec;
        r.clear();
        put_uvarint(r, labels.len() as u64);
        for l in labels.iter() {
            put_string(r, l.name.as_bytes());
            put_string(r, l.value.as_bytes());
            for s in [l.name, l.value] {
                if !self.symbols.contains(s) {
                    self.symbols.insert(s.into());
                }
            }
        }
        put_uvarint(r, metas.len() as u64);
        for m in &metas {
            put_varint(r, m.min_time);
            put_varint(r, m.max_time);
            put_uvarint(r, m.chunk_ref);
        }
        let path = self.tmp_dir.join(SPILL_FILE);
        let spill = self.spill.as_mut().expect("open until finish");
        spill
            .write_all(&(r.len() as u64).to_be_bytes())
            .and_then(|_| spill.write_all(r))
            .at(path)
    }

    /// Completes the block and moves it into place. Returns its ULID, or `None` (and leaves
    /// nothing on disk) if no series with samples was added.
    pub fn finish(mut self) -> Result<Option<Ulid>> {
        if self.done {
            return Err(Error::InvalidArgument("block writer already failed".into()));
        }
        self.done = true;
        if self.num_samples == 0 {
            self.chunks.take();
            self.spill.take();
            crate::fs::remove_dir_all(&self.tmp_dir).at(&self.tmp_dir)?;
            return Ok(None);
        }
        let res = self.finish_files();
        if res.is_err() {
            let _ = crate::fs::remove_dir_all(&self.tmp_dir);
        }
        res.map(Some)
    }

    fn finish_files(&mut self) -> Result<Ulid> {
        let (_, _) = self.chunks.take().expect("open until finish").finish()?;

        let mut symbols: Vec<Box<str>> = std::mem::take(&mut self.symbols).into_iter().collect();
        symbols.sort_unstable();
        let index_path = self.tmp_dir.join("index");
        let mut iw = index::Writer::create(&index_path, self.opts.index, symbols.iter())?;
        drop(symbols);

        let spill_path = self.tmp_dir.join(SPILL_FILE);
        let mut f = self
            .spill
            .take()
            .expect("open until finish")
            .into_inner()
            .map_err(|e| Error::io(&spill_path, e.into_error()))?;
        f.rewind().at(&spill_path)?;
        let mut rd = BufReader::with_capacity(1 << 20, f);
        let mut buf = Vec::new();
        let mut metas = Vec::new();
        for _ in 0..self.num_series {
            let mut len = [0u8; 8];
            rd.read_exact(&mut len).at(&spill_path)?;
            buf.resize(u64::from_be_bytes(len) as usize, 0);
            rd.read_exact(&mut buf).at(&spill_path)?;
            let labels = decode_spilled(&buf, &mut metas)
                .map_err(|reason| Error::corruption(&spill_path, None, reason))?;
            iw.add_series(labels, &metas)?;
        }
        drop(rd);
        crate::fs::remove_file(&spill_path).at(&spill_path)?;
        iw.finish()?;

        let (min_time, max_time) = self
            .opts
            .time_range
            .unwrap_or((self.min_time, super::meta::end_after(self.max_time)));
        let mut meta = Meta::new(self.ulid, min_time, max_time);
        meta.stats.num_samples = self.num_samples;
        meta.stats.num_series = self.num_series;
        meta.stats.num_chunks = self.num_chunks;
        meta.compaction.level = self.opts.level;
        if !self.opts.sources.is_empty() {
            meta.compaction.sources = self.opts.sources.clone();
            meta.compaction.sources.sort();
            meta.compaction.sources.dedup();
        }
        meta.compaction.parents = self.opts.parents.clone();
        meta.compaction.hints = self.opts.hints.clone();
        meta.compaction.hints.sort();
        meta.compaction.hints.dedup();
        meta.write(&self.tmp_dir)?;
        Tombstones::new().write(&self.tmp_dir)?;
        sync_dir(&self.tmp_dir)?;

        let dir = self.parent.join(self.ulid.to_string());
        crate::fs::rename(&self.tmp_dir, &dir).at(&dir)?;
        if let Err(e) = sync_dir(&self.parent) {
            // Whether the rename is durable is unknown, so the caller must not rely on the
            // block (it keeps its inputs); a block left in place would come back at the next
            // open without what happened to the inputs since (tombstones) and, as their
            // child, replace them.
            if let Err(r) = crate::block::delete_block_dir(&dir) {
                tracing::error!(block = %dir.display(), error = %r, "could not remove a block whose directory fsync failed");
            }
            return Err(e);
        }
        Ok(self.ulid)
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.done {
            self.chunks.take();
            self.spill.take();
            let _ = crate::fs::remove_dir_all(&self.tmp_dir);
        }
    }
}

/// Decodes a spilled series record; labels borrow from `b`.
fn decode_spilled<'a>(
    b: &'a [u8],
    metas: &mut Vec<ChunkMeta>,
) -> std::result::Result<Vec<Label<'a>>, String> {
    let mut d = Decbuf::new(b);
    let e = |e: crate::encoding::DecodeError| format!("spilled series record: {e}");
    let n = d.uvarint().map_err(e)?;
    let mut labels = Vec::with_capacity((n as usize).min(b.len()));
    for _ in 0..n {
        let name = d.uvarint_str().map_err(e)?;
        let value = d.uvarint_str().map_err(e)?;
        labels.push(Label { name, value });
    }
    let n = d.uvarint().map_err(e)?;
    metas.clear();
    for _ in 0..n {
        metas.push(ChunkMeta {
            min_time: d.varint().map_err(e)?,
            max_time: d.varint().map_err(e)?,
            chunk_ref: d.uvarint().map_err(e)?,
        });
    }
    Ok(labels)
}

/// Writes a whole block from `series`, sorted by labels; see [`BlockWriter`]. Returns the
/// new block's ULID, or `None` if there were no samples (nothing is written then).
pub fn write_block<D: AsRef<[u8]>>(
    parent: impl AsRef<Path>,
    opts: BlockOptions,
    series: impl IntoIterator<Item = (Labels, Vec<SeriesChunk<D>>)>,
) -> Result<Option<Ulid>> {
    let mut w = BlockWriter::create(parent, opts)?;
    for (labels, chunks) in series {
        w.add_series(&labels, &chunks)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Block;
    use crate::chunkenc::Encoding;
    use std::collections::BTreeMap;

    use crate::testutil::fixture;

    type Series = (Labels, Vec<SeriesChunk>);

    /// Every series of a block with its chunk bytes, in index order.
    fn read_block(b: &Block) -> Vec<Series> {
        b.index()
            .all_postings()
            .unwrap()
            .into_iter()
            .map(|sref| {
                let (l, metas) = b.series(sref).unwrap();
                let chunks = metas
                    .iter()
                    .map(|m| {
                        let c = b.chunk(m).unwrap();
                        SeriesChunk {
                            min_time: m.min_time,
                            max_time: m.max_time,
                            encoding: c.encoding,
                            data: c.data.to_vec(),
                        }
                    })
                    .collect();
                (l, chunks)
            })
            .collect()
    }

    fn assert_same_file(a: &Path, b: &Path) {
        let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        assert!(x == y, "{} and {} differ", a.display(), b.display());
    }

    /// Reads a Prometheus-written block and writes its series again: every file is
    /// byte-identical (meta.json included, since the ULID is reused and the time range is
    /// derived the way promtool derives it).
    fn assert_block_rewrite_identical(rel: &str, samples: u64) {
        let src = fixture(rel);
        let block = Block::open(&src).unwrap();
        assert_eq!(block.meta().stats.num_samples, samples);
        let series = read_block(&block);
        let counted: u64 = series
            .iter()
            .flat_map(|(_, cs)| cs)
            .map(|c| u64::from(u16::from_be_bytes([c.data[0], c.data[1]])))
            .sum();
        assert_eq!(counted, samples);
        let out = tempfile::tempdir().unwrap();
        let opts = BlockOptions {
            ulid: Some(block.ulid()),
            ..BlockOptions::default()
        };
        let ulid = write_block(out.path(), opts, series).unwrap().unwrap();
        assert_eq!(ulid, block.ulid());
        let dst = out.path().join(ulid.to_string());
        for f in ["index", "chunks/000001", "tombstones", "meta.json"] {
            assert_same_file(&src.join(f), &dst.join(f));
        }
        let names: Vec<_> = std::fs::read_dir(&dst)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(names, ["chunks", "index", "meta.json", "tombstones"]);
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);
        assert_eq!(Block::open(&dst).unwrap().size(), block.size());
    }

    #[test]
    fn golden_blocks_rewrite_byte_identical() {
        assert_block_rewrite_identical("promtool-2.42-block", 7);
        assert_block_rewrite_identical("node-exporter-blocks/01M8396A503TACQT84BKW870RK", 243_360);
        assert_block_rewrite_identical("node-exporter-blocks/01M8396ANRP6M7K730VKK2CXKZ", 212_940);
    }

    fn ls(p: &[(&str, &str)]) -> Labels {
        Labels::new(p.iter().copied()).unwrap()
    }

    /// A one-sample XOR chunk at `t` (payload layout of §1.5).
    fn one_sample(t: i64) -> SeriesChunk {
        let mut data = vec![0, 1];
        crate::encoding::put_varint(&mut data, t);
        data.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
        SeriesChunk {
            min_time: t,
            max_time: t,
            encoding: Encoding::Xor,
            data,
        }
    }

    fn input_err(r: Result<()>) -> InputError {
        match r {
            Err(Error::InvalidIndexInput(e)) => e,
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn invalid_input_is_rejected_and_the_writer_stays_usable() {
        let parent = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::create(
            parent.path(),
            BlockOptions {
                time_range: Some((0, 100)),
                ..BlockOptions::default()
            },
        )
        .unwrap();
        w.add_series(&ls(&[("a", "2")]), &[one_sample(5)]).unwrap();
        let e = input_err(w.add_series(&ls(&[("a", "1")]), &[one_sample(6)]));
        assert!(matches!(e, InputError::SeriesOutOfOrder { .. }));
        let e = input_err(w.add_series(&ls(&[("a", "3")]), &[one_sample(6), one_sample(6)]));
        assert!(matches!(e, InputError::ChunkTimeOverlap { .. }));
        let e = input_err(w.add_series(&ls(&[("a", "3")]), &[one_sample(100)]));
        assert!(matches!(e, InputError::ChunkOutsideBlock { .. }));
        let mut empty = one_sample(7);
        empty.data[1] = 0;
        let e = input_err(w.add_series(&ls(&[("a", "3")]), &[empty]));
        assert!(matches!(e, InputError::EmptyChunk { .. }));
        // A series without chunks is skipped, but still counts for the order.
        w.add_series::<Vec<u8>>(&ls(&[("a", "3")]), &[]).unwrap();
        let e = input_err(w.add_series(&ls(&[("a", "3")]), &[one_sample(6)]));
        assert!(matches!(e, InputError::SeriesOutOfOrder { .. }));
        w.add_series(&ls(&[("a", "4")]), &[one_sample(7), one_sample(8)])
            .unwrap();
        let ulid = w.finish().unwrap().unwrap();
        let b = Block::open(parent.path().join(ulid.to_string())).unwrap();
        assert_eq!((b.min_time(), b.max_time()), (0, 100));
        assert_eq!(
            (
                b.meta().stats.num_series,
                b.meta().stats.num_chunks,
                b.meta().stats.num_samples
            ),
            (2, 3, 3)
        );
        let got = read_block(&b);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].0, ls(&[("a", "4")]));
        assert_eq!(got[1].1, vec![one_sample(7), one_sample(8)]);
        assert_eq!(b.index().label_values("a").unwrap(), ["2", "4"]);
    }

    #[test]
    fn a_block_without_samples_leaves_nothing() {
        let parent = tempfile::tempdir().unwrap();
        let r = write_block::<Vec<u8>>(parent.path(), BlockOptions::default(), []).unwrap();
        assert!(r.is_none());
        let r = write_block::<Vec<u8>>(
            parent.path(),
            BlockOptions::default(),
            [(ls(&[("a", "1")]), vec![])],
        )
        .unwrap();
        assert!(r.is_none());
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_abandoned_or_failed_writer_removes_its_temporary_directory() {
        let parent = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::create(parent.path(), BlockOptions::default()).unwrap();
        w.add_series(&ls(&[("a", "1")]), &[one_sample(1)]).unwrap();
        let tmp = parent
            .path()
            .join(format!("{}{TMP_FOR_CREATION_SUFFIX}", w.ulid()));
        assert!(tmp.join("chunks").is_dir());
        drop(w);
        assert!(!tmp.exists());
        // Renaming onto an existing non-empty block fails; nothing is left behind.
        let ulid = Ulid::generate();
        std::fs::create_dir(parent.path().join(ulid.to_string())).unwrap();
        std::fs::write(parent.path().join(ulid.to_string()).join("x"), b"x").unwrap();
        let opts = BlockOptions {
            ulid: Some(ulid),
            ..BlockOptions::default()
        };
        let r = write_block(
            parent.path(),
            opts,
            [(ls(&[("a", "1")]), vec![one_sample(1)])],
        );
        assert!(matches!(r, Err(Error::Io { .. })), "{r:?}");
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 1);
    }

    /// Every failing file operation of a block write (EIO at each point, ENOSPC at each
    /// write) fails the write and leaves nothing in the parent directory. Regression: a failed
    /// fsync of the parent after the rename left the block in place while the caller, told it
    /// failed, kept its inputs.
    #[test]
    fn a_failed_file_operation_leaves_no_block_behind() {
        use crate::fs::fault::{Fault, FaultPlan, Op};
        let series = || -> Vec<Series> {
            (0..5)
                .map(|i| (ls(&[("i", &i.to_string())]), vec![one_sample(i)]))
                .collect()
        };
        let counts = {
            let parent = tempfile::tempdir().unwrap();
            let plan = FaultPlan::install(parent.path()).unwrap();
            write_block(parent.path(), BlockOptions::default(), series())
                .unwrap()
                .unwrap();
            plan.counts()
        };
        let mut cases = 0;
        for (op, n) in counts {
            let faults: &[Fault] = match op {
                Op::Write => &[Fault::Eio, Fault::Enospc],
                _ => &[Fault::Eio],
            };
            for nth in 1..=n {
                for &fault in faults {
                    let parent = tempfile::tempdir().unwrap();
                    let plan = FaultPlan::install(parent.path()).unwrap();
                    plan.inject(op, nth, fault);
                    let r = write_block(parent.path(), BlockOptions::default(), series());
                    assert!(plan.fired().is_some());
                    let left: Vec<_> = std::fs::read_dir(parent.path())
                        .unwrap()
                        .map(|e| e.unwrap().file_name())
                        .collect();
                    assert!(matches!(r, Err(Error::Io { .. })), "{op:?} #{nth}: {r:?}");
                    assert!(left.is_empty(), "{op:?} #{nth} {fault:?} left {left:?}");
                    cases += 1;
                }
            }
        }
        assert!(cases > 20, "{cases}");
    }

    #[test]
    fn meta_carries_compaction_fields_and_small_segments_are_cut() {
        let parent = tempfile::tempdir().unwrap();
        let (p1, p2) = (Ulid::generate(), Ulid::generate());
        let opts = BlockOptions {
            level: 3,
            sources: vec![p2, p1, p2],
            parents: vec![BlockDesc {
                ulid: p1,
                min_time: 0,
                max_time: 10,
            }],
            hints: vec!["z".into(), "from-out-of-order".into()],
            segment_size: 64,
            ..BlockOptions::default()
        };
        let series: Vec<Series> = (0..20)
            .map(|i| {
                (
                    ls(&[("__name__", "m"), ("i", &format!("{i:02}"))]),
                    vec![one_sample(i), one_sample(i + 100)],
                )
            })
            .collect();
        let ulid = write_block(parent.path(), opts, series.clone())
            .unwrap()
            .unwrap();
        let b = Block::open(parent.path().join(ulid.to_string())).unwrap();
        let c = &b.meta().compaction;
        assert_eq!(c.level, 3);
        let mut want = vec![p1, p2];
        want.sort();
        assert_eq!(c.sources, want);
        assert_eq!(c.parents[0].ulid, p1);
        assert_eq!(c.hints, ["from-out-of-order", "z"]);
        assert_eq!((b.min_time(), b.max_time()), (0, 120));
        assert!(b.chunks().num_segments() > 5);
        assert_eq!(read_block(&b), series);
    }

    fn arb_model() -> impl proptest::strategy::Strategy<Value = BTreeMap<Labels, Vec<(i64, u64)>>> {
        use proptest::prelude::*;
        let series = (
            "[a-d]{1,2}",
            "[0-9]{1,2}",
            prop::collection::vec((1i64..100_000, any::<u64>()), 1..300),
        );
        prop::collection::vec(series, 1..25).prop_map(|v| {
            v.into_iter()
                .map(|(job, inst, samples)| {
                    let labels = ls(&[("__name__", "m"), ("job", &job), ("instance", &inst)]);
                    let mut t = 1_700_000_000_000i64;
                    let samples = samples
                        .into_iter()
                        .map(|(dt, bits)| {
                            t += dt;
                            (t, bits)
                        })
                        .collect();
                    (labels, samples)
                })
                .collect()
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

        /// Random series (arbitrary value bits, so NaN payloads and stale markers too) written
        /// as XOR chunks of 120 samples read back bit for bit.
        #[test]
        fn block_round_trip_matches_model(model in arb_model(), segment_size in 100u64..5000) {
            use crate::chunkenc::{XorAppender, XorIter};
            let series: Vec<Series> = model
                .iter()
                .map(|(l, samples)| {
                    let chunks = samples
                        .chunks(120)
                        .map(|part| {
                            let mut app = XorAppender::new();
                            for &(t, bits) in part {
                                app.append(t, f64::from_bits(bits));
                            }
                            SeriesChunk {
                                min_time: part[0].0,
                                max_time: part[part.len() - 1].0,
                                encoding: Encoding::Xor,
                                data: app.into_bytes(),
                            }
                        })
                        .collect();
                    (l.clone(), chunks)
                })
                .collect();
            let parent = tempfile::tempdir().unwrap();
            let opts = BlockOptions { segment_size, ..BlockOptions::default() };
            let ulid = write_block(parent.path(), opts, series).unwrap().unwrap();
            let b = Block::open(parent.path().join(ulid.to_string())).unwrap();
            let mut got: BTreeMap<Labels, Vec<(i64, u64)>> = BTreeMap::new();
            for sref in b.index().all_postings().unwrap() {
                let (l, metas) = b.series(sref).unwrap();
                let samples = got.entry(l).or_default();
                for m in &metas {
                    for s in XorIter::new(b.chunk(m).unwrap().data) {
                        let s = s.unwrap();
                        samples.push((s.t, s.v.to_bits()));
                    }
                }
            }
            proptest::prop_assert_eq!(&got, &model);
            let n: usize = model.values().map(Vec::len).sum();
            proptest::prop_assert_eq!(b.meta().stats.num_samples, n as u64);
            proptest::prop_assert_eq!(b.meta().stats.num_series, model.len() as u64);
        }
    }
}
