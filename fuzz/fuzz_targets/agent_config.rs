//! Parses arbitrary text as an agent configuration: a configuration or a clear error, never
//! a panic. Seed corpus: the configurations in `crates/annals-agent/src/config.rs` tests.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = annals_agent::config::Config::parse(text) {
            assert!(!e.to_string().is_empty());
        }
    }
});
