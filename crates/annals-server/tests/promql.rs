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

/// Wraps the real engine: records whether the query's cancel flag was set while it ran.
struct Watching {
    inner: PromqlEngine,
    saw_cancel: Arc<std::sync::Mutex<Option<bool>>>,
    started: Arc<std::sync::atomic::AtomicBool>,
}

impl annals_server::QueryEngine for Watching {
    fn instant(
        &self,
        expr: &str,
        t: i64,
        opts: &annals_server::QueryOptions,
    ) -> Result<annals_server::Evaluated, annals_server::QueryError> {
        self.started
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // Hold the query until the client's disconnection reaches it (or a minute passes).
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while !opts.cancel.load(std::sync::atomic::Ordering::Relaxed)
            && std::time::Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let r = self.inner.instant(expr, t, opts);
        *self.saw_cancel.lock().unwrap() =
            Some(matches!(r, Err(annals_server::QueryError::Canceled(_))));
        r
    }

    fn range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &annals_server::QueryOptions,
    ) -> Result<annals_server::Evaluated, annals_server::QueryError> {
        self.inner.range(expr, start, end, step, opts)
    }
}

/// A client that goes away cancels its query: the engine returns `canceled` at its next check.
#[test]
fn a_client_disconnecting_cancels_its_query() {
    use std::io::Write;
    let db = annals::Db::open_in_memory(Options::default()).unwrap();
    let saw_cancel = Arc::new(std::sync::Mutex::new(None));
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opts = ServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        engine: Some(Arc::new(Watching {
            inner: PromqlEngine::new(db.clone(), 1),
            saw_cancel: saw_cancel.clone(),
            started: started.clone(),
        })),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(annals_server::Server::bind(db, opts)).unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = rt.spawn(server.run(async {
        let _ = stopped.await;
    }));
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "GET /api/v1/query?query=vector(1)&time=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    // Go away once the query runs.
    let until = std::time::Instant::now() + Duration::from_secs(90);
    while !started.load(std::sync::atomic::Ordering::Relaxed) {
        assert!(
            std::time::Instant::now() < until,
            "the query never reached the engine"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(c);
    let until = std::time::Instant::now() + Duration::from_secs(90);
    while saw_cancel.lock().unwrap().is_none() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(*saw_cancel.lock().unwrap(), Some(true));
    let _ = stop.send(());
    rt.block_on(serving).unwrap().unwrap();
}
