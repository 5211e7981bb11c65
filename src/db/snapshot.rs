//! Snapshots: a consistent copy of the database as a data directory (brief §2.6).

use std::path::Path;

use super::Db;
use crate::block::{self, BlockId, BlockOptions};
use crate::compact;
use crate::error::{Error, IoContext, Result};

/// Hard-links `from` to `to`, copying when a link is impossible (another file system).
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if crate::fs::hard_link(from, to).is_err() {
        crate::fs::copy(from, to).at(to)?;
    }
    Ok(())
}

impl Db {
    /// Writes a consistent copy of the database into `dir` (created if missing; it must not be
    /// the database's own directory): every block hard-linked (copied across file systems)
    /// and, with `with_head`, the head's samples written as one more block. The result is a
    /// data directory that annals and Prometheus open. Returns the ids of the blocks written into `dir`
    /// (their directory names).
    pub fn snapshot(&self, dir: impl AsRef<Path>, with_head: bool) -> Result<Vec<BlockId>> {
        let dir = dir.as_ref();
        if let Some(own) = self.dir() {
            let same = |a: &Path, b: &Path| {
                a.canonicalize()
                    .ok()
                    .is_some_and(|a| Some(a) == b.canonicalize().ok())
            };
            if same(own, dir) {
                return Err(Error::InvalidArgument(format!(
                    "cannot snapshot {} into itself",
                    dir.display()
                )));
            }
        }
        crate::fs::create_dir_all(dir).at(dir)?;
        // No compaction or retention may delete a block while it is being linked.
        let _one_at_a_time = self.inner.compacting.lock();
        let mut written = Vec::new();
        for b in self.inner.blocks.current().iter() {
            let target = dir.join(b.ulid().to_string());
            crate::fs::create_dir_all(target.join("chunks")).at(&target)?;
            for f in [
                block::meta::FILE_NAME,
                "index",
                crate::tombstones::FILE_NAME,
            ] {
                let from = b.dir().join(f);
                if from.exists() {
                    link_or_copy(&from, &target.join(f))?;
                }
            }
            for e in std::fs::read_dir(b.dir().join("chunks")).at(b.dir())? {
                let e = e.at(b.dir())?;
                link_or_copy(&e.path(), &target.join("chunks").join(e.file_name()))?;
            }
            crate::fs::sync_dir(&target.join("chunks"))?;
            crate::fs::sync_dir(&target)?;
            written.push(b.ulid().into());
        }
        if with_head {
            let head = &self.inner.head;
            if let (Some(min), Some(max)) = (head.min_time(), head.max_time()) {
                let opts = BlockOptions {
                    time_range: Some((min, block::meta::end_after(max))),
                    ..BlockOptions::default()
                };
                written.extend(
                    compact::write(dir, &[&head.range(min, max)], opts)?
                        .into_iter()
                        .map(BlockId::from),
                );
            }
        }
        crate::fs::sync_dir(dir)?;
        Ok(written)
    }
}
