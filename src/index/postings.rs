//! The postings algebra: sorted lists of series references and their intersection, union and
//! difference. Used by the head's in-memory index and by block index readers alike.
//!
//! Lists are plain sorted, duplicate-free `Vec<u64>`s: the head appends refs in increasing
//! order (refs grow monotonically), block indexes store them sorted (§1.7.4).

/// Intersection of sorted lists. Starts from the shortest list and gallops through the others,
/// so a selective matcher makes the whole intersection cheap.
pub fn intersect(mut lists: Vec<&[u64]>) -> Vec<u64> {
    if lists.is_empty() {
        return Vec::new();
    }
    lists.sort_by_key(|l| l.len());
    let mut out: Vec<u64> = lists[0].to_vec();
    for other in &lists[1..] {
        if out.is_empty() {
            break;
        }
        let mut rest: &[u64] = other;
        out.retain(|&r| {
            rest = gallop(rest, r);
            rest.first() == Some(&r)
        });
    }
    out
}

/// Skips the prefix of `list` below `target` by exponential then binary search.
#[inline]
fn gallop(list: &[u64], target: u64) -> &[u64] {
    if list.first().is_none_or(|&f| f >= target) {
        return list;
    }
    let mut step = 1;
    while step < list.len() && list[step] < target {
        step *= 2;
    }
    let hi = step.min(list.len());
    let lo = step / 2;
    let idx = lo + list[lo..hi].partition_point(|&x| x < target);
    &list[idx..]
}

/// Union of sorted lists, sorted and without duplicates.
pub fn union(lists: &[&[u64]]) -> Vec<u64> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        [a, b] => merge2(a, b),
        _ => {
            let total: usize = lists.iter().map(|l| l.len()).sum();
            let mut out = Vec::with_capacity(total);
            for l in lists {
                out.extend_from_slice(l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

fn merge2(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// The refs of `base` that are not in `remove`.
pub fn subtract(base: &[u64], remove: &[u64]) -> Vec<u64> {
    if remove.is_empty() {
        return base.to_vec();
    }
    let mut rest = remove;
    base.iter()
        .copied()
        .filter(|&r| {
            rest = gallop(rest, r);
            rest.first() != Some(&r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn sorted_set() -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::btree_set(0u64..300, 0..80).prop_map(|s| s.into_iter().collect())
    }

    #[test]
    fn small_cases() {
        assert_eq!(
            intersect(vec![&[1, 3, 5, 7], &[3, 4, 5], &[0, 5, 9]]),
            vec![5]
        );
        assert_eq!(intersect(vec![]), Vec::<u64>::new());
        assert_eq!(union(&[&[1, 4], &[2, 4, 6], &[0]]), vec![0, 1, 2, 4, 6]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 8]), vec![1, 3]);
    }

    proptest! {
        #[test]
        fn agrees_with_sets(a in sorted_set(), b in sorted_set(), c in sorted_set()) {
            let (sa, sb, sc): (BTreeSet<_>, BTreeSet<_>, BTreeSet<_>) =
                (a.iter().copied().collect(), b.iter().copied().collect(), c.iter().copied().collect());
            let want_i: Vec<u64> = sa.iter().filter(|x| sb.contains(x) && sc.contains(x)).copied().collect();
            prop_assert_eq!(intersect(vec![&a, &b, &c]), want_i);
            let want_u: Vec<u64> = sa.union(&sb).copied().collect::<BTreeSet<_>>().union(&sc).copied().collect();
            prop_assert_eq!(union(&[&a, &b, &c]), want_u);
            prop_assert_eq!(union(&[&a, &b]), sa.union(&sb).copied().collect::<Vec<_>>());
            prop_assert_eq!(subtract(&a, &b), sa.difference(&sb).copied().collect::<Vec<_>>());
        }
    }
}
