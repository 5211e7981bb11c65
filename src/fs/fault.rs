//! Fault injection for the file layer (cargo feature `fault-injection`, for tests only).
//!
//! A [`FaultPlan`] is installed on a directory tree. Every engine file operation on a path
//! under it is counted by [`Op`] kind, and the plan can make the n-th one fail with EIO,
//! ENOSPC, a short write, or a simulated power loss. Paths are matched as given (no
//! canonicalisation): install the plan with the same path the database is opened with.
//!
//! Power loss is simulated with a model of what is durable: the content of a file becomes
//! durable when it is fsynced, and the entries of a directory (creates, renames, removes)
//! when the directory is fsynced. Files are tracked by inode, so a rename or a hard link
//! carries durable content along, and a file unlinked while a durable directory still names
//! it keeps its durable content. After the power loss every later operation under the root
//! fails, and [`FaultPlan::restore_durable`] rewrites the tree to exactly the durable state.
//!
//! Unix only (inode numbers identify files).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

pub use super::Op;
use super::WriteAction;

/// What happens at the chosen operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with EIO and does nothing.
    Eio,
    /// The call fails with ENOSPC; a write first stores half of its bytes (a disk filling up
    /// in the middle of a write).
    Enospc,
    /// A write stores only half of its bytes and reports that count (`write(2)` may do so);
    /// callers must retry. Other operations proceed normally.
    ShortWrite,
    /// The call fails with EROFS (a read-only file system) and does nothing.
    ReadOnlyFs,
    /// The machine loses power: the call and every later one under the root fail, and
    /// [`FaultPlan::restore_durable`] then rewinds the tree to what was durable.
    PowerLoss,
}

#[derive(Debug, Clone, Copy)]
struct Trigger {
    /// `None`: the n-th operation of any kind.
    op: Option<Op>,
    nth: u64,
    fault: Fault,
}

/// A durable-state identity of a file or directory: stable across renames, new for a new
/// inode even if the file system reuses the number.
type Id = u64;

#[derive(Default)]
struct State {
    counts: BTreeMap<Op, u64>,
    total: u64,
    triggers: Vec<Trigger>,
    fired: Option<(Op, u64, Fault, PathBuf)>,
    powered_off: bool,
    live: HashMap<(u64, u64), Id>,
    next_id: Id,
    /// Durable content of files.
    content: HashMap<Id, Vec<u8>>,
    /// Durable entries of directories: name -> (id, is_dir).
    dirs: HashMap<Id, BTreeMap<OsString, (Id, bool)>>,
    root_id: Id,
}

impl State {
    fn id_of(&mut self, meta: &std::fs::Metadata) -> Id {
        let key = (meta.dev(), meta.ino());
        if let Some(id) = self.live.get(&key) {
            return *id;
        }
        self.next_id += 1;
        self.live.insert(key, self.next_id);
        self.next_id
    }

    /// Records `dir`'s current entries as durable, and (with `recursive`) everything below.
    fn snapshot_dir(&mut self, dir: &Path, recursive: bool) -> io::Result<Id> {
        let id = self.id_of(&std::fs::symlink_metadata(dir)?);
        let mut entries = BTreeMap::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let meta = std::fs::symlink_metadata(e.path())?;
            let child = self.id_of(&meta);
            if recursive {
                if meta.is_dir() {
                    self.snapshot_dir(&e.path(), true)?;
                } else {
                    self.content.insert(child, std::fs::read(e.path())?);
                }
            }
            entries.insert(e.file_name(), (child, meta.is_dir()));
        }
        self.dirs.insert(id, entries);
        Ok(id)
    }

    /// Forgets the inodes that an unlink of `path` frees, so that their numbers, if reused,
    /// get new identities. A file with other hard links stays known.
    fn forget(&mut self, path: &Path) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(path) {
                for e in rd.flatten() {
                    self.forget(&e.path());
                }
            }
        } else if meta.nlink() > 1 {
            return;
        }
        self.live.remove(&(meta.dev(), meta.ino()));
    }
}

struct Plan {
    root: PathBuf,
    state: Mutex<State>,
}

/// Number of installed plans: the fast path of every hook is one relaxed load of zero.
static INSTALLED: AtomicUsize = AtomicUsize::new(0);
static PLANS: Mutex<Vec<Arc<Plan>>> = Mutex::new(Vec::new());

fn plan_for(path: &Path) -> Option<Arc<Plan>> {
    if INSTALLED.load(Ordering::Relaxed) == 0 {
        return None;
    }
    PLANS
        .lock()
        .iter()
        .find(|p| path.starts_with(&p.root))
        .cloned()
}

fn power_loss_error() -> io::Error {
    io::Error::other("fault injection: simulated power loss")
}

fn injected(fault: Fault) -> io::Error {
    match fault {
        Fault::Enospc => io::Error::from_raw_os_error(28),
        Fault::ReadOnlyFs => io::Error::from_raw_os_error(30),
        _ => io::Error::from_raw_os_error(5),
    }
}

/// Counts one operation and says whether it fails (`Err`) or how a write proceeds.
fn decide(op: Op, path: &Path, len: usize) -> io::Result<WriteAction> {
    let Some(plan) = plan_for(path) else {
        return Ok(WriteAction::All);
    };
    let mut st = plan.state.lock();
    if st.powered_off {
        return Err(power_loss_error());
    }
    let n = {
        let c = st.counts.entry(op).or_default();
        *c += 1;
        *c
    };
    st.total += 1;
    let total = st.total;
    let Some(i) = st.triggers.iter().position(|t| match t.op {
        Some(k) => k == op && n == t.nth,
        None => total == t.nth,
    }) else {
        return Ok(WriteAction::All);
    };
    let t = st.triggers.remove(i);
    st.fired.get_or_insert((op, n, t.fault, path.to_path_buf()));
    let half = len / 2;
    match t.fault {
        Fault::PowerLoss => {
            st.powered_off = true;
            Err(power_loss_error())
        }
        Fault::Enospc if op == Op::Write && half > 0 => {
            Ok(WriteAction::PartialThenFail(half, injected(t.fault)))
        }
        Fault::Eio | Fault::Enospc | Fault::ReadOnlyFs => Err(injected(t.fault)),
        Fault::ShortWrite if op == Op::Write && half > 0 => Ok(WriteAction::Short(half)),
        Fault::ShortWrite => Ok(WriteAction::All),
    }
}

/// Counts an operation other than a write; `Err` makes the caller fail without doing it.
pub(crate) fn check(op: Op, path: &Path) -> io::Result<()> {
    decide(op, path, 0).map(|_| ())
}

/// Counts a write of `len` bytes and says how it proceeds.
pub(crate) fn check_write(path: &Path, len: usize) -> io::Result<WriteAction> {
    decide(Op::Write, path, len)
}

/// Records the content of `file` (at `path`) as durable after a successful fsync.
pub(crate) fn synced_file(file: &std::fs::File, path: &Path) -> io::Result<()> {
    let Some(plan) = plan_for(path) else {
        return Ok(());
    };
    let meta = file.metadata()?;
    // Read through the descriptor: the file may have been renamed since it was opened, and
    // may be open write-only.
    let data = read_fd(file, path)?;
    let mut st = plan.state.lock();
    if !st.powered_off {
        let id = st.id_of(&meta);
        st.content.insert(id, data);
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn read_fd(file: &std::fs::File, _path: &Path) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    std::fs::read(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

#[cfg(not(target_os = "linux"))]
fn read_fd(file: &std::fs::File, path: &Path) -> io::Result<Vec<u8>> {
    let (a, b) = (file.metadata()?, std::fs::metadata(path)?);
    if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
        return Err(io::Error::other(
            "fault injection: a synced file was renamed",
        ));
    }
    std::fs::read(path)
}

/// Records the entries of directory `path` as durable after a successful fsync.
pub(crate) fn synced_dir(path: &Path) -> io::Result<()> {
    let Some(plan) = plan_for(path) else {
        return Ok(());
    };
    let mut st = plan.state.lock();
    if !st.powered_off {
        st.snapshot_dir(path, false)?;
    }
    Ok(())
}

/// To be called before `path` is unlinked (removed, or replaced by a rename).
pub(crate) fn unlinking(path: &Path) {
    if let Some(plan) = plan_for(path) {
        plan.state.lock().forget(path);
    }
}

/// A fault plan installed on a directory tree; uninstalled when dropped.
///
/// Only one plan may cover a path; plans on disjoint trees (parallel tests in temporary
/// directories) are independent.
pub struct FaultPlan {
    plan: Arc<Plan>,
}

impl std::fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultPlan")
            .field("root", &self.plan.root)
            .finish_non_exhaustive()
    }
}

impl FaultPlan {
    /// Installs a plan on `root` (created if missing), which counts operations and injects
    /// nothing until [`inject`](Self::inject). Everything already under `root` counts as
    /// durable.
    ///
    /// # Panics
    /// If another installed plan covers `root` or a path under it.
    pub fn install(root: impl AsRef<Path>) -> io::Result<FaultPlan> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(&root)?;
        let mut st = State::default();
        st.root_id = st.snapshot_dir(&root, true)?;
        let plan = Arc::new(Plan {
            root: root.clone(),
            state: Mutex::new(st),
        });
        let mut plans = PLANS.lock();
        assert!(
            !plans
                .iter()
                .any(|p| p.root.starts_with(&root) || root.starts_with(&p.root)),
            "a fault plan already covers {}",
            root.display()
        );
        plans.push(plan.clone());
        INSTALLED.fetch_add(1, Ordering::Relaxed);
        Ok(FaultPlan { plan })
    }

    /// Makes the `nth` operation of kind `op` (1-based, counted since install) fail with
    /// `fault`. Each trigger fires once; several may be pending.
    pub fn inject(&self, op: Op, nth: u64, fault: Fault) {
        self.plan.state.lock().triggers.push(Trigger {
            op: Some(op),
            nth,
            fault,
        });
    }

    /// Cuts the power at the `nth` operation of any kind (1-based, counted since install).
    pub fn power_loss_at(&self, nth: u64) {
        self.plan.state.lock().triggers.push(Trigger {
            op: None,
            nth,
            fault: Fault::PowerLoss,
        });
    }

    /// Operations counted so far, by kind.
    pub fn counts(&self) -> BTreeMap<Op, u64> {
        self.plan.state.lock().counts.clone()
    }

    /// Operations of every kind counted so far.
    pub fn total(&self) -> u64 {
        self.plan.state.lock().total
    }

    /// The operation the first fault was injected into: kind, its number, the fault and the
    /// path; `None` if no trigger has been reached.
    pub fn fired(&self) -> Option<(Op, u64, Fault, PathBuf)> {
        self.plan.state.lock().fired.clone()
    }

    /// Whether a power loss has happened.
    pub fn powered_off(&self) -> bool {
        self.plan.state.lock().powered_off
    }

    /// Uninstalls the plan and rewrites the tree under the root to its durable state: files
    /// hold their content as of their last fsync (empty if never fsynced), and directories
    /// hold the entries they had at their last fsync. The database using the tree must be
    /// dropped first.
    pub fn restore_durable(self) -> io::Result<()> {
        self.restore(None)
    }

    /// Like [`restore_durable`](Self::restore_durable), but a file that only grew since its
    /// last fsync also keeps a pseudo-random part (chosen by `seed`, possibly none or all)
    /// of the bytes appended since: the OS may have written some of them back before the
    /// power failed, cutting a record anywhere.
    pub fn restore_torn(self, seed: u64) -> io::Result<()> {
        self.restore(Some(seed))
    }

    fn restore(self, torn_seed: Option<u64>) -> io::Result<()> {
        self.uninstall();
        let mut st = self.plan.state.lock();
        let root = &self.plan.root;
        if let Some(mut seed) = torn_seed {
            let mut files = Vec::new();
            live_files(root, &mut files)?;
            for (meta, path) in files {
                let Some(&id) = st.live.get(&(meta.dev(), meta.ino())) else {
                    continue;
                };
                let live = std::fs::read(&path)?;
                let durable = st.content.get(&id).map_or(&[][..], |v| v.as_slice());
                if live.len() > durable.len() && live.starts_with(durable) {
                    // xorshift
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let extra = (live.len() - durable.len()) as u64;
                    let keep = durable.len() + (seed % (extra + 1)) as usize;
                    st.content.insert(id, live[..keep].to_vec());
                }
            }
        }
        for e in std::fs::read_dir(root)? {
            let p = e?.path();
            if std::fs::symlink_metadata(&p)?.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else {
                std::fs::remove_file(&p)?;
            }
        }
        write_durable(&st, st.root_id, root, 0)
    }

    fn uninstall(&self) {
        let mut plans = PLANS.lock();
        let before = plans.len();
        plans.retain(|p| !Arc::ptr_eq(p, &self.plan));
        if plans.len() < before {
            INSTALLED.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for FaultPlan {
    fn drop(&mut self) {
        self.uninstall();
    }
}

fn live_files(dir: &Path, out: &mut Vec<(std::fs::Metadata, PathBuf)>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let meta = std::fs::symlink_metadata(&p)?;
        if meta.is_dir() {
            live_files(&p, out)?;
        } else if meta.is_file() {
            out.push((meta, p));
        }
    }
    Ok(())
}

fn write_durable(st: &State, dir_id: Id, at: &Path, depth: usize) -> io::Result<()> {
    // Entries recorded at different times could in theory form a cycle; real trees are
    // shallow.
    if depth > 32 {
        return Ok(());
    }
    let Some(entries) = st.dirs.get(&dir_id) else {
        return Ok(());
    };
    for (name, (id, is_dir)) in entries {
        let p = at.join(name);
        if *is_dir {
            std::fs::create_dir(&p)?;
            write_durable(st, *id, &p, depth + 1)?;
        } else {
            let data = st.content.get(id).map_or(&[][..], |v| v.as_slice());
            std::fs::write(&p, data)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{self, File};
    use std::io::Write;

    fn tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut out = BTreeMap::new();
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if p.is_dir() {
                    out.insert(rel, None);
                    walk(root, &p, out);
                } else {
                    out.insert(rel, Some(std::fs::read(&p).unwrap()));
                }
            }
        }
        walk(root, root, &mut out);
        out
    }

    #[test]
    fn power_loss_keeps_exactly_what_was_synced() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("db");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("old"), b"old").unwrap();
        let plan = FaultPlan::install(&root).unwrap();

        // Synced content and synced entry: survives.
        let mut f = File::create(root.join("a")).unwrap();
        f.write_all(b"durable").unwrap();
        f.sync_all().unwrap();
        f.write_all(b" lost tail").unwrap();
        // Never synced content, synced entry: empty.
        let mut g = File::create(root.join("b")).unwrap();
        g.write_all(b"lost").unwrap();
        fs::sync_dir(&root).unwrap();
        // Synced content, entry never synced: gone.
        let mut h = File::create(root.join("c")).unwrap();
        h.write_all(b"x").unwrap();
        h.sync_all().unwrap();
        // An unsynced rename and an unsynced remove are undone.
        fs::rename(root.join("a"), root.join("a2")).unwrap();
        fs::remove_file(root.join("old")).unwrap();
        // A directory created and synced inside, but not in its parent: gone.
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::sync_dir(&root.join("sub")).unwrap();

        plan.power_loss_at(plan.total() + 1);
        assert!(
            matches!(fs::remove_file(root.join("b")), Err(e) if e.to_string().contains("power loss"))
        );
        assert!(plan.powered_off());
        plan.restore_durable().unwrap();
        let expect: BTreeMap<String, Option<Vec<u8>>> = [
            ("a".to_string(), Some(b"durable".to_vec())),
            ("b".to_string(), Some(Vec::new())),
            ("old".to_string(), Some(b"old".to_vec())),
        ]
        .into_iter()
        .collect();
        assert_eq!(tree(&root), expect);
    }

    #[test]
    fn synced_rename_and_replaced_file_keep_durable_content() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        let plan = FaultPlan::install(&root).unwrap();
        fs::write_atomic(&root.join("m"), b"one").unwrap();
        // Written and renamed over `m` without the final directory fsync: `m` keeps "one".
        let mut f = File::create(root.join("m.tmp")).unwrap();
        f.write_all(b"two").unwrap();
        f.sync_all().unwrap();
        fs::rename(root.join("m.tmp"), root.join("m")).unwrap();
        plan.power_loss_at(plan.total() + 1);
        assert!(fs::sync_dir(&root).is_err());
        plan.restore_durable().unwrap();
        assert_eq!(std::fs::read(root.join("m")).unwrap(), b"one");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
    }

    #[test]
    fn torn_restore_keeps_a_prefix_of_the_unsynced_tail() {
        let mut lens = std::collections::BTreeSet::new();
        for seed in 1..40 {
            let d = tempfile::tempdir().unwrap();
            let root = d.path().to_path_buf();
            let plan = FaultPlan::install(&root).unwrap();
            let mut f = File::create(root.join("f")).unwrap();
            f.write_all(b"abc").unwrap();
            f.sync_all().unwrap();
            fs::sync_dir(&root).unwrap();
            f.write_all(b"defgh").unwrap();
            plan.power_loss_at(plan.total() + 1);
            assert!(f.sync_all().is_err());
            plan.restore_torn(seed).unwrap();
            let got = std::fs::read(root.join("f")).unwrap();
            assert!(got.len() >= 3 && b"abcdefgh".starts_with(&got), "{got:?}");
            lens.insert(got.len());
        }
        assert!(lens.len() > 3, "{lens:?}");
    }

    #[test]
    fn counts_and_injects_by_kind() {
        let d = tempfile::tempdir().unwrap();
        let plan = FaultPlan::install(d.path()).unwrap();
        plan.inject(Op::Write, 2, Fault::Enospc);
        let p = d.path().join("f");
        let mut f = File::create(&p).unwrap();
        f.write_all(b"abcd").unwrap();
        let e = f.write_all(b"efgh").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(std::fs::read(&p).unwrap(), b"abcdef");
        assert!(matches!(
            plan.fired(),
            Some((Op::Write, 2, Fault::Enospc, _))
        ));
        // One-shot: later writes succeed.
        f.write_all(b"!").unwrap();

        plan.inject(Op::Write, 4, Fault::ShortWrite);
        f.write_all(b"1234").unwrap(); // retried by write_all
        assert_eq!(std::fs::read(&p).unwrap(), b"abcdef!1234");
        assert_eq!(plan.counts()[&Op::Write], 5);
        assert_eq!(plan.counts()[&Op::Create], 1);

        plan.inject(Op::Rename, 1, Fault::Eio);
        let e = fs::rename(&p, d.path().join("g")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5));
        assert!(p.exists());
    }

    #[test]
    fn paths_outside_the_root_are_not_counted() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        let plan = FaultPlan::install(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        assert_eq!(plan.total(), 0);
        fs::create_dir_all(a.join("x")).unwrap();
        assert_eq!(plan.total(), 1);
    }
}
