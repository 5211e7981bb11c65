//! Aggregations, folded as the input series stream in: each series updates its group's
//! accumulator at each of its steps, in input order (the order Prometheus folds in), and is
//! then dropped.

use std::collections::HashMap;

use annals::Labels;

use super::labels::{self, is_valid_label_name};
use super::{Ctx, Ev, Sd, Sink};
use crate::error::{exec, Result};
use crate::functions::range::quantile;
use crate::gosort::{self, Heap};
use crate::parser::{format_float, go_format_g, go_quote, AggOp, AggregateExpr, Expr};
use crate::value::Point;

/// One group's state at one step.
#[derive(Clone, Copy, Default)]
struct Acc {
    /// Inputs seen at this step (0: the group has no value here).
    count: u32,
    value: f64,
    mean: f64,
}

type CandHeap = Heap<Cand, fn(&Cand, &Cand) -> bool>;

/// A `topk`/`bottomk` candidate.
#[derive(Clone)]
struct Cand {
    v: f64,
    series: u32,
}

struct Group {
    labels: Labels,
    accs: Vec<Acc>,
    /// Per step: heaps (`topk`, `bottomk`) or values (`quantile`).
    heaps: Vec<Option<CandHeap>>,
    values: Vec<Vec<f64>>,
}

fn topk_less(a: &Cand, b: &Cand) -> bool {
    // vectorByValueHeap: NaN sorts first.
    a.v.is_nan() || a.v < b.v
}

fn bottomk_less(a: &Cand, b: &Cand) -> bool {
    // vectorByReverseValueHeap.
    a.v.is_nan() || a.v > b.v
}

impl Ev<'_, '_> {
    /// Evaluates an aggregation, streaming its groups' results into `sink`.
    pub(crate) fn aggregate(&mut self, a: &AggregateExpr, sink: &mut Sink<'_>) -> Result<()> {
        let steps = self.steps();
        let mut grouping = a.grouping.clone();
        grouping.sort();
        // The parameter, per step. Prometheus evaluates it before the vector, but checks it
        // (k within int64, a valid label name) only when it aggregates each step, after the
        // vector: errors of the vector come first.
        let mut param: Vec<f64> = Vec::new();
        let mut value_label = String::new();
        match (a.op, &a.param) {
            (AggOp::CountValues, Some(p)) => {
                if let Expr::String { val, .. } = p.unwrap_parens() {
                    value_label = val.clone();
                }
            }
            (_, Some(p)) => param = self.eval_scalar(p)?,
            _ => {}
        }
        let check_param = || -> Result<()> {
            if a.op == AggOp::CountValues && !is_valid_label_name(&value_label) {
                return Err(exec(format!(
                    "invalid label name {}",
                    go_quote(&value_label)
                )));
            }
            if matches!(a.op, AggOp::Topk | AggOp::Bottomk) {
                for &k in &param {
                    // Go's `convertibleToInt64`: the float range of int64.
                    if !(-9_223_372_036_854_775_808.0..=9_223_372_036_854_774_784.0).contains(&k) {
                        return Err(exec(format!(
                            "Scalar value {} overflows int64",
                            go_format_g(k)
                        )));
                    }
                }
            }
            Ok(())
        };
        if a.op == AggOp::CountValues {
            return self.count_values(a, &grouping, &value_label, &check_param, sink);
        }
        let mut agg = Aggregation {
            op: a.op,
            grouping: &grouping,
            without: a.without,
            steps,
            start: self.start,
            interval: self.interval,
            param: &param,
            groups: Vec::new(),
            index: HashMap::new(),
            buf: Vec::new(),
            series_labels: Vec::new(),
            first_seen: Vec::new(),
        };
        self.stream(&a.expr, &mut |ctx, sd| agg.fold(ctx, sd))?;
        check_param()?;
        agg.finish(self, sink)
    }

    /// `count_values`: the group key includes each sample's value as a label.
    fn count_values(
        &mut self,
        a: &AggregateExpr,
        grouping: &[String],
        value_label: &str,
        check_param: &dyn Fn() -> Result<()>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let steps = self.steps();
        let mut grouping = grouping.to_vec();
        if !a.without {
            grouping.push(value_label.to_owned());
            grouping.sort();
        }
        let v = self.eval_vector(&a.expr)?;
        check_param()?;
        let by = super::call::ByStep::new(self, &v);
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<u32>)> = Vec::new();
        let mut cache: HashMap<(u32, u64), usize> = HashMap::new();
        let mut emitted_order: Vec<usize> = Vec::new();
        for step in 0..steps {
            self.ctx.tick()?;
            for &(si, val) in by.at(step) {
                let g = match cache.get(&(si, val.to_bits())) {
                    Some(&g) => g,
                    None => {
                        let metric =
                            labels::set(&v[si as usize].labels, value_label, &format_float(val));
                        let key = if a.without {
                            labels::without(&metric, &grouping, true)
                        } else {
                            labels::keep(&metric, &grouping)
                        };
                        let n = index.len();
                        let g = *index.entry(key.clone()).or_insert(n);
                        if g == groups.len() {
                            groups.push((key, vec![0; steps]));
                        }
                        cache.insert((si, val.to_bits()), g);
                        g
                    }
                };
                if groups[g].1[step] == 0 && !emitted_order.contains(&g) {
                    emitted_order.push(g);
                }
                groups[g].1[step] += 1;
            }
        }
        for g in emitted_order {
            let (labels, counts) = &groups[g];
            let points: Vec<Point> = counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| Point {
                    t: self.ts(i),
                    v: c as f64,
                })
                .collect();
            self.ctx.take(points.len())?;
            sink(
                self.ctx,
                Sd {
                    labels: labels.clone(),
                    points,
                },
            )?;
        }
        Ok(())
    }
}

struct Aggregation<'p> {
    op: AggOp,
    grouping: &'p [String],
    without: bool,
    steps: usize,
    start: i64,
    interval: i64,
    param: &'p [f64],
    groups: Vec<Group>,
    /// Groups by signature of their grouping labels.
    index: HashMap<Vec<u8>, usize>,
    buf: Vec<u8>,
    /// Labels of the input series (for `topk`/`bottomk` results).
    series_labels: Vec<Labels>,
    /// Per step, groups in the order they first had a value (the order of an instant
    /// query's result).
    first_seen: Vec<(usize, usize)>,
}

impl Aggregation<'_> {
    fn group_of(&mut self, l: &Labels) -> usize {
        // `by` keeps the listed labels; `without` drops them and the metric name.
        labels::signature(l, !self.without, self.grouping, &mut self.buf);
        if let Some(&g) = self.index.get(&self.buf) {
            return g;
        }
        let n = self.groups.len();
        self.index.insert(self.buf.clone(), n);
        let key = if self.without {
            labels::without(l, self.grouping, true)
        } else if self.grouping.is_empty() {
            Labels::empty()
        } else {
            labels::keep(l, self.grouping)
        };
        {
            let g = n;
            let heaps = matches!(self.op, AggOp::Topk | AggOp::Bottomk);
            let quantile = self.op == AggOp::Quantile;
            self.groups.push(Group {
                labels: key,
                accs: vec![Acc::default(); self.steps],
                heaps: if heaps {
                    (0..self.steps).map(|_| None).collect()
                } else {
                    Vec::new()
                },
                values: if quantile {
                    vec![Vec::new(); self.steps]
                } else {
                    Vec::new()
                },
            });
            g
        }
    }

    fn fold(&mut self, ctx: &mut Ctx<'_>, sd: Sd) -> Result<()> {
        let g = self.group_of(&sd.labels);
        let series = self.series_labels.len() as u32;
        let keep_series = matches!(self.op, AggOp::Topk | AggOp::Bottomk);
        if keep_series {
            self.series_labels.push(sd.labels.clone());
        }
        let op = self.op;
        for p in &sd.points {
            let step = ((p.t - self.start) / self.interval) as usize;
            let v = p.v;
            let group = &mut self.groups[g];
            let acc = &mut group.accs[step];
            if acc.count == 0 {
                self.first_seen.push((step, g));
                acc.count = 1;
                acc.value = v;
                acc.mean = v;
                match op {
                    AggOp::Stddev | AggOp::Stdvar => acc.value = 0.0,
                    AggOp::Group => acc.value = 1.0,
                    AggOp::Topk | AggOp::Bottomk => {
                        let k = self.param[step];
                        if (k as i64) < 1 {
                            continue;
                        }
                        let less: fn(&Cand, &Cand) -> bool = if op == AggOp::Topk {
                            topk_less
                        } else {
                            bottomk_less
                        };
                        group.heaps[step] = Some(Heap::with_first(Cand { v, series }, less));
                    }
                    AggOp::Quantile => group.values[step].push(v),
                    _ => {}
                }
                continue;
            }
            acc.count += 1;
            match op {
                AggOp::Sum => acc.value += v,
                AggOp::Avg => {
                    let n = acc.count as f64;
                    if acc.mean.is_infinite() {
                        if v.is_infinite() && (acc.mean > 0.0) == (v > 0.0) {
                            continue;
                        }
                        if !v.is_infinite() && !v.is_nan() {
                            continue;
                        }
                    }
                    acc.mean += v / n - acc.mean / n;
                }
                AggOp::Max => {
                    if acc.value < v || acc.value.is_nan() {
                        acc.value = v;
                    }
                }
                AggOp::Min => {
                    if acc.value > v || acc.value.is_nan() {
                        acc.value = v;
                    }
                }
                AggOp::Stddev | AggOp::Stdvar => {
                    let n = acc.count as f64;
                    let delta = v - acc.mean;
                    acc.mean += delta / n;
                    acc.value += delta * (v - acc.mean);
                }
                AggOp::Topk | AggOp::Bottomk => {
                    let k = self.param[step] as i64;
                    let Some(heap) = group.heaps[step].as_mut() else {
                        continue;
                    };
                    let top = heap.items[0].v;
                    let better = if op == AggOp::Topk { top < v } else { top > v };
                    if (heap.items.len() as i64) < k || better || top.is_nan() {
                        if heap.items.len() as i64 == k {
                            if k == 1 {
                                heap.items[0] = Cand { v, series };
                                continue;
                            }
                            heap.pop();
                        }
                        heap.push(Cand { v, series });
                    }
                }
                AggOp::Quantile => group.values[step].push(v),
                AggOp::Count | AggOp::Group | AggOp::CountValues => {}
            }
        }
        ctx.release(sd.points.len());
        Ok(())
    }

    fn finish(mut self, ev: &mut Ev<'_, '_>, sink: &mut Sink<'_>) -> Result<()> {
        let op = self.op;
        if matches!(op, AggOp::Topk | AggOp::Bottomk) {
            return self.finish_k(ev, sink);
        }
        let groups = std::mem::take(&mut self.groups);
        let mut order: Vec<usize> = Vec::new();
        if self.steps == 1 {
            // An instant query lists groups in the order they were first seen.
            order.extend(self.first_seen.iter().map(|&(_, g)| g));
        } else {
            order.extend(0..groups.len());
        }
        let mut groups: Vec<Option<Group>> = groups.into_iter().map(Some).collect();
        for g in order {
            let Some(mut group) = groups[g].take() else {
                continue;
            };
            let mut points = Vec::new();
            for (step, acc) in group.accs.iter().enumerate() {
                if acc.count == 0 {
                    continue;
                }
                let n = acc.count as f64;
                let v = match op {
                    AggOp::Avg => acc.mean,
                    AggOp::Count => n,
                    AggOp::Stdvar => acc.value / n,
                    AggOp::Stddev => (acc.value / n).sqrt(),
                    AggOp::Quantile => quantile(self.param[step], &mut group.values[step]),
                    _ => acc.value,
                };
                points.push(Point {
                    t: self.start + step as i64 * self.interval,
                    v,
                });
            }
            if points.is_empty() {
                continue;
            }
            ev.ctx.take(points.len())?;
            sink(
                ev.ctx,
                Sd {
                    labels: group.labels,
                    points,
                },
            )?;
        }
        Ok(())
    }

    /// `topk`/`bottomk`: the selected input series, each with the steps it was selected at.
    fn finish_k(mut self, ev: &mut Ev<'_, '_>, sink: &mut Sink<'_>) -> Result<()> {
        let op = self.op;
        let mut out: HashMap<u32, Vec<Point>> = HashMap::new();
        let mut order: Vec<u32> = Vec::new();
        let group_order: Vec<(usize, usize)> = if self.steps == 1 {
            self.first_seen.clone()
        } else {
            let mut v = Vec::new();
            for step in 0..self.steps {
                for g in 0..self.groups.len() {
                    v.push((step, g));
                }
            }
            v
        };
        for (step, g) in group_order {
            let Some(heap) = self.groups[g].heaps[step].take() else {
                continue;
            };
            let mut items = heap.items;
            // The heap keeps the weakest on top: Go reverses it with `sort.Sort(sort.Reverse())`.
            if items.len() > 1 {
                if op == AggOp::Topk {
                    gosort::sort(&mut items, |a, b| topk_less(b, a));
                } else {
                    gosort::sort(&mut items, |a, b| bottomk_less(b, a));
                }
            }
            let t = self.start + step as i64 * self.interval;
            for c in items {
                let e = out.entry(c.series).or_insert_with(|| {
                    order.push(c.series);
                    Vec::new()
                });
                e.push(Point { t, v: c.v });
            }
        }
        for s in order {
            let mut points = out.remove(&s).unwrap_or_default();
            points.sort_by_key(|p| p.t);
            ev.ctx.take(points.len())?;
            sink(
                ev.ctx,
                Sd {
                    labels: self.series_labels[s as usize].clone(),
                    points,
                },
            )?;
        }
        Ok(())
    }
}
