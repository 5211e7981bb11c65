//! Regular expressions of `label_replace`: Go RE2 syntax, fully anchored, and Go's `$1`/`${name}`
//! template expansion.
//!
//! Patterns are run by the `regex` crate after rewriting the escapes whose meaning differs
//! between the dialects (`\d`, `\w`, `\s` and their negations, `\b`, `\B` are ASCII-only in
//! Go). Selector matchers do not use this: they go through annals's full RE2 translation.

use regex::{Captures, Regex};

/// Compiles `^(?:re)$` with Go's meaning of the ASCII classes.
pub(crate) fn compile_anchored(re: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{})$", translate(re)))
}

/// Rewrites Perl classes to their ASCII definitions, inside and outside brackets.
fn translate(re: &str) -> String {
    let mut out = String::with_capacity(re.len() + 8);
    let mut chars = re.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let rep = match (n, in_class) {
                    ('d', _) => Some(if in_class { "0-9" } else { "[0-9]" }),
                    ('w', _) => Some(if in_class {
                        "0-9A-Za-z_"
                    } else {
                        "[0-9A-Za-z_]"
                    }),
                    ('s', _) => Some(if in_class {
                        "\\t\\n\\f\\r "
                    } else {
                        "[\\t\\n\\f\\r ]"
                    }),
                    ('D', false) => Some("[^0-9]"),
                    ('W', false) => Some("[^0-9A-Za-z_]"),
                    ('S', false) => Some("[^\\t\\n\\f\\r ]"),
                    ('b', false) => Some("(?-u:\\b)"),
                    ('B', false) => Some("(?-u:\\B)"),
                    _ => None,
                };
                match rep {
                    Some(r) => out.push_str(r),
                    None => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class `[:alpha:]` inside brackets: copy through its end.
                out.push('[');
                for c in chars.by_ref() {
                    out.push(c);
                    if c == ']' {
                        break;
                    }
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// Expands a Go replacement template: `$1`, `$name`, `${name}`, `$$`; unknown groups expand to
/// nothing, and a `$` not followed by a name is kept.
pub(crate) fn expand(caps: &Captures<'_>, template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.as_bytes().get(1) == Some(&b'$') {
            out.push('$');
            rest = &rest[2..];
            continue;
        }
        let (name, after) = if rest.as_bytes().get(1) == Some(&b'{') {
            match rest[2..].find('}') {
                Some(end) if is_name(&rest[2..2 + end]) => (&rest[2..2 + end], &rest[3 + end..]),
                _ => ("", rest),
            }
        } else {
            let len = rest[1..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (&rest[1..1 + len], &rest[1 + len..])
        };
        if name.is_empty() {
            out.push('$');
            rest = &rest[1..];
            continue;
        }
        let m = match name.parse::<usize>() {
            Ok(n) => caps.get(n),
            Err(_) => caps.name(name),
        };
        if let Some(m) = m {
            out.push_str(m.as_str());
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_go() {
        let re = compile_anchored("(?P<host>[a-z]+):(\\d+)").expect("valid");
        let caps = re.captures("web:8080").expect("matches");
        assert_eq!(expand(&caps, "$1-$2"), "web-8080");
        assert_eq!(expand(&caps, "${host}x"), "webx");
        assert_eq!(expand(&caps, "$hostx"), "");
        assert_eq!(expand(&caps, "$$1"), "$1");
        assert_eq!(expand(&caps, "a$"), "a$");
        assert_eq!(expand(&caps, "$9"), "");
        assert!(compile_anchored("\\d").expect("valid").is_match("5"));
        assert!(!compile_anchored("\\d").expect("valid").is_match("٥"));
        assert!(compile_anchored("[\\d.]+").expect("valid").is_match("1.5"));
    }
}
