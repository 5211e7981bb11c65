//! Node-exporter-shaped scrape targets for `scripts/compare-agents.sh`: `--targets` HTTP
//! servers on consecutive loopback ports from `--base-port`, each serving `/metrics` in the
//! Prometheus text format (gzip when asked), with HELP and TYPE lines.
//!
//! With `--template FILE` (OpenMetrics, e.g. `../shared/data/node-exporter-15s.om.gz`, one
//! node exporter's scrapes) the n-th scrape of a target serves the template's n-th scrape
//! (cycling), so values change as a real node's do. Without it, `--series` synthetic series.
//! Bodies are rendered and compressed once at start, so serving costs little CPU.
//!
//! ```sh
//! cargo run --release -p annals-agent --example targets -- --base-port=20000 --targets=20 \
//!     --template=../shared/data/node-exporter-15s.om.gz
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Bodies {
    plain: Vec<Vec<u8>>,
    gzip: Vec<Vec<u8>>,
}

fn arg(name: &str) -> Option<String> {
    std::env::args().find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_owned))
}

/// Scrapes of the template: per timestamp, the lines `series value`.
fn template(path: &str) -> Vec<Vec<(String, String)>> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let r: Box<dyn Read> = if path.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut by_ts: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in BufReader::new(r).lines() {
        let line = line.expect("readable template");
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut parts = line.rsplitn(3, ' ');
        let (Some(ts), Some(v), Some(series)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        by_ts
            .entry(ts.to_owned())
            .or_default()
            .push((series.to_owned(), v.to_owned()));
    }
    by_ts.into_values().collect()
}

fn render(scrape: &[(String, String)]) -> Vec<u8> {
    let mut out = String::new();
    let mut last_family = String::new();
    for (series, v) in scrape {
        let name = series.split('{').next().unwrap_or(series);
        let family = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        if family != last_family {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            out.push_str(&format!(
                "# HELP {family} {family} metric.\n# TYPE {family} {kind}\n"
            ));
            last_family = family.to_owned();
        }
        out.push_str(series);
        out.push(' ');
        out.push_str(v);
        out.push('\n');
    }
    out.into_bytes()
}

fn synthetic(series: usize, scrapes: usize) -> Vec<Vec<(String, String)>> {
    (0..scrapes)
        .map(|g| {
            (0..series)
                .map(|i| {
                    let s = format!(
                        "node_synthetic_total{{cpu=\"{}\",mode=\"m{}\"}}",
                        i % 64,
                        i / 64
                    );
                    (s, format!("{}", (g * (i % 7 + 1)) as f64 * 0.25))
                })
                .collect()
        })
        .collect()
}

fn serve(mut conn: TcpStream, bodies: Arc<Bodies>, counter: Arc<AtomicUsize>) {
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(conn.try_clone().expect("clone socket"));
    loop {
        let mut gzip = false;
        let mut first = String::new();
        if reader.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        let mut close = first.contains("HTTP/1.0");
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let l = h.to_ascii_lowercase();
            if l == "\r\n" || l == "\n" {
                break;
            }
            if l.starts_with("accept-encoding:") && l.contains("gzip") {
                gzip = true;
            }
            if l.starts_with("connection:") && l.contains("close") {
                close = true;
            }
        }
        let n = counter.fetch_add(1, Ordering::Relaxed) % bodies.plain.len();
        let body = if gzip {
            &bodies.gzip[n]
        } else {
            &bodies.plain[n]
        };
        let enc = if gzip {
            "Content-Encoding: gzip\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n{enc}Content-Length: {}\r\n\r\n",
            body.len()
        );
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(body).is_err() || close {
            return;
        }
    }
}

fn main() {
    let base: u16 = arg("base-port")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20000);
    let targets: u16 = arg("targets").and_then(|v| v.parse().ok()).unwrap_or(20);
    let scrapes = match arg("template") {
        Some(p) => template(&p),
        None => synthetic(
            arg("series").and_then(|v| v.parse().ok()).unwrap_or(500),
            100,
        ),
    };
    let plain: Vec<Vec<u8>> = scrapes.iter().map(|s| render(s)).collect();
    let gzip = plain
        .iter()
        .map(|b| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b).expect("in-memory write");
            e.finish().expect("in-memory gzip")
        })
        .collect();
    let series = scrapes.first().map_or(0, Vec::len);
    let bodies = Arc::new(Bodies { plain, gzip });
    let mut handles = Vec::new();
    for i in 0..targets {
        let port = base + i;
        let l =
            TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("port {port}: {e}"));
        let bodies = bodies.clone();
        let counter = Arc::new(AtomicUsize::new(0));
        handles.push(std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let (b, c) = (bodies.clone(), counter.clone());
                std::thread::spawn(move || serve(conn, b, c));
            }
        }));
    }
    println!(
        "serving {targets} targets x {series} series on 127.0.0.1:{base}..{}",
        base + targets - 1
    );
    for h in handles {
        let _ = h.join();
    }
}
