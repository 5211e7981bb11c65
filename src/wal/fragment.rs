//! Fragment headers and the page layout of Prometheus's WAL writer (§1.9 steps 1, 3, 4).
//!
//! [`Pager`] is the writer algorithm without I/O: it appends fragment headers, payloads and
//! page padding to a byte buffer and keeps the page/segment accounting that decides where a
//! record goes. The bytes it produces for a sequence of records are exactly Prometheus's.

use super::{FRAGMENT_HEADER_SIZE as HDR, PAGE_SIZE};
use crate::encoding::crc32c;

/// Fragment types: the low three bits of the header byte.
pub(crate) const FRAG_ZERO: u8 = 0;
pub(crate) const FRAG_FULL: u8 = 1;
pub(crate) const FRAG_FIRST: u8 = 2;
pub(crate) const FRAG_MIDDLE: u8 = 3;
pub(crate) const FRAG_LAST: u8 = 4;
pub(crate) const TYPE_MASK: u8 = 0x07;
/// Compression flags of the header byte.
pub(crate) const SNAPPY_FLAG: u8 = 0x08;
pub(crate) const ZSTD_FLAG: u8 = 0x10;

/// Largest payload of one fragment.
pub(crate) const MAX_FRAGMENT: usize = PAGE_SIZE - HDR;

/// Page accounting of the segment being written.
#[derive(Debug, Clone)]
pub(crate) struct Pager {
    /// Bytes used in the current page (0..=PAGE_SIZE).
    page_alloc: usize,
    /// Complete pages in the current segment.
    done_pages: u64,
    pages_per_segment: u64,
}

impl Pager {
    /// A pager at the start of an empty segment of `segment_size` bytes (a multiple of
    /// [`PAGE_SIZE`]).
    pub(crate) fn new(segment_size: u64) -> Self {
        Pager {
            page_alloc: 0,
            done_pages: 0,
            pages_per_segment: segment_size / PAGE_SIZE as u64,
        }
    }

    /// Starts accounting for a new, empty segment.
    pub(crate) fn reset(&mut self) {
        self.page_alloc = 0;
        self.done_pages = 0;
    }

    /// Bytes of the current segment laid out so far.
    pub(crate) fn segment_offset(&self) -> u64 {
        self.done_pages * PAGE_SIZE as u64 + self.page_alloc as u64
    }

    /// Whether the current page holds any byte.
    pub(crate) fn page_started(&self) -> bool {
        self.page_alloc > 0
    }

    /// Whether no further fragment header fits into the current page (§1.9 step 1).
    pub(crate) fn page_full(&self) -> bool {
        PAGE_SIZE - self.page_alloc < HDR
    }

    /// Zero-fills the rest of the current page and starts the next one.
    pub(crate) fn pad_page(&mut self, out: &mut Vec<u8>) {
        out.resize(out.len() + (PAGE_SIZE - self.page_alloc), 0);
        self.page_alloc = 0;
        self.done_pages += 1;
    }

    /// Whether a record of `len` (stored) bytes fits into the rest of the segment, counting
    /// one header per remaining page (§1.9 step 3). Call only when the page is not full.
    pub(crate) fn fits(&self, len: usize) -> bool {
        let in_page = (PAGE_SIZE - self.page_alloc - HDR) as i128;
        let free_pages = self.pages_per_segment as i128 - self.done_pages as i128 - 1;
        len as i128 <= in_page + free_pages * MAX_FRAGMENT as i128
    }

    /// Appends `rec` as fragments carrying the compression bits `flags` (§1.9 step 4): as
    /// many as needed, at least one (an empty record is one empty `full` fragment), padding
    /// each page that gets full. Call only when the page is not full.
    pub(crate) fn put_record(&mut self, mut rec: &[u8], flags: u8, out: &mut Vec<u8>) {
        let mut first = true;
        loop {
            let room = PAGE_SIZE - self.page_alloc - HDR;
            let n = rec.len().min(room);
            let (part, rest) = rec.split_at(n);
            let typ = match (first, rest.is_empty()) {
                (true, true) => FRAG_FULL,
                (true, false) => FRAG_FIRST,
                (false, true) => FRAG_LAST,
                (false, false) => FRAG_MIDDLE,
            };
            let mut hdr = [0u8; HDR];
            hdr[0] = typ | flags;
            hdr[1..3].copy_from_slice(&(n as u16).to_be_bytes());
            hdr[3..7].copy_from_slice(&crc32c(part).to_be_bytes());
            out.extend_from_slice(&hdr);
            out.extend_from_slice(part);
            self.page_alloc += HDR + n;
            if self.page_full() {
                self.pad_page(out);
            }
            rec = rest;
            first = false;
            if rec.is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag_types(seg: &[u8]) -> Vec<(u8, usize)> {
        let mut out = Vec::new();
        let mut off = 0;
        while off < seg.len() {
            let t = seg[off] & TYPE_MASK;
            if t == FRAG_ZERO {
                off = (off / PAGE_SIZE + 1) * PAGE_SIZE;
                continue;
            }
            let len = u16::from_be_bytes([seg[off + 1], seg[off + 2]]) as usize;
            out.push((t, len));
            off += HDR + len;
        }
        out
    }

    #[test]
    fn page_sized_record_is_one_full_fragment_filling_the_page() {
        let mut p = Pager::new(3 * PAGE_SIZE as u64);
        let mut out = Vec::new();
        p.put_record(&vec![7u8; MAX_FRAGMENT], 0, &mut out);
        assert_eq!(out.len(), PAGE_SIZE);
        assert_eq!(p.segment_offset(), PAGE_SIZE as u64);
        assert!(!p.page_started());
        assert_eq!(frag_types(&out), [(FRAG_FULL, MAX_FRAGMENT)]);
    }

    #[test]
    fn fewer_than_seven_bytes_left_pads_the_page() {
        let mut p = Pager::new(4 * PAGE_SIZE as u64);
        let mut out = Vec::new();
        // Leaves 5 bytes in the page: padded at once.
        p.put_record(&vec![1u8; PAGE_SIZE - HDR - 5], 0, &mut out);
        assert_eq!(out.len(), PAGE_SIZE);
        assert!(out[PAGE_SIZE - 5..].iter().all(|&b| b == 0));
        // Leaves exactly 7 bytes: the next record gets an empty first fragment there.
        p.put_record(&vec![2u8; PAGE_SIZE - 2 * HDR], 0, &mut out);
        assert_eq!(p.segment_offset() as usize, 2 * PAGE_SIZE - HDR);
        p.put_record(&[3, 3, 3], 0, &mut out);
        let types = frag_types(&out);
        assert_eq!(
            &types[2..],
            &[(FRAG_FIRST, 0), (FRAG_LAST, 3)],
            "zero-length first fragment, then the rest on the next page"
        );
    }

    #[test]
    fn large_record_spans_pages_first_middle_last() {
        let mut p = Pager::new(8 * PAGE_SIZE as u64);
        let mut out = Vec::new();
        p.put_record(&[9u8; 100], SNAPPY_FLAG, &mut out);
        let big = vec![5u8; 3 * PAGE_SIZE];
        assert!(p.fits(big.len()));
        p.put_record(&big, 0, &mut out);
        let types: Vec<u8> = frag_types(&out).iter().map(|t| t.0).collect();
        assert_eq!(
            types,
            [FRAG_FULL, FRAG_FIRST, FRAG_MIDDLE, FRAG_MIDDLE, FRAG_LAST]
        );
        assert_eq!(out[0], FRAG_FULL | SNAPPY_FLAG);
        assert_eq!(out[107] & !TYPE_MASK, 0);
    }

    #[test]
    fn fits_counts_a_header_per_page() {
        let p = Pager::new(2 * PAGE_SIZE as u64);
        assert!(p.fits(2 * MAX_FRAGMENT));
        assert!(!p.fits(2 * MAX_FRAGMENT + 1));
        let mut p = Pager::new(PAGE_SIZE as u64);
        let mut out = Vec::new();
        p.put_record(&[0u8; 10], 0, &mut out);
        assert!(p.fits(MAX_FRAGMENT - 17));
        assert!(!p.fits(MAX_FRAGMENT - 16));
        // A segment that grew past its size never fits anything more.
        p.pad_page(&mut out);
        p.pad_page(&mut out);
        assert!(!p.fits(0));
    }

    #[test]
    fn crc_covers_the_stored_payload() {
        let mut p = Pager::new(PAGE_SIZE as u64);
        let mut out = Vec::new();
        p.put_record(b"123456789", 0, &mut out);
        assert_eq!(&out[..3], &[FRAG_FULL, 0, 9]);
        assert_eq!(&out[3..7], &0xE306_9283u32.to_be_bytes());
        assert_eq!(&out[7..], b"123456789");
    }
}
