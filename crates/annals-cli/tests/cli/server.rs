//! A real Prometheus 2.42 server serving blocks imported by annals.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Kills the server when the test ends, also on failure.
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Percent-encodes a query parameter value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET over plain HTTP/1.0 on loopback; returns (status code, body).
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_owned()))
}

fn api(port: u16, path: &str) -> serde_json::Value {
    let (code, body) = get(port, path).expect("query the server");
    assert_eq!(code, 200, "{path}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON response");
    assert_eq!(v["status"], "success", "{path}: {body}");
    v["data"].clone()
}

pub(crate) fn start(prometheus: &Path, dir: &Path, config: &Path) -> Server {
    let port = free_port();
    let log = std::fs::File::create(dir.with_extension("log")).expect("server log");
    let child = Command::new(prometheus)
        .arg(format!("--storage.tsdb.path={}", dir.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--config.file={}", config.display()))
        .arg("--storage.tsdb.retention.time=100y")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok((200, _)) = get(port, "/-/ready") {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus not ready; log:\n{}",
            std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn prometheus_serves_imported_blocks() {
    let Some(prometheus) = oracle("prometheus") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let imported = d.path().join("imported");
    crate::import::import_node_exporter(&imported);
    let dir = d.path().join("server-data");
    copy_dir(&imported, &dir);
    let config = d.path().join("prometheus.yml");
    std::fs::write(&config, "scrape_configs: []\n").unwrap();
    let server = start(&prometheus, &dir, &config);
    let port = server.port;

    // The data: 507 series scraped every 15 s, 900 times from 1763856000.
    let (first, last) = (1_763_856_000i64, 1_763_856_000i64 + 899 * 15);
    let series = api(
        port,
        &format!(
            "/api/v1/series?match[]={}&start={first}&end={last}",
            enc("node_load1")
        ),
    );
    assert_eq!(series.as_array().map(Vec::len), Some(1), "{series}");
    assert_eq!(series[0]["__name__"], "node_load1");

    let all = api(
        port,
        &format!(
            "/api/v1/series?match[]={}&start={first}&end={last}",
            enc(r#"{__name__=~".+"}"#)
        ),
    );
    assert_eq!(all.as_array().map(Vec::len), Some(507));

    // Every scrape is there, across both blocks.
    let q = api(
        port,
        &format!(
            "/api/v1/query?query={}&time={last}",
            enc("count_over_time(node_load1[4h])")
        ),
    );
    assert_eq!(q["result"][0]["value"][1], "900", "{q}");
    // Only the first block: [first, first + 2h).
    let q = api(
        port,
        &format!(
            "/api/v1/query?query={}&time={}",
            enc("count_over_time(node_load1[2h])"),
            first + 7185
        ),
    );
    assert_eq!(q["result"][0]["value"][1], "480", "{q}");
    let q = api(
        port,
        &format!(
            "/api/v1/query?query={}&time={last}",
            enc(r#"count({__name__=~".+"})"#)
        ),
    );
    assert_eq!(q["result"][0]["value"][1], "507", "{q}");
    drop(server);
}

/// A directory the database wrote itself: blocks cut by head compaction, a tombstone, and a
/// WAL head that Prometheus replays.
#[test]
fn prometheus_serves_a_database_annals_compacted_and_deleted_from() {
    let Some(prometheus) = oracle("prometheus") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let written = d.path().join("written");
    let mut opts = annals::Options::default();
    opts.compaction = false;
    opts.retention_ms = None;
    let db = annals::Db::open(&written, opts).unwrap();
    let t0 = 1_700_000_000_000i64;
    let labels: Vec<annals::Labels> = (0..10)
        .map(|i| annals::Labels::new([("__name__", "annals_test"), ("i", &i.to_string())]).unwrap())
        .collect();
    for k in 0..1200i64 {
        let mut app = db.appender();
        for l in &labels {
            app.append(None, l, t0 + k * 15_000, k as f64).unwrap();
        }
        app.commit().unwrap();
    }
    assert!(!db.compact().unwrap().head_blocks.is_empty());
    let deleted = [annals::Matcher::equal("i", "0")];
    db.delete(t0 + 3_600_000, t0 + 7_200_000, &deleted).unwrap();
    db.close().unwrap();

    let dir = d.path().join("server-data");
    copy_dir(&written, &dir);
    let _ = std::fs::remove_file(dir.join("lock"));
    let config = d.path().join("prometheus.yml");
    std::fs::write(&config, "scrape_configs: []\n").unwrap();
    let server = start(&prometheus, &dir, &config);
    let last = (t0 + 1199 * 15_000) / 1000;
    let series = api(
        server.port,
        &format!(
            "/api/v1/series?match[]={}&start={}&end={last}",
            enc("annals_test"),
            t0 / 1000
        ),
    );
    assert_eq!(series.as_array().map(Vec::len), Some(10), "{series}");
    let count = |sel: &str| {
        let q = api(
            server.port,
            &format!(
                "/api/v1/query?query={}&time={last}",
                enc(&format!("count_over_time({sel}[5h])"))
            ),
        );
        q["result"][0]["value"][1]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // Every sample of blocks and WAL head, and the deleted hour (241 samples) gone.
    assert_eq!(count(r#"annals_test{i="1"}"#), "1200");
    assert_eq!(count(r#"annals_test{i="0"}"#), "959");
}
