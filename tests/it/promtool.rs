//! Running the real `promtool` (Prometheus 2.42) as the compatibility oracle.
//!
//! Outside CI a missing promtool skips the calling test with a printed reason; with `CI=true`
//! it fails the test, because compatibility must be proven in CI.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The promtool binary, or `None` (after printing why) when the test should skip.
pub fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("promtool is required in CI (apt-get install -y prometheus)")
        }
        None => {
            eprintln!(
                "SKIPPED: promtool not found on PATH (apt-get install prometheus to run this)"
            );
            None
        }
    }
}

/// Runs `promtool` with `args`, panicking with its output if it fails. Returns stdout.
pub fn run(promtool: &Path, args: &[&str]) -> String {
    let out = Command::new(promtool)
        .args(args)
        .output()
        .expect("spawn promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("promtool prints UTF-8")
}

/// `promtool tsdb dump` of `dir` (blocks, WAL and head chunks), as sorted lines.
///
/// promtool 2.42 needs a `wal/` directory and writes a sandbox and `chunks_head/` into `dir`,
/// so callers pass a scratch copy.
pub fn dump(promtool: &Path, dir: &Path, extra: &[&str]) -> Vec<String> {
    std::fs::create_dir_all(dir.join("wal")).expect("create wal dir for promtool");
    let dir = dir.to_str().expect("utf-8 path");
    let mut args = vec!["tsdb", "dump"];
    args.extend_from_slice(extra);
    args.push(dir);
    let mut lines: Vec<String> = run(promtool, &args).lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Copies a directory tree (fixtures are read-only and promtool writes into what it reads).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy target");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Parses a `promtool tsdb dump` line into (labels text, value, timestamp).
pub fn parse_dump_line(line: &str) -> (String, f64, i64) {
    let (rest, ts) = line.rsplit_once(' ').expect("timestamp field");
    let (labels, value) = rest.rsplit_once(' ').expect("value field");
    let v = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().expect("numeric value"),
    };
    (labels.to_owned(), v, ts.parse().expect("integer timestamp"))
}
