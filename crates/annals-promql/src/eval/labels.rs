//! Label-set operations of the evaluator (Prometheus's `labels.Builder` uses).

use annals::{Labels, LabelsBuilder};

/// Builds a label set from pairs, empty values dropped; no pairs gives the empty set.
pub(crate) fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
    let mut b = LabelsBuilder::new();
    let mut any = false;
    for (n, v) in pairs {
        if !v.is_empty() {
            b.push(n, v);
            any = true;
        }
    }
    if !any {
        return Labels::empty();
    }
    b.build()
        .expect("pairs come from valid label sets or validated names")
}

/// The labels without `__name__`.
pub(crate) fn drop_metric_name(l: &Labels) -> Labels {
    if l.metric_name().is_none() {
        return l.clone();
    }
    from_pairs(
        l.iter()
            .filter(|x| x.name != "__name__")
            .map(|x| (x.name, x.value)),
    )
}

/// Only the labels named in `names`.
pub(crate) fn keep(l: &Labels, names: &[String]) -> Labels {
    from_pairs(
        l.iter()
            .filter(|x| names.iter().any(|n| n == x.name))
            .map(|x| (x.name, x.value)),
    )
}

/// The labels except those named in `names` (and `__name__` when `drop_name`).
pub(crate) fn without(l: &Labels, names: &[String], drop_name: bool) -> Labels {
    from_pairs(
        l.iter()
            .filter(|x| !(names.iter().any(|n| n == x.name) || drop_name && x.name == "__name__"))
            .map(|x| (x.name, x.value)),
    )
}

/// The labels with `name` set to `value` (removed when `value` is empty).
pub(crate) fn set(l: &Labels, name: &str, value: &str) -> Labels {
    from_pairs(
        l.iter()
            .filter(|x| x.name != name)
            .map(|x| (x.name, x.value))
            .chain(std::iter::once((name, value))),
    )
}

/// Appends the signature of the labels `on` (or all but `names` and `__name__`, when
/// `!on`) to `buf`: name/value pairs separated by 0xff, as Prometheus's
/// `BytesWithLabels`/`BytesWithoutLabels` (so equal signatures mean equal label subsets).
pub(crate) fn signature(l: &Labels, on: bool, names: &[String], buf: &mut Vec<u8>) {
    buf.clear();
    // Labels are sorted by name: with `on`, none after the greatest listed name is included
    // (`by (__name__)` reads one label).
    let last = names.iter().max();
    for x in l.iter() {
        if on && last.is_none_or(|n| x.name > n.as_str()) {
            break;
        }
        let listed = names.iter().any(|n| n == x.name);
        let include = if on {
            listed
        } else {
            !listed && x.name != "__name__"
        };
        if include {
            buf.extend_from_slice(x.name.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(x.value.as_bytes());
            buf.push(0xff);
        }
    }
}

/// Prometheus's `MatchLabels`: the labels `on` (or all but `names` and `__name__`).
pub(crate) fn match_labels(l: &Labels, on: bool, names: &[String]) -> Labels {
    from_pairs(
        l.iter()
            .filter(|x| {
                let listed = names.iter().any(|n| n == x.name);
                if on {
                    listed
                } else {
                    !listed && x.name != "__name__"
                }
            })
            .map(|x| (x.name, x.value)),
    )
}

/// Whether `s` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub(crate) fn is_valid_label_name(s: &str) -> bool {
    let mut cs = s.bytes();
    matches!(cs.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && cs.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}
