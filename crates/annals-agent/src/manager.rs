//! Scrape pools: one per job. Each keeps one loop per target and syncs the set with
//! discovery: new targets start, vanished ones stop with staleness markers, unchanged ones
//! keep running. A reload keeps the loops of unchanged jobs; a changed job's loops restart
//! with their caches, without staleness markers (as Prometheus's `scrapePool.reload`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, ScrapeConfig};
use crate::discovery::{populate, FileSd, Target};
use crate::scrape::{run_loop, LoopConfig, LoopEnv, ScrapeCache, TargetHealth};

struct Running {
    target: Target,
    stop: watch::Sender<Option<bool>>,
    handle: JoinHandle<ScrapeCache>,
    health: Arc<TargetHealth>,
}

struct Pool {
    cfg: ScrapeConfig,
    loops: HashMap<u64, Running>,
    file_sd: FileSd,
    dropped: usize,
}

/// Targets and their health, for `/metrics`.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    /// Job.
    pub job: String,
    /// URL.
    pub url: String,
    /// Last scrape succeeded.
    pub up: bool,
    /// Scrapes done.
    pub scrapes: u64,
}

/// All scrape pools.
pub struct Manager {
    env: LoopEnv,
    pools: Vec<Pool>,
}

fn loop_config(c: &ScrapeConfig) -> LoopConfig {
    LoopConfig {
        honor_labels: c.honor_labels,
        honor_timestamps: c.honor_timestamps,
        sample_limit: c.sample_limit,
        metric_relabel: c.metric_relabel_configs.clone(),
        auth: c.auth.clone(),
    }
}

/// What decides the stored series of a job's samples.
fn series_shape(c: &ScrapeConfig) -> String {
    format!(
        "{} {} {:?}",
        c.honor_labels, c.honor_timestamps, c.metric_relabel_configs
    )
}

/// The targets a pool's groups yield now, by identity.
fn targets(p: &mut Pool) -> HashMap<u64, Target> {
    let mut groups: Vec<(crate::config::TargetGroup, Option<String>)> = p
        .cfg
        .static_configs
        .iter()
        .map(|g| (g.clone(), None))
        .collect();
    groups.extend(p.file_sd.groups());
    let mut want: HashMap<u64, Target> = HashMap::new();
    let mut dropped = 0;
    for (g, file) in &groups {
        for addr in &g.targets {
            match populate(&p.cfg, g, addr, file.as_deref()) {
                Ok(Some(t)) => {
                    want.insert(t.hash(), t);
                }
                Ok(None) => dropped += 1,
                Err(e) => {
                    tracing::error!(job = %p.cfg.job_name, target = %addr, error = %e, "invalid target");
                    dropped += 1;
                }
            }
        }
    }
    p.dropped = dropped;
    want
}

impl Manager {
    /// A manager with no pools.
    pub fn new(env: LoopEnv) -> Manager {
        Manager {
            env,
            pools: Vec::new(),
        }
    }

    fn start(&self, cfg: &ScrapeConfig, t: Target, cache: ScrapeCache) -> Running {
        let (tx, rx) = watch::channel(None);
        let health = Arc::new(TargetHealth::default());
        let mut env = self.env.clone();
        if cfg.tls.is_some() {
            env.fetcher = crate::scrape::Fetcher::new(cfg.tls.clone());
        }
        let handle = tokio::spawn(run_loop(
            env,
            t.clone(),
            loop_config(cfg),
            cache,
            health.clone(),
            rx,
        ));
        Running {
            target: t,
            stop: tx,
            handle,
            health,
        }
    }

    /// Applies a (re)loaded configuration.
    pub async fn apply(&mut self, config: &Config) {
        let mut old: HashMap<String, Pool> = self
            .pools
            .drain(..)
            .map(|p| (p.cfg.job_name.clone(), p))
            .collect();
        let mut pools = Vec::new();
        for cfg in &config.scrape_configs {
            match old.remove(&cfg.job_name) {
                Some(p) if p.cfg.fingerprint == cfg.fingerprint => pools.push(p),
                Some(mut p) => {
                    // Changed job: loops of targets that remain restart quietly with their
                    // caches; targets that are gone end with staleness markers.
                    let mut np = Pool {
                        cfg: cfg.clone(),
                        loops: HashMap::new(),
                        file_sd: p.file_sd,
                        dropped: 0,
                    };
                    if !np.cfg.file_sd_configs.is_empty() {
                        np.file_sd.refresh(&np.cfg);
                    }
                    let want = targets(&mut np);
                    // As Prometheus's `reusableCache`: only changes that do not alter the
                    // stored series (interval, timeout, limits, auth, targets) keep caches.
                    let reusable = series_shape(&p.cfg) == series_shape(cfg);
                    let mut caches = HashMap::new();
                    for (h, r) in p.loops.drain() {
                        if want.contains_key(&h) {
                            let _ = r.stop.send(Some(false));
                            if let Ok(c) = r.handle.await {
                                if reusable {
                                    caches.insert(h, c);
                                }
                            }
                        } else {
                            let _ = r.stop.send(Some(true));
                            tokio::spawn(async move {
                                let _ = r.handle.await;
                            });
                        }
                    }
                    self.sync(&mut np, false, &mut caches).await;
                    pools.push(np);
                }
                None => {
                    let mut np = Pool {
                        cfg: cfg.clone(),
                        loops: HashMap::new(),
                        file_sd: FileSd::default(),
                        dropped: 0,
                    };
                    self.sync(&mut np, true, &mut HashMap::new()).await;
                    pools.push(np);
                }
            }
        }
        // Jobs removed from the configuration: their targets disappear.
        for (_, p) in old {
            for (_, r) in p.loops {
                let _ = r.stop.send(Some(true));
                tokio::spawn(async move {
                    let _ = r.handle.await;
                });
            }
        }
        self.pools = pools;
    }

    /// Re-reads file_sd files and syncs targets; call periodically.
    pub async fn refresh(&mut self) {
        let mut pools = std::mem::take(&mut self.pools);
        for p in &mut pools {
            if !p.cfg.file_sd_configs.is_empty() && p.file_sd.refresh(&p.cfg) {
                self.sync(p, false, &mut HashMap::new()).await;
            }
        }
        self.pools = pools;
    }

    async fn sync(&self, p: &mut Pool, read_files: bool, caches: &mut HashMap<u64, ScrapeCache>) {
        if read_files && !p.cfg.file_sd_configs.is_empty() {
            p.file_sd.refresh(&p.cfg);
        }
        let want = targets(p);
        let gone: Vec<u64> = p
            .loops
            .keys()
            .filter(|h| !want.contains_key(h))
            .copied()
            .collect();
        for h in gone {
            if let Some(r) = p.loops.remove(&h) {
                let _ = r.stop.send(Some(true));
                tokio::spawn(async move {
                    let _ = r.handle.await;
                });
            }
        }
        for (h, t) in want {
            if let std::collections::hash_map::Entry::Vacant(e) = p.loops.entry(h) {
                let cache = caches.remove(&h).unwrap_or_default();
                e.insert(self.start(&p.cfg, t, cache));
            }
        }
    }

    /// Stops every loop without staleness markers (shutdown).
    pub async fn stop(&mut self) {
        for p in self.pools.drain(..) {
            for (_, r) in p.loops {
                let _ = r.stop.send(Some(false));
                let _ = tokio::time::timeout(Duration::from_secs(10), r.handle).await;
            }
        }
    }

    /// Every target's state.
    pub fn status(&self) -> Vec<TargetStatus> {
        let mut out = Vec::new();
        for p in &self.pools {
            for r in p.loops.values() {
                out.push(TargetStatus {
                    job: p.cfg.job_name.clone(),
                    url: r.target.url.clone(),
                    up: r.health.up.load(std::sync::atomic::Ordering::Relaxed),
                    scrapes: r.health.scrapes.load(std::sync::atomic::Ordering::Relaxed),
                });
            }
        }
        out
    }
}
