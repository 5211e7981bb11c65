//! Matchers into postings (Prometheus `PostingsForMatchers`), over any [`IndexReader`].

use super::IndexReader;
use crate::error::Result;
use crate::index::postings;
use crate::model::Matcher;

/// Refs of the series selected by all `matchers`, sorted.
///
/// A matcher that does not match the empty string selects the series whose value matches (an
/// exact value set, such as a literal alternation, is looked up value by value); one that does
/// (e.g. `a=""`, `a!="x"`, `a=~".*"`) only removes the series that carry the label with a
/// value it rejects. Removals apply to the intersection of the selections, or to all series
/// when nothing selects. No matchers select every series. A matcher with an empty label
/// name is [`Error::InvalidMatcher`](crate::Error::InvalidMatcher).
pub(crate) fn postings_for_matchers<I: IndexReader + ?Sized>(
    ix: &I,
    matchers: &[Matcher],
) -> Result<Vec<u64>> {
    crate::model::check_matchers(matchers)?;
    let mut include: Vec<Vec<u64>> = Vec::new();
    let mut exclude: Vec<Vec<u64>> = Vec::new();
    for m in matchers {
        if m.matches_empty() {
            let removed = ix.postings_matching(m.name(), &|v| !m.matches(v))?;
            if !removed.is_empty() {
                exclude.push(removed);
            }
        } else {
            let selected = match m.set_matches() {
                Some(set) => {
                    let values: Vec<&str> = set.iter().map(String::as_str).collect();
                    ix.postings(m.name(), &values)?
                }
                None => ix.postings_matching(m.name(), &|v| m.matches(v))?,
            };
            if selected.is_empty() {
                return Ok(Vec::new());
            }
            include.push(selected);
        }
    }
    let base = if include.is_empty() {
        ix.all_postings()?
    } else {
        postings::intersect(include.iter().map(Vec::as_slice).collect())
    };
    Ok(match exclude.len() {
        0 => base,
        1 => postings::subtract(&base, &exclude[0]),
        _ => {
            let lists: Vec<&[u64]> = exclude.iter().map(Vec::as_slice).collect();
            postings::subtract(&base, &postings::union(&lists))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{write_block, Block, BlockOptions, SeriesChunk};
    use crate::chunkenc::{Encoding, XorAppender};
    use crate::head::{AppendBuffers, Appender, Head};
    use crate::model::Labels;
    use crate::options::Options;
    use std::sync::Arc;

    /// A head and a block holding `series`, one sample each (the head's not committed: its
    /// series exist, which is all postings need).
    fn sources(series: &[Labels]) -> (Arc<Head>, Block, tempfile::TempDir) {
        let head = Arc::new(Head::new(&Options::default()));
        let mut app = Appender::new(head.clone(), AppendBuffers::default());
        for l in series {
            app.append(None, l, 1, 1.0).unwrap();
        }
        drop(app);
        let mut sorted = series.to_vec();
        sorted.sort();
        let dir = tempfile::tempdir().unwrap();
        let chunk = || {
            let mut app = XorAppender::new();
            app.append(1, 1.0);
            SeriesChunk {
                min_time: 1,
                max_time: 1,
                encoding: Encoding::Xor,
                data: app.into_bytes(),
            }
        };
        let ulid = write_block(
            dir.path(),
            BlockOptions::default(),
            sorted.into_iter().map(|l| (l, vec![chunk()])),
        )
        .unwrap()
        .unwrap();
        let block = Block::open(dir.path().join(ulid.to_string())).unwrap();
        (head, block, dir)
    }

    /// The label sets `ms` selects from `ix`, sorted.
    fn select<I: IndexReader + ?Sized>(ix: &I, ms: &[Matcher]) -> Vec<Labels> {
        let mut metas = Vec::new();
        let mut out: Vec<Labels> = postings_for_matchers(ix, ms)
            .unwrap()
            .into_iter()
            .map(|r| ix.series(r, &mut metas).unwrap().unwrap())
            .collect();
        out.sort();
        out
    }

    /// Checks every case through the head and through a block.
    fn check_both(series: &[Labels], cases: &[(Vec<Matcher>, Vec<Labels>)]) {
        let (head, block, _dir) = sources(series);
        let range = head.range(i64::MIN, i64::MAX);
        for (ms, want) in cases {
            let mut want = want.clone();
            want.sort();
            assert_eq!(select(&range, ms), want, "head, matchers {ms:?}");
            assert_eq!(select(block.index(), ms), want, "block, matchers {ms:?}");
        }
    }

    #[test]
    fn agrees_with_brute_force() {
        let series = crate::model::test_cases::five_series();
        let eq = Matcher::equal;
        let ne = Matcher::not_equal;
        let re = |n, v| Matcher::regex(n, v).unwrap();
        let nre = |n, v| Matcher::not_regex(n, v).unwrap();
        let cases: Vec<Vec<Matcher>> = vec![
            vec![],
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
        let cases: Vec<(Vec<Matcher>, Vec<Labels>)> = cases
            .into_iter()
            .map(|ms| {
                let want = series
                    .iter()
                    .filter(|l| ms.iter().all(|m| m.matches(l.get(m.name()).unwrap_or(""))))
                    .cloned()
                    .collect();
                (ms, want)
            })
            .collect();
        check_both(&series, &cases);
    }

    /// Prometheus's `TestPostingsForMatchers` table (43 cases, expectations checked against
    /// Prometheus 2.42), through the head and through a block.
    #[test]
    fn prometheus_postings_for_matchers_table() {
        use crate::model::test_cases::{postings_for_matchers_cases, postings_for_matchers_series};
        check_both(
            &postings_for_matchers_series(),
            &postings_for_matchers_cases(),
        );
    }
}
