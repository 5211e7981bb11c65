//! Postings algebra (placeholder; written on another branch).
