//! Running the `annals` binary and the Prometheus 2.42 oracles (`promtool`, `prometheus`).
//!
//! Outside CI a missing oracle skips the calling test with a printed reason; with `CI=true`
//! it fails the test, because compatibility must be proven in CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `shared/fixtures/prometheus-2.42/<rel>`, beside the repository root.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/prometheus-2.42")
        .join(rel)
}

/// `shared/data/<rel>`.
pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel)
}

/// Finds an oracle binary in /usr/bin or on PATH; `None` (after printing why) to skip.
pub fn oracle(name: &str) -> Option<PathBuf> {
    let fixed = Path::new("/usr/bin").join(name);
    let found = if fixed.is_file() {
        Some(fixed)
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
    };
    match found {
        Some(p) => Some(p),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{name} is required in CI (apt-get install -y prometheus)")
        }
        None => {
            eprintln!("SKIPPED: {name} not found (apt-get install prometheus to run this test)");
            None
        }
    }
}

/// The `promtool` binary, or `None` to skip.
pub fn promtool() -> Option<PathBuf> {
    oracle("promtool")
}

/// Runs the `annals` binary.
pub fn annals(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(args)
        .output()
        .expect("spawn annals")
}

fn check(what: &str, args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs `annals` and returns its stdout, panicking with its output if it fails.
pub fn annals_ok(args: &[&str]) -> String {
    check("annals", args, annals(args))
}

/// Runs `annals`, expecting failure; returns stderr.
pub fn annals_err(args: &[&str]) -> String {
    let out = annals(args);
    assert!(
        !out.status.success(),
        "annals {args:?} should fail; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "annals {args:?}: {:?}",
        out.status
    );
    String::from_utf8(out.stderr).expect("UTF-8 stderr")
}

/// Runs promtool and returns its stdout, panicking with its output if it fails.
pub fn promtool_ok(promtool: &Path, args: &[&str]) -> String {
    let out = Command::new(promtool)
        .args(args)
        .output()
        .expect("spawn promtool");
    check("promtool", args, out)
}

/// `promtool tsdb dump` of `dir`. promtool 2.42 needs a `wal/` directory and writes into
/// the directory it dumps, so callers pass a scratch copy.
pub fn promtool_dump(promtool: &Path, dir: &Path, extra: &[&str]) -> String {
    std::fs::create_dir_all(dir.join("wal")).expect("create wal dir for promtool");
    let mut args = vec!["tsdb", "dump"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().expect("UTF-8 path"));
    promtool_ok(promtool, &args)
}

/// Copies a directory tree, making the copy writable (fixtures are read-only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy target");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
            let mut p = std::fs::metadata(&target).expect("stat").permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            p.set_readonly(false);
            std::fs::set_permissions(&target, p).expect("chmod");
        }
    }
}

/// Every file under `dir` with its bytes, and every directory (as `None`): a snapshot to
/// prove that a command changed nothing.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(dir).expect("read dir") {
            let e = e.expect("dir entry");
            let rel = e
                .path()
                .strip_prefix(base)
                .expect("under base")
                .to_path_buf();
            if e.file_type().expect("file type").is_dir() {
                out.insert(rel, None);
                walk(base, &e.path(), out);
            } else {
                out.insert(rel, Some(std::fs::read(e.path()).expect("read file")));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Block directories of `dir` by min time: (min time, path).
pub fn blocks_by_min_time(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("dir entry").path();
        let meta = p.join("meta.json");
        if meta.is_file() {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&meta).expect("read meta")).expect("json");
            out.push((v["minTime"].as_i64().expect("minTime"), p));
        }
    }
    out.sort();
    out
}

/// A meta.json without its ULIDs, for comparing blocks written at different times.
pub fn meta_without_ulids(block: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(block.join("meta.json")).expect("read meta"))
            .expect("json");
    v["ulid"] = serde_json::Value::Null;
    v["compaction"]["sources"] = serde_json::Value::Null;
    v
}

/// Parses a dump line into (labels, value, timestamp).
pub fn parse_dump_line(line: &str) -> (String, f64, i64) {
    let (rest, ts) = line.rsplit_once(' ').expect("timestamp field");
    let (labels, value) = rest.rsplit_once(' ').expect("value field");
    let v = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().expect("numeric value"),
    };
    (labels.to_owned(), v, ts.parse().expect("numeric timestamp"))
}

/// Asserts two dumps hold the same samples: same lines in the same order, values compared as
/// numbers (NaN equals NaN).
pub fn assert_same_samples(ours: &str, theirs: &str) {
    let a: Vec<_> = ours.lines().map(parse_dump_line).collect();
    let b: Vec<_> = theirs.lines().map(parse_dump_line).collect();
    assert_eq!(a.len(), b.len(), "number of samples");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let same_value = x.1 == y.1 || (x.1.is_nan() && y.1.is_nan());
        assert!(
            x.0 == y.0 && x.2 == y.2 && same_value,
            "line {}: ours {x:?}, promtool {y:?}",
            i + 1
        );
    }
}
