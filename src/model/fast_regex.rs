//! A compiled label-value regex with fast paths, so matching a value rarely runs a regex engine.
//!
//! The pattern is parsed once (the [`re2`] module) and analysed on its tree, after dropping the
//! `^`/`$` at its edges (redundant under Prometheus's full anchoring):
//!
//! * a finite language, e.g. `abc`, `a|b|c`, `(a|b)`, `api_(v1|v2)`, `[0-3]x`, becomes the
//!   sorted set of its strings (one string: plain equality);
//! * a glob of literals and unbounded wildcards, e.g. `foo.*`, `.+bar`, `.*foo.*`, `a.*b.*c`,
//!   becomes a literal-search matcher (2.x semantics: `.` does not match `\n`, so `.*` matches
//!   every string without a newline, `.+` every such non-empty string);
//! * an alternation of the above, e.g. `foo.*|bar|baz`, checks the set, then each glob;
//! * anything else runs the `regex` crate on the re-emitted pattern, compiled once.
//!
//! Independently, [`FastRegex::prefix`] is a literal every matching value starts with (`foo` for
//! `foo.*|foobar`), which lets callers with sorted values restrict the candidates to a range.

use super::re2::{self, any_but_newline, any_char, Look, Node};

/// Budget for enumerating a finite language, in bytes plus one per string. Never smaller than
/// twice the pattern, so a flat alternation of literals always fits.
fn budget_for(pattern: &str) -> usize {
    (2 * pattern.len()).max(4096)
}

/// A compiled, fully anchored regex (or literal) over label values.
#[derive(Clone, Debug)]
pub(crate) struct FastRegex {
    imp: Imp,
    prefix: String,
}

#[derive(Clone, Debug)]
enum Imp {
    /// Exactly one value.
    Literal(String),
    /// Sorted, deduplicated values.
    Set(Vec<String>),
    Glob(Glob),
    /// A set (possibly empty) or any of the globs.
    Or {
        set: Vec<String>,
        globs: Vec<Glob>,
    },
    Regex(regex::Regex),
}

impl FastRegex {
    /// Matches exactly `value`.
    pub(crate) fn literal(value: &str) -> FastRegex {
        FastRegex {
            imp: Imp::Literal(value.to_owned()),
            prefix: value.to_owned(),
        }
    }

    /// Compiles a Prometheus 2.x matcher regex (Go syntax, fully anchored).
    pub(crate) fn new(pattern: &str) -> Result<FastRegex, String> {
        let node = re2::parse(pattern)?;
        let budget = budget_for(pattern);
        let inner = strip_end(strip_begin(node.clone()));
        let prefix = required_prefix(&inner, budget);
        let imp = if let Some(mut set) = language(&inner, budget) {
            if set.len() == 1 {
                Imp::Literal(set.pop().expect("one element"))
            } else {
                Imp::Set(set)
            }
        } else if let Some(g) = Glob::from_node(&inner, budget) {
            Imp::Glob(g)
        } else if let Some((set, globs)) = alternation_of_globs(&inner, budget) {
            Imp::Or { set, globs }
        } else {
            let re = regex::RegexBuilder::new(&node.to_anchored_regex())
                .nest_limit(re2::REGEX_NEST_LIMIT)
                .build()
                .map_err(|e| format!("cannot compile regexp: {e}"))?;
            Imp::Regex(re)
        };
        Ok(FastRegex { imp, prefix })
    }

    /// Whether the whole of `v` matches.
    pub(crate) fn is_match(&self, v: &str) -> bool {
        match &self.imp {
            Imp::Literal(s) => v == s,
            Imp::Set(set) => contains(set, v),
            Imp::Glob(g) => g.is_match(v),
            Imp::Or { set, globs } => contains(set, v) || globs.iter().any(|g| g.is_match(v)),
            Imp::Regex(re) => re.is_match(v),
        }
    }

    /// The exact values matched, sorted and deduplicated, when there are finitely many small
    /// enough to enumerate. May contain `""`.
    pub(crate) fn set_matches(&self) -> Option<&[String]> {
        match &self.imp {
            Imp::Literal(s) => Some(std::slice::from_ref(s)),
            Imp::Set(set) => Some(set),
            _ => None,
        }
    }

    /// A string every matching value starts with (often empty).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Which strategy was chosen (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn strategy(&self) -> &'static str {
        match self.imp {
            Imp::Literal(_) => "literal",
            Imp::Set(_) => "set",
            Imp::Glob(_) => "glob",
            Imp::Or { .. } => "or",
            Imp::Regex(_) => "regex",
        }
    }
}

fn contains(sorted: &[String], v: &str) -> bool {
    sorted.binary_search_by(|s| s.as_str().cmp(v)).is_ok()
}

/// Replaces `^` at the start of every match path by the empty node: under full anchoring it is
/// always true there.
fn strip_begin(n: Node) -> Node {
    match n {
        Node::Look(Look::BeginText | Look::BeginLine) => Node::Empty,
        Node::Alt(v) => Node::Alt(v.into_iter().map(strip_begin).collect()),
        Node::Concat(v) => {
            let mut at_start = true;
            let v = v
                .into_iter()
                .map(|c| {
                    if !at_start {
                        return c;
                    }
                    let c = strip_begin(c);
                    at_start = c == Node::Empty;
                    c
                })
                .collect();
            Node::Concat(v)
        }
        n => n,
    }
}

/// Like [`strip_begin`] for `$` at the end.
fn strip_end(n: Node) -> Node {
    match n {
        Node::Look(Look::EndText | Look::EndLine) => Node::Empty,
        Node::Alt(v) => Node::Alt(v.into_iter().map(strip_end).collect()),
        Node::Concat(v) => {
            let mut at_end = true;
            let mut v: Vec<Node> = v
                .into_iter()
                .rev()
                .map(|c| {
                    if !at_end {
                        return c;
                    }
                    let c = strip_end(c);
                    at_end = c == Node::Empty;
                    c
                })
                .collect();
            v.reverse();
            Node::Concat(v)
        }
        n => n,
    }
}

/// Bytes plus one per string: the unit of the enumeration budget.
fn cost(v: &[String]) -> usize {
    v.iter().map(|s| s.len() + 1).sum()
}

fn sort_dedup(v: &mut Vec<String>) {
    v.sort_unstable();
    v.dedup();
}

/// All concatenations `x + y`, or `None` past the budget.
fn product(a: &[String], b: &[String], budget: usize) -> Option<Vec<String>> {
    let bytes_a: usize = a.iter().map(String::len).sum();
    let bytes_b: usize = b.iter().map(String::len).sum();
    let n = a.len().checked_mul(b.len())?;
    let total = bytes_a
        .checked_mul(b.len())?
        .checked_add(bytes_b.checked_mul(a.len())?)?
        .checked_add(n)?;
    if total > budget {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for x in a {
        for y in b {
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            out.push(s);
        }
    }
    sort_dedup(&mut out);
    Some(out)
}

/// The exact set of strings `n` matches in full, sorted and deduplicated, if finite and within
/// `budget` ([`cost`]).
fn language(n: &Node, budget: usize) -> Option<Vec<String>> {
    match n {
        Node::Empty => Some(vec![String::new()]),
        Node::Lit(c) => Some(vec![c.to_string()]),
        Node::Class(ranges) => {
            let mut count: usize = 0;
            for &(a, b) in ranges {
                count += (b as usize) - (a as usize) + 1;
                if count.saturating_mul(2) > budget {
                    return None;
                }
            }
            let mut out: Vec<String> = ranges
                .iter()
                .flat_map(|&(a, b)| (a as u32..=b as u32).filter_map(char::from_u32))
                .map(String::from)
                .collect();
            sort_dedup(&mut out);
            Some(out)
        }
        Node::Look(_) => None,
        // Matcher trees hold no captures; a capture matches what its group matches.
        Node::Capture(sub) => language(sub, budget),
        Node::Concat(items) => {
            let mut acc = vec![String::new()];
            for item in items {
                acc = product(&acc, &language(item, budget)?, budget)?;
            }
            Some(acc)
        }
        Node::Alt(branches) => {
            let mut out = Vec::new();
            for b in branches {
                out.extend(language(b, budget)?);
                if cost(&out) > budget {
                    sort_dedup(&mut out);
                    if cost(&out) > budget {
                        return None;
                    }
                }
            }
            sort_dedup(&mut out);
            Some(out)
        }
        Node::Repeat { sub, min, max, .. } => {
            let one = language(sub, budget)?;
            if one.iter().all(String::is_empty) {
                // Any number of empty strings (or none at all if `one` is empty and min is 0).
                return Some(if one.is_empty() && *min > 0 {
                    Vec::new()
                } else {
                    vec![String::new()]
                });
            }
            let max = (*max)?;
            let mut out = Vec::new();
            let mut power = vec![String::new()];
            for k in 0..=max {
                if k >= *min {
                    out.extend(power.iter().cloned());
                    if cost(&out) > budget {
                        return None;
                    }
                }
                if k < max {
                    power = product(&power, &one, budget)?;
                    if power.is_empty() {
                        break;
                    }
                }
            }
            sort_dedup(&mut out);
            Some(out)
        }
    }
}

/// The one string `n` matches, if it matches exactly one.
fn single_string(n: &Node, budget: usize) -> Option<String> {
    match n {
        Node::Lit(c) => Some(c.to_string()),
        Node::Empty => Some(String::new()),
        _ => {
            let mut v = language(n, budget)?;
            if v.len() == 1 {
                v.pop()
            } else {
                None
            }
        }
    }
}

/// A string every full match of `n` starts with.
fn required_prefix(n: &Node, budget: usize) -> String {
    match n {
        Node::Concat(items) => {
            let mut out = String::new();
            for item in items {
                match single_string(item, budget) {
                    Some(s) => out.push_str(&s),
                    None => {
                        out.push_str(&required_prefix(item, budget));
                        break;
                    }
                }
            }
            out
        }
        Node::Alt(branches) => {
            let mut iter = branches.iter().map(|b| required_prefix(b, budget));
            let first = iter.next().unwrap_or_default();
            iter.fold(first, |acc, p| common_prefix(&acc, &p).to_owned())
        }
        Node::Repeat { sub, min, .. } if *min > 0 => match single_string(sub, budget) {
            Some(s) => s.repeat(*min as usize),
            None => required_prefix(sub, budget),
        },
        n => single_string(n, budget).unwrap_or_default(),
    }
}

fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            break;
        }
        end = i + x.len_utf8();
    }
    &a[..end]
}

/// One element of a [`Glob`].
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    /// A non-empty literal.
    Lit(String),
    /// At least `min` characters; `\n` among them only if `nl`.
    Wild { nl: bool, min: usize },
}

/// Literals and unbounded wildcards, alternating, with at least one wildcard.
#[derive(Clone, Debug, PartialEq)]
struct Glob(Vec<Piece>);

impl Glob {
    fn from_node(n: &Node, budget: usize) -> Option<Glob> {
        let mut raw = Vec::new();
        collect_pieces(n, budget, &mut raw)?;
        let mut pieces: Vec<Piece> = Vec::with_capacity(raw.len());
        for p in raw {
            match (pieces.last_mut(), p) {
                (_, Piece::Lit(s)) if s.is_empty() => {}
                (Some(Piece::Lit(a)), Piece::Lit(b)) => a.push_str(&b),
                (Some(Piece::Wild { nl: a, min: m }), Piece::Wild { nl: b, min: n }) => {
                    // `.*(?s:.*)` is not a single wildcard of either kind.
                    if *a != b {
                        return None;
                    }
                    *m += n;
                }
                (_, p) => pieces.push(p),
            }
        }
        let mut saw_nl = false;
        let mut saw_wild = false;
        for p in &pieces {
            if let Piece::Wild { nl, .. } = p {
                // Leftmost search is only optimal if no `\n`-accepting wildcard comes before
                // one that rejects `\n` (see `is_match`).
                if saw_nl && !nl {
                    return None;
                }
                saw_nl |= nl;
                saw_wild = true;
            }
        }
        saw_wild.then_some(Glob(pieces))
    }

    /// Leftmost-first literal search. Choosing the leftmost occurrence of each inner literal is
    /// optimal: its gap is a prefix of any later occurrence's gap, and a later occurrence would
    /// move text from the next gap into this one. That moved text lies in the later choice's gap
    /// or is (by periodicity of overlapping occurrences) made of the same characters, so if this
    /// gap's wildcard rejects `\n` the moved text is `\n`-free and the next gap may keep it.
    /// [`Glob::from_node`] therefore refuses a `\n`-accepting wildcard before a rejecting one
    /// (`(?s:.*)x.*`), where the argument fails.
    fn is_match(&self, s: &str) -> bool {
        let mut p: &[Piece] = &self.0;
        let mut pos = 0;
        let mut end = s.len();
        if let Some((Piece::Lit(l), rest)) = p.split_first() {
            if !s.starts_with(l.as_str()) {
                return false;
            }
            pos = l.len();
            p = rest;
        }
        if let Some((Piece::Lit(l), rest)) = p.split_last() {
            if end - pos < l.len() || !s.ends_with(l.as_str()) {
                return false;
            }
            end -= l.len();
            p = rest;
        }
        // Now p is Wild (Lit Wild)*.
        let mut i = 0;
        while let Some(Piece::Wild { nl, min }) = p.get(i) {
            let Some(from) = skip_chars(s, pos, end, *min) else {
                return false;
            };
            match p.get(i + 1) {
                Some(Piece::Lit(l)) => {
                    let Some(off) = s[from..end].find(l.as_str()) else {
                        return false;
                    };
                    let hit = from + off;
                    if !nl && s[pos..hit].contains('\n') {
                        return false;
                    }
                    pos = hit + l.len();
                    i += 2;
                }
                _ => return *nl || !s[pos..end].contains('\n'),
            }
        }
        pos == end
    }
}

/// The byte offset `n` characters after `pos`, if that is at most `end`.
fn skip_chars(s: &str, pos: usize, end: usize, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(pos);
    }
    let (i, c) = s[pos..end].char_indices().nth(n - 1)?;
    Some(pos + i + c.len_utf8())
}

fn collect_pieces(n: &Node, budget: usize, out: &mut Vec<Piece>) -> Option<()> {
    match n {
        Node::Concat(items) => {
            for item in items {
                collect_pieces(item, budget, out)?;
            }
        }
        Node::Repeat {
            sub,
            min,
            max: None,
            ..
        } if matches!(&**sub, Node::Class(r) if *r == any_char() || *r == any_but_newline()) => {
            let Node::Class(r) = &**sub else {
                unreachable!("guarded above")
            };
            out.push(Piece::Wild {
                nl: *r == any_char(),
                min: *min as usize,
            });
        }
        n => out.push(Piece::Lit(single_string(n, budget)?)),
    }
    Some(())
}

/// A top-level alternation whose branches are each a finite language or a glob.
fn alternation_of_globs(n: &Node, budget: usize) -> Option<(Vec<String>, Vec<Glob>)> {
    let Node::Alt(branches) = n else {
        return None;
    };
    let mut set = Vec::new();
    let mut globs = Vec::new();
    for b in branches {
        if let Some(l) = language(b, budget) {
            set.extend(l);
            if cost(&set) > budget {
                return None;
            }
        } else {
            globs.push(Glob::from_node(b, budget)?);
        }
    }
    sort_dedup(&mut set);
    Some((set, globs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: the re-emitted pattern on the `regex` crate, no fast paths.
    fn reference(pattern: &str) -> regex::Regex {
        let node = re2::parse(pattern).unwrap();
        regex::Regex::new(&node.to_anchored_regex()).unwrap()
    }

    fn check_against_reference(pattern: &str, values: &[&str]) {
        let fast = FastRegex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        let re = reference(pattern);
        for v in values {
            assert_eq!(
                fast.is_match(v),
                re.is_match(v),
                "{pattern:?} on {v:?} ({})",
                fast.strategy()
            );
            if fast.is_match(v) {
                assert!(
                    v.starts_with(fast.prefix()),
                    "{pattern:?} prefix {:?} on {v:?}",
                    fast.prefix()
                );
            }
            if let Some(set) = fast.set_matches() {
                assert_eq!(
                    set.iter().any(|s| s == v),
                    fast.is_match(v),
                    "{pattern:?} set on {v:?}"
                );
            }
        }
    }

    /// Regexes of Prometheus's `model/labels/regexp_test.go` (the short ones).
    const PROMETHEUS_REGEXES: &[&str] = &[
        "",
        "foo",
        "^foo",
        "(foo|bar)",
        "foo.*",
        ".*foo",
        "^.*foo$",
        "^.+foo$",
        ".?",
        ".*",
        ".+",
        "foo.+",
        ".+foo",
        "foo\n.+",
        "foo\n.*",
        ".*foo.*",
        ".+foo.+",
        ".*foo.*|",
        "(?i).*foo.*",
        ".*foo.*|bar.*",
        "foo.*|.*bar.*",
        ".*foo.*|.*bar.*",
        ".*foo.*bar.*|.*hello.*",
        ".*foo.*|.*bar.*|.*hello.*",
        ".+.*foo.*|.*bar.*",
        "(?s:.*)",
        "(?s:.+)",
        "(?s:^.*foo$)",
        "(?i:foo)",
        "(?i:(foo|bar))",
        "(?i:(foo1|foo2|bar))",
        "^(?i:foo|oo)|(bar)$",
        "((.*)(bar|b|buzz)(.+)|foo)$",
        "^$",
        "(prometheus|api_prom)_api_v1_.+",
        "10\\.0\\.(1|2)\\.+",
        "10\\.0\\.(1|2).+",
        "((fo(bar))|.+foo)",
        "(?i)report.scheduled.job_runscheduledreports",
        "report.scheduled.job_runscheduledreports",
        "(?i:(zQPbMkNO.*|NNSPdvMi.*|iWuuSoAl.*))",
        "fo.?",
        "foo.?",
        "f.?o",
        ".*foo.?",
        ".?foo.+",
        "foo.?|bar",
        "ſſs",
        ".*-.*-.*-.*-.*",
        ".+-.*-.*-.*-.+",
        "-.*-.*-.*-.*",
        ".*-.*-.*-.*-",
        "(.+)-(.+)-(.+)-(.+)-(.+)",
        "((.*))(?i:f)((.*))o((.*))o((.*))",
        "((.*))f((.*))(?i:o)((.*))o((.*))",
        "(.*0.*)",
        ".*\\|(foo)\\|.*",
        ".*-(ab)-.*",
        "(xyz-016a-ixb-dp.*|xyz-016a-ixb-op.*)",
        "(?i)(xyz-016a-ixb-dp.*|xyz-016a-ixb-op.*)",
        "foo.*.*",
        "foo.+.+",
        ".*.*foo",
        ".+.+foo",
        "aaa.?.?",
        "aaa.?.*",
        "ext.?|xfs",
        "(?s)(ext.?|xfs)",
        "/|/bar.*",
        "(.+)/(foo.*|bar$)",
        "\\d*",
        ".",
        "[a-z][a-z]",
        "[1^3]",
        "(api|rpc)_(v1|prom)_((?i)push|query)",
        "^(.*)(foo|foobar)(.*)$",
        "a.*\n.*b",
    ];

    /// Values of the same test, plus newline and multi-byte edge cases.
    const PROMETHEUS_VALUES: &[&str] = &[
        "foo",
        " foo bar",
        "bar",
        "buzz\nbar",
        "bar foo",
        "bfoo",
        "\n",
        "\nfoo",
        "foo\n",
        "hello foo world",
        "hello foo\n world",
        "",
        "FOO",
        "Foo",
        "fOo",
        "foO",
        "OO",
        "Oo",
        "\nfoo\n",
        "ffffffffffffffffffff",
        "prometheus",
        "prometheus_api_v1",
        "prometheus_api_v1_foo",
        "10.0.1.20",
        "10.0.2.10",
        "10.0.3.30",
        "10.0.4.40",
        "report.scheduled.job_runscheduledreports",
        "Report.Scheduled.JobRunScheduledReports",
        "Report.Scheduled.Job_RunScheduledReports",
        "foofoo0",
        "foofoo",
        "😀foo0",
        "ſſs",
        "ſſS",
        "a-b-c-d-e",
        "aaaaaa-bbbbbb-cccccc-dddddd-eeeeee",
        "aaaaaa----eeeeee",
        "----",
        "-a-a-a-",
        "zQPbMkNO",
        "zQPbMkNo",
        "NNSPdvMiXXX",
        "nnSPdvMi",
        "xyz-016a-ixb-dp",
        "xyz-016a-ixb-dpXXX",
        "XYZ-016a-ixb-op",
        "xyz-016a-ixb-dp\n",
        "xyz",
        "/",
        "/bar",
        "/bar\n",
        "foox",
        "fooxy",
        "aaa",
        "aaaxy",
        "ext",
        "ext4",
        "ext\n",
        "xfs",
        "|foo|",
        "x|foo|y",
        "x-ab-y",
        "x-abc-y",
        "a\nb",
        "ab\n",
        "a\n\nb",
        "é",
        "aé",
        "foo😀",
    ];

    #[test]
    fn prometheus_regex_table_agrees_with_reference() {
        for p in PROMETHEUS_REGEXES {
            check_against_reference(p, PROMETHEUS_VALUES);
        }
    }

    #[test]
    fn strategies() {
        for (p, want) in [
            ("foo", "literal"),
            ("^foo$", "literal"),
            ("(foo)", "literal"),
            ("a|b|c", "set"),
            ("(a|b)", "set"),
            ("^(?:prod|production)$", "set"),
            ("[abc]d", "set"),
            ("(?i)foo", "set"),
            ("c||d", "set"),
            ("[a-z][a-z]", "set"),
            (".*", "glob"),
            (".+", "glob"),
            ("^.*$", "glob"),
            ("(.*)", "glob"),
            ("foo.*", "glob"),
            ("foo-.*$", "glob"),
            (".*foo", "glob"),
            (".*foo.*bar.*", "glob"),
            ("(.+)foo(.*)", "glob"),
            ("foo.*|bar|baz", "or"),
            (".*foo.*|.*bar.*|.*baz.*", "or"),
            ("[a-z]+", "regex"),
            ("foo.?", "regex"),
            ("\\d*", "regex"),
            ("(?i).*foo.*", "regex"),
            ("a\\bb", "regex"),
        ] {
            let f = FastRegex::new(p).unwrap();
            assert_eq!(f.strategy(), want, "{p}");
        }
    }

    #[test]
    fn set_matches_like_prometheus_find_set_matches() {
        // Prometheus's TestFindSetMatches cases, with our exact-set semantics: case-insensitive
        // patterns enumerate their case variants, and "" is kept when it matches.
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("foo", Some(&["foo"])),
            ("^foo", Some(&["foo"])),
            ("^foo$", Some(&["foo"])),
            ("foo|bar|zz", Some(&["bar", "foo", "zz"])),
            ("foo|bar|baz", Some(&["bar", "baz", "foo"])),
            ("foo|bar|baz|(zz)", Some(&["bar", "baz", "foo", "zz"])),
            ("bar|b|buzz", Some(&["b", "bar", "buzz"])),
            ("^((bar|b|buzz))$", Some(&["b", "bar", "buzz"])),
            ("^(bar|b|buzz)$", Some(&["b", "bar", "buzz"])),
            ("^(?:prod|production)$", Some(&["prod", "production"])),
            ("(bar|b|b^uz$z)", None),
            ("^$|Running", Some(&["", "Running"])),
            ("fo\\.o|bar\\?|\\^baz", Some(&["^baz", "bar?", "fo.o"])),
            ("[abc]d", Some(&["ad", "bd", "cd"])),
            (
                "ABC|ABD|AEF|BCX|BCY",
                Some(&["ABC", "ABD", "AEF", "BCX", "BCY"]),
            ),
            (
                "api_(v1|prom)_push",
                Some(&["api_prom_push", "api_v1_push"]),
            ),
            (
                "(api|rpc)_(v1|prom)_push",
                Some(&[
                    "api_prom_push",
                    "api_v1_push",
                    "rpc_prom_push",
                    "rpc_v1_push",
                ]),
            ),
            (
                "[-1-2][a-c]",
                Some(&["-a", "-b", "-c", "1a", "1b", "1c", "2a", "2b", "2c"]),
            ),
            ("[1^3]", Some(&["1", "3", "^"])),
            ("(.+)/(foo|bar)", None),
            ("fo.o|bar?|^baz", None),
            ("(?i)fo", Some(&["FO", "Fo", "fO", "fo"])),
            ("rpc|(?i)(?-i)api", Some(&["api", "rpc"])),
            ("(?i)((?-i)api|(?-i)rpc)", Some(&["api", "rpc"])),
            ("(api|rpc)_[^0-9]", None),
            ("c||d", Some(&["", "c", "d"])),
            ("a{0,2}", Some(&["", "a", "aa"])),
            ("(?:)*", Some(&[""])),
            ("\\x{d800}", Some(&[])),
        ];
        for (p, want) in cases {
            let f = FastRegex::new(p).unwrap();
            let got: Option<Vec<&str>> = f
                .set_matches()
                .map(|s| s.iter().map(String::as_str).collect());
            assert_eq!(got.as_deref(), *want, "{p}");
        }
        // The Kelvin sign and the long s are in the case orbits of k and s.
        let f = FastRegex::new("(?i)ks").unwrap();
        assert_eq!(f.set_matches().unwrap().len(), 3 * 3);
        // A large flat alternation stays a set.
        let big: Vec<String> = (0..5000).map(|i| format!("pod-{i}")).collect();
        let f = FastRegex::new(&big.join("|")).unwrap();
        assert_eq!(f.set_matches().unwrap().len(), 5000);
        assert!(f.is_match("pod-4999") && !f.is_match("pod-5000"));
        // Products are bounded.
        assert!(FastRegex::new("[a-z]{4}").unwrap().set_matches().is_none());
        assert!(FastRegex::new("x{0,1000}").unwrap().set_matches().is_none());
    }

    #[test]
    fn prefixes_like_prometheus() {
        for (p, want) in [
            ("abc.+", "abc"),
            ("abcd|abc.+", "abc"),
            ("abc(def|ghj)|ab|a.", "a"),
            ("foo.+bar|foo.*baz", "foo"),
            ("abc|.*", ""),
            ("abc|def", ""),
            (".+def", ""),
            ("foo(hello|bar)", "foo"),
            ("foo(hello|bar)world", "foo"),
            ("^5..$", "5"),
            ("^release.*", "release"),
            ("^env-[0-9]+laio[1]?[^0-9].*", "env-"),
            ("^foo(bar).*", "foobar"),
            ("(foo){2,}x", "foofoo"),
            ("(?i)abc.+", ""),
            ("[aA]bc.*", ""),
            ("é+x", "é"),
            ("éa|éb", "é"),
        ] {
            assert_eq!(FastRegex::new(p).unwrap().prefix(), want, "{p}");
        }
    }

    #[test]
    fn newline_semantics_of_2x() {
        let any = FastRegex::new(".*").unwrap();
        assert!(any.is_match("") && any.is_match("abc") && !any.is_match("a\nb"));
        let plus = FastRegex::new(".+").unwrap();
        assert!(!plus.is_match("") && plus.is_match("x") && !plus.is_match("\n"));
        let dot_nl = FastRegex::new("(?s:.*)").unwrap();
        assert!(dot_nl.is_match("a\nb"));
        let g = FastRegex::new("foo.*").unwrap();
        assert!(g.is_match("foo") && g.is_match("foobar") && !g.is_match("foo\n"));
        // A literal newline in the pattern is fine.
        let g = FastRegex::new("a\n.*").unwrap();
        assert!(g.is_match("a\nb") && !g.is_match("a\nb\n"));
    }

    #[test]
    fn glob_edge_cases() {
        check_against_reference("a.*a", &["a", "aa", "aba", "ab", "a\na", "aaa", ""]);
        check_against_reference(
            ".+a.+",
            &["a", "xa", "ax", "xax", "xaax", "\nax", "xa\n", "aaa"],
        );
        check_against_reference("(?s:.+)a(?s:.+)", &["a", "xa", "ax", "xax", "\na\n", "aaa"]);
        check_against_reference(
            ".*ab.*ab.*",
            &["abab", "aab", "ababab", "ab\nab", "abxab", "aabab"],
        );
        check_against_reference(".*.*", &["", "a", "\n"]);
        check_against_reference(".+.+", &["", "a", "ab", "é", "éé", "a\n"]);
        check_against_reference(".*(?s:.*)", &["", "a", "\n", "a\nb"]);
        // Found by the property test: the newline must go into the first gap.
        check_against_reference("(?s:.*)\n.+é", &["a1\n\n1é", "\n1é", "\n\n1é"]);
        assert_eq!(FastRegex::new("(?s:.*)\n.+é").unwrap().strategy(), "regex");
        assert_eq!(FastRegex::new(".*a(?s:.*)").unwrap().strategy(), "glob");
        check_against_reference("é.*é", &["é", "éé", "éxé", "é\né"]);
    }

    /// Random patterns over a small alphabet so that the fast paths and the reference meet.
    fn arb_pattern() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("ab".to_owned()),
            Just("\n".to_owned()),
            Just("é".to_owned()),
            Just(".".to_owned()),
            Just(".*".to_owned()),
            Just(".+".to_owned()),
            Just("(?s:.*)".to_owned()),
            Just("(?s:.+)".to_owned()),
            Just("[ab]".to_owned()),
            Just("[^a]".to_owned()),
            Just("(?i:a)".to_owned()),
            Just("\\d".to_owned()),
            Just("^".to_owned()),
            Just("$".to_owned()),
            Just("\\b".to_owned()),
            Just("".to_owned()),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
                prop::collection::vec(inner.clone(), 2..4)
                    .prop_map(|v| format!("({})", v.join("|"))),
                (
                    inner.clone(),
                    prop_oneof![Just("*"), Just("+"), Just("?"), Just("{2}"), Just("{0,2}")]
                )
                    .prop_map(|(p, op)| format!("(?:{p}){op}")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_paths_agree_with_the_anchored_regex(
            pattern in arb_pattern(),
            values in prop::collection::vec("[ab\né1]{0,6}", 16),
        ) {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            check_against_reference(&pattern, &refs);
            // Also the strings of the set, and the prefix itself.
            let f = FastRegex::new(&pattern).unwrap();
            let mut extra: Vec<String> = f.set_matches().map(|s| s.to_vec()).unwrap_or_default();
            extra.push(f.prefix().to_owned());
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            check_against_reference(&pattern, &extra);
        }

        #[test]
        fn plain_literals_become_equality(s in "[a-zA-Z0-9_ -]{0,12}") {
            let f = FastRegex::new(&s).unwrap();
            prop_assert_eq!(f.strategy(), "literal");
            prop_assert!(f.is_match(&s));
        }
    }
}
