//! Function calls: range functions slide a window over each series of their range argument;
//! value-mapping functions stream; the rest work step by step on a materialised vector.

use std::collections::HashMap;

use annals::Labels;

use super::collide::SeriesCollision;
use super::labels::{self, drop_metric_name, from_pairs, is_valid_label_name};
use super::selector::{select, SliceWindow, Window};
use super::{new_step_collision, Ev, Sd, Sink};
use crate::error::{exec, Result};
use crate::functions::{histogram, instant, range, FuncId};
use crate::gosort;
use crate::parser::{parse_go_float, Call, Expr, ValueType};
use crate::value::Point;

/// Whether a call streams series with unique labels; `false` when it rewrites labels so that
/// two input series may map to one label set (at disjoint steps).
pub(super) fn streams_unique_labels(c: &Call) -> bool {
    use FuncId::*;
    match c.func.id {
        Absent | AbsentOverTime | Vector | Sort | SortDesc | HistogramCount | HistogramSum
        | HistogramFraction => true,
        DaysInMonth | DayOfMonth | DayOfWeek | DayOfYear | Hour | Minute | Month | Year => {
            c.args.is_empty()
        }
        _ if matrix_arg(c).is_some() => true,
        _ => false,
    }
}

/// The index of the range-vector argument, if any.
fn matrix_arg(c: &Call) -> Option<usize> {
    c.args
        .iter()
        .position(|a| matches!(a.unwrap_parens(), Expr::Matrix(_) | Expr::Subquery(_)))
}

/// The labels `absent()` gives its result: those matched with `=` exactly once, of a selector
/// argument.
fn absent_labels(arg: &Expr) -> Labels {
    let matchers = match arg.unwrap_parens() {
        Expr::Vector(vs) => &vs.matchers,
        Expr::Matrix(ms) => &ms.vs.matchers,
        _ => return Labels::empty(),
    };
    let mut set: Vec<(&str, &str)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name() == "__name__" {
            continue;
        }
        if m.kind() == annals::MatchType::Equal && !seen.contains(&m.name()) {
            set.retain(|(n, _)| *n != m.name());
            set.push((m.name(), m.value()));
            seen.push(m.name());
        } else {
            set.retain(|(n, _)| *n != m.name());
        }
    }
    from_pairs(set)
}

/// Per step, the (series index, value) pairs of a materialised vector, in series order.
pub(crate) struct ByStep {
    offsets: Vec<u32>,
    items: Vec<(u32, f64)>,
}

impl ByStep {
    pub(crate) fn new(ev: &Ev<'_, '_>, series: &[Sd]) -> Self {
        let steps = ev.steps();
        let mut counts = vec![0u32; steps + 1];
        for s in series {
            for p in &s.points {
                counts[ev.step_of(p.t) + 1] += 1;
            }
        }
        for i in 1..=steps {
            counts[i] += counts[i - 1];
        }
        let mut fill = counts.clone();
        let mut items = vec![(0u32, 0.0f64); counts[steps] as usize];
        for (si, s) in series.iter().enumerate() {
            for p in &s.points {
                let k = ev.step_of(p.t);
                items[fill[k] as usize] = (si as u32, p.v);
                fill[k] += 1;
            }
        }
        ByStep {
            offsets: counts,
            items,
        }
    }

    #[inline]
    pub(crate) fn at(&self, step: usize) -> &[(u32, f64)] {
        &self.items[self.offsets[step] as usize..self.offsets[step + 1] as usize]
    }
}

impl Ev<'_, '_> {
    /// Evaluates a scalar-valued call (`scalar`, `time`, `pi`).
    pub(crate) fn scalar_call(&mut self, c: &Call) -> Result<Vec<f64>> {
        let steps = self.steps();
        match c.func.id {
            FuncId::Time => Ok((0..steps).map(|i| self.ts(i) as f64 / 1000.0).collect()),
            FuncId::Pi => Ok(vec![std::f64::consts::PI; steps]),
            FuncId::Scalar => {
                let v = self.eval_vector(&c.args[0])?;
                let by = ByStep::new(self, &v);
                Ok((0..steps)
                    .map(|i| match by.at(i) {
                        [(_, v)] => *v,
                        _ => f64::NAN,
                    })
                    .collect())
            }
            other => Err(exec(format!("{other:?} does not return a scalar"))),
        }
    }

    /// Streams the result of a vector-valued call.
    pub(crate) fn call(&mut self, c: &Call, sink: &mut Sink<'_>) -> Result<()> {
        use FuncId::*;
        let id = c.func.id;
        if id == Timestamp {
            if let Expr::Vector(vs) = c.args[0].unwrap_parens() {
                return self.vector_selector_timestamps(vs, sink);
            }
        }
        if let Some(i) = matrix_arg(c) {
            return self.range_call(c, i, sink);
        }
        let steps = self.steps();
        match id {
            Absent => {
                let v = self.eval_vector(&c.args[0])?;
                let mut present = vec![false; steps];
                for s in &v {
                    for p in &s.points {
                        present[self.step_of(p.t)] = true;
                    }
                }
                let points: Vec<Point> = (0..steps)
                    .filter(|&i| !present[i])
                    .map(|i| Point {
                        t: self.ts(i),
                        v: 1.0,
                    })
                    .collect();
                if !points.is_empty() {
                    self.ctx.take(points.len())?;
                    sink(
                        self.ctx,
                        Sd {
                            labels: absent_labels(&c.args[0]),
                            points,
                        },
                    )?;
                }
                Ok(())
            }
            Vector => {
                let v = self.eval_scalar(&c.args[0])?;
                let points: Vec<Point> = v
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Point { t: self.ts(i), v })
                    .collect();
                self.ctx.take(points.len())?;
                sink(
                    self.ctx,
                    Sd {
                        labels: Labels::empty(),
                        points,
                    },
                )
            }
            DaysInMonth | DayOfMonth | DayOfWeek | DayOfYear | Hour | Minute | Month | Year
                if c.args.is_empty() =>
            {
                let points: Vec<Point> = (0..steps)
                    .map(|i| {
                        let ts = self.ts(i);
                        Point {
                            t: ts,
                            v: instant::date_part(id, ts / 1000),
                        }
                    })
                    .collect();
                self.ctx.take(points.len())?;
                sink(
                    self.ctx,
                    Sd {
                        labels: Labels::empty(),
                        points,
                    },
                )
            }
            HistogramCount | HistogramSum | HistogramFraction => {
                // Only native histograms have these; float samples give nothing.
                for a in &c.args {
                    self.eval(a)?;
                }
                Ok(())
            }
            HistogramQuantile => self.histogram_quantile(c, sink),
            Sort | SortDesc => {
                if steps > 1 {
                    // Order within a step does not survive a range query's result.
                    return self.stream(&c.args[0], sink);
                }
                let mut v = self.eval_vector(&c.args[0])?;
                // Prometheus sorts with a reversed heap order: ascending (descending) with NaN
                // last.
                if id == SortDesc {
                    gosort::sort(&mut v, |a, b| {
                        let (x, y) = (a.points[0].v, b.points[0].v);
                        y.is_nan() || y < x
                    });
                } else {
                    gosort::sort(&mut v, |a, b| {
                        let (x, y) = (a.points[0].v, b.points[0].v);
                        y.is_nan() || x < y
                    });
                }
                for sd in v {
                    sink(self.ctx, sd)?;
                }
                Ok(())
            }
            LabelReplace => self.label_replace(c, sink),
            LabelJoin => self.label_join(c, sink),
            Timestamp => {
                let mut seen = new_step_collision(self);
                self.stream(&c.args[0], &mut |ctx, mut sd| {
                    sd.labels = drop_metric_name(&sd.labels);
                    for p in &mut sd.points {
                        p.v = p.t as f64 / 1000.0;
                    }
                    seen.check(&sd.labels, &sd.points)?;
                    sink(ctx, sd)
                })
            }
            _ => self.map_call(c, sink),
        }
    }

    /// Functions mapping each value, with scalar arguments evaluated per step.
    fn map_call(&mut self, c: &Call, sink: &mut Sink<'_>) -> Result<()> {
        let id = c.func.id;
        let mut scalars = Vec::new();
        for a in &c.args[1..] {
            scalars.push(self.eval_scalar(a)?);
        }
        let (start, interval) = (self.start, self.interval);
        let mut seen = new_step_collision(self);
        let mut args = Vec::with_capacity(scalars.len());
        self.stream(&c.args[0], &mut |ctx, mut sd| {
            sd.labels = drop_metric_name(&sd.labels);
            sd.points.retain_mut(|p| {
                let step = ((p.t - start) / interval) as usize;
                args.clear();
                args.extend(scalars.iter().map(|s| s[step]));
                if id == FuncId::Clamp && args[1] < args[0] {
                    return false;
                }
                p.v = instant::map_value(id, p.v, &args);
                true
            });
            if sd.points.is_empty() {
                return Ok(());
            }
            seen.check(&sd.labels, &sd.points)?;
            sink(ctx, sd)
        })
    }

    fn string_arg(c: &Call, i: usize) -> &str {
        match c.args[i].unwrap_parens() {
            Expr::String { val, .. } => val,
            _ => "",
        }
    }

    fn label_replace(&mut self, c: &Call, sink: &mut Sink<'_>) -> Result<()> {
        let dst = Self::string_arg(c, 1).to_owned();
        let repl = Self::string_arg(c, 2).to_owned();
        let src = Self::string_arg(c, 3).to_owned();
        let re_str = Self::string_arg(c, 4);
        let re = annals::GoRegex::new(re_str).map_err(|_| {
            exec(format!(
                "invalid regular expression in label_replace(): {re_str}"
            ))
        })?;
        if !is_valid_label_name(&dst) {
            return Err(exec(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let mut seen = new_step_collision(self);
        self.stream(&c.args[0], &mut |ctx, mut sd| {
            let src_val = sd.labels.get(&src).unwrap_or("");
            if let Some(res) = re.expand(src_val, &repl) {
                sd.labels = labels::set(&sd.labels, &dst, &res);
            }
            seen.check(&sd.labels, &sd.points)?;
            sink(ctx, sd)
        })
    }

    fn label_join(&mut self, c: &Call, sink: &mut Sink<'_>) -> Result<()> {
        let dst = Self::string_arg(c, 1).to_owned();
        let sep = Self::string_arg(c, 2).to_owned();
        let mut srcs = Vec::new();
        for i in 3..c.args.len() {
            let s = Self::string_arg(c, i);
            if !is_valid_label_name(s) {
                return Err(exec(format!(
                    "invalid source label name in label_join(): {s}"
                )));
            }
            srcs.push(s.to_owned());
        }
        if !is_valid_label_name(&dst) {
            return Err(exec(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let mut seen = new_step_collision(self);
        self.stream(&c.args[0], &mut |ctx, mut sd| {
            let joined = srcs
                .iter()
                .map(|s| sd.labels.get(s).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(&sep);
            sd.labels = labels::set(&sd.labels, &dst, &joined);
            seen.check(&sd.labels, &sd.points)?;
            sink(ctx, sd)
        })
    }

    fn histogram_quantile(&mut self, c: &Call, sink: &mut Sink<'_>) -> Result<()> {
        let q = self.eval_scalar(&c.args[0])?;
        let v = self.eval_vector(&c.args[1])?;
        // Group series by their labels without `le` (the metric name included), once.
        let mut groups: HashMap<Labels, usize> = HashMap::new();
        let mut group_labels: Vec<Labels> = Vec::new();
        let mut series_group: Vec<Option<(usize, f64)>> = Vec::with_capacity(v.len());
        for s in &v {
            let Some(le) = s.labels.get("le").and_then(|le| parse_go_float(le).ok()) else {
                series_group.push(None);
                continue;
            };
            let key = labels::without(&s.labels, &["le".to_owned()], false);
            let n = groups.len();
            let g = *groups.entry(key).or_insert(n);
            if g == group_labels.len() {
                group_labels.push(labels::without(
                    &s.labels,
                    &["le".to_owned(), "__name__".to_owned()],
                    true,
                ));
            }
            series_group.push(Some((g, le)));
        }
        let by = ByStep::new(self, &v);
        let steps = self.steps();
        let mut out: Vec<Vec<Point>> = vec![Vec::new(); group_labels.len()];
        let mut buckets: Vec<Vec<histogram::Bucket>> = vec![Vec::new(); group_labels.len()];
        let mut order: Vec<usize> = Vec::new();
        let mut out_order: Vec<usize> = Vec::new();
        for (step, &q) in q.iter().enumerate().take(steps) {
            self.ctx.tick()?;
            order.clear();
            for &(si, val) in by.at(step) {
                if let Some((g, le)) = series_group[si as usize] {
                    if buckets[g].is_empty() {
                        order.push(g);
                    }
                    buckets[g].push(histogram::Bucket {
                        upper: le,
                        count: val,
                    });
                }
            }
            let ts = self.ts(step);
            for &g in &order {
                let value = histogram::bucket_quantile(q, &mut buckets[g]);
                buckets[g].clear();
                if out[g].is_empty() {
                    out_order.push(g);
                }
                out[g].push(Point { t: ts, v: value });
            }
        }
        let mut seen = new_step_collision(self);
        for g in out_order {
            let points = std::mem::take(&mut out[g]);
            self.ctx.take(points.len())?;
            seen.check(&group_labels[g], &points)?;
            sink(
                self.ctx,
                Sd {
                    labels: group_labels[g].clone(),
                    points,
                },
            )?;
        }
        Ok(())
    }

    /// A function of a range vector: for every series, slide the window over the steps.
    fn range_call(&mut self, c: &Call, mi: usize, sink: &mut Sink<'_>) -> Result<()> {
        let id = c.func.id;
        let arg = c.args[mi].unwrap_parens();
        let sub = match arg {
            Expr::Subquery(sq) => Some(self.subquery(sq)?),
            _ => None,
        };
        // Scalar arguments, one value per step.
        let mut scalars: Vec<Vec<f64>> = Vec::new();
        for (i, a) in c.args.iter().enumerate() {
            if i != mi {
                debug_assert_eq!(a.value_type(), ValueType::Scalar);
                scalars.push(self.eval_scalar(a)?);
            }
        }
        let (offset, range) = match arg {
            Expr::Matrix(ms) => (self.selector_offset(&ms.vs), ms.range),
            Expr::Subquery(sq) => (self.effective_offset(sq.offset, sq.at), sq.range),
            _ => unreachable!("matrix_arg found a range vector"),
        };
        let steps = self.steps();
        let p = RangeParams {
            id,
            offset,
            range,
            scalars,
            steps: (0..steps).map(|i| self.ts(i)).collect(),
        };
        let mut dup = SeriesCollision::default();
        let mut covered = vec![
            false;
            if id == FuncId::AbsentOverTime {
                steps
            } else {
                0
            }
        ];
        let keep_name = id == FuncId::LastOverTime;
        let (start, interval) = (self.start, self.interval);
        // Marks absent_over_time's covered steps, checks duplicates, renames.
        let mut emit =
            |ctx: &mut super::Ctx<'_>, labels: &Labels, points: Vec<Point>| -> Result<()> {
                if points.is_empty() {
                    return Ok(());
                }
                if id == FuncId::AbsentOverTime {
                    for pt in &points {
                        covered[((pt.t - start) / interval) as usize] = true;
                    }
                    return Ok(());
                }
                ctx.take(points.len())?;
                let labels = if keep_name {
                    labels.clone()
                } else {
                    drop_metric_name(labels)
                };
                dup.check(&labels)?;
                sink(ctx, Sd { labels, points })
            };
        match (arg, sub) {
            (Expr::Matrix(ms), _) => {
                let (lo, hi) = self.selection(ms.vs.offset, ms.vs.at, ms.range);
                let series = select(self.ctx, &ms.vs.matchers, lo, hi)?;
                let limits = self.ctx.limits();
                let work = |s: &annals::Series| -> Result<(Vec<Point>, u64, usize, usize)> {
                    let mut w = Window::new(s, lo, hi);
                    let points = range_points(&p, &mut w, &limits)?;
                    Ok((points, w.decoded(), w.peak, w.held()))
                };
                self.ctx.par_series_map(
                    &series,
                    |ctx, s, r| {
                        let (points, decoded, peak, held) = r?;
                        ctx.account(decoded, peak, held, points.len())?;
                        ctx.release(points.len());
                        emit(ctx, s.labels(), points)
                    },
                    &work,
                )?;
            }
            (_, Some(sub)) => {
                let limits = self.ctx.limits();
                for s in &sub {
                    self.ctx.tick()?;
                    let mut w = SliceWindow::new(&s.points);
                    let points = range_points(&p, &mut w, &limits)?;
                    emit(self.ctx, &s.labels, points)?;
                }
                self.ctx.release(sub.iter().map(|s| s.points.len()).sum());
            }
            _ => unreachable!("a subquery was evaluated"),
        }
        if id == FuncId::AbsentOverTime {
            let points: Vec<Point> = (0..steps)
                .filter(|&i| !covered[i])
                .map(|i| Point {
                    t: self.ts(i),
                    v: 1.0,
                })
                .collect();
            if !points.is_empty() {
                self.ctx.take(points.len())?;
                let labels = match arg {
                    Expr::Matrix(_) => absent_labels(arg),
                    _ => Labels::empty(),
                };
                sink(self.ctx, Sd { labels, points })?;
            }
        }
        Ok(())
    }
}

/// What a range function needs besides the series: shared by the threads evaluating series.
struct RangeParams {
    id: FuncId,
    offset: i64,
    range: i64,
    scalars: Vec<Vec<f64>>,
    steps: Vec<i64>,
}

/// Where a range function's windows come from.
trait WindowSource {
    fn slide_to(&mut self, mint: i64, maxt: i64) -> Result<&[Point]>;
}

impl WindowSource for Window<'_> {
    fn slide_to(&mut self, mint: i64, maxt: i64) -> Result<&[Point]> {
        self.slide(mint, maxt)
    }
}

impl WindowSource for SliceWindow<'_> {
    fn slide_to(&mut self, mint: i64, maxt: i64) -> Result<&[Point]> {
        Ok(self.slide(mint, maxt))
    }
}

/// The function's value at every step for one series, from its windows.
fn range_points(
    p: &RangeParams,
    window: &mut dyn WindowSource,
    limits: &super::Limits,
) -> Result<Vec<Point>> {
    let mut points = Vec::with_capacity(p.steps.len().min(4096));
    let mut a = range::RangeArgs {
        ts: 0,
        range: p.range,
        range_start: 0,
        range_end: 0,
        scalars: [0.0; 2],
    };
    for (i, &ts) in p.steps.iter().enumerate() {
        if i % 1024 == 1023 {
            limits.check()?;
        }
        let maxt = ts - p.offset;
        let mint = maxt - p.range;
        let w = window.slide_to(mint, maxt)?;
        if w.is_empty() {
            continue;
        }
        a.ts = ts;
        a.range_start = mint;
        a.range_end = maxt;
        for (k, s) in p.scalars.iter().take(2).enumerate() {
            a.scalars[k] = s[i];
        }
        if let Some(v) = range::eval(p.id, w, &a)? {
            points.push(Point { t: ts, v });
        }
    }
    Ok(points)
}
