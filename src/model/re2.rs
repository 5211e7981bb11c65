//! Label-matcher regexes in the dialect Prometheus 2.x uses: Go's RE2 syntax.
//!
//! Prometheus 2.42 checks that a matcher regex `re` parses on its own and then matches with Go's
//! `regexp.Compile("^(?:" + re + ")$")` (§1.16: anchored, `.` does not match `\n`). The `regex`
//! crate reads many patterns differently, silently: `\d`, `\w`, `\s` and `\b` are Unicode-aware
//! there but ASCII in Go, Go's `\s` excludes `\v`, `[[]` and `[a&&b]` are plain classes in Go but
//! nested classes or set operations in Rust, and Go has `\Q..\E`, octal escapes and a literal `{`
//! where no repetition parses. So [`parse`] reads Go's syntax itself, following Go 1.19's
//! `regexp/syntax` with the `Perl` flags (the Go release that built Prometheus 2.42), into a small
//! [`Node`] tree whose character classes are resolved to explicit code point ranges (case folding
//! included). [`Node::to_regex`] prints that tree in `regex` syntax with nothing left to dialect,
//! and the matcher's fast paths are derived from the same tree.
//!
//! Known differences from Go: Unicode tables come from `regex-syntax` (a newer Unicode version
//! than Go 1.19's), and a few property names Go rejects are accepted (4-letter script codes such as
//! `\p{Latn}`). Nesting deeper than [`MAX_NESTING`] groups is rejected (Go allows up to 1000).

use regex_syntax::hir::{Class as HirClass, ClassUnicode, ClassUnicodeRange, HirKind};

/// Deepest group nesting accepted; bounds the recursion of the parser, the analyses and the
/// `regex` compiler.
pub(crate) const MAX_NESTING: u32 = 250;

/// Go's limit on repetition counts (`{n,m}` with n, m ≤ 1000, also across nested repetitions).
const MAX_REPEAT: u32 = 1000;

const MAX_CHAR: char = char::MAX;

/// Inclusive code point ranges: sorted, disjoint and not adjacent.
pub(crate) type Ranges = Vec<(char, char)>;

/// Zero-width assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// `^` (and `\A`): start of the text.
    BeginText,
    /// `$` (and `\z`): end of the text.
    EndText,
    /// `(?m:^)`: start of the text or after `\n`.
    BeginLine,
    /// `(?m:$)`: end of the text or before `\n`.
    EndLine,
    /// `\b`, ASCII word boundary.
    WordBoundary,
    /// `\B`, not an ASCII word boundary.
    NotWordBoundary,
}

/// A parsed regex. Groups are transparent (captures do not matter for matching) and flags have
/// been applied: case folding is part of the classes, `.` is a class, greediness is explicit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// Matches the empty string.
    Empty,
    /// One character.
    Lit(char),
    /// One character from a set; an empty set never matches.
    Class(Ranges),
    /// A zero-width assertion.
    Look(Look),
    /// `sub{min,max}`; `max == None` is unbounded.
    Repeat {
        sub: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
    /// Sequence (at least two items).
    Concat(Vec<Node>),
    /// Alternation (at least two branches), leftmost first.
    Alt(Vec<Node>),
}

/// `.` without the `s` flag: any character but `\n`.
pub(crate) fn any_but_newline() -> Ranges {
    vec![('\0', '\x09'), ('\x0b', MAX_CHAR)]
}

/// `.` with the `s` flag: any character.
pub(crate) fn any_char() -> Ranges {
    vec![('\0', MAX_CHAR)]
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    /// `i`
    fold: bool,
    /// `s`
    dot_nl: bool,
    /// `m` (Go's default is "one line": `^`/`$` at text boundaries only)
    multi_line: bool,
    /// `U`
    ungreedy: bool,
}

/// Parses a Go regex as Prometheus 2.x accepts it in a label matcher. The error text follows Go's
/// (`invalid escape sequence: \`\e\``) so users recognise what Prometheus would say.
pub(crate) fn parse(pattern: &str) -> Result<Node, String> {
    let mut p = Parser {
        s: pattern,
        pos: 0,
        flags: Flags {
            fold: false,
            dot_nl: false,
            multi_line: false,
            ungreedy: false,
        },
        depth: 0,
        open_quote: false,
    };
    let node = p.alternation()?;
    if p.pos < pattern.len() {
        // alternation() only stops early at a ')' without its '('.
        return Err(format!("unexpected ): `{pattern}`"));
    }
    if p.open_quote {
        // Alone, `\Q...` runs to the end; inside Prometheus's `^(?:...)$` wrapper it also
        // swallows the closing parenthesis, which Go then reports.
        return Err(format!("missing closing ): `^(?:{pattern})$`"));
    }
    Ok(node)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    flags: Flags,
    depth: u32,
    /// A `\Q` without `\E` was seen.
    open_quote: bool,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
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

    /// `branch ('|' branch)*`, up to the end or an unmatched `)`.
    fn alternation(&mut self) -> Result<Node, String> {
        let mut branches = vec![self.concat()?];
        while self.eat('|') {
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().expect("one branch")
        } else {
            Node::Alt(branches)
        })
    }

    /// A branch: atoms with their repetition operators, up to `|`, `)` or the end.
    fn concat(&mut self) -> Result<Node, String> {
        let mut items: Vec<Node> = Vec::new();
        // Start of the previous item's repetition operator, if the previous item was one:
        // Go rejects stacked operators such as `a**` or `a{2}{3}`.
        let mut last_repeat: Option<usize> = None;
        while let Some(c) = self.peek() {
            let start = self.pos;
            let mut this_repeat = None;
            match c {
                '|' | ')' => break,
                '(' => self.group(&mut items)?,
                '[' => items.push(self.class()?),
                '^' => {
                    self.bump();
                    items.push(Node::Look(if self.flags.multi_line {
                        Look::BeginLine
                    } else {
                        Look::BeginText
                    }));
                }
                '$' => {
                    self.bump();
                    items.push(Node::Look(if self.flags.multi_line {
                        Look::EndLine
                    } else {
                        Look::EndText
                    }));
                }
                '.' => {
                    self.bump();
                    items.push(Node::Class(if self.flags.dot_nl {
                        any_char()
                    } else {
                        any_but_newline()
                    }));
                }
                '*' | '+' | '?' => {
                    self.bump();
                    let (min, max) = match c {
                        '*' => (0, None),
                        '+' => (1, None),
                        _ => (0, Some(1)),
                    };
                    self.repeat(&mut items, min, max, start, last_repeat, false)?;
                    this_repeat = Some(start);
                }
                '{' => match self.repeat_counts() {
                    Some((min, max)) => {
                        let too_big =
                            min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || min > m);
                        if too_big {
                            return Err(format!(
                                "invalid repeat count: `{}`",
                                &self.s[start..self.pos]
                            ));
                        }
                        self.repeat(&mut items, min, max, start, last_repeat, true)?;
                        this_repeat = Some(start);
                    }
                    None => {
                        // Not a valid `{n}`, `{n,}` or `{n,m}`: Go takes `{` literally.
                        self.bump();
                        items.push(self.literal('{'));
                    }
                },
                '\\' => self.escape(&mut items)?,
                _ => {
                    self.bump();
                    items.push(self.literal(c));
                }
            }
            last_repeat = this_repeat;
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().expect("one item"),
            _ => Node::Concat(items),
        })
    }

    /// Applies a repetition operator (already consumed from `op_start`) to the last item.
    fn repeat(
        &mut self,
        items: &mut Vec<Node>,
        min: u32,
        max: Option<u32>,
        op_start: usize,
        last_repeat: Option<usize>,
        counted: bool,
    ) -> Result<(), String> {
        let mut greedy = !self.flags.ungreedy;
        if self.eat('?') {
            greedy = !greedy;
        }
        if let Some(prev) = last_repeat {
            return Err(format!(
                "invalid nested repetition operator: `{}`",
                &self.s[prev..self.pos]
            ));
        }
        let Some(sub) = items.pop() else {
            return Err(format!(
                "missing argument to repetition operator: `{}`",
                &self.s[op_start..self.pos]
            ));
        };
        let node = Node::Repeat {
            sub: Box::new(sub),
            min,
            max,
            greedy,
        };
        if counted && (min >= 2 || max.is_some_and(|m| m >= 2)) && !repeat_is_valid(&node, 1000) {
            return Err(format!(
                "invalid repeat count: `{}`",
                &self.s[op_start..self.pos]
            ));
        }
        items.push(node);
        Ok(())
    }

    /// Parses `{n}`, `{n,}` or `{n,m}` at the cursor, consuming it; `None` (cursor unchanged)
    /// if it is not one, as Go's `parseRepeat` (no leading zeros, `{,n}` is not a repetition).
    fn repeat_counts(&mut self) -> Option<(u32, Option<u32>)> {
        let rest = self.rest();
        let b = rest.as_bytes();
        let mut i = 1;
        let min = parse_count(b, &mut i)?;
        let max = match b.get(i)? {
            b',' => {
                i += 1;
                if *b.get(i)? == b'}' {
                    None
                } else {
                    Some(parse_count(b, &mut i)?)
                }
            }
            _ => Some(min),
        };
        if *b.get(i)? != b'}' {
            return None;
        }
        self.pos += i + 1;
        Some((min, max))
    }

    /// `(...)`, `(?flags)`, `(?flags:...)`, `(?P<name>...)`.
    fn group(&mut self, items: &mut Vec<Node>) -> Result<(), String> {
        let start = self.pos;
        self.bump(); // '('
        let saved = self.flags;
        if self.rest().starts_with('?') {
            if self.rest().starts_with("?P<") {
                let name_start = self.pos + 3;
                let Some(end) = self.s[name_start..].find('>') else {
                    return Err(format!("invalid named capture: `{}`", &self.s[start..]));
                };
                let name = &self.s[name_start..name_start + end];
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!(
                        "invalid named capture: `{}`",
                        &self.s[start..name_start + end + 1]
                    ));
                }
                self.pos = name_start + end + 1;
            } else {
                self.bump(); // '?'
                let mut flags = self.flags;
                let mut negated = false;
                let mut saw_flag = false;
                loop {
                    let Some(c) = self.bump() else {
                        return Err(format!(
                            "invalid or unsupported Perl syntax: `{}`",
                            &self.s[start..]
                        ));
                    };
                    let on = !negated;
                    match c {
                        'i' => flags.fold = on,
                        'm' => flags.multi_line = on,
                        's' => flags.dot_nl = on,
                        'U' => flags.ungreedy = on,
                        '-' if !negated => {
                            negated = true;
                            saw_flag = false;
                            continue;
                        }
                        // Go rejects a `-` with no flag after it.
                        ':' | ')' if !negated || saw_flag => {
                            if c == ')' {
                                // Flags apply to the rest of the enclosing group.
                                self.flags = flags;
                                return Ok(());
                            }
                            self.flags = flags;
                            break;
                        }
                        _ => {
                            return Err(format!(
                                "invalid or unsupported Perl syntax: `{}`",
                                &self.s[start..self.pos]
                            ))
                        }
                    }
                    saw_flag = true;
                }
            }
        }
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!(
                "expression nests too deeply (more than {MAX_NESTING} groups)"
            ));
        }
        let inner = self.alternation()?;
        self.depth -= 1;
        if !self.eat(')') {
            return Err(format!("missing closing ): `{}`", &self.s[start..]));
        }
        self.flags = saved;
        items.push(inner);
        Ok(())
    }

    /// A backslash sequence outside a class.
    fn escape(&mut self, items: &mut Vec<Node>) -> Result<(), String> {
        let start = self.pos;
        let next = self.rest()[1..].chars().next();
        let look = match next {
            Some('A') => Some(Look::BeginText),
            Some('z') => Some(Look::EndText),
            Some('b') => Some(Look::WordBoundary),
            Some('B') => Some(Look::NotWordBoundary),
            _ => None,
        };
        if let Some(look) = look {
            self.pos += 2;
            items.push(Node::Look(look));
            return Ok(());
        }
        match next {
            Some('C') => return Err("invalid escape sequence: `\\C`".to_owned()),
            Some('Q') => {
                self.pos += 2;
                let (lit, after) = match self.rest().find("\\E") {
                    Some(i) => (&self.rest()[..i], self.pos + i + 2),
                    None => {
                        self.open_quote = true;
                        (self.rest(), self.s.len())
                    }
                };
                for c in lit.chars() {
                    items.push(self.literal(c));
                }
                self.pos = after;
                return Ok(());
            }
            Some('p') | Some('P') => {
                let cls = self.unicode_class()?;
                items.push(class_node(to_ranges(&cls)));
                return Ok(());
            }
            _ => {}
        }
        if let Some(cls) = self.perl_class() {
            items.push(class_node(to_ranges(&cls)));
            return Ok(());
        }
        let c = self.escaped_char(start)?;
        items.push(match char::from_u32(c) {
            Some(c) => self.literal(c),
            // A surrogate code point: no valid UTF-8 text contains one.
            None => Node::Class(Vec::new()),
        });
        Ok(())
    }

    /// A literal character, case-folded under `(?i)`.
    fn literal(&self, c: char) -> Node {
        if !self.flags.fold {
            return Node::Lit(c);
        }
        let mut cls = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
        cls.case_fold_simple();
        class_node(to_ranges(&cls))
    }

    /// Go's `parseEscape`: a single-character escape at the cursor (which is at `\`). Returns
    /// a code point that may be a surrogate.
    fn escaped_char(&mut self, start: usize) -> Result<u32, String> {
        self.bump(); // '\\'
        let Some(c) = self.bump() else {
            return Err("trailing backslash at end of expression".to_owned());
        };
        let invalid =
            |p: &Parser<'_>| Err(format!("invalid escape sequence: `{}`", &p.s[start..p.pos]));
        match c {
            '1'..='7' if !self.peek().is_some_and(|d| ('0'..='7').contains(&d)) => invalid(self),
            '0'..='7' => {
                // Up to two more octal digits.
                let mut v = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ '0'..='7') => {
                            self.bump();
                            v = v * 8 + (d as u32 - '0' as u32);
                        }
                        _ => break,
                    }
                }
                Ok(v)
            }
            'x' => {
                let Some(c) = self.bump() else {
                    return invalid(self);
                };
                if c == '{' {
                    let mut v: u32 = 0;
                    let mut digits = 0;
                    loop {
                        let Some(c) = self.bump() else {
                            return invalid(self);
                        };
                        if c == '}' {
                            break;
                        }
                        let Some(d) = c.to_digit(16) else {
                            return invalid(self);
                        };
                        v = v * 16 + d;
                        if v > MAX_CHAR as u32 {
                            return invalid(self);
                        }
                        digits += 1;
                    }
                    if digits == 0 {
                        return invalid(self);
                    }
                    Ok(v)
                } else {
                    let hi = c.to_digit(16);
                    let lo = self.bump().and_then(|c| c.to_digit(16));
                    match (hi, lo) {
                        (Some(hi), Some(lo)) => Ok(hi * 16 + lo),
                        _ => invalid(self),
                    }
                }
            }
            'a' => Ok(0x07),
            'f' => Ok(0x0c),
            'n' => Ok(0x0a),
            'r' => Ok(0x0d),
            't' => Ok(0x09),
            'v' => Ok(0x0b),
            // Escaped ASCII punctuation is always itself.
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c as u32),
            _ => invalid(self),
        }
    }

    /// `\d \D \s \S \w \W` at the cursor (consumed), folded under `(?i)` before negation.
    fn perl_class(&mut self) -> Option<ClassUnicode> {
        let rest = self.rest().as_bytes();
        if rest.len() < 2 || rest[0] != b'\\' {
            return None;
        }
        let ranges: &[(char, char)] = match rest[1].to_ascii_lowercase() {
            b'd' => &[('0', '9')],
            // Go's \s: [\t\n\f\r ] (no \v).
            b's' => &[('\t', '\n'), ('\x0c', '\r'), (' ', ' ')],
            b'w' => &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')],
            _ => return None,
        };
        let negated = rest[1].is_ascii_uppercase();
        self.pos += 2;
        Some(self.ascii_group(ranges, negated))
    }

    fn ascii_group(&self, ranges: &[(char, char)], negated: bool) -> ClassUnicode {
        let mut cls = ClassUnicode::new(ranges.iter().map(|&(a, b)| ClassUnicodeRange::new(a, b)));
        if self.flags.fold {
            cls.case_fold_simple();
        }
        if negated {
            cls.negate();
        }
        cls
    }

    /// `\pX`, `\p{Name}`, `\PX`, `\P{Name}`, `\p{^Name}` at the cursor.
    fn unicode_class(&mut self) -> Result<ClassUnicode, String> {
        let start = self.pos;
        self.pos += 1; // '\\'
        let mut negated = self.bump() == Some('P');
        let name = match self.bump() {
            Some('{') => {
                let Some(end) = self.rest().find('}') else {
                    return Err(format!(
                        "invalid character class range: `{}`",
                        &self.s[start..]
                    ));
                };
                let name = &self.rest()[..end];
                self.pos += end + 1;
                name
            }
            Some(c) => &self.s[self.pos - c.len_utf8()..self.pos],
            None => "",
        };
        let name = match name.strip_prefix('^') {
            Some(n) => {
                negated = !negated;
                n
            }
            None => name,
        };
        let Some(mut cls) = unicode_table(name) else {
            return Err(format!(
                "invalid character class range: `{}`",
                &self.s[start..self.pos]
            ));
        };
        if self.flags.fold {
            cls.case_fold_simple();
        }
        if negated {
            cls.negate();
        }
        Ok(cls)
    }

    /// A bracketed class, Go's `parseClass`.
    fn class(&mut self) -> Result<Node, String> {
        let start = self.pos;
        self.bump(); // '['
        let mut cls = ClassUnicode::empty();
        let negated = self.eat('^');
        let mut first = true;
        loop {
            match self.peek() {
                None => return Err(format!("missing closing ]: `{}`", &self.s[start..])),
                Some(']') if !first => {
                    self.bump();
                    break;
                }
                _ => {}
            }
            first = false;
            // POSIX class `[:alpha:]`; Go looks for the closing `:]` anywhere after.
            if self.rest().len() > 2 && self.rest().starts_with("[:") {
                if let Some(end) = self.rest()[2..].find(":]") {
                    let name = &self.rest()[..end + 4];
                    let Some((ranges, neg)) = posix_class(name) else {
                        return Err(format!("invalid character class range: `{name}`"));
                    };
                    self.pos += name.len();
                    cls.union(&self.ascii_group(ranges, neg));
                    continue;
                }
            }
            if self.rest().starts_with("\\p") || self.rest().starts_with("\\P") {
                let u = self.unicode_class()?;
                cls.union(&u);
                continue;
            }
            if let Some(p) = self.perl_class() {
                cls.union(&p);
                continue;
            }
            let range_start = self.pos;
            let lo = self.class_char(start)?;
            let mut hi = lo;
            let rest = self.rest().as_bytes();
            if rest.len() >= 2 && rest[0] == b'-' && rest[1] != b']' {
                self.bump();
                hi = self.class_char(start)?;
                if hi < lo {
                    return Err(format!(
                        "invalid character class range: `{}`",
                        &self.s[range_start..self.pos]
                    ));
                }
            }
            let mut r = ClassUnicode::new(code_point_range(lo, hi));
            if self.flags.fold {
                r.case_fold_simple();
            }
            cls.union(&r);
        }
        if negated {
            cls.negate();
        }
        Ok(class_node(to_ranges(&cls)))
    }

    /// One character of a class (possibly escaped), as a code point.
    fn class_char(&mut self, class_start: usize) -> Result<u32, String> {
        match self.peek() {
            None => Err(format!("missing closing ]: `{}`", &self.s[class_start..])),
            Some('\\') => {
                let start = self.pos;
                self.escaped_char(start)
            }
            Some(c) => {
                self.bump();
                Ok(c as u32)
            }
        }
    }
}

/// Go's `parseInt` for repetition counts: decimal, no leading zeros; values of 10^8 and more
/// become `u32::MAX` so that they are reported as too big.
fn parse_count(b: &[u8], i: &mut usize) -> Option<u32> {
    let start = *i;
    if !b.get(start)?.is_ascii_digit() {
        return None;
    }
    if b[start] == b'0' && b.get(start + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u32 = 0;
    while let Some(d) = b.get(*i).filter(|d| d.is_ascii_digit()) {
        v = if v >= 100_000_000 {
            u32::MAX
        } else {
            v * 10 + u32::from(d - b'0')
        };
        *i += 1;
    }
    Some(v)
}

/// Go's `repeatIsValid`: nested counted repetitions may not multiply beyond `n` copies.
fn repeat_is_valid(node: &Node, mut n: u32) -> bool {
    match node {
        Node::Repeat { sub, min, max, .. } => {
            let m = match max {
                Some(0) => return true,
                Some(m) => *m,
                None => *min,
            };
            if m > n {
                return false;
            }
            if let Some(q) = n.checked_div(m) {
                n = q;
            }
            repeat_is_valid(sub, n)
        }
        Node::Concat(v) | Node::Alt(v) => v.iter().all(|c| repeat_is_valid(c, n)),
        _ => true,
    }
}

/// The code points `lo..=hi` as char ranges, without the surrogate block.
fn code_point_range(lo: u32, hi: u32) -> Vec<ClassUnicodeRange> {
    let mut out = Vec::with_capacity(2);
    for (a, b) in [(lo, hi.min(0xd7ff)), (lo.max(0xe000), hi)] {
        if a <= b {
            if let (Some(a), Some(b)) = (char::from_u32(a), char::from_u32(b)) {
                out.push(ClassUnicodeRange::new(a, b));
            }
        }
    }
    out
}

/// A class node, or a literal if the class has a single character.
fn class_node(ranges: Ranges) -> Node {
    match ranges.as_slice() {
        [(a, b)] if a == b => Node::Lit(*a),
        _ => Node::Class(ranges),
    }
}

fn to_ranges(cls: &ClassUnicode) -> Ranges {
    cls.ranges().iter().map(|r| (r.start(), r.end())).collect()
}

/// Go's POSIX classes (ASCII), by their bracketed name; the flag tells `[:^name:]`.
fn posix_class(name: &str) -> Option<(&'static [(char, char)], bool)> {
    let (neg, inner) = match name.strip_prefix("[:^") {
        Some(n) => (true, n),
        None => (false, name.strip_prefix("[:")?),
    };
    let ranges: &'static [(char, char)] = match inner.strip_suffix(":]")? {
        "alnum" => &[('0', '9'), ('A', 'Z'), ('a', 'z')],
        "alpha" => &[('A', 'Z'), ('a', 'z')],
        "ascii" => &[('\0', '\x7f')],
        "blank" => &[('\t', '\t'), (' ', ' ')],
        "cntrl" => &[('\0', '\x1f'), ('\x7f', '\x7f')],
        "digit" => &[('0', '9')],
        "graph" => &[('!', '~')],
        "lower" => &[('a', 'z')],
        "print" => &[(' ', '~')],
        "punct" => &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        "space" => &[('\t', '\r'), (' ', ' ')],
        "upper" => &[('A', 'Z')],
        "word" => &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')],
        "xdigit" => &[('0', '9'), ('A', 'F'), ('a', 'f')],
        _ => return None,
    };
    Some((ranges, neg))
}

/// Go's general categories (`unicode.Categories`), looked up case-sensitively as Go does.
const GO_CATEGORIES: &[&str] = &[
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N",
    "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So",
    "Z", "Zl", "Zp", "Zs",
];

/// The class Go's `\p{name}` denotes: `Any`, a general category or a script.
fn unicode_table(name: &str) -> Option<ClassUnicode> {
    match name {
        "Any" => return Some(ClassUnicode::new([ClassUnicodeRange::new('\0', MAX_CHAR)])),
        // Surrogates never occur in UTF-8 text.
        "Cs" => return Some(ClassUnicode::empty()),
        // Go's C is Cc | Cf | Co | Cs; it has no table for unassigned code points (Cn).
        "C" => {
            let mut c = unicode_table("Cc")?;
            c.union(&unicode_table("Cf")?);
            c.union(&unicode_table("Co")?);
            return Some(c);
        }
        _ => {}
    }
    let query = if GO_CATEGORIES.contains(&name) {
        format!("\\p{{gc={name}}}")
    } else {
        // Go's script names: capitalised words joined by '_' (and "SignWriting").
        let well_formed = name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
            && !name.contains("__")
            && !name.ends_with('_');
        if !well_formed {
            return None;
        }
        format!("\\p{{sc={name}}}")
    };
    let hir = regex_syntax::Parser::new().parse(&query).ok()?;
    match hir.kind() {
        HirKind::Class(HirClass::Unicode(c)) => Some(c.clone()),
        HirKind::Literal(lit) => {
            let c = std::str::from_utf8(&lit.0).ok()?.chars().next()?;
            Some(ClassUnicode::new([ClassUnicodeRange::new(c, c)]))
        }
        _ => None,
    }
}

impl Node {
    /// The node in `regex` crate syntax, fully anchored: `\A(?:...)\z`.
    pub(crate) fn to_anchored_regex(&self) -> String {
        let mut out = String::from("\\A(?:");
        self.write_regex(&mut out);
        out.push_str(")\\z");
        out
    }

    fn write_regex(&self, out: &mut String) {
        match self {
            Node::Empty => out.push_str("(?:)"),
            Node::Lit(c) => write_char(out, *c),
            Node::Class(r) => write_class(out, r),
            Node::Look(l) => out.push_str(match l {
                Look::BeginText => "\\A",
                Look::EndText => "\\z",
                Look::BeginLine => "(?m:^)",
                Look::EndLine => "(?m:$)",
                Look::WordBoundary => "(?-u:\\b)",
                Look::NotWordBoundary => "(?-u:\\B)",
            }),
            Node::Repeat {
                sub,
                min,
                max,
                greedy,
            } => {
                out.push_str("(?:");
                sub.write_regex(out);
                out.push(')');
                match (min, max) {
                    (0, None) => out.push('*'),
                    (1, None) => out.push('+'),
                    (0, Some(1)) => out.push('?'),
                    (n, None) => out.push_str(&format!("{{{n},}}")),
                    (n, Some(m)) if n == m => out.push_str(&format!("{{{n}}}")),
                    (n, Some(m)) => out.push_str(&format!("{{{n},{m}}}")),
                }
                if !greedy {
                    out.push('?');
                }
            }
            Node::Concat(v) => {
                for n in v {
                    n.write_regex(out);
                }
            }
            Node::Alt(v) => {
                out.push_str("(?:");
                for (i, n) in v.iter().enumerate() {
                    if i > 0 {
                        out.push('|');
                    }
                    n.write_regex(out);
                }
                out.push(')');
            }
        }
    }
}

fn write_char(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || c == '_' {
        out.push(c);
    } else {
        out.push_str(&format!("\\x{{{:x}}}", c as u32));
    }
}

fn write_class(out: &mut String, r: &[(char, char)]) {
    if r.is_empty() {
        out.push_str("[^\\x{0}-\\x{10ffff}]");
        return;
    }
    if r == any_char().as_slice() {
        out.push_str("(?s:.)");
        return;
    }
    if r == any_but_newline().as_slice() {
        out.push_str("[^\\n]");
        return;
    }
    out.push('[');
    for &(a, b) in r {
        write_char(out, a);
        if b != a {
            out.push('-');
            write_char(out, b);
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emitted(p: &str) -> String {
        let n = parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        n.to_anchored_regex()
    }

    #[test]
    fn perl_classes_are_ascii_and_go_shaped() {
        assert_eq!(emitted("\\d"), "\\A(?:[0-9])\\z");
        // No \v in Go's \s.
        assert_eq!(
            emitted("\\s"),
            "\\A(?:[\\x{9}-\\x{a}\\x{c}-\\x{d}\\x{20}])\\z"
        );
        assert_eq!(emitted("[\\w]"), "\\A(?:[0-9A-Z_a-z])\\z");
        assert_eq!(emitted("."), "\\A(?:[^\\n])\\z");
        assert_eq!(emitted("(?s)."), "\\A(?:(?s:.))\\z");
        assert_eq!(emitted("\\b"), "\\A(?:(?-u:\\b))\\z");
    }

    #[test]
    fn go_only_syntax() {
        // Literal '[' in a class, \Q..\E, octal, literal '{'.
        assert_eq!(parse("[[]").unwrap(), Node::Lit('['));
        assert_eq!(
            parse("[]a]").unwrap(),
            Node::Class(vec![(']', ']'), ('a', 'a')])
        );
        assert_eq!(
            parse("\\Qa.\\E").unwrap(),
            Node::Concat(vec![Node::Lit('a'), Node::Lit('.')])
        );
        assert_eq!(parse("\\101").unwrap(), Node::Lit('A'));
        assert_eq!(
            parse("\\0101").unwrap(),
            Node::Concat(vec![Node::Lit('\x08'), Node::Lit('1')])
        );
        assert_eq!(
            parse("a{,3}").unwrap(),
            Node::Concat("a{,3}".chars().map(Node::Lit).collect())
        );
        assert_eq!(
            parse("a{01}").unwrap(),
            Node::Concat("a{01}".chars().map(Node::Lit).collect())
        );
        // A surrogate escape never matches.
        assert_eq!(parse("\\x{d800}").unwrap(), Node::Class(vec![]));
    }

    #[test]
    fn flags_scope_like_go() {
        // (?i) lasts to the end of the enclosing group, across '|'.
        let n = parse("(a(?i)b|c)d").unwrap();
        let Node::Concat(items) = n else {
            panic!("{n:?}")
        };
        assert_eq!(items[1], Node::Lit('d'));
        let Node::Alt(br) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(br[1], Node::Class(vec![('C', 'C'), ('c', 'c')]));
        // Folding happens before negation: (?i)[^a] excludes 'A'.
        assert_eq!(
            parse("(?i)[^a]").unwrap(),
            Node::Class(vec![('\0', '@'), ('B', '`'), ('b', MAX_CHAR)])
        );
        // U swaps greediness; the repetition still applies to the last atom after a flag group.
        assert!(matches!(
            parse("(?U)a+").unwrap(),
            Node::Repeat { greedy: false, .. }
        ));
        assert!(matches!(
            parse("a(?i)*").unwrap(),
            Node::Repeat {
                min: 0,
                max: None,
                ..
            }
        ));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for (p, msg) in [
            ("a**", "invalid nested repetition operator: `**`"),
            ("x{2}{3}", "invalid nested repetition operator: `{2}{3}`"),
            ("*", "missing argument to repetition operator: `*`"),
            ("a|*", "missing argument to repetition operator"),
            ("(?i)*", "missing argument to repetition operator"),
            ("\\Q\\E*", "missing argument to repetition operator"),
            ("x{1001}", "invalid repeat count: `{1001}`"),
            ("(x{500}){3}", "invalid repeat count: `{3}`"),
            ("x{2,1}", "invalid repeat count"),
            ("x{100000000000}", "invalid repeat count"),
            ("[z-a]", "invalid character class range: `z-a`"),
            ("[a--b]", "invalid character class range: `a--`"),
            ("[[:foo:]]", "invalid character class range: `[:foo:]`"),
            ("[a-\\d]", "invalid escape sequence: `\\d`"),
            ("[\\Q]\\E]", "invalid escape sequence: `\\Q`"),
            ("[abc", "missing closing ]"),
            ("\\1", "invalid escape sequence: `\\1`"),
            ("\\8", "invalid escape sequence: `\\8`"),
            ("\\e", "invalid escape sequence: `\\e`"),
            ("\\C", "invalid escape sequence: `\\C`"),
            ("\\Z", "invalid escape sequence: `\\Z`"),
            ("\\x4", "invalid escape sequence"),
            ("\\x{110000}", "invalid escape sequence"),
            ("\\x{}", "invalid escape sequence"),
            ("a\\", "trailing backslash"),
            ("\\Qabc", "missing closing )"),
            ("(a", "missing closing )"),
            ("a)", "unexpected )"),
            ("a)|(b", "unexpected )"),
            ("(?<n>a)", "invalid or unsupported Perl syntax: `(?<`"),
            ("(?P<>x)", "invalid named capture"),
            ("(?P<n!>a)", "invalid named capture"),
            ("(?x)a", "invalid or unsupported Perl syntax: `(?x`"),
            ("(?-)a", "invalid or unsupported Perl syntax: `(?-)`"),
            ("(?i-)a", "invalid or unsupported Perl syntax"),
            ("(?--i)a", "invalid or unsupported Perl syntax: `(?--`"),
            ("\\p{greek}", "invalid character class range: `\\p{greek}`"),
            ("\\p{Letter}", "invalid character class range"),
            ("\\p{Greek", "invalid character class range"),
            ("\\p", "invalid character class range"),
        ] {
            let e = parse(p).expect_err(p);
            assert!(e.contains(msg), "{p}: {e} (wanted {msg})");
        }
    }

    #[test]
    fn accepts_what_go_accepts() {
        for p in [
            "",
            "(?)a",
            "(?i-i)a",
            "(?P<a1_>x)",
            "(?P<n>a)(?P<n>b)",
            "x{1000}",
            "(x{2}){500}",
            "((x{2}){2}){250}",
            "a{2,}?",
            "[a&&b]",
            "[a~~b]",
            "\\<",
            "$*bar",
            "bar^+",
            "$+bar",
            "[\\d-z]",
            "\\p{Greek}",
            "\\pL",
            "\\PL",
            "\\p{^L}",
            "\\P{^L}",
            "\\p{Any}",
            "\\pC",
            "\\p{Cs}",
            "[[:^alpha:][:word:]]",
            "[\\x{41}-\\x{43}]",
            "\\x{0041}",
            "\\_",
            "\\377",
            "\\400",
            "(?m)^a$",
            "(?s:.)",
            "\\Q\\E",
            "a\\Q\\E*",
            "(|a)",
            "|",
            "()",
        ] {
            let n = parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            let re = n.to_anchored_regex();
            regex::Regex::new(&re).unwrap_or_else(|e| panic!("{p} -> {re}: {e}"));
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!(
            "{}a{}",
            "(".repeat(MAX_NESTING as usize),
            ")".repeat(MAX_NESTING as usize)
        );
        let n = parse(&ok).unwrap();
        regex::RegexBuilder::new(&n.to_anchored_regex())
            .nest_limit(4 * MAX_NESTING)
            .build()
            .unwrap();
        let deep = format!("({ok})");
        assert!(parse(&deep).unwrap_err().contains("nests too deeply"));
        // Very deep input fails fast without exhausting the stack.
        let huge = "(".repeat(100_000);
        assert!(parse(&huge).unwrap_err().contains("nests too deeply"));
    }
}
