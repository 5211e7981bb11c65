//! Compaction (brief §2.7): merging blocks into bigger ones, and rewriting blocks without
//! their deleted data.
//!
//! Two halves, kept apart as in Prometheus:
//!
//! * **Planning** ([`Planner`]) is a pure function of the blocks' `meta.json`s: given the
//!   block ranges (`exponential_ranges(2h, 10, 3)` cut at the maximum block duration) it
//!   names the blocks to merge next — the first group of overlapping blocks, else the first
//!   aligned group that fills a range or lies before the newest block, else one block with
//!   enough tombstones. It reads no file, so it is tested with Prometheus's own tables.
//! * **Execution** ([`compact_blocks`], [`clean_tombstones`]; `write` for any source of the
//!   read interface, which is how the head's oldest range becomes a block) writes one new
//!   block: series merged by label set, chunks copied verbatim unless they overlap another
//!   chunk of their series or a deleted interval cuts them, in which case they are decoded,
//!   merged and re-encoded into chunks of at most 120 samples ([`crate::reader::chunks`]).
//!
//! # Invariants
//!
//! * **A block directory appears only complete.** The new block is written into
//!   `<ULID>.tmp-for-creation/`, every file and the directory are fsynced, then it is renamed
//!   to `<ULID>/` and the parent directory is fsynced. A failed compaction removes its
//!   temporary directory; one interrupted by a crash leaves it for
//!   [`remove_tmp_dirs`](crate::block::remove_tmp_dirs) at the next open. No `<ULID>/`
//!   appears in either case.
//! * **Parents are deleted only after the new block is durable.** Execution never modifies
//!   or deletes its inputs. The caller deletes them once `compact_blocks` has returned (the
//!   rename and the parent fsync are done by then); if it crashes in between, the next open
//!   deletes every block named in another block's `compaction.parents` (brief §1.3), so data
//!   is never lost and never doubled for long.
//! * **An empty result writes nothing.** When no sample survives, no directory is left and
//!   `None` is returned; the caller marks the inputs deletable ([`mark_deletable`]).
//!
//! # Duplicate samples
//!
//! When merged blocks hold the same series at the same timestamp, one sample is kept:
//! identical bits are simply one sample; different values keep the **greatest value in IEEE
//! 754 total order** (`f64::total_cmp`: `-NaN < -Inf < … < -0 < +0 < … < +Inf < +NaN`, so a
//! stale marker, a positive NaN, wins over a number). Prometheus keeps whichever sample its
//! iterator heap yields first, which depends on how chunks happen to line up. A rule on the
//! values instead makes merging commutative and associative: the result does not depend on
//! the order of the inputs nor on which blocks were grouped in earlier compactions, and a
//! query merging blocks at read time can apply the same rule and agree with compaction.
//! The head never creates such duplicates (it rejects a different value for an existing
//! timestamp); they come from overlapping blocks (backfill, out-of-order blocks).

mod merge;
mod plan;

pub(crate) use merge::write;
pub use merge::{
    clean_tombstones, compact_blocks, mark_compaction_failed, mark_deletable, CompactOptions,
};
pub use plan::{exponential_ranges, truncate_ranges, Planner};

#[cfg(test)]
mod tests;
