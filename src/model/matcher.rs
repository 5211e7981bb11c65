//! Label matchers with Prometheus 2.x semantics (§2.3).
//!
//! A matcher tests the value of one label; a series without the label is tested as if the value
//! were `""`. So `{foo=""}` selects series without `foo`, `{foo!="x"}` includes series without
//! `foo`, and `{foo=~"x|"}` matches `foo="x"` and series lacking `foo`.
//!
//! Regexes are Go RE2 syntax, as Prometheus 2.x reads them, fully anchored (`^(?:re)$`), and `.`
//! does not match `\n` (§1.16). They are compiled once, and most never reach a regex engine (see
//! [`fast_regex`](super::fast_regex)): literal alternations become a set of values
//! ([`Matcher::set_matches`]), literal prefixes let sorted value lists be range-scanned
//! ([`Matcher::literal_prefix`]), and globs such as `foo.*` or `.*bar.*` use substring search.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::fast_regex::FastRegex;
use crate::error::{Error, Result};

#[cfg(test)]
pub(crate) mod test_cases;

fn empty_name_error(kind: MatchType, value: &str) -> Error {
    Error::InvalidMatcher {
        reason: format!(
            "matcher {kind}{value:?} has an empty label name; name the label to match \
             (a series without label `l` matches `l=\"\"`)"
        ),
    }
}

/// Checks matchers built without validation ([`Matcher::equal`], [`Matcher::not_equal`]):
/// an empty label name is [`Error::InvalidMatcher`].
pub(crate) fn check_matchers(matchers: &[Matcher]) -> Result<()> {
    match matchers.iter().find(|m| m.name.is_empty()) {
        Some(m) => Err(empty_name_error(m.kind, &m.value)),
        None => Ok(()),
    }
}

/// The four matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored regex)
    Regex,
    /// `!~` (fully anchored regex)
    NotRegex,
}

impl MatchType {
    /// The operator as written in a selector.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }

    /// The operator with the opposite result (`=` and `!=`, `=~` and `!~`).
    pub fn inverse(self) -> MatchType {
        match self {
            MatchType::Equal => MatchType::NotEqual,
            MatchType::NotEqual => MatchType::Equal,
            MatchType::Regex => MatchType::NotRegex,
            MatchType::NotRegex => MatchType::Regex,
        }
    }

    /// Whether this is `!=` or `!~`.
    pub fn is_negative(self) -> bool {
        matches!(self, MatchType::NotEqual | MatchType::NotRegex)
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compiled matcher on one label. An absent label matches as the empty string.
///
/// Cloning is cheap (the compiled form is shared). Equality and hashing consider the operator,
/// the name and the value as written, which determine the compiled form.
#[derive(Clone)]
pub struct Matcher {
    kind: MatchType,
    name: String,
    value: String,
    compiled: Arc<FastRegex>,
}

impl Matcher {
    /// Builds a matcher. Regexes (`=~`, `!~`) are parsed as Prometheus 2.x does (Go RE2
    /// syntax), fully anchored, and compiled once; a bad one is [`Error::InvalidMatcher`].
    /// So is an empty label name: no series has a label without a name, and a matcher on one
    /// would select all series or none, never what was meant.
    pub fn new(kind: MatchType, name: &str, value: &str) -> Result<Matcher> {
        if name.is_empty() {
            return Err(empty_name_error(kind, value));
        }
        let compiled = match kind {
            MatchType::Equal | MatchType::NotEqual => FastRegex::literal(value),
            MatchType::Regex | MatchType::NotRegex => {
                FastRegex::new(value).map_err(|e| Error::InvalidMatcher {
                    reason: format!("error parsing regexp {value:?} of label {name:?}: {e}"),
                })?
            }
        };
        Ok(Matcher {
            kind,
            name: name.to_owned(),
            value: value.to_owned(),
            compiled: Arc::new(compiled),
        })
    }

    /// `name="value"`. Infallible for literal names in code; a matcher built here with an
    /// empty `name` is refused with [`Error::InvalidMatcher`] when it is used (by
    /// [`Querier::select`](crate::Querier::select), [`Db::delete`](crate::Db::delete)...).
    /// Use [`Matcher::new`] for names from users, which fails at once.
    pub fn equal(name: &str, value: &str) -> Matcher {
        Matcher {
            kind: MatchType::Equal,
            name: name.to_owned(),
            value: value.to_owned(),
            compiled: Arc::new(FastRegex::literal(value)),
        }
    }

    /// `name!="value"`.
    pub fn not_equal(name: &str, value: &str) -> Matcher {
        Matcher {
            kind: MatchType::NotEqual,
            ..Matcher::equal(name, value)
        }
    }

    /// `name=~"regex"`.
    pub fn regex(name: &str, re: &str) -> Result<Matcher> {
        Matcher::new(MatchType::Regex, name, re)
    }

    /// `name!~"regex"`.
    pub fn not_regex(name: &str, re: &str) -> Result<Matcher> {
        Matcher::new(MatchType::NotRegex, name, re)
    }

    /// The operator.
    pub fn kind(&self) -> MatchType {
        self.kind
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value or regex source as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value matches (pass `""` for an absent label).
    #[inline]
    pub fn matches(&self, v: &str) -> bool {
        self.compiled.is_match(v) != self.kind.is_negative()
    }

    /// Whether the matcher matches the empty string, i.e. series without the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=` and `=~`: the exact values this matcher accepts, sorted and deduplicated, when
    /// they are few enough to list (`=`, `=~"abc"`, `=~"a|b|c"`, `=~"(a|b)"`, `=~"api_(v1|v2)"`,
    /// `=~"[0-3]"`...). A postings lookup per value then replaces scanning every value of the
    /// label. The list may contain `""`, which stands for series without the label (see
    /// [`matches_empty`](Self::matches_empty)); it may be empty (a regex that matches nothing).
    ///
    /// `None` for `!=` and `!~` (use [`inverse`](Self::inverse) and subtract) and for regexes
    /// with infinitely or too many values.
    pub fn set_matches(&self) -> Option<&[String]> {
        match self.kind {
            MatchType::Equal | MatchType::Regex => self.compiled.set_matches(),
            MatchType::NotEqual | MatchType::NotRegex => None,
        }
    }

    /// For `=` and `=~`: a non-empty string that every accepted value starts with (`"foo"` for
    /// `=~"foo.*"`, `=~"foo-(a|b).+"` or `=~"foobar|foo.*baz"`).
    ///
    /// Label values kept sorted per name can then be range-scanned: only values in
    /// `[prefix, next string after all strings starting with prefix)` are candidates, and each is
    /// confirmed with [`matches`](Self::matches), which for `foo.*`-like patterns is a
    /// newline check, not a regex run. A matcher with a prefix never matches `""`.
    ///
    /// `None` for `!=` and `!~` (use [`inverse`](Self::inverse)) and when no literal prefix is
    /// known (`.*foo`, case-insensitive patterns).
    pub fn literal_prefix(&self) -> Option<&str> {
        match self.kind {
            MatchType::Equal | MatchType::Regex => {
                Some(self.compiled.prefix()).filter(|p| !p.is_empty())
            }
            MatchType::NotEqual | MatchType::NotRegex => None,
        }
    }

    /// The matcher with the opposite result on every value (`=` ↔ `!=`, `=~` ↔ `!~`), sharing
    /// the compiled regex. Postings code evaluates `!~"re"` as "all minus `=~"re"`".
    pub fn inverse(&self) -> Matcher {
        Matcher {
            kind: self.kind.inverse(),
            name: self.name.clone(),
            value: self.value.clone(),
            compiled: Arc::clone(&self.compiled),
        }
    }

    /// Which implementation backs this matcher (for tests).
    #[cfg(test)]
    pub(crate) fn strategy(&self) -> &'static str {
        self.compiled.strategy()
    }
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Matcher) -> bool {
        self.kind == o.kind && self.name == o.name && self.value == o.value
    }
}

impl Eq for Matcher {}

impl Hash for Matcher {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.name.hash(state);
        self.value.hash(state);
    }
}

impl fmt::Display for Matcher {
    /// The selector form, which [`parse_selector`](super::parse_selector) reads back:
    /// `job=~"node.*"`; names outside PromQL's legacy charset are quoted: `"a.b"="c"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::write_label_name(f, &self.name)?;
        f.write_str(self.kind.as_str())?;
        super::write_quoted(f, &self.value)
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::test_cases::{postings_for_matchers_cases, postings_for_matchers_series};
    use super::*;
    use crate::model::Labels;

    fn m(kind: MatchType, v: &str) -> Matcher {
        Matcher::new(kind, "test_label_name", v).unwrap()
    }

    /// Prometheus's `TestMatcher` (model/labels/matcher_test.go).
    #[test]
    fn prometheus_matcher_table() {
        use MatchType::*;
        let cases = [
            (m(Equal, "bar"), "bar", true),
            (m(Equal, "bar"), "foo-bar", false),
            (m(NotEqual, "bar"), "bar", false),
            (m(NotEqual, "bar"), "foo-bar", true),
            (m(Regex, "bar"), "bar", true),
            (m(Regex, "bar"), "foo-bar", false),
            (m(Regex, ".*bar"), "foo-bar", true),
            (m(NotRegex, "bar"), "bar", false),
            (m(NotRegex, "bar"), "foo-bar", true),
            (m(NotRegex, ".*bar"), "foo-bar", false),
            (m(Regex, "$*bar"), "foo-bar", false),
            (m(Regex, "bar^+"), "foo-bar", false),
            (m(Regex, "$+bar"), "foo-bar", false),
        ];
        for (matcher, value, want) in cases {
            assert_eq!(matcher.matches(value), want, "{matcher} on {value:?}");
        }
        // `$*bar` still matches "bar": zero repetitions of the assertion.
        assert!(m(Regex, "$*bar").matches("bar"));
    }

    #[test]
    fn inverse_flips_every_result() {
        use MatchType::*;
        for (kind, v) in [
            (Equal, "value1"),
            (NotEqual, "value2"),
            (Regex, "value3.*"),
            (NotRegex, "value4.*"),
        ] {
            let a = m(kind, v);
            let b = a.inverse();
            assert_eq!(b.kind(), kind.inverse());
            assert_eq!(b.value(), v);
            for s in ["", "value1", "value2", "value3", "value3x", "value4\n", "x"] {
                assert_ne!(a.matches(s), b.matches(s), "{a} vs {b} on {s:?}");
            }
            assert_eq!(b.inverse(), a);
        }
    }

    #[test]
    fn empty_value_semantics() {
        // Absent label = "".
        assert!(Matcher::equal("foo", "").matches_empty());
        assert!(!Matcher::not_equal("foo", "").matches_empty());
        assert!(Matcher::not_equal("foo", "x").matches_empty());
        assert!(Matcher::regex("foo", "x|").unwrap().matches_empty());
        assert!(Matcher::regex("foo", ".*").unwrap().matches_empty());
        assert!(!Matcher::regex("foo", ".+").unwrap().matches_empty());
        assert!(Matcher::not_regex("foo", ".+").unwrap().matches_empty());
        assert!(!Matcher::not_regex("foo", ".*").unwrap().matches_empty());
    }

    #[test]
    fn set_matches_and_prefix_by_kind() {
        let eq = Matcher::equal("a", "x");
        assert_eq!(eq.set_matches(), Some(&["x".to_owned()][..]));
        assert_eq!(eq.literal_prefix(), Some("x"));
        assert_eq!(Matcher::equal("a", "").literal_prefix(), None);
        assert_eq!(Matcher::not_equal("a", "x").set_matches(), None);
        let re = Matcher::regex("a", "c|a|b|a").unwrap();
        assert_eq!(re.set_matches().unwrap(), ["a", "b", "c"]);
        assert_eq!(re.strategy(), "set");
        let nre = Matcher::not_regex("a", "c|a|b").unwrap();
        assert_eq!(nre.set_matches(), None);
        assert_eq!(nre.inverse().set_matches().unwrap(), ["a", "b", "c"]);
        let p = Matcher::regex("a", "foo.*").unwrap();
        assert_eq!(p.literal_prefix(), Some("foo"));
        assert_eq!(p.set_matches(), None);
        assert_eq!(p.strategy(), "glob");
        assert_eq!(
            Matcher::not_regex("a", "foo.*").unwrap().literal_prefix(),
            None
        );
        assert_eq!(Matcher::regex("a", ".*foo").unwrap().literal_prefix(), None);
        // A plain literal regex is an equality.
        let lit = Matcher::regex("a", "abc").unwrap();
        assert_eq!(lit.strategy(), "literal");
        assert_eq!(lit.set_matches().unwrap(), ["abc"]);
    }

    #[test]
    fn bad_regex_is_invalid_matcher() {
        let e = Matcher::regex("job", "a(b").unwrap_err();
        assert!(matches!(e, Error::InvalidMatcher { .. }));
        let msg = e.to_string();
        assert!(
            msg.contains("\"job\"") && msg.contains("missing closing )"),
            "{msg}"
        );
        assert!(matches!(
            Matcher::not_regex("job", "x**"),
            Err(Error::InvalidMatcher { .. })
        ));
        // Equality values are never parsed.
        assert!(Matcher::new(MatchType::Equal, "job", "a(b").is_ok());
    }

    #[test]
    fn display_and_equality() {
        let a = Matcher::regex("job", "n\"ode.*").unwrap();
        assert_eq!(a.to_string(), r#"job=~"n\"ode.*""#);
        assert_eq!(format!("{a:?}"), a.to_string());
        assert_eq!(Matcher::equal("a.b", "x").to_string(), r#""a.b"="x""#);
        assert_eq!(a, Matcher::regex("job", "n\"ode.*").unwrap());
        assert_ne!(a, Matcher::not_regex("job", "n\"ode.*").unwrap());
        assert_eq!(
            Matcher::new(MatchType::Equal, "a", "b").unwrap(),
            Matcher::equal("a", "b")
        );
    }

    /// Go-regex semantics, each row checked against Prometheus 2.42 (`promtool test rules`):
    /// the pattern, the values tried, and the ones Prometheus matched.
    #[test]
    fn go_regex_dialect_matches_prometheus_2_42() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("a.b", &["a\nb", "axb", ""], &["axb"]),
            (".*", &["", "\n", "x"], &["", "x"]),
            ("\\d", &["1", "\u{663}"], &["1"]),
            ("\\s", &[" ", "\u{b}", "\u{c}", "\u{a0}"], &[" ", "\u{c}"]),
            ("\\w\\b", &["a", "é"], &["a"]),
            ("(?i)k", &["K", "\u{212a}", "k"], &["K", "\u{212a}", "k"]),
            (
                "(?i)\u{17f}",
                &["s", "S", "\u{17f}"],
                &["s", "S", "\u{17f}"],
            ),
            ("(?U)a+", &["aa"], &["aa"]),
            ("\\pL", &["é"], &["é"]),
            ("\\p{Greek}", &["α"], &["α"]),
            ("\\pN", &["5", "\u{663}"], &["5", "\u{663}"]),
            ("\\p{Any}", &["\n"], &["\n"]),
            ("\\p{Han}", &["\u{4e00}"], &["\u{4e00}"]),
            ("\\P{^L}", &["a", "1"], &["a"]),
            ("[[:^alpha:]]", &["a", "1"], &["1"]),
            ("[[:word:]]", &["_"], &["_"]),
            ("(?i)[^a]", &["A", "b"], &["b"]),
            ("[\\x{41}-\\x{43}]", &["B"], &["B"]),
            ("\\x{0041}", &["A"], &["A"]),
            ("(?s).", &["\n"], &["\n"]),
            ("(?-s).", &["\n"], &[]),
            ("(?i-i)a", &["A"], &[]),
            ("(?)a", &["a"], &["a"]),
            ("a{,3}", &["a{,3}"], &["a{,3}"]),
            ("a{01}", &["a{01}", "a"], &["a{01}"]),
            ("[[]", &["["], &["["]),
            ("[]a]", &["]"], &["]"]),
            ("[^]a]", &["b"], &["b"]),
            ("[a-]", &["-"], &["-"]),
            ("[\\d-z]", &["-", "5", "z"], &["-", "5", "z"]),
            ("[a&&b]", &["&"], &["&"]),
            ("[a~~b]", &["~"], &["~"]),
            ("\\Qa.b\\E", &["a.b", "axb"], &["a.b"]),
            ("a\\Q\\E*", &["", "a", "aa"], &["", "a", "aa"]),
            ("a(?i)*", &["", "a", "aa"], &["", "a", "aa"]),
            ("a*(?i)*", &["aa"], &["aa"]),
            ("\\101", &["A"], &["A"]),
            ("\\0101", &["\u{8}1"], &["\u{8}1"]),
            ("\\377", &["\u{ff}"], &["\u{ff}"]),
            ("\\400", &["\u{100}"], &["\u{100}"]),
            ("\\0", &["\0"], &["\0"]),
            ("\\v", &["\u{b}"], &["\u{b}"]),
            ("\\_", &["_"], &["_"]),
            ("\\<", &["<"], &["<"]),
            ("\\z", &[""], &[""]),
            ("$", &[""], &[""]),
            ("^$", &[""], &[""]),
            ("(?m)^a$", &["a"], &["a"]),
            ("(?P<n>a)(?P<n>b)", &["ab"], &["ab"]),
            ("(?P<a1_>x)", &["x"], &["x"]),
            ("x{1000}", &["x"], &[]),
            ("(x{2}){500}", &["x"], &[]),
            ("a{2,}?", &["aa"], &["aa"]),
        ];
        for (pattern, values, want) in cases {
            let matcher = Matcher::regex("v", pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            let got: Vec<&str> = values
                .iter()
                .copied()
                .filter(|v| matcher.matches(v))
                .collect();
            let mut got_sorted = got.clone();
            got_sorted.sort_unstable();
            let mut want_sorted = want.to_vec();
            want_sorted.sort_unstable();
            assert_eq!(got_sorted, want_sorted, "{pattern:?}");
        }
    }

    /// Prometheus's `TestPostingsForMatchers` (tsdb/querier_test.go): 43 cases on a 6-series
    /// head, evaluated per series with the absent-label-is-empty rule.
    #[test]
    fn postings_for_matchers_table() {
        let series = postings_for_matchers_series();
        let cases = postings_for_matchers_cases();
        assert_eq!(cases.len(), 43);
        for (matchers, want) in cases {
            let got: Vec<Labels> = series
                .iter()
                .filter(|s| {
                    matchers
                        .iter()
                        .all(|m| m.matches(s.get(m.name()).unwrap_or("")))
                })
                .cloned()
                .collect();
            let mut want = want;
            want.sort();
            assert_eq!(got, want, "{matchers:?}");
        }
    }
}
