//! File-system helpers.

use std::fs::{File, OpenOptions};
use std::path::Path;

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

/// fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
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
