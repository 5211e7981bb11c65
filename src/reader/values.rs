//! Decoding chunks of every encoding into timed [`Value`]s and encoding merged values back
//! into chunks: what deletions, range cuts and overlapping chunks need when a series holds
//! native histograms (the XOR-only path in [`super::chunks`] stays for float chunks).
//!
//! Re-encoding follows Prometheus's chunk encoder for merged series (`seriesToChunkEncoder`):
//! a new chunk when the value type changes or after [`MAX_SAMPLES_PER_CHUNK`] samples; within
//! a histogram chunk the appender's `push` recodes for new buckets and starts a new chunk
//! where the layout cannot be appended (schema change, counter reset), so every chunk written
//! decodes to the values given.

use std::borrow::Cow;

use super::chunks::{ChunkSource, MAX_SAMPLES_PER_CHUNK};
use crate::chunkenc::{
    Chunk, Encoding, FloatHistogramAppender, FloatHistogramIter, HistogramAppender, HistogramIter,
    SeriesChunk, XorAppender, XorIter,
};
use crate::error::Result;
use crate::model::Value;

/// Decodes `chunk` into `out` (appended), checking that timestamps strictly increase.
pub(crate) fn decode(
    chunk: &Chunk<'_>,
    source: &ChunkSource<'_>,
    out: &mut Vec<(i64, Value)>,
) -> Result<()> {
    let start = out.len();
    let corrupt = |offset: usize, reason: &str| {
        source.corrupt(offset, format!("{} chunk: {reason}", chunk.encoding))
    };
    match chunk.encoding {
        Encoding::Xor => {
            for s in XorIter::new(chunk.data) {
                let s = s.map_err(|e| corrupt(e.offset, e.reason))?;
                out.push((s.t, Value::Float(s.v)));
            }
        }
        Encoding::Histogram => {
            for s in HistogramIter::new(chunk.data) {
                let (t, h) = s.map_err(|e| corrupt(e.offset, e.reason))?;
                out.push((t, Value::Histogram(h)));
            }
        }
        Encoding::FloatHistogram => {
            for s in FloatHistogramIter::new(chunk.data) {
                let (t, h) = s.map_err(|e| corrupt(e.offset, e.reason))?;
                out.push((t, Value::FloatHistogram(h)));
            }
        }
    }
    if out[start..].windows(2).any(|w| w[1].0 <= w[0].0) {
        return Err(corrupt(0, "timestamps do not increase"));
    }
    Ok(())
}

/// Sorts values by time and keeps one per timestamp: a float over a histogram, and of floats
/// the greatest in IEEE 754 total order (as `dedup_samples`); of histograms of one kind,
/// the first given.
pub(crate) fn dedup(values: &mut Vec<(i64, Value)>) {
    values.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.rank().cmp(&b.1.rank()))
            .then_with(|| match (&a.1, &b.1) {
                (Value::Float(x), Value::Float(y)) => y.total_cmp(x),
                _ => std::cmp::Ordering::Equal,
            })
    });
    values.dedup_by_key(|v| v.0);
}

enum Open {
    Xor(XorAppender),
    Int(HistogramAppender),
    Float(FloatHistogramAppender),
}

impl Open {
    fn encoding(&self) -> Encoding {
        match self {
            Open::Xor(_) => Encoding::Xor,
            Open::Int(_) => Encoding::Histogram,
            Open::Float(_) => Encoding::FloatHistogram,
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        match self {
            Open::Xor(a) => a.into_bytes(),
            Open::Int(a) => a.into_bytes(),
            Open::Float(a) => a.into_bytes(),
        }
    }
}

/// Encodes sorted values (one per timestamp) into chunks, appended to `out`.
pub(crate) fn encode<'a>(values: &[(i64, Value)], out: &mut Vec<SeriesChunk<Cow<'a, [u8]>>>) {
    let mut cur: Option<(Open, i64, i64, usize)> = None;
    let close = |c: Option<(Open, i64, i64, usize)>, out: &mut Vec<SeriesChunk<Cow<'a, [u8]>>>| {
        if let Some((app, min, max, n)) = c {
            if n > 0 {
                out.push(SeriesChunk {
                    min_time: min,
                    max_time: max,
                    encoding: app.encoding(),
                    data: Cow::Owned(app.into_bytes()),
                });
            }
        }
    };
    for (t, v) in values {
        let t = *t;
        let same = matches!(
            (&cur, v),
            (Some((Open::Xor(_), ..)), Value::Float(_))
                | (Some((Open::Int(_), ..)), Value::Histogram(_))
                | (Some((Open::Float(_), ..)), Value::FloatHistogram(_))
        );
        let full = cur.as_ref().is_some_and(|c| c.3 >= MAX_SAMPLES_PER_CHUNK);
        if !same || full {
            close(cur.take(), out);
            cur = Some((
                match v {
                    Value::Float(_) => Open::Xor(XorAppender::new()),
                    Value::Histogram(_) => Open::Int(HistogramAppender::new()),
                    Value::FloatHistogram(_) => Open::Float(FloatHistogramAppender::new()),
                },
                t,
                t,
                0,
            ));
        }
        let (app, min, max, n) = cur.as_mut().expect("opened above");
        // `Some(bytes)`: push completed the chunk it held and started a new one.
        let completed = match (app, v) {
            (Open::Xor(a), Value::Float(x)) => {
                a.append(t, *x);
                None
            }
            (Open::Int(a), Value::Histogram(h)) => match a.push(t, h.clone(), false) {
                Ok(crate::chunkenc::Pushed::Cut {
                    completed: Some(c), ..
                }) => Some((Encoding::Histogram, c.into_bytes())),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(t, error = %e, "histogram not re-encoded");
                    continue;
                }
            },
            (Open::Float(a), Value::FloatHistogram(h)) => match a.push(t, h.clone(), false) {
                Ok(crate::chunkenc::Pushed::Cut {
                    completed: Some(c), ..
                }) => Some((Encoding::FloatHistogram, c.into_bytes())),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(t, error = %e, "histogram not re-encoded");
                    continue;
                }
            },
            _ => unreachable!("a chunk of the value's type is open"),
        };
        if let Some((encoding, data)) = completed {
            out.push(SeriesChunk {
                min_time: *min,
                max_time: *max,
                encoding,
                data: Cow::Owned(data),
            });
            (*min, *n) = (t, 0);
        }
        *max = t;
        *n += 1;
    }
    close(cur, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::histogram::{Histogram, Span};
    use std::path::Path;

    fn hist(count: u64, buckets: Vec<i64>, spans: Vec<Span>) -> Histogram {
        Histogram {
            count,
            sum: count as f64,
            schema: 0,
            positive_spans: spans,
            positive_buckets: buckets,
            ..Histogram::default()
        }
    }

    fn decode_all(chunks: &[SeriesChunk<Cow<'_, [u8]>>]) -> Vec<(i64, Value)> {
        let src = ChunkSource {
            file: Path::new("x"),
            offset: 0,
        };
        let mut out = Vec::new();
        for c in chunks {
            let chunk = Chunk {
                encoding: c.encoding,
                data: &c.data,
            };
            let before = out.len();
            decode(&chunk, &src, &mut out).unwrap();
            assert_eq!(out[before].0, c.min_time);
            assert_eq!(out.last().unwrap().0, c.max_time);
        }
        out
    }

    /// Mixed types, new buckets, a counter reset and more than 120 samples all come back as
    /// given, with chunks cut where the type changes.
    #[test]
    fn encode_round_trips_mixed_values() {
        let one = vec![Span {
            offset: 0,
            length: 1,
        }];
        let two = vec![Span {
            offset: 0,
            length: 2,
        }];
        let mut values = vec![(1, Value::Float(1.0)), (2, Value::Float(2.0))];
        values.push((3, Value::Histogram(hist(1, vec![1], one.clone()))));
        values.push((4, Value::Histogram(hist(3, vec![1, 1], two.clone()))));
        values.push((5, Value::Histogram(hist(1, vec![1], one.clone()))));
        for i in 0..130 {
            values.push((
                10 + i,
                Value::FloatHistogram(hist(i as u64, vec![i], one.clone()).to_float()),
            ));
        }
        values.push((200, Value::Float(3.0)));
        let mut out = Vec::new();
        encode(&values, &mut out);
        let encs: Vec<Encoding> = out.iter().map(|c| c.encoding).collect();
        assert_eq!(
            encs,
            [
                Encoding::Xor,
                Encoding::Histogram,
                Encoding::Histogram,
                Encoding::FloatHistogram,
                Encoding::FloatHistogram,
                Encoding::Xor
            ]
        );
        let back = decode_all(&out);
        assert_eq!(back.len(), values.len());
        for ((t, v), (bt, bv)) in values.iter().zip(&back) {
            assert_eq!(t, bt);
            match (v, bv) {
                // Recoding inserts empty buckets; compare what counts.
                (Value::Histogram(a), Value::Histogram(b)) => {
                    assert_eq!((a.count, a.sum.to_bits()), (b.count, b.sum.to_bits()));
                    let ca: Vec<_> = a.positive_bucket_counts().filter(|b| b.1 != 0).collect();
                    let cb: Vec<_> = b.positive_bucket_counts().filter(|b| b.1 != 0).collect();
                    assert_eq!(ca, cb);
                }
                // Hints are read back from chunk headers.
                (Value::FloatHistogram(a), Value::FloatHistogram(b)) => {
                    let mut b = b.clone();
                    b.counter_reset_hint = a.counter_reset_hint;
                    assert_eq!(a, &b);
                }
                _ => assert_eq!(v, bv),
            }
        }
    }

    #[test]
    fn dedup_prefers_floats_then_the_greatest() {
        let h = Value::Histogram(hist(
            1,
            vec![1],
            vec![Span {
                offset: 0,
                length: 1,
            }],
        ));
        let mut v = vec![
            (2, h.clone()),
            (1, Value::Float(1.0)),
            (2, Value::Float(0.5)),
            (1, Value::Float(2.0)),
            (3, h.clone()),
        ];
        dedup(&mut v);
        assert_eq!(v, [(1, Value::Float(2.0)), (2, Value::Float(0.5)), (3, h)]);
    }
}
