//! The write-behind log (`wbl/`, Prometheus 2.39+): out-of-order samples, in the WAL's
//! segment format (§1.9) with Samples records and MmapMarkers records (§1.10). Commits write
//! it in `head/ooo_append.rs`; here it is opened and replayed (Prometheus 2.42
//! `head_wal.go` `loadWBL`), after the WAL, with the out-of-order chunks loaded from
//! `chunks_head/`.
//!
//! Replay rebuilds each series' open out-of-order chunk: samples are inserted as a commit
//! inserts them; an m-map marker says the samples before it are in the m-mapped chunk it
//! names (already attached from `chunks_head/`), so the open chunk is dropped. A marker naming
//! a chunk after the last one loaded (lost in a crash before the chunk file was written)
//! is ignored: its samples stay in the open chunk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::chunk_files::LoadedChunk;
use super::locks::ApplyWrite;
use super::series::{ChunkLoc, ClosedChunk};
use super::Head;
use crate::error::{Error, Result};
use crate::options::Recovery;
use crate::wal::{self, Reader, RecordType, RefMmapMarker, RefSample, RepairReport, Wal};

/// Name of the directory inside the data directory.
pub(crate) const DIR_NAME: &str = "wbl";

/// What replaying the out-of-order data did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OooReplay {
    /// Out-of-order chunks from `chunks_head/` attached to series.
    pub(crate) mmapped_chunks: u64,
    /// Of them, chunks of series no WAL record declared (dropped).
    pub(crate) orphaned_chunks: u64,
    /// WBL records read.
    pub(crate) records: u64,
    /// WBL samples inserted into out-of-order chunks.
    pub(crate) samples: u64,
    /// WBL samples not inserted: their time was held already, or their series is unknown.
    pub(crate) samples_dropped: u64,
    /// m-map markers applied (the open chunk dropped) and ignored (naming a lost chunk).
    pub(crate) markers: u64,
    pub(crate) markers_ignored: u64,
    /// The repair made to a damaged WBL.
    pub(crate) repair: Option<RepairReport>,
}

/// Whether `data_dir` holds a WBL with any bytes (Prometheus opens the WBL then, whatever
/// its window says).
pub(crate) fn has_data(data_dir: &Path) -> Result<bool> {
    let dir = data_dir.join(DIR_NAME);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io(&dir, e))?;
        let m = e.metadata().map_err(|err| Error::io(e.path(), err))?;
        if m.is_file() && m.len() > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Head {
    /// Gives the head its WBL writer (after replay, before any commit).
    pub(crate) fn set_wbl(&mut self, wbl: Arc<Wal>) {
        self.wbl = Some(wbl);
    }

    /// The WBL writer, if the head has one.
    pub(crate) fn wbl(&self) -> Option<&Arc<Wal>> {
        self.wbl.as_ref()
    }
}

/// Attaches the out-of-order chunks loaded from `chunks_head/` (by WAL series ref) to their
/// series, then replays `data_dir/wbl/`. `aliases` maps WAL refs to the series that holds
/// their labels. `last_ref` is the last chunk loaded from `chunks_head/`.
#[allow(clippy::too_many_arguments)]
pub(super) fn replay(
    head: &Head,
    apply: &mut ApplyWrite<'_>,
    aliases: &HashMap<u64, u64>,
    ooo_chunks: HashMap<u64, Vec<LoadedChunk>>,
    last_ref: u64,
    wbl_dir: &Path,
    recovery: Recovery,
    read_only: bool,
) -> Result<OooReplay> {
    let mut st = OooReplay::default();
    let resolve = |r: u64| aliases.get(&r).copied().unwrap_or(r);
    let data_dir = wbl_dir.parent().unwrap_or(wbl_dir);
    let recorded = read_compacted_through(data_dir, read_only);
    // Every out-of-order chunk still in `chunks_head/` has a reference up to `last_ref`, and
    // new chunks get larger ones, unless the files that held the recorded reference are
    // gone (deleted as damaged, or all of them emptied): head chunk files are then numbered
    // from the last one left, and the record is lowered to stay below every new chunk.
    let compacted = recorded.min(last_ref);
    if compacted < recorded && !read_only {
        write_compacted_through(data_dir, compacted)?;
    }
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    // What a marker may name: every out-of-order chunk in the files, by reference.
    let named: HashMap<u64, (u64, LoadedChunk)> = ooo_chunks
        .iter()
        .flat_map(|(r, cs)| cs.iter().map(move |c| (c.chunk_ref, (resolve(*r), *c))))
        .collect();
    for (wal_ref, chunks) in ooo_chunks {
        let Some(s) = head.table.get(resolve(wal_ref)) else {
            st.orphaned_chunks += chunks.len() as u64;
            continue;
        };
        let data = s.data_mut(apply);
        let ooo = data.ooo.get_or_insert_with(Default::default);
        for c in chunks.into_iter().filter(|c| c.chunk_ref > compacted) {
            mint = mint.min(c.min_t);
            maxt = maxt.max(c.max_t);
            ooo.mmapped.push(ClosedChunk {
                min_t: c.min_t,
                max_t: c.max_t,
                loc: ChunkLoc::File(c.chunk_ref, crate::chunkenc::Encoding::Xor),
            });
            st.mmapped_chunks += 1;
        }
    }
    head.note_ooo_committed(mint, maxt, 0, 0);
    let segments = match wbl_dir.is_dir() {
        true => wal::segment_range(wbl_dir)?,
        false => None,
    };
    if let Some((first, last)) = segments {
        let mut reader = Reader::open_dir(wbl_dir, first)?;
        let (mut samples, mut markers) = (Vec::<RefSample>::new(), Vec::<RefMmapMarker>::new());
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        loop {
            let (rec, at) = match reader.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    let Some(at) = reader.damage() else {
                        return Err(e);
                    };
                    if !wal::is_torn_tail(wbl_dir, at, last)?
                        && recovery != Recovery::TruncateAtCorruption
                    {
                        return Err(e);
                    }
                    if read_only {
                        tracing::warn!(error = %e, "WBL damaged; replay stops at the damage");
                    } else {
                        tracing::warn!(error = %e, "WBL damaged; truncating it at the last intact record");
                        st.repair = Some(wal::repair(wbl_dir, at)?);
                    }
                    break;
                }
            };
            st.records += 1;
            let corrupt = |reason: String| {
                Error::corruption(wal::segment_path(wbl_dir, at.segment), at.offset, reason)
            };
            match wal::record_type(rec) {
                RecordType::Samples => {
                    samples.clear();
                    wal::decode_samples(rec, &mut samples)
                        .map_err(|e| corrupt(format!("undecodable WBL record: {e}")))?;
                    for s in &samples {
                        let Some(series) = head.table.get(resolve(s.series_ref)) else {
                            st.samples_dropped += 1;
                            continue;
                        };
                        let data = series.data_mut(apply);
                        let files = data.files().cloned();
                        let ooo = data.ooo.get_or_insert_with(Default::default);
                        let ins =
                            ooo.insert(series.series_ref, s.t, s.v, head.ooo_cap, files.as_ref());
                        if ins.stored {
                            st.samples += 1;
                            mint = mint.min(s.t);
                            maxt = maxt.max(s.t);
                        } else {
                            st.samples_dropped += 1;
                        }
                    }
                }
                RecordType::MmapMarkers => {
                    markers.clear();
                    wal::decode_mmap_markers(rec, &mut markers)
                        .map_err(|e| corrupt(format!("undecodable WBL record: {e}")))?;
                    for m in &markers {
                        let r = resolve(m.series_ref);
                        let Some(series) = head.table.get(r) else {
                            st.markers_ignored += 1;
                            continue;
                        };
                        let Some(ooo) = series.data_mut(apply).ooo.as_mut() else {
                            st.markers += 1;
                            continue;
                        };
                        // A marker naming a chunk drops the open chunk only if that chunk is
                        // in the files and holds exactly the open chunk's samples: a chunk
                        // lost in a crash may have had its reference reused since (files are
                        // numbered on from the last one left), so a reference alone proves
                        // nothing. Otherwise the samples stay (at worst duplicated).
                        let holds_open = |c: &LoadedChunk| {
                            ooo.open.as_ref().is_some_and(|o| {
                                o.first().map(|s| s.0) == Some(c.min_t)
                                    && o.last().map(|s| s.0) == Some(c.max_t)
                                    && o.len() == usize::from(c.num_samples)
                            })
                        };
                        let drop_open = m.mmap_ref == 0
                            || (m.mmap_ref <= last_ref
                                && named
                                    .get(&m.mmap_ref)
                                    .is_some_and(|(owner, c)| *owner == r && holds_open(c)));
                        if drop_open {
                            ooo.open = None;
                            st.markers += 1;
                        } else {
                            st.markers_ignored += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        head.note_ooo_committed(mint, maxt, 0, 0);
        head.samples_appended
            .fetch_add(st.samples, Ordering::Relaxed);
    }
    Ok(st)
}

/// The file (in `chunks_head/`, whose readers skip names that are not numbers) naming the
/// last out-of-order chunk reference out-of-order compaction has put into blocks: every
/// out-of-order chunk up to it is in blocks. Prometheus 2.42 has no such record and loads
/// compacted out-of-order chunks again at every start (queries merge the duplicates away;
/// samples deleted from the blocks since would come back).
const COMPACTED_THROUGH: &str = "annals_ooo_compacted_through";

/// Records that every out-of-order chunk up to `chunk_ref` is in blocks (atomically).
pub(crate) fn write_compacted_through(data_dir: &Path, chunk_ref: u64) -> Result<()> {
    let path = data_dir
        .join(super::chunk_files::DIR_NAME)
        .join(COMPACTED_THROUGH);
    crate::fs::write_atomic(&path, format!("{chunk_ref}\n").as_bytes())
}

/// The reference [`write_compacted_through`] recorded, 0 if none. An unreadable record is
/// ignored (the chunks load again: duplicates, which reads merge), with a warning. A
/// temporary file left by a crash is removed unless `read_only`.
fn read_compacted_through(data_dir: &Path, read_only: bool) -> u64 {
    let path = data_dir
        .join(super::chunk_files::DIR_NAME)
        .join(COMPACTED_THROUGH);
    let tmp = path.with_file_name(format!("{COMPACTED_THROUGH}.tmp"));
    if !read_only && tmp.exists() {
        if let Err(e) = crate::fs::remove_file(&tmp) {
            tracing::warn!(error = %e, file = %tmp.display(), "could not remove a temporary file");
        }
    }
    match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(file = %path.display(), "unreadable; out-of-order chunks load again");
            0
        }),
        Err(_) => 0,
    }
}

/// Path of the WBL directory of `data_dir`.
pub(crate) fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR_NAME)
}
