//! Out-of-order samples of one series (Prometheus 2.42 `tsdb/ooo_head.go`): samples older
//! than the series' newest, accepted within `Options::out_of_order_time_window`.
//!
//! They live apart from the in-order chunks: an open out-of-order chunk kept sorted by time
//! (at most `out_of_order_cap_max` samples), and the chunks completed before it, m-mapped to
//! `chunks_head/` with the out-of-order flag (encoding byte `0x81`, §1.12). These overlap each
//! other and the in-order chunks; readers merge them (`reader::chunks`). Every sample inserted
//! is also in the write-behind log (`head/wbl.rs`), which replays them after a crash.

use std::sync::Arc;

use super::chunk_files::ChunkFiles;
use super::chunk_format::OUT_OF_ORDER_FLAG;
use super::series::{ChunkLoc, ClosedChunk};
use crate::chunkenc::{Encoding, XorAppender};
use crate::reader::{ChunkBytes, ChunkMeta, ChunkRef};

/// The out-of-order part of a series.
#[derive(Default)]
pub(super) struct OooData {
    /// The open out-of-order chunk, sorted by time, no two samples at one time. `None` until
    /// a sample starts one, and after a WBL m-map marker (replay) ends it.
    pub(super) open: Option<Vec<(i64, f64)>>,
    /// Completed out-of-order chunks, in the order they were m-mapped (not time order).
    pub(super) mmapped: Vec<ClosedChunk>,
}

/// What inserting one out-of-order sample did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Inserted {
    /// Whether the sample was stored (false: the open chunk holds its time already).
    pub(super) stored: bool,
    /// `Some(mmap_ref)` when a new open chunk was started: the WBL's m-map marker, naming
    /// the chunk m-mapped to make room (0 when there was none). `None` also when the chunk
    /// made room for stayed on the heap (no chunk files, or the write failed).
    pub(super) chunk_created: Option<u64>,
}

/// XOR payload of sorted samples.
pub(super) fn encode_xor(samples: &[(i64, f64)]) -> XorAppender {
    let mut app = XorAppender::with_capacity(samples.len() * 2 + 8);
    for &(t, v) in samples {
        app.append(t, v);
    }
    app
}

impl OooData {
    /// Inserts `(t, v)` (Prometheus `memSeries.insert`): a full or absent open chunk is
    /// m-mapped (`files`; on the heap when there are none or the write fails) and a new one
    /// started first.
    pub(super) fn insert(
        &mut self,
        series_ref: u64,
        t: i64,
        v: f64,
        cap: usize,
        files: Option<&Arc<ChunkFiles>>,
    ) -> Inserted {
        let mut chunk_created = None;
        if self.open.as_ref().is_none_or(|o| o.len() >= cap) {
            let had_samples = self.open.as_ref().is_some_and(|o| !o.is_empty());
            // A chunk that could not be written to a file gets no marker: a replay then keeps
            // its samples from the WBL (and cuts the chunk again) instead of dropping them.
            chunk_created = match (had_samples, self.mmap_open(series_ref, files)) {
                (false, _) => Some(0),
                (true, Some(r)) => Some(r),
                (true, None) => None,
            };
            self.open = Some(Vec::with_capacity(cap));
        }
        let open = self.open.as_mut().expect("an open chunk after cutting");
        let stored = match open.binary_search_by_key(&t, |s| s.0) {
            Ok(_) => false,
            Err(i) => {
                open.insert(i, (t, v));
                true
            }
        };
        Inserted {
            stored,
            chunk_created,
        }
    }

    /// The value the open chunk holds at `t`, if any (append-time duplicate check).
    pub(super) fn open_value_at(&self, t: i64) -> Option<f64> {
        let open = self.open.as_ref()?;
        open.binary_search_by_key(&t, |s| s.0)
            .ok()
            .map(|i| open[i].1)
    }

    /// Completes the open chunk (if it holds samples): writes it to `files` with the
    /// out-of-order flag and returns its reference, or keeps it on the heap (`None`).
    pub(super) fn mmap_open(
        &mut self,
        series_ref: u64,
        files: Option<&Arc<ChunkFiles>>,
    ) -> Option<u64> {
        let open = self.open.take()?;
        let (&(min_t, _), &(max_t, _)) = (open.first()?, open.last()?);
        let app = encode_xor(&open);
        let flag = OUT_OF_ORDER_FLAG | Encoding::Xor.as_u8();
        let written = files.and_then(|f| {
            f.write_as(series_ref, min_t, max_t, flag, app.bytes())
                .inspect_err(|e| tracing::warn!(error = %e, "out-of-order chunk kept in memory"))
                .ok()
        });
        let loc = match written {
            Some(r) => ChunkLoc::File(r, Encoding::Xor),
            None => ChunkLoc::Mem(Arc::new(app.into_bytes()), Encoding::Xor),
        };
        self.mmapped.push(ClosedChunk { min_t, max_t, loc });
        written
    }

    /// Time range of the out-of-order data, if any.
    pub(super) fn time_range(&self) -> Option<(i64, i64)> {
        let open = self
            .open
            .as_ref()
            .and_then(|o| Some((o.first()?.0, o.last()?.0)));
        self.mmapped
            .iter()
            .map(|c| (c.min_t, c.max_t))
            .chain(open)
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// Metas of the chunks overlapping `[mint, maxt]`: the first `upto` m-mapped ones (all
    /// when `None`) and, when `with_open`, a copy of the open chunk. `bytes` reads an m-mapped
    /// chunk.
    pub(super) fn metas(
        &self,
        mint: i64,
        maxt: i64,
        upto: Option<usize>,
        with_open: bool,
        bytes: impl Fn(&ClosedChunk) -> crate::error::Result<ChunkBytes>,
        out: &mut Vec<ChunkMeta>,
    ) -> crate::error::Result<()> {
        let n = upto.unwrap_or(self.mmapped.len()).min(self.mmapped.len());
        for c in self.mmapped[..n]
            .iter()
            .filter(|c| c.max_t >= mint && c.min_t <= maxt)
        {
            out.push(ChunkMeta {
                min_time: c.min_t,
                max_time: c.max_t,
                chunk: ChunkRef::Head {
                    encoding: Encoding::Xor,
                    bytes: bytes(c)?,
                },
            });
        }
        if !with_open {
            return Ok(());
        }
        if let Some(open) = self.open.as_ref() {
            if let (Some(&(min_t, _)), Some(&(max_t, _))) = (open.first(), open.last()) {
                if max_t >= mint && min_t <= maxt {
                    out.push(ChunkMeta {
                        min_time: min_t,
                        max_time: max_t,
                        chunk: ChunkRef::Head {
                            encoding: Encoding::Xor,
                            bytes: ChunkBytes::Mem(Arc::from(encode_xor(open).bytes())),
                        },
                    });
                }
            }
        }
        Ok(())
    }

    /// Writes the m-mapped chunks from index `from` on to `files` again, so they get new
    /// references (after every chunk an out-of-order compaction took: see
    /// `head/ooo_read.rs`). Chunks on the heap stay there.
    pub(super) fn rewrite_from(
        &mut self,
        from: usize,
        series_ref: u64,
        files: &ChunkFiles,
    ) -> crate::error::Result<()> {
        let flag = OUT_OF_ORDER_FLAG | Encoding::Xor.as_u8();
        for c in self.mmapped.iter_mut().skip(from) {
            if let ChunkLoc::File(r, _) = c.loc {
                let bytes = files.chunk(r)?;
                c.loc = ChunkLoc::File(
                    files.write_as(series_ref, c.min_t, c.max_t, flag, &bytes)?,
                    Encoding::Xor,
                );
            }
        }
        Ok(())
    }

    /// Drops the first `n` m-mapped chunks (compacted into blocks).
    pub(super) fn drop_compacted(&mut self, n: usize) {
        let n = n.min(self.mmapped.len());
        self.mmapped.drain(..n);
    }

    /// The lowest head chunk file an m-mapped chunk of this series lies in.
    pub(super) fn min_file(&self) -> Option<u32> {
        self.mmapped
            .iter()
            .filter_map(|c| match c.loc {
                ChunkLoc::File(r, _) => Some((r >> 32) as u32),
                ChunkLoc::Mem(..) => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(c: &ClosedChunk) -> Vec<(i64, f64)> {
        let ChunkLoc::Mem(b, _) = &c.loc else {
            panic!("in memory")
        };
        crate::chunkenc::XorIter::new(b)
            .map(|s| s.map(|s| (s.t, s.v)).unwrap())
            .collect()
    }

    #[test]
    fn inserts_stay_sorted_and_full_chunks_are_cut() {
        let mut d = OooData::default();
        let first = d.insert(1, 50, 5.0, 4, None);
        assert_eq!(first.chunk_created, Some(0), "a fresh chunk: marker 0");
        for t in [30, 40] {
            let r = d.insert(1, t, t as f64, 4, None);
            assert!(r.stored && r.chunk_created.is_none());
        }
        assert!(!d.insert(1, 30, 9.0, 4, None).stored, "time already held");
        assert_eq!(d.open_value_at(30), Some(30.0));
        assert!(d.insert(1, 10, 10.0, 4, None).stored);
        // Full: the fifth sample m-maps the chunk (in memory here) and starts another.
        let r = d.insert(1, 20, 2.0, 4, None);
        assert!(r.stored);
        assert_eq!(r.chunk_created, None, "kept on the heap: no marker");
        assert_eq!(d.mmapped.len(), 1);
        assert_eq!(
            samples(&d.mmapped[0]),
            vec![(10, 10.0), (30, 30.0), (40, 40.0), (50, 5.0)]
        );
        assert_eq!((d.mmapped[0].min_t, d.mmapped[0].max_t), (10, 50));
        assert_eq!(d.open.as_ref().map(Vec::len), Some(1));
        assert_eq!(d.time_range(), Some((10, 50)));
        d.drop_compacted(1);
        assert_eq!(d.time_range(), Some((20, 20)));
    }
}
