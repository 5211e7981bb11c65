//! The queue against a real annals WAL and an injected client, on tokio's paused clock: no
//! test sleeps in real time, and virtual time shows the backoff and `Retry-After` delays.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use annals::{Db, Labels, Options};
use annals_prompb::decode_write_request;
use annals_remote::client::{BoxFuture, SendError, WriteClient};
use annals_remote::{Endpoint, QueueConfig, RemoteWrite};
use bytes::Bytes;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;

type Got = BTreeMap<String, Vec<(i64, f64)>>;

/// What the mock does with a request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Ok,
    Fail500,
    TooMany(u64),
    Reject400,
    Hang,
}

#[derive(Default)]
struct Mock {
    /// Answers for the next requests, in order; then `Ok`.
    script: Mutex<Vec<Answer>>,
    /// Requests containing this series are rejected with 400.
    poison: Mutex<Option<String>>,
    accepted: Mutex<Got>,
    /// Every request: (virtual time, samples, answer).
    log: Mutex<Vec<(tokio::time::Instant, Got, Answer)>>,
}

fn decode(body: &[u8]) -> Got {
    let req = decode_write_request(body, 1 << 26).expect("valid request");
    let mut out = Got::new();
    for ts in req.timeseries {
        let name: Vec<String> = ts
            .labels
            .iter()
            .map(|l| format!("{}={}", l.name, l.value))
            .collect();
        let e = out.entry(name.join(",")).or_default();
        for s in ts.samples {
            e.push((s.timestamp, s.value));
        }
    }
    out
}

impl WriteClient for Mock {
    fn store(&self, body: Bytes) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(async move {
            let got = decode(&body);
            let mut answer = {
                let mut s = self.script.lock();
                if s.is_empty() {
                    Answer::Ok
                } else {
                    s.remove(0)
                }
            };
            if let Some(p) = self.poison.lock().as_ref() {
                if got.keys().any(|k| k.contains(p.as_str())) {
                    answer = Answer::Reject400;
                }
            }
            self.log
                .lock()
                .push((tokio::time::Instant::now(), got.clone(), answer));
            match answer {
                Answer::Ok => {
                    let mut acc = self.accepted.lock();
                    for (k, v) in got {
                        acc.entry(k).or_default().extend(v);
                    }
                    Ok(())
                }
                Answer::Fail500 => Err(SendError::Recoverable {
                    reason: "500".into(),
                    retry_after: None,
                }),
                Answer::TooMany(s) => Err(SendError::Recoverable {
                    reason: "429".into(),
                    retry_after: Some(Duration::from_secs(s)),
                }),
                Answer::Reject400 => Err(SendError::Rejected {
                    status: 400,
                    reason: "bad".into(),
                }),
                Answer::Hang => std::future::pending().await,
            }
        })
    }
}

fn write(db: &Db, series: usize, from: i64, to: i64) -> Got {
    let mut want = Got::new();
    for t in from..to {
        let mut app = db.appender();
        for s in 0..series {
            let l = Labels::new([("__name__", "m"), ("s", &format!("{s:03}"))]).unwrap();
            let v = (t * 7 + s as i64) as f64;
            app.append(None, &l, t * 1000, v).unwrap();
            want.entry(format!("__name__=m,s={s:03}"))
                .or_default()
                .push((t * 1000, v));
        }
        app.commit().unwrap();
    }
    want
}

fn cfg() -> QueueConfig {
    QueueConfig {
        max_samples_per_send: 50,
        batch_send_deadline: Duration::from_secs(5),
        max_lag: None,
        ..QueueConfig::default()
    }
}

async fn start(dir: &std::path::Path, mock: Arc<Mock>, q: QueueConfig) -> RemoteWrite {
    start_with(dir, mock, q, |_| {}).await
}

async fn start_with(
    dir: &std::path::Path,
    mock: Arc<Mock>,
    q: QueueConfig,
    set: impl FnOnce(&mut Endpoint),
) -> RemoteWrite {
    let mut reg = Registry::default();
    let mut e = Endpoint::new("test", mock, q);
    e.poll_interval = Duration::from_millis(20);
    set(&mut e);
    RemoteWrite::start(
        &dir.join("wal"),
        &dir.join("remote"),
        vec![e],
        &mut reg,
        &tokio::runtime::Handle::current(),
    )
    .unwrap()
}

/// Waits (in virtual time, yielding to the watcher thread in real time) until `f` holds.
async fn until(mut f: impl FnMut() -> bool) {
    for _ in 0..20_000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::thread::sleep(Duration::from_micros(200));
    }
    panic!("condition not reached");
}

fn open(dir: &std::path::Path) -> Db {
    let mut o = Options::default();
    o.compaction = false;
    Db::open(dir, o).unwrap()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn everything_arrives_in_order_in_bounded_batches() {
    let d = tempfile::tempdir().unwrap();
    let db = open(d.path());
    let want = write(&db, 20, 0, 30);
    let mock = Arc::new(Mock::default());
    let rw = start(d.path(), mock.clone(), cfg()).await;
    until(|| *mock.accepted.lock() == want).await;
    assert!(mock
        .log
        .lock()
        .iter()
        .all(|(_, g, _)| g.values().map(Vec::len).sum::<usize>() <= 50));
    rw.stop().await;
    db.close().unwrap();
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn retries_with_backoff_and_retry_after() {
    let d = tempfile::tempdir().unwrap();
    let db = open(d.path());
    let want = write(&db, 3, 0, 5);
    let mock = Arc::new(Mock::default());
    *mock.script.lock() = vec![
        Answer::Fail500,
        Answer::Fail500,
        Answer::TooMany(30),
        Answer::Fail500,
    ];
    let mut q = cfg();
    q.min_backoff = Duration::from_millis(100);
    q.max_backoff = Duration::from_secs(1);
    let rw = start(d.path(), mock.clone(), q).await;
    until(|| *mock.accepted.lock() == want).await;
    let log = mock.log.lock().clone();
    assert_eq!(log.len(), 5, "{log:?}");
    let gaps: Vec<Duration> = log.windows(2).map(|w| w[1].0 - w[0].0).collect();
    // 100 ms, 200 ms, then the server's 30 s, then doubled from it but capped at 1 s.
    assert!(
        gaps[0] >= Duration::from_millis(100) && gaps[0] < Duration::from_millis(150),
        "{gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_millis(200) && gaps[1] < Duration::from_millis(250),
        "{gaps:?}"
    );
    assert!(
        gaps[2] >= Duration::from_secs(30) && gaps[2] < Duration::from_millis(30_050),
        "{gaps:?}"
    );
    assert!(
        gaps[3] >= Duration::from_secs(1) && gaps[3] < Duration::from_millis(1050),
        "{gaps:?}"
    );
    // Every retry re-sent the same batch.
    assert!(log.iter().all(|(_, g, _)| *g == log[0].1));
    rw.stop().await;
    db.close().unwrap();
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_rejected_batch_is_dropped_and_the_queue_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let db = open(d.path());
    let mut want = write(&db, 10, 0, 20);
    let mock = Arc::new(Mock::default());
    *mock.poison.lock() = Some("s=004".into());
    let mut reg = Registry::default();
    let mut e = Endpoint::new("test", mock.clone(), cfg());
    e.poll_interval = Duration::from_millis(20);
    let rw = RemoteWrite::start(
        &d.path().join("wal"),
        &d.path().join("remote"),
        vec![e],
        &mut reg,
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    // Everything except the rejected batches arrives.
    until(|| {
        let log = mock.log.lock();
        let sent: usize = log
            .iter()
            .map(|(_, g, _)| g.values().map(Vec::len).sum::<usize>())
            .sum();
        sent >= 200
    })
    .await;
    let log = mock.log.lock().clone();
    let rejected: Got = log.iter().filter(|(_, _, a)| *a == Answer::Reject400).fold(
        Got::new(),
        |mut acc, (_, g, _)| {
            for (k, v) in g {
                acc.entry(k.clone()).or_default().extend(v.iter().copied());
            }
            acc
        },
    );
    assert!(!rejected.is_empty());
    // Nothing is retried after a 400, and the rest went through.
    assert_eq!(
        log.iter()
            .filter(|(_, _, a)| *a == Answer::Reject400)
            .count(),
        log.iter()
            .filter(|(_, g, _)| g.keys().any(|k| k.contains("s=004")))
            .count()
    );
    for (k, v) in &rejected {
        let w = want.get_mut(k).unwrap();
        w.retain(|s| !v.contains(s));
    }
    want.retain(|_, v| !v.is_empty());
    assert_eq!(*mock.accepted.lock(), want);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    let failed = rejected.values().map(Vec::len).sum::<usize>();
    assert!(text.contains(&format!("prometheus_remote_storage_samples_failed_total{{remote_name=\"test\",url=\"\"}} {failed}")), "{text}");
    rw.stop().await;
    db.close().unwrap();
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn restart_resumes_where_acknowledged_and_resends_only_the_batch_in_flight() {
    let d = tempfile::tempdir().unwrap();
    let db = open(d.path());
    let first = write(&db, 10, 0, 10);
    let mock = Arc::new(Mock::default());
    let rw = start(d.path(), mock.clone(), cfg()).await;
    until(|| *mock.accepted.lock() == first).await;
    rw.stop().await;

    // More data; the first batch of the next run hangs (as if the process died mid-send).
    let second = write(&db, 10, 10, 30);
    let mock2 = Arc::new(Mock::default());
    *mock2.script.lock() = vec![Answer::Ok, Answer::Ok, Answer::Hang];
    let mut q = cfg();
    q.flush_deadline = Duration::from_millis(100);
    let rw = start(d.path(), mock2.clone(), q.clone()).await;
    until(|| mock2.log.lock().len() >= 3).await;
    let hung = mock2.log.lock()[2].1.clone();
    // Nothing of the first run was sent again.
    for (_, g, _) in mock2.log.lock().iter() {
        for (k, v) in g {
            assert!(v.iter().all(|s| !first[k].contains(s)), "re-sent {k}");
        }
    }
    rw.stop().await;

    let third = write(&db, 10, 30, 35);
    let mock3 = Arc::new(Mock::default());
    let rw = start(d.path(), mock3.clone(), cfg()).await;
    let mut want = third.clone();
    for (k, v) in &hung {
        want.entry(k.clone()).or_default().extend(v.iter().copied());
    }
    for v in want.values_mut() {
        v.sort_by_key(|s| s.0);
    }
    until(|| {
        let mut acc = mock3.accepted.lock().clone();
        for v in acc.values_mut() {
            v.sort_by_key(|s| s.0);
        }
        // The hung batch plus the third run; whatever else run 2 did not get acknowledged.
        want.iter()
            .all(|(k, v)| acc.get(k).is_some_and(|a| v.iter().all(|s| a.contains(s))))
    })
    .await;
    // The first request of the restarted queue is exactly the batch that was in flight.
    assert_eq!(mock3.log.lock()[0].1, hung);
    // Together the runs delivered every sample.
    let mut all = mock.accepted.lock().clone();
    for m in [&mock2, &mock3] {
        for (k, v) in m.accepted.lock().iter() {
            all.entry(k.clone()).or_default().extend(v.iter().copied());
        }
    }
    for v in all.values_mut() {
        v.sort_by_key(|s| s.0);
        v.dedup();
    }
    let mut expect = first;
    for part in [second, third] {
        for (k, v) in part {
            expect.entry(k).or_default().extend(v);
        }
    }
    assert_eq!(all, expect);
    rw.stop().await;
    db.close().unwrap();
}

/// `want` with every series renamed by `f` (`None`: the series is not sent).
fn relabeled(want: &Got, f: impl Fn(&str) -> Option<String>) -> Got {
    want.iter()
        .filter_map(|(k, v)| f(k).map(|k| (k, v.clone())))
        .collect()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn external_labels_fill_gaps_and_relabeling_sees_them() {
    let d = tempfile::tempdir().unwrap();
    let db = open(d.path());
    let want = write(&db, 20, 0, 10);
    // `s` is a label of every series: the external `s` must not override it.
    let external = vec![
        ("zz".to_owned(), "y".to_owned()),
        ("b".to_owned(), "x".to_owned()),
        ("s".to_owned(), "ext".to_owned()),
    ];

    // Without relabeling, the queue takes the head's copy of the labels and merges the
    // external ones at sending, in name order.
    let mock = Arc::new(Mock::default());
    let looked_up = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (db2, n2, ext2) = (db.clone(), looked_up.clone(), external.clone());
    let rw = start_with(d.path(), mock.clone(), cfg(), move |e| {
        e.external_labels = ext2;
        e.series_labels = Some(Arc::new(move |r| {
            let l = annals::unstable::wal::head_series_labels(&db2, r);
            n2.fetch_add(l.is_some() as usize, std::sync::atomic::Ordering::Relaxed);
            l
        }));
    })
    .await;
    let expect = relabeled(&want, |k| {
        let s = k.strip_prefix("__name__=m,").unwrap();
        Some(format!("__name__=m,b=x,{s},zz=y"))
    });
    until(|| *mock.accepted.lock() == expect).await;
    rw.stop().await;
    assert_eq!(looked_up.load(std::sync::atomic::Ordering::Relaxed), 20);

    // With write relabeling: it sees the external labels (drops `zz`, which is then not
    // added back) and can drop series.
    let _ = std::fs::remove_dir_all(d.path().join("remote"));
    let mock = Arc::new(Mock::default());
    let rw = start_with(d.path(), mock.clone(), cfg(), move |e| {
        e.external_labels = external;
        e.mapper = Some(Arc::new(|l: &Labels| {
            assert_eq!(
                l.get("zz"),
                Some("y"),
                "relabeling sees the external labels"
            );
            if l.get("s") == Some("000") {
                return None;
            }
            Some(
                l.iter()
                    .filter(|x| x.name != "zz")
                    .map(|x| (x.name.to_owned(), x.value.to_owned()))
                    .collect(),
            )
        }));
    })
    .await;
    let expect = relabeled(&want, |k| {
        let s = k.strip_prefix("__name__=m,").unwrap();
        (s != "s=000").then(|| format!("__name__=m,b=x,{s}"))
    });
    until(|| *mock.accepted.lock() == expect).await;
    rw.stop().await;
    db.close().unwrap();
}
