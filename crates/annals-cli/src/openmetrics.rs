//! A streaming parser of the OpenMetrics text format, accepting exactly what Prometheus 2.42's
//! `textparse.OpenMetricsParser` accepts (the parser behind `promtool tsdb create-blocks-from
//! openmetrics`), one line at a time from any [`BufRead`].
//!
//! The grammar, per line (`\n`-terminated; single spaces, no others allowed):
//!
//! ```text
//! # HELP <metric> <text>         text: any UTF-8 up to the end of the line (may be empty)
//! # TYPE <metric> <type>         counter gauge histogram gaugehistogram summary info stateset unknown
//! # UNIT <metric> <unit>         an empty unit, or one the metric name ends with as `_<unit>`
//! <metric>[{<name>="<value>",...}] <value>[ <timestamp>][ # {<labels>} <value>[ <timestamp>]]
//! # EOF                          mandatory, last; nothing may follow it
//! ```
//!
//! Metric names are `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`. Label
//! values are double-quoted UTF-8; `\"`, `\\` and `\n` are unescaped, any other backslash pair
//! is kept as written (Prometheus' `lvalReplacer`). Values and timestamps are Go floats
//! (`strconv.ParseFloat` without hex or `_`: `1`, `-2.5e3`, `NaN`, `+Inf`, `-inf`, ...); a value
//! out of the float range is an error. Timestamps are seconds and become milliseconds as
//! `int64(ts * 1000)`, truncated like Go's conversion; non-finite ones and ones outside the `i64`
//! millisecond range are rejected. Blank lines, other comments and a trailing `\r` are errors,
//! as in Prometheus. The exemplar after ` # ` is checked and skipped (only metrics ending in
//! `_total` or `_bucket` may carry one).
//!
//! The parser never panics, holds one line in memory (at most [`DEFAULT_MAX_LINE_LEN`] bytes
//! unless changed) and reports errors with their 1-based line number.

use std::fmt;
use std::io::{self, BufRead};

/// Longest line accepted by default (bytes, without the newline).
pub const DEFAULT_MAX_LINE_LEN: usize = 4 << 20;

/// Go's `math.NaN()` (and Prometheus' `value.NormalNaN`): the NaN every parsed `NaN` becomes,
/// so that chunks hold the bits Prometheus writes.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Metric type declared by a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `gaugehistogram`
    GaugeHistogram,
    /// `summary`
    Summary,
    /// `info`
    Info,
    /// `stateset`
    Stateset,
    /// `unknown`
    Unknown,
}

impl MetricType {
    fn parse(s: &[u8]) -> Option<MetricType> {
        Some(match s {
            b"counter" => MetricType::Counter,
            b"gauge" => MetricType::Gauge,
            b"histogram" => MetricType::Histogram,
            b"gaugehistogram" => MetricType::GaugeHistogram,
            b"summary" => MetricType::Summary,
            b"info" => MetricType::Info,
            b"stateset" => MetricType::Stateset,
            b"unknown" => MetricType::Unknown,
            _ => return None,
        })
    }
}

/// One parsed line. Borrowed data lives until the next call to [`Parser::next_entry`].
#[derive(Debug)]
pub enum Entry<'a> {
    /// `# HELP`: the text as written (escapes not processed).
    Help {
        /// The metric family name.
        metric: &'a str,
        /// The help text.
        text: &'a str,
    },
    /// `# TYPE`.
    Type {
        /// The metric family name.
        metric: &'a str,
        /// The declared type.
        kind: MetricType,
    },
    /// `# UNIT`.
    Unit {
        /// The metric family name.
        metric: &'a str,
        /// The unit; may be empty.
        unit: &'a str,
    },
    /// A sample line.
    Sample(Sample<'a>),
}

/// A sample line: the series' labels, its value and optional timestamp.
#[derive(Clone, Copy)]
pub struct Sample<'a> {
    text: &'a str,
    spans: &'a [Span],
    /// Indexes into `spans`, sorted by label name (stable).
    order: &'a [u16],
    /// The value; a parsed NaN has the bits [`NORMAL_NAN_BITS`].
    pub value: f64,
    /// Milliseconds since the epoch, if the line has a timestamp.
    pub timestamp: Option<i64>,
}

/// Byte ranges of a label name and value in the parser's label buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

impl Span {
    fn get(self, text: &str) -> (&str, &str) {
        (
            &text[self.name.0 as usize..self.name.1 as usize],
            &text[self.value.0 as usize..self.value.1 as usize],
        )
    }
}

impl<'a> Sample<'a> {
    /// The metric name.
    pub fn metric_name(&self) -> &'a str {
        let s = self.spans[0];
        &self.text[s.value.0 as usize..s.value.1 as usize]
    }

    /// The labels as written: `("__name__", metric)` first, then the pairs in input order,
    /// values unescaped. Not sorted, not deduplicated, empty values kept.
    pub fn labels(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        let text = self.text;
        self.spans.iter().map(move |s| s.get(text))
    }

    /// The same pairs as [`labels`](Self::labels), sorted by name (byte-wise; pairs with
    /// equal names keep their input order).
    pub fn sorted_labels(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        let (text, spans) = (self.text, self.spans);
        self.order
            .iter()
            .map(move |&i| spans[usize::from(i)].get(text))
    }
}

impl fmt::Debug for Sample<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sample")
            .field("labels", &self.labels().collect::<Vec<_>>())
            .field("value", &self.value)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// What is wrong with the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The line does not follow the grammar.
    #[error("{0}")]
    Syntax(String),
    /// The input ended without a `# EOF` line.
    #[error("data does not end with # EOF")]
    MissingEof,
    /// Something follows `# EOF`.
    #[error("unexpected data after # EOF")]
    DataAfterEof,
    /// A line is longer than the parser's limit.
    #[error("line is longer than {0} bytes")]
    LineTooLong(usize),
    /// Reading the input failed.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
}

/// A parse error at a 1-based line number.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// The line where the error was found.
    pub line: u64,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// Streaming OpenMetrics parser; see the module docs.
pub struct Parser<R> {
    reader: R,
    max_line_len: usize,
    line: Vec<u8>,
    line_no: u64,
    /// Set once `# EOF` was read; afterwards only the end of input is accepted.
    eof_seen: bool,
    done: bool,
    /// Label names and unescaped values of the current sample.
    text: String,
    spans: Vec<Span>,
    order: Vec<u16>,
}

impl<R: BufRead> Parser<R> {
    /// A parser reading from `reader`.
    pub fn new(reader: R) -> Self {
        Parser {
            reader,
            max_line_len: DEFAULT_MAX_LINE_LEN,
            line: Vec::new(),
            line_no: 0,
            eof_seen: false,
            done: false,
            text: String::new(),
            spans: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Changes the longest accepted line (bytes without the newline).
    pub fn with_max_line_len(mut self, n: usize) -> Self {
        self.max_line_len = n;
        self
    }

    /// Number of the line last read (1-based; 0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line_no
    }

    fn err(&self, kind: ErrorKind) -> ParseError {
        ParseError {
            line: self.line_no,
            kind,
        }
    }

    /// Reads the next line into `self.line` (without the `\n`). Returns whether a line was
    /// read and whether it ended with a newline.
    fn read_line(&mut self) -> Result<Option<bool>, ParseError> {
        self.line.clear();
        let mut any = false;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ParseError {
                        line: self.line_no + 1,
                        kind: ErrorKind::Io(e),
                    })
                }
            };
            if buf.is_empty() {
                if any {
                    self.line_no += 1;
                    return Ok(Some(false));
                }
                return Ok(None);
            }
            any = true;
            let (take, found) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            if self.line.len() + take > self.max_line_len {
                self.line_no += 1;
                return Err(self.err(ErrorKind::LineTooLong(self.max_line_len)));
            }
            self.line.extend_from_slice(&buf[..take]);
            self.reader.consume(take + usize::from(found));
            if found {
                self.line_no += 1;
                return Ok(Some(true));
            }
        }
    }

    /// The next entry, `Ok(None)` after `# EOF` at the end of the input. After an error the
    /// parser's position is unspecified; callers stop.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, ParseError> {
        if self.done {
            return Ok(None);
        }
        let newline = match self.read_line()? {
            None if self.eof_seen => {
                self.done = true;
                return Ok(None);
            }
            None => {
                return Err(ParseError {
                    line: self.line_no + 1,
                    kind: ErrorKind::MissingEof,
                })
            }
            Some(_) if self.eof_seen => return Err(self.err(ErrorKind::DataAfterEof)),
            Some(nl) => nl,
        };
        if self.line.first() == Some(&b'#') {
            let Some(kind) =
                parse_comment(&self.line).map_err(|m| self.err(ErrorKind::Syntax(m)))?
            else {
                self.eof_seen = true;
                // `# EOF` may be the last line without a newline; anything else is checked
                // by the next call.
                return self.next_entry();
            };
            if !newline {
                // Prometheus' lexer needs the newline that ends a HELP/TYPE/UNIT line.
                return Err(self.err(ErrorKind::MissingEof));
            }
            return Ok(Some(comment_entry(&self.line, kind)));
        }
        let (value, timestamp) = parse_sample(&self.line, &mut self.text, &mut self.spans)
            .map_err(|m| ParseError {
                line: self.line_no,
                kind: ErrorKind::Syntax(m),
            })?;
        if !newline {
            return Err(self.err(ErrorKind::MissingEof));
        }
        if self.spans.len() > usize::from(u16::MAX) {
            return Err(self.err(ErrorKind::Syntax(format!("more than {} labels", u16::MAX))));
        }
        let (text, spans) = (&self.text, &self.spans);
        self.order.clear();
        self.order.extend(0..spans.len() as u16);
        self.order.sort_by(|&a, &b| {
            spans[usize::from(a)]
                .get(text)
                .0
                .cmp(spans[usize::from(b)].get(text).0)
        });
        Ok(Some(Entry::Sample(Sample {
            text: &self.text,
            spans: &self.spans,
            order: &self.order,
            value,
            timestamp,
        })))
    }
}

/// A HELP, TYPE or UNIT line, as byte ranges of the line.
enum Comment {
    Help {
        metric: (usize, usize),
        text: usize,
    },
    Type {
        metric: (usize, usize),
        kind: MetricType,
    },
    Unit {
        metric: (usize, usize),
        unit: usize,
    },
}

fn comment_entry(line: &[u8], c: Comment) -> Entry<'_> {
    // Every range below was checked to be ASCII or valid UTF-8 by `parse_comment`.
    let s = |a: usize, b: usize| std::str::from_utf8(&line[a..b]).unwrap_or_default();
    match c {
        Comment::Help { metric, text } => Entry::Help {
            metric: s(metric.0, metric.1),
            text: s(text, line.len()),
        },
        Comment::Type { metric, kind } => Entry::Type {
            metric: s(metric.0, metric.1),
            kind,
        },
        Comment::Unit { metric, unit } => Entry::Unit {
            metric: s(metric.0, metric.1),
            unit: s(unit, line.len()),
        },
    }
}

fn is_metric_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_metric_char(b: u8) -> bool {
    is_metric_start(b) || b.is_ascii_digit()
}

fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_char(b: u8) -> bool {
    is_label_start(b) || b.is_ascii_digit()
}

/// Length of the metric name at the start of `b` (0 if none).
fn metric_name_len(b: &[u8]) -> usize {
    match b.first() {
        Some(&c) if is_metric_start(c) => {
            1 + b[1..].iter().take_while(|&&c| is_metric_char(c)).count()
        }
        _ => 0,
    }
}

fn describe(b: Option<&u8>) -> String {
    match b {
        None => "end of line".into(),
        Some(c) if c.is_ascii_graphic() => format!("{:?}", *c as char),
        Some(b' ') => "space".into(),
        Some(c) => format!("byte 0x{c:02x}"),
    }
}

/// Parses a line starting with `#`; `None` for `# EOF`.
fn parse_comment(line: &[u8]) -> Result<Option<Comment>, String> {
    let Some(rest) = line.strip_prefix(b"# ") else {
        return Err("a comment must start with \"# \" (HELP, TYPE, UNIT or EOF)".into());
    };
    if let Some(after) = rest.strip_prefix(b"EOF") {
        if after.is_empty() {
            return Ok(None);
        }
        return Err("unexpected data after # EOF".into());
    }
    let (word, body) = if let Some(b) = rest.strip_prefix(b"HELP ") {
        ("HELP", b)
    } else if let Some(b) = rest.strip_prefix(b"TYPE ") {
        ("TYPE", b)
    } else if let Some(b) = rest.strip_prefix(b"UNIT ") {
        ("UNIT", b)
    } else {
        return Err(
            "unsupported comment: only \"# HELP\", \"# TYPE\", \"# UNIT\" and \"# EOF\" lines are \
             allowed"
                .into(),
        );
    };
    let start = line.len() - body.len();
    let n = metric_name_len(body);
    if n == 0 {
        return Err(format!(
            "expected metric name after {word}, found {}",
            describe(body.first())
        ));
    }
    let metric = (start, start + n);
    if body.get(n) != Some(&b' ') {
        return Err(format!(
            "expected a space and text after the metric name in {word}, found {}",
            describe(body.get(n))
        ));
    }
    let text_start = start + n + 1;
    let text = &line[text_start..];
    match word {
        "HELP" => {
            if std::str::from_utf8(text).is_err() {
                return Err("help text is not valid UTF-8".into());
            }
            Ok(Some(Comment::Help {
                metric,
                text: text_start,
            }))
        }
        "TYPE" => match MetricType::parse(text) {
            Some(kind) => Ok(Some(Comment::Type { metric, kind })),
            None => Err(format!(
                "invalid metric type {:?}",
                String::from_utf8_lossy(text)
            )),
        },
        _ => {
            let m = &line[metric.0..metric.1];
            let is_suffix =
                m.len() > text.len() && m.ends_with(text) && m[m.len() - text.len() - 1] == b'_';
            if !text.is_empty() && !is_suffix {
                return Err(format!(
                    "unit {:?} is not a suffix of metric {:?}",
                    String::from_utf8_lossy(text),
                    String::from_utf8_lossy(m)
                ));
            }
            Ok(Some(Comment::Unit {
                metric,
                unit: text_start,
            }))
        }
    }
}

/// Parses `{name="value",...}` starting at `line[pos] == '{'`, appending names and unescaped
/// values to `text` and their ranges to `spans`. Returns the position after `}`.
fn parse_labels(
    line: &[u8],
    mut pos: usize,
    text: &mut String,
    spans: &mut Vec<Span>,
) -> Result<usize, String> {
    pos += 1;
    let mut first = true;
    loop {
        match line.get(pos) {
            Some(b'}') if first => return Ok(pos + 1),
            Some(b',') if !first => {
                pos += 1;
                if !line.get(pos).is_some_and(|&c| is_label_start(c)) {
                    return Err(format!(
                        "expected label name after ',', found {}",
                        describe(line.get(pos))
                    ));
                }
            }
            Some(b'}') => return Ok(pos + 1),
            Some(&c) if first && is_label_start(c) => {}
            other if first => {
                return Err(format!(
                    "expected label name or '}}', found {}",
                    describe(other)
                ))
            }
            other => return Err(format!("expected ',' or '}}', found {}", describe(other))),
        }
        first = false;
        let name_start = pos;
        while line.get(pos).is_some_and(|&c| is_label_char(c)) {
            pos += 1;
        }
        let name = &line[name_start..pos];
        if line.get(pos) != Some(&b'=') {
            return Err(format!(
                "expected '=' after label name {:?}, found {}",
                String::from_utf8_lossy(name),
                describe(line.get(pos))
            ));
        }
        pos += 1;
        if line.get(pos) != Some(&b'"') {
            return Err(format!(
                "expected '\"' to open the value of label {:?}, found {}",
                String::from_utf8_lossy(name),
                describe(line.get(pos))
            ));
        }
        pos += 1;
        let value_start = pos;
        let mut escaped = false;
        loop {
            match line.get(pos) {
                None => {
                    return Err(format!(
                        "unterminated value of label {:?}",
                        String::from_utf8_lossy(name)
                    ))
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    if pos + 1 >= line.len() {
                        return Err(format!(
                            "unterminated value of label {:?}",
                            String::from_utf8_lossy(name)
                        ));
                    }
                    pos += 2;
                }
                Some(_) => pos += 1,
            }
        }
        let raw = &line[value_start..pos];
        pos += 1;
        let Ok(raw) = std::str::from_utf8(raw) else {
            return Err(format!(
                "value of label {:?} is not valid UTF-8",
                String::from_utf8_lossy(name)
            ));
        };
        let n0 = text.len();
        // Label names are ASCII by construction.
        text.extend(name.iter().map(|&b| b as char));
        let n1 = text.len();
        if escaped {
            unescape_into(raw, text);
        } else {
            text.push_str(raw);
        }
        spans.push(Span {
            name: (n0 as u32, n1 as u32),
            value: (n1 as u32, text.len() as u32),
        });
    }
}

/// Prometheus' `lvalReplacer`: `\"` → `"`, `\\` → `\`, `\n` → newline; other pairs verbatim.
fn unescape_into(raw: &str, out: &mut String) {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
}

/// The token after a single space at `pos`: bytes up to the next space or the end.
fn token(line: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    if line.get(pos) != Some(&b' ') {
        return None;
    }
    let start = pos + 1;
    let len = line[start..].iter().take_while(|&&c| c != b' ').count();
    (len > 0).then(|| (&line[start..start + len], start + len))
}

fn parse_sample(
    line: &[u8],
    text: &mut String,
    spans: &mut Vec<Span>,
) -> Result<(f64, Option<i64>), String> {
    text.clear();
    spans.clear();
    let n = metric_name_len(line);
    if n == 0 {
        return Err(match line.first() {
            None => "blank lines are not allowed".into(),
            Some(c) => format!(
                "{} is not a valid start of a line (expected a metric name)",
                describe(Some(c))
            ),
        });
    }
    text.push_str("__name__");
    // Metric names are ASCII by construction.
    text.extend(line[..n].iter().map(|&b| b as char));
    spans.push(Span {
        name: (0, 8),
        value: (8, text.len() as u32),
    });
    let mut pos = n;
    if line.get(pos) == Some(&b'{') {
        pos = parse_labels(line, pos, text, spans)?;
    }
    let Some((v, p)) = token(line, pos) else {
        return Err(format!(
            "expected a space and a value after the series, found {}",
            describe(line.get(pos))
        ));
    };
    let value = parse_value(v)?;
    pos = p;
    let mut timestamp = None;
    if pos < line.len() && !line[pos..].starts_with(b" # {") {
        let Some((t, p)) = token(line, pos) else {
            return Err(format!(
                "expected a space and a timestamp after the value, found {}",
                describe(line.get(pos + usize::from(line.get(pos) == Some(&b' '))))
            ));
        };
        timestamp = Some(parse_timestamp(t)?);
        pos = p;
    }
    if pos == line.len() {
        return Ok((value, timestamp));
    }
    if !line[pos..].starts_with(b" # {") {
        return Err(format!(
            "expected the end of the line or an exemplar (\" # {{...}}\") after the {}, found {}",
            if timestamp.is_some() {
                "timestamp"
            } else {
                "value"
            },
            describe(line.get(pos + 1))
        ));
    }
    let metric = &line[..n];
    if !(metric.ends_with(b"_total") || metric.ends_with(b"_bucket")) {
        return Err(format!(
            "metric name {} does not support exemplars (only *_total and *_bucket do)",
            String::from_utf8_lossy(metric)
        ));
    }
    // The exemplar's labels go into scratch space that is discarded afterwards.
    let (keep_text, keep_spans) = (text.len(), spans.len());
    pos = parse_labels(line, pos + 3, text, spans)?;
    text.truncate(keep_text);
    spans.truncate(keep_spans);
    let Some((v, p)) = token(line, pos) else {
        return Err(format!(
            "expected a space and a value after the exemplar labels, found {}",
            describe(line.get(pos))
        ));
    };
    parse_value(v)?;
    pos = p;
    if pos < line.len() {
        let Some((t, p)) = token(line, pos) else {
            return Err("expected a space and a timestamp after the exemplar value".into());
        };
        parse_timestamp(t)?;
        if p != line.len() {
            return Err("expected the end of the line after the exemplar timestamp".into());
        }
    }
    Ok((value, timestamp))
}

fn parse_value(b: &[u8]) -> Result<f64, String> {
    let v = parse_go_float(b).map_err(|e| format!("invalid value: {e}"))?;
    Ok(if v.is_nan() {
        f64::from_bits(NORMAL_NAN_BITS)
    } else {
        v
    })
}

fn parse_timestamp(b: &[u8]) -> Result<i64, String> {
    let secs = parse_go_float(b).map_err(|e| format!("invalid timestamp: {e}"))?;
    let ms = secs * 1000.0;
    // i64::MIN as f64 is exactly -2^63; anything at or above 2^63 does not fit.
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return Err(format!(
            "timestamp {} is not a finite number of seconds within the millisecond range",
            String::from_utf8_lossy(b)
        ));
    }
    Ok(ms as i64)
}

/// Go's `strconv.ParseFloat(s, 64)` as Prometheus' text parsers call it: no hex floats, no
/// `_`, `p` or `P` at all; `inf`/`infinity` (any case, optional sign) and `nan` (any case, no
/// sign) are accepted; a finite literal too large for an `f64` is an error (`ErrRange`).
pub fn parse_go_float(b: &[u8]) -> Result<f64, String> {
    let s = std::str::from_utf8(b).map_err(|_| "not a number (invalid UTF-8)".to_string())?;
    let quoted = || format!("{s:?} is not a number");
    if s.bytes().any(|c| matches!(c, b'p' | b'P' | b'_')) {
        return Err(format!("unsupported character in float {s:?}"));
    }
    let (sign, body) = match s.as_bytes().first() {
        Some(b'+') => (1.0, &s[1..]),
        Some(b'-') => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Ok(sign * f64::INFINITY);
    }
    if s.eq_ignore_ascii_case("nan") {
        return Ok(f64::from_bits(NORMAL_NAN_BITS));
    }
    // Everything else must be a plain decimal: Rust also accepts "+nan" and friends.
    if !body
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(quoted());
    }
    let v: f64 = s.parse().map_err(|_| quoted())?;
    if v.is_infinite() {
        return Err(format!("{s:?} is out of the float64 range"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (Vec<(String, String)>, u64, Option<i64>);

    /// Parses all of `input`; returns the samples as (labels, value bits, timestamp) or the
    /// error.
    fn parse_all(input: &str) -> Result<Vec<Parsed>, ParseError> {
        let mut p = Parser::new(input.as_bytes());
        let mut out = Vec::new();
        while let Some(e) = p.next_entry()? {
            if let Entry::Sample(s) = e {
                out.push((
                    s.labels()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect(),
                    s.value.to_bits(),
                    s.timestamp,
                ));
            }
        }
        Ok(out)
    }

    fn err(input: &str) -> ParseError {
        match parse_all(input) {
            Err(e) => e,
            Ok(s) => panic!("{input:?} parsed: {s:?}"),
        }
    }

    fn syntax(input: &str, line: u64, needle: &str) {
        let e = err(input);
        assert_eq!(e.line, line, "{input:?}: {e}");
        assert!(matches!(e.kind, ErrorKind::Syntax(_)), "{input:?}: {e}");
        assert!(e.to_string().contains(needle), "{input:?}: {e}");
    }

    #[test]
    fn parses_the_promtool_fixture_input() {
        let input = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/prometheus-2.42/promtool-2.42-block.input.om"
        ))
        .unwrap();
        let mut p = Parser::new(input.as_bytes());
        let mut kinds = Vec::new();
        let mut samples = Vec::new();
        while let Some(e) = p.next_entry().unwrap() {
            match e {
                Entry::Help { metric, text } => kinds.push(format!("help {metric} {text}")),
                Entry::Type { metric, kind } => kinds.push(format!("type {metric} {kind:?}")),
                Entry::Unit { metric, unit } => kinds.push(format!("unit {metric} {unit}")),
                Entry::Sample(s) => samples.push(format!(
                    "{:?} {} {:?}",
                    s.labels().collect::<Vec<_>>(),
                    s.value,
                    s.timestamp
                )),
            }
        }
        assert_eq!(
            kinds,
            [
                "help http_requests_total Total requests.",
                "type http_requests_total Counter",
                "type up Gauge"
            ]
        );
        assert_eq!(samples.len(), 7);
        assert_eq!(
            samples[0],
            r#"[("__name__", "http_requests_total"), ("code", "200"), ("method", "get")] 1 Some(1700000000000)"#
        );
        assert_eq!(
            samples[5],
            r#"[("__name__", "http_requests_total"), ("code", "500"), ("method", "get")] 0.25 Some(1700000016000)"#
        );
        assert_eq!(p.line_number(), 11);
    }

    #[test]
    fn values_timestamps_and_escapes() {
        let s = parse_all(
            "a{b=\"x\\\\y\\\"z\\nw\\t\"} NaN 10.0015\n\
             a +Inf 1\n\
             a -inf -1.5\n\
             a 1.5e3\n\
             a{} 7 0\n\
             a_total 1 2 # {trace_id=\"abc\"} 0.5 1.25\n\
             a_bucket{le=\"1\"} 1 # {} 2\n\
             b{c=\"\",d=\"ü\\\\\"} -0 1e3\n\
             # EOF",
        )
        .unwrap();
        let l = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(s[0].0, l(&[("__name__", "a"), ("b", "x\\y\"z\nw\\t")]));
        assert_eq!(s[0].1, NORMAL_NAN_BITS);
        assert_eq!(s[0].2, Some(10001));
        assert_eq!(s[1].1, f64::INFINITY.to_bits());
        assert_eq!(s[2].1, f64::NEG_INFINITY.to_bits());
        assert_eq!(s[2].2, Some(-1500));
        assert_eq!((s[3].1, s[3].2), (1500f64.to_bits(), None));
        assert_eq!(s[4].0, l(&[("__name__", "a")]));
        assert_eq!(s[5].0, l(&[("__name__", "a_total")]));
        assert_eq!(s[5].2, Some(2000));
        assert_eq!(s[6].0, l(&[("__name__", "a_bucket"), ("le", "1")]));
        assert_eq!(s[7].0, l(&[("__name__", "b"), ("c", ""), ("d", "ü\\")]));
        assert_eq!(s[7].1, (-0.0f64).to_bits());
        assert_eq!(s[7].2, Some(1_000_000));
    }

    #[test]
    fn comments() {
        let mut p = Parser::new(
            &b"# HELP a_seconds Some help \\n text\n# HELP b \n# TYPE a_seconds gaugehistogram\n\
               # UNIT a_seconds seconds\n# UNIT a_seconds \n# EOF\n"[..],
        );
        assert!(matches!(
            p.next_entry(),
            Ok(Some(Entry::Help {
                metric: "a_seconds",
                text: "Some help \\n text"
            }))
        ));
        assert!(matches!(
            p.next_entry(),
            Ok(Some(Entry::Help {
                metric: "b",
                text: ""
            }))
        ));
        assert!(matches!(
            p.next_entry(),
            Ok(Some(Entry::Type {
                kind: MetricType::GaugeHistogram,
                ..
            }))
        ));
        assert!(matches!(
            p.next_entry(),
            Ok(Some(Entry::Unit {
                unit: "seconds",
                ..
            }))
        ));
        assert!(matches!(
            p.next_entry(),
            Ok(Some(Entry::Unit { unit: "", .. }))
        ));
        assert!(matches!(p.next_entry(), Ok(None)));
        assert!(matches!(p.next_entry(), Ok(None)));
    }

    #[test]
    fn eof_rules() {
        assert!(parse_all("# EOF").unwrap().is_empty());
        assert!(parse_all("a 1 1\n# EOF\n").is_ok());
        for (input, line) in [("", 1), ("a 1 1\n", 2), ("a 1 1", 1), ("# TYPE a gauge", 1)] {
            let e = err(input);
            assert!(matches!(e.kind, ErrorKind::MissingEof), "{input:?}: {e}");
            assert_eq!(e.line, line, "{input:?}");
        }
        for input in ["# EOF\n\n", "# EOF\na 1 1\n# EOF\n", "# EOF\n# EOF"] {
            let e = err(input);
            assert!(matches!(e.kind, ErrorKind::DataAfterEof), "{input:?}: {e}");
            assert_eq!(e.line, 2);
        }
        syntax("# EOF \n", 1, "after # EOF");
        syntax("# EOFx\n", 1, "after # EOF");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        syntax("a 1 1\n\n# EOF\n", 2, "blank");
        syntax("# foo\n# EOF\n", 1, "unsupported comment");
        syntax("#foo\n# EOF\n", 1, "must start");
        syntax("a 1 1\n{a=\"b\"} 1 1\n# EOF\n", 2, "not a valid start");
        syntax("1a 1\n# EOF\n", 1, "not a valid start");
        syntax("a  1\n# EOF\n", 1, "expected a space and a value");
        syntax("a\n# EOF\n", 1, "expected a space and a value");
        syntax("a 1 \n# EOF\n", 1, "timestamp");
        syntax("a 1 2 3\n# EOF\n", 1, "end of the line");
        syntax("a 1 2 \n# EOF\n", 1, "end of the line");
        syntax("a x\n# EOF\n", 1, "invalid value");
        syntax("a 1e400 1\n# EOF\n", 1, "range");
        syntax("a +nan 1\n# EOF\n", 1, "invalid value");
        syntax("a 0x1p3 1\n# EOF\n", 1, "unsupported character");
        syntax("a 1_0 1\n# EOF\n", 1, "unsupported character");
        syntax("a 1 1\r\n# EOF\n", 1, "invalid timestamp");
        syntax("a 1 NaN\n# EOF\n", 1, "timestamp");
        syntax("a 1 1e300\n# EOF\n", 1, "timestamp");
        syntax("a{b=\"c\",} 1\n# EOF\n", 1, "expected label name after ','");
        syntax("a{,} 1\n# EOF\n", 1, "expected label name or '}'");
        syntax("a{b=\"c\" d=\"e\"} 1\n# EOF\n", 1, "expected ',' or '}'");
        syntax("a{b=c} 1\n# EOF\n", 1, "to open the value");
        syntax("a{b} 1\n# EOF\n", 1, "expected '='");
        syntax("a{b=\"c} 1\n# EOF\n", 1, "unterminated");
        syntax("a{b=\"c\\\"} 1\n# EOF\n", 1, "unterminated");
        syntax("a 1 1 # {} 1\n# EOF\n", 1, "does not support exemplars");
        syntax("a_total 1 1 # {x} 1\n# EOF\n", 1, "expected '='");
        syntax("a_total 1 1 # {} \n# EOF\n", 1, "exemplar labels");
        syntax("a_total 1 1 # {} 1 2 3\n# EOF\n", 1, "exemplar timestamp");
        syntax("# HELP\n# EOF\n", 1, "unsupported comment");
        syntax("# HELP a\n# EOF\n", 1, "expected a space and text");
        syntax("# HELP 1a x\n# EOF\n", 1, "expected metric name");
        syntax("# TYPE a Gauge\n# EOF\n", 1, "invalid metric type");
        syntax("# TYPE a gauge \n# EOF\n", 1, "invalid metric type");
        syntax("# UNIT a_bytes seconds\n# EOF\n", 1, "not a suffix");
        syntax("# UNIT bytes bytes\n# EOF\n", 1, "not a suffix");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut p = Parser::new(&b"a{b=\"\xff\"} 1\n# EOF\n"[..]);
        let e = p.next_entry().unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
        let mut p = Parser::new(&b"# HELP a \xff\n# EOF\n"[..]);
        assert!(p.next_entry().is_err());
        let mut p = Parser::new(&b"a \xff\n# EOF\n"[..]);
        assert!(p.next_entry().is_err());
    }

    #[test]
    fn long_lines_are_rejected_without_buffering_them() {
        let mut input = b"a{b=\"".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10_000));
        input.extend_from_slice(b"\"} 1 1\n# EOF\n");
        let mut p =
            Parser::new(std::io::BufReader::with_capacity(64, &input[..])).with_max_line_len(1000);
        let e = p.next_entry().unwrap_err();
        assert!(matches!(e.kind, ErrorKind::LineTooLong(1000)), "{e}");
        let mut p = Parser::new(std::io::BufReader::with_capacity(64, &input[..]));
        assert!(matches!(p.next_entry(), Ok(Some(Entry::Sample(_)))));
    }

    #[test]
    fn go_float_rules() {
        let ok: &[(&str, f64)] = &[
            ("1", 1.0),
            ("-2.5", -2.5),
            ("+.5e-3", 0.0005),
            ("1.e5", 1e5),
            ("5.", 5.0),
            ("1E+05", 1e5),
            ("1e-400", 0.0),
            ("Inf", f64::INFINITY),
            ("+inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("INFINITY", f64::INFINITY),
        ];
        for &(s, v) in ok {
            assert_eq!(parse_go_float(s.as_bytes()), Ok(v), "{s}");
        }
        for s in ["NaN", "nan", "nAn"] {
            assert_eq!(
                parse_go_float(s.as_bytes()).unwrap().to_bits(),
                NORMAL_NAN_BITS
            );
        }
        for s in [
            "", "+", "-nan", "+NaN", "infin", "0x10", "0x1p-2", "1_000", "1e", ".", "e5", " 1",
            "1 ", "1e400", "-1e400", "1,5", "١",
        ] {
            assert!(parse_go_float(s.as_bytes()).is_err(), "{s:?}");
        }
    }

    #[test]
    fn timestamps_truncate_like_go() {
        // 1700000000.001 is 1700000000.00099992...; times 1000 it rounds up to an integer.
        assert_eq!(parse_timestamp(b"1700000000.001"), Ok(1_700_000_000_001));
        assert_eq!(parse_timestamp(b"10.0015"), Ok(10_001));
        assert_eq!(parse_timestamp(b"1700000000.5"), Ok(1_700_000_000_500));
        assert_eq!(parse_timestamp(b"-0.0015"), Ok(-1));
        assert_eq!(
            parse_timestamp(b"9223372036854774"),
            Ok((9_223_372_036_854_774f64 * 1000.0) as i64)
        );
        // Rounds to 2^63 ms, one past i64::MAX.
        assert!(parse_timestamp(b"9223372036854775").is_err());
        assert_eq!(parse_timestamp(b"-9223372036854775.808"), Ok(i64::MIN));
        assert!(parse_timestamp(b"-Inf").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut p = Parser::new(&input[..]);
            for _ in 0..400 {
                match p.next_entry() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }

        #[test]
        fn samples_round_trip(
            name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,8}",
            labels in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,5}", "[ -~\n\u{e9}\u{1F600}]{0,8}"), 0..4),
            value in proptest::prelude::any::<f64>(),
            ts in -1_000_000_000_000i64..4_000_000_000_000,
        ) {
            let mut line = name.clone();
            if !labels.is_empty() {
                line.push('{');
                for (i, (n, v)) in labels.iter().enumerate() {
                    if i > 0 { line.push(','); }
                    let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                    line.push_str(&format!("{n}=\"{v}\""));
                }
                line.push('}');
            }
            line.push(' ');
            line.push_str(&crate::gofmt::float_g(value));
            let sign = if ts < 0 { "-" } else { "" };
            let abs = ts.unsigned_abs();
            line.push_str(&format!(" {sign}{}.{:03}\n# EOF\n", abs / 1000, abs % 1000));
            let got = parse_all(&line).unwrap();
            proptest::prop_assert_eq!(got.len(), 1);
            let want_bits = if value.is_nan() { NORMAL_NAN_BITS } else { value.to_bits() };
            proptest::prop_assert_eq!(got[0].1, want_bits);
            let mut want = vec![("__name__".to_string(), name)];
            want.extend(labels.iter().cloned());
            proptest::prop_assert_eq!(&got[0].0, &want);
            // Fractional seconds go through a float multiplication, as in Go.
            let t = got[0].2.unwrap();
            proptest::prop_assert!((t - ts).abs() <= 1, "{} vs {}", t, ts);
        }
    }
}
