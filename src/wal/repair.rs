//! Repair of a damaged WAL (§1.9 "Repair", Prometheus `WL.Repair`).

use std::path::Path;

use super::fragment::{FRAG_FULL, FRAG_LAST, TYPE_MASK};
use super::reader::Reader;
use super::segment::{list_segments, segment_path, sync_dir};
use super::{Position, FRAGMENT_HEADER_SIZE, PAGE_SIZE};
use crate::encoding::crc32c;
use crate::error::{Error, IoContext, Result};

/// What a repair of the WAL (at open, see `Recovery`) dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The damaged segment, which was cut back.
    pub segment: u32,
    /// Intact records kept in that segment.
    pub records_kept: usize,
    /// The new length of its data: the end of the last intact record (the file is then
    /// zero-padded to a page boundary).
    pub truncated_at: u64,
    /// Bytes of the segment from `truncated_at` to its old end that were discarded.
    pub bytes_dropped: u64,
    /// Later segments that were deleted, in ascending order.
    pub segments_deleted: Vec<u32>,
}

/// Cuts the WAL in `dir` back to the last intact record before the corruption at `at`
/// (a position from [`Reader::damage`]).
///
/// Keeps the records of segment `at.segment` that end at or before `at.offset` (and that
/// read cleanly), truncates the segment after the last of them and zero-pads its last page,
/// deletes every later segment (highest first, so an interruption leaves a contiguous WAL),
/// and syncs. Records after the corruption are lost, as in Prometheus: they may depend on what
/// was lost. The bytes kept are not rewritten.
///
/// Run it while no [`super::Wal`] is open on `dir`; the next [`super::Wal::open`] continues
/// with segment `at.segment + 1`. Corruption inside a checkpoint cannot be repaired.
pub fn repair(dir: &Path, at: Position) -> Result<RepairReport> {
    let listing = list_segments(dir)?;
    let path = segment_path(dir, at.segment);
    if !listing.segments.iter().any(|(i, _)| *i == at.segment) {
        return Err(Error::InvalidArgument(format!(
            "cannot repair the WAL at {}: no such segment",
            path.display()
        )));
    }
    tracing::warn!(segment = %path.display(), offset = at.offset, "repairing the WAL: dropping everything after the last intact record");

    let (records_kept, keep) = intact_prefix(dir, at)?;

    let mut segments_deleted = Vec::new();
    for (i, p) in listing.segments.iter().rev() {
        if *i <= at.segment {
            break;
        }
        crate::fs::remove_file(p).at(p)?;
        segments_deleted.push(*i);
    }
    segments_deleted.reverse();

    let f = crate::fs::File::options()
        .write(true)
        .open(&path)
        .at(&path)?;
    let old_len = f.metadata().at(&path)?.len();
    let page = PAGE_SIZE as u64;
    f.set_len(keep).at(&path)?;
    // Zero-pad the last page, so the next reader sees a page terminator after the last record.
    f.set_len(keep.div_ceil(page) * page).at(&path)?;
    f.sync_all().at(&path)?;
    sync_dir(dir)?;

    let report = RepairReport {
        segment: at.segment,
        records_kept,
        truncated_at: keep,
        bytes_dropped: old_len.saturating_sub(keep),
        segments_deleted,
    };
    tracing::warn!(?report, "WAL repaired");
    Ok(report)
}

/// Whether the damage at `at` of the WAL in `dir` is a torn tail: it lies in the last segment,
/// `last`, and no intact fragment (valid type, length and CRC, §1.9) starts on a later page. A
/// crash tears only the tail of the last segment; damage followed by intact data is corruption
/// in the middle of the log, which is not repaired without consent.
pub fn is_torn_tail(dir: &Path, at: Position, last: u32) -> Result<bool> {
    if at.segment != last {
        return Ok(false);
    }
    let path = segment_path(dir, at.segment);
    let data = std::fs::read(&path).at(&path)?;
    let first = (at.offset as usize / PAGE_SIZE + 1) * PAGE_SIZE;
    let intact_after = (first..data.len()).step_by(PAGE_SIZE).any(|start| {
        let p = &data[start..data.len().min(start + PAGE_SIZE)];
        let [kind, l0, l1, c0, c1, c2, c3, ..] = *p else {
            return false;
        };
        let len = u16::from_be_bytes([l0, l1]) as usize;
        let payload = p.get(FRAGMENT_HEADER_SIZE..FRAGMENT_HEADER_SIZE + len);
        (FRAG_FULL..=FRAG_LAST).contains(&(kind & TYPE_MASK))
            && len > 0
            && payload.is_some_and(|b| crc32c(b) == u32::from_be_bytes([c0, c1, c2, c3]))
    });
    Ok(!intact_after)
}

/// Counts the records of the segment that end at or before `at.offset`, stopping at the first
/// error; returns the count and the end of the last one.
fn intact_prefix(dir: &Path, at: Position) -> Result<(usize, u64)> {
    let mut r = Reader::open_range(dir, at.segment, Some(at.segment))?;
    let (mut n, mut keep) = (0, 0);
    loop {
        match r.next_record() {
            Ok(Some(_)) => {
                let end = r.end_position().offset;
                if end > at.offset {
                    break;
                }
                n += 1;
                keep = end;
            }
            Ok(None) => break,
            Err(Error::Corruption { .. } | Error::Unsupported { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    Ok((n, keep))
}
