//! Prometheus's `TestPostingsForMatchers` (tsdb/querier_test.go) as a reusable fixture, so the
//! head's and the blocks' postings code can run the same table the matchers pass.
//!
//! The upstream table (HEAD) uses Prometheus 3 regex semantics, where `.` matches `\n`. Under
//! 2.x semantics (§1.16) the series `{n="1", i="\n"}` is not matched by `.*`/`.+` and so is
//! matched by their negations: cases 14, 15, 24, 25, 35, 36, 38, 40, 41 and 42 (0-based) differ
//! from upstream. Every
//! expectation here was checked against Prometheus 2.42 (`promtool test rules`, with a metric
//! name added to each series and selector).

use crate::model::{Labels, MatchType, Matcher};

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied()).expect("valid fixture labels")
}

fn m(name: &str, op: &str, value: &str) -> Matcher {
    let kind = match op {
        "=" => MatchType::Equal,
        "!=" => MatchType::NotEqual,
        "=~" => MatchType::Regex,
        "!~" => MatchType::NotRegex,
        _ => panic!("unknown operator {op}"),
    };
    Matcher::new(kind, name, value).expect("valid fixture matcher")
}

/// Five small series for postings tests: `{n="1"}`, `{n="1", i="a"}`, `{n="1", i="b"}`,
/// `{n="2"}`, `{n="2.5"}`.
pub(crate) fn five_series() -> Vec<Labels> {
    [
        vec![("n", "1")],
        vec![("n", "1"), ("i", "a")],
        vec![("n", "1"), ("i", "b")],
        vec![("n", "2")],
        vec![("n", "2.5")],
    ]
    .iter()
    .map(|p| ls(p))
    .collect()
}

/// The six series of the fixture, sorted.
pub(crate) fn postings_for_matchers_series() -> Vec<Labels> {
    let mut v = vec![
        ls(&[("n", "1")]),
        ls(&[("n", "1"), ("i", "a")]),
        ls(&[("n", "1"), ("i", "b")]),
        ls(&[("n", "1"), ("i", "\n")]),
        ls(&[("n", "2")]),
        ls(&[("n", "2.5")]),
    ];
    v.sort();
    v
}

/// The 43 cases: matchers and the series (of [`postings_for_matchers_series`]) they select.
pub(crate) fn postings_for_matchers_cases() -> Vec<(Vec<Matcher>, Vec<Labels>)> {
    let n1 = || ls(&[("n", "1")]);
    let n1a = || ls(&[("n", "1"), ("i", "a")]);
    let n1b = || ls(&[("n", "1"), ("i", "b")]);
    let n1nl = || ls(&[("n", "1"), ("i", "\n")]);
    let n2 = || ls(&[("n", "2")]);
    let n25 = || ls(&[("n", "2.5")]);
    vec![
        // Simple equals.
        (vec![m("n", "=", "1")], vec![n1(), n1a(), n1b(), n1nl()]),
        (vec![m("n", "=", "1"), m("i", "=", "a")], vec![n1a()]),
        (vec![m("n", "=", "1"), m("i", "=", "missing")], vec![]),
        (
            vec![m("missing", "=", "")],
            vec![n1(), n1a(), n1b(), n1nl(), n2(), n25()],
        ),
        // Not equals.
        (vec![m("n", "!=", "1")], vec![n2(), n25()]),
        (vec![m("i", "!=", "")], vec![n1a(), n1b(), n1nl()]),
        (vec![m("missing", "!=", "")], vec![]),
        (
            vec![m("n", "=", "1"), m("i", "!=", "a")],
            vec![n1(), n1b(), n1nl()],
        ),
        (
            vec![m("n", "=", "1"), m("i", "!=", "")],
            vec![n1a(), n1b(), n1nl()],
        ),
        // Regex.
        (vec![m("n", "=~", "^1$")], vec![n1(), n1a(), n1b(), n1nl()]),
        (vec![m("n", "=", "1"), m("i", "=~", "^a$")], vec![n1a()]),
        (
            vec![m("n", "=", "1"), m("i", "=~", "^a?$")],
            vec![n1(), n1a()],
        ),
        (vec![m("i", "=~", "^$")], vec![n1(), n2(), n25()]),
        (vec![m("n", "=", "1"), m("i", "=~", "^$")], vec![n1()]),
        // 2.x: "\n" is not matched by ^.*$ (upstream 3.x includes it).
        (
            vec![m("n", "=", "1"), m("i", "=~", "^.*$")],
            vec![n1(), n1a(), n1b()],
        ),
        (
            vec![m("n", "=", "1"), m("i", "=~", "^.+$")],
            vec![n1a(), n1b()],
        ),
        // Not regex.
        (vec![m("i", "!~", "")], vec![n1a(), n1b(), n1nl()]),
        (vec![m("n", "!~", "^1$")], vec![n2(), n25()]),
        (vec![m("n", "!~", "1")], vec![n2(), n25()]),
        (vec![m("n", "!~", "1|2.5")], vec![n2()]),
        (vec![m("n", "!~", "(1|2.5)")], vec![n2()]),
        (
            vec![m("n", "=", "1"), m("i", "!~", "^a$")],
            vec![n1(), n1b(), n1nl()],
        ),
        (
            vec![m("n", "=", "1"), m("i", "!~", "^a?$")],
            vec![n1b(), n1nl()],
        ),
        (
            vec![m("n", "=", "1"), m("i", "!~", "^$")],
            vec![n1a(), n1b(), n1nl()],
        ),
        (vec![m("n", "=", "1"), m("i", "!~", "^.*$")], vec![n1nl()]),
        (
            vec![m("n", "=", "1"), m("i", "!~", "^.+$")],
            vec![n1(), n1nl()],
        ),
        // Combinations.
        (
            vec![m("n", "=", "1"), m("i", "!=", ""), m("i", "=", "a")],
            vec![n1a()],
        ),
        (
            vec![
                m("n", "=", "1"),
                m("i", "!=", "b"),
                m("i", "=~", "^(b|a).*$"),
            ],
            vec![n1a()],
        ),
        // Set optimisation for regex.
        (
            vec![m("n", "=~", "1|2")],
            vec![n1(), n1a(), n1b(), n1nl(), n2()],
        ),
        (vec![m("i", "=~", "a|b")], vec![n1a(), n1b()]),
        (vec![m("i", "=~", "(a|b)")], vec![n1a(), n1b()]),
        (vec![m("n", "=~", "x1|2")], vec![n2()]),
        (vec![m("n", "=~", "2|2\\.5")], vec![n2(), n25()]),
        // Empty value.
        (vec![m("i", "=~", "c||d")], vec![n1(), n2(), n25()]),
        (vec![m("i", "=~", "(c||d)")], vec![n1(), n2(), n25()]),
        // Shortcuts for .* and .+ (2.x: never matching "\n").
        (
            vec![m("i", "=~", ".*")],
            vec![n1(), n1a(), n1b(), n2(), n25()],
        ),
        (
            vec![m("n", "=~", ".*"), m("i", "=~", "^.*$")],
            vec![n1(), n1a(), n1b(), n2(), n25()],
        ),
        (vec![m("n", "=~", "^.*$"), m("i", "=", "a")], vec![n1a()]),
        (vec![m("i", "!~", ".*")], vec![n1nl()]),
        (vec![m("n", "!~", "^.*$"), m("i", "!~", ".*")], vec![]),
        (vec![m("n", "=~", ".*"), m("i", "!~", ".*")], vec![n1nl()]),
        (vec![m("n", "=", "1"), m("i", "!~", "^.*$")], vec![n1nl()]),
        (
            vec![m("n", "=~", ".*"), m("i", "!~", ".+")],
            vec![n1(), n1nl(), n2(), n25()],
        ),
    ]
}
