//! `annals import openmetrics`: OpenMetrics text with timestamps into level-1 blocks, one per
//! aligned block window holding data, as `promtool tsdb create-blocks-from openmetrics` does.
//!
//! promtool reads the whole input into memory and then parses it once more for every window.
//! We stream instead, in two passes:
//!
//! 1. The input is parsed once, line by line. Every sample is validated (syntax, timestamp
//!    present, label names unique) and appended to the spill file of its window (see
//!    [`spill`]), inside a staging directory in the output directory.
//! 2. Windows are built one at a time, oldest first: the window's spill file is read back, its
//!    series are cut into chunks with the head's rules ([`chunker`]), and a block is written.
//!
//! Memory is therefore bounded by one window's series and chunks (what promtool's head holds
//! for a window), never by the input; disk use is about the size of the decompressed input
//! while the import runs. The blocks are moved into the output directory only after every
//! window was written: a failed import leaves the output directory as it was.
//!
//! Rules, as promtool's (Prometheus 2.42): every sample needs a timestamp; within a window a
//! series' samples must be in time order (a sample older than the series' newest is an
//! out-of-order error, one with the same timestamp and another value a duplicate error, an
//! exact repeat is ignored). Across windows order does not matter. promtool only notices
//! disorder between its 5000-sample commit batches and silently drops it within one; we always
//! report it, with the line. Labels with empty values are dropped (an empty value means
//! "absent"). Windows are aligned by floor division, so negative timestamps are imported too
//! (promtool's truncating division skips samples just below 0).

pub mod chunker;
pub mod spill;
mod staging;

pub use staging::{find_leftovers, remove_leftovers, Leftover};

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use annals::unstable::block::{Block, BlockOptions, BlockWriter, Meta};
use annals::unstable::encoding::{put_uvarint, Decbuf};
use annals::Labels;

use crate::openmetrics::{Entry, ParseError, Parser};
use chunker::{Rejected, SeriesChunker};
use spill::{SpillReader, SpillWriter};

/// Prometheus' default (and smallest) block duration: 2 h in milliseconds.
pub const DEFAULT_BLOCK_DURATION: i64 = 2 * 3600 * 1000;

/// The block duration promtool uses for `--max-block-duration=max_ms`
/// (`getCompatibleBlockDuration`): the largest of 2 h, 6 h, 18 h, ... (ten ranges, factor 3)
/// that does not exceed it; 2 h for anything smaller.
pub fn compatible_block_duration(max_ms: i64) -> i64 {
    let mut best = DEFAULT_BLOCK_DURATION;
    let mut r = DEFAULT_BLOCK_DURATION;
    for _ in 0..10 {
        if r > max_ms {
            break;
        }
        best = r;
        r *= 3;
    }
    best
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The input is not valid OpenMetrics.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// A sample has no timestamp (blocks need one).
    #[error("line {line}: sample of {series} has no timestamp (every sample needs one)")]
    MissingTimestamp {
        /// The line.
        line: u64,
        /// The series.
        series: String,
    },
    /// A label name appears twice in one series.
    #[error("line {line}: label name {name:?} is not unique")]
    DuplicateLabelName {
        /// The line.
        line: u64,
        /// The repeated name.
        name: String,
    },
    /// A sample is older than an earlier sample of the same series in the same block window.
    #[error(
        "line {line}: out of order sample: {series} at {t} is older than its sample at {newest} \
         (samples of a series must be in time order within each {window} block window)"
    )]
    OutOfOrder {
        /// The line.
        line: u64,
        /// The series.
        series: String,
        /// The sample's timestamp (ms).
        t: i64,
        /// The newest earlier timestamp of the series (ms).
        newest: i64,
        /// The block duration, as text.
        window: String,
    },
    /// Two samples of a series have the same timestamp and different values.
    #[error("line {line}: duplicate sample for timestamp {t} of {series} with a different value")]
    DuplicateSample {
        /// The line.
        line: u64,
        /// The series.
        series: String,
        /// The timestamp (ms).
        t: i64,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The block duration is not positive.
    #[error("block duration must be positive, got {value}")]
    BlockDuration {
        /// The duration given.
        value: String,
    },
    /// Writing or reading a block failed.
    #[error(transparent)]
    Storage(#[from] annals::Error),
}

/// Options of [`import_openmetrics`].
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Block duration in ms (use [`compatible_block_duration`] to derive it from a maximum).
    pub block_duration: i64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            block_duration: DEFAULT_BLOCK_DURATION,
        }
    }
}

/// Import progress as `tracing` events: `DEBUG`, target `annals::progress`, `op = "import"`,
/// with the engine's fields (`done`, `total`, `unit`, `samples`, `elapsed_ms`), at most every
/// 500 ms while an import runs.
struct TracedProgress {
    started: std::time::Instant,
    next: std::time::Instant,
}

impl TracedProgress {
    const INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

    fn new() -> TracedProgress {
        let now = std::time::Instant::now();
        TracedProgress {
            started: now,
            next: now + Self::INTERVAL,
        }
    }

    fn emit(&mut self, p: Progress) {
        let now = std::time::Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + Self::INTERVAL;
        let (done, total, unit, samples) = match p {
            Progress::Reading { lines, samples } => (lines, 0, "lines", samples),
            Progress::Writing {
                done,
                total,
                samples,
            } => (done as u64, total as u64, "blocks", samples),
            Progress::RemovedLeftover { .. } => return,
        };
        tracing::debug!(
            target: "annals::progress",
            op = "import",
            done,
            total,
            unit,
            samples,
            elapsed_ms = now.duration_since(self.started).as_millis() as u64,
            "progress"
        );
    }
}

/// How far an import got, for progress displays.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Pass 1: reading and validating the input.
    Reading {
        /// Lines read so far.
        lines: u64,
        /// Samples read so far.
        samples: u64,
    },
    /// Before pass 1: the staging directory of an earlier import of process `pid` that was
    /// killed (`.annals-import-<pid>.tmp`, `bytes` large) was removed.
    RemovedLeftover {
        /// The killed import's process id.
        pid: u32,
        /// Bytes the directory held.
        bytes: u64,
    },
    /// Pass 2: writing blocks.
    Writing {
        /// Blocks written so far.
        done: usize,
        /// Blocks to write.
        total: usize,
        /// Samples of the window being written.
        samples: u64,
    },
}

/// A block the import created.
#[derive(Debug, Clone)]
pub struct ImportedBlock {
    /// Its meta.json.
    pub meta: Meta,
    /// Its size on disk, as Prometheus counts it (index, chunks, tombstones, meta.json).
    pub size: u64,
}

/// Opens an input file, decompressing it if it starts with the gzip magic bytes.
pub fn open_input(path: &Path) -> Result<Box<dyn BufRead>, ImportError> {
    let at = |e| ImportError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let f = std::fs::File::open(path).map_err(at)?;
    open_reader(f).map_err(at)
}

/// Wraps a reader, decompressing it if it starts with the gzip magic bytes.
pub fn open_reader<R: Read + 'static>(r: R) -> io::Result<Box<dyn BufRead>> {
    let mut r = BufReader::with_capacity(256 << 10, r);
    let gz = r.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            256 << 10,
            flate2::bufread::MultiGzDecoder::new(r),
        ))
    } else {
        Box::new(r)
    })
}

fn sync_dir(dir: &Path) -> Result<(), ImportError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| ImportError::Io {
            path: dir.to_path_buf(),
            source: e,
        })
}

/// Imports OpenMetrics text from `input` into new blocks in `out_dir` (created if missing);
/// see the module docs. Returns the blocks, oldest first.
pub fn import_openmetrics(
    input: impl BufRead,
    out_dir: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<ImportedBlock>, ImportError> {
    // Progress also goes to `tracing`, as the engine's long operations report it.
    let mut traced = TracedProgress::new();
    let mut both = |p: Progress| {
        traced.emit(p);
        progress(p)
    };
    let progress: &mut dyn FnMut(Progress) = &mut both;
    let io_at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| ImportError::Io { path: p, source: e }
    };
    if opts.block_duration <= 0 {
        return Err(ImportError::BlockDuration {
            value: format!("{} ms", opts.block_duration),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(io_at(out_dir))?;
    for l in remove_leftovers(out_dir)? {
        progress(Progress::RemovedLeftover {
            pid: l.pid,
            bytes: l.bytes,
        });
    }
    let staging = staging::Staging::create(out_dir)?;

    let spilled = spill_input(input, staging.path(), opts.block_duration, progress)?;

    let chunk_range = opts.block_duration.saturating_mul(2);
    let mut blocks = Vec::new();
    let total = spilled.len();
    for (i, w) in spilled.into_iter().enumerate() {
        progress(Progress::Writing {
            done: i,
            total,
            samples: w.samples,
        });
        if let Some(ulid) = build_window(&w.path, staging.path(), chunk_range, opts.block_duration)?
        {
            blocks.push(ulid);
        }
        std::fs::remove_file(&w.path).map_err(io_at(&w.path))?;
    }
    progress(Progress::Writing {
        done: total,
        total,
        samples: 0,
    });

    let mut out = Vec::with_capacity(blocks.len());
    for name in blocks {
        let from = staging.path().join(&name);
        let to = out_dir.join(&name);
        std::fs::rename(&from, &to).map_err(io_at(&to))?;
        let b = Block::open(&to)?;
        out.push(ImportedBlock {
            meta: b.meta().clone(),
            size: b.size(),
        });
    }
    sync_dir(out_dir)?;
    drop(staging);
    out.sort_by_key(|b| (b.meta.min_time, b.meta.ulid));
    Ok(out)
}

/// Pass 1: parses and validates the input, spilling samples by window.
fn spill_input(
    input: impl BufRead,
    dir: &Path,
    block_duration: i64,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<spill::Spilled>, ImportError> {
    let mut parser = Parser::new(input);
    let mut spill = SpillWriter::new(dir);
    let mut key = Vec::with_capacity(256);
    let mut samples = 0u64;
    loop {
        // Every entry is one line: this is the line of the entry read next.
        let line = parser.line_number() + 1;
        if line.is_multiple_of(65_536) {
            progress(Progress::Reading {
                lines: line,
                samples,
            });
        }
        let Some(entry) = parser.next_entry()? else {
            break;
        };
        let Entry::Sample(s) = entry else {
            continue;
        };
        let Some(t) = s.timestamp else {
            return Err(ImportError::MissingTimestamp {
                line,
                series: series_text(s.labels()),
            });
        };
        key.clear();
        let mut prev: Option<&str> = None;
        for (n, v) in s.sorted_labels() {
            if prev == Some(n) {
                return Err(ImportError::DuplicateLabelName {
                    line,
                    name: n.to_owned(),
                });
            }
            prev = Some(n);
            if !v.is_empty() {
                put_uvarint(&mut key, n.len() as u64);
                key.extend_from_slice(n.as_bytes());
                put_uvarint(&mut key, v.len() as u64);
                key.extend_from_slice(v.as_bytes());
            }
        }
        spill.push(t.div_euclid(block_duration), line, t, s.value, &key)?;
        samples += 1;
    }
    progress(Progress::Reading {
        lines: parser.line_number(),
        samples,
    });
    spill.finish()
}

/// `{a="b", ...}` for error messages, from pairs in any order (invalid sets shown raw).
fn series_text<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let pairs: Vec<_> = pairs.collect();
    match Labels::new(pairs.iter().copied()) {
        Ok(l) => l.to_string(),
        Err(_) => format!("{pairs:?}"),
    }
}

/// Decodes a series key written by [`spill_input`].
fn key_labels(key: &[u8]) -> Result<Labels, ImportError> {
    let mut d = Decbuf::new(key);
    let mut pairs = Vec::new();
    while !d.is_empty() {
        let n = d.uvarint_str();
        let v = d.uvarint_str();
        match (n, v) {
            (Ok(n), Ok(v)) => pairs.push((n, v)),
            _ => {
                return Err(ImportError::Io {
                    path: PathBuf::from("spill file"),
                    source: io::Error::new(io::ErrorKind::InvalidData, "bad series key"),
                })
            }
        }
    }
    Ok(Labels::new(pairs)?)
}

/// Pass 2 for one window: builds its series and writes its block into `staging`.
fn build_window(
    spill_path: &Path,
    staging: &Path,
    chunk_range: i64,
    block_duration: i64,
) -> Result<Option<String>, ImportError> {
    let mut reader = SpillReader::open(spill_path)?;
    let mut index: HashMap<Box<[u8]>, usize> = HashMap::new();
    let mut series: Vec<Option<SeriesChunker>> = Vec::new();
    let mut key = Vec::with_capacity(256);
    while let Some(r) = reader.next_record(&mut key)? {
        match index.get(key.as_slice()) {
            Some(&i) => {
                let s = series[i]
                    .as_mut()
                    .expect("filled until the window is written");
                if let Err(why) = s.append(r.t, r.v, chunk_range) {
                    let series = key_labels(&key)?.to_string();
                    return Err(match why {
                        Rejected::OutOfOrder { newest } => ImportError::OutOfOrder {
                            line: r.line,
                            series,
                            t: r.t,
                            newest,
                            window: crate::gofmt::duration(
                                block_duration.saturating_mul(1_000_000),
                            ),
                        },
                        Rejected::Duplicate => ImportError::DuplicateSample {
                            line: r.line,
                            series,
                            t: r.t,
                        },
                    });
                }
            }
            None => {
                index.insert(key.as_slice().into(), series.len());
                series.push(Some(SeriesChunker::new(r.t, r.v, chunk_range)));
            }
        }
    }
    let mut sorted = Vec::with_capacity(index.len());
    for (k, i) in index {
        let s = series[i].take().expect("each series is indexed once");
        sorted.push((key_labels(&k)?, s));
    }
    drop(series);
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut w = BlockWriter::create(staging, BlockOptions::default())?;
    for (labels, s) in sorted {
        w.add_series(&labels, &s.finish())?;
    }
    Ok(w.finish()?.map(|u| u.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_durations_like_promtool() {
        let h = 3_600_000;
        assert_eq!(compatible_block_duration(0), 2 * h);
        assert_eq!(compatible_block_duration(h), 2 * h);
        assert_eq!(compatible_block_duration(2 * h), 2 * h);
        assert_eq!(compatible_block_duration(5 * h), 2 * h);
        assert_eq!(compatible_block_duration(6 * h), 6 * h);
        assert_eq!(compatible_block_duration(24 * h), 18 * h);
        assert_eq!(compatible_block_duration(i64::MAX), 2 * h * 3i64.pow(9));
    }
}
