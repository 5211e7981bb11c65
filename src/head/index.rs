//! The head's inverted index: label name → label value → sorted series refs, plus the list of
//! all series. Matchers resolve over it through the read interface
//! ([`crate::reader::postings_for_matchers`]).

use std::collections::BTreeMap;

use crate::index::postings;
use crate::model::Labels;

#[derive(Default)]
pub(crate) struct MemPostings {
    by_label: BTreeMap<Box<str>, BTreeMap<Box<str>, Vec<u64>>>,
    all: Vec<u64>,
}

/// Inserts `r` keeping `list` sorted. Refs are allocated in increasing order, so this is an
/// append except when concurrent creators race.
fn insert_sorted(list: &mut Vec<u64>, r: u64) {
    match list.last() {
        Some(&last) if last >= r => {
            if let Err(pos) = list.binary_search(&r) {
                list.insert(pos, r);
            }
        }
        _ => list.push(r),
    }
}

fn remove_sorted(list: &mut Vec<u64>, r: u64) {
    if let Ok(pos) = list.binary_search(&r) {
        list.remove(pos);
    }
}

impl MemPostings {
    pub(crate) fn remove(&mut self, r: u64, labels: &Labels) {
        remove_sorted(&mut self.all, r);
        for l in labels {
            let Some(values) = self.by_label.get_mut(l.name) else {
                continue;
            };
            if let Some(list) = values.get_mut(l.value) {
                remove_sorted(list, r);
                if list.is_empty() {
                    values.remove(l.value);
                }
            }
            if values.is_empty() {
                self.by_label.remove(l.name);
            }
        }
    }

    /// Every series ref.
    pub(crate) fn all(&self) -> &[u64] {
        &self.all
    }

    pub(crate) fn add(&mut self, r: u64, labels: &Labels) {
        insert_sorted(&mut self.all, r);
        for l in labels {
            let values = match self.by_label.get_mut(l.name) {
                Some(v) => v,
                None => self.by_label.entry(l.name.into()).or_default(),
            };
            match values.get_mut(l.value) {
                Some(list) => insert_sorted(list, r),
                None => {
                    values.insert(l.value.into(), vec![r]);
                }
            }
        }
    }

    pub(crate) fn label_names(&self) -> Vec<String> {
        self.by_label.keys().map(|k| k.to_string()).collect()
    }

    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        self.by_label
            .get(name)
            .map(|v| v.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    /// Union of the postings of `name=v` for `v` in `values`.
    pub(crate) fn postings(&self, name: &str, values: &[&str]) -> Vec<u64> {
        let Some(by_value) = self.by_label.get(name) else {
            return Vec::new();
        };
        let lists: Vec<&[u64]> = values
            .iter()
            .filter_map(|v| by_value.get(*v).map(Vec::as_slice))
            .collect();
        postings::union(&lists)
    }

    /// Union of the postings of the values of `name` that `keep` accepts.
    pub(crate) fn postings_matching(&self, name: &str, keep: &dyn Fn(&str) -> bool) -> Vec<u64> {
        let Some(by_value) = self.by_label.get(name) else {
            return Vec::new();
        };
        let lists: Vec<&[u64]> = by_value
            .iter()
            .filter(|(v, _)| keep(v))
            .map(|(_, l)| l.as_slice())
            .collect();
        postings::union(&lists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (MemPostings, Vec<Labels>) {
        let series = crate::model::test_cases::five_series();
        let mut p = MemPostings::default();
        for (i, l) in series.iter().enumerate() {
            p.add(i as u64 + 1, l);
        }
        (p, series)
    }

    #[test]
    fn out_of_order_insertion_keeps_lists_sorted() {
        let (mut p, series) = setup();
        p.add(0, &series[1]);
        p.remove(2, &series[1]);
        p.add(2, &series[1]);
        p.remove(5, &series[4]);
        assert!(p.label_values("n").iter().all(|v| v != "2.5"));
        assert_eq!(p.postings("n", &["1"]), vec![0, 1, 2, 3]);
        assert_eq!(p.postings_matching("n", &|v| v.starts_with('2')), vec![4]);
        assert_eq!(p.label_names(), vec!["i".to_string(), "n".to_string()]);
        assert_eq!(p.label_values("i"), vec!["a".to_string(), "b".to_string()]);
    }
}
