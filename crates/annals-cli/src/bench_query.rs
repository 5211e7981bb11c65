//! `annals bench query DIR`: a query-timing server for side-by-side benchmarks. It opens DIR
//! read-only once (as a Prometheus server has its database open) and answers one query per
//! line of standard input with one JSON line of timings, so a driver can alternate between it
//! and a Prometheus server.
//!
//! Input lines (tab-separated, times in milliseconds):
//!
//! ```text
//! instant <TAB> <time> <TAB> <query>
//! range <TAB> <start> <TAB> <end> <TAB> <step> <TAB> <query>
//! ```
//!
//! Output: `{"cpu_us":..,"total_us":..,"prepare_us":..,"eval_us":..,"series":..,"samples":..,
//! "peak_samples":..,"result_series":..,"result_points":..}` or `{"cpu_us":..,"total_us":..,
//! "error":".."}`; at the end of
//! input, `{"max_rss_kib":..}`.

use std::io::{BufRead, Write};
use std::path::Path;

use annals::{Db, Options};
use annals_promql::{Engine, Value};

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// Peak resident set size of this process in KiB (`VmHWM`), if the platform reports it.
pub fn max_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) this process has used, in microseconds.
pub fn cpu_us() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

fn size(v: &Value) -> (usize, usize) {
    match v {
        Value::Scalar { .. } | Value::String { .. } => (1, 1),
        Value::Vector(s) => (s.len(), s.len()),
        Value::Matrix(m) => (m.len(), m.iter().map(|s| s.points.len()).sum()),
    }
}

/// Runs the line protocol over `input`, writing one JSON line per query to `out`.
pub fn serve(dir: &Path, input: impl BufRead, out: &mut dyn Write) -> anyhow::Result<()> {
    let db = Db::open_read_only(dir, Options::default())?;
    let mut opts = annals_promql::EngineOptions::default();
    if let Some(n) = std::env::var("ANNALS_PROMQL_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.parallelism = n;
    }
    let engine = Engine::new(opts);
    writeln!(out, "{{\"ready\":true}}")?;
    out.flush()?;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let cpu0 = cpu_us();
        let t0 = std::time::Instant::now();
        let r = match f.as_slice() {
            ["instant", t, q] => engine.instant(&db, q, t.parse()?),
            ["range", s, e, st, q] => engine.range(&db, q, s.parse()?, e.parse()?, st.parse()?),
            _ => anyhow::bail!("bad input line {line:?}"),
        };
        match r {
            Ok(r) => {
                let (series, points) = size(&r.value);
                let s = &r.stats;
                writeln!(
                    out,
                    "{{\"cpu_us\":{},\"total_us\":{},\"prepare_us\":{},\"eval_us\":{},\"series\":{},\"samples\":{},\"peak_samples\":{},\"result_series\":{series},\"result_points\":{points}}}",
                    cpu_us() - cpu0,
                    s.total.as_micros(),
                    s.prepare.as_micros(),
                    s.eval.as_micros(),
                    s.series,
                    s.samples,
                    s.peak_samples
                )?;
            }
            Err(e) => writeln!(
                out,
                "{{\"cpu_us\":{},\"total_us\":{},\"error\":{}}}",
                cpu_us() - cpu0,
                t0.elapsed().as_micros(),
                json_str(&e.to_string())
            )?,
        }
        out.flush()?;
    }
    writeln!(out, "{{\"max_rss_kib\":{}}}", max_rss_kib().unwrap_or(0))?;
    out.flush()?;
    Ok(())
}
