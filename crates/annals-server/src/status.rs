//! `/api/v1/status/*`: build and runtime information, flags, configuration, and the head's
//! cardinality statistics as Prometheus 2.42's `MemPostings.Stats` computes them.

use std::collections::BTreeMap;

use axum::extract::State;

use crate::api::{blocking, Api, St};
use crate::json;
use crate::params;

/// The Prometheus API level annals implements: Grafana and other clients read `version` to
/// decide which API features they may use. `revision` names annals.
const API_VERSION: &str = "2.42.0";

/// `GET /api/v1/status/buildinfo`.
pub(crate) async fn buildinfo() -> Api {
    let mut out = String::from("{\"version\":");
    json::write_str(&mut out, API_VERSION);
    out.push_str(",\"revision\":");
    json::write_str(&mut out, concat!("annals-", env!("CARGO_PKG_VERSION")));
    out.push_str(
        ",\"branch\":\"annals\",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\"}",
    );
    Api::ok(out)
}

/// `GET /api/v1/status/runtimeinfo`.
pub(crate) async fn runtimeinfo(State(s): St) -> Api {
    let started = s
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<error retrieving current working directory: {e}>"));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = String::from("{\"startTime\":");
    json::write_str(&mut out, &params::format_rfc3339_nano(started));
    out.push_str(",\"CWD\":");
    json::write_str(&mut out, &cwd);
    out.push_str(",\"reloadConfigSuccess\":true,\"lastConfigTime\":");
    json::write_str(&mut out, &params::format_rfc3339_nano(started));
    let tasks = tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_alive_tasks())
        .unwrap_or(0);
    out.push_str(&format!(
        ",\"corruptionCount\":0,\"goroutineCount\":{tasks},\"GOMAXPROCS\":{threads},\"GOGC\":\"\",\"GODEBUG\":\"\",\"storageRetention\":"
    ));
    json::write_str(&mut out, &s.opts.retention_description);
    out.push('}');
    Api::ok(out)
}

/// `GET /api/v1/status/flags`.
pub(crate) async fn flags(State(s): St) -> Api {
    let mut out = String::from("{");
    for (i, (k, v)) in s.opts.flags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_str(&mut out, k);
        out.push(':');
        json::write_str(&mut out, v);
    }
    out.push('}');
    Api::ok(out)
}

/// `GET /api/v1/status/config`: annals has no scrape, rule or alerting configuration, which is
/// what Prometheus 2.42 prints for an empty configuration file.
pub(crate) async fn config() -> Api {
    let yaml = "global:\n  scrape_interval: 1m\n  scrape_timeout: 10s\n  evaluation_interval: 1m\n";
    let mut out = String::from("{\"yaml\":");
    json::write_str(&mut out, yaml);
    out.push('}');
    Api::ok(out)
}

/// `GET /api/v1/status/walreplay`: replay finished before the server started listening.
pub(crate) async fn walreplay() -> Api {
    Api::ok(r#"{"min":0,"max":0,"current":0}"#.into())
}

/// One statistic: a name and a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    pub name: String,
    pub count: u64,
}

/// Cardinality statistics of a set of label sets, as `MemPostings.Stats("__name__")`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PostingsStats {
    pub metrics: Vec<Stat>,
    pub labels: Vec<Stat>,
    pub label_value_bytes: Vec<Stat>,
    pub label_value_pairs: Vec<Stat>,
    pub num_label_pairs: u64,
}

/// The ten largest, by count descending (ties by name, where Prometheus's order follows Go's
/// random map iteration).
fn top10(mut v: Vec<Stat>) -> Vec<Stat> {
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v.truncate(10);
    v
}

pub(crate) fn postings_stats<'a>(
    series: impl IntoIterator<Item = &'a annals::Labels>,
) -> PostingsStats {
    // name -> value -> number of series
    let mut postings: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for l in series {
        for p in l.iter() {
            *postings
                .entry(p.name.to_owned())
                .or_default()
                .entry(p.value.to_owned())
                .or_default() += 1;
        }
    }
    let mut st = PostingsStats::default();
    let (mut metrics, mut labels, mut bytes, mut pairs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, values) in &postings {
        labels.push(Stat {
            name: name.clone(),
            count: values.len() as u64,
        });
        st.num_label_pairs += values.len() as u64;
        let mut size = 0u64;
        for (value, n) in values {
            if name == "__name__" {
                metrics.push(Stat {
                    name: value.clone(),
                    count: *n,
                });
            }
            pairs.push(Stat {
                name: format!("{name}={value}"),
                count: *n,
            });
            size += value.len() as u64;
        }
        bytes.push(Stat {
            name: name.clone(),
            count: size,
        });
    }
    st.metrics = top10(metrics);
    st.labels = top10(labels);
    st.label_value_bytes = top10(bytes);
    st.label_value_pairs = top10(pairs);
    st
}

fn stats_array(out: &mut String, v: &[Stat]) {
    out.push('[');
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json::write_str(out, &s.name);
        out.push_str(&format!(",\"value\":{}}}", s.count));
    }
    out.push(']');
}

/// `GET /api/v1/status/tsdb`.
pub(crate) async fn tsdb(State(s): St) -> Api {
    let db = s.db.clone();
    let r = blocking(move || -> annals::Result<String> {
        let h = db.head_stats();
        let (min, max) = (h.min_time.unwrap_or(i64::MAX), h.max_time.unwrap_or(i64::MIN));
        let stats = match (h.min_time, h.max_time) {
            (Some(lo), Some(hi)) => {
                let q = db.querier(lo, hi)?;
                let all: Vec<annals::Labels> = q.select(&[])?.map(|s| s.labels().clone()).collect();
                postings_stats(all.iter())
            }
            _ => PostingsStats::default(),
        };
        let mut out = format!(
            "{{\"headStats\":{{\"numSeries\":{},\"numLabelPairs\":{},\"chunkCount\":{},\"minTime\":{min},\"maxTime\":{max}}}",
            h.num_series,
            stats.num_label_pairs,
            db.head_chunk_count(),
        );
        out.push_str(",\"seriesCountByMetricName\":");
        stats_array(&mut out, &stats.metrics);
        out.push_str(",\"labelValueCountByLabelName\":");
        stats_array(&mut out, &stats.labels);
        out.push_str(",\"memoryInBytesByLabelName\":");
        stats_array(&mut out, &stats.label_value_bytes);
        out.push_str(",\"seriesCountByLabelValuePair\":");
        stats_array(&mut out, &stats.label_value_pairs);
        out.push('}');
        Ok(out)
    })
    .await;
    match r {
        Ok(Ok(d)) => Api::ok(d),
        Ok(Err(e)) => Api::internal(e),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_stats_count_as_mem_postings_stats() {
        let ls: Vec<annals::Labels> = [
            [("__name__", "up"), ("job", "a")],
            [("__name__", "up"), ("job", "bb")],
            [("__name__", "x"), ("job", "a")],
        ]
        .iter()
        .map(|p| annals::Labels::new(p.iter().copied()).unwrap())
        .collect();
        let st = postings_stats(ls.iter());
        let s = |n: &str, c| Stat {
            name: n.into(),
            count: c,
        };
        assert_eq!(st.metrics, vec![s("up", 2), s("x", 1)]);
        assert_eq!(st.labels, vec![s("__name__", 2), s("job", 2)]);
        assert_eq!(
            st.label_value_bytes,
            vec![s("job", 3), s("__name__", 3)]
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
        );
        assert_eq!(
            st.label_value_pairs,
            vec![
                s("__name__=up", 2),
                s("job=a", 2),
                s("__name__=x", 1),
                s("job=bb", 1)
            ]
        );
        assert_eq!(st.num_label_pairs, 4);
    }
}
