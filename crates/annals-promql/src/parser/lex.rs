//! The PromQL lexer of Prometheus 2.42 (`promql/parser/lex.go`): the same tokens, the same
//! context rules (keywords are plain identifiers inside braces, a `[` starts a duration, the
//! series-description mode of test scripts) and the same error messages.

use std::fmt::Write as _;

/// Token kinds. The groups (operators, aggregators, keywords) decide how a token is described
/// in error messages, as Prometheus's `Item.String`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Tok {
    Eof,
    Error,
    Comment,
    Identifier,
    MetricIdentifier,
    Number,
    Duration,
    String,
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    LeftBracket,
    RightBracket,
    Comma,
    Eql,
    Colon,
    Blank,
    Times,
    Space,
    // Operators.
    Add,
    Div,
    Eqlc,
    EqlRegex,
    Gte,
    Gtr,
    Land,
    Lor,
    Lss,
    Lte,
    Lunless,
    Mod,
    Mul,
    Neq,
    NeqRegex,
    Pow,
    Sub,
    At,
    Atan2,
    // Aggregators.
    Avg,
    Bottomk,
    Count,
    CountValues,
    Group,
    Max,
    Min,
    Quantile,
    Stddev,
    Stdvar,
    Sum,
    Topk,
    // Keywords.
    Bool,
    By,
    GroupLeft,
    GroupRight,
    Ignoring,
    Offset,
    On,
    Without,
    // Preprocessors.
    Start,
    End,
}

impl Tok {
    pub(crate) fn is_operator(self) -> bool {
        use Tok::*;
        matches!(
            self,
            Add | Div
                | Eqlc
                | EqlRegex
                | Gte
                | Gtr
                | Land
                | Lor
                | Lss
                | Lte
                | Lunless
                | Mod
                | Mul
                | Neq
                | NeqRegex
                | Pow
                | Sub
                | At
                | Atan2
        )
    }

    pub(crate) fn is_aggregator(self) -> bool {
        use Tok::*;
        matches!(
            self,
            Avg | Bottomk
                | Count
                | CountValues
                | Group
                | Max
                | Min
                | Quantile
                | Stddev
                | Stdvar
                | Sum
                | Topk
        )
    }

    pub(crate) fn is_keyword(self) -> bool {
        use Tok::*;
        matches!(
            self,
            Bool | By | GroupLeft | GroupRight | Ignoring | Offset | On | Without
        )
    }

    /// The fixed spelling of a token kind (Prometheus's `ItemTypeStr`), if it has one.
    pub(crate) fn fixed_str(self) -> Option<&'static str> {
        use Tok::*;
        Some(match self {
            LeftParen => "(",
            RightParen => ")",
            LeftBrace => "{",
            RightBrace => "}",
            LeftBracket => "[",
            RightBracket => "]",
            Comma => ",",
            Eql => "=",
            Colon => ":",
            Blank => "_",
            Times => "x",
            Space => "<space>",
            Sub => "-",
            Add => "+",
            Mul => "*",
            Mod => "%",
            Div => "/",
            Eqlc => "==",
            Neq => "!=",
            Lte => "<=",
            Lss => "<",
            Gte => ">=",
            Gtr => ">",
            EqlRegex => "=~",
            NeqRegex => "!~",
            Pow => "^",
            Land => "and",
            Lor => "or",
            Lunless => "unless",
            Atan2 => "atan2",
            Sum => "sum",
            Avg => "avg",
            Count => "count",
            Min => "min",
            Max => "max",
            Group => "group",
            Stddev => "stddev",
            Stdvar => "stdvar",
            Topk => "topk",
            Bottomk => "bottomk",
            CountValues => "count_values",
            Quantile => "quantile",
            Offset => "offset",
            By => "by",
            Without => "without",
            On => "on",
            Ignoring => "ignoring",
            GroupLeft => "group_left",
            GroupRight => "group_right",
            Bool => "bool",
            Start => "start",
            End => "end",
            _ => return None,
        })
    }

    /// How a token kind is named in "expected ..." contexts (Prometheus's `ItemType.desc`).
    fn kind_desc(self) -> String {
        match self {
            Tok::Error => "error".into(),
            Tok::Eof => "end of input".into(),
            Tok::Comment => "comment".into(),
            Tok::Identifier => "identifier".into(),
            Tok::MetricIdentifier => "metric identifier".into(),
            Tok::String => "string".into(),
            Tok::Number => "number".into(),
            Tok::Duration => "duration".into(),
            // Prometheus's table of token names lacks `@`: Go prints the token's number.
            Tok::At => go_quote("<Item 57385>"),
            t => go_quote(t.fixed_str().unwrap_or("?")),
        }
    }
}

/// The keyword table (matched case-insensitively, as Prometheus does).
fn keyword(word: &str) -> Option<Tok> {
    use Tok::*;
    let lower = word.to_ascii_lowercase();
    Some(match lower.as_str() {
        "and" => Land,
        "or" => Lor,
        "unless" => Lunless,
        "atan2" => Atan2,
        "sum" => Sum,
        "avg" => Avg,
        "count" => Count,
        "min" => Min,
        "max" => Max,
        "group" => Group,
        "stddev" => Stddev,
        "stdvar" => Stdvar,
        "topk" => Topk,
        "bottomk" => Bottomk,
        "count_values" => CountValues,
        "quantile" => Quantile,
        "offset" => Offset,
        "by" => By,
        "without" => Without,
        "on" => On,
        "ignoring" => Ignoring,
        "group_left" => GroupLeft,
        "group_right" => GroupRight,
        "bool" => Bool,
        "start" => Start,
        "end" => End,
        "inf" | "nan" => Number,
        _ => return None,
    })
}

/// One token: its kind, byte offset and text (for errors, the message).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub(crate) typ: Tok,
    pub(crate) pos: usize,
    pub(crate) val: String,
}

impl Item {
    /// The token as Prometheus's `Item.String` prints it.
    pub(crate) fn string(&self) -> String {
        match self.typ {
            Tok::Eof => "EOF".into(),
            Tok::Error => self.val.clone(),
            Tok::Identifier | Tok::MetricIdentifier => go_quote(&self.val),
            t if t.is_keyword() => format!("<{}>", self.val),
            t if t.is_operator() => format!("<op:{}>", self.val),
            t if t.is_aggregator() => format!("<aggr:{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                format!("{}...", go_quote(&head))
            }
            _ => go_quote(&self.val),
        }
    }

    /// The token as named in "unexpected ..." messages (Prometheus's `Item.desc`).
    pub(crate) fn desc(&self) -> String {
        if self.typ.fixed_str().is_some() {
            return self.string();
        }
        if self.typ == Tok::Eof {
            return self.typ.kind_desc();
        }
        format!("{} {}", self.typ.kind_desc(), self.string())
    }

    /// The byte range of the token.
    pub(crate) fn end(&self) -> usize {
        self.pos + self.val.len()
    }
}

/// Quotes a string as Go's `strconv.Quote` (`%q`) does.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        quote_char(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Quotes a rune as Go's `%q` does for a rune (`'x'`).
pub(crate) fn go_quote_rune(c: char) -> String {
    let mut out = String::from("'");
    quote_char(&mut out, c, '\'');
    out.push('\'');
    out
}

/// A rune as Go's `%#U` prints it: `U+0063 'c'`.
pub(crate) fn go_unicode_sharp(c: Option<char>) -> String {
    match c {
        None => "U+FFFFFFFFFFFFFFFF".into(),
        Some(c) if is_go_printable(c) => format!("U+{:04X} '{}'", c as u32, c),
        Some(c) => format!("U+{:04X}", c as u32),
    }
}

/// Approximates Go's `strconv.IsPrint` (letters, marks, numbers, punctuation, symbols and the
/// ASCII space) for the runes Rust can classify without Unicode tables.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
            | 0x202A..=0x202E | 0x2060..=0x206F | 0xE000..=0xF8FF | 0xFEFF | 0xFFF9..=0xFFFB
            | 0xF0000..=0x10FFFF)
}

fn quote_char(out: &mut String, c: char, quote: char) {
    match c {
        c if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Statements,
    InsideBraces,
    ValueSequence,
    Duration,
    /// After an error: only end of input follows.
    Done,
}

/// The lexer: yields one [`Item`] per call, lazily, so that a syntax error found before a bad
/// character is reported first, as with Prometheus's parser.
pub(crate) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    state: State,
    paren_depth: i64,
    brace_open: bool,
    bracket_open: bool,
    got_colon: bool,
    string_open: char,
    series_desc: bool,
}

fn is_space(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '\t' | '\n' | '\r'))
}

fn is_alpha(c: Option<char>) -> bool {
    matches!(c, Some('_' | 'a'..='z' | 'A'..='Z'))
}

fn is_digit(c: Option<char>) -> bool {
    matches!(c, Some('0'..='9'))
}

pub(crate) fn is_alphanumeric(c: Option<char>) -> bool {
    is_alpha(c) || is_digit(c)
}

/// Whether `s` is a valid label name for grouping clauses (Prometheus's `isLabel`).
pub(crate) fn is_label(s: &str) -> bool {
    let mut cs = s.chars();
    match cs.next() {
        Some(c) if is_alpha(Some(c)) => cs.all(|c| is_alphanumeric(Some(c))),
        _ => false,
    }
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        Lexer {
            input,
            pos: 0,
            start: 0,
            state: State::Statements,
            paren_depth: 0,
            brace_open: false,
            bracket_open: false,
            got_colon: false,
            string_open: '"',
            series_desc: false,
        }
    }

    /// A lexer for test-script series descriptions (`metric{l="v"} 1+2x3 _ stale`).
    pub(crate) fn new_series_desc(input: &'a str) -> Self {
        Lexer {
            series_desc: true,
            ..Lexer::new(input)
        }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.input[self.pos..].chars().next();
        if let Some(c) = c {
            self.pos += c.len_utf8();
        }
        c
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    /// Steps back over `c` (what the last `next` returned).
    fn backup(&mut self, c: Option<char>) {
        if let Some(c) = c {
            self.pos -= c.len_utf8();
        }
    }

    fn accept(&mut self, valid: &str) -> bool {
        let c = self.next();
        if c.is_some_and(|c| valid.contains(c)) {
            return true;
        }
        self.backup(c);
        false
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn emit(&mut self, typ: Tok) -> Item {
        let item = Item {
            typ,
            pos: self.start,
            val: self.input[self.start..self.pos].to_owned(),
        };
        self.start = self.pos;
        item
    }

    fn error(&mut self, msg: String) -> Item {
        self.state = State::Done;
        Item {
            typ: Tok::Error,
            pos: self.start,
            val: msg,
        }
    }

    /// The next token (comments included; the parser skips them).
    pub(crate) fn next_item(&mut self) -> Item {
        loop {
            let r = match self.state {
                State::Done => {
                    return Item {
                        typ: Tok::Eof,
                        pos: self.pos,
                        val: String::new(),
                    }
                }
                State::Statements => self.lex_statements(),
                State::InsideBraces => self.lex_inside_braces(),
                State::ValueSequence => self.lex_value_sequence(),
                State::Duration => self.lex_duration(),
            };
            if let Some(item) = r {
                if item.typ == Tok::Eof {
                    self.state = State::Done;
                }
                return item;
            }
        }
    }

    fn skip_spaces(&mut self) {
        while is_space(self.peek()) {
            self.next();
        }
        self.start = self.pos;
    }

    fn lex_line_comment(&mut self) -> Item {
        self.pos += 1;
        loop {
            let c = self.next();
            if matches!(c, None | Some('\r' | '\n')) {
                self.backup(c);
                break;
            }
        }
        self.emit(Tok::Comment)
    }

    fn lex_statements(&mut self) -> Option<Item> {
        if self.brace_open {
            self.state = State::InsideBraces;
            return None;
        }
        if self.input[self.pos..].starts_with('#') {
            return Some(self.lex_line_comment());
        }
        let r = self.next();
        Some(match r {
            None => {
                if self.paren_depth != 0 {
                    return Some(self.error("unclosed left parenthesis".into()));
                } else if self.bracket_open {
                    return Some(self.error("unclosed left bracket".into()));
                }
                self.emit(Tok::Eof)
            }
            Some(',') => self.emit(Tok::Comma),
            c if is_space(c) => {
                self.skip_spaces();
                return None;
            }
            Some('*') => self.emit(Tok::Mul),
            Some('/') => self.emit(Tok::Div),
            Some('%') => self.emit(Tok::Mod),
            Some('+') => self.emit(Tok::Add),
            Some('-') => self.emit(Tok::Sub),
            Some('^') => self.emit(Tok::Pow),
            Some('=') => match self.peek() {
                Some('=') => {
                    self.next();
                    self.emit(Tok::Eqlc)
                }
                Some('~') => {
                    return Some(self.error("unexpected character after '=': '~'".into()));
                }
                _ => self.emit(Tok::Eql),
            },
            Some('!') => {
                let t = self.next();
                if t == Some('=') {
                    self.emit(Tok::Neq)
                } else {
                    let q = t.map_or("%!q(int32=-1)".to_string(), go_quote_rune);
                    return Some(self.error(format!("unexpected character after '!': {q}")));
                }
            }
            Some('<') => {
                if self.peek() == Some('=') {
                    self.next();
                    self.emit(Tok::Lte)
                } else {
                    self.emit(Tok::Lss)
                }
            }
            Some('>') => {
                if self.peek() == Some('=') {
                    self.next();
                    self.emit(Tok::Gte)
                } else {
                    self.emit(Tok::Gtr)
                }
            }
            c if is_digit(c) || (c == Some('.') && is_digit(self.peek())) => {
                self.backup(c);
                return Some(self.lex_number_or_duration());
            }
            Some(q @ ('"' | '\'')) => {
                self.string_open = q;
                return Some(self.lex_string());
            }
            Some('`') => {
                self.string_open = '`';
                return Some(self.lex_raw_string());
            }
            c if is_alpha(c) || c == Some(':') => {
                if !self.bracket_open {
                    self.backup(c);
                    return Some(self.lex_keyword_or_identifier());
                }
                if self.got_colon {
                    let q = go_quote_rune(c.expect("matched a character"));
                    return Some(self.error(format!("unexpected colon {q}")));
                }
                self.got_colon = true;
                self.emit(Tok::Colon)
            }
            Some('(') => {
                self.paren_depth += 1;
                self.emit(Tok::LeftParen)
            }
            Some(')') => {
                let item = self.emit(Tok::RightParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return Some(self.error("unexpected right parenthesis ')'".into()));
                }
                item
            }
            Some('{') => {
                self.brace_open = true;
                self.state = State::InsideBraces;
                self.emit(Tok::LeftBrace)
            }
            Some('[') => {
                if self.bracket_open {
                    return Some(self.error("unexpected left bracket '['".into()));
                }
                self.got_colon = false;
                let item = self.emit(Tok::LeftBracket);
                if is_space(self.peek()) {
                    self.skip_spaces();
                }
                self.bracket_open = true;
                self.state = State::Duration;
                item
            }
            Some(']') => {
                if !self.bracket_open {
                    return Some(self.error("unexpected right bracket ']'".into()));
                }
                self.bracket_open = false;
                self.emit(Tok::RightBracket)
            }
            Some('@') => self.emit(Tok::At),
            Some(c) => {
                let q = go_quote_rune(c);
                return Some(self.error(format!("unexpected character: {q}")));
            }
        })
    }

    fn lex_inside_braces(&mut self) -> Option<Item> {
        if self.input[self.pos..].starts_with('#') {
            return Some(self.lex_line_comment());
        }
        let r = self.next();
        Some(match r {
            None => return Some(self.error("unexpected end of input inside braces".into())),
            c if is_space(c) => {
                self.skip_spaces();
                return None;
            }
            c if is_alpha(c) => {
                self.backup(c);
                while is_alphanumeric(self.peek()) {
                    self.next();
                }
                self.emit(Tok::Identifier)
            }
            Some(',') => self.emit(Tok::Comma),
            Some(q @ ('"' | '\'')) => {
                self.string_open = q;
                let item = self.lex_string();
                if item.typ != Tok::Error {
                    self.state = State::InsideBraces;
                }
                return Some(item);
            }
            Some('`') => {
                self.string_open = '`';
                let item = self.lex_raw_string();
                if item.typ != Tok::Error {
                    self.state = State::InsideBraces;
                }
                return Some(item);
            }
            Some('=') => {
                let n = self.next();
                if n == Some('~') {
                    self.emit(Tok::EqlRegex)
                } else {
                    self.backup(n);
                    self.emit(Tok::Eql)
                }
            }
            Some('!') => match self.next() {
                Some('~') => self.emit(Tok::NeqRegex),
                Some('=') => self.emit(Tok::Neq),
                nr => {
                    let q = nr.map_or("%!q(int32=-1)".to_string(), go_quote_rune);
                    return Some(
                        self.error(format!("unexpected character after '!' inside braces: {q}")),
                    );
                }
            },
            Some('{') => return Some(self.error("unexpected left brace '{'".into())),
            Some('}') => {
                self.brace_open = false;
                self.state = if self.series_desc {
                    State::ValueSequence
                } else {
                    State::Statements
                };
                self.emit(Tok::RightBrace)
            }
            Some(c) => {
                let q = go_quote_rune(c);
                return Some(self.error(format!("unexpected character inside braces: {q}")));
            }
        })
    }

    fn lex_value_sequence(&mut self) -> Option<Item> {
        let r = self.next();
        Some(match r {
            None => {
                self.state = State::Statements;
                return None;
            }
            c if is_space(c) => {
                let item = self.emit(Tok::Space);
                self.skip_spaces();
                item
            }
            Some('+') => self.emit(Tok::Add),
            Some('-') => self.emit(Tok::Sub),
            Some('x') => self.emit(Tok::Times),
            Some('_') => self.emit(Tok::Blank),
            c if is_digit(c) || (c == Some('.') && is_digit(self.peek())) => {
                self.backup(c);
                if !self.scan_number() {
                    let s = self.input[self.start..self.pos].to_owned();
                    return Some(self.error(format!("bad number syntax: {}", go_quote(&s))));
                }
                self.emit(Tok::Number)
            }
            c if is_alpha(c) => {
                self.backup(c);
                return Some(self.lex_keyword_or_identifier());
            }
            Some(c) => {
                let q = go_quote_rune(c);
                return Some(self.error(format!("unexpected character in series sequence: {q}")));
            }
        })
    }

    /// Scans an escape sequence; the backslash has been read. `Err` is a lexer error.
    fn lex_escape(&mut self) -> Result<(), String> {
        let mut ch = self.next();
        let (mut n, base, max): (u32, u32, u32) = match ch {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => return Ok(()),
            Some(c) if c == self.string_open => return Ok(()),
            Some('0'..='7') => (3, 8, 255),
            Some('x') => {
                ch = self.next();
                (2, 16, 255)
            }
            Some('u') => {
                ch = self.next();
                (4, 16, 0x10FFFF)
            }
            Some('U') => {
                ch = self.next();
                (8, 16, 0x10FFFF)
            }
            None => return Err("escape sequence not terminated".into()),
            Some(c) => {
                return Err(format!(
                    "unknown escape sequence {}",
                    go_unicode_sharp(Some(c))
                ))
            }
        };
        let mut x: u32 = 0;
        while n > 0 {
            let d = ch.and_then(|c| c.to_digit(16)).unwrap_or(16);
            if d >= base {
                if ch.is_none() {
                    return Err("escape sequence not terminated".into());
                }
                return Err(format!(
                    "illegal character {} in escape sequence",
                    go_unicode_sharp(ch)
                ));
            }
            x = x.wrapping_mul(base).wrapping_add(d);
            n -= 1;
            if n > 0 {
                ch = self.next();
            }
        }
        if x > max || (0xD800..0xE000).contains(&x) {
            return Err("escape sequence is an invalid Unicode code point".into());
        }
        Ok(())
    }

    fn lex_string(&mut self) -> Item {
        loop {
            match self.next() {
                Some('\\') => {
                    if let Err(msg) = self.lex_escape() {
                        return self.error(msg);
                    }
                }
                None | Some('\n') => return self.error("unterminated quoted string".into()),
                Some(c) if c == self.string_open => break,
                Some(_) => {}
            }
        }
        self.state = State::Statements;
        self.emit(Tok::String)
    }

    fn lex_raw_string(&mut self) -> Item {
        loop {
            match self.next() {
                None => return self.error("unterminated raw string".into()),
                Some(c) if c == self.string_open => break,
                Some(_) => {}
            }
        }
        self.state = State::Statements;
        self.emit(Tok::String)
    }

    fn lex_duration(&mut self) -> Option<Item> {
        self.state = State::Statements;
        if self.scan_number() {
            return Some(self.error("missing unit character in duration".into()));
        }
        if !self.accept_remaining_duration() {
            let s = self.input[self.start..self.pos].to_owned();
            return Some(self.error(format!("bad duration syntax: {}", go_quote(&s))));
        }
        Some(self.emit(Tok::Duration))
    }

    fn lex_number_or_duration(&mut self) -> Item {
        if self.scan_number() {
            return self.emit(Tok::Number);
        }
        if self.accept_remaining_duration() {
            return self.emit(Tok::Duration);
        }
        let s = self.input[self.start..self.pos].to_owned();
        self.error(format!("bad number or duration syntax: {}", go_quote(&s)))
    }

    /// Accepts the unit and any further `<number><unit>` parts of a duration, and one
    /// character more (which must not be alphanumeric).
    fn accept_remaining_duration(&mut self) -> bool {
        if !self.accept("smhdwy") {
            return false;
        }
        self.accept("s");
        while self.accept("0123456789") {
            while self.accept("0123456789") {}
            if !self.accept("smhdw") {
                return false;
            }
            self.accept("s");
        }
        // One character past the duration must not be alphanumeric; it is read (and so part
        // of the error text) only when it is.
        let c = self.next();
        if is_alphanumeric(c) {
            return false;
        }
        self.backup(c);
        true
    }

    /// Scans a number (decimal, hex, float with exponent). Returns whether the next character
    /// may follow a number. The text is not necessarily a valid number; the parser checks it.
    fn scan_number(&mut self) -> bool {
        let mut digits = "0123456789";
        if !self.series_desc && self.accept("0") && self.accept("xX") {
            digits = "0123456789abcdefABCDEF";
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789");
        }
        let r = self.peek();
        (self.series_desc && r == Some('x')) || !is_alphanumeric(r)
    }

    fn lex_keyword_or_identifier(&mut self) -> Item {
        loop {
            let c = self.next();
            if is_alphanumeric(c) || c == Some(':') {
                continue;
            }
            self.backup(c);
            break;
        }
        let word = &self.input[self.start..self.pos];
        let typ = match keyword(word) {
            Some(kw) => kw,
            None if !word.contains(':') => Tok::Identifier,
            None => Tok::MetricIdentifier,
        };
        let item = self.emit(typ);
        self.state = if self.series_desc && self.peek() != Some('{') {
            State::ValueSequence
        } else {
            State::Statements
        };
        item
    }
}
