//! Head compaction into blocks, queries over blocks and head, retention, read-only opening.

use std::collections::BTreeMap;
use std::path::Path;

use annals::{Db, Error, Labels, Matcher, Options, WalSync};

use crate::promtool;
use crate::support::{dump, Dump};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000;

fn opts() -> Options {
    let mut o = Options::default();
    o.wal_sync = WalSync::Never;
    o.compaction = false;
    o.wal_segment_size = 128 * 1024;
    o.retention_ms = None;
    o
}

/// `series` series scraped every 15 s over `[from, to)`, one commit per scrape.
fn scrape(db: &Db, series: usize, from: i64, to: i64) {
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::new([
                ("__name__", "m"),
                ("job", ["a", "b"][i % 2]),
                ("i", &i.to_string()),
            ])
            .unwrap()
        })
        .collect();
    let mut refs = vec![None; series];
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            let v = if (t / 15_000 + i as i64) % 97 == 0 {
                annals::stale_nan()
            } else {
                (t / 1000) as f64 * 0.5 + i as f64
            };
            refs[i] = Some(app.append(refs[i], l, t, v).unwrap());
        }
        app.commit().unwrap();
        t += 15_000;
    }
}

fn block_ranges(db: &Db) -> Vec<(i64, i64)> {
    db.blocks()
        .iter()
        .map(|m| (m.min_time, m.max_time))
        .collect()
}

#[test]
fn head_compaction_cuts_prometheus_blocks_and_keeps_every_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    // 7 hours starting mid-range: the first block starts at the first sample (unaligned).
    let start = T0 + 1234;
    scrape(&db, 20, start, start + 7 * HOUR);
    let before = dump(&db, &[]);
    let stats = db.compact().unwrap();
    assert!(!stats.head_blocks.is_empty());
    let ranges = block_ranges(&db);
    let aligned_end = |t: i64| (t / (2 * HOUR)) * 2 * HOUR + 2 * HOUR;
    assert_eq!(ranges[0], (start, aligned_end(start)));
    for w in ranges.windows(2) {
        assert_eq!(w[0].1, w[1].0, "blocks are contiguous");
        assert_eq!(
            w[1].1 - w[1].0,
            2 * HOUR,
            "later blocks are aligned 2 h ranges"
        );
    }
    // The head keeps no more than 1.5 ranges.
    let hs = db.head_stats();
    assert!(hs.max_time.unwrap() - hs.min_time.unwrap() <= 3 * HOUR);
    assert_eq!(hs.min_time, Some(ranges.last().unwrap().1));
    assert!(
        dump(&db, &[]) == before,
        "queries see the same samples across blocks and head"
    );
    assert_eq!(dump(&db, &[Matcher::equal("job", "a")]).len(), 10);
    // Samples inside persisted blocks are out of bounds now.
    let mut app = db.appender();
    let l = Labels::new([("__name__", "late")]).unwrap();
    assert!(matches!(
        app.append(None, &l, start + 10, 1.0),
        Err(Error::OutOfBounds { .. })
    ));
    drop(app);

    // More data and another compaction checkpoint the WAL; reopening restores everything.
    scrape(&db, 20, start + 7 * HOUR, start + 13 * HOUR);
    let stats = db.compact().unwrap();
    assert!(!stats.checkpoints.is_empty(), "{stats:?}");
    let before = dump(&db, &[]);
    db.close().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert!(
        dump(&db, &[]) == before,
        "reopen after compaction and checkpoint"
    );
    // The clean close wrote a memory snapshot, which covers the checkpoint.
    let rs = db.replay_stats().unwrap();
    assert!(rs.checkpoint.is_some() || rs.snapshot.is_some(), "{rs:?}");
}

#[test]
fn promtool_reads_blocks_cut_from_the_head() {
    let Some(pt) = promtool::promtool() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    scrape(&db, 10, T0, T0 + 5 * HOUR);
    db.compact().unwrap();
    let blocks = db.blocks();
    assert!(blocks.len() >= 2);
    let ours = dump(&db, &[]);
    db.close().unwrap();

    let listed = promtool::run(&pt, &["tsdb", "list", tmp.path().to_str().unwrap()]);
    for b in &blocks {
        assert!(
            listed.contains(&b.ulid.to_string()),
            "promtool lists {}:\n{listed}",
            b.ulid
        );
    }
    promtool::run(
        &pt,
        &[
            "tsdb",
            "analyze",
            "--extended",
            tmp.path().to_str().unwrap(),
        ],
    );
    let scratch = tempfile::tempdir().unwrap();
    promtool::copy_dir(tmp.path(), scratch.path());
    std::fs::remove_file(scratch.path().join("lock")).ok();
    let lines = promtool::dump(&pt, scratch.path(), &[]);
    assert_eq!(lines.len(), ours.values().map(Vec::len).sum::<usize>());
    let mut theirs: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for l in &lines {
        let (labels, v, t) = promtool::parse_dump_line(l);
        theirs.entry(labels).or_default().push((t, v));
    }
    for (k, samples) in &ours {
        let mut t = theirs
            .remove(k)
            .unwrap_or_else(|| panic!("promtool misses {k}"));
        t.sort_by_key(|x| x.0);
        assert_eq!(samples.len(), t.len(), "{k}");
        for ((ot, ov), (tt, tv)) in samples.iter().zip(&t) {
            let ov = f64::from_bits(*ov);
            assert_eq!(ot, tt);
            assert!(
                (ov.is_nan() && tv.is_nan()) || (ov - tv).abs() <= ov.abs() * 1e-5,
                "{k} {ot}: {ov} vs {tv}"
            );
        }
    }
    assert!(theirs.is_empty());
}

#[test]
fn retention_by_time_and_by_size_drops_the_oldest_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    scrape(&db, 5, T0, T0 + 13 * HOUR);
    db.compact().unwrap();
    let all = db.blocks();
    assert!(all.len() >= 4, "{}", all.len());
    db.close().unwrap();

    // Time: keep blocks whose max time is at most 4 h behind the newest block's.
    let mut o = opts();
    o.retention_ms = Some(4 * HOUR);
    let db = Db::open(tmp.path(), o).unwrap();
    let stats = db.compact().unwrap();
    let newest = all.last().unwrap().max_time;
    let want: Vec<_> = all
        .iter()
        .filter(|m| newest - m.max_time <= 4 * HOUR)
        .map(|m| m.ulid)
        .collect();
    assert_eq!(db.blocks().iter().map(|m| m.ulid).collect::<Vec<_>>(), want);
    assert_eq!(stats.blocks_deleted.len(), all.len() - want.len());
    for u in &stats.blocks_deleted {
        assert!(!tmp.path().join(u.to_string()).exists());
    }
    let oldest_left = db.blocks()[0].min_time;
    let first = db
        .querier(i64::MIN, i64::MAX)
        .unwrap()
        .select(&[])
        .unwrap()
        .next()
        .unwrap();
    let first_t = first.samples().next().unwrap().unwrap().t;
    assert!(
        (oldest_left..oldest_left + 15_000).contains(&first_t),
        "{first_t} vs block start {oldest_left}"
    );
    db.close().unwrap();

    // Size: a budget smaller than everything keeps only the newest blocks that fit.
    let mut o = opts();
    o.max_bytes = Some(1);
    let db = Db::open(tmp.path(), o).unwrap();
    db.compact().unwrap();
    assert!(db.blocks().is_empty(), "a 1-byte budget keeps no block");
}

fn listing(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    for e in walk(dir) {
        let m = std::fs::metadata(&e).unwrap();
        out.push((
            e.strip_prefix(dir).unwrap().display().to_string(),
            m.len(),
            m.modified().unwrap(),
        ));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn read_only_open_sees_blocks_and_wal_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    scrape(&db, 8, T0, T0 + 5 * HOUR);
    db.compact().unwrap();
    let want = dump(&db, &[]);
    drop(db); // not closed: the WAL is as a crash left it
    let before = listing(tmp.path());

    let ro = Db::open_read_only(tmp.path(), opts()).unwrap();
    assert!(dump(&ro, &[]) == want);
    let err = ro
        .appender()
        .append(None, &Labels::new([("a", "b")]).unwrap(), T0 * 2, 1.0)
        .unwrap_err();
    assert!(matches!(err, Error::ReadOnly));
    assert!(matches!(ro.compact(), Err(Error::ReadOnly)));
    drop(ro);
    assert_eq!(
        listing(tmp.path()),
        before,
        "a read-only open leaves the directory as it was"
    );
    // It does not take the lock either: a writer can open beside it.
    let ro = Db::open_read_only(tmp.path(), opts()).unwrap();
    let rw = Db::open(tmp.path(), opts()).unwrap();
    assert!(dump(&rw, &[]) == dump(&ro, &[]));
}

#[test]
fn an_unreadable_block_names_itself_and_can_be_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    scrape(&db, 4, T0, T0 + 7 * HOUR);
    db.compact().unwrap();
    let blocks = db.blocks();
    db.close().unwrap();
    let victim = tmp.path().join(blocks[0].ulid.to_string());
    let index = victim.join("index");
    let mut data = std::fs::read(&index).unwrap();
    let n = data.len();
    data[n - 10] ^= 0xff; // inside the TOC
    std::fs::write(&index, &data).unwrap();

    let err = Db::open(tmp.path(), opts()).err().expect("corrupt block");
    let text = err.to_string();
    assert!(matches!(err, Error::Corruption { .. }), "{text}");
    assert!(text.contains(&blocks[0].ulid.to_string()), "{text}");
    assert!(text.contains("skip_unreadable_blocks"), "{text}");

    let mut o = opts();
    o.skip_unreadable_blocks = true;
    let db = Db::open(tmp.path(), o).unwrap();
    assert_eq!(db.unreadable_blocks().len(), 1);
    assert_eq!(db.blocks().len(), blocks.len() - 1);
    assert!(victim.exists(), "a skipped block is left on disk");
    assert!(!dump(&db, &[]).is_empty());
}

#[test]
fn overlapping_blocks_and_head_merge_without_duplicates() {
    // Two databases write the same series; copying one's blocks into the other makes
    // overlapping blocks (as a backfill does), which queries must merge.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let db_a = Db::open(a.path(), opts()).unwrap();
    scrape(&db_a, 3, T0, T0 + 5 * HOUR);
    db_a.compact().unwrap();
    let db_b = Db::open(b.path(), opts()).unwrap();
    scrape(&db_b, 3, T0 + 7_500, T0 + 5 * HOUR); // same series, timestamps in between
    db_b.compact().unwrap();
    let mut want = dump(&db_a, &[]);
    for (k, v) in dump(&db_b, &[]) {
        let e = want.entry(k).or_default();
        e.extend(v);
        e.sort();
        e.dedup_by_key(|x| x.0);
    }
    let blocks_b = db_b.blocks();
    db_b.close().unwrap();
    db_a.close().unwrap();
    for m in &blocks_b {
        promtool::copy_dir(
            &b.path().join(m.ulid.to_string()),
            &a.path().join(m.ulid.to_string()),
        );
    }
    let db = Db::open(a.path(), opts()).unwrap();
    let got = dump(&db, &[]);
    // The heads (WAL) of `a` hold what `a` did not persist; `b`'s head data is not copied.
    for (k, v) in &got {
        let w = &want[k];
        assert!(
            v.windows(2).all(|p| p[0].0 < p[1].0),
            "{k}: sorted, no duplicate timestamps"
        );
        assert!(v.iter().all(|x| w.contains(x)), "{k}: only written samples");
    }
    let persisted_b: usize = blocks_b.iter().map(|m| m.stats.num_samples as usize).sum();
    let a_total: usize = dump(&Db::open_read_only(a.path(), opts()).unwrap(), &[])
        .values()
        .map(Vec::len)
        .sum();
    assert!(a_total >= persisted_b);
}

#[test]
fn deletion_hides_samples_in_head_and_blocks_across_reopen_and_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    scrape(&db, 6, T0, T0 + 5 * HOUR);
    db.compact().unwrap();
    assert!(!db.blocks().is_empty());
    let before = dump(&db, &[]);
    // A range crossing the last block and the head, for job="a" only.
    let (mint, maxt) = (T0 + 2 * HOUR, T0 + 4 * HOUR);
    db.delete(mint, maxt, &[Matcher::equal("job", "a")])
        .unwrap();
    let expect = |d: &Dump| -> Dump {
        d.iter()
            .map(|(k, v)| {
                let hit = k.contains(r#"job="a""#);
                (
                    k.clone(),
                    v.iter()
                        .copied()
                        .filter(|(t, _)| !(hit && (mint..=maxt).contains(t)))
                        .collect(),
                )
            })
            .collect()
    };
    let want = expect(&before);
    assert!(dump(&db, &[]) == want, "deleted at once");
    assert!(db.blocks().iter().any(|m| m.stats.num_tombstones > 0));
    db.close().unwrap();

    let db = Db::open(tmp.path(), opts()).unwrap();
    assert!(db.replay_stats().unwrap().tombstones > 0);
    assert!(dump(&db, &[]) == want, "deletions survive a restart");
    // Compacting the head drops the deleted samples for good.
    scrape(&db, 6, T0 + 5 * HOUR, T0 + 8 * HOUR);
    db.compact().unwrap();
    let mut want_after = want.clone();
    for (k, v) in dump(&db, &[Matcher::equal("__name__", "m")]) {
        let w = want_after.get_mut(&k).unwrap();
        w.extend(v.into_iter().filter(|(t, _)| *t >= T0 + 5 * HOUR));
    }
    assert!(dump(&db, &[]) == want_after);
    db.close().unwrap();

    if let Some(pt) = promtool::promtool() {
        // promtool honours our tombstones and head-compacted blocks alike.
        let scratch = tempfile::tempdir().unwrap();
        promtool::copy_dir(tmp.path(), scratch.path());
        std::fs::remove_file(scratch.path().join("lock")).ok();
        // (promtool 2.42's --min-time/--max-time filter whole chunks, so filter here.)
        let lines = promtool::dump(&pt, scratch.path(), &[]);
        let in_range = |l: &&String| (mint..=maxt).contains(&promtool::parse_dump_line(l).2);
        assert!(
            lines
                .iter()
                .filter(in_range)
                .all(|l| !l.contains(r#"job="a""#)),
            "promtool shows deleted samples"
        );
        assert!(lines
            .iter()
            .filter(in_range)
            .any(|l| l.contains(r#"job="b""#)));
        assert_eq!(
            lines.len(),
            want_after.values().map(Vec::len).sum::<usize>()
        );
    }
}

#[test]
fn snapshot_with_head_is_a_database_annals_and_promtool_open() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    scrape(&db, 5, T0, T0 + 5 * HOUR);
    db.compact().unwrap();
    let want = dump(&db, &[]);
    let snap = tempfile::tempdir().unwrap();
    let target = snap.path().join("snap");
    assert!(matches!(
        db.snapshot(tmp.path(), true),
        Err(Error::InvalidArgument(_))
    ));
    let written = db.snapshot(&target, true).unwrap();
    assert_eq!(
        written.len(),
        db.blocks().len() + 1,
        "every block plus the head"
    );
    // The snapshot stays valid after the source moves on.
    scrape(&db, 5, T0 + 5 * HOUR, T0 + 9 * HOUR);
    db.compact().unwrap();
    let copy = Db::open(&target, opts()).unwrap();
    assert!(dump(&copy, &[]) == want);
    copy.close().unwrap();
    if let Some(pt) = promtool::promtool() {
        std::fs::remove_file(target.join("lock")).ok();
        let lines = promtool::dump(&pt, &target, &[]);
        assert_eq!(lines.len(), want.values().map(Vec::len).sum::<usize>());
    }
}

#[test]
fn leveled_compaction_merges_blocks_into_larger_aligned_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.max_block_range_ms = Some(18 * HOUR);
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    scrape(&db, 6, T0, T0 + 30 * HOUR);
    let want = dump(&db, &[]);
    let stats = db.compact().unwrap();
    assert!(!stats.merged_blocks.is_empty(), "{stats:?}");
    let blocks = db.blocks();
    assert!(blocks.iter().any(|m| m.compaction.level > 1));
    for m in blocks.iter().filter(|m| m.compaction.level > 1) {
        let span = m.max_time - m.min_time;
        assert!(span > 2 * HOUR && span <= 18 * HOUR, "{span}");
        assert!(m.compaction.sources.len() > 1);
    }
    for w in blocks.windows(2) {
        assert!(w[0].max_time <= w[1].min_time, "no overlaps");
    }
    for u in &stats.blocks_replaced {
        assert!(
            !tmp.path().join(u.to_string()).exists(),
            "replaced block {u} deleted"
        );
    }
    assert!(dump(&db, &[]) == want, "merging changes no sample");
    db.close().unwrap();
    let db = Db::open(tmp.path(), o).unwrap();
    assert!(dump(&db, &[]) == want);
}

#[test]
fn overlapping_blocks_are_merged_vertically_and_tombstones_cleaned() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for (dir, offset) in [(a.path(), 0), (b.path(), 7_500)] {
        let db = Db::open(dir, opts()).unwrap();
        scrape(&db, 3, T0 + offset, T0 + 5 * HOUR);
        db.compact().unwrap();
        db.close().unwrap();
    }
    let b_blocks = Db::open_read_only(b.path(), opts()).unwrap().blocks();
    for m in &b_blocks {
        promtool::copy_dir(
            &b.path().join(m.ulid.to_string()),
            &a.path().join(m.ulid.to_string()),
        );
    }
    let db = Db::open(a.path(), opts()).unwrap();
    let want = dump(&db, &[]);
    let before: usize = db.blocks().len();
    db.compact().unwrap();
    let blocks = db.blocks();
    assert!(
        blocks.len() < before,
        "overlapping blocks merged: {before} -> {}",
        blocks.len()
    );
    for w in blocks.windows(2) {
        assert!(w[0].max_time <= w[1].min_time, "no overlaps left");
    }
    assert!(
        dump(&db, &[]) == want,
        "reads agree before and after the vertical merge"
    );

    db.delete(T0, T0 + 2 * HOUR, &[Matcher::equal("i", "1")])
        .unwrap();
    let want = dump(&db, &[]);
    let stats = db.clean_tombstones().unwrap();
    assert!(!stats.merged_blocks.is_empty());
    assert!(db.blocks().iter().all(|m| m.stats.num_tombstones == 0));
    assert!(dump(&db, &[]) == want);
}

#[test]
fn a_commit_that_comes_after_a_compaction_persisted_its_range_fails_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    // The compaction gives up on the open appender quickly (it is this thread's own).
    o.compaction_appender_wait = std::time::Duration::from_millis(20);
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    let late = Labels::new([("__name__", "late")]).unwrap();
    let other = Labels::new([("__name__", "other")]).unwrap();
    scrape(&db, 2, T0, T0 + HOUR);
    // An appender opened now accepts samples from half a range behind the head's max time.
    let mut old = db.appender();
    old.append(None, &late, T0 + HOUR - 60_000, 1.0).unwrap();
    old.append(None, &other, T0 + 5 * HOUR, 1.0).unwrap();
    // Meanwhile the head grows and its first range is persisted.
    scrape(&db, 2, T0 + HOUR, T0 + 5 * HOUR);
    db.compact().unwrap();
    let floor = db.blocks().iter().map(|m| m.max_time).max().unwrap();
    assert!(T0 + HOUR - 60_000 < floor);
    let dropped_before = db.head_stats().samples_dropped_at_commit;
    match old.commit() {
        Err(Error::CommitOutOfBounds {
            timestamp,
            min_valid_time,
        }) => assert_eq!((timestamp, min_valid_time), (T0 + HOUR - 60_000, floor)),
        other => panic!("expected CommitOutOfBounds, got {other:?}"),
    }
    assert_eq!(db.head_stats().samples_dropped_at_commit, dropped_before);
    // Nothing of the commit is stored, not even its sample in the head's range; the same
    // answer after a restart (nothing reached the WAL).
    let gone = |db: &Db| {
        assert!(dump(db, &[Matcher::equal("__name__", "late")]).is_empty());
        assert!(dump(db, &[Matcher::equal("__name__", "other")]).is_empty());
    };
    gone(&db);
    db.close().unwrap();
    let db = Db::open(tmp.path(), o).unwrap();
    gone(&db);
}

#[test]
fn head_compaction_waits_for_an_open_appender_that_reaches_into_its_range() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    let late = Labels::new([("__name__", "late")]).unwrap();
    scrape(&db, 2, T0, T0 + HOUR);
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let writer = {
        let (db, late) = (db.clone(), late.clone());
        std::thread::spawn(move || {
            let mut app = db.appender();
            app.append(None, &late, T0 + HOUR - 60_000, 1.0).unwrap();
            opened_tx.send(()).unwrap();
            // Commits only once the head has moved on and a compaction has started.
            go_rx.recv().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
            app.commit()
        })
    };
    opened_rx.recv().unwrap();
    scrape(&db, 2, T0 + HOUR, T0 + 5 * HOUR);
    go_tx.send(()).unwrap();
    let stats = db.compact().unwrap();
    assert!(!stats.head_blocks.is_empty());
    writer.join().unwrap().unwrap();
    let first = db.blocks().into_iter().min_by_key(|m| m.min_time).unwrap();
    assert!(
        first.max_time > T0 + HOUR - 60_000,
        "the sample's range is persisted"
    );
    let want: Dump = [(
        "{__name__=\"late\"}".to_string(),
        vec![(T0 + HOUR - 60_000, 1f64.to_bits())],
    )]
    .into_iter()
    .collect();
    assert_eq!(dump(&db, &[Matcher::equal("__name__", "late")]), want);
    db.close().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(dump(&db, &[Matcher::equal("__name__", "late")]), want);
}

#[test]
fn block_postings_resolve_matchers_like_the_head() {
    // The same series in the head and, after compaction, in a block must select identically.
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    let sets = [
        vec![("n", "1")],
        vec![("n", "1"), ("i", "a")],
        vec![("n", "1"), ("i", "b")],
        vec![("n", "2")],
        vec![("n", "2.5")],
        vec![("n", "1"), ("i", "\n")],
    ];
    let labels: Vec<Labels> = sets
        .iter()
        .map(|p| Labels::new(p.iter().copied()).unwrap())
        .collect();
    let mut app = db.appender();
    for l in &labels {
        app.append(None, l, T0, 1.0).unwrap();
    }
    app.commit().unwrap();
    let cases: Vec<Vec<Matcher>> = [
        r#"{n="1"}"#,
        r#"{n="1",i="a"}"#,
        r#"{n="1",i!=""}"#,
        r#"{n="1",i=""}"#,
        r#"{i=~"a|b"}"#,
        r#"{n=~"1|2.5"}"#,
        r#"{n=~".+",n!~"1"}"#,
        r#"{n="1",i!~"a|b"}"#,
        r#"{n=~".+",i=~".*"}"#,
        r#"{i=~".+"}"#,
        r#"{n="1",i=~"^.*$"}"#,
        r#"{n="1",i!~".*"}"#,
    ]
    .iter()
    .map(|s| annals::parse_selector(s).unwrap())
    .collect();
    let in_head: Vec<Dump> = cases.iter().map(|ms| dump(&db, ms)).collect();
    let mut app = db.appender();
    for l in &labels {
        app.append(None, l, T0 + 5 * HOUR, 2.0).unwrap();
    }
    app.commit().unwrap();
    db.compact().unwrap();
    assert_eq!(db.blocks().len(), 1);
    for (ms, head) in cases.iter().zip(&in_head) {
        // Only the block holds T0 now.
        let q = db.querier(T0, T0).unwrap();
        let from_block: Vec<String> = q
            .select(ms)
            .unwrap()
            .map(|s| s.labels().to_string())
            .collect();
        assert_eq!(
            from_block,
            head.keys().cloned().collect::<Vec<_>>(),
            "matchers {ms:?}"
        );
    }
}

#[test]
fn wal_and_compaction_counters_sum_what_happened() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.wal_sync = WalSync::EveryCommit;
    let db = Db::open(tmp.path(), o).unwrap();
    let fresh = db.wal_stats().expect("a database on disk has a WAL");
    let totals = db.compaction_totals();
    assert_eq!(totals.runs, 0);
    assert_eq!(totals.duration, std::time::Duration::ZERO);

    scrape(&db, 4, T0, T0 + 7 * HOUR);
    let w = db.wal_stats().unwrap();
    assert!(w.records > fresh.records, "{w:?}");
    assert!(w.bytes_written > fresh.bytes_written, "{w:?}");
    // One commit per scrape, each synced before it returns.
    assert!(w.fsyncs >= (7 * HOUR / 15_000) as u64, "{w:?}");
    assert!(w.fsync_duration > fresh.fsync_duration, "{w:?}");

    let first = db.compact().unwrap();
    scrape(&db, 4, T0 + 7 * HOUR, T0 + 13 * HOUR);
    let second = db.compact().unwrap();
    let totals = db.compaction_totals();
    assert_eq!(totals.runs, 2);
    assert_eq!(totals.failed, 0);
    assert!(totals.duration > std::time::Duration::ZERO);
    assert_eq!(
        totals.head_blocks_written,
        (first.head_blocks.len() + second.head_blocks.len()) as u64
    );
    assert!(totals.head_blocks_written >= 4, "{totals:?}");
    assert_eq!(
        totals.checkpoints,
        (first.checkpoints.len() + second.checkpoints.len()) as u64
    );
    assert_eq!(
        totals.merged_blocks_written,
        (first.merged_blocks.len() + second.merged_blocks.len()) as u64
    );

    // Without a WAL there are no WAL counters; compactions are still counted.
    let mem = Db::open_in_memory(opts()).unwrap();
    assert!(mem.wal_stats().is_none());
    db.close().unwrap();
}
