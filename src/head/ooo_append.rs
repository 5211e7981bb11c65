//! Appending out-of-order samples (Prometheus 2.42 `head_append.go`: `appendable`, the
//! out-of-order branch of `Commit`): the appender's side of `head/ooo.rs`.
//!
//! `append` places a sample with [`check_order`](super::append::check_order); one older than
//! its series' newest (or older than the appender's in-order window) but inside the
//! out-of-order window is buffered apart (`AppendBuffers::late`). The commit logs it in the WAL
//! with the others (as 2.42 does), then, under the apply write lock, inserts it into the
//! series' out-of-order chunk and logs it in the WBL: m-map markers for the chunks it started,
//! then the samples, in apply order.

use super::append::Pending;
use super::locks::ApplyWrite;
use super::series::{ClosedChunk, SeriesData};
use super::{Appender, SeriesPtr};
use crate::chunkenc::XorIter;
use crate::error::{Error, Result};
use crate::model::{Labels, SeriesRef};
use crate::wal::{self, RefMmapMarker, RefSample};

/// Value bits of every sample the series' chunks (in-order and out-of-order) hold at `t`.
fn values_at(data: &SeriesData, t: i64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut find = |bytes: &[u8]| {
        if let Some(Ok(s)) = XorIter::new(bytes).seek(t) {
            if s.t == t {
                out.push(s.v.to_bits());
            }
        }
    };
    let covers = |c: &&ClosedChunk| c.min_t <= t && t <= c.max_t;
    let ooo = data.ooo.as_deref();
    for c in data
        .closed
        .iter()
        .chain(ooo.into_iter().flat_map(|o| o.mmapped.iter()))
        .filter(covers)
    {
        if let Ok(b) = data.bytes(c) {
            find(&b);
        }
    }
    if let Some(o) = data.open.as_ref().filter(|o| o.min_t <= t && t <= o.max_t) {
        find(o.app.bytes());
    }
    out.extend(ooo.and_then(|o| o.open_value_at(t)).map(f64::to_bits));
    out
}

impl Appender {
    /// A sample older than the appender's in-order window (`min_valid_time`) with an
    /// out-of-order window on (Prometheus `appendable` with `t < minValidTime`): late if the
    /// window reaches it, else out of bounds.
    #[cold]
    pub(super) fn append_below_window(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef> {
        if t < self.ooo_min {
            return Err(Error::OutOfBounds {
                timestamp: t,
                min_valid_time: self.ooo_min,
            });
        }
        let found = hint.and_then(|r| Some((self.head.series_fast(r.0, &self.epoch)?, r)));
        let (ptr, series_ref) = match found {
            Some(found) => found,
            None => {
                // Kept alive by the epoch (see `Appender::append`).
                let s = self.head.get_or_create(labels)?.0;
                (SeriesPtr::of(&s), SeriesRef(s.series_ref))
            }
        };
        self.buffer_late(ptr, series_ref, t, v)
    }

    /// Buffers a late sample after checking it against what the head and this appender hold
    /// at its time: an equal sample is accepted and not stored again; another value is an
    /// [`Error::DuplicateSample`] (Prometheus 2.42 checks only its open out-of-order chunk,
    /// and keeps both). Samples already compacted into blocks are not looked at: reads merge
    /// a block's sample and a late one at the same time, keeping one.
    #[cold]
    pub(super) fn buffer_late(
        &mut self,
        ptr: SeriesPtr,
        series_ref: SeriesRef,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef> {
        // SAFETY: `ptr` was obtained while `self.epoch` is registered, which outlives it.
        let series = unsafe { ptr.get() };
        let held: Vec<u64> = match self.bufs.late_seen.get(&(series_ref.0, t)) {
            Some(&bits) => vec![bits],
            None => {
                let guard = self.head.locks.apply_read();
                let mut found = values_at(&series.data(&guard), t);
                // This appender's in-order samples are all newer than the committed ones.
                if series.last_committed().is_none_or(|(last, _)| t > last) {
                    found.extend(
                        self.bufs
                            .samples
                            .iter()
                            .filter(|p| p.series_ref == series_ref.0 && p.t == t)
                            .map(|p| p.v.to_bits()),
                    );
                }
                found
            }
        };
        if held.iter().any(|&b| b != v.to_bits()) {
            return Err(Error::DuplicateSample { timestamp: t });
        }
        if !held.is_empty() {
            return Ok(series_ref);
        }
        self.bufs.late_seen.insert((series_ref.0, t), v.to_bits());
        self.maybe_unlogged |= !series.is_logged();
        self.bufs.late.push(Pending {
            series: ptr,
            series_ref: series_ref.0,
            t,
            v,
        });
        Ok(series_ref)
    }

    /// Inserts the late samples into their series' out-of-order chunks under `apply` (after
    /// the in-order ones) and logs them to the WBL in the same step: before the samples of a
    /// chunk started here, an MmapMarkers record names the chunk m-mapped to make room (ref
    /// 0 if none), as Prometheus 2.42 writes them, so a replay of the WBL rebuilds the open
    /// chunks exactly. Returns where the records end in the WBL (`None`: nothing logged).
    pub(super) fn apply_late(&mut self, apply: &mut ApplyWrite<'_>) -> Result<Option<u64>> {
        if self.bufs.late.is_empty() {
            return Ok(None);
        }
        let head = self.head.clone();
        let cap = head.ooo_cap;
        let mut records: Vec<Vec<u8>> = Vec::new();
        let mut markers: Vec<RefMmapMarker> = Vec::new();
        let mut samples: Vec<RefSample> = Vec::new();
        let flush = |markers: &mut Vec<RefMmapMarker>,
                     samples: &mut Vec<RefSample>,
                     records: &mut Vec<Vec<u8>>| {
            if !markers.is_empty() {
                let mut r = Vec::new();
                wal::encode_mmap_markers(markers, &mut r);
                records.push(r);
                markers.clear();
            }
            if !samples.is_empty() {
                let mut r = Vec::new();
                wal::encode_samples(samples.iter().copied(), &mut r);
                records.push(r);
                samples.clear();
            }
        };
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        let (mut appended, mut dropped) = (0u64, 0u64);
        for p in &self.bufs.late {
            // SAFETY: obtained under `self.epoch`, which is still registered.
            let series = unsafe { p.series.get() };
            let data = series.data_mut(apply);
            let files = data.files().cloned();
            let ooo = data.ooo.get_or_insert_with(Default::default);
            let r = ooo.insert(p.series_ref, p.t, p.v, cap, files.as_ref());
            if let Some(mmap_ref) = r.chunk_created {
                // The marker must follow the samples of the chunk it ends.
                flush(&mut markers, &mut samples, &mut records);
                markers.push(RefMmapMarker {
                    series_ref: p.series_ref,
                    mmap_ref,
                });
            }
            if r.stored {
                samples.push(RefSample {
                    series_ref: p.series_ref,
                    t: p.t,
                    v: p.v,
                });
                appended += 1;
                mint = mint.min(p.t);
                maxt = maxt.max(p.t);
            } else {
                dropped += 1;
            }
        }
        flush(&mut markers, &mut samples, &mut records);
        head.note_ooo_committed(mint, maxt, appended, dropped);
        let Some(wbl) = head.wbl.as_ref() else {
            return Ok(None);
        };
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        wbl.log(&refs).map(Some)
    }
}
