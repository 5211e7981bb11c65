//! Head chunk files (`chunks_head/NNNNNN`, brief §1.12; Prometheus `tsdb/chunks/head_chunks.go`
//! and `tsdb/docs/format/head_chunks.md`): completed head chunks written out and read back
//! through read-only mappings, so the head keeps only a small descriptor per closed chunk.
//!
//! Durability: chunk files are written through a user-space buffer and never fsynced per chunk.
//! The WAL (and its checkpoints) holds every sample of the head's range, so a chunk lost or
//! torn by a crash is rebuilt from the WAL at the next open. A file is fsynced when it is cut
//! (before the next one exists) and the current one at a clean close, so a crash can only tear
//! or drop the last file: replay skips the WAL samples a series' loaded chunks cover, which is
//! safe only while no earlier chunk of the series is missing.
//!
//! Files are numbered from 1 and contiguous (Prometheus refuses gaps); a chunk's reference is
//! `file_number << 32 | offset`. Truncation deletes the oldest files whose chunks all end before
//! the head's new min time, never a file in the middle.

use std::collections::BTreeMap;
use std::fs::File as StdFile;

use crate::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use parking_lot::{Mutex, RwLock};

use super::chunk_format::decode_entry;
use super::chunk_format::{
    check_header, encode_entry_as, entry_len, for_each_entry, FILE_HEADER_SIZE, MAGIC, VERSION,
};
use crate::chunkenc::Encoding;
use crate::error::{Error, IoContext, Result};
use crate::reader::ChunkBytes;

/// Name of the directory inside the data directory.
pub(crate) const DIR_NAME: &str = "chunks_head";
/// A file is cut when the next entry would make it larger (Prometheus `MaxHeadChunkFileSize`).
pub(crate) const MAX_FILE_SIZE: u64 = 128 << 20;
/// While files are checked at open, pages already scanned are released in steps of this size.
const SCAN_RELEASE_BYTES: usize = 16 << 20;
/// Entries are collected in memory and written when this much is pending (Prometheus's
/// `chunkDiskMapper` write buffer).
pub(crate) const WRITE_BUFFER_SIZE: usize = 4 << 20;

/// Path of file number `n`.
pub(crate) fn file_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:06}"))
}

/// The numbered files in `dir`, ascending. Other names are ignored.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in rd {
        let e = e.at(dir)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() >= 6 && name.bytes().all(|c| c.is_ascii_digit()) {
            if let Ok(n) = name.parse::<u32>() {
                out.push(n);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn map_file(path: &Path) -> Result<Option<Arc<Mmap>>> {
    let file = StdFile::open(path).at(path)?;
    if file.metadata().at(path)?.len() == 0 {
        return Ok(None);
    }
    // Chunk files are only ever appended to (by this process, past the mapped length) and
    // deleted, never truncated or rewritten while mapped.
    let map = crate::fs::map_read_only(&file, path)?;
    Ok(Some(Arc::new(map)))
}

/// A file's current mapping (covering what was written to it so far) and the newest sample
/// time of its chunks.
struct FileState {
    map: Option<Arc<Mmap>>,
    max_t: i64,
}

/// The file being written.
struct Current {
    number: u32,
    file: File,
    /// Bytes already written to the file; `buf` continues from here.
    flushed: u64,
}

struct Writer {
    cur: Option<Current>,
    next_number: u32,
    buf: Vec<u8>,
    /// Set by a failed write: no more chunks are accepted (the head keeps them in memory), and
    /// the buffer is kept so the chunks it holds stay readable.
    broken: Option<String>,
}

/// A chunk loaded from the files at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoadedChunk {
    pub(crate) chunk_ref: u64,
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    /// From the payload's first two bytes (§1.5), read while the file is checked.
    pub(crate) num_samples: u16,
    /// XOR, or a native-histogram encoding.
    pub(crate) encoding: crate::chunkenc::Encoding,
}

/// What loading the files at open found.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Chunks by series ref, in file order (which is time order per series).
    pub(crate) by_series: std::collections::HashMap<u64, Vec<LoadedChunk>>,
    /// Out-of-order chunks (encoding byte `0x81`) by series ref, in file order.
    pub(crate) ooo_by_series: std::collections::HashMap<u64, Vec<LoadedChunk>>,
    /// The reference of the last chunk loaded (0 if none): WBL m-map markers naming a later
    /// chunk refer to one lost since (Prometheus `lastMmapRef`).
    pub(crate) last_ref: u64,
    pub(crate) chunks: u64,
    pub(crate) files: u32,
    /// The corruption found, and the files deleted (or, read-only, ignored) because of it.
    pub(crate) repair: Option<(Error, Vec<PathBuf>)>,
}

/// The head chunk files of one database directory: writer and readers.
pub(crate) struct ChunkFiles {
    dir: PathBuf,
    read_only: bool,
    files: RwLock<BTreeMap<u32, FileState>>,
    writer: Mutex<Writer>,
}

impl ChunkFiles {
    /// Loads `dir` (created unless `read_only`): every file is checked entry by entry (CRC
    /// included). The first corruption ends loading: that file and all later ones are deleted
    /// (kept but ignored when `read_only`) and their chunks are left to the WAL, as Prometheus
    /// does; an empty or zero last file is an interrupted cut and simply deleted. Chunks that
    /// end before `min_valid_time` (inside persisted blocks) are not returned. New chunks go to
    /// a new file after the last one.
    pub(crate) fn open(
        dir: &Path,
        read_only: bool,
        min_valid_time: i64,
    ) -> Result<(ChunkFiles, Loaded)> {
        if !read_only {
            crate::fs::create_dir_all(dir).at(dir)?;
        }
        let numbers = list_files(dir)?;
        let mut loaded = Loaded::default();
        let mut files = BTreeMap::new();
        let mut bad: Option<(usize, Error)> = None;
        for (i, &n) in numbers.iter().enumerate() {
            let path = file_path(dir, n);
            if i > 0 && numbers[i - 1] + 1 != n {
                bad = Some((
                    i,
                    Error::corruption(
                        &path,
                        0,
                        format!("file {n} does not follow file {}", numbers[i - 1]),
                    ),
                ));
                break;
            }
            // Checked through a temporary mapping that is dropped afterwards, so the pages read
            // here do not stay resident in this process.
            let scan = map_file(&path)?;
            let bytes: &[u8] = scan.as_deref().map_or(&[], |m| &m[..]);
            match check_header(bytes) {
                Ok(true) => {}
                Ok(false) if i + 1 == numbers.len() => {
                    if !read_only {
                        tracing::info!(file = %path.display(), "deleting an empty head chunk file");
                        crate::fs::remove_file(&path).at(&path)?;
                    }
                    break;
                }
                Ok(false) => {
                    bad = Some((
                        i,
                        Error::corruption(&path, 0, "head chunk file without a header"),
                    ));
                    break;
                }
                Err(reason) => {
                    bad = Some((i, Error::corruption(&path, 0, reason)));
                    break;
                }
            }
            let mut max_t = i64::MIN;
            let mut order_err = None;
            let mut found = Vec::new();
            let mut released = 0;
            let res = for_each_entry(bytes, |at, e| {
                // Scanned pages are released as the scan goes, so checking 128 MiB files does
                // not add their size to the resident set.
                if at - released >= SCAN_RELEASE_BYTES {
                    let upto = at / 4096 * 4096;
                    if let Some(m) = &scan {
                        // SAFETY: a shared, read-only, file-backed mapping: after DONTNEED a
                        // touched page is read back from the file with the same bytes, so
                        // slices into the mapping stay valid (and those pages are done).
                        let _ = unsafe {
                            m.unchecked_advise_range(
                                memmap2::UncheckedAdvice::DontNeed,
                                released,
                                upto - released,
                            )
                        };
                    }
                    released = upto;
                }
                max_t = max_t.max(e.max_t);
                found.push((
                    e.series_ref,
                    e.encoding,
                    LoadedChunk {
                        chunk_ref: (u64::from(n) << 32) | at as u64,
                        min_t: e.min_t,
                        max_t: e.max_t,
                        num_samples: match bytes.get(at + e.data_start..at + e.data_start + 2) {
                            Some(&[a, b]) => u16::from_be_bytes([a, b]),
                            _ => 0,
                        },
                        encoding: crate::chunkenc::Encoding::Xor,
                    },
                ));
            });
            if let Err((at, reason)) = res {
                bad = Some((i, Error::corruption(&path, at as u64, reason)));
                break;
            }
            for (series_ref, encoding, mut c) in found {
                if encoding == super::chunk_format::OUT_OF_ORDER_FLAG | Encoding::Xor.as_u8() {
                    // Out-of-order chunks overlap each other and the series' in-order chunks,
                    // and are attached whatever their time (Prometheus 2.42
                    // `loadMmappedChunks`): they may hold data older than the blocks that
                    // out-of-order compaction has not taken yet.
                    loaded.ooo_by_series.entry(series_ref).or_default().push(c);
                    loaded.last_ref = loaded.last_ref.max(c.chunk_ref);
                    continue;
                }
                // In-order chunks of the three encodings load; other out-of-order ones (2.42
                // writes none) and unknown bytes are refused.
                if let Some(e) = Encoding::from_u8(encoding) {
                    c.encoding = e;
                } else {
                    // Valid data this head cannot hold: refused before anything is changed on
                    // disk, never skipped (and never treated as damage and deleted).
                    return Err(Error::Unsupported {
                        file: path,
                        offset: Some(c.chunk_ref & 0xffff_ffff),
                        reason: unloadable_chunk(series_ref, encoding),
                    });
                }
                if c.max_t < min_valid_time {
                    continue;
                }
                let list = loaded.by_series.entry(series_ref).or_default();
                if list.last().is_some_and(|p| p.max_t >= c.min_t) && order_err.is_none() {
                    order_err = Some(Error::corruption(
                        &path,
                        c.chunk_ref & 0xffff_ffff,
                        format!("chunk of series {series_ref} overlaps the series' previous chunk"),
                    ));
                }
                list.push(c);
                loaded.chunks += 1;
                loaded.last_ref = loaded.last_ref.max(c.chunk_ref);
            }
            if let Some(e) = order_err {
                // Which chunks came from this file is known only by ref: drop them all again.
                for list in loaded.by_series.values_mut() {
                    list.retain(|c| (c.chunk_ref >> 32) as u32 != n);
                }
                loaded.by_series.retain(|_, l| !l.is_empty());
                for list in loaded.ooo_by_series.values_mut() {
                    list.retain(|c| (c.chunk_ref >> 32) as u32 != n);
                }
                loaded.ooo_by_series.retain(|_, l| !l.is_empty());
                loaded.chunks = loaded.by_series.values().map(|l| l.len() as u64).sum();
                loaded.last_ref = (u64::from(n).saturating_sub(1)) << 32 | 0xffff_ffff;
                bad = Some((i, e));
                break;
            }
            drop(scan);
            files.insert(
                n,
                FileState {
                    map: map_file(&path)?,
                    max_t,
                },
            );
            loaded.files += 1;
        }
        if let Some((i, err)) = bad {
            let doomed: Vec<PathBuf> = numbers[i..].iter().map(|&n| file_path(dir, n)).collect();
            tracing::warn!(error = %err, files = doomed.len(), "head chunk files damaged; their samples are replayed from the WAL");
            if !read_only {
                for p in &doomed {
                    crate::fs::remove_file(p).at(p)?;
                }
                crate::fs::sync_dir(dir)?;
            }
            loaded.repair = Some((err, doomed));
        }
        // After the last file kept: the sequence stays contiguous (Prometheus refuses gaps).
        let next_number = files.keys().next_back().map_or(1, |&n| n + 1);
        Ok((
            ChunkFiles {
                dir: dir.to_path_buf(),
                read_only,
                files: RwLock::new(files),
                writer: Mutex::new(Writer {
                    cur: None,
                    next_number,
                    buf: Vec::new(),
                    broken: None,
                }),
            },
            loaded,
        ))
    }

    /// Appends a chunk and returns its reference. Fails (and the caller keeps the chunk in
    /// memory) when read-only or after an earlier write failed.
    pub(crate) fn write(
        &self,
        series_ref: u64,
        min_t: i64,
        max_t: i64,
        data: &[u8],
    ) -> Result<u64> {
        let xor = crate::chunkenc::Encoding::Xor.as_u8();
        self.write_as(series_ref, min_t, max_t, xor, data)
    }

    /// [`write`](Self::write) with the entry's encoding byte given (`0x81`: an out-of-order
    /// XOR chunk, §1.12).
    pub(crate) fn write_as(
        &self,
        series_ref: u64,
        min_t: i64,
        max_t: i64,
        encoding: u8,
        data: &[u8],
    ) -> Result<u64> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let mut w = self.writer.lock();
        if let Some(reason) = &w.broken {
            return Err(Error::io(
                &self.dir,
                std::io::Error::other(format!("an earlier head chunk write failed: {reason}")),
            ));
        }
        let entry_len = entry_len(data.len());
        let must_cut = match &w.cur {
            None => true,
            Some(c) => c.flushed + (w.buf.len() + entry_len) as u64 > MAX_FILE_SIZE,
        };
        if must_cut {
            self.cut_locked(&mut w)?;
        }
        let cur = w.cur.as_ref().expect("a file is open after cutting");
        let (number, offset) = (cur.number, cur.flushed + w.buf.len() as u64);
        encode_entry_as(&mut w.buf, series_ref, min_t, max_t, encoding, data);
        if let Some(f) = self.files.write().get_mut(&number) {
            f.max_t = f.max_t.max(max_t);
        }
        if w.buf.len() >= WRITE_BUFFER_SIZE {
            // The chunk is in the buffer and readable from there even if this fails.
            if let Err(e) = self.flush_locked(&mut w) {
                tracing::error!(error = %e, "writing head chunks failed; new chunks stay in memory");
            }
        }
        Ok((u64::from(number) << 32) | offset)
    }

    /// Writes the buffer to the current file and maps what the file now holds.
    fn flush_locked(&self, w: &mut Writer) -> Result<()> {
        if w.buf.is_empty() || w.broken.is_some() {
            return Ok(());
        }
        let Writer {
            cur, buf, broken, ..
        } = w;
        let Some(cur) = cur else { return Ok(()) };
        let path = file_path(&self.dir, cur.number);
        if let Err(e) = cur.file.write_all(buf) {
            *broken = Some(e.to_string());
            return Err(Error::io(&path, e));
        }
        // Only once the bytes are mapped do they leave the buffer: when mapping fails, the
        // chunks in the buffer stay readable from there (no more writes follow).
        let map = match map_file(&path) {
            Ok(m) => m,
            Err(e) => {
                *broken = Some(e.to_string());
                return Err(e);
            }
        };
        cur.flushed += buf.len() as u64;
        buf.clear();
        if let Some(f) = self.files.write().get_mut(&cur.number) {
            f.map = map;
        }
        Ok(())
    }

    /// Finishes the current file (flushed and fsynced) and starts the next one.
    ///
    /// The finished file is fsynced before the next one exists (Prometheus `finalizeCurFile`):
    /// a crash may then tear or drop only the last file, never an earlier one whose later
    /// neighbour survives. Replay skips the WAL samples a series' loaded chunks cover, so a
    /// chunk lost from an earlier file while a later chunk of the same series survives would
    /// lose those samples for good.
    fn cut_locked(&self, w: &mut Writer) -> Result<()> {
        self.flush_locked(w)?;
        if w.broken.is_some() {
            return Ok(());
        }
        if let Some(cur) = &w.cur {
            if let Err(e) = cur.file.sync_all() {
                // Whether the file is durable is unknown: nothing may be written after it.
                w.broken = Some(e.to_string());
                return Err(Error::io(file_path(&self.dir, cur.number), e));
            }
        }
        let number = w.next_number;
        let path = file_path(&self.dir, number);
        let file = File::options()
            .create_new(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        w.next_number += 1;
        w.buf.clear();
        w.buf.extend_from_slice(&MAGIC.to_be_bytes());
        w.buf.extend_from_slice(&[VERSION, 0, 0, 0]);
        w.cur = Some(Current {
            number,
            file,
            flushed: 0,
        });
        self.files.write().insert(
            number,
            FileState {
                map: None,
                max_t: i64::MIN,
            },
        );
        Ok(())
    }

    /// The payload of chunk `chunk_ref`, CRC-checked. Chunks still in the write buffer are
    /// copied out of it.
    pub(crate) fn chunk(&self, chunk_ref: u64) -> Result<ChunkBytes> {
        let number = (chunk_ref >> 32) as u32;
        let offset = (chunk_ref & 0xffff_ffff) as usize;
        let path = || file_path(&self.dir, number);
        let map = self.files.read().get(&number).and_then(|f| f.map.clone());
        if let Some(map) = map.filter(|m| offset < m.len()) {
            let e = decode_entry(&map[offset..])
                .map_err(|(at, r)| Error::corruption(path(), (offset + at) as u64, r))?
                .ok_or_else(|| {
                    Error::corruption(path(), offset as u64, "no chunk at this offset")
                })?;
            return Ok(ChunkBytes::Mapped {
                map,
                start: offset + e.data_start,
                len: e.data_len,
            });
        }
        let w = self.writer.lock();
        if let Some(cur) = w.cur.as_ref().filter(|c| c.number == number) {
            if offset as u64 >= cur.flushed {
                let rel = offset - cur.flushed as usize;
                let b = w.buf.get(rel..).unwrap_or(&[]);
                let e = decode_entry(b)
                    .map_err(|(at, r)| Error::corruption(path(), (offset + at) as u64, r))?
                    .ok_or_else(|| {
                        Error::corruption(path(), offset as u64, "no chunk at this offset")
                    })?;
                return Ok(ChunkBytes::Mem(Arc::from(
                    &b[e.data_start..e.data_start + e.data_len],
                )));
            }
        }
        drop(w);
        // Flushed (and mapped) since the first look.
        let map = self.files.read().get(&number).and_then(|f| f.map.clone());
        match map.filter(|m| offset < m.len()) {
            Some(_) => self.chunk(chunk_ref),
            None => Err(Error::corruption(
                path(),
                offset as u64,
                "head chunk reference points past the file's data",
            )),
        }
    }

    /// Head truncation: starts a new file (so the current one can be deleted later) and
    /// deletes the oldest files whose chunks all end before `mint`. Returns the files deleted.
    #[cfg(test)]
    pub(crate) fn truncate(&self, mint: i64) -> Result<Vec<u32>> {
        self.truncate_keeping(mint, None)
    }

    /// [`truncate`](Self::truncate) that also keeps file `keep_from` and every later one
    /// (those holding out-of-order chunks the head still references, whatever their times).
    pub(crate) fn truncate_keeping(&self, mint: i64, keep_from: Option<u32>) -> Result<Vec<u32>> {
        if self.read_only {
            return Ok(Vec::new());
        }
        let current = {
            let mut w = self.writer.lock();
            let has_chunks = w
                .cur
                .as_ref()
                .is_some_and(|c| c.flushed + w.buf.len() as u64 > FILE_HEADER_SIZE as u64);
            if has_chunks {
                self.cut_locked(&mut w)?;
            }
            w.cur.as_ref().map(|c| c.number)
        };
        let doomed: Vec<u32> = {
            let files = self.files.read();
            files
                .iter()
                .take_while(|(&n, f)| {
                    Some(n) != current && f.max_t < mint && keep_from.is_none_or(|k| n < k)
                })
                .map(|(&n, _)| n)
                .collect()
        };
        for &n in &doomed {
            // Removed from the list first: a reader either got the mapping (which outlives the
            // file) or no longer finds the chunk, which truncation dropped from every series.
            self.files.write().remove(&n);
            let p = file_path(&self.dir, n);
            crate::fs::remove_file(&p).at(&p)?;
        }
        Ok(doomed)
    }

    /// Writes buffered chunks and fsyncs the current file (clean close: the next open then
    /// needs the WAL only past the chunks written here).
    ///
    /// Fails when an earlier write, mapping or fsync failed: then the files are not known to
    /// hold every closed chunk (the head kept some in memory), and nothing may rely on them
    /// (a memory snapshot must not be written); the next open rebuilds from the WAL.
    pub(crate) fn close(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.flush_locked(&mut w)?;
        if let Some(reason) = &w.broken {
            return Err(Error::io(
                &self.dir,
                std::io::Error::other(format!("an earlier head chunk write failed: {reason}")),
            ));
        }
        if let Some(cur) = &w.cur {
            let p = file_path(&self.dir, cur.number);
            cur.file.sync_all().at(&p)?;
            crate::fs::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Finishes the current file (written, fsynced, and no longer written to) and starts
    /// the next one, so the chunks written so far survive a crash and a power loss, and no
    /// later torn write can make the open delete their file as damaged: out-of-order
    /// compaction relies on them once it has deleted the WBL that held their samples.
    pub(crate) fn finish_file(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let mut w = self.writer.lock();
        let has_chunks = w
            .cur
            .as_ref()
            .is_some_and(|c| c.flushed + w.buf.len() as u64 > FILE_HEADER_SIZE as u64);
        if has_chunks {
            self.cut_locked(&mut w)?;
        }
        if let Some(reason) = &w.broken {
            return Err(Error::io(
                &self.dir,
                std::io::Error::other(format!("an earlier head chunk write failed: {reason}")),
            ));
        }
        crate::fs::sync_dir(&self.dir)
    }

    /// Numbers of the files currently in use, ascending.
    #[cfg(test)]
    pub(crate) fn file_numbers(&self) -> Vec<u32> {
        self.files.read().keys().copied().collect()
    }
}

impl Drop for ChunkFiles {
    /// Writes what is buffered (not fsynced), so a database dropped without `close` leaves
    /// its chunks to the next open instead of the WAL replay.
    fn drop(&mut self) {
        let mut w = self.writer.lock();
        if let Err(e) = self.flush_locked(&mut w) {
            tracing::warn!(error = %e, "writing buffered head chunks on drop failed");
        }
    }
}

/// Why a head chunk of `encoding` (the byte in the file, bit 7 the out-of-order flag) cannot
/// be loaded: it names the encoding and what it holds.
fn unloadable_chunk(series_ref: u64, encoding: u8) -> String {
    match crate::chunkenc::Encoding::from_u8(encoding & 0x7f) {
        Some(e) if encoding & 0x80 != 0 => format!(
            "an out-of-order head chunk (encoding byte {encoding:#04x}: {e} with the \
             out-of-order flag) of series {series_ref}: Prometheus 2.42 keeps no out-of-order \
             native histograms and annals does not load them; the open is refused rather \
             than dropping them"
        ),
        _ => format!(
            "chunk of series {series_ref} has encoding {encoding}, which annals does not \
             know; the open is refused rather than skipping it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unloadable_chunks_are_named_by_their_encoding_byte() {
        let ooo = unloadable_chunk(7, 0x83);
        assert!(ooo.contains("encoding byte 0x83: floathistogram with the out-of-order flag"));
        let unknown = unloadable_chunk(7, 0x05);
        assert!(
            unknown.contains("encoding 5, which annals does not know"),
            "{unknown}"
        );
        assert!(unloadable_chunk(7, 0x85).contains("encoding 133"));
    }

    fn open(dir: &Path) -> (ChunkFiles, Loaded) {
        ChunkFiles::open(dir, false, i64::MIN).unwrap()
    }

    /// Writes `n` chunks of distinct bytes for series 1..=3, the k-th one over
    /// `[from + 100k, from + 100k + 99]`; returns (ref, series, payload).
    fn write_some(f: &ChunkFiles, from: i64, n: usize) -> Vec<(u64, u64, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let data: Vec<u8> = (0..(i % 50 + 3)).map(|b| (b * 7 + i) as u8).collect();
                let series = (i % 3) as u64 + 1;
                let t = from + i as i64 * 100;
                (f.write(series, t, t + 99, &data).unwrap(), series, data)
            })
            .collect()
    }

    #[test]
    fn chunks_round_trip_through_buffer_file_and_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let (f, loaded) = open(tmp.path());
        assert_eq!(loaded.chunks, 0);
        let written = write_some(&f, 0, 200);
        // Still in the write buffer: served from there.
        for (r, _, data) in &written {
            assert!(matches!(f.chunk(*r).unwrap(), ChunkBytes::Mem(_)));
            assert_eq!(&f.chunk(*r).unwrap()[..], &data[..]);
        }
        assert_eq!(written[0].0, (1 << 32) | FILE_HEADER_SIZE as u64);
        f.close().unwrap();
        for (r, _, data) in &written {
            assert!(matches!(f.chunk(*r).unwrap(), ChunkBytes::Mapped { .. }));
            assert_eq!(&f.chunk(*r).unwrap()[..], &data[..]);
        }
        drop(f);
        let (f, loaded) = open(tmp.path());
        assert_eq!(loaded.chunks, 200);
        assert_eq!(loaded.files, 1);
        assert!(loaded.repair.is_none());
        for (r, series, data) in &written {
            let c = loaded.by_series[series]
                .iter()
                .find(|c| c.chunk_ref == *r)
                .unwrap();
            assert_eq!(c.max_t - c.min_t, 99);
            assert_eq!(&f.chunk(*r).unwrap()[..], &data[..]);
        }
        // New chunks go to the next file.
        let r = f.write(1, 1_000_000, 1_000_001, &[1, 2, 3]).unwrap();
        assert_eq!(r >> 32, 2);
    }

    /// A cut fsyncs the file it finishes, so after a clean close (which fsyncs only the
    /// current file) a power loss cannot drop an earlier file's chunks while a later file's
    /// chunks survive (replay would then skip WAL samples that no chunk holds any more).
    #[cfg(feature = "fault-injection")]
    #[test]
    fn power_loss_after_close_keeps_every_file_s_chunks() {
        use crate::fs::fault::FaultPlan;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("db");
        std::fs::create_dir(&root).unwrap();
        let dir = root.join(DIR_NAME);
        let plan = FaultPlan::install(&root).unwrap();
        let (f, _) = open(&dir);
        crate::fs::sync_dir(&root).unwrap();
        let first = write_some(&f, 0, 30);
        // Head truncation cuts: the next chunks go to file 2.
        assert!(f.truncate(i64::MIN).unwrap().is_empty());
        let second = write_some(&f, 10_000, 30);
        assert!(first.iter().all(|(r, ..)| r >> 32 == 1));
        assert!(second.iter().all(|(r, ..)| r >> 32 == 2));
        f.close().unwrap();
        drop(f);
        plan.power_loss_at(plan.total() + 1);
        assert!(crate::fs::sync_dir(&root).is_err());
        plan.restore_durable().unwrap();
        let (_, loaded) = open(&dir);
        assert!(loaded.repair.is_none(), "{:?}", loaded.repair);
        assert_eq!(loaded.files, 2);
        assert_eq!(loaded.chunks, 60);
    }

    #[test]
    fn a_full_file_is_cut_and_the_buffer_is_flushed_when_full() {
        let tmp = tempfile::tempdir().unwrap();
        let (f, _) = open(tmp.path());
        let big = vec![0xAB; 64 << 10];
        let mut refs = Vec::new();
        // 2 files' worth of 64 KiB chunks.
        for i in 0..(2 * MAX_FILE_SIZE as usize / big.len()) {
            refs.push(f.write(7, i as i64, i as i64, &big).unwrap());
        }
        let files: Vec<u64> = refs.iter().map(|r| r >> 32).collect();
        assert_eq!(files.first(), Some(&1));
        assert_eq!(files.last(), Some(&3));
        for r in &refs {
            assert!(r & 0xffff_ffff < MAX_FILE_SIZE);
        }
        let len1 = std::fs::metadata(file_path(tmp.path(), 1)).unwrap().len();
        assert!(len1 <= MAX_FILE_SIZE && len1 > MAX_FILE_SIZE - 2 * big.len() as u64);
        assert_eq!(&f.chunk(refs[0]).unwrap()[..], &big[..]);
        assert_eq!(&f.chunk(*refs.last().unwrap()).unwrap()[..], &big[..]);
    }

    #[test]
    fn zero_tails_end_the_data_and_empty_last_files_are_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let (f, _) = open(tmp.path());
        let written = write_some(&f, 0, 10);
        f.close().unwrap();
        drop(f);
        let (f, _) = open(tmp.path());
        write_some(&f, 10_000, 10);
        f.close().unwrap();
        drop(f);
        let p1 = file_path(tmp.path(), 1);
        let p2 = file_path(tmp.path(), 2);
        // Preallocation as Prometheus does it: zeros after the data.
        let mut b = std::fs::read(&p1).unwrap();
        let data_len = b.len();
        b.resize(data_len + 128 * 1024, 0);
        std::fs::write(&p1, &b).unwrap();
        // A short zero tail (fewer bytes than an entry header).
        let mut b2 = std::fs::read(&p2).unwrap();
        b2.extend_from_slice(&[0; 20]);
        std::fs::write(&p2, &b2).unwrap();
        // An interrupted cut: an empty last file.
        std::fs::write(file_path(tmp.path(), 3), []).unwrap();
        let (f, loaded) = open(tmp.path());
        assert!(loaded.repair.is_none(), "{:?}", loaded.repair);
        assert_eq!(loaded.chunks, 20);
        assert!(!file_path(tmp.path(), 3).exists());
        assert_eq!(f.file_numbers(), vec![1, 2]);
        assert_eq!(&f.chunk(written[9].0).unwrap()[..], &written[9].2[..]);
    }

    /// Three files of 10 chunks each (one per open), then returns the dir.
    fn three_files() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for n in 1..=3u32 {
            let (f, _) = open(tmp.path());
            write_some(&f, i64::from(n) * 10_000, 10);
            f.close().unwrap();
            assert_eq!(f.file_numbers(), (1..=n).collect::<Vec<_>>());
        }
        tmp
    }

    #[test]
    fn damage_deletes_the_file_and_every_later_one() {
        type Damage = fn(&mut Vec<u8>);
        let cases: [(&str, Damage); 4] = [
            ("crc", |b| b[FILE_HEADER_SIZE + 30] ^= 1),
            ("magic", |b| b[0] = 0x02),
            ("torn", |b| b.truncate(b.len() - 3)),
            ("garbage tail", |b| b.extend_from_slice(&[0, 0, 0, 9])),
        ];
        for (what, damage) in cases {
            let tmp = three_files();
            let p2 = file_path(tmp.path(), 2);
            let mut b = std::fs::read(&p2).unwrap();
            damage(&mut b);
            std::fs::write(&p2, &b).unwrap();
            // Read-only: reported, nothing deleted.
            let (_, loaded) = ChunkFiles::open(tmp.path(), true, i64::MIN).unwrap();
            let (err, files) = loaded.repair.unwrap();
            assert!(matches!(err, Error::Corruption { .. }), "{what}: {err}");
            assert_eq!(files.len(), 2, "{what}");
            assert!(p2.exists());
            let (f, loaded) = open(tmp.path());
            let (_, deleted) = loaded.repair.unwrap();
            assert_eq!(
                deleted,
                vec![p2.clone(), file_path(tmp.path(), 3)],
                "{what}"
            );
            assert_eq!(loaded.chunks, 10, "{what}");
            assert!(loaded
                .by_series
                .values()
                .flatten()
                .all(|c| c.chunk_ref >> 32 == 1));
            assert!(!p2.exists() && !file_path(tmp.path(), 3).exists());
            // The next file continues the sequence (Prometheus refuses gaps).
            assert_eq!(f.write(1, 0, 1, &[1]).unwrap() >> 32, 2, "{what}");
        }
    }

    #[test]
    fn out_of_order_chunks_of_a_series_are_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let (f, _) = open(tmp.path());
        f.write(1, 100, 200, &[1]).unwrap();
        f.close().unwrap();
        drop(f);
        let (f, _) = open(tmp.path());
        f.write(1, 150, 300, &[2]).unwrap();
        f.close().unwrap();
        drop(f);
        let (_, loaded) = open(tmp.path());
        assert!(loaded.repair.is_some());
        assert_eq!(loaded.chunks, 1);
        assert_eq!(loaded.by_series[&1][0].max_t, 200);
    }

    #[test]
    fn gaps_in_the_sequence_are_corruption() {
        let tmp = three_files();
        std::fs::remove_file(file_path(tmp.path(), 2)).unwrap();
        let (_, loaded) = open(tmp.path());
        assert_eq!(loaded.repair.unwrap().1, vec![file_path(tmp.path(), 3)]);
        assert_eq!(loaded.chunks, 10);
    }

    #[test]
    fn chunks_below_the_floor_are_not_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let (f, _) = open(tmp.path());
        write_some(&f, 0, 10); // maxt 99, 199, ..., 999
        f.close().unwrap();
        drop(f);
        let (_, loaded) = ChunkFiles::open(tmp.path(), false, 500).unwrap();
        assert_eq!(loaded.chunks, 5);
    }

    #[test]
    fn truncation_deletes_exactly_the_old_files_and_mappings_outlive_them() {
        let tmp = tempfile::tempdir().unwrap();
        let (f, _) = open(tmp.path());
        // File 1: chunks up to t=999; file 2: up to 1999 (cut by a truncation below every
        // chunk); file 3: up to 2999.
        let a = f.write(1, 0, 999, &[1; 10]).unwrap();
        assert_eq!(f.truncate(i64::MIN).unwrap(), Vec::<u32>::new());
        f.write(1, 1000, 1999, &[2; 10]).unwrap();
        f.write(2, 1000, 1500, &[2; 10]).unwrap();
        f.truncate(i64::MIN).unwrap();
        f.write(1, 2000, 2999, &[3; 10]).unwrap();
        f.close().unwrap();
        assert_eq!(f.file_numbers(), vec![1, 2, 3]);
        let held = f.chunk(a).unwrap();
        assert!(matches!(held, ChunkBytes::Mapped { .. }));
        // Every chunk of file 1 ends before 1000; file 2 has one ending at 1999.
        assert_eq!(f.truncate(1999).unwrap(), vec![1]);
        assert!(!file_path(tmp.path(), 1).exists());
        assert_eq!(&held[..], &[1; 10]);
        // File 3 was cut (it had chunks) so it can go next time; the new file 4 is current.
        assert_eq!(f.file_numbers(), vec![2, 3, 4]);
        assert_eq!(f.truncate(3000).unwrap(), vec![2, 3]);
        assert_eq!(f.file_numbers(), vec![4]);
        // A current file without chunks is not cut again.
        assert_eq!(f.truncate(5000).unwrap(), Vec::<u32>::new());
        assert_eq!(f.file_numbers(), vec![4]);
        let r = f.write(3, 6000, 6001, &[4]).unwrap();
        assert_eq!(r >> 32, 4);
    }

    #[test]
    fn prometheus_head_chunk_files_load() {
        let path = &crate::testutil::fixture("prometheus-2.42-datadir/chunks_head");
        // Loaded read-only from the fixture directory itself.
        let (f, loaded) = ChunkFiles::open(path, true, i64::MIN).unwrap();
        assert_eq!(loaded.chunks, 336);
        assert!(loaded.repair.is_none());
        let c = loaded.by_series[&1][0];
        assert_eq!(c.chunk_ref, (1 << 32) | 8);
        assert!(f.chunk(c.chunk_ref).unwrap().len() > 2);
    }

    #[test]
    fn failed_writes_keep_buffered_chunks_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let (f, _) = open(tmp.path());
        let r = f.write(1, 0, 1, &[9; 5]).unwrap();
        f.writer.lock().broken = Some("test".into());
        assert!(f.write(1, 2, 3, &[1]).is_err());
        assert_eq!(&f.chunk(r).unwrap()[..], &[9; 5]);
        let (ro, _) = ChunkFiles::open(tmp.path(), true, i64::MIN).unwrap();
        assert!(matches!(ro.write(1, 2, 3, &[1]), Err(Error::ReadOnly)));
    }
}
