//! Cutting one series' samples into XOR chunks exactly as a Prometheus 2.42 head does, so
//! that imported blocks hold the same chunk bytes as `promtool`'s (format brief §2.8).
//!
//! promtool's `BlockWriter` appends into a real head whose chunk range is twice the block
//! duration (`backfill.go` pretends the block is twice as large so that the head accepts the
//! whole window). A chunk is cut when a sample reaches the chunk's predicted end, which starts
//! as the end of the aligned chunk range and is re-predicted when the chunk holds 30 samples
//! (`computeChunkEndTime`), or when the chunk already holds 240 samples.

use annals::unstable::block::SeriesChunk;
use annals::unstable::chunkenc::{CutPolicy, XorAppender};

/// Samples per chunk a 2.42 head aims for.
const SAMPLES_PER_CHUNK: u16 = 120;

/// Why a sample was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Older than the newest sample of the series.
    OutOfOrder {
        /// Timestamp of the newest sample.
        newest: i64,
    },
    /// Same timestamp as the newest sample, different value.
    Duplicate,
}

/// The chunks of one series being built.
#[derive(Debug)]
pub struct SeriesChunker {
    done: Vec<SeriesChunk>,
    open: XorAppender,
    min_t: i64,
    max_t: i64,
    last_bits: u64,
    next_at: i64,
}

impl SeriesChunker {
    /// A series whose first sample is `(t, v)`.
    pub fn new(t: i64, v: f64, chunk_range: i64) -> SeriesChunker {
        let mut open = XorAppender::new();
        open.append(t, v);
        SeriesChunker {
            done: Vec::new(),
            open,
            min_t: t,
            max_t: t,
            last_bits: v.to_bits(),
            next_at: annals::unstable::chunkenc::range_end(t, chunk_range),
        }
    }

    /// Appends a sample. A sample equal to the newest one (timestamp and value bits) is
    /// ignored, as Prometheus ignores exact duplicates.
    pub fn append(&mut self, t: i64, v: f64, chunk_range: i64) -> Result<(), Rejected> {
        if t <= self.max_t {
            if t < self.max_t {
                return Err(Rejected::OutOfOrder { newest: self.max_t });
            }
            if v.to_bits() != self.last_bits {
                return Err(Rejected::Duplicate);
            }
            return Ok(());
        }
        let policy = CutPolicy {
            chunk_range,
            samples_per_chunk: SAMPLES_PER_CHUNK,
        };
        let n = self.open.num_samples();
        if policy.must_cut(n, self.min_t, self.max_t, &mut self.next_at, t) {
            self.cut();
            self.min_t = t;
            self.next_at = policy.initial_end(t);
        }
        self.open.append(t, v);
        self.max_t = t;
        self.last_bits = v.to_bits();
        Ok(())
    }

    fn cut(&mut self) {
        let full = std::mem::take(&mut self.open);
        self.done.push(SeriesChunk {
            min_time: self.min_t,
            max_time: self.max_t,
            encoding: annals::unstable::chunkenc::Encoding::Xor,
            data: full.into_bytes(),
        });
    }

    /// Bytes held (chunk payloads).
    pub fn bytes(&self) -> usize {
        self.done.iter().map(|c| c.data.len()).sum::<usize>() + self.open.len()
    }

    /// All chunks, the open one closed.
    pub fn finish(mut self) -> Vec<SeriesChunk> {
        self.cut();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use annals::unstable::chunkenc::XorIter;

    const H2: i64 = 7_200_000;

    fn counts(c: &[SeriesChunk]) -> Vec<u16> {
        c.iter()
            .map(|c| XorIter::new(&c.data).num_samples())
            .collect()
    }

    fn build(ts: impl IntoIterator<Item = i64>, range: i64) -> Vec<SeriesChunk> {
        let mut it = ts.into_iter();
        let t0 = it.next().unwrap();
        let mut s = SeriesChunker::new(t0, 0.0, range);
        for (i, t) in it.enumerate() {
            s.append(t, i as f64, range).unwrap();
        }
        s.finish()
    }

    #[test]
    fn fifteen_second_scrapes_make_120_sample_chunks() {
        let t0 = 1_763_856_000_000; // 4 h aligned
        let c = build((0..480).map(|i| t0 + i * 15_000), 2 * H2);
        assert_eq!(counts(&c), [120, 120, 120, 120]);
        assert_eq!(c[0].min_time, t0);
        assert_eq!(c[0].max_time, t0 + 119 * 15_000);
    }

    #[test]
    fn the_chunk_range_changes_the_prediction() {
        // 7 s samples over 2 h from a 4 h boundary: with the 4 h chunk range promtool uses
        // the first chunk holds 122 samples (9 chunks, as `promtool tsdb list` shows); a 2 h range
        // would give 129.
        let t0 = 1_763_856_000_000;
        let ts: Vec<i64> = (0..1029).map(|i| t0 + i * 7_000).collect();
        let c = build(ts.clone(), 2 * H2);
        assert_eq!(c.len(), 9);
        assert_eq!(counts(&c)[0], 122);
        assert_eq!(counts(&build(ts, H2))[0], 129);
    }

    #[test]
    fn dense_samples_are_cut_at_240() {
        let c = build(0..1000, 2 * H2);
        assert!(counts(&c).iter().all(|&n| n <= 240), "{:?}", counts(&c));
        assert_eq!(counts(&c).iter().map(|&n| u32::from(n)).sum::<u32>(), 1000);
    }

    #[test]
    fn order_and_duplicates() {
        let mut s = SeriesChunker::new(10, 1.0, H2);
        assert_eq!(
            s.append(5, 1.0, H2),
            Err(Rejected::OutOfOrder { newest: 10 })
        );
        assert_eq!(s.append(10, 2.0, H2), Err(Rejected::Duplicate));
        assert_eq!(s.append(10, 1.0, H2), Ok(()));
        let nan = f64::from_bits(crate::openmetrics::NORMAL_NAN_BITS);
        assert_eq!(s.append(20, nan, H2), Ok(()));
        assert_eq!(s.append(20, nan, H2), Ok(()));
        let c = s.finish();
        assert_eq!(counts(&c), [2]);
        assert_eq!((c[0].min_time, c[0].max_time), (10, 20));
    }
}
