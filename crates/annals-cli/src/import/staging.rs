//! The staging directory of an import: `.annals-import-<pid>.tmp` inside the output directory,
//! holding the spill files and the blocks being written. While the import runs, an exclusive
//! `flock` on its `lock` file marks it live; the kernel drops that lock when the process dies,
//! however it dies. An import killed with SIGKILL leaves its directory behind (about the size
//! of the decompressed input): the next import removes every staging directory whose lock is
//! free, and `annals list`/`dump`/`analyze` name them ([`find_leftovers`]).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::ImportError;

const PREFIX: &str = ".annals-import-";
const SUFFIX: &str = ".tmp";
const LOCK: &str = "lock";

/// A staging directory that no running import holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The directory.
    pub path: PathBuf,
    /// The id of the process that created it.
    pub pid: u32,
    /// Bytes of the files in it.
    pub bytes: u64,
}

/// The live staging directory of this process's import; removed when dropped.
pub(super) struct Staging {
    path: PathBuf,
    _lock: File,
}

impl Staging {
    /// Creates (or recreates) this process's staging directory in `out_dir` and locks it.
    pub(super) fn create(out_dir: &Path) -> Result<Staging, ImportError> {
        let path = out_dir.join(format!("{PREFIX}{}{SUFFIX}", std::process::id()));
        let at = |p: &Path| {
            let p = p.to_path_buf();
            move |e| ImportError::Io { path: p, source: e }
        };
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at(&path)(e)),
            _ => {}
        }
        std::fs::create_dir(&path).map_err(at(&path))?;
        let lock_path = path.join(LOCK);
        let lock = File::create(&lock_path).map_err(at(&lock_path))?;
        if !try_lock(&lock).map_err(at(&lock_path))? {
            // Only another import in this very process could hold it.
            return Err(ImportError::Io {
                path,
                source: io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "another import in this process writes to the same directory",
                ),
            });
        }
        Ok(Staging { path, _lock: lock })
    }

    /// The directory.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                eprintln!("warning: could not remove {}: {e}", self.path.display());
            }
        }
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: `Ok(false)` if another open file description holds it.
fn try_lock(f: &File) -> io::Result<bool> {
    // SAFETY: flock on a file descriptor this `File` owns; no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Whether process `pid` exists (signal 0 probes without sending anything).
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks permissions and existence.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether the staging directory `dir` of process `pid` is abandoned: its lock is free, or it
/// has no lock file (created by an older version, or just created by a live import that has not
/// locked it yet: then the process still exists).
fn abandoned(dir: &Path, pid: u32) -> io::Result<bool> {
    match File::open(dir.join(LOCK)) {
        Ok(f) => try_lock(&f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(!process_exists(pid)),
        Err(e) => Err(e),
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// Staging directories in `dir` left by imports that are no longer running. Read-only.
pub fn find_leftovers(dir: &Path) -> io::Result<Vec<Leftover>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        if entry.file_type()?.is_dir() && abandoned(&path, pid)? {
            out.push(Leftover {
                bytes: dir_bytes(&path),
                path,
                pid,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Removes the leftovers of [`find_leftovers`] and returns what was removed.
pub fn remove_leftovers(dir: &Path) -> Result<Vec<Leftover>, ImportError> {
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    let found = find_leftovers(dir).map_err(io_at(dir))?;
    for l in &found {
        std::fs::remove_dir_all(&l.path).map_err(io_at(&l.path))?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited_pid() -> u32 {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        pid
    }

    #[test]
    fn only_directories_nobody_holds_are_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        // A live staging directory of this process.
        let live = Staging::create(dir.path()).unwrap();
        // A locked-directory leftover of a dead process (lock file present, lock free).
        let dead = exited_pid();
        let locked = dir.path().join(format!("{PREFIX}{dead}{SUFFIX}"));
        std::fs::create_dir(&locked).unwrap();
        std::fs::write(locked.join(LOCK), b"").unwrap();
        std::fs::write(locked.join("spill"), vec![0u8; 1000]).unwrap();
        // An unrelated directory and file.
        std::fs::create_dir(dir.path().join("01ARZ3NDEKTSV4RRFFQ69G5FAV")).unwrap();
        std::fs::write(dir.path().join(".annals-import-x.tmp"), b"").unwrap();

        let found = find_leftovers(dir.path()).unwrap();
        assert_eq!(
            found,
            vec![Leftover {
                path: locked.clone(),
                pid: dead,
                bytes: 1000
            }]
        );
        assert_eq!(remove_leftovers(dir.path()).unwrap(), found);
        assert!(!locked.exists());
        assert!(live.path().exists(), "a live import's directory is kept");
        drop(live);
        assert!(find_leftovers(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn without_a_lock_file_the_process_decides() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir
            .path()
            .join(format!("{PREFIX}{}{SUFFIX}", std::process::id()));
        std::fs::create_dir(&mine).unwrap();
        let dead = dir.path().join(format!("{PREFIX}{}{SUFFIX}", exited_pid()));
        std::fs::create_dir(&dead).unwrap();
        let found: Vec<PathBuf> = find_leftovers(dir.path())
            .unwrap()
            .into_iter()
            .map(|l| l.path)
            .collect();
        assert_eq!(found, vec![dead]);
    }
}
