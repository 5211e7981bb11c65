//! The [`QueryEngine`] of `annals serve`: annals-promql over the server's [`Db`], with the
//! request's deadline, cancel flag, max samples and lookback passed through, its errors mapped
//! to the API's error types, and the `stats` object Prometheus 2.42 renders when asked.

use std::fmt::Write as _;

use annals::Db;
use annals_promql as promql;

use crate::json::{self, MatrixSeries, Value, VectorSample};
use crate::query::{Evaluated, QueryEngine, QueryError, QueryOptions};

/// annals-promql over a database: what `annals serve` sets as
/// [`ServerOptions::engine`](crate::ServerOptions::engine).
#[derive(Clone)]
pub struct PromqlEngine {
    db: Db,
    engine: promql::Engine,
}

impl PromqlEngine {
    /// An engine over `db`. The per-request [`QueryOptions`] carry the timeout, max samples
    /// and lookback, so the engine's own limits are off; `parallelism` is how many threads one
    /// query may use (0: the engine's default).
    pub fn new(db: Db, parallelism: usize) -> Self {
        let mut opts = promql::EngineOptions {
            timeout: None,
            max_samples: usize::MAX,
            ..promql::EngineOptions::default()
        };
        if parallelism > 0 {
            opts.parallelism = parallelism;
        }
        PromqlEngine {
            db,
            engine: promql::Engine::new(opts),
        }
    }

    fn options(opts: &QueryOptions) -> promql::QueryOptions {
        promql::QueryOptions {
            lookback_delta_ms: Some(
                i64::try_from(opts.lookback_delta.as_millis()).unwrap_or(i64::MAX),
            ),
            timeout: None,
            deadline: Some(opts.deadline),
            max_samples: Some(usize::try_from(opts.max_samples).unwrap_or(usize::MAX)),
            cancel: Some(promql::CancelToken::from_flag(opts.cancel.clone())),
        }
    }
}

impl QueryEngine for PromqlEngine {
    fn instant(&self, expr: &str, t: i64, opts: &QueryOptions) -> Result<Evaluated, QueryError> {
        let r = self
            .engine
            .instant_with(&self.db, expr, t, &Self::options(opts))
            .map_err(map_error)?;
        Ok(evaluated(r, opts))
    }

    fn range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<Evaluated, QueryError> {
        let r = self
            .engine
            .range_with(&self.db, expr, start, end, step, &Self::options(opts))
            .map_err(map_error)?;
        Ok(evaluated(r, opts))
    }
}

/// The engine's error as the API classifies it (`returnAPIError`).
fn map_error(e: promql::Error) -> QueryError {
    let msg = e.to_string();
    match e.api_type() {
        "bad_data" => QueryError::BadData(msg),
        "execution" => QueryError::Execution(msg),
        "timeout" => QueryError::Timeout(msg),
        "canceled" => QueryError::Canceled(msg),
        _ => QueryError::Storage(msg),
    }
}

fn evaluated(r: promql::QueryResult, opts: &QueryOptions) -> Evaluated {
    let value = match r.value {
        promql::Value::Scalar { t, v } => Value::Scalar { t, v },
        promql::Value::String { t, v } => Value::String { t, s: v },
        promql::Value::Vector(samples) => Value::Vector(
            samples
                .into_iter()
                .map(|s| VectorSample {
                    metric: s.labels,
                    t: s.t,
                    v: s.v,
                })
                .collect(),
        ),
        promql::Value::Matrix(series) => Value::Matrix(
            series
                .into_iter()
                .map(|s| MatrixSeries {
                    metric: s.labels,
                    points: s.points.into_iter().map(|p| (p.t, p.v)).collect(),
                })
                .collect(),
        ),
    };
    Evaluated {
        value,
        warnings: Vec::new(),
        stats: opts.stats.then(|| render_stats(&r.stats)),
    }
}

/// The `stats` object as Prometheus 2.42's `stats.NewQueryStats` renders it: timings in
/// seconds and the sample counts.
pub(crate) fn render_stats(s: &promql::Stats) -> String {
    let mut out = String::from("{\"timings\":{");
    let timings = [
        ("evalTotalTime", s.eval),
        ("resultSortTime", std::time::Duration::ZERO),
        ("queryPreparationTime", s.prepare),
        ("innerEvalTime", s.eval),
        ("execQueueTime", std::time::Duration::ZERO),
        ("execTotalTime", s.total),
    ];
    for (i, (name, d)) in timings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{name}\":{}", go_json_float(d.as_secs_f64()));
    }
    let _ = write!(
        out,
        "}},\"samples\":{{\"totalQueryableSamples\":{},\"peakSamples\":{}}}}}",
        s.samples, s.peak_samples
    );
    out
}

/// A finite float as Go's `encoding/json` writes it: like `jsonutil`'s value format, but with
/// the exponent's leading zero dropped (`1e-07` becomes `1e-7`).
fn go_json_float(v: f64) -> String {
    let s = json::format_value(v);
    match s.split_once("e-0") {
        Some((m, e)) => format!("{m}e-{e}"),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_render_as_go_encodes_them() {
        let s = promql::Stats {
            series: 2,
            samples: 40,
            peak_samples: 12,
            prepare: std::time::Duration::from_nanos(100),
            eval: std::time::Duration::from_micros(1500),
            total: std::time::Duration::from_millis(2),
        };
        let v: serde_json::Value = serde_json::from_str(&render_stats(&s)).unwrap();
        assert_eq!(v["samples"]["totalQueryableSamples"], 40);
        assert_eq!(v["samples"]["peakSamples"], 12);
        assert_eq!(v["timings"]["execTotalTime"], 0.002);
        assert_eq!(v["timings"]["evalTotalTime"], 0.0015);
        assert!(render_stats(&s).contains("\"queryPreparationTime\":1e-7"));
    }
}
