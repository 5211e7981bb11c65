//! Remote read (`POST /api/v1/read`): a snappy-compressed protobuf `ReadRequest`, answered as
//! one snappy-compressed `ReadResponse` (`SAMPLES`) or as a stream of CRC-framed
//! `ChunkedReadResponse`s (`STREAMED_XOR_CHUNKS`), whichever the client lists first.
//!
//! Streamed chunks are the stored chunk bytes, from head and blocks, without re-encoding (the
//! engine re-encodes only chunks the range or a deletion cuts, or that overlap); frames are
//! cut at `--storage.remote.read-max-bytes-in-frame` as Prometheus cuts them.

use std::sync::Arc;

use annals::{MatchType, Matcher};
use annals_prompb::proto::{
    self, chunk, label_matcher, read_request::ResponseType, ChunkedReadResponse, ChunkedSeries,
    QueryResult, ReadResponse,
};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::St;
use crate::AppState;

fn text(status: StatusCode, msg: String) -> Response {
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        msg + "\n",
    )
        .into_response()
}

/// The matchers of one query, or why they are invalid.
pub(crate) fn matchers(q: &proto::Query) -> Result<Vec<Matcher>, String> {
    q.matchers
        .iter()
        .map(|m| {
            let kind = match label_matcher::Type::try_from(m.r#type) {
                Ok(label_matcher::Type::Eq) => MatchType::Equal,
                Ok(label_matcher::Type::Neq) => MatchType::NotEqual,
                Ok(label_matcher::Type::Re) => MatchType::Regex,
                Ok(label_matcher::Type::Nre) => MatchType::NotRegex,
                Err(_) => return Err(format!("invalid matcher type {}", m.r#type)),
            };
            Matcher::new(kind, &m.name, &m.value).map_err(|e| e.to_string())
        })
        .collect()
}

fn proto_labels(l: &annals::Labels) -> Vec<proto::Label> {
    l.iter()
        .map(|p| proto::Label {
            name: p.name.to_owned(),
            value: p.value.to_owned(),
        })
        .collect()
}

/// Answers every query with samples, failing once `limit` samples were collected.
pub(crate) fn read_samples(
    db: &annals::Db,
    req: &proto::ReadRequest,
    limit: u64,
) -> Result<(ReadResponse, u64), (StatusCode, String)> {
    let mut resp = ReadResponse::default();
    let mut total = 0u64;
    for q in &req.queries {
        let ms = matchers(q).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        let mut result = QueryResult::default();
        if q.start_timestamp_ms <= q.end_timestamp_ms {
            let querier = db
                .querier(q.start_timestamp_ms, q.end_timestamp_ms)
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            for s in querier
                .select(&ms)
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            {
                let mut ts = proto::TimeSeries {
                    labels: proto_labels(s.labels()),
                    ..Default::default()
                };
                for sample in s.samples() {
                    let sample =
                        sample.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                    total += 1;
                    if total > limit {
                        return Err((
                            StatusCode::BAD_REQUEST,
                            format!("exceeded sample limit ({limit})"),
                        ));
                    }
                    ts.samples.push(proto::Sample {
                        value: sample.v,
                        timestamp: sample.t,
                    });
                }
                result.timeseries.push(ts);
            }
        }
        resp.results.push(result);
    }
    Ok((resp, total))
}

/// The wire type of a stored chunk encoding (the chunk encoding byte, as Prometheus casts it).
fn wire_encoding(e: annals::ChunkEncoding) -> i32 {
    match e {
        annals::ChunkEncoding::Xor => chunk::Encoding::Xor as i32,
        annals::ChunkEncoding::Histogram => chunk::Encoding::Histogram as i32,
        annals::ChunkEncoding::FloatHistogram => 3,
    }
}

/// Streams every query as framed chunked series through `send`; returns the chunk count.
///
/// Chunks are the stored ones, verbatim ([`annals::Series::chunks`]): only a chunk cut by the
/// query's range or a deletion, or overlapping another chunk of the series, is re-encoded by
/// the engine. Frames are cut as Prometheus's `StreamChunkedReadResponses` cuts them: one
/// series per frame, a frame closed once its chunks reach `max_frame_bytes` less the labels'
/// size (so a frame may exceed it by one chunk).
pub(crate) fn stream_chunks(
    db: &annals::Db,
    req: &proto::ReadRequest,
    max_frame_bytes: usize,
    mut send: impl FnMut(Vec<u8>) -> bool,
) -> Result<u64, String> {
    use prost::Message as _;
    let mut chunks_sent = 0u64;
    for (qi, q) in req.queries.iter().enumerate() {
        let ms = matchers(q)?;
        if q.start_timestamp_ms > q.end_timestamp_ms {
            continue;
        }
        let querier = db
            .querier(q.start_timestamp_ms, q.end_timestamp_ms)
            .map_err(|e| e.to_string())?;
        for s in querier.select(&ms).map_err(|e| e.to_string())? {
            let labels = proto_labels(s.labels());
            let max_data =
                max_frame_bytes as i64 - labels.iter().map(|l| l.encoded_len() as i64).sum::<i64>();
            let mut left = max_data;
            let mut frame: Vec<proto::Chunk> = Vec::new();
            let mut it = s.chunks().peekable();
            while let Some(c) = it.next() {
                let c = c.map_err(|e| e.to_string())?;
                let c = proto::Chunk {
                    min_time_ms: c.min_time,
                    max_time_ms: c.max_time,
                    r#type: wire_encoding(c.encoding),
                    data: c.data.into_owned(),
                };
                left -= c.encoded_len() as i64;
                frame.push(c);
                if left > 0 && it.peek().is_some() {
                    continue;
                }
                chunks_sent += frame.len() as u64;
                let msg = ChunkedReadResponse {
                    chunked_series: vec![ChunkedSeries {
                        labels: labels.clone(),
                        chunks: std::mem::take(&mut frame),
                    }],
                    query_index: qi as i64,
                };
                let mut buf = Vec::new();
                annals_prompb::write_frame(&mut buf, &msg);
                if !send(buf) {
                    return Ok(chunks_sent);
                }
                left = max_data;
            }
        }
    }
    Ok(chunks_sent)
}

/// The response type to use: the first accepted one annals supports (`SAMPLES` if none is
/// listed).
pub(crate) fn negotiate(req: &proto::ReadRequest) -> Option<ResponseType> {
    if req.accepted_response_types.is_empty() {
        return Some(ResponseType::Samples);
    }
    req.accepted_response_types
        .iter()
        .find_map(|t| ResponseType::try_from(*t).ok())
}

/// `POST /api/v1/read`.
pub(crate) async fn remote_read(State(s): St, body: Bytes) -> Response {
    let max = s.opts.remote_write_max_decoded;
    let req = match annals_prompb::decode_read_request(&body, max) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    for q in &req.queries {
        if let Err(e) = matchers(q) {
            return text(StatusCode::BAD_REQUEST, e);
        }
    }
    s.metrics.read_queries.inc_by(req.queries.len() as u64);
    match negotiate(&req) {
        Some(ResponseType::Samples) => samples_response(s, req).await,
        Some(ResponseType::StreamedXorChunks) => streamed_response(s, req),
        None => text(
            StatusCode::BAD_REQUEST,
            format!(
                "server does not support any of the requested response types: {:?}; supported: [SAMPLES STREAMED_XOR_CHUNKS]",
                req.accepted_response_types
            ),
        ),
    }
}

async fn samples_response(s: Arc<AppState>, req: proto::ReadRequest) -> Response {
    let db = s.db.clone();
    let limit = s.opts.remote_read_sample_limit;
    let r = tokio::task::spawn_blocking(move || {
        read_samples(&db, &req, limit).map(|(resp, n)| (annals_prompb::encode_snappy(&resp), n))
    })
    .await;
    match r {
        Ok(Ok((body, n))) => {
            s.metrics.read_samples.inc_by(n);
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, annals_prompb::CONTENT_TYPE_PROTOBUF),
                    (
                        header::CONTENT_ENCODING,
                        annals_prompb::CONTENT_ENCODING_SNAPPY,
                    ),
                ],
                body,
            )
                .into_response()
        }
        Ok(Err((status, msg))) => text(status, msg),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("remote read failed: {e}"),
        ),
    }
}

fn streamed_response(s: Arc<AppState>, req: proto::ReadRequest) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let db = s.db.clone();
    let max_frame = s.opts.remote_read_max_bytes_in_frame;
    let state = s.clone();
    tokio::task::spawn_blocking(move || {
        let res = stream_chunks(&db, &req, max_frame, |frame| {
            tx.blocking_send(Ok(Bytes::from(frame))).is_ok()
        });
        match res {
            Ok(n) => {
                state.metrics.read_chunks.inc_by(n);
            }
            Err(e) => {
                // Headers are gone already: end the stream with an error so the client sees
                // a broken body rather than a silently short one.
                tracing::warn!(err = %e, "streamed remote read failed");
                let _ = tx.blocking_send(Err(std::io::Error::other(e)));
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            annals_prompb::CONTENT_TYPE_STREAMED_CHUNKS,
        )],
        Body::from_stream(stream),
    )
        .into_response()
}
