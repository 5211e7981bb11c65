//! Parses arbitrary bytes as OpenMetrics text. The parser must return errors, never panic, and
//! every sample it returns must survive a round trip: printed back as OpenMetrics (labels
//! escaped, value in Go's %g) and parsed again, it gives the same labels and value bits.
//! `sorted_labels` must be a name-sorted permutation of `labels`.
//!
//! The input is read through a small `BufReader` so lines span several buffer refills.
//!
//! Seed corpus: `mkdir -p corpus/openmetrics_parse && cp ../../shared/fixtures/prometheus-2.42/promtool-2.42-block.input.om corpus/openmetrics_parse/ && zcat ../../shared/data/node-exporter-15s.om.gz | head -2000 > corpus/openmetrics_parse/node && printf '# EOF\n' >> corpus/openmetrics_parse/node`
#![no_main]

use std::io::BufReader;

use annals_cli::gofmt::float_g;
use annals_cli::openmetrics::{Entry, Parser};
use libfuzzer_sys::fuzz_target;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// An OpenMetrics line for a sample with these labels (`__name__` first) and value.
fn render(labels: &[(String, String)], value: f64) -> String {
    let mut s = labels[0].1.clone();
    s.push('{');
    for (i, (n, v)) in labels[1..].iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{n}=\"{}\"", escape(v)));
    }
    s.push_str("} ");
    s.push_str(&float_g(value));
    s.push_str(" 1\n# EOF\n");
    s
}

fuzz_target!(|data: &[u8]| {
    let mut p = Parser::new(BufReader::with_capacity(16, data)).with_max_line_len(4096);
    let mut seen = Vec::new();
    loop {
        match p.next_entry() {
            Ok(Some(Entry::Sample(s))) => {
                let labels: Vec<(String, String)> = s
                    .labels()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                let mut sorted: Vec<(String, String)> = s
                    .sorted_labels()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                assert!(sorted.windows(2).all(|w| w[0].0 <= w[1].0));
                let mut a = labels.clone();
                a.sort();
                sorted.sort();
                assert_eq!(a, sorted);
                assert_eq!(labels[0].0, "__name__");
                assert_eq!(labels[0].1, s.metric_name());
                seen.push((labels, s.value.to_bits()));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    for (labels, bits) in seen {
        // Values that are not round-trippable by design: none (NaN keeps its canonical bits).
        let text = render(&labels, f64::from_bits(bits));
        let mut q = Parser::new(text.as_bytes());
        match q.next_entry() {
            Ok(Some(Entry::Sample(s))) => {
                let again: Vec<(String, String)> = s
                    .labels()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                assert_eq!(again, labels, "{text:?}");
                assert_eq!(s.value.to_bits(), bits, "{text:?}");
            }
            other => panic!("round trip of {text:?} failed: {other:?}"),
        }
    }
});
