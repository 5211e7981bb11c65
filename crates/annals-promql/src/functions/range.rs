//! Range-vector functions (`rate`, `*_over_time`, `deriv`, ...) over one window of one series,
//! with Prometheus 2.42's arithmetic (`promql/functions.go`) operation for operation, so
//! results agree to the last bit where the inputs do.

use super::FuncId;
use crate::error::{exec, Result};
use crate::parser::go_format_f;
use crate::value::Point;

/// What a range function sees besides the window.
pub(crate) struct RangeArgs {
    /// The evaluation time of the step.
    pub(crate) ts: i64,
    /// The selector's range in milliseconds.
    pub(crate) range: i64,
    /// The window: `[range_start, range_end]`.
    pub(crate) range_start: i64,
    pub(crate) range_end: i64,
    /// Scalar arguments at this step, in argument order (the range vector excluded).
    pub(crate) scalars: [f64; 2],
}

/// Evaluates range function `id` over a non-empty window. `None`: no output at this step.
pub(crate) fn eval(id: FuncId, w: &[Point], a: &RangeArgs) -> Result<Option<f64>> {
    use FuncId::*;
    Ok(match id {
        Rate => extrapolated_rate(w, a, true, true),
        Increase => extrapolated_rate(w, a, true, false),
        Delta => extrapolated_rate(w, a, false, false),
        Irate => instant_value(w, true),
        Idelta => instant_value(w, false),
        AvgOverTime => Some(avg_over_time(w)),
        CountOverTime => Some(w.len() as f64),
        LastOverTime => Some(w[w.len() - 1].v),
        MaxOverTime => {
            let mut max = w[0].v;
            for p in w {
                if p.v > max || max.is_nan() {
                    max = p.v;
                }
            }
            Some(max)
        }
        MinOverTime => {
            let mut min = w[0].v;
            for p in w {
                if p.v < min || min.is_nan() {
                    min = p.v;
                }
            }
            Some(min)
        }
        SumOverTime => {
            let (mut sum, mut c) = (0.0, 0.0);
            for p in w {
                (sum, c) = kahan_sum_inc(p.v, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }
        QuantileOverTime => {
            let mut values: Vec<f64> = w.iter().map(|p| p.v).collect();
            Some(quantile(a.scalars[0], &mut values))
        }
        StddevOverTime => Some(stdvar_over_time(w).sqrt()),
        StdvarOverTime => Some(stdvar_over_time(w)),
        PresentOverTime | AbsentOverTime => Some(1.0),
        Changes => {
            let mut changes = 0;
            let mut prev = w[0].v;
            for p in &w[1..] {
                if p.v != prev && !(p.v.is_nan() && prev.is_nan()) {
                    changes += 1;
                }
                prev = p.v;
            }
            Some(changes as f64)
        }
        Resets => {
            let mut resets = 0;
            let mut prev = w[0].v;
            for p in &w[1..] {
                if p.v < prev {
                    resets += 1;
                }
                prev = p.v;
            }
            Some(resets as f64)
        }
        Deriv => {
            if w.len() < 2 {
                None
            } else {
                Some(linear_regression(w, w[0].t).0)
            }
        }
        PredictLinear => {
            if w.len() < 2 {
                None
            } else {
                let (slope, intercept) = linear_regression(w, a.ts);
                Some(slope * a.scalars[0] + intercept)
            }
        }
        HoltWinters => holt_winters(w, a.scalars[0], a.scalars[1])?,
        other => return Err(exec(format!("{other:?} is not a range function"))),
    })
}

/// `rate`, `increase` and `delta`: the change over the window, corrected for counter resets
/// and extrapolated towards the window's ends.
fn extrapolated_rate(w: &[Point], a: &RangeArgs, is_counter: bool, is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let first = w[0];
    let last = w[w.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = first.v;
        for p in &w[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut duration_to_start = (first.t - a.range_start) as f64 / 1000.0;
    let duration_to_end = (a.range_end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_between = sampled_interval / (w.len() - 1) as f64;
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let duration_to_zero = sampled_interval * (first.v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    if duration_to_start < threshold {
        extrapolate_to += duration_to_start;
    } else {
        extrapolate_to += average_between / 2.0;
    }
    if duration_to_end < threshold {
        extrapolate_to += duration_to_end;
    } else {
        extrapolate_to += average_between / 2.0;
    }
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= a.range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(w: &[Point], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let last = w[w.len() - 1];
    let prev = w[w.len() - 2];
    let mut result = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

fn avg_over_time(w: &[Point]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for p in w {
        count += 1.0;
        if mean.is_infinite() {
            if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                continue;
            }
            if !p.v.is_infinite() && !p.v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_sum_inc(p.v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

fn stdvar_over_time(w: &[Point]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for p in w {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Neumaier's improved Kahan summation step.
#[inline]
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Least squares over the window: slope and the intercept at `intercept_time`.
fn linear_regression(w: &[Point], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0f64, 0.0, 0.0, 0.0);
    let init_y = w[0].v;
    let mut const_y = true;
    for (i, p) in w.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(p.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * p.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let sum_x = sum_x + c_x;
    let sum_y = sum_y + c_y;
    let sum_xy = sum_xy + c_xy;
    let sum_x2 = sum_x2 + c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// Double exponential smoothing (Prometheus 2.x's `holt_winters`).
fn holt_winters(w: &[Point], sf: f64, tf: f64) -> Result<Option<f64>> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(exec(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
            go_format_f(sf)
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(exec(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {}",
            go_format_f(tf)
        )));
    }
    let l = w.len();
    if l < 2 {
        return Ok(None);
    }
    let trend = |i: usize, tf: f64, s0: f64, s1: f64, b: f64| {
        if i == 0 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        }
    };
    let mut s0 = 0.0;
    let mut s1 = w[0].v;
    let mut b = w[1].v - w[0].v;
    for (i, p) in w.iter().enumerate().skip(1) {
        let x = sf * p.v;
        b = trend(i - 1, tf, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Ok(Some(s1))
}

/// The φ-quantile of `values` (Prometheus's `quantile`: linear interpolation between the
/// closest ranks). Sorts `values`.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Go sorts with NaN first (`Less` is true for a NaN left operand); only the values
    // matter, so any sort with that order gives the same result.
    values.sort_by(|a, b| {
        if a.is_nan() {
            if b.is_nan() {
                std::cmp::Ordering::Equal
            } else {
                std::cmp::Ordering::Less
            }
        } else if b.is_nan() {
            std::cmp::Ordering::Greater
        } else {
            a.partial_cmp(b).expect("neither is NaN")
        }
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, f64)]) -> Vec<Point> {
        v.iter().map(|&(t, v)| Point { t, v }).collect()
    }

    #[test]
    fn rate_extrapolates_and_corrects_resets() {
        // A counter going 0, 10, 20, 5 (reset), 15 every 15 s over a 60 s window ending at 60 s.
        let w = pts(&[
            (0, 0.0),
            (15_000, 10.0),
            (30_000, 20.0),
            (45_000, 5.0),
            (60_000, 15.0),
        ]);
        let a = RangeArgs {
            ts: 60_000,
            range: 60_000,
            range_start: 0,
            range_end: 60_000,
            scalars: [0.0; 2],
        };
        // increase = 15 - 0 + 20 (reset) = 35 over exactly the window.
        assert_eq!(extrapolated_rate(&w, &a, true, false), Some(35.0));
        assert_eq!(extrapolated_rate(&w, &a, true, true), Some(35.0 / 60.0));
        assert_eq!(extrapolated_rate(&w, &a, false, false), Some(15.0));
        assert_eq!(extrapolated_rate(&w[..1], &a, true, true), None);
    }

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile(0.5, &mut [1.0, 3.0, 2.0]), 2.0);
        assert_eq!(quantile(0.25, &mut [1.0, 2.0, 3.0]), 1.5);
        assert!(quantile(f64::NAN, &mut [1.0]).is_nan());
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
    }
}
