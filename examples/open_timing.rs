//! Times opening a data directory (loading blocks, replaying the WAL) and prints what the
//! replay read. Opens read-only, so it can time a directory Prometheus wrote without changing it.
//!
//! `cargo run --release --example open_timing -- <DIR>`

use std::time::Instant;

use annals::{Db, Options};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: open_timing <DIR>"))?;
    let started = Instant::now();
    let db = Db::open_read_only(&dir, Options::default())?;
    let secs = started.elapsed().as_secs_f64();
    let r = db.replay_stats().expect("opened from disk");
    println!("opened {dir} in {secs:.2} s");
    println!(
        "replayed {} records, {} series, {} samples ({:.1} M samples/s), dropped {}, unknown refs {}",
        r.records,
        r.series,
        r.samples,
        r.samples as f64 / r.duration.as_secs_f64() / 1e6,
        r.samples_dropped,
        r.unknown_refs
    );
    println!("head: {:?}", db.head_stats());
    Ok(())
}
