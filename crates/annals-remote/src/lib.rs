//! Remote write for annals: forwards what an annals database writes to its WAL to one or more
//! Prometheus remote-write 1.0 endpoints, as Prometheus 2.42's remote storage does, and
//! resumes after a restart exactly where each remote acknowledged.
//!
//! Per endpoint, a [`watcher`] thread tails the WAL (series records, samples records,
//! checkpoints, segment rollover), a [`queue`] maps series through the endpoint's relabeling
//! and hands samples to shards (`hash(labels) % shards`), and each shard batches
//! (`max_samples_per_send`, `batch_send_deadline`), sends snappy-compressed protobuf with the
//! protocol's headers through a [`client::WriteClient`], retries 5xx, 429 and network errors
//! with exponential [`backoff`] (honouring `Retry-After`), drops and counts what a 4xx
//! rejects, and records its [`progress`] durably. The shard count follows throughput
//! ([`reshard`], Prometheus's formula).
//!
//! The engine stays free of HTTP and async: this crate reads the WAL directory through
//! `annals::unstable::wal`'s public API ([`wal_source`] is the one module that touches it) and runs its
//! shards on a tokio runtime the caller provides.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use annals_remote::{client::HttpClient, Endpoint, QueueConfig, RemoteWrite};
//!
//! let db = annals::Db::open("data", annals::Options::default())?;
//! let client = HttpClient::new("http://127.0.0.1:9090/api/v1/write", &[], std::time::Duration::from_secs(30))?;
//! let mut registry = prometheus_client::registry::Registry::default();
//! let rw = RemoteWrite::start(
//!     &db.dir().unwrap().join("wal"),
//!     std::path::Path::new("data/remote"),
//!     vec![Endpoint::new("central", Arc::new(client), QueueConfig::default())],
//!     &mut registry,
//!     &tokio::runtime::Handle::current(),
//! )?;
//! // ... after each commit:
//! rw.notify();
//! // ... at the end:
//! rw.stop().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod backoff;
pub mod client;
pub mod encode;
pub mod metrics;
pub mod progress;
pub mod queue;
pub mod reshard;
pub mod tls;
mod wal_source;
pub mod watcher;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;

pub use client::{SendError, WriteClient};
pub use progress::{Mark, Progress};
pub use queue::{LabelsLookup, QueueConfig, SeriesMapper};

use queue::{QueueWriter, Shared};
use watcher::{Wake, Watcher};

/// One remote-write destination.
pub struct Endpoint {
    /// Unique name: the `remote_name` label of its metrics and the name of its progress file.
    pub name: String,
    /// The URL, for the `url` label of its metrics.
    pub url: String,
    /// Sends requests.
    pub client: Arc<dyn WriteClient>,
    /// Batching, sharding and retry settings.
    pub queue: QueueConfig,
    /// External labels, added to every series that has no label of their name (Prometheus's
    /// `external_labels`). Any order; sorted at start.
    pub external_labels: Vec<(String, String)>,
    /// `write_relabel_configs`, applied to the labels with the external labels; `None` sends
    /// them unchanged.
    pub mapper: Option<SeriesMapper>,
    /// Where a queue finds the head's copy of a series' labels, so it keeps no second copy
    /// (`None`: each queue keeps the labels it reads from the WAL).
    pub series_labels: Option<LabelsLookup>,
    /// How often the WAL is checked for new records when nobody calls
    /// [`RemoteWrite::notify`]. Default 1 s.
    pub poll_interval: Duration,
}

impl Endpoint {
    /// An endpoint with no relabeling and a 1 s poll interval.
    pub fn new(name: &str, client: Arc<dyn WriteClient>, queue: QueueConfig) -> Endpoint {
        Endpoint {
            name: name.to_owned(),
            url: String::new(),
            client,
            queue,
            external_labels: Vec::new(),
            mapper: None,
            series_labels: None,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Why remote write cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The progress file of a queue is unreadable.
    #[error(transparent)]
    Progress(#[from] progress::ProgressError),
    /// The state directory cannot be created.
    #[error("remote-write state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Two endpoints have the same name.
    #[error("two remote-write endpoints are named {0:?}")]
    DuplicateName(String),
    /// An endpoint's client cannot be built.
    #[error(transparent)]
    Client(#[from] client::ClientConfigError),
}

struct Queue {
    shared: Arc<Shared>,
    wake: Arc<Wake>,
    thread: Option<std::thread::JoinHandle<()>>,
    housekeeping: tokio::task::JoinHandle<()>,
}

/// Status of one queue, for health endpoints and tests.
#[derive(Debug, Clone)]
pub struct QueueStatus {
    /// The endpoint's name.
    pub name: String,
    /// Samples queued in shards.
    pub pending: usize,
    /// The oldest WAL segment the queue still needs.
    pub needed_segment: Option<u32>,
}

/// Running remote write: one queue per endpoint.
pub struct RemoteWrite {
    queues: Vec<Queue>,
}

/// A file name for an endpoint name.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl RemoteWrite {
    /// Starts forwarding the WAL in `wal_dir` to `endpoints`, keeping each queue's progress
    /// in `state_dir/<name>.progress`. Registers the queues' metrics in `registry`.
    pub fn start(
        wal_dir: &Path,
        state_dir: &Path,
        endpoints: Vec<Endpoint>,
        registry: &mut Registry,
        rt: &tokio::runtime::Handle,
    ) -> Result<RemoteWrite, Error> {
        std::fs::create_dir_all(state_dir).map_err(|source| Error::StateDir {
            path: state_dir.to_owned(),
            source,
        })?;
        let mut names = std::collections::HashSet::new();
        for e in &endpoints {
            if !names.insert(file_name(&e.name)) {
                return Err(Error::DuplicateName(e.name.clone()));
            }
        }
        let mut queues = Vec::new();
        for e in endpoints {
            let path = state_dir.join(format!("{}.progress", file_name(&e.name)));
            let (progress, seq) = match Progress::load(&path)? {
                Some((p, seq)) if !p.shards.is_empty() => (p, seq),
                _ => (
                    Progress {
                        shards: vec![Default::default(); e.queue.min_shards.max(1)],
                    },
                    0,
                ),
            };
            let sub = registry.sub_registry_with_labels(
                [
                    (Cow::Borrowed("remote_name"), Cow::Owned(e.name.clone())),
                    (Cow::Borrowed("url"), Cow::Owned(e.url.clone())),
                ]
                .into_iter(),
            );
            let metrics = metrics::QueueMetrics::new(sub);
            let resume = progress.resume_from();
            let mut external = e.external_labels.clone();
            external.sort();
            external.dedup_by(|a, b| a.0 == b.0);
            let shared = Shared::new(
                e.name.clone(),
                e.queue.clone(),
                // With a mapper, external labels are merged before it runs, not at sending.
                if e.mapper.is_some() {
                    Vec::new()
                } else {
                    external.clone()
                },
                e.client.clone(),
                metrics,
                path,
                progress,
                seq,
                rt.clone(),
            );
            shared.spawn_shards();
            let wake = Arc::new(Wake::default());
            let mut writer = QueueWriter::new(
                shared.clone(),
                e.mapper.clone(),
                external,
                e.series_labels.clone(),
                wake.clone(),
            );
            let dir = wal_dir.to_owned();
            let w = wake.clone();
            let poll = e.poll_interval;
            let name = e.name.clone();
            let thread = std::thread::Builder::new()
                .name(format!("wal-watcher-{}", file_name(&e.name)))
                .spawn(move || {
                    let mut watcher = Watcher::new(dir, resume, w, poll);
                    if let Err(err) = watcher.run(&mut writer) {
                        tracing::error!(queue = %name, error = %err, "WAL watcher stopped");
                    }
                })
                .map_err(|source| Error::StateDir {
                    path: state_dir.to_owned(),
                    source,
                })?;
            let housekeeping = rt.spawn(queue::housekeeping(shared.clone(), e.queue.clone()));
            queues.push(Queue {
                shared,
                wake,
                thread: Some(thread),
                housekeeping,
            });
        }
        Ok(RemoteWrite { queues })
    }

    /// Tells the watchers that the WAL has new records (call after commits); without it they
    /// notice within their poll interval.
    pub fn notify(&self) {
        for q in &self.queues {
            q.wake.notify();
        }
    }

    /// The oldest WAL segment some queue still needs: segments before it may be deleted
    /// without losing unsent data. `None` when a queue has not acknowledged anything yet.
    pub fn needed_segment(&self) -> Option<u32> {
        let mut min = None;
        for q in &self.queues {
            let s = q.shared.needed_segment()?;
            min = Some(min.map_or(s, |m: u32| m.min(s)));
        }
        min
    }

    /// The queues' state.
    pub fn status(&self) -> Vec<QueueStatus> {
        self.queues
            .iter()
            .map(|q| QueueStatus {
                name: q.shared.name.clone(),
                pending: q.shared.pending(),
                needed_segment: q.shared.needed_segment(),
            })
            .collect()
    }

    /// Stops reading, lets shards send what they hold for up to their flush deadline, and
    /// records the progress durably. What is not acknowledged is sent after the next start.
    pub async fn stop(mut self) {
        for q in &self.queues {
            q.wake.stop();
        }
        for q in &mut self.queues {
            if let Some(t) = q.thread.take() {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
        }
        for q in &self.queues {
            q.shared.stop().await;
            q.housekeeping.abort();
        }
    }
}
