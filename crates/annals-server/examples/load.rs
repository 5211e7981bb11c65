//! Load generator for `scripts/bench-server.sh`: remote-write senders shaped like
//! Prometheus's queue shards plus concurrent remote-read range queries and PromQL
//! `query_range` calls, against any server that speaks the protocols and the HTTP API
//! (annals serve, prometheus --web.enable-remote-write-receiver).
//!
//! ```text
//! load run    --addr=127.0.0.1:9090 --senders=4 --readers=2 --queriers=2 --seconds=30 --acked=FILE
//! load verify --addr=127.0.0.1:9090 --acked=FILE
//! ```
//!
//! `run` sends 10,000 series (100 metric names × 100 instances), one sample per series per
//! round (rounds 1 s apart in sample time), each sender owning every N-th series and sending
//! requests of 2,000 samples, and prints throughput and latency percentiles as `key=value`
//! lines. A querier asks, in a closed loop, what a dashboard panel asks over the last 5
//! minutes of one metric (100 series) at a 15 s step: alternately every series' `rate` and
//! their `sum by (job)`. `--acked` records, per series, how many rounds the server acknowledged. `verify`
//! reads every series back by remote read and fails unless each holds every acknowledged
//! sample.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use annals_prompb::proto;

const METRICS: usize = 100;
const INSTANCES: usize = 100;
const SERIES: usize = METRICS * INSTANCES;
const PER_REQUEST: usize = 2000;
const STEP_MS: i64 = 1000;

fn series_labels(i: usize) -> Vec<proto::Label> {
    let l = |n: &str, v: String| proto::Label {
        name: n.into(),
        value: v,
    };
    vec![
        l("__name__", format!("load_metric_{}", i / INSTANCES)),
        l("instance", format!("host-{}:9100", i % INSTANCES)),
        l("job", "load".into()),
    ]
}

/// A keep-alive HTTP/1.1 connection.
struct Conn {
    addr: String,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Conn {
            addr: addr.into(),
            r: BufReader::new(s),
        })
    }

    fn post(&mut self, path: &str, headers: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        match self.try_post(path, headers, body) {
            Ok(r) => Ok(r),
            Err(_) => {
                // The server may have closed an idle connection: reconnect once.
                *self = Conn::open(&self.addr)?;
                self.try_post(path, headers, body)
            }
        }
    }

    fn try_post(
        &mut self,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let s = self.r.get_mut();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )?;
        s.write_all(body)?;
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let (mut len, mut chunked) = (0usize, false);
        loop {
            line.clear();
            self.r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("transfer-encoding")
                    && v.trim().eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.r.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                    .map_err(std::io::Error::other)?;
                let start = body.len();
                body.resize(start + n, 0);
                self.r.read_exact(&mut body[start..])?;
                line.clear();
                self.r.read_line(&mut line)?;
                if n == 0 {
                    break;
                }
            }
        } else {
            body.resize(len, 0);
            self.r.read_exact(&mut body)?;
        }
        Ok((status, body))
    }
}

const WRITE_HEADERS: &str = "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n";
const READ_HEADERS: &str = "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Read-Version: 0.1.0\r\n";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_owned))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = arg(&args, "addr").unwrap_or_else(|| "127.0.0.1:9090".into());
    let acked_file = arg(&args, "acked").unwrap_or_else(|| "acked.txt".into());
    let t0: i64 = arg(&args, "t0")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_700_000_000_000);
    match args.get(1).map(String::as_str) {
        Some("run") => {
            let senders: usize = arg(&args, "senders")
                .and_then(|v| v.parse().ok())
                .unwrap_or(4);
            let readers: usize = arg(&args, "readers")
                .and_then(|v| v.parse().ok())
                .unwrap_or(2);
            let seconds: u64 = arg(&args, "seconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30);
            let queriers: usize = arg(&args, "queriers")
                .and_then(|v| v.parse().ok())
                .unwrap_or(readers);
            run(&addr, senders, readers, queriers, seconds, t0, &acked_file);
        }
        Some("verify") => verify(&addr, t0, &acked_file),
        _ => {
            eprintln!("usage: load run|verify --addr=HOST:PORT [--senders=N --readers=M --seconds=S] --acked=FILE");
            std::process::exit(2);
        }
    }
}

fn run(
    addr: &str,
    senders: usize,
    readers: usize,
    queriers: usize,
    seconds: u64,
    t0: i64,
    acked_file: &str,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    // Rounds acknowledged per series.
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..SERIES).map(|_| AtomicU64::new(0)).collect());
    let newest_round = Arc::new(AtomicU64::new(0));
    let write_lat = Arc::new(Mutex::new(Vec::new()));
    let read_lat = Arc::new(Mutex::new(Vec::new()));
    let query_lat = Arc::new(Mutex::new(Vec::new()));
    let query_failures = Arc::new(AtomicU64::new(0));
    let query_empty = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for k in 0..senders {
        let (stop, samples, failures, acked, lat, newest) = (
            stop.clone(),
            samples.clone(),
            failures.clone(),
            acked.clone(),
            write_lat.clone(),
            newest_round.clone(),
        );
        let addr = addr.to_owned();
        handles.push(std::thread::spawn(move || {
            let mine: Vec<usize> = (k..SERIES).step_by(senders).collect();
            let labels: Vec<Vec<proto::Label>> = mine.iter().map(|&i| series_labels(i)).collect();
            let mut conn = Conn::open(&addr).expect("connect");
            let mut pos = 0usize; // position in the endless (round, series) sequence
            let mut lats = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut req = proto::WriteRequest::default();
                let mut included: Vec<(usize, u64)> = Vec::new();
                for _ in 0..PER_REQUEST {
                    let (round, j) = ((pos / mine.len()) as u64, pos % mine.len());
                    pos += 1;
                    let s = proto::Sample {
                        value: (round as f64) * 0.5 + j as f64,
                        timestamp: t0 + round as i64 * STEP_MS,
                    };
                    match req.timeseries.last_mut() {
                        Some(ts) if ts.labels == labels[j] => ts.samples.push(s),
                        _ => req.timeseries.push(proto::TimeSeries {
                            labels: labels[j].clone(),
                            samples: vec![s],
                            ..Default::default()
                        }),
                    }
                    included.push((mine[j], round + 1));
                }
                let body = annals_prompb::encode_write_request(&req);
                let t = Instant::now();
                match conn.post("/api/v1/write", WRITE_HEADERS, &body) {
                    Ok((s, _)) if (200..300).contains(&s) => {
                        lats.push(t.elapsed().as_secs_f64());
                        samples.fetch_add(PER_REQUEST as u64, Ordering::Relaxed);
                        for (i, rounds) in included {
                            acked[i].fetch_max(rounds, Ordering::Relaxed);
                            newest.fetch_max(rounds, Ordering::Relaxed);
                        }
                    }
                    Ok((s, b)) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("write failed: {s} {}", String::from_utf8_lossy(&b));
                        std::thread::sleep(Duration::from_millis(100));
                        if s >= 500 {
                            pos -= PER_REQUEST; // retried, as a Prometheus sender retries 5xx
                        }
                    }
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("write failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                        if let Ok(c) = Conn::open(&addr) {
                            conn = c;
                        }
                        // Resend the same samples: the sequence must stay in order.
                        pos -= PER_REQUEST;
                    }
                }
            }
            lat.lock().expect("latencies").extend(lats);
        }));
    }
    for r in 0..readers {
        let (stop, lat, newest) = (stop.clone(), read_lat.clone(), newest_round.clone());
        let addr = addr.to_owned();
        handles.push(std::thread::spawn(move || {
            let mut conn = Conn::open(&addr).expect("connect");
            let mut lats = Vec::new();
            let mut k = r;
            while !stop.load(Ordering::Relaxed) {
                let end = t0 + newest.load(Ordering::Relaxed) as i64 * STEP_MS;
                // A range query over the last 5 minutes of one metric (100 series).
                let req = proto::ReadRequest {
                    queries: vec![proto::Query {
                        start_timestamp_ms: end - 300_000,
                        end_timestamp_ms: end,
                        matchers: vec![proto::LabelMatcher {
                            r#type: 0,
                            name: "__name__".into(),
                            value: format!("load_metric_{}", k % METRICS),
                        }],
                        hints: None,
                    }],
                    accepted_response_types: vec![],
                };
                k += 7;
                let t = Instant::now();
                match conn.post(
                    "/api/v1/read",
                    READ_HEADERS,
                    &annals_prompb::encode_snappy(&req),
                ) {
                    Ok((200, body)) => {
                        if annals_prompb::decode_read_response(&body, 1 << 30).is_ok() {
                            lats.push(t.elapsed().as_secs_f64());
                        }
                    }
                    Ok((s, b)) => eprintln!("read failed: {s} {}", String::from_utf8_lossy(&b)),
                    Err(e) => {
                        eprintln!("read failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                        if let Ok(c) = Conn::open(&addr) {
                            conn = c;
                        }
                    }
                }
            }
            lat.lock().expect("latencies").extend(lats);
        }));
    }
    for q in 0..queriers {
        let (stop, lat, newest, failed, empty) = (
            stop.clone(),
            query_lat.clone(),
            newest_round.clone(),
            query_failures.clone(),
            query_empty.clone(),
        );
        let addr = addr.to_owned();
        handles.push(std::thread::spawn(move || {
            let mut conn = Conn::open(&addr).expect("connect");
            let mut lats = Vec::new();
            let mut k = q;
            while !stop.load(Ordering::Relaxed) {
                let end = t0 + newest.load(Ordering::Relaxed) as i64 * STEP_MS;
                let m = k % METRICS;
                let query = if k % 2 == 0 {
                    format!("rate(load_metric_{m}[1m])")
                } else {
                    format!("sum by (job) (rate(load_metric_{m}[1m]))")
                };
                k += 3;
                let form: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("query", &query)
                    .append_pair("start", &format!("{:.3}", (end - 300_000) as f64 / 1000.0))
                    .append_pair("end", &format!("{:.3}", end as f64 / 1000.0))
                    .append_pair("step", "15")
                    .finish();
                let t = Instant::now();
                match conn.post(
                    "/api/v1/query_range",
                    "Content-Type: application/x-www-form-urlencoded\r\n",
                    form.as_bytes(),
                ) {
                    Ok((200, body)) if body.starts_with(br#"{"status":"success""#) => {
                        lats.push(t.elapsed().as_secs_f64());
                        if !body.windows(9).any(|w| w == br#""values":"#) {
                            empty.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok((s, b)) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("query failed: {s} {}", String::from_utf8_lossy(&b));
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("query failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                        if let Ok(c) = Conn::open(&addr) {
                            conn = c;
                        }
                    }
                }
            }
            lat.lock().expect("latencies").extend(lats);
        }));
    }
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = samples.load(Ordering::Relaxed);
    let mut wl = write_lat.lock().expect("latencies").clone();
    let mut rl = read_lat.lock().expect("latencies").clone();
    let mut ql = query_lat.lock().expect("latencies").clone();
    println!("samples={n}");
    println!("seconds={elapsed:.1}");
    println!("samples_per_second={:.0}", n as f64 / elapsed);
    println!("write_requests={}", wl.len());
    println!("write_failures={}", failures.load(Ordering::Relaxed));
    println!("write_p50_ms={:.2}", percentile(&mut wl, 0.5) * 1000.0);
    println!("write_p99_ms={:.2}", percentile(&mut wl, 0.99) * 1000.0);
    println!("read_queries={}", rl.len());
    println!("read_p50_ms={:.2}", percentile(&mut rl, 0.5) * 1000.0);
    println!("read_p99_ms={:.2}", percentile(&mut rl, 0.99) * 1000.0);
    println!("query_count={}", ql.len());
    println!("query_failures={}", query_failures.load(Ordering::Relaxed));
    // Answers without a single point (before the first samples arrive).
    println!("query_empty={}", query_empty.load(Ordering::Relaxed));
    println!("query_p50_ms={:.2}", percentile(&mut ql, 0.5) * 1000.0);
    println!("query_p99_ms={:.2}", percentile(&mut ql, 0.99) * 1000.0);
    let mut f = std::fs::File::create(acked_file).expect("acked file");
    for a in acked.iter() {
        writeln!(f, "{}", a.load(Ordering::Relaxed)).expect("write acked file");
    }
}

fn verify(addr: &str, t0: i64, acked_file: &str) {
    let acked: Vec<u64> = std::fs::read_to_string(acked_file)
        .expect("acked file")
        .lines()
        .map(|l| l.parse().expect("number"))
        .collect();
    assert_eq!(acked.len(), SERIES);
    let mut conn = Conn::open(addr).expect("connect");
    let (mut missing, mut total) = (0u64, 0u64);
    for m in 0..METRICS {
        let req = proto::ReadRequest {
            queries: vec![proto::Query {
                start_timestamp_ms: t0,
                end_timestamp_ms: i64::MAX / 2,
                matchers: vec![proto::LabelMatcher {
                    r#type: 0,
                    name: "__name__".into(),
                    value: format!("load_metric_{m}"),
                }],
                hints: None,
            }],
            accepted_response_types: vec![],
        };
        let (status, body) = conn
            .post(
                "/api/v1/read",
                READ_HEADERS,
                &annals_prompb::encode_snappy(&req),
            )
            .expect("remote read");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let resp = annals_prompb::decode_read_response(&body, 1 << 31).expect("read response");
        let mut got = vec![0u64; INSTANCES];
        for ts in &resp.results[0].timeseries {
            let inst = ts
                .labels
                .iter()
                .find(|l| l.name == "instance")
                .expect("instance label");
            let i: usize = inst
                .value
                .trim_start_matches("host-")
                .trim_end_matches(":9100")
                .parse()
                .expect("instance number");
            let series = m * INSTANCES + i;
            // Every acknowledged round is there, each exactly once and with its value.
            let ok = ts
                .samples
                .iter()
                .filter(|s| ((s.timestamp - t0) / STEP_MS) < acked[series] as i64)
                .count() as u64;
            got[i] = ok;
        }
        for i in 0..INSTANCES {
            let want = acked[m * INSTANCES + i];
            total += want;
            missing += want.saturating_sub(got[i]);
        }
    }
    println!("acked_samples={total}");
    println!("missing_samples={missing}");
    if missing > 0 {
        std::process::exit(1);
    }
}
