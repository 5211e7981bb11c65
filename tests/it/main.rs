//! Integration tests: one binary, one module per area.

mod promtool;
mod wal_compat;
