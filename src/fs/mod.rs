//! The file layer: every file operation of the engine goes through this module, so that
//! tests can inject faults into it (see [`fault`], cargo feature `fault-injection`).
//!
//! [`File`] wraps `std::fs::File` (writes, fsyncs and `set_len` are hooked) and the free
//! functions mirror `std::fs` for the operations that change the tree. Reads and directory
//! listings go to `std::fs` directly: they change nothing a fault could corrupt. It also holds
//! the directory lock, read-only mappings, directory fsync and durable replacement of small
//! files. Without the feature the hooks are empty inline functions.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, IoContext, Result};

/// The kinds of file operation the plan counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(not(any(test, feature = "fault-injection")), allow(dead_code))]
pub enum Op {
    /// One `write(2)` on a file.
    Write,
    /// An fsync of a file or a directory.
    Sync,
    /// A rename.
    Rename,
    /// A read-only memory map of a file.
    Mmap,
    /// Opening a file for writing, creating a directory, a hard link or a copy.
    Create,
    /// Removing a file or a directory tree.
    Remove,
    /// Changing a file's length (`set_len`).
    Truncate,
}

#[cfg_attr(not(any(test, feature = "fault-injection")), allow(dead_code))]
impl Op {
    /// Every kind, in order.
    pub const ALL: [Op; 7] = [
        Op::Write,
        Op::Sync,
        Op::Rename,
        Op::Mmap,
        Op::Create,
        Op::Remove,
        Op::Truncate,
    ];
}

/// How a write proceeds.
#[cfg_attr(not(any(test, feature = "fault-injection")), allow(dead_code))]
pub(crate) enum WriteAction {
    All,
    /// Store this many bytes and report them.
    Short(usize),
    /// Store this many bytes, then fail.
    PartialThenFail(usize, io::Error),
}

#[cfg(any(test, feature = "fault-injection"))]
pub mod fault;
pub(crate) mod holders;

/// The hooks without fault injection: nothing to count, nothing fails.
#[cfg(not(any(test, feature = "fault-injection")))]
mod fault {
    use std::io;
    use std::path::Path;

    use super::{Op, WriteAction};

    #[inline(always)]
    pub(crate) fn check(_: Op, _: &Path) -> io::Result<()> {
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn check_write(_: &Path, _: usize) -> io::Result<WriteAction> {
        Ok(WriteAction::All)
    }

    #[inline(always)]
    pub(crate) fn synced_file(_: &std::fs::File, _: &Path) -> io::Result<()> {
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn synced_dir(_: &Path) -> io::Result<()> {
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn unlinking(_: &Path) {}
}

/// An open file whose writes, fsyncs and length changes go through the fault hooks. Carries
/// its path, for the hooks and for error messages.
#[derive(Debug)]
pub(crate) struct File {
    file: std::fs::File,
    path: PathBuf,
}

/// Options for opening a [`File`], as `std::fs::OpenOptions`.
#[derive(Debug, Clone)]
pub(crate) struct OpenOptions {
    opts: std::fs::OpenOptions,
    writes: bool,
}

impl OpenOptions {
    pub(crate) fn read(&mut self, on: bool) -> &mut Self {
        self.opts.read(on);
        self
    }
    pub(crate) fn write(&mut self, on: bool) -> &mut Self {
        self.opts.write(on);
        self.writes |= on;
        self
    }
    pub(crate) fn create(&mut self, on: bool) -> &mut Self {
        self.opts.create(on);
        self.writes |= on;
        self
    }
    pub(crate) fn create_new(&mut self, on: bool) -> &mut Self {
        self.opts.create_new(on);
        self.writes |= on;
        self
    }
    pub(crate) fn truncate(&mut self, on: bool) -> &mut Self {
        self.opts.truncate(on);
        self.writes |= on;
        self
    }
    /// Opens `path`; an open for writing counts as a [`Op::Create`].
    pub(crate) fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        if self.writes {
            fault::check(Op::Create, path)?;
        }
        Ok(File {
            file: self.opts.open(path)?,
            path: path.to_path_buf(),
        })
    }
}

impl File {
    /// Options for opening a file.
    pub(crate) fn options() -> OpenOptions {
        OpenOptions {
            opts: std::fs::OpenOptions::new(),
            writes: false,
        }
    }

    /// Creates (or truncates) `path` for writing.
    pub(crate) fn create(path: impl AsRef<Path>) -> io::Result<File> {
        File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// fsyncs data and metadata.
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        fault::check(Op::Sync, &self.path)?;
        self.file.sync_all()?;
        fault::synced_file(&self.file, &self.path)
    }

    /// fsyncs data (and the length).
    pub(crate) fn sync_data(&self) -> io::Result<()> {
        fault::check(Op::Sync, &self.path)?;
        self.file.sync_data()?;
        fault::synced_file(&self.file, &self.path)
    }

    /// Truncates or extends the file.
    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        fault::check(Op::Truncate, &self.path)?;
        self.file.set_len(len)
    }

    pub(crate) fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }

    /// The underlying file, for calls that change nothing (locks).
    fn std(&self) -> &std::fs::File {
        &self.file
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match fault::check_write(&self.path, buf.len())? {
            WriteAction::All => (&self.file).write(buf),
            WriteAction::Short(n) => (&self.file).write(&buf[..n]),
            WriteAction::PartialThenFail(n, e) => {
                (&self.file).write_all(&buf[..n])?;
                Err(e)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

/// `std::fs::create_dir_all`; counts as one [`Op::Create`] when something is missing.
pub(crate) fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    if path.is_dir() {
        return Ok(());
    }
    fault::check(Op::Create, path)?;
    std::fs::create_dir_all(path)
}

/// `std::fs::rename`.
pub(crate) fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    fault::check(Op::Rename, to)?;
    fault::unlinking(to);
    std::fs::rename(from, to)
}

/// `std::fs::remove_file`.
pub(crate) fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    fault::check(Op::Remove, path)?;
    fault::unlinking(path);
    std::fs::remove_file(path)
}

/// `std::fs::remove_dir_all` (one [`Op::Remove`] for the whole tree).
pub(crate) fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    fault::check(Op::Remove, path)?;
    fault::unlinking(path);
    std::fs::remove_dir_all(path)
}

/// `std::fs::hard_link`.
pub(crate) fn hard_link(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let to = to.as_ref();
    fault::check(Op::Create, to)?;
    std::fs::hard_link(from, to)
}

/// Copies `from` to `to` through a hooked [`File`], and fsyncs the copy.
pub(crate) fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let mut src = std::fs::File::open(from)?;
    let mut dst = File::create(to)?;
    io::copy(&mut src, &mut dst)?;
    dst.sync_all()
}

/// An exclusive `flock` on `<dir>/lock`, held while the database is open (as Prometheus does).
///
/// The kernel releases it when the process dies, so a lock file left behind by a crashed
/// process does not block reopening. Released on drop.
///
/// `flock` tells nothing about the holder, and a second open in the same process conflicts
/// with the first like another process would; so this process's held locks are also kept in a
/// registry (by the directory's device and inode), which turns that case into
/// [`Error::AlreadyOpen`].
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    key: DirKey,
}

/// Identity of a directory: device and inode on Unix (stable across symlinks, bind mounts
/// and `..`), the canonical path elsewhere.
#[cfg(unix)]
type DirKey = (u64, u64);
#[cfg(not(unix))]
type DirKey = PathBuf;

/// The directories this process holds locked.
static LOCKED: parking_lot::Mutex<Vec<DirKey>> = parking_lot::Mutex::new(Vec::new());

fn dir_key(dir: &Path) -> Result<DirKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(dir).at(dir)?;
        Ok((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        dir.canonicalize().at(dir)
    }
}

/// Whether `e` says the file system or the directory cannot be written.
pub(crate) fn is_not_writable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied
    )
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let key = dir_key(dir)?;
        let already_open = || Error::AlreadyOpen {
            dir: dir.to_path_buf(),
        };
        if LOCKED.lock().contains(&key) {
            return Err(already_open());
        }
        let path = dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| match is_not_writable(&e) {
                true => Error::NotWritable {
                    dir: dir.to_path_buf(),
                    source: e,
                },
                false => Error::io(&path, e),
            })?;
        // A child process forked by this program (before it execs) briefly shares the lock's
        // open file description, so a lock just released may still look held: retry shortly.
        for attempt in 0.. {
            match file.std().try_lock() {
                Ok(()) => {
                    #[allow(clippy::clone_on_copy)] // `Copy` on Unix only
                    LOCKED.lock().push(key.clone());
                    return Ok(DirLock { _file: file, key });
                }
                Err(std::fs::TryLockError::WouldBlock) if LOCKED.lock().contains(&key) => {
                    return Err(already_open());
                }
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

impl Drop for DirLock {
    fn drop(&mut self) {
        // Before the file (and with it the flock) is closed: a new open that finds the flock
        // free finds the registry free too.
        LOCKED.lock().retain(|k| *k != self.key);
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
        let file = std::fs::File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        if len == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        fault::check(Op::Mmap, path).at(path)?;
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

/// Maps an open file read-only (counted as one [`Op::Mmap`]). The caller states why the
/// mapped range is never truncated or rewritten while mapped.
pub(crate) fn map_read_only(file: &std::fs::File, path: &Path) -> Result<Mmap> {
    fault::check(Op::Mmap, path).at(path)?;
    // SAFETY: callers map only files that are appended to or deleted, never truncated or
    // rewritten while mapped (block files, head chunk files).
    unsafe { Mmap::map(file) }.at(path)
}

/// fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    (|| {
        fault::check(Op::Sync, dir)?;
        std::fs::File::open(dir)?.sync_all()?;
        fault::synced_dir(dir)
    })()
    .at(dir)
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
        rename(&tmp, path).at(path)?;
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_dir(parent)
    })();
    if res.is_err() {
        let _ = remove_file(&tmp);
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
        // The same process: said so (issue 16 item 7), not "another process".
        let err = DirLock::acquire(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::AlreadyOpen { .. }), "{err}");
        assert!(
            err.to_string().contains("already open in this process"),
            "{err}"
        );
        assert!(err.to_string().contains(&tmp.path().display().to_string()));
        // Through another path to the same directory, too.
        let other_path = tmp.path().join(".");
        let err = DirLock::acquire(&other_path).unwrap_err();
        assert!(matches!(err, Error::AlreadyOpen { .. }), "{err}");
        drop(first);
        // An flock this registry does not know (as another process holds it) is `Locked`.
        let foreign = std::fs::File::open(tmp.path().join("lock")).unwrap();
        foreign.try_lock().unwrap();
        let err = DirLock::acquire(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        assert!(err.to_string().contains("Db::open_read_only"), "{err}");
        drop(foreign);
        DirLock::acquire(tmp.path()).unwrap();
    }
}
