//! `annals serve` against a real Prometheus 2.42: promtool and the JSON API over the same
//! blocks, Prometheus remote-writing what it scrapes to annals, Prometheus remote-reading
//! from annals, and the remote-read responses of both for the same data.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use annals_prompb::proto::{self, label_matcher, read_request::ResponseType};

use crate::serve_api::decode_streamed;
use crate::serve_support::*;
use crate::support::*;

/// The node-exporter data: 507 series every 15 s, 900 times from this second.
const FIRST: i64 = 1_763_856_000;
const LAST: i64 = FIRST + 899 * 15;

fn empty_config(dir: &Path) -> std::path::PathBuf {
    let c = dir.join("prometheus.yml");
    std::fs::write(&c, "scrape_configs: []\n").unwrap();
    c
}

/// promtool's output of `query series|labels` against `port`.
fn promtool_query(promtool: &Path, port: u16, args: &[&str]) -> String {
    // `query series [flags] <server>`, `query labels [flags] <server> <name>`.
    let url = format!("http://127.0.0.1:{port}");
    let mut a: Vec<&str> = vec!["query", args[0]];
    a.extend(args[1..].iter().filter(|x| x.starts_with("--")));
    a.push(&url);
    a.extend(args[1..].iter().filter(|x| !x.starts_with("--")));
    let out = Command::new(promtool)
        .args(&a)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {a:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn promtool_and_the_json_api_see_what_prometheus_serves_over_the_same_blocks() {
    let Some(prometheus) = oracle("prometheus") else {
        return;
    };
    let Some(promtool) = promtool() else { return };
    let d = tempfile::tempdir().unwrap();
    let ours = d.path().join("annals");
    crate::import::import_node_exporter(&ours);
    let theirs = d.path().join("prometheus");
    copy_dir(&ours, &theirs);
    // A max-samples both servers share, low enough for one query to exceed it.
    let limit = "--query.max-samples=200000";
    let prom = start_prometheus(&prometheus, &theirs, &empty_config(d.path()), &[limit]);
    let annals = start_annals(&ours, &["--retention.time=0", limit]);

    let (s, e) = (FIRST.to_string(), LAST.to_string());
    let mid = (FIRST + 3 * 3600).to_string();
    let mid5 = (FIRST + 3 * 3600 + 300).to_string();
    let cases: Vec<Vec<String>> = vec![
        vec!["series".into(), "--match=node_load1".into()],
        vec![
            "series".into(),
            r#"--match={__name__=~"node_cpu.*", mode="idle"}"#.into(),
            "--match=node_load5".into(),
            format!("--start={s}"),
            format!("--end={e}"),
        ],
        vec![
            "series".into(),
            r#"--match={__name__=~"go_gc.*"}"#.into(),
            format!("--start={mid}"),
            format!("--end={mid5}"),
        ],
        vec![
            "series".into(),
            "--match=node_load1".into(),
            "--start=0".into(),
            "--end=1".into(),
        ],
        vec!["labels".into(), "__name__".into()],
        vec![
            "labels".into(),
            "cpu".into(),
            "--match=node_cpu_seconds_total".into(),
        ],
        vec![
            "labels".into(),
            "mode".into(),
            format!("--start={s}"),
            format!("--end={mid}"),
        ],
        vec![
            "labels".into(),
            "job".into(),
            "--start=0".into(),
            "--end=1".into(),
        ],
    ];
    // PromQL through promtool: instant and range queries.
    let step_cases: Vec<Vec<String>> = vec![
        vec![
            "instant".into(),
            format!("--time={mid}"),
            "node_load1".into(),
        ],
        vec![
            "instant".into(),
            format!("--time={mid}"),
            "sum by (mode) (rate(node_cpu_seconds_total[5m]))".into(),
        ],
        vec![
            "instant".into(),
            format!("--time={e}"),
            "topk(3, node_memory_Active_bytes or node_memory_MemFree_bytes)".into(),
        ],
        vec![
            "instant".into(),
            format!("--time={mid}"),
            "node_load1[1m]".into(),
        ],
        vec![
            "instant".into(),
            format!("--time={mid}"),
            "1 + 2 * 3".into(),
        ],
        vec![
            "range".into(),
            format!("--start={s}"),
            format!("--end={e}"),
            "--step=5m".into(),
            "rate(node_network_receive_bytes_total[1m])".into(),
        ],
        vec![
            "range".into(),
            format!("--start={mid}"),
            format!("--end={mid5}"),
            "--step=15s".into(),
            r#"avg_over_time(go_goroutines[2m]) > bool 5 or on() vector(0)"#.into(),
        ],
        vec![
            "range".into(),
            format!("--start={s}"),
            format!("--end={e}"),
            "--step=17m".into(),
            "histogram_quantile(0.9, sum by (le) (rate(node_cpu_seconds_total[10m])))".into(),
        ],
    ];
    for c in cases.iter().chain(&step_cases) {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        let want = promtool_query(&promtool, prom.port, &args);
        let got = promtool_query(&promtool, annals.port, &args);
        assert!(
            !want.is_empty() || args.contains(&"--end=1"),
            "{args:?}: Prometheus printed nothing"
        );
        assert_eq!(got, want, "promtool query {args:?}");
    }

    // The JSON of API calls, field by field.
    let paths = [
        format!("/api/v1/series?match[]={}", enc("node_load1")),
        format!("/api/v1/series?match[]={}&match[]={}&start={s}&end={mid}", enc(r#"{__name__=~"node_(load|memory_Active).*"}"#), enc("node_load1")),
        "/api/v1/labels".into(),
        format!("/api/v1/labels?match[]={}", enc("node_cpu_seconds_total")),
        format!("/api/v1/labels?start={s}&end={s}"),
        "/api/v1/labels?start=0&end=1".into(),
        "/api/v1/label/__name__/values".into(),
        format!("/api/v1/label/device/values?match[]={}&start=2025-11-23T00:00:00Z&end=2025-11-23T01:00:00.5Z", enc(r#"{__name__=~"node_network.*"}"#)),
        "/api/v1/label/nonexistent/values".into(),
        "/api/v1/targets".into(),
        "/api/v1/targets?state=active".into(),
        "/api/v1/rules".into(),
        "/api/v1/alerts".into(),
        "/api/v1/alertmanagers".into(),
        "/api/v1/targets/metadata".into(),
        "/api/v1/query_exemplars?query=up".into(),
        format!("/api/v1/query_exemplars?query={}&start={s}&end={e}", enc("sum(rate(node_load1[5m])) by (job)")),
        format!("/api/v1/query_exemplars?query={}", enc("1 + 1")),
        format!("/api/v1/query_exemplars?query={}", enc("vector(time())")),
        format!("/api/v1/query_exemplars?query={}", enc("sum(")),
        format!("/api/v1/query_exemplars?query={}", enc("foo{")),
        format!("/api/v1/query_exemplars?query={}", enc("rate(up)")),
        "/api/v1/query_exemplars".into(),
        "/api/v1/query_exemplars?query=up&start=2&end=1".into(),
        "/api/v1/query_exemplars?query=up&start=x".into(),
        // PromQL.
        format!("/api/v1/query?query=node_load1&time={mid}"),
        format!("/api/v1/query?query={}&time={mid}", enc("sum by (mode) (rate(node_cpu_seconds_total[5m]))")),
        format!("/api/v1/query?query={}&time={mid}", enc(r#"count_values("v", node_cpu_seconds_total{cpu="0"} > 1e3)"#)),
        format!("/api/v1/query?query={}&time={mid}", enc("node_filesystem_avail_bytes[1m]")),
        format!("/api/v1/query?query={}&time={mid}", enc("label_replace(node_load5, \"x\", \"$1\", \"__name__\", \"node_(.*)\")")),
        format!("/api/v1/query?query={}&time={mid}", enc("scalar(node_load1) * 2")),
        format!("/api/v1/query?query={}&time={mid}", enc("\"a string\"")),
        format!("/api/v1/query?query={}&time={mid}", enc("node_load1 offset 1h")),
        format!("/api/v1/query?query={}&time={e}", enc("vector(1) unless node_load1")),
        format!("/api/v1/query_range?query={}&start={s}&end={e}&step=600", enc("rate(node_disk_read_bytes_total[5m])")),
        format!("/api/v1/query_range?query={}&start={mid}&end={mid5}&step=1m", enc("max_over_time(node_load1[10m:30s])")),
        format!("/api/v1/query_range?query={}&start={s}&end={e}&step=3600", enc("time()")),
        format!("/api/v1/query_range?query={}&start=0&end=60&step=15", enc("node_load1")),
        // PromQL errors.
        format!("/api/v1/query?query={}&time={mid}", enc("sum(")),
        format!("/api/v1/query?query={}&time={mid}", enc("rate(node_load1)")),
        format!("/api/v1/query_range?query={}&start={s}&end={e}&step=60", enc("node_load1[5m]")),
        format!("/api/v1/query_range?query={}&start={s}&end={e}&step=60", enc("foo{")),
        format!("/api/v1/query?query={}&time={e}", enc(r#"{__name__=~"node_.+"}[4h]"#)),
        format!("/api/v1/query_range?query={}&start={s}&end={e}&step=15", enc(r#"{__name__=~"node_(cpu|disk).+"}"#)),
        format!("/api/v1/query?query={}&time={mid}", enc("node_cpu_seconds_total + on(cpu) node_cpu_seconds_total")),
        // Errors: status code, errorType and message.
        "/api/v1/series".into(),
        "/api/v1/series?match[]=up&start=yesterday".into(),
        "/api/v1/labels?end=x".into(),
        "/api/v1/label/a-b/values".into(),
        "/api/v1/query?query=up&time=abc".into(),
        "/api/v1/query?query=up&timeout=x".into(),
        "/api/v1/query_range?query=up&start=x&end=1&step=1".into(),
        "/api/v1/query_range?query=up&start=2&end=1&step=1".into(),
        "/api/v1/query_range?query=up&start=1&end=2&step=0".into(),
        "/api/v1/query_range?query=up&start=1&end=2&step=x".into(),
        "/api/v1/query_range?query=up&start=0&end=200000&step=1".into(),
        "/api/v1/metadata?limit=abc".into(),
        "/api/v1/rules?type=bad".into(),
        "/api/v1/admin/tsdb/clean_tombstones".into(),
    ];
    for p in &paths {
        let method = if p.contains("/admin/") { "POST" } else { "GET" };
        let a = http(annals.port, method, p, None, &[]).unwrap();
        let b = http(prom.port, method, p, None, &[]).unwrap();
        assert_eq!(
            a.status,
            b.status,
            "{p}: ours {} theirs {}",
            a.text(),
            b.text()
        );
        if b.body.is_empty() {
            // 204: no body.
            assert_eq!(a.text(), "", "{p}");
        } else {
            assert_eq!(a.json(), b.json(), "{p}");
        }
        assert_eq!(a.header("content-type"), b.header("content-type"), "{p}");
    }
    // Streamed remote read over the same blocks: the stored chunks, verbatim, so the
    // responses are byte for byte Prometheus's (frames cut at the same sizes too).
    for (matcher, start, end) in [
        ("node_load1", i64::MIN / 2, i64::MAX / 2),
        ("node_cpu_seconds_total", FIRST * 1000, LAST * 1000),
        ("node_.*", i64::MIN / 2, i64::MAX / 2),
    ] {
        let read = proto::ReadRequest {
            queries: vec![proto::Query {
                start_timestamp_ms: start,
                end_timestamp_ms: end,
                matchers: vec![proto::LabelMatcher {
                    r#type: label_matcher::Type::Re as i32,
                    name: "__name__".into(),
                    value: matcher.into(),
                }],
                hints: None,
            }],
            accepted_response_types: vec![ResponseType::StreamedXorChunks as i32],
        };
        let (a, b) = (
            remote_read(annals.port, &read),
            remote_read(prom.port, &read),
        );
        assert_eq!((a.status, b.status), (200, 200), "{matcher}");
        assert!(b.body.len() > 1000, "{matcher}: {} bytes", b.body.len());
        assert!(a.body == b.body, "{matcher}: streamed responses differ");
    }
    // A query past its timeout: 503 `timeout` from both. Prometheus's message depends on
    // which Go select branch wins in its query queue, so either of its two wordings.
    let p = format!("/api/v1/query?query=node_load1&time={mid}&timeout=0.000001");
    for port in [annals.port, prom.port] {
        let r = get(port, &p);
        assert_eq!(r.status, 503, "{}", r.text());
        let v = r.json();
        assert_eq!(v["errorType"], "timeout");
        assert!(
            [
                "query timed out in query queue",
                "query timed out in query execution"
            ]
            .contains(&v["error"].as_str().unwrap()),
            "{v}"
        );
    }
    // `stats`: the same shape when asked, absent otherwise; the same sample counts.
    let p = format!(
        "/api/v1/query?query={}&time={mid}&stats=1",
        enc("sum(rate(node_cpu_seconds_total[5m]))")
    );
    let (a, b) = (get(annals.port, &p).json(), get(prom.port, &p).json());
    assert_eq!(a["data"]["result"], b["data"]["result"]);
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = Vec::new();
        for part in ["timings", "samples"] {
            k.extend(
                v["data"]["stats"][part]
                    .as_object()
                    .expect("stats")
                    .keys()
                    .map(|x| format!("{part}.{x}")),
            );
        }
        k
    };
    assert_eq!(keys(&a), keys(&b));
    // POST forms as GET.
    let form = format!("match[]={}&start={s}&end={e}", enc("node_load15"));
    assert_eq!(
        post_form(annals.port, "/api/v1/series", &form).json(),
        post_form(prom.port, "/api/v1/series", &form).json()
    );
    let form = format!(
        "query={}&start={s}&end={e}&step=900",
        enc("deriv(node_load15[15m])")
    );
    assert_eq!(
        post_form(annals.port, "/api/v1/query_range", &form).json(),
        post_form(prom.port, "/api/v1/query_range", &form).json()
    );
    // The same shape where values are the server's own.
    for p in [
        "/api/v1/status/buildinfo",
        "/api/v1/status/runtimeinfo",
        "/api/v1/status/tsdb",
    ] {
        let (a, b) = (get(annals.port, p).json(), get(prom.port, p).json());
        let keys = |v: &serde_json::Value| {
            v["data"]
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
        };
        assert_eq!(keys(&a), keys(&b), "{p}");
    }
}

#[test]
fn prometheus_remote_write_stores_in_annals_what_prometheus_stores() {
    let Some(prometheus) = oracle("prometheus") else {
        return;
    };
    let Some(promtool) = promtool() else { return };
    let Some(node_exporter) = oracle("prometheus-node-exporter") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let annals_dir = d.path().join("annals");
    let mut annals = start_annals(&annals_dir, &["--retention.time=0"]);
    let node_port = free_port();
    let node_log = std::fs::File::create(d.path().join("node.log")).unwrap();
    let node = Command::new(node_exporter)
        .arg(format!("--web.listen-address=127.0.0.1:{node_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(node_log)
        .spawn()
        .expect("start node exporter");
    let _node = Proc {
        child: node,
        port: node_port,
        log: d.path().join("node.log"),
    };

    let prom_port = free_port();
    let config = d.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1m\n\
             scrape_configs:\n\
             - job_name: prometheus\n  static_configs: [{{targets: ['127.0.0.1:{prom_port}']}}]\n\
             - job_name: node\n  static_configs: [{{targets: ['127.0.0.1:{node_port}']}}]\n\
             remote_write:\n\
             - url: http://127.0.0.1:{}/api/v1/write\n  queue_config: {{batch_send_deadline: 1s, max_samples_per_send: 2000}}\n  metadata_config: {{send_interval: 2s}}\n",
            annals.port
        ),
    )
    .unwrap();
    let prom_dir = d.path().join("prometheus");
    let log = prom_dir.with_extension("prometheus.log");
    let child = Command::new(&prometheus)
        .arg(format!("--storage.tsdb.path={}", prom_dir.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .arg(format!("--config.file={}", config.display()))
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start prometheus");
    let mut prom = Proc {
        child,
        port: prom_port,
        log,
    };
    wait_ready(&prom, "/-/ready");

    // Scrape and forward for a while; meanwhile the metadata both hold agree.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut compared = 0;
    while Instant::now() < deadline && compared == 0 {
        std::thread::sleep(Duration::from_secs(2));
        let theirs = get(prom.port, "/api/v1/metadata").json();
        let ours = get(annals.port, "/api/v1/metadata").json();
        for metric in [
            "node_load1",
            "node_cpu_seconds_total",
            "prometheus_http_requests_total",
            "up",
        ] {
            let (Some(t), Some(o)) = (theirs["data"].get(metric), ours["data"].get(metric)) else {
                continue;
            };
            assert_eq!(o, t, "metadata of {metric}");
            compared += 1;
        }
    }
    assert!(
        compared >= 3,
        "metadata reached annals: {}",
        get(annals.port, "/api/v1/metadata").text()
    );
    std::thread::sleep(Duration::from_secs(8));
    let remote = get(
        prom.port,
        &format!(
            "/api/v1/query?query={}",
            enc("prometheus_remote_storage_samples_failed_total")
        ),
    )
    .json();
    assert!(
        prom.terminate(),
        "prometheus stops cleanly:\n{}",
        prom.log()
    );
    assert!(
        annals.terminate(),
        "annals stops cleanly:\n{}",
        annals.log()
    );
    assert_eq!(
        remote["data"]["result"][0]["value"][1], "0",
        "no sample failed to send: {remote}"
    );

    let ours = annals_ok(&["dump", annals_dir.to_str().unwrap()]);
    let copy = d.path().join("prometheus-copy");
    copy_dir(&prom_dir, &copy);
    let theirs = promtool_dump(&promtool, &copy, &[]);
    let max_t = |dump: &str| {
        dump.lines()
            .map(|l| parse_dump_line(l).2)
            .max()
            .unwrap_or(0)
    };
    // The overlap: up to the last second both hold, minus the staleness markers Prometheus
    // writes at shutdown after its queue has stopped.
    let until = max_t(&ours).min(max_t(&theirs)) - 3000;
    let cut = |dump: &str| {
        let mut lines: Vec<&str> = dump
            .lines()
            .filter(|l| parse_dump_line(l).2 <= until)
            .collect();
        lines.sort_unstable();
        lines.join("\n")
    };
    let (a, b) = (cut(&ours), cut(&theirs));
    assert!(
        b.lines().count() > 5000,
        "Prometheus scraped: {} samples",
        b.lines().count()
    );
    assert!(b.contains("node_load1") && b.contains("prometheus_http_requests_total"));
    assert_same_samples(&a, &b);
}

#[test]
fn prometheus_remote_reads_from_annals_and_both_answer_remote_read_alike() {
    let Some(prometheus) = oracle("prometheus") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let annals = start_annals(&d.path().join("annals"), &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = (now - 3_600_000) / 15_000 * 15_000;
    let req = proto::WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "rr_metric"), ("job", "a")],
                t0,
                15_000,
                240,
                |i| i as f64 * 0.5,
            ),
            series(
                &[("__name__", "rr_metric"), ("job", "b")],
                t0,
                15_000,
                240,
                |i| if i % 7 == 0 { f64::NAN } else { -(i as f64) },
            ),
            series(
                &[("__name__", "rr_other"), ("job", "a")],
                t0 + 7,
                1_000,
                3000,
                |i| (i * i) as f64,
            ),
        ],
        metadata: vec![],
    };
    assert_eq!(remote_write(annals.port, &req).status, 204);

    let config = d.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!("scrape_configs: []\nremote_read:\n- url: http://127.0.0.1:{}/api/v1/read\n  read_recent: true\n", annals.port),
    )
    .unwrap();
    let prom = start_prometheus(
        &prometheus,
        &d.path().join("prometheus"),
        &config,
        &["--web.enable-remote-write-receiver"],
    );

    // Prometheus's own PromQL over data only annals holds.
    let (s, e) = (t0 / 1000, (t0 + 239 * 15_000) / 1000);
    let r = get(
        prom.port,
        &format!(
            "/api/v1/query_range?query={}&start={s}&end={e}&step=15",
            enc(r#"rr_metric{job="a"}"#)
        ),
    )
    .json();
    let values = r["data"]["result"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(values.len(), 240, "{r}");
    assert_eq!(values[10], serde_json::json!([s + 150, "5"]));
    let r = get(
        prom.port,
        &format!(
            "/api/v1/query?query={}&time={}",
            enc("count_over_time(rr_other[10m])"),
            t0 / 1000 + 3000
        ),
    )
    .json();
    assert_eq!(r["data"]["result"][0]["value"][1], "600", "{r}");
    let r = get(
        prom.port,
        &format!(
            "/api/v1/query?query={}&time={e}",
            enc("sum by (job) (rr_metric)")
        ),
    )
    .json();
    assert_eq!(r["data"]["result"].as_array().map(Vec::len), Some(2), "{r}");

    // Now Prometheus holds the same data itself: the remote-read answers of both agree.
    assert_eq!(remote_write(prom.port, &req).status, 204);
    let ranges = [(t0 + 60_000, t0 + 1_800_000), (0, i64::MAX)];
    let matchers = [
        proto::LabelMatcher {
            r#type: label_matcher::Type::Re as i32,
            name: "__name__".into(),
            value: "rr_.*".into(),
        },
        proto::LabelMatcher {
            r#type: label_matcher::Type::Neq as i32,
            name: "job".into(),
            value: "b".into(),
        },
    ];
    for rt in [vec![], vec![ResponseType::StreamedXorChunks as i32]] {
        for m in &matchers {
            for &(start, end) in &ranges {
                let read = proto::ReadRequest {
                    queries: vec![proto::Query {
                        start_timestamp_ms: start,
                        end_timestamp_ms: end,
                        matchers: vec![m.clone()],
                        hints: None,
                    }],
                    accepted_response_types: rt.clone(),
                };
                let (a, b) = (
                    remote_read(annals.port, &read),
                    remote_read(prom.port, &read),
                );
                assert_eq!(
                    (a.status, b.status),
                    (200, 200),
                    "{} / {}",
                    a.text(),
                    b.text()
                );
                assert_eq!(a.header("content-type"), b.header("content-type"));
                if rt.is_empty() {
                    let ra = annals_prompb::decode_read_response(&a.body, 1 << 30).unwrap();
                    let rb = annals_prompb::decode_read_response(&b.body, 1 << 30).unwrap();
                    assert!(!rb.results[0].timeseries.is_empty());
                    assert_eq!(
                        format!("{ra:?}"),
                        format!("{rb:?}"),
                        "SAMPLES answers differ"
                    );
                } else {
                    // Prometheus streams whole chunks, which may reach outside the range.
                    let clip = |v: Vec<crate::serve_api::StreamedSeries>| -> Vec<_> {
                        v.into_iter()
                            .map(|(l, s)| {
                                (
                                    l,
                                    s.into_iter()
                                        .filter(|p| (start..=end).contains(&p.0))
                                        .collect::<Vec<_>>(),
                                )
                            })
                            .collect()
                    };
                    let (sa, sb) = (
                        clip(decode_streamed(&a.body)),
                        clip(decode_streamed(&b.body)),
                    );
                    assert!(!sb.is_empty());
                    assert_eq!(
                        format!("{sa:?}"),
                        format!("{sb:?}"),
                        "streamed samples differ"
                    );
                }
            }
        }
    }
}

/// vmagent, a remote-write sender other than Prometheus, scraping annals's own `/metrics`.
#[test]
fn vmagent_remote_writes_to_annals() {
    let Some(vmagent) = oracle("vmagent") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let annals = start_annals(&d.path().join("annals"), &[]);
    let config = d.path().join("scrape.yml");
    std::fs::write(
        &config,
        format!("scrape_configs:\n- job_name: annals\n  scrape_interval: 1s\n  static_configs: [{{targets: ['127.0.0.1:{}']}}]\n", annals.port),
    )
    .unwrap();
    let port = free_port();
    let log = d.path().join("vmagent.log");
    let child = Command::new(vmagent)
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-promscrape.config={}", config.display()))
        .arg(format!(
            "-remoteWrite.url=http://127.0.0.1:{}/api/v1/write",
            annals.port
        ))
        .arg(format!(
            "-remoteWrite.tmpDataPath={}",
            d.path().join("vmagent-data").display()
        ))
        .arg("-remoteWrite.flushInterval=200ms")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start vmagent");
    let vm = Proc { child, port, log };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = get(
            annals.port,
            &format!(
                "/api/v1/series?match[]={}",
                enc(r#"annals_head_series{job="annals"}"#)
            ),
        );
        if r.json()["data"].as_array().is_some_and(|a| a.len() == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "vmagent's samples did not arrive: {}\n{}",
            r.text(),
            vm.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let up = get(
        annals.port,
        &format!(
            "/api/v1/label/instance/values?match[]={}",
            enc(r#"up{job="annals"}"#)
        ),
    )
    .json();
    assert_eq!(
        up["data"],
        serde_json::json!([format!("127.0.0.1:{}", annals.port)])
    );
    let metrics = get(annals.port, "/metrics").text();
    assert!(
        !metrics.contains(r#"handler="/api/v1/write",code="400""#),
        "vmagent's writes were all accepted:\n{metrics}"
    );
    drop(vm);
}
