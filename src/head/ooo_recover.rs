//! Late samples of a commit cut short by a crash (issue 15): a commit logs all its samples,
//! in order and late, in one WAL record, applies them, and only then logs its late samples
//! in the WBL (`head/ooo_append.rs`, as Prometheus 2.42 does). A process that dies between
//! the two leaves a WAL record whose in-order samples the replay restores and whose late ones
//! it drops (the replay takes late samples from the WBL alone): half a commit.
//!
//! So the replay keeps the float samples it drops at or after the floor (the end of the
//! blocks: no block holds a sample there, as out-of-order compaction takes only chunks that
//! end before it), and the open offers those older than their series' newest sample to a
//! commit again ([`Db::open`](crate::Db::open)): one the head holds already (from the WBL or
//! a chunk file) is accepted without being stored again; a missing one is inserted and logged
//! in the WBL like any late sample. Late samples before the floor are not recovered this way
//! (they may be in blocks, and deleted from them since).

use super::Head;
use crate::model::Labels;
use crate::wal::RefSample;

impl Head {
    /// Keeps the samples the WAL replay dropped at or after the floor (series refs resolved).
    pub(super) fn keep_wal_late(&self, late: Vec<RefSample>) {
        *self.wal_late.lock() = late;
    }

    /// Takes the samples kept by [`keep_wal_late`](Self::keep_wal_late) that may be late
    /// samples missing from the out-of-order data, with their series' labels: inside the
    /// out-of-order window, at or after the floor, and older than their series' newest
    /// sample.
    pub(crate) fn take_wal_late(&self) -> Vec<(Labels, i64, f64)> {
        let late = std::mem::take(&mut *self.wal_late.lock());
        let floor = self.ooo_min_time().max(self.min_valid_time());
        late.into_iter()
            .filter(|s| s.t >= floor)
            .filter_map(|s| {
                let series = self.table.get(s.series_ref)?;
                let newest = series.last_committed()?.0;
                (s.t < newest).then(|| (series.labels.clone(), s.t, s.v))
            })
            .collect()
    }
}
