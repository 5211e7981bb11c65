//! Printing a [`Node`] in `regex` crate syntax, leaving nothing to dialect: classes as explicit
//! ranges, ASCII word boundaries as `(?-u:\b)`, every literal escaped.

use super::{any_but_newline, any_char, Look, Node};

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
            Node::Capture(sub) => {
                out.push('(');
                sub.write_regex(out);
                out.push(')');
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
    use super::super::parse;

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
}
