//! Test scripts in Prometheus's format (`promql/testdata/*.test`), run against an in-memory
//! annals database:
//!
//! ```text
//! load 5m
//!   http_requests{job="api"} 0+10x10 _ stale
//!
//! eval instant at 50m sum(http_requests)
//!   {} 100
//!
//! eval_fail instant at 0m rate(http_requests)
//! eval_ordered instant at 50m sort(http_requests)
//! clear
//! ```
//!
//! As Prometheus's runner does, every `eval` is also run with every selector pinned with `@`
//! to the evaluation time (evaluated at other times, it must give the same result), and as a
//! range query whose middle step is compared too.

use std::fmt;

use annals::{Db, Labels, Options};

use crate::engine::{Engine, EngineOptions};
use crate::parser::{self, parse_duration, series_desc, Expr};
use crate::value::Value;

/// A script command that failed, with its line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// Line of the command.
    pub line: usize,
    /// What went wrong.
    pub msg: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for ScriptError {}

fn err(line: usize, msg: impl Into<String>) -> ScriptError {
    ScriptError {
        line,
        msg: msg.into(),
    }
}

enum Expected {
    Scalar(f64),
    /// Labels and value, in expected order.
    Vector(Vec<(Labels, f64)>),
}

struct EvalCmd {
    expr: String,
    at: i64,
    fail: bool,
    ordered: bool,
    expected: Expected,
    line: usize,
}

enum Cmd {
    Load {
        gap: i64,
        series: Vec<(Labels, Vec<Option<f64>>)>,
        line: usize,
    },
    Clear,
    Eval(EvalCmd),
}

/// A parsed test script.
pub struct Script {
    cmds: Vec<Cmd>,
}

/// What running a script did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    /// `eval` commands run.
    pub evals: usize,
    /// Queries evaluated (each eval runs in several modes).
    pub queries: usize,
}

impl Script {
    /// Parses a script.
    pub fn parse(text: &str) -> Result<Script, ScriptError> {
        let lines: Vec<&str> = text
            .lines()
            .map(|l| {
                let l = l.trim();
                if l.starts_with('#') {
                    ""
                } else {
                    l
                }
            })
            .collect();
        let mut cmds = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            let line = i + 1;
            if l.is_empty() {
                i += 1;
                continue;
            }
            let word = l
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if word == "clear" {
                cmds.push(Cmd::Clear);
                i += 1;
            } else if word == "load" {
                let gap_s = l[4..].trim();
                let gap = parse_duration(gap_s)
                    .map_err(|e| err(line, format!("invalid step definition {gap_s:?}: {e}")))?;
                let mut series = Vec::new();
                i += 1;
                while i < lines.len() && !lines[i].is_empty() {
                    let (labels, values) = series_desc::parse_series_desc(lines[i])
                        .map_err(|e| err(i + 1, e.to_string()))?;
                    // A series defined twice keeps its last definition, as in Prometheus.
                    series.retain(|(l, _): &(Labels, _)| *l != labels);
                    series.push((labels, values));
                    i += 1;
                }
                cmds.push(Cmd::Load { gap, series, line });
            } else if word.starts_with("eval") {
                let (cmd, next) = parse_eval(&lines, i)?;
                cmds.push(Cmd::Eval(cmd));
                i = next;
            } else {
                return Err(err(line, format!("invalid command {l:?}")));
            }
        }
        Ok(Script { cmds })
    }

    /// Runs the script against a fresh in-memory database with Prometheus's test engine
    /// settings (max samples 10,000; subquery default step 1 m).
    pub fn run(&self) -> Result<RunStats, ScriptError> {
        let engine = Engine::new(EngineOptions {
            max_samples: 10_000,
            ..EngineOptions::default()
        });
        let new_db = || {
            // As Prometheus's test storage: a 24 h chunk range, no compaction.
            let mut opts = Options::default();
            opts.block_range_ms = 24 * 3_600_000;
            opts.compaction = false;
            Db::open_in_memory(opts).map_err(|e| err(0, format!("opening the database: {e}")))
        };
        let mut db = new_db()?;
        let mut stats = RunStats::default();
        for cmd in &self.cmds {
            match cmd {
                Cmd::Clear => db = new_db()?,
                Cmd::Load { gap, series, line } => {
                    let mut app = db.appender();
                    for (labels, values) in series {
                        for (k, v) in values.iter().enumerate() {
                            if let Some(v) = v {
                                app.append(None, labels, k as i64 * gap, *v)
                                    .map_err(|e| err(*line, format!("loading {labels}: {e}")))?;
                            }
                        }
                    }
                    app.commit().map_err(|e| err(*line, e.to_string()))?;
                }
                Cmd::Eval(e) => {
                    stats.evals += 1;
                    stats.queries += run_eval(&engine, &db, e)?;
                }
            }
        }
        Ok(stats)
    }
}

fn parse_eval(lines: &[&str], i: usize) -> Result<(EvalCmd, usize), ScriptError> {
    let l = lines[i];
    let line = i + 1;
    let bad = || {
        err(line, "invalid evaluation command. (eval[_fail|_ordered] instant [at <offset:duration>] <query>")
    };
    let (head, rest) = l.split_once(char::is_whitespace).ok_or_else(bad)?;
    let (fail, ordered) = match head {
        "eval" => (false, false),
        "eval_fail" => (true, false),
        "eval_ordered" => (false, true),
        _ => return Err(bad()),
    };
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("instant").ok_or_else(bad)?.trim_start();
    let (at, expr) = match rest.strip_prefix("at") {
        Some(r) if r.starts_with(char::is_whitespace) => {
            let r = r.trim_start();
            let (d, e) = r.split_once(char::is_whitespace).ok_or_else(bad)?;
            (
                parse_duration(d)
                    .map_err(|e| err(line, format!("invalid step definition {d:?}: {e}")))?,
                e.trim(),
            )
        }
        _ => (0, rest),
    };
    if let Err(e) = parser::parse(expr) {
        return Err(err(line, format!("{expr:?}: {e}")));
    }
    let mut expected = Expected::Vector(Vec::new());
    let mut j = i + 1;
    while j < lines.len() && !lines[j].is_empty() {
        let def = lines[j];
        if let Ok(v) = parser::parse_number(def) {
            expected = Expected::Scalar(v);
            j += 1;
            break;
        }
        let (labels, values) =
            series_desc::parse_series_desc(def).map_err(|e| err(j + 1, e.to_string()))?;
        if values.len() != 1 {
            return Err(err(
                j + 1,
                "expecting multiple values in instant evaluation not allowed",
            ));
        }
        if let Expected::Vector(v) = &mut expected {
            v.push((labels, values[0].unwrap_or(f64::NAN)));
        }
        j += 1;
    }
    Ok((
        EvalCmd {
            expr: expr.to_owned(),
            at,
            fail,
            ordered,
            expected,
            line,
        },
        j,
    ))
}

/// Prometheus's `almostEqual`: NaN equals NaN; otherwise a relative difference below 1e-6.
pub fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 0.000001;
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < min_normal {
        return diff < EPSILON * min_normal;
    }
    diff / (a.abs() + b.abs()) < EPSILON
}

fn compare(e: &EvalCmd, query: &str, value: &Value) -> Result<(), String> {
    match (value, &e.expected) {
        (Value::Matrix(_), _) => Err("received range result on instant evaluation".into()),
        (Value::String { .. }, _) => Err("received a string result".into()),
        (Value::Scalar { v, .. }, Expected::Scalar(want)) => {
            if almost_equal(*want, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {want} but got {v}"))
            }
        }
        (Value::Scalar { v, .. }, Expected::Vector(_)) => {
            Err(format!("expected a vector, got scalar {v}"))
        }
        (Value::Vector(got), Expected::Scalar(want)) => Err(format!(
            "expected scalar {want}, got a vector of {} samples",
            got.len()
        )),
        (Value::Vector(got), Expected::Vector(want)) => {
            for (pos, s) in got.iter().enumerate() {
                let Some(k) = want.iter().position(|(l, _)| *l == s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result of {query}",
                        s.labels
                    ));
                };
                if e.ordered && k != pos {
                    return Err(format!(
                        "expected metric {} at position {} but was at {}",
                        s.labels,
                        k + 1,
                        pos + 1
                    ));
                }
                if !almost_equal(want[k].1, s.v) {
                    return Err(format!(
                        "expected {} for {} but got {}",
                        want[k].1, s.labels, s.v
                    ));
                }
            }
            for (l, v) in want {
                if !got.iter().any(|s| s.labels == *l) {
                    return Err(format!("expected metric {l} with {v} not found"));
                }
            }
            Ok(())
        }
    }
}

/// Sets `@ ts` on every selector and subquery not below a subquery with `@`. Returns whether
/// the expression uses a time-dependent function (then the pinned variant proves nothing).
fn pin_at(e: &mut Expr, ts: i64) -> bool {
    use crate::parser::AtModifier;
    let pin = Some(AtModifier::Timestamp(ts));
    match e {
        Expr::Vector(vs) => {
            vs.at = vs.at.or(pin);
            false
        }
        Expr::Matrix(ms) => {
            ms.vs.at = ms.vs.at.or(pin);
            false
        }
        Expr::Subquery(sq) => {
            // Inside a pinned subquery nothing more is pinned.
            sq.at = sq.at.or(pin);
            false
        }
        Expr::Call(c) => {
            let mut unsafe_fn = c.func.id.at_modifier_unsafe();
            for a in &mut c.args {
                unsafe_fn |= pin_at(a, ts);
            }
            unsafe_fn
        }
        Expr::Aggregate(a) => {
            let mut u = pin_at(&mut a.expr, ts);
            if let Some(p) = &mut a.param {
                u |= pin_at(p, ts);
            }
            u
        }
        Expr::Binary(b) => pin_at(&mut b.lhs, ts) | pin_at(&mut b.rhs, ts),
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } | Expr::StepInvariant(expr) => {
            pin_at(expr, ts)
        }
        Expr::Number { .. } | Expr::String { .. } => false,
    }
}

fn run_eval(engine: &Engine, db: &Db, e: &EvalCmd) -> Result<usize, ScriptError> {
    let mut queries = vec![(e.expr.clone(), e.at)];
    let mut pinned = parser::parse(&e.expr).map_err(|x| err(e.line, x.to_string()))?;
    if !pin_at(&mut pinned, e.at) {
        let text = pinned.to_string();
        let times = if e.at == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * e.at, 0, e.at / 5, e.at, 10 * e.at]
        };
        queries.extend(times.into_iter().map(|t| (text.clone(), t)));
    }
    let mut n = 0;
    for (query, t) in &queries {
        n += 1;
        let res = engine.instant(db, query, *t);
        let value = match (res, e.fail) {
            (Err(_), true) => continue,
            (Err(x), false) => {
                return Err(err(
                    e.line,
                    format!("error evaluating query {query:?} at {t}: {x}"),
                ))
            }
            (Ok(_), true) => {
                return Err(err(
                    e.line,
                    format!("expected error evaluating query {query:?} but got none"),
                ))
            }
            (Ok(r), false) => r.value,
        };
        compare(e, query, &value).map_err(|m| err(e.line, format!("{query} at {t}: {m}")))?;
        // The same query as a range query must give the same values at `t`.
        n += 1;
        let r = engine
            .range(db, query, t - 60_000, t + 60_000, 60_000)
            .map_err(|x| {
                err(
                    e.line,
                    format!("error evaluating {query:?} in range mode: {x}"),
                )
            })?;
        if e.ordered {
            continue;
        }
        let Value::Matrix(m) = r.value else {
            return Err(err(e.line, "range query did not return a matrix"));
        };
        let at_t: Vec<crate::value::Sample> = m
            .into_iter()
            .filter_map(|s| {
                s.points
                    .iter()
                    .find(|p| p.t == *t)
                    .map(|p| crate::value::Sample {
                        labels: s.labels.clone(),
                        t: p.t,
                        v: p.v,
                    })
            })
            .collect();
        let as_instant = match value {
            Value::Scalar { .. } => Value::Scalar {
                t: *t,
                v: at_t.first().map_or(f64::NAN, |s| s.v),
            },
            _ => Value::Vector(at_t),
        };
        compare(e, query, &as_instant)
            .map_err(|m| err(e.line, format!("{query} at {t} (range mode): {m}")))?;
    }
    Ok(n)
}
