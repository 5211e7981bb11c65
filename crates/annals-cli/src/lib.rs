//! The reusable parts of the `annals` command-line tool, which mirrors `promtool tsdb` so that
//! Prometheus users feel at home:
//!
//! * [`import`]: OpenMetrics text into level-1 blocks (`promtool tsdb create-blocks-from
//!   openmetrics`), streaming, with chunks byte-identical to promtool's;
//! * [`list`], [`dump`], [`analyze`]: the `promtool tsdb list|dump|analyze` views of a data
//!   directory, printed the same way;
//! * [`openmetrics`]: a streaming OpenMetrics parser that never panics;
//! * [`bench`]: `promtool tsdb bench write`'s workload against annals, and a replay timing;
//! * [`query`]: PromQL over a data directory (`promtool query`), and [`bench_query`], a
//!   query-timing loop for side-by-side benchmarks;
//! * [`gofmt`]: Go's `%g`, durations, times, byte sizes and tab-aligned tables;
//! * [`error`]: the errors of `list` and `analyze` (the other commands have their own).
#![deny(missing_docs)]

pub mod analyze;
pub mod bench;
pub mod bench_query;
pub mod dump;
pub mod error;
pub mod gofmt;
pub mod import;
pub mod list;
pub mod openmetrics;
pub mod progress;
pub mod query;
