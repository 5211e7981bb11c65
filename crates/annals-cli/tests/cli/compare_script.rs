//! `scripts/compare-prometheus.sh` itself: every issue's before/after ratios come from it, so a
//! short run against promtool and a live Prometheus 2.42 must complete and print a full table.

use std::path::Path;
use std::process::Command;

use crate::support::{data, oracle};

#[test]
fn compare_prometheus_script_prints_every_ratio() {
    let (Some(_), Some(_), Some(_), Some(_)) = (
        oracle("promtool"),
        oracle("prometheus"),
        oracle("curl"),
        oracle("time"),
    ) else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/compare-prometheus.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["--metrics=200", "--scrapes=100", "--runs=1"])
        .arg(data("fleet-20k.labels.jsonl.gz"))
        .env("ANNALS_BIN", env!("CARGO_BIN_EXE_annals"))
        .output()
        .expect("run compare-prometheus.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "script failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("WARNING"), "{stderr}");
    assert!(stdout.contains("(20000 samples)"), "{stdout}");

    // Two ratio rows for the replay, one for the write; each has four (write: three) numbers.
    let ratio_rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("annals/prometheus") || l.starts_with("no snapshot/prometheus"))
        .collect();
    assert_eq!(ratio_rows.len(), 3, "{stdout}");
    for row in ratio_rows {
        let numbers: Vec<f64> = row
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert!(numbers.len() >= 3, "row without ratios: {row:?}\n{stdout}");
        assert!(
            numbers.iter().all(|r| r.is_finite() && *r >= 0.0),
            "{row:?}"
        );
    }
}
