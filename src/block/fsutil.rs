//! File-system helpers of the block formats: read-only mappings, fsync of directories,
//! durable renames.

use std::fs::File;
use std::io::Write;
use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{IoContext, Result};

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
