//! Processes for the `annals serve` tests: `annals serve`, `prometheus` and node exporter on
//! loopback ports, each killed when its guard drops (also when a test fails), and a small
//! HTTP/1.0 client.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process on a loopback port; killed on drop.
pub struct Proc {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Proc {
    /// The log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        // SAFETY: kill(2) with a pid we own; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (racy by nature; the servers that cannot choose their own use it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Starts `annals serve --listen=127.0.0.1:0 DIR` with `extra` flags and waits until it
/// prints its port.
pub fn start_annals(dir: &Path, extra: &[&str]) -> Proc {
    let log = dir.with_extension("annals.log");
    let err = std::fs::File::create(&log).expect("annals log");
    let child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("serve")
        .arg("--listen=127.0.0.1:0")
        .args(extra)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start annals serve");
    let mut p = Proc {
        child,
        port: 0,
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = p.log();
        if let Some(rest) = text.split("listening on 127.0.0.1:").nth(1) {
            let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
            p.port = port.parse().expect("port number");
            return p;
        }
        if let Ok(Some(st)) = p.child.try_wait() {
            panic!("annals serve exited with {st}:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "annals serve did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `prometheus` on `dir` with `config` and waits for `/-/ready`.
pub fn start_prometheus(bin: &Path, dir: &Path, config: &Path, extra: &[&str]) -> Proc {
    let port = free_port();
    let log = dir.with_extension("prometheus.log");
    let err = std::fs::File::create(&log).expect("prometheus log");
    let child = Command::new(bin)
        .arg(format!("--storage.tsdb.path={}", dir.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--config.file={}", config.display()))
        .arg("--storage.tsdb.retention.time=100y")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start prometheus");
    let p = Proc { child, port, log };
    wait_ready(&p, "/-/ready");
    p
}

/// Waits until `path` answers 200.
pub fn wait_ready(p: &Proc, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = http(p.port, "GET", path, None, &[]) {
            if r.status == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "not ready on {path}; log:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.0 request on loopback (the server closes the connection after the answer, so
/// a streamed body ends at EOF). `headers` are extra `Name: value` lines.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[&str],
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    if let Some(b) = body {
        s.write_all(b)?;
    }
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(Resp {
        status,
        head,
        body: resp[split + 4..].to_vec(),
    })
}

/// GET, panicking on a connection error.
pub fn get(port: u16, path: &str) -> Resp {
    http(port, "GET", path, None, &[]).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// POST of a form body.
pub fn post_form(port: u16, path: &str, form: &str) -> Resp {
    http(
        port,
        "POST",
        path,
        Some(form.as_bytes()),
        &["Content-Type: application/x-www-form-urlencoded"],
    )
    .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// POST of a snappy-compressed remote-write request.
pub fn remote_write(port: u16, req: &annals_prompb::proto::WriteRequest) -> Resp {
    let body = annals_prompb::encode_write_request(req);
    http(
        port,
        "POST",
        "/api/v1/write",
        Some(&body),
        &[
            "Content-Type: application/x-protobuf",
            "Content-Encoding: snappy",
            "X-Prometheus-Remote-Write-Version: 0.1.0",
        ],
    )
    .expect("remote write")
}

/// POST of a remote-read request.
pub fn remote_read(port: u16, req: &annals_prompb::proto::ReadRequest) -> Resp {
    let body = annals_prompb::encode_snappy(req);
    http(
        port,
        "POST",
        "/api/v1/read",
        Some(&body),
        &[
            "Content-Type: application/x-protobuf",
            "Content-Encoding: snappy",
            "X-Prometheus-Remote-Read-Version: 0.1.0",
        ],
    )
    .expect("remote read")
}

/// Percent-encodes a query parameter value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A series of `n` samples `step` ms apart from `t0`, value `f(i)`.
pub fn series(
    labels: &[(&str, &str)],
    t0: i64,
    step: i64,
    n: usize,
    f: impl Fn(usize) -> f64,
) -> annals_prompb::proto::TimeSeries {
    annals_prompb::proto::TimeSeries {
        labels: labels
            .iter()
            .map(|(k, v)| annals_prompb::proto::Label {
                name: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
        samples: (0..n)
            .map(|i| annals_prompb::proto::Sample {
                value: f(i),
                timestamp: t0 + i as i64 * step,
            })
            .collect(),
        ..Default::default()
    }
}
