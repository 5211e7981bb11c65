//! The HTTP side of `/api/v1/query` and `/api/v1/query_range` through the router: parameters
//! reach the engine as Prometheus parses them, values render as Prometheus renders them, and
//! engine errors map to Prometheus's error types and status codes. The engine here is a test
//! double that answers canned values per expression (PromQL itself is annals-promql's).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use annals_server::json::{MatrixSeries, Value, VectorSample};
use annals_server::{Evaluated, QueryEngine, QueryError, QueryOptions, ServerOptions};
use tower::ServiceExt;

#[derive(Default)]
struct Canned {
    calls: Mutex<Vec<String>>,
}

impl Canned {
    fn answer(&self, expr: &str, opts: &QueryOptions) -> Result<Evaluated, QueryError> {
        let labels = annals::Labels::new([("__name__", "up"), ("job", "a<b")]).unwrap();
        let value = match expr {
            "vector" => Value::Vector(vec![VectorSample {
                metric: labels,
                t: 1_435_781_451_781,
                v: 1e-7,
            }]),
            "matrix" => Value::Matrix(vec![MatrixSeries {
                metric: labels,
                points: vec![(1000, f64::INFINITY), (16_000, 2.5)],
            }]),
            "scalar" => Value::Scalar {
                t: 1500,
                v: f64::NAN,
            },
            "bad" => {
                return Err(QueryError::BadData(
                    "1:4: parse error: unexpected end of input".into(),
                ))
            }
            "exec" => {
                return Err(QueryError::Execution(
                    "found duplicate series for the match group".into(),
                ))
            }
            "slow" => loop {
                opts.check()?;
                std::thread::sleep(Duration::from_millis(5));
            },
            other => panic!("unexpected expression {other}"),
        };
        Ok(Evaluated {
            value,
            warnings: Vec::new(),
            stats: None,
        })
    }
}

impl QueryEngine for Canned {
    fn instant(&self, expr: &str, t: i64, opts: &QueryOptions) -> Result<Evaluated, QueryError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("instant {expr} {t}"));
        self.answer(expr, opts)
    }

    fn range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<Evaluated, QueryError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("range {expr} {start} {end} {step}"));
        self.answer(expr, opts)
    }
}

fn call(router: &axum::Router, method: &str, uri: &str, form: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    if form.is_some() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req
        .body(axum::body::Body::from(form.unwrap_or("").to_owned()))
        .unwrap();
    rt.block_on(async {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    })
}

#[test]
fn queries_reach_the_engine_and_render_as_prometheus() {
    let db = annals::Db::open_in_memory(annals::Options::default()).unwrap();
    let engine = Arc::new(Canned::default());
    let opts = ServerOptions {
        engine: Some(engine.clone()),
        ..Default::default()
    };
    let router = annals_server::router(db, opts);

    let (st, body) = call(
        &router,
        "GET",
        "/api/v1/query?query=vector&time=1435781451.781",
        None,
    );
    assert_eq!(
        (st, body.as_str()),
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\u003cb"},"value":[1435781451.781,"1e-07"]}]}}"#
        )
    );
    let (st, body) = call(
        &router,
        "POST",
        "/api/v1/query_range",
        Some("query=matrix&start=1&end=16&step=15s"),
    );
    assert_eq!(
        (st, body.as_str()),
        (
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\u003cb"},"values":[[1,"+Inf"],[16,"2.5"]]}]}}"#
        )
    );
    let (st, body) = call(
        &router,
        "GET",
        "/api/v1/query?query=scalar&time=2015-07-01T20:10:51.781Z",
        None,
    );
    assert_eq!(
        (st, body.as_str()),
        (
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.500,"NaN"]}}"#
        )
    );
    assert_eq!(
        *engine.calls.lock().unwrap(),
        [
            "instant vector 1435781451781",
            "range matrix 1000 16000 15000",
            "instant scalar 1435781451781"
        ]
    );

    let (st, body) = call(&router, "GET", "/api/v1/query?query=bad", None);
    assert_eq!(
        (st, body.as_str()),
        (
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:4: parse error: unexpected end of input"}"#
        )
    );
    let (st, body) = call(
        &router,
        "GET",
        "/api/v1/query_range?query=bad&start=1&end=2&step=1",
        None,
    );
    assert_eq!(
        (st, body.as_str()),
        (
            400,
            r#"{"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected end of input"}"#
        )
    );
    let (st, body) = call(&router, "GET", "/api/v1/query?query=exec", None);
    assert_eq!(
        (st, body.as_str()),
        (
            422,
            r#"{"status":"error","errorType":"execution","error":"found duplicate series for the match group"}"#
        )
    );
    // The request's timeout applies under the server's: the evaluation stops with `timeout`.
    let (st, body) = call(
        &router,
        "GET",
        "/api/v1/query?query=slow&timeout=50ms",
        None,
    );
    assert_eq!(
        (st, body.as_str()),
        (
            503,
            r#"{"status":"error","errorType":"timeout","error":"query timed out"}"#
        )
    );
    let metrics = call(&router, "GET", "/metrics", None).1;
    assert!(
        metrics.contains(r#"annals_queries_total{result="timeout"} 1"#),
        "{metrics}"
    );
}

#[test]
fn without_an_engine_queries_are_unavailable_after_their_parameters_are_checked() {
    let db = annals::Db::open_in_memory(annals::Options::default()).unwrap();
    let router = annals_server::router(db, ServerOptions::default());
    let (st, body) = call(&router, "GET", "/api/v1/query?query=up", None);
    assert_eq!(st, 500);
    assert!(body.contains(r#""errorType":"unavailable""#), "{body}");
    let (st, _) = call(&router, "GET", "/api/v1/query?query=up&time=x", None);
    assert_eq!(st, 400);
}
