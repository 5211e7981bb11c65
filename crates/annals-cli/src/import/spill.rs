//! Spill files: the validated samples of the input, partitioned by block window, so that each
//! window can be built with only its own series in memory after a single pass over the input.
//!
//! One file per window holds records `uvarint line delta | varint time delta | f64 LE value bits
//! | uvarint key length | key`, deltas taken from the previous record of the same file. At most
//! [`MAX_OPEN`] files are open at once; the least recently used one is closed (and reopened
//! for appending when needed), so inputs touching many windows at a time still work.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use annals::unstable::encoding::{put_uvarint, put_varint};

/// Spill files kept open at once.
pub const MAX_OPEN: usize = 32;
const BUF_SIZE: usize = 128 << 10;

struct WindowFile {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    last_use: u64,
    samples: u64,
    last_line: u64,
    last_t: i64,
}

/// The spill files of one import, being written.
pub struct SpillWriter {
    dir: PathBuf,
    windows: BTreeMap<i64, WindowFile>,
    open: usize,
    clock: u64,
    rec: Vec<u8>,
}

/// A finished spill file.
#[derive(Debug, Clone)]
pub struct Spilled {
    /// Window index (window start = index × block duration).
    pub window: i64,
    /// The file.
    pub path: PathBuf,
    /// Number of records.
    pub samples: u64,
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> super::ImportError + '_ {
    move |e| super::ImportError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

impl SpillWriter {
    /// Spill files will be created in `dir`, which must exist.
    pub fn new(dir: &Path) -> SpillWriter {
        SpillWriter {
            dir: dir.to_path_buf(),
            windows: BTreeMap::new(),
            open: 0,
            clock: 0,
            rec: Vec::with_capacity(256),
        }
    }

    /// Appends a sample with its input line and series key to the file of `window`.
    pub fn push(
        &mut self,
        window: i64,
        line: u64,
        t: i64,
        v: f64,
        key: &[u8],
    ) -> Result<(), super::ImportError> {
        self.clock += 1;
        if !self.windows.contains_key(&window) {
            let path = self.dir.join(format!("window{window}.spill"));
            self.windows.insert(
                window,
                WindowFile {
                    path,
                    writer: None,
                    last_use: 0,
                    samples: 0,
                    last_line: 0,
                    last_t: 0,
                },
            );
        }
        let needs_open = self.windows[&window].writer.is_none();
        if needs_open {
            if self.open >= MAX_OPEN {
                self.close_least_recent()?;
            }
            let w = self.windows.get_mut(&window).expect("inserted above");
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&w.path)
                .map_err(io_at(&w.path))?;
            w.writer = Some(BufWriter::with_capacity(BUF_SIZE, f));
            self.open += 1;
        }
        let w = self.windows.get_mut(&window).expect("inserted above");
        w.last_use = self.clock;
        let r = &mut self.rec;
        r.clear();
        put_uvarint(r, line.wrapping_sub(w.last_line));
        put_varint(r, t.wrapping_sub(w.last_t));
        r.extend_from_slice(&v.to_bits().to_le_bytes());
        put_uvarint(r, key.len() as u64);
        r.extend_from_slice(key);
        w.writer
            .as_mut()
            .expect("opened above")
            .write_all(r)
            .map_err(io_at(&w.path))?;
        w.last_line = line;
        w.last_t = t;
        w.samples += 1;
        Ok(())
    }

    fn close_least_recent(&mut self) -> Result<(), super::ImportError> {
        let victim = self
            .windows
            .values_mut()
            .filter(|w| w.writer.is_some())
            .min_by_key(|w| w.last_use);
        if let Some(w) = victim {
            if let Some(mut f) = w.writer.take() {
                f.flush().map_err(io_at(&w.path))?;
            }
            self.open -= 1;
        }
        Ok(())
    }

    /// Flushes and closes every file; returns them by window, oldest first.
    pub fn finish(self) -> Result<Vec<Spilled>, super::ImportError> {
        let mut out = Vec::with_capacity(self.windows.len());
        for (window, mut w) in self.windows {
            if let Some(mut f) = w.writer.take() {
                f.flush().map_err(io_at(&w.path))?;
            }
            out.push(Spilled {
                window,
                path: w.path,
                samples: w.samples,
            });
        }
        Ok(out)
    }
}

/// Reads the records of one spill file back.
pub struct SpillReader {
    r: BufReader<File>,
    path: PathBuf,
    last_line: u64,
    last_t: i64,
}

/// One record read back; the key is in the caller's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// Input line of the sample.
    pub line: u64,
    /// Timestamp (ms).
    pub t: i64,
    /// Value.
    pub v: f64,
}

impl SpillReader {
    /// Opens a spill file.
    pub fn open(path: &Path) -> Result<SpillReader, super::ImportError> {
        let f = File::open(path).map_err(io_at(path))?;
        Ok(SpillReader {
            r: BufReader::with_capacity(BUF_SIZE, f),
            path: path.to_path_buf(),
            last_line: 0,
            last_t: 0,
        })
    }

    fn uvarint(&mut self) -> io::Result<Option<u64>> {
        let mut x = 0u64;
        for shift in (0..70).step_by(7) {
            let mut b = [0u8];
            if self.r.read(&mut b)? == 0 {
                if shift == 0 {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if shift == 63 && b[0] > 1 {
                break;
            }
            x |= u64::from(b[0] & 0x7f) << shift;
            if b[0] < 0x80 {
                return Ok(Some(x));
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "varint overflows 64 bits",
        ))
    }

    fn need(&mut self) -> io::Result<u64> {
        self.uvarint()?
            .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
    }

    fn read_record(&mut self, key: &mut Vec<u8>) -> io::Result<Option<Record>> {
        let Some(dl) = self.uvarint()? else {
            return Ok(None);
        };
        let dt = annals::unstable::encoding::zigzag_decode(self.need()?);
        let mut v = [0u8; 8];
        self.r.read_exact(&mut v)?;
        let n = self.need()?;
        key.clear();
        (&mut self.r).take(n).read_to_end(key)?;
        if key.len() as u64 != n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.last_line = self.last_line.wrapping_add(dl);
        self.last_t = self.last_t.wrapping_add(dt);
        Ok(Some(Record {
            line: self.last_line,
            t: self.last_t,
            v: f64::from_bits(u64::from_le_bytes(v)),
        }))
    }

    /// The next record, its key in `key`; `None` at the end.
    pub fn next_record(&mut self, key: &mut Vec<u8>) -> Result<Option<Record>, super::ImportError> {
        let path = self.path.clone();
        self.read_record(key).map_err(io_at(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_per_window_in_order_with_many_windows_open() {
        let d = tempfile::tempdir().unwrap();
        let mut w = SpillWriter::new(d.path());
        let n_windows = MAX_OPEN as i64 * 2 + 3;
        type Rec = (u64, i64, u64, Vec<u8>);
        let mut want: BTreeMap<i64, Vec<Rec>> = BTreeMap::new();
        let mut line = 0;
        for round in 0..5i64 {
            for win in -3..n_windows - 3 {
                line += 1;
                let t = win * 1000 + round * 7 - 500;
                let v = f64::from_bits((line * 0x9e37_79b9) ^ 0x7ff8_0000_0000_0001);
                let key = vec![win as u8; (round as usize * 50) % 130];
                w.push(win, line, t, v, &key).unwrap();
                want.entry(win)
                    .or_default()
                    .push((line, t, v.to_bits(), key));
            }
        }
        let files = w.finish().unwrap();
        assert_eq!(files.len(), n_windows as usize);
        for f in files {
            let mut r = SpillReader::open(&f.path).unwrap();
            let mut key = Vec::new();
            let mut got = Vec::new();
            while let Some(rec) = r.next_record(&mut key).unwrap() {
                got.push((rec.line, rec.t, rec.v.to_bits(), key.clone()));
            }
            assert_eq!(f.samples as usize, got.len());
            assert_eq!(got, want[&f.window], "window {}", f.window);
        }
    }

    #[test]
    fn truncated_files_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let mut w = SpillWriter::new(d.path());
        w.push(0, 1, 2, 3.0, b"key").unwrap();
        let f = w.finish().unwrap().remove(0);
        let bytes = std::fs::read(&f.path).unwrap();
        for cut in 1..bytes.len() {
            std::fs::write(&f.path, &bytes[..cut]).unwrap();
            let mut r = SpillReader::open(&f.path).unwrap();
            assert!(r.next_record(&mut Vec::new()).is_err(), "cut at {cut}");
        }
    }
}
