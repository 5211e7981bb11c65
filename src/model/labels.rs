//! Label sets: the identity of a series.
//!
//! A [`Labels`] is immutable and sorted by name. It is stored as one shared allocation of
//! packed `uvarint len, name, uvarint len, value` pairs, so a clone is a reference-count bump,
//! equality is a byte comparison and the stable hash is one pass over the bytes.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::encoding::{put_string, Decbuf};
use crate::error::{Error, Result};

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One `name="value"` pair borrowed from a [`Labels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label<'a> {
    /// Label name.
    pub name: &'a str,
    /// Label value (never empty inside a `Labels`).
    pub value: &'a str,
}

/// An immutable, sorted, validated set of labels.
#[derive(Clone)]
pub struct Labels {
    /// Packed pairs, sorted by name, names unique, values non-empty.
    data: Arc<[u8]>,
}

impl Labels {
    /// Builds a label set from `(name, value)` pairs in any order.
    ///
    /// Pairs with an empty value are dropped (an empty value means "label absent", as in
    /// Prometheus). Fails with [`Error::InvalidLabels`] if a name is empty, a name repeats, or
    /// no label is left.
    ///
    /// # What the engine accepts
    ///
    /// Any non-empty UTF-8 name and any UTF-8 value, as Prometheus's TSDB stores them:
    /// `a-b`, `0a`, `héllo`, a metric name `1bad metric` and NUL bytes in values are all
    /// valid here, written to the WAL and blocks, and read back by Prometheus. They are not
    /// all valid Prometheus 2.x *names* (`[a-zA-Z_][a-zA-Z0-9_]*` for labels,
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics, `__` reserved): PromQL cannot name them
    /// unquoted and Prometheus's scrape and remote-write refuse them. A database opened with
    /// [`Options::prometheus_name_rules`](crate::Options::prometheus_name_rules) refuses new
    /// series that break those rules with
    /// [`Error::InvalidLabelName`](crate::Error::InvalidLabelName); size limits are in
    /// [`Options`](crate::Options) too (`max_label_name_length`...).
    pub fn new<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Labels>
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.push(n.as_ref(), v.as_ref());
        }
        b.build()
    }

    /// Like [`Labels::new`] for raw bytes that must be valid UTF-8.
    pub fn from_utf8_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Labels> {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            let name = std::str::from_utf8(n).map_err(|_| {
                Error::invalid_labels(format!(
                    "label name {:?} is not valid UTF-8",
                    String::from_utf8_lossy(n)
                ))
            })?;
            let value = std::str::from_utf8(v).map_err(|_| {
                Error::invalid_labels(format!("value of label {name:?} is not valid UTF-8"))
            })?;
            b.push(name, value);
        }
        b.build()
    }

    /// The label set with no labels. It cannot be appended, but is a useful neutral value.
    pub fn empty() -> Labels {
        Labels {
            data: Arc::from(&[][..]),
        }
    }

    /// Iterates the labels in name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            d: Decbuf::new(&self.data),
        }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        for l in self.iter() {
            match l.name.cmp(name) {
                Ordering::Less => continue,
                Ordering::Equal => return Some(l.value),
                Ordering::Greater => return None,
            }
        }
        None
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// A 64-bit hash of the label set that is the same in every process and on every platform
    /// (XXH3 over the packed bytes).
    pub fn stable_hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&self.data)
    }

    /// Bytes this label set occupies on the heap (excluding the `Arc` header).
    pub fn heap_bytes(&self) -> usize {
        self.data.len()
    }

    /// Parses the text form `{__name__="up", job="node"}` (what `Display` prints) or
    /// `up{job="node"}`, in the grammar of [`parse_selector`](super::parse_selector) with `=`
    /// as the only operator. Fails with [`Error::InvalidLabels`] naming the offset, what was
    /// expected and what was found, or for the reasons [`Labels::new`] gives (empty values are
    /// dropped, as there).
    pub fn parse(s: &str) -> Result<Labels> {
        super::parse::parse_labels(s)
    }

    /// A builder pre-filled with these labels, to add, change or remove some.
    pub fn to_builder(&self) -> LabelsBuilder {
        let mut b = LabelsBuilder::new();
        for l in self.iter() {
            b.push(l.name, l.value);
        }
        b
    }
}

/// Iterator over the labels of a [`Labels`], in name order.
pub struct Iter<'a> {
    d: Decbuf<'a>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Label<'a>;

    #[inline]
    fn next(&mut self) -> Option<Label<'a>> {
        if self.d.is_empty() {
            return None;
        }
        // Labels are only constructed from validated UTF-8 by this module.
        let name = self.d.uvarint_bytes().ok()?;
        let value = self.d.uvarint_bytes().ok()?;
        // SAFETY-free: from_utf8 would re-validate; the bytes were validated on construction.
        let name = std::str::from_utf8(name).ok()?;
        let value = std::str::from_utf8(value).ok()?;
        Some(Label { name, value })
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = Label<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        self.data == other.data
    }
}

impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.data);
    }
}

impl Ord for Labels {
    /// Prometheus's `labels.Compare`: label by label, name then value, byte-wise; a prefix
    /// sorts first. Compares the packed bytes without decoding them as strings (byte order is
    /// string order), so sorting many label sets costs no UTF-8 validation.
    fn cmp(&self, other: &Labels) -> Ordering {
        if self.data == other.data {
            return Ordering::Equal;
        }
        let (mut a, mut b) = (Decbuf::new(&self.data), Decbuf::new(&other.data));
        loop {
            // Names and values alternate, so comparing the strings in turn compares labels
            // name first, then value.
            match (a.is_empty(), b.is_empty()) {
                (true, true) => return Ordering::Equal,
                (true, false) => return Ordering::Less,
                (false, true) => return Ordering::Greater,
                (false, false) => {}
            }
            let (Ok(x), Ok(y)) = (a.uvarint_bytes(), b.uvarint_bytes()) else {
                // Unreachable: the builder writes whole strings.
                return self.data.cmp(&other.data);
            };
            match x.cmp(y) {
                Ordering::Equal => {}
                c => return c,
            }
        }
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Labels) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Labels {
    /// Prometheus's `labels.String()` form, as `promtool tsdb dump` prints it:
    /// `{__name__="up", job="node"}`. Names outside the legacy charset `[a-zA-Z_][a-zA-Z0-9_]*`
    /// are quoted (`{"a.b"="c"}`, as Prometheus 3 prints them), so [`Labels::parse`] reads every
    /// printed set back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            super::write_label_name(f, l.name)?;
            f.write_str("=")?;
            write_quoted(f, l.value)?;
        }
        f.write_str("}")
    }
}

/// Writes `s` as a Go `strconv.Quote`d string (what Prometheus prints for label values).
pub(crate) fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\x07' => f.write_str("\\a")?,
            '\x08' => f.write_str("\\b")?,
            '\x0c' => f.write_str("\\f")?,
            '\x0b' => f.write_str("\\v")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Packs labels that arrive sorted by name, names unique and non-empty (the caller checks
/// that, as a block index's series entries guarantee it), without [`LabelsBuilder`]'s
/// per-pair allocations. Empty values are dropped, as the builder drops them.
pub(crate) struct SortedLabelsWriter {
    data: Vec<u8>,
}

impl SortedLabelsWriter {
    pub(crate) fn new() -> Self {
        // Most label sets fit: one allocation while packing, one for the result.
        SortedLabelsWriter {
            data: Vec::with_capacity(128),
        }
    }

    /// Appends a pair; `name` sorts after every name pushed before.
    #[inline]
    pub(crate) fn push(&mut self, name: &str, value: &str) {
        debug_assert!(!name.is_empty());
        if !value.is_empty() {
            put_string(&mut self.data, name.as_bytes());
            put_string(&mut self.data, value.as_bytes());
        }
    }

    /// The label set; fails as [`LabelsBuilder::build`] does when no label is left.
    pub(crate) fn finish(self) -> Result<Labels> {
        if self.data.is_empty() {
            return Err(Error::invalid_labels(EMPTY_SET));
        }
        Ok(Labels {
            data: self.data.into(),
        })
    }
}

const EMPTY_SET: &str = "the label set is empty (labels with empty values count as absent)";

/// Collects labels in any order and builds a validated [`Labels`].
#[derive(Debug, Default, Clone)]
pub struct LabelsBuilder {
    pairs: Vec<(String, String)>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pair; duplicates are reported by [`build`](Self::build).
    pub fn push(&mut self, name: &str, value: &str) -> &mut Self {
        self.pairs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets `name` to `value`, replacing an earlier value; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.pairs.retain(|(n, _)| n != name);
        self.pairs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Removes label `name`.
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.pairs.retain(|(n, _)| n != name);
        self
    }

    /// Validates and builds the label set.
    pub fn build(&self) -> Result<Labels> {
        let mut pairs: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for w in pairs.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(Error::invalid_labels(format!(
                    "label name {:?} appears more than once",
                    w[0].0
                )));
            }
        }
        if pairs.iter().any(|(n, _)| n.is_empty()) {
            return Err(Error::invalid_labels("a label name is empty"));
        }
        if pairs.is_empty() {
            return Err(Error::invalid_labels(EMPTY_SET));
        }
        let mut data = Vec::with_capacity(pairs.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
        for (n, v) in pairs {
            put_string(&mut data, n.as_bytes());
            put_string(&mut data, v.as_bytes());
        }
        Ok(Labels { data: data.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(p: &[(&str, &str)]) -> Labels {
        Labels::new(p.iter().copied()).unwrap()
    }

    #[test]
    fn sorted_writer_packs_as_the_builder_does() {
        let pairs = [
            ("__name__", "up"),
            ("empty", ""),
            ("job", "node"),
            ("zone", "é"),
        ];
        let mut w = SortedLabelsWriter::new();
        for (n, v) in pairs {
            w.push(n, v);
        }
        let packed = w.finish().unwrap();
        assert_eq!(packed, Labels::new(pairs).unwrap());
        assert_eq!(packed.get("empty"), None);
        let mut w = SortedLabelsWriter::new();
        w.push("a", "");
        assert!(matches!(w.finish(), Err(Error::InvalidLabels { .. })));
    }

    #[test]
    fn sorted_and_queryable() {
        let l = ls(&[("job", "node"), ("__name__", "up"), ("instance", "a:9100")]);
        let names: Vec<_> = l.iter().map(|l| l.name).collect();
        assert_eq!(names, ["__name__", "instance", "job"]);
        assert_eq!(l.metric_name(), Some("up"));
        assert_eq!(l.get("job"), Some("node"));
        assert_eq!(l.get("zzz"), None);
        assert_eq!(l.get("a"), None);
        assert_eq!(l.len(), 3);
        assert_eq!(
            l.to_string(),
            r#"{__name__="up", instance="a:9100", job="node"}"#
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let e = Labels::new([("a", "1"), ("a", "2")]).unwrap_err();
        assert!(
            e.to_string().contains("\"a\" appears more than once"),
            "{e}"
        );
        let e = Labels::new([("", "1")]).unwrap_err();
        assert!(matches!(e, Error::InvalidLabels { .. }));
        let e = Labels::new(Vec::<(&str, &str)>::new()).unwrap_err();
        assert!(e.to_string().contains("empty"));
        let e = Labels::new([("a", "")]).unwrap_err();
        assert!(e.to_string().contains("empty"));
        let e = Labels::from_utf8_pairs([(&b"a"[..], &[0xff][..])]).unwrap_err();
        assert!(e.to_string().contains("UTF-8"));
        // Empty values are dropped, not errors.
        assert_eq!(ls(&[("a", "1"), ("b", "")]), ls(&[("a", "1")]));
    }

    #[test]
    fn ordering_matches_prometheus_compare() {
        let a = ls(&[("a", "1")]);
        let ab = ls(&[("a", "1"), ("b", "1")]);
        let a2 = ls(&[("a", "2")]);
        let b = ls(&[("b", "0")]);
        assert!(a < ab, "a prefix sorts first");
        assert!(ab < a2);
        assert!(a2 < b);
        // Byte-wise, not by the packed length prefix: "b" > "aa".
        assert!(ls(&[("a", "b")]) > ls(&[("a", "aa")]));
    }

    proptest::proptest! {
        /// The ordering on packed bytes is the ordering of the (name, value) pairs.
        #[test]
        fn ordering_is_that_of_the_pairs(
            a in proptest::collection::btree_map("[a-cé]{1,3}", "[a-cé✓]{1,3}", 1..4),
            b in proptest::collection::btree_map("[a-cé]{1,3}", "[a-cé✓]{1,3}", 1..4),
        ) {
            let pairs = |m: &std::collections::BTreeMap<String, String>| -> Vec<(String, String)> {
                m.iter().map(|(n, v)| (n.clone(), v.clone())).collect()
            };
            let build = |m: &std::collections::BTreeMap<String, String>| {
                let mut lb = LabelsBuilder::new();
                for (n, v) in m {
                    lb.push(n, v);
                }
                lb.build().unwrap()
            };
            proptest::prop_assert_eq!(build(&a).cmp(&build(&b)), pairs(&a).cmp(&pairs(&b)));
        }
    }

    #[test]
    fn hash_is_stable_and_quoting_escapes() {
        let l = ls(&[("__name__", "up")]);
        assert_eq!(l.stable_hash(), ls(&[("__name__", "up")]).stable_hash());
        assert_ne!(l.stable_hash(), ls(&[("__name__", "down")]).stable_hash());
        let q = ls(&[("a", "x\"y\\z\n")]);
        assert_eq!(q.to_string(), r#"{a="x\"y\\z\n"}"#);
    }
}
