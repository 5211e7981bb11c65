//! `annals-agent`: the agent on its own (the same as `annals agent`), for deployments and the
//! end-to-end tests.
//!
//! Usage: `annals-agent --config=FILE [--data-dir=DIR] [--listen=ADDR] [--retention=DURATION]
//! [--block-range=DURATION]`

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut config = None;
    let mut data_dir = "./agent-data".to_string();
    let mut listen = "127.0.0.1:9091".to_string();
    let mut retention = "1d".to_string();
    let mut block_range = "2h".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (k, v) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = || v.clone().or_else(|| args.next());
        match k.as_str() {
            "--config" => config = value(),
            "--data-dir" => data_dir = value().unwrap_or_default(),
            "--listen" => listen = value().unwrap_or_default(),
            "--retention" => retention = value().unwrap_or_default(),
            "--block-range" => block_range = value().unwrap_or_default(),
            "-h" | "--help" => {
                println!("usage: annals-agent --config=FILE [--data-dir=DIR] [--listen=ADDR] [--retention=DURATION] [--block-range=DURATION]");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("error: unknown argument {a:?}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(config) = config else {
        eprintln!("error: --config=FILE is required");
        return ExitCode::from(2);
    };
    let res = (|| -> anyhow::Result<()> {
        let listen = listen
            .parse()
            .map_err(|e| anyhow::anyhow!("--listen {listen:?}: {e}"))?;
        let retention = annals_agent::config::parse_duration(&retention)
            .map_err(|e| anyhow::anyhow!("--retention: {e}"))?;
        let block_range = annals_agent::config::parse_duration(&block_range)
            .map_err(|e| anyhow::anyhow!("--block-range: {e}"))?;
        annals_agent::run(annals_agent::AgentArgs {
            config: config.into(),
            data_dir: data_dir.into(),
            listen,
            retention,
            block_range,
        })
    })();
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
