//! Go's `regexp/syntax` parser (Perl flags, Go 1.19), producing [`Node`] trees.

use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};

use super::classes::{class_node, code_point_range, posix_class, to_ranges, unicode_table};
use super::{any_but_newline, any_char, Look, Node, MAX_CHAR, MAX_NESTING, MAX_REPEAT};

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
    parse_inner(pattern, None)
}

/// As [`parse`], keeping capturing groups as [`Node::Capture`]: the returned names are those
/// of the groups in the order of their opening parentheses (`None` for unnamed ones), which
/// is the numbering of both Go and the `regex` crate (group 0 is the whole match).
pub(crate) fn parse_with_captures(pattern: &str) -> Result<(Node, Vec<Option<String>>), String> {
    let mut names = Vec::new();
    let node = parse_inner(pattern, Some(&mut names))?;
    Ok((node, names))
}

fn parse_inner(pattern: &str, captures: Option<&mut Vec<Option<String>>>) -> Result<Node, String> {
    let mut p = Parser {
        captures,
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
    /// Names of the capturing groups seen so far, when they are kept.
    captures: Option<&'a mut Vec<Option<String>>>,
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
        // `Some(name)` for a capturing group.
        let mut capture: Option<Option<String>> = None;
        if !self.rest().starts_with('?') {
            capture = Some(None);
        } else {
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
                capture = Some(Some(name.to_owned()));
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
        // Groups are numbered by their opening parenthesis.
        let keep = match (&mut self.captures, capture) {
            (Some(names), Some(name)) => {
                names.push(name);
                true
            }
            _ => false,
        };
        let inner = self.alternation()?;
        self.depth -= 1;
        if !self.eat(')') {
            return Err(format!("missing closing ): `{}`", &self.s[start..]));
        }
        self.flags = saved;
        items.push(if keep {
            Node::Capture(Box::new(inner))
        } else {
            inner
        });
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
        Node::Capture(sub) => repeat_is_valid(sub, n),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::REGEX_NEST_LIMIT;
    use super::*;

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
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .unwrap();
        // Alternations under repetitions, nested to the limit, still compile (in this 2 MiB
        // test thread, in a debug build).
        let mut alt = "a".to_owned();
        for _ in 0..MAX_NESTING {
            alt = format!("({alt}|b)*");
        }
        let f = crate::model::fast_regex::FastRegex::new(&alt).unwrap();
        assert!(f.is_match("abba") && !f.is_match("c"));
        assert!(parse(&format!("({alt})"))
            .unwrap_err()
            .contains("nests too deeply"));
        let deep = format!("({ok})");
        assert!(parse(&deep).unwrap_err().contains("nests too deeply"));
        // Very deep input fails fast without exhausting the stack.
        let huge = "(".repeat(100_000);
        assert!(parse(&huge).unwrap_err().contains("nests too deeply"));
    }
}
