//! WAL compatibility with Prometheus 2.42, with `promtool` as the oracle (brief §4.1):
//! Prometheus reads the WALs we write, and we read the WALs Prometheus writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use annals::unstable::wal::{self, Compression, Reader, RecordType, RefSample, Wal, WalOptions};
use annals::Labels;

use crate::promtool;

/// A sample set keyed by series text (`Labels` display form) and timestamp.
type SampleSet = BTreeMap<(String, i64), f64>;

fn dump_samples(lines: &[String]) -> SampleSet {
    let mut out = SampleSet::new();
    for l in lines {
        let (labels, v, t) = promtool::parse_dump_line(l);
        assert!(
            out.insert((labels, t), v).is_none(),
            "duplicate dump line {l}"
        );
    }
    out
}

/// Values must be equal as numbers: bit for bit (promtool prints Go's shortest `%g`, which
/// round-trips), except that every NaN (stale markers included) prints as `NaN`.
fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn assert_same_samples(got: &SampleSet, want: &SampleSet) {
    assert_eq!(got.len(), want.len(), "number of samples");
    for ((labels, t), v) in want {
        let g = got
            .get(&(labels.clone(), *t))
            .unwrap_or_else(|| panic!("missing sample {labels} @{t}"));
        assert!(same_value(*g, *v), "{labels} @{t}: got {g}, want {v}");
    }
}

/// Reads every Series and Samples record of the segments of `dir` into a sample set, checking
/// that every sample refers to a series declared before it.
fn read_wal_samples(dir: &Path) -> (SampleSet, HashMap<RecordType, usize>, Vec<Labels>) {
    let mut r = Reader::open_dir(dir, 0).expect("open WAL");
    let mut refs: HashMap<u64, Labels> = HashMap::new();
    let mut counts = HashMap::new();
    let mut set = SampleSet::new();
    let mut order = Vec::new();
    let (mut series, mut samples) = (Vec::new(), Vec::new());
    while let Some((rec, pos)) = r.next_record().expect("read WAL") {
        let typ = wal::record_type(rec);
        *counts.entry(typ).or_insert(0) += 1;
        match typ {
            RecordType::Series => {
                series.clear();
                wal::decode_series(rec, &mut series).expect("series record");
                for s in series.drain(..) {
                    order.push(s.labels.clone());
                    refs.insert(s.series_ref, s.labels);
                }
            }
            RecordType::Samples => {
                samples.clear();
                wal::decode_samples(rec, &mut samples).expect("samples record");
                for s in &samples {
                    let l = refs
                        .get(&s.series_ref)
                        .unwrap_or_else(|| panic!("sample at {pos:?} of undeclared ref"));
                    let dup = set.insert((l.to_string(), s.t), s.v);
                    assert!(dup.is_none(), "duplicate sample {l} @{}", s.t);
                }
            }
            _ => {}
        }
    }
    (set, counts, order)
}

/// Values that stress `%g` printing and the head's NaN handling.
const ODD_VALUES: [f64; 12] = [
    -0.0,
    1e-300,
    5e-324,
    f64::MAX,
    -f64::MAX,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    0.1 + 0.2,
    1.0 / 3.0,
    9_007_199_254_740_993.0,
    -123_456.789e10,
];

/// (a) A data dir whose WAL our `Wal` wrote (several small segments, with and without
/// snappy) dumps through promtool to exactly the samples written.
#[test]
fn promtool_dumps_the_wal_we_write() {
    let Some(promtool) = promtool::promtool() else {
        return;
    };
    for compression in [Compression::None, Compression::Snappy] {
        let d = tempfile::tempdir().unwrap();
        let wal_dir = d.path().join("wal");
        let w = Wal::open(
            &wal_dir,
            WalOptions {
                segment_size: 32 * 1024,
                compression,
            },
        )
        .unwrap();
        let n_series = 60u64;
        let labels: Vec<Labels> = (1..=n_series)
            .map(|i| {
                Labels::new([
                    ("__name__", "wal_compat_metric"),
                    ("series", &i.to_string()),
                    ("kind", if i % 3 == 0 { "odd" } else { "plain" }),
                ])
                .unwrap()
            })
            .collect();
        let mut want = SampleSet::new();
        let mut buf = Vec::new();
        // Half of the series are declared up front, the rest half way through.
        let declare = |from: u64, to: u64, buf: &mut Vec<u8>| {
            buf.clear();
            wal::encode_series((from..=to).map(|r| (r, &labels[r as usize - 1])), buf);
        };
        declare(1, n_series / 2, &mut buf);
        w.log(&[&buf]).unwrap();
        let t0 = 1_700_000_000_000i64;
        let scrapes = 300i64;
        for k in 0..scrapes {
            if k == scrapes / 2 {
                declare(n_series / 2 + 1, n_series, &mut buf);
                w.log(&[&buf]).unwrap();
            }
            let live = if k < scrapes / 2 {
                n_series / 2
            } else {
                n_series
            };
            let t = t0 + 15_000 * k;
            let samples = (1..=live).map(|r| {
                let v = match r % 3 {
                    0 => ODD_VALUES[(k as usize + r as usize) % ODD_VALUES.len()],
                    _ if k % 50 == 49 => annals::stale_nan(),
                    _ => (r as f64) * 0.5 + k as f64,
                };
                RefSample {
                    series_ref: r,
                    t,
                    v,
                }
            });
            for s in samples.clone() {
                want.insert((labels[s.series_ref as usize - 1].to_string(), s.t), s.v);
            }
            buf.clear();
            wal::encode_samples(samples, &mut buf);
            w.log(&[&buf]).unwrap();
        }
        let (first, last) = wal::segment_range(&wal_dir).unwrap().unwrap();
        assert!(last - first >= 3, "several segments: {first}..={last}");
        w.close().unwrap();

        let got = dump_samples(&promtool::dump(&promtool, d.path(), &[]));
        assert_same_samples(&got, &want);
        assert!(got.values().any(|v| v.is_infinite()) && got.values().any(|v| v.is_nan()));
    }
}

/// (b) Our reader and decoders produce, from the WAL of a real Prometheus 2.42 server, the
/// samples `promtool tsdb dump` prints for that data dir.
///
/// The dump replays the WAL *and* the m-mapped `chunks_head/` chunks; replay skips WAL samples
/// already in m-mapped chunks. Since this WAL starts at segment 0 without a checkpoint, every
/// sample ever appended is in the WAL, so the dump must equal the WAL's sample set exactly
/// (the m-mapped chunks hold a subset of the same samples, not additional ones).
#[test]
fn we_read_what_prometheus_wrote() {
    let Some(promtool) = promtool::promtool() else {
        return;
    };
    let fixture = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/prometheus-2.42/prometheus-2.42-datadir"
    ));
    let (ours, counts, _) = read_wal_samples(&fixture.join("wal"));
    assert_eq!(counts.get(&RecordType::Series), Some(&2));
    assert_eq!(counts.get(&RecordType::Samples), Some(&200));
    assert_eq!(ours.len(), 298 + 199 * 336);

    let d = tempfile::tempdir().unwrap();
    promtool::copy_dir(fixture, d.path());
    let dumped = dump_samples(&promtool::dump(&promtool, d.path(), &[]));
    assert_same_samples(&dumped, &ours);
}

/// (c) The WAL that Prometheus's own TSDB writes under `promtool tsdb bench write`.
#[test]
fn we_read_the_wal_of_promtool_bench_write() {
    let Some(promtool) = promtool::promtool() else {
        return;
    };
    let (metrics, scrapes) = (200usize, 100usize);
    let d = tempfile::tempdir().unwrap();
    // The label file: one JSON object of label pairs per line (`20kseries.json` format).
    let mut input = String::new();
    let mut want_labels = BTreeSet::new();
    for i in 0..metrics {
        let (name, inst) = (
            format!("bench_metric_{}", i % 20),
            format!("host-{}", i / 20),
        );
        input.push_str(&format!(
            "{{\"__name__\":\"{name}\",\"instance\":\"{inst}\",\"job\":\"bench\"}}\n"
        ));
        let l = Labels::new([
            ("__name__", name.as_str()),
            ("instance", &inst),
            ("job", "bench"),
        ]);
        want_labels.insert(l.unwrap().to_string());
    }
    let labels_file = d.path().join("labels.json");
    std::fs::write(&labels_file, input).unwrap();
    let out = d.path().join("out");
    let res = Command::new(&promtool)
        .args(["tsdb", "bench", "write"])
        .arg(format!("--metrics={metrics}"))
        .arg(format!("--scrapes={scrapes}"))
        .arg(format!("--out={}", out.display()))
        .arg(&labels_file)
        .output()
        .expect("spawn promtool");
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "bench write failed: {stdout}");
    assert!(
        stdout.contains(&format!("total samples: {}", metrics * scrapes)),
        "{stdout}"
    );

    let (set, counts, order) = read_wal_samples(&out.join("storage/wal"));
    // Every series is declared once, with exactly the label sets of the input file.
    let got_labels: BTreeSet<String> = order.iter().map(|l| l.to_string()).collect();
    assert_eq!(order.len(), metrics);
    assert_eq!(got_labels, want_labels);
    // Compaction is off and the WAL starts at segment 0: every ingested sample is in it,
    // m-mapped head chunks notwithstanding, one Samples record per scrape.
    assert_eq!(set.len(), metrics * scrapes);
    assert_eq!(counts.get(&RecordType::Samples), Some(&scrapes));
    let times: BTreeSet<i64> = set.keys().map(|(_, t)| *t).collect();
    assert_eq!(times.len(), scrapes);
    let per_series = set.keys().fold(HashMap::new(), |mut m, (l, _)| {
        *m.entry(l.clone()).or_insert(0usize) += 1;
        m
    });
    assert!(per_series.values().all(|&n| n == scrapes));
}
