//! Parsers of scraped bodies: the Prometheus text format 0.0.4 and OpenMetrics 1.0, with the
//! rules of Prometheus 2.42's `model/textparse` (`promparse.go`, `openmetricsparse.go`).
//!
//! The parser works in place: [`Parser::next`] returns the raw series text of a sample line
//! (`name{labels}` exactly as exposed, the scrape cache's key) with its value and timestamp;
//! the labels are only decoded ([`parse_series`]) for a series the cache has not seen. Text
//! from the network: it never panics, and every malformed line is a [`ParseError`] with the
//! line number.

use std::borrow::Cow;

/// The exposition format of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The parser Prometheus picks for a `Content-Type` (anything but OpenMetrics is text).
    pub fn for_content_type(ct: &str) -> Format {
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// One entry of a body.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// A sample.
    Sample {
        /// The series as exposed: metric name and label block, verbatim.
        series: &'a [u8],
        /// The value.
        value: f64,
        /// The timestamp in ms, if the line has one.
        timestamp: Option<i64>,
    },
    /// `# TYPE name type`.
    Type {
        /// Metric name.
        name: &'a [u8],
        /// Type word.
        kind: &'a [u8],
    },
    /// `# HELP name text`.
    Help {
        /// Metric name.
        name: &'a [u8],
        /// Help text (escapes not decoded).
        text: &'a [u8],
    },
    /// `# UNIT name unit` (OpenMetrics).
    Unit {
        /// Metric name.
        name: &'a [u8],
        /// Unit.
        unit: &'a [u8],
    },
    /// Any other comment (Prometheus text format).
    Comment,
}

/// A malformed body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Iterates the entries of a body.
pub struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
    line: usize,
    format: Format,
    done: bool,
    /// OpenMetrics: the last entry's line ended with a newline not yet counted.
    om_pending: bool,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}
fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}
fn is_label_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}
fn is_label_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Go's `strconv.ParseFloat` as Prometheus calls it (no hex floats, no underscores).
pub fn parse_float(s: &[u8]) -> Option<f64> {
    if s.is_empty()
        || s.iter()
            .any(|&c| matches!(c, b'p' | b'P' | b'_' | b'x' | b'X'))
    {
        return None;
    }
    let s = std::str::from_utf8(s).ok()?;
    s.parse::<f64>().ok()
}

const OM_TYPES: &[&[u8]] = &[
    b"counter",
    b"gauge",
    b"histogram",
    b"gaugehistogram",
    b"summary",
    b"info",
    b"stateset",
    b"unknown",
];
const PROM_TYPES: &[&[u8]] = &[b"counter", b"gauge", b"histogram", b"summary", b"untyped"];

impl<'a> Parser<'a> {
    /// A parser of `body` in `format`.
    pub fn new(body: &'a [u8], format: Format) -> Parser<'a> {
        Parser {
            b: body,
            pos: 0,
            line: 1,
            format,
            done: false,
            om_pending: false,
        }
    }

    fn err<T>(&mut self, reason: impl Into<String>) -> Result<T, ParseError> {
        self.done = true;
        Err(ParseError {
            line: self.line,
            reason: reason.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// The rest of the current line (without the newline); moves past the newline.
    fn rest_of_line(&mut self) -> &'a [u8] {
        let start = self.pos;
        let end = memchr(b'\n', &self.b[start..]).map_or(self.b.len(), |i| start + i);
        self.pos = (end + 1).min(self.b.len());
        if end < self.b.len() {
            self.line += 1;
        }
        &self.b[start..end]
    }

    fn name(&mut self) -> &'a [u8] {
        let start = self.pos;
        if self.peek().is_some_and(is_name_start) {
            self.pos += 1;
            while self.peek().is_some_and(is_name_char) {
                self.pos += 1;
            }
        }
        &self.b[start..self.pos]
    }

    /// Skips a `{...}` label block starting at `pos` (which holds `{`), validating it.
    fn label_block(&mut self) -> Result<(), ParseError> {
        let om = self.format == Format::OpenMetrics;
        self.pos += 1;
        loop {
            if !om {
                self.skip_blanks();
            }
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(c) if is_label_start(c) => {}
                _ => return self.err("expected label name or '}' in label set"),
            }
            while self.peek().is_some_and(is_label_char) {
                self.pos += 1;
            }
            if !om {
                self.skip_blanks();
            }
            if self.peek() != Some(b'=') {
                return self.err("expected '=' after label name");
            }
            self.pos += 1;
            if !om {
                self.skip_blanks();
            }
            if self.peek() != Some(b'"') {
                return self.err("expected '\"' to start a label value");
            }
            self.pos += 1;
            let vstart = self.pos;
            loop {
                match self.peek() {
                    None | Some(b'\n') => return self.err("label value is not terminated"),
                    Some(b'\\') => {
                        if self.b.get(self.pos + 1).is_none_or(|&c| c == b'\n') {
                            return self.err("label value is not terminated");
                        }
                        self.pos += 2;
                    }
                    Some(b'"') => break,
                    Some(_) => self.pos += 1,
                }
            }
            if std::str::from_utf8(&self.b[vstart..self.pos]).is_err() {
                return self.err("invalid UTF-8 label value");
            }
            self.pos += 1;
            if !om {
                self.skip_blanks();
            }
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    if om && self.peek() == Some(b'}') {
                        return self.err("unexpected '}' after ',' in label set");
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or '}' after label value"),
            }
        }
    }

    /// The next entry; `Ok(None)` at the end of the body.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        if self.done {
            return Ok(None);
        }
        match self.format {
            Format::Prometheus => self.next_prom(),
            Format::OpenMetrics => self.next_om(),
        }
    }

    fn next_prom(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        loop {
            self.skip_blanks();
            match self.peek() {
                None => {
                    self.done = true;
                    return Ok(None);
                }
                Some(b'\n') => {
                    self.pos += 1;
                    self.line += 1;
                }
                Some(b'#') => {
                    self.pos += 1;
                    self.skip_blanks();
                    let word_start = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                        self.pos += 1;
                    }
                    let word = &self.b[word_start..self.pos];
                    let is_meta = (word == b"HELP" || word == b"TYPE")
                        && matches!(self.peek(), Some(b' ' | b'\t'));
                    if !is_meta {
                        self.rest_of_line();
                        return Ok(Some(Entry::Comment));
                    }
                    self.skip_blanks();
                    let name = self.name();
                    if name.is_empty() {
                        return self.err(format!(
                            "expected metric name after {}",
                            String::from_utf8_lossy(word)
                        ));
                    }
                    let at_end = matches!(self.peek(), None | Some(b'\n'));
                    if !at_end && !matches!(self.peek(), Some(b' ' | b'\t')) {
                        return self.err("expected whitespace after metric name");
                    }
                    self.skip_blanks();
                    let text = self.rest_of_line();
                    if word == b"TYPE" {
                        let t = trim_end(text);
                        if !PROM_TYPES.contains(&t) {
                            return self.err(format!(
                                "invalid metric type {:?}",
                                String::from_utf8_lossy(t)
                            ));
                        }
                        return Ok(Some(Entry::Type { name, kind: t }));
                    }
                    if std::str::from_utf8(text).is_err() {
                        return self.err("help text is not a valid utf8 string");
                    }
                    return Ok(Some(Entry::Help { name, text }));
                }
                Some(c) if is_name_start(c) => return self.sample_prom().map(Some),
                Some(c) => {
                    return self.err(format!("{:?} is not a valid start token", c as char));
                }
            }
        }
    }

    fn sample_prom(&mut self) -> Result<Entry<'a>, ParseError> {
        let start = self.pos;
        self.name();
        self.skip_blanks();
        if self.peek() == Some(b'{') {
            self.label_block()?;
        }
        let series = trim_end(&self.b[start..self.pos]);
        self.skip_blanks();
        let vstart = self.pos;
        while self
            .peek()
            .is_some_and(|c| !matches!(c, b' ' | b'\t' | b'\n'))
        {
            self.pos += 1;
        }
        let Some(value) = parse_float(&self.b[vstart..self.pos]) else {
            let v = String::from_utf8_lossy(&self.b[vstart..self.pos]).into_owned();
            return self.err(format!("expected value after metric, got {v:?}"));
        };
        self.skip_blanks();
        let mut timestamp = None;
        if self.peek().is_some_and(|c| c != b'\n') {
            let tstart = self.pos;
            while self
                .peek()
                .is_some_and(|c| !matches!(c, b' ' | b'\t' | b'\n'))
            {
                self.pos += 1;
            }
            let t = std::str::from_utf8(&self.b[tstart..self.pos])
                .ok()
                .and_then(|s| s.parse::<i64>().ok());
            match t {
                Some(t) => timestamp = Some(t),
                None => return self.err("invalid timestamp"),
            }
            self.skip_blanks();
        }
        match self.peek() {
            None => {}
            Some(b'\n') => {
                self.pos += 1;
                self.line += 1;
            }
            Some(_) => return self.err("expected a line break after the timestamp"),
        }
        Ok(Entry::Sample {
            series,
            value,
            timestamp,
        })
    }

    fn next_om(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        if std::mem::take(&mut self.om_pending) {
            self.line += 1;
        }
        match self.peek() {
            None => self.err("data does not end with # EOF"),
            Some(b'#') => {
                let at = self.line;
                let line = self.rest_of_line();
                self.om_pending = self.line > at;
                self.line = at;
                if line == b"# EOF" {
                    let rest = &self.b[self.pos..];
                    if !rest.is_empty() {
                        return self.err("unexpected data after # EOF");
                    }
                    self.done = true;
                    return Ok(None);
                }
                let Some(rest) = line.strip_prefix(b"# ") else {
                    return self
                        .err("invalid comment: expected '# HELP', '# TYPE', '# UNIT' or '# EOF'");
                };
                let (word, rest) = split_space(rest);
                if !matches!(word, b"TYPE" | b"HELP" | b"UNIT") {
                    return self
                        .err("invalid comment: expected '# HELP', '# TYPE', '# UNIT' or '# EOF'");
                }
                let (name, text) = split_space(rest);
                if name.is_empty()
                    || !is_name_start(name[0])
                    || !name.iter().all(|&c| is_name_char(c))
                {
                    return self.err("expected a metric name in the comment");
                }
                match word {
                    b"TYPE" => {
                        if !OM_TYPES.contains(&text) {
                            return self.err(format!(
                                "invalid metric type {:?}",
                                String::from_utf8_lossy(text)
                            ));
                        }
                        Ok(Some(Entry::Type { name, kind: text }))
                    }
                    b"HELP" => {
                        if std::str::from_utf8(text).is_err() {
                            return self.err("help text is not a valid utf8 string");
                        }
                        Ok(Some(Entry::Help { name, text }))
                    }
                    b"UNIT" => {
                        if !text.is_empty() && !name.ends_with(text) {
                            return self.err(format!(
                                "unit not a suffix of metric {:?}",
                                String::from_utf8_lossy(name)
                            ));
                        }
                        Ok(Some(Entry::Unit { name, unit: text }))
                    }
                    _ => self
                        .err("invalid comment: expected '# HELP', '# TYPE', '# UNIT' or '# EOF'"),
                }
            }
            Some(c) if is_name_start(c) => self.sample_om().map(Some),
            Some(c) => self.err(format!("{:?} is not a valid start token", c as char)),
        }
    }

    fn sample_om(&mut self) -> Result<Entry<'a>, ParseError> {
        let start = self.pos;
        let name = self.name();
        if self.peek() == Some(b'{') {
            self.label_block()?;
        }
        let series = &self.b[start..self.pos];
        if self.peek() != Some(b' ') {
            return self.err("expected a space before the value");
        }
        self.pos += 1;
        let at = self.line;
        let line = self.rest_of_line();
        self.om_pending = self.line > at;
        self.line = at;
        // value [SP timestamp] [SP # SP exemplar]
        let (main, exemplar) = match find(line, b" # ") {
            Some(i) => (&line[..i], Some(&line[i + 3..])),
            None => (line, None),
        };
        let mut parts = main.split(|&c| c == b' ');
        let v = parts.next().unwrap_or_default();
        let Some(value) = parse_float(v) else {
            return self.err(format!(
                "expected value after metric, got {:?}",
                String::from_utf8_lossy(v)
            ));
        };
        let timestamp = match parts.next() {
            None => None,
            Some(t) => match parse_float(t) {
                Some(t) if t.is_finite() => Some((t * 1000.0) as i64),
                _ => return self.err("invalid timestamp"),
            },
        };
        if parts.next().is_some() {
            return self.err("expected next entry after timestamp");
        }
        if let Some(ex) = exemplar {
            if !(name.ends_with(b"_total") || name.ends_with(b"_bucket")) {
                return self.err(format!(
                    "metric name {} does not support exemplars",
                    String::from_utf8_lossy(name)
                ));
            }
            self.exemplar(ex)?;
        }
        Ok(Entry::Sample {
            series,
            value,
            timestamp,
        })
    }

    /// Validates an exemplar (`{labels} value [timestamp]`); its content is not kept.
    fn exemplar(&mut self, ex: &'a [u8]) -> Result<(), ParseError> {
        if ex.first() != Some(&b'{') {
            return self.err("expected '{' to start exemplar labels");
        }
        let mut sub = Parser {
            b: ex,
            pos: 0,
            line: self.line,
            format: Format::OpenMetrics,
            done: false,
            om_pending: false,
        };
        sub.label_block()?;
        let rest = &ex[sub.pos..];
        let Some(rest) = rest.strip_prefix(b" ") else {
            return self.err("expected a space after exemplar labels");
        };
        let mut parts = rest.split(|&c| c == b' ');
        if parts.next().and_then(parse_float).is_none() {
            return self.err("invalid exemplar value");
        }
        if let Some(t) = parts.next() {
            if !parse_float(t).is_some_and(f64::is_finite) {
                return self.err("invalid exemplar timestamp");
            }
        }
        if parts.next().is_some() {
            return self.err("expected next entry after exemplar timestamp");
        }
        Ok(())
    }
}

fn split_space(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == b' ') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &[]),
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn memchr(c: u8, b: &[u8]) -> Option<usize> {
    b.iter().position(|&x| x == c)
}

fn trim_end(b: &[u8]) -> &[u8] {
    let mut e = b.len();
    while e > 0 && matches!(b[e - 1], b' ' | b'\t') {
        e -= 1;
    }
    &b[..e]
}

/// Label pairs decoded from a series text, borrowed where no escape was decoded.
pub type SeriesLabels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Decodes the series text of a sample ([`Entry::Sample::series`]) into its metric name and
/// labels, in exposition order, with escapes decoded (`\\`, `\"`, `\n`; other backslashes
/// are kept, as Prometheus keeps them).
pub fn parse_series(series: &[u8]) -> Result<(Cow<'_, str>, SeriesLabels<'_>), String> {
    let s = std::str::from_utf8(series).map_err(|_| "series is not valid UTF-8".to_string())?;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    let name = &s[..i];
    if name.is_empty() {
        return Err("missing metric name".into());
    }
    let mut labels = Vec::new();
    let skip = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    skip(&mut i);
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            skip(&mut i);
            if i >= b.len() {
                return Err("unterminated label set".into());
            }
            if b[i] == b'}' {
                break;
            }
            let ns = i;
            while i < b.len() && is_label_char(b[i]) {
                i += 1;
            }
            let lname = &s[ns..i];
            skip(&mut i);
            if i >= b.len() || b[i] != b'=' {
                return Err("expected '='".into());
            }
            i += 1;
            skip(&mut i);
            if i >= b.len() || b[i] != b'"' {
                return Err("expected '\"'".into());
            }
            i += 1;
            let vs = i;
            let mut escaped = false;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    escaped = true;
                    i += 1;
                }
                i += 1;
            }
            if i >= b.len() {
                return Err("unterminated label value".into());
            }
            let raw = &s[vs..i];
            i += 1;
            let value = if escaped {
                Cow::Owned(unescape(raw))
            } else {
                Cow::Borrowed(raw)
            };
            labels.push((Cow::Borrowed(lname), value));
            skip(&mut i);
            if i < b.len() && b[i] == b',' {
                i += 1;
            }
        }
    }
    Ok((Cow::Borrowed(name), labels))
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests;
