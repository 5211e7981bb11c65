//! Tests of the `annals` binary, with Prometheus 2.42 (`promtool`, `prometheus`) as the oracle.

mod bench;
mod compare_script;
mod dump;
mod errors;
mod import;
mod list_analyze;
mod query;
mod serve_api;
mod serve_histograms;
mod serve_ooo;
mod serve_prometheus;
mod serve_support;
mod server;
mod support;
