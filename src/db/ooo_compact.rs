//! Out-of-order compaction (Prometheus 2.42 `DB.compactOOOHead`, `compactOOO`): after head
//! compaction wrote a block, the head's out-of-order data before the end of the in-order
//! blocks is written as level-1 blocks, one per aligned block range it touches (hint
//! `from-out-of-order`). They may overlap blocks of in-order data; the planner then merges
//! overlapping blocks (vertical compaction). Last, the WBL segments before the one started
//! here are deleted and the compacted chunks released (the others are m-mapped and fsynced
//! first, so the WBL is not needed for them).

use super::compact::{open_new_block, CompactionStats};
use super::DbInner;
use crate::block::{self, BlockOptions};
use crate::compact;
use crate::error::Result;
use crate::wal;

/// The hint Prometheus writes into the `meta.json` of blocks of out-of-order data.
const OUT_OF_ORDER_HINT: &str = "from-out-of-order";

/// Whether `meta` is a block of out-of-order data not merged with in-order data since.
pub(super) fn is_out_of_order(meta: &block::Meta) -> bool {
    meta.compaction.hints.iter().any(|h| h == OUT_OF_ORDER_HINT)
}

impl DbInner {
    /// Writes the head's out-of-order data into blocks and releases it (see the module).
    pub(super) fn compact_ooo_head(&self, stats: &mut CompactionStats) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let head = &self.head;
        // Samples logged from here on are in this segment or later: the WBL before it holds
        // only what the chunks taken below hold.
        let wbl_from = match head.wbl() {
            Some(w) if head.ooo_time_range().is_some() => Some(w.cut_segment()?),
            _ => None,
        };
        let Some(taken) = head.ooo_compaction_start(head.persisted_floor())? else {
            return Ok(());
        };
        let Some((min, max)) = taken.range else {
            return Ok(());
        };
        let range = self.opts.block_range_ms;
        let mut blocks = Vec::new();
        let mut t = min.div_euclid(range).saturating_mul(range);
        let written = loop {
            let end = t.saturating_add(range);
            let opts = BlockOptions {
                time_range: Some((t, end)),
                hints: vec![OUT_OF_ORDER_HINT.into()],
                ..BlockOptions::default()
            };
            let last = block::meta::last_time(end);
            let reader = head.ooo_range(&taken, t, last);
            match compact::write(dir, &[&reader], opts).and_then(|u| match u {
                Some(ulid) => open_new_block(dir, ulid).map(Some),
                None => Ok(None),
            }) {
                Ok(b) => blocks.extend(b),
                Err(e) => break Err(e),
            }
            if end > max || end == i64::MAX {
                break Ok(());
            }
            t = end;
        };
        if let Err(e) = written {
            // The chunks stay in the head: blocks already written for them must not come
            // back at the next open beside them (deleted samples would return).
            for b in blocks {
                let path = b.dir().to_path_buf();
                drop(b);
                if let Err(d) = block::delete_block_dir(&path) {
                    tracing::error!(block = %path.display(), error = %d, "could not delete an unpublished out-of-order block");
                }
            }
            return Err(e);
        }
        let (through, all_on_disk) = (taken.compacted_through, taken.all_on_disk);
        let removed = head.ooo_compaction_finish(taken, || {
            for b in &blocks {
                self.blocks.publish(b.clone());
            }
        });
        stats.series_removed += removed;
        for b in &blocks {
            tracing::info!(block = %b.ulid(), "persisted an out-of-order head block");
            stats.head_blocks.push(b.ulid().into());
        }
        // Durable blocks first, then the marker that stops the next open from loading the
        // compacted chunks again, then the WBL they were logged in.
        crate::head::write_ooo_compacted_through(dir, through)?;
        if let (Some(w), Some(from), true) = (head.wbl(), wbl_from, all_on_disk) {
            wal::delete_segments_before(w.dir(), from)?;
        }
        Ok(())
    }
}
