//! Cases after Prometheus 2.42's `TestPromParse`, `TestOpenMetricsParse` and their error
//! tables, plus properties (round trip of generated exposition, never a panic).

use super::*;
use proptest::prelude::*;

fn all(body: &str, f: Format) -> Result<Vec<(String, f64, Option<i64>)>, ParseError> {
    let mut p = Parser::new(body.as_bytes(), f);
    let mut out = Vec::new();
    while let Some(e) = p.next()? {
        if let Entry::Sample {
            series,
            value,
            timestamp,
        } = e
        {
            out.push((
                String::from_utf8(series.to_vec()).unwrap(),
                value,
                timestamp,
            ));
        }
    }
    Ok(out)
}

#[test]
fn prometheus_text() {
    let body = r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# 	TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25",} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-05
go_gc_duration_seconds{quantile="0.8", a="b"} 8.3835e-05
go_gc_duration_seconds{ quantile="0.9", a="b"} 8.3835e-05
# Hrandom comment starting with prefix of HELP
#
wind_speed{A="2",c="3"} 12345
# comment with escaped \n newline
# comment with escaped \ escape character
# HELP nohelp1
# HELP nohelp2 
go_gc_duration_seconds{ quantile="1.0", a="b" } 8.3835e-05
go_gc_duration_seconds { quantile="1.0", a="b" } 8.3835e-05
go_gc_duration_seconds { quantile= "1.0", a= "b", } 8.3835e-05
go_gc_duration_seconds { quantile = "1.0", a = "b" } 8.3835e-05
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b="c"}	1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33  	123123
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore="foo"} 1
testmetric{label="\"bar\""} 1
null_byte_metric{a="abc\x00"} 1"#;
    let got = all(body, Format::Prometheus).unwrap();
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(names[0], r#"go_gc_duration_seconds{quantile="0"}"#);
    assert_eq!(
        names[4],
        r#"go_gc_duration_seconds{ quantile="0.9", a="b"}"#
    );
    assert_eq!(
        names[6],
        r#"go_gc_duration_seconds{ quantile="1.0", a="b" }"#
    );
    assert_eq!(
        names[7],
        r#"go_gc_duration_seconds { quantile="1.0", a="b" }"#
    );
    assert_eq!(got.len(), 17);
    assert_eq!(got[12], ("go_goroutines".to_string(), 33.0, Some(123123)));
    assert_eq!(got[5].1, 12345.0);
    let (name, labels) = parse_series(got[15].0.as_bytes()).unwrap();
    assert_eq!(name, "testmetric");
    assert_eq!(
        labels,
        vec![(Cow::Borrowed("label"), Cow::Owned::<str>("\"bar\"".into()))]
    );
    let (_, labels) = parse_series(names[8].as_bytes()).unwrap();
    assert_eq!(labels.len(), 2);
    assert_eq!(labels[1].1, "b");
}

#[test]
fn prometheus_text_values_and_last_line() {
    let got = all("a +Inf\nb -Inf\nc NaN\nd 1e3 -5\ne 7", Format::Prometheus).unwrap();
    assert_eq!(got[0].1, f64::INFINITY);
    assert_eq!(got[1].1, f64::NEG_INFINITY);
    assert!(got[2].1.is_nan());
    assert_eq!(got[3], ("d".into(), 1000.0, Some(-5)));
    assert_eq!(got[4], ("e".into(), 7.0, None));
}

#[test]
fn prometheus_text_errors() {
    for (body, want) in [
        ("a", "expected value"),
        ("a{b='c'} 1\n", "expected '\"'"),
        ("a{b=\"c\" 1\n", "expected ',' or '}'"),
        ("a{1=\"c\"} 1\n", "expected label name"),
        ("a 1 2 3\n", "line break"),
        ("a 0x1p3\n", "expected value"),
        ("a 1_000\n", "expected value"),
        ("a 1 1.5\n", "invalid timestamp"),
        ("# TYPE a bogus\n", "invalid metric type"),
        ("{a=\"b\"} 1\n", "not a valid start token"),
        ("a{b=\"\\\n\"} 1\n", "not terminated"),
        ("a{b=\"\u{0}\"} 1\n", ""),
    ] {
        let r = std::panic::catch_unwind(|| all(body, Format::Prometheus));
        let r = r.expect("never panics");
        if want.is_empty() {
            continue;
        }
        let e = r.expect_err(body);
        assert!(e.reason.contains(want), "{body:?}: {e}");
    }
}

#[test]
fn openmetrics() {
    let body = "# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# TYPE go_gc_duration_seconds summary
# UNIT go_gc_duration_seconds seconds
go_gc_duration_seconds{quantile=\"0\"} 4.9351e-05
go_gc_duration_seconds{quantile=\"0.25\"} 7.424100000000001e-05
go_gc_duration_seconds_count 99
# TYPE hh histogram
hh_bucket{le=\"+Inf\"} 1 # {id=\"histogram-bucket-test\"} 4
hhh_bucket{le=\"+Inf\"} 1 123 # {id=\"x\"} 2 123
ii{foo=\"bar\"} 1 1520879607.789
# EOF
";
    let got = all(body, Format::OpenMetrics).unwrap();
    assert_eq!(got.len(), 6);
    assert_eq!(got[3].0, "hh_bucket{le=\"+Inf\"}");
    assert_eq!(got[4].2, Some(123000));
    assert_eq!(got[5].2, Some(1520879607789));
}

#[test]
fn openmetrics_errors() {
    for (body, want) in [
        ("a 1\n", "does not end with # EOF"),
        ("a 1\n# EOF\nb 2\n", "after # EOF"),
        ("# TYPE a untyped\n# EOF\n", "invalid metric type"),
        ("#  TYPE a gauge\n# EOF\n", "invalid comment"),
        ("# TYPE 1a gauge\n# EOF\n", "expected a metric name"),
        ("# random\n# EOF\n", "invalid comment"),
        ("a  1\n# EOF\n", "expected value"),
        ("a{b=\"c\",} 1\n# EOF\n", "after ','"),
        ("a 1 # {x=\"y\"} 1\n# EOF\n", "does not support exemplars"),
        (
            "a_total 1 # {x=\"y\"} nope\n# EOF\n",
            "invalid exemplar value",
        ),
        ("a 1 NaN\n# EOF\n", "invalid timestamp"),
        ("# UNIT a_seconds bytes\n# EOF\n", "unit not a suffix"),
    ] {
        let e = all(body, Format::OpenMetrics).expect_err(body);
        assert!(e.reason.contains(want), "{body:?}: {e}");
    }
}

#[test]
fn content_types() {
    assert_eq!(
        Format::for_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::for_content_type("text/plain; version=0.0.4"),
        Format::Prometheus
    );
    assert_eq!(Format::for_content_type(""), Format::Prometheus);
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

proptest! {
    /// Generated exposition parses back to the same names, labels, values and timestamps.
    #[test]
    fn round_trip(
        series in proptest::collection::vec(("[a-z_:][a-z0-9_:]{0,10}", proptest::collection::vec(("[a-z_][a-z0-9_]{0,6}", "\\PC{0,8}"), 0..4), any::<f64>(), proptest::option::of(-1_000_000_000_000i64..1_000_000_000_000)), 0..20),
        om in any::<bool>(),
    ) {
        let mut body = String::new();
        for (name, labels, v, t) in &series {
            body.push_str(name);
            if !labels.is_empty() {
                body.push('{');
                let l: Vec<String> = labels.iter().map(|(n, v)| format!("{n}=\"{}\"", escape(v))).collect();
                body.push_str(&l.join(","));
                body.push('}');
            }
            let vs = if v.is_nan() { "NaN".to_string() } else if v.is_infinite() { if *v > 0.0 { "+Inf".into() } else { "-Inf".into() } } else { format!("{v:?}") };
            body.push(' ');
            body.push_str(&vs);
            if let Some(t) = t {
                if om { let sign = if *t < 0 { "-" } else { "" }; body.push_str(&format!(" {sign}{}.{:03}", t.abs() / 1000, t.abs() % 1000)); } else { body.push_str(&format!(" {t}")); }
            }
            body.push('\n');
        }
        if om { body.push_str("# EOF\n"); }
        let f = if om { Format::OpenMetrics } else { Format::Prometheus };
        let got = all(&body, f).unwrap();
        prop_assert_eq!(got.len(), series.len());
        for (g, (name, labels, v, t)) in got.iter().zip(&series) {
            let (n, ls) = parse_series(g.0.as_bytes()).unwrap();
            prop_assert_eq!(n.as_ref(), name.as_str());
            let ls: Vec<(String, String)> = ls.into_iter().map(|(a, b)| (a.into_owned(), b.into_owned())).collect();
            let want: Vec<(String, String)> = labels.clone();
            prop_assert_eq!(ls, want);
            prop_assert_eq!(g.1.to_bits() == v.to_bits() || (g.1.is_nan() && v.is_nan()), true);
            if !om { prop_assert_eq!(g.2, *t); }
            else if let Some(t) = t {
                // Seconds with 3 decimals through a float: within a millisecond.
                prop_assert!((g.2.unwrap() - t).abs() <= 1);
            }
        }
    }

    #[test]
    fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..300), om in any::<bool>()) {
        let f = if om { Format::OpenMetrics } else { Format::Prometheus };
        let mut p = Parser::new(&b, f);
        for _ in 0..1000 {
            match p.next() {
                Ok(Some(Entry::Sample { series, .. })) => { let _ = parse_series(series); }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
}
