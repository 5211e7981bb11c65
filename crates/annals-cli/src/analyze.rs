//! `annals analyze`: cardinality and churn of one block, as `promtool tsdb analyze` prints
//! them, plus bytes per sample.
//!
//! The sections and numbers are promtool 2.42's. Where promtool's order of equal counts is
//! random (it iterates Go maps), ours is by name.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use annals::unstable::block::Block;

use crate::error::{Error, Result};
use crate::gofmt::duration;

/// Opens the block `block_id` of `dir`, or the one with the latest min time when `None`
/// (promtool's default).
pub fn open_block(dir: &Path, block_id: Option<&str>) -> Result<Block> {
    let blocks = crate::list::block_dirs(dir)?;
    if let Some(id) = block_id {
        let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
        return match blocks
            .iter()
            .find(|p| name(p).is_some_and(|n| n.eq_ignore_ascii_case(id)))
        {
            Some(p) => Ok(Block::open(p)?),
            None => Err(Error::BlockNotFound {
                id: id.to_owned(),
                dir: dir.to_path_buf(),
            }),
        };
    }
    let mut latest: Option<Block> = None;
    for p in &blocks {
        let b = Block::open(p)?;
        if latest
            .as_ref()
            .is_none_or(|l| (b.min_time(), b.ulid()) > (l.min_time(), l.ulid()))
        {
            latest = Some(b);
        }
    }
    latest.ok_or_else(|| Error::NoBlocks {
        dir: dir.to_path_buf(),
    })
}

/// Sorts `(count, key)` by count descending (then key) and prints the first `limit`.
fn print_top(out: &mut String, title: &str, mut items: Vec<(u64, String)>, limit: usize) {
    items.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let _ = writeln!(out, "\n{title}:");
    for (n, k) in items.into_iter().take(limit) {
        let _ = writeln!(out, "{n} {k}");
    }
}

/// The analysis of `block` as text. `extended` adds promtool's chunk fullness histogram
/// (which reads every chunk).
pub fn analyze(block: &Block, limit: usize, extended: bool) -> Result<String> {
    let meta = block.meta();
    let ir = block.index();
    let span = meta.max_time.wrapping_sub(meta.min_time);
    let mut out = String::new();
    let _ = writeln!(out, "Block ID: {}", meta.ulid);
    let _ = writeln!(out, "Duration: {}", duration(span.wrapping_mul(1_000_000)));
    let _ = writeln!(out, "Series: {}", meta.stats.num_series);
    let names = ir.label_names();
    let _ = writeln!(out, "Label names: {}", names.len());

    let mut names_uncovered: HashMap<String, u64> = HashMap::new();
    let mut pairs_uncovered: HashMap<String, u64> = HashMap::new();
    let mut pairs_count: HashMap<String, u64> = HashMap::new();
    let mut entries = 0u64;
    let mut chunks = Vec::new();
    let mut fullness = [0u64; 10];
    let mut total_chunks = 0u64;
    for r in ir.all_postings()? {
        let labels = ir.series_into(r, &mut chunks)?;
        // Amount of the block's range the series does not cover (Go's uint64 arithmetic).
        let covered = match (chunks.first(), chunks.last()) {
            (Some(f), Some(l)) => l.max_time.wrapping_sub(f.min_time),
            _ => 0,
        };
        let uncovered = (span as u64).wrapping_sub(covered as u64);
        for l in labels.iter() {
            let key = format!("{}={}", l.name, l.value);
            let e = names_uncovered.entry(l.name.to_owned()).or_default();
            *e = e.wrapping_add(uncovered);
            let e = pairs_uncovered.entry(key.clone()).or_default();
            *e = e.wrapping_add(uncovered);
            *pairs_count.entry(key).or_default() += 1;
            entries += 1;
        }
        if extended {
            for c in &chunks {
                let n = block.chunk(c)?.num_samples().unwrap_or(0).min(120);
                // promtool: ceil(10 * n / 120) - 1; an empty chunk counts in the first bucket.
                let bucket = (u32::from(n) * 10).div_ceil(120).saturating_sub(1) as usize;
                fullness[bucket] += 1;
                total_chunks += 1;
            }
        }
    }
    let _ = writeln!(
        out,
        "Postings (unique label pairs): {}",
        pairs_uncovered.len()
    );
    let _ = writeln!(out, "Postings entries (total label pairs): {entries}");
    let samples = meta.stats.num_samples;
    if samples > 0 {
        let chunk_bytes = block.chunks().size();
        let _ = writeln!(
            out,
            "Bytes per sample: {:.3} in chunk files ({chunk_bytes} bytes), {:.3} in the whole \
             block ({} bytes, {samples} samples)",
            chunk_bytes as f64 / samples as f64,
            block.size() as f64 / samples as f64,
            block.size(),
        );
    }

    let churn = |m: HashMap<String, u64>| -> Vec<(u64, String)> {
        m.into_iter()
            .map(|(k, v)| ((v as f64 / span as f64) as u64, k))
            .collect()
    };
    print_top(
        &mut out,
        "Label pairs most involved in churning",
        churn(pairs_uncovered),
        limit,
    );
    print_top(
        &mut out,
        "Label names most involved in churning",
        churn(names_uncovered),
        limit,
    );
    print_top(
        &mut out,
        "Most common label pairs",
        pairs_count.into_iter().map(|(k, v)| (v, k)).collect(),
        limit,
    );

    let mut lengths = Vec::with_capacity(names.len());
    let mut cardinality = Vec::with_capacity(names.len());
    for n in &names {
        let values = ir.label_values(n)?;
        lengths.push((values.iter().map(|v| v.len() as u64).sum(), n.to_string()));
        cardinality.push((values.len() as u64, n.to_string()));
    }
    print_top(
        &mut out,
        "Label names with highest cumulative label value length",
        lengths,
        limit,
    );
    print_top(&mut out, "Highest cardinality labels", cardinality, limit);
    let mut metrics = Vec::new();
    for v in ir.label_values("__name__")? {
        metrics.push((ir.postings("__name__", v)?.len() as u64, v.to_string()));
    }
    print_top(&mut out, "Highest cardinality metric names", metrics, limit);

    if extended {
        let _ = writeln!(out, "\nCompaction analysis:");
        let _ = writeln!(
            out,
            "Fullness: Amount of samples in chunks (100% is 120 samples)"
        );
        for (i, n) in fullness.iter().enumerate() {
            let pct = (100 * n).checked_div(total_chunks).unwrap_or(0);
            let _ = writeln!(out, "{:>7}%: {}", (i + 1) * 10, "#".repeat(pct as usize));
        }
    }
    Ok(out)
}
