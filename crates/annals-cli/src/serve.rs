//! `annals serve`: opens a data directory read-write and serves Prometheus's HTTP API, the
//! remote-write receiver and remote read on it until SIGINT or SIGTERM, then closes the
//! database (WAL synced, memory snapshot written).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

/// Flags of `annals serve`, named as Prometheus names its equivalents.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default; use 0.0.0.0:9090 to serve the network.
    #[arg(
        long = "listen",
        visible_alias = "web.listen-address",
        default_value = "127.0.0.1:9090"
    )]
    listen: SocketAddr,
    /// Prometheus web configuration file: TLS, basic auth (bcrypt hashes), response headers.
    #[arg(long = "web.config.file", value_name = "FILE")]
    web_config_file: Option<PathBuf>,
    /// Serve /api/v1/admin/tsdb/{delete_series,clean_tombstones,snapshot}.
    #[arg(long = "web.enable-admin-api")]
    enable_admin_api: bool,
    /// Delete blocks older than this behind the newest data (0: keep everything).
    #[arg(
        long = "retention.time",
        visible_alias = "storage.tsdb.retention.time",
        default_value = "15d"
    )]
    retention_time: String,
    /// Delete the oldest blocks while blocks and WAL exceed this size (e.g. 512MB, 10GB; base
    /// 1024 as Prometheus). Default: no size limit.
    #[arg(long = "retention.size", visible_alias = "storage.tsdb.retention.size")]
    retention_size: Option<String>,
    /// When commits are fsynced: `every-commit` (no acknowledged sample lost on power loss),
    /// a duration such as `1s` (the default), or `never` (as Prometheus).
    #[arg(long = "storage.wal-sync", default_value = "1s")]
    wal_sync: String,
    /// Compress WAL records with snappy (as Prometheus 2.20+).
    #[arg(long = "storage.tsdb.wal-compression", default_value_t = true, action = clap::ArgAction::Set)]
    wal_compression: bool,
    /// Refuse samples further ahead of the wall clock than this (0: no bound, as Prometheus).
    /// Without a bound, one sample far in the future makes every later realistic one out of
    /// bounds.
    #[arg(long = "storage.max-future", default_value = "10m")]
    max_future: String,
    /// Accept samples up to this much older than the newest sample (Prometheus's
    /// `storage: tsdb: out_of_order_time_window`; 0, the default, refuses out-of-order
    /// samples), e.g. for remote-write backfill of late data.
    #[arg(long = "storage.tsdb.out-of-order-time-window", default_value = "0s")]
    out_of_order_time_window: String,
    /// Refuse new series whose label names break Prometheus 2.x's rules
    /// (`[a-zA-Z_][a-zA-Z0-9_]*`, metric names also `:`), as a 400 naming the label.
    #[arg(long = "storage.prometheus-name-rules", default_value_t = true, action = clap::ArgAction::Set)]
    prometheus_name_rules: bool,
    /// Longest a query may run.
    #[arg(long = "query.timeout", default_value = "2m")]
    query_timeout: String,
    /// Most samples a query may load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    query_max_samples: u64,
    /// How far back an instant selector looks for a sample.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    query_lookback_delta: String,
    /// Most queries (and series, label and status lookups) served at once.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    query_max_concurrency: usize,
    /// Largest compressed remote-write or remote-read request body, in bytes.
    #[arg(long = "remote-write.max-body-bytes", default_value_t = 32 << 20)]
    remote_write_max_body: usize,
    /// Largest decompressed remote-write or remote-read request, in bytes (snappy bombs are
    /// refused before they are inflated).
    #[arg(long = "remote-write.max-decoded-bytes", default_value_t = 128 << 20)]
    remote_write_max_decoded: usize,
    /// Most remote-write requests appended at once; more wait their turn.
    #[arg(long = "remote-write.concurrency")]
    remote_write_concurrency: Option<usize>,
    /// Most samples one remote-read request may return.
    #[arg(
        long = "storage.remote.read-sample-limit",
        default_value_t = 50_000_000
    )]
    read_sample_limit: u64,
    /// Most remote reads served at once.
    #[arg(long = "storage.remote.read-concurrent-limit", default_value_t = 10)]
    read_concurrent_limit: usize,
    /// Largest frame of a streamed remote-read response, in bytes.
    #[arg(long = "storage.remote.read-max-bytes-in-frame", default_value_t = 1 << 20)]
    read_max_bytes_in_frame: usize,
    /// Log level: error, warn, info, debug.
    #[arg(long = "log.level", default_value = "info")]
    log_level: String,
    /// Data directory (created if missing).
    dir: PathBuf,
}

fn duration(flag: &str, v: &str) -> anyhow::Result<Duration> {
    // Prometheus's flag syntax (model.Duration): 15d, 1h30m, 2m, 500ms.
    let ms = annals_server::params::parse_prometheus_duration(v)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("--{flag} {v:?}"))?;
    Ok(Duration::from_millis(ms as u64))
}

/// Prometheus's `units.Base2Bytes` syntax: a number with B, KB, MB, GB, TB, PB or EB (×1024).
fn parse_size(s: &str) -> anyhow::Result<u64> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    let n: u64 = digits.parse().with_context(|| {
        format!("--retention.size {s:?}: expected a number with a unit such as 512MB")
    })?;
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "B" | "" => 1,
        "KB" | "KIB" => 1 << 10,
        "MB" | "MIB" => 1 << 20,
        "GB" | "GIB" => 1 << 30,
        "TB" | "TIB" => 1 << 40,
        "PB" | "PIB" => 1 << 50,
        "EB" | "EIB" => 1 << 60,
        _ => bail!("--retention.size {s:?}: unknown unit {unit:?} (B, KB, MB, GB, TB, PB, EB)"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("--retention.size {s:?} overflows"))
}

/// Runs the server until SIGINT/SIGTERM.
pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let level: tracing::Level = a.log_level.parse().map_err(|_| {
        anyhow::anyhow!(
            "--log.level {:?}: expected error, warn, info or debug",
            a.log_level
        )
    })?;
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();

    let mut opts = annals::Options::default();
    let retention = duration("retention.time", &a.retention_time)?;
    opts.retention_ms = (!retention.is_zero()).then_some(retention.as_millis() as i64);
    opts.max_bytes = a.retention_size.as_deref().map(parse_size).transpose()?;
    opts.wal_sync = match a.wal_sync.as_str() {
        "every-commit" => annals::WalSync::EveryCommit,
        "never" => annals::WalSync::Never,
        d => {
            let d = duration("storage.wal-sync", d)?;
            if d.is_zero() {
                annals::WalSync::EveryCommit
            } else {
                annals::WalSync::Interval(d)
            }
        }
    };
    let max_future = duration("storage.max-future", &a.max_future)?;
    opts.max_future_ms = (!max_future.is_zero()).then_some(max_future.as_millis() as i64);
    opts.prometheus_name_rules = a.prometheus_name_rules;
    let ooo = duration(
        "storage.tsdb.out-of-order-time-window",
        &a.out_of_order_time_window,
    )?;
    opts.out_of_order_time_window = i64::try_from(ooo.as_millis())
        .context("--storage.tsdb.out-of-order-time-window is too long")?;
    opts.wal_compression = if a.wal_compression {
        annals::WalCompression::Snappy
    } else {
        annals::WalCompression::None
    };

    let web_config = a
        .web_config_file
        .as_deref()
        .map(|p| annals_server::WebConfig::load(p).map(Arc::new))
        .transpose()
        .context("--web.config.file")?;

    let mut flags = BTreeMap::new();
    let mut flag = |k: &str, v: String| {
        flags.insert(k.to_owned(), v);
    };
    flag("web.listen-address", a.listen.to_string());
    flag(
        "web.config.file",
        a.web_config_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    flag("web.enable-admin-api", a.enable_admin_api.to_string());
    flag("storage.tsdb.path", a.dir.display().to_string());
    flag("storage.tsdb.retention.time", a.retention_time.clone());
    flag(
        "storage.tsdb.retention.size",
        a.retention_size.clone().unwrap_or_else(|| "0B".into()),
    );
    flag(
        "storage.tsdb.wal-compression",
        a.wal_compression.to_string(),
    );
    flag("storage.wal-sync", a.wal_sync.clone());
    flag(
        "storage.tsdb.out-of-order-time-window",
        a.out_of_order_time_window.clone(),
    );
    flag("query.timeout", a.query_timeout.clone());
    flag("query.max-samples", a.query_max_samples.to_string());
    flag("query.lookback-delta", a.query_lookback_delta.clone());
    flag("query.max-concurrency", a.query_max_concurrency.to_string());
    flag(
        "storage.remote.read-sample-limit",
        a.read_sample_limit.to_string(),
    );
    flag(
        "storage.remote.read-concurrent-limit",
        a.read_concurrent_limit.to_string(),
    );
    flag(
        "storage.remote.read-max-bytes-in-frame",
        a.read_max_bytes_in_frame.to_string(),
    );
    flag("log.level", a.log_level.clone());

    let mut sopts = annals_server::ServerOptions {
        listen: a.listen,
        web_config,
        enable_admin_api: a.enable_admin_api,
        query_timeout: duration("query.timeout", &a.query_timeout)?,
        query_max_samples: a.query_max_samples,
        query_lookback_delta: duration("query.lookback-delta", &a.query_lookback_delta)?,
        query_max_concurrency: a.query_max_concurrency,
        remote_write_max_body: a.remote_write_max_body,
        remote_write_max_decoded: a.remote_write_max_decoded,
        remote_read_sample_limit: a.read_sample_limit,
        remote_read_concurrent_limit: a.read_concurrent_limit,
        remote_read_max_bytes_in_frame: a.read_max_bytes_in_frame,
        flags,
        data_dir: Some(a.dir.clone()),
        retention_description: a.retention_time.clone(),
        ..Default::default()
    };
    if let Some(n) = a.remote_write_concurrency {
        sopts.remote_write_concurrency = n;
    }

    tracing::info!(dir = %a.dir.display(), "opening the database");
    let started = std::time::Instant::now();
    let db =
        annals::Db::open(&a.dir, opts).with_context(|| format!("opening {}", a.dir.display()))?;
    if let Some(r) = db.replay_stats() {
        tracing::info!(elapsed = ?started.elapsed(), replay = ?r, "database open");
    }
    sopts.engine = Some(std::sync::Arc::new(annals_server::PromqlEngine::new(
        db.clone(),
        0,
    )));
    let head = db.head_stats();
    tracing::info!(
        series = head.num_series,
        blocks = db.blocks().len(),
        "head loaded"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("annals-serve")
        .build()
        .context("starting the async runtime")?;
    let served = rt.block_on(async {
        let server = annals_server::Server::bind(db.clone(), sopts)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        // Tests and scripts read this line to learn the port when --listen ends in :0.
        eprintln!("annals serve: listening on {}", server.local_addr());
        server.run(shutdown_signal()).await.context("serving")
    });
    // Requests in flight had their grace period; a blocking task still running (a long
    // query) must not hold the shutdown: close waits for commits in flight anyway.
    rt.shutdown_timeout(Duration::from_secs(10));
    tracing::info!("closing the database (syncing the WAL, writing the memory snapshot)");
    let closed = db.close().context("closing the database");
    served.and(closed)?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(err = %e, "cannot listen for SIGTERM; stop with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
        _ = term.recv() => tracing::info!("received SIGTERM"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_base2_bytes() {
        assert_eq!(parse_size("512MB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("MB").is_err());
    }
}
