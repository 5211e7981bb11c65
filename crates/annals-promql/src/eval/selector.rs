//! Reading the database: instant selectors (lookback per step), range selectors (a window per
//! step), and subqueries.
//!
//! Each series is read once for all steps: an instant selector keeps the last sample at or
//! before each step's reference time; a range selector keeps a buffer of the samples of the
//! current window and slides it. Where consecutive windows are far apart the reader seeks, so
//! chunks between them are not decoded.

use annals::{Matcher, SampleIter};

use super::{Ctx, Ev, Sd, Sink};
use crate::error::{Error, Result};
use crate::parser::{AtModifier, MatrixSelector, SubqueryExpr, VectorSelector};
use crate::value::{is_stale_nan, Point};

/// The series matching `matchers` that may have samples in `[mint, maxt]` (a superset:
/// readers clip to the range).
///
/// The querier is asked for a range that starts where the block holding `mint` starts (or up
/// to two hours earlier in the head): whole chunks then lie inside it, and the querier proves
/// a series non-empty from its chunk bounds instead of decoding samples up to `mint` — which
/// the evaluation then decodes again. Series found only in the widened part yield nothing.
pub(crate) fn select(
    ctx: &mut Ctx<'_>,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
) -> Result<Vec<annals::Series>> {
    if mint > maxt {
        return Ok(Vec::new());
    }
    let last_block_end = ctx.blocks.last().map_or(i64::MIN, |b| b.1);
    let qmint = match ctx.blocks.iter().find(|b| b.0 <= mint && mint < b.1) {
        Some(b) => b.0,
        None if mint >= last_block_end => mint
            .saturating_sub(2 * 3_600_000)
            .max(last_block_end)
            .min(mint),
        None => mint,
    };
    let q = ctx.src.querier(qmint, maxt)?;
    let series: Vec<annals::Series> = q.select(matchers)?.collect();
    ctx.series += series.len() as u64;
    Ok(series)
}

/// A sample reader over one series that counts what it decodes.
pub(crate) struct Reader<'s> {
    it: SampleIter<'s>,
    pub(crate) decoded: u64,
}

impl<'s> Reader<'s> {
    pub(crate) fn new(s: &'s annals::Series) -> Self {
        Reader {
            it: s.samples(),
            decoded: 0,
        }
    }

    #[inline]
    pub(crate) fn next(&mut self) -> Result<Option<Point>> {
        match self.it.next() {
            None => Ok(None),
            Some(Ok(s)) => {
                self.decoded += 1;
                Ok(Some(Point { t: s.t, v: s.v }))
            }
            Some(Err(e)) => Err(Error::Storage(e)),
        }
    }

    /// The first sample at or after `t` not returned yet.
    pub(crate) fn seek(&mut self, t: i64) -> Result<Option<Point>> {
        match self.it.seek(t) {
            None => Ok(None),
            Some(Ok(s)) => {
                self.decoded += 1;
                Ok(Some(Point { t: s.t, v: s.v }))
            }
            Some(Err(e)) => Err(Error::Storage(e)),
        }
    }
}

/// Reads from `pending` on, keeping for each reference time the last sample at or before it.
/// Samples outside `[lo, hi]` (the selection Prometheus reads) are invisible.
pub(crate) struct Lookback<'s> {
    r: Reader<'s>,
    lo: i64,
    hi: i64,
    /// The next sample not yet consumed.
    pending: Option<Point>,
    /// The last consumed sample.
    last: Option<Point>,
    started: bool,
}

impl<'s> Lookback<'s> {
    pub(crate) fn new(s: &'s annals::Series, lo: i64, hi: i64) -> Self {
        Lookback {
            r: Reader::new(s),
            lo,
            hi,
            pending: None,
            last: None,
            started: false,
        }
    }

    /// The sample Prometheus's instant selector returns at `reft`: the last sample at or
    /// before `reft`, if it is at most `lookback` older and not a stale marker. Reference
    /// times must not decrease between calls.
    pub(crate) fn at(&mut self, reft: i64, lookback: i64) -> Result<Option<Point>> {
        let from = reft - lookback;
        let seek_to = from.max(self.lo);
        if !self.started {
            self.started = true;
            self.pending = self.r.seek(seek_to)?;
        } else if self.pending.is_some_and(|p| p.t < seek_to) {
            // Nothing before `from` matters: skip, letting whole chunks go undecoded.
            self.last = None;
            self.pending = self.r.seek(seek_to)?;
        }
        while let Some(p) = self.pending {
            if p.t > reft || p.t > self.hi {
                break;
            }
            self.last = Some(p);
            self.pending = self.r.next()?;
        }
        Ok(self.last.filter(|p| p.t >= from && !is_stale_nan(p.v)))
    }

    pub(crate) fn decoded(&self) -> u64 {
        self.r.decoded
    }
}

/// A sliding window over a series' samples (stale markers dropped), for range functions.
/// Samples outside `[lo, hi]` (the selection Prometheus reads) are invisible.
pub(crate) struct Window<'s> {
    r: Reader<'s>,
    lo: i64,
    hi: i64,
    buf: Vec<Point>,
    head: usize,
    pending: Option<Point>,
    started: bool,
    done: bool,
    /// Most samples the window held at once.
    pub(crate) peak: usize,
}

impl<'s> Window<'s> {
    pub(crate) fn new(s: &'s annals::Series, lo: i64, hi: i64) -> Self {
        Window {
            r: Reader::new(s),
            lo,
            hi,
            buf: Vec::new(),
            head: 0,
            pending: None,
            started: false,
            done: false,
            peak: 0,
        }
    }

    /// The samples in `[mint, maxt]` (closed, as Prometheus 2.x). Windows must not move
    /// backwards.
    pub(crate) fn slide(&mut self, mint: i64, maxt: i64) -> Result<&[Point]> {
        let (mint, maxt) = (mint.max(self.lo), maxt.min(self.hi));
        // Drop what fell out of the window.
        let drop = self.buf[self.head..]
            .iter()
            .take_while(|p| p.t < mint)
            .count();
        self.head += drop;
        if self.head > 1024 && self.head * 2 > self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        if !self.started {
            self.started = true;
            self.pending = self.r.seek(mint)?;
            self.done = self.pending.is_none();
        } else if self.head == self.buf.len() && self.pending.is_some_and(|p| p.t < mint) {
            self.pending = self.r.seek(mint)?;
            self.done = self.pending.is_none();
        }
        while let Some(p) = self.pending {
            if p.t > maxt {
                break;
            }
            if p.t >= mint && !is_stale_nan(p.v) {
                self.buf.push(p);
            }
            self.pending = self.r.next()?;
            if self.pending.is_none() {
                self.done = true;
            }
        }
        self.peak = self.peak.max(self.buf.len() - self.head);
        Ok(&self.buf[self.head..])
    }

    /// Samples the window holds now.
    pub(crate) fn held(&self) -> usize {
        self.buf.len() - self.head
    }

    pub(crate) fn decoded(&self) -> u64 {
        self.r.decoded
    }
}

/// Windows over points already in memory (subquery results).
pub(crate) struct SliceWindow<'p> {
    points: &'p [Point],
    lo: usize,
    hi: usize,
}

impl<'p> SliceWindow<'p> {
    pub(crate) fn new(points: &'p [Point]) -> Self {
        SliceWindow {
            points,
            lo: 0,
            hi: 0,
        }
    }

    pub(crate) fn slide(&mut self, mint: i64, maxt: i64) -> &'p [Point] {
        while self.lo < self.points.len() && self.points[self.lo].t < mint {
            self.lo += 1;
        }
        if self.hi < self.lo {
            self.hi = self.lo;
        }
        while self.hi < self.points.len() && self.points[self.hi].t <= maxt {
            self.hi += 1;
        }
        &self.points[self.lo..self.hi]
    }
}

impl Ev<'_, '_> {
    /// The reference-time offset of a selector for the steps of this evaluator.
    pub(crate) fn selector_offset(&self, vs: &VectorSelector) -> i64 {
        self.effective_offset(vs.offset, vs.at)
    }

    /// Streams the series of an instant vector selector with their value at every step.
    pub(crate) fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let off = self.selector_offset(vs);
        let lookback = self.ctx.lookback;
        let (mint, maxt) = self.selection(vs.offset, vs.at, 0);
        let series = select(self.ctx, &vs.matchers, mint, maxt)?;
        let steps: Vec<i64> = (0..self.steps()).map(|i| self.ts(i)).collect();
        let limits = self.ctx.limits();
        self.ctx.par_series(&series, sink, |s| {
            let mut lb = Lookback::new(s, mint, maxt);
            let mut points = Vec::with_capacity(steps.len().min(4096));
            for (i, &ts) in steps.iter().enumerate() {
                if i % 1024 == 1023 {
                    limits.check()?;
                }
                if let Some(p) = lb.at(ts - off, lookback)? {
                    points.push(Point { t: ts, v: p.v });
                }
            }
            Ok((points, lb.decoded(), 0, 0))
        })
    }

    /// `timestamp(selector)`: the timestamp of the sample each step selects (Prometheus reads
    /// `@ t` selectors here at `t` itself, ignoring their offset).
    pub(crate) fn vector_selector_timestamps(
        &mut self,
        vs: &VectorSelector,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let lookback = self.ctx.lookback;
        let (mint, maxt) = self.selection(vs.offset, vs.at, 0);
        let series = select(self.ctx, &vs.matchers, mint, maxt)?;
        let steps = self.steps();
        for s in &series {
            self.ctx.tick()?;
            let mut lb = Lookback::new(s, mint, maxt);
            let mut points = Vec::new();
            for i in 0..steps {
                let ts = self.ts(i);
                let reft = match vs.at {
                    Some(AtModifier::Timestamp(t)) => t,
                    _ => ts - vs.offset,
                };
                if let Some(p) = lb.at(reft, lookback)? {
                    self.ctx.take(1)?;
                    points.push(Point {
                        t: ts,
                        v: p.t as f64 / 1000.0,
                    });
                }
            }
            self.ctx.samples += lb.decoded();
            if !points.is_empty() {
                let labels = super::labels::drop_metric_name(s.labels());
                sink(self.ctx, Sd { labels, points })?;
            }
        }
        Ok(())
    }

    /// An instant query of a range selector: each series' samples in the range.
    pub(crate) fn matrix_selector(&mut self, ms: &MatrixSelector) -> Result<Vec<Sd>> {
        let off = self.selector_offset(&ms.vs);
        let maxt = self.start - off;
        let mint = maxt - ms.range;
        let (lo, hi) = self.selection(ms.vs.offset, ms.vs.at, ms.range);
        let series = select(self.ctx, &ms.vs.matchers, lo, hi)?;
        let mut out = Vec::new();
        for s in &series {
            self.ctx.check("expression evaluation")?;
            let mut w = Window::new(s, lo, hi);
            let points = w.slide(mint, maxt)?.to_vec();
            self.ctx.take(points.len())?;
            self.ctx.samples += w.decoded();
            if !points.is_empty() {
                out.push(Sd {
                    labels: s.labels().clone(),
                    points,
                });
            }
        }
        Ok(out)
    }

    /// Evaluates a subquery's inner expression at its own steps: the matrix a range function
    /// then slides its windows over (or an instant query returns).
    pub(crate) fn subquery(&mut self, sq: &SubqueryExpr) -> Result<Vec<Sd>> {
        let off = self.effective_offset(sq.offset, sq.at);
        let interval = if sq.step != 0 {
            sq.step
        } else {
            self.ctx.subquery_step
        };
        let lo = self.start - off - sq.range;
        // The first step at or after `lo` that is a multiple of the interval (Go division
        // truncates towards zero, which is a ceiling for negative values).
        let mut start = interval * (lo / interval);
        if start < lo {
            start += interval;
        }
        let end = self.end - off;
        if start > end {
            return Ok(Vec::new());
        }
        let base_changes = start != self.start;
        let mut ev = self.nested(start, end, interval);
        if base_changes {
            // Prometheus re-bases the `@` offsets inside on the subquery's start.
            ev.offset_base = start;
            ev.at_path_offset = 0;
            ev.at_path_ts = None;
        } else {
            // It does not, and this subquery stays in the path its `subqueryTimes` sums.
            match sq.at {
                Some(AtModifier::Timestamp(t)) => {
                    ev.at_path_offset = sq.offset;
                    ev.at_path_ts = Some(t);
                }
                _ => ev.at_path_offset += sq.offset,
            }
        }
        // Prometheus's `subqueryTimes`: offsets and ranges add up; `@` resets them.
        match sq.at {
            Some(AtModifier::Timestamp(t)) => {
                ev.sel.sq_offset = sq.offset;
                ev.sel.sq_range = sq.range;
                ev.sel.sq_at = Some(t);
            }
            _ => {
                ev.sel.sq_offset += sq.offset;
                ev.sel.sq_range += sq.range;
            }
        }
        ev.eval_vector(&sq.expr)
    }
}
