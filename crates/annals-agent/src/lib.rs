//! A Prometheus-compatible scrape agent built on annals: it scrapes targets as Prometheus
//! 2.42 does ([`scrape`], [`textparse`], [`relabel`], [`discovery`]), keeps what it scraped in
//! an annals database, and forwards the database's WAL by remote write with
//! [`annals_remote`]. [`agent::run`] is `annals agent`.
//!
//! ```no_run
//! let args = annals_agent::AgentArgs {
//!     config: "agent.yml".into(),
//!     data_dir: "agent-data".into(),
//!     listen: "127.0.0.1:9091".parse().unwrap(),
//!     retention: std::time::Duration::from_secs(86_400),
//!     block_range: std::time::Duration::from_secs(2 * 3600),
//! };
//! annals_agent::run(args).unwrap();
//! ```
#![deny(missing_docs)]

pub mod agent;
pub mod config;
pub mod discovery;
pub mod manager;
pub mod relabel;
pub mod scrape;
pub mod textparse;

pub use agent::{run, AgentArgs};
