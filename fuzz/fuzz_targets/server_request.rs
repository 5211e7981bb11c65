//! Whole HTTP requests through `annals serve`'s router (parameter parsing, form bodies,
//! remote-write and remote-read bodies, selectors), over an in-memory database holding a few
//! series: never a panic, and never a 5xx except the documented `unavailable` answers (PromQL
//! not built in, admin API off). Input: one byte picks the route and method, then the query
//! string up to the first newline, then the body.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/query"),
    ("POST", "/api/v1/query_range"),
    ("GET", "/api/v1/series"),
    ("POST", "/api/v1/series"),
    ("GET", "/api/v1/labels"),
    ("GET", "/api/v1/label/job/values"),
    ("GET", "/api/v1/label/__name__/values"),
    ("GET", "/api/v1/metadata"),
    ("GET", "/api/v1/query_exemplars"),
    ("POST", "/api/v1/write"),
    ("POST", "/api/v1/read"),
    ("GET", "/api/v1/status/tsdb"),
    ("GET", "/api/v1/rules"),
    ("POST", "/api/v1/admin/tsdb/delete_series"),
    ("GET", "/api/v1/targets"),
];

struct Fixture {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let db = annals::Db::open_in_memory(annals::Options::default()).expect("in-memory db");
        let mut app = db.appender();
        for (i, job) in ["api", "node"].iter().enumerate() {
            let l = annals::Labels::new([("__name__", "up"), ("job", job)]).expect("labels");
            for k in 0..10 {
                app.append(None, &l, 1_000 * k, (i as i64 + k) as f64)
                    .expect("append");
            }
        }
        app.commit().expect("commit");
        let opts = annals_server::ServerOptions {
            remote_write_max_decoded: 1 << 20,
            ..Default::default()
        };
        Fixture {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            router: annals_server::router(db, opts),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (method, path) = ROUTES[pick as usize % ROUTES.len()];
    let (query, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let uri = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    if pick & 0x80 != 0 && !path.ends_with("/write") && !path.ends_with("/read") {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let Ok(req) = req.body(axum::body::Body::from(body.to_vec())) else {
        return; // not a valid URI: hyper would have refused it before the router
    };
    let f = fixture();
    let resp =
        f.rt.block_on(f.router.clone().oneshot(req))
            .expect("the router is infallible");
    let status = resp.status();
    if status.is_server_error() {
        let bytes =
            f.rt.block_on(axum::body::to_bytes(resp.into_body(), 1 << 20))
                .expect("body");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains(r#""errorType":"unavailable""#),
            "{method} {path}?{query}: {status} {text}"
        );
    }
});
