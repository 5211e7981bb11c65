//! Checkpoints: old WAL segments folded into `checkpoint.NNNNNNNN/` (§1.11, Prometheus
//! `tsdb/wlog/checkpoint.go`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::filter::{self, Body, DeltaScratch};
use super::reader::Reader;
use super::record::{record_type, RecordType};
use super::segment::{list_segments, parse_segment_name, sync_dir, CHECKPOINT_PREFIX};
use super::writer::Wal;
use super::{Compression, WalOptions, DEFAULT_SEGMENT_SIZE};
use crate::encoding::DecodeError;
use crate::error::{Error, IoContext, Result};

/// Suffix of a checkpoint directory being written.
const TMP_SUFFIX: &str = ".tmp";

/// Records are handed to the checkpoint's WAL in batches of about this many bytes.
const BATCH_BYTES: usize = 1 << 20;

/// What [`checkpoint`] kept and dropped; "total" counts include dropped entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Series definitions dropped because `keep` refused their ref.
    pub dropped_series: usize,
    /// Float and histogram samples dropped because they are older than `mint`.
    pub dropped_samples: usize,
    /// Deletions dropped because they end before `mint`.
    pub dropped_tombstones: usize,
    /// Exemplars dropped because they are older than `mint`.
    pub dropped_exemplars: usize,
    /// Metadata entries dropped (series not kept, or superseded by a later entry).
    pub dropped_metadata: usize,
    /// Records of types a 2.x checkpoint does not carry (m-map markers, unknown types).
    pub dropped_records: usize,
    /// Series definitions read.
    pub total_series: usize,
    /// Samples read.
    pub total_samples: usize,
    /// Deletions read.
    pub total_tombstones: usize,
    /// Exemplars read.
    pub total_exemplars: usize,
    /// Metadata entries read.
    pub total_metadata: usize,
}

/// The directory of the checkpoint that folds in the segments up to `index`.
pub fn checkpoint_dir(wal_dir: &Path, index: u32) -> PathBuf {
    wal_dir.join(format!("{CHECKPOINT_PREFIX}{index:08}"))
}

fn list_checkpoints(wal_dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(wal_dir).at(wal_dir)? {
        let entry = entry.at(wal_dir)?;
        let name = entry.file_name();
        let Some(index) = name
            .to_str()
            .and_then(|n| n.strip_prefix(CHECKPOINT_PREFIX))
            .and_then(parse_segment_name)
        else {
            continue;
        };
        if !entry.file_type().at(entry.path())?.is_dir() {
            return Err(Error::corruption(
                entry.path(),
                None,
                "a checkpoint is not a directory",
            ));
        }
        out.push((index, entry.path()));
    }
    out.sort_unstable_by_key(|c| c.0);
    Ok(out)
}

/// The newest checkpoint of `wal_dir` and the last segment index it folds in.
pub fn last_checkpoint(wal_dir: &Path) -> Result<Option<(PathBuf, u32)>> {
    Ok(list_checkpoints(wal_dir)?.pop().map(|(i, p)| (p, i)))
}

/// Deletes the checkpoints of `wal_dir` older than `index`.
pub fn delete_checkpoints_before(wal_dir: &Path, index: u32) -> Result<()> {
    for (i, p) in list_checkpoints(wal_dir)? {
        if i >= index {
            break;
        }
        crate::fs::remove_dir_all(&p).at(&p)?;
    }
    Ok(())
}

/// Deletes the `checkpoint.*.tmp` entries that an interrupted [`checkpoint`] left in `dir`.
pub fn remove_tmp_checkpoints(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let is_tmp = name
            .to_str()
            .is_some_and(|n| n.starts_with(CHECKPOINT_PREFIX) && n.ends_with(TMP_SUFFIX));
        if !is_tmp {
            continue;
        }
        let p = entry.path();
        if entry.file_type().at(&p)?.is_dir() {
            crate::fs::remove_dir_all(&p).at(&p)?;
        } else {
            crate::fs::remove_file(&p).at(&p)?;
        }
    }
    Ok(())
}

/// Removes a directory on drop unless disarmed.
struct TmpDir(Option<PathBuf>);

impl Drop for TmpDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = crate::fs::remove_dir_all(p);
        }
    }
}

/// Writes `checkpoint.<to>` from the newest checkpoint (if any) and WAL segments
/// `from..=to`, keeping series with `keep(ref)`, samples, histograms and exemplars with
/// `t >= mint`, deletions with `maxt >= mint`, and the latest metadata of each kept series
/// (one record at the end). Other record types are dropped. Entries are copied byte for byte;
/// sample-like records are re-based on their first kept entry.
///
/// The checkpoint is written to `checkpoint.<to>.tmp`, fsynced and renamed, so it appears
/// complete or not at all. It does not delete segments or older checkpoints: the caller
/// does that afterwards with [`delete_segments_before`](super::delete_segments_before)`(to + 1)`
/// and [`delete_checkpoints_before`]`(to)`. Corruption in the input is an error (a checkpoint
/// cannot be repaired: the head would not know which series were lost).
pub fn checkpoint(
    wal_dir: &Path,
    from: u32,
    to: u32,
    keep: &dyn Fn(u64) -> bool,
    mint: i64,
    compression: Compression,
) -> Result<CheckpointStats> {
    if from > to {
        return Err(Error::InvalidArgument(format!(
            "checkpoint of segments {from}..={to}: empty range"
        )));
    }
    let mut sources = Vec::new();
    let mut from = from;
    if let Some((dir, idx)) = last_checkpoint(wal_dir)? {
        if to < idx {
            return Err(Error::InvalidArgument(format!(
                "checkpoint up to segment {to} is older than the existing checkpoint {idx}"
            )));
        }
        if from > idx.saturating_add(1) {
            return Err(Error::InvalidArgument(format!(
                "checkpoint from segment {from} leaves a gap after the existing checkpoint {idx}"
            )));
        }
        from = idx + 1;
        sources.extend(list_segments(&dir)?.segments);
    }
    if from <= to {
        let wal: Vec<_> = list_segments(wal_dir)?
            .segments
            .into_iter()
            .filter(|(i, _)| (from..=to).contains(i))
            .collect();
        if wal.len() as u64 != u64::from(to - from) + 1 {
            return Err(Error::InvalidArgument(format!(
                "checkpoint of segments {from}..={to}: not all of them exist in {}",
                wal_dir.display()
            )));
        }
        sources.extend(wal);
    }

    remove_tmp_checkpoints(wal_dir)?;
    let final_dir = checkpoint_dir(wal_dir, to);
    let tmp = wal_dir.join(format!("{CHECKPOINT_PREFIX}{to:08}{TMP_SUFFIX}"));
    crate::fs::create_dir_all(&tmp).at(&tmp)?;
    let mut guard = TmpDir(Some(tmp.clone()));
    let cp = Wal::open(
        &tmp,
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            compression,
        },
    )?;
    let stats = copy_records(Reader::from_segments(sources), &cp, keep, mint)?;
    cp.close()?;
    sync_dir(&tmp)?;
    if final_dir.exists() {
        crate::fs::remove_dir_all(&final_dir).at(&final_dir)?;
    }
    crate::fs::rename(&tmp, &final_dir).at(&final_dir)?;
    guard.0 = None;
    sync_dir(wal_dir)?;
    Ok(stats)
}

fn copy_records(
    mut r: Reader,
    cp: &Wal,
    keep: &dyn Fn(u64) -> bool,
    mint: i64,
) -> Result<CheckpointStats> {
    let mut st = CheckpointStats::default();
    let mut buf = Vec::new();
    let mut ends: Vec<usize> = Vec::new();
    let mut scratch = DeltaScratch::default();
    let mut metadata: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let flush = |buf: &mut Vec<u8>, ends: &mut Vec<usize>| -> Result<()> {
        let mut recs = Vec::with_capacity(ends.len());
        let mut start = 0;
        for &e in ends.iter() {
            recs.push(&buf[start..e]);
            start = e;
        }
        cp.log(&recs)?;
        buf.clear();
        ends.clear();
        Ok(())
    };
    loop {
        let (typ, pos, res) = {
            let Some((rec, pos)) = r.next_record()? else {
                break;
            };
            let typ = record_type(rec);
            let res = filter_record(
                rec,
                keep,
                mint,
                &mut st,
                &mut buf,
                &mut scratch,
                &mut metadata,
            );
            (typ, pos, res)
        };
        if let Err(e) = res {
            let file = r.current_file().map(Path::to_path_buf).unwrap_or_default();
            return Err(Error::corruption(
                file,
                pos.offset,
                format!("undecodable {typ:?} record: {e}"),
            ));
        }
        if buf.len() > ends.last().copied().unwrap_or(0) {
            ends.push(buf.len());
        }
        if buf.len() >= BATCH_BYTES {
            flush(&mut buf, &mut ends)?;
        }
    }
    if !metadata.is_empty() {
        buf.push(RecordType::Metadata.as_u8());
        for entry in metadata.values() {
            buf.extend_from_slice(entry);
        }
        ends.push(buf.len());
    }
    if !ends.is_empty() {
        flush(&mut buf, &mut ends)?;
    }
    Ok(st)
}

/// Appends the part of `rec` that the checkpoint keeps to `buf` (or to `metadata`).
fn filter_record(
    rec: &[u8],
    keep: &dyn Fn(u64) -> bool,
    mint: i64,
    st: &mut CheckpointStats,
    buf: &mut Vec<u8>,
    scratch: &mut DeltaScratch,
    metadata: &mut BTreeMap<u64, Vec<u8>>,
) -> Result<(), DecodeError> {
    let mut delta = |body| filter::filter_delta(rec, body, mint, scratch, buf);
    match record_type(rec) {
        RecordType::Series => {
            let (n, k) = filter::filter_series(rec, keep, buf)?;
            st.total_series += n;
            st.dropped_series += n - k;
        }
        RecordType::Samples | RecordType::HistogramSamples | RecordType::FloatHistogramSamples => {
            let body = match record_type(rec) {
                RecordType::Samples => Body::Float,
                RecordType::HistogramSamples => Body::Histogram,
                _ => Body::FloatHistogram,
            };
            let (n, k) = delta(body)?;
            st.total_samples += n;
            st.dropped_samples += n - k;
        }
        RecordType::Exemplars => {
            let (n, k) = delta(Body::Exemplar)?;
            st.total_exemplars += n;
            st.dropped_exemplars += n - k;
        }
        RecordType::Tombstones => {
            let (n, k) = filter::filter_tombstones(rec, mint, buf)?;
            st.total_tombstones += n;
            st.dropped_tombstones += n - k;
        }
        RecordType::Metadata => {
            filter::metadata_entries(rec, |r, entry| {
                st.total_metadata += 1;
                if keep(r) {
                    if metadata.insert(r, entry.to_vec()).is_some() {
                        st.dropped_metadata += 1;
                    }
                } else {
                    st.dropped_metadata += 1;
                }
            })?;
        }
        RecordType::MmapMarkers | RecordType::Unknown(_) => st.dropped_records += 1,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;
    use crate::wal::*;

    fn series_labels(r: u64) -> Labels {
        Labels::new([("__name__", "m"), ("id", &r.to_string())]).unwrap()
    }

    /// Logs, for refs `refs`, a Series record, then one Samples, Tombstones, Exemplars and two
    /// Metadata records at time `t`, and an unknown record.
    fn log_batch(w: &Wal, refs: std::ops::Range<u64>, t: i64) {
        let labels: Vec<Labels> = refs.clone().map(series_labels).collect();
        let mut recs: Vec<Vec<u8>> = vec![Vec::new(); 7];
        encode_series(refs.clone().zip(&labels), &mut recs[0]);
        encode_samples(
            refs.clone().map(|r| RefSample {
                series_ref: r,
                t: t + r as i64,
                v: r as f64,
            }),
            &mut recs[1],
        );
        let stones: Vec<Stone> = refs
            .clone()
            .map(|r| Stone {
                series_ref: r,
                interval: crate::tombstones::Interval::new(t - 10, t),
            })
            .collect();
        encode_tombstones(&stones, &mut recs[2]);
        let ex: Vec<RefExemplar> = refs
            .clone()
            .map(|r| RefExemplar {
                series_ref: r,
                t,
                v: 1.0,
                labels: Labels::new([("trace", "x")]).unwrap(),
            })
            .collect();
        encode_exemplars(&ex, &mut recs[3]);
        for (i, help) in ["old", "new"].iter().enumerate() {
            let md: Vec<RefMetadata> = refs
                .clone()
                .map(|r| RefMetadata {
                    series_ref: r,
                    metric_type: 1,
                    unit: String::new(),
                    help: format!("{help} {t}"),
                })
                .collect();
            encode_metadata(&md, &mut recs[4 + i]);
        }
        recs[6] = vec![99, 1, 2, 3];
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
        w.log(&refs).unwrap();
    }

    fn read_cp(dir: &Path) -> Vec<Vec<u8>> {
        let mut r = Reader::open_dir(dir, 0).unwrap();
        let mut out = Vec::new();
        while let Some((rec, _)) = r.next_record().unwrap() {
            out.push(rec.to_vec());
        }
        out
    }

    /// Prometheus `TestCheckpoint`: content filtering on top of an older checkpoint.
    #[test]
    fn checkpoint_filters_content() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let small = WalOptions {
            segment_size: 2 * 32 * 1024,
            compression: Compression::Snappy,
        };
        // An older checkpoint folding segments 0..=1.
        {
            let cp = Wal::open(&checkpoint_dir(dir, 1), small).unwrap();
            log_batch(&cp, 0..10, 0);
            cp.close().unwrap();
        }
        // Without segments, the WAL continues after the checkpoint.
        let w = Wal::open(dir, small).unwrap();
        assert_eq!(w.current_segment(), 2);
        for i in 0..40u64 {
            log_batch(&w, (10 + i * 5)..(15 + i * 5), 1000 * (i as i64 + 1));
            if i % 4 == 3 {
                w.cut_segment().unwrap();
            }
        }
        let last = w.current_segment();
        w.close().unwrap();
        assert!(last >= 11, "{last}");
        // A leftover of an interrupted checkpoint is cleaned up.
        fs::create_dir(dir.join("checkpoint.00000005.tmp")).unwrap();

        let mint = 20_000;
        let keep = |r: u64| r.is_multiple_of(2);
        let to = last - 1;
        let st = checkpoint(dir, 2, to, &keep, mint, Compression::Snappy).unwrap();
        assert!(!dir.join("checkpoint.00000005.tmp").exists());
        assert_eq!(
            last_checkpoint(dir).unwrap(),
            Some((checkpoint_dir(dir, to), to))
        );
        assert!(
            checkpoint_dir(dir, 1).exists(),
            "old checkpoints are the caller's to delete"
        );

        let recs = read_cp(&checkpoint_dir(dir, to));
        let (mut series, mut samples, mut stones, mut ex, mut md) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for rec in &recs {
            match record_type(rec) {
                RecordType::Series => decode_series(rec, &mut series).unwrap(),
                RecordType::Samples => decode_samples(rec, &mut samples).unwrap(),
                RecordType::Tombstones => decode_tombstones(rec, &mut stones).unwrap(),
                RecordType::Exemplars => decode_exemplars(rec, &mut ex).unwrap(),
                RecordType::Metadata => decode_metadata(rec, &mut md).unwrap(),
                t => panic!("unexpected {t:?} in checkpoint"),
            }
        }
        // Batches in segments 2..=to: 4 per segment.
        let batches = 4 * (to - 1) as u64;
        let refs_read = 10 + 5 * batches;
        let want_series: Vec<u64> = (0..refs_read).filter(|r| keep(*r)).collect();
        assert_eq!(
            series.iter().map(|s| s.series_ref).collect::<Vec<_>>(),
            want_series
        );
        assert!(series
            .iter()
            .all(|s| s.labels == series_labels(s.series_ref)));
        assert!(samples.iter().all(|s| s.t >= mint) && !samples.is_empty());
        let want_samples = (10..refs_read)
            .filter(|r| 1000 * ((r - 10) / 5 + 1) as i64 + *r as i64 >= mint)
            .count();
        assert_eq!(samples.len(), want_samples);
        assert!(samples.iter().all(|s| s.v == s.series_ref as f64));
        assert!(stones.iter().all(|s| s.interval.max_time >= mint) && !stones.is_empty());
        assert!(ex.iter().all(|e| e.t >= mint) && !ex.is_empty());
        // One metadata record, last, with the newest entry of each kept series.
        assert_eq!(record_type(recs.last().unwrap()), RecordType::Metadata);
        assert_eq!(
            recs.iter()
                .filter(|r| record_type(r) == RecordType::Metadata)
                .count(),
            1
        );
        assert_eq!(md.len(), want_series.len());
        assert!(md
            .iter()
            .all(|m| keep(m.series_ref) && m.help.starts_with("new")));

        assert_eq!(st.total_series as u64, refs_read);
        assert_eq!(st.dropped_series as u64, refs_read / 2);
        assert_eq!(st.total_samples as u64, refs_read);
        assert_eq!(st.total_samples - st.dropped_samples, samples.len());
        assert_eq!(st.total_metadata as u64, 2 * refs_read);
        assert_eq!(st.total_metadata - st.dropped_metadata, md.len());
        assert_eq!(st.dropped_records as u64, 1 + batches);

        // The next checkpoint builds on this one.
        let st2 = checkpoint(dir, to + 1, last, &|_| true, 0, Compression::None).unwrap();
        assert_eq!(st2.total_series, want_series.len());
        delete_checkpoints_before(dir, last).unwrap();
        assert_eq!(
            last_checkpoint(dir).unwrap(),
            Some((checkpoint_dir(dir, last), last))
        );
        assert!(!checkpoint_dir(dir, 1).exists() && !checkpoint_dir(dir, to).exists());
    }

    #[test]
    fn corrupt_input_fails_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let w = Wal::open(dir, WalOptions::default()).unwrap();
        log_batch(&w, 1..5, 100);
        w.close().unwrap();
        let seg = segment_path(dir, 0);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[20] ^= 0xff;
        fs::write(&seg, bytes).unwrap();
        let e = checkpoint(dir, 0, 0, &|_| true, 0, Compression::None).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e}");
        assert_eq!(last_checkpoint(dir).unwrap(), None);
        assert_eq!(
            fs::read_dir(dir).unwrap().count(),
            1,
            "only the segment is left"
        );
    }

    #[test]
    fn argument_checks() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        assert!(matches!(
            checkpoint(dir, 3, 2, &|_| true, 0, Compression::None),
            Err(Error::InvalidArgument(_))
        ));
        // Missing segments.
        assert!(matches!(
            checkpoint(dir, 0, 2, &|_| true, 0, Compression::None),
            Err(Error::InvalidArgument(_))
        ));
        fs::create_dir(checkpoint_dir(dir, 5)).unwrap();
        // A gap after the existing checkpoint, and a range older than it.
        assert!(matches!(
            checkpoint(dir, 7, 9, &|_| true, 0, Compression::None),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            checkpoint(dir, 2, 4, &|_| true, 0, Compression::None),
            Err(Error::InvalidArgument(_))
        ));
        fs::write(dir.join("checkpoint.00000009"), b"").unwrap();
        assert!(matches!(
            last_checkpoint(dir),
            Err(Error::Corruption { .. })
        ));
    }
}
