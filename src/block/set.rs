//! The block list of a database: blocks are published, replaced and dropped by swapping the
//! whole (copy-on-write) list, so a reader takes the current list with one reference count
//! and never sees half a change.

use std::sync::Arc;

use parking_lot::RwLock;

use super::Block;

/// The current blocks, sorted by `(min time, ULID)`.
pub(crate) struct BlockSet {
    list: RwLock<Arc<Vec<Arc<Block>>>>,
}

impl BlockSet {
    pub(crate) fn new(blocks: Vec<Arc<Block>>) -> Self {
        let set = BlockSet {
            list: RwLock::new(Arc::new(Vec::new())),
        };
        set.replace(&[], blocks);
        set
    }

    /// The blocks now; later changes do not affect the list returned.
    pub(crate) fn current(&self) -> Arc<Vec<Arc<Block>>> {
        self.list.read().clone()
    }

    /// Adds a new block (one cut from the head).
    pub(crate) fn publish(&self, block: Arc<Block>) {
        self.replace(&[], [block]);
    }

    /// Removes the blocks with the ULIDs of `old` and adds `new`, in one step.
    pub(crate) fn replace(&self, old: &[Arc<Block>], new: impl IntoIterator<Item = Arc<Block>>) {
        let mut list = self.list.write();
        let mut v: Vec<Arc<Block>> = list
            .iter()
            .filter(|b| !old.iter().any(|o| o.ulid() == b.ulid()))
            .cloned()
            .collect();
        v.extend(new);
        v.sort_by_key(|b| (b.min_time(), b.ulid()));
        *list = Arc::new(v);
    }
}
