//! Prometheus's text forms of label sets and series selectors (grammar on [`parse_selector`]).

use std::fmt;
use std::str::FromStr;

use super::labels::{write_quoted, METRIC_NAME};
use super::{Labels, LabelsBuilder, MatchType, Matcher};
use crate::error::{Error, Result};

/// Whether `s` is a metric name in PromQL's legacy charset, `[a-zA-Z_:][a-zA-Z0-9_:]*`, which
/// can be written unquoted before `{`.
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Whether `s` is a label name in PromQL's legacy charset, `[a-zA-Z_][a-zA-Z0-9_]*`, which can be
/// written unquoted (Prometheus 2.x only accepts these).
pub fn is_valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Writes a label name as a selector or label set spells it: bare if legacy-valid, else quoted.
pub(crate) fn write_label_name(f: &mut impl fmt::Write, name: &str) -> fmt::Result {
    if is_valid_label_name(name) {
        f.write_str(name)
    } else {
        write_quoted(f, name)
    }
}

/// Parses a series selector into its matchers, e.g. `up{job=~"n.*", instance!=""}` or
/// `{__name__=~"a|b"}`. A metric name before the braces (or a bare quoted name inside them)
/// becomes `__name__="..."`, first in the result; the other matchers keep their order.
///
/// The grammar is PromQL's (and [`Labels::parse`] reads the same one, with `=` only):
///
/// * metric names outside braces are `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
///   `[a-zA-Z_][a-zA-Z0-9_]*`; Prometheus 3 style quoted names are accepted too:
///   `{"my.metric", "a.b"="c"}`;
/// * values are strings in double or single quotes with Go escapes (`\n \t \" \\ \xNN \NNN
///   \uNNNN \UNNNNNNNN`; the other quote needs no escape; a raw newline is an error), or raw in
///   backticks; the unescaped bytes must be UTF-8;
/// * whitespace may appear between tokens, a trailing comma before `}`.
///
/// As in PromQL, a selector needs at least one matcher that does not match the empty string, and
/// the metric name cannot be given twice. Regexes follow [`Matcher::new`]. Errors are
/// [`Error::InvalidMatcher`] naming the byte offset, what was expected and what was found.
///
/// ```
/// use annals::{parse_selector, MatchType};
/// let m = parse_selector(r#"up{job=~"n.*"}"#).unwrap();
/// assert_eq!(m[0].name(), "__name__");
/// assert_eq!(m[1].kind(), MatchType::Regex);
/// assert!(m[1].matches("node"));
/// ```
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>> {
    let body = Parser::new(s, Form::Selector).body()?;
    let mut out = Vec::with_capacity(body.items.len() + 1);
    if let Some(metric) = body.metric {
        out.push(Matcher::equal(METRIC_NAME, &metric.value));
    }
    for it in body.items {
        let m = Matcher::new(it.op, &it.name, &it.value).map_err(|e| match e {
            Error::InvalidMatcher { reason } => Error::InvalidMatcher {
                reason: format!("{reason} (value at offset {})", it.value_pos),
            },
            e => e,
        })?;
        out.push(m);
    }
    if out.iter().all(Matcher::matches_empty) {
        return Err(Error::InvalidMatcher {
            reason: format!(
                "selector {s:?} must contain at least one matcher that does not match the empty \
                 string (it would select every series)"
            ),
        });
    }
    Ok(out)
}

/// Prints matchers as a selector that [`parse_selector`] reads back to the same list:
/// `up{job="node"}` when the first matcher is `__name__="up"` with a legacy-valid name (and no
/// other `__name__` matcher follows), else `{__name__=~"a|b", job="node"}`. Lists that
/// `parse_selector` would reject (empty, only empty-matching matchers, empty label names) print
/// but do not parse back.
pub fn display_selector(matchers: &[Matcher]) -> SelectorDisplay<'_> {
    SelectorDisplay(matchers)
}

/// A selector being printed; see [`display_selector`].
#[derive(Clone, Copy)]
pub struct SelectorDisplay<'a>(&'a [Matcher]);

impl fmt::Display for SelectorDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        if let Some((first, tail)) = self.0.split_first() {
            if first.kind() == MatchType::Equal
                && first.name() == METRIC_NAME
                && is_valid_metric_name(first.value())
                && !tail.iter().any(|m| m.name() == METRIC_NAME)
            {
                f.write_str(first.value())?;
                if tail.is_empty() {
                    return Ok(());
                }
                rest = tail;
            }
        }
        f.write_str("{")?;
        for (i, m) in rest.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for SelectorDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses a label set such as `{__name__="up", job="node"}` or `up{job="node"}`.
pub(crate) fn parse_labels(s: &str) -> Result<Labels> {
    let body = Parser::new(s, Form::Labels).body()?;
    let mut b = LabelsBuilder::new();
    if let Some(metric) = &body.metric {
        b.push(METRIC_NAME, &metric.value);
    }
    for it in &body.items {
        if it.op != MatchType::Equal {
            return Err(Error::invalid_labels(format!(
                "expected '=' at offset {}, found {:?}: a label set only has name=\"value\" pairs",
                it.op_pos,
                it.op.as_str()
            )));
        }
        b.push(&it.name, &it.value);
    }
    b.build()
}

impl FromStr for Labels {
    type Err = Error;

    /// Same as [`Labels::parse`].
    fn from_str(s: &str) -> Result<Labels> {
        parse_labels(s)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Labels,
    Selector,
}

/// A string with the offset where it started.
struct Spanned {
    value: String,
    pos: usize,
}

struct Item {
    name: String,
    name_pos: usize,
    op: MatchType,
    op_pos: usize,
    value: String,
    value_pos: usize,
}

struct Body {
    metric: Option<Spanned>,
    items: Vec<Item>,
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    form: Form,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str, form: Form) -> Self {
        Parser { s, pos: 0, form }
    }

    fn error(&self, at: usize, msg: impl fmt::Display) -> Error {
        let what = match self.form {
            Form::Labels => "label set",
            Form::Selector => "selector",
        };
        let reason = format!("{msg} at offset {at} of the {what}");
        match self.form {
            Form::Labels => Error::InvalidLabels { reason },
            Form::Selector => Error::InvalidMatcher { reason },
        }
    }

    /// "expected X, found Y" at the cursor.
    fn expected(&self, what: &str) -> Error {
        let found = match self.peek() {
            None => "the end of the input".to_owned(),
            Some(c) => format!("{c:?}"),
        };
        self.error(self.pos, format_args!("expected {what}, found {found}"))
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.pos += 1;
        }
    }

    /// `[metric] '{' [item (',' item)* [',']] '}'` or `metric`, with nothing after.
    fn body(mut self) -> Result<Body> {
        let mut metric = None;
        let mut items = Vec::new();
        self.skip_ws();
        let start = self.pos;
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        {
            let name = self.identifier(true);
            metric = Some(Spanned {
                value: name.to_owned(),
                pos: start,
            });
            self.skip_ws();
        }
        if self.eat('{') {
            loop {
                self.skip_ws();
                if self.eat('}') {
                    break;
                }
                let name_pos = self.pos;
                let name = match self.peek() {
                    Some('"' | '\'' | '`') => self.string()?,
                    Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                        self.identifier(false).to_owned()
                    }
                    _ => return Err(self.expected("a label name or '}'")),
                };
                self.skip_ws();
                if matches!(self.peek(), Some(',' | '}'))
                    && self.s[name_pos..].starts_with(['"', '\'', '`'])
                {
                    // A bare quoted metric name: `{"my.metric", job="x"}`.
                    if name.is_empty() {
                        return Err(self.error(name_pos, "the metric name is empty"));
                    }
                    if let Some(prev) = &metric {
                        return Err(self.error(
                            name_pos,
                            format_args!(
                                "metric name must not be set twice: {:?} or {name:?}",
                                prev.value
                            ),
                        ));
                    }
                    metric = Some(Spanned {
                        value: name,
                        pos: name_pos,
                    });
                } else {
                    if name.is_empty() {
                        return Err(self.error(name_pos, "a label name is empty"));
                    }
                    let op_pos = self.pos;
                    let op = self.operator()?;
                    self.skip_ws();
                    let value_pos = self.pos;
                    if !matches!(self.peek(), Some('"' | '\'' | '`')) {
                        return Err(self.expected(&format!("a quoted value for label {name:?}")));
                    }
                    let value = self.string()?;
                    items.push(Item {
                        name,
                        name_pos,
                        op,
                        op_pos,
                        value,
                        value_pos,
                    });
                    self.skip_ws();
                }
                if self.eat(',') {
                    continue;
                }
                if self.eat('}') {
                    break;
                }
                return Err(self.expected("',' or '}'"));
            }
        } else if metric.is_none() {
            return Err(self.expected("a metric name or '{'"));
        }
        if let Some(prev) = &metric {
            if let Some(it) = items.iter().find(|it| it.name == METRIC_NAME) {
                return Err(self.error(
                    it.name_pos,
                    format_args!(
                        "metric name must not be set twice: {:?} (at offset {}) and a \
                         {METRIC_NAME} matcher",
                        prev.value, prev.pos
                    ),
                ));
            }
        }
        self.skip_ws();
        if self.pos < self.s.len() {
            return Err(self.expected("the end of the input"));
        }
        Ok(Body { metric, items })
    }

    /// An unquoted metric name (`metric`) or label name; the cursor is on a valid first char.
    fn identifier(&mut self, metric: bool) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':'))
        {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn operator(&mut self) -> Result<MatchType> {
        let start = self.pos;
        let op = match (self.bump(), self.peek()) {
            (Some('='), Some('~')) => MatchType::Regex,
            (Some('='), _) => return Ok(MatchType::Equal),
            (Some('!'), Some('=')) => MatchType::NotEqual,
            (Some('!'), Some('~')) => MatchType::NotRegex,
            _ => {
                self.pos = start;
                let what = match self.form {
                    Form::Labels => "'='",
                    Form::Selector => "one of '=', '!=', '=~', '!~'",
                };
                return Err(self.expected(what));
            }
        };
        self.pos += 1;
        Ok(op)
    }

    /// A quoted string at the cursor: PromQL's lexer rules, Go's unquoting.
    fn string(&mut self) -> Result<String> {
        let start = self.pos;
        let quote = self.bump().expect("caller checked the quote");
        if quote == '`' {
            let rest = &self.s[self.pos..];
            let Some(end) = rest.find('`') else {
                return Err(self.error(start, "unterminated raw string"));
            };
            self.pos += end + 1;
            return Ok(rest[..end].to_owned());
        }
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let c = match self.bump() {
                None | Some('\n') => {
                    return Err(self.error(start, "unterminated quoted string"));
                }
                Some(c) => c,
            };
            if c == quote {
                break;
            }
            if c != '\\' {
                let mut tmp = [0; 4];
                buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                continue;
            }
            let esc_pos = self.pos - 1;
            let Some(e) = self.bump() else {
                return Err(self.error(start, "unterminated quoted string"));
            };
            let simple = match e {
                'a' => Some(0x07),
                'b' => Some(0x08),
                'f' => Some(0x0c),
                'n' => Some(b'\n'),
                'r' => Some(b'\r'),
                't' => Some(b'\t'),
                'v' => Some(0x0b),
                '\\' => Some(b'\\'),
                c if c == quote => Some(c as u8),
                _ => None,
            };
            if let Some(b) = simple {
                buf.push(b);
                continue;
            }
            let (digits, radix, max) = match e {
                '0'..='7' => (3, 8, 255),
                'x' => (2, 16, 255),
                'u' => (4, 16, 0x10ffff),
                'U' => (8, 16, 0x10ffff),
                _ => return Err(self.error(esc_pos, format_args!("unknown escape sequence \\{e}"))),
            };
            let mut v: u32 = 0;
            let mut first = if e.is_ascii_digit() { Some(e) } else { None };
            for _ in 0..digits {
                let d = match first.take() {
                    Some(d) => Some(d),
                    None => self.bump(),
                };
                match d.and_then(|d| d.to_digit(radix)) {
                    Some(d) => v = v * radix + d,
                    None => {
                        return Err(self.error(
                            esc_pos,
                            format_args!(
                                "escape sequence \\{e} needs {digits} {} digits",
                                if radix == 8 { "octal" } else { "hex" }
                            ),
                        ))
                    }
                }
            }
            if v > max {
                return Err(self.error(esc_pos, "escape sequence is an invalid Unicode code point"));
            }
            if max == 255 {
                // \NNN and \xNN are bytes; the whole string must still be UTF-8.
                buf.push(v as u8);
            } else {
                let Some(c) = char::from_u32(v) else {
                    return Err(
                        self.error(esc_pos, "escape sequence is an invalid Unicode code point")
                    );
                };
                let mut tmp = [0; 4];
                buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
        String::from_utf8(buf).map_err(|_| {
            self.error(
                start,
                "string is not valid UTF-8 (\\x and octal escapes are bytes and must form UTF-8)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sel(s: &str) -> Vec<String> {
        parse_selector(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn sel_err(s: &str) -> String {
        let e = parse_selector(s).expect_err(s);
        assert!(matches!(e, Error::InvalidMatcher { .. }), "{s}: {e:?}");
        e.to_string()
    }

    fn labels_err(s: &str) -> String {
        let e = Labels::parse(s).expect_err(s);
        assert!(matches!(e, Error::InvalidLabels { .. }), "{s}: {e:?}");
        e.to_string()
    }

    fn ls(p: &[(&str, &str)]) -> Labels {
        Labels::new(p.iter().copied()).unwrap()
    }

    #[test]
    fn label_set_forms() {
        let want = ls(&[("__name__", "up"), ("job", "node")]);
        for s in [
            r#"{__name__="up", job="node"}"#,
            r#"up{job="node"}"#,
            r#"  up  {  job = "node" , }  "#,
            "up{job='node'}",
            "up{job=`node`}",
            "{job=\"node\",\n\t__name__=\"up\"}",
            r#"{"up", job="node"}"#,
            r#"{job="node", "up",}"#,
            r#"{"__name__"="up", "job"="node"}"#,
        ] {
            assert_eq!(
                Labels::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")),
                want,
                "{s}"
            );
        }
        assert_eq!("up".parse::<Labels>().unwrap(), ls(&[("__name__", "up")]));
        assert_eq!(
            Labels::parse(r#"{"a.b"="c", "é"="ü"}"#).unwrap(),
            ls(&[("a.b", "c"), ("é", "ü")])
        );
        assert_eq!(
            Labels::parse(r#"{__name__="my.metric"}"#).unwrap(),
            ls(&[("__name__", "my.metric")])
        );
        // Empty values mean "absent".
        assert_eq!(
            Labels::parse(r#"{a="1", b=""}"#).unwrap(),
            ls(&[("a", "1")])
        );
    }

    #[test]
    fn string_escapes() {
        let v = |s: &str| {
            Labels::parse(&format!("{{a={s}}}"))
                .unwrap_or_else(|e| panic!("{s}: {e}"))
                .get("a")
                .unwrap()
                .to_owned()
        };
        assert_eq!(v(r#""x\"y\\z\n\t\r""#), "x\"y\\z\n\t\r");
        assert_eq!(v(r#""\a\b\f\v""#), "\x07\x08\x0c\x0b");
        assert_eq!(v(r#""'""#), "'");
        assert_eq!(v(r#"'"'"#), "\"");
        assert_eq!(v(r#"'\''"#), "'");
        assert_eq!(v(r#""\x41\101\u00e9\U0001F600""#), "AAé😀");
        assert_eq!(v(r#""\xc3\xa9\303\251""#), "éé");
        assert_eq!(v("`a\\nb\n\"c\r`"), "a\\nb\n\"c\r");
        assert_eq!(v("\"raw\ttab\""), "raw\ttab");
        assert_eq!(v("\"日本\""), "日本");
    }

    #[test]
    fn string_errors_like_promql() {
        for (s, msg) in [
            (r#"{a="x}"#, "unterminated quoted string at offset 3"),
            ("{a=\"x\ny\"}", "unterminated quoted string"),
            ("{a=`x}", "unterminated raw string"),
            (r#"{a='\"'}"#, "unknown escape sequence \\\" at offset 4"),
            (r#"{a="\'"}"#, "unknown escape sequence \\'"),
            (r#"{a="\e"}"#, "unknown escape sequence \\e"),
            (r#"{a="\7"}"#, "needs 3 octal digits"),
            (r#"{a="\x4"}"#, "needs 2 hex digits"),
            (r#"{a="\400"}"#, "invalid Unicode code point"),
            (r#"{a="\ud800"}"#, "invalid Unicode code point"),
            (r#"{a="\U00110000"}"#, "invalid Unicode code point"),
            (r#"{a="\xff"}"#, "not valid UTF-8"),
            (r#"{a="\xc3"}"#, "not valid UTF-8"),
            (r#"{a="x"#, "unterminated quoted string"),
            (r#"{a="\"#, "unterminated quoted string"),
        ] {
            let e = labels_err(s);
            assert!(e.contains(msg), "{s}: {e} (wanted {msg})");
        }
    }

    #[test]
    fn label_set_errors() {
        for (s, msg) in [
            (
                "",
                "expected a metric name or '{', found the end of the input at offset 0",
            ),
            ("{}", "the label set is empty"),
            (r#"{a=""}"#, "the label set is empty"),
            (r#"{a="1", a="2"}"#, "\"a\" appears more than once"),
            (r#"up{__name__="x"}"#, "metric name must not be set twice"),
            (r#"{"up", "down"}"#, "metric name must not be set twice"),
            (r#"{a!="1"}"#, "expected '=' at offset 2, found \"!=\""),
            (r#"{a=~"1"}"#, "expected '='"),
            (r#"{a "1"}"#, "expected '=', found '\"' at offset 3"),
            (
                r#"{a=1}"#,
                "expected a quoted value for label \"a\", found '1' at offset 3",
            ),
            (
                r#"{a="1" b="2"}"#,
                "expected ',' or '}', found 'b' at offset 7",
            ),
            (r#"{,}"#, "expected a label name or '}', found ','"),
            (
                r#"{a="1"} x"#,
                "expected the end of the input, found 'x' at offset 8",
            ),
            (
                r#"{a="1""#,
                "expected ',' or '}', found the end of the input",
            ),
            (r#"{1a="1"}"#, "expected a label name or '}', found '1'"),
            (r#"{a:b="1"}"#, "expected '=', found ':'"),
            (r#"{""="1"}"#, "a label name is empty"),
            (r#"{""}"#, "the metric name is empty"),
            ("1up", "expected a metric name or '{'"),
            (
                "up{",
                "expected a label name or '}', found the end of the input",
            ),
        ] {
            let e = labels_err(s);
            assert!(e.contains(msg), "{s}: {e} (wanted {msg})");
        }
    }

    #[test]
    fn selector_forms() {
        assert_eq!(
            sel(r#"up{job=~"n.*", instance!=""}"#),
            [r#"__name__="up""#, r#"job=~"n.*""#, r#"instance!="""#]
        );
        assert_eq!(sel(r#"{__name__=~"a|b"}"#), [r#"__name__=~"a|b""#]);
        assert_eq!(sel("up"), [r#"__name__="up""#]);
        assert_eq!(sel("up{}"), [r#"__name__="up""#]);
        assert_eq!(sel("job:rate5m:sum"), [r#"__name__="job:rate5m:sum""#]);
        assert_eq!(sel(r#" { a !~ 'x' , b="y", } "#), [r#"a!~"x""#, r#"b="y""#]);
        assert_eq!(
            sel(r#"{job="x", "my.metric", "a.b"=~"c"}"#),
            [r#"__name__="my.metric""#, r#"job="x""#, r#""a.b"=~"c""#]
        );
        // Regexes keep their backslashes through string unescaping.
        let m = parse_selector(r#"{n=~"2\\.5"}"#).unwrap();
        assert_eq!(m[0].value(), "2\\.5");
        assert!(m[0].matches("2.5") && !m[0].matches("2x5"));
        let m = parse_selector(r#"{n=~`2\.5|\d`}"#).unwrap();
        assert_eq!(m[0].value(), "2\\.5|\\d");
    }

    #[test]
    fn selector_errors_like_promql() {
        for (s, msg) in [
            (
                "{}",
                "must contain at least one matcher that does not match the empty string",
            ),
            (r#"{v=""}"#, "at least one matcher"),
            (r#"{v=~".*"}"#, "at least one matcher"),
            (
                r#"m{__name__="m"}"#,
                "metric name must not be set twice: \"m\"",
            ),
            (r#"m{__name__=~"x"}"#, "metric name must not be set twice"),
            (r#"m{"n"}"#, "metric name must not be set twice"),
            (
                r#"{a=="1"}"#,
                "expected a quoted value for label \"a\", found '='",
            ),
            (
                r#"{a!"1"}"#,
                "expected one of '=', '!=', '=~', '!~', found '!' at offset 2",
            ),
            (
                r#"{a=~"(x"}"#,
                "missing closing ): `(x` (value at offset 4)",
            ),
            (r#"{a!~"x**"}"#, "invalid nested repetition operator"),
            (
                r#"{v="x" v="y"}"#,
                "expected ',' or '}', found 'v' at offset 7",
            ),
            ("m{,}", "expected a label name or '}'"),
            ("m offset 5m", "expected the end of the input, found 'o'"),
        ] {
            let e = sel_err(s);
            assert!(e.contains(msg), "{s}: {e} (wanted {msg})");
        }
    }

    #[test]
    fn selector_display() {
        let p = |s: &str| display_selector(&parse_selector(s).unwrap()).to_string();
        assert_eq!(p(r#"up{job="x"}"#), r#"up{job="x"}"#);
        assert_eq!(p("up"), "up");
        assert_eq!(p(r#"{"my.metric"}"#), r#"{__name__="my.metric"}"#);
        assert_eq!(p(r#"{a="b", __name__="up"}"#), r#"{a="b", __name__="up"}"#);
        assert_eq!(p(r#"{__name__!="x", a="b"}"#), r#"{__name__!="x", a="b"}"#);
        assert_eq!(display_selector(&[]).to_string(), "{}");
        // Two __name__ matchers cannot use the prefix form.
        let two = vec![
            Matcher::equal("__name__", "a"),
            Matcher::equal("__name__", "b"),
        ];
        let printed = display_selector(&two).to_string();
        assert_eq!(printed, r#"{__name__="a", __name__="b"}"#);
        assert_eq!(parse_selector(&printed).unwrap(), two);
    }

    #[test]
    fn labels_display_quotes_non_legacy_names() {
        let l = ls(&[("a.b", "1"), ("ok", "2"), ("x\"y", "3")]);
        let s = l.to_string();
        assert_eq!(s, r#"{"a.b"="1", ok="2", "x\"y"="3"}"#);
        assert_eq!(Labels::parse(&s).unwrap(), l);
    }

    #[test]
    fn name_validity() {
        assert!(is_valid_metric_name("a:b_c1"));
        assert!(is_valid_metric_name(":x"));
        assert!(!is_valid_metric_name("1a"));
        assert!(!is_valid_metric_name(""));
        assert!(!is_valid_metric_name("a.b"));
        assert!(is_valid_label_name("_a1"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name("é"));
    }

    /// Strings with quotes, backslashes, control characters, newlines and non-ASCII.
    fn tricky() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_]{1,6}",
            "\\PC{1,8}",
            prop::collection::vec(
                prop_oneof![
                    Just('"'),
                    Just('\''),
                    Just('`'),
                    Just('\\'),
                    Just('\n'),
                    Just('\r'),
                    Just('\t'),
                    Just('\0'),
                    Just('\x7f'),
                    Just('{'),
                    Just('}'),
                    Just(','),
                    Just('='),
                    Just('é'),
                    Just('😀'),
                    Just('\u{2028}'),
                    Just('a'),
                ],
                1..10
            )
            .prop_map(|v| v.into_iter().collect()),
        ]
    }

    fn arb_labels() -> impl Strategy<Value = Labels> {
        prop::collection::btree_map(tricky(), tricky(), 1..6)
            .prop_map(|m| Labels::new(m).expect("non-empty names and values"))
    }

    fn arb_matchers() -> impl Strategy<Value = Vec<Matcher>> {
        let kind = prop_oneof![
            Just(MatchType::Equal),
            Just(MatchType::NotEqual),
            Just(MatchType::Regex),
            Just(MatchType::NotRegex),
        ];
        let one = (
            kind,
            prop_oneof![Just(METRIC_NAME.to_owned()), tricky()],
            tricky(),
        )
            .prop_filter_map("regex must compile", |(k, n, v)| {
                Matcher::new(k, &n, &v).ok()
            });
        // At least one matcher that does not match "".
        (prop::collection::vec(one, 0..5), tricky(), tricky()).prop_map(|(mut v, n, x)| {
            v.insert(0, Matcher::equal(&n, &x));
            v
        })
    }

    proptest! {
        #[test]
        fn labels_print_parse_round_trip(l in arb_labels()) {
            let printed = l.to_string();
            let back = Labels::parse(&printed);
            prop_assert!(back.is_ok(), "{printed}: {back:?}");
            prop_assert_eq!(back.unwrap(), l);
        }

        #[test]
        fn matchers_print_parse_round_trip(ms in arb_matchers()) {
            let printed = display_selector(&ms).to_string();
            let back = parse_selector(&printed);
            prop_assert!(back.is_ok(), "{printed}: {back:?}");
            prop_assert_eq!(back.unwrap(), ms.clone());
            for m in &ms {
                let one = m.to_string();
                let wrapped = format!("{{{one}, zz=\"1\"}}");
                let back = parse_selector(&wrapped).unwrap();
                prop_assert_eq!(&back[0], m);
            }
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,40}") {
            let _ = parse_selector(&s);
            let _ = Labels::parse(&s);
        }
    }
}
