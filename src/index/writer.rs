//! Streaming index writer, format v2 (brief §1.7).
//!
//! The caller hands over the complete, sorted symbol set first (the symbol table precedes the
//! series), then every series in label order with its chunk metas. Series entries go to disk
//! as they come; what stays in memory is the symbol map and the postings, as `u32` series refs
//! per (name, value) pair. `finish` writes the postings, the offset tables and the TOC.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::encoding::{crc32c, put_string, put_uvarint, put_varint};
use crate::error::{Error, InputError, IoContext, Result};
use crate::fs::File;
use crate::model::Label;

use super::{BlockSeriesRef, ChunkMeta, Toc, FORMAT_V2, MAGIC, SERIES_ALIGN};

/// Largest index Prometheus accepts: series refs are `u32` offsets divided by 16.
const MAX_INDEX_LEN: u64 = 16 * u32::MAX as u64;

/// Choices that only change which optional bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Write `""` as symbol 0 even if the caller's symbols lack it. Blocks cut from a
    /// Prometheus head always carry it (§1.7.2); readers do not need it.
    pub include_empty_symbol: bool,
    /// Write the label index sections and the label offset table that 2.x writers emit and
    /// readers since 2.15 ignore (§1.7.6). Needed for byte identity with 2.x and for
    /// Prometheus ≤ 2.14 readers.
    pub legacy_label_indices: bool,
}

impl Default for WriterOptions {
    /// Both on: the output matches what Prometheus 2.x writes byte for byte.
    fn default() -> Self {
        WriterOptions {
            include_empty_symbol: true,
            legacy_label_indices: true,
        }
    }
}

/// Formats a label list like `Labels`' `Display`, for error messages.
pub(crate) fn fmt_series<'a>(labels: impl IntoIterator<Item = &'a Label<'a>>) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.into_iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{}={:?}", l.name, l.value);
    }
    s.push('}');
    s
}

/// Checks the chunk ordering rules of §1.4 for one series; `last_ref` is the highest chunk
/// ref of the previous series. Returns the highest ref of this series.
pub(crate) fn validate_chunks(
    chunks: &[ChunkMeta],
    mut last_ref: u64,
    series: impl Fn() -> String,
) -> std::result::Result<u64, InputError> {
    for (i, c) in chunks.iter().enumerate() {
        if c.chunk_ref < last_ref {
            return Err(InputError::ChunkRefOutOfOrder {
                series: series(),
                chunk_ref: c.chunk_ref,
                previous: last_ref,
            });
        }
        last_ref = c.chunk_ref;
        if i > 0 && c.min_time <= chunks[i - 1].max_time {
            return Err(InputError::ChunkTimeOverlap {
                series: series(),
                min_time: c.min_time,
                previous_max_time: chunks[i - 1].max_time,
            });
        }
        if c.max_time < c.min_time {
            return Err(InputError::ChunkTimeInverted {
                series: series(),
                min_time: c.min_time,
                max_time: c.max_time,
            });
        }
    }
    Ok(last_ref)
}

/// Streaming writer of one index file. See the module docs for the protocol.
pub struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    pos: u64,
    opts: WriterOptions,
    /// Symbol -> ordinal.
    symbols: HashMap<Box<str>, u32>,
    toc: Toc,
    /// Flattened (name, value) ordinals of the last series; ordinal order is byte order, so
    /// comparing these sequences is `labels.Compare`.
    last_series: Vec<u32>,
    cur_series: Vec<u32>,
    last_chunk_ref: u64,
    /// Refs of every series, in order: the `("", "")` list.
    all: Vec<u32>,
    /// `(name_ordinal << 32 | value_ordinal)` -> series refs, increasing.
    postings: HashMap<u64, Vec<u32>>,
    buf: Vec<u8>,
    /// Set after an I/O error: the file is inconsistent and further calls fail.
    failed: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("index::Writer")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .field("symbols", &self.symbols.len())
            .field("series", &self.all.len())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Creates (or truncates) the index at `path` and writes the header and symbol table.
    ///
    /// `symbols` must be strictly increasing byte-wise and contain every label name and value
    /// of the series that will be added (extra symbols are allowed).
    pub fn create<S: AsRef<str>>(
        path: impl AsRef<Path>,
        opts: WriterOptions,
        symbols: impl IntoIterator<Item = S>,
    ) -> Result<Writer> {
        let path = path.as_ref().to_path_buf();
        // The symbol table is assembled in memory first: its length precedes it.
        let mut table = Vec::with_capacity(1 << 12);
        table.extend_from_slice(&[0u8; 8]); // len, #symbols
        let mut map: HashMap<Box<str>, u32> = HashMap::new();
        let mut prev: Option<Box<str>> = None;
        let mut add =
            |sym: &str, table: &mut Vec<u8>, map: &mut HashMap<Box<str>, u32>| -> Result<()> {
                if let Some(p) = &prev {
                    if sym <= &**p {
                        return Err(InputError::SymbolOutOfOrder {
                            symbol: sym.to_owned(),
                            previous: p.to_string(),
                        }
                        .into());
                    }
                }
                let ord = u32::try_from(map.len()).map_err(|_| Error::LimitExceeded {
                    limit: crate::error::Limit::Format,
                    reason: "more than 2^32 symbols in one index".into(),
                })?;
                put_string(table, sym.as_bytes());
                let b: Box<str> = sym.into();
                map.insert(b.clone(), ord);
                prev = Some(b);
                Ok(())
            };
        let mut first = true;
        for s in symbols {
            let s = s.as_ref();
            if first && opts.include_empty_symbol && !s.is_empty() {
                add("", &mut table, &mut map)?;
            }
            first = false;
            add(s, &mut table, &mut map)?;
        }
        if first && opts.include_empty_symbol {
            add("", &mut table, &mut map)?;
        }
        let len = u32::try_from(table.len() - 4).map_err(|_| Error::LimitExceeded {
            limit: crate::error::Limit::Format,
            reason: "symbol table exceeds 4 GiB".into(),
        })?;
        table[0..4].copy_from_slice(&len.to_be_bytes());
        table[4..8].copy_from_slice(&(map.len() as u32).to_be_bytes());
        let crc = crc32c(&table[4..]);
        table.extend_from_slice(&crc.to_be_bytes());

        let file = File::create(&path).at(&path)?;
        let mut w = Writer {
            path,
            out: BufWriter::with_capacity(1 << 20, file),
            pos: 0,
            opts,
            symbols: map,
            toc: Toc::default(),
            last_series: Vec::new(),
            cur_series: Vec::new(),
            last_chunk_ref: 0,
            all: Vec::new(),
            postings: HashMap::new(),
            buf: Vec::with_capacity(256),
            failed: false,
        };
        let mut header = [0u8; 5];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = FORMAT_V2;
        w.write(&header)?;
        w.toc.symbols = w.pos;
        w.write(&table)?;
        w.toc.series = w.pos;
        Ok(w)
    }

    /// Number of symbols in the table (including `""` if written).
    #[cfg(test)]
    pub fn num_symbols(&self) -> usize {
        self.symbols.len()
    }

    /// Number of series added so far.
    #[cfg(test)]
    pub fn num_series(&self) -> usize {
        self.all.len()
    }

    /// Appends one series. It must sort after the previous one, its labels must be sorted by
    /// name with unique names and non-empty values, all present in the symbol table, and its
    /// chunks must satisfy §1.4's ordering rules. Returns the series ref (offset / 16).
    ///
    /// On an [`Error::InvalidIndexInput`] nothing was written and the writer stays usable.
    pub fn add_series<'a>(
        &mut self,
        labels: impl IntoIterator<Item = Label<'a>>,
        chunks: &[ChunkMeta],
    ) -> Result<BlockSeriesRef> {
        self.check_usable()?;
        let labels: Vec<Label<'a>> = labels.into_iter().collect();
        let series = || fmt_series(&labels);
        if labels.is_empty() {
            return Err(InputError::EmptyLabel { series: series() }.into());
        }
        self.cur_series.clear();
        for (i, l) in labels.iter().enumerate() {
            if l.name.is_empty() || l.value.is_empty() {
                return Err(InputError::EmptyLabel { series: series() }.into());
            }
            if i > 0 {
                let prev = labels[i - 1].name;
                if l.name == prev {
                    return Err(InputError::DuplicateLabelName {
                        series: series(),
                        name: l.name.to_owned(),
                    }
                    .into());
                }
                if l.name < prev {
                    return Err(InputError::UnsortedLabels { series: series() }.into());
                }
            }
            for s in [l.name, l.value] {
                match self.symbols.get(s) {
                    Some(&o) => self.cur_series.push(o),
                    None => {
                        return Err(InputError::MissingSymbol {
                            series: series(),
                            symbol: s.to_owned(),
                        }
                        .into())
                    }
                }
            }
        }
        if !self.last_series.is_empty() && self.cur_series <= self.last_series {
            return Err(InputError::SeriesOutOfOrder {
                series: series(),
                previous: self.describe_last_series(),
            }
            .into());
        }
        let last_ref = validate_chunks(chunks, self.last_chunk_ref, series)?;

        let pad = (SERIES_ALIGN - self.pos % SERIES_ALIGN) % SERIES_ALIGN;
        let offset = self.pos + pad;
        let sref = u32::try_from(offset / SERIES_ALIGN).map_err(|_| Error::LimitExceeded {
            limit: crate::error::Limit::Format,
            reason: "index exceeds 64 GiB: series refs no longer fit in 32 bits".into(),
        })?;

        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        put_uvarint(&mut b, labels.len() as u64);
        for &o in &self.cur_series {
            put_uvarint(&mut b, u64::from(o));
        }
        put_uvarint(&mut b, chunks.len() as u64);
        if let Some((c0, rest)) = chunks.split_first() {
            // Deltas in Go's wrapping int64 arithmetic (§1.7.3); validated non-negative above.
            put_varint(&mut b, c0.min_time);
            put_uvarint(&mut b, c0.max_time.wrapping_sub(c0.min_time) as u64);
            put_uvarint(&mut b, c0.chunk_ref);
            let (mut t0, mut r0) = (c0.max_time, c0.chunk_ref as i64);
            for c in rest {
                put_uvarint(&mut b, c.min_time.wrapping_sub(t0) as u64);
                put_uvarint(&mut b, c.max_time.wrapping_sub(c.min_time) as u64);
                put_varint(&mut b, (c.chunk_ref as i64).wrapping_sub(r0));
                t0 = c.max_time;
                r0 = c.chunk_ref as i64;
            }
        }
        let crc = crc32c(&b);
        let mut head = Vec::with_capacity(10 + pad as usize);
        head.resize(pad as usize, 0);
        put_uvarint(&mut head, b.len() as u64);
        b.extend_from_slice(&crc.to_be_bytes());
        let res = self.write(&head).and_then(|_| self.write(&b));
        self.buf = b;
        res?;

        self.all.push(sref);
        for pair in self.cur_series.chunks_exact(2) {
            let key = u64::from(pair[0]) << 32 | u64::from(pair[1]);
            self.postings.entry(key).or_default().push(sref);
        }
        std::mem::swap(&mut self.last_series, &mut self.cur_series);
        self.last_chunk_ref = last_ref;
        Ok(sref)
    }

    fn describe_last_series(&self) -> String {
        let by_ord = self.symbols_by_ordinal();
        let labels: Vec<Label<'_>> = self
            .last_series
            .chunks_exact(2)
            .map(|p| Label {
                name: by_ord[p[0] as usize],
                value: by_ord[p[1] as usize],
            })
            .collect();
        fmt_series(&labels)
    }

    fn symbols_by_ordinal(&self) -> Vec<&str> {
        let mut v = vec![""; self.symbols.len()];
        for (s, &o) in &self.symbols {
            v[o as usize] = s;
        }
        v
    }

    /// Writes the postings, the offset tables and the TOC, flushes and fsyncs the file.
    /// Returns the size of the index in bytes.
    pub fn finish(mut self) -> Result<u64> {
        self.check_usable()?;
        // Taken out of `self` so the strings can be borrowed while writing.
        let symbols = std::mem::take(&mut self.symbols);
        let mut table = vec![""; symbols.len()];
        for (s, &o) in &symbols {
            table[o as usize] = s;
        }
        let by_ord = |o: u32| -> &str { table[o as usize] };
        let mut keys: Vec<u64> = self.postings.keys().copied().collect();
        keys.sort_unstable();

        // Legacy label index sections (§1.7.6): one per name, values by ordinal.
        self.toc.label_indices = self.pos;
        let mut label_index_offsets: Vec<(u32, u64)> = Vec::new();
        if self.opts.legacy_label_indices {
            let mut i = 0;
            while i < keys.len() {
                let name = (keys[i] >> 32) as u32;
                let j = i + keys[i..].partition_point(|k| (k >> 32) as u32 == name);
                self.pad(4)?;
                label_index_offsets.push((name, self.pos));
                let n = j - i;
                let mut b = Vec::with_capacity(16 + 4 * n);
                let len = section_len(8 + 4 * n, "label index")?;
                b.extend_from_slice(&len.to_be_bytes());
                b.extend_from_slice(&1u32.to_be_bytes());
                b.extend_from_slice(&(n as u32).to_be_bytes());
                for k in &keys[i..j] {
                    b.extend_from_slice(&(*k as u32).to_be_bytes());
                }
                let crc = crc32c(&b[4..]);
                b.extend_from_slice(&crc.to_be_bytes());
                self.write(&b)?;
                i = j;
            }
        }

        // Postings lists (§1.7.4): ("", "") first, then by name and value.
        self.toc.postings = self.pos;
        let all = std::mem::take(&mut self.all);
        let mut offsets: Vec<(u64, u64)> = Vec::with_capacity(keys.len());
        self.pad(4)?;
        let all_offset = self.pos;
        self.write_postings_list(&all)?;
        drop(all);
        for &k in &keys {
            let list = self.postings.remove(&k).unwrap_or_default();
            self.pad(4)?;
            offsets.push((k, self.pos));
            self.write_postings_list(&list)?;
        }

        // Legacy label offset table (§1.7.6).
        self.toc.label_indices_table = self.pos;
        if self.opts.legacy_label_indices {
            let mut b = vec![0u8; 4];
            b.extend_from_slice(&(label_index_offsets.len() as u32).to_be_bytes());
            for &(name, off) in &label_index_offsets {
                put_uvarint(&mut b, 1);
                put_string(&mut b, by_ord(name).as_bytes());
                put_uvarint(&mut b, off);
            }
            self.write_table(b, "label offset table")?;
        }

        // Postings offset table (§1.7.5).
        self.toc.postings_offset_table = self.pos;
        let mut b = vec![0u8; 4];
        let count = u32::try_from(offsets.len() + 1).map_err(|_| Error::LimitExceeded {
            limit: crate::error::Limit::Format,
            reason: "more than 2^32 postings lists".into(),
        })?;
        b.extend_from_slice(&count.to_be_bytes());
        put_uvarint(&mut b, 2);
        put_string(&mut b, b"");
        put_string(&mut b, b"");
        put_uvarint(&mut b, all_offset);
        for &(k, off) in &offsets {
            put_uvarint(&mut b, 2);
            put_string(&mut b, by_ord((k >> 32) as u32).as_bytes());
            put_string(&mut b, by_ord(k as u32).as_bytes());
            put_uvarint(&mut b, off);
        }
        self.write_table(b, "postings offset table")?;

        let toc = self.toc.encode();
        self.write(&toc)?;
        self.out.flush().at(&self.path)?;
        self.out.get_ref().sync_all().at(&self.path)?;
        Ok(self.pos)
    }

    fn write_postings_list(&mut self, refs: &[u32]) -> Result<()> {
        let mut b = Vec::with_capacity(12 + 4 * refs.len());
        let len = section_len(4 + 4 * refs.len(), "postings list")?;
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&(refs.len() as u32).to_be_bytes());
        for r in refs {
            b.extend_from_slice(&r.to_be_bytes());
        }
        let crc = crc32c(&b[4..]);
        b.extend_from_slice(&crc.to_be_bytes());
        self.write(&b)
    }

    /// Fills in the length of a `len ‖ body ‖ CRC` table whose first 4 bytes are reserved.
    fn write_table(&mut self, mut b: Vec<u8>, what: &str) -> Result<()> {
        let len = section_len(b.len() - 4, what)?;
        b[..4].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c(&b[4..]);
        b.extend_from_slice(&crc.to_be_bytes());
        self.write(&b)
    }

    fn pad(&mut self, align: u64) -> Result<()> {
        let p = (align - self.pos % align) % align;
        self.write(&[0u8; 16][..p as usize])
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed {
            return Err(Error::InvalidArgument(format!(
                "index writer for {} failed earlier; the file is incomplete",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        if self.pos + b.len() as u64 > MAX_INDEX_LEN {
            self.failed = true;
            return Err(Error::LimitExceeded {
                limit: crate::error::Limit::Format,
                reason: format!("index {} would exceed 64 GiB", self.path.display()),
            });
        }
        if let Err(e) = self.out.write_all(b) {
            self.failed = true;
            return Err(Error::io(&self.path, e));
        }
        self.pos += b.len() as u64;
        Ok(())
    }
}

fn section_len(n: usize, what: &str) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::LimitExceeded {
        limit: crate::error::Limit::Format,
        reason: format!("{what} exceeds 4 GiB"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn cm(min_time: i64, max_time: i64, chunk_ref: u64) -> ChunkMeta {
        ChunkMeta {
            min_time,
            max_time,
            chunk_ref,
        }
    }

    fn ls(p: &[(&str, &str)]) -> Labels {
        Labels::new(p.iter().copied()).unwrap()
    }

    fn writer(dir: &tempfile::TempDir, symbols: &[&str]) -> Writer {
        Writer::create(
            dir.path().join("index"),
            WriterOptions::default(),
            symbols.iter(),
        )
        .unwrap()
    }

    fn input_err(r: Result<impl std::fmt::Debug>) -> InputError {
        match r {
            Err(Error::InvalidIndexInput(e)) => e,
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    /// Prometheus `TestChunksRefOrdering`: refs may not decrease across series.
    #[test]
    fn chunk_refs_must_not_decrease_across_series() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir, &["1", "2", "__name__", "a", "b"]);
        w.add_series(&ls(&[("a", "1")]), &[cm(0, 1, 10), cm(2, 3, 20)])
            .unwrap();
        let e = input_err(w.add_series(&ls(&[("a", "2")]), &[cm(0, 1, 19)]));
        assert!(matches!(
            e,
            InputError::ChunkRefOutOfOrder {
                chunk_ref: 19,
                previous: 20,
                ..
            }
        ));
        // Equal refs are allowed (Prometheus checks `<`), and the writer is still usable.
        w.add_series(&ls(&[("a", "2")]), &[cm(0, 1, 20)]).unwrap();
        // Within a series too.
        let e = input_err(w.add_series(
            &ls(&[("a", "2"), ("b", "1")]),
            &[cm(0, 1, 30), cm(2, 3, 25)],
        ));
        assert!(matches!(e, InputError::ChunkRefOutOfOrder { .. }));
        w.finish().unwrap();
    }

    /// Prometheus `TestChunksTimeOrdering`: chunks of a series must not overlap.
    #[test]
    fn chunks_of_a_series_must_be_time_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir, &["1", "a"]);
        let s = ls(&[("a", "1")]);
        let e = input_err(w.add_series(&s, &[cm(0, 10, 1), cm(10, 20, 2)]));
        assert!(matches!(
            e,
            InputError::ChunkTimeOverlap {
                min_time: 10,
                previous_max_time: 10,
                ..
            }
        ));
        let e = input_err(w.add_series(&s, &[cm(0, 10, 1), cm(5, 8, 2)]));
        assert!(matches!(e, InputError::ChunkTimeOverlap { .. }));
        let e = input_err(w.add_series(&s, &[cm(11, 10, 1)]));
        assert!(matches!(
            e,
            InputError::ChunkTimeInverted {
                min_time: 11,
                max_time: 10,
                ..
            }
        ));
        w.add_series(&s, &[cm(0, 10, 1), cm(11, 20, 2)]).unwrap();
    }

    /// Prometheus `TestWriter_ShouldReturnErrorOnSeriesWithDuplicatedLabelNames`. `Labels`
    /// cannot hold duplicates, so the raw-label entry point is exercised.
    #[test]
    fn duplicated_or_unsorted_label_names_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir, &["__name__", "a", "b", "c", "d"]);
        let l = |name, value| Label { name, value };
        let e = input_err(w.add_series([l("__name__", "a"), l("a", "b"), l("a", "c")], &[]));
        assert!(
            matches!(&e, InputError::DuplicateLabelName { name, .. } if name == "a"),
            "{e}"
        );
        let e = input_err(w.add_series([l("a", "b"), l("__name__", "a")], &[]));
        assert!(matches!(e, InputError::UnsortedLabels { .. }));
        let e = input_err(w.add_series([l("a", "")], &[]));
        assert!(matches!(e, InputError::EmptyLabel { .. }));
        let e = input_err(w.add_series(std::iter::empty(), &[]));
        assert!(matches!(e, InputError::EmptyLabel { .. }));
        assert!(Labels::new([("a", "b"), ("a", "c")]).is_err());
    }

    #[test]
    fn unsorted_series_and_missing_symbols_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir, &["1", "2", "a", "b"]);
        w.add_series(&ls(&[("a", "2")]), &[]).unwrap();
        let e = input_err(w.add_series(&ls(&[("a", "1")]), &[]));
        assert!(
            matches!(&e, InputError::SeriesOutOfOrder { previous, .. } if previous == "{a=\"2\"}"),
            "{e}"
        );
        let e = input_err(w.add_series(&ls(&[("a", "2")]), &[]));
        assert!(matches!(e, InputError::SeriesOutOfOrder { .. }));
        // A longer set with the previous one as prefix sorts after it.
        w.add_series(&ls(&[("a", "2"), ("b", "1")]), &[]).unwrap();
        let e = input_err(w.add_series(&ls(&[("b", "3")]), &[]));
        assert!(matches!(&e, InputError::MissingSymbol { symbol, .. } if symbol == "3"));
        assert_eq!(w.num_series(), 2);
    }

    #[test]
    fn symbols_must_be_strictly_increasing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("index");
        let r = Writer::create(&p, WriterOptions::default(), ["a", "c", "b"]);
        assert!(matches!(input_err(r), InputError::SymbolOutOfOrder { .. }));
        let r = Writer::create(&p, WriterOptions::default(), ["a", "a"]);
        assert!(matches!(input_err(r), InputError::SymbolOutOfOrder { .. }));
        // "" given explicitly is not duplicated.
        let w = Writer::create(&p, WriterOptions::default(), ["", "a"]).unwrap();
        assert_eq!(w.num_symbols(), 2);
        let w = Writer::create(&p, WriterOptions::default(), ["a"]).unwrap();
        assert_eq!(w.num_symbols(), 2);
        let opts = WriterOptions {
            include_empty_symbol: false,
            ..WriterOptions::default()
        };
        let w = Writer::create(&p, opts, ["a"]).unwrap();
        assert_eq!(w.num_symbols(), 1);
    }
}
