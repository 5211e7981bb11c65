//! Block directories inside a data directory: recognising them, leftovers of interrupted
//! writes and deletions (brief §1.1), deleting a block, measuring one.

use std::path::{Path, PathBuf};

use ulid::Ulid;

use super::writer::TMP_FOR_CREATION_SUFFIX;
use crate::error::{Error, IoContext, Result};
use crate::fs::sync_dir;

/// Suffix of a block directory being deleted.
pub const TMP_FOR_DELETION_SUFFIX: &str = ".tmp-for-deletion";
/// Suffix of temporary block directories written before Prometheus 2.21.
pub const TMP_LEGACY_SUFFIX: &str = ".tmp";

const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Parses a ULID the way Go's `ulid.ParseStrict` does: 26 Crockford base32 characters (either
/// case, no `I L O U` aliases), first character at most `7` so the value fits 128 bits.
pub fn parse_ulid_strict(s: &str) -> Option<Ulid> {
    let b = s.as_bytes();
    if b.len() != 26 || b[0] > b'7' {
        return None;
    }
    if !b
        .iter()
        .all(|c| CROCKFORD.contains(&c.to_ascii_uppercase()))
    {
        return None;
    }
    Ulid::from_string(s).ok()
}

/// Whether `name` is a temporary directory left by an interrupted block write or delete, a
/// checkpoint or a memory snapshot (Prometheus `isTmpDir`): a `.tmp-for-creation`,
/// `.tmp-for-deletion` or `.tmp` extension on a ULID, `checkpoint.*` or `chunk_snapshot.*`.
pub fn is_tmp_dir_name(name: &str) -> bool {
    let Some(dot) = name.rfind('.') else {
        return false;
    };
    let (stem, ext) = name.split_at(dot);
    if ext != TMP_FOR_CREATION_SUFFIX && ext != TMP_FOR_DELETION_SUFFIX && ext != TMP_LEGACY_SUFFIX
    {
        return false;
    }
    name.starts_with("checkpoint.")
        || name.starts_with("chunk_snapshot.")
        || parse_ulid_strict(stem).is_some()
}

/// Block directories of `data_dir` (subdirectories named by a ULID), sorted by ULID. Whether
/// they hold a readable block is left to [`Block::open`](super::Block::open).
pub fn list_block_dirs(data_dir: impl AsRef<Path>) -> Result<Vec<(Ulid, PathBuf)>> {
    let data_dir = data_dir.as_ref();
    let mut out = Vec::new();
    for e in std::fs::read_dir(data_dir).at(data_dir)? {
        let e = e.at(data_dir)?;
        if !e.file_type().at(e.path())?.is_dir() {
            continue;
        }
        if let Some(u) = e.file_name().to_str().and_then(parse_ulid_strict) {
            out.push((u, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes the temporary directories of `data_dir` (see [`is_tmp_dir_name`]), as Prometheus
/// does at open. Returns what it removed.
pub fn remove_tmp_dirs(data_dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let data_dir = data_dir.as_ref();
    let mut removed = Vec::new();
    for e in std::fs::read_dir(data_dir).at(data_dir)? {
        let e = e.at(data_dir)?;
        let is_dir = e.file_type().at(e.path())?.is_dir();
        if is_dir && e.file_name().to_str().is_some_and(is_tmp_dir_name) {
            let p = e.path();
            crate::fs::remove_dir_all(&p).at(&p)?;
            removed.push(p);
        }
    }
    if !removed.is_empty() {
        sync_dir(data_dir)?;
    }
    Ok(removed)
}

/// Deletes a block directory so that a crash never leaves a half-deleted block that looks
/// valid: rename to `<ULID>.tmp-for-deletion`, fsync the parent, then remove.
pub fn delete_block_dir(dir: impl AsRef<Path>) -> Result<()> {
    let dir = dir.as_ref();
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(Error::InvalidArgument(format!(
            "{} is not a block directory",
            dir.display()
        )));
    };
    let mut tmp_name = name.to_owned();
    tmp_name.push(TMP_FOR_DELETION_SUFFIX);
    let tmp = parent.join(tmp_name);
    crate::fs::rename(dir, &tmp).at(dir)?;
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    sync_dir(parent)?;
    crate::fs::remove_dir_all(&tmp).at(&tmp)
}

/// Total size of the regular files under `path`, recursively.
pub fn dir_size(path: impl AsRef<Path>) -> Result<u64> {
    let path = path.as_ref();
    let mut total = 0;
    for e in std::fs::read_dir(path).at(path)? {
        let e = e.at(path)?;
        let ft = e.file_type().at(e.path())?;
        if ft.is_dir() {
            total += dir_size(e.path())?;
        } else if ft.is_file() {
            total += e.metadata().at(e.path())?.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "01M8396A503TACQT84BKW870RK";

    #[test]
    fn ulids_are_parsed_strictly() {
        assert!(parse_ulid_strict(U).is_some());
        assert!(parse_ulid_strict(&U.to_lowercase()).is_some());
        assert!(parse_ulid_strict("81M8396A503TACQT84BKW870RK").is_none()); // overflows
        assert!(parse_ulid_strict("01M8396A503TACQT84BKW870R").is_none());
        assert!(parse_ulid_strict("01M8396A503TACQT84BKW870RI").is_none());
        assert!(parse_ulid_strict("01M8396A503TACQT84BKW870RU").is_none());
        assert!(parse_ulid_strict("wal").is_none());
    }

    #[test]
    fn tmp_dirs_are_recognised_like_prometheus() {
        for yes in [
            format!("{U}.tmp-for-creation"),
            format!("{U}.tmp-for-deletion"),
            format!("{U}.tmp"),
            "checkpoint.00000012.tmp".into(),
            "chunk_snapshot.000001.0000360448.tmp".into(),
        ] {
            assert!(is_tmp_dir_name(&yes), "{yes}");
        }
        for no in [
            U.to_string(),
            "wal".into(),
            "x.tmp".into(),
            format!("{U}.tmp-other"),
            "checkpoint.00000012".into(),
            "chunks_head".into(),
        ] {
            assert!(!is_tmp_dir_name(&no), "{no}");
        }
    }

    #[test]
    fn listing_cleaning_deleting_and_sizing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let b2 = "01M8396ANRP6M7K730VKK2CXKZ";
        for sub in [
            U.to_string(),
            b2.into(),
            "wal".into(),
            format!("{U}.tmp-for-creation"),
            format!("{b2}.tmp-for-deletion"),
            "chunks_head".into(),
        ] {
            std::fs::create_dir(p.join(&sub)).unwrap();
        }
        std::fs::write(p.join(U).join("f"), [0u8; 10]).unwrap();
        std::fs::create_dir(p.join(U).join("chunks")).unwrap();
        std::fs::write(p.join(U).join("chunks/000001"), [0u8; 7]).unwrap();
        std::fs::write(p.join("01M838CF9FNGQXVQW09DDMA4QK"), b"a file, not a block").unwrap();

        let blocks: Vec<_> = list_block_dirs(p)
            .unwrap()
            .into_iter()
            .map(|(u, _)| u.to_string())
            .collect();
        assert_eq!(blocks, [U, b2]);
        assert_eq!(dir_size(p.join(U)).unwrap(), 17);

        let mut removed = remove_tmp_dirs(p).unwrap();
        removed.sort();
        assert_eq!(
            removed,
            [
                p.join(format!("{U}.tmp-for-creation")),
                p.join(format!("{b2}.tmp-for-deletion"))
            ]
        );
        delete_block_dir(p.join(U)).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["01M838CF9FNGQXVQW09DDMA4QK", b2, "chunks_head", "wal"]
        );
    }
}
