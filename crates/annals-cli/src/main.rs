//! `annals`: import, list, dump and analyze Prometheus-compatible data directories, with the
//! commands and output of `promtool tsdb`.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use annals_cli::dump::{DumpError, DumpOptions};
use annals_cli::import::{self, ImportOptions, Progress};
use annals_cli::progress::{ProgressLine, ProgressSubscriber};
use annals_cli::{analyze, bench, gofmt, list};

mod agent_cmd;
mod serve;

/// Tooling for annals and Prometheus TSDB data directories (like `promtool tsdb`).
#[derive(Parser, Debug)]
#[command(name = "annals", version, propagate_version = true)]
struct Cli {
    /// Show the progress of long operations (WAL replay, compaction, import) on stderr even
    /// when it is not a terminal; on a terminal it is shown anyway.
    #[arg(long, global = true)]
    progress: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Import samples into new blocks (like `promtool tsdb create-blocks-from`).
    #[command(subcommand)]
    Import(ImportCommand),
    /// List the blocks of a data directory (like `promtool tsdb list`).
    List {
        /// Print times as UTC dates and sizes in binary units.
        #[arg(short = 'r', long)]
        human_readable: bool,
        /// Data directory.
        dir: PathBuf,
    },
    /// Print every sample of a data directory, blocks and WAL (like `promtool tsdb dump`).
    ///
    /// One line per sample: `{__name__="up", job="a"} 1 1700000000000` (labels, value as Go's
    /// %g, timestamp in ms). The directory is opened read-only: nothing in it is changed.
    Dump {
        /// Minimum timestamp to dump (ms, inclusive).
        #[arg(long, default_value_t = i64::MIN, allow_hyphen_values = true, value_name = "MS")]
        min_time: i64,
        /// Maximum timestamp to dump (ms, inclusive).
        #[arg(long, default_value_t = i64::MAX, allow_hyphen_values = true, value_name = "MS")]
        max_time: i64,
        /// Series selector, e.g. 'up{job=~"node.*"}'; repeat to dump series matching any.
        /// Default: every series.
        #[arg(long = "match", value_name = "SELECTOR")]
        matches: Vec<String>,
        /// Data directory.
        dir: PathBuf,
    },
    /// Show cardinality, churn and bytes per sample of a block (like `promtool tsdb analyze`).
    Analyze {
        /// How many items to show in each list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Also read every chunk and show how full chunks are.
        #[arg(long)]
        extended: bool,
        /// Data directory.
        dir: PathBuf,
        /// Block to analyze (default: the one with the latest min time).
        block_id: Option<String>,
    },
    /// Benchmarks (like `promtool tsdb bench`).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Serve Prometheus's HTTP API, remote write and remote read on a data directory.
    Serve(Box<serve::ServeArgs>),
    /// Scrape targets into a local database and forward them by remote write.
    Agent(agent_cmd::AgentCmd),
    /// Run PromQL against a data directory, printed as `promtool query` prints a server's
    /// answers. The directory is opened read-only.
    Query {
        /// Output format.
        #[arg(short = 'o', long = "format", default_value = "promql", value_parser = ["promql", "json"])]
        format: String,
        #[command(subcommand)]
        command: QueryCommand,
    },
}

#[derive(Subcommand, Debug)]
enum QueryCommand {
    /// Run an instant query.
    Instant {
        /// Evaluation time (RFC 3339 or Unix timestamp; default: now).
        #[arg(long)]
        time: Option<String>,
        /// Data directory.
        dir: PathBuf,
        /// PromQL expression.
        expr: String,
    },
    /// Run a range query.
    Range {
        /// Start time (RFC 3339 or Unix timestamp; default: 5 minutes before the end).
        #[arg(long)]
        start: Option<String>,
        /// End time (RFC 3339 or Unix timestamp; default: now).
        #[arg(long)]
        end: Option<String>,
        /// Step (duration, e.g. 15s; default: the range over 250, at least 1s).
        #[arg(long)]
        step: Option<String>,
        /// Data directory.
        dir: PathBuf,
        /// PromQL expression.
        expr: String,
    },
    /// Run a series query: the label sets of the series matching any selector.
    Series {
        /// Series selector; repeat for several.
        #[arg(long = "match", value_name = "SELECTOR", required = true)]
        matches: Vec<String>,
        /// Start time (RFC 3339 or Unix timestamp).
        #[arg(long)]
        start: Option<String>,
        /// End time (RFC 3339 or Unix timestamp).
        #[arg(long)]
        end: Option<String>,
        /// Data directory.
        dir: PathBuf,
    },
    /// Run a labels query: the values of a label.
    Labels {
        /// Series selector; repeat for several.
        #[arg(long = "match", value_name = "SELECTOR")]
        matches: Vec<String>,
        /// Start time (RFC 3339 or Unix timestamp).
        #[arg(long)]
        start: Option<String>,
        /// End time (RFC 3339 or Unix timestamp).
        #[arg(long)]
        end: Option<String>,
        /// Data directory.
        dir: PathBuf,
        /// Label name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Run `promtool tsdb bench write`'s workload against a new annals database in
    /// `<OUT>/storage`: the first METRICS label sets of FILE, rounds of 100 scrapes 30 s apart,
    /// shards of 1,000 series appended concurrently with one commit per shard and scrape.
    /// Prints promtool's stage lines, samples/s, CPU seconds and peak RSS.
    Write {
        /// Number of metrics (distinct label sets) to read.
        #[arg(long, default_value_t = 10_000)]
        metrics: usize,
        /// Number of scrapes to simulate (rounded up to a multiple of 100, as promtool does).
        #[arg(long, default_value_t = 3_000)]
        scrapes: usize,
        /// Output directory; wiped first, the database goes to `<OUT>/storage`.
        #[arg(long, default_value = "benchout")]
        out: PathBuf,
        /// Threads appending shards (default: min(shards, CPUs)).
        #[arg(long)]
        threads: Option<usize>,
        /// WAL record compression: `none` (the default, as promtool's bench: 2.42's
        /// `tsdb.DefaultOptions()` has WALCompression off) or `snappy` (annals's default).
        #[arg(long, default_value = "none", value_parser = parse_wal_compression)]
        wal_compression: annals::WalCompression,
        /// Label sets, one JSON object per line (gzip is detected by its magic bytes).
        file: PathBuf,
    },
    /// Time PromQL queries over DIR (opened read-only once): one query per input line,
    /// one JSON line of timings per query (see `annals_cli::bench_query`).
    Query {
        /// Data directory.
        dir: PathBuf,
    },
    /// Time opening DIR read-write (loading blocks, replaying the WAL), then close it.
    /// Background compaction stays off, so the directory gains no blocks.
    Replay {
        /// Data directory, e.g. `benchout/storage`.
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum ImportCommand {
    /// Import OpenMetrics text with timestamps (optionally gzip-compressed) into level-1
    /// blocks, one per aligned block window holding data.
    ///
    /// Every sample needs a timestamp (seconds, may be fractional) and the input must end with
    /// `# EOF`, as for `promtool tsdb create-blocks-from openmetrics`. Chunks are cut as a
    /// Prometheus 2.42 head cuts them, so the chunk files equal promtool's byte for byte. The
    /// input is read once and spilled per window into a staging directory inside DIR, so
    /// memory holds one window's series at a time. Blocks appear in DIR only if the whole
    /// import succeeds.
    Openmetrics {
        /// Maximum duration a block may span; the largest of 2h, 6h, 18h, ... (factor 3) that
        /// fits is used, as promtool does (anything below 2h means 2h).
        #[arg(long, default_value = "2h", value_name = "DURATION")]
        max_block_duration: String,
        /// Print times as UTC dates and sizes in binary units in the block table.
        #[arg(short = 'r', long)]
        human_readable: bool,
        /// Do not print the created blocks.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Input file (`-` for standard input); gzip is detected by its magic bytes.
        file: PathBuf,
        /// Output data directory (created if missing).
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` and `agent` log through their own subscriber; the other commands draw the
    // engine's progress events on a status line.
    let mut drawn = None;
    if !matches!(cli.command, Command::Serve(_) | Command::Agent(_)) {
        let line = progress_line(cli.progress);
        if line.enabled() {
            let sub = Arc::new(ProgressSubscriber::new(line));
            if tracing::subscriber::set_global_default(sub.clone()).is_ok() {
                drawn = Some(sub);
            }
        }
    }
    let res = run(cli);
    if let Some(sub) = drawn {
        sub.clear();
    }
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stdout (`annals dump DIR | head`) is not an error worth a message.
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The progress status line: on a terminal, or anywhere with `--progress`.
fn progress_line(forced: bool) -> ProgressLine {
    match forced {
        true => ProgressLine::new(true),
        false => ProgressLine::stderr(),
    }
}

/// The error and its causes, joined by ": ", skipping a cause whose text the previous message
/// already contains (library errors often include their source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if last.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
        last = msg;
    }
    out
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Agent(cmd) => agent_cmd::run(cmd),
        Command::Import(ImportCommand::Openmetrics {
            max_block_duration,
            human_readable,
            quiet,
            file,
            dir,
        }) => import_openmetrics(
            &file,
            &dir,
            &max_block_duration,
            human_readable,
            quiet,
            cli.progress,
        ),
        Command::List {
            human_readable,
            dir,
        } => {
            ensure_dir(&dir)?;
            let blocks = list::list_blocks(&dir)
                .with_context(|| format!("listing blocks of {}", dir.display()))?;
            write_stdout(list::render(&blocks, human_readable).as_bytes())
        }
        Command::Dump {
            min_time,
            max_time,
            matches,
            dir,
        } => {
            ensure_dir(&dir)?;
            let mut selectors = Vec::with_capacity(matches.len());
            for m in &matches {
                selectors.push(
                    annals::parse_selector(m)
                        .with_context(|| format!("invalid --match selector {m:?}"))?,
                );
            }
            let opts = DumpOptions {
                min_time,
                max_time,
                selectors,
            };
            let stdout = io::stdout();
            let mut out = io::BufWriter::with_capacity(256 << 10, stdout.lock());
            match annals_cli::dump::dump(&dir, &opts, &mut out) {
                Ok(_) => Ok(()),
                Err(DumpError::Write(e)) => Err(e.into()),
                Err(e) => {
                    Err(anyhow::Error::new(e)).with_context(|| format!("dumping {}", dir.display()))
                }
            }
        }
        Command::Analyze {
            limit,
            extended,
            dir,
            block_id,
        } => {
            ensure_dir(&dir)?;
            let block = analyze::open_block(&dir, block_id.as_deref())
                .with_context(|| format!("opening a block of {}", dir.display()))?;
            let text = analyze::analyze(&block, limit, extended)
                .with_context(|| format!("analyzing block {}", block.dir().display()))?;
            write_stdout(text.as_bytes())
        }
        Command::Bench(BenchCommand::Write {
            metrics,
            scrapes,
            out,
            threads,
            wal_compression,
            file,
        }) => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot open input {}", file.display()))?;
            let input =
                import::open_reader(f).with_context(|| format!("reading {}", file.display()))?;
            let opts = bench::WriteOptions {
                metrics,
                scrapes,
                out,
                threads,
                wal_compression,
            };
            bench::write(input, &opts, &mut io::stdout().lock())
                .with_context(|| format!("bench write {}", file.display()))?;
            Ok(())
        }
        Command::Bench(BenchCommand::Query { dir }) => {
            ensure_dir(&dir)?;
            annals_cli::bench_query::serve(&dir, io::stdin().lock(), &mut io::stdout().lock())
        }
        Command::Query { format, command } => run_query(&format, command),
        Command::Serve(args) => serve::run(*args),
        Command::Bench(BenchCommand::Replay { dir }) => {
            bench::replay(&dir, &mut io::stdout().lock())
                .with_context(|| format!("bench replay {}", dir.display()))?;
            Ok(())
        }
    }
}

fn run_query(format: &str, command: QueryCommand) -> anyhow::Result<()> {
    use annals_cli::query;
    let format = if format == "json" {
        query::Format::Json
    } else {
        query::Format::Promql
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    let time = |t: Option<String>, default: i64| t.map_or(Ok(default), |t| query::parse_time(&t));
    let out = match command {
        QueryCommand::Instant { time: t, dir, expr } => {
            ensure_dir(&dir)?;
            query::instant(&dir, &expr, time(t, now())?, format)
        }
        QueryCommand::Range {
            start,
            end,
            step,
            dir,
            expr,
        } => {
            ensure_dir(&dir)?;
            let end = time(end, now())?;
            let start = time(start, end - 5 * 60_000)?;
            let step = match step {
                Some(s) => gofmt::parse_duration(&s).map_err(anyhow::Error::msg)? / 1_000_000,
                None => query::default_step(start, end),
            };
            query::range(&dir, &expr, start, end, step, format)
        }
        QueryCommand::Series {
            matches,
            start,
            end,
            dir,
        } => {
            ensure_dir(&dir)?;
            query::series(
                &dir,
                &matches,
                time(start, i64::MIN / 2)?,
                time(end, i64::MAX / 2)?,
                format,
            )
        }
        QueryCommand::Labels {
            matches,
            start,
            end,
            dir,
            name,
        } => {
            ensure_dir(&dir)?;
            query::labels(
                &dir,
                &name,
                &matches,
                time(start, i64::MIN / 2)?,
                time(end, i64::MAX / 2)?,
                format,
            )
        }
    };
    match out {
        Ok(text) => write_stdout(text.as_bytes()),
        Err(query::QueryError::Query(e)) => {
            // As promtool reports an API error: `query error: <type>: <message>`.
            eprintln!("query error: {}", query::api_error(&e));
            std::process::exit(1);
        }
        Err(e) => Err(e.into()),
    }
}

fn parse_wal_compression(s: &str) -> Result<annals::WalCompression, String> {
    match s {
        "none" => Ok(annals::WalCompression::None),
        "snappy" => Ok(annals::WalCompression::Snappy),
        _ => Err(format!("{s:?}: expected none or snappy")),
    }
}

/// Checks that `dir` is a directory and names the staging directories of killed imports in it
/// (read-only commands leave them; the next `annals import` into `dir` removes them).
fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("{} is not a directory", dir.display()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot open data directory {}", dir.display()))
        }
    }
    for l in import::find_leftovers(dir).unwrap_or_default() {
        eprintln!(
            "warning: {} ({:.1} MiB) was left by an import (pid {}) that was killed; \
             delete it, or run `annals import` into this directory, which removes it",
            l.path.display(),
            mib(l.bytes),
            l.pid
        );
    }
    Ok(())
}

fn write_stdout(b: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(b)?;
    out.flush()?;
    Ok(())
}

/// Counts the bytes read through it, for the progress display.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn import_openmetrics(
    file: &Path,
    dir: &Path,
    max_block_duration: &str,
    human_readable: bool,
    quiet: bool,
    progress: bool,
) -> anyhow::Result<()> {
    let max_ns = gofmt::parse_duration(max_block_duration)
        .map_err(anyhow::Error::msg)
        .context("--max-block-duration")?;
    let opts = ImportOptions {
        block_duration: import::compatible_block_duration(max_ns / 1_000_000),
    };
    let read = Arc::new(AtomicU64::new(0));
    let (reader, total): (Box<dyn Read>, Option<u64>) = if file == Path::new("-") {
        (Box::new(io::stdin()), None)
    } else {
        let f = std::fs::File::open(file)
            .with_context(|| format!("cannot open input {}", file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let input = import::open_reader(Counting {
        inner: reader,
        count: read.clone(),
    })
    .with_context(|| format!("reading {}", file.display()))?;

    let mut line = progress_line(progress);
    let start = Instant::now();
    let mut on_progress = |p: Progress| {
        if let Progress::RemovedLeftover { pid, bytes } = p {
            line.clear();
            eprintln!(
                "removed {} ({:.1} MiB), left by an import (pid {pid}) that was killed",
                dir.join(format!(".annals-import-{pid}.tmp")).display(),
                mib(bytes)
            );
            return;
        }
        line.update(matches!(p, Progress::Writing { .. }), || match p {
            Progress::Reading { lines, samples } => {
                let done = read.load(Ordering::Relaxed);
                let pct = total
                    .filter(|&t| t > 0)
                    .map(|t| format!(" ({:.0}%)", 100.0 * done as f64 / t as f64))
                    .unwrap_or_default();
                format!(
                    "reading: {:.1} MiB{pct}, {lines} lines, {samples} samples",
                    mib(done)
                )
            }
            Progress::Writing {
                done,
                total,
                samples,
            } => format!("writing blocks: {done}/{total} done ({samples} samples in the next)"),
            Progress::RemovedLeftover { .. } => unreachable!("handled above"),
        });
    };
    let blocks = import::import_openmetrics(input, dir, &opts, &mut on_progress)
        .with_context(|| format!("importing {} into {}", file.display(), dir.display()))?;
    line.clear();
    if line.enabled() {
        let samples: u64 = blocks.iter().map(|b| b.meta.stats.num_samples).sum();
        eprintln!(
            "imported {samples} samples into {} blocks in {:.1}s",
            blocks.len(),
            start.elapsed().as_secs_f64()
        );
    }
    if !quiet && !blocks.is_empty() {
        let listed: Vec<list::Listed> = blocks
            .into_iter()
            .map(|b| list::Listed {
                meta: b.meta,
                size: b.size,
            })
            .collect();
        write_stdout(list::render(&listed, human_readable).as_bytes())?;
    }
    Ok(())
}
