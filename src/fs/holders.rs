//! Finding a live Prometheus on a data directory (issue 16 item 11).
//!
//! Prometheus 2.42 as packaged here takes no `lock` file in its data directory, so the
//! directory lock cannot exclude it. What a running Prometheus server (or agent) always has is
//! its WAL's current segment open for writing (`O_WRONLY|O_APPEND`), and a server also maps
//! `queries.active`. Before a read-write open, after the lock is taken (so no annals process
//! holds the directory), we look through `/proc` for a process with either: it is writing to
//! the directory and opening it read-write would corrupt both.
//!
//! What this can see: processes of the same user, or all of them when running as root; on
//! Linux only (elsewhere nothing is found). What it cannot exclude: a Prometheus started
//! *after* annals opened the directory, unless that Prometheus takes the lock file
//! (Prometheus without `--storage.tsdb.no-lockfile` flocks `<dir>/lock`, as annals does).

use std::path::{Path, PathBuf};

/// A process found writing to a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    /// `/proc/<pid>/comm`.
    pub(crate) process: String,
    /// The file of the directory it holds open for writing or maps.
    pub(crate) file: PathBuf,
}

/// The first other process writing to `dir` (see the module docs), if any.
#[cfg(target_os = "linux")]
pub(crate) fn foreign_writer(dir: &Path) -> Option<Holder> {
    let dir = dir.canonicalize().ok()?;
    let queries = dir.join("queries.active");
    let wal = dir.join("wal");
    if !queries.exists() && !wal.is_dir() {
        return None; // Nothing a Prometheus would hold: a new or annals-only directory.
    }
    let me = std::process::id();
    // A child this process forked and has not yet exec'd (std's `Command` on another thread)
    // shares every descriptor, the WAL's included, for a moment: it runs this program's own
    // executable, which no Prometheus does, and after exec the descriptors (close-on-exec)
    // are gone. Another annals process would hold the directory's flock, found before this.
    let my_exe = std::fs::read_link("/proc/self/exe").ok();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        if my_exe.is_some() && std::fs::read_link(format!("/proc/{pid}/exe")).ok() == my_exe {
            continue;
        }
        if let Some(file) = writing_in(pid, &queries, &wal) {
            let process = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|s| s.trim_end().to_owned())
                .unwrap_or_else(|_| "unknown".into());
            return Some(Holder { pid, process, file });
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn foreign_writer(_dir: &Path) -> Option<Holder> {
    None
}

/// The file through which process `pid` writes in the directory: `queries.active` open or
/// mapped, or a file of `wal/` open for writing. Unreadable `/proc` entries (other users'
/// processes, processes that just exited) count as nothing.
#[cfg(target_os = "linux")]
fn writing_in(pid: u32, queries: &Path, wal: &Path) -> Option<PathBuf> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut in_dir = false;
    let dir = queries.parent()?;
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if !target.starts_with(dir) {
            continue;
        }
        in_dir = true;
        if target == queries {
            return Some(target);
        }
        if target.parent() == Some(wal) && open_for_writing(pid, &fd.file_name()) {
            return Some(target);
        }
    }
    // A mapping outlives the descriptor (Prometheus may close the file of queries.active
    // after mapping it); only read the maps of a process with a file in the directory.
    if in_dir {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
        let q = queries.to_str()?;
        if maps.lines().any(|l| l.ends_with(q)) {
            return Some(queries.to_path_buf());
        }
    }
    None
}

/// Whether descriptor `fd` of `pid` is open for writing (`flags` of `/proc/<pid>/fdinfo/<fd>`,
/// octal, access mode in the low two bits).
#[cfg(target_os = "linux")]
fn open_for_writing(pid: u32, fd: &std::ffi::OsStr) -> bool {
    let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.to_string_lossy()))
    else {
        return false;
    };
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o3 != 0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_child_writing_a_wal_segment_is_found_and_a_reader_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let wal = tmp.path().join("wal");
        std::fs::create_dir(&wal).unwrap();
        let seg = wal.join("00000000");
        std::fs::write(&seg, b"").unwrap();
        assert_eq!(foreign_writer(tmp.path()), None);
        // A reader (as promtool or Db::open_read_only) is not a writer.
        let mut reader = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 3<'{}'; exec sleep 30", seg.display()))
            .spawn()
            .unwrap();
        let mut writer = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 3>>'{}'; exec sleep 30", seg.display()))
            .spawn()
            .unwrap();
        let seg = seg.canonicalize().unwrap();
        let mut found = None;
        for _ in 0..200 {
            found = foreign_writer(tmp.path());
            if found.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = writer.kill();
        let _ = writer.wait();
        let found = found.expect("the writer is found");
        assert_eq!(found.pid, writer.id());
        assert_eq!(found.file, seg);
        assert_eq!(
            foreign_writer(tmp.path()),
            None,
            "the reader alone is not a writer"
        );
        let _ = reader.kill();
        let _ = reader.wait();
    }
    /// Not a test on its own: the child of
    /// `a_process_of_this_executable_is_not_a_foreign_writer`, which holds the file named by
    /// `ANNALS_TEST_HOLD_FOR_WRITING` open for writing for a while.
    #[test]
    fn hold_for_writing_child() {
        if let Ok(p) = std::env::var("ANNALS_TEST_HOLD_FOR_WRITING") {
            let _f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
            std::thread::sleep(std::time::Duration::from_secs(30));
        }
    }

    /// A child forked by this process shares its descriptors until it execs; one that runs
    /// this executable (the moment between fork and exec looks like that) is not taken for a
    /// Prometheus writing the WAL.
    #[test]
    fn a_process_of_this_executable_is_not_a_foreign_writer() {
        let tmp = tempfile::tempdir().unwrap();
        let wal = tmp.path().join("wal");
        std::fs::create_dir(&wal).unwrap();
        let seg = wal.join("00000000");
        std::fs::write(&seg, b"").unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "fs::holders::tests::hold_for_writing_child",
                "--nocapture",
            ])
            .env("ANNALS_TEST_HOLD_FOR_WRITING", &seg)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        let mut holding = false;
        for _ in 0..500 {
            holding =
                writing_in(child.id(), &dir.join("queries.active"), &dir.join("wal")).is_some();
            if holding {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let found = foreign_writer(tmp.path());
        let _ = child.kill();
        let _ = child.wait();
        assert!(holding, "the child opened the segment for writing");
        assert_eq!(
            found, None,
            "a process of this executable is not a foreign writer"
        );
    }
}
