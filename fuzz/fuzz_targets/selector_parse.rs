//! `parse_selector` and `Labels::parse` on arbitrary UTF-8: never panic, and whatever parses
//! prints and parses back to the same value. Parsed matchers are exercised on the input itself,
//! checking that `set_matches` and `literal_prefix` agree with `matches`, and that regexes
//! compile as `GoRegex` (capture groups kept) and match the same strings.
#![no_main]

use annals::{display_selector, parse_selector, GoRegex, Labels, MatchType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(matchers) = parse_selector(s) {
        let printed = display_selector(&matchers).to_string();
        let back = parse_selector(&printed)
            .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?} does not parse: {e}"));
        assert_eq!(back, matchers, "{s:?} printed as {printed:?}");
        for m in &matchers {
            for v in [s, "", m.value(), m.name(), printed.as_str()] {
                let hit = m.matches(v);
                assert_eq!(m.inverse().matches(v), !hit);
                if let Some(set) = m.set_matches() {
                    assert_eq!(set.iter().any(|x| x == v), hit, "{m} set on {v:?}");
                    assert!(set.windows(2).all(|w| w[0] < w[1]), "{m} set not sorted");
                }
                if let Some(p) = m.literal_prefix() {
                    assert!(!hit || v.starts_with(p), "{m} prefix {p:?} on {v:?}");
                }
            }
            if matches!(m.kind(), MatchType::Regex | MatchType::NotRegex) {
                // label_replace's regexes go through the same translation, groups kept.
                let re = GoRegex::new(m.value())
                    .unwrap_or_else(|e| panic!("{m} compiles as a matcher, not as GoRegex: {e}"));
                for v in [s, "", m.value(), m.name(), printed.as_str()] {
                    let hit = m.matches(v) != (m.kind() == MatchType::NotRegex);
                    assert_eq!(re.is_match(v), hit, "{m} as GoRegex on {v:?}");
                    assert_eq!(re.expand(v, s).is_some(), hit);
                }
            }
            assert!(!m.kind().is_negative() || m.set_matches().is_none());
            if m.kind() == MatchType::Equal {
                assert!(m.matches(m.value()));
            }
        }
    }
    if let Ok(labels) = Labels::parse(s) {
        let printed = labels.to_string();
        let back = Labels::parse(&printed)
            .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?} does not parse: {e}"));
        assert_eq!(back, labels, "{s:?} printed as {printed:?}");
        assert_eq!(printed.parse::<Labels>().ok(), Some(labels));
    }
});
