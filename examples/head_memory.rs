//! Loads label sets (one JSON object per line, `.gz` accepted, the input format of
//! `promtool tsdb bench write`) into an in-memory head with N samples each, using the bench's
//! workload (timestamps 30 s apart, values from 123456789 growing by 1000 per scrape), and
//! prints the head's bytes per series and per sample. Measure peak RSS around it with
//! `/usr/bin/time -v`.
//!
//! `cargo run --release --example head_memory -- ../shared/data/fleet-20k.labels.jsonl.gz 3000`

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::time::Instant;

use annals::{Db, Labels, Options};

fn read_labels(path: &str) -> anyhow::Result<Vec<Labels>> {
    let file = std::fs::File::open(path)?;
    let reader: Box<dyn Read> = if path.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut out = Vec::new();
    for line in BufReader::new(reader).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let m: BTreeMap<String, String> = serde_json::from_str(&line)?;
        out.push(Labels::new(
            m.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?);
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "../shared/data/fleet-20k.labels.jsonl.gz".into());
    let scrapes: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3000);
    let labels = read_labels(&path)?;
    let db = Db::open_in_memory(Options::default())?;
    let started = Instant::now();
    let mut refs = vec![None; labels.len()];
    for s in 0..scrapes {
        let t = s * 30_000;
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            let v = 123_456_789.0 + (s * 1000) as f64;
            refs[i] = Some(app.append(refs[i], l, t, v)?);
        }
        app.commit()?;
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = db.head_stats();
    let (chunk_bytes, label_bytes) = db.head_data_bytes();
    let n = stats.samples_appended as f64;
    println!("series:            {}", stats.num_series);
    println!("samples:           {}", stats.samples_appended);
    println!(
        "ingest (1 thread): {:.1} M samples/s ({secs:.2} s, in memory, no WAL)",
        n / secs / 1e6
    );
    println!(
        "chunk bytes:       {chunk_bytes} ({:.3} bytes/sample)",
        chunk_bytes as f64 / n
    );
    println!(
        "label bytes:       {label_bytes} ({:.1} bytes/series)",
        label_bytes as f64 / stats.num_series as f64
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for l in status
            .lines()
            .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        {
            println!("{l}");
        }
    }
    Ok(())
}
