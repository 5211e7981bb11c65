//! Which blocks to compact next: Prometheus's `LeveledCompactor.plan` (brief §2.7) as a pure
//! function of the blocks' metas. No I/O, no clock: the same metas always give the same plan.

use ulid::Ulid;

use crate::block::Meta;
use crate::error::{Error, Result};

/// Hint of blocks written from stale series only (Prometheus 3.x). The planner never mixes
/// such blocks with others, so a merge keeps the hint (prometheus/prometheus#18379).
pub const HINT_FROM_STALE_SERIES: &str = "from-stale-series";
/// Hint of blocks written from out-of-order head data (Prometheus 2.39+).
pub const HINT_FROM_OUT_OF_ORDER: &str = "from-out-of-order";

/// Share of tombstoned series above which a big enough block is rewritten alone.
const TOMBSTONE_RATIO: f64 = 0.05;

/// `steps` block ranges starting at `min`, each `factor` times the previous one (Prometheus
/// `ExponentialBlockRanges`; it uses `(2h, 10, 3)`). Saturates instead of overflowing.
pub fn exponential_ranges(min: i64, steps: usize, factor: i64) -> Vec<i64> {
    let mut out = Vec::with_capacity(steps);
    let mut cur = min;
    for _ in 0..steps {
        out.push(cur);
        cur = cur.saturating_mul(factor);
    }
    out
}

/// `ranges` cut before the first one longer than `max` (what Prometheus's `open` does with
/// `MaxBlockDuration`). Ranges equal to `max` are kept.
pub fn truncate_ranges(ranges: &[i64], max: i64) -> Vec<i64> {
    let n = ranges.iter().position(|&r| r > max).unwrap_or(ranges.len());
    ranges[..n].to_vec()
}

/// Splits blocks sorted by `min_time` into groups that each lie inside one window
/// `[k·range, (k+1)·range)` aligned to multiples of `range` counted from 0 (negative times
/// included). A block that does not fit inside the window of its own start (misaligned, or
/// longer than `range`) is skipped. Groups keep the input order.
///
/// Prometheus's example: blocks `[0-10, 10-20, 50-60, 90-100]` with range 30 give
/// `[0-10, 10-20], [50-60], [90-100]`.
///
/// # Panics
/// If `range <= 0`; [`Planner::new`] rejects such ranges.
pub fn split_by_range<'a>(metas: &[&'a Meta], range: i64) -> Vec<Vec<&'a Meta>> {
    assert!(range > 0, "block range must be positive, got {range}");
    let mut groups = Vec::new();
    let mut i = 0;
    while i < metas.len() {
        // Prometheus computes tr*(m/tr) for m >= 0 and tr*((m-tr+1)/tr) below: a floor.
        let t0 = metas[i].min_time.div_euclid(range).saturating_mul(range);
        let end = t0.saturating_add(range);
        if metas[i].max_time > end {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < metas.len() && metas[i].max_time <= end {
            group.push(metas[i]);
            i += 1;
        }
        groups.push(group);
    }
    groups
}

/// Prometheus's leveled compaction planner over a fixed list of block ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planner {
    ranges: Vec<i64>,
    overlapping: bool,
}

impl Planner {
    /// A planner for `ranges` (ms, increasing, e.g. `exponential_ranges(2h, 10, 3)` truncated
    /// to the maximum block duration), with overlapping ("vertical") compaction enabled, as in
    /// Prometheus. Fails on an empty list or a range that is not positive.
    pub fn new(ranges: Vec<i64>) -> Result<Planner> {
        if ranges.is_empty() {
            return Err(Error::InvalidArgument(
                "compaction needs at least one block range".into(),
            ));
        }
        if let Some(r) = ranges.iter().find(|&&r| r <= 0) {
            return Err(Error::InvalidArgument(format!(
                "block range {r} is not positive"
            )));
        }
        Ok(Planner {
            ranges,
            overlapping: true,
        })
    }

    /// Enables or disables the merging of blocks whose time ranges overlap (Prometheus's
    /// `EnableOverlappingCompaction`; Thanos and Mimir turn it off). The database always
    /// merges them.
    #[cfg(test)]
    pub fn with_overlapping(mut self, enabled: bool) -> Planner {
        self.overlapping = enabled;
        self
    }

    /// The blocks to compact into one next, sorted by `min_time`; empty when there is
    /// nothing to do. Blocks may come in any order; ties on `min_time` are broken by ULID.
    ///
    /// Blocks carrying the `from-stale-series` hint are planned apart from the others, and
    /// only when the others give nothing, so the two kinds are never merged.
    pub fn plan<'a>(&self, metas: impl IntoIterator<Item = &'a Meta>) -> Vec<Ulid> {
        let (stale, normal): (Vec<&Meta>, Vec<&Meta>) = metas.into_iter().partition(|m| {
            m.compaction
                .hints
                .iter()
                .any(|h| h == HINT_FROM_STALE_SERIES)
        });
        if !stale.is_empty() && !normal.is_empty() {
            let res = self.plan_class(normal);
            if !res.is_empty() {
                return res;
            }
            return self.plan_class(stale);
        }
        self.plan_class(if stale.is_empty() { normal } else { stale })
    }

    fn plan_class(&self, mut metas: Vec<&Meta>) -> Vec<Ulid> {
        if metas.is_empty() {
            return Vec::new();
        }
        metas.sort_by_key(|m| (m.min_time, m.ulid));

        let res = self.select_overlapping(&metas);
        if !res.is_empty() {
            return res;
        }
        // Leave out the newest block, normally the one just cut from the head: users get a
        // full block range to back it up before it is merged away.
        metas.pop();

        let res = self.select_range(&metas);
        if !res.is_empty() {
            return res.iter().map(|m| m.ulid).collect();
        }

        // Rewrite a single block alone to drop deleted data, newest first.
        let big_enough = self.ranges[self.ranges.len() / 2];
        for m in metas.iter().rev() {
            let s = &m.stats;
            if m.max_time.saturating_sub(m.min_time) < big_enough {
                // A small block is only worth it when (probably) all of it is deleted: one
                // interval per series is assumed.
                if s.num_tombstones > 0 && s.num_tombstones >= s.num_series {
                    return vec![m.ulid];
                }
                break;
            }
            if s.num_tombstones as f64 / s.num_series.saturating_add(1) as f64 > TOMBSTONE_RATIO {
                return vec![m.ulid];
            }
        }
        Vec::new()
    }

    /// The first group of blocks sorted by `min_time` that each start before the maximum
    /// end of the blocks before them.
    fn select_overlapping(&self, metas: &[&Meta]) -> Vec<Ulid> {
        let mut out = Vec::new();
        if !self.overlapping || metas.len() < 2 {
            return out;
        }
        let mut global_max = metas[0].max_time;
        for (i, m) in metas.iter().enumerate().skip(1) {
            if m.min_time < global_max {
                if out.is_empty() {
                    out.push(metas[i - 1].ulid);
                }
                out.push(m.ulid);
            } else if !out.is_empty() {
                break;
            }
            global_max = global_max.max(m.max_time);
        }
        out
    }

    /// The first aligned group, over the ranges from the second on, that has more than one
    /// block and either spans the whole range or ends before the newest candidate starts, and
    /// has no block whose compaction failed before.
    fn select_range<'a>(&self, metas: &[&'a Meta]) -> Vec<&'a Meta> {
        let Some(newest) = metas.last() else {
            return Vec::new();
        };
        let high_time = newest.min_time;
        for &range in &self.ranges[1..] {
            for group in split_by_range(metas, range) {
                if group.iter().any(|m| m.compaction.failed) {
                    continue;
                }
                let mint = group[0].min_time;
                let maxt = group[group.len() - 1].max_time;
                if group.len() > 1 && (maxt.saturating_sub(mint) == range || maxt <= high_time) {
                    return group;
                }
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    //! Ported from Prometheus `tsdb/compact_test.go`: `TestSplitByRange`,
    //! `TestNoPanicFor0Tombstones`, `TestLeveledCompactor/plan`,
    //! `TestLeveledCompactor_plan_overlapping_disabled`,
    //! `TestRangeWithFailedCompactionWontGetSelected` and
    //! `TestPlanDoesNotMergeStaleAndNonStaleBlocks`, same names and cases.
    use super::*;
    use crate::block::Stats;

    fn meta(i: usize, min_time: i64, max_time: i64) -> Meta {
        Meta::new(Ulid::from_parts(i as u64 + 1, 0), min_time, max_time)
    }

    /// A block of a plan test case: Prometheus's `metaRange(name, mint, maxt, stats)`.
    #[derive(Clone, Copy)]
    struct B {
        name: &'static str,
        min: i64,
        max: i64,
        series: u64,
        tombstones: u64,
        stale: bool,
    }

    const fn b(name: &'static str, min: i64, max: i64) -> B {
        B {
            name,
            min,
            max,
            series: 0,
            tombstones: 0,
            stale: false,
        }
    }

    const fn with_stats(x: B, series: u64, tombstones: u64) -> B {
        B {
            series,
            tombstones,
            ..x
        }
    }

    const fn stale(name: &'static str, min: i64, max: i64) -> B {
        B {
            stale: true,
            ..b(name, min, max)
        }
    }

    fn metas(blocks: &[B]) -> Vec<Meta> {
        blocks
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let mut m = meta(i, x.min, x.max);
                m.stats = Stats {
                    num_series: x.series,
                    num_tombstones: x.tombstones,
                    ..Stats::default()
                };
                if x.stale {
                    m.compaction.hints.push(HINT_FROM_STALE_SERIES.into());
                }
                m
            })
            .collect()
    }

    /// Runs the planner and names the chosen blocks.
    fn plan_names(p: &Planner, blocks: &[B], failed: &[usize]) -> Vec<&'static str> {
        let mut ms = metas(blocks);
        for &i in failed {
            ms[i].compaction.failed = true;
        }
        p.plan(&ms)
            .into_iter()
            .map(|u| blocks[(u.timestamp_ms() - 1) as usize].name)
            .collect()
    }

    fn planner(ranges: &[i64]) -> Planner {
        Planner::new(ranges.to_vec()).unwrap()
    }

    #[test]
    fn test_split_by_range() {
        type Case = (i64, &'static [(i64, i64)], &'static [&'static [(i64, i64)]]);
        let cases: &[Case] = &[
            (60, &[(0, 10)], &[&[(0, 10)]]),
            (60, &[(0, 60)], &[&[(0, 60)]]),
            (
                60,
                &[(0, 10), (9, 15), (30, 60)],
                &[&[(0, 10), (9, 15), (30, 60)]],
            ),
            (
                60,
                &[(70, 90), (125, 130), (130, 180), (1000, 1001)],
                &[&[(70, 90)], &[(125, 130), (130, 180)], &[(1000, 1001)]],
            ),
            // Mis-aligned or too-large blocks are ignored.
            (60, &[(50, 70), (70, 80)], &[&[(70, 80)]]),
            (
                72,
                &[(0, 144), (144, 216), (216, 288)],
                &[&[(144, 216)], &[(216, 288)]],
            ),
            // Various awkward edge cases easy to hit with negative numbers.
            (60, &[(-10, -5)], &[&[(-10, -5)]]),
            (60, &[(-60, -50), (-10, -5)], &[&[(-60, -50), (-10, -5)]]),
            (
                60,
                &[(-60, -50), (-10, -5), (0, 15)],
                &[&[(-60, -50), (-10, -5)], &[(0, 15)]],
            ),
        ];
        for &(range, input, want) in cases {
            let ms: Vec<Meta> = input
                .iter()
                .enumerate()
                .map(|(i, &(a, z))| meta(i, a, z))
                .collect();
            let refs: Vec<&Meta> = ms.iter().collect();
            let got: Vec<Vec<(i64, i64)>> = split_by_range(&refs, range)
                .into_iter()
                .map(|g| g.iter().map(|m| (m.min_time, m.max_time)).collect())
                .collect();
            let want: Vec<Vec<(i64, i64)>> = want.iter().map(|g| g.to_vec()).collect();
            assert_eq!(got, want, "range {range}, blocks {input:?}");
        }
    }

    /// prometheus/prometheus#3064: a single range and blocks without stats.
    #[test]
    fn test_no_panic_for_0_tombstones() {
        let p = planner(&[50]);
        assert!(plan_names(&p, &[b("1", 0, 100), b("2", 101, 200)], &[]).is_empty());
    }

    /// The cases both `TestLeveledCompactor/plan` and `..._plan_overlapping_disabled` share,
    /// with the expected plan in each mode (`(with overlapping, without)`).
    #[allow(clippy::type_complexity)]
    fn leveled_compactor_cases() -> Vec<(&'static str, Vec<B>, Vec<&'static str>, Vec<&'static str>)>
    {
        let same =
            |n: &'static str, bs: Vec<B>, want: Vec<&'static str>| (n, bs, want.clone(), want);
        vec![
            same("Outside Range", vec![b("1", 0, 20)], vec![]),
            same(
                "We should wait for four blocks of size 20 to appear before compacting.",
                vec![b("1", 0, 20), b("2", 20, 40)],
                vec![],
            ),
            same(
                "We should wait for a next block of size 20 to appear before compacting the \
                 existing ones. We have three, but we ignore the fresh one from WAl",
                vec![b("1", 0, 20), b("2", 20, 40), b("3", 40, 60)],
                vec![],
            ),
            same(
                "Block to fill the entire parent range appeared – should be compacted",
                vec![
                    b("1", 0, 20),
                    b("2", 20, 40),
                    b("3", 40, 60),
                    b("4", 60, 80),
                ],
                vec!["1", "2", "3"],
            ),
            same(
                "Block for the next parent range appeared with gap with size 20. Nothing will \
                 happen in the first one anymore but we ignore fresh one still, so no compaction",
                vec![b("1", 0, 20), b("2", 20, 40), b("3", 60, 80)],
                vec![],
            ),
            same(
                "Block for the next parent range appeared, and we have a gap with size 20 \
                 between second and third block. We will not get this missed gap anymore and \
                 we should compact just these two.",
                vec![
                    b("1", 0, 20),
                    b("2", 20, 40),
                    b("3", 60, 80),
                    b("4", 80, 100),
                ],
                vec!["1", "2"],
            ),
            same(
                "We have 20, 20, 20, 60, 60 range blocks. '5' is marked as fresh one",
                vec![
                    b("1", 0, 20),
                    b("2", 20, 40),
                    b("3", 40, 60),
                    b("4", 60, 120),
                    b("5", 120, 180),
                ],
                vec!["1", "2", "3"],
            ),
            same(
                "We have 20, 60, 20, 60, 240 range blocks. We can compact 20 + 60 + 60",
                vec![
                    b("2", 20, 40),
                    b("4", 60, 120),
                    b("5", 960, 980), // Fresh one.
                    b("6", 120, 180),
                    b("7", 720, 960),
                ],
                vec!["2", "4", "6"],
            ),
            same(
                "Do not select large blocks that have many tombstones when there is no fresh block",
                vec![with_stats(b("1", 0, 540), 10, 3)],
                vec![],
            ),
            same(
                "Select large blocks that have many tombstones when fresh appears",
                vec![with_stats(b("1", 0, 540), 10, 3), b("2", 540, 560)],
                vec!["1"],
            ),
            same(
                "For small blocks, do not compact tombstones, even when fresh appears.",
                vec![with_stats(b("1", 0, 60), 10, 3), b("2", 60, 80)],
                vec![],
            ),
            same(
                "Regression test: we were stuck in a compact loop where we always recompacted \
                 the same block when tombstones and series counts were zero",
                vec![with_stats(b("1", 0, 540), 0, 0), b("2", 540, 560)],
                vec![],
            ),
            same(
                "Regression test: we were wrongly assuming that new block is fresh from WAL when \
                 its ULID is newest. We need to actually look on max time instead. With \
                 previous, wrong approach \"8\" block was ignored, so we were wrongly compacting \
                 5 and 7 and introducing block overlaps",
                vec![
                    b("5", 0, 360),
                    b("6", 540, 560), // Fresh one.
                    b("7", 360, 420),
                    b("8", 420, 540),
                ],
                vec!["7", "8"],
            ),
            // |--------------|
            //               |----------------|
            //                                |--------------|
            (
                "Overlapping blocks 1",
                vec![b("1", 0, 20), b("2", 19, 40), b("3", 40, 60)],
                vec!["1", "2"],
                vec![],
            ),
            // |--------------|
            //                |--------------|
            //                        |--------------|
            (
                "Overlapping blocks 2",
                vec![b("1", 0, 20), b("2", 20, 40), b("3", 30, 50)],
                vec!["2", "3"],
                vec![],
            ),
            // |--------------|
            //         |---------------------|
            //                       |--------------|
            (
                "Overlapping blocks 3",
                vec![b("1", 0, 20), b("2", 10, 40), b("3", 30, 50)],
                vec!["1", "2", "3"],
                vec![],
            ),
            // |--------------|
            //               |--------------------------------|
            //                |--------------|
            //                               |--------------|
            (
                "Overlapping blocks 4",
                vec![
                    b("5", 0, 360),
                    b("6", 340, 560),
                    b("7", 360, 420),
                    b("8", 420, 540),
                ],
                vec!["5", "6", "7", "8"],
                vec![],
            ),
            // |--------------|
            //               |--------------|
            //                                            |--------------|
            //                                                          |--------------|
            (
                "Overlapping blocks 5",
                vec![b("1", 0, 10), b("2", 9, 20), b("3", 30, 40), b("4", 39, 50)],
                vec!["1", "2"],
                vec![],
            ),
        ]
    }

    /// Mimics the default exponential ranges with a minimum block size of 20.
    const RANGES: [i64; 5] = [20, 60, 180, 540, 1620];

    #[test]
    fn test_leveled_compactor_plan() {
        let p = planner(&RANGES);
        for (title, blocks, want, _) in leveled_compactor_cases() {
            assert_eq!(plan_names(&p, &blocks, &[]), want, "{title}");
            // The plan does not depend on the order the blocks come in.
            let mut rev = blocks.clone();
            rev.reverse();
            assert_eq!(plan_names(&p, &rev, &[]), want, "{title} (reversed input)");
        }
    }

    #[test]
    fn test_leveled_compactor_plan_overlapping_disabled() {
        let p = planner(&RANGES).with_overlapping(false);
        for (title, blocks, _, want) in leveled_compactor_cases() {
            assert_eq!(plan_names(&p, &blocks, &[]), want, "{title}");
        }
    }

    #[test]
    fn test_range_with_failed_compaction_wont_get_selected() {
        let p = planner(&[20, 60, 240, 720, 2160]);
        let cases = [
            vec![
                b("1", 0, 20),
                b("2", 20, 40),
                b("3", 40, 60),
                b("4", 60, 80),
            ],
            vec![
                b("1", 0, 20),
                b("2", 20, 40),
                b("3", 60, 80),
                b("4", 80, 100),
            ],
            vec![
                b("1", 0, 20),
                b("2", 20, 40),
                b("3", 40, 60),
                b("4", 60, 120),
                b("5", 120, 180),
                b("6", 180, 200),
            ],
        ];
        for blocks in cases {
            assert!(
                !plan_names(&p, &blocks, &[]).is_empty(),
                "control case plans"
            );
            assert!(plan_names(&p, &blocks, &[1]).is_empty());
        }
    }

    #[test]
    fn test_plan_does_not_merge_stale_and_non_stale_blocks() {
        let p = planner(&[20, 60, 180]);
        // Two non-stale blocks and one stale block all fall into the same 60-wide range.
        let got = plan_names(
            &p,
            &[
                b("1", 0, 20),
                stale("stale", 0, 20),
                b("2", 20, 40),
                b("3", 40, 60),
                b("fresh", 60, 80),
            ],
            &[],
        );
        assert_eq!(
            got,
            ["1", "2", "3"],
            "stale and non-stale in the same range"
        );
        // Stale blocks are merged together.
        let got = plan_names(
            &p,
            &[
                stale("s1", 0, 20),
                stale("s2", 20, 40),
                stale("s3", 40, 60),
                stale("s4", 60, 80),
            ],
            &[],
        );
        assert_eq!(got, ["s1", "s2", "s3"], "stale blocks are merged together");
        // Stale blocks are planned when there is nothing to do for non-stale ones.
        let got = plan_names(
            &p,
            &[
                b("1", 0, 20),
                stale("s1", 0, 20),
                stale("s2", 20, 40),
                stale("s3", 40, 60),
                stale("s4", 60, 80),
            ],
            &[],
        );
        assert_eq!(
            got,
            ["s1", "s2", "s3"],
            "stale planned when non-stale has nothing"
        );
    }

    /// Not in Prometheus's tables: the "small block entirely deleted" rule, the walk from
    /// the newest block, and where it stops.
    #[test]
    fn tombstone_rules() {
        let p = planner(&RANGES);
        // ranges[len/2] = 180 is "big enough". A 60-wide block with as many tombstones as
        // series is rewritten alone.
        let got = plan_names(
            &p,
            &[with_stats(b("1", 0, 60), 10, 10), b("2", 60, 80)],
            &[],
        );
        assert_eq!(got, ["1"]);
        let got = plan_names(&p, &[with_stats(b("1", 0, 60), 10, 9), b("2", 60, 80)], &[]);
        assert!(got.is_empty());
        // Exactly 5 % of (series + 1) is not enough; just above is.
        let got = plan_names(
            &p,
            &[with_stats(b("1", 0, 540), 19, 1), b("2", 540, 560)],
            &[],
        );
        assert!(got.is_empty());
        let got = plan_names(
            &p,
            &[with_stats(b("1", 0, 540), 18, 1), b("2", 540, 560)],
            &[],
        );
        assert_eq!(got, ["1"]);
        // Newest first: of two big blocks with tombstones the newer one is chosen.
        let got = plan_names(
            &p,
            &[
                with_stats(b("old", 0, 540), 10, 5),
                with_stats(b("new", 540, 1080), 10, 5),
                b("fresh", 1080, 1100),
            ],
            &[],
        );
        assert_eq!(got, ["new"]);
        // The walk stops at the first small block, so an older big block is not reached.
        let got = plan_names(
            &p,
            &[
                with_stats(b("old", 0, 540), 10, 5),
                with_stats(b("small", 540, 560), 10, 1),
                b("fresh", 560, 580),
            ],
            &[],
        );
        assert!(got.is_empty());
        // Range compaction wins over tombstones.
        let got = plan_names(
            &p,
            &[
                with_stats(b("1", 0, 20), 10, 10),
                b("2", 20, 40),
                b("3", 40, 60),
                b("4", 60, 80),
            ],
            &[],
        );
        assert_eq!(got, ["1", "2", "3"]);
    }

    #[test]
    fn ranges_helpers() {
        const H2: i64 = 2 * 3600 * 1000;
        assert_eq!(exponential_ranges(20, 5, 3), RANGES);
        let r = exponential_ranges(H2, 10, 3);
        assert_eq!(r.len(), 10);
        assert_eq!(r[9], H2 * 19683);
        // Prometheus's server default: max block duration 31 d (or retention / 10).
        let t = truncate_ranges(&r, 31 * 24 * 3600 * 1000);
        assert_eq!(t, [H2, 3 * H2, 9 * H2, 27 * H2, 81 * H2, 243 * H2]);
        assert_eq!(truncate_ranges(&r, 3 * H2), [H2, 3 * H2]);
        assert!(truncate_ranges(&r, H2 - 1).is_empty());
        assert_eq!(exponential_ranges(i64::MAX / 2, 3, 3)[2], i64::MAX);
        assert!(Planner::new(vec![]).is_err());
        assert!(Planner::new(vec![20, 0]).is_err());
    }
}
