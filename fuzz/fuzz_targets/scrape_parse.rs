//! Parses arbitrary bytes as a scraped body (first byte: Prometheus text or OpenMetrics) with
//! the agent's in-place parser. It must return errors, never panic; every sample's series text
//! must decode (`parse_series`), and printed back in the text format the sample parses again
//! to the same name, labels and value bits.
//!
//! Seed corpus: `mkdir -p corpus/scrape_parse && (printf '\0'; zcat ../../shared/data/node-exporter-15s.om.gz | head -600 | sed 's/ [0-9]*$//') > corpus/scrape_parse/text && (printf '\1'; zcat ../../shared/data/node-exporter-15s.om.gz | head -600; echo '# EOF') > corpus/scrape_parse/om`
#![no_main]

use annals_agent::textparse::{parse_series, Entry, Format, Parser};
use libfuzzer_sys::fuzz_target;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let format = if sel & 1 == 0 {
        Format::Prometheus
    } else {
        Format::OpenMetrics
    };
    let mut p = Parser::new(body, format);
    for _ in 0..100_000 {
        match p.next() {
            Ok(Some(Entry::Sample { series, value, .. })) => {
                let (name, labels) =
                    parse_series(series).expect("the parser validated this series");
                let mut line = name.to_string();
                if !labels.is_empty() {
                    let l: Vec<String> = labels
                        .iter()
                        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
                        .collect();
                    line.push('{');
                    line.push_str(&l.join(","));
                    line.push('}');
                }
                let v = if value.is_nan() {
                    "NaN".to_string()
                } else if value.is_infinite() {
                    if value > 0.0 {
                        "+Inf".into()
                    } else {
                        "-Inf".into()
                    }
                } else {
                    format!("{value:?}")
                };
                line.push(' ');
                line.push_str(&v);
                line.push('\n');
                let mut q = Parser::new(line.as_bytes(), Format::Prometheus);
                match q.next() {
                    Ok(Some(Entry::Sample {
                        series: s2,
                        value: v2,
                        ..
                    })) => {
                        let (n2, l2) = parse_series(s2).expect("printed series decodes");
                        assert_eq!(n2, name, "{line:?}");
                        assert_eq!(l2, labels, "{line:?}");
                        assert!(
                            v2.to_bits() == value.to_bits() || (v2.is_nan() && value.is_nan()),
                            "{line:?}"
                        );
                    }
                    other => panic!("{line:?} does not parse back: {other:?}"),
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
