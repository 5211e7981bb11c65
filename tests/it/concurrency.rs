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
