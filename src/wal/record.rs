//! Typed WAL records (§1.10, Prometheus `tsdb/record`): allocation-free encoders that append to
//! a caller's buffer, and decoders that append to a caller's vector.
//!
//! Sample and exemplar deltas are signed zig-zag varints (§1.15 item 5: `wal.md` is wrong).
//! Decoders never panic, reject leftover bytes, and reserve at most what the input can hold.

use crate::encoding::{put_string, put_uvarint, put_varint, Decbuf, DecodeError};
use crate::model::Labels;
use crate::tombstones::Interval;

/// The type of a record: its first byte (§1.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// 1: series definitions (ref + labels).
    Series,
    /// 2: float samples.
    Samples,
    /// 3: deletion intervals.
    Tombstones,
    /// 4: exemplars (2.27+).
    Exemplars,
    /// 5: m-map markers (out-of-order WBL only).
    MmapMarkers,
    /// 6: metric metadata.
    Metadata,
    /// 7: native histogram samples.
    HistogramSamples,
    /// 8: native float histogram samples.
    FloatHistogramSamples,
    /// Any other type byte (3.x types 9–14, future types), or 0 for an empty record.
    /// Replay skips these (`TestHead_UnknownWALRecord`).
    Unknown(u8),
}

impl RecordType {
    /// The type byte.
    pub fn as_u8(self) -> u8 {
        match self {
            RecordType::Series => 1,
            RecordType::Samples => 2,
            RecordType::Tombstones => 3,
            RecordType::Exemplars => 4,
            RecordType::MmapMarkers => 5,
            RecordType::Metadata => 6,
            RecordType::HistogramSamples => 7,
            RecordType::FloatHistogramSamples => 8,
            RecordType::Unknown(b) => b,
        }
    }
}

/// The type of `rec` from its first byte.
pub fn record_type(rec: &[u8]) -> RecordType {
    match rec.first() {
        Some(1) => RecordType::Series,
        Some(2) => RecordType::Samples,
        Some(3) => RecordType::Tombstones,
        Some(4) => RecordType::Exemplars,
        Some(5) => RecordType::MmapMarkers,
        Some(6) => RecordType::Metadata,
        Some(7) => RecordType::HistogramSamples,
        Some(8) => RecordType::FloatHistogramSamples,
        Some(&b) => RecordType::Unknown(b),
        None => RecordType::Unknown(0),
    }
}

/// A series definition: the WAL's series ref and its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSeries {
    /// Head series ref (from 1, §1.14).
    pub series_ref: u64,
    /// The series' labels.
    pub labels: Labels,
}

/// A float sample of the series `series_ref`.
#[derive(Debug, Clone, Copy)]
pub struct RefSample {
    /// Head series ref.
    pub series_ref: u64,
    /// Timestamp (ms).
    pub t: i64,
    /// Value; NaN payloads (stale markers) are kept bit for bit.
    pub v: f64,
}

impl PartialEq for RefSample {
    /// Bitwise on the value, so NaNs (stale markers) compare equal to themselves.
    fn eq(&self, o: &Self) -> bool {
        self.series_ref == o.series_ref && self.t == o.t && self.v.to_bits() == o.v.to_bits()
    }
}

impl Eq for RefSample {}

/// A deletion: samples of `series_ref` in `interval` are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stone {
    /// Head series ref.
    pub series_ref: u64,
    /// The deleted time range, both ends inclusive.
    pub interval: Interval,
}

/// An exemplar of the series `series_ref`.
#[derive(Debug, Clone)]
pub struct RefExemplar {
    /// Head series ref.
    pub series_ref: u64,
    /// Timestamp (ms).
    pub t: i64,
    /// Value.
    pub v: f64,
    /// Exemplar labels (may be empty).
    pub labels: Labels,
}

impl PartialEq for RefExemplar {
    fn eq(&self, o: &Self) -> bool {
        self.series_ref == o.series_ref
            && self.t == o.t
            && self.v.to_bits() == o.v.to_bits()
            && self.labels == o.labels
    }
}

/// Metadata of the series `series_ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefMetadata {
    /// Head series ref.
    pub series_ref: u64,
    /// Metric type: 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge histogram, 5 summary,
    /// 6 info, 7 stateset.
    pub metric_type: u8,
    /// Unit.
    pub unit: String,
    /// Help text.
    pub help: String,
}

pub(super) type R<T = ()> = Result<T, DecodeError>;

pub(super) fn err<T>(offset: usize, reason: &'static str) -> R<T> {
    Err(DecodeError { offset, reason })
}

/// Checks the type byte and returns a reader positioned after it.
pub(super) fn open(rec: &[u8], typ: RecordType) -> R<Decbuf<'_>> {
    if record_type(rec) != typ {
        return err(0, "unexpected record type");
    }
    let mut d = Decbuf::new(rec);
    d.u8()?;
    Ok(d)
}

/// Appends a label set as WAL records (and memory snapshots, §1.13) hold it.
pub(crate) fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for l in labels.iter() {
        put_string(buf, l.name.as_bytes());
        put_string(buf, l.value.as_bytes());
    }
}

/// Reads `uvarint n` and n `(name, value)` strings into a [`Labels`]; `n = 0` is the empty set.
pub(crate) fn decode_labels(d: &mut Decbuf<'_>) -> R<Labels> {
    let start = d.position();
    let n = d.uvarint()?;
    if n == 0 {
        return Ok(Labels::empty());
    }
    // Each label takes at least two bytes: a count past that is corrupt, not allocated.
    if n > (d.remaining() / 2) as u64 {
        return err(start, "label count larger than the record");
    }
    let mut pairs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        pairs.push((d.uvarint_bytes()?, d.uvarint_bytes()?));
    }
    Labels::from_utf8_pairs(pairs).or_else(|_| err(start, "invalid label set"))
}

/// Ends a decoder: the record must hold nothing after its last entry.
pub(super) fn finish(d: &Decbuf<'_>) -> R {
    if d.is_empty() {
        Ok(())
    } else {
        err(d.position(), "unexpected bytes after the last entry")
    }
}

/// Writes the base of a sample-like record (samples, exemplars, histogram samples): the
/// first entry's ref and time as BE64.
pub(super) fn put_base(buf: &mut Vec<u8>, (r, t): (u64, i64)) {
    buf.extend_from_slice(&r.to_be_bytes());
    buf.extend_from_slice(&t.to_be_bytes());
}

/// Writes an entry's ref and time as signed varint deltas to the record's base.
pub(super) fn put_entry_base(buf: &mut Vec<u8>, base: (u64, i64), r: u64, t: i64) {
    put_varint(buf, (r as i64).wrapping_sub(base.0 as i64));
    put_varint(buf, t.wrapping_sub(base.1));
}

/// Reads the base of a sample-like record: `None` for a record without entries.
pub(super) fn decode_base(d: &mut Decbuf<'_>) -> R<Option<(u64, i64)>> {
    if d.is_empty() {
        return Ok(None);
    }
    Ok(Some((d.be64()?, d.be64()? as i64)))
}

/// Reads an entry's ref and time, stored as deltas to the record's base.
pub(super) fn decode_entry_base(d: &mut Decbuf<'_>, (r, t): (u64, i64)) -> R<(u64, i64)> {
    let dr = d.varint()?;
    let dt = d.varint()?;
    Ok(((r as i64).wrapping_add(dr) as u64, t.wrapping_add(dt)))
}

/// Appends a Series record.
pub fn encode_series<'a>(series: impl IntoIterator<Item = (u64, &'a Labels)>, buf: &mut Vec<u8>) {
    buf.push(RecordType::Series.as_u8());
    for (r, l) in series {
        buf.extend_from_slice(&r.to_be_bytes());
        put_labels(buf, l);
    }
}

/// Appends the series of a Series record to `out`.
pub fn decode_series(rec: &[u8], out: &mut Vec<RefSeries>) -> R {
    let mut d = open(rec, RecordType::Series)?;
    while !d.is_empty() {
        let series_ref = d.be64()?;
        let labels = decode_labels(&mut d)?;
        out.push(RefSeries { series_ref, labels });
    }
    finish(&d)
}

/// Appends a Samples record: base ref and time of the first sample, then each sample
/// (the first included) as signed deltas to them and the value bits.
pub fn encode_samples(samples: impl IntoIterator<Item = RefSample>, buf: &mut Vec<u8>) {
    buf.push(RecordType::Samples.as_u8());
    let mut it = samples.into_iter();
    let Some(first) = it.next() else { return };
    let base = (first.series_ref, first.t);
    put_base(buf, base);
    for s in std::iter::once(first).chain(it) {
        put_entry_base(buf, base, s.series_ref, s.t);
        buf.extend_from_slice(&s.v.to_bits().to_be_bytes());
    }
}

/// Appends the samples of a Samples record to `out`.
pub fn decode_samples(rec: &[u8], out: &mut Vec<RefSample>) -> R {
    let mut d = open(rec, RecordType::Samples)?;
    let Some(base) = decode_base(&mut d)? else {
        return Ok(());
    };
    out.reserve(d.remaining() / 10);
    while !d.is_empty() {
        let (series_ref, t) = decode_entry_base(&mut d, base)?;
        let v = f64::from_bits(d.be64()?);
        out.push(RefSample { series_ref, t, v });
    }
    finish(&d)
}

/// Appends a Tombstones record.
pub fn encode_tombstones(stones: &[Stone], buf: &mut Vec<u8>) {
    buf.push(RecordType::Tombstones.as_u8());
    for s in stones {
        buf.extend_from_slice(&s.series_ref.to_be_bytes());
        put_varint(buf, s.interval.min_time);
        put_varint(buf, s.interval.max_time);
    }
}

/// Appends the deletions of a Tombstones record to `out`.
pub fn decode_tombstones(rec: &[u8], out: &mut Vec<Stone>) -> R {
    let mut d = open(rec, RecordType::Tombstones)?;
    while !d.is_empty() {
        out.push(Stone {
            series_ref: d.be64()?,
            interval: Interval::new(d.varint()?, d.varint()?),
        });
    }
    finish(&d)
}

/// Appends an Exemplars record (same delta scheme as samples, then labels per exemplar).
pub fn encode_exemplars(exemplars: &[RefExemplar], buf: &mut Vec<u8>) {
    buf.push(RecordType::Exemplars.as_u8());
    let Some(first) = exemplars.first() else {
        return;
    };
    let base = (first.series_ref, first.t);
    put_base(buf, base);
    for e in exemplars {
        put_entry_base(buf, base, e.series_ref, e.t);
        buf.extend_from_slice(&e.v.to_bits().to_be_bytes());
        put_labels(buf, &e.labels);
    }
}

/// Appends the exemplars of an Exemplars record to `out`.
pub fn decode_exemplars(rec: &[u8], out: &mut Vec<RefExemplar>) -> R {
    let mut d = open(rec, RecordType::Exemplars)?;
    let Some(base) = decode_base(&mut d)? else {
        return Ok(());
    };
    while !d.is_empty() {
        let (series_ref, t) = decode_entry_base(&mut d, base)?;
        let v = f64::from_bits(d.be64()?);
        let labels = decode_labels(&mut d)?;
        out.push(RefExemplar {
            series_ref,
            t,
            v,
            labels,
        });
    }
    finish(&d)
}

/// Appends a Metadata record with the fields `UNIT` and `HELP`, as Prometheus writes them.
pub fn encode_metadata(metadata: &[RefMetadata], buf: &mut Vec<u8>) {
    buf.push(RecordType::Metadata.as_u8());
    for m in metadata {
        put_uvarint(buf, m.series_ref);
        buf.push(m.metric_type);
        put_uvarint(buf, 2);
        put_string(buf, b"UNIT");
        put_string(buf, m.unit.as_bytes());
        put_string(buf, b"HELP");
        put_string(buf, m.help.as_bytes());
    }
}

/// Appends the entries of a Metadata record to `out`; fields other than `UNIT` and `HELP`
/// are skipped (newer writers may add some).
pub fn decode_metadata(rec: &[u8], out: &mut Vec<RefMetadata>) -> R {
    let mut d = open(rec, RecordType::Metadata)?;
    while !d.is_empty() {
        let series_ref = d.uvarint()?;
        let metric_type = d.u8()?;
        let start = d.position();
        let fields = d.uvarint()?;
        if fields > (d.remaining() / 2) as u64 {
            return err(start, "metadata field count larger than the record");
        }
        let (mut unit, mut help) = (String::new(), String::new());
        for _ in 0..fields {
            let name = d.uvarint_str()?;
            let value = d.uvarint_str()?;
            match name {
                "UNIT" => value.clone_into(&mut unit),
                "HELP" => value.clone_into(&mut help),
                _ => {}
            }
        }
        out.push(RefMetadata {
            series_ref,
            metric_type,
            unit,
            help,
        });
    }
    finish(&d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ls(p: &[(&str, &str)]) -> Labels {
        Labels::new(p.iter().copied()).unwrap()
    }

    #[test]
    fn record_types() {
        for b in 1..=8u8 {
            assert_eq!(record_type(&[b]).as_u8(), b);
            assert!(!matches!(record_type(&[b]), RecordType::Unknown(_)));
        }
        assert_eq!(record_type(&[]), RecordType::Unknown(0));
        assert_eq!(record_type(&[9, 1, 2]), RecordType::Unknown(9));
        assert_eq!(record_type(&[255]), RecordType::Unknown(255));
    }

    #[test]
    fn samples_layout_is_prometheus() {
        // Base ref/time, then the first sample again with zero deltas; signed deltas (§1.15).
        let mut b = Vec::new();
        encode_samples(
            [
                RefSample {
                    series_ref: 5,
                    t: 1000,
                    v: 1.0,
                },
                RefSample {
                    series_ref: 3,
                    t: 990,
                    v: -2.0,
                },
            ],
            &mut b,
        );
        let mut want = vec![2u8];
        want.extend_from_slice(&5u64.to_be_bytes());
        want.extend_from_slice(&1000i64.to_be_bytes());
        want.extend_from_slice(&[0, 0]);
        want.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
        want.extend_from_slice(&[3, 19]); // zig-zag -2, -10
        want.extend_from_slice(&(-2.0f64).to_bits().to_be_bytes());
        assert_eq!(b, want);
    }

    #[test]
    fn empty_records() {
        let mut b = Vec::new();
        encode_samples([], &mut b);
        assert_eq!(b, [2]);
        let mut s = Vec::new();
        decode_samples(&b, &mut s).unwrap();
        assert!(s.is_empty());
        b.clear();
        encode_series(std::iter::empty(), &mut b);
        assert_eq!(b, [1]);
        decode_series(&b, &mut Vec::new()).unwrap();
        b.clear();
        encode_tombstones(&[], &mut b);
        decode_tombstones(&b, &mut Vec::new()).unwrap();
        b.clear();
        encode_exemplars(&[], &mut b);
        assert_eq!(b, [4]);
        decode_exemplars(&b, &mut Vec::new()).unwrap();
        decode_metadata(&[6], &mut Vec::new()).unwrap();
    }

    #[test]
    fn wrong_type_truncation_and_leftovers_are_errors() {
        let mut b = Vec::new();
        encode_series([(1, &ls(&[("a", "b")]))], &mut b);
        assert!(decode_samples(&b, &mut Vec::new()).is_err());
        assert!(decode_series(&[], &mut Vec::new()).is_err());
        for cut in 2..b.len() {
            assert!(
                decode_series(&b[..cut], &mut Vec::new()).is_err(),
                "cut {cut}"
            );
        }
        let mut s = Vec::new();
        encode_samples(
            [RefSample {
                series_ref: 1,
                t: 2,
                v: 3.0,
            }],
            &mut s,
        );
        // 17 bytes (type, base ref, base time) is a valid record without entries.
        for cut in (2..s.len()).filter(|&c| c != 17) {
            assert!(
                decode_samples(&s[..cut], &mut Vec::new()).is_err(),
                "cut {cut}"
            );
        }
        s.push(0);
        let e = decode_samples(&s, &mut Vec::new()).unwrap_err();
        assert!(e.offset >= s.len() - 1, "{e}");
        // A huge label count is rejected before anything is allocated for it.
        let mut big = vec![1u8];
        big.extend_from_slice(&1u64.to_be_bytes());
        put_uvarint(&mut big, u64::MAX);
        assert_eq!(
            decode_series(&big, &mut Vec::new()).unwrap_err().reason,
            "label count larger than the record"
        );
        // Duplicate label names are not a valid series.
        let mut dup = vec![1u8];
        dup.extend_from_slice(&1u64.to_be_bytes());
        put_uvarint(&mut dup, 2);
        for _ in 0..2 {
            put_string(&mut dup, b"a");
            put_string(&mut dup, b"b");
        }
        assert!(decode_series(&dup, &mut Vec::new()).is_err());
    }

    #[test]
    fn metadata_skips_unknown_fields() {
        let mut b = vec![6u8];
        put_uvarint(&mut b, 7);
        b.push(1);
        put_uvarint(&mut b, 3);
        for (k, v) in [("UNIT", "seconds"), ("EXTRA", "x"), ("HELP", "h")] {
            put_string(&mut b, k.as_bytes());
            put_string(&mut b, v.as_bytes());
        }
        let mut out = Vec::new();
        decode_metadata(&b, &mut out).unwrap();
        assert_eq!(
            out,
            [RefMetadata {
                series_ref: 7,
                metric_type: 1,
                unit: "seconds".into(),
                help: "h".into()
            }]
        );
    }

    fn arb_labels() -> impl Strategy<Value = Labels> {
        proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{1,12}", 1..6)
            .prop_map(|m| Labels::new(m).unwrap())
    }

    fn arb_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::from_bits(crate::model::STALE_NAN_BITS)),
            Just(-0.0),
            Just(f64::INFINITY),
        ]
    }

    proptest! {
        #[test]
        fn series_round_trip(s in proptest::collection::vec((any::<u64>(), arb_labels()), 0..8)) {
            let mut b = vec![0xAA];
            encode_series(s.iter().map(|(r, l)| (*r, l)), &mut b);
            let mut out = Vec::new();
            decode_series(&b[1..], &mut out).unwrap();
            let got: Vec<_> = out.into_iter().map(|r| (r.series_ref, r.labels)).collect();
            prop_assert_eq!(got, s);
        }

        #[test]
        fn samples_round_trip(s in proptest::collection::vec(
            (any::<u64>(), any::<i64>(), arb_f64())
                .prop_map(|(r, t, v)| RefSample { series_ref: r, t, v }), 0..50)) {
            let mut b = Vec::new();
            encode_samples(s.iter().copied(), &mut b);
            let mut out = vec![RefSample { series_ref: 0, t: 0, v: 0.0 }];
            decode_samples(&b, &mut out).unwrap();
            prop_assert_eq!(&out[1..], &s[..]);
        }

        #[test]
        fn tombstones_round_trip(s in proptest::collection::vec(
            (any::<u64>(), any::<i64>(), any::<i64>())
                .prop_map(|(r, a, b)| Stone { series_ref: r, interval: Interval::new(a, b) }), 0..20)) {
            let mut b = Vec::new();
            encode_tombstones(&s, &mut b);
            let mut out = Vec::new();
            decode_tombstones(&b, &mut out).unwrap();
            prop_assert_eq!(out, s);
        }

        #[test]
        fn exemplars_round_trip(s in proptest::collection::vec(
            (any::<u64>(), any::<i64>(), arb_f64(), prop_oneof![Just(Labels::empty()), arb_labels()])
                .prop_map(|(r, t, v, labels)| RefExemplar { series_ref: r, t, v, labels }), 0..10)) {
            let mut b = Vec::new();
            encode_exemplars(&s, &mut b);
            let mut out = Vec::new();
            decode_exemplars(&b, &mut out).unwrap();
            prop_assert_eq!(out, s);
        }

        #[test]
        fn metadata_round_trip(s in proptest::collection::vec(
            (any::<u64>(), 0u8..8, "\\PC{0,10}", "\\PC{0,30}")
                .prop_map(|(r, t, u, h)| RefMetadata { series_ref: r, metric_type: t, unit: u, help: h }), 0..10)) {
            let mut b = Vec::new();
            encode_metadata(&s, &mut b);
            let mut out = Vec::new();
            decode_metadata(&b, &mut out).unwrap();
            prop_assert_eq!(out, s);
        }

        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_series(&b, &mut Vec::new());
            let _ = decode_samples(&b, &mut Vec::new());
            let _ = decode_tombstones(&b, &mut Vec::new());
            let _ = decode_exemplars(&b, &mut Vec::new());
            let _ = decode_metadata(&b, &mut Vec::new());
        }
    }
}
