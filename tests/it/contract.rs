//! Issue 16's contract: calls either do all they report or fail with an error that names the
//! cause and the way out (deletion, time ranges, open errors, label rules, block ids).

use crate::support::{on_path, KillOnDrop};
use annals::{Db, Error, Labels, MatchType, Matcher, Options};

fn one_series(db: &Db) -> Labels {
    let l = Labels::new([("__name__", "up"), ("job", "a")]).unwrap();
    let mut app = db.appender();
    for t in 0..10 {
        app.append(None, &l, t * 1000, t as f64).unwrap();
    }
    app.commit().unwrap();
    l
}

fn count(db: &Db) -> usize {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    q.select(&[Matcher::equal("job", "a")])
        .unwrap()
        .map(|s| s.to_vec().unwrap().len())
        .sum()
}

#[test]
fn delete_requires_a_matcher_and_delete_all_is_explicit() {
    let db = Db::open_in_memory(Options::default()).unwrap();
    one_series(&db);
    let e = db.delete(0, 5000, &[]).unwrap_err();
    assert!(matches!(e, Error::InvalidMatcher { .. }), "{e}");
    assert!(e.to_string().contains("Db::delete_all"), "{e}");
    assert_eq!(count(&db), 10, "a refused delete deletes nothing");
    db.delete(0, 1000, &[Matcher::equal("job", "a")]).unwrap();
    assert_eq!(count(&db), 8);
    db.delete_all(0, 4000).unwrap();
    assert_eq!(count(&db), 5);
    db.delete_all(i64::MIN, i64::MAX).unwrap();
    assert_eq!(count(&db), 0);
}

#[test]
fn an_empty_time_range_is_an_error_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), Options::default()).unwrap();
    one_series(&db);
    let m = [Matcher::equal("job", "a")];
    for e in [
        db.querier(10, 5).map(drop).unwrap_err(),
        db.delete(10, 5, &m).unwrap_err(),
        db.delete_all(10, 5).unwrap_err(),
    ] {
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("mint 10 is after maxt 5"), "{msg}");
        assert!(msg.contains("inclusive"), "{msg}");
    }
    // One millisecond is a range; the refused calls changed nothing.
    db.delete(5000, 5000, &m).unwrap();
    assert_eq!(count(&db), 9);
    assert_eq!(db.querier(0, 0).unwrap().select(&m).unwrap().count(), 1);
}

#[test]
fn matchers_with_an_empty_label_name_are_refused() {
    let e = Matcher::new(MatchType::Equal, "", "x").unwrap_err();
    assert!(matches!(e, Error::InvalidMatcher { .. }), "{e}");
    assert!(e.to_string().contains("empty label name"), "{e}");
    assert!(matches!(
        Matcher::new(MatchType::Regex, "", ".*"),
        Err(Error::InvalidMatcher { .. })
    ));
    let db = Db::open_in_memory(Options::default()).unwrap();
    one_series(&db);
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    for ms in [
        vec![Matcher::equal("", "x")],
        vec![Matcher::equal("job", "a"), Matcher::not_equal("", "x")],
    ] {
        let e = q.select(&ms).map(drop).unwrap_err();
        assert!(matches!(e, Error::InvalidMatcher { .. }), "{e}");
        let e = db.delete(0, 10_000, &ms).unwrap_err();
        assert!(matches!(e, Error::InvalidMatcher { .. }), "{e}");
    }
    assert_eq!(count(&db), 10);
}

/// Every path under `dir`, relative, sorted.
fn listing(dir: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, d: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn opening_a_file_says_it_is_not_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("afile");
    std::fs::write(&file, b"x").unwrap();
    for (open, bad) in [
        (file.clone(), file.clone()),
        (file.join("sub"), file.clone()),
    ] {
        for e in [
            Db::open(&open, Options::default()).err().unwrap(),
            Db::open_read_only(&open, Options::default()).err().unwrap(),
        ] {
            assert!(
                matches!(&e, Error::NotADirectory { path } if *path == bad),
                "{e}"
            );
            assert!(e.to_string().contains("is not a directory"), "{e}");
        }
    }
    // `wal` or `chunks_head` a file: named, and nothing is left behind.
    for sub in ["wal", "chunks_head"] {
        let dir = tmp.path().join(format!("db-{sub}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(sub), b"x").unwrap();
        let e = Db::open(&dir, Options::default()).err().unwrap();
        assert!(
            matches!(&e, Error::NotADirectory { path } if *path == dir.join(sub)),
            "{e}"
        );
        assert!(e.to_string().contains("is not a directory"), "{e}");
        assert_eq!(listing(&dir), vec![sub.to_string()]);
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn a_failed_open_leaves_nothing_behind_and_names_a_missing_meta_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("photos");
    let block = dir.join("01HZZZZZZZZZZZZZZZZZZZZZZZ");
    std::fs::create_dir_all(&block).unwrap();
    std::fs::write(block.join("meta.json"), b"{}").unwrap();
    std::fs::write(dir.join("holiday.jpg"), b"jpeg").unwrap();
    let before = listing(&dir);
    let e = Db::open(&dir, Options::default()).err().unwrap();
    assert!(matches!(e, Error::Corruption { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("no \"version\" field"), "{msg}");
    assert!(!msg.contains("version 0"), "{msg}");
    assert_eq!(
        listing(&dir),
        before,
        "no lock file, wal/ or chunks_head/ left behind"
    );
    // Read-only: the same error, and nothing written either.
    let e = Db::open_read_only(&dir, Options::default()).err().unwrap();
    assert!(matches!(e, Error::Corruption { .. }), "{e}");
    assert_eq!(listing(&dir), before);
    // An open that succeeds keeps what it created.
    let fresh = tmp.path().join("a/b/db");
    Db::open(&fresh, Options::default())
        .unwrap()
        .close()
        .unwrap();
    assert!(fresh.join("lock").exists() && fresh.join("wal").is_dir());
}

#[test]
fn a_read_only_file_system_names_open_read_only() {
    use annals::unstable::fault::{Fault, FaultPlan, Op};
    let tmp = tempfile::tempdir().unwrap();
    let existing = tmp.path().join("ro");
    Db::open(&existing, Options::default())
        .unwrap()
        .close()
        .unwrap();
    std::fs::remove_file(existing.join("lock")).unwrap();
    let before = listing(&existing);
    // The first creation under the plan: the lock file, in an existing database; the
    // directory itself, for a new one.
    for dir in [existing.clone(), tmp.path().join("ro2/new")] {
        let plan = FaultPlan::install(tmp.path().join(dir.parent().unwrap())).unwrap();
        plan.inject(Op::Create, 1, Fault::ReadOnlyFs);
        let e = Db::open(&dir, Options::default()).err().unwrap();
        assert!(plan.fired().is_some(), "the fault was reached");
        drop(plan);
        assert!(matches!(e, Error::NotWritable { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("Read-only file system"), "{msg}");
        assert!(msg.contains("Db::open_read_only"), "{msg}");
    }
    assert_eq!(listing(&existing), before);
    assert!(!tmp.path().join("ro2/new").exists());
    Db::open_read_only(&existing, Options::default()).unwrap();
}

#[test]
fn block_ids_print_as_ulid_strings() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = Options::default();
    o.compaction = false;
    let db = Db::open(tmp.path().join("db"), o).unwrap();
    let l = Labels::new([("__name__", "up")]).unwrap();
    let mut app = db.appender();
    for t in 0..6 {
        app.append(None, &l, t * 3_600_000, 1.0).unwrap();
    }
    app.commit().unwrap();
    let stats = db.compact().unwrap();
    assert!(!stats.head_blocks.is_empty());
    let id: annals::BlockId = stats.head_blocks[0];
    let s = id.to_string();
    assert_eq!(s.len(), 26);
    assert_eq!(
        format!("{id:?}"),
        s,
        "Debug is the ULID string, not a 128-bit integer"
    );
    assert!(format!("{stats:?}").contains(&s), "{stats:?}");
    assert_eq!(s.parse::<annals::BlockId>().unwrap(), id);
    assert_eq!(db.blocks()[0].id(), id);
    assert!(db.dir().unwrap().join(&s).is_dir());
    let written = db.snapshot(tmp.path().join("snap"), true).unwrap();
    assert_eq!(written.len(), db.blocks().len() + 1);
    for w in &written {
        assert!(tmp
            .path()
            .join("snap")
            .join(w.to_string())
            .join("meta.json")
            .exists());
    }
}

#[test]
fn prometheus_name_rules_are_a_switch() {
    let weird = [
        Labels::new([("a-b", "1")]).unwrap(),
        Labels::new([("0a", "1")]).unwrap(),
        Labels::new([("héllo", "1")]).unwrap(),
        Labels::new([("__name__", "1bad metric")]).unwrap(),
        Labels::new([("__reserved", "1")]).unwrap(),
    ];
    let nul = Labels::new([("__name__", "up"), ("v", "a\0b")]).unwrap();
    // Off by default: the engine stores what Prometheus's TSDB stores.
    let db = Db::open_in_memory(Options::default()).unwrap();
    let mut app = db.appender();
    for l in weird.iter().chain([&nul]) {
        app.append(None, l, 1, 1.0).unwrap();
    }
    app.commit().unwrap();
    assert_eq!(db.head_stats().num_series, 6);
    // On: each is refused, nothing of it is created, and the appender goes on.
    let mut o = Options::default();
    o.prometheus_name_rules = true;
    let db = Db::open_in_memory(o).unwrap();
    let mut app = db.appender();
    for l in &weird {
        let e = app.append(None, l, 1, 1.0).unwrap_err();
        assert!(matches!(e, Error::InvalidLabelName { .. }), "{l}: {e}");
    }
    app.append(None, &nul, 1, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(db.head_stats().num_series, 1);
}

#[test]
fn a_live_prometheus_on_the_directory_is_refused_by_name() {
    let Some(prometheus) = on_path("prometheus") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1h\nscrape_configs: []\n",
    )
    .unwrap();
    let port = crate::support::free_port();
    let log_path = tmp.path().join("prometheus.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = KillOnDrop(
        std::process::Command::new(prometheus)
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    // Ready once the TSDB is open: its WAL segment and queries.active exist.
    let ready = (0..600).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("TSDB started"))
            && data.join("queries.active").exists()
            && data.join("wal/00000000").exists()
    });
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(ready, "prometheus did not start: {log}");
    let had_lock = data.join("lock").exists();
    let e = Db::open(&data, Options::default()).err().expect("refused");
    eprintln!("Db::open while prometheus runs: {e}");
    match &e {
        Error::PrometheusRunning { pid, process, .. } => {
            assert_eq!(*pid, server.0.id(), "{e}");
            assert!(process.contains("prometheus"), "{e}");
        }
        // A Prometheus that takes a lock file is excluded by it.
        Error::Locked { .. } => assert!(had_lock, "{e}"),
        _ => panic!("{e}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("Db::open_read_only"), "{msg}");
    assert_eq!(data.join("lock").exists(), had_lock, "nothing left behind");
    // The way out the error names works while Prometheus runs.
    Db::open_read_only(&data, Options::default()).unwrap();
    drop(server);
    Db::open(&data, Options::default())
        .unwrap()
        .close()
        .unwrap();
}
