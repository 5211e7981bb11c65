//! `annals serve --storage.tsdb.out-of-order-time-window` against a Prometheus 2.42 with the
//! same window: late samples remote-written to both, the same answers back.

use annals_prompb::proto;

use crate::serve_support::*;
use crate::support::*;

const T0: i64 = 1_700_006_400_000;

fn request(series: Vec<proto::TimeSeries>) -> proto::WriteRequest {
    proto::WriteRequest {
        timeseries: series,
        ..Default::default()
    }
}

/// Three series, one sample every 30 s for an hour, then late samples at the quarter
/// minutes of the last half hour (newest request first, as a backfill after a network
/// partition sends them), a late sample outside the window, and one at a time already held
/// with another value: both servers accept and refuse the same and answer the same.
#[test]
fn late_remote_writes_are_answered_like_prometheus() {
    let Some(prometheus) = oracle("prometheus") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let mut annals = start_annals(
        &d.path().join("annals"),
        &[
            "--storage.tsdb.out-of-order-time-window=1h",
            "--retention.time=0",
        ],
    );
    let config = d.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1h\nscrape_configs: []\nstorage:\n  tsdb:\n    out_of_order_time_window: 1h\n",
    )
    .unwrap();
    let mut prom = start_prometheus(
        &prometheus,
        &d.path().join("prometheus"),
        &config,
        &["--web.enable-remote-write-receiver"],
    );
    let names = ["ooo_a", "ooo_b", "ooo_c"];
    let mut requests = vec![request(
        names
            .iter()
            .map(|n| {
                series(&[("__name__", n), ("job", "late")], T0, 30_000, 120, |i| {
                    i as f64
                })
            })
            .collect(),
    )];
    for part in (0..4).rev() {
        requests.push(request(
            names
                .iter()
                .map(|n| {
                    let t0 = T0 + 30 * 60_000 + part * 15 * 30_000 + 15_000;
                    series(&[("__name__", n), ("job", "late")], t0, 30_000, 15, |i| {
                        -(i as f64) - part as f64 * 100.0
                    })
                })
                .collect(),
        ));
    }
    // Outside the window (the head's newest is T0 + 59m30s).
    requests.push(request(vec![series(
        &[("__name__", "ooo_a"), ("job", "late")],
        T0 - 2 * 3_600_000,
        30_000,
        1,
        |_| 1.0,
    )]));
    // A late time already held, another value.
    requests.push(request(vec![series(
        &[("__name__", "ooo_b"), ("job", "late")],
        T0 + 30 * 60_000 + 15_000,
        30_000,
        1,
        |_| 42.0,
    )]));
    for (i, req) in requests.iter().enumerate() {
        let (a, p) = (remote_write(annals.port, req), remote_write(prom.port, req));
        let (a_text, p_text) = (a.text(), p.text());
        if i == 5 {
            // 2.42's receiver maps `ErrTooOldSample` to 500 (senders retry it forever);
            // annals answers 400, as 2.42 does for every other rejected sample.
            assert_eq!((a.status, p.status), (400, 500), "{a_text} / {p_text}");
            assert!(p_text.contains("too old sample"), "{p_text}");
            continue;
        }
        if i == 6 {
            // 2.42 looks for duplicates in the open out-of-order chunk only and stores
            // this one beside the m-mapped sample; annals refuses it, as an in-order
            // duplicate.
            assert_eq!((a.status, p.status), (400, 204), "{a_text} / {p_text}");
            assert!(a_text.contains("duplicate sample"), "{a_text}");
            continue;
        }
        assert_eq!(
            a.status, p.status,
            "request {i}: annals {a_text} / Prometheus {p_text}"
        );
        if i < 5 {
            assert_eq!(p.status, 204, "request {i}: {p_text}");
        }
    }
    let end = (T0 + 3_600_000) / 1000;
    for q in [
        format!(
            "/api/v1/query?query={}&time={end}",
            enc("{job=\"late\"}[2h]")
        ),
        format!(
            "/api/v1/query_range?query={}&start={}&end={end}&step=15",
            enc("{job=\"late\"}"),
            T0 / 1000
        ),
        format!(
            "/api/v1/query_range?query={}&start={}&end={end}&step=60",
            enc("count_over_time(ooo_a[5m])"),
            T0 / 1000
        ),
        format!(
            "/api/v1/query_range?query={}&start={}&end={end}&step=60",
            enc("rate(ooo_b[2m])"),
            T0 / 1000
        ),
    ] {
        let (a, p) = (get(annals.port, &q).json(), get(prom.port, &q).json());
        assert_eq!(p["status"], "success", "{q}: {p}");
        let rows = |v: &serde_json::Value| {
            let mut r: Vec<String> = v["data"]["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.to_string())
                .collect();
            r.sort();
            r
        };
        let (ra, rp) = (rows(&a), rows(&p));
        assert!(!rp.is_empty(), "{q}: Prometheus returned nothing");
        assert_eq!(ra, rp, "{q}");
    }
    // Every late sample is there: 120 + 60 per series.
    let raw = get(
        annals.port,
        &format!("/api/v1/query?query={}&time={end}", enc("ooo_c[2h]")),
    )
    .json();
    assert_eq!(
        raw["data"]["result"][0]["values"].as_array().unwrap().len(),
        180
    );
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
}
