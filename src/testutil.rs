//! Helpers shared by the unit tests.

use std::path::{Path, PathBuf};

/// A file or directory of the Prometheus 2.42 fixtures (`../shared/fixtures/prometheus-2.42`).
pub(crate) fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/prometheus-2.42")
        .join(rel)
}
