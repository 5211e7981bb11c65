//! `annals serve` on its own: remote write in, the HTTP API and remote read out, bad requests,
//! shutdown and process death, TLS and basic auth, the admin API, and an independent client
//! from PyPI.

use std::process::Command;

use annals_prompb::proto::{self, label_matcher, read_request::ResponseType};

use crate::serve_support::*;

const T0: i64 = 1_700_000_000_000;

fn write_fixture(port: u16) {
    let req = proto::WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
                T0,
                15_000,
                200,
                |_| 1.0,
            ),
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "b:9100")],
                T0,
                15_000,
                200,
                |i| (i % 2) as f64,
            ),
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "api"),
                    ("code", "200"),
                ],
                T0,
                15_000,
                200,
                |i| i as f64 * 2.5,
            ),
        ],
        metadata: vec![proto::MetricMetadata {
            r#type: proto::MetricType::Counter as i32,
            metric_family_name: "http_requests_total".into(),
            help: "Requests <served>.".into(),
            unit: String::new(),
        }],
    };
    let r = remote_write(port, &req);
    assert_eq!(r.status, 204, "{}", r.text());
}

fn data(r: &Resp) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "success", "{v}");
    v["data"].clone()
}

#[test]
fn remote_write_is_served_by_the_api_and_remote_read() {
    let d = tempfile::tempdir().unwrap();
    let server = start_annals(&d.path().join("data"), &[]);
    let port = server.port;
    write_fixture(port);

    let s = data(&get(port, &format!("/api/v1/series?match[]={}", enc("up"))));
    assert_eq!(
        s,
        serde_json::json!([
            {"__name__": "up", "instance": "a:9100", "job": "node"},
            {"__name__": "up", "instance": "b:9100", "job": "node"}
        ])
    );
    // POST form and two selectors, deduplicated and sorted.
    let s = data(&post_form(
        port,
        "/api/v1/series",
        &format!(
            "match[]={}&match[]={}",
            enc(r#"{job="api"}"#),
            enc(r#"up{instance="a:9100"}"#)
        ),
    ));
    assert_eq!(s.as_array().unwrap().len(), 2, "{s}");
    assert_eq!(s[0]["__name__"], "http_requests_total");
    assert_eq!(
        data(&get(port, "/api/v1/labels")),
        serde_json::json!(["__name__", "code", "instance", "job"])
    );
    assert_eq!(
        data(&get(port, &format!("/api/v1/labels?match[]={}", enc("up")))),
        serde_json::json!(["__name__", "instance", "job"])
    );
    assert_eq!(
        data(&get(port, "/api/v1/label/__name__/values")),
        serde_json::json!(["http_requests_total", "up"])
    );
    assert_eq!(
        data(&get(
            port,
            &format!(
                "/api/v1/label/instance/values?match[]={}&start={}&end={}",
                enc(r#"{job="node"}"#),
                T0 / 1000,
                T0 / 1000 + 10
            )
        )),
        serde_json::json!(["a:9100", "b:9100"])
    );
    // Outside the data's time range: nothing.
    assert_eq!(
        data(&get(port, "/api/v1/label/job/values?start=0&end=1")),
        serde_json::json!([])
    );
    let md = data(&get(port, "/api/v1/metadata"));
    assert_eq!(
        md,
        serde_json::json!({"http_requests_total": [{"type": "counter", "help": "Requests <served>.", "unit": ""}]})
    );
    assert!(
        get(port, "/api/v1/metadata")
            .text()
            .contains(r"\u003cserved\u003e"),
        "Go escapes < and >"
    );
    let tsdb = data(&get(port, "/api/v1/status/tsdb"));
    assert_eq!(tsdb["headStats"]["numSeries"], 3);
    assert_eq!(tsdb["headStats"]["minTime"], T0);
    assert_eq!(
        tsdb["seriesCountByMetricName"][0],
        serde_json::json!({"name": "up", "value": 2})
    );

    // Remote read, SAMPLES.
    let query = |rt: Vec<i32>| proto::ReadRequest {
        queries: vec![proto::Query {
            start_timestamp_ms: T0,
            end_timestamp_ms: T0 + 100 * 15_000,
            matchers: vec![proto::LabelMatcher {
                r#type: label_matcher::Type::Eq as i32,
                name: "__name__".into(),
                value: "up".into(),
            }],
            hints: None,
        }],
        accepted_response_types: rt,
    };
    let r = remote_read(port, &query(vec![]));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-encoding").as_deref(), Some("snappy"));
    let resp = annals_prompb::decode_read_response(&r.body, 1 << 30).unwrap();
    assert_eq!(resp.results.len(), 1);
    let ts = &resp.results[0].timeseries;
    assert_eq!(ts.len(), 2);
    assert_eq!(ts[1].labels[1].value, "b:9100");
    assert_eq!(ts[1].samples.len(), 101);
    assert_eq!(
        ts[1].samples[3],
        proto::Sample {
            value: 1.0,
            timestamp: T0 + 45_000
        }
    );

    // Remote read, STREAMED_XOR_CHUNKS: frames decode and the chunks hold the same samples.
    let r = remote_read(
        port,
        &query(vec![
            ResponseType::StreamedXorChunks as i32,
            ResponseType::Samples as i32,
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some(annals_prompb::CONTENT_TYPE_STREAMED_CHUNKS)
    );
    let streamed = decode_streamed(&r.body);
    assert_eq!(streamed.len(), 2);
    for (series, samples) in streamed.iter().zip(ts) {
        assert_eq!(series.0, samples.labels);
        assert_eq!(
            series.1,
            samples
                .samples
                .iter()
                .map(|s| (s.timestamp, s.value))
                .collect::<Vec<_>>()
        );
    }
    let r = remote_read(port, &query(vec![7]));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("does not support any of the requested response types"),
        "{}",
        r.text()
    );
}

/// The series of a streamed remote-read body: labels and every chunk's samples.
/// One streamed series: its labels and samples.
pub type StreamedSeries = (Vec<proto::Label>, Vec<(i64, f64)>);

pub fn decode_streamed(body: &[u8]) -> Vec<StreamedSeries> {
    let mut out: Vec<StreamedSeries> = Vec::new();
    let mut frames = annals_prompb::FrameReader::new(body, 16 << 20);
    while let Some(f) = frames.next_frame().expect("valid frame") {
        for cs in f.chunked_series {
            let mut samples = Vec::new();
            for c in &cs.chunks {
                assert_eq!(c.r#type, proto::chunk::Encoding::Xor as i32);
                let mut n = 0;
                for s in annals::unstable::chunkenc::XorIter::new(&c.data) {
                    let s = s.expect("valid chunk");
                    samples.push((s.t, s.v));
                    n += 1;
                }
                assert!(n > 0);
                assert_eq!(c.min_time_ms, samples[samples.len() - n].0);
                assert_eq!(c.max_time_ms, samples.last().unwrap().0);
            }
            match out.last_mut() {
                // A series split over frames continues in the next one.
                Some(last) if last.0 == cs.labels => last.1.extend(samples),
                _ => out.push((cs.labels, samples)),
            }
        }
    }
    out
}

#[test]
fn bad_requests_get_a_clear_4xx_and_the_server_keeps_serving() {
    let d = tempfile::tempdir().unwrap();
    let server = start_annals(
        &d.path().join("data"),
        &[
            "--remote-write.max-body-bytes=4194304",
            "--remote-write.max-decoded-bytes=16777216",
        ],
    );
    let port = server.port;
    write_fixture(port);

    let bad = |path: &str, want_status: u16, want_type: &str, want_msg: &str| {
        let r = get(port, path);
        assert_eq!(r.status, want_status, "{path}: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "error", "{path}");
        assert_eq!(v["errorType"], want_type, "{path}");
        assert!(
            v["error"].as_str().unwrap().contains(want_msg),
            "{path}: {v}"
        );
    };
    bad(
        "/api/v1/query?query=up&time=yesterday",
        400,
        "bad_data",
        r#"invalid parameter "time": Invalid time value for 'time': cannot parse "yesterday" to a valid timestamp"#,
    );
    bad(
        "/api/v1/query?query=up&timeout=soon",
        400,
        "bad_data",
        r#"invalid parameter "timeout": cannot parse "soon" to a valid duration"#,
    );
    bad(
        "/api/v1/query_range?query=up&start=10&end=0&step=1",
        400,
        "bad_data",
        "end timestamp must not be before start time",
    );
    bad(
        "/api/v1/query_range?query=up&start=0&end=100000&step=1",
        400,
        "bad_data",
        "exceeded maximum resolution of 11,000 points",
    );
    bad(
        "/api/v1/query_range?query=up&start=0&end=10&step=-5",
        400,
        "bad_data",
        "zero or negative query resolution step",
    );
    bad(
        "/api/v1/series",
        400,
        "bad_data",
        "no match[] parameter provided",
    );
    bad(
        &format!("/api/v1/series?match[]={}", enc("up{")),
        400,
        "bad_data",
        r#"invalid parameter "match[]""#,
    );
    bad(
        &format!("/api/v1/labels?match[]={}", enc(r#"{a=~".*"}"#)),
        400,
        "bad_data",
        "does not match the empty string",
    );
    bad(
        "/api/v1/label/a-b/values",
        400,
        "bad_data",
        r#"invalid label name: "a-b""#,
    );
    bad(
        "/api/v1/series?match[]=up&start=x",
        400,
        "bad_data",
        r#"invalid parameter "start""#,
    );
    bad(
        "/api/v1/metadata?limit=x",
        400,
        "bad_data",
        "limit must be a number",
    );
    bad(
        "/api/v1/rules?type=x",
        400,
        "bad_data",
        r#"not supported value "x""#,
    );

    let post = |body: &[u8]| {
        http(
            port,
            "POST",
            "/api/v1/write",
            Some(body),
            &["Content-Encoding: snappy"],
        )
        .expect("post")
    };
    // Not snappy; snappy but not protobuf; a snappy bomb (64 MiB of zeros in ~3 KiB); a
    // body over the limit.
    for (what, body, status, msg) in [
        ("garbage", b"\xff\x00garbage".to_vec(), 400, "snappy"),
        (
            "not protobuf",
            annals_prompb::snappy_encode(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            400,
            "protobuf",
        ),
        (
            "snappy bomb",
            annals_prompb::snappy_encode(&vec![0u8; 64 << 20]),
            400,
            "exceeds the limit",
        ),
        ("huge body", vec![7u8; 5 << 20], 413, ""),
    ] {
        let r = post(&body);
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert!(r.text().contains(msg), "{what}: {}", r.text());
    }
    let r = http(port, "POST", "/api/v1/read", Some(b"nonsense"), &[]).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let bad_matcher = proto::ReadRequest {
        queries: vec![proto::Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 1,
            matchers: vec![proto::LabelMatcher {
                r#type: label_matcher::Type::Re as i32,
                name: "a".into(),
                value: "(".into(),
            }],
            hints: None,
        }],
        accepted_response_types: vec![],
    };
    assert_eq!(remote_read(port, &bad_matcher).status, 400);

    // A request mixing valid and rejected samples: 400 with Prometheus's reason, the valid
    // ones stored.
    let req = proto::WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
                T0,
                15_000,
                1,
                |_| 1.0,
            ), // older than the newest: out of order
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
                T0 + 15_000,
                1,
                1,
                |_| 5.0,
            ), // older than the newest: out of order
            series(&[("__name__", "fresh")], T0 + 5_000_000, 1000, 3, |i| {
                i as f64
            }),
            series(&[("", "x")], T0, 1000, 1, |_| 1.0),
        ],
        metadata: vec![],
    };
    let r = remote_write(port, &req);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("out of order sample"), "{}", r.text());
    assert!(r.text().contains("3 of 6 samples rejected"), "{}", r.text());
    let s = data(&get(
        port,
        &format!("/api/v1/series?match[]={}", enc("fresh")),
    ));
    assert_eq!(s.as_array().unwrap().len(), 1);

    // `annals serve` turns on the engine's far-future bound (10 m by default) and
    // Prometheus's label-name rules: both are 400s naming the cause, the rest is stored.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let req = proto::WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "future")],
                now_ms + 3_600_000,
                1000,
                1,
                |_| 1.0,
            ),
            series(&[("__name__", "now_ok")], now_ms, 1000, 1, |_| 1.0),
            series(
                &[("__name__", "bad"), ("a-b", "x")],
                now_ms,
                1000,
                1,
                |_| 1.0,
            ),
        ],
        metadata: vec![],
    };
    let r = remote_write(port, &req);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("too far in the future"), "{}", r.text());
    assert!(r.text().contains("2 of 3 samples rejected"), "{}", r.text());
    let stored = |name: &str| {
        data(&get(port, &format!("/api/v1/series?match[]={}", enc(name))))
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(stored("now_ok"), 1);
    assert_eq!(stored("future"), 0);
    assert_eq!(stored("bad"), 0);

    // Still healthy, nothing lost.
    assert_eq!(get(port, "/-/healthy").status, 200);
    assert_eq!(
        data(&get(port, &format!("/api/v1/series?match[]={}", enc("up"))))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let metrics = get(port, "/metrics").text();
    assert!(
        metrics.contains(r#"annals_http_requests_total{handler="/api/v1/write",code="413"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("annals_head_series 5"), "{metrics}");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert!(value("annals_wal_records_total") >= 2.0, "{metrics}");
    assert!(value("annals_wal_bytes_written_total") > 0.0, "{metrics}");
    assert!(value("annals_wal_fsync_duration_seconds_total") >= 0.0);
    assert_eq!(value("annals_compactions_failed_total"), 0.0, "{metrics}");
    assert!(value("annals_compaction_duration_seconds_total") >= 0.0);
}

#[test]
fn sigkill_loses_no_acknowledged_sample_and_sigterm_closes_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let mut server = start_annals(&dir, &["--storage.wal-sync=every-commit"]);
    let mut acked = 0usize;
    for k in 0..50 {
        let req = proto::WriteRequest {
            timeseries: (0..20)
                .map(|s| {
                    series(
                        &[("__name__", "m"), ("s", &s.to_string())],
                        T0 + k * 10_000,
                        1000,
                        10,
                        |i| i as f64,
                    )
                })
                .collect(),
            metadata: vec![],
        };
        assert_eq!(remote_write(server.port, &req).status, 204);
        acked += 200;
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
    drop(server);

    let mut server = start_annals(&dir, &[]);
    let read = proto::ReadRequest {
        queries: vec![proto::Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: i64::MAX,
            matchers: vec![proto::LabelMatcher {
                r#type: label_matcher::Type::Eq as i32,
                name: "__name__".into(),
                value: "m".into(),
            }],
            hints: None,
        }],
        accepted_response_types: vec![],
    };
    let resp = annals_prompb::decode_read_response(&remote_read(server.port, &read).body, 1 << 30)
        .unwrap();
    let n: usize = resp.results[0]
        .timeseries
        .iter()
        .map(|t| t.samples.len())
        .sum();
    assert_eq!(n, acked, "every acknowledged sample survives SIGKILL");

    assert!(server.terminate(), "SIGTERM exits 0:\n{}", server.log());
    let log = server.log();
    assert!(
        log.contains("received SIGTERM") && log.contains("stopped"),
        "{log}"
    );
    let snapshot = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("chunk_snapshot.")
        });
    assert!(snapshot, "the memory snapshot is written at shutdown");
}

#[test]
fn admin_api_is_off_by_default_and_works_when_enabled() {
    let d = tempfile::tempdir().unwrap();
    let server = start_annals(&d.path().join("off"), &[]);
    let r = http(
        server.port,
        "POST",
        "/api/v1/admin/tsdb/clean_tombstones",
        None,
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["errorType"], "unavailable");
    assert_eq!(r.json()["error"], "admin APIs disabled");
    drop(server);

    let dir = d.path().join("on");
    let server = start_annals(&dir, &["--web.enable-admin-api"]);
    let port = server.port;
    write_fixture(port);
    let r = post_form(
        port,
        "/api/v1/admin/tsdb/delete_series",
        &format!("match[]={}", enc(r#"up{instance="b:9100"}"#)),
    );
    // No data: 204 and no body, as Prometheus.
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.text(), "");
    assert_eq!(
        data(&get(port, &format!("/api/v1/series?match[]={}", enc("up"))))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = http(
        port,
        "PUT",
        "/api/v1/admin/tsdb/clean_tombstones",
        None,
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let r = http(port, "POST", "/api/v1/admin/tsdb/snapshot", None, &[]).unwrap();
    let name = data(&r)["name"].as_str().unwrap().to_owned();
    let snap = dir.join("snapshots").join(&name);
    assert!(snap.is_dir(), "{name}");
    let dump = crate::support::annals_ok(&["dump", snap.to_str().unwrap()]);
    assert!(
        dump.contains(r#"instance="a:9100""#) && !dump.contains(r#"instance="b:9100""#),
        "{dump}"
    );
    let r = http(
        port,
        "POST",
        "/api/v1/admin/tsdb/snapshot?skip_head=maybe",
        None,
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn web_config_serves_tls_and_basic_auth() {
    let Some(openssl) = crate::support::oracle("openssl") else {
        return;
    };
    let Some(curl) = crate::support::oracle("curl") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let (cert, key) = (d.path().join("cert.pem"), d.path().join("key.pem"));
    let st = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let hash = bcrypt::hash("s3cret", 6).unwrap();
    let cfg = d.path().join("web.yml");
    std::fs::write(
        &cfg,
        format!("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  alice: {hash}\n"),
    )
    .unwrap();
    let server = start_annals(
        &d.path().join("data"),
        &[&format!("--web.config.file={}", cfg.display())],
    );
    let url = format!("https://127.0.0.1:{}/api/v1/labels", server.port);
    let run = |args: &[&str]| {
        let out = Command::new(&curl)
            .args(["-s", "-i", "--cacert"])
            .arg(&cert)
            .args(args)
            .arg(&url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ok = run(&["-u", "alice:s3cret"]);
    assert!(
        ok.starts_with("HTTP/2 200") || ok.starts_with("HTTP/1.1 200"),
        "{ok}"
    );
    assert!(ok.contains(r#"{"status":"success","data":[]}"#), "{ok}");
    assert!(
        ok.to_ascii_lowercase().contains("x-frame-options: deny"),
        "{ok}"
    );
    let denied = run(&["-u", "alice:wrong"]);
    assert!(denied.contains(" 401"), "{denied}");
    assert!(
        denied
            .to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{denied}"
    );
    assert!(run(&[]).contains(" 401"));
    // Plain HTTP to the TLS port gets no answer.
    assert!(http(server.port, "GET", "/-/healthy", None, &[]).map_or(true, |r| r.status != 200));

    // A bad configuration stops the server before it listens, naming the problem.
    std::fs::write(&cfg, "basic_auth_users:\n  bob: plain\n").unwrap();
    let out = crate::support::annals(&[
        "serve",
        "--listen=127.0.0.1:0",
        &format!("--web.config.file={}", cfg.display()),
        d.path().join("x").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a bcrypt hash"));
}

/// `prometheus-api-client` from PyPI (installed by `.ci/run`) makes the calls Grafana's
/// Prometheus data source makes.
#[test]
fn python_prometheus_api_client_reads_what_was_written() {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let probe = Command::new("python3")
        .args(["-c", "import prometheus_api_client"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(
            !ci,
            "prometheus-api-client is required in CI (pip install prometheus-api-client)"
        );
        eprintln!("SKIPPED: python3 with prometheus-api-client not found (pip install prometheus-api-client)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let server = start_annals(&d.path().join("data"), &[]);
    write_fixture(server.port);
    let script = format!(
        r#"
import json, sys
from prometheus_api_client import PrometheusConnect
p = PrometheusConnect(url="http://127.0.0.1:{port}", disable_ssl=True)
assert p.check_prometheus_connection()
out = {{}}
out["names"] = p.all_metrics()
out["labels"] = p.get_label_names()
out["values"] = p.get_label_values("instance")
r = p._session.get("http://127.0.0.1:{port}/api/v1/series", params={{"match[]": "up", "start": "{s}", "end": "{e}"}})
out["series"] = r.json()["data"]
r = p._session.get("http://127.0.0.1:{port}/api/v1/metadata")
out["metadata"] = r.json()["data"]
r = p._session.get("http://127.0.0.1:{port}/api/v1/status/buildinfo")
out["buildinfo"] = r.json()["data"]
import datetime
from prometheus_api_client import PrometheusApiClientException
out["query"] = p.custom_query("sum by (job) (up)", params={{"time": {s} + 300}})
utc = datetime.timezone.utc
out["range"] = p.custom_query_range(
    "rate(http_requests_total[1m])",
    start_time=datetime.datetime.fromtimestamp({s}, utc),
    end_time=datetime.datetime.fromtimestamp({s} + 600, utc),
    step="60",
)
try:
    p.custom_query("sum(")
    out["bad"] = "accepted"
except PrometheusApiClientException as e:
    out["bad"] = str(e)
print(json.dumps(out))
"#,
        port = server.port,
        s = T0 / 1000,
        e = T0 / 1000 + 3000
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["names"], serde_json::json!(["http_requests_total", "up"]));
    assert_eq!(
        v["labels"],
        serde_json::json!(["__name__", "code", "instance", "job"])
    );
    assert_eq!(v["values"], serde_json::json!(["a:9100", "b:9100"]));
    assert_eq!(v["series"].as_array().unwrap().len(), 2);
    assert_eq!(v["metadata"]["http_requests_total"][0]["type"], "counter");
    assert_eq!(v["buildinfo"]["version"], "2.42.0");
    // PromQL: at 300 s, b:9100 is 0 and a:9100 is 1.
    assert_eq!(
        v["query"],
        serde_json::json!([{"metric": {"job": "node"}, "value": [T0 / 1000 + 300, "1"]}])
    );
    let range = v["range"].as_array().unwrap();
    assert_eq!(range.len(), 1, "{range:?}");
    let points = range[0]["values"].as_array().unwrap();
    // No rate at the first step: one sample in its window.
    assert_eq!(points.len(), 10, "{points:?}");
    for (i, p) in points.iter().enumerate() {
        assert_eq!(p[0], T0 / 1000 + 60 * (i as i64 + 1));
        let r: f64 = p[1].as_str().unwrap().parse().unwrap();
        assert!((r - 2.5 / 15.0).abs() < 1e-9, "{p}");
    }
    let bad = v["bad"].as_str().unwrap();
    assert!(bad.contains("400") && bad.contains("parse error"), "{bad}");
}
