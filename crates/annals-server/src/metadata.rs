//! Metric metadata (`# TYPE`, `# HELP`, `# UNIT`) received by remote write, served by
//! `/api/v1/metadata`.
//!
//! Held in memory: the engine has no metadata records yet (Prometheus 2.42 logs them to its
//! WAL as `Metadata` records); until it does, metadata is lost on restart and senders re-send
//! it periodically (Prometheus every minute by default).

use std::collections::BTreeMap;
use std::sync::RwLock;

use annals_prompb::proto::{MetricMetadata, MetricType};

/// One metadata entry of a metric family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    /// `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`, `stateset` or
    /// `unknown`.
    pub typ: &'static str,
    /// Help text.
    pub help: String,
    /// Unit.
    pub unit: String,
}

/// Metric family name → its distinct entries, in arrival order.
#[derive(Debug, Default)]
pub struct MetadataStore {
    inner: RwLock<BTreeMap<String, Vec<Entry>>>,
}

/// Most distinct entries kept per metric: senders disagreeing without end must not grow it.
const MAX_ENTRIES_PER_METRIC: usize = 16;
/// Most metric families kept.
const MAX_METRICS: usize = 1_000_000;

/// The type name textparse gives a remote-write metric type.
pub fn type_name(t: i32) -> &'static str {
    match MetricType::try_from(t) {
        Ok(MetricType::Counter) => "counter",
        Ok(MetricType::Gauge) => "gauge",
        Ok(MetricType::Histogram) => "histogram",
        Ok(MetricType::Gaugehistogram) => "gaugehistogram",
        Ok(MetricType::Summary) => "summary",
        Ok(MetricType::Info) => "info",
        Ok(MetricType::Stateset) => "stateset",
        Ok(MetricType::Unknown) | Err(_) => "unknown",
    }
}

impl MetadataStore {
    /// Records the entries of a remote-write request; returns how many were recorded.
    pub fn record(&self, md: &[MetricMetadata]) -> usize {
        if md.is_empty() {
            return 0;
        }
        let Ok(mut map) = self.inner.write() else {
            return 0;
        };
        let mut n = 0;
        for m in md {
            if m.metric_family_name.is_empty() {
                continue;
            }
            let e = Entry {
                typ: type_name(m.r#type),
                help: m.help.clone(),
                unit: m.unit.clone(),
            };
            if !map.contains_key(&m.metric_family_name) && map.len() >= MAX_METRICS {
                continue;
            }
            let entries = map.entry(m.metric_family_name.clone()).or_default();
            if let Some(i) = entries.iter().position(|x| *x == e) {
                // Most recent last: a changed help text replaces the old one in order.
                let e = entries.remove(i);
                entries.push(e);
            } else {
                if entries.len() >= MAX_ENTRIES_PER_METRIC {
                    entries.remove(0);
                }
                entries.push(e);
            }
            n += 1;
        }
        n
    }

    /// The entries of `metric` (all metrics when empty), at most `limit` metrics (negative:
    /// no limit), as `/api/v1/metadata` renders them.
    pub fn render(&self, metric: &str, limit: i64) -> String {
        let map = match self.inner.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let mut out = String::from("{");
        let iter: Box<dyn Iterator<Item = (&String, &Vec<Entry>)>> = if metric.is_empty() {
            Box::new(map.iter())
        } else {
            Box::new(map.get_key_value(metric).into_iter())
        };
        for (count, (name, entries)) in iter.enumerate() {
            if limit >= 0 && count as i64 >= limit {
                break;
            }
            if count > 0 {
                out.push(',');
            }
            crate::json::write_str(&mut out, name);
            out.push_str(":[");
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"type\":");
                crate::json::write_str(&mut out, e.typ);
                out.push_str(",\"help\":");
                crate::json::write_str(&mut out, &e.help);
                out.push_str(",\"unit\":");
                crate::json::write_str(&mut out, &e.unit);
                out.push('}');
            }
            out.push(']');
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(name: &str, t: MetricType, help: &str) -> MetricMetadata {
        MetricMetadata {
            r#type: t as i32,
            metric_family_name: name.into(),
            help: help.into(),
            unit: String::new(),
        }
    }

    #[test]
    fn entries_dedupe_and_render_as_prometheus() {
        let s = MetadataStore::default();
        assert_eq!(
            s.record(&[
                md("b", MetricType::Gauge, "B"),
                md("a", MetricType::Counter, "A <1>")
            ]),
            2
        );
        assert_eq!(
            s.record(&[
                md("a", MetricType::Counter, "A <1>"),
                md("", MetricType::Gauge, "x")
            ]),
            1
        );
        assert_eq!(
            s.render("", -1),
            r#"{"a":[{"type":"counter","help":"A \u003c1\u003e","unit":""}],"b":[{"type":"gauge","help":"B","unit":""}]}"#
        );
        assert_eq!(
            s.render("b", -1),
            r#"{"b":[{"type":"gauge","help":"B","unit":""}]}"#
        );
        assert_eq!(s.render("zzz", -1), "{}");
        assert_eq!(
            s.render("", 1),
            r#"{"a":[{"type":"counter","help":"A \u003c1\u003e","unit":""}]}"#
        );
        assert_eq!(s.render("", 0), "{}");
    }
}
