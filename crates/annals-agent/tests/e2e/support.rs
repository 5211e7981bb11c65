//! Real parts for the end-to-end tests: child processes killed on drop, a target server of
//! our own, Prometheus and VictoriaMetrics as remotes, and dumps of what each side stored.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use annals::{Db, Matcher, Options};

/// Samples by series (`{a="b", ...}` as annals prints labels): (ms, value bits).
pub type Dump = BTreeMap<String, Vec<(i64, u64)>>;

pub const STALE: u64 = 0x7ff0_0000_0000_0002;

/// Whether a tool is there; outside CI a missing tool skips the test, in CI it fails it.
pub fn require(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{tool} is required in CI (apt-get install it; .ci/run does)");
        }
        eprintln!("skipping: {tool} is not installed");
    }
    found
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub child: Option<Child>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let f = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { child: Some(child) }
    }

    /// SIGTERM, then waits (SIGKILL after 30 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(30) {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A blocking HTTP/1.0 GET or POST; returns status and body.
pub fn http(method: &str, port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

pub fn wait_http(port: u16, path: &str, what: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if http("GET", port, path).is_some_and(|(c, _)| c == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not become ready on port {port}");
}

pub fn prometheus(dir: &Path, port: u16) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global: {}\n").unwrap();
    let p = Proc::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver"),
        &dir.join("prometheus.log"),
    );
    wait_http(port, "/-/ready", "prometheus");
    p
}

pub fn victoria(dir: &Path, port: u16) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let p = Proc::spawn(
        "victoria-metrics",
        Command::new("victoria-metrics")
            .arg(format!("-storageDataPath={}", dir.join("data").display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .arg("-search.latencyOffset=0s"),
        &dir.join("vm.log"),
    );
    wait_http(port, "/health", "victoria-metrics");
    p
}

pub fn agent(dir: &Path, config: &str, listen: u16) -> Proc {
    agent_with(dir, config, listen, &[])
}

/// [`agent`] with extra command-line arguments.
pub fn agent_with(dir: &Path, config: &str, listen: u16, extra: &[&str]) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("agent.yml");
    std::fs::write(&cfg, config).unwrap();
    let log = dir.join(format!(
        "agent-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    ));
    let p = Proc::spawn(
        "annals-agent",
        Command::new(env!("CARGO_BIN_EXE_annals-agent"))
            .arg(format!("--config={}", cfg.display()))
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen=127.0.0.1:{listen}"))
            .args(extra)
            .env("RUST_LOG", "info"),
        &log,
    );
    wait_http(listen, "/-/ready", "annals agent");
    p
}

/// Everything the agent stored (its data directory, opened read-only: `annals dump`'s view).
pub fn agent_dump(data: &Path) -> Dump {
    let db = Db::open_read_only(data, Options::default()).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = Dump::new();
    for s in q
        .select(&[Matcher::regex("__name__", ".+").unwrap()])
        .unwrap()
    {
        out.insert(
            s.labels().to_string(),
            s.to_vec()
                .unwrap()
                .iter()
                .map(|x| (x.t, x.v.to_bits()))
                .collect(),
        );
    }
    out
}

fn labels_string(m: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut pairs: Vec<(String, String)> = m
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    pairs.sort();
    annals::Labels::new(pairs).unwrap().to_string()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every sample Prometheus returns for `{__name__=~".+"}[range]` at `end_ms` (staleness
/// markers are not returned by queries).
pub fn prometheus_dump(port: u16, end_ms: i64, range_s: u64) -> Dump {
    let (code, body) = http("GET", port, &prometheus_dump_path(end_ms, range_s)).unwrap();
    assert_eq!(code, 200, "{body}");
    range_result_dump(&body)
}

/// The query path of [`prometheus_dump`] (to ask over another transport).
pub fn prometheus_dump_path(end_ms: i64, range_s: u64) -> String {
    format!(
        "/api/v1/query?query={}&time={}.{:03}",
        enc(&format!("{{__name__=~\".+\"}}[{range_s}s]")),
        end_ms / 1000,
        end_ms % 1000
    )
}

/// The samples of a range-vector query answer.
pub fn range_result_dump(body: &str) -> Dump {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let mut out = Dump::new();
    for r in v["data"]["result"].as_array().unwrap() {
        let key = labels_string(r["metric"].as_object().unwrap());
        let vals = r["values"].as_array().unwrap().iter().map(|p| {
            let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            let v: f64 = p[1].as_str().unwrap().parse().unwrap();
            (t, v.to_bits())
        });
        out.insert(key, vals.collect());
    }
    out
}

/// Whether Prometheus's instant query for `sel` at `t_ms` is empty (a stored staleness marker
/// ends a series at once; without one it would be returned for five minutes).
pub fn prometheus_empty_at(port: u16, sel: &str, t_ms: i64) -> bool {
    let (code, body) = http(
        "GET",
        port,
        &format!(
            "/api/v1/query?query={}&time={}.{:03}",
            enc(sel),
            t_ms / 1000,
            t_ms % 1000
        ),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().unwrap().is_empty()
}

/// Every sample VictoriaMetrics exports (NaN values, which it may hold for staleness markers,
/// are left out).
pub fn victoria_dump(port: u16) -> Dump {
    let _ = http("GET", port, "/internal/force_flush");
    let (code, body) = http(
        "GET",
        port,
        &format!("/api/v1/export?match[]={}", enc("{__name__=~\".+\"}")),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let mut out = Dump::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let line = line.replace("NaN", "null");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let key = labels_string(v["metric"].as_object().unwrap());
        let ts = v["timestamps"].as_array().unwrap();
        let vals = v["values"].as_array().unwrap();
        let e = out.entry(key).or_default();
        for (t, x) in ts.iter().zip(vals) {
            if let Some(x) = x.as_f64() {
                e.push((t.as_i64().unwrap(), x.to_bits()));
            }
        }
        e.sort();
    }
    out
}

/// The agent's dump without staleness markers, with `extra` labels added to every series.
pub fn expected(agent: &Dump, extra: &[(&str, &str)]) -> Dump {
    let mut out = Dump::new();
    for (k, v) in agent {
        let l = annals::Labels::parse(k).unwrap();
        let mut pairs: Vec<(String, String)> = l
            .iter()
            .map(|x| (x.name.to_string(), x.value.to_string()))
            .collect();
        for (n, val) in extra {
            pairs.push((n.to_string(), val.to_string()));
        }
        let key = annals::Labels::new(pairs).unwrap().to_string();
        let vs: Vec<(i64, u64)> = v.iter().filter(|s| s.1 != STALE).copied().collect();
        if !vs.is_empty() {
            out.insert(key, vs);
        }
    }
    out
}

/// Compares series by series; VictoriaMetrics keeps about 15 significant digits.
pub fn assert_same(want: &Dump, got: &Dump, what: &str, rel: f64) {
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} series missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        extra.is_empty(),
        "{what}: {} unexpected series, e.g. {:?}",
        extra.len(),
        &extra[..extra.len().min(3)]
    );
    for (k, w) in want {
        let g = &got[k];
        let same = w.len() == g.len()
            && w.iter().zip(g).all(|(a, b)| {
                let (x, y) = (f64::from_bits(a.1), f64::from_bits(b.1));
                a.0 == b.0 && (a.1 == b.1 || (x - y).abs() <= rel * x.abs().max(y.abs()))
            });
        assert!(
            same,
            "{what}: {k} differs: agent {} samples {:?}.., remote {} samples {:?}..",
            w.len(),
            &w[..w.len().min(4)],
            g.len(),
            &g[..g.len().min(4)]
        );
    }
}

/// Spec of the target server.
#[derive(Clone)]
pub struct TargetSpec {
    pub series: usize,
    pub openmetrics: bool,
    pub gzip: bool,
    /// `churn_series` are exposed only for the first this many scrapes.
    pub churn_until: u64,
}

/// Our own target: `series` series of a few node-exporter-like families, values changing
/// with every scrape.
pub struct TargetServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn body(spec: &TargetSpec, gen: u64) -> String {
    let mut b = String::with_capacity(spec.series * 60);
    let fams = [
        "node_cpu_seconds_total",
        "node_network_receive_bytes_total",
        "node_filesystem_avail_bytes",
        "node_memory_info",
    ];
    for (fi, f) in fams.iter().enumerate() {
        let kind = if f.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let base = if spec.openmetrics && kind == "counter" {
            f.trim_end_matches("_total")
        } else {
            f
        };
        b.push_str(&format!(
            "# HELP {base} Family {fi}.\n# TYPE {base} {kind}\n"
        ));
        for i in (fi..spec.series).step_by(fams.len()) {
            let v = match fi {
                0 => (gen * (i as u64 % 7 + 1)) as f64 * 0.01,
                1 => (gen * 1500 + i as u64 * 1_000_003) as f64,
                2 => 1e9 + ((gen as f64) * 3.25 - i as f64).sin() * 1e6,
                _ => i as f64 / 3.0 + gen as f64,
            };
            b.push_str(&format!(
                "{f}{{cpu=\"{}\",mode=\"m{}\",device=\"d\\\"{}\\\"\"}} {v:?}\n",
                i % 64,
                i / 64,
                i % 3
            ));
        }
    }
    if gen < spec.churn_until {
        for i in 0..5 {
            b.push_str(&format!("churn_series{{id=\"{i}\"}} {gen}\n"));
        }
    }
    if spec.openmetrics {
        b.push_str("# EOF\n");
    }
    b
}

impl TargetServer {
    pub fn start(spec: TargetSpec) -> TargetServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let scrapes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (scrapes.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let gen = s2.fetch_add(1, Ordering::SeqCst);
                        let spec = spec.clone();
                        std::thread::spawn(move || serve(conn, &spec, gen));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TargetServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

fn serve(mut conn: TcpStream, spec: &TargetSpec, gen: u64) {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = body(spec, gen);
    let ct = if spec.openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let (payload, enc) = if spec.gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        (e.finish().unwrap(), "Content-Encoding: gzip\r\n")
    } else {
        (text.into_bytes(), "")
    };
    let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\n{enc}Content-Length: {}\r\nConnection: close\r\n\r\n", payload.len());
    let _ = conn.write_all(&payload);
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("annals-agent-e2e")
        .tempdir()
        .unwrap()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn metric(listen: u16, name: &str) -> f64 {
    let (_, body) = http("GET", listen, "/metrics").unwrap();
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn data(dir: &Path) -> PathBuf {
    dir.join("agent").join("data")
}
