//! Integration tests: one binary, one module per area.

// The fuzz targets compiled into `fuzz_corpus` import their macro from `libfuzzer_sys`.
extern crate self as libfuzzer_sys;

mod append_contract;
mod bad_input;
mod block_compat;
mod compact_compat;
mod concurrency;
mod contract;
mod corruption;
mod durability;
mod engine;
mod extremes;
mod faults;
mod fuzz_corpus;
mod head_chunks;
mod histogram_engine;
mod histogram_fixtures;
mod histogram_fuzz_corpus;
mod model;
mod ooo;
mod persistence;
mod promtool;
mod public_api;
mod read;
mod support;
mod wal_compat;
mod wal_floor;
