//! Integration tests: one binary, one module per area.

mod block_compat;
mod promtool;
