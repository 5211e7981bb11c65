//! Character class tables as Go defines them: POSIX and Perl classes are ASCII, Unicode classes
//! are general categories and scripts.

use regex_syntax::hir::{Class as HirClass, ClassUnicode, ClassUnicodeRange, HirKind};

use super::{Node, Ranges, MAX_CHAR};

/// The code points `lo..=hi` as char ranges, without the surrogate block.
pub(super) fn code_point_range(lo: u32, hi: u32) -> Vec<ClassUnicodeRange> {
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
pub(super) fn class_node(ranges: Ranges) -> Node {
    match ranges.as_slice() {
        [(a, b)] if a == b => Node::Lit(*a),
        _ => Node::Class(ranges),
    }
}

pub(super) fn to_ranges(cls: &ClassUnicode) -> Ranges {
    cls.ranges().iter().map(|r| (r.start(), r.end())).collect()
}

/// Go's POSIX classes (ASCII), by their bracketed name; the flag tells `[:^name:]`.
pub(super) fn posix_class(name: &str) -> Option<(&'static [(char, char)], bool)> {
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
pub(super) fn unicode_table(name: &str) -> Option<ClassUnicode> {
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
