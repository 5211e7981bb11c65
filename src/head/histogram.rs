//! Native histograms in the head, as Prometheus 2.42 stores them (`headAppender.AppendHistogram`,
//! `memSeries.appendHistogram` / `appendFloatHistogram`, `head_wal.go`).
//!
//! * A series' chunks are of one sample type each: a float (XOR) chunk in `SeriesData::open`,
//!   or an integer- or float-histogram chunk in `SeriesData::hist`, never both. A sample of
//!   another type cuts a new chunk, as does the head's usual rule (chunk range, twice the
//!   target sample count); within a chunk the histogram appender's `push` decides between
//!   append, recode and a new chunk with the counter-reset header 2.42 gives it.
//! * An appender buffers histograms beside its float samples. Its commit logs a
//!   HistogramSamples and a FloatHistogramSamples record after the Series and Samples records
//!   (§1.10) and applies floats, then integer histograms, then float histograms: the order of
//!   the records, so replay rebuilds what the commit applied. `append` checks each sample
//!   against what will apply before it, so a commit still stores everything `append`
//!   accepted: within one appender, a series' floats precede its integer histograms, which
//!   precede its float histograms.
//! * A float stale marker for a series whose newest sample is a histogram is stored as a
//!   histogram stale marker of that kind (2.42 `headAppender.Append`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::append::Appender;
use super::locks::ApplyWrite;
use super::series::{MemSeries, SeriesData};
use super::SeriesPtr;
use crate::chunkenc::{CutPolicy, Encoding, FloatHistogramAppender, HistogramAppender, Pushed};
use crate::error::{Error, Result};
use crate::model::histogram::{FloatHistogram, Histogram};
use crate::model::{Labels, SeriesRef, STALE_NAN_BITS};
use crate::wal::{self, RefFloatHistogramSample, RefHistogramSample};

/// A native-histogram sample value of either kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HistSample {
    /// Integer counts (chunk encoding 2, WAL record 7).
    Int(Histogram),
    /// Float counts (chunk encoding 3, WAL record 8).
    Float(FloatHistogram),
}

impl HistSample {
    fn encoding(&self) -> Encoding {
        match self {
            HistSample::Int(_) => Encoding::Histogram,
            HistSample::Float(_) => Encoding::FloatHistogram,
        }
    }
}

enum HistApp {
    Int(HistogramAppender),
    Float(FloatHistogramAppender),
}

/// The open histogram chunk of a series.
pub(crate) struct HistOpen {
    app: HistApp,
    pub(super) min_t: i64,
    pub(super) max_t: i64,
    /// The chunk is cut when a sample reaches this time (as `OpenChunk::next_at`).
    next_at: i64,
    /// The newest sample, for telling an exact repeat from a duplicate.
    last: HistSample,
}

impl HistOpen {
    /// The chunk payload.
    pub(super) fn bytes(&self) -> &[u8] {
        match &self.app {
            HistApp::Int(a) => a.bytes(),
            HistApp::Float(a) => a.bytes(),
        }
    }

    /// The chunk encoding.
    pub(super) fn encoding(&self) -> Encoding {
        match &self.app {
            HistApp::Int(_) => Encoding::Histogram,
            HistApp::Float(_) => Encoding::FloatHistogram,
        }
    }

    fn num_samples(&self) -> u16 {
        match &self.app {
            HistApp::Int(a) => a.num_samples(),
            HistApp::Float(a) => a.num_samples(),
        }
    }
}

impl SeriesData {
    /// Closes the open histogram chunk, if any, into the closed list.
    pub(super) fn close_hist(&mut self, series_ref: u64) {
        if let Some(h) = self.hist.take() {
            if h.num_samples() > 0 {
                let enc = h.encoding();
                let bytes = match h.app {
                    HistApp::Int(a) => a.into_bytes(),
                    HistApp::Float(a) => a.into_bytes(),
                };
                self.push_closed(series_ref, h.min_t, h.max_t, enc, bytes);
            }
        }
    }

    /// Appends a histogram (2.42 `appendPreprocessor` then `appendHistogram`): a chunk of
    /// another encoding is closed first; the cut rule of floats applies, and the histogram
    /// appender's `push` recodes or starts a chunk as 2.42 does. Returns false, appending
    /// nothing, if `t` is not newer than the newest sample or the histogram does not fit its
    /// spans (which validation at append time rules out).
    pub(super) fn append_hist(
        &mut self,
        series_ref: u64,
        t: i64,
        h: HistSample,
        cfg: CutPolicy,
    ) -> bool {
        if self.max_time().is_some_and(|m| t <= m) {
            return false;
        }
        if self.open.is_some() {
            let _ = self.close_open(series_ref);
        }
        let enc = h.encoding();
        if self.hist.as_ref().is_some_and(|o| o.encoding() != enc) {
            self.close_hist(series_ref);
        }
        let cut = match &mut self.hist {
            Some(o) => cfg.must_cut(o.num_samples(), o.min_t, o.max_t, &mut o.next_at, t),
            None => false,
        };
        let mut open = match self.hist.take() {
            Some(o) => o,
            None => Box::new(HistOpen {
                app: match &h {
                    HistSample::Int(_) => HistApp::Int(HistogramAppender::new()),
                    HistSample::Float(_) => HistApp::Float(FloatHistogramAppender::new()),
                },
                min_t: t,
                max_t: t,
                next_at: cfg.initial_end(t),
                last: h.clone(),
            }),
        };
        // `Some(bytes)`: the chunk held before was completed.
        let completed = match (&mut open.app, &h) {
            (HistApp::Int(a), HistSample::Int(x)) => match a.push(t, x.clone(), cut) {
                Ok(Pushed::Cut { completed, .. }) => Ok(completed.map(|c| c.into_bytes())),
                Ok(_) => Ok(None),
                Err(e) => Err(e),
            },
            (HistApp::Float(a), HistSample::Float(x)) => match a.push(t, x.clone(), cut) {
                Ok(Pushed::Cut { completed, .. }) => Ok(completed.map(|c| c.into_bytes())),
                Ok(_) => Ok(None),
                Err(e) => Err(e),
            },
            _ => unreachable!("a chunk of another encoding was closed above"),
        };
        let completed = match completed {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(series_ref, t, error = %e, "histogram not appended");
                if open.num_samples() > 0 {
                    self.hist = Some(open);
                }
                return false;
            }
        };
        if let Some(bytes) = completed {
            self.push_closed(series_ref, open.min_t, open.max_t, enc, bytes);
            open.min_t = t;
            open.next_at = cfg.initial_end(t);
        }
        open.max_t = t;
        open.last = h;
        self.hist = Some(open);
        true
    }
}

impl MemSeries {
    /// Appends a histogram to `data` (locked from `self.data`) and publishes it as the newest
    /// committed sample; false, appending nothing, as [`SeriesData::append_hist`].
    pub(super) fn append_hist_locked(
        &self,
        data: &mut SeriesData,
        t: i64,
        h: HistSample,
        cfg: CutPolicy,
    ) -> bool {
        if !data.append_hist(self.series_ref, t, h, cfg) {
            return false;
        }
        self.last_is_hist.store(true, Ordering::Relaxed);
        self.set_last(t, 0);
        true
    }

    fn last_is_hist(&self) -> bool {
        self.last_is_hist.load(Ordering::Relaxed)
    }
}

/// What an appender holds of one series' histograms: `(oldest, newest)` times per kind and
/// the index of the newest in its buffer.
#[derive(Default, Clone, Copy)]
struct HeldHist {
    int: Option<(i64, i64, usize)>,
    float: Option<(i64, i64, usize)>,
}

/// An appender's buffered histograms and their WAL records.
#[derive(Default)]
pub(crate) struct HistBuffers {
    ints: Vec<RefHistogramSample>,
    int_series: Vec<SeriesPtr>,
    floats: Vec<RefFloatHistogramSample>,
    float_series: Vec<SeriesPtr>,
    held: HashMap<u64, HeldHist>,
    int_rec: Vec<u8>,
    float_rec: Vec<u8>,
}

impl HistBuffers {
    pub(super) fn is_empty(&self) -> bool {
        self.ints.is_empty() && self.floats.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.ints.len() + self.floats.len()
    }

    pub(super) fn clear(&mut self) {
        self.ints.clear();
        self.int_series.clear();
        self.floats.clear();
        self.float_series.clear();
        self.held.clear();
    }

    /// The series of every buffered histogram.
    pub(super) fn series(&self) -> impl Iterator<Item = &SeriesPtr> {
        self.int_series.iter().chain(&self.float_series)
    }

    /// The newest held float sample of `series_ref`'s time, through the appender.
    fn held(&self, series_ref: u64) -> HeldHist {
        self.held.get(&series_ref).copied().unwrap_or_default()
    }
}

/// Which buffered sample a new one is checked against.
enum Newest {
    None,
    Committed(i64),
    HeldFloat(i64),
    HeldHist(i64, usize),
}

impl Newest {
    fn t(&self) -> Option<i64> {
        match *self {
            Newest::None => None,
            Newest::Committed(t) | Newest::HeldFloat(t) | Newest::HeldHist(t, _) => Some(t),
        }
    }
}

impl Appender {
    /// Validates a histogram (2.42 `ValidateHistogram`, bounds, order) and buffers it.
    pub(crate) fn append_hist(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        h: HistSample,
    ) -> Result<SeriesRef> {
        let valid = match &h {
            HistSample::Int(x) => x.validate(),
            HistSample::Float(x) => x.validate(),
        };
        valid.map_err(Error::InvalidHistogram)?;
        self.check_bounds(t)?;
        let (ptr, series_ref) = self.find_series(hint, labels)?;
        // SAFETY: `ptr` was obtained while the appender's epoch is registered, which outlives it.
        let series = unsafe { ptr.get() };
        let held = self.bufs.hists.held(series_ref.0);
        let held_float = self
            .held_float_time(series_ref.0)
            .map(Newest::HeldFloat)
            .unwrap_or(Newest::None);
        let mut newest = match series.last_committed() {
            Some((c, _)) => Newest::Committed(c),
            None => Newest::None,
        };
        let later = |n: &Newest, o: Option<i64>| o.is_some_and(|o| n.t().is_none_or(|t| o >= t));
        if later(&newest, held_float.t()) {
            newest = held_float;
        }
        let (same, after) = match &h {
            HistSample::Int(_) => (held.int, held.float),
            HistSample::Float(_) => (held.float, None),
        };
        if let Some((_, n, i)) = same {
            if later(&newest, Some(n)) {
                newest = Newest::HeldHist(n, i);
            }
        }
        if let Some(last_t) = newest.t() {
            if t < last_t {
                return Err(Error::OutOfOrderSample {
                    timestamp: t,
                    last_timestamp: last_t,
                });
            }
            if t == last_t {
                let repeat = match newest {
                    Newest::HeldHist(_, i) => match &h {
                        HistSample::Int(x) => self.bufs.hists.ints[i].h == *x,
                        HistSample::Float(x) => self.bufs.hists.floats[i].h == *x,
                    },
                    Newest::Committed(_) if series.last_is_hist() => {
                        let apply = self.head.locks.apply_read();
                        let data = series.data(&apply);
                        data.hist
                            .as_ref()
                            .is_some_and(|o| o.max_t == t && o.last == h)
                    }
                    _ => false,
                };
                if repeat {
                    return Ok(series_ref);
                }
                return Err(Error::DuplicateSample { timestamp: t });
            }
        }
        // Float histograms of the series held by this appender apply after its integer
        // histograms: an integer histogram at or after one of them would be dropped.
        if let Some((oldest, n, _)) = after {
            if t >= oldest {
                return Err(Error::OutOfOrderSample {
                    timestamp: t,
                    last_timestamp: n,
                });
            }
        }
        let bufs = &mut self.bufs.hists;
        let entry = bufs.held.entry(series_ref.0).or_default();
        match h {
            HistSample::Int(h) => {
                let i = bufs.ints.len();
                entry.int = Some((entry.int.map_or(t, |e| e.0), t, i));
                bufs.ints.push(RefHistogramSample {
                    series_ref: series_ref.0,
                    t,
                    h,
                });
                bufs.int_series.push(ptr);
            }
            HistSample::Float(h) => {
                let i = bufs.floats.len();
                entry.float = Some((entry.float.map_or(t, |e| e.0), t, i));
                bufs.floats.push(RefFloatHistogramSample {
                    series_ref: series_ref.0,
                    t,
                    h,
                });
                bufs.float_series.push(ptr);
            }
        }
        self.note_buffered(series, t);
        Ok(series_ref)
    }

    /// For a float sample of a series that has histograms (committed, or held by this
    /// appender): `Some` with the outcome when the histograms decide it. A stale marker after
    /// a histogram becomes a histogram stale marker; a float at the time of the newest
    /// committed histogram is a duplicate (2.42); a float at or after a histogram this appender
    /// holds would apply before it and is refused as out of order.
    #[cold]
    pub(super) fn float_against_histograms(
        &mut self,
        series: &MemSeries,
        series_ref: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Option<Result<SeriesRef>> {
        let held = self.bufs.hists.held(series_ref.0);
        let held_float = self.held_float_time(series_ref.0);
        let newest_hist = [held.int, held.float]
            .into_iter()
            .flatten()
            .max_by_key(|e| e.1);
        if v.to_bits() == STALE_NAN_BITS {
            // The kind of the newest sample: held histograms, else the committed one unless a
            // held float is newer.
            let kind = match newest_hist {
                Some((_, n, _)) if held_float.is_none_or(|f| f < n) => {
                    Some(held.float.is_some_and(|f| f.1 == n))
                }
                _ if held_float.is_none() && series.last_is_hist() => {
                    let apply = self.head.locks.apply_read();
                    let data = series.data(&apply);
                    data.hist
                        .as_ref()
                        .map(|o| o.encoding() == Encoding::FloatHistogram)
                }
                _ => None,
            };
            if let Some(float_kind) = kind {
                let marker = if float_kind {
                    HistSample::Float(FloatHistogram::stale_marker())
                } else {
                    HistSample::Int(Histogram::stale_marker())
                };
                return Some(self.append_hist(Some(series_ref), labels, t, marker));
            }
        }
        let oldest_hist = [held.int, held.float]
            .into_iter()
            .flatten()
            .map(|e| e.0)
            .min();
        if let (Some(oldest), Some((_, n, _))) = (oldest_hist, newest_hist) {
            if t >= oldest {
                return Some(Err(Error::OutOfOrderSample {
                    timestamp: t,
                    last_timestamp: n,
                }));
            }
        }
        if held_float.is_none() && series.last_is_hist() {
            if let Some((last_t, _)) = series.last_committed() {
                if t == last_t {
                    return Some(Err(Error::DuplicateSample { timestamp: t }));
                }
            }
        }
        None
    }

    /// Encodes the HistogramSamples and FloatHistogramSamples records of the buffered
    /// histograms (§1.10); each is left empty when there is none.
    pub(super) fn encode_histograms(&mut self) {
        let b = &mut self.bufs.hists;
        b.int_rec.clear();
        b.float_rec.clear();
        if !b.ints.is_empty() {
            wal::encode_histogram_samples(&b.ints, &mut b.int_rec);
        }
        if !b.floats.is_empty() {
            wal::encode_float_histogram_samples(&b.floats, &mut b.float_rec);
        }
    }

    /// The histogram records encoded by [`encode_histograms`](Self::encode_histograms).
    pub(super) fn histogram_records(&self) -> [&[u8]; 2] {
        [&self.bufs.hists.int_rec, &self.bufs.hists.float_rec]
    }

    /// Points buffered histograms of series removed since they were appended at the series
    /// recreated by their labels (see `Appender::resolve`). Returns whether a ref changed.
    pub(super) fn resolve_histograms(&mut self) -> Result<bool> {
        let mut changed = false;
        let b = &mut self.bufs.hists;
        let refs = b
            .ints
            .iter_mut()
            .map(|s| &mut s.series_ref)
            .zip(b.int_series.iter_mut())
            .chain(
                b.floats
                    .iter_mut()
                    .map(|s| &mut s.series_ref)
                    .zip(b.float_series.iter_mut()),
            );
        for (r, p) in refs {
            // SAFETY: obtained under the appender's epoch, which is still registered.
            let old: &MemSeries = unsafe { p.get() };
            if old.is_removed() {
                let (series, _) = self.head.get_or_create(&old.labels)?;
                *p = SeriesPtr::of(&series);
                *r = series.series_ref;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Applies the buffered histograms after the floats: integer ones, then float ones (the
    /// order of their WAL records).
    pub(super) fn apply_histograms(
        &mut self,
        apply: &mut ApplyWrite<'_>,
        range: &mut (i64, i64),
        counts: &mut (u64, u64),
    ) {
        let cfg = self.head.cfg;
        let b = &mut self.bufs.hists;
        let ints = b
            .ints
            .drain(..)
            .map(|s| (s.t, HistSample::Int(s.h)))
            .zip(b.int_series.iter());
        let floats = b
            .floats
            .drain(..)
            .map(|s| (s.t, HistSample::Float(s.h)))
            .zip(b.float_series.iter());
        for ((t, h), p) in ints.chain(floats) {
            // SAFETY: obtained under the appender's epoch, which is still registered.
            let series = unsafe { p.get() };
            if series.append_hist_locked(series.data_mut(apply), t, h, cfg) {
                counts.0 += 1;
                range.0 = range.0.min(t);
                range.1 = range.1.max(t);
            } else {
                counts.1 += 1;
            }
        }
        self.head
            .holds_histograms
            .store(true, std::sync::atomic::Ordering::Release);
    }
}
