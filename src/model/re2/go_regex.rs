//! [`GoRegex`]: a Go regex with its capturing groups, for `label_replace` and relabelling,
//! through the same translation of Go's syntax as matchers.

use std::sync::OnceLock;

use regex::Regex;

use super::{parser, REGEX_NEST_LIMIT};
use crate::error::{Error, Result};

/// A regular expression in Go's RE2 syntax as Prometheus 2.42 reads it (the translation
/// matchers use: ASCII `\d`/`\w`/`\s`/`\b`, `[[]`, `\Q…\E`, octal escapes, ...), anchored at
/// both ends as Prometheus compiles `label_replace`'s (`^(?:re)$`), with Go's capture group
/// numbering and names and Go's template expansion (`Regexp.ExpandString`).
#[derive(Debug, Clone)]
pub struct GoRegex {
    re: Regex,
    /// Names of the capturing groups 1.. (`None` for unnamed ones). Go allows a name twice,
    /// the `regex` crate does not: groups are compiled unnamed and looked up here.
    names: Vec<Option<String>>,
}

impl GoRegex {
    /// Compiles `pattern`. A pattern Go rejects (or one nested deeper than annals accepts)
    /// is [`Error::InvalidMatcher`], with Go's error text.
    pub fn new(pattern: &str) -> Result<GoRegex> {
        let bad = |e: String| Error::InvalidMatcher {
            reason: format!("error parsing regexp {pattern:?}: {e}"),
        };
        let (node, names) = parser::parse_with_captures(pattern).map_err(bad)?;
        let re = regex::RegexBuilder::new(&node.to_anchored_regex())
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map_err(|e| bad(format!("cannot compile regexp: {e}")))?;
        debug_assert_eq!(re.captures_len(), names.len() + 1);
        Ok(GoRegex { re, names })
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text)
    }

    /// If the whole of `text` matches, `template` with Go's `$` references replaced by the
    /// groups they name (Go's `ExpandString`): `$1` or `${1}` by number, `$name` or `${name}`
    /// by name (the leftmost group of that name that took part in the match), `$$` for `$`;
    /// a reference to a group that does not exist or did not take part expands to nothing,
    /// and a `$` followed by no name is kept. `None` if `text` does not match.
    pub fn expand(&self, text: &str, template: &str) -> Option<String> {
        let caps = self.re.captures(text)?;
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = reference(rest) else {
                out.push('$');
                continue;
            };
            rest = after;
            let group = match group_number(name) {
                Some(n) => caps.get(n),
                None => self
                    .names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.as_deref() == Some(name))
                    .find_map(|(i, _)| caps.get(i + 1)),
            };
            if let Some(m) = group {
                out.push_str(m.as_str());
            }
        }
        out.push_str(rest);
        Some(out)
    }
}

/// Go's `extract`: the name after a `$` (Unicode letters, digits and `_`, optionally in
/// braces) and what follows it; `None` if there is none or a brace is not closed.
fn reference(s: &str) -> Option<(&str, &str)> {
    static NAME: OnceLock<Regex> = OnceLock::new();
    let name_re = NAME.get_or_init(|| Regex::new(r"\A[\p{L}\p{Nd}_]+").expect("valid pattern"));
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len = name_re.find(body)?.end();
    let name = &body[..len];
    if braced {
        let after = body[len..].strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, &body[len..]))
}

/// Go's reading of a reference as a group number: at most 9 ASCII digits without a leading
/// zero; anything else is a name.
fn group_number(name: &str) -> Option<usize> {
    let digits = name.bytes().all(|b| b.is_ascii_digit());
    if !digits || name.len() > 9 || name.len() > 1 && name.starts_with('0') {
        return None;
    }
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(re: &str, text: &str, template: &str) -> Option<String> {
        GoRegex::new(re)
            .unwrap_or_else(|e| panic!("{re}: {e}"))
            .expand(text, template)
    }

    #[test]
    fn expands_like_go() {
        let re = "(?P<host>[a-z]+):(\\d+)";
        assert_eq!(expand(re, "web:8080", "$1-$2").as_deref(), Some("web-8080"));
        assert_eq!(expand(re, "web:8080", "${host}x").as_deref(), Some("webx"));
        // `$hostx` names a group that does not exist.
        assert_eq!(expand(re, "web:8080", "$hostx").as_deref(), Some(""));
        assert_eq!(expand(re, "web:8080", "$$1").as_deref(), Some("$1"));
        assert_eq!(expand(re, "web:8080", "a$").as_deref(), Some("a$"));
        assert_eq!(expand(re, "web:8080", "$9").as_deref(), Some(""));
        assert_eq!(expand(re, "web:8080", "${1").as_deref(), Some("${1"));
        assert_eq!(expand(re, "web:8080", "$2$1").as_deref(), Some("8080web"));
        // Leading zeros make a name, not a number.
        assert_eq!(expand(re, "web:8080", "$01").as_deref(), Some(""));
        assert_eq!(expand(re, "web:", "$1"), None);
        // Anchored at both ends.
        assert_eq!(expand("b", "abc", "x"), None);
        assert_eq!(expand("a|ab", "ab", "$0").as_deref(), Some("ab"));
    }

    #[test]
    fn groups_are_numbered_as_go_numbers_them() {
        // Non-capturing and flag groups take no number; nested groups count by their
        // opening parenthesis.
        let re = "(?:x)(?i)((a)(?P<n>b))(c)?";
        assert_eq!(
            expand(re, "xABc", "$1|$2|$3|$n|$4").as_deref(),
            Some("AB|A|B|B|c")
        );
        // A group that took no part expands to nothing.
        assert_eq!(expand(re, "xab", "[$4]").as_deref(), Some("[]"));
        // Go allows a name twice; a reference takes the leftmost group that matched.
        let dup = "(?P<v>a)?(?P<v>b)";
        assert_eq!(expand(dup, "ab", "$v").as_deref(), Some("a"));
        assert_eq!(expand(dup, "b", "$v").as_deref(), Some("b"));
        // Names may start with a digit in Go.
        assert_eq!(expand("(?P<1a>z)", "z", "${1a}").as_deref(), Some("z"));
    }

    #[test]
    fn go_syntax_and_ascii_classes() {
        let d = GoRegex::new("\\d").expect("valid");
        assert!(d.is_match("5"));
        assert!(!d.is_match("٥"));
        assert!(GoRegex::new("[\\d.]+").expect("valid").is_match("1.5"));
        assert!(GoRegex::new("[[]").expect("valid").is_match("["));
        assert!(GoRegex::new("\\Q.*\\E").expect("valid").is_match(".*"));
        assert!(!GoRegex::new("\\Q.*\\E").expect("valid").is_match("ab"));
        assert!(matches!(
            GoRegex::new("(a"),
            Err(Error::InvalidMatcher { .. })
        ));
        assert!(matches!(
            GoRegex::new("a**"),
            Err(Error::InvalidMatcher { .. })
        ));
    }
}
