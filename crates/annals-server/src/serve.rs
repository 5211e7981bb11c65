//! The router with its tower layers, and the listener: plain TCP or TLS (rustls), HTTP/1.1 and
//! HTTP/2, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::metrics::{HandlerLabels, HandlerOnly};
use crate::{api, read, status, write, AppState, ServerOptions};

/// Longest a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub(crate) fn build_router(state: Arc<AppState>) -> Router {
    let o = &state.opts;
    let queries = Router::new()
        .route("/api/v1/query", get(api::query).post(api::query))
        .route(
            "/api/v1/query_range",
            get(api::query_range).post(api::query_range),
        )
        .route("/api/v1/series", get(api::series).post(api::series))
        .route(
            "/api/v1/labels",
            get(api::label_names).post(api::label_names),
        )
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route("/api/v1/status/tsdb", get(status::tsdb))
        .route_layer(GlobalConcurrencyLimitLayer::new(
            o.query_max_concurrency.max(1),
        ));
    let remote_write = Router::new()
        .route("/api/v1/write", post(write::remote_write))
        .route_layer(GlobalConcurrencyLimitLayer::new(
            o.remote_write_concurrency.max(1),
        ))
        .layer(DefaultBodyLimit::max(o.remote_write_max_body));
    let remote_read = Router::new()
        .route("/api/v1/read", post(read::remote_read))
        .route_layer(GlobalConcurrencyLimitLayer::new(
            o.remote_read_concurrent_limit.max(1),
        ))
        .layer(DefaultBodyLimit::max(o.remote_write_max_body));
    let admin = Router::new()
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(api::delete_series).put(api::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(api::clean_tombstones).put(api::clean_tombstones),
        )
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(api::snapshot).put(api::snapshot),
        );
    let other = Router::new()
        .route("/api/v1/metadata", get(api::metadata))
        .route(
            "/api/v1/query_exemplars",
            get(api::query_exemplars).post(api::query_exemplars),
        )
        .route("/api/v1/targets", get(api::targets))
        .route("/api/v1/targets/metadata", get(api::targets_metadata))
        .route("/api/v1/rules", get(api::rules))
        .route("/api/v1/alerts", get(api::alerts))
        .route("/api/v1/alertmanagers", get(api::alertmanagers))
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/status/runtimeinfo", get(status::runtimeinfo))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/status/walreplay", get(status::walreplay))
        .route("/", get(root))
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/metrics", get(metrics));
    let web = o.web_config.clone();
    Router::new()
        .merge(queries)
        .merge(remote_write)
        .merge(remote_read)
        .merge(admin)
        .merge(other)
        .layer(middleware::from_fn(options_preflight))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            o.request_timeout,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn_with_state(web, web_config_layer))
        .with_state(state)
}

/// Prometheus redirects `/` to its UI; annals has none, so `/` says what is here (clients such
/// as prometheus-api-client probe `/` to check the connection).
async fn root() -> &'static str {
    "annals serve: the Prometheus HTTP API is at /api/v1/, remote write at /api/v1/write, remote read at /api/v1/read, metrics at /metrics.\n"
}

async fn healthy() -> &'static str {
    "Prometheus Server is Healthy.\n"
}

async fn ready() -> &'static str {
    "Prometheus Server is Ready.\n"
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// `OPTIONS /api/v1/*` answers an empty success, as Prometheus's API router does for any path
/// (CORS preflight).
async fn options_preflight(req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::OPTIONS && req.uri().path().starts_with("/api/v1/") {
        return api::Api::Ok(None, Vec::new()).into_response();
    }
    next.run(req).await
}

/// Counts and times requests by route and status.
async fn observe(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    s.metrics
        .http_requests
        .get_or_create(&HandlerLabels {
            handler: handler.clone(),
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    s.metrics
        .http_duration
        .get_or_create(&HandlerOnly { handler })
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// Basic auth and configured response headers (`--web.config.file`).
async fn web_config_layer(
    State(web): State<Option<Arc<crate::WebConfig>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(web) = web else {
        return next.run(req).await;
    };
    if let Some(auth) = web.auth.clone() {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ok = tokio::task::spawn_blocking(move || auth.check(header.as_deref()))
            .await
            .unwrap_or(false);
        if !ok {
            let mut r = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            add_headers(&web, &mut r);
            return r;
        }
    }
    let mut r = next.run(req).await;
    add_headers(&web, &mut r);
    r
}

fn add_headers(web: &crate::WebConfig, r: &mut Response) {
    for (k, v) in &web.headers {
        r.headers_mut().insert(k.clone(), v.clone());
    }
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    addr: SocketAddr,
}

impl Server {
    /// Binds `opts.listen` and builds the router over `db`.
    pub async fn bind(db: annals::Db, opts: ServerOptions) -> std::io::Result<Server> {
        let listener = TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let tls = opts
            .web_config
            .as_ref()
            .and_then(|w| w.tls.clone())
            .map(tokio_rustls::TlsAcceptor::from);
        Ok(Server {
            listener,
            router: crate::router(db, opts),
            tls,
            addr,
        })
    }

    /// The address the server listens on (with the port chosen when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then stops accepting and waits up to 30 s for
    /// requests in flight. The caller closes the database afterwards.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        tokio::pin!(shutdown);
        tracing::info!(address = %self.addr, tls = self.tls.is_some(), "listening");
        loop {
            let (stream, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and similar: back off, keep serving.
                        tracing::warn!(err = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let svc = TowerToHyperService::new(self.router.clone());
            let watcher = graceful.watcher();
            let builder = builder.clone();
            match self.tls.clone() {
                None => {
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .into_owned();
                    tokio::spawn(async move {
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(%peer, err = %e, "connection ended with an error");
                        }
                    });
                }
                Some(acceptor) => {
                    tokio::spawn(async move {
                        let tls = match tokio::time::timeout(
                            TLS_HANDSHAKE_TIMEOUT,
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, err = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                            .into_owned();
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(%peer, err = %e, "connection ended with an error");
                        }
                    });
                }
            }
        }
        drop(self.listener);
        tracing::info!("shutting down: no new connections; waiting for requests in flight");
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(SHUTDOWN_GRACE) => {
                tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; closing anyway");
            }
        }
        Ok(())
    }
}
