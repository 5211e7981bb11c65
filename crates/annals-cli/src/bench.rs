//! `annals bench write|replay`: the workload of `promtool tsdb bench write` run against
//! annals, and the time to reopen (replay) the directory it leaves, so both engines can be
//! compared on equal terms (`scripts/compare-prometheus.sh`).
//!
//! The write workload follows Prometheus 2.42 `cmd/promtool/tsdb.go` (`writeBenchmark`,
//! `ingestScrapes`, `ingestScrapesShard`):
//!
//! * the first `metrics` distinct label sets of the input;
//! * rounds of 100 scrapes (so `scrapes` is rounded up to a multiple of 100, as promtool's
//!   `for i := 0; i < scrapeCount; i += 100` does); in each round the series are cut into
//!   shards of 1,000, appended concurrently, and the round ends when every shard is done;
//! * a shard appends one sample per series per scrape and commits once per scrape; the
//!   timestamp of scrape `k` (0-based over the whole run) is `30_000 * (k + 1)` ms;
//! * values restart at every round: scrape `j` of a round (0-based) writes
//!   `123456789 + 1000 * (j + 1)`, because promtool builds its per-series state anew for
//!   each round; for the same reason series refs are reused within a round and the first
//!   append of each round looks the series up by its labels.
//!
//! promtool reads label sets with a naive splitter (strip `"{}`, split at `,` and `:`), which
//! keeps the leading spaces of names and values and cuts values at a `:` (`host:9100`
//! becomes ` host`). annals parses the lines as JSON objects, so its series carry the real
//! labels; the number of series and samples is the same unless the mangling merges distinct
//! label sets (it does not on `fleet-20k.labels.jsonl`).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use annals::{Db, Labels, Options, SeriesRef, WalCompression};

use crate::gofmt;

/// Milliseconds between two scrapes (promtool's `timeDelta`).
pub const SCRAPE_INTERVAL_MS: i64 = 30_000;
/// Scrapes per round; every shard of a round runs this many before the next round starts.
pub const SCRAPES_PER_ROUND: usize = 100;
/// Series per shard (one appender, one commit per scrape).
pub const SHARD_SIZE: usize = 1_000;
/// The value every series starts from; each scrape adds [`VALUE_STEP`] before appending.
pub const FIRST_VALUE: i64 = 123_456_789;
/// What each scrape adds to a series' value.
pub const VALUE_STEP: i64 = 1_000;

/// Why a benchmark failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Reading the input or preparing the output directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of the input is not a JSON object of string label values.
    #[error("input line {line}: {reason}")]
    Input {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] annals::Error),
    /// Writing the report to stdout failed.
    #[error("writing the report: {0}")]
    Write(std::io::Error),
}

/// The timestamp and value of scrape `k` (0-based over the whole run) in the write workload.
pub fn scrape_sample(k: usize) -> (i64, f64) {
    let in_round = (k % SCRAPES_PER_ROUND) as i64;
    let t = SCRAPE_INTERVAL_MS * (k as i64 + 1);
    (t, (FIRST_VALUE + VALUE_STEP * (in_round + 1)) as f64)
}

/// Scrapes the write workload runs for `scrapes` requested: rounded up to whole rounds.
pub fn effective_scrapes(scrapes: usize) -> usize {
    scrapes.div_ceil(SCRAPES_PER_ROUND) * SCRAPES_PER_ROUND
}

/// Reads up to `n` distinct label sets, one JSON object per line (`{"__name__": "up", ...}`).
/// Blank lines are skipped; a label set seen before does not count (promtool dedups too).
pub fn read_label_sets(input: impl BufRead, n: usize) -> Result<Vec<Labels>, BenchError> {
    let mut out = Vec::with_capacity(n.min(1 << 20));
    let mut seen = std::collections::HashSet::new();
    for (i, line) in input.lines().enumerate() {
        if out.len() >= n {
            break;
        }
        let lineno = i as u64 + 1;
        let line = line.map_err(|e| BenchError::Input {
            line: lineno,
            reason: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| BenchError::Input {
            line: lineno,
            reason,
        };
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&line).map_err(|e| bad(format!("not a JSON object: {e}")))?;
        let mut pairs = Vec::with_capacity(obj.len());
        for (name, value) in &obj {
            let serde_json::Value::String(value) = value else {
                return Err(bad(format!("label {name:?} is not a string")));
            };
            pairs.push((name.as_str(), value.as_str()));
        }
        let labels = Labels::new(pairs).map_err(|e| bad(e.to_string()))?;
        if seen.insert(labels.clone()) {
            out.push(labels);
        }
    }
    Ok(out)
}

/// CPU time and peak resident memory of this process so far (`getrusage(RUSAGE_SELF)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// User CPU time.
    pub user: Duration,
    /// System CPU time.
    pub system: Duration,
    /// Peak resident set size in bytes (`ru_maxrss`).
    pub max_rss_bytes: u64,
}

impl Usage {
    /// The usage of this process, or `None` if `getrusage` fails (it cannot for
    /// `RUSAGE_SELF`, but the report should not die over it).
    pub fn of_self() -> Option<Usage> {
        // SAFETY: `getrusage` writes a `struct rusage` into the zeroed value we own; all-zero
        // bytes are a valid `rusage` (plain integers).
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable `rusage`.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
            return None;
        }
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        Some(Usage {
            user: tv(ru.ru_utime),
            system: tv(ru.ru_stime),
            // Linux reports kilobytes.
            max_rss_bytes: (ru.ru_maxrss.max(0) as u64) * 1024,
        })
    }

    fn report(out: &mut dyn Write) -> std::io::Result<()> {
        if let Some(u) = Usage::of_self() {
            writeln!(
                out,
                " > cpu seconds: {:.3} (user {:.3}, sys {:.3})",
                (u.user + u.system).as_secs_f64(),
                u.user.as_secs_f64(),
                u.system.as_secs_f64()
            )?;
            writeln!(
                out,
                " > peak RSS: {:.1} MiB",
                u.max_rss_bytes as f64 / (1 << 20) as f64
            )?;
        }
        Ok(())
    }
}

/// What `bench write` does.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Label sets to read from the input.
    pub metrics: usize,
    /// Scrapes to simulate (rounded up to a multiple of 100).
    pub scrapes: usize,
    /// Output directory: wiped, then the database is created in `<out>/storage`.
    pub out: PathBuf,
    /// Threads appending shards; `None`: min(shards, available parallelism).
    pub threads: Option<usize>,
    /// WAL record compression. promtool's bench runs with `tsdb.DefaultOptions()`, whose
    /// `WALCompression` is false in 2.42, so [`WalCompression::None`] gives the same workload.
    pub wal_compression: WalCompression,
}

/// What `bench write` measured.
#[derive(Debug, Clone, Copy)]
pub struct WriteReport {
    /// Samples appended and committed.
    pub samples: u64,
    /// Wall time of the ingestion stage.
    pub ingest: Duration,
}

/// Runs `promtool tsdb bench write`'s stages (`readData`, `ingestScrapes`, `stopStorage`)
/// against a new on-disk database, printing promtool's lines to `out`, then the CPU time and
/// peak RSS of the process.
pub fn write(
    input: impl BufRead,
    opts: &WriteOptions,
    out: &mut dyn Write,
) -> Result<WriteReport, BenchError> {
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BenchError::Io { path, source }
    };
    match std::fs::remove_dir_all(&opts.out) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_at(&opts.out)(e)),
        _ => {}
    }
    std::fs::create_dir_all(&opts.out).map_err(io_at(&opts.out))?;
    let mut db_opts = Options::default();
    // promtool calls DisableCompactions(): the whole run stays in the head and the WAL.
    db_opts.compaction = false;
    db_opts.wal_compression = opts.wal_compression;
    let db = Db::open(opts.out.join("storage"), db_opts)?;
    let compression = match opts.wal_compression {
        WalCompression::None => "none",
        WalCompression::Snappy => "snappy",
    };
    writeln!(out, " > WAL compression: {compression}").map_err(BenchError::Write)?;

    let labels = stage(out, "readData", || read_label_sets(input, opts.metrics))?;
    let (samples, ingest) = {
        stage_start(out, "ingestScrapes")?;
        let start = Instant::now();
        let n = ingest_scrapes(&db, &labels, opts.scrapes, opts.threads)?;
        writeln!(out, "ingestion completed").map_err(BenchError::Write)?;
        let took = start.elapsed();
        stage_end(out, "ingestScrapes", took)?;
        (n, took)
    };
    writeln!(out, " > total samples: {samples}").map_err(BenchError::Write)?;
    writeln!(
        out,
        " > samples/sec: {}",
        samples as f64 / ingest.as_secs_f64()
    )
    .map_err(BenchError::Write)?;
    stage(out, "stopStorage", || db.close().map_err(BenchError::from))?;
    Usage::report(out).map_err(BenchError::Write)?;
    Ok(WriteReport { samples, ingest })
}

/// Appends the workload: rounds of [`SCRAPES_PER_ROUND`] scrapes, each round's shards spread
/// over a pool of threads that take the next shard from a shared counter.
///
/// promtool starts one goroutine per shard; Go runs them on GOMAXPROCS (= CPU count) OS
/// threads. A pool of min(shards, CPUs) threads gives annals the same hardware concurrency
/// without measuring the kernel's scheduling of 20+ OS threads contending for 2 cores, which
/// goroutines do not pay. Shards hold disjoint series, so the order in which a thread runs
/// them does not change what is stored.
fn ingest_scrapes(
    db: &Db,
    labels: &[Labels],
    scrapes: usize,
    threads: Option<usize>,
) -> Result<u64, BenchError> {
    let shards: Vec<&[Labels]> = labels.chunks(SHARD_SIZE).collect();
    if shards.is_empty() {
        return Ok(0);
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.unwrap_or(cpus).clamp(1, shards.len());
    let mut total = 0u64;
    for first in (0..scrapes).step_by(SCRAPES_PER_ROUND) {
        let next = AtomicUsize::new(0);
        let failed: Mutex<Option<annals::Error>> = Mutex::new(None);
        let done = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= shards.len() {
                        return;
                    }
                    match ingest_shard(db, shards[i], first) {
                        Ok(n) => {
                            done.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => {
                            // Stop handing out shards; keep the first error.
                            next.store(shards.len(), Ordering::Relaxed);
                            failed
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e.into());
        }
        total += done.into_inner() as u64;
    }
    Ok(total)
}

/// One shard for one round: [`SCRAPES_PER_ROUND`] scrapes from global scrape `first`, one
/// commit each. Returns the samples committed.
fn ingest_shard(db: &Db, series: &[Labels], first: usize) -> annals::Result<usize> {
    let mut refs: Vec<Option<SeriesRef>> = vec![None; series.len()];
    let mut n = 0;
    for k in first..first + SCRAPES_PER_ROUND {
        let (t, v) = scrape_sample(k);
        let mut app = db.appender();
        for (labels, r) in series.iter().zip(refs.iter_mut()) {
            let got = app.append(*r, labels, t, v)?;
            r.get_or_insert(got);
            n += 1;
        }
        app.commit()?;
    }
    Ok(n)
}

/// What `bench replay` measured.
#[derive(Debug, Clone, Copy)]
pub struct ReplayReport {
    /// Wall time of `Db::open` (blocks, WAL replay, new segment).
    pub open: Duration,
    /// Samples the head holds after the open: restored from the memory snapshot and the
    /// m-mapped head chunks, and applied from the WAL.
    pub samples: u64,
    /// Series in the head after the open.
    pub series: u64,
}

/// Opens `dir` read-write as a restarting server would ([`Db::open`], which replays the WAL),
/// prints the open time and the replayed samples and rate, then closes it. Background
/// compaction stays off so the open measures the replay alone and leaves no new blocks.
pub fn replay(dir: &Path, out: &mut dyn Write) -> Result<ReplayReport, BenchError> {
    if !dir.is_dir() {
        return Err(BenchError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        });
    }
    let mut db_opts = Options::default();
    db_opts.compaction = false;
    let start = Instant::now();
    stage_start(out, "openDB")?;
    let db = Db::open(dir, db_opts)?;
    let open = start.elapsed();
    stage_end(out, "openDB", open)?;
    let stats = db.replay_stats().cloned().unwrap_or_default();
    let samples = stats.samples + stats.mmapped_samples + stats.samples_in_snapshot;
    let series = db.head_stats().num_series;
    let w = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(BenchError::Write);
    w(out, format!(" > open seconds: {:.6}", open.as_secs_f64()))?;
    w(out, format!(" > samples replayed: {samples}"))?;
    w(
        out,
        format!(
            " > of which: memory snapshot {}, m-mapped chunks {}, WAL {}",
            stats.samples_in_snapshot, stats.mmapped_samples, stats.samples
        ),
    )?;
    w(out, format!(" > series replayed: {series}"))?;
    w(
        out,
        format!(" > samples/sec: {}", samples as f64 / open.as_secs_f64()),
    )?;
    stage(out, "closeDB", || db.close().map_err(BenchError::from))?;
    Usage::report(out).map_err(BenchError::Write)?;
    Ok(ReplayReport {
        open,
        samples,
        series,
    })
}

fn stage_start(out: &mut dyn Write, name: &str) -> Result<(), BenchError> {
    writeln!(out, ">> start stage={name}")
        .and_then(|()| out.flush())
        .map_err(BenchError::Write)
}

fn stage_end(out: &mut dyn Write, name: &str, took: Duration) -> Result<(), BenchError> {
    let ns = i64::try_from(took.as_nanos()).unwrap_or(i64::MAX);
    writeln!(
        out,
        ">> completed stage={name} duration={}",
        gofmt::duration(ns)
    )
    .and_then(|()| out.flush())
    .map_err(BenchError::Write)
}

/// promtool's `measureTime`: prints the start and completion lines around `f`.
fn stage<T>(
    out: &mut dyn Write,
    name: &str,
    f: impl FnOnce() -> Result<T, BenchError>,
) -> Result<T, BenchError> {
    stage_start(out, name)?;
    let start = Instant::now();
    let v = f()?;
    stage_end(out, name, start.elapsed())?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_samples_follow_promtool() {
        assert_eq!(scrape_sample(0), (30_000, 123_457_789.0));
        assert_eq!(scrape_sample(99), (3_000_000, 123_556_789.0));
        // A new round restarts the values, not the timestamps.
        assert_eq!(scrape_sample(100), (3_030_000, 123_457_789.0));
        assert_eq!(effective_scrapes(0), 0);
        assert_eq!(effective_scrapes(1), 100);
        assert_eq!(effective_scrapes(100), 100);
        assert_eq!(effective_scrapes(3001), 3100);
    }

    #[test]
    fn label_sets_are_deduplicated_and_limited() {
        let input = concat!(
            "{\"__name__\": \"up\", \"instance\": \"a:9100\"}\n",
            "\n",
            "{\"instance\": \"a:9100\", \"__name__\": \"up\"}\n",
            "{\"__name__\": \"up\", \"instance\": \"b:9100\"}\n",
            "{\"__name__\": \"up\", \"instance\": \"c:9100\"}\n",
        );
        let got = read_label_sets(input.as_bytes(), 2).unwrap();
        let shown: Vec<String> = got.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            shown,
            [
                "{__name__=\"up\", instance=\"a:9100\"}",
                "{__name__=\"up\", instance=\"b:9100\"}"
            ]
        );
    }

    #[test]
    fn bad_lines_name_their_line() {
        let err = read_label_sets("{\"a\": \"b\"}\n[1]\n".as_bytes(), 10).unwrap_err();
        assert!(matches!(err, BenchError::Input { line: 2, .. }), "{err}");
        let err = read_label_sets("{\"a\": 1}\n".as_bytes(), 10).unwrap_err();
        assert!(matches!(err, BenchError::Input { line: 1, .. }), "{err}");
    }
}
