//! An open block: meta, index, chunk segments and tombstones together, read through the read
//! interface ([`crate::reader`]); deletion of samples in it (tombstones).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ulid::Ulid;

use super::chunks;
use super::meta::{self, Meta};
use crate::chunkenc::Chunk;
use crate::error::{Error, Result};
use crate::index::{self, postings, BlockSeriesRef, ChunkMeta, SERIES_ALIGN};
use crate::model::{Labels, Matcher};
use crate::reader::{self, postings_for_matchers, BlockReader, ChunkRef, IndexReader, ReaderMeta};
use crate::tombstones::{self, Interval, Intervals, Tombstones};

/// A block opened for reading. Files are memory-mapped; all accessors take `&self`, so a
/// `Block` can be shared between threads.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: Meta,
    index: index::Reader,
    chunks: chunks::Reader,
    tombstones: Tombstones,
    size: u64,
}

impl Block {
    /// Opens the block in `dir`: reads and checks `meta.json`, opens the index (header, TOC,
    /// symbol and postings offset tables are verified), maps the chunk segments (headers
    /// checked) and reads the tombstones (a missing file means none). Errors name the file.
    pub fn open(dir: impl AsRef<Path>) -> Result<Block> {
        let dir = dir.as_ref().to_path_buf();
        let meta = Meta::read(&dir)?;
        if let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
            if super::parse_ulid_strict(name).is_some_and(|u| u != meta.ulid) {
                return Err(Error::corruption(
                    dir.join(meta::FILE_NAME),
                    None,
                    format!("meta.json names block {}, not {name}", meta.ulid),
                ));
            }
        }
        let index = index::Reader::open(dir.join("index"))?;
        let chunks = chunks::Reader::open(dir.join("chunks"))?;
        let tombstones = Tombstones::read(&dir)?;
        let file_len = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
        let size = index.size()
            + chunks.size()
            + file_len(tombstones::FILE_NAME)
            + file_len(meta::FILE_NAME);
        Ok(Block {
            dir,
            meta,
            index,
            chunks,
            tombstones,
            size,
        })
    }

    /// The block directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The block's `meta.json`.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The block id.
    pub fn ulid(&self) -> Ulid {
        self.meta.ulid
    }

    /// Start of the block's half-open time range (ms).
    pub fn min_time(&self) -> i64 {
        self.meta.min_time
    }

    /// End of the block's half-open time range (ms), exclusive.
    pub fn max_time(&self) -> i64 {
        self.meta.max_time
    }

    /// Whether the block's range `[min_time, max_time)` (which holds `i64::MAX` when
    /// `max_time` is `i64::MAX`) overlaps the closed range `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.min_time <= maxt && mint <= super::meta::last_time(self.meta.max_time)
    }

    /// The index reader.
    pub fn index(&self) -> &index::Reader {
        &self.index
    }

    /// The chunk segment reader.
    pub fn chunks(&self) -> &chunks::Reader {
        &self.chunks
    }

    /// Deleted intervals per series ref.
    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// Bytes on disk: index, chunk segments, tombstones and meta.json (what size-based
    /// retention counts, like Prometheus' `Block.Size`).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Labels and chunk metas of a series.
    pub fn series(&self, sref: BlockSeriesRef) -> Result<(Labels, Vec<ChunkMeta>)> {
        self.index.series(sref)
    }

    /// The stored chunk a chunk meta refers to, CRC-checked.
    pub fn chunk(&self, meta: &ChunkMeta) -> Result<Chunk<'_>> {
        self.chunks.chunk(meta.chunk_ref)
    }
}

impl Block {
    /// Deletes the samples in `[mint, maxt]` of the series `matchers` select (Prometheus
    /// `Block.Delete`): each series gets the interval clamped to its chunks; the `tombstones`
    /// file and `meta.json`'s count are rewritten atomically and the directory is fsynced.
    /// Returns the block reopened with them, or `None` if nothing was deleted (nothing was
    /// written then).
    pub fn delete(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Option<Block>> {
        let mut stones = self.tombstones.clone();
        let mut added = 0;
        let mut metas = Vec::new();
        for r in postings_for_matchers(&self.index, matchers)? {
            if IndexReader::series(&self.index, r, &mut metas)?.is_none() {
                continue;
            }
            let (Some(first), Some(last)) = (metas.first(), metas.last()) else {
                continue;
            };
            let (lo, hi) = (mint.max(first.min_time), maxt.min(last.max_time));
            if lo <= hi {
                stones.add_interval(r, Interval::new(lo, hi));
                added += 1;
            }
        }
        if added == 0 {
            return Ok(None);
        }
        stones.write(&self.dir)?;
        let mut meta = self.meta.clone();
        meta.stats.num_tombstones = stones.total();
        meta.write(&self.dir)?;
        crate::fs::sync_dir(&self.dir)?;
        Block::open(&self.dir).map(Some)
    }
}

/// Block series refs are `u32` (§1.14); the read interface speaks `u64`.
fn widen(refs: Vec<BlockSeriesRef>) -> Vec<u64> {
    refs.into_iter().map(u64::from).collect()
}

impl IndexReader for index::Reader {
    fn label_names(&self) -> Result<Vec<String>> {
        Ok(index::Reader::label_names(self)
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(index::Reader::label_values(self, name)?
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    fn postings(&self, name: &str, values: &[&str]) -> Result<Vec<u64>> {
        let mut lists = Vec::with_capacity(values.len());
        for v in values {
            lists.push(widen(index::Reader::postings(self, name, v)?));
        }
        let lists: Vec<&[u64]> = lists.iter().map(Vec::as_slice).collect();
        Ok(postings::union(&lists))
    }

    fn postings_matching(&self, name: &str, keep: &dyn Fn(&str) -> bool) -> Result<Vec<u64>> {
        let mut lists = Vec::new();
        for v in index::Reader::label_values(self, name)? {
            if keep(v) {
                lists.push(widen(index::Reader::postings(self, name, v)?));
            }
        }
        let lists: Vec<&[u64]> = lists.iter().map(Vec::as_slice).collect();
        Ok(postings::union(&lists))
    }

    fn all_postings(&self) -> Result<Vec<u64>> {
        index::Reader::all_postings(self).map(widen)
    }

    /// Series are numbered in label order already (§1.7.3).
    fn sorted_postings(&self, refs: Vec<u64>) -> Result<Vec<u64>> {
        Ok(refs)
    }

    fn series(&self, r: u64, chunks: &mut Vec<reader::ChunkMeta>) -> Result<Option<Labels>> {
        chunks.clear();
        let sref = BlockSeriesRef::try_from(r)
            .map_err(|_| self.series_error(r, format!("series ref {r} outside the index")))?;
        let labels = self.series_with(sref, |n, c| {
            chunks.reserve(n);
            chunks.push(reader::ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                chunk: ChunkRef::Block(c.chunk_ref),
            })
        })?;
        Ok(Some(labels))
    }

    fn series_error(&self, r: u64, reason: String) -> Error {
        Error::corruption(self.path(), r.saturating_mul(SERIES_ALIGN), reason)
    }
}

impl BlockReader for Block {
    type Index = index::Reader;
    type Chunks = chunks::Reader;

    fn index(&self) -> &index::Reader {
        &self.index
    }

    fn chunks(&self) -> &chunks::Reader {
        &self.chunks
    }

    fn deleted(&self, r: u64) -> Option<Arc<Intervals>> {
        self.tombstones.get_shared(r)
    }

    fn reader_meta(&self) -> ReaderMeta {
        ReaderMeta {
            min_time: self.meta.min_time,
            max_time: super::meta::last_time(self.meta.max_time),
            num_series: self.meta.stats.num_series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::fixture;

    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to.join("chunks")).unwrap();
        for f in ["meta.json", "index", "tombstones", "chunks/000001"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }

    #[test]
    fn blocks_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Block>();
        assert_send_sync::<index::Reader>();
        assert_send_sync::<chunks::Reader>();
    }

    #[test]
    fn opens_a_prometheus_block() {
        let b = Block::open(fixture("node-exporter-blocks/01M8396A503TACQT84BKW870RK")).unwrap();
        assert_eq!(b.ulid().to_string(), "01M8396A503TACQT84BKW870RK");
        assert_eq!(b.size(), 60703 + 337873 + 9 + 276);
        assert_eq!(b.size(), crate::block::dir_size(b.dir()).unwrap());
        assert!(b.tombstones().is_empty());
        assert!(b.overlaps(b.max_time() - 1, i64::MAX));
        assert!(!b.overlaps(b.max_time(), i64::MAX));
        assert!(b.overlaps(i64::MIN, b.min_time()));
        assert!(!b.overlaps(i64::MIN, b.min_time() - 1));
        let refs = b.index().all_postings().unwrap();
        let mut chunks = 0;
        for r in refs {
            let (_, metas) = b.series(r).unwrap();
            for m in &metas {
                assert_eq!(b.chunk(m).unwrap().num_samples(), Some(120));
                chunks += 1;
            }
        }
        assert_eq!(chunks, b.meta().stats.num_chunks);
    }

    #[test]
    fn errors_name_the_damaged_file() {
        let src = fixture("promtool-2.42-block");
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("01M838CF9FNGQXVQW09DDMA4QK");

        copy(&src, &dir);
        std::fs::remove_file(dir.join("tombstones")).unwrap();
        assert!(Block::open(&dir).unwrap().tombstones().is_empty());

        let corrupt_file = |rel: &str, at: usize| {
            copy(&src, &dir);
            let p = dir.join(rel);
            let mut b = std::fs::read(&p).unwrap();
            b[at] ^= 0xff;
            std::fs::write(&p, b).unwrap();
            match Block::open(&dir) {
                Err(Error::Corruption { file, .. }) => assert_eq!(file, p),
                other => panic!("{rel}: {other:?}"),
            }
        };
        corrupt_file("index", 10);
        corrupt_file("chunks/000001", 0);
        corrupt_file("tombstones", 0);
        corrupt_file("meta.json", 0);

        // meta.json of another block.
        copy(&src, &dir);
        let other = d.path().join("01M8396A503TACQT84BKW870RK");
        copy(&src, &other);
        assert!(matches!(Block::open(&other), Err(Error::Corruption { .. })));

        std::fs::remove_file(dir.join("meta.json")).unwrap();
        assert!(matches!(Block::open(&dir), Err(Error::Io { .. })));
    }
}
