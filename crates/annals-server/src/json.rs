//! The JSON bodies of the HTTP API, byte for byte as Prometheus 2.42 writes them
//! (`web/api/v1/api.go` with `util/jsonutil`): the `{"status":...}` envelope, label sets as
//! objects with sorted keys, sample values as strings in Go's `strconv.FormatFloat` shortest
//! form (`'e'` below 1e-6 and from 1e21, as `jsonutil.MarshalValue`), timestamps as seconds with
//! up to three decimals, and strings escaped as Go's `encoding/json` escapes them (HTML-safe).

use std::fmt::Write as _;

use annals::Labels;

/// The value of a PromQL evaluation, in the shapes the API renders.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar at a timestamp (ms).
    Scalar {
        /// Evaluation time in ms.
        t: i64,
        /// The value.
        v: f64,
    },
    /// A string at a timestamp (ms).
    String {
        /// Evaluation time in ms.
        t: i64,
        /// The string.
        s: String,
    },
    /// An instant vector: one sample per series.
    Vector(Vec<VectorSample>),
    /// A range vector or range-query result: series with their points, oldest first.
    Matrix(Vec<MatrixSeries>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    /// The series' labels.
    pub metric: Labels,
    /// Timestamp in ms.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// One series of a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSeries {
    /// The series' labels.
    pub metric: Labels,
    /// `(timestamp ms, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

impl Value {
    /// `resultType` of the value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Error types of the API with their HTTP status codes (`respondError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `timeout`: 503.
    Timeout,
    /// `canceled`: 503.
    Canceled,
    /// `execution`: 422.
    Execution,
    /// `bad_data`: 400.
    BadData,
    /// `internal`: 500.
    Internal,
    /// `unavailable`: 500, as Prometheus answers it.
    Unavailable,
    /// `not_found`: 404.
    NotFound,
}

impl ErrorType {
    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Execution => "execution",
            ErrorType::BadData => "bad_data",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
        }
    }

    /// The HTTP status code Prometheus answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorType::BadData => 400,
            ErrorType::Execution => 422,
            ErrorType::Canceled | ErrorType::Timeout => 503,
            ErrorType::NotFound => 404,
            ErrorType::Internal | ErrorType::Unavailable => 500,
        }
    }
}

/// Appends `s` as a JSON string, escaped as Go's `encoding/json` (and jsoniter's
/// standard-library-compatible mode) escape it: `<`, `>`, `&`, U+2028 and U+2029 as `\u00XX`/
/// `\u20XX`, control characters other than `\n`, `\r`, `\t` as `\u00XX`.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => None,
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a label set as a JSON object with keys in label order (Go marshals maps sorted by
/// key, and label sets are sorted by name).
pub fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, l.name);
        out.push(':');
        write_str(out, l.value);
    }
    out.push('}');
}

/// Appends a timestamp in ms as seconds, as `jsonutil.MarshalTimestamp` does: the integer
/// seconds and, when not whole, `.` and the milliseconds padded to three digits (1500 ms is
/// `1.500`, not `1.5`).
pub fn write_timestamp(out: &mut String, t: i64) {
    let mut t = t as i128;
    if t < 0 {
        out.push('-');
        t = -t;
    }
    let _ = write!(out, "{}", t / 1000);
    let frac = t % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// Formats `v` as Go's `strconv.FormatFloat(v, 'f', -1, 64)`, or with `'e'` when
/// `|v| < 1e-6` or `|v| >= 1e21` (non-zero), as `jsonutil.MarshalValue` chooses; infinities
/// and NaN as `+Inf`, `-Inf`, `NaN`.
pub fn format_value(v: f64) -> String {
    let mut s = String::new();
    push_value(&mut s, v);
    s
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let abs = v.abs();
        if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
            // Rust's `{:e}` is the shortest round-trip mantissa too; Go writes the exponent
            // with a sign and at least two digits.
            let e = format!("{v:e}");
            let (mant, exp) = e.split_once('e').expect("{:e} always has an exponent");
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let _ = write!(out, "{mant}e{sign}{digits:0>2}");
        } else {
            // Display is the shortest round-trip representation without an exponent, as Go's
            // 'f' with precision -1.
            let _ = write!(out, "{v}");
        }
    }
}

/// Appends `v` as a quoted value string.
pub fn write_value(out: &mut String, v: f64) {
    out.push('"');
    push_value(out, v);
    out.push('"');
}

/// Appends `[ts, "v"]`.
pub fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push(',');
    write_value(out, v);
    out.push(']');
}

/// Appends the `data` object of a query answer: `{"resultType":...,"result":...}`, with the
/// optional pre-rendered `stats` object.
pub fn write_query_data(out: &mut String, value: &Value, stats: Option<&str>) {
    out.push_str("{\"resultType\":\"");
    out.push_str(value.type_name());
    out.push_str("\",\"result\":");
    match value {
        Value::Scalar { t, v } => write_point(out, *t, *v),
        Value::String { t, s } => {
            out.push('[');
            write_timestamp(out, *t);
            out.push(',');
            write_str(out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.metric);
                out.push_str(",\"value\":");
                write_point(out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.metric);
                if !s.points.is_empty() {
                    out.push_str(",\"values\":[");
                    for (j, &(t, v)) in s.points.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_point(out, t, v);
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push(']');
        }
    }
    if let Some(stats) = stats {
        out.push_str(",\"stats\":");
        out.push_str(stats);
    }
    out.push('}');
}

/// A success envelope around pre-rendered `data` JSON (`None`: `"data"` is omitted, as
/// Prometheus does for a nil result), with warnings if any.
pub fn success(data: Option<&str>, warnings: &[String]) -> String {
    let mut out = String::with_capacity(data.map_or(0, str::len) + 32);
    out.push_str("{\"status\":\"success\"");
    if let Some(d) = data {
        out.push_str(",\"data\":");
        out.push_str(d);
    }
    push_warnings(&mut out, warnings);
    out.push('}');
    out
}

/// An error envelope.
pub fn error(typ: ErrorType, msg: &str, warnings: &[String]) -> String {
    let mut out = String::with_capacity(msg.len() + 64);
    out.push_str("{\"status\":\"error\",\"errorType\":\"");
    out.push_str(typ.as_str());
    out.push_str("\",\"error\":");
    write_str(&mut out, msg);
    push_warnings(&mut out, warnings);
    out.push('}');
    out
}

fn push_warnings(out: &mut String, warnings: &[String]) {
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":[");
        for (i, w) in warnings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_str(out, w);
        }
        out.push(']');
    }
}

/// A JSON array of strings.
pub fn string_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, s);
    }
    out.push(']');
    out
}

/// A JSON array of label-set objects (`/api/v1/series`).
pub fn labels_array<'a>(items: impl IntoIterator<Item = &'a Labels>) -> String {
    let mut out = String::from("[");
    for (i, l) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_labels(&mut out, l);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn values_format_as_go_strconv() {
        // Expected strings are what Go 1.19's strconv.AppendFloat writes with the format
        // jsonutil.MarshalValue picks.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123456789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (1e-6, "0.000001"),
            (9.99e-7, "9.99e-07"),
            (1e-7, "1e-07"),
            (-2.5e-10, "-2.5e-10"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (1700000000.123, "1700000000.123"),
            (0.000123, "0.000123"),
        ];
        for &(v, want) in cases {
            assert_eq!(format_value(v), want, "{v:?}");
        }
    }

    #[test]
    fn timestamps_format_as_marshal_timestamp() {
        let cases: &[(i64, &str)] = &[
            (0, "0"),
            (1000, "1"),
            (1500, "1.500"),
            (1_435_781_451_781, "1435781451.781"),
            (1_435_781_451_001, "1435781451.001"),
            (1_435_781_451_010, "1435781451.010"),
            (-1500, "-1.500"),
            (-1, "-0.001"),
            (i64::MIN, "-9223372036854775.808"),
            (i64::MAX, "9223372036854775.807"),
        ];
        for &(t, want) in cases {
            let mut s = String::new();
            write_timestamp(&mut s, t);
            assert_eq!(s, want, "{t}");
        }
    }

    #[test]
    fn strings_escape_as_go_encoding_json() {
        let mut s = String::new();
        write_str(
            &mut s,
            "a\"b\\c\nd\re\tf<g>h&i\u{1}j\u{7f}k\u{2028}l\u{2029}mé\u{8}",
        );
        assert_eq!(
            s,
            r#""a\"b\\c\nd\re\tf\u003cg\u003eh\u0026i\u0001j"#.to_owned()
                + "\u{7f}k\\u2028l\\u2029mé\\u0008\""
        );
    }

    #[test]
    fn query_results_render_as_prometheus() {
        let m = labels(&[("__name__", "up"), ("job", "a")]);
        let vector = Value::Vector(vec![VectorSample {
            metric: m.clone(),
            t: 1_435_781_451_781,
            v: 1.0,
        }]);
        let mut out = String::new();
        write_query_data(&mut out, &vector, None);
        assert_eq!(
            success(Some(&out), &[]),
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1435781451.781,"1"]}]}}"#
        );

        let matrix = Value::Matrix(vec![
            MatrixSeries {
                metric: m.clone(),
                points: vec![(1000, f64::NAN), (2500, -0.5)],
            },
            MatrixSeries {
                metric: m,
                points: vec![],
            },
        ]);
        let mut out = String::new();
        write_query_data(&mut out, &matrix, None);
        assert_eq!(
            out,
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[1,"NaN"],[2.500,"-0.5"]]},{"metric":{"__name__":"up","job":"a"}}]}"#
        );

        let mut out = String::new();
        write_query_data(&mut out, &Value::Scalar { t: 1, v: 1e-9 }, None);
        assert_eq!(out, r#"{"resultType":"scalar","result":[0.001,"1e-09"]}"#);

        let mut out = String::new();
        write_query_data(
            &mut out,
            &Value::String {
                t: 2000,
                s: "<x>".into(),
            },
            None,
        );
        assert_eq!(
            out,
            r#"{"resultType":"string","result":[2,"\u003cx\u003e"]}"#
        );
    }

    #[test]
    fn error_envelopes_carry_type_and_warnings() {
        assert_eq!(
            error(ErrorType::BadData, "bad \"x\"", &["w1".into()]),
            r#"{"status":"error","errorType":"bad_data","error":"bad \"x\"","warnings":["w1"]}"#
        );
        assert_eq!(ErrorType::Execution.status(), 422);
        assert_eq!(ErrorType::Timeout.status(), 503);
        assert_eq!(ErrorType::Canceled.status(), 503);
        assert_eq!(ErrorType::Internal.status(), 500);
        assert_eq!(ErrorType::BadData.status(), 400);
        assert_eq!(success(None, &[]), r#"{"status":"success"}"#);
    }
}
