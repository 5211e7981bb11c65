//! The head's two locks and the guards that prove one is held.
//!
//! * `apply` (a read/write lock) separates commits from readers: a commit applies its samples
//!   under the write side without locking each series; everything else that reads or changes
//!   a series' chunks holds either side. So every access to a series' chunks takes a guard of
//!   this lock as an argument ([`MemSeries::data`](super::series::MemSeries::data),
//!   [`MemSeries::data_mut`](super::series::MemSeries::data_mut)), and the borrow checker,
//!   not a comment, enforces the rule.
//! * `wal_order` (a mutex) orders WAL writes like applies: whoever logs to the WAL and then
//!   changes the head (a commit, a deletion) holds it from before logging until it holds
//!   `apply` for writing ([`Locks::couple`]), so one commit's WAL write overlaps the previous
//!   one's apply while WAL order stays apply order. Series are removed only with both held.
//!
//! Lock order: `wal_order`, then `apply`. The guards never leave the `head` module.

use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Default)]
pub(super) struct Locks {
    wal_order: Mutex<()>,
    apply: RwLock<()>,
}

/// `apply` held for reading: no commit applies samples while it lives.
pub(super) struct ApplyRead<'a> {
    _held: RwLockReadGuard<'a, ()>,
}

/// `apply` held for writing: no reader and no other commit runs while it lives.
pub(super) struct ApplyWrite<'a> {
    _held: RwLockWriteGuard<'a, ()>,
}

/// `wal_order` held: no other commit, deletion or truncation logs or removes series.
pub(super) struct WalOrder<'a> {
    _held: MutexGuard<'a, ()>,
}

/// A guard under which no commit applies: `apply` held for reading or writing. Readers of a
/// series' chunks need one.
pub(super) trait NoCommitApplies {}

impl NoCommitApplies for ApplyRead<'_> {}
impl NoCommitApplies for ApplyWrite<'_> {}

impl Locks {
    pub(super) fn apply_read(&self) -> ApplyRead<'_> {
        ApplyRead {
            _held: self.apply.read(),
        }
    }

    pub(super) fn apply_write(&self) -> ApplyWrite<'_> {
        ApplyWrite {
            _held: self.apply.write(),
        }
    }

    pub(super) fn wal_order(&self) -> WalOrder<'_> {
        WalOrder {
            _held: self.wal_order.lock(),
        }
    }

    /// Lock coupling: takes `apply` for writing, then lets go of `order`, so the next commit
    /// can write its WAL bytes while this one applies.
    pub(super) fn couple<'a>(&'a self, order: WalOrder<'a>) -> ApplyWrite<'a> {
        let apply = self.apply_write();
        drop(order);
        apply
    }
}
