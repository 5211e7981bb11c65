//! Relabeling with Prometheus 2.42's semantics (`model/relabel/relabel.go`): every action
//! (`replace`, `keep`, `drop`, `keepequal`, `dropequal`, `hashmod`, `labelmap`, `labeldrop`,
//! `labelkeep`, `lowercase`, `uppercase`), the same defaults (separator `;`, regex `(.*)`,
//! replacement `$1`), the same validation messages, fully anchored regexes and Go's `$1` /
//! `${name}` expansion rules.
//!
//! Regular expressions compile with Rust's `regex` crate, which accepts RE2 syntax; in the
//! rare classes where the dialects differ (`\d`, `\s`, `\w` are Unicode-aware here, ASCII in
//! Go), a configuration may match more non-ASCII characters than Prometheus would.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use regex::Regex;

/// A label set being relabeled: sorted by name, names unique, no empty values.
pub type LabelSet = Vec<(String, String)>;

/// A relabeling action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Sets `target_label` to the expanded `replacement` when `regex` matches.
    Replace,
    /// Drops the set unless `regex` matches.
    Keep,
    /// Drops the set when `regex` matches.
    Drop,
    /// Drops the set unless the source value equals `target_label`'s value.
    KeepEqual,
    /// Drops the set when the source value equals `target_label`'s value.
    DropEqual,
    /// Sets `target_label` to `md5(source) % modulus`.
    HashMod,
    /// Copies labels whose names match to the expanded `replacement` names.
    LabelMap,
    /// Removes labels whose names match.
    LabelDrop,
    /// Removes labels whose names do not match.
    LabelKeep,
    /// Sets `target_label` to the lower-cased source value.
    Lowercase,
    /// Sets `target_label` to the upper-cased source value.
    Uppercase,
}

impl Action {
    /// Parses an action name as Prometheus does (case-insensitive).
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

/// The fields of one relabel rule as written in the configuration (`None`: not given).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// `source_labels`.
    pub source_labels: Option<Vec<String>>,
    /// `separator`.
    pub separator: Option<String>,
    /// `regex`.
    pub regex: Option<String>,
    /// `modulus`.
    pub modulus: Option<u64>,
    /// `target_label`.
    pub target_label: Option<String>,
    /// `replacement`.
    pub replacement: Option<String>,
    /// `action`.
    pub action: Option<String>,
}

/// A validated, compiled relabel rule.
#[derive(Debug, Clone)]
pub struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
}

const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

/// Prometheus's `relabelTarget`: a label name that may contain `$1` / `${name}` references.
fn valid_target(s: &str) -> bool {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").expect("static pattern")
    })
    .is_match(s)
}

/// Whether `s` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Compiles `s` fully anchored, as Prometheus's `relabel.NewRegexp`.
pub fn anchored(s: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{s})$")).map_err(|e| format!("invalid regex {s:?}: {e}"))
}

impl Rule {
    /// Validates a rule exactly as Prometheus 2.42's `relabel.Config.UnmarshalYAML`.
    pub fn new(raw: &RawRule) -> Result<Rule, String> {
        let action_s = raw.action.clone().unwrap_or_else(|| "replace".into());
        if action_s.is_empty() {
            return Err("relabel action cannot be empty".into());
        }
        let action = Action::parse(&action_s)
            .ok_or_else(|| format!("unknown relabel action {action_s:?}"))?;
        let regex_s = raw.regex.clone().unwrap_or_else(|| DEFAULT_REGEX.into());
        let separator = raw
            .separator
            .clone()
            .unwrap_or_else(|| DEFAULT_SEPARATOR.into());
        let replacement = raw
            .replacement
            .clone()
            .unwrap_or_else(|| DEFAULT_REPLACEMENT.into());
        let target_label = raw.target_label.clone().unwrap_or_default();
        let modulus = raw.modulus.unwrap_or(0);
        let a = action.name();
        if modulus == 0 && action == Action::HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        use Action::*;
        let needs_target = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        if matches!(
            action,
            Replace | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && !valid_target(&target_label)
        {
            return Err(format!(
                "{target_label:?} is invalid 'target_label' for {a} action"
            ));
        }
        if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual)
            && replacement != DEFAULT_REPLACEMENT
        {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if action == LabelMap && !valid_target(&replacement) {
            return Err(format!(
                "{replacement:?} is invalid 'replacement' for {a} action"
            ));
        }
        if action == HashMod && !valid_label_name(&target_label) {
            return Err(format!(
                "{target_label:?} is invalid 'target_label' for {a} action"
            ));
        }
        if matches!(action, KeepEqual | DropEqual)
            && (regex_s != DEFAULT_REGEX
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (raw.source_labels.is_some()
                || !target_label.is_empty()
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'regex', and no other fields"
            ));
        }
        let source_labels = raw.source_labels.clone().unwrap_or_default();
        for l in &source_labels {
            if !valid_label_name(l) {
                return Err(format!("{l:?} is not a valid label name"));
            }
        }
        Ok(Rule {
            source_labels,
            separator,
            regex: anchored(&regex_s)?,
            modulus,
            target_label,
            replacement,
            action,
        })
    }
}

fn get<'a>(ls: &'a LabelSet, name: &str) -> &'a str {
    match ls.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => &ls[i].1,
        Err(_) => "",
    }
}

/// Sets `name` to `value` in a sorted set; an empty value deletes (Prometheus's
/// `labels.Builder.Set`).
pub fn set(ls: &mut LabelSet, name: &str, value: &str) {
    match ls.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) if value.is_empty() => {
            ls.remove(i);
        }
        Ok(i) => value.clone_into(&mut ls[i].1),
        Err(_) if value.is_empty() => {}
        Err(i) => ls.insert(i, (name.to_owned(), value.to_owned())),
    }
}

fn del(ls: &mut LabelSet, name: &str) {
    if let Ok(i) = ls.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        ls.remove(i);
    }
}

/// Go's `Regexp.Expand`: `$name`, `${name}`, `$1`, `$$`; unknown names expand to nothing.
fn expand(re: &Regex, template: &str, caps: &regex::Captures<'_>, out: &mut String) {
    let b = template.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let next = template[i..].find('$').map_or(b.len(), |k| i + k);
            out.push_str(&template[i..next]);
            i = next;
            continue;
        }
        i += 1;
        if i < b.len() && b[i] == b'$' {
            out.push('$');
            i += 1;
            continue;
        }
        let (name, end) = if i < b.len() && b[i] == b'{' {
            match template[i + 1..].find('}') {
                Some(k) => {
                    let n = &template[i + 1..i + 1 + k];
                    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
                        // Not a valid reference: Go writes the '$' literally.
                        out.push('$');
                        continue;
                    }
                    (n, i + 2 + k)
                }
                None => {
                    out.push('$');
                    continue;
                }
            }
        } else {
            let k = template[i..]
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .count();
            if k == 0 {
                out.push('$');
                continue;
            }
            (&template[i..i + k], i + k)
        };
        i = end;
        let numeric =
            name.bytes().all(|c| c.is_ascii_digit()) && !(name.len() > 1 && name.starts_with('0'));
        let m = match name.parse::<usize>() {
            Ok(n) if numeric => caps.get(n),
            _ => {
                if re.capture_names().flatten().any(|c| c == name) {
                    caps.name(name)
                } else {
                    None
                }
            }
        };
        if let Some(m) = m {
            out.push_str(m.as_str());
        }
    }
}

/// Applies `rules` in order. Returns false if the set was dropped (the set is then
/// unspecified).
pub fn process(ls: &mut LabelSet, rules: &[Rule]) -> bool {
    let mut val = String::new();
    let mut buf = String::new();
    for r in rules {
        val.clear();
        for (i, n) in r.source_labels.iter().enumerate() {
            if i > 0 {
                val.push_str(&r.separator);
            }
            val.push_str(get(ls, n));
        }
        match r.action {
            Action::Drop => {
                if r.regex.is_match(&val) {
                    return false;
                }
            }
            Action::Keep => {
                if !r.regex.is_match(&val) {
                    return false;
                }
            }
            Action::DropEqual => {
                if get(ls, &r.target_label) == val {
                    return false;
                }
            }
            Action::KeepEqual => {
                if get(ls, &r.target_label) != val {
                    return false;
                }
            }
            Action::Replace => {
                let Some(caps) = r.regex.captures(&val) else {
                    continue;
                };
                buf.clear();
                expand(&r.regex, &r.target_label, &caps, &mut buf);
                if !valid_label_name(&buf) {
                    del(ls, &r.target_label);
                    continue;
                }
                let target = std::mem::take(&mut buf);
                expand(&r.regex, &r.replacement, &caps, &mut buf);
                if buf.is_empty() {
                    del(ls, &r.target_label);
                } else {
                    set(ls, &target, &buf);
                }
            }
            Action::Lowercase => set(ls, &r.target_label.clone(), &val.to_lowercase()),
            Action::Uppercase => set(ls, &r.target_label.clone(), &val.to_uppercase()),
            Action::HashMod => {
                let sum = Md5::digest(val.as_bytes());
                let h = u64::from_be_bytes(sum[8..16].try_into().expect("md5 is 16 bytes"));
                buf.clear();
                let _ = write!(buf, "{}", h % r.modulus);
                set(ls, &r.target_label, &buf);
            }
            Action::LabelMap => {
                let snapshot = ls.clone();
                for (n, v) in &snapshot {
                    if let Some(caps) = r.regex.captures(n) {
                        buf.clear();
                        expand(&r.regex, &r.replacement, &caps, &mut buf);
                        set(ls, &buf, v);
                    }
                }
            }
            Action::LabelDrop => ls.retain(|(n, _)| !r.regex.is_match(n)),
            Action::LabelKeep => ls.retain(|(n, _)| r.regex.is_match(n)),
        }
    }
    true
}

#[cfg(test)]
mod tests;
