//! File-system helpers shared by every part that touches disk: the directory lock, read-only
//! mappings, directory fsync and durable replacement of small files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, IoContext, Result};

/// An exclusive `flock` on `<dir>/lock`, held while the database is open (as Prometheus does).
///
/// The kernel releases it when the process dies, so a lock file left behind by a crashed
/// process does not block reopening. Released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        // A child process forked by this program (before it execs) briefly shares the lock's
        // open file description, so a lock just released may still look held: retry shortly.
        for attempt in 0.. {
            match file.try_lock() {
                Ok(()) => return Ok(DirLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if attempt < 10 => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => break,
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Locked {
            dir: dir.to_path_buf(),
        })
    }
}

/// The bytes of a file: a read-only memory map, or an owned buffer (tests, fuzzing, files
/// too small to map).
pub(crate) enum FileBytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Maps `path` read-only. Empty files are held as an empty buffer (mapping zero bytes is
    /// not portable).
    pub(crate) fn open(path: &Path) -> Result<FileBytes> {
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        if len == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: block files are immutable once their block directory exists (they are
        // written under a temporary name and renamed into place). Truncation by another
        // process would fault, as it does for Prometheus, which maps the same files.
        let map = unsafe { Mmap::map(&file) }.at(path)?;
        Ok(FileBytes::Mapped(map))
    }
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            FileBytes::Mapped(_) => "mapped",
            FileBytes::Owned(_) => "owned",
        };
        write!(f, "FileBytes({kind}, {} bytes)", self.len())
    }
}

/// fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Writes `data` to `path` durably: `path.tmp`, fsync, rename over `path`, fsync the
/// directory (Prometheus `fileutil.Replace`). A crash leaves the old file or the new one.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let res = (|| {
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(data).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        drop(f);
        std::fs::rename(&tmp, path).at(path)?;
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_dir(parent)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(tmp.path()).unwrap();
        let err = DirLock::acquire(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::Locked { .. }));
        assert!(err.to_string().contains(&tmp.path().display().to_string()));
        drop(first);
        DirLock::acquire(tmp.path()).unwrap();
    }
}
