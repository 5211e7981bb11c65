//! Integration tests: one binary, one module per area.

mod block_compat;
mod compact_compat;
mod concurrency;
mod durability;
mod engine;
mod faults;
mod model;
mod persistence;
mod promtool;
mod support;
mod wal_compat;
