//! `annals dump`: every sample of a data directory (blocks and the WAL), one line each, as
//! `promtool tsdb dump` prints them: `{__name__="up", job="a"} 1 1700000000000`. Like promtool
//! 2.42, it prints no native-histogram samples (a series' floats up to its first histogram).

use std::io::{self, Write};
use std::path::Path;

use annals::{Db, Matcher, Options, Series};

use crate::gofmt::write_float_g;

/// What to dump.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// First timestamp (ms, inclusive).
    pub min_time: i64,
    /// Last timestamp (ms, inclusive).
    pub max_time: i64,
    /// Series selectors; a series is dumped if it matches any of them. Empty: every series.
    pub selectors: Vec<Vec<Matcher>>,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            min_time: i64::MIN,
            max_time: i64::MAX,
            selectors: Vec::new(),
        }
    }
}

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// Reading the data directory failed.
    #[error(transparent)]
    Storage(#[from] annals::Error),
    /// `min_time > max_time`: the engine's one rule for time ranges (see
    /// [`Db::querier`]) makes an empty range an error, not an empty dump.
    #[error(
        "--min-time {min_time} is after --max-time {max_time}: both ends are inclusive \
         (equal values dump one millisecond); pass --min-time <= --max-time"
    )]
    EmptyRange {
        /// The first timestamp asked for.
        min_time: i64,
        /// The last timestamp asked for.
        max_time: i64,
    },
    /// Writing the output failed (`BrokenPipe` when the reader went away).
    #[error("writing the output: {0}")]
    Write(#[from] io::Error),
}

/// What a dump printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpStats {
    /// Series printed.
    pub series: u64,
    /// Samples (lines) printed.
    pub samples: u64,
}

/// Writes the samples of `dir` to `out`, series in label order, samples in time order.
///
/// The directory is opened read-only ([`Db::open_read_only`]): blocks are read and the WAL
/// replayed in memory; nothing in `dir` is created, changed or locked.
pub fn dump(dir: &Path, opts: &DumpOptions, out: &mut dyn Write) -> Result<DumpStats, DumpError> {
    if opts.min_time > opts.max_time {
        return Err(DumpError::EmptyRange {
            min_time: opts.min_time,
            max_time: opts.max_time,
        });
    }
    let db = Db::open_read_only(dir, Options::default())?;
    let mut stats = DumpStats::default();
    let q = db.querier(opts.min_time, opts.max_time)?;
    let mut line = String::with_capacity(256);
    let mut print = |s: &Series, stats: &mut DumpStats| -> Result<(), DumpError> {
        let labels = s.labels().to_string();
        stats.series += 1;
        // As promtool 2.42: a series' floats up to its first native histogram (`for
        // it.Next() == chunkenc.ValFloat`), so a series of histograms prints nothing.
        for value in s.values() {
            let (t, value) = value?;
            let annals::Value::Float(v) = value else {
                break;
            };
            line.clear();
            line.push_str(&labels);
            line.push(' ');
            write_float_g(&mut line, v);
            line.push(' ');
            line.push_str(itoa(t, &mut [0u8; 20]));
            line.push('\n');
            out.write_all(line.as_bytes())?;
            stats.samples += 1;
        }
        Ok(())
    };
    if opts.selectors.len() <= 1 {
        let matchers = opts.selectors.first().map_or(&[][..], Vec::as_slice);
        for s in q.select(matchers)? {
            print(&s, &mut stats)?;
        }
    } else {
        // Series matching several selectors are printed once: merge the sorted sets.
        let mut sets = Vec::with_capacity(opts.selectors.len());
        for m in &opts.selectors {
            sets.push(q.select(m)?.peekable());
        }
        loop {
            let min = sets
                .iter_mut()
                .filter_map(|s| s.peek().map(|s| s.labels().clone()))
                .min();
            let Some(min) = min else { break };
            let mut printed = false;
            for set in &mut sets {
                if set.peek().is_some_and(|s| *s.labels() == min) {
                    let s = set.next().expect("peeked");
                    if !printed {
                        print(&s, &mut stats)?;
                        printed = true;
                    }
                }
            }
        }
    }
    out.flush()?;
    Ok(stats)
}

/// Formats an integer without allocating.
fn itoa(v: i64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut u = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    std::str::from_utf8(&buf[i..]).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itoa_matches_display() {
        for v in [0, 1, -1, 9, 10, 1_700_000_000_000, i64::MAX, i64::MIN] {
            assert_eq!(itoa(v, &mut [0u8; 20]), v.to_string());
        }
    }
}
