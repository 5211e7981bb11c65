//! `histogram_quantile` over classic histograms (`le` buckets), as Prometheus 2.42's
//! `bucketQuantile`.

/// One bucket: its upper bound and cumulative count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub(crate) upper: f64,
    pub(crate) count: f64,
}

/// The φ-quantile of the buckets (sorted here). NaN without a `+Inf` bucket, with fewer than
/// two buckets, or without observations.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Only the bucket bounds order; equal bounds are merged below, so a stable sort gives the
    // same result as Go's.
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return f64::NAN;
    }
    coalesce(buckets);
    ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // Go's `sort.Search(n, count >= rank)`: the first bucket (of all but the last) whose count
    // reaches the rank, found by binary search with exactly that predicate (a NaN rank reaches
    // none).
    let n = buckets.len() - 1;
    let (mut i, mut j) = (0, n);
    while i < j {
        let h = (i + j) / 2;
        if buckets[h].count >= rank {
            j = h;
        } else {
            i = h + 1;
        }
    }
    let b = i;
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].upper;
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return buckets[0].upper;
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].upper;
    let mut count = buckets[b].count;
    if b > 0 {
        bucket_start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

fn coalesce(buckets: &mut Vec<Bucket>) {
    let mut last = buckets[0];
    let mut i = 0;
    for k in 1..buckets.len() {
        let b = buckets[k];
        if b.upper == last.upper {
            last.count += b.count;
        } else {
            buckets[i] = last;
            last = b;
            i += 1;
        }
    }
    buckets[i] = last;
    buckets.truncate(i + 1);
}

fn ensure_monotonic(buckets: &mut [Bucket]) {
    let mut max = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[(f64, f64)]) -> Vec<Bucket> {
        v.iter()
            .map(|&(upper, count)| Bucket { upper, count })
            .collect()
    }

    #[test]
    fn interpolates_within_the_bucket() {
        let mut x = b(&[(0.1, 10.0), (0.5, 30.0), (f64::INFINITY, 40.0)]);
        // rank 20 falls in (0.1, 0.5]: 0.1 + 0.4 * (10 / 20).
        assert!((bucket_quantile(0.5, &mut x) - 0.3).abs() < 1e-12);
        let mut x = b(&[(0.1, 10.0), (f64::INFINITY, 40.0)]);
        assert_eq!(bucket_quantile(0.99, &mut x), 0.1);
        let mut x = b(&[(0.1, 10.0)]);
        assert!(bucket_quantile(0.5, &mut x).is_nan());
    }
}
