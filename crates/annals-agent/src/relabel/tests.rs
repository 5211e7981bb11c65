//! Cases of Prometheus 2.42's `TestRelabel` and `TestRelabelValidate` (model/relabel), by
//! behaviour, plus properties against simple models.

use super::*;
use proptest::prelude::*;

fn ls(pairs: &[(&str, &str)]) -> LabelSet {
    let mut v: LabelSet = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

fn rules(yaml: &str) -> Vec<Rule> {
    let raw: Vec<RawRule> = serde_yaml_ng::from_str(yaml).expect("test YAML parses");
    raw.iter()
        .map(|r| Rule::new(r).expect("valid rule"))
        .collect()
}

fn run(input: &[(&str, &str)], yaml: &str) -> Option<LabelSet> {
    let mut l = ls(input);
    process(&mut l, &rules(yaml)).then_some(l)
}

#[test]
fn replace_with_groups() {
    let abc = [("a", "foo"), ("b", "bar"), ("c", "baz")];
    assert_eq!(
        run(
            &abc,
            "- {source_labels: [a], regex: 'f(.*)', target_label: d, replacement: 'ch${1}-ch${1}'}"
        ),
        Some(ls(&[
            ("a", "foo"),
            ("b", "bar"),
            ("c", "baz"),
            ("d", "choo-choo")
        ]))
    );
    assert_eq!(
        run(&abc, "- {source_labels: [a, b], regex: 'f(.*);(.*)r', target_label: a, replacement: 'b${1}${2}m'}\n- {source_labels: [c, a], regex: '(b).*b(.*)ba(.*)', target_label: d, replacement: '$1$2$2$3'}"),
        Some(ls(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]))
    );
    assert_eq!(
        run(
            &[("a", "abc")],
            "- {source_labels: [a], regex: '.*(b).*', target_label: d}"
        ),
        Some(ls(&[("a", "abc"), ("d", "b")]))
    );
    // No match: no replacement.
    assert_eq!(
        run(
            &[("a", "boo")],
            "- {source_labels: [a], regex: f, target_label: b, replacement: bar}"
        ),
        Some(ls(&[("a", "boo")]))
    );
    // Target from groups; an invalid expanded target deletes the literal target label.
    assert_eq!(
        run(&[("a", "some-name-value")], "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', replacement: '${2}', target_label: '${1}'}"),
        Some(ls(&[("a", "some-name-value"), ("name", "value")]))
    );
    assert_eq!(
        run(&[("a", "some-1-value")], "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', replacement: '${2}', target_label: '${1}'}"),
        Some(ls(&[("a", "some-1-value")]))
    );
    // An empty result deletes the target.
    assert_eq!(
        run(
            &[("a", "x"), ("b", "y")],
            "- {source_labels: [c], regex: '(.*)', target_label: b}"
        ),
        Some(ls(&[("a", "x")]))
    );
    // `$1x` names group "1x" (absent): empty; `$$` is a dollar.
    assert_eq!(
        run(
            &[("a", "v")],
            "- {source_labels: [a], regex: '(.*)', target_label: b, replacement: '$1x-$$-${1}x'}"
        ),
        Some(ls(&[("a", "v"), ("b", "-$-vx")]))
    );
    // Named groups.
    assert_eq!(
        run(&[("a", "k=v")], "- {source_labels: [a], regex: '(?P<key>[^=]+)=(?P<val>.*)', target_label: '$key', replacement: '$val'}"),
        Some(ls(&[("a", "k=v"), ("k", "v")]))
    );
}

#[test]
fn keep_and_drop_are_anchored() {
    let drop2 = "- {source_labels: [a], regex: '.*o.*', action: drop}\n- {source_labels: [a], regex: 'f(.*)', target_label: d, replacement: 'ch$1-ch$1'}";
    assert_eq!(run(&[("a", "foo")], drop2), None);
    assert_eq!(
        run(
            &[("a", "foo")],
            "- {source_labels: [a], regex: no-match, action: drop}"
        ),
        Some(ls(&[("a", "foo")]))
    );
    assert_eq!(
        run(
            &[("a", "foo")],
            "- {source_labels: [a], regex: 'f|o', action: drop}"
        ),
        Some(ls(&[("a", "foo")]))
    );
    assert_eq!(
        run(
            &[("a", "foo")],
            "- {source_labels: [a], regex: no-match, action: keep}"
        ),
        None
    );
    assert_eq!(
        run(
            &[("a", "foo")],
            "- {source_labels: [a], regex: 'f.*', action: keep}"
        ),
        Some(ls(&[("a", "foo")]))
    );
    // Missing source labels are empty strings.
    assert_eq!(
        run(
            &[("a", "foo")],
            "- {source_labels: [zz], regex: '', action: keep}"
        ),
        Some(ls(&[("a", "foo")]))
    );
}

#[test]
fn hashmod_matches_prometheus() {
    assert_eq!(
        run(
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            "- {source_labels: [c], target_label: d, action: hashmod, modulus: 1000}"
        ),
        Some(ls(&[
            ("a", "foo"),
            ("b", "bar"),
            ("c", "baz"),
            ("d", "976")
        ]))
    );
    assert_eq!(
        run(
            &[("a", "foo\nbar")],
            "- {source_labels: [a], target_label: b, action: hashmod, modulus: 1000}"
        ),
        Some(ls(&[("a", "foo\nbar"), ("b", "734")]))
    );
}

#[test]
fn labelmap_labeldrop_labelkeep() {
    assert_eq!(
        run(
            &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            "- {regex: '(b.*)', replacement: 'bar_${1}', action: labelmap}"
        ),
        Some(ls(&[
            ("a", "foo"),
            ("b1", "bar"),
            ("b2", "baz"),
            ("bar_b1", "bar"),
            ("bar_b2", "baz")
        ]))
    );
    assert_eq!(
        run(
            &[
                ("a", "foo"),
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("__meta_other", "ccc")
            ],
            "- {regex: '__meta_(my.*)', replacement: '${1}', action: labelmap}"
        ),
        Some(ls(&[
            ("a", "foo"),
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
            ("my_bar", "aaa"),
            ("my_baz", "bbb")
        ]))
    );
    let abc = [("a", "foo"), ("b", "bar"), ("c", "baz")];
    assert_eq!(
        run(&abc, "- {regex: '(b.*)', action: labeldrop}"),
        Some(ls(&[("a", "foo"), ("c", "baz")]))
    );
    assert_eq!(
        run(&abc, "- {regex: '(b.*)', action: labelkeep}"),
        Some(ls(&[("b", "bar")]))
    );
    assert_eq!(
        run(
            &abc,
            "- {regex: '(b.*)', action: labelkeep}\n- {regex: 'b', action: labeldrop}"
        ),
        Some(ls(&[]))
    );
}

#[test]
fn case_and_equality_actions() {
    assert_eq!(
        run(&[("foo", "bAr123Foo")], "- {source_labels: [foo], action: uppercase, target_label: foo_uppercase}\n- {source_labels: [foo], action: lowercase, target_label: foo_lowercase}"),
        Some(ls(&[("foo", "bAr123Foo"), ("foo_lowercase", "bar123foo"), ("foo_uppercase", "BAR123FOO")]))
    );
    let ports = [
        ("__tmp_port", "1234"),
        ("__port1", "1234"),
        ("__port2", "5678"),
    ];
    assert_eq!(
        run(
            &ports,
            "- {source_labels: [__tmp_port], action: keepequal, target_label: __port1}"
        ),
        Some(ls(&ports))
    );
    assert_eq!(
        run(
            &ports,
            "- {source_labels: [__tmp_port], action: dropequal, target_label: __port1}"
        ),
        None
    );
    assert_eq!(
        run(
            &ports,
            "- {source_labels: [__tmp_port], action: dropequal, target_label: __port2}"
        ),
        Some(ls(&ports))
    );
    assert_eq!(
        run(
            &ports,
            "- {source_labels: [__tmp_port], action: keepequal, target_label: __port2}"
        ),
        None
    );
}

fn invalid(yaml: &str) -> String {
    let raw: Vec<RawRule> = serde_yaml_ng::from_str(yaml).expect("test YAML parses");
    Rule::new(&raw[0]).expect_err("rule must be rejected")
}

#[test]
fn validation_messages_are_prometheus_messages() {
    assert_eq!(invalid("- {action: ''}"), "relabel action cannot be empty");
    assert_eq!(
        invalid("- {action: hashmod, target_label: x}"),
        "relabel configuration for hashmod requires non-zero modulus"
    );
    assert_eq!(
        invalid("- {action: replace}"),
        "relabel configuration for replace action requires 'target_label' value"
    );
    assert_eq!(
        invalid("- {action: lowercase}"),
        "relabel configuration for lowercase action requires 'target_label' value"
    );
    assert_eq!(
        invalid("- {action: replace, target_label: '0abc'}"),
        "\"0abc\" is invalid 'target_label' for replace action"
    );
    assert_eq!(
        invalid("- {action: uppercase, target_label: a, replacement: x}"),
        "'replacement' can not be set for uppercase action"
    );
    assert_eq!(
        invalid("- {action: labelmap, replacement: '0x'}"),
        "\"0x\" is invalid 'replacement' for labelmap action"
    );
    assert_eq!(
        invalid("- {action: hashmod, modulus: 2, target_label: '${1}'}"),
        "\"${1}\" is invalid 'target_label' for hashmod action"
    );
    assert_eq!(
        invalid("- {action: keepequal, target_label: a, regex: x}"),
        "keepequal action requires only 'source_labels' and `target_label`, and no other fields"
    );
    assert_eq!(
        invalid("- {action: labeldrop, source_labels: [a]}"),
        "labeldrop action requires only 'regex', and no other fields"
    );
    assert!(invalid("- {action: frobnicate}").contains("unknown relabel action"));
    assert!(invalid("- {action: keep, regex: '('}").contains("invalid regex"));
    let e = serde_yaml_ng::from_str::<Vec<RawRule>>("- {action: keep, regexp: x}").unwrap_err();
    assert!(e.to_string().contains("unknown field `regexp`"), "{e}");
}

proptest! {
    /// labeldrop/labelkeep partition a set; keep and drop with the same rule are complements.
    #[test]
    fn keep_drop_complement(pairs in proptest::collection::btree_map("[a-c]{1,3}", "[a-c]{1,3}", 1..6), re in "[a-c.*|]{0,4}") {
        let input: LabelSet = pairs.into_iter().collect();
        let Ok(rx) = anchored(&re) else { return Ok(()) };
        let esc = re.replace('\'', "''");
        let kept = {
            let mut l = input.clone();
            process(&mut l, &rules(&format!("- {{regex: '{esc}', action: labelkeep}}")));
            l
        };
        let dropped = {
            let mut l = input.clone();
            process(&mut l, &rules(&format!("- {{regex: '{esc}', action: labeldrop}}")));
            l
        };
        prop_assert_eq!(kept.len() + dropped.len(), input.len());
        for (n, _) in &kept { prop_assert!(rx.is_match(n)); }
        for (n, _) in &dropped { prop_assert!(!rx.is_match(n)); }
        let src = "- {source_labels: [a, b], regex: '".to_owned() + &esc + "', action: ";
        let k = run_set(&input, &(src.clone() + "keep}"));
        let d = run_set(&input, &(src + "drop}"));
        prop_assert!(k.is_some() != d.is_some());
    }

    /// The result of any rule list is sorted, unique and free of empty values.
    #[test]
    fn results_stay_well_formed(pairs in proptest::collection::btree_map("[a-c_]{1,3}", "[a-c]{0,3}", 1..6), target in "[a-c_]{1,3}", rep in "[a-c$1]{0,4}") {
        let input: LabelSet = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let yaml = format!("- {{source_labels: [a], target_label: '{target}', replacement: '{rep}'}}\n- {{regex: '(a.*)', replacement: 'x_$1', action: labelmap}}\n- {{source_labels: [b], target_label: '{target}', action: uppercase}}");
        if let Some(out) = run_set(&input, &yaml) {
            for w in out.windows(2) { prop_assert!(w[0].0 < w[1].0); }
            for (_, v) in &out { prop_assert!(!v.is_empty()); }
        }
    }
}

fn run_set(input: &LabelSet, yaml: &str) -> Option<LabelSet> {
    let raw: Vec<RawRule> = serde_yaml_ng::from_str(yaml).ok()?;
    let rs: Result<Vec<Rule>, _> = raw.iter().map(Rule::new).collect();
    let mut l = input.clone();
    process(&mut l, &rs.ok()?).then_some(l)
}
