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
//! The file is replaced atomically (write to `.tmp`, rename). It is not fsynced on every
//! update: a crash of the process keeps what the page cache holds; a power loss may fall back
//! to the last fsync (every few seconds), which only means more duplicates.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"ANRP";
const VERSION: u8 = 1;
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

    /// Serialises: magic, version, shard count, then `acked` and `sent` per shard (a flag
    /// byte each and a 16-byte mark), then CRC-32C of everything before.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(13 + self.shards.len() * 34);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
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

    /// Parses [`Progress::encode`]'s bytes; never panics.
    pub fn decode(b: &[u8]) -> Result<Progress, &'static str> {
        if b.len() < 13 {
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
        let n = u32::from_le_bytes(body[5..9].try_into().expect("4 bytes")) as usize;
        let rest = &body[9..];
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
        Ok(Progress { shards })
    }

    /// Reads `path`; `Ok(None)` if it does not exist.
    pub fn load(path: &Path) -> Result<Option<Progress>, ProgressError> {
        match fs::read(path) {
            Ok(b) => Progress::decode(&b)
                .map(Some)
                .map_err(|reason| ProgressError::Corrupt {
                    path: path.to_owned(),
                    reason,
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ProgressError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Replaces `path` atomically; fsyncs the file and its directory if `sync`.
    pub fn store(&self, path: &Path, sync: bool) -> Result<(), ProgressError> {
        let io = |source| ProgressError::Io {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(&self.encode()).map_err(io)?;
        if sync {
            f.sync_all().map_err(io)?;
        }
        drop(f);
        fs::rename(&tmp, path).map_err(io)?;
        if sync {
            if let Some(dir) = path.parent() {
                fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
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
            prop_assert_eq!(Progress::decode(&p.encode()).unwrap(), p);
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
        let b = p.encode();
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
        p.store(&path, true).unwrap();
        assert_eq!(Progress::load(&path).unwrap(), Some(p));
        std::fs::write(&path, b"nonsense").unwrap();
        assert!(matches!(
            Progress::load(&path),
            Err(ProgressError::Corrupt { .. })
        ));
    }
}
