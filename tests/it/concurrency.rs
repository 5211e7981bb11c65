//! Many writers and readers at once: readers never observe part of a commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use annals::{Db, Labels, Matcher, Options};

const WRITERS: usize = 4;
const SERIES_PER_WRITER: usize = 50;
const COMMITS: i64 = 300;

#[test]
fn readers_never_see_a_partial_commit() {
    let db = Db::open_in_memory(Options::default()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            thread::spawn(move || {
                let labels: Vec<Labels> = (0..SERIES_PER_WRITER)
                    .map(|i| {
                        Labels::new([
                            ("__name__", "m"),
                            ("writer", &w.to_string()),
                            ("i", &i.to_string()),
                        ])
                        .unwrap()
                    })
                    .collect();
                let mut refs = vec![None; labels.len()];
                // Every commit writes timestamp `c` to all of this writer's series.
                for c in 1..=COMMITS {
                    let mut app = db.appender();
                    for (i, l) in labels.iter().enumerate() {
                        refs[i] = Some(app.append(refs[i], l, c, c as f64).unwrap());
                    }
                    app.commit().unwrap();
                }
            })
        })
        .collect();

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let db = db.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let mut checks = 0u64;
                while !stop.load(Ordering::Relaxed) || checks == 0 {
                    for w in 0..WRITERS {
                        let q = db.querier(i64::MIN, i64::MAX).unwrap();
                        let set: Vec<_> = q
                            .select(&[Matcher::equal("writer", &w.to_string())])
                            .unwrap()
                            .collect();
                        let lens: Vec<usize> =
                            set.iter().map(|s| s.to_vec().unwrap().len()).collect();
                        if let Some(&first) = lens.first() {
                            assert_eq!(
                                set.len(),
                                SERIES_PER_WRITER,
                                "a commit's series appear together"
                            );
                            assert!(
                                lens.iter().all(|&n| n == first),
                                "partial commit seen: {lens:?}"
                            );
                        }
                        checks += 1;
                    }
                }
                checks
            })
        })
        .collect();

    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let total: usize = db
        .querier(i64::MIN, i64::MAX)
        .unwrap()
        .select(&[])
        .unwrap()
        .map(|s| s.to_vec().unwrap().len())
        .sum();
    assert_eq!(total, WRITERS * SERIES_PER_WRITER * COMMITS as usize);
}

/// Writers, readers, a compactor and a deleter at once on an on-disk database, checked
/// against a model: readers never see part of a commit or a gap (a commit lost or hidden by a
/// concurrent head compaction, head truncation or block publication), and after a reopen the
/// database holds exactly what was committed minus what was deleted.
#[test]
fn writers_readers_compaction_and_deletes_agree_with_the_model() {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicI64;

    const WRITERS: usize = 4;
    const SERIES: usize = 16;
    const COMMITS: i64 = 480;
    const STEP: i64 = 60_000; // 8 hours of commits: several head compactions
    const WINDOW: i64 = 5 * STEP;

    let tmp = tempfile::tempdir().unwrap();
    let mut o = Options::default();
    o.compaction = false;
    o.wal_sync = annals::WalSync::Never;
    o.wal_segment_size = 64 * 1024;
    o.retention_ms = None;
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    let series = |w: usize, i: usize| {
        Labels::new([
            ("__name__", "stress"),
            ("writer", &w.to_string()),
            ("i", &i.to_string()),
        ])
        .unwrap()
    };
    // Writer `WRITERS` (the victim) is the one the deleter deletes from.
    let progress: Arc<Vec<AtomicI64>> =
        Arc::new((0..=WRITERS).map(|_| AtomicI64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));

    // Writers keep in step, one commit each per timestamp: a writer left behind would fall
    // out of the head's appendable window (an `OutOfBounds` rejection, correctly).
    let step = Arc::new(std::sync::Barrier::new(WRITERS + 1));
    let writers: Vec<_> = (0..=WRITERS)
        .map(|w| {
            let (db, progress, step) = (db.clone(), progress.clone(), step.clone());
            thread::spawn(move || {
                let mut refs = vec![None; SERIES];
                for c in 1..=COMMITS {
                    step.wait();
                    let mut app = db.appender();
                    for (i, r) in refs.iter_mut().enumerate() {
                        *r = Some(app.append(*r, &series(w, i), c * STEP, c as f64).unwrap());
                    }
                    app.commit().unwrap();
                    progress[w].store(c, Ordering::Release);
                }
            })
        })
        .collect();

    let compactor = {
        let (db, stop) = (db.clone(), stop.clone());
        thread::spawn(move || {
            let mut blocks = 0;
            while !stop.load(Ordering::Acquire) {
                blocks += db.compact().unwrap().head_blocks.len();
                thread::yield_now();
            }
            blocks + db.compact().unwrap().head_blocks.len()
        })
    };

    let deleter = {
        let (db, stop, progress) = (db.clone(), stop.clone(), progress.clone());
        thread::spawn(move || {
            // Windows strictly below what the victim has committed: every sample in them
            // exists when the delete runs, and no later commit lands in them.
            let mut deleted = Vec::new();
            let mut next = 1;
            while !stop.load(Ordering::Acquire) {
                let done = progress[WRITERS].load(Ordering::Acquire) * STEP;
                let mint = next * 7 * WINDOW;
                if mint + WINDOW < done {
                    db.delete(
                        mint,
                        mint + WINDOW - 1,
                        &[Matcher::equal("writer", &WRITERS.to_string())],
                    )
                    .unwrap();
                    deleted.push((mint, mint + WINDOW - 1));
                    next += 1;
                } else {
                    thread::yield_now();
                }
            }
            deleted
        })
    };

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, stop) = (db.clone(), stop.clone());
            thread::spawn(move || {
                let mut checks = 0u64;
                while !stop.load(Ordering::Acquire) || checks == 0 {
                    for w in 0..WRITERS {
                        let q = db.querier(i64::MIN, i64::MAX).unwrap();
                        let set: Vec<Vec<i64>> = q
                            .select(&[Matcher::equal("writer", &w.to_string())])
                            .unwrap()
                            .map(|s| s.to_vec().unwrap().iter().map(|x| x.t).collect())
                            .collect();
                        if let Some(first) = set.first() {
                            assert_eq!(set.len(), SERIES, "a commit's series appear together");
                            let n = first.len() as i64;
                            let want: Vec<i64> = (1..=n).map(|c| c * STEP).collect();
                            for s in &set {
                                assert_eq!(s, &want, "writer {w}: partial commit or gap");
                            }
                        }
                        checks += 1;
                    }
                }
                checks
            })
        })
        .collect();

    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    let deleted = deleter.join().unwrap();
    let blocks = compactor.join().unwrap();
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert!(
        blocks >= 2,
        "compaction ran concurrently: {blocks} head blocks"
    );
    assert!(!deleted.is_empty(), "deletes ran concurrently");

    let mut model: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for w in 0..=WRITERS {
        for i in 0..SERIES {
            let v = (1..=COMMITS)
                .map(|c| (c * STEP, (c as f64).to_bits()))
                .filter(|(t, _)| w < WRITERS || !deleted.iter().any(|(a, b)| a <= t && t <= b))
                .collect();
            model.insert(series(w, i).to_string(), v);
        }
    }
    assert_eq!(crate::support::dump(&db, &[]), model, "live");
    db.close().unwrap();
    let db = Db::open(tmp.path(), o).unwrap();
    assert_eq!(crate::support::dump(&db, &[]), model, "after reopen");
    db.close().unwrap();
}

/// A commit that creates a series and appends to an existing one is seen wholly or not at
/// all, even when the new series is created while a query is selecting its candidates.
#[test]
fn a_commit_creating_series_is_never_seen_in_part() {
    const COMMITS: i64 = 3_000;
    let db = Db::open_in_memory(Options::default()).unwrap();
    let base = Labels::new([("__name__", "base")]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, base) = (db.clone(), base.clone());
        thread::spawn(move || {
            let mut r = None;
            for c in 1..=COMMITS {
                let mut app = db.appender();
                r = Some(app.append(r, &base, c, 0.0).unwrap());
                let fresh = Labels::new([("__name__", "fresh"), ("c", &c.to_string())]).unwrap();
                app.append(None, &fresh, c, 0.0).unwrap();
                app.commit().unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, stop) = (db.clone(), stop.clone());
            thread::spawn(move || {
                let mut checks = 0u64;
                while !stop.load(Ordering::Relaxed) || checks == 0 {
                    let q = db.querier(i64::MIN, i64::MAX).unwrap();
                    let (mut base_n, mut fresh) = (0usize, 0usize);
                    for s in q.select(&[]).unwrap() {
                        let n = s.to_vec().unwrap().len();
                        if s.labels().metric_name() == Some("base") {
                            base_n = n;
                        } else {
                            fresh += n;
                        }
                    }
                    assert_eq!(base_n, fresh, "a commit seen in part");
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    writer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

/// Head compaction never loses a commit that applies while the block is being written: every
/// sample a commit applied (`HeadStats::samples_appended`) is still readable afterwards, in
/// the new block or in the head.
#[test]
fn head_compaction_loses_no_concurrent_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = Options::default();
    o.compaction = false;
    o.retention_ms = None;
    o.block_range_ms = 1_000;
    o.wal_sync = annals::WalSync::Never;
    let db = Db::open(tmp.path(), o).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let db = db.clone();
            thread::spawn(move || {
                let l = Labels::new([("__name__", "late"), ("w", &w.to_string())]).unwrap();
                let mut t = 0i64;
                for _ in 0..3_000 {
                    // An appender opened now may commit after a compaction began.
                    let mut app = db.appender();
                    let now = db.head_stats().max_time.unwrap_or(0);
                    t = t.max(now - 400) + 1;
                    if app.append(None, &l, t, 1.0).is_ok() {
                        thread::yield_now();
                        app.commit().unwrap();
                    }
                    t += 1;
                }
            })
        })
        .collect();
    let compactor = {
        let (db, stop) = (db.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                db.compact().unwrap();
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    compactor.join().unwrap();
    let stats = db.head_stats();
    let stored: usize = crate::support::dump(&db, &[]).values().map(Vec::len).sum();
    assert!(!db.blocks().is_empty());
    assert_eq!(
        stored as u64, stats.samples_appended,
        "applied samples lost by a concurrent head compaction ({} dropped at commit)",
        stats.samples_dropped_at_commit
    );
}

/// A commit that returns `Ok` has stored every sample it accepted, whatever head compaction
/// does meanwhile (issue 15). Each writer keeps its last few appenders open while newer ones
/// move the head on, so compactions persist ranges that open appenders hold samples in; every
/// sample of every `Ok` commit is read back afterwards, and after a reopen.
#[test]
fn every_acknowledged_sample_survives_concurrent_head_compaction() {
    use std::collections::{BTreeMap, VecDeque};
    const HELD: usize = 6;
    let tmp = tempfile::tempdir().unwrap();
    let mut o = Options::default();
    o.compaction = false;
    o.retention_ms = None;
    o.block_range_ms = 1_000;
    o.wal_sync = annals::WalSync::Never;
    o.snapshot_on_close = false;
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let db = db.clone();
            thread::spawn(move || {
                let labels: Vec<Labels> = (0..4)
                    .map(|i| {
                        let (w, i) = (w.to_string(), i.to_string());
                        Labels::new([("__name__", "acked"), ("w", &w), ("i", &i)]).unwrap()
                    })
                    .collect();
                let mut acked: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
                let mut held = VecDeque::new();
                let mut commit = |(app, mine): (annals::Appender, Vec<(String, i64, u64)>)| {
                    if app.commit().is_ok() {
                        for (l, t, v) in mine {
                            acked.entry(l).or_default().push((t, v));
                        }
                    }
                };
                let mut t = 0i64;
                for c in 0..1_500u64 {
                    // The appender's window (fixed now) reaches 500 ms behind the head's max
                    // time; its samples sit 450 ms behind it, and it commits only after HELD
                    // newer appenders, while the clock moves the head on.
                    let mut app = db.appender();
                    let now = db.head_stats().max_time.unwrap_or(0);
                    t = t.max(now - 450) + 1;
                    let mut mine = Vec::new();
                    for l in &labels {
                        let v = (c * 10 + w) as f64;
                        if app.append(None, l, t, v).is_ok() {
                            mine.push((l.to_string(), t, v.to_bits()));
                        }
                    }
                    held.push_back((app, mine));
                    if held.len() > HELD {
                        commit(held.pop_front().expect("not empty"));
                    }
                    t += 1;
                    thread::sleep(std::time::Duration::from_micros(50));
                }
                held.into_iter().for_each(&mut commit);
                acked
            })
        })
        .collect();
    // The clock moves the head on, 50 ms at a time, about every 200 µs.
    let clock = {
        let (db, stop) = (db.clone(), stop.clone());
        thread::spawn(move || {
            let l = Labels::new([("__name__", "clock")]).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let mut app = db.appender();
                let now = db.head_stats().max_time.unwrap_or(0);
                app.append(None, &l, now + 50, 0.0).unwrap();
                app.commit().unwrap();
                thread::sleep(std::time::Duration::from_micros(200));
            }
        })
    };
    let compactor = {
        let (db, stop) = (db.clone(), stop.clone());
        thread::spawn(move || {
            let mut blocks = 0;
            while !stop.load(Ordering::Relaxed) {
                blocks += db.compact().unwrap().head_blocks.len();
            }
            blocks
        })
    };
    let mut acked = BTreeMap::new();
    for w in writers {
        acked.extend(w.join().unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    clock.join().unwrap();
    assert!(compactor.join().unwrap() > 0, "no head compaction ran");
    let n: usize = acked.values().map(Vec::len).sum();
    assert!(n > 1_000, "only {n} samples acknowledged");
    let check = |db: &Db, when: &str| {
        let stored = crate::support::dump(db, &[Matcher::equal("__name__", "acked")]);
        for (l, want) in &acked {
            let got = stored.get(l).map(Vec::as_slice).unwrap_or(&[]);
            let missing: Vec<_> = want.iter().filter(|s| !got.contains(s)).collect();
            assert!(
                missing.is_empty(),
                "{when}: {} of {} acknowledged samples of {l} missing, first {:?} \
                 (samples_dropped_at_commit {})",
                missing.len(),
                want.len(),
                missing.first(),
                db.head_stats().samples_dropped_at_commit
            );
        }
    };
    check(&db, "live");
    db.close().unwrap();
    let db = Db::open(tmp.path(), o).unwrap();
    check(&db, "after reopen");
}
