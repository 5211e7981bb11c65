//! `annals query instant|range|series|labels`: PromQL over a data directory, printed as
//! `promtool query` prints a Prometheus server's answers (`-o promql`, the default, or
//! `-o json`).
//!
//! The directory is opened read-only ([`Db::open_read_only`]), as `annals dump` opens it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use annals::{Db, Labels, Options};
use annals_promql::{Engine, Value};

/// Output format of `annals query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `promtool query`'s default text form.
    Promql,
    /// The JSON `promtool query -o json` prints.
    Json,
}

/// Why a query command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Opening or reading the data directory failed.
    #[error(transparent)]
    Storage(#[from] annals::Error),
    /// The query failed (its message says why, as Prometheus's API would).
    #[error("{0}")]
    Query(#[from] annals_promql::Error),
    /// A time or option is malformed.
    #[error("{0}")]
    BadArgument(String),
}

/// A query error as Prometheus's HTTP API reports it, `<type>: <message>` (parse errors are
/// about the `query` parameter).
pub fn api_error(e: &annals_promql::Error) -> String {
    match e {
        annals_promql::Error::Parse(p) => format!("bad_data: invalid parameter \"query\": {p}"),
        e => format!("{}: {e}", e.api_type()),
    }
}

/// Parses a time as promtool does: a Unix timestamp (seconds, may be fractional) or RFC 3339.
/// Returns milliseconds.
pub fn parse_time(s: &str) -> Result<i64, QueryError> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            let secs = f.trunc();
            let ms = ((f - secs) * 1000.0).round();
            return Ok(secs as i64 * 1000 + ms as i64);
        }
    }
    parse_rfc3339(s)
        .ok_or_else(|| QueryError::BadArgument(format!("cannot parse {s:?} to a valid timestamp")))
}

/// RFC 3339 (`2025-11-23T00:00:00Z`, `2025-11-23T01:00:00.5+01:00`) to milliseconds.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut ms = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let padded: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = padded.parse::<i64>().ok()?;
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 => {
            let sign = match tz.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (tz[1..3].parse::<i64>().ok()? * 3600 + tz[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days since the epoch (civil calendar).
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 12) } else { (y, mo) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (m2 - 3) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset) * 1000) + ms)
}

/// `model.Time.String()`: seconds, shortest decimal (`1700000000`, `1700000000.5`).
fn time_str(ms: i64) -> String {
    annals_promql::parser::format_float(ms as f64 / 1000.0)
}

/// `model.Metric.String()`: `name{a="b", c="d"}`, labels sorted as formatted strings.
fn metric_str(l: &Labels) -> String {
    let name = l.metric_name();
    let mut parts: Vec<String> = l
        .iter()
        .filter(|x| x.name != "__name__")
        .map(|x| format!("{}={}", x.name, go_quote(x.value)))
        .collect();
    if parts.is_empty() {
        return name.map_or_else(|| "{}".into(), str::to_owned);
    }
    parts.sort();
    format!("{}{{{}}}", name.unwrap_or(""), parts.join(", "))
}

/// `model.LabelSet.String()`: every label, `__name__` included, in braces.
fn label_set_str(l: &Labels) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|x| format!("{}={}", x.name, go_quote(x.value)))
        .collect();
    parts.sort();
    format!("{{{}}}", parts.join(", "))
}

fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn value_str(v: f64) -> String {
    annals_promql::parser::format_float(v)
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// Go's `encoding/json` of a label set: an object with sorted keys, `<`, `>`, `&` escaped.
fn json_labels(l: &Labels) -> String {
    let body: Vec<String> = l
        .iter()
        .map(|x| format!("{}:{}", go_json_str(x.name), go_json_str(x.value)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Go's JSON string encoding (HTML-safe: `<`, `>`, `&`, U+2028 and U+2029 escaped).
fn go_json_str(s: &str) -> String {
    json_str(s)
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Renders a query result as `promtool query` prints it.
pub fn render(v: &Value, format: Format) -> String {
    match format {
        Format::Promql => {
            let mut s = match v {
                Value::Scalar { t, v } => format!("scalar: {} @[{}]", value_str(*v), time_str(*t)),
                Value::String { v, .. } => v.clone(),
                Value::Vector(samples) => samples
                    .iter()
                    .map(|s| {
                        format!(
                            "{} => {} @[{}]",
                            metric_str(&s.labels),
                            value_str(s.v),
                            time_str(s.t)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                Value::Matrix(series) => series
                    .iter()
                    .map(|s| {
                        let vals: Vec<String> = s
                            .points
                            .iter()
                            .map(|p| format!("{} @[{}]", value_str(p.v), time_str(p.t)))
                            .collect();
                        format!("{} =>\n{}", metric_str(&s.labels), vals.join("\n"))
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            s.push('\n');
            s
        }
        Format::Json => {
            let pair = |t: i64, v: f64| format!("[{},{}]", time_str(t), json_str(&value_str(v)));
            let mut s = match v {
                Value::Scalar { t, v } => pair(*t, *v),
                Value::String { t, v } => format!("[{},{}]", time_str(*t), go_json_str(v)),
                Value::Vector(samples) => format!(
                    "[{}]",
                    samples
                        .iter()
                        .map(|s| format!(
                            "{{\"metric\":{},\"value\":{}}}",
                            json_labels(&s.labels),
                            pair(s.t, s.v)
                        ))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                Value::Matrix(series) => format!(
                    "[{}]",
                    series
                        .iter()
                        .map(|s| format!(
                            "{{\"metric\":{},\"values\":[{}]}}",
                            json_labels(&s.labels),
                            s.points
                                .iter()
                                .map(|p| pair(p.t, p.v))
                                .collect::<Vec<_>>()
                                .join(",")
                        ))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            };
            s.push('\n');
            s
        }
    }
}

fn open(dir: &Path) -> Result<Db, QueryError> {
    Ok(Db::open_read_only(dir, Options::default())?)
}

/// `annals query instant`: evaluates `expr` at `time` (ms).
pub fn instant(dir: &Path, expr: &str, time: i64, format: Format) -> Result<String, QueryError> {
    let db = open(dir)?;
    let r = Engine::default().instant(&db, expr, time)?;
    Ok(render(&r.value, format))
}

/// `annals query range`: evaluates `expr` from `start` to `end` every `step` (ms).
pub fn range(
    dir: &Path,
    expr: &str,
    start: i64,
    end: i64,
    step: i64,
    format: Format,
) -> Result<String, QueryError> {
    if start >= end {
        return Err(QueryError::BadArgument(
            "start time is not before end time".into(),
        ));
    }
    if (end - start) / step > annals_promql::MAX_POINTS_PER_SERIES {
        return Err(QueryError::BadArgument(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    let db = open(dir)?;
    let r = Engine::default().range(&db, expr, start, end, step)?;
    Ok(render(&r.value, format))
}

/// promtool's default step: the range over 250, at least a second.
pub fn default_step(start: i64, end: i64) -> i64 {
    (((end - start) as f64 / 1000.0 / 250.0).floor().max(1.0) as i64) * 1000
}

fn parse_matchers(matches: &[String]) -> Result<Vec<Vec<annals::Matcher>>, QueryError> {
    matches
        .iter()
        .map(|m| {
            annals_promql::parser::parse_selector(m)
                .map_err(|e| QueryError::BadArgument(format!("invalid parameter \"match[]\": {e}")))
        })
        .collect()
}

/// The series matching any of `matches` with samples in `[start, end]` (ms).
fn matching_series(
    db: &Db,
    matches: &[String],
    start: i64,
    end: i64,
) -> Result<BTreeSet<Labels>, QueryError> {
    let q = db.querier(start, end)?;
    let mut out = BTreeSet::new();
    for m in parse_matchers(matches)? {
        for s in q.select(&m)? {
            out.insert(s.labels().clone());
        }
    }
    Ok(out)
}

/// `annals query series`: the label sets of the series matching any of `matches`.
pub fn series(
    dir: &Path,
    matches: &[String],
    start: i64,
    end: i64,
    format: Format,
) -> Result<String, QueryError> {
    if matches.is_empty() {
        return Err(QueryError::BadArgument(
            "no match[] parameter provided".into(),
        ));
    }
    let db = open(dir)?;
    let set = matching_series(&db, matches, start, end)?;
    Ok(match format {
        Format::Promql => set.iter().map(|l| label_set_str(l) + "\n").collect(),
        Format::Json => format!(
            "[{}]\n",
            set.iter().map(json_labels).collect::<Vec<_>>().join(",")
        ),
    })
}

/// `annals query labels`: the values of label `name` (among the series matching any of
/// `matches`, when given).
pub fn labels(
    dir: &Path,
    name: &str,
    matches: &[String],
    start: i64,
    end: i64,
    format: Format,
) -> Result<String, QueryError> {
    let db = open(dir)?;
    let values: BTreeSet<String> = if matches.is_empty() {
        db.querier(start, end)?
            .label_values(name, &[])?
            .into_iter()
            .collect()
    } else {
        matching_series(&db, matches, start, end)?
            .iter()
            .filter_map(|l| l.get(name).map(str::to_owned))
            .collect()
    };
    Ok(match format {
        Format::Promql => values.iter().map(|v| v.clone() + "\n").collect(),
        Format::Json => format!(
            "[{}]\n",
            values
                .iter()
                .map(|v| go_json_str(v))
                .collect::<Vec<_>>()
                .join(",")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_promtool() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1700000000.25").unwrap(), 1_700_000_000_250);
        assert_eq!(
            parse_time("2025-11-23T00:00:00Z").unwrap(),
            1_763_856_000_000
        );
        assert_eq!(
            parse_time("2025-11-23T01:00:00.5+01:00").unwrap(),
            1_763_856_000_500
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn metrics_print_as_client_golang() {
        let l = Labels::new([("__name__", "up"), ("a0", "x"), ("a", "y")]).unwrap();
        // Sorted as formatted strings: `a0="x"` before `a="y"`.
        assert_eq!(metric_str(&l), "up{a0=\"x\", a=\"y\"}");
        assert_eq!(metric_str(&Labels::empty()), "{}");
        assert_eq!(time_str(1_700_000_000_500), "1700000000.5");
        assert_eq!(time_str(1_700_000_000_000), "1700000000");
    }
}
