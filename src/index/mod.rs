//! The block index (format v2, brief §1.7) and the postings algebra.

pub mod postings;
