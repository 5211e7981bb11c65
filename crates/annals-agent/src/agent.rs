//! `annals agent`: wires configuration, the database, scrape pools, remote write, the HTTP
//! endpoints and signals together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use annals::{Db, Labels, Options};
use annals_remote::client::HttpClient;
use annals_remote::{Endpoint, RemoteWrite};

use crate::config::Config;
use crate::manager::Manager;
use crate::relabel::{self, LabelSet};
use crate::scrape::{Fetcher, LoopEnv};

/// Command-line settings of the agent.
#[derive(Debug, Clone)]
pub struct AgentArgs {
    /// The Prometheus-format configuration file.
    pub config: PathBuf,
    /// Data directory (an annals database; remote-write progress in `remote/`).
    pub data_dir: PathBuf,
    /// Address of `/metrics`, `/-/healthy` and `/-/ready`.
    pub listen: SocketAddr,
    /// How long local data is kept (block retention).
    pub retention: Duration,
    /// The local database's block range (head chunk range and level-1 blocks). Default 2 h;
    /// tests shorten it to make head compaction and WAL truncation happen within seconds.
    pub block_range: Duration,
}

/// The WAL retention floor for `rw`: the oldest segment a queue has not had acknowledged
/// (segment 0 while a queue has acknowledged nothing yet: it needs the whole WAL); none
/// without remote write.
fn wal_floor(rw: Option<&RemoteWrite>) -> Option<u32> {
    let rw = rw?;
    if rw.status().is_empty() {
        return None;
    }
    Some(rw.needed_segment().unwrap_or(0))
}

type RemoteSlot = Arc<RwLock<Option<RemoteWrite>>>;

struct State {
    remote: RemoteSlot,
    remote_registry: RwLock<Registry>,
    manager: tokio::sync::Mutex<Manager>,
    ready: std::sync::atomic::AtomicBool,
    db: Db,
}

/// `write_relabel_configs` of an endpoint (the queue merges the external labels first).
fn mapper(rules: Vec<relabel::Rule>) -> annals_remote::SeriesMapper {
    Arc::new(move |l: &Labels| {
        let mut ls: LabelSet = l
            .iter()
            .map(|x| (x.name.to_owned(), x.value.to_owned()))
            .collect();
        if !relabel::process(&mut ls, &rules) {
            return None;
        }
        Some(ls)
    })
}

fn start_remote(
    db: &Db,
    cfg: &Config,
    data_dir: &std::path::Path,
    rt: &tokio::runtime::Handle,
) -> anyhow::Result<(RemoteWrite, Registry)> {
    let mut reg = Registry::default();
    let mut eps = Vec::new();
    for rw in &cfg.remote_write {
        let client = HttpClient::with_tls(&rw.url, &rw.headers, rw.remote_timeout, rw.tls.clone())?;
        let mut e = Endpoint::new(&rw.name, Arc::new(client), rw.queue.clone());
        e.url = rw.url.clone();
        e.external_labels = cfg.external_labels.clone();
        if !rw.write_relabel_configs.is_empty() {
            e.mapper = Some(mapper(rw.write_relabel_configs.clone()));
        }
        // The queue shares the head's copy of each series' labels.
        let db = db.clone();
        e.series_labels = Some(Arc::new(move |r| {
            annals::unstable::wal::head_series_labels(&db, r)
        }));
        eps.push(e);
    }
    let rw = RemoteWrite::start(
        &data_dir.join("wal"),
        &data_dir.join("remote"),
        eps,
        &mut reg,
        rt,
    )?;
    Ok((rw, reg))
}

fn process_metrics(out: &mut String) {
    let ticks = 100.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        if let Some(rest) = stat.rsplit(')').next() {
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.len() > 13 {
                let u: f64 = f[11].parse().unwrap_or(0.0);
                let s: f64 = f[12].parse().unwrap_or(0.0);
                out.push_str("# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\n");
                out.push_str(&format!("process_cpu_seconds_total {}\n", (u + s) / ticks));
            }
        }
    }
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        if let Some(rss) = statm
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse::<u64>().ok())
        {
            out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n");
            out.push_str(&format!("process_resident_memory_bytes {}\n", rss * 4096));
        }
    }
}

async fn metrics_text(st: &State) -> String {
    let mut out = String::new();
    {
        let reg = st.remote_registry.read();
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &reg);
    }
    let targets = st.manager.lock().await.status();
    out.push_str("# HELP annals_agent_target_up Whether the last scrape of a target succeeded.\n# TYPE annals_agent_target_up gauge\n");
    for t in &targets {
        out.push_str(&format!(
            "annals_agent_target_up{{job=\"{}\",url=\"{}\"}} {}\n",
            t.job.replace('\\', "\\\\").replace('"', "\\\""),
            t.url.replace('\\', "\\\\").replace('"', "\\\""),
            u8::from(t.up)
        ));
    }
    out.push_str("# HELP annals_agent_scrapes_total Scrapes done.\n# TYPE annals_agent_scrapes_total counter\n");
    out.push_str(&format!(
        "annals_agent_scrapes_total {}\n",
        targets.iter().map(|t| t.scrapes).sum::<u64>()
    ));
    let hs = st.db.head_stats();
    out.push_str("# HELP annals_agent_head_series Series in the local head.\n# TYPE annals_agent_head_series gauge\n");
    out.push_str(&format!("annals_agent_head_series {}\n", hs.num_series));
    if let Some(rw) = st.remote.read().as_ref() {
        out.push_str("# HELP annals_remote_pending_samples Samples queued for an endpoint.\n# TYPE annals_remote_pending_samples gauge\n");
        for q in rw.status() {
            out.push_str(&format!(
                "annals_remote_pending_samples{{remote_name=\"{}\"}} {}\n",
                q.name, q.pending
            ));
        }
    }
    process_metrics(&mut out);
    out.push_str("# EOF\n");
    out
}

async fn serve(listener: TcpListener, st: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let st = st.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let st = st.clone();
                async move {
                    let (code, ct, body) = match req.uri().path() {
                        "/metrics" => (
                            200,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            metrics_text(&st).await,
                        ),
                        "/-/healthy" => (200, "text/plain", "annals agent is Healthy.\n".into()),
                        "/-/ready" => {
                            if st.ready.load(std::sync::atomic::Ordering::SeqCst) {
                                (200, "text/plain", "annals agent is Ready.\n".into())
                            } else {
                                (503, "text/plain", "Service Unavailable\n".into())
                            }
                        }
                        _ => (404, "text/plain", "not found\n".into()),
                    };
                    Ok::<_, std::convert::Infallible>(
                        Response::builder()
                            .status(code)
                            .header("Content-Type", ct)
                            .body(Full::new(Bytes::from(body)))
                            .expect("static response parts"),
                    )
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}

/// glibc's allocator gives each thread that meets contention an arena of its own (up to 8 per
/// core), and free memory inside one serves no other: measured on the compare-agents.sh job,
/// five arenas held 10 MiB of the agent's 13 MiB of anonymous memory. The agent allocates
/// little per scrape (parsing is in place), so two arenas cost no measurable CPU.
fn limit_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns the free memory inside the allocator's arenas to the system (glibc keeps freed
/// pages mapped below the top of each arena; scrape bursts leave such holes every interval).
fn trim_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    limit_allocator_arenas();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: AgentArgs) -> anyhow::Result<()> {
    let mut config =
        Config::load(&args.config).with_context(|| format!("loading {}", args.config.display()))?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let mut opts = Options::default();
    opts.retention_ms = Some(args.retention.as_millis() as i64);
    // The WAL is kept for forwarding anyway; a snapshot at every stop would only add writes.
    opts.snapshot_on_close = false;
    opts.block_range_ms = args.block_range.as_millis().max(1) as i64;
    // What a scrape stores is checked as Prometheus 2.x checks it (label-name rules), and a
    // target with a clock far ahead cannot make every later sample out of bounds.
    opts.prometheus_name_rules = true;
    opts.max_future_ms = Some(10 * 60 * 1000);
    // Remote write's max_lag bounds the WAL retention floor too: unsent data older than that
    // is dropped by the queue anyway.
    if !config.remote_write.is_empty() {
        opts.wal_retention_floor_max_lag_ms = config
            .remote_write
            .iter()
            .map(|rw| rw.queue.max_lag.map(|d| d.as_millis() as i64))
            .try_fold(0i64, |acc, lag| lag.map(|l| acc.max(l)));
    }
    let db = Db::open(&args.data_dir, opts)
        .with_context(|| format!("opening the database in {}", args.data_dir.display()))?;
    let handle = tokio::runtime::Handle::current();
    let (rw, reg) = start_remote(&db, &config, &args.data_dir, &handle)?;
    // Before the first commit (the background compactor runs only after one, or a minute).
    db.set_wal_retention_floor(wal_floor(Some(&rw)));
    let remote: RemoteSlot = Arc::new(RwLock::new(Some(rw)));
    let r2 = remote.clone();
    let on_commit: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        if let Some(r) = r2.read().as_ref() {
            r.notify();
        }
    });
    let jitter_seed = {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let mut s = host;
        for (n, v) in &config.external_labels {
            s.push_str(n);
            s.push_str(v);
        }
        xxhash_rust::xxh3::xxh3_64(s.as_bytes())
    };
    let env = LoopEnv {
        db: db.clone(),
        on_commit,
        fetcher: Fetcher::default(),
        jitter_seed,
        buffers: Arc::default(),
    };
    let st = Arc::new(State {
        remote: remote.clone(),
        remote_registry: RwLock::new(reg),
        manager: tokio::sync::Mutex::new(Manager::new(env)),
        ready: std::sync::atomic::AtomicBool::new(false),
        db: db.clone(),
    });
    st.manager.lock().await.apply(&config).await;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(listen = %args.listen, data_dir = %args.data_dir.display(), "annals agent started");
    tokio::spawn(serve(listener, st.clone()));
    st.ready.store(true, std::sync::atomic::Ordering::SeqCst);

    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut sd_tick = tokio::time::interval(Duration::from_secs(1));
    let mut trim_tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = hup.recv() => {
                match Config::load(&args.config) {
                    Ok(new) => {
                        let remote_changed = format!("{:?}{:?}", new.remote_write, new.external_labels)
                            != format!("{:?}{:?}", config.remote_write, config.external_labels);
                        if remote_changed {
                            let old = st.remote.write().take();
                            if let Some(old) = old {
                                old.stop().await;
                            }
                            match start_remote(&db, &new, &args.data_dir, &handle) {
                                Ok((rw, reg)) => {
                                    *st.remote.write() = Some(rw);
                                    *st.remote_registry.write() = reg;
                                }
                                Err(e) => tracing::error!(error = %e, "remote write could not restart after reload"),
                            }
                        }
                        st.manager.lock().await.apply(&new).await;
                        config = new;
                        tracing::info!("configuration reloaded");
                    }
                    Err(e) => tracing::error!(error = %e, "configuration reload failed; keeping the running one"),
                }
            }
            _ = sd_tick.tick() => {
                // A floor older than the truth only keeps more: a tick's delay is safe.
                db.set_wal_retention_floor(wal_floor(st.remote.read().as_ref()));
                st.manager.lock().await.refresh().await
            }
            _ = trim_tick.tick() => trim_allocator(),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping");
    st.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    st.manager.lock().await.stop().await;
    let rw = st.remote.write().take();
    if let Some(rw) = rw {
        rw.stop().await;
    }
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || db2.close())
        .await
        .context("closing the database")??;
    Ok(())
}
