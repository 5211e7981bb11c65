//! Memory snapshot series records (`chunk_snapshot.*`, brief §1.13) on arbitrary bytes: the
//! decoder (labels, the open XOR chunk and its time range) must never panic.
//!
//! Seed corpus: the series records of the fixture
//! `prometheus-2.42-datadir/chunk_snapshot.000000.0000360448`.
#![no_main]

use annals::unstable::head_chunks::decode_snapshot_series;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_snapshot_series(data);
});
