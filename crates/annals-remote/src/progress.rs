//! Durable sending progress: what the remote acknowledged, per shard, so that a restart (clean
//! or after SIGKILL) resumes exactly there.
//!
//! A sample is named by its [`Mark`]: the WAL segment, the offset of its record and its index
//! in the record. Each shard sends its samples in WAL order, so a shard's progress is two
//! marks: `acked` (every sample of the shard up to it is acknowledged, or dropped and counted)
//! and `sent` (the end of the batch in flight). Before a batch is sent its end is recorded;
//! after a restart the samples in `(acked, sent]` are sent again as one batch of their own,
//! the same samples as before, so a remote that did store them sees only duplicates of one
//! request (which Prometheus and VictoriaMetrics accept or reject whole, losing nothing),
//! never a request mixing old and new samples.
//!
//! The file holds two slots of the same size, written alternately in place (one `pwrite`
//! per update, no new file, so a busy queue dirties one page rather than creating a file per
//! batch); each slot carries a sequence number and a CRC, and the newest intact slot wins, so
//! an update torn by a power loss falls back to the previous one. Updates are not fsynced one
//! by one: a crash of the process keeps what the page cache holds; a power loss may fall back
//! to the last fsync (every few seconds), which only means more duplicates.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"ANRP";
const VERSION: u8 = 2;
const HEADER: usize = 4 + 1 + 8 + 4;
const MARK_LEN: usize = 16;

/// The position of one sample in the WAL: its record's segment and offset, and its index in
/// the record. Ordered as the WAL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mark {
    /// Segment index.
    pub segment: u32,
    /// Offset of the record's first fragment in the segment.
    pub offset: u64,
    /// Index of the sample in its record.
    pub index: u32,
}

impl Mark {
    /// The mark before every sample of `segment`.
    pub fn segment_start(segment: u32) -> Mark {
        Mark {
            segment,
            offset: 0,
            index: 0,
        }
    }

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.segment.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.index.to_le_bytes());
    }

    fn get(b: &[u8]) -> Mark {
        Mark {
            segment: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            offset: u64::from_le_bytes(b[4..12].try_into().expect("8 bytes")),
            index: u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")),
        }
    }
}

/// One shard's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardProgress {
    /// Every sample of this shard at or before this mark is acknowledged (or dropped and
    /// counted). `None`: nothing is, the shard starts at the beginning of the WAL.
    pub acked: Option<Mark>,
    /// The end of the batch in flight, if one is: samples in `(acked, sent]` are re-sent as
    /// one batch after a restart.
    pub sent: Option<Mark>,
}

/// The progress of one remote-write queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    /// Per shard; the shard of a series is `hash(labels) % shards.len()`.
    pub shards: Vec<ShardProgress>,
}

/// The progress file is unreadable.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// I/O failed.
    #[error("progress file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The bytes are not a progress file.
    #[error("progress file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

impl Progress {
    /// The earliest mark from which the WAL must be read again: every sample before it is
    /// acknowledged in every shard. `None`: from the beginning.
    pub fn resume_from(&self) -> Option<Mark> {
        let mut min: Option<Mark> = None;
        for s in &self.shards {
            let a = s.acked?;
            min = Some(min.map_or(a, |m| m.min(a)));
        }
        min
    }

    /// Serialises one slot: magic, version, sequence number, shard count, then `acked` and
    /// `sent` per shard (a flag byte each and a 16-byte mark), then CRC-32C of everything
    /// before.
    pub fn encode(&self, seq: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 4 + self.shards.len() * 34);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(self.shards.len() as u32).to_le_bytes());
        for s in &self.shards {
            for m in [s.acked, s.sent] {
                match m {
                    Some(m) => {
                        out.push(1);
                        m.put(&mut out);
                    }
                    None => {
                        out.push(0);
                        out.extend_from_slice(&[0; MARK_LEN]);
                    }
                }
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses one slot of [`Progress::encode`]; returns it with its sequence number. Never
    /// panics.
    pub fn decode(b: &[u8]) -> Result<(Progress, u64), &'static str> {
        if b.len() < HEADER + 4 {
            return Err("too short");
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err("checksum mismatch");
        }
        if &body[..4] != MAGIC {
            return Err("bad magic");
        }
        if body[4] != VERSION {
            return Err("unknown version");
        }
        let seq = u64::from_le_bytes(body[5..13].try_into().expect("8 bytes"));
        let n = u32::from_le_bytes(body[13..17].try_into().expect("4 bytes")) as usize;
        let rest = &body[17..];
        if rest.len() != n.saturating_mul(2 * (1 + MARK_LEN)) {
            return Err("length does not match the shard count");
        }
        let mut shards = Vec::with_capacity(n);
        for chunk in rest.chunks_exact(2 * (1 + MARK_LEN)) {
            let get = |at: usize| -> Result<Option<Mark>, &'static str> {
                match chunk[at] {
                    0 => Ok(None),
                    1 => Ok(Some(Mark::get(&chunk[at + 1..at + 1 + MARK_LEN]))),
                    _ => Err("bad flag byte"),
                }
            };
            shards.push(ShardProgress {
                acked: get(0)?,
                sent: get(1 + MARK_LEN)?,
            });
        }
        Ok((Progress { shards }, seq))
    }

    /// Reads `path`: the newest intact slot and its sequence number; `Ok(None)` if the file
    /// does not exist.
    pub fn load(path: &Path) -> Result<Option<(Progress, u64)>, ProgressError> {
        let b = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ProgressError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let corrupt = |reason| ProgressError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        if b.len() % 2 != 0 {
            return Err(corrupt("odd length"));
        }
        let (a, c) = b.split_at(b.len() / 2);
        match (Progress::decode(a), Progress::decode(c)) {
            (Ok(x), Ok(y)) => Ok(Some(if x.1 >= y.1 { x } else { y })),
            (Ok(x), Err(_)) | (Err(_), Ok(x)) => Ok(Some(x)),
            (Err(e), Err(_)) => Err(corrupt(e)),
        }
    }

    /// Writes slot `seq % 2` of `path` in place (the whole file, both slots, when it does not
    /// have the size this progress needs); fsyncs if `sync`.
    pub fn store(&self, path: &Path, seq: u64, sync: bool) -> Result<(), ProgressError> {
        let io = |source| ProgressError::Io {
            path: path.to_owned(),
            source,
        };
        let slot = self.encode(seq);
        let len = slot.len() as u64;
        let f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        if size != 2 * len {
            // New file or another shard count: write both slots through a temporary file, so
            // a crash leaves the old file or the new one.
            drop(f);
            let tmp = path.with_extension("tmp");
            let mut t = fs::File::create(&tmp).map_err(io)?;
            t.write_all(&slot).map_err(io)?;
            t.write_all(&slot).map_err(io)?;
            t.sync_all().map_err(io)?;
            drop(t);
            fs::rename(&tmp, path).map_err(io)?;
            if let Some(dir) = path.parent() {
                fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
            return Ok(());
        }
        f.write_all_at(&slot, (seq % 2) * len).map_err(io)?;
        if sync {
            f.sync_data().map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mark() -> impl Strategy<Value = Option<Mark>> {
        proptest::option::of((any::<u32>(), any::<u64>(), any::<u32>()).prop_map(
            |(segment, offset, index)| Mark {
                segment,
                offset,
                index,
            },
        ))
    }

    proptest! {
        #[test]
        fn round_trip(shards in proptest::collection::vec((mark(), mark()), 0..20)) {
            let p = Progress { shards: shards.into_iter().map(|(acked, sent)| ShardProgress { acked, sent }).collect() };
            prop_assert_eq!(Progress::decode(&p.encode(7)).unwrap(), (p, 7));
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Progress::decode(&b);
        }
    }

    #[test]
    fn flipped_bits_are_detected() {
        let p = Progress {
            shards: vec![ShardProgress {
                acked: Some(Mark::segment_start(3)),
                sent: None,
            }],
        };
        let b = p.encode(1);
        for i in 0..b.len() * 8 {
            let mut c = b.clone();
            c[i / 8] ^= 1 << (i % 8);
            assert!(Progress::decode(&c).is_err(), "bit {i}");
        }
    }

    #[test]
    fn resume_is_the_earliest_ack() {
        let m = |s| Some(Mark::segment_start(s));
        let p = Progress {
            shards: vec![
                ShardProgress {
                    acked: m(4),
                    sent: m(5),
                },
                ShardProgress {
                    acked: m(2),
                    sent: None,
                },
            ],
        };
        assert_eq!(p.resume_from(), m(2));
        let p = Progress {
            shards: vec![
                ShardProgress {
                    acked: m(4),
                    sent: None,
                },
                ShardProgress::default(),
            ],
        };
        assert_eq!(p.resume_from(), None);
    }

    #[test]
    fn store_and_load() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("q.progress");
        assert_eq!(Progress::load(&path).unwrap(), None);
        let p = Progress {
            shards: vec![ShardProgress::default(); 3],
        };
        p.store(&path, 1, true).unwrap();
        assert_eq!(Progress::load(&path).unwrap(), Some((p.clone(), 1)));
        let mut q = p.clone();
        q.shards[1].acked = Some(Mark::segment_start(9));
        q.store(&path, 2, false).unwrap();
        assert_eq!(Progress::load(&path).unwrap(), Some((q.clone(), 2)));
        // A torn newest slot falls back to the other one.
        let len = std::fs::metadata(&path).unwrap().len() as usize / 2;
        let mut b = std::fs::read(&path).unwrap();
        b[5] ^= 1;
        std::fs::write(&path, &b).unwrap();
        assert_eq!(Progress::load(&path).unwrap(), Some((p.clone(), 1)));
        b[len + 5] ^= 1;
        std::fs::write(&path, &b).unwrap();
        assert!(Progress::load(&path).is_err());
        // Another shard count rewrites the file.
        let r = Progress {
            shards: vec![ShardProgress::default(); 5],
        };
        r.store(&path, 3, false).unwrap();
        assert_eq!(Progress::load(&path).unwrap(), Some((r, 3)));
        std::fs::write(&path, b"nonsense").unwrap();
        assert!(matches!(
            Progress::load(&path),
            Err(ProgressError::Corrupt { .. })
        ));
    }
}
