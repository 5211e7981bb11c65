//! Parser tests: what parses and how it prints back, and the exact errors of bad queries.

use super::*;

fn ok(input: &str) -> Expr {
    match parse(input) {
        Ok(e) => e,
        Err(e) => panic!("{input:?} should parse, got {e}"),
    }
}

fn err(input: &str) -> String {
    match parse(input) {
        Ok(e) => panic!("{input:?} should fail, parsed as {e}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn prints_back() {
    let cases = [
        ("1 + 2 * 3", "1 + 2 * 3"),
        ("-1^2", "-1 ^ 2"),
        ("- 1", "-1"),
        ("-foo ^ 2", "-foo ^ 2"),
        ("2 ^ 3 ^ 2", "2 ^ 3 ^ 2"),
        ("foo offset 5m", "foo offset 5m"),
        ("foo offset -1h30m", "foo offset -1h30m"),
        ("foo @ 100", "foo @ 100.000"),
        ("foo @ start() offset 1m", "foo @ start() offset 1m"),
        ("foo[5m] offset 1m @ end()", "foo[5m] @ end() offset 1m"),
        (
            "rate(foo{b=\"x\",a=~\"y.*\"}[5m])",
            "rate(foo{a=~\"y.*\",b=\"x\"}[5m])",
        ),
        ("sum by (a, b) (foo)", "sum by (a, b) (foo)"),
        ("sum(foo) without (a)", "sum without (a) (foo)"),
        ("topk(3, foo)", "topk(3, foo)"),
        (
            "foo + on(a) group_left(b) bar",
            "foo + on (a) group_left (b) bar",
        ),
        ("foo > bool ignoring(a) bar", "foo > bool ignoring (a) bar"),
        ("foo and on() bar", "foo and on () bar"),
        ("foo[1h:5m]", "foo[1h:5m]"),
        ("foo[1h:]", "foo[1h:]"),
        (
            "(foo + bar)[30m:1m] offset 1m",
            "(foo + bar)[30m:1m] offset 1m",
        ),
        ("{__name__=\"foo\"}", "{__name__=\"foo\"}"),
        ("sum", "sum"),
        ("sum + by", "sum + by"),
        ("offset offset 5m", "offset offset 5m"),
        ("1e6", "1e+06"),
        ("0x1f", "31"),
        ("010", "8"),
        ("Inf", "+Inf"),
        ("-inf", "-Inf"),
        ("'a\\'b'", "\"a'b\""),
        ("`raw\\n`", "\"raw\\\\n\""),
        (
            "holt_winters(foo[10m], 0.5, 0.5)",
            "holt_winters(foo[10m], 0.5, 0.5)",
        ),
        ("foo # comment\n+ bar", "foo + bar"),
        ("a - - b", "a - -b"),
        ("1 * -2 ^ 3", "1 * -2 ^ 3"),
        ("foo atan2 bar", "foo atan2 bar"),
        ("count_values(\"v\", foo)", "count_values(\"v\", foo)"),
        (
            "foo unless bar or baz and qux",
            "foo unless bar or baz and qux",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(ok(input).to_string(), want, "input {input:?}");
    }
}

#[test]
fn precedence_and_associativity() {
    // `-1 ^ 2` is -(1^2); `a - b - c` is (a - b) - c; `a ^ b ^ c` is a ^ (b ^ c).
    let Expr::Number { val, .. } = ok("-1 ^ 2") else {
        // The number is folded only when the operand is a literal; here it is `1 ^ 2`.
        let e = ok("-1 ^ 2");
        assert!(matches!(e, Expr::Unary { neg: true, .. }));
        let Expr::Binary(b) = ok("a - b - c") else {
            panic!("binary")
        };
        assert!(matches!(*b.lhs, Expr::Binary(_)));
        let Expr::Binary(b) = ok("a ^ b ^ c") else {
            panic!("binary")
        };
        assert!(matches!(*b.rhs, Expr::Binary(_)));
        let Expr::Binary(b) = ok("a or b and c") else {
            panic!("binary")
        };
        assert_eq!(b.op, BinOp::Or);
        let Expr::Binary(b) = ok("-a * b") else {
            panic!("binary")
        };
        assert!(matches!(*b.lhs, Expr::Unary { .. }));
        return;
    };
    panic!("-1 ^ 2 folded to {val}");
}

#[test]
fn set_operators_match_many_to_many_and_scalars_drop_matching() {
    let Expr::Binary(b) = ok("foo and bar") else {
        panic!("binary")
    };
    assert_eq!(b.matching.map(|m| m.card), Some(Cardinality::ManyToMany));
    let Expr::Binary(b) = ok("foo + 1") else {
        panic!("binary")
    };
    assert!(b.matching.is_none());
}

#[test]
fn errors_with_positions() {
    let cases = [
        ("", "1:1: parse error: no expression found in input"),
        ("# just a comment\n\n", "1:1: parse error: no expression found in input"),
        ("1+", "1:3: parse error: unexpected end of input"),
        (".", "1:1: parse error: unexpected character: '.'"),
        ("2.5.", "1:4: parse error: unexpected character: '.'"),
        ("100..4", "1:5: parse error: unexpected number \".4\""),
        ("0deadbeef", "1:1: parse error: bad number or duration syntax: \"0de\""),
        ("*1", "1:1: parse error: unexpected <op:*>"),
        ("(1))", "1:5: parse error: unexpected right parenthesis ')'"),
        ("((1)", "1:5: parse error: unclosed left parenthesis"),
        ("1 and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
        ("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
        ("1 !~ 1", "1:3: parse error: unexpected character after '!': '~'"),
        ("1 =~ 1", "1:3: parse error: unexpected character after '=': '~'"),
        ("-\"string\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\""),
        ("-test[5m]", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\""),
        ("1 offset 1d", "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("foo offset 1s offset 2s", "1:1: parse error: offset may not be set multiple times"),
        ("a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"),
        ("foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison operators"),
        ("foo and on(a) group_left(b) bar", "1:1: parse error: no grouping allowed for \"and\" operation"),
        ("foo * on(a) group_left(a) bar", "1:5: parse error: label \"a\" must not occur in ON and GROUP clause at once"),
        ("1 + on(a) foo", "1:1: parse error: vector matching only allowed between instant vectors"),
        ("foo + group_left(a) bar", "1:7: parse error: unexpected <group_left>"),
        ("{", "1:2: parse error: unexpected end of input inside braces"),
        ("{a=b}", "1:4: parse error: unexpected identifier \"b\" in label matching, expected string"),
        ("{a}", "1:3: parse error: unexpected \"}\" in label matching, expected label matching operator"),
        ("{a=\"b\" lol}", "1:8: parse error: unexpected identifier \"lol\" in label matching, expected \",\" or \"}\""),
        ("{,}", "1:2: parse error: unexpected \",\" in label matching, expected identifier or \"}\""),
        ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ("{a=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ("foo{__name__=\"bar\"}", "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""),
        ("foo[5mm]", "1:5: parse error: bad duration syntax: \"5mm\""),
        ("foo[5m1]", "1:5: parse error: bad duration syntax: \"5m1\""),
        ("foo[5m1h]", "1:5: parse error: not a valid duration string: \"5m1h\""),
        ("foo[0m]", "1:5: parse error: duration must be greater than 0"),
        ("foo[5]", "1:5: parse error: missing unit character in duration"),
        ("foo offset 1", "1:12: parse error: unexpected number \"1\" in offset, expected duration"),
        ("foo offset", "1:11: parse error: unexpected end of input in offset, expected duration"),
        ("foo offset 1m[5m]", "1:14: parse error: no offset modifiers allowed before range"),
        ("foo @ 1m", "1:7: parse error: unexpected duration \"1m\" in @, expected timestamp"),
        ("foo @", "1:6: parse error: unexpected end of input in @, expected timestamp"),
        ("foo @ 1 [5m]", "1:9: parse error: no @ modifiers allowed before range"),
        ("rate(foo[5m])[5m]", "1:14: parse error: ranges only allowed for vector selectors"),
        ("foo @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
        ("rate(foo[5m]) @ 1234", "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
        ("sum without(==)(foo)", "1:13: parse error: unexpected <op:==> in grouping opts, expected label"),
        ("sum without(,)(foo)", "1:13: parse error: unexpected \",\" in grouping opts, expected label"),
        ("sum some_metric by (test)", "1:5: parse error: unexpected identifier \"some_metric\""),
        ("sum (some_metric) by test", "1:22: parse error: unexpected identifier \"test\" in grouping opts, expected \"(\""),
        ("sum () by (test)", "1:1: parse error: no arguments for aggregate expression provided"),
        ("sum (some_metric) without (test) by (test)", "1:34: parse error: unexpected <by>"),
        ("topk(some_metric)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1"),
        ("topk(some_metric,)", "1:17: parse error: trailing commas not allowed in function call args"),
        ("topk(some_metric, other_metric)", "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"),
        ("count_values(5, other_metric)", "1:14: parse error: expected type string in aggregation parameter, got scalar"),
        ("floor()", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 0"),
        ("floor(1)", "1:7: parse error: expected type instant vector in call to function \"floor\", got scalar"),
        ("hour(1, 2, 3)", "1:1: parse error: expected at most 1 argument(s) in call to \"hour\", got 3"),
        ("time(1)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1"),
        ("label_join(foo)", "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 1"),
        ("non_existent(foo)", "1:1: parse error: unknown function with name \"non_existent\""),
        ("rate(foo)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"),
        ("foo[5m:1m][5m:1m]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"),
        ("\"a\\c\"", "1:1: parse error: unknown escape sequence U+0063 'c'"),
        ("\"a", "1:1: parse error: unterminated quoted string"),
        ("`a", "1:1: parse error: unterminated raw string"),
        ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
        ("foo[5m] + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"),
        ("999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999\": value out of range"),
        ("foo{a=~\"(\"}", "1:5: parse error: error parsing regexp: missing closing ): `(`"),
        ("sum by (foo:bar) (x)", "1:9: parse error: unexpected metric identifier \"foo:bar\" in grouping opts, expected label"),
        ("sum by (a) foo", "1:12: parse error: unexpected identifier \"foo\" in aggregation"),
        ("rate(foo bar)", "1:10: parse error: unexpected identifier \"bar\""),
        ("foo @ start(1)", "1:13: parse error: unexpected number \"1\" in @, expected timestamp"),
        ("foo{a=\"b\",,}", "1:11: parse error: unexpected \",\" in label matching, expected identifier or \"}\""),
        ("foo[5m:a]", "1:8: parse error: unexpected colon 'a'"),
        ("foo[5m:1m:1m]", "1:10: parse error: unexpected colon ':'"),
        ("foo[5m 1m]", "1:8: parse error: unexpected duration \"1m\" in subquery or range, expected \":\" or \"]\""),
        ("sum by (a) by (b) (x)", "1:12: parse error: unexpected <by> in aggregation"),
        ("min(x) by", "1:10: parse error: unexpected end of input in grouping opts, expected \"(\""),
        ("topk(3, x) by (a) (y)", "1:19: parse error: unexpected \"(\""),
        ("x offset -5", "1:11: parse error: unexpected number \"5\" in offset, expected duration"),
    ];
    let mut failed = Vec::new();
    for (input, want) in cases {
        let got = err(input);
        if got != want {
            failed.push(format!("{input:?}\n   want {want}\n    got {got}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} mismatches:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let deep = "(".repeat(10_000) + "1" + &")".repeat(10_000);
    assert!(parse(&deep).is_err());
    let deep = "-".repeat(10_000) + "1";
    assert!(parse(&deep).is_err());
}

#[test]
fn series_descriptions() {
    let (l, v) =
        series_desc::parse_series_desc("foo{a=\"b\"} 1+2x3 _ stale -1 _x2 4x1").expect("parses");
    assert_eq!(l.to_string(), "{__name__=\"foo\", a=\"b\"}");
    let shown: Vec<String> = v
        .iter()
        .map(|v| match v {
            None => "_".into(),
            Some(f) if f.to_bits() == crate::value::STALE_NAN_BITS => "stale".into(),
            Some(f) => f.to_string(),
        })
        .collect();
    assert_eq!(
        shown,
        ["1", "3", "5", "7", "_", "stale", "-1", "_", "_", "4", "4"]
    );
}
