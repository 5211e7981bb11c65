//! `annals serve`: Prometheus 2.42's HTTP API v1, the remote-write 1.0 receiver and remote read,
//! over an annals [`Db`].
//!
//! The server is axum on tokio. Handlers are thin: they parse parameters ([`params`]), call the
//! synchronous engine on the blocking thread pool, and render JSON exactly as Prometheus does
//! ([`json`]). Limits are tower layers (body size, concurrency, timeout); basic auth and TLS
//! come from Prometheus's web configuration file ([`web_config`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use annals_server::{PromqlEngine, Server, ServerOptions};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let db = annals::Db::open("data", annals::Options::default())?;
//! let opts = ServerOptions {
//!     engine: Some(Arc::new(PromqlEngine::new(db.clone(), 0))),
//!     ..ServerOptions::default()
//! };
//! let server = Server::bind(db.clone(), opts).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! db.close()?; // WAL synced, memory snapshot written
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod api;
pub mod json;
mod metadata;
pub mod metrics;
pub mod params;
mod promql;
pub mod query;
mod read;
mod serve;
mod status;
pub mod web_config;
mod write;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use annals::Db;

pub use promql::PromqlEngine;
pub use query::{Evaluated, QueryEngine, QueryError, QueryOptions};
pub use serve::Server;
pub use web_config::WebConfig;

/// How the server is configured. `ServerOptions::default()` matches Prometheus 2.42's
/// defaults where Prometheus has the same setting.
#[derive(Clone)]
pub struct ServerOptions {
    /// Address to listen on. Default `127.0.0.1:9090` (loopback only).
    pub listen: SocketAddr,
    /// TLS, basic auth and headers (`--web.config.file`). Default none.
    pub web_config: Option<Arc<WebConfig>>,
    /// Serve `/api/v1/admin/tsdb/*` (`--web.enable-admin-api`). Default false.
    pub enable_admin_api: bool,
    /// Longest a PromQL evaluation may run (`--query.timeout`). Default 2 min.
    pub query_timeout: Duration,
    /// Most samples a query may load (`--query.max-samples`). Default 50,000,000.
    pub query_max_samples: u64,
    /// Lookback of instant selectors (`--query.lookback-delta`). Default 5 min.
    pub query_lookback_delta: Duration,
    /// Most concurrent queries, series/label lookups and remote reads
    /// (`--query.max-concurrency`). Default 20.
    pub query_max_concurrency: usize,
    /// Largest compressed remote-write body accepted. Default 32 MiB.
    pub remote_write_max_body: usize,
    /// Largest decompressed remote-write or remote-read body accepted (a snappy bomb is
    /// refused before it is inflated). Default 128 MiB.
    pub remote_write_max_decoded: usize,
    /// Most remote-write requests processed at once; more wait. Default 2 × CPUs, at least 4.
    pub remote_write_concurrency: usize,
    /// Most samples one remote-read request may return (`--storage.remote.read-sample-limit`).
    /// Default 50,000,000.
    pub remote_read_sample_limit: u64,
    /// Most concurrent remote reads (`--storage.remote.read-concurrent-limit`). Default 10.
    pub remote_read_concurrent_limit: usize,
    /// Largest frame of a streamed remote-read response
    /// (`--storage.remote.read-max-bytes-in-frame`). Default 1 MiB.
    pub remote_read_max_bytes_in_frame: usize,
    /// Largest form body of API requests (POST queries). Default 16 MiB.
    pub max_form_body: usize,
    /// Timeout of a whole remote-write or API request at the HTTP layer (queries have their
    /// own deadline). Default 5 min.
    pub request_timeout: Duration,
    /// The command-line flags, as `/api/v1/status/flags` shows them.
    pub flags: BTreeMap<String, String>,
    /// The data directory, for `/api/v1/admin/tsdb/snapshot` (`None`: in memory).
    pub data_dir: Option<PathBuf>,
    /// `storageRetention` of `/api/v1/status/runtimeinfo`, e.g. `15d`.
    pub retention_description: String,
    /// The PromQL engine; `None`: `/api/v1/query*` answer `unavailable`.
    pub engine: Option<Arc<dyn QueryEngine>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        ServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            web_config: None,
            enable_admin_api: false,
            query_timeout: Duration::from_secs(120),
            query_max_samples: 50_000_000,
            query_lookback_delta: Duration::from_secs(300),
            query_max_concurrency: 20,
            remote_write_max_body: 32 << 20,
            remote_write_max_decoded: 128 << 20,
            remote_write_concurrency: (2 * cpus).max(4),
            remote_read_sample_limit: 50_000_000,
            remote_read_concurrent_limit: 10,
            remote_read_max_bytes_in_frame: 1 << 20,
            max_form_body: 16 << 20,
            request_timeout: Duration::from_secs(300),
            flags: BTreeMap::new(),
            data_dir: None,
            retention_description: String::new(),
            engine: None,
        }
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    pub db: Db,
    pub opts: ServerOptions,
    pub metrics: metrics::Metrics,
    pub metadata: metadata::MetadataStore,
    pub started: SystemTime,
}

/// The HTTP router of a server over `db`, without the listener: for embedding in another
/// axum application or for driving in tests with `tower::ServiceExt::oneshot`.
pub fn router(db: Db, opts: ServerOptions) -> axum::Router {
    serve::build_router(Arc::new(AppState {
        metrics: metrics::Metrics::new(db.clone()),
        db,
        opts,
        metadata: metadata::MetadataStore::default(),
        started: SystemTime::now(),
    }))
}
