//! Out-of-order samples (issue 15 item 1): the window, the out-of-order head chunks and the
//! write-behind log, merged reads, replay, out-of-order compaction, and Prometheus 2.42 on
//! the directories both ways.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use annals::unstable::wal::{self, Reader, RecordType};
use annals::{Db, Error, Labels, Matcher, Options, WalSync};
use proptest::prelude::*;

use crate::support::{self, Dump, KillOnDrop};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_700_006_400_000;

fn opts(window: i64) -> Options {
    let mut o = Options::default();
    o.out_of_order_time_window = window;
    o.compaction = false;
    o.wal_sync = WalSync::Never;
    o
}

fn series(i: usize) -> Labels {
    Labels::new([("__name__", "late"), ("i", &i.to_string())]).unwrap()
}

fn dump(db: &Db) -> Dump {
    support::dump(db, &[])
}

/// Appends `samples` to series `i` in one commit.
fn commit(db: &Db, i: usize, samples: &[(i64, f64)]) {
    let mut app = db.appender();
    for &(t, v) in samples {
        if let Err(e) = app.append(None, &series(i), t, v) {
            panic!("series {i} at {t}: {e}");
        }
    }
    app.commit().unwrap();
}

/// The model: what `dump` must return.
type Model = BTreeMap<String, BTreeMap<i64, u64>>;

fn model_dump(m: &Model) -> Dump {
    m.iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(k, s)| (k.clone(), s.iter().map(|(t, v)| (*t, *v)).collect()))
        .collect()
}

/// Every record type of the log in `dir`, in order.
fn record_types(dir: &Path) -> Vec<RecordType> {
    let mut out = Vec::new();
    let Some((first, _)) = wal::segment_range(dir).unwrap() else {
        return out;
    };
    let mut r = Reader::open_dir(dir, first).unwrap();
    while let Some((rec, _)) = r.next_record().unwrap() {
        out.push(wal::record_type(rec));
    }
    out
}

/// Encoding bytes of every entry in `chunks_head/`.
fn head_chunk_encodings(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("chunks_head"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for (n, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f).unwrap();
        let number: u32 = f.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let _ = n;
        for c in annals::unstable::head_chunks::decode_file(&bytes, number, f).unwrap() {
            out.push(c.encoding);
        }
    }
    out
}

#[test]
fn the_window_accepts_late_samples_and_rejects_duplicates_and_too_old_ones() {
    let db = Db::open_in_memory(opts(HOUR)).unwrap();
    let l = series(0);
    commit(&db, 0, &[(T0 + 2 * HOUR, 1.0)]);
    let mut app = db.appender();
    // Within the window: late samples, in any order, also of a new series.
    app.append(None, &l, T0 + 2 * HOUR - 10, 2.0).unwrap();
    app.append(None, &l, T0 + 2 * HOUR - 20, 3.0).unwrap();
    app.append(None, &series(1), T0 + HOUR + 5, 4.0).unwrap();
    // The same late sample again is accepted and stored once; another value is a duplicate.
    app.append(None, &l, T0 + 2 * HOUR - 20, 3.0).unwrap();
    assert!(matches!(
        app.append(None, &l, T0 + 2 * HOUR - 20, 9.0),
        Err(Error::DuplicateSample { .. })
    ));
    assert!(matches!(
        app.append(None, &l, T0 + 2 * HOUR, 9.0),
        Err(Error::DuplicateSample { .. })
    ));
    // Older than the head's newest minus the window: refused with today's errors.
    assert!(matches!(
        app.append(None, &l, T0 + HOUR - 1, 5.0),
        Err(Error::OutOfBounds { .. })
    ));
    app.commit().unwrap();
    // Against committed late samples too.
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &l, T0 + 2 * HOUR - 10, 7.0),
        Err(Error::DuplicateSample { .. })
    ));
    app.append(None, &l, T0 + 2 * HOUR - 10, 2.0).unwrap();
    assert_eq!(app.pending(), 0, "an exact repeat stores nothing");
    drop(app);
    let got = dump(&db);
    let bits = |v: f64| v.to_bits();
    assert_eq!(
        got[&series(0).to_string()],
        vec![
            (T0 + 2 * HOUR - 20, bits(3.0)),
            (T0 + 2 * HOUR - 10, bits(2.0)),
            (T0 + 2 * HOUR, bits(1.0))
        ]
    );
    assert_eq!(
        got[&series(1).to_string()],
        vec![(T0 + HOUR + 5, bits(4.0))]
    );
    assert_eq!(db.head_stats().samples_appended, 4);
}

#[test]
fn without_a_window_nothing_changes() {
    let db = Db::open_in_memory(opts(0)).unwrap();
    commit(&db, 0, &[(T0, 1.0)]);
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &series(0), T0 - 1, 2.0),
        Err(Error::OutOfOrderSample { .. })
    ));
    let mut o = opts(0);
    o.out_of_order_time_window = -1;
    assert!(matches!(
        Db::open_in_memory(o),
        Err(Error::InvalidArgument(_))
    ));
}

/// 100 late samples per series in 10 commits of 10, newest first: three out-of-order chunks
/// of 32 m-mapped (encoding byte 0x81) and 4 in the open one; the WBL holds the samples and
/// an m-map marker before each chunk's samples. Queries merge everything; a reopen (after a
/// close, and after a drop without close) restores it from chunks_head/, WAL and WBL.
#[test]
fn late_samples_are_logged_mmapped_merged_and_replayed() {
    for clean_close in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let mut o = opts(HOUR);
        o.snapshot_on_close = clean_close;
        let db = Db::open(tmp.path(), o.clone()).unwrap();
        let mut model = Model::new();
        for k in 0..60 {
            for i in 0..3 {
                let (t, v) = (T0 + k * 60_000, k as f64);
                commit(&db, i, &[(t, v)]);
                let m = model.entry(series(i).to_string()).or_default();
                m.insert(t, v.to_bits());
            }
        }
        for c in (0..10).rev() {
            let mut app = db.appender();
            for i in 0..3 {
                for k in 0..10 {
                    let t = T0 + (c * 10 + k) * 30_000 + 15_000;
                    let v = -(t as f64);
                    app.append(None, &series(i), t, v).unwrap();
                    model
                        .get_mut(&series(i).to_string())
                        .unwrap()
                        .insert(t, v.to_bits());
                }
            }
            app.commit().unwrap();
        }
        let want = model_dump(&model);
        assert_eq!(dump(&db), want);
        // Queries see raw chunks without overlaps (`support::read_set` checks them).
        let sel = support::select(
            &db,
            &[Matcher::equal("i", "1")],
            T0 + 1000,
            T0 + 40 * 60_000,
        );
        assert_eq!(sel.len(), 1);
        assert!(sel[0]
            .1
            .iter()
            .all(|(t, _)| (T0 + 1000..=T0 + 40 * 60_000).contains(t)));
        let wbl = record_types(&tmp.path().join("wbl"));
        assert_eq!(
            wbl.iter()
                .filter(|t| **t == RecordType::MmapMarkers)
                .count(),
            3 * 4,
            "one marker per chunk started: {wbl:?}"
        );
        assert!(wbl.contains(&RecordType::Samples));
        if clean_close {
            db.close().unwrap();
        } else {
            drop(db);
        }
        let encodings = head_chunk_encodings(tmp.path());
        assert_eq!(
            encodings.iter().filter(|e| **e == 0x81).count(),
            3 * 3,
            "{encodings:?}"
        );
        let db = Db::open(tmp.path(), o).unwrap();
        let st = db.replay_stats().unwrap().clone();
        assert_eq!(st.ooo_mmapped_chunks, 9, "{st:?}");
        // Every late sample is inserted again; the markers drop those m-mapped since.
        assert_eq!(st.wbl_samples, 3 * 100, "{st:?}");
        assert_eq!(st.wbl_markers, 3 * 4, "{st:?}");
        assert_eq!(dump(&db), want);
        // More late samples after the reopen go on from the replayed open chunks.
        commit(&db, 0, &[(T0 + 7, 7.0)]);
        model
            .get_mut(&series(0).to_string())
            .unwrap()
            .insert(T0 + 7, 7f64.to_bits());
        assert_eq!(dump(&db), model_dump(&model));
        db.close().unwrap();
    }
}

/// Head compaction is followed by out-of-order compaction (Prometheus `compactOOOHead`): the
/// late samples of a range already in a block become an overlapping block, merged
/// vertically; the WBL is truncated and the chunks released. Every answer stays the same.
#[test]
fn compaction_writes_late_samples_into_blocks_and_merges_overlaps() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts(2 * HOUR)).unwrap();
    let mut model = Model::new();
    let mut add = |db: &Db, i: usize, s: &[(i64, f64)]| {
        commit(db, i, s);
        let m = model.entry(series(i).to_string()).or_default();
        m.extend(s.iter().map(|(t, v)| (*t, v.to_bits())));
    };
    // In order, one minute at a time for both series (a series that started later would
    // be out of bounds).
    for k in 0..180 {
        add(&db, 0, &[(T0 + k * 60_000, k as f64)]);
        add(&db, 1, &[(T0 + k * 60_000, k as f64)]);
    }
    // Late samples in [T0 + 1h, T0 + 3h).
    let late: Vec<(i64, f64)> = (0..120)
        .map(|k| (T0 + HOUR + k * 60_000 + 30_000, 0.5 + k as f64))
        .collect();
    add(&db, 0, &late);
    // A series with late samples only.
    add(
        &db,
        2,
        &[(T0 + 2 * HOUR + 1, 1.0), (T0 + 2 * HOUR + 2, 2.0)],
    );
    // The head spans more than 1.5 ranges after this: [T0, T0 + 2h) is compacted.
    add(&db, 1, &[(T0 + 3 * HOUR + 30 * 60_000, 9.0)]);
    let want = model_dump(&model);
    assert_eq!(dump(&db), want);
    let stats = db.compact().unwrap();
    assert!(!stats.head_blocks.is_empty());
    assert_eq!(dump(&db), want);
    let blocks = db.blocks();
    for w in blocks.windows(2) {
        assert!(
            w[0].max_time <= w[1].min_time,
            "overlapping blocks were merged: {blocks:?}"
        );
    }
    assert!(
        blocks.iter().any(|b| b.compaction.level >= 2),
        "a vertical merge happened: {blocks:?}"
    );
    // The WBL before the compaction is gone.
    let wbl = record_types(&tmp.path().join("wbl"));
    assert!(!wbl.contains(&RecordType::Samples), "{wbl:?}");
    db.close().unwrap();
    let db = Db::open(tmp.path(), opts(2 * HOUR)).unwrap();
    assert_eq!(dump(&db), want);
    if let Some(promtool) = crate::promtool::promtool() {
        db.close().unwrap();
        let lines = crate::promtool::dump(&promtool, tmp.path(), &[]);
        assert_eq!(lines.len(), want.values().map(Vec::len).sum::<usize>());
    }
}

/// Prometheus 2.42 with `out_of_order_time_window: 1h` on `data`, until dropped.
struct Prometheus {
    _server: KillOnDrop,
    port: u16,
    curl: PathBuf,
    _config: tempfile::TempDir,
}

impl Prometheus {
    fn start(data: &Path, remote_write: bool) -> Option<Prometheus> {
        let (prometheus, curl) = (support::on_path("prometheus")?, support::on_path("curl")?);
        let config = tempfile::tempdir().unwrap();
        let file = config.path().join("prometheus.yml");
        std::fs::write(
            &file,
            "global:\n  scrape_interval: 1h\nscrape_configs: []\nstorage:\n  tsdb:\n    out_of_order_time_window: 1h\n",
        )
        .unwrap();
        let port = crate::support::free_port();
        let log_path = config.path().join("prometheus.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(prometheus);
        cmd.arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if remote_write {
            cmd.arg("--web.enable-remote-write-receiver");
        }
        let p = Prometheus {
            _server: KillOnDrop(cmd.spawn().unwrap()),
            port,
            curl,
            _config: config,
        };
        let ready = (0..600).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            p.get("/-/ready").is_some()
        });
        assert!(
            ready,
            "prometheus did not start: {}",
            std::fs::read_to_string(&log_path).unwrap()
        );
        Some(p)
    }

    fn get(&self, path: &str) -> Option<String> {
        let out = Command::new(&self.curl)
            .args(["-sf", "--max-time", "30"])
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .stderr(Stdio::null())
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    }

    /// Every raw sample of each series `name` has in `(end - 1d, end]`, through a range
    /// vector (`name[1d]`), by series text.
    fn samples(&self, name: &str, end_ms: i64) -> Dump {
        let body = self
            .get(&format!(
                "/api/v1/query?query={name}%5B1d%5D&time={}",
                end_ms as f64 / 1000.0
            ))
            .expect("query answers");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut out = Dump::new();
        for s in v["data"]["result"].as_array().unwrap() {
            let labels = Labels::new(
                s["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str().unwrap())),
            )
            .unwrap();
            let values = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                    let v: f64 = p[1].as_str().unwrap().parse().unwrap();
                    (t, v.to_bits())
                })
                .collect();
            out.insert(labels.to_string(), values);
        }
        out
    }
}

/// Our samples of `name` in `(end - 1d, end]`, as a range vector returns them.
fn ours_in_range(db: &Db, name: &str, end: i64) -> Dump {
    support::select(
        db,
        &[Matcher::equal("__name__", name)],
        end - 24 * HOUR + 1,
        end,
    )
    .into_iter()
    .map(|(l, s)| (l.to_string(), s))
    .collect()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prometheus-2.42-ooo")
}

/// The fixture Prometheus 2.42 wrote reads completely (every late sample of its head, its
/// vertically merged block), takes more in-order and late samples, compacts (head and
/// out-of-order data into blocks, merged with the overlapping ones) and closes; Prometheus
/// 2.42 with the same window then answers the same from the directory, series by series.
#[test]
fn prometheus_fixture_opens_fully_grows_compacts_and_prometheus_reads_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::promtool::copy_dir(&fixture(), &data);
    let mut o = opts(HOUR);
    o.retention_ms = None;
    let db = Db::open(&data, o.clone()).unwrap();
    let before = dump(&db);
    assert_eq!(before.values().map(Vec::len).sum::<usize>(), 2308);
    let st = db.replay_stats().unwrap().clone();
    assert!(st.ooo_mmapped_chunks > 0 && st.wbl_samples > 0, "{st:?}");
    // More of the fixture's series: in order to T0 + 7h, late ones inside the window.
    let name = "fx_ooo_value";
    let fx = |i: usize| {
        Labels::new([
            ("__name__", name),
            ("i", &i.to_string()),
            ("job", "fixture"),
        ])
        .unwrap()
    };
    let mut app = db.appender();
    for i in 0..6 {
        for k in 0..120 {
            let t = T0 + 5 * HOUR + 10 * 60_000 + k * 60_000;
            if let Err(e) = app.append(None, &fx(i), t, k as f64) {
                panic!("{i} at {t}: {e}");
            }
        }
    }
    app.commit().unwrap();
    let mut app = db.appender();
    for i in 0..6 {
        for k in 0..40 {
            let t = T0 + 6 * HOUR + 30 * 60_000 + 15_000 + k * 60_000;
            if let Err(e) = app.append(None, &fx(i), t, -(k as f64)) {
                panic!("{i} at {t}: {e}");
            }
        }
    }
    app.commit().unwrap();
    let want = dump(&db);
    assert_eq!(want.values().map(Vec::len).sum::<usize>(), 2308 + 6 * 160);
    let stats = db.compact().unwrap();
    assert!(!stats.head_blocks.is_empty(), "{stats:?}");
    assert_eq!(dump(&db), want);
    db.close().unwrap();
    let db = Db::open_read_only(&data, o).unwrap();
    assert_eq!(dump(&db), want);
    let end = T0 + 7 * HOUR + 30 * 60_000;
    let ours = ours_in_range(&db, name, end);
    drop(db);
    if let Some(promtool) = crate::promtool::promtool() {
        let lines = crate::promtool::dump(&promtool, &data, &[]);
        assert_eq!(lines.len(), want.values().map(Vec::len).sum::<usize>());
    }
    let Some(prom) = Prometheus::start(&data, false) else {
        return;
    };
    assert_eq!(prom.samples(name, end), ours);
}

/// A directory annals wrote with late samples (a WBL and m-mapped `0x81` chunks at close,
/// and again after compaction): Prometheus 2.42 with the same window answers the same.
#[test]
fn prometheus_reads_the_late_samples_annals_wrote() {
    for compacted in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let mut o = opts(HOUR);
        o.retention_ms = None;
        let db = Db::open(&data, o).unwrap();
        let in_order: Vec<(i64, f64)> = (0..200).map(|k| (T0 + k * 60_000, k as f64)).collect();
        let late: Vec<(i64, f64)> = (0..50)
            .map(|k| (T0 + 150 * 60_000 + k * 60_000 + 30_000, 0.25 * k as f64))
            .collect();
        for s in &in_order {
            for i in 0..4 {
                commit(&db, i, std::slice::from_ref(s));
            }
        }
        for i in 0..4 {
            for c in late.chunks(7) {
                commit(&db, i, c);
            }
        }
        if compacted {
            commit(&db, 0, &[(T0 + 4 * HOUR, 1.0)]);
            let st = db.compact().unwrap();
            assert!(!st.head_blocks.is_empty());
            // And new late samples after it.
            for i in 0..4 {
                commit(&db, i, &[(T0 + 4 * HOUR - 60_000 - i as i64, 3.0)]);
            }
        }
        let end = T0 + 5 * HOUR;
        let ours = ours_in_range(&db, "late", end);
        assert!(
            ours.values().all(|s| s.len() >= 250),
            "{:?}",
            ours.values().map(Vec::len).collect::<Vec<_>>()
        );
        db.close().unwrap();
        if !compacted {
            assert!(head_chunk_encodings(&data).contains(&0x81));
            assert!(record_types(&data.join("wbl")).contains(&RecordType::MmapMarkers));
        }
        let Some(prom) = Prometheus::start(&data, false) else {
            return;
        };
        assert_eq!(prom.samples("late", end), ours, "compacted: {compacted}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Append (series, time offset in minutes, value) in one commit.
    Append(Vec<(usize, i64, i16)>),
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((0usize..3, 0i64..600, any::<i16>()), 1..40).prop_map(Op::Append),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random in-order and late appends, compactions and reopens against a `BTreeMap`:
    /// what `append` accepted is what every read returns.
    #[test]
    fn random_late_appends_read_back_like_a_model(ops in proptest::collection::vec(op(), 1..25)) {
        let tmp = tempfile::tempdir().unwrap();
        let mut o = opts(HOUR);
        o.block_range_ms = HOUR;
        o.retention_ms = None;
        o.out_of_order_cap_max = 5;
        let mut db = Db::open(tmp.path(), o.clone()).unwrap();
        let mut model = Model::new();
        let mut base = T0;
        for op in ops {
            match op {
                Op::Append(samples) => {
                    base += 7 * 60_000;
                    let mut app = db.appender();
                    let mut accepted = Vec::new();
                    for (i, off, v) in samples {
                        let t = base - off * 60_000 / 4;
                        if app.append(None, &series(i), t, f64::from(v)).is_ok() {
                            accepted.push((i, t, f64::from(v)));
                        }
                    }
                    app.commit().unwrap();
                    for (i, t, v) in accepted {
                        let m = model.entry(series(i).to_string()).or_default();
                        // A late sample at the time of one already in a block is not looked
                        // for at append; reads keep the greatest value in IEEE total order.
                        let e = m.entry(t).or_insert(v.to_bits());
                        if f64::from_bits(*e).total_cmp(&v).is_lt() {
                            *e = v.to_bits();
                        }
                    }
                }
                Op::Compact => {
                    db.compact().unwrap();
                }
                Op::Reopen => {
                    db.close().unwrap();
                    db = Db::open(tmp.path(), o.clone()).unwrap();
                }
            }
            prop_assert_eq!(dump(&db), model_dump(&model));
        }
    }
}

// ---- process death ------------------------------------------------------------------------

const CRASH_ENV: &str = "ANNALS_OOO_CRASH_CHILD_DIR";
const CRASH_SERIES: usize = 4;
const MINUTE: i64 = 60_000;

fn crash_opts() -> Options {
    let mut o = opts(HOUR);
    o.wal_sync = WalSync::EveryCommit;
    o.block_range_ms = HOUR;
    o.retention_ms = None;
    // Small out-of-order chunks: m-map markers in most commits.
    o.out_of_order_cap_max = 3;
    o.wal_segment_size = 32 * 1024;
    o
}

/// The child: commit `c` appends, to every series, `c` at `T0 + c min` (in order) and `-c`
/// at 30 s before it (late: older than the sample just appended; from commit 2 on), with
/// `EveryCommit`, and
/// prints `c` once acknowledged. Every 25th commit it compacts (head, out-of-order data,
/// vertical merges), so kills land in compactions and WBL truncations too.
#[test]
#[ignore = "the child process of late_samples_survive_process_death"]
fn late_samples_crash_child() {
    let dir = std::env::var(CRASH_ENV).expect("run only by late_samples_survive_process_death");
    let db = Db::open(&dir, crash_opts()).unwrap();
    let start = db
        .head_stats()
        .max_time
        .map_or(1, |t| (t - T0) / MINUTE + 1);
    let stdout = std::io::stdout();
    for c in start.. {
        let mut app = db.appender();
        for i in 0..CRASH_SERIES {
            app.append(None, &series(i), T0 + c * MINUTE, c as f64)
                .unwrap();
            // From the second commit on: the window needs a newest sample in the head.
            if c > 1 {
                app.append(None, &series(i), T0 + c * MINUTE - 30_000, -(c as f64))
                    .unwrap();
            }
        }
        app.commit().unwrap();
        let mut out = stdout.lock();
        use std::io::Write;
        writeln!(out, "{c}").unwrap();
        out.flush().unwrap();
        drop(out);
        if c % 25 == 0 {
            db.compact().unwrap();
        }
    }
}

/// SIGKILL at random points of commits with late samples (WBL writes, m-map markers,
/// out-of-order compaction, WBL truncation): after every reopen, every acknowledged
/// commit's samples, in order and late, are back.
#[test]
fn late_samples_survive_process_death() {
    let iterations: u32 = std::env::var("ANNALS_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let tmp = tempfile::tempdir().unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let (mut acked_total, mut max_seen) = (0usize, 0i64);
    for iteration in 0..iterations {
        let run_for = std::time::Duration::from_millis(50 + support::next_random(&mut seed) % 400);
        let acked = support::run_and_kill(
            "ooo::late_samples_crash_child",
            CRASH_ENV,
            tmp.path(),
            run_for,
        );
        acked_total += acked.len();
        max_seen = max_seen.max(acked.last().copied().unwrap_or(0));
        if let Ok(keep) = std::env::var("ANNALS_OOO_CRASH_KEEP") {
            // Debugging: the directory as the kill left it.
            let _ = std::fs::remove_dir_all(&keep);
            crate::promtool::copy_dir(tmp.path(), Path::new(&keep));
        }
        let db = Db::open(tmp.path(), crash_opts()).unwrap();
        let d = dump(&db);
        for i in 0..CRASH_SERIES {
            let got: BTreeMap<i64, u64> = d
                .get(&series(i).to_string())
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            for c in 1..=max_seen {
                let t = T0 + c * MINUTE;
                assert_eq!(
                    got.get(&t),
                    Some(&(c as f64).to_bits()),
                    "iteration {iteration}: series {i}, commit {c} (in order) lost"
                );
                if c > 1 {
                    assert_eq!(
                        got.get(&(t - 30_000)),
                        Some(&(-(c as f64)).to_bits()),
                        "iteration {iteration}: series {i}, commit {c} (late) lost"
                    );
                }
            }
            // Nothing else: no sample from nowhere.
            assert!(got.iter().all(|(t, v)| {
                let c = (t - T0 + 30_000) / MINUTE;
                let late = (t - T0) % MINUTE != 0;
                *v == if late { -(c as f64) } else { c as f64 }.to_bits()
            }));
        }
        db.close().unwrap();
    }
    eprintln!(
        "out-of-order crash test: {iterations} kills, {acked_total} acknowledged commits, \
         {max_seen} commits verified"
    );
    assert!(acked_total > 0, "the child never committed");
}

/// Head chunk files are numbered again from 1 when none is left (an empty last file is
/// deleted at open): out-of-order chunks m-mapped then must not be taken for the chunks an
/// earlier out-of-order compaction put into blocks.
#[test]
fn compacted_chunk_record_follows_chunk_file_renumbering() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(HOUR);
    o.block_range_ms = HOUR;
    o.out_of_order_cap_max = 2;
    o.snapshot_on_close = false;
    let mut model = Model::new();
    let mut add = |db: &Db, s: &[(i64, f64)]| {
        commit(db, 0, s);
        let m = model.entry(series(0).to_string()).or_default();
        m.extend(s.iter().map(|(t, v)| (*t, v.to_bits())));
    };
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    for k in 0..200 {
        add(&db, &[(T0 + k * MINUTE, k as f64)]);
        // Late samples only where the compaction below takes them all.
        if k % 10 == 5 && k < 60 {
            add(&db, &[(T0 + k * MINUTE - 30_000, -(k as f64))]);
        }
    }
    assert!(!db.compact().unwrap().head_blocks.is_empty());
    db.close().unwrap();
    assert!(tmp
        .path()
        .join("chunks_head/annals_ooo_compacted_through")
        .exists());
    // What a truncation followed by a crash leaves: no chunk file but an empty one.
    for e in std::fs::read_dir(tmp.path().join("chunks_head")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            std::fs::remove_file(&p).unwrap();
        }
    }
    std::fs::write(tmp.path().join("chunks_head/000009"), b"").unwrap();
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    for k in 200..210 {
        add(
            &db,
            &[
                (T0 + k * MINUTE, k as f64),
                (T0 + k * MINUTE - 30_000, -1.0),
            ],
        );
    }
    let want = model_dump(&model);
    assert_eq!(dump(&db), want);
    drop(db);
    let db = Db::open(tmp.path(), o).unwrap();
    assert_eq!(dump(&db), want);
}

/// A commit cut short between its WAL write and its WBL write (a process killed there, as
/// the process-death loop under load found): the WAL record holds the commit's in-order and
/// late samples, the WBL nothing of it. The open restores both halves, and logs the late
/// samples in the WBL, so a later open finds them without that WAL record.
#[test]
fn late_samples_of_a_commit_cut_before_its_wbl_write_are_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(HOUR);
    o.snapshot_on_close = false;
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    commit(&db, 0, &[(T0 + 2 * HOUR, 1.0)]);
    commit(&db, 0, &[(T0 + 2 * HOUR - 10, 2.0)]);
    db.close().unwrap();
    // The cut-short commit: its WAL record (the series' ref is 1: the only series), no WBL.
    let wal_dir = tmp.path().join("wal");
    let wal = wal::Wal::open(&wal_dir, wal::WalOptions::default()).unwrap();
    let mut rec = Vec::new();
    let s = |t: i64, v: f64| wal::RefSample {
        series_ref: 1,
        t,
        v,
    };
    wal::encode_samples(
        [
            s(T0 + 2 * HOUR + 60_000, 3.0),
            s(T0 + 2 * HOUR + 30_000, -3.0),
        ],
        &mut rec,
    );
    wal.log(&[&rec]).unwrap();
    wal.close().unwrap();
    let bits = |v: f64| v.to_bits();
    let want: Dump = [(
        series(0).to_string(),
        vec![
            (T0 + 2 * HOUR - 10, bits(2.0)),
            (T0 + 2 * HOUR, bits(1.0)),
            (T0 + 2 * HOUR + 30_000, bits(-3.0)),
            (T0 + 2 * HOUR + 60_000, bits(3.0)),
        ],
    )]
    .into_iter()
    .collect();
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    assert_eq!(dump(&db), want);
    db.close().unwrap();
    // Logged in the WBL: a later open finds it there once a checkpoint dropped the record.
    let wbl_dir = tmp.path().join("wbl");
    let (first, _) = wal::segment_range(&wbl_dir).unwrap().unwrap();
    let mut r = Reader::open_dir(&wbl_dir, first).unwrap();
    let mut logged = Vec::new();
    while let Some((rec, _)) = r.next_record().unwrap() {
        if wal::record_type(rec) == RecordType::Samples {
            let mut v = Vec::new();
            wal::decode_samples(rec, &mut v).unwrap();
            logged.extend(v.iter().map(|s| (s.t, s.v.to_bits())));
        }
    }
    assert_eq!(
        logged,
        vec![
            (T0 + 2 * HOUR - 10, bits(2.0)),
            (T0 + 2 * HOUR + 30_000, bits(-3.0))
        ]
    );
    let db = Db::open(tmp.path(), o).unwrap();
    assert_eq!(dump(&db), want);
}
