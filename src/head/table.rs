//! The head's series table: series by reference (an array indexed by ref, no hashing) and by
//! label set (a striped hash map keyed by the labels' stable hash).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::series::MemSeries;
use crate::error::{Error, Result};
use crate::model::Labels;

const SEGMENT_BITS: u32 = 14;
const SEGMENT_LEN: usize = 1 << SEGMENT_BITS;
const SEGMENTS: usize = 1 << 16;
/// Largest series reference the table can hold (2^30 - 1).
pub(crate) const MAX_REF: u64 = (SEGMENTS * SEGMENT_LEN) as u64 - 1;
const STRIPES: usize = 1024;

type Slot = RwLock<Option<Arc<MemSeries>>>;

/// Keys are already hashes; hashing them again would be wasted work.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type ByHash = HashMap<u64, Vec<Arc<MemSeries>>, BuildHasherDefault<IdentityHasher>>;

pub(crate) struct SeriesTable {
    /// `segments[ref >> SEGMENT_BITS][ref & (SEGMENT_LEN - 1)]`, allocated on first use.
    segments: Box<[OnceLock<Box<[Slot]>>]>,
    stripes: Box<[RwLock<ByHash>]>,
}

impl SeriesTable {
    pub(crate) fn new() -> Self {
        SeriesTable {
            segments: (0..SEGMENTS).map(|_| OnceLock::new()).collect(),
            stripes: (0..STRIPES)
                .map(|_| RwLock::new(ByHash::default()))
                .collect(),
        }
    }

    fn slot(&self, series_ref: u64) -> Option<&Slot> {
        if series_ref > MAX_REF {
            return None;
        }
        let seg = self.segments[(series_ref >> SEGMENT_BITS) as usize].get()?;
        Some(&seg[(series_ref as usize) & (SEGMENT_LEN - 1)])
    }

    /// The series with this reference.
    #[inline]
    pub(crate) fn get(&self, series_ref: u64) -> Option<Arc<MemSeries>> {
        self.slot(series_ref)?.read().clone()
    }

    /// The series with these labels.
    pub(crate) fn get_by_labels(&self, hash: u64, labels: &Labels) -> Option<Arc<MemSeries>> {
        let stripe = self.stripes[(hash as usize) % STRIPES].read();
        stripe
            .get(&hash)?
            .iter()
            .find(|s| &s.labels == labels)
            .cloned()
    }

    /// Returns the series with `labels`, creating it with a reference from `new_ref` if absent.
    /// The bool is true when the series was created.
    pub(crate) fn get_or_create(
        &self,
        hash: u64,
        labels: &Labels,
        new_ref: impl FnOnce() -> u64,
    ) -> Result<(Arc<MemSeries>, bool)> {
        if let Some(s) = self.get_by_labels(hash, labels) {
            return Ok((s, false));
        }
        let mut stripe = self.stripes[(hash as usize) % STRIPES].write();
        let entry = stripe.entry(hash).or_default();
        if let Some(s) = entry.iter().find(|s| &s.labels == labels) {
            return Ok((s.clone(), false));
        }
        let series_ref = new_ref();
        let series = Arc::new(MemSeries::new(series_ref, labels.clone()));
        self.set(series_ref, series.clone())?;
        entry.push(series.clone());
        Ok((series, true))
    }

    fn set(&self, series_ref: u64, series: Arc<MemSeries>) -> Result<()> {
        if series_ref > MAX_REF {
            return Err(Error::limit(
                crate::error::Limit::SeriesRefs,
                format!("series reference {series_ref} exceeds the maximum {MAX_REF}"),
            ));
        }
        let seg = self.segments[(series_ref >> SEGMENT_BITS) as usize]
            .get_or_init(|| (0..SEGMENT_LEN).map(|_| RwLock::new(None)).collect());
        *seg[(series_ref as usize) & (SEGMENT_LEN - 1)].write() = Some(series);
        Ok(())
    }
}

impl SeriesTable {
    /// Removes `series` from both maps unless someone else holds it (an appender with pending
    /// samples, a query collecting it). Checked under the stripe and slot write locks, which
    /// every lookup takes for reading, so no lookup can hand it out meanwhile. Returns whether
    /// it was removed.
    pub(crate) fn remove_if_unused(&self, series: &Arc<MemSeries>) -> bool {
        let hash = series.labels.stable_hash();
        let mut stripe = self.stripes[(hash as usize) % STRIPES].write();
        let Some(slot) = self.slot(series.series_ref) else {
            return false;
        };
        let mut slot = slot.write();
        // The table slot, the stripe entry and the caller's handle.
        if Arc::strong_count(series) > 3 {
            return false;
        }
        *slot = None;
        if let Some(v) = stripe.get_mut(&hash) {
            v.retain(|s| s.series_ref != series.series_ref);
            if v.is_empty() {
                stripe.remove(&hash);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_ref_and_labels() {
        let t = SeriesTable::new();
        let a = Labels::new([("a", "1")]).unwrap();
        let (s, created) = t.get_or_create(a.stable_hash(), &a, || 7).unwrap();
        assert!(created);
        assert_eq!(s.series_ref, 7);
        let (again, created) = t.get_or_create(a.stable_hash(), &a, || 8).unwrap();
        assert!(!created);
        assert_eq!(again.series_ref, 7);
        assert_eq!(t.get(7).unwrap().labels, a);
        assert!(t.get(8).is_none());
        assert!(t.get(MAX_REF + 1).is_none());
    }

    #[test]
    fn series_in_use_are_not_removed() {
        let t = SeriesTable::new();
        let a = Labels::new([("a", "1")]).unwrap();
        let (s, _) = t.get_or_create(a.stable_hash(), &a, || 1).unwrap();
        let held = t.get(1).unwrap();
        assert!(!t.remove_if_unused(&s), "an appender holds it");
        drop(held);
        assert!(t.remove_if_unused(&s));
        assert!(t.get(1).is_none());
        assert!(t.get_by_labels(a.stable_hash(), &a).is_none());
    }

    #[test]
    fn colliding_hashes_keep_both_series() {
        let t = SeriesTable::new();
        let a = Labels::new([("a", "1")]).unwrap();
        let b = Labels::new([("b", "1")]).unwrap();
        t.get_or_create(42, &a, || 1).unwrap();
        t.get_or_create(42, &b, || 2).unwrap();
        assert_eq!(t.get_by_labels(42, &a).unwrap().series_ref, 1);
        assert_eq!(t.get_by_labels(42, &b).unwrap().series_ref, 2);
    }

    #[test]
    fn refs_past_the_limit_are_refused() {
        let t = SeriesTable::new();
        let a = Labels::new([("a", "1")]).unwrap();
        let err = t
            .get_or_create(a.stable_hash(), &a, || MAX_REF + 1)
            .err()
            .unwrap();
        assert!(matches!(err, Error::LimitExceeded { .. }));
    }
}
