//! The head's inverted index: label name → label value → sorted series refs, plus the list of
//! all series, and the resolution of matchers into refs through the postings algebra.

use std::collections::BTreeMap;

use crate::index::postings;
use crate::model::{Labels, Matcher};

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

    /// Union of the postings of the values of `m`'s label for which `matches(value) == want`.
    fn union_where(&self, m: &Matcher, want: bool) -> Vec<u64> {
        let Some(values) = self.by_label.get(m.name()) else {
            return Vec::new();
        };
        // Exact value sets need no scan of the label's values.
        if want {
            if let Some(set) = m.set_matches() {
                let lists: Vec<&[u64]> = set
                    .iter()
                    .filter_map(|v| values.get(v.as_str()).map(Vec::as_slice))
                    .collect();
                return postings::union(&lists);
            }
        }
        let lists: Vec<&[u64]> = values
            .iter()
            .filter(|(v, _)| m.matches(v) == want)
            .map(|(_, l)| l.as_slice())
            .collect();
        postings::union(&lists)
    }

    /// Refs of the series selected by all `matchers` (Prometheus `PostingsForMatchers`).
    ///
    /// A matcher that does not match the empty string selects the series whose value matches;
    /// one that does (e.g. `a=""`, `a!="x"`, `a=~".*"`) only removes the series that carry the
    /// label with a value it rejects. Removals apply to the intersection of the selections, or
    /// to all series when nothing selects.
    pub(crate) fn postings_for_matchers(&self, matchers: &[Matcher]) -> Vec<u64> {
        let mut include: Vec<Vec<u64>> = Vec::new();
        let mut exclude: Vec<Vec<u64>> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                let removed = self.union_where(m, false);
                if !removed.is_empty() {
                    exclude.push(removed);
                }
            } else {
                let selected = self.union_where(m, true);
                if selected.is_empty() {
                    return Vec::new();
                }
                include.push(selected);
            }
        }
        let base = if include.is_empty() {
            self.all.clone()
        } else {
            postings::intersect(include.iter().map(Vec::as_slice).collect())
        };
        match exclude.len() {
            0 => base,
            1 => postings::subtract(&base, &exclude[0]),
            _ => {
                let lists: Vec<&[u64]> = exclude.iter().map(Vec::as_slice).collect();
                postings::subtract(&base, &postings::union(&lists))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (MemPostings, Vec<Labels>) {
        let series: Vec<Labels> = [
            vec![("n", "1")],
            vec![("n", "1"), ("i", "a")],
            vec![("n", "1"), ("i", "b")],
            vec![("n", "2")],
            vec![("n", "2.5")],
        ]
        .into_iter()
        .map(|p| Labels::new(p).unwrap())
        .collect();
        let mut p = MemPostings::default();
        for (i, l) in series.iter().enumerate() {
            p.add(i as u64 + 1, l);
        }
        (p, series)
    }

    /// The matchers are evaluated both through postings and by brute force on every series.
    fn check(ms: &[Matcher]) {
        let (p, series) = setup();
        let want: Vec<u64> = series
            .iter()
            .enumerate()
            .filter(|(_, l)| ms.iter().all(|m| m.matches(l.get(m.name()).unwrap_or(""))))
            .map(|(i, _)| i as u64 + 1)
            .collect();
        assert_eq!(p.postings_for_matchers(ms), want, "matchers {ms:?}");
    }

    #[test]
    fn agrees_with_brute_force() {
        let eq = Matcher::equal;
        let ne = Matcher::not_equal;
        let re = |n, v| Matcher::regex(n, v).unwrap();
        let nre = |n, v| Matcher::not_regex(n, v).unwrap();
        let cases: Vec<Vec<Matcher>> = vec![
            vec![eq("n", "1")],
            vec![eq("n", "1"), eq("i", "a")],
            vec![eq("n", "1"), eq("i", "missing")],
            vec![eq("i", "")],
            vec![ne("i", "")],
            vec![eq("n", "1"), ne("i", "")],
            vec![eq("n", "1"), ne("i", "a")],
            vec![re("n", "^1$")],
            vec![re("i", ".*")],
            vec![re("i", ".+")],
            vec![eq("n", "1"), re("i", "^a?$")],
            vec![nre("n", "1")],
            vec![nre("i", "^a$")],
            vec![eq("n", "1"), nre("i", "^a?$")],
            vec![re("n", "1|2")],
            vec![re("n", "2|2\\.5")],
            vec![ne("n", "1"), ne("n", "2")],
            vec![eq("missing", "")],
            vec![ne("missing", "")],
        ];
        for ms in &cases {
            check(ms);
        }
    }

    /// Prometheus's `TestPostingsForMatchers` table (43 cases, expectations checked against
    /// Prometheus 2.42) through the head's postings resolution.
    #[test]
    fn prometheus_postings_for_matchers_table() {
        use crate::model::test_cases::{postings_for_matchers_cases, postings_for_matchers_series};
        let series = postings_for_matchers_series();
        let mut p = MemPostings::default();
        for (i, l) in series.iter().enumerate() {
            p.add(i as u64 + 1, l);
        }
        for (ms, want) in postings_for_matchers_cases() {
            let mut got: Vec<Labels> = p
                .postings_for_matchers(&ms)
                .into_iter()
                .map(|r| series[r as usize - 1].clone())
                .collect();
            got.sort();
            let mut want = want;
            want.sort();
            assert_eq!(got, want, "matchers {ms:?}");
        }
    }

    #[test]
    fn out_of_order_insertion_keeps_lists_sorted() {
        let (mut p, series) = setup();
        p.add(0, &series[1]);
        p.remove(2, &series[1]);
        p.add(2, &series[1]);
        p.remove(5, &series[4]);
        assert!(p.label_values("n").iter().all(|v| v != "2.5"));
        assert_eq!(
            p.postings_for_matchers(&[Matcher::equal("n", "1")]),
            vec![0, 1, 2, 3]
        );
        assert_eq!(p.label_names(), vec!["i".to_string(), "n".to_string()]);
        assert_eq!(p.label_values("i"), vec!["a".to_string(), "b".to_string()]);
    }
}
