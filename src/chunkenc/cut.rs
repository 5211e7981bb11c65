//! When a writer that appends samples one by one cuts a new chunk: Prometheus 2.x's head rules
//! (brief §2.8), shared by the head and by importers that must produce the chunks `promtool`
//! produces.

/// End of the aligned range holding `t` (Prometheus `rangeForTimestamp`). Go's truncating
/// division is kept on purpose so negative timestamps behave the same.
pub fn range_end(t: i64, range: i64) -> i64 {
    (t / range).saturating_mul(range).saturating_add(range)
}

/// Prometheus 2.x `computeChunkEndTime`: once a chunk spanning `[start, cur]` holds a quarter
/// of its target samples, an end time that splits the rest of the range up to `max` into
/// equally full chunks.
fn compute_chunk_end_time(start: i64, cur: i64, max: i64) -> i64 {
    let span = cur
        .saturating_sub(start)
        .saturating_add(1)
        .saturating_mul(4);
    if span <= 0 {
        return max;
    }
    let n = max.saturating_sub(start) / span;
    if n <= 1 {
        return max;
    }
    start + (max - start) / n
}

/// Chunk-cutting parameters: a chunk never crosses a multiple of `chunk_range`, aims at
/// `samples_per_chunk` samples and is cut at twice that at the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutPolicy {
    /// Aligned range a chunk stays within (ms); Prometheus's head uses the block range.
    pub chunk_range: i64,
    /// Target samples per chunk; Prometheus uses 120.
    pub samples_per_chunk: u16,
}

impl CutPolicy {
    /// The predicted end of a chunk whose first sample is at `t`: the end of its aligned range.
    pub fn initial_end(&self, t: i64) -> i64 {
        range_end(t, self.chunk_range)
    }

    /// Whether a sample at `t` must start a new chunk instead of going into the open one,
    /// which holds `num_samples` samples over `[min_t, max_t]` and is predicted to end at
    /// `*next_at`. When the chunk is a quarter full the prediction is renewed.
    pub fn must_cut(
        &self,
        num_samples: u16,
        min_t: i64,
        max_t: i64,
        next_at: &mut i64,
        t: i64,
    ) -> bool {
        if num_samples == self.samples_per_chunk / 4 {
            *next_at = compute_chunk_end_time(min_t, max_t, *next_at);
        }
        t >= *next_at || num_samples >= self.samples_per_chunk.saturating_mul(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_truncates_like_go() {
        assert_eq!(range_end(0, 10), 10);
        assert_eq!(range_end(9, 10), 10);
        assert_eq!(range_end(10, 10), 20);
        assert_eq!(range_end(-5, 10), 10);
        assert_eq!(range_end(-15, 10), 0);
    }

    #[test]
    fn prediction_splits_the_rest_of_the_range_evenly() {
        let p = CutPolicy {
            chunk_range: 7_200_000,
            samples_per_chunk: 120,
        };
        // 30 samples at 15 s took 435 s: the 2 h range holds ~4 chunks of 120.
        let mut next = p.initial_end(0);
        assert!(!p.must_cut(30, 0, 29 * 15_000, &mut next, 30 * 15_000));
        assert_eq!(next, 1_800_000);
        assert!(p.must_cut(119, 0, 1_785_000, &mut next, 1_800_000));
        let mut far = i64::MAX;
        assert!(
            p.must_cut(240, 0, 1, &mut far, 2),
            "twice the target cuts regardless"
        );
    }
}
