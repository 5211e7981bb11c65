//! Memory-mapped index reader, format v2 (brief §1.7.8).
//!
//! Open verifies magic, version, the TOC CRC, the symbol table CRC and the postings offset
//! table CRC; series and postings reads verify the CRC of the entry they touch. Like
//! Prometheus, the reader keeps only every 32nd symbol offset and, per label name, every 32nd
//! entry of the postings offset table plus the last one, and walks the mapped bytes from the
//! nearest sample: memory stays a small fraction of the index even for millions of label
//! values, and a lookup costs at most 31 skipped entries. Unlike Prometheus it also checks at
//! open that the table is sorted, because an unsorted table silently breaks those walks.
//!
//! No input makes the reader panic, and no count read from disk sizes an allocation beyond
//! what the remaining bytes could hold.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::encoding::{crc32c, Decbuf, DecodeError};
use crate::error::{Error, Result};
use crate::fs::FileBytes;
use crate::model::{Labels, SortedLabelsWriter};

use super::{BlockSeriesRef, ChunkMeta, Toc, FORMAT_V2, HEADER_LEN, MAGIC, SERIES_ALIGN, TOC_LEN};

/// One sampled symbol offset per this many symbols, and one sampled postings offset table
/// entry per this many values of a name (Prometheus' `symbolFactor`).
const SAMPLE_EVERY: u32 = 32;

/// A reader of one index file.
#[derive(Debug)]
pub struct Reader {
    path: PathBuf,
    b: FileBytes,
    toc: Toc,
    version: u8,
    symbols: SymbolTable,
    /// Label names (without `""`), sorted.
    names: Vec<NameEntry>,
    /// Offset of the `("", "")` postings list, if the table has it.
    all_postings: Option<u64>,
    /// End of the postings offset table entries (start of its CRC).
    table_end: usize,
    /// Symbol ordinal of a label name -> index into `names`, to skip symbol walks for names.
    name_symbols: HashMap<u32, usize>,
}

#[derive(Debug)]
struct SymbolTable {
    /// Absolute offset of the first symbol string and end of the last.
    start: usize,
    end: usize,
    count: u32,
    /// Absolute offset of every 32nd symbol.
    sampled: Vec<usize>,
    /// Offset of every symbol from `start`, so that a lookup reads one string instead of
    /// walking up to 31 from a sampled one: 4 bytes per symbol, which series decoding (label
    /// values by ordinal, for every selected series) repays many times over.
    offsets: Vec<u32>,
}

#[derive(Debug)]
struct NameEntry {
    name: Box<str>,
    /// Number of values (table entries) of the name.
    count: u32,
    /// Every 32nd entry and the last: (value, absolute offset of the table entry, index).
    samples: Vec<(Box<str>, usize, u32)>,
}

/// One decoded entry of the postings offset table.
struct TableEntry<'a> {
    name: &'a str,
    value: &'a str,
    list_offset: u64,
    next: usize,
}

impl Reader {
    /// Maps and opens the index file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Reader> {
        let path = path.as_ref();
        let b = FileBytes::open(path)?;
        Reader::new(b, path.to_path_buf())
    }

    /// Opens an index held in memory; `name` is used in error messages.
    pub fn from_vec(data: Vec<u8>, name: impl Into<PathBuf>) -> Result<Reader> {
        Reader::new(FileBytes::Owned(data), name.into())
    }

    fn new(b: FileBytes, path: PathBuf) -> Result<Reader> {
        let corrupt = |off: usize, reason: String| Error::corruption(&path, off as u64, reason);
        if b.len() < HEADER_LEN + TOC_LEN {
            return Err(corrupt(
                0,
                format!("index is {} bytes, too short for header and TOC", b.len()),
            ));
        }
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if magic != MAGIC {
            return Err(corrupt(0, format!("invalid index magic {magic:#010x}")));
        }
        let version = b[4];
        match version {
            FORMAT_V2 => {}
            1 => {
                return Err(corrupt(
                    4,
                    "index format v1 (written by Prometheus 2.0/2.1) is not supported; \
                     compact the block with Prometheus >= 2.2 first"
                        .into(),
                ))
            }
            v => return Err(corrupt(4, format!("unsupported index format version {v}"))),
        }
        let toc_start = b.len() - TOC_LEN;
        let toc = Toc::decode(&b[toc_start..]).map_err(|r| corrupt(toc_start, r.into()))?;

        let mut r = Reader {
            path,
            toc,
            version,
            symbols: SymbolTable {
                start: 0,
                end: 0,
                count: 0,
                sampled: Vec::new(),
                offsets: Vec::new(),
            },
            names: Vec::new(),
            all_postings: None,
            table_end: 0,
            name_symbols: HashMap::new(),
            b,
        };
        r.read_symbols()?;
        r.read_postings_offset_table()?;
        for i in 0..r.names.len() {
            let name = &r.names[i].name;
            match r.reverse_lookup(name)? {
                Some(ord) => {
                    r.name_symbols.insert(ord, i);
                }
                None => {
                    return Err(r.corrupt(
                        r.toc.postings_offset_table,
                        format!("label name {name:?} of the postings table is not a symbol"),
                    ))
                }
            }
        }
        Ok(r)
    }

    fn corrupt(&self, offset: impl TryInto<u64>, reason: impl Into<String>) -> Error {
        Error::corruption(&self.path, offset.try_into().ok(), reason)
    }

    fn decode_err(&self, base: usize, e: DecodeError, what: &str) -> Error {
        self.corrupt(base + e.offset, format!("{what}: {}", e.reason))
    }

    /// Validates a `BE32 len ‖ body ‖ BE32 CRC32C(body)` section at `off` and returns the
    /// absolute range of its body. The section must end before the TOC.
    fn section(&self, off: u64, what: &str) -> Result<(usize, usize)> {
        let toc_start = self.b.len() - TOC_LEN;
        let start = usize::try_from(off)
            .ok()
            .filter(|&o| o >= HEADER_LEN && o.checked_add(4).is_some_and(|e| e <= toc_start))
            .ok_or_else(|| self.corrupt(off, format!("{what} offset outside the file")))?;
        let len = u32::from_be_bytes(self.b[start..start + 4].try_into().expect("4 bytes"));
        let body = start + 4;
        let end = body
            .checked_add(len as usize)
            .filter(|&e| e + 4 <= toc_start)
            .ok_or_else(|| {
                self.corrupt(
                    start,
                    format!("{what} length {len} runs past the end of the index"),
                )
            })?;
        let want = u32::from_be_bytes(self.b[end..end + 4].try_into().expect("4 bytes"));
        if crc32c(&self.b[body..end]) != want {
            return Err(self.corrupt(end, format!("{what} CRC mismatch")));
        }
        Ok((body, end))
    }

    fn read_symbols(&mut self) -> Result<()> {
        let (body, end) = self.section(self.toc.symbols, "symbol table")?;
        let mut d = Decbuf::new(&self.b[body..end]);
        let count = d
            .be32()
            .map_err(|e| self.decode_err(body, e, "symbol table"))?;
        // Each symbol takes at least one byte: check before sizing anything by the count.
        if (count as usize) > d.remaining() {
            return Err(self.corrupt(body, format!("symbol count {count} exceeds the table")));
        }
        let mut sampled = Vec::with_capacity((count / SAMPLE_EVERY) as usize + 1);
        let mut offsets = Vec::with_capacity(count as usize);
        for i in 0..count {
            if i % SAMPLE_EVERY == 0 {
                sampled.push(body + d.position());
            }
            // The section's length is a BE32, so offsets inside it fit in 32 bits.
            offsets.push((d.position() - 4) as u32);
            d.uvarint_bytes()
                .map_err(|e| self.decode_err(body, e, "symbol table"))?;
        }
        if !d.is_empty() {
            return Err(self.corrupt(
                body + d.position(),
                format!("{} bytes after the last symbol", d.remaining()),
            ));
        }
        self.symbols = SymbolTable {
            start: body + 4,
            end,
            count,
            sampled,
            offsets,
        };
        Ok(())
    }

    fn read_postings_offset_table(&mut self) -> Result<()> {
        let (body, end) = self.section(self.toc.postings_offset_table, "postings offset table")?;
        if end - body < 4 {
            return Err(self.corrupt(body, "postings offset table too short for its count"));
        }
        let count = u32::from_be_bytes(self.b[body..body + 4].try_into().expect("4 bytes"));
        self.table_end = end;
        let mut pos = body + 4;
        let mut names: Vec<NameEntry> = Vec::new();
        let mut prev: Option<(&str, &str)> = None;
        // Last entry seen that is not yet sampled: (value, offset, index).
        let mut pending: Option<(Box<str>, usize, u32)> = None;
        let mut all_postings = None;
        for _ in 0..count {
            let e = self.entry_at(pos)?;
            if let Some(p) = prev {
                if (e.name, e.value) <= p {
                    return Err(self.corrupt(
                        pos,
                        format!(
                            "postings offset table not sorted: ({:?}, {:?}) after ({:?}, {:?})",
                            e.name, e.value, p.0, p.1
                        ),
                    ));
                }
            }
            prev = Some((e.name, e.value));
            if e.name.is_empty() {
                if !e.value.is_empty() {
                    return Err(self.corrupt(pos, "postings entry with empty name and a value"));
                }
                all_postings = Some(e.list_offset);
            } else {
                if names.last().is_none_or(|n| &*n.name != e.name) {
                    if let (Some(last), Some(p)) = (names.last_mut(), pending.take()) {
                        last.samples.push(p);
                    }
                    names.push(NameEntry {
                        name: e.name.into(),
                        count: 0,
                        samples: Vec::new(),
                    });
                }
                let n = names.last_mut().expect("pushed above");
                if n.count.is_multiple_of(SAMPLE_EVERY) {
                    n.samples.push((e.value.into(), pos, n.count));
                    pending = None;
                } else {
                    pending = Some((e.value.into(), pos, n.count));
                }
                n.count += 1;
            }
            pos = e.next;
        }
        if let (Some(last), Some(p)) = (names.last_mut(), pending.take()) {
            last.samples.push(p);
        }
        if pos != end {
            return Err(self.corrupt(
                pos,
                format!(
                    "{} bytes after the last postings offset table entry",
                    end - pos
                ),
            ));
        }
        self.names = names;
        self.all_postings = all_postings;
        Ok(())
    }

    /// Decodes the postings offset table entry at absolute offset `pos`.
    fn entry_at(&self, pos: usize) -> Result<TableEntry<'_>> {
        let bytes = self
            .b
            .get(pos..self.table_end)
            .ok_or_else(|| self.corrupt(pos, "postings offset table entry outside the table"))?;
        let mut d = Decbuf::new(bytes);
        let err = |e| self.decode_err(pos, e, "postings offset table");
        let keys = d.uvarint().map_err(err)?;
        if keys != 2 {
            return Err(self.corrupt(
                pos,
                format!("postings offset table key count {keys}, want 2"),
            ));
        }
        let name = d.uvarint_str().map_err(err)?;
        let value = d.uvarint_str().map_err(err)?;
        let list_offset = d.uvarint().map_err(err)?;
        Ok(TableEntry {
            name,
            value,
            list_offset,
            next: pos + d.position(),
        })
    }

    /// The index format version (2).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The table of contents.
    pub fn toc(&self) -> &Toc {
        &self.toc
    }

    /// Size of the index file in bytes.
    pub fn size(&self) -> u64 {
        self.b.len() as u64
    }

    /// The file this reader reads (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of symbols in the symbol table.
    pub fn num_symbols(&self) -> u32 {
        self.symbols.count
    }

    /// All symbols in table order (sorted, if the index is well formed).
    pub fn symbols(&self) -> Symbols<'_> {
        Symbols {
            r: self,
            d: Decbuf::new(&self.b[self.symbols.start..self.symbols.end]),
            left: self.symbols.count,
        }
    }

    /// The symbol with ordinal `ord`.
    pub fn symbol(&self, ord: u32) -> Result<&str> {
        let t = &self.symbols;
        if ord >= t.count {
            return Err(self.corrupt(
                t.start,
                format!("symbol ordinal {ord} out of range ({} symbols)", t.count),
            ));
        }
        let base = t.start + t.offsets[ord as usize] as usize;
        let mut d = Decbuf::new(&self.b[base..t.end]);
        d.uvarint_str()
            .map_err(|e| self.decode_err(base, e, "symbol table"))
    }

    /// The ordinal of symbol `s`, by binary search over the sampled offsets.
    fn reverse_lookup(&self, s: &str) -> Result<Option<u32>> {
        let t = &self.symbols;
        let mut err = None;
        let idx = t.sampled.partition_point(|&off| {
            let mut d = Decbuf::new(&self.b[off..t.end]);
            match d.uvarint_bytes() {
                Ok(sym) => sym <= s.as_bytes(),
                Err(e) => {
                    err.get_or_insert(self.decode_err(off, e, "symbol table"));
                    false
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        let Some(block) = idx.checked_sub(1) else {
            return Ok(None);
        };
        let base = t.sampled[block];
        let mut d = Decbuf::new(&self.b[base..t.end]);
        let first = block as u32 * SAMPLE_EVERY;
        for ord in first..t.count.min(first + SAMPLE_EVERY) {
            let sym = d
                .uvarint_bytes()
                .map_err(|e| self.decode_err(base, e, "symbol table"))?;
            if sym == s.as_bytes() {
                return Ok(Some(ord));
            }
        }
        Ok(None)
    }

    /// Label names present in the index, sorted (`""` excluded).
    pub fn label_names(&self) -> Vec<&str> {
        self.names.iter().map(|n| &*n.name).collect()
    }

    fn name_entry(&self, name: &str) -> Option<&NameEntry> {
        self.names
            .binary_search_by(|n| (*n.name).cmp(name))
            .ok()
            .map(|i| &self.names[i])
    }

    /// Values of label `name`, sorted; empty if the name is absent.
    pub fn label_values(&self, name: &str) -> Result<Vec<&str>> {
        let Some(n) = self.name_entry(name) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(n.count as usize);
        let mut pos = n.samples[0].1;
        for _ in 0..n.count {
            let e = self.entry_at(pos)?;
            if e.name != name {
                return Err(self.corrupt(pos, "postings offset table changed under the reader"));
            }
            out.push(e.value);
            pos = e.next;
        }
        Ok(out)
    }

    /// Offset of the postings list of `(name, value)`, if present.
    fn postings_offset(&self, name: &str, value: &str) -> Result<Option<u64>> {
        if name.is_empty() {
            return Ok(if value.is_empty() {
                self.all_postings
            } else {
                None
            });
        }
        let Some(n) = self.name_entry(name) else {
            return Ok(None);
        };
        let i = n.samples.partition_point(|s| &*s.0 <= value);
        let Some(i) = i.checked_sub(1) else {
            return Ok(None);
        };
        let (_, mut pos, start) = n.samples[i];
        for _ in start..n.count.min(start + SAMPLE_EVERY) {
            let e = self.entry_at(pos)?;
            if e.name != name {
                break;
            }
            match e.value.cmp(value) {
                std::cmp::Ordering::Equal => return Ok(Some(e.list_offset)),
                std::cmp::Ordering::Greater => break,
                std::cmp::Ordering::Less => pos = e.next,
            }
        }
        Ok(None)
    }

    /// Series refs with label `name="value"`, increasing; empty if the pair is absent.
    /// `("", "")` gives every series.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<BlockSeriesRef>> {
        match self.postings_offset(name, value)? {
            Some(off) => self.read_postings(off),
            None => Ok(Vec::new()),
        }
    }

    /// Every series ref of the index, increasing (the `("", "")` list, §1.7.4).
    pub fn all_postings(&self) -> Result<Vec<BlockSeriesRef>> {
        self.postings("", "")
    }

    fn read_postings(&self, off: u64) -> Result<Vec<BlockSeriesRef>> {
        let (body, end) = self.section(off, "postings list")?;
        let mut d = Decbuf::new(&self.b[body..end]);
        let n = d
            .be32()
            .map_err(|e| self.decode_err(body, e, "postings list"))?;
        if d.remaining() as u64 != u64::from(n) * 4 {
            return Err(self.corrupt(
                body,
                format!("postings list of {n} refs has {} bytes", d.remaining()),
            ));
        }
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let r = d
                .be32()
                .map_err(|e| self.decode_err(body, e, "postings list"))?;
            if out.last().is_some_and(|&l| r <= l) {
                return Err(self.corrupt(
                    body + d.position() - 4,
                    format!(
                        "postings list not increasing: {r} after {}",
                        out[out.len() - 1]
                    ),
                ));
            }
            out.push(r);
        }
        Ok(out)
    }

    /// Labels and chunk metas of the series with ref `sref`.
    pub fn series(&self, sref: BlockSeriesRef) -> Result<(Labels, Vec<ChunkMeta>)> {
        let mut chunks = Vec::new();
        let labels = self.series_into(sref, &mut chunks)?;
        Ok((labels, chunks))
    }

    /// Like [`series`](Self::series), reusing `chunks` (cleared first).
    pub fn series_into(&self, sref: BlockSeriesRef, chunks: &mut Vec<ChunkMeta>) -> Result<Labels> {
        chunks.clear();
        self.series_with(sref, |n, c| {
            chunks.reserve(n);
            chunks.push(c)
        })
    }

    /// Decodes series `sref`: returns its labels and hands each chunk meta, in order, to
    /// `chunk`, with the number of chunk metas the series has.
    pub(crate) fn series_with(
        &self,
        sref: BlockSeriesRef,
        mut chunk: impl FnMut(usize, ChunkMeta),
    ) -> Result<Labels> {
        let off = u64::from(sref) * SERIES_ALIGN;
        let toc_start = self.b.len() - TOC_LEN;
        let start = usize::try_from(off)
            .ok()
            .filter(|&o| o >= HEADER_LEN && o < toc_start)
            .ok_or_else(|| self.corrupt(off, format!("series ref {sref} outside the index")))?;
        let mut d = Decbuf::new(&self.b[start..toc_start]);
        let err = |e| self.decode_err(start, e, "series entry");
        let len = d.uvarint().map_err(err)?;
        let body_start = start + d.position();
        if len > d.remaining() as u64 {
            return Err(self.corrupt(start, format!("series entry length {len} past the end")));
        }
        let body = d.bytes(len as usize).map_err(err)?;
        let want = d.be32().map_err(err)?;
        if crc32c(body) != want {
            return Err(self.corrupt(start, format!("series {sref} CRC mismatch")));
        }
        let err = |e| self.decode_err(body_start, e, "series entry");
        let mut d = Decbuf::new(body);
        let nlabels = d.uvarint().map_err(err)?;
        if nlabels > d.remaining() as u64 {
            return Err(self.corrupt(body_start, format!("label count {nlabels} too large")));
        }
        let mut b = SortedLabelsWriter::new();
        let mut prev: Option<&str> = None;
        for _ in 0..nlabels {
            let no = d.uvarint32().map_err(err)?;
            let vo = d.uvarint32().map_err(err)?;
            let name = match self.name_symbols.get(&no) {
                Some(&i) => &*self.names[i].name,
                None => self.symbol(no)?,
            };
            let value = self.symbol(vo)?;
            if name.is_empty() || prev.is_some_and(|p| name <= p) {
                return Err(self.corrupt(
                    start,
                    format!("series {sref}: label names empty, unsorted or repeated at {name:?}"),
                ));
            }
            prev = Some(name);
            b.push(name, value);
        }
        // Names were checked sorted, unique and non-empty above.
        let labels = b
            .finish()
            .map_err(|e| self.corrupt(start, format!("series {sref}: {e}")))?;
        let nchunks = d.uvarint().map_err(err)?;
        // Each chunk meta takes at least 3 bytes.
        if nchunks > d.remaining() as u64 / 3 + 1 {
            return Err(self.corrupt(body_start, format!("chunk count {nchunks} too large")));
        }
        let mut prev: Option<ChunkMeta> = None;
        for _ in 0..nchunks {
            // Go's wrapping int64 arithmetic, mirroring the writer (§1.7.3).
            let c = match prev {
                None => {
                    let min_time = d.varint().map_err(err)?;
                    let max_time = min_time.wrapping_add(d.uvarint().map_err(err)? as i64);
                    let chunk_ref = d.uvarint().map_err(err)?;
                    ChunkMeta {
                        min_time,
                        max_time,
                        chunk_ref,
                    }
                }
                Some(p) => {
                    let min_time = p.max_time.wrapping_add(d.uvarint().map_err(err)? as i64);
                    let max_time = min_time.wrapping_add(d.uvarint().map_err(err)? as i64);
                    let chunk_ref = (p.chunk_ref as i64).wrapping_add(d.varint().map_err(err)?);
                    ChunkMeta {
                        min_time,
                        max_time,
                        chunk_ref: chunk_ref as u64,
                    }
                }
            };
            chunk(nchunks as usize, c);
            prev = Some(c);
        }
        if !d.is_empty() {
            return Err(self.corrupt(
                body_start + d.position(),
                format!(
                    "series {sref}: {} bytes after the chunk metas",
                    d.remaining()
                ),
            ));
        }
        Ok(labels)
    }
}

/// Iterator over the symbols of an index, in table order.
pub struct Symbols<'a> {
    r: &'a Reader,
    d: Decbuf<'a>,
    left: u32,
}

impl<'a> Iterator for Symbols<'a> {
    type Item = Result<&'a str>;

    fn next(&mut self) -> Option<Result<&'a str>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let base = self.r.symbols.start;
        match self.d.uvarint_str() {
            Ok(s) => Some(Ok(s)),
            Err(e) => {
                self.left = 0;
                Some(Err(self.r.decode_err(base, e, "symbol table")))
            }
        }
    }
}
