//! Integration tests: one binary, one module per area.

mod block_compat;
mod concurrency;
mod durability;
mod engine;
mod model;
mod persistence;
mod promtool;
mod wal_compat;
