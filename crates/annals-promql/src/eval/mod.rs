//! The evaluator.
//!
//! An [`Ev`] evaluates an expression at every step of `[start, end]` at once, as Prometheus's
//! evaluator does, but series by series rather than step by step: a selector walks each
//! series' samples once for all steps, range functions slide a window over one series at a
//! time, and nodes that map series to series (selectors, range functions, instant functions,
//! vector-scalar arithmetic, `label_*`) *stream* their output series into their consumer. An
//! aggregation folds streamed series into per-group accumulators, so `sum(rate(x[5m]))` never
//! holds more than one input series and the groups' results. Nodes that need both operands
//! per step (vector-vector binary operators, `absent`, `scalar`, `histogram_quantile`, ...)
//! materialise their inputs.
//!
//! Errors that Prometheus raises per step or per node ("vector cannot contain metrics with the
//! same labelset", many-to-many matches, too many samples) are raised under the same
//! conditions.

mod aggregate;
mod binary;
mod call;
mod collide;
mod labels;
mod preprocess;
mod selector;

use std::time::Instant;

use annals::Labels;

pub(crate) use preprocess::preprocess;

use crate::engine::{CancelToken, Queryable};
use crate::error::{exec, Error, Result};
use crate::parser::{AtModifier, Expr, ValueType};
use crate::value::Point;

use collide::{SeriesCollision, StepCollision};

/// One series of an intermediate result: labels and points (at step times for instant
/// vectors, at sample times for range vectors).
#[derive(Debug, Clone)]
pub(crate) struct Sd {
    pub(crate) labels: Labels,
    pub(crate) points: Vec<Point>,
}

/// An evaluated expression, over all steps.
#[derive(Debug)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    /// A string.
    String(String),
    /// An instant vector over the steps: series with at least one point each, labels unique.
    Vector(Vec<Sd>),
    /// A range vector (only at a single step: instant queries of range selectors and
    /// subqueries).
    Matrix(Vec<Sd>),
}

/// State shared by an evaluation and its nested evaluators (subqueries, step-invariant
/// subtrees): the database, limits, sample accounting and statistics.
pub(crate) struct Ctx<'a> {
    pub(crate) src: &'a dyn Queryable,
    pub(crate) lookback: i64,
    pub(crate) max_samples: usize,
    pub(crate) subquery_step: i64,
    deadline: Option<Instant>,
    cancel: Option<CancelToken>,
    /// Samples currently held, as Prometheus's `currentSamples`.
    pub(crate) cur_samples: usize,
    pub(crate) peak_samples: usize,
    pub(crate) series: u64,
    pub(crate) samples: u64,
    ticks: u32,
    /// The database's block ranges, read once per query.
    pub(crate) blocks: Vec<(i64, i64)>,
    /// Threads that evaluate series in parallel.
    pub(crate) threads: usize,
}

/// Deadline and cancellation, for worker threads.
#[derive(Clone)]
pub(crate) struct Limits {
    deadline: Option<Instant>,
    cancel: Option<CancelToken>,
}

impl Limits {
    pub(crate) fn check(&self) -> Result<()> {
        if self.cancel.as_ref().is_some_and(CancelToken::is_canceled) {
            return Err(Error::Canceled("expression evaluation"));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Timeout("expression evaluation"));
        }
        Ok(())
    }
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        src: &'a dyn Queryable,
        lookback: i64,
        max_samples: usize,
        subquery_step: i64,
        deadline: Option<Instant>,
        cancel: Option<CancelToken>,
        threads: usize,
    ) -> Self {
        Ctx {
            threads,
            src,
            lookback,
            max_samples,
            subquery_step,
            deadline,
            cancel,
            cur_samples: 0,
            peak_samples: 0,
            series: 0,
            samples: 0,
            ticks: 0,
            blocks: src.block_ranges(),
        }
    }

    /// Fails if the query was canceled or ran past its deadline.
    pub(crate) fn check(&mut self, env: &'static str) -> Result<()> {
        if self.cancel.as_ref().is_some_and(CancelToken::is_canceled) {
            return Err(Error::Canceled(env));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Timeout(env));
        }
        Ok(())
    }

    /// A cheap periodic [`check`](Self::check) for tight loops.
    #[inline]
    pub(crate) fn tick(&mut self) -> Result<()> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(256) {
            self.check("expression evaluation")?;
        }
        Ok(())
    }

    /// Takes `n` more samples into memory, failing past `max_samples`.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<()> {
        self.cur_samples += n;
        if self.cur_samples > self.max_samples {
            return Err(Error::TooManySamples("query execution"));
        }
        if self.cur_samples > self.peak_samples {
            self.peak_samples = self.cur_samples;
        }
        Ok(())
    }

    /// What a worker thread checks: the deadline and the cancel token.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            deadline: self.deadline,
            cancel: self.cancel.clone(),
        }
    }

    /// Computes each series' points with `work` (on several threads when there are many) and
    /// hands them to `sink` in series order, with the labels of the series. `work` returns the
    /// points, the samples it decoded, the most samples it held at once and what it held at
    /// the end.
    pub(crate) fn par_series<W>(
        &mut self,
        series: &[annals::Series],
        sink: &mut Sink<'_>,
        work: W,
    ) -> Result<()>
    where
        W: Fn(&annals::Series) -> Result<(Vec<Point>, u64, usize, usize)> + Sync,
    {
        self.par_series_map(
            series,
            |ctx, s, r| {
                let (points, decoded, peak, held) = r?;
                ctx.account(decoded, peak, held, points.len())?;
                if points.is_empty() {
                    return Ok(());
                }
                sink(
                    ctx,
                    Sd {
                        labels: s.labels().clone(),
                        points,
                    },
                )
            },
            &work,
        )
    }

    /// Counts decoded samples and takes a series' output points, checking `max_samples` as
    /// Prometheus does for a range function: the window may never exceed it, nor the window
    /// at the end together with the output.
    pub(crate) fn account(
        &mut self,
        decoded: u64,
        peak: usize,
        held: usize,
        out: usize,
    ) -> Result<()> {
        self.samples += decoded;
        self.take(peak)?;
        self.release(peak);
        self.take(held + out)?;
        self.release(held);
        Ok(())
    }

    /// Runs `work` over `series` in batches, in parallel when worthwhile, and calls `then` on
    /// each result in series order.
    pub(crate) fn par_series_map<T: Send, W>(
        &mut self,
        series: &[annals::Series],
        mut then: impl FnMut(&mut Self, &annals::Series, Result<T>) -> Result<()>,
        work: &W,
    ) -> Result<()>
    where
        W: Fn(&annals::Series) -> Result<T> + Sync,
    {
        const BATCH: usize = 2048;
        let threads = self.threads.max(1);
        for batch in series.chunks(BATCH) {
            self.check("expression evaluation")?;
            if threads == 1 || batch.len() < 64 {
                for s in batch {
                    then(self, s, work(s))?;
                }
                continue;
            }
            let per = batch.len().div_ceil(threads);
            let results: Vec<Vec<Result<T>>> = std::thread::scope(|sc| {
                let handles: Vec<_> = batch
                    .chunks(per)
                    .map(|part| sc.spawn(move || part.iter().map(work).collect::<Vec<_>>()))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("series workers do not panic"))
                    .collect()
            });
            for (s, r) in batch.iter().zip(results.into_iter().flatten()) {
                then(self, s, r)?;
            }
        }
        Ok(())
    }

    /// Releases `n` samples.
    #[inline]
    pub(crate) fn release(&mut self, n: usize) {
        self.cur_samples = self.cur_samples.saturating_sub(n);
    }
}

/// A consumer of streamed series. The producer has taken the series' points into the sample
/// count ([`Ctx::take`]); a consumer that drops them may release them.
pub(crate) type Sink<'s> = dyn FnMut(&mut Ctx<'_>, Sd) -> Result<()> + 's;

/// Evaluates expressions over the steps `start, start + interval, ..., end`.
pub(crate) struct Ev<'c, 'a> {
    pub(crate) ctx: &'c mut Ctx<'a>,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) interval: i64,
    /// The time Prometheus measures `@` offsets from (its `setOffsetForAtModifier` evaluation
    /// time: the query start, or the start of the subquery that last reset them): an `@ t`
    /// selector reads at `step - offset - (offset_base - t) + adjustment`, which is `t -
    /// offset` at the first step, except for Prometheus's adjustment below.
    pub(crate) offset_base: i64,
    /// Prometheus subtracts the offsets of the enclosing subqueries (since the last reset,
    /// restarted by one with `@`, plus that one's distance to `offset_base`) from an `@`
    /// selector's offset (`subqueryTimes` in `setOffsetForAtModifier`): the sum, and the `@`
    /// time of the subquery that restarted it.
    pub(crate) at_path_offset: i64,
    pub(crate) at_path_ts: Option<i64>,
    /// What Prometheus selects a selector's series over (its `getTimeRangesForSelector`): the
    /// query's start and end, shifted by the offsets and ranges of the enclosing subqueries
    /// (reset by a subquery with `@`). Samples outside a selector's range are invisible to it.
    pub(crate) sel: SelectionBase,
}

/// The query-level time range a selector's data range derives from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SelectionBase {
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// Sum of enclosing subqueries' offsets and ranges.
    pub(crate) sq_offset: i64,
    pub(crate) sq_range: i64,
    /// The `@` time of the innermost enclosing subquery that has one.
    pub(crate) sq_at: Option<i64>,
}

impl<'c, 'a> Ev<'c, 'a> {
    pub(crate) fn new(ctx: &'c mut Ctx<'a>, start: i64, end: i64, interval: i64) -> Self {
        Ev {
            ctx,
            start,
            end,
            interval,
            offset_base: start,
            at_path_offset: 0,
            at_path_ts: None,
            sel: SelectionBase {
                start,
                end,
                sq_offset: 0,
                sq_range: 0,
                sq_at: None,
            },
        }
    }

    /// A nested evaluator over other steps, sharing the context.
    pub(crate) fn nested<'d>(&'d mut self, start: i64, end: i64, interval: i64) -> Ev<'d, 'a> {
        Ev {
            ctx: self.ctx,
            start,
            end,
            interval,
            offset_base: self.offset_base,
            at_path_offset: self.at_path_offset,
            at_path_ts: self.at_path_ts,
            sel: self.sel,
        }
    }

    /// The time range Prometheus selects a selector's samples over: `range` 0 for an instant
    /// selector (the lookback delta is used), else the range of a range selector.
    pub(crate) fn selection(&self, offset: i64, at: Option<AtModifier>, range: i64) -> (i64, i64) {
        let b = &self.sel;
        let (mut s, mut e) = match b.sq_at {
            Some(t) => (t, t),
            None => (b.start, b.end),
        };
        if let Some(AtModifier::Timestamp(t)) = at {
            s = t;
            e = t;
        } else {
            s -= b.sq_offset + b.sq_range;
            e -= b.sq_offset;
        }
        s -= if range == 0 { self.ctx.lookback } else { range };
        (s - offset, e - offset)
    }

    /// Number of steps.
    pub(crate) fn steps(&self) -> usize {
        ((self.end - self.start) / self.interval) as usize + 1
    }

    /// Timestamp of step `i`.
    #[inline]
    pub(crate) fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.interval
    }

    /// Step index of a step timestamp.
    #[inline]
    pub(crate) fn step_of(&self, t: i64) -> usize {
        ((t - self.start) / self.interval) as usize
    }

    /// The offset a selector's reads are shifted by at this evaluator: its `offset`, plus for
    /// `@ t` the distance from the offset base to `t`.
    pub(crate) fn effective_offset(&self, offset: i64, at: Option<AtModifier>) -> i64 {
        match at {
            Some(AtModifier::Timestamp(t)) => {
                let mut adjust = self.at_path_offset;
                if let Some(ts) = self.at_path_ts {
                    adjust += self.offset_base - ts;
                }
                offset + (self.offset_base - t) - adjust
            }
            _ => offset,
        }
    }

    /// Evaluates an expression.
    pub(crate) fn eval(&mut self, e: &Expr) -> Result<Val> {
        self.ctx.check("expression evaluation")?;
        match e {
            Expr::Number { val, .. } => Ok(Val::Scalar(vec![*val; self.steps()])),
            Expr::String { val, .. } => Ok(Val::String(val.clone())),
            Expr::Paren { expr, .. } => self.eval(expr),
            Expr::StepInvariant(inner) => self.eval_step_invariant(inner),
            Expr::Matrix(ms) => {
                if self.start != self.end {
                    return Err(exec("cannot do range evaluation of matrix selector"));
                }
                Ok(Val::Matrix(self.matrix_selector(ms)?))
            }
            Expr::Subquery(sq) => Ok(Val::Matrix(self.subquery(sq)?)),
            Expr::Binary(b)
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar =>
            {
                let l = self.eval_scalar(&b.lhs)?;
                let r = self.eval_scalar(&b.rhs)?;
                Ok(Val::Scalar(
                    l.into_iter()
                        .zip(r)
                        .map(|(l, r)| binary::scalar_binop(b.op, l, r))
                        .collect(),
                ))
            }
            Expr::Unary { neg, expr, .. } if expr.value_type() == ValueType::Scalar => {
                let v = self.eval_scalar(expr)?;
                Ok(Val::Scalar(if *neg {
                    v.into_iter().map(|x| -x).collect()
                } else {
                    v
                }))
            }
            Expr::Call(c) if c.func.return_type == ValueType::Scalar => {
                Ok(Val::Scalar(self.scalar_call(c)?))
            }
            _ => {
                // As Prometheus: once a node is evaluated, what its inputs held is released and
                // its output is held.
                let before = self.ctx.cur_samples;
                let unique = labels_unique(e);
                let mut out = Collector::new(unique);
                self.stream(e, &mut |_, sd| {
                    out.push(sd);
                    Ok(())
                })?;
                let out = out.finish();
                self.ctx.cur_samples = before;
                self.ctx.take(out.iter().map(|s| s.points.len()).sum())?;
                Ok(Val::Vector(out))
            }
        }
    }

    /// Evaluates a scalar expression: one value per step.
    pub(crate) fn eval_scalar(&mut self, e: &Expr) -> Result<Vec<f64>> {
        match self.eval(e)? {
            Val::Scalar(v) => Ok(v),
            other => Err(exec(format!("expected a scalar, got {other:?}"))),
        }
    }

    /// Evaluates an instant-vector expression into its series.
    pub(crate) fn eval_vector(&mut self, e: &Expr) -> Result<Vec<Sd>> {
        match self.eval(e)? {
            Val::Vector(v) => Ok(v),
            other => Err(exec(format!("expected an instant vector, got {other:?}"))),
        }
    }

    /// Produces the series of an instant-vector expression one at a time into `sink`. Series
    /// may repeat labels (at disjoint steps) only where [`labels_unique`] says so.
    pub(crate) fn stream(&mut self, e: &Expr, sink: &mut Sink<'_>) -> Result<()> {
        match e {
            Expr::Paren { expr, .. } => self.stream(expr, sink),
            Expr::Vector(vs) => self.vector_selector(vs, sink),
            Expr::Call(c) => self.call(c, sink),
            Expr::Aggregate(a) => self.aggregate(a, sink),
            Expr::Binary(b) => self.binary(b, sink),
            Expr::Unary { neg, expr, .. } => {
                if !*neg {
                    return self.stream(expr, sink);
                }
                // Prometheus negates the whole matrix and then checks it for duplicates.
                let mut seen = SeriesCollision::default();
                self.stream(expr, &mut |ctx, mut sd| {
                    sd.labels = labels::drop_metric_name(&sd.labels);
                    for p in &mut sd.points {
                        p.v = -p.v;
                    }
                    seen.check(&sd.labels)?;
                    sink(ctx, sd)
                })
            }
            Expr::StepInvariant(_) => match self.eval(e)? {
                Val::Vector(v) => {
                    for sd in v {
                        sink(self.ctx, sd)?;
                    }
                    Ok(())
                }
                other => Err(exec(format!("expected an instant vector, got {other:?}"))),
            },
            other => Err(exec(format!(
                "unexpected expression in vector context: {other}"
            ))),
        }
    }

    /// Evaluates a step-invariant subtree once, at the first step, and repeats its value.
    fn eval_step_invariant(&mut self, inner: &Expr) -> Result<Val> {
        if let Expr::Number { .. } | Expr::String { .. } = inner {
            return self.eval(inner);
        }
        let steps = self.steps();
        let (start, interval) = (self.start, self.interval);
        let val = self.nested(start, start, interval).eval(inner)?;
        Ok(match val {
            Val::Scalar(v) => Val::Scalar(vec![v[0]; steps]),
            Val::Vector(series) if steps > 1 => {
                let mut out = Vec::with_capacity(series.len());
                for sd in series {
                    self.ctx.take(steps - 1)?;
                    let v = sd.points[0].v;
                    let points = (0..steps)
                        .map(|i| Point {
                            t: start + i as i64 * interval,
                            v,
                        })
                        .collect();
                    out.push(Sd {
                        labels: sd.labels,
                        points,
                    });
                }
                Val::Vector(out)
            }
            other => other,
        })
    }
}

/// Whether the series an expression streams have unique labels (true) or may repeat labels at
/// disjoint steps, as Prometheus's per-step evaluation merges them (false).
fn labels_unique(e: &Expr) -> bool {
    match e {
        Expr::Paren { expr, .. } => labels_unique(expr),
        Expr::Vector(_) | Expr::Aggregate(_) | Expr::Unary { .. } => true,
        Expr::Call(c) => call::streams_unique_labels(c),
        Expr::Binary(b) => binary::streams_unique_labels(b),
        _ => true,
    }
}

/// Collects streamed series into a vector, merging series with equal labels when they may
/// repeat.
pub(crate) struct Collector {
    out: Vec<Sd>,
    index: Option<std::collections::HashMap<Labels, usize>>,
    merged: bool,
}

impl Collector {
    pub(crate) fn new(unique: bool) -> Self {
        Collector {
            out: Vec::new(),
            index: (!unique).then(Default::default),
            merged: false,
        }
    }

    pub(crate) fn push(&mut self, sd: Sd) {
        if sd.points.is_empty() {
            return;
        }
        if let Some(index) = &mut self.index {
            if let Some(&i) = index.get(&sd.labels) {
                self.out[i].points.extend(sd.points);
                self.merged = true;
                return;
            }
            index.insert(sd.labels.clone(), self.out.len());
        }
        self.out.push(sd);
    }

    pub(crate) fn finish(mut self) -> Vec<Sd> {
        if self.merged {
            for s in &mut self.out {
                s.points.sort_by_key(|p| p.t);
            }
        }
        self.out
    }
}

/// Checks per-step uniqueness of the labels a label-changing map produces.
pub(crate) fn new_step_collision(ev: &Ev<'_, '_>) -> StepCollision {
    StepCollision::new(ev.start, ev.interval, ev.steps())
}
