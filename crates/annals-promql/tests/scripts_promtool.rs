//! The expectations of `tests/scripts/*.test` checked against Prometheus 2.42 itself: each
//! script becomes a `promtool test rules` unit-test file (same data, same instant queries,
//! same expected samples) and promtool must agree. promtool compares floats exactly and NaN
//! never equals NaN, so its reported mismatches are accepted when they are within the test
//! scripts' tolerance (relative 1e-6) or both NaN; labels must match exactly. `eval_fail` and
//! the order of `eval_ordered` are not expressible there and are left to the runner.
//!
//! Skips outside CI when `promtool` is not installed; fails in CI (`CI=true`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use annals_promql::parser::parse_duration;
use annals_promql::script::almost_equal;

fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool is required in CI"
        );
        eprintln!("SKIPPED: promtool not found on PATH");
    }
    found
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Expands series values into one token per step of the load's interval: `_`, `stale`, or a
/// number as written (Prometheus's notation `a+bxn`, `axn`, `_xn` expanded here).
fn expand(values: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for tok in values.split_whitespace() {
        if let Some(n) = tok.strip_prefix("_x") {
            out.extend(std::iter::repeat_n(None, n.parse().expect("repetition")));
        } else if tok == "_" {
            out.push(None);
        } else if let Some((head, n)) = tok.rsplit_once('x').filter(|(h, n)| {
            !h.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        }) {
            let n: usize = n.parse().expect("repetition");
            // `a+b` or `a-b` (the sign after the first character), else a plain value.
            let split = head[1..]
                .find(['+', '-'])
                .map(|i| i + 1)
                .filter(|&i| !head[..i].ends_with(['e', 'E']));
            match split {
                Some(i) => {
                    let a: f64 = head[..i].parse().expect("start value");
                    let d: f64 = head[i..].parse().expect("increment");
                    for k in 0..=n {
                        out.push(Some(format!("{:?}", a + k as f64 * d)));
                    }
                }
                None => out.extend(std::iter::repeat_n(Some(head.to_owned()), n + 1)),
            }
        } else {
            out.push(Some(tok.to_owned()));
        }
    }
    out
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

fn yaml_float(v: f64) -> String {
    if v.is_nan() {
        ".nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { ".inf" } else { "-.inf" }.into()
    } else {
        format!("{v:?}")
    }
}

/// Converts a script into promtool unit tests: one test group per part between `clear`s.
fn to_promtool(script: &str) -> String {
    let lines: Vec<&str> = script
        .lines()
        .map(|l| l.trim())
        .map(|l| if l.starts_with('#') { "" } else { l })
        .collect();
    // Per part between `clear`s: its loads (interval, series and values) and its tests.
    type Load = (i64, Vec<(String, String)>);
    let mut groups: Vec<(Vec<Load>, Vec<String>)> = vec![Default::default()];
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        i += 1;
        if l.is_empty() {
            continue;
        }
        if l == "clear" {
            groups.push(Default::default());
        } else if let Some(gap) = l.strip_prefix("load") {
            let gap = parse_duration(gap.trim()).expect("load interval");
            let mut series = Vec::new();
            while i < lines.len() && !lines[i].is_empty() {
                let def = lines[i];
                let split = match def.find('}') {
                    Some(b) => b + 1,
                    None => def.find(' ').expect("series and values"),
                };
                series.push((def[..split].to_owned(), def[split..].trim().to_owned()));
                i += 1;
            }
            groups.last_mut().expect("a group").0.push((gap, series));
        } else if let Some(rest) = l.strip_prefix("eval ") {
            let rest = rest
                .trim_start()
                .strip_prefix("instant at ")
                .expect("instant at");
            let (at, expr) = rest.split_once(' ').expect("time and query");
            let at = parse_duration(at).expect("eval time");
            let mut samples = Vec::new();
            let mut scalar = None;
            while i < lines.len() && !lines[i].is_empty() {
                let d = lines[i];
                i += 1;
                if let Ok(v) = d.parse::<f64>() {
                    scalar = Some(v);
                    break;
                }
                let (labels, value) = d.rsplit_once(' ').expect("labels and value");
                let value = match value {
                    "Inf" | "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    "NaN" => f64::NAN,
                    v => v.parse().expect("expected value"),
                };
                samples.push((labels.trim().to_owned(), value));
            }
            if let Some(v) = scalar {
                samples.push(("{}".to_owned(), v));
            }
            let mut t = format!(
                "      - expr: {}\n        eval_time: {}ms\n        exp_samples:\n",
                yaml_str(expr),
                at
            );
            for (labels, v) in samples {
                t.push_str(&format!(
                    "          - labels: {}\n            value: {}\n",
                    yaml_str(&labels),
                    yaml_float(v)
                ));
            }
            groups.last_mut().expect("a group").1.push(t);
        } else {
            // eval_fail and eval_ordered: not expressible as promtool unit tests.
            while i < lines.len() && !lines[i].is_empty() {
                i += 1;
            }
        }
    }
    let mut out = String::from("rule_files: []\nevaluation_interval: 1m\ntests:\n");
    for (loads, tests) in groups {
        if tests.is_empty() {
            continue;
        }
        let interval = loads.iter().map(|l| l.0).fold(0, gcd).max(1);
        let mut series: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for (gap, defs) in &loads {
            let step = (gap / interval) as usize;
            for (name, values) in defs {
                let arr = series.entry(name.clone()).or_default();
                for (k, v) in expand(values).into_iter().enumerate() {
                    if arr.len() <= k * step {
                        arr.resize(k * step + 1, None);
                    }
                    if v.is_some() {
                        arr[k * step] = v;
                    }
                }
            }
        }
        out.push_str(&format!("  - interval: {interval}ms\n    input_series:\n"));
        for (name, values) in series {
            let v: Vec<String> = values
                .into_iter()
                .map(|v| v.unwrap_or_else(|| "_".into()))
                .collect();
            out.push_str(&format!(
                "      - series: {}\n        values: {}\n",
                yaml_str(&name),
                yaml_str(&v.join(" "))
            ));
        }
        out.push_str("    promql_expr_test:\n");
        for t in tests {
            out.push_str(&t);
        }
    }
    out
}

/// `{a="b"} 1.5E+00, {c="d"} NaN` as promtool prints samples.
fn parse_samples(s: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some(close) = rest.find("} ") {
        let labels = rest[..=close].to_owned();
        let after = &rest[close + 2..];
        let end = after.find(", {").unwrap_or(after.len());
        let v = match after[..end].trim() {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or(f64::NAN),
        };
        out.push((labels, v));
        rest = after[end..].trim_start_matches(", ");
    }
    out
}

#[test]
fn script_expectations_agree_with_promtool() {
    let Some(promtool) = promtool() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut failures = Vec::new();
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).expect("scripts") {
        let path = e.expect("entry").path();
        if path.extension().is_none_or(|x| x != "test") {
            continue;
        }
        let name = path
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let yml = tmp.path().join(format!("{name}.yml"));
        std::fs::write(
            &yml,
            to_promtool(&std::fs::read_to_string(&path).expect("script")),
        )
        .expect("write unit tests");
        let out = Command::new(&promtool)
            .arg("test")
            .arg("rules")
            .arg(&yml)
            .output()
            .expect("run promtool");
        checked += 1;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            continue;
        }
        // Every reported mismatch must be within tolerance; anything else is a failure.
        let lines: Vec<&str> = text.lines().collect();
        let mut mismatches = 0;
        for (k, l) in lines.iter().enumerate() {
            if let Some(exp) = l.trim().strip_prefix("exp: ") {
                mismatches += 1;
                let got = lines
                    .get(k + 1)
                    .and_then(|g| g.trim().strip_prefix("got: "));
                let (exp, got) = (parse_samples(exp), parse_samples(got.unwrap_or("")));
                let same = exp.len() == got.len()
                    && exp
                        .iter()
                        .zip(&got)
                        .all(|(a, b)| a.0 == b.0 && almost_equal(a.1, b.1));
                if !same {
                    failures.push(format!(
                        "{name}: {}\n  exp {exp:?}\n  got {got:?}",
                        lines[k - 1].trim()
                    ));
                }
            }
        }
        if mismatches == 0 || text.contains("parse error") || text.contains("unmarshal") {
            failures.push(format!("{name}: promtool failed:\n{text}"));
        }
    }
    assert!(checked >= 8, "only {checked} scripts");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
