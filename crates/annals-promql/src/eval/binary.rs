//! Binary operators: scalar-scalar, vector-scalar (streamed, series by series) and
//! vector-vector (both sides materialised; matched per step by signature, with Prometheus's
//! cardinality errors).

use std::collections::HashMap;

use annals::Labels;

use super::call::ByStep;
use super::collide::DUPLICATE_LABELSET;
use super::labels::{self, drop_metric_name, match_labels, signature};
use super::{new_step_collision, Ev, Sd, Sink};
use crate::error::{exec, Result};
use crate::parser::{BinOp, BinaryExpr, Cardinality, ValueType, VectorMatching};
use crate::value::Point;

/// Whether a binary expression streams series with unique labels.
pub(super) fn streams_unique_labels(b: &BinaryExpr) -> bool {
    let lt = b.lhs.value_type();
    let rt = b.rhs.value_type();
    if lt == ValueType::Vector && rt == ValueType::Vector {
        // Results are keyed by labels as they are built.
        return true;
    }
    // Vector-scalar keeps labels unless the name is dropped.
    !(b.op.drops_metric_name() || b.return_bool)
}

/// Go's `math.Mod`: the result has the sign of `x`.
fn go_mod(x: f64, y: f64) -> f64 {
    x % y
}

/// An operator between two floats: (value, keep). Comparisons keep the left value when true.
#[inline]
pub(crate) fn elem_binop(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Pow => (go_pow(l, r), true),
        BinOp::Mod => (go_mod(l, r), true),
        BinOp::Eql => (l, l == r),
        BinOp::Neq => (l, l != r),
        BinOp::Gtr => (l, l > r),
        BinOp::Lss => (l, l < r),
        BinOp::Gte => (l, l >= r),
        BinOp::Lte => (l, l <= r),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::And | BinOp::Or | BinOp::Unless => (l, true),
    }
}

/// Go's `math.Pow`, whose special cases differ from C's `pow` for a few inputs.
fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if y == 1.0 {
        return x;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == -1.0 && y.is_infinite() {
        return 1.0;
    }
    x.powf(y)
}

/// A scalar-scalar operation (comparisons give 0 or 1).
pub(crate) fn scalar_binop(op: BinOp, l: f64, r: f64) -> f64 {
    let (v, keep) = elem_binop(op, l, r);
    if op.is_comparison() {
        if keep {
            1.0
        } else {
            0.0
        }
    } else {
        v
    }
}

impl Ev<'_, '_> {
    /// Streams the result of a binary expression with at least one vector side.
    pub(crate) fn binary(&mut self, b: &BinaryExpr, sink: &mut Sink<'_>) -> Result<()> {
        let lt = b.lhs.value_type();
        let rt = b.rhs.value_type();
        match (lt, rt) {
            (ValueType::Vector, ValueType::Vector) => self.vector_binop(b, sink),
            (ValueType::Vector, _) => self.vector_scalar(b, false, sink),
            _ => self.vector_scalar(b, true, sink),
        }
    }

    fn vector_scalar(&mut self, b: &BinaryExpr, swap: bool, sink: &mut Sink<'_>) -> Result<()> {
        let (vec_side, scalar_side) = if swap {
            (&b.rhs, &b.lhs)
        } else {
            (&b.lhs, &b.rhs)
        };
        let scalar = self.eval_scalar(scalar_side)?;
        let (start, interval) = (self.start, self.interval);
        let op = b.op;
        let drop_name = op.drops_metric_name() || b.return_bool;
        let mut seen = new_step_collision(self);
        self.stream(vec_side, &mut |ctx, mut sd| {
            let before = sd.points.len();
            sd.points.retain_mut(|p| {
                let s = scalar[((p.t - start) / interval) as usize];
                let (lv, rv) = if swap { (s, p.v) } else { (p.v, s) };
                let (mut v, keep) = elem_binop(op, lv, rv);
                if op.is_comparison() && swap {
                    v = rv;
                }
                if b.return_bool {
                    p.v = if keep { 1.0 } else { 0.0 };
                    return true;
                }
                if keep {
                    p.v = v;
                }
                keep
            });
            ctx.release(before - sd.points.len());
            if sd.points.is_empty() {
                return Ok(());
            }
            if drop_name {
                sd.labels = drop_metric_name(&sd.labels);
                seen.check(&sd.labels, &sd.points)?;
            }
            sink(ctx, sd)
        })
    }

    fn vector_binop(&mut self, b: &BinaryExpr, sink: &mut Sink<'_>) -> Result<()> {
        let lhs = self.eval_vector(&b.lhs)?;
        let rhs = self.eval_vector(&b.rhs)?;
        let m = b
            .matching
            .as_ref()
            .expect("vector-vector operations have matching");
        // Signatures, interned to small ids shared by both sides.
        let mut sig_ids: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut buf = Vec::new();
        let mut sigs = |series: &[Sd]| -> Vec<u32> {
            series
                .iter()
                .map(|s| {
                    signature(&s.labels, m.on, &m.matching_labels, &mut buf);
                    let n = sig_ids.len() as u32;
                    *sig_ids.entry(buf.clone()).or_insert(n)
                })
                .collect()
        };
        let lsig = sigs(&lhs);
        let rsig = sigs(&rhs);
        let nsigs = sig_ids.len();
        let lby = ByStep::new(self, &lhs);
        let rby = ByStep::new(self, &rhs);
        let mut out = Output::default();
        let mut scratch = Scratch::new(nsigs);
        for step in 0..self.steps() {
            self.ctx.tick()?;
            let (l, r) = (lby.at(step), rby.at(step));
            let ts = self.ts(step);
            match b.op {
                BinOp::And | BinOp::Unless => {
                    if b.op == BinOp::And && (l.is_empty() || r.is_empty()) {
                        continue;
                    }
                    if b.op == BinOp::Unless && r.is_empty() {
                        for &(si, v) in l {
                            out.push(&lhs[si as usize].labels, ts, v)?;
                        }
                        continue;
                    }
                    scratch.stamp += 1;
                    for &(si, _) in r {
                        scratch.mark[rsig[si as usize] as usize] = scratch.stamp;
                    }
                    for &(si, v) in l {
                        let present = scratch.mark[lsig[si as usize] as usize] == scratch.stamp;
                        if present == (b.op == BinOp::And) {
                            out.push(&lhs[si as usize].labels, ts, v)?;
                        }
                    }
                }
                BinOp::Or => {
                    scratch.stamp += 1;
                    for &(si, v) in l {
                        scratch.mark[lsig[si as usize] as usize] = scratch.stamp;
                        out.push(&lhs[si as usize].labels, ts, v)?;
                    }
                    for &(si, v) in r {
                        if l.is_empty() || scratch.mark[rsig[si as usize] as usize] != scratch.stamp
                        {
                            out.push(&rhs[si as usize].labels, ts, v)?;
                        }
                    }
                }
                _ => {
                    if l.is_empty() || r.is_empty() {
                        continue;
                    }
                    self.binop_step(
                        b,
                        m,
                        step,
                        &lhs,
                        &rhs,
                        &lsig,
                        &rsig,
                        l,
                        r,
                        &mut scratch,
                        &mut out,
                    )?;
                }
            }
        }
        let before: usize = lhs.iter().chain(&rhs).map(|s| s.points.len()).sum();
        self.ctx.release(before);
        for sd in out.series {
            self.ctx.take(sd.points.len())?;
            sink(self.ctx, sd)?;
        }
        Ok(())
    }

    /// One step of an arithmetic or comparison operator between vectors.
    #[allow(clippy::too_many_arguments)]
    fn binop_step(
        &mut self,
        b: &BinaryExpr,
        m: &VectorMatching,
        step: usize,
        lhs: &[Sd],
        rhs: &[Sd],
        lsig: &[u32],
        rsig: &[u32],
        l: &[(u32, f64)],
        r: &[(u32, f64)],
        scratch: &mut Scratch,
        out: &mut Output,
    ) -> Result<()> {
        let ts = self.ts(step);
        // For one-to-many matching the right side is the "many" side: swap.
        let one_to_many = m.card == Cardinality::OneToMany;
        let (many, one, many_sig, one_sig, many_s, one_s) = if one_to_many {
            (r, l, rsig, lsig, rhs, lhs)
        } else {
            (l, r, lsig, rsig, lhs, rhs)
        };
        scratch.stamp += 1;
        let stamp = scratch.stamp;
        for &(si, v) in one {
            let sig = one_sig[si as usize] as usize;
            if scratch.mark[sig] == stamp {
                let first = scratch.one[sig];
                let side = if one_to_many { "left" } else { "right" };
                let cur = &one_s[si as usize].labels;
                return Err(exec(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    match_labels(cur, m.on, &m.matching_labels),
                    cur,
                    one_s[first.0 as usize].labels
                )));
            }
            scratch.mark[sig] = stamp;
            scratch.one[sig] = (si, v);
            scratch.matched_stamp[sig] = 0;
        }
        scratch.result_seen.clear();
        for &(si, v) in many {
            let sig = many_sig[si as usize] as usize;
            if scratch.mark[sig] != stamp {
                continue;
            }
            let (osi, ov) = scratch.one[sig];
            let (vl, vr) = if one_to_many { (ov, v) } else { (v, ov) };
            let (mut value, keep) = elem_binop(b.op, vl, vr);
            if b.return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            let metric = out.result_metric(
                &many_s[si as usize].labels,
                &one_s[osi as usize].labels,
                (si, osi),
                b.op,
                m,
                b.return_bool,
            );
            if m.card == Cardinality::OneToOne {
                if scratch.matched_stamp[sig] == stamp {
                    return Err(exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                scratch.matched_stamp[sig] = stamp;
            } else if !scratch.result_seen.insert((sig as u32, metric)) {
                return Err(exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            out.push_id(metric, ts, value)?;
        }
        Ok(())
    }
}

/// Per-signature scratch space, reset per step by bumping `stamp`.
struct Scratch {
    stamp: u32,
    mark: Vec<u32>,
    one: Vec<(u32, f64)>,
    matched_stamp: Vec<u32>,
    result_seen: std::collections::HashSet<(u32, u32)>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch {
            stamp: 0,
            mark: vec![0; n],
            one: vec![(0, 0.0); n],
            matched_stamp: vec![0; n],
            result_seen: Default::default(),
        }
    }
}

/// Output series keyed by labels, with Prometheus's per-step duplicate check.
#[derive(Default)]
struct Output {
    series: Vec<Sd>,
    by_labels: HashMap<Labels, u32>,
    /// Result labels per (many-side series, one-side series).
    metric_cache: HashMap<(u32, u32), u32>,
}

impl Output {
    fn id(&mut self, labels: &Labels) -> u32 {
        if let Some(&id) = self.by_labels.get(labels) {
            return id;
        }
        let id = self.series.len() as u32;
        self.by_labels.insert(labels.clone(), id);
        self.series.push(Sd {
            labels: labels.clone(),
            points: Vec::new(),
        });
        id
    }

    fn push(&mut self, labels: &Labels, t: i64, v: f64) -> Result<()> {
        let id = self.id(labels);
        self.push_id(id, t, v)
    }

    fn push_id(&mut self, id: u32, t: i64, v: f64) -> Result<()> {
        let pts = &mut self.series[id as usize].points;
        if pts.last().is_some_and(|p| p.t == t) {
            return Err(exec(DUPLICATE_LABELSET));
        }
        pts.push(Point { t, v });
        Ok(())
    }

    /// Prometheus's `resultMetric`: the labels of a matched pair's result.
    fn result_metric(
        &mut self,
        l: &Labels,
        r: &Labels,
        key: (u32, u32),
        op: BinOp,
        m: &VectorMatching,
        return_bool: bool,
    ) -> u32 {
        if let Some(&id) = self.metric_cache.get(&key) {
            return id;
        }
        let mut pairs: Vec<(&str, &str)> = l.iter().map(|x| (x.name, x.value)).collect();
        if op.drops_metric_name() {
            pairs.retain(|(n, _)| *n != "__name__");
        }
        if m.card == Cardinality::OneToOne {
            if m.on {
                pairs.retain(|(n, _)| m.matching_labels.iter().any(|x| x == n));
            } else {
                pairs.retain(|(n, _)| !m.matching_labels.iter().any(|x| x == n));
            }
        }
        for name in &m.include {
            pairs.retain(|(n, _)| n != name);
            if let Some(v) = r.get(name) {
                pairs.push((name.as_str(), v));
            }
        }
        let mut metric = labels::from_pairs(pairs);
        if return_bool {
            metric = drop_metric_name(&metric);
        }
        let id = self.id(&metric);
        self.metric_cache.insert(key, id);
        id
    }
}
