//! The embeddable API: an [`Engine`] with its options, evaluating instant and range queries
//! over a [`Queryable`] (an `annals::Db`), returning typed values and per-query statistics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::eval::{self, Ctx, Val};
use crate::parser::{self, Expr, ValueType};
use crate::value::{Point, Sample, Series, Value};

/// A source of series: what the engine reads. Implemented for [`annals::Db`].
pub trait Queryable {
    /// A querier over `[mint, maxt]` (milliseconds, both inclusive).
    fn querier(&self, mint: i64, maxt: i64) -> annals::Result<annals::Querier>;

    /// The time ranges `[min, max)` of the persisted blocks, oldest first (empty if unknown).
    /// The engine widens a selection to the start of the block it begins in, so that whole
    /// chunks fall inside it and the querier need not decode samples to prove a series has
    /// some in range.
    fn block_ranges(&self) -> Vec<(i64, i64)> {
        Vec::new()
    }
}

impl Queryable for annals::Db {
    fn querier(&self, mint: i64, maxt: i64) -> annals::Result<annals::Querier> {
        annals::Db::querier(self, mint, maxt)
    }

    fn block_ranges(&self) -> Vec<(i64, i64)> {
        self.blocks()
            .iter()
            .map(|m| (m.min_time, m.max_time))
            .collect()
    }
}

impl<T: Queryable + ?Sized> Queryable for &T {
    fn querier(&self, mint: i64, maxt: i64) -> annals::Result<annals::Querier> {
        (**self).querier(mint, maxt)
    }

    fn block_ranges(&self) -> Vec<(i64, i64)> {
        (**self).block_ranges()
    }
}

/// Engine-wide settings, with Prometheus 2.42's defaults.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`,
    /// default 5 minutes), in milliseconds.
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold in memory at once (`--query.max-samples`, default
    /// 50,000,000); beyond it the query fails with [`Error::TooManySamples`].
    pub max_samples: usize,
    /// Longest a query may run (`--query.timeout`, default 2 minutes); `None` for no limit.
    pub timeout: Option<Duration>,
    /// The step of subqueries written without one (`[30m:]`): Prometheus uses its global
    /// evaluation interval, 1 minute by default. In milliseconds.
    pub default_subquery_step_ms: i64,
    /// Threads a query may use to read and compute series in parallel (default: the CPUs
    /// available, at most 4). Results do not depend on it.
    pub parallelism: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Some(Duration::from_secs(120)),
            default_subquery_step_ms: 60 * 1000,
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        }
    }
}

/// Cancels a running query from another thread: the query returns [`Error::Canceled`] at its
/// next check (between series and between steps).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not canceled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that is canceled when `flag` is set (a server's "client went away" flag).
    pub fn from_flag(flag: Arc<AtomicBool>) -> Self {
        CancelToken(flag)
    }

    /// Cancels every query holding this token.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Per-query settings that override the engine's.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// The lookback delta for this query, in milliseconds (Prometheus's `lookback_delta`
    /// query parameter); `None` or a value ≤ 0 uses the engine's.
    pub lookback_delta_ms: Option<i64>,
    /// A timeout shorter than the engine's.
    pub timeout: Option<Duration>,
    /// A deadline (the earliest of it and the timeouts applies).
    pub deadline: Option<Instant>,
    /// A lower `max_samples` than the engine's.
    pub max_samples: Option<usize>,
    /// A token to cancel the query with.
    pub cancel: Option<CancelToken>,
}

/// What a query did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Series selected from the database (each selector counts its series).
    pub series: u64,
    /// Samples read from the database.
    pub samples: u64,
    /// Most samples held in memory at once (what `max_samples` limits).
    pub peak_samples: usize,
    /// Time to parse and prepare the query.
    pub prepare: Duration,
    /// Time to evaluate it.
    pub eval: Duration,
    /// Total time.
    pub total: Duration,
}

/// A query's value and statistics.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The value.
    pub value: Value,
    /// What it cost.
    pub stats: Stats,
}

/// Evaluates PromQL with Prometheus 2.42's semantics. Cheap to create and to share between
/// threads; each query runs on the calling thread.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

/// Prometheus refuses range queries with more points per series than this.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

impl Engine {
    /// An engine with the given options.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at time `t` (milliseconds).
    pub fn instant(&self, src: &dyn Queryable, query: &str, t: i64) -> Result<QueryResult> {
        self.instant_with(src, query, t, &QueryOptions::default())
    }

    /// Evaluates `query` at every `step` from `start` to `end` (milliseconds, inclusive).
    pub fn range(
        &self,
        src: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult> {
        self.range_with(src, query, start, end, step, &QueryOptions::default())
    }

    /// [`instant`](Self::instant) with per-query options.
    pub fn instant_with(
        &self,
        src: &dyn Queryable,
        query: &str,
        t: i64,
        opts: &QueryOptions,
    ) -> Result<QueryResult> {
        let began = Instant::now();
        let expr = parser::parse(query)?;
        self.exec(src, expr, t, t, 0, opts, began)
    }

    /// [`range`](Self::range) with per-query options.
    pub fn range_with(
        &self,
        src: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<QueryResult> {
        let began = Instant::now();
        let expr = parser::parse(query)?;
        let t = expr.value_type();
        if t != ValueType::Vector && t != ValueType::Scalar {
            return Err(Error::BadQuery(format!(
                "invalid expression type {} for range query, must be Scalar or instant Vector",
                parser::go_quote(t.documented())
            )));
        }
        if step <= 0 {
            return Err(Error::BadQuery(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(Error::BadQuery(
                "end timestamp must not be before start time".into(),
            ));
        }
        self.exec(src, expr, start, end, step, opts, began)
    }

    /// Evaluates an already parsed expression (instant when `step == 0`).
    #[allow(clippy::too_many_arguments)]
    fn exec(
        &self,
        src: &dyn Queryable,
        expr: Expr,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
        began: Instant,
    ) -> Result<QueryResult> {
        let timeout = match (self.opts.timeout, opts.timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let deadline = match (timeout.map(|t| began + t), opts.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let max_samples = opts
            .max_samples
            .map_or(self.opts.max_samples, |m| m.min(self.opts.max_samples));
        let lookback = match opts.lookback_delta_ms {
            Some(l) if l > 0 => l,
            _ => self.opts.lookback_delta_ms,
        };
        let expr = eval::preprocess(expr, start, end);
        let mut ctx = Ctx::new(
            src,
            lookback,
            max_samples,
            self.opts.default_subquery_step_ms,
            deadline,
            opts.cancel.clone(),
            self.opts.parallelism,
        );
        let prepared = Instant::now();
        let instant = step == 0;
        let interval = if instant { 1 } else { step };
        let val = ctx
            .check("query queue")
            .and_then(|_| eval::Ev::new(&mut ctx, start, end, interval).eval(&expr))?;
        let value = match val {
            Val::String(s) => Value::String { t: start, v: s },
            Val::Matrix(m) => Value::Matrix(
                m.into_iter()
                    .map(|s| Series {
                        labels: s.labels,
                        points: s.points,
                    })
                    .collect(),
            ),
            Val::Scalar(v) if instant => Value::Scalar { t: start, v: v[0] },
            Val::Scalar(v) => Value::Matrix(vec![Series {
                labels: annals::Labels::empty(),
                points: v
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Point {
                        t: start + i as i64 * interval,
                        v,
                    })
                    .collect(),
            }]),
            Val::Vector(series) if instant => Value::Vector(
                series
                    .into_iter()
                    .map(|s| Sample {
                        labels: s.labels,
                        t: start,
                        v: s.points[0].v,
                    })
                    .collect(),
            ),
            Val::Vector(series) => {
                ctx.check("expression evaluation")?;
                let mut m: Vec<Series> = series
                    .into_iter()
                    .map(|s| Series {
                        labels: s.labels,
                        points: s.points,
                    })
                    .collect();
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(m)
            }
        };
        let done = Instant::now();
        let stats = Stats {
            series: ctx.series,
            samples: ctx.samples,
            peak_samples: ctx.peak_samples,
            prepare: prepared - began,
            eval: done - prepared,
            total: done - began,
        };
        Ok(QueryResult { value, stats })
    }
}
