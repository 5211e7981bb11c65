//! `annals agent`: the scrape agent of `annals-agent`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Scrape targets into a local annals database and forward everything by remote write.
#[derive(Args, Debug)]
pub struct AgentCmd {
    /// Prometheus-format configuration file (global, scrape_configs, remote_write).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Data directory: the local database and the remote-write progress.
    #[arg(long, default_value = "./agent-data", value_name = "DIR")]
    data_dir: PathBuf,
    /// Address of the agent's /metrics, /-/healthy and /-/ready endpoints.
    #[arg(long, default_value = "127.0.0.1:9091", value_name = "ADDR")]
    listen: SocketAddr,
    /// How long scraped data is kept locally (Prometheus duration: 2h, 1d, ...).
    #[arg(long, default_value = "1d", value_name = "DURATION")]
    retention: String,
    /// Block range of the local database (head chunk range, level-1 blocks).
    #[arg(long, default_value = "2h", value_name = "DURATION")]
    block_range: String,
}

/// Runs the agent until SIGTERM or SIGINT; SIGHUP reloads the configuration.
pub fn run(cmd: AgentCmd) -> anyhow::Result<()> {
    let retention = annals_agent::config::parse_duration(&cmd.retention)
        .map_err(|e| anyhow::anyhow!("--retention: {e}"))?;
    let block_range = annals_agent::config::parse_duration(&cmd.block_range)
        .map_err(|e| anyhow::anyhow!("--block-range: {e}"))?;
    annals_agent::run(annals_agent::AgentArgs {
        config: cmd.config,
        data_dir: cmd.data_dir,
        listen: cmd.listen,
        retention,
        block_range,
    })
}
