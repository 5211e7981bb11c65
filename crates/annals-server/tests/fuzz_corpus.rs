//! The `server_request` fuzz target on stable Rust, for CI: its body (compiled here through a
//! stand-in for `libfuzzer_sys::fuzz_target!`) runs on seed requests and seeded mutations of
//! them. The coverage-guided run uses `cargo +nightly fuzz run server_request`.

extern crate self as libfuzzer_sys;

/// Turns the target's body into `pub fn run(data: &[u8])`.
#[macro_export]
macro_rules! fuzz_target {
    (|$data:ident: &[u8]| $body:block) => {
        pub fn run($data: &[u8]) $body
    };
}

#[allow(unused_attributes, unused_imports)]
#[path = "../../../fuzz/fuzz_targets/server_request.rs"]
mod server_request_target;

fn seed(route: u8, query: &str, body: &[u8]) -> Vec<u8> {
    let mut v = vec![route];
    v.extend_from_slice(query.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(body);
    v
}

/// xorshift64*: deterministic mutations.
fn next(s: &mut u64) -> u64 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    s.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn server_request_seeds_and_mutations() {
    use annals_prompb::proto;
    let write = annals_prompb::encode_write_request(&proto::WriteRequest {
        timeseries: vec![proto::TimeSeries {
            labels: vec![
                proto::Label {
                    name: "__name__".into(),
                    value: "up".into(),
                },
                proto::Label {
                    name: "job".into(),
                    value: "x".into(),
                },
            ],
            samples: vec![
                proto::Sample {
                    value: 1.0,
                    timestamp: 20_000,
                },
                proto::Sample {
                    value: 2.0,
                    timestamp: 10_000,
                },
            ],
            ..Default::default()
        }],
        metadata: vec![proto::MetricMetadata {
            r#type: 1,
            metric_family_name: "up".into(),
            help: "h".into(),
            unit: String::new(),
        }],
    });
    let read = annals_prompb::encode_snappy(&proto::ReadRequest {
        queries: vec![proto::Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 100_000,
            matchers: vec![proto::LabelMatcher {
                r#type: 2,
                name: "job".into(),
                value: "a.*|node".into(),
            }],
            hints: None,
        }],
        accepted_response_types: vec![1, 0],
    });
    let seeds = [
        seed(0, "query=up&time=1.5&timeout=1m", b""),
        seed(
            1 | 0x80,
            "",
            b"query=up&start=2015-07-01T20:10:30.781Z&end=2015-07-01T20:11:00.781Z&step=15s",
        ),
        seed(2, "match[]=up%7Bjob%3D~%22a.*%22%7D&start=0&end=10", b""),
        seed(3 | 0x80, "", b"match[]=%7Bjob%21%3D%22%22%7D&match[]=up"),
        seed(4, "match[]=up&start=-1e3&end=1h", b""),
        seed(5, "start=0&end=100", b""),
        seed(7, "metric=up&limit=1", b""),
        seed(8, "query=up&start=1&end=0", b""),
        seed(9, "", &write),
        seed(10, "", &read),
        seed(11, "", b""),
        seed(12, "type=alert", b""),
        seed(13 | 0x80, "", b"match[]=up&start=0"),
    ];
    let mut s = 0x5eed_u64;
    let mut runs = 0;
    for sd in &seeds {
        server_request_target::run(sd);
        for _ in 0..150 {
            let mut b = sd.clone();
            let r = next(&mut s);
            let at = 1 + (r as usize >> 8) % (b.len() - 1).max(1);
            if at < b.len() {
                match r % 4 {
                    0 | 1 => b[at] ^= 1 << (r >> 4 & 7),
                    2 => b.truncate(at),
                    _ => {
                        let len = ((r >> 32) as usize % 16).min(b.len() - at);
                        b[at..at + len].fill((r >> 40) as u8);
                    }
                }
            }
            server_request_target::run(&b);
            runs += 1;
        }
    }
    assert_eq!(runs, seeds.len() * 150);
}
