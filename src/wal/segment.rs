//! Segment files of a WAL directory: naming, listing, deletion (§1.9).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// Prefix of checkpoint directories, which live beside the segments (§1.11).
pub(crate) const CHECKPOINT_PREFIX: &str = "checkpoint.";

/// The path of segment `index` in `dir` (`%08d`).
pub fn segment_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("{index:08}"))
}

/// The index named by a segment file name: ASCII digits only (Prometheus accepts any decimal
/// name, padded or not), fitting in `u32`.
pub(crate) fn parse_segment_name(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// What a WAL directory holds, from [`list_segments`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentListing {
    /// Segment files by ascending index.
    pub segments: Vec<(u32, PathBuf)>,
    /// Entries that are neither segments nor checkpoint directories (they are ignored, and
    /// logged at warn level).
    pub ignored: Vec<OsString>,
}

/// Lists the segments of `dir` in index order.
///
/// Entries whose names are not decimal numbers, or that are directories, are skipped and
/// reported in [`SegmentListing::ignored`] (checkpoint directories are skipped silently).
/// Gaps between indices are an [`Error::Corruption`] naming `dir`: Prometheus refuses such a
/// WAL, because the records of the missing segment are lost.
pub fn list_segments(dir: &Path) -> Result<SegmentListing> {
    let mut out = SegmentListing::default();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let index = name.to_str().and_then(parse_segment_name);
        match index {
            Some(i) if !entry.file_type().at(entry.path())?.is_dir() => {
                out.segments.push((i, entry.path()));
            }
            _ => {
                let known = name
                    .to_str()
                    .is_some_and(|n| n.starts_with(CHECKPOINT_PREFIX));
                if !known {
                    tracing::warn!(dir = %dir.display(), entry = ?name, "ignoring a non-segment entry in the WAL directory");
                    out.ignored.push(name);
                }
            }
        }
    }
    out.segments.sort_unstable_by_key(|(i, _)| *i);
    for w in out.segments.windows(2) {
        if w[0].0.checked_add(1) != Some(w[1].0) {
            return Err(Error::corruption(
                dir,
                None,
                format!(
                    "WAL segments are not contiguous: segment {:08} follows {:08}; the records of \
                     the missing segments are lost, move the later segments away to open the WAL",
                    w[1].0, w[0].0
                ),
            ));
        }
    }
    Ok(out)
}

/// The first and last segment index of `dir`, or `None` if it holds no segment. Errors if
/// the segments are not contiguous (see [`list_segments`]).
pub fn segment_range(dir: &Path) -> Result<Option<(u32, u32)>> {
    let l = list_segments(dir)?;
    Ok(match (l.segments.first(), l.segments.last()) {
        (Some(f), Some(l)) => Some((f.0, l.0)),
        _ => None,
    })
}

/// Deletes every segment of `dir` with an index below `index`, lowest first, so that an
/// interrupted deletion leaves a contiguous WAL, then syncs the directory.
pub fn delete_segments_before(dir: &Path, index: u32) -> Result<()> {
    let l = list_segments(dir)?;
    let mut deleted = false;
    for (i, path) in &l.segments {
        if *i >= index {
            break;
        }
        crate::fs::remove_file(path).at(path)?;
        deleted = true;
    }
    if deleted {
        sync_dir(dir)?;
    }
    Ok(())
}

pub(crate) use crate::fs::sync_dir;

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) {
        fs::write(dir.join(name), b"").unwrap();
    }

    #[test]
    fn names_are_eight_digit_decimal() {
        assert_eq!(
            segment_path(Path::new("w"), 12),
            Path::new("w").join("00000012")
        );
        assert_eq!(parse_segment_name("00000012"), Some(12));
        assert_eq!(parse_segment_name("7"), Some(7));
        assert_eq!(parse_segment_name("4294967295"), Some(u32::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            "1a",
            "00000001.repair",
            "4294967296",
            "checkpoint.1",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn listing_skips_and_reports_junk() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(segment_range(d.path()).unwrap(), None);
        touch(d.path(), "00000003");
        touch(d.path(), "00000002");
        touch(d.path(), "notes.txt");
        touch(d.path(), "00000004.repair");
        fs::create_dir(d.path().join("checkpoint.00000001")).unwrap();
        fs::create_dir(d.path().join("00000009")).unwrap();
        let l = list_segments(d.path()).unwrap();
        let idx: Vec<u32> = l.segments.iter().map(|s| s.0).collect();
        assert_eq!(idx, [2, 3]);
        let mut ignored: Vec<_> = l.ignored.iter().map(|s| s.to_str().unwrap()).collect();
        ignored.sort();
        assert_eq!(ignored, ["00000004.repair", "00000009", "notes.txt"]);
        assert_eq!(segment_range(d.path()).unwrap(), Some((2, 3)));
    }

    #[test]
    fn gap_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), "00000001");
        touch(d.path(), "00000003");
        let e = segment_range(d.path()).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e}");
        assert!(e.to_string().contains("not contiguous"), "{e}");
    }

    #[test]
    fn delete_before_keeps_the_rest() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..5 {
            touch(d.path(), &format!("{i:08}"));
        }
        delete_segments_before(d.path(), 3).unwrap();
        assert_eq!(segment_range(d.path()).unwrap(), Some((3, 4)));
        delete_segments_before(d.path(), 0).unwrap();
        assert_eq!(segment_range(d.path()).unwrap(), Some((3, 4)));
        delete_segments_before(d.path(), 10).unwrap();
        assert_eq!(segment_range(d.path()).unwrap(), None);
    }
}
