//! Writes the remote-write request bodies from which `scripts/make-histogram-fixtures.sh`
//! builds the Prometheus 2.42 fixtures under `tests/fixtures/`, plus a `steps` file saying in
//! which order to send them and when to wait for Prometheus's compactions.
//!
//! ```sh
//! cargo run --release -p annals-prompb --example fixture_requests -- histograms OUT_DIR
//! cargo run --release -p annals-prompb --example fixture_requests -- ooo OUT_DIR
//! ```
//!
//! Everything is deterministic: the same bodies on every run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use annals_prompb::encode_write_request;
use annals_prompb::proto::{
    histogram, BucketSpan, Histogram, Label, Sample, TimeSeries, WriteRequest,
};

/// 2023-11-15T00:00:00Z, a multiple of the 2 h block range.
const T0: i64 = 1_700_006_400_000;
const MIN: i64 = 60_000;
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(kind), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: fixture_requests histograms|ooo OUT_DIR");
        std::process::exit(2);
    };
    std::fs::create_dir_all(out).expect("create OUT_DIR");
    let out = Path::new(out);
    let mut w = Writer {
        dir: out,
        n: 0,
        steps: String::new(),
    };
    match kind.as_str() {
        "histograms" => histograms(&mut w),
        "ooo" => out_of_order(&mut w),
        _ => {
            eprintln!("unknown fixture kind {kind}");
            std::process::exit(2);
        }
    }
    std::fs::write(out.join("steps"), w.steps).expect("write steps");
}

struct Writer<'a> {
    dir: &'a Path,
    n: usize,
    steps: String,
}

impl Writer<'_> {
    fn post(&mut self, series: BTreeMap<String, TimeSeries>) {
        let req = WriteRequest {
            timeseries: series.into_values().collect(),
            metadata: vec![],
        };
        let name = format!("{:04}.bin", self.n);
        self.n += 1;
        std::fs::write(self.dir.join(&name), encode_write_request(&req)).expect("write body");
        writeln!(self.steps, "post {name}").expect("string write");
    }

    fn step(&mut self, s: &str) {
        writeln!(self.steps, "{s}").expect("string write");
    }
}

fn labels(name: &str, extra: &[(&str, &str)]) -> Vec<Label> {
    let mut l: Vec<Label> = [("__name__", name), ("job", "fixture")]
        .iter()
        .chain(extra)
        .map(|(n, v)| Label {
            name: (*n).into(),
            value: (*v).into(),
        })
        .collect();
    l.sort_by(|a, b| a.name.cmp(&b.name));
    l
}

fn key(l: &[Label]) -> String {
    l.iter()
        .map(|l| format!("{}={},", l.name, l.value))
        .collect()
}

/// Spans and values (absolute) of a sparse bucket map, in index order.
fn spans_of<V: Copy>(b: &BTreeMap<i32, V>) -> (Vec<BucketSpan>, Vec<V>) {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut last: Option<i32> = None;
    for &i in b.keys() {
        match last {
            Some(l) if i == l + 1 => spans.last_mut().expect("a span is open").length += 1,
            Some(l) => spans.push(BucketSpan {
                offset: i - l - 1,
                length: 1,
            }),
            None => spans.push(BucketSpan {
                offset: i,
                length: 1,
            }),
        }
        last = Some(i);
    }
    (spans, b.values().copied().collect())
}

fn deltas(abs: &[u64]) -> Vec<i64> {
    let mut prev = 0i64;
    abs.iter()
        .map(|&a| {
            let d = a as i64 - prev;
            prev = a as i64;
            d
        })
        .collect()
}

struct IntH {
    schema: i32,
    zero_threshold: f64,
    zero_count: u64,
    sum: f64,
    hint: histogram::ResetHint,
    pos: BTreeMap<i32, u64>,
    neg: BTreeMap<i32, u64>,
}

fn int_histogram(t: i64, h: &IntH) -> Histogram {
    let (ps, pv) = spans_of(&h.pos);
    let (ns, nv) = spans_of(&h.neg);
    let count = h.zero_count + pv.iter().sum::<u64>() + nv.iter().sum::<u64>();
    Histogram {
        count: Some(histogram::Count::CountInt(count)),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: Some(histogram::ZeroCount::ZeroCountInt(h.zero_count)),
        negative_spans: ns,
        negative_deltas: deltas(&nv),
        positive_spans: ps,
        positive_deltas: deltas(&pv),
        reset_hint: h.hint as i32,
        timestamp: t,
        ..Default::default()
    }
}

struct FloatH {
    schema: i32,
    zero_threshold: f64,
    zero_count: f64,
    sum: f64,
    hint: histogram::ResetHint,
    pos: BTreeMap<i32, f64>,
    neg: BTreeMap<i32, f64>,
}

fn float_histogram(t: i64, h: &FloatH) -> Histogram {
    let (ps, pv) = spans_of(&h.pos);
    let (ns, nv) = spans_of(&h.neg);
    let count = h.zero_count + pv.iter().sum::<f64>() + nv.iter().sum::<f64>();
    Histogram {
        count: Some(histogram::Count::CountFloat(count)),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: Some(histogram::ZeroCount::ZeroCountFloat(h.zero_count)),
        negative_spans: ns,
        negative_counts: nv,
        positive_spans: ps,
        positive_counts: pv,
        reset_hint: h.hint as i32,
        timestamp: t,
        ..Default::default()
    }
}

/// A stale marker as Prometheus's own remote-write sender sends one (integer counts, even
/// for float histograms: it copies a float count of 0).
fn stale(t: i64) -> Histogram {
    Histogram {
        count: Some(histogram::Count::CountInt(0)),
        sum: f64::from_bits(STALE_NAN),
        zero_count: Some(histogram::ZeroCount::ZeroCountInt(0)),
        timestamp: t,
        ..Default::default()
    }
}

/// The histogram fixture: 4 h of samples every 30 s, sent 10 minutes at a time, so that the
/// head compacts its first 2 h into a block while the rest stays in the head.
fn histograms(w: &mut Writer<'_>) {
    const STEP: i64 = 30_000;
    const N: i64 = 480;
    let mut batch: BTreeMap<String, TimeSeries> = BTreeMap::new();
    let add = |batch: &mut BTreeMap<String, TimeSeries>,
               l: Vec<Label>,
               h: Option<Histogram>,
               v: Option<Sample>| {
        let e = batch.entry(key(&l)).or_insert_with(|| TimeSeries {
            labels: l,
            ..Default::default()
        });
        e.histograms.extend(h);
        e.samples.extend(v);
    };
    for k in 0..N {
        let t = T0 + k * STEP;
        let ku = k as u64;

        // Integer counter, schema 3: buckets appear over time (recoding), a real counter
        // reset at k = 300, and a reset hint without a reset at k = 400.
        let base = if k >= 300 { ku - 300 } else { ku };
        let mut pos = BTreeMap::new();
        for i in 0..(3 + k / 40) as i32 {
            if i % 5 != 4 {
                pos.insert(i * 2 - 6, (base + 1) * (i as u64 % 3 + 1));
            }
        }
        let hint = if k == 400 {
            histogram::ResetHint::Yes
        } else {
            histogram::ResetHint::Unknown
        };
        let h = IntH {
            schema: 3,
            zero_threshold: 2f64.powi(-128),
            zero_count: base / 2,
            sum: base as f64 * 1.25,
            hint,
            pos,
            neg: BTreeMap::new(),
        };
        add(
            &mut batch,
            labels("fx_requests_seconds", &[("path", "/api")]),
            Some(int_histogram(t, &h)),
            None,
        );

        // Integer counter with negative buckets: schema 0, then 1 from k = 120 (a new chunk),
        // and from k = 384 a zero threshold of 0.001 (stored in 9 bytes).
        let schema = if k >= 120 { 1 } else { 0 };
        let zt = if k >= 384 { 0.001 } else { 2f64.powi(-128) };
        let mut pos = BTreeMap::new();
        let mut neg = BTreeMap::new();
        for i in -2..3 {
            pos.insert(i, ku * (i + 3) as u64);
        }
        neg.insert(1, ku);
        neg.insert(4, ku / 3);
        let h = IntH {
            schema,
            zero_threshold: zt,
            zero_count: ku % 7 + ku,
            sum: -(k as f64) * 0.5,
            hint: histogram::ResetHint::Unknown,
            pos,
            neg,
        };
        add(
            &mut batch,
            labels("fx_latency_seconds", &[]),
            Some(int_histogram(t, &h)),
            None,
        );

        // Integer gauge histogram, schema 2: buckets come and go, counts go up and down.
        let mut pos = BTreeMap::new();
        for i in 0..6i32 {
            if (k / 7 + i as i64) % 3 != 0 {
                pos.insert(i + (k / 50) as i32, ((k * 7 + i as i64 * 13) % 11) as u64);
            }
        }
        let h = IntH {
            schema: 2,
            zero_threshold: 2f64.powi(-128),
            zero_count: ku % 4,
            sum: (k % 17) as f64,
            hint: histogram::ResetHint::Gauge,
            pos,
            neg: BTreeMap::new(),
        };
        add(
            &mut batch,
            labels("fx_queue_depth", &[]),
            Some(int_histogram(t, &h)),
            None,
        );

        // Float counter, schema 1: fractional counts, buckets appear over time.
        let mut pos = BTreeMap::new();
        for i in 0..(2 + k / 100) as i32 {
            pos.insert(i, (k as f64 + 1.0) * 0.25 * f64::from(i + 1));
        }
        let h = FloatH {
            schema: 1,
            zero_threshold: 2f64.powi(-128),
            zero_count: k as f64 * 0.125,
            sum: k as f64 * 3.3,
            hint: histogram::ResetHint::Unknown,
            pos,
            neg: BTreeMap::new(),
        };
        add(
            &mut batch,
            labels("fx_rate_seconds", &[]),
            Some(float_histogram(t, &h)),
            None,
        );

        // Float gauge histogram, schema -1, buckets on both sides come and go.
        let mut pos = BTreeMap::new();
        let mut neg = BTreeMap::new();
        for i in 0..4i32 {
            if (k + i as i64) % 4 != 0 {
                pos.insert(i, 1.5 + ((k + i as i64) % 9) as f64);
            }
            if (k / 3 + i as i64) % 5 != 0 {
                neg.insert(i - 1, 0.5 * ((k % 5) as f64 + 1.0));
            }
        }
        let h = FloatH {
            schema: -1,
            zero_threshold: 0.5,
            zero_count: (k % 3) as f64,
            sum: (k % 13) as f64 - 6.0,
            hint: histogram::ResetHint::Gauge,
            pos,
            neg,
        };
        add(
            &mut batch,
            labels("fx_temperature", &[]),
            Some(float_histogram(t, &h)),
            None,
        );

        // Integer counter that goes stale for six samples at k = 150 and comes back.
        let hs = if (150..156).contains(&k) {
            stale(t)
        } else {
            let mut pos = BTreeMap::new();
            pos.insert(0, ku);
            pos.insert(1, ku * 2);
            int_histogram(
                t,
                &IntH {
                    schema: 3,
                    zero_threshold: 2f64.powi(-128),
                    zero_count: 0,
                    sum: k as f64,
                    hint: histogram::ResetHint::Unknown,
                    pos,
                    neg: BTreeMap::new(),
                },
            )
        };
        add(&mut batch, labels("fx_stale_seconds", &[]), Some(hs), None);

        // Huge counts and jumps: the widest varbit codes.
        let mut pos = BTreeMap::new();
        pos.insert(-1, (1u64 << 40) + ku * ku * (1 << 20));
        pos.insert(0, (1u64 << 57) + ku * (1 << 33));
        pos.insert(7, ku * ku * ku * 1_000_003);
        let h = IntH {
            schema: 0,
            zero_threshold: 0.0,
            zero_count: ku << 30,
            sum: k as f64 * 1e12,
            hint: histogram::ResetHint::Unknown,
            pos,
            neg: BTreeMap::new(),
        };
        add(
            &mut batch,
            labels("fx_big_bytes", &[]),
            Some(int_histogram(t, &h)),
            None,
        );

        // Float counter whose last ten samples are stale markers, sent the way Prometheus's
        // remote-write sender sends them (integer counts): 2.42 cuts an integer chunk for them.
        let hs = if k >= 470 {
            stale(t)
        } else {
            let mut pos = BTreeMap::new();
            pos.insert(3, k as f64 * 0.1 + 0.1);
            float_histogram(
                t,
                &FloatH {
                    schema: 5,
                    zero_threshold: 2f64.powi(-128),
                    zero_count: 0.0,
                    sum: k as f64,
                    hint: histogram::ResetHint::Unknown,
                    pos,
                    neg: BTreeMap::new(),
                },
            )
        };
        add(
            &mut batch,
            labels("fx_float_stale_seconds", &[]),
            Some(hs),
            None,
        );

        // A plain float series, the one `promtool tsdb dump` 2.42 prints.
        add(
            &mut batch,
            labels("fx_up", &[]),
            None,
            Some(Sample {
                value: (k % 7) as f64,
                timestamp: t,
            }),
        );

        if (k + 1) % 20 == 0 {
            w.post(std::mem::take(&mut batch));
            if k + 1 == 380 {
                // The head now spans more than 3 h: its first 2 h become a block.
                w.step("wait-blocks 1");
            }
        }
    }
}

/// The out-of-order fixture (floats; Prometheus 2.42 takes no out-of-order histograms):
/// in-order samples every minute, late samples at the half minutes within the 1 h window, two
/// head compactions (the first out-of-order data is compacted into a block that overlaps an
/// in-order one), and late samples left in the out-of-order head at shutdown.
fn out_of_order(w: &mut Writer<'_>) {
    let series = |i: usize| labels("fx_ooo_value", &[("i", &i.to_string())]);
    let in_order = |w: &mut Writer<'_>, from: i64, to: i64| {
        let mut m = from;
        while m < to {
            let mut batch = BTreeMap::new();
            for i in 0..6 {
                let l = series(i);
                let samples = (m..(m + 10).min(to))
                    .map(|x| Sample {
                        value: (x * (i as i64 + 1)) as f64,
                        timestamp: T0 + x * MIN,
                    })
                    .collect();
                batch.insert(
                    key(&l),
                    TimeSeries {
                        labels: l,
                        samples,
                        ..Default::default()
                    },
                );
            }
            w.post(batch);
            m += 10;
        }
    };
    // Late samples at the half minutes of [from, to) for series 0..4, newest first within
    // each request, so that every one is out of order.
    let late = |w: &mut Writer<'_>, from: i64, to: i64| {
        let mut m = to;
        while m > from {
            let lo = (m - 10).max(from);
            let mut batch = BTreeMap::new();
            for i in 0..4 {
                let l = series(i);
                let samples = (lo..m)
                    .map(|x| Sample {
                        value: -((x * 10 + i as i64) as f64) - 0.5,
                        timestamp: T0 + x * MIN + 30_000,
                    })
                    .collect();
                batch.insert(
                    key(&l),
                    TimeSeries {
                        labels: l,
                        samples,
                        ..Default::default()
                    },
                );
            }
            w.post(batch);
            m = lo;
        }
    };
    // 3 h 10 min in order: the head compacts [T0, T0 + 2 h).
    in_order(w, 0, 190);
    w.step("wait-blocks 1");
    // Late samples in [2 h 11 min, 3 h 9 min): more than 32 per series, so the first
    // out-of-order chunks are m-mapped (with markers in the WBL).
    late(w, 131, 189);
    // Up to 5 h 10 min: the head compacts [2 h, 4 h), then its out-of-order part.
    in_order(w, 190, 310);
    w.step("wait-blocks 2");
    w.step("sleep 5");
    // Late samples left in the out-of-order head (m-mapped chunks and the WBL).
    late(w, 255, 309);
}
