//! Prometheus's two duplicate-labels checks: per step (`rangeEval`: a result vector may not
//! hold two samples with the same labels) and per series (matrix functions and unary minus:
//! no two output series may have the same labels).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use annals::Labels;

use crate::error::{exec, Result};
use crate::value::Point;

pub(crate) const DUPLICATE_LABELSET: &str = "vector cannot contain metrics with the same labelset";

/// Whole-series uniqueness.
#[derive(Default)]
pub(crate) struct SeriesCollision {
    seen: HashSet<Labels>,
}

impl SeriesCollision {
    pub(crate) fn check(&mut self, labels: &Labels) -> Result<()> {
        if !self.seen.insert(labels.clone()) {
            return Err(exec(DUPLICATE_LABELSET));
        }
        Ok(())
    }
}

/// Per-step uniqueness: the steps each label set was produced at.
pub(crate) struct StepCollision {
    start: i64,
    interval: i64,
    words: usize,
    seen: HashMap<Labels, Vec<u64>>,
}

impl StepCollision {
    pub(crate) fn new(start: i64, interval: i64, steps: usize) -> Self {
        StepCollision {
            start,
            interval,
            words: steps.div_ceil(64),
            seen: HashMap::new(),
        }
    }

    /// Records `points` (at step times) under `labels`; fails if another series already had
    /// these labels at one of the steps.
    pub(crate) fn check(&mut self, labels: &Labels, points: &[Point]) -> Result<()> {
        match self.seen.entry(labels.clone()) {
            Entry::Vacant(v) => {
                let mut bits = vec![0u64; self.words];
                for p in points {
                    let i = ((p.t - self.start) / self.interval) as usize;
                    bits[i / 64] |= 1 << (i % 64);
                }
                v.insert(bits);
            }
            Entry::Occupied(mut o) => {
                let bits = o.get_mut();
                for p in points {
                    let i = ((p.t - self.start) / self.interval) as usize;
                    let (w, b) = (i / 64, 1u64 << (i % 64));
                    if bits[w] & b != 0 {
                        return Err(exec(DUPLICATE_LABELSET));
                    }
                    bits[w] |= b;
                }
            }
        }
        Ok(())
    }
}
