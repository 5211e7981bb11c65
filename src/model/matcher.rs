//! Label matchers with Prometheus semantics.

use std::fmt;

use regex::Regex;

use crate::error::{Error, Result};

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
}

/// A compiled matcher on one label. An absent label matches as the empty string.
#[derive(Clone)]
pub struct Matcher {
    kind: MatchType,
    name: String,
    value: String,
    re: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher; regexes are compiled once, anchored at both ends.
    pub fn new(kind: MatchType, name: &str, value: &str) -> Result<Matcher> {
        let re = match kind {
            MatchType::Regex | MatchType::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| Error::InvalidMatcher {
                    reason: format!("bad regex {value:?} for label {name:?}: {e}"),
                })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            kind,
            name: name.to_owned(),
            value: value.to_owned(),
            re,
        })
    }

    /// `name="value"`.
    pub fn equal(name: &str, value: &str) -> Matcher {
        Matcher {
            kind: MatchType::Equal,
            name: name.to_owned(),
            value: value.to_owned(),
            re: None,
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
    pub fn matches(&self, v: &str) -> bool {
        match self.kind {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher matches the empty string, i.e. series without the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=` and `=~` with a literal alternation (`a|b|c`): the exact values matched.
    pub fn set_matches(&self) -> Option<&[String]> {
        match self.kind {
            MatchType::Equal => Some(std::slice::from_ref(&self.value)),
            _ => None,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.kind.as_str())?;
        super::write_quoted(f, &self.value)
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
