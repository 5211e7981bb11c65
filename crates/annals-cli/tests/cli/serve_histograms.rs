//! Native histograms through the remote-write receiver (issue 15 item 2): the same requests
//! posted to `annals serve` and to a Prometheus 2.42 with
//! `--web.enable-remote-write-receiver --enable-feature=native-histograms` are stored alike.
//! annals's PromQL does not evaluate histograms, so annals's side is read through the engine
//! (`Series::values`) after the server stops, Prometheus's through its query API.

use std::collections::BTreeMap;

use annals::histogram::{FloatHistogram, Histogram, Span};
use annals::Value;
use annals_prompb::proto::{
    histogram, BucketSpan, Histogram as ProtoHistogram, Label, Sample, TimeSeries, WriteRequest,
};

use crate::serve_support::*;
use crate::support::*;

const T0: i64 = 1_700_006_400_000;

fn spans(s: &[Span]) -> Vec<BucketSpan> {
    s.iter()
        .map(|s| BucketSpan {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

fn hint(h: annals::histogram::CounterResetHint) -> i32 {
    h.as_u8() as i32
}

fn proto_int(t: i64, h: &Histogram) -> ProtoHistogram {
    ProtoHistogram {
        count: Some(histogram::Count::CountInt(h.count)),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: Some(histogram::ZeroCount::ZeroCountInt(h.zero_count)),
        negative_spans: spans(&h.negative_spans),
        negative_deltas: h.negative_buckets.clone(),
        negative_counts: vec![],
        positive_spans: spans(&h.positive_spans),
        positive_deltas: h.positive_buckets.clone(),
        positive_counts: vec![],
        reset_hint: hint(h.counter_reset_hint),
        timestamp: t,
    }
}

fn proto_float(t: i64, h: &FloatHistogram) -> ProtoHistogram {
    ProtoHistogram {
        count: Some(histogram::Count::CountFloat(h.count)),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: Some(histogram::ZeroCount::ZeroCountFloat(h.zero_count)),
        negative_spans: spans(&h.negative_spans),
        negative_deltas: vec![],
        negative_counts: h.negative_buckets.clone(),
        positive_spans: spans(&h.positive_spans),
        positive_deltas: vec![],
        positive_counts: h.positive_buckets.clone(),
        reset_hint: hint(h.counter_reset_hint),
        timestamp: t,
    }
}

/// `(count, sum, non-empty bucket counts sorted)` of a histogram value: what both sides are
/// compared on (bucket bounds follow from the schema, checked in tests/it).
type Shape = (u64, u64, Vec<u64>);

fn shape(v: &Value) -> Option<Shape> {
    let f = match v {
        Value::Float(_) => return None,
        Value::Histogram(h) => h.to_float(),
        Value::FloatHistogram(h) => h.clone(),
    };
    let mut b: Vec<u64> = f
        .positive_bucket_counts()
        .chain(f.negative_bucket_counts())
        .map(|x| x.1)
        .chain((f.zero_count != 0.0).then_some(f.zero_count))
        .filter(|c| *c != 0.0)
        .map(f64::to_bits)
        .collect();
    b.sort_unstable();
    Some((f.count.to_bits(), f.sum.to_bits(), b))
}

#[test]
fn remote_written_histograms_are_stored_as_prometheus_stores_them() {
    let Some(prometheus) = oracle("prometheus") else {
        return;
    };
    // The requests: what the Prometheus fixture holds, as annals reads it.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/prometheus-2.42-histograms");
    let fixture = annals::Db::open_read_only(&src, annals::Options::default()).unwrap();
    let q = fixture.querier(i64::MIN, i64::MAX).unwrap();
    let series: Vec<(annals::Labels, Vec<(i64, Value)>)> = q
        .select(&[])
        .unwrap()
        .map(|s| (s.labels().clone(), s.values().map(Result::unwrap).collect()))
        .collect();
    assert_eq!(series.len(), 9);
    let step = 600_000;
    let requests: Vec<WriteRequest> = (0..24)
        .map(|round| WriteRequest {
            timeseries: series
                .iter()
                .map(|(l, values)| {
                    let window = values
                        .iter()
                        .filter(|v| T0 + round * step <= v.0 && v.0 < T0 + (round + 1) * step);
                    let mut ts = TimeSeries {
                        labels: l
                            .iter()
                            .map(|x| Label {
                                name: x.name.to_string(),
                                value: x.value.to_string(),
                            })
                            .collect(),
                        ..TimeSeries::default()
                    };
                    for (t, v) in window {
                        match v {
                            Value::Float(f) => ts.samples.push(Sample {
                                value: *f,
                                timestamp: *t,
                            }),
                            Value::Histogram(h) => ts.histograms.push(proto_int(*t, h)),
                            Value::FloatHistogram(h) => ts.histograms.push(proto_float(*t, h)),
                        }
                    }
                    ts
                })
                .collect(),
            metadata: vec![],
        })
        .collect();

    let d = tempfile::tempdir().unwrap();
    let annals_dir = d.path().join("annals");
    let mut annals = start_annals(&annals_dir, &["--retention.time=0"]);
    let config = d.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1h\nscrape_configs: []\n",
    )
    .unwrap();
    let prom = start_prometheus(
        &prometheus,
        &d.path().join("prometheus"),
        &config,
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms",
        ],
    );
    for (i, r) in requests.iter().enumerate() {
        let a = remote_write(annals.port, r);
        let p = remote_write(prom.port, r);
        assert_eq!(
            (a.status, p.status),
            (204, 204),
            "request {i}: annals {}, prometheus {}",
            a.text(),
            p.text()
        );
    }
    assert!(annals.terminate(), "annals serve: {}", annals.log());
    let db = annals::Db::open_read_only(&annals_dir, annals::Options::default()).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let ours: BTreeMap<String, Vec<(i64, Value)>> = q
        .select(&[])
        .unwrap()
        .map(|s| {
            (
                s.labels().to_string(),
                s.values().map(Result::unwrap).collect(),
            )
        })
        .collect();
    assert_eq!(ours.len(), 9);
    let end = (T0 + 4 * 3_600_000) / 1000;
    let mut compared = 0;
    for (name, values) in &ours {
        // Everything the API shows: stale markers are left out.
        let mine: Vec<(i64, Option<Shape>, u64)> = values
            .iter()
            .filter(|(_, v)| !v.is_stale())
            .map(|(t, v)| (*t, shape(v), v.as_float().map_or(0, f64::to_bits)))
            .collect();
        let metric = name.split('"').nth(1).unwrap();
        let body = get(
            prom.port,
            &format!(
                "/api/v1/query?query={}&time={end}",
                enc(&format!("{metric}[1d]"))
            ),
        )
        .json();
        let r = &body["data"]["result"][0];
        let ts = |x: &serde_json::Value| (x.as_f64().unwrap() * 1000.0).round() as i64;
        let num = |x: &serde_json::Value| -> f64 { x.as_str().unwrap().parse().unwrap() };
        let mut theirs: Vec<(i64, Option<Shape>, u64)> = Vec::new();
        for p in r["values"].as_array().into_iter().flatten() {
            theirs.push((ts(&p[0]), None, num(&p[1]).to_bits()));
        }
        for p in r["histograms"].as_array().into_iter().flatten() {
            let h = &p[1];
            let mut b: Vec<u64> = h["buckets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| num(&b[3]))
                .filter(|c| *c != 0.0)
                .map(f64::to_bits)
                .collect();
            b.sort_unstable();
            theirs.push((
                ts(&p[0]),
                Some((num(&h["count"]).to_bits(), num(&h["sum"]).to_bits(), b)),
                0,
            ));
        }
        theirs.sort_by_key(|x| x.0);
        let mut mine = mine;
        if name == r#"{__name__="fx_float_stale_seconds", job="fixture"}"# {
            // 2.42's query path shows the last float histogram again at the integer stale
            // markers that follow it (see tests/it/histogram_fixtures.rs): compare before them.
            let quirk = T0 + 460 * 30_000;
            mine.retain(|x| x.0 < quirk);
            theirs.retain(|x| x.0 < quirk);
        }
        assert_eq!(mine.len(), theirs.len(), "{name}: samples");
        for (a, b) in mine.iter().zip(&theirs) {
            assert_eq!(a, b, "{name}");
        }
        compared += mine.iter().filter(|x| x.1.is_some()).count();
    }
    // 8 histogram series × 480, less 16 stale markers and the 10 float histograms 2.42
    // dropped when it wrote the fixture.
    assert_eq!(compared, 8 * 480 - 16 - 10);
    eprintln!("remote write: {compared} histograms stored alike by annals and Prometheus");
}
