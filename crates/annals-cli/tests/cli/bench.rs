//! `annals bench write|replay`: the stored data is exactly promtool's workload.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::*;

/// `n` distinct label sets as JSON lines, with a repeated (reordered) one in between that
/// must not count.
fn label_file(path: &Path, n: usize) {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "{{\"__name__\": \"m{}\", \"instance\": \"host-{i:04}:9100\", \"job\": \"node\"}}\n",
            i % 7
        ));
        if i == 3 {
            s.push_str(
                "{\"job\": \"node\", \"instance\": \"host-0001:9100\", \"__name__\": \"m1\"}\n",
            );
        }
    }
    std::fs::write(path, s).unwrap();
}

fn printed(out: &str, prefix: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{out}"))
        .trim()
        .parse()
        .unwrap()
}

/// (timestamp, value) pairs of a dump, counted.
fn points(dump: &str) -> BTreeMap<(i64, u64), usize> {
    let mut m = BTreeMap::new();
    for line in dump.lines() {
        let (_, v, t) = parse_dump_line(line);
        *m.entry((t, v.to_bits())).or_insert(0) += 1;
    }
    m
}

#[test]
fn bench_write_stores_promtools_workload_and_replay_reads_it_back() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("labels.jsonl");
    // 1,010 series: two shards; 150 scrapes: two rounds of 100 (promtool rounds up).
    label_file(&input, 1_010);
    let out = d.path().join("benchout");
    std::fs::create_dir_all(out.join("stale")).unwrap();
    let report = annals_ok(&[
        "bench",
        "write",
        "--metrics=1010",
        "--scrapes=150",
        &format!("--out={}", out.display()),
        input.to_str().unwrap(),
    ]);
    for stage in ["readData", "ingestScrapes", "stopStorage"] {
        assert!(
            report.contains(&format!(">> start stage={stage}\n")),
            "{report}"
        );
        assert!(
            report.contains(&format!(">> completed stage={stage} duration=")),
            "{report}"
        );
    }
    let expected = 1_010 * 200;
    assert_eq!(printed(&report, " > total samples:"), expected);
    assert!(
        !out.join("stale").exists(),
        "the output directory was not wiped"
    );

    let storage = out.join("storage");
    let dump = annals_ok(&["dump", storage.to_str().unwrap()]);
    assert_eq!(dump.lines().count() as u64, expected);
    let mut series = BTreeMap::<String, Vec<(i64, f64)>>::new();
    for line in dump.lines() {
        let (labels, v, t) = parse_dump_line(line);
        series.entry(labels).or_default().push((t, v));
    }
    assert_eq!(series.len(), 1_010);
    assert!(series.contains_key("{__name__=\"m1\", instance=\"host-0001:9100\", job=\"node\"}"));
    for (labels, samples) in &series {
        let want: Vec<(i64, f64)> = (0..200i64)
            .map(|k| {
                (
                    30_000 * (k + 1),
                    (123_456_789 + 1_000 * (k % 100 + 1)) as f64,
                )
            })
            .collect();
        assert_eq!(samples, &want, "{labels}");
    }

    let replay = annals_ok(&["bench", "replay", storage.to_str().unwrap()]);
    assert_eq!(printed(&replay, " > samples replayed:"), expected);
    assert_eq!(printed(&replay, " > series replayed:"), 1_010);
    // Replay compacts nothing: the data is still all in the WAL, and still the same.
    assert_eq!(annals_ok(&["dump", storage.to_str().unwrap()]), dump);

    // promtool's own run of the same workload stores the same (timestamp, value) points; its
    // labels differ (its reader keeps the spaces and cuts values at ':'), so only the points
    // are compared.
    let Some(promtool) = promtool() else { return };
    let theirs = d.path().join("promtool-out");
    promtool_ok(
        &promtool,
        &[
            "tsdb",
            "bench",
            "write",
            "--metrics=1010",
            "--scrapes=150",
            &format!("--out={}", theirs.display()),
            input.to_str().unwrap(),
        ],
    );
    let their_dump = promtool_dump(&promtool, &theirs.join("storage"), &[]);
    assert_eq!(points(&their_dump), points(&dump));
}

#[test]
fn bench_replay_of_a_missing_directory_fails_without_creating_it() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope");
    let err = annals_err(&["bench", "replay", missing.to_str().unwrap()]);
    assert!(err.contains("nope"), "{err}");
    assert!(!missing.exists());
}

#[test]
fn bench_write_wal_compression_defaults_to_promtools_none() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("labels.jsonl");
    label_file(&input, 50);
    for (flag, name, snappy) in [
        (None, "none", false),
        (Some("--wal-compression=none"), "none", false),
        (Some("--wal-compression=snappy"), "snappy", true),
    ] {
        let out = d.path().join(format!("out-{name}-{}", flag.is_some()));
        let out_flag = format!("--out={}", out.display());
        let mut args = vec!["bench", "write", "--metrics=50", "--scrapes=100", &out_flag];
        args.extend(flag);
        args.push(input.to_str().unwrap());
        let report = annals_ok(&args);
        assert!(
            report.contains(&format!(" > WAL compression: {name}\n")),
            "{report}"
        );
        // The first record (the Series record of 50 series) compresses well: its fragment
        // header carries the snappy flag exactly when compression is on (§1.9).
        let seg = std::fs::read(out.join("storage/wal/00000000")).unwrap();
        assert_eq!(seg[0] & 0x08 != 0, snappy, "{flag:?}");
    }
}
