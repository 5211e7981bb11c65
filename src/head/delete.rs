//! Deletion in the head (brief §2.5): tombstones, logged to the WAL before they apply.

use super::locks::ApplyWrite;
use super::{CommitLog, Head};
use crate::error::Result;
use crate::model::Matcher;
use crate::reader::postings_for_matchers;
use crate::tombstones::Interval;
use crate::wal::{self, Stone};

impl Head {
    /// Deletes the samples in `[mint, maxt]` of the series `matchers` select: each series gets
    /// the interval clamped to its data (none if it has no data there, as in Prometheus),
    /// logged to `log` first as one Tombstones record. Returns the log position to sync to,
    /// if anything was logged. Queries skip the samples from then on; compaction drops them.
    pub(crate) fn delete(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        log: Option<&dyn CommitLog>,
    ) -> Result<Option<u64>> {
        let refs = postings_for_matchers(&self.range(mint, maxt), matchers)?;
        // WAL order must be apply order, as for commits.
        let _order = self.locks.wal_order();
        let apply = self.locks.apply_write();
        let mut stones = Vec::new();
        for r in refs {
            let Some(s) = self.table.get(r) else { continue };
            let data = s.data(&apply);
            let in_order = data.min_time().zip(data.max_time());
            let late = data.ooo.as_ref().and_then(|o| o.time_range());
            let (lo, hi) = match (in_order, late) {
                (Some(a), Some(b)) => (a.0.min(b.0), a.1.max(b.1)),
                (Some(r), None) | (None, Some(r)) => r,
                (None, None) => continue,
            };
            let (a, b) = (mint.max(lo), maxt.min(hi));
            if a <= b {
                stones.push(Stone {
                    series_ref: s.series_ref,
                    interval: Interval::new(a, b),
                });
            }
        }
        if stones.is_empty() {
            return Ok(None);
        }
        let mut logged_to = None;
        if let Some(log) = log {
            let mut rec = Vec::new();
            wal::encode_tombstones(&stones, &mut rec);
            logged_to = Some(log.log(&[&rec])?);
        }
        self.add_tombstones(&apply, &stones);
        Ok(logged_to)
    }

    /// Adds deleted intervals to the series that exist (the WAL may name series that no
    /// longer do); returns how many were added. Under `_apply`, so readers see a deletion
    /// wholly or not at all.
    pub(super) fn add_tombstones(&self, _apply: &ApplyWrite<'_>, stones: &[Stone]) -> u64 {
        let mut t = self.tombstones.write();
        let mut added = 0;
        for st in stones {
            if self.table.get(st.series_ref).is_some() {
                t.add_interval(st.series_ref, st.interval);
                added += 1;
            }
        }
        added
    }
}
