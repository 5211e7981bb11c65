//! `annals dump` against `promtool tsdb dump`.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::*;

#[test]
fn prometheus_blocks_dump_like_promtool_and_stay_untouched() {
    let Some(promtool) = promtool() else { return };
    let d = tempfile::tempdir().unwrap();
    let ours = d.path().join("ours");
    let theirs = d.path().join("theirs");
    copy_dir(&fixture("node-exporter-blocks"), &ours);
    copy_dir(&fixture("node-exporter-blocks"), &theirs);
    let before = tree(&ours);
    let a = annals_ok(&["dump", ours.to_str().unwrap()]);
    let b = promtool_dump(&promtool, &theirs, &[]);
    assert_eq!(a.lines().count(), 507 * 900);
    assert_same_samples(&a, &b);
    assert_eq!(tree(&ours), before, "dump changed the directory");
}

#[test]
fn a_prometheus_wal_and_head_chunks_dump_like_promtool() {
    // A directory a 2.42 server wrote: WAL, m-mapped head chunks and a chunk snapshot, no
    // blocks. annals reads it through the WAL replay of `Db::open_read_only`.
    let Some(promtool) = promtool() else { return };
    let d = tempfile::tempdir().unwrap();
    let ours = d.path().join("ours");
    let theirs = d.path().join("theirs");
    copy_dir(&fixture("prometheus-2.42-datadir"), &ours);
    copy_dir(&fixture("prometheus-2.42-datadir"), &theirs);
    let before = tree(&ours);
    let a = annals_ok(&["dump", ours.to_str().unwrap()]);
    let b = promtool_dump(&promtool, &theirs, &[]);
    assert!(a.lines().count() > 10_000);
    assert_same_samples(&a, &b);
    assert_eq!(tree(&ours), before, "dump changed the directory");
}

#[test]
fn time_range_and_selectors_like_promtool() {
    let Some(promtool) = promtool() else { return };
    let d = tempfile::tempdir().unwrap();
    let ours = d.path().join("ours");
    let theirs = d.path().join("theirs");
    copy_dir(&fixture("node-exporter-blocks"), &ours);
    copy_dir(&fixture("node-exporter-blocks"), &theirs);
    let o = ours.to_str().unwrap();
    // Bounds are inclusive and cross the boundary between the two blocks.
    let range = ["--min-time=1763863155000", "--max-time=1763863215000"];
    for sel in [
        r#"--match=node_load1"#,
        r#"--match={__name__=~"node_cpu_seconds_total|go_goroutines", mode!="idle"}"#,
        r#"--match={device=~"ifb.*", __name__=~".*_bytes_total"}"#,
    ] {
        let a = annals_ok(&["dump", range[0], range[1], sel, o]);
        let b = promtool_dump(&promtool, &theirs, &[range[0], range[1], sel]);
        assert!(!a.is_empty(), "{sel}");
        assert_same_samples(&a, &b);
        for l in a.lines() {
            let (_, _, t) = parse_dump_line(l);
            assert!((1_763_863_155_000..=1_763_863_215_000).contains(&t), "{l}");
        }
    }
    // Several selectors: the union of the series each selects, each series once.
    let sels = [
        r#"--match={__name__="node_load1"}"#,
        r#"--match={__name__=~"node_load.*"}"#,
    ];
    let union = annals_ok(&["dump", sels[0], sels[1], o]);
    let mut want = BTreeSet::new();
    for s in sels {
        want.extend(
            promtool_dump(&promtool, &theirs, &[s])
                .lines()
                .map(str::to_owned),
        );
    }
    let got: Vec<_> = union.lines().map(str::to_owned).collect();
    assert_eq!(got.len(), want.len(), "no line twice");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    // One rule for an empty range everywhere (issue 16 item 8): an error, not an empty dump.
    let e = annals_err(&["dump", "--min-time=5", "--max-time=4", o]);
    assert!(
        e.contains("--min-time 5 is after --max-time 4") && e.contains("inclusive"),
        "{e}"
    );
}

/// A directory with native histograms (Prometheus 2.42's, and one annals wrote from it):
/// `annals dump` prints what promtool 2.42 prints, byte for byte: the float series, and
/// nothing of the histogram series.
#[test]
fn histogram_directories_dump_like_promtool() {
    let Some(promtool) = promtool() else { return };
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/prometheus-2.42-histograms");
    let d = tempfile::tempdir().unwrap();
    let ours = d.path().join("ours");
    let theirs = d.path().join("theirs");
    copy_dir(&src, &ours);
    copy_dir(&src, &theirs);
    let a = annals_ok(&["dump", ours.to_str().unwrap()]);
    let b = promtool_dump(&promtool, &theirs, &[]);
    assert_eq!(a.lines().count(), 480, "fx_up only");
    assert_eq!(a, b);

    // Write it again with annals: floats and histograms, then a block.
    let written = d.path().join("written");
    let mut opts = annals::Options::default();
    opts.compaction = false;
    opts.retention_ms = None;
    let db = annals::Db::open(&written, opts).unwrap();
    let src_db = annals::Db::open_read_only(&ours, annals::Options::default()).unwrap();
    let q = src_db.querier(i64::MIN, i64::MAX).unwrap();
    let series: Vec<(annals::Labels, Vec<(i64, annals::Value)>)> = q
        .select(&[])
        .unwrap()
        .map(|s| (s.labels().clone(), s.values().map(Result::unwrap).collect()))
        .collect();
    // In time order, ten minutes of every series at a time; one commit per sample type.
    let t0 = 1_700_006_400_000i64;
    let step = 600_000;
    let mut refs = vec![None; series.len()];
    for round in 0..24 {
        for (i, (labels, values)) in series.iter().enumerate() {
            let mut app = db.appender();
            let mut kind = None;
            let window = values
                .iter()
                .filter(|v| t0 + round * step <= v.0 && v.0 < t0 + (round + 1) * step);
            for (t, v) in window {
                let k = std::mem::discriminant(v);
                if kind.is_some_and(|x| x != k) {
                    app.commit().unwrap();
                    app = db.appender();
                }
                kind = Some(k);
                let r = refs[i];
                refs[i] = Some(
                    match v {
                        annals::Value::Float(f) => app.append(r, labels, *t, *f),
                        annals::Value::Histogram(h) => app.append_histogram(r, labels, *t, h),
                        annals::Value::FloatHistogram(h) => {
                            app.append_float_histogram(r, labels, *t, h)
                        }
                    }
                    .unwrap(),
                );
            }
            app.commit().unwrap();
        }
    }
    db.compact().unwrap();
    db.close().unwrap();
    let copy = d.path().join("written-copy");
    copy_dir(&written, &copy);
    let a = annals_ok(&["dump", written.to_str().unwrap()]);
    let b = promtool_dump(&promtool, &copy, &[]);
    assert_eq!(a.lines().count(), 480, "fx_up only");
    assert_eq!(a, b);
}

/// The out-of-order fixture (a 2.42 server with `out_of_order_time_window: 1h`): blocks, one
/// of them vertically merged, out-of-order chunks (`0x81`) in `chunks_head/` and a WBL with
/// samples and m-map markers. `annals dump` prints what `promtool tsdb dump` prints, line for
/// line: 2,308 samples, the 216 late ones of the head included.
#[test]
fn prometheus_out_of_order_data_dumps_like_promtool() {
    let Some(promtool) = promtool() else { return };
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/prometheus-2.42-ooo");
    let d = tempfile::tempdir().unwrap();
    let ours = d.path().join("ours");
    let theirs = d.path().join("theirs");
    copy_dir(&src, &ours);
    copy_dir(&src, &theirs);
    let before = tree(&ours);
    let a = annals_ok(&["dump", ours.to_str().unwrap()]);
    let b = promtool_dump(&promtool, &theirs, &[]);
    assert_eq!(b.lines().count(), 2308, "promtool's count");
    assert_eq!(a, b, "annals dump and promtool tsdb dump differ");
    assert_eq!(tree(&ours), before, "dump changed the directory");
}
