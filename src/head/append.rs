//! Appenders: buffer samples, validate them against committed data, and apply them to the
//! head atomically on commit.

use std::sync::Arc;

use super::{Head, MemSeries};
use crate::error::{Error, Result};
use crate::model::{Labels, SeriesRef};
use crate::wal;

struct Pending {
    series: Arc<MemSeries>,
    t: i64,
    v: f64,
}

/// Reusable buffers, recycled between appenders so steady-state appends do not allocate.
#[derive(Default)]
pub(crate) struct AppendBuffers {
    samples: Vec<Pending>,
    pub(crate) series_rec: Vec<u8>,
    pub(crate) samples_rec: Vec<u8>,
}

/// The head-side state of one transaction. [`crate::Appender`] wraps it with the database's
/// lifecycle (closed checks, WAL, buffer recycling).
pub(crate) struct Appender {
    head: Arc<Head>,
    min_valid_time: i64,
    pub(crate) bufs: AppendBuffers,
}

impl Appender {
    pub(crate) fn new(head: Arc<Head>, bufs: AppendBuffers) -> Self {
        let min_valid_time = head.appendable_min_valid_time();
        Appender {
            head,
            min_valid_time,
            bufs,
        }
    }

    /// Validates one sample against the committed state of its series and buffers it.
    #[inline]
    pub(crate) fn append(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef> {
        if t < self.min_valid_time {
            return Err(Error::OutOfBounds {
                timestamp: t,
                min_valid_time: self.min_valid_time,
            });
        }
        let series = match hint.and_then(|r| self.head.series(r.0)) {
            Some(s) => s,
            None => self.head.get_or_create(labels)?.0,
        };
        let series_ref = SeriesRef(series.series_ref);
        if let Some((last_t, last_v)) = series.last_committed() {
            if t < last_t {
                return Err(Error::OutOfOrderSample {
                    timestamp: t,
                    last_timestamp: last_t,
                });
            }
            if t == last_t {
                if v.to_bits() == last_v {
                    // The same sample again (e.g. federation): accepted, nothing to store.
                    return Ok(series_ref);
                }
                return Err(Error::DuplicateSample { timestamp: t });
            }
        }
        self.bufs.samples.push(Pending { series, t, v });
        Ok(series_ref)
    }

    /// Number of buffered samples.
    pub(crate) fn pending(&self) -> usize {
        self.bufs.samples.len()
    }

    /// Encodes this commit's WAL records into `series_rec` and `samples_rec` (§1.10): a
    /// Series record for every series of the batch not yet in the WAL, then one Samples
    /// record. Either is left empty when there is nothing to log. The caller holds
    /// `head.apply` for writing, so no other commit logs the same series concurrently.
    pub(crate) fn encode_wal(&self, series_rec: &mut Vec<u8>, samples_rec: &mut Vec<u8>) {
        series_rec.clear();
        samples_rec.clear();
        if self.bufs.samples.is_empty() {
            return;
        }
        let mut unlogged = self
            .bufs
            .samples
            .iter()
            .filter(|p| !p.series.is_logged())
            .peekable();
        if unlogged.peek().is_some() {
            wal::encode_series(
                unlogged
                    .filter(|p| !p.series.mark_logged())
                    .map(|p| (p.series.series_ref, &p.series.labels)),
                series_rec,
            );
        }
        wal::encode_samples(
            self.bufs.samples.iter().map(|p| wal::RefSample {
                series_ref: p.series.series_ref,
                t: p.t,
                v: p.v,
            }),
            samples_rec,
        );
    }

    /// Applies the buffered samples to the head. The caller holds `head.apply` for writing.
    ///
    /// Samples are re-validated in order: one that another commit made out of order or
    /// duplicate since `append`, or that a head compaction put below the head's floor, is
    /// dropped and counted, as Prometheus does.
    pub(crate) fn apply_locked(&mut self) {
        let cfg = self.head.cfg;
        // A head compaction since `append` may have persisted the sample's range: what lies
        // below the new floor would never reach a block, so it is dropped here, as replay
        // drops it from the WAL.
        let floor = self.head.min_valid_time();
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        let (mut appended, mut dropped) = (0u64, 0u64);
        for p in &self.bufs.samples {
            if p.t < floor {
                dropped += 1;
                continue;
            }
            let mut data = p.series.data.lock();
            if p.series.append_locked(&mut data, p.t, p.v, cfg) {
                appended += 1;
                mint = mint.min(p.t);
                maxt = maxt.max(p.t);
            } else {
                dropped += 1;
            }
        }
        self.head.note_committed(mint, maxt, appended, dropped);
    }

    /// Hands the buffers back, emptied, for reuse.
    pub(crate) fn into_buffers(mut self) -> AppendBuffers {
        self.bufs.samples.clear();
        self.bufs
    }
}
