//! Corruption sweeps: bit flips, truncations and zeroed ranges in every file kind of a data
//! directory (block meta.json, index, chunk segment, tombstones; WAL segments, the last WAL
//! segment, the checkpoint; the lock file). After each mutation the directory is opened and
//! everything queried. Allowed outcomes:
//!
//! - the original data exactly (damage in padding, or in bytes nothing reads);
//! - a typed error naming the damaged file (`Corruption`, with an offset inside the file when
//!   it has one; `Unsupported`; a bad `meta.json` version), and for a block, with
//!   `skip_unreadable_blocks`, the data of every other block and the head;
//! - a documented repair: damage in the last WAL segment truncates it, and the data is then
//!   exactly what it was after some earlier operation; with `Recovery::TruncateAtCorruption`
//!   damage anywhere in the WAL leaves only samples that were committed.
//!
//! Never a panic, a hang, an out-of-memory or a wrong answer. Each file kind runs in a child
//! process (this test binary again) under `RLIMIT_AS`, so an allocation sized by a damaged
//! length field aborts the child and fails the test; every open runs in a thread with a
//! timeout, so a hang fails it too; a panic fails it as a panic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use annals::unstable::block::Meta;
use annals::{Db, Error, Labels, Matcher, Options, Recovery, ReplayStats, WalSync};

use crate::support::{self, Dump};

const KIND_ENV: &str = "ANNALS_CORRUPTION_KIND";
const MEMORY_LIMIT: u64 = 2 << 30;
const OPEN_TIMEOUT: Duration = Duration::from_secs(120);
const STEP: i64 = 5 * 60 * 1000;
const HOUR: i64 = 3_600_000;
const SERIES: usize = 12;

fn opts() -> Options {
    let mut o = Options::default();
    o.wal_sync = WalSync::EveryCommit;
    o.wal_segment_size = 32 * 1024;
    o.compaction = false;
    o.retention_ms = None;
    o
}

fn labels(i: usize) -> Labels {
    Labels::new([
        ("__name__", "corrupt"),
        ("i", &i.to_string()),
        ("pad", &"p".repeat(i * 7)),
    ])
    .unwrap()
}

/// The base directory and what it held after each operation.
struct Base {
    dir: tempfile::TempDir,
    /// The data after every operation (commit or delete), in order; the last is the final.
    states: Vec<Dump>,
    /// Index in `states` of the first state after the last compaction: a repaired last WAL
    /// segment can only lose operations after it.
    after_last_compaction: usize,
    /// Every sample ever committed (deleted ones included).
    committed: BTreeMap<String, BTreeSet<(i64, u64)>>,
}

impl Base {
    fn final_state(&self) -> &Dump {
        self.states.last().expect("at least one operation")
    }
}

/// Blocks with tombstones, a WAL of several segments with a checkpoint, head deletions in the
/// WAL, and a lock file.
fn build_base() -> Base {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut states = Vec::new();
    let mut committed: BTreeMap<String, BTreeSet<(i64, u64)>> = BTreeMap::new();
    let mut after_last_compaction = 0;
    let mut refs = [None; SERIES];
    for c in 0..150i64 {
        let mut app = db.appender();
        for (i, r) in refs.iter_mut().enumerate() {
            let (t, v) = (c * STEP + i as i64, (c * 31 + i as i64) as f64 * 0.25);
            *r = Some(app.append(*r, &labels(i), t, v).unwrap());
            committed
                .entry(labels(i).to_string())
                .or_default()
                .insert((t, v.to_bits()));
        }
        app.commit().unwrap();
        states.push(support::dump(&db, &[]));
        if c % 12 == 11 && !db.compact().unwrap().head_blocks.is_empty() {
            after_last_compaction = states.len() - 1;
        }
        if c == 145 {
            // In the first block, after the last compaction (which would rewrite a block this
            // deleted and drop the tombstones): its tombstones file.
            db.delete(20 * 60_000, HOUR, &[Matcher::equal("i", "3")])
                .unwrap();
            states.push(support::dump(&db, &[]));
            // The block's tombstones are not in the WAL: no WAL repair undoes them, so the
            // earlier states a repair may return to have them too.
            let key = labels(3).to_string();
            for st in &mut states[after_last_compaction..] {
                if let Some(v) = st.get_mut(&key) {
                    v.retain(|(t, _)| !(20 * 60_000..=HOUR).contains(t));
                }
            }
        }
        if c == 140 {
            // In the head: a tombstone record in the last WAL segment.
            db.delete(135 * STEP, 138 * STEP, &[Matcher::equal("i", "4")])
                .unwrap();
            states.push(support::dump(&db, &[]));
        }
    }
    db.close().unwrap();
    Base {
        dir,
        states,
        after_last_compaction,
        committed,
    }
}

/// The file of `kind` in `base`.
fn target(base: &Path, kind: &str) -> PathBuf {
    // The oldest block (ULIDs made in the same millisecond do not sort by time).
    let mut blocks: Vec<PathBuf> = std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").exists())
        .collect();
    blocks.sort_by_key(|p| Meta::read(p).unwrap().min_time);
    let wal = base.join("wal");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    segments.sort();
    let checkpoint = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && p.to_string_lossy().contains("checkpoint."));
    let p = match kind {
        "meta_json" => blocks[0].join("meta.json"),
        "index" => blocks[0].join("index"),
        "chunks" => blocks[0].join("chunks").join("000001"),
        "tombstones" => blocks[0].join("tombstones"),
        "wal_segment" => segments[0].clone(),
        "wal_last_segment" => segments.last().unwrap().clone(),
        "checkpoint" => checkpoint
            .expect("the base has a checkpoint")
            .join("00000000"),
        "lock" => base.join("lock"),
        other => panic!("unknown kind {other}"),
    };
    assert!(p.is_file(), "{kind}: {} missing", p.display());
    p
}

#[derive(Debug, Clone, Copy)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Truncate { len: usize },
    Zero { at: usize, len: usize },
}

impl Mutation {
    fn apply(self, b: &mut Vec<u8>) {
        match self {
            Mutation::Flip { at, bit } => b[at] ^= 1 << bit,
            Mutation::Truncate { len } => b.truncate(len),
            Mutation::Zero { at, len } => b[at..at + len].fill(0),
        }
    }

    fn class(self) -> &'static str {
        match self {
            Mutation::Flip { .. } => "bit flip",
            Mutation::Truncate { .. } => "truncation",
            Mutation::Zero { .. } => "zeroed range",
        }
    }
}

/// Seeded mutations of a file of `len` bytes: a flip in every byte of the first and last 64
/// (headers, TOC, CRCs) and at random offsets, truncations at the short lengths, the last 64
/// lengths and random ones, zeroed ranges at the ends and at random places.
///
/// `data_len` is where the file's content ends: WAL files are zero-padded to whole pages, and
/// random mutations aim at the content (the padding is also covered by the truncations).
fn mutations(len: usize, data_len: usize, seed: u64) -> Vec<Mutation> {
    let mut s = seed | 1;
    let mut rnd = |n: usize| (support::next_random(&mut s) % n.max(1) as u64) as usize;
    let mut out = Vec::new();
    if len == 0 {
        return out;
    }
    let mut flip_at: BTreeSet<usize> = (0..len.min(64))
        .chain(len.saturating_sub(64)..len)
        .chain(data_len.saturating_sub(64)..data_len)
        .collect();
    for _ in 0..200 {
        flip_at.insert(rnd(data_len));
    }
    for at in flip_at {
        out.push(Mutation::Flip {
            at,
            bit: rnd(8) as u8,
        });
    }
    let mut lens: BTreeSet<usize> = (0..len.min(17))
        .chain(len.saturating_sub(64)..len)
        .chain(data_len.saturating_sub(32)..data_len)
        .collect();
    for _ in 0..60 {
        lens.insert(rnd(data_len + 1));
    }
    out.extend(lens.into_iter().map(|len| Mutation::Truncate { len }));
    out.push(Mutation::Zero {
        at: 0,
        len: len.min(16),
    });
    out.push(Mutation::Zero {
        at: len.saturating_sub(16),
        len: len.min(16),
    });
    for _ in 0..80 {
        let at = rnd(data_len);
        let wide = rnd(4) == 0;
        let n = 1 + rnd(if wide { 4096 } else { 64 });
        out.push(Mutation::Zero {
            at,
            len: n.min(len - at),
        });
    }
    out
}

struct Opened {
    dump: Dump,
    replay: ReplayStats,
    blocks: Vec<Meta>,
    unreadable: usize,
}

/// Opens `dir`, queries everything and closes it, in a thread bounded by `OPEN_TIMEOUT`.
/// `Err((true, e))` failed at open, `Err((false, e))` at query.
fn open_and_read(dir: &Path, o: Options) -> Result<Opened, (bool, Error)> {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_path_buf();
    let worker = std::thread::spawn(move || {
        let res = (|| {
            let db = Db::open(&dir, o).map_err(|e| (true, e))?;
            let mut dump = Dump::new();
            let q = db.querier(i64::MIN, i64::MAX).map_err(|e| (false, e))?;
            for s in q.select(&[]).map_err(|e| (false, e))? {
                let v = s.to_vec().map_err(|e| (false, e))?;
                dump.insert(
                    s.labels().to_string(),
                    v.iter().map(|x| (x.t, x.v.to_bits())).collect(),
                );
            }
            let opened = Opened {
                dump,
                replay: db.replay_stats().cloned().unwrap_or_default(),
                blocks: db.blocks(),
                unreadable: db.unreadable_blocks().len(),
            };
            db.close().map_err(|e| (false, e))?;
            Ok(opened)
        })();
        let _ = tx.send(res);
    });
    match rx.recv_timeout(OPEN_TIMEOUT) {
        Ok(res) => {
            worker.join().expect("the worker sent its result");
            res
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("open and query hung for {OPEN_TIMEOUT:?}"),
        // The worker panicked before sending: fail with its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!("the worker always sends"),
        },
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Whether the error names `file` (or the block directory holding it), with an offset inside
/// the file's original length when it gives one.
fn names_file(e: &Error, file: &Path, len: usize) -> bool {
    let block = file
        .ancestors()
        .find(|p| p.join("meta.json").is_file())
        .map(Path::to_path_buf);
    match e {
        Error::Corruption {
            file: f, offset, ..
        }
        | Error::Unsupported {
            file: f, offset, ..
        } => {
            (f == file || block.as_deref() == Some(f.as_path()))
                && offset.is_none_or(|o| o <= len as u64)
        }
        Error::UnsupportedMetaVersion { file: f, .. } => f == file,
        Error::BadIndexVersionBlock { dir } => block.as_deref() == Some(dir.as_path()),
        _ => false,
    }
}

/// Whether `b[..len]` ends at the end of a WAL record or in the zero padding after one.
fn cut_at_record_boundary(b: &[u8], len: usize) -> bool {
    let mut r = annals::unstable::wal::Reader::from_bytes("seg", 0, b.to_vec());
    let mut end = 0usize;
    loop {
        if end <= len && b[end..len].iter().all(|&x| x == 0) {
            return true;
        }
        match r.next_record() {
            Ok(Some(_)) => end = r.end_position().offset as usize,
            _ => return false,
        }
        if end > len {
            return false;
        }
    }
}

fn is_subset(d: &Dump, all: &BTreeMap<String, BTreeSet<(i64, u64)>>) -> bool {
    d.iter().all(|(l, s)| {
        all.get(l)
            .is_some_and(|set| s.iter().all(|x| set.contains(x)))
    })
}

/// `d` without the samples in `[mint, maxt)`; series left empty are dropped.
fn without_range(d: &Dump, mint: i64, maxt: i64) -> Dump {
    d.iter()
        .map(|(l, s)| {
            let kept: Vec<_> = s
                .iter()
                .copied()
                .filter(|(t, _)| *t < mint || *t >= maxt)
                .collect();
            (l.clone(), kept)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    intact: usize,
    meta_changed: usize,
    repaired: usize,
    detected: usize,
    skipped_ok: usize,
    truncate_at_corruption_ok: usize,
    cut_at_record_boundary: usize,
}

/// Runs every mutation of `kind`'s file and checks each outcome; panics on the first that is
/// not allowed.
fn sweep(kind: &str) -> BTreeMap<&'static str, Tally> {
    let base = build_base();
    let original = base.final_state();
    let original_blocks = Db::open_read_only(base.dir.path(), opts())
        .unwrap()
        .blocks();
    let file = target(base.dir.path(), kind);
    let rel = file.strip_prefix(base.dir.path()).unwrap().to_path_buf();
    let bytes = std::fs::read(&file).unwrap();
    let data_len = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut muts = mutations(bytes.len(), data_len, 0x5eed ^ kind.len() as u64);
    if kind == "lock" {
        // The lock file's content is never read: garbage in it must change nothing.
        assert!(muts.is_empty());
        std::fs::write(&file, b"garbage left by another program\n\0\xff").unwrap();
        let m = mutations(30, 30, 7);
        muts = m;
    }
    let bytes = std::fs::read(&file).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    for (n, m) in muts.into_iter().enumerate() {
        let case = work.path().join(n.to_string());
        copy_dir(base.dir.path(), &case);
        let path = case.join(&rel);
        let mut b = bytes.clone();
        m.apply(&mut b);
        std::fs::write(&path, &b).unwrap();
        let what = format!("{kind} {m:?} of {} bytes", bytes.len());
        let t = tallies.entry(m.class()).or_default();
        t.cases += 1;
        match open_and_read(&case, opts()) {
            Ok(o) if &o.dump == original => {
                if kind == "meta_json" && o.blocks != original_blocks {
                    // meta.json has no checksum (brief §1.3): a value changed into another
                    // valid one goes unnoticed; the data must still be right.
                    t.meta_changed += 1;
                } else {
                    t.intact += 1;
                }
            }
            Ok(o) => {
                // Only the documented torn-tail repair may change the data, and only back to
                // the state after an earlier operation. A truncation at a record boundary
                // looks like a crash before those writes, so it may go unreported.
                if kind == "wal_last_segment"
                    && base.states[base.after_last_compaction..].contains(&o.dump)
                {
                    t.repaired += 1;
                } else if (kind == "wal_segment" || kind == "checkpoint")
                    && matches!(m, Mutation::Truncate { len } if cut_at_record_boundary(&bytes, len))
                    && is_subset(&o.dump, &base.committed)
                {
                    // Segments hold no record count or length (brief §1.9): cut at the end
                    // of a record (or in the padding after it), a segment reads as one that
                    // ended there, as after a power loss that lost only its padding.
                    // Prometheus cannot tell either.
                    t.cut_at_record_boundary += 1;
                } else {
                    panic!(
                        "{what}: wrong answer (repair {:?}); got {} series, want {}",
                        o.replay.repair,
                        o.dump.len(),
                        original.len()
                    );
                }
            }
            Err((at_open, e)) => {
                assert!(names_file(&e, &path, bytes.len()), "{what}: {e:?}");
                t.detected += 1;
                if at_open && rel.starts_with("wal") {
                    // Damage before the last segment: the user may let the WAL be cut there.
                    let mut o = opts();
                    o.wal_recovery = Recovery::TruncateAtCorruption;
                    let fresh = work.path().join(format!("{n}-truncate"));
                    copy_dir(&case, &fresh);
                    match open_and_read(&fresh, o) {
                        Ok(got) => {
                            assert!(got.replay.repair.is_some(), "{what}: no repair reported");
                            assert!(
                                is_subset(&got.dump, &base.committed),
                                "{what}: TruncateAtCorruption returned samples never committed"
                            );
                            t.truncate_at_corruption_ok += 1;
                        }
                        // A checkpoint is not cut: what it holds is in no segment any more.
                        Err((_, e)) if kind == "checkpoint" => {
                            let path = fresh.join(&rel);
                            assert!(names_file(&e, &path, bytes.len()), "{what}: {e:?}");
                        }
                        Err((_, e)) => panic!("{what}: TruncateAtCorruption: {e:?}"),
                    }
                    std::fs::remove_dir_all(&fresh).unwrap();
                } else if at_open {
                    let mut o = opts();
                    o.skip_unreadable_blocks = true;
                    let got = open_and_read(&case, o)
                        .unwrap_or_else(|(_, e)| panic!("{what}: skipping the block: {e:?}"));
                    assert_eq!(got.unreadable, 1, "{what}");
                    let b = &original_blocks[0];
                    assert_eq!(
                        got.dump,
                        without_range(original, b.min_time, b.max_time),
                        "{what}: the other blocks and the head are intact"
                    );
                    t.skipped_ok += 1;
                }
            }
        }
        std::fs::remove_dir_all(&case).unwrap();
    }
    tallies
}

/// The child: one file kind's sweep under a memory limit; prints one tally line per mutation
/// class.
#[test]
#[ignore = "the child process of the corruption sweeps"]
fn sweep_child() {
    let kind = std::env::var(KIND_ENV).expect("run only by the corruption sweeps");
    let limit = libc::rlimit {
        rlim_cur: MEMORY_LIMIT,
        rlim_max: MEMORY_LIMIT,
    };
    // SAFETY: setrlimit reads the struct we pass and affects only this process.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    for (class, t) in sweep(&kind) {
        println!("sweep {kind} / {class}: {t:?}");
    }
}

fn run_sweep(kind: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "corruption::sweep_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KIND_ENV, kind)
        // Bounded per-thread malloc arenas keep the address space small under RLIMIT_AS.
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest prints the test's name without a newline before the test's own output.
    let tallies: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.find("sweep ").map(|i| &l[i..]))
        .collect();
    assert!(
        out.status.success() && !tallies.is_empty(),
        "{kind} sweep failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for l in tallies {
        eprintln!("{l}");
    }
}

#[test]
fn meta_json() {
    run_sweep("meta_json");
}

#[test]
fn index() {
    run_sweep("index");
}

#[test]
fn chunks() {
    run_sweep("chunks");
}

#[test]
fn tombstones() {
    run_sweep("tombstones");
}

#[test]
fn wal_segment() {
    run_sweep("wal_segment");
}

#[test]
fn wal_last_segment() {
    run_sweep("wal_last_segment");
}

#[test]
fn checkpoint() {
    run_sweep("checkpoint");
}

#[test]
fn lock() {
    run_sweep("lock");
}

/// Regression (found by the checkpoint sweep): a FULL fragment header whose length and CRC
/// are zeroed (crc32c of nothing is 0) read as an empty record, and the zeroes after it as
/// page padding, so the records behind it were dropped without an error.
#[test]
fn a_zeroed_fragment_header_is_corruption_not_an_empty_record() {
    let tmp = tempfile::tempdir().unwrap();
    // The WAL is under test: no memory snapshot that would let the open skip it.
    let opts = || {
        let mut o = opts();
        o.snapshot_on_close = false;
        o
    };
    let db = Db::open(tmp.path(), opts()).unwrap();
    for c in 0..3 {
        let mut app = db.appender();
        app.append(None, &labels(c), 1_000 + c as i64, 1.0).unwrap();
        app.commit().unwrap();
    }
    db.close().unwrap();
    // A second open starts segment 1, so segment 0 is not the last (no torn-tail repair).
    Db::open(tmp.path(), opts()).unwrap().close().unwrap();
    let seg = tmp.path().join("wal").join("00000000");
    let mut b = std::fs::read(&seg).unwrap();
    let data_end = b.iter().rposition(|&x| x != 0).unwrap() + 1;
    b[1..data_end].fill(0);
    std::fs::write(&seg, &b).unwrap();
    let e = Db::open(tmp.path(), opts()).err().unwrap();
    assert!(
        matches!(&e, Error::Corruption { file, offset: Some(0), .. } if file == &seg),
        "{e:?}"
    );
}
