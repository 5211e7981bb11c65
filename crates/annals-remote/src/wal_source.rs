//! Everything this crate needs of the engine's WAL format, in one place: listing segments and
//! checkpoints, reading a checkpoint, decoding records. It uses `annals::unstable::wal`'s public API
//! only, so when the engine moves format access behind one unstable module, only these lines
//! change.

use std::path::{Path, PathBuf};

use annals::unstable::wal;

pub(crate) use annals::unstable::wal::{RefSample, RefSeries};

/// What a record is, for the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Series,
    Samples,
    Other,
}

pub(crate) fn kind(rec: &[u8]) -> Kind {
    match wal::record_type(rec) {
        wal::RecordType::Series => Kind::Series,
        wal::RecordType::Samples => Kind::Samples,
        _ => Kind::Other,
    }
}

pub(crate) fn decode_series(rec: &[u8], out: &mut Vec<RefSeries>) -> Result<(), String> {
    out.clear();
    wal::decode_series(rec, out).map_err(|e| e.to_string())
}

pub(crate) fn decode_samples(rec: &[u8], out: &mut Vec<RefSample>) -> Result<(), String> {
    out.clear();
    wal::decode_samples(rec, out).map_err(|e| e.to_string())
}

/// First and last segment of the WAL directory.
pub(crate) fn segment_range(dir: &Path) -> annals::Result<Option<(u32, u32)>> {
    wal::segment_range(dir)
}

pub(crate) fn segment_path(dir: &Path, index: u32) -> PathBuf {
    wal::segment_path(dir, index)
}

/// The engine's reader of segment `index`, following it as the live segment (see
/// `Reader::follow`); the file is opened at the first read. One page of buffer: a wake-up
/// reads what one commit wrote, and the buffer stays resident as long as the tailer runs.
pub(crate) fn follow_segment(dir: &Path, index: u32) -> SegmentReader {
    wal::Reader::from_segments(vec![(index, segment_path(dir, index))])
        .buffer_size(wal::PAGE_SIZE)
        .follow()
}

/// What [`follow_segment`] returns.
pub(crate) type SegmentReader = wal::Reader;

/// The newest checkpoint: its directory and the last segment it covers.
pub(crate) fn last_checkpoint(dir: &Path) -> annals::Result<Option<(PathBuf, u32)>> {
    wal::last_checkpoint(dir)
}

/// Calls `f` with every record of the checkpoint directory `path`.
pub(crate) fn read_checkpoint(path: &Path, mut f: impl FnMut(&[u8])) -> annals::Result<()> {
    let mut r = wal::Reader::open_dir(path, 0)?;
    while let Some((rec, _)) = r.next_record()? {
        f(rec);
    }
    Ok(())
}
