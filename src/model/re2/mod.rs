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
//! included). [`Node::to_anchored_regex`] prints that tree in `regex` syntax with nothing left to
//! dialect, and the matcher's fast paths are derived from the same tree.
//!
//! Known differences from Go: Unicode tables come from `regex-syntax` (a newer Unicode version
//! than Go 1.19's), and a few property names Go rejects are accepted (4-letter script codes such as
//! `\p{Latn}`). Nesting deeper than [`MAX_NESTING`] groups is rejected (Go allows 1000).

mod classes;
mod emit;
mod go_regex;
mod parser;

pub use go_regex::GoRegex;
pub(crate) use parser::parse;

/// Deepest group nesting accepted (Go allows 1000). It bounds the recursion of the parser, the
/// analyses and, above all, of the `regex` crate's compiler, which needs tens of KiB of stack
/// per level of `(...|...)*` in debug builds: 64 levels fit a 2 MiB thread stack there, and
/// real label regexes nest a few levels at most.
pub(crate) const MAX_NESTING: u32 = 64;

/// `regex` nest limit that fits any tree within [`MAX_NESTING`]: each group level adds at most
/// an alternation and a repetition to the emitted pattern.
pub(crate) const REGEX_NEST_LIMIT: u32 = 4 * MAX_NESTING + 16;

/// Go's limit on repetition counts (`{n,m}` with n, m ≤ 1000, also across nested repetitions).
pub(crate) const MAX_REPEAT: u32 = 1000;

pub(crate) const MAX_CHAR: char = char::MAX;

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
    /// A capturing group, kept only by [`parser::parse_with_captures`] (for [`GoRegex`]);
    /// matcher trees never hold one.
    Capture(Box<Node>),
}

/// `.` without the `s` flag: any character but `\n`.
pub(crate) fn any_but_newline() -> Ranges {
    vec![('\0', '\x09'), ('\x0b', MAX_CHAR)]
}

/// `.` with the `s` flag: any character.
pub(crate) fn any_char() -> Ranges {
    vec![('\0', MAX_CHAR)]
}
