//! Quickstart: open a database, append realistic node_exporter-like series, query them with
//! matchers and print what was found. Needs no server and no prepared data.
//!
//! Run with `cargo run --release --example quickstart`.

use annals::{Db, Labels, Matcher, Options};

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("annals-quickstart-{}", std::process::id()));
    let db = Db::open(&dir, Options::default())?;
    println!("opened database in {}", dir.display());

    // Two hosts, each with per-CPU counters, a memory gauge and `up`.
    let mut series = Vec::new();
    for host in ["web-1:9100", "db-1:9100"] {
        for cpu in 0..4 {
            for mode in ["idle", "user", "system"] {
                series.push(Labels::new([
                    ("__name__", "node_cpu_seconds_total"),
                    ("instance", host),
                    ("job", "node"),
                    ("cpu", &cpu.to_string()),
                    ("mode", mode),
                ])?);
            }
        }
        series.push(Labels::new([
            ("__name__", "node_memory_MemAvailable_bytes"),
            ("instance", host),
            ("job", "node"),
        ])?);
        series.push(Labels::new([
            ("__name__", "up"),
            ("instance", host),
            ("job", "node"),
        ])?);
    }

    // 200 scrapes, 15 s apart: one commit per scrape, refs reused to skip label lookups.
    let start = 1_700_000_000_000i64;
    let mut refs = vec![None; series.len()];
    for scrape in 0..200i64 {
        let t = start + scrape * 15_000;
        let mut app = db.appender();
        for (i, labels) in series.iter().enumerate() {
            let v = match labels.metric_name() {
                Some("up") => 1.0,
                Some("node_memory_MemAvailable_bytes") => {
                    4e9 + ((scrape * 7919 + i as i64) % 1000) as f64 * 1e6
                }
                _ => (scrape as f64) * 15.0 * (1 + i % 3) as f64 / 4.0,
            };
            refs[i] = Some(app.append(refs[i], labels, t, v)?);
        }
        app.commit()?;
    }
    let stats = db.head_stats();
    println!(
        "appended {} samples to {} series",
        stats.samples_appended, stats.num_series
    );

    let q = db.querier(start, start + 200 * 15_000)?;
    let selector = [
        Matcher::equal("__name__", "node_cpu_seconds_total"),
        Matcher::equal("instance", "web-1:9100"),
        Matcher::regex("mode", "user|system")?,
    ];
    println!("\nselect {selector:?}:");
    for s in q.select(&selector)? {
        let samples = s.to_vec()?;
        let last = samples.last().expect("selected series have samples");
        println!(
            "  {}  {} samples, last value {} at {}",
            s.labels(),
            samples.len(),
            last.v,
            last.t
        );
    }
    println!("\nlabel names: {:?}", q.label_names(&[])?);
    println!("instances: {:?}", q.label_values("instance", &[])?);
    let down = q.select(&[
        Matcher::equal("__name__", "up"),
        Matcher::not_equal("instance", "web-1:9100"),
    ])?;
    for s in down {
        println!("up series not on web-1: {}", s.labels());
    }

    db.close()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
