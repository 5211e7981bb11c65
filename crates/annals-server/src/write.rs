//! The remote-write 1.0 receiver (`POST /api/v1/write`): a snappy-compressed protobuf
//! `WriteRequest`, bounded in compressed and decompressed size, appended in one transaction.
//!
//! Unlike Prometheus 2.42, which rolls the whole request back at the first rejected sample,
//! every valid sample of the request is committed; the answer is still Prometheus's: 204 when
//! all were stored, 400 with the first rejection's message (and the counts) when some were
//! rejected, so senders drop rather than retry the request. Storage failures are 500 (a
//! sender retries them).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use annals_prompb::proto::WriteRequest;

use crate::api::St;
use crate::metrics::ResultLabels;
use crate::params::labels_from_proto;

/// What appending one request did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct WriteOutcome {
    pub accepted: u64,
    pub rejected: u64,
    /// The first rejection: the series and the reason.
    pub first_rejection: Option<String>,
    pub histograms_rejected: u64,
    pub exemplars_ignored: u64,
}

/// Why a request failed as a whole.
#[derive(Debug)]
pub(crate) enum WriteFailure {
    /// The database failed (I/O, closed): nothing of the request was committed.
    Storage(annals::Error),
}

/// Appends every valid sample of `req` in one transaction.
pub(crate) fn append_request(
    db: &annals::Db,
    req: &WriteRequest,
) -> Result<WriteOutcome, WriteFailure> {
    let mut out = WriteOutcome::default();
    let mut app = db.appender();
    // Newest sample of each series this transaction holds: series ref -> (t, value bits).
    let mut pending: std::collections::HashMap<u64, (i64, u64)> = std::collections::HashMap::new();
    let reject = |out: &mut WriteOutcome, n: u64, what: String| {
        out.rejected += n;
        if out.first_rejection.is_none() {
            out.first_rejection = Some(what);
        }
    };
    for ts in &req.timeseries {
        out.exemplars_ignored += ts.exemplars.len() as u64;
        if ts.samples.is_empty() && ts.histograms.is_empty() {
            continue;
        }
        let labels = match labels_from_proto(&ts.labels) {
            Ok(l) => l,
            Err(e) => {
                reject(&mut out, (ts.samples.len() + ts.histograms.len()) as u64, e);
                continue;
            }
        };
        let mut sref = None;
        for s in &ts.samples {
            // The engine checks a sample against committed data only; one the same
            // transaction already holds a newer (or different equal-time) sample for would be
            // dropped at commit, so refuse it here with the engine's own error.
            if let Some(&(last_t, last_bits)) =
                sref.and_then(|r: annals::SeriesRef| pending.get(&r.get()))
            {
                let e = if s.timestamp < last_t {
                    Some(annals::Error::OutOfOrderSample {
                        timestamp: s.timestamp,
                        last_timestamp: last_t,
                    })
                } else if s.timestamp == last_t && s.value.to_bits() != last_bits {
                    Some(annals::Error::DuplicateSample {
                        timestamp: s.timestamp,
                    })
                } else if s.timestamp == last_t {
                    continue;
                } else {
                    None
                };
                if let Some(e) = e {
                    reject(&mut out, 1, format!("{e} (series {labels})"));
                    continue;
                }
            }
            match app.append(sref, &labels, s.timestamp, s.value) {
                Ok(r) => {
                    sref = Some(r);
                    pending.insert(r.get(), (s.timestamp, s.value.to_bits()));
                    out.accepted += 1;
                }
                Err(e) if e.is_sample_rejection() => {
                    reject(&mut out, 1, format!("{e} (series {labels})"));
                }
                Err(
                    e @ (annals::Error::InvalidLabels { .. }
                    | annals::Error::InvalidLabelName { .. }
                    | annals::Error::LimitExceeded { .. }),
                ) => {
                    // The whole series is refused (checked when it is created).
                    let left = ts.samples.len() as u64;
                    reject(&mut out, left, format!("{e} (series {labels})"));
                    break;
                }
                Err(e) => return Err(WriteFailure::Storage(e)),
            }
        }
        // After the series' floats, as 2.42's handler appends them.
        for hp in &ts.histograms {
            let res = match histogram_from_proto(hp) {
                ProtoHistogram::Int(h) => app.append_histogram(sref, &labels, hp.timestamp, &h),
                ProtoHistogram::Float(h) => {
                    app.append_float_histogram(sref, &labels, hp.timestamp, &h)
                }
            };
            match res {
                Ok(r) => {
                    sref = Some(r);
                    out.accepted += 1;
                }
                Err(e) if e.is_sample_rejection() => {
                    out.histograms_rejected += 1;
                    reject(&mut out, 0, format!("{e} (series {labels})"));
                }
                Err(
                    e @ (annals::Error::InvalidLabels { .. }
                    | annals::Error::InvalidLabelName { .. }
                    | annals::Error::LimitExceeded { .. }),
                ) => {
                    out.histograms_rejected += ts.histograms.len() as u64;
                    reject(&mut out, 0, format!("{e} (series {labels})"));
                    break;
                }
                Err(e) => return Err(WriteFailure::Storage(e)),
            }
        }
    }
    app.commit().map_err(WriteFailure::Storage)?;
    Ok(out)
}

/// A remote-write histogram as the engine takes it.
enum ProtoHistogram {
    Int(annals::histogram::Histogram),
    Float(annals::histogram::FloatHistogram),
}

/// 2.42's `HistogramProtoToHistogram` / `HistogramProtoToFloatHistogram`: a float histogram
/// when its count or zero count is a positive float, else an integer one (so a float
/// histogram stale marker, whose counts are 0, is stored as an integer one, as 2.42 does).
fn histogram_from_proto(hp: &annals_prompb::proto::Histogram) -> ProtoHistogram {
    use annals::histogram::{CounterResetHint, FloatHistogram, Histogram, Span};
    use annals_prompb::proto::histogram::{Count, ResetHint, ZeroCount};
    let hint = match ResetHint::try_from(hp.reset_hint) {
        Ok(ResetHint::Yes) => CounterResetHint::CounterReset,
        Ok(ResetHint::No) => CounterResetHint::NotCounterReset,
        Ok(ResetHint::Gauge) => CounterResetHint::Gauge,
        _ => CounterResetHint::Unknown,
    };
    let spans = |s: &[annals_prompb::proto::BucketSpan]| -> Vec<Span> {
        s.iter()
            .map(|s| Span {
                offset: s.offset,
                length: s.length,
            })
            .collect()
    };
    let count_float = match hp.count {
        Some(Count::CountFloat(c)) => c,
        _ => 0.0,
    };
    let zero_float = match hp.zero_count {
        Some(ZeroCount::ZeroCountFloat(c)) => c,
        _ => 0.0,
    };
    if count_float > 0.0 || zero_float > 0.0 {
        return ProtoHistogram::Float(FloatHistogram {
            counter_reset_hint: hint,
            schema: hp.schema,
            zero_threshold: hp.zero_threshold,
            zero_count: zero_float,
            count: count_float,
            sum: hp.sum,
            positive_spans: spans(&hp.positive_spans),
            negative_spans: spans(&hp.negative_spans),
            positive_buckets: hp.positive_counts.clone(),
            negative_buckets: hp.negative_counts.clone(),
        });
    }
    ProtoHistogram::Int(Histogram {
        counter_reset_hint: hint,
        schema: hp.schema,
        zero_threshold: hp.zero_threshold,
        zero_count: match hp.zero_count {
            Some(ZeroCount::ZeroCountInt(c)) => c,
            _ => 0,
        },
        count: match hp.count {
            Some(Count::CountInt(c)) => c,
            _ => 0,
        },
        sum: hp.sum,
        positive_spans: spans(&hp.positive_spans),
        negative_spans: spans(&hp.negative_spans),
        positive_buckets: hp.positive_deltas.clone(),
        negative_buckets: hp.negative_deltas.clone(),
    })
}

fn text(status: StatusCode, msg: String) -> Response {
    // Go's http.Error: text/plain with a trailing newline.
    (
        status,
        [
            ("content-type", "text/plain; charset=utf-8"),
            ("x-content-type-options", "nosniff"),
        ],
        msg + "\n",
    )
        .into_response()
}

/// `POST /api/v1/write`.
pub(crate) async fn remote_write(State(s): St, body: Bytes) -> Response {
    let max = s.opts.remote_write_max_decoded;
    let db = s.db.clone();
    let work = tokio::task::spawn_blocking(move || {
        let req = annals_prompb::decode_write_request(&body, max).map_err(|e| e.to_string())?;
        let md = req.metadata.clone();
        Ok::<_, String>((append_request(&db, &req), md))
    })
    .await;
    let (outcome, md) = match work {
        Ok(Ok(r)) => r,
        Ok(Err(decode)) => {
            tracing::debug!(err = %decode, "refused a remote-write request that does not decode");
            return text(StatusCode::BAD_REQUEST, decode);
        }
        Err(e) => {
            tracing::error!(err = %e, "remote-write handler failed");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error: {e}"),
            );
        }
    };
    let recorded = s.metadata.record(&md);
    s.metrics.write_metadata.inc_by(recorded as u64);
    match outcome {
        Ok(o) => {
            let c = |r: &str| {
                s.metrics
                    .write_samples
                    .get_or_create(&ResultLabels { result: r.into() })
                    .clone()
            };
            c("accepted").inc_by(o.accepted);
            if o.rejected > 0 {
                c("rejected").inc_by(o.rejected);
            }
            if o.histograms_rejected > 0 {
                c("histogram_rejected").inc_by(o.histograms_rejected);
            }
            if o.exemplars_ignored > 0 {
                c("exemplar_ignored").inc_by(o.exemplars_ignored);
            }
            match o.first_rejection {
                None => StatusCode::NO_CONTENT.into_response(),
                Some(first) => {
                    tracing::debug!(accepted = o.accepted, rejected = o.rejected, %first, "remote write with rejected samples");
                    text(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "{first}; {} of {} samples rejected, the others stored",
                            o.rejected + o.histograms_rejected,
                            o.rejected + o.histograms_rejected + o.accepted
                        ),
                    )
                }
            }
        }
        Err(WriteFailure::Storage(e)) => {
            tracing::error!(err = %e, "remote write failed");
            let status = if matches!(e, annals::Error::Closed(_)) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            text(status, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use annals_prompb::proto::{Label, Sample, TimeSeries};

    fn ts(name: &str, samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: name.into(),
            }],
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn valid_samples_are_stored_and_rejections_counted() {
        let db = annals::Db::open_in_memory(annals::Options::default()).unwrap();
        let req = WriteRequest {
            timeseries: vec![
                ts("a", &[(1000, 1.0), (2000, 2.0)]),
                ts("b", &[(1000, 1.0), (500, 9.0), (3000, 3.0)]),
                TimeSeries {
                    labels: vec![Label {
                        name: "".into(),
                        value: "x".into(),
                    }],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 1,
                    }],
                    ..Default::default()
                },
            ],
            metadata: vec![],
        };
        let o = append_request(&db, &req).unwrap();
        assert_eq!((o.accepted, o.rejected), (4, 2));
        assert!(
            o.first_rejection
                .as_deref()
                .unwrap()
                .contains("out of order"),
            "{o:?}"
        );
        let q = db.querier(0, 10_000).unwrap();
        let got: Vec<(String, usize)> = q
            .select(&[])
            .unwrap()
            .map(|s| (s.labels().to_string(), s.to_vec().unwrap().len()))
            .collect();
        assert_eq!(
            got,
            [
                (r#"{__name__="a"}"#.to_string(), 2),
                (r#"{__name__="b"}"#.to_string(), 2)
            ]
        );
    }
}
