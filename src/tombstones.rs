//! Tombstones (brief §1.8): deleted time ranges per series, as the head keeps them, the WAL
//! logs them (tombstones records, §1.10), memory snapshots carry them (§1.13) and blocks store
//! them (`<block>/tombstones`).
//!
//! Intervals are closed `[min_time, max_time]`; per series they are kept sorted, with
//! overlapping and adjacent intervals merged. The file is written in series-ref order (Prometheus
//! writes map order), so ours is byte-reproducible; the CRC excludes the version byte.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::encoding::{crc32c, put_uvarint, put_varint, Decbuf};
use crate::error::{Error, Result};
use crate::fs::write_atomic;

/// First four bytes of a tombstones file.
pub const MAGIC: u32 = 0x0130_BA30;
/// Tombstones format version.
pub const FORMAT_V1: u8 = 1;
/// File name inside a block directory.
pub const FILE_NAME: &str = "tombstones";
/// Size of a tombstones file without entries: magic, version, CRC.
pub const EMPTY_FILE_LEN: usize = 9;

/// A closed time interval `[min_time, max_time]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    /// First deleted timestamp (ms).
    pub min_time: i64,
    /// Last deleted timestamp (ms), inclusive.
    pub max_time: i64,
}

impl Interval {
    /// The interval `[min_time, max_time]`.
    pub fn new(min_time: i64, max_time: i64) -> Interval {
        Interval { min_time, max_time }
    }

    /// Whether `t` lies in the interval.
    pub fn contains(&self, t: i64) -> bool {
        self.min_time <= t && t <= self.max_time
    }
}

/// Sorted, disjoint, non-adjacent intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<Interval>);

impl Intervals {
    /// No intervals.
    pub fn new() -> Intervals {
        Intervals(Vec::new())
    }

    /// Adds `iv`, merging it with every interval it overlaps or touches (intervals are over
    /// integer timestamps, so `[1, 2]` and `[3, 4]` merge into `[1, 4]`). An empty interval
    /// (`min_time > max_time`) deletes nothing and is ignored.
    pub fn add(&mut self, iv: Interval) {
        if iv.min_time > iv.max_time {
            return;
        }
        let v = &mut self.0;
        // First interval that ends at or after iv.min_time - 1.
        let lo = v.partition_point(|x| x.max_time < iv.min_time.saturating_sub(1));
        // Intervals from `lo` that start at or before iv.max_time + 1 merge with iv.
        let n = v[lo..].partition_point(|x| x.min_time <= iv.max_time.saturating_add(1));
        if n == 0 {
            v.insert(lo, iv);
            return;
        }
        let merged = Interval {
            min_time: iv.min_time.min(v[lo].min_time),
            max_time: iv.max_time.max(v[lo + n - 1].max_time),
        };
        v.splice(lo..lo + n, [merged]);
    }

    /// Whether `t` is deleted.
    pub fn contains(&self, t: i64) -> bool {
        let i = self.0.partition_point(|x| x.max_time < t);
        self.0.get(i).is_some_and(|x| x.min_time <= t)
    }

    /// The intervals, sorted.
    pub fn as_slice(&self) -> &[Interval] {
        &self.0
    }

    /// Number of intervals.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no intervals.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Interval> for Intervals {
    fn from_iter<I: IntoIterator<Item = Interval>>(it: I) -> Intervals {
        let mut v = Intervals::new();
        for iv in it {
            v.add(iv);
        }
        v
    }
}

/// Deleted intervals keyed by series ref (of one block, or of the head). Each series'
/// intervals are shared, so readers take them without copying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    series: BTreeMap<u64, Arc<Intervals>>,
}

impl Tombstones {
    /// No tombstones.
    pub fn new() -> Tombstones {
        Tombstones::default()
    }

    /// Marks `iv` deleted for series `series_ref`.
    pub fn add_interval(&mut self, series_ref: u64, iv: Interval) {
        if iv.min_time > iv.max_time {
            return;
        }
        Arc::make_mut(self.series.entry(series_ref).or_default()).add(iv);
    }

    /// Deleted intervals of `series_ref`, if any.
    pub fn get(&self, series_ref: u64) -> Option<&Intervals> {
        self.series.get(&series_ref).map(|iv| &**iv)
    }

    /// Deleted intervals of `series_ref`, if any, shared.
    pub(crate) fn get_shared(&self, series_ref: u64) -> Option<Arc<Intervals>> {
        self.series.get(&series_ref).cloned()
    }

    /// Forgets the intervals of `series_ref` (a series the head removed).
    pub(crate) fn remove(&mut self, series_ref: u64) {
        self.series.remove(&series_ref);
    }

    /// Every series with tombstones and its intervals, by series ref.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Intervals)> + '_ {
        self.series.iter().map(|(r, iv)| (*r, &**iv))
    }

    /// Total number of intervals (`meta.json` `stats.numTombstones`).
    pub fn total(&self) -> u64 {
        self.series.values().map(|iv| iv.len() as u64).sum()
    }

    /// Whether nothing is deleted.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The file bytes: magic, version, entries, CRC of the entries.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(EMPTY_FILE_LEN + 12 * self.total() as usize);
        b.extend_from_slice(&MAGIC.to_be_bytes());
        self.encode_body(&mut b);
        let crc = crc32c(&b[5..]);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }

    /// Appends the version byte and the entries: the file without magic and CRC, which a
    /// memory snapshot's tombstones record holds (§1.13).
    pub(crate) fn encode_body(&self, b: &mut Vec<u8>) {
        b.push(FORMAT_V1);
        for (r, ivs) in &self.series {
            for iv in ivs.as_slice() {
                put_uvarint(b, *r);
                put_varint(b, iv.min_time);
                put_varint(b, iv.max_time);
            }
        }
    }

    /// Parses tombstones file bytes; `file` names the file in errors.
    pub fn decode(b: &[u8], file: &Path) -> Result<Tombstones> {
        if b.len() < EMPTY_FILE_LEN {
            return Err(Error::corruption(
                file,
                0,
                format!("tombstones file of {} bytes is shorter than 9", b.len()),
            ));
        }
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if magic != MAGIC {
            return Err(Error::corruption(
                file,
                0,
                format!("invalid tombstones magic {magic:#010x}"),
            ));
        }
        let crc_at = b.len() - 4;
        let want = u32::from_be_bytes([b[crc_at], b[crc_at + 1], b[crc_at + 2], b[crc_at + 3]]);
        // The version byte is not covered (§1.8).
        if crc32c(&b[5..crc_at]) != want {
            return Err(Error::corruption(
                file,
                crc_at as u64,
                "tombstones CRC mismatch",
            ));
        }
        Tombstones::decode_body(&b[4..crc_at], file, 4)
    }

    /// Parses what [`encode_body`](Self::encode_body) writes; errors name `file` at offsets
    /// counted from `base`, where the body starts in it.
    pub(crate) fn decode_body(b: &[u8], file: &Path, base: u64) -> Result<Tombstones> {
        match b.first() {
            Some(&FORMAT_V1) => {}
            Some(v) => {
                return Err(Error::corruption(
                    file,
                    base,
                    format!("invalid tombstones format version {v}"),
                ))
            }
            None => return Err(Error::corruption(file, base, "no tombstones version byte")),
        }
        let mut t = Tombstones::new();
        let mut d = Decbuf::new(&b[1..]);
        while !d.is_empty() {
            let at = base + 1 + d.position() as u64;
            let entry = (|| {
                Ok::<_, crate::encoding::DecodeError>((d.uvarint()?, d.varint()?, d.varint()?))
            })();
            let (r, min_time, max_time) = entry.map_err(|e| {
                Error::corruption(file, at, format!("tombstone entry: {}", e.reason))
            })?;
            t.add_interval(r, Interval { min_time, max_time });
        }
        Ok(t)
    }

    /// Reads `<dir>/tombstones`; a missing file means no tombstones (§1.8).
    pub fn read(dir: impl AsRef<Path>) -> Result<Tombstones> {
        let path = dir.as_ref().join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(b) => Tombstones::decode(&b, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::new()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Writes `<dir>/tombstones` via `tombstones.tmp`, fsync and rename. Returns its size.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<u64> {
        let b = self.encode();
        write_atomic(&dir.as_ref().join(FILE_NAME), &b)?;
        Ok(b.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn iv(a: i64, b: i64) -> Interval {
        Interval::new(a, b)
    }

    #[test]
    fn empty_file_is_nine_bytes_like_prometheus() {
        let b = Tombstones::new().encode();
        assert_eq!(b, [0x01, 0x30, 0xBA, 0x30, 0x01, 0x00, 0x00, 0x00, 0x00]);
        let fixture = crate::testutil::fixture("promtool-2.42-block/tombstones");
        assert_eq!(std::fs::read(&fixture).unwrap(), b);
        assert!(Tombstones::read(fixture.parent().unwrap())
            .unwrap()
            .is_empty());
    }

    /// Prometheus `TestWriteAndReadbackTombstones`.
    #[test]
    fn write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tombstones::new();
        for r in [1u64, 7, 300, 1 << 40] {
            t.add_interval(r, iv(-5, 10));
            t.add_interval(r, iv(20 + r as i64, 30 + r as i64));
        }
        t.add_interval(2, iv(i64::MIN, i64::MAX));
        let size = t.write(dir.path()).unwrap();
        assert!(!dir.path().join("tombstones.tmp").exists());
        assert_eq!(
            std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len(),
            size
        );
        let back = Tombstones::read(dir.path()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.total(), 9);
        assert!(back.get(2).unwrap().contains(0));
        assert!(back.get(1).unwrap().contains(10));
        assert!(!back.get(1).unwrap().contains(11));
        assert!(back.get(3).is_none());
        // Missing file: no tombstones.
        let empty = tempfile::tempdir().unwrap();
        assert!(Tombstones::read(empty.path()).unwrap().is_empty());
    }

    /// Prometheus `TestAddingNewIntervals`.
    #[test]
    fn adding_intervals_merges_overlapping_and_adjacent() {
        let cases: &[(&[Interval], Interval, &[Interval])] = &[
            (&[], iv(1, 2), &[iv(1, 2)]),
            (&[iv(1, 2)], iv(1, 2), &[iv(1, 2)]),
            (&[iv(1, 4), iv(6, 6)], iv(5, 6), &[iv(1, 6)]),
            (
                &[iv(1, 10), iv(12, 20), iv(25, 30)],
                iv(21, 25),
                &[iv(1, 10), iv(12, 30)],
            ),
            (
                &[iv(1, 10), iv(12, 20), iv(25, 30)],
                iv(22, 23),
                &[iv(1, 10), iv(12, 20), iv(22, 23), iv(25, 30)],
            ),
            (
                &[iv(1, 2), iv(3, 5), iv(7, 7)],
                iv(6, 7),
                &[iv(1, 2), iv(3, 7)],
            ),
            (
                &[iv(1, 10), iv(12, 20), iv(25, 30)],
                iv(18, 23),
                &[iv(1, 10), iv(12, 23), iv(25, 30)],
            ),
            (
                &[iv(1, 10), iv(12, 20), iv(25, 30)],
                iv(9, 23),
                &[iv(1, 23), iv(25, 30)],
            ),
            (
                &[iv(1, 10), iv(12, 20), iv(25, 30)],
                iv(9, 230),
                &[iv(1, 230)],
            ),
            (
                &[iv(5, 10), iv(12, 20), iv(25, 30)],
                iv(1, 4),
                &[iv(1, 10), iv(12, 20), iv(25, 30)],
            ),
            (
                &[iv(5, 10), iv(12, 20), iv(25, 30)],
                iv(11, 14),
                &[iv(5, 20), iv(25, 30)],
            ),
            (
                &[iv(5, 10), iv(12, 20), iv(25, 30)],
                iv(1, 3),
                &[iv(1, 3), iv(5, 10), iv(12, 20), iv(25, 30)],
            ),
            (
                &[iv(5, 10), iv(12, 20), iv(25, 30)],
                iv(35, 40),
                &[iv(5, 10), iv(12, 20), iv(25, 30), iv(35, 40)],
            ),
            (
                &[iv(i64::MIN, 5)],
                iv(10, 20),
                &[iv(i64::MIN, 5), iv(10, 20)],
            ),
            (
                &[iv(5, 10), iv(20, 30)],
                iv(i64::MIN, 6),
                &[iv(i64::MIN, 10), iv(20, 30)],
            ),
            // Prometheus indexes past the slice here (n.Maxt == MaxInt64 with mini > 0).
            (
                &[iv(1, 2), iv(10, 20), iv(30, 40)],
                iv(15, i64::MAX),
                &[iv(1, 2), iv(10, i64::MAX)],
            ),
            (&[iv(1, 2)], iv(5, 1), &[iv(1, 2)]),
        ];
        for (existing, new, want) in cases {
            let mut ivs = Intervals(existing.to_vec());
            ivs.add(*new);
            assert_eq!(ivs.as_slice(), *want, "{existing:?} + {new:?}");
        }
    }

    #[test]
    fn damaged_files_are_corruption_with_file_and_offset() {
        let mut t = Tombstones::new();
        t.add_interval(5, iv(1, 100));
        let good = t.encode();
        let p = Path::new("blk/tombstones");
        let err = |b: &[u8]| match Tombstones::decode(b, p) {
            Err(Error::Corruption {
                file,
                offset,
                reason,
            }) => {
                assert_eq!(file, p);
                (offset, reason)
            }
            other => panic!("{other:?}"),
        };
        let mut b = good.clone();
        b[0] = 0;
        assert!(err(&b).1.contains("magic"));
        let mut b = good.clone();
        b[6] ^= 1;
        assert!(err(&b).1.contains("CRC"));
        // The version byte is outside the CRC, so it is checked on its own.
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(
            err(&b),
            (Some(4), "invalid tombstones format version 2".into())
        );
        assert!(err(&good[..8]).1.contains("shorter"));
        // A torn entry with a valid CRC.
        let mut b = good[..6].to_vec();
        b.push(0x80);
        let crc = crc32c(&b[5..]);
        b.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(err(&b).0, Some(5));
    }

    proptest! {
        #[test]
        fn add_keeps_intervals_sorted_disjoint_and_exact(adds in prop::collection::vec((-50i64..50, 0i64..10), 0..30)) {
            let mut ivs = Intervals::new();
            let mut model = std::collections::BTreeSet::new();
            for (a, len) in &adds {
                ivs.add(iv(*a, a + len));
                model.extend(*a..=a + len);
            }
            for w in ivs.as_slice().windows(2) {
                prop_assert!(w[0].max_time + 1 < w[1].min_time);
            }
            for t in -60..70 {
                prop_assert_eq!(ivs.contains(t), model.contains(&t));
            }
        }

        #[test]
        fn encode_decode_round_trips(entries in prop::collection::vec((any::<u64>(), any::<i64>(), any::<i64>()), 0..20)) {
            let mut t = Tombstones::new();
            for (r, a, b) in entries {
                t.add_interval(r, iv(a.min(b), a.max(b)));
            }
            prop_assert_eq!(Tombstones::decode(&t.encode(), Path::new("t")).unwrap(), t);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = Tombstones::decode(&b, Path::new("t"));
        }
    }
}
