//! Byte-level filters of records for checkpoints (§1.11): entries are selected and copied
//! without decoding them into values, so label bytes and histogram bodies pass through
//! unchanged and no record type needs a full decoder here.

use super::record::RecordType;
use crate::encoding::{put_varint, Decbuf, DecodeError};

type R<T = ()> = Result<T, DecodeError>;

/// What follows the ref and time deltas of one entry of a delta-encoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// BE64 value (Samples).
    Float,
    /// BE64 value and a label set (Exemplars).
    Exemplar,
    /// An integer native histogram (HistogramSamples).
    Histogram,
    /// A float native histogram (FloatHistogramSamples).
    FloatHistogram,
}

/// Prometheus's `CustomBucketsSchema`: such histograms carry custom bucket bounds.
const CUSTOM_BUCKETS_SCHEMA: i64 = -53;

fn skip_strings(d: &mut Decbuf<'_>, pairs: u64) -> R {
    for _ in 0..pairs {
        d.uvarint_bytes()?;
        d.uvarint_bytes()?;
    }
    Ok(())
}

fn skip_spans(d: &mut Decbuf<'_>) -> R {
    for _ in 0..d.uvarint()? {
        d.varint()?;
        d.uvarint32()?;
    }
    Ok(())
}

fn skip_body(d: &mut Decbuf<'_>, body: Body) -> R {
    match body {
        Body::Float => d.skip(8),
        Body::Exemplar => {
            d.skip(8)?;
            let n = d.uvarint()?;
            skip_strings(d, n)
        }
        Body::Histogram | Body::FloatHistogram => {
            let float = body == Body::FloatHistogram;
            d.u8()?; // counter reset hint
            let schema = d.varint()?;
            d.skip(8)?; // zero threshold
            if float {
                d.skip(24)?; // zero count, count, sum
            } else {
                d.uvarint()?;
                d.uvarint()?;
                d.skip(8)?;
            }
            skip_spans(d)?;
            skip_spans(d)?;
            for _ in 0..2 {
                for _ in 0..d.uvarint()? {
                    if float {
                        d.skip(8)?;
                    } else {
                        d.varint()?;
                    }
                }
            }
            if schema == CUSTOM_BUCKETS_SCHEMA {
                for _ in 0..d.uvarint()? {
                    d.skip(8)?;
                }
            }
            Ok(())
        }
    }
}

/// Scratch space reused across records.
#[derive(Debug, Default)]
pub(crate) struct DeltaScratch {
    kept: Vec<(u64, i64, usize, usize)>,
}

/// Appends to `out` the record `rec` (Samples, Exemplars or a histogram type) restricted to
/// entries with `t >= mint`, re-based on the first kept entry as Prometheus's encoder does;
/// appends nothing if no entry is kept. Returns (entries, kept).
pub(crate) fn filter_delta(
    rec: &[u8],
    body: Body,
    mint: i64,
    scratch: &mut DeltaScratch,
    out: &mut Vec<u8>,
) -> R<(usize, usize)> {
    let mut d = Decbuf::new(rec);
    let typ = d.u8()?;
    if d.is_empty() {
        return Ok((0, 0));
    }
    let base_ref = d.be64()? as i64;
    let base_t = d.be64()? as i64;
    scratch.kept.clear();
    let mut total = 0;
    while !d.is_empty() {
        let r = base_ref.wrapping_add(d.varint()?) as u64;
        let t = base_t.wrapping_add(d.varint()?);
        let start = d.position();
        skip_body(&mut d, body)?;
        total += 1;
        if t >= mint {
            scratch.kept.push((r, t, start, d.position()));
        }
    }
    let Some(&(first_ref, first_t, _, _)) = scratch.kept.first() else {
        return Ok((total, 0));
    };
    out.push(typ);
    out.extend_from_slice(&first_ref.to_be_bytes());
    out.extend_from_slice(&first_t.to_be_bytes());
    for &(r, t, s, e) in &scratch.kept {
        put_varint(out, (r as i64).wrapping_sub(first_ref as i64));
        put_varint(out, t.wrapping_sub(first_t));
        out.extend_from_slice(&rec[s..e]);
    }
    Ok((total, scratch.kept.len()))
}

/// Appends to `out` the Series record `rec` restricted to series with `keep(ref)`; nothing
/// if none is kept. Returns (series, kept).
pub(crate) fn filter_series(
    rec: &[u8],
    keep: &dyn Fn(u64) -> bool,
    out: &mut Vec<u8>,
) -> R<(usize, usize)> {
    let mut d = Decbuf::new(rec);
    d.u8()?;
    let (mut total, mut kept) = (0, 0);
    let header = out.len();
    while !d.is_empty() {
        let start = d.position();
        let r = d.be64()?;
        let n = d.uvarint()?;
        skip_strings(&mut d, n)?;
        total += 1;
        if keep(r) {
            if kept == 0 {
                out.push(RecordType::Series.as_u8());
            }
            kept += 1;
            out.extend_from_slice(&rec[start..d.position()]);
        }
    }
    debug_assert!(kept > 0 || out.len() == header);
    Ok((total, kept))
}

/// Appends to `out` the Tombstones record `rec` restricted to deletions with `maxt >= mint`.
/// Returns (deletions, kept).
pub(crate) fn filter_tombstones(rec: &[u8], mint: i64, out: &mut Vec<u8>) -> R<(usize, usize)> {
    let mut d = Decbuf::new(rec);
    d.u8()?;
    let (mut total, mut kept) = (0, 0);
    while !d.is_empty() {
        let start = d.position();
        d.be64()?;
        d.varint()?;
        let maxt = d.varint()?;
        total += 1;
        if maxt >= mint {
            if kept == 0 {
                out.push(RecordType::Tombstones.as_u8());
            }
            kept += 1;
            out.extend_from_slice(&rec[start..d.position()]);
        }
    }
    Ok((total, kept))
}

/// Calls `f(ref, entry bytes)` for each entry of the Metadata record `rec`.
pub(crate) fn metadata_entries<'a>(rec: &'a [u8], mut f: impl FnMut(u64, &'a [u8])) -> R {
    let mut d = Decbuf::new(rec);
    d.u8()?;
    while !d.is_empty() {
        let start = d.position();
        let r = d.uvarint()?;
        d.u8()?;
        let n = d.uvarint()?;
        skip_strings(&mut d, n)?;
        f(r, &rec[start..d.position()]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{put_uvarint, zigzag_encode};
    use crate::wal::record::*;

    fn samples(s: &[(u64, i64)]) -> Vec<u8> {
        let mut b = Vec::new();
        encode_samples(
            s.iter().map(|&(r, t)| RefSample {
                series_ref: r,
                t,
                v: t as f64,
            }),
            &mut b,
        );
        b
    }

    #[test]
    fn delta_filter_rebases_like_the_encoder() {
        let rec = samples(&[(5, 100), (3, 90), (9, 200), (7, 150)]);
        let mut out = Vec::new();
        let mut sc = DeltaScratch::default();
        assert_eq!(
            filter_delta(&rec, Body::Float, 120, &mut sc, &mut out),
            Ok((4, 2))
        );
        assert_eq!(out, samples(&[(9, 200), (7, 150)]));
        out.clear();
        assert_eq!(
            filter_delta(&rec, Body::Float, i64::MIN, &mut sc, &mut out),
            Ok((4, 4))
        );
        assert_eq!(out, rec, "keeping everything reproduces the record");
        out.clear();
        assert_eq!(
            filter_delta(&rec, Body::Float, 1000, &mut sc, &mut out),
            Ok((4, 0))
        );
        assert!(out.is_empty());
        assert_eq!(
            filter_delta(&[2], Body::Float, 0, &mut sc, &mut out),
            Ok((0, 0))
        );
        assert!(filter_delta(&rec[..rec.len() - 1], Body::Float, 0, &mut sc, &mut out).is_err());
    }

    /// An integer histogram record entry in Prometheus's `EncodeHistogram` layout.
    fn int_histogram_entry(out: &mut Vec<u8>, dref: i64, dt: i64) {
        put_varint(out, dref);
        put_varint(out, dt);
        out.push(0); // hint
        put_varint(out, 3); // schema
        out.extend_from_slice(&0.001f64.to_bits().to_be_bytes());
        put_uvarint(out, 2); // zero count
        put_uvarint(out, 10); // count
        out.extend_from_slice(&12.5f64.to_bits().to_be_bytes());
        put_uvarint(out, 1); // positive spans
        put_varint(out, -1);
        put_uvarint(out, 2);
        put_uvarint(out, 0); // negative spans
        put_uvarint(out, 2); // positive buckets
        put_varint(out, 3);
        put_varint(out, -1);
        put_uvarint(out, 0); // negative buckets
    }

    #[test]
    fn histogram_bodies_are_skipped_exactly() {
        let mut rec = vec![7u8];
        rec.extend_from_slice(&10u64.to_be_bytes());
        rec.extend_from_slice(&1000i64.to_be_bytes());
        int_histogram_entry(&mut rec, 0, 0);
        int_histogram_entry(&mut rec, 1, 500);
        let mut out = Vec::new();
        let mut sc = DeltaScratch::default();
        assert_eq!(
            filter_delta(&rec, Body::Histogram, 1200, &mut sc, &mut out),
            Ok((2, 1))
        );
        let mut want = vec![7u8];
        want.extend_from_slice(&11u64.to_be_bytes());
        want.extend_from_slice(&1500i64.to_be_bytes());
        int_histogram_entry(&mut want, 0, 0);
        assert_eq!(out, want);
        // Read as float histograms the same bytes do not line up.
        assert!(filter_delta(&rec, Body::FloatHistogram, 0, &mut sc, &mut Vec::new()).is_err());
        assert_eq!(zigzag_encode(-1), 1);
    }

    #[test]
    fn series_and_tombstones_filters_copy_entries() {
        let a = crate::model::Labels::new([("a", "1")]).unwrap();
        let b = crate::model::Labels::new([("b", "2")]).unwrap();
        let mut rec = Vec::new();
        encode_series([(1, &a), (2, &b)], &mut rec);
        let mut out = Vec::new();
        assert_eq!(filter_series(&rec, &|r| r == 2, &mut out), Ok((2, 1)));
        let mut want = Vec::new();
        encode_series([(2, &b)], &mut want);
        assert_eq!(out, want);
        out.clear();
        assert_eq!(filter_series(&rec, &|_| false, &mut out), Ok((2, 0)));
        assert!(out.is_empty());

        let stones = [
            Stone {
                series_ref: 1,
                interval: crate::tombstones::Interval::new(0, 10),
            },
            Stone {
                series_ref: 2,
                interval: crate::tombstones::Interval::new(5, 50),
            },
        ];
        let mut rec = Vec::new();
        encode_tombstones(&stones, &mut rec);
        assert_eq!(filter_tombstones(&rec, 20, &mut out), Ok((2, 1)));
        let mut got = Vec::new();
        decode_tombstones(&out, &mut got).unwrap();
        assert_eq!(got, &stones[1..]);
    }
}
