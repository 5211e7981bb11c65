//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use annals::unstable::chunkenc::XorIter;
use annals::{Db, Labels, Matcher, Series, SeriesSet};

/// Series (as text) and their samples as (timestamp, value bits).
pub type Dump = BTreeMap<String, Vec<(i64, u64)>>;

/// Series and their samples as (timestamp, value bits), in the order a query returns them.
pub type Selected = Vec<(Labels, Vec<(i64, u64)>)>;

/// What `db` returns for `matchers` in `[mint, maxt]`; values as bits so NaNs compare.
pub fn select(db: &Db, matchers: &[Matcher], mint: i64, maxt: i64) -> Selected {
    let q = db.querier(mint, maxt).unwrap();
    read_set(q.select(matchers).unwrap())
}

/// Every series of a selection with its samples; values as bits so NaNs compare. Each
/// series' raw chunks are checked against its samples on the way: in time order, not
/// overlapping, their bounds those of their samples, and decoding to exactly the samples.
pub fn read_set(set: SeriesSet) -> Selected {
    set.map(|s| {
        let v = sample_bits(&s);
        let mut decoded = Vec::new();
        let mut prev_max = None;
        for c in s.chunks() {
            let c = c.unwrap();
            assert!(
                prev_max.is_none_or(|p| p < c.min_time),
                "{}: chunks overlap",
                s.labels()
            );
            prev_max = Some(c.max_time);
            if c.encoding != annals::ChunkEncoding::Xor {
                // Native histograms: `samples` (floats only) skips them.
                continue;
            }
            let samples: Vec<(i64, u64)> = XorIter::new(&c.data)
                .map(|x| x.map(|x| (x.t, x.v.to_bits())).unwrap())
                .collect();
            assert_eq!(
                (samples.first().map(|x| x.0), samples.last().map(|x| x.0)),
                (Some(c.min_time), Some(c.max_time)),
                "{}: chunk bounds",
                s.labels()
            );
            decoded.extend(samples);
        }
        assert_eq!(decoded, v, "{}: raw chunks and samples differ", s.labels());
        (s.labels().clone(), v)
    })
    .collect()
}

/// The samples of `s` as (timestamp, value bits).
pub fn sample_bits(s: &Series) -> Vec<(i64, u64)> {
    s.to_vec()
        .unwrap()
        .iter()
        .map(|x| (x.t, x.v.to_bits()))
        .collect()
}

/// As [`select`], through [`Querier::select_unsorted`](annals::Querier::select_unsorted),
/// sorted afterwards.
pub fn select_unsorted(db: &Db, matchers: &[Matcher], mint: i64, maxt: i64) -> Selected {
    let q = db.querier(mint, maxt).unwrap();
    let mut got = read_set(q.select_unsorted(matchers).unwrap());
    got.sort_by(|a, b| a.0.cmp(&b.0));
    got
}

/// Everything `db` holds for `matchers`, keyed by the series' text form.
pub fn dump(db: &Db, matchers: &[Matcher]) -> Dump {
    select(db, matchers, i64::MIN, i64::MAX)
        .into_iter()
        .map(|(l, s)| (l.to_string(), s))
        .collect()
}

/// What a model holds for `matchers` in `[mint, maxt]`, by the same rules a query follows (an
/// absent label matches as the empty string; series without samples in range are left out).
pub fn model_select(
    model: &BTreeMap<Labels, BTreeMap<i64, u64>>,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
) -> Selected {
    model
        .iter()
        .filter(|(l, _)| {
            matchers
                .iter()
                .all(|m| m.matches(l.get(m.name()).unwrap_or("")))
        })
        .map(|(l, s)| {
            (
                l.clone(),
                s.range(mint..=maxt)
                    .map(|(&t, &v)| (t, v))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

/// A xorshift step: deterministic pseudo-random numbers for kill timings.
pub fn next_random(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Runs the ignored test `child_test` of this test binary as a child process with `env` set to
/// `dir`, kills it with SIGKILL after `run_for`, and returns the numbers it printed on complete
/// lines (libtest's own header lines carry none): the commits it acknowledged.
pub fn run_and_kill(child_test: &str, env: &str, dir: &Path, run_for: Duration) -> Vec<i64> {
    run_and_kill_output(child_test, env, dir, run_for)
        .lines()
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect()
}

/// As [`run_and_kill`], but returns the complete lines the child printed (a line cut by the
/// kill is dropped).
pub fn run_and_kill_output(child_test: &str, env: &str, dir: &Path, run_for: Duration) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            child_test,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(run_for);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out.truncate(out.rfind('\n').map_or(0, |i| i + 1));
    out
}

/// A port on 127.0.0.1 free a moment ago, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A binary on PATH (`prometheus`, `curl`), or `None` after printing why the test skips; in
/// CI (`CI=true`) a missing binary fails the test instead.
pub fn on_path(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is required in CI"
        );
        eprintln!("SKIPPED: {name} not found on PATH");
    }
    found
}

/// A child process (a server) killed when the test ends, however it ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
