//! `/api/v1/query` and `/api/v1/query_range` with the real engine (annals-promql) over a
//! database: values, the limits of the request (timeout, max samples, lookback), the error
//! types and status codes, and the `stats` object only when asked. Compared with a real
//! Prometheus in annals-cli's `serve_prometheus` tests.

use std::sync::Arc;
use std::time::Duration;

use annals::{Labels, Options};
use annals_server::{PromqlEngine, ServerOptions};
use tower::ServiceExt;

fn call(router: &axum::Router, uri: &str) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let req = axum::http::Request::builder()
        .uri(uri)
        .body(axum::body::Body::empty())
        .unwrap();
    rt.block_on(async {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    })
}

/// Two counters, `requests_total{job="api"|"web"}`, 10·i at every 15 s from 0 to 300 s.
fn server(tweak: impl FnOnce(&mut ServerOptions)) -> axum::Router {
    let db = annals::Db::open_in_memory(Options::default()).unwrap();
    let mut app = db.appender();
    for job in ["api", "web"] {
        let l = Labels::new([("__name__", "requests_total"), ("job", job)]).unwrap();
        for i in 0..=20 {
            app.append(None, &l, i * 15_000, (i * 10) as f64).unwrap();
        }
    }
    app.commit().unwrap();
    let mut opts = ServerOptions {
        engine: Some(Arc::new(PromqlEngine::new(db.clone(), 1))),
        ..Default::default()
    };
    tweak(&mut opts);
    annals_server::router(db, opts)
}

#[test]
fn instant_and_range_queries_evaluate_over_the_database() {
    let r = server(|_| {});
    let (st, v) = call(
        &r,
        "/api/v1/query?query=sum(rate(requests_total%5B1m%5D))&time=300",
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[300,"1.3333333333333333"]}]}})
    );
    let (st, v) = call(
        &r,
        "/api/v1/query_range?query=requests_total%7Bjob%3D%22web%22%7D&start=0&end=60&step=30",
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"requests_total","job":"web"},
             "values":[[0,"0"],[30,"20"],[60,"40"]]}]}})
    );
    // A scalar and a string, instant.
    let (_, v) = call(&r, "/api/v1/query?query=1%2B1&time=1.5");
    assert_eq!(
        v["data"],
        serde_json::json!({"resultType":"scalar","result":[1.5,"2"]})
    );
    let (_, v) = call(&r, "/api/v1/query?query=%22x%22&time=2");
    assert_eq!(
        v["data"],
        serde_json::json!({"resultType":"string","result":[2,"x"]})
    );
    // The lookback: 5 minutes by default, so nothing at 601 s; a longer one finds the last.
    let (_, v) = call(&r, "/api/v1/query?query=requests_total&time=601");
    assert_eq!(v["data"]["result"], serde_json::json!([]));
    let r = server(|o| o.query_lookback_delta = Duration::from_secs(600));
    let (_, v) = call(&r, "/api/v1/query?query=requests_total&time=601");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2, "{v}");
}

#[test]
fn errors_have_prometheus_types_and_status_codes() {
    let r = server(|o| o.query_max_samples = 10);
    let (st, v) = call(&r, "/api/v1/query?query=sum(&time=1");
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"query\": 1:5: parse error:"),
        "{v}"
    );
    // A range query's parse and type errors are not wrapped.
    let (st, v) = call(
        &r,
        "/api/v1/query_range?query=up%5B5m%5D&start=1&end=2&step=1",
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v["error"],
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
    );
    let (st, v) = call(&r, "/api/v1/query?query=requests_total%5B5m%5D&time=300");
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["errorType"], "execution");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("query processing would load too many samples into memory in "),
        "{v}"
    );
    let (st, v) = call(
        &r,
        "/api/v1/query?query=requests_total&time=300&timeout=0.000001",
    );
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["errorType"], "timeout");
    assert_eq!(v["error"], "query timed out in query queue");
    let (st, v) = call(
        &r,
        "/api/v1/query?query=requests_total%20%2B%20on()%20requests_total&time=300",
    );
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["errorType"], "execution");
}

#[test]
fn stats_are_rendered_only_when_asked() {
    let r = server(|_| {});
    let (_, v) = call(&r, "/api/v1/query?query=requests_total&time=300");
    assert!(v["data"].get("stats").is_none(), "{v}");
    let (_, v) = call(
        &r,
        "/api/v1/query_range?query=requests_total&start=0&end=300&step=15&stats=1",
    );
    let stats = &v["data"]["stats"];
    assert_eq!(
        stats["timings"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [
            "evalTotalTime",
            "execQueueTime",
            "execTotalTime",
            "innerEvalTime",
            "queryPreparationTime",
            "resultSortTime"
        ]
    );
    assert!(stats["samples"]["totalQueryableSamples"].as_u64().unwrap() >= 42);
    assert!(stats["samples"]["peakSamples"].as_u64().unwrap() >= 42);
}
