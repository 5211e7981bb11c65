//! Prometheus's remote-write 1.0 and remote-read protocol: the `prompb` messages of
//! Prometheus 2.42 ([`proto`]), the snappy block framing of request and response bodies, and
//! the length-delimited, CRC-checked frames of the `STREAMED_XOR_CHUNKS` read response.
//!
//! Decoders here read bytes from the network: they never panic, and they refuse input whose
//! declared size exceeds the caller's limit before allocating for it (a snappy bomb is a
//! [`Error::TooLarge`], not an out-of-memory abort).
//!
//! ```
//! use annals_prompb::{decode_write_request, encode_write_request, proto};
//!
//! let req = proto::WriteRequest {
//!     timeseries: vec![proto::TimeSeries {
//!         labels: vec![proto::Label { name: "__name__".into(), value: "up".into() }],
//!         samples: vec![proto::Sample { value: 1.0, timestamp: 1_700_000_000_000 }],
//!         ..Default::default()
//!     }],
//!     metadata: vec![],
//! };
//! let body = encode_write_request(&req);
//! assert_eq!(decode_write_request(&body, 1 << 20)?, req);
//! # Ok::<(), annals_prompb::Error>(())
//! ```
#![deny(missing_docs)]

pub mod proto;

mod frame;

pub use frame::{write_frame, FrameReader};

use prost::Message;

/// `Content-Type` of remote-write requests and `SAMPLES` read responses.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";
/// `Content-Type` of `STREAMED_XOR_CHUNKS` read responses.
pub const CONTENT_TYPE_STREAMED_CHUNKS: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";
/// `Content-Encoding` of snappy-compressed bodies.
pub const CONTENT_ENCODING_SNAPPY: &str = "snappy";
/// `X-Prometheus-Remote-Write-Version` header name and the 1.0 protocol's value.
pub const REMOTE_WRITE_VERSION_HEADER: &str = "X-Prometheus-Remote-Write-Version";
/// The value of [`REMOTE_WRITE_VERSION_HEADER`] that protocol 1.0 senders send.
pub const REMOTE_WRITE_VERSION: &str = "0.1.0";
/// `X-Prometheus-Remote-Read-Version` header name.
pub const REMOTE_READ_VERSION_HEADER: &str = "X-Prometheus-Remote-Read-Version";
/// The value of [`REMOTE_READ_VERSION_HEADER`].
pub const REMOTE_READ_VERSION: &str = "0.1.0";

/// What is wrong with a body or frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The snappy block is malformed.
    #[error("invalid snappy block: {0}")]
    Snappy(String),
    /// A declared size exceeds the limit the caller set.
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was too large ("decompressed body", "frame").
        what: &'static str,
        /// The declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The protobuf message is malformed.
    #[error("invalid protobuf message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A stream frame is cut short or its header is malformed.
    #[error("invalid frame at byte {offset}: {reason}")]
    Frame {
        /// Offset of the frame in the stream.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A stream frame's CRC-32C does not match its bytes.
    #[error("frame at byte {offset}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// Offset of the frame in the stream.
        offset: u64,
        /// The CRC the frame carries.
        stored: u32,
        /// The CRC of its bytes.
        computed: u32,
    },
}

/// Decompresses a snappy block, refusing one that declares more than `max_len` bytes.
pub fn snappy_decode(body: &[u8], max_len: usize) -> Result<Vec<u8>, Error> {
    let len = snap::raw::decompress_len(body).map_err(|e| Error::Snappy(e.to_string()))?;
    if len > max_len {
        return Err(Error::TooLarge {
            what: "decompressed body",
            size: len as u64,
            limit: max_len as u64,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| Error::Snappy(e.to_string()))
}

/// Compresses `raw` into one snappy block (Go's `snappy.Encode`).
pub fn snappy_encode(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("snappy compresses any input below 4 GiB; protobuf bodies are bounded")
}

/// Decodes a snappy-compressed remote-write body.
pub fn decode_write_request(body: &[u8], max_decoded: usize) -> Result<proto::WriteRequest, Error> {
    let raw = snappy_decode(body, max_decoded)?;
    Ok(proto::WriteRequest::decode(raw.as_slice())?)
}

/// Encodes a remote-write body: protobuf, then snappy.
pub fn encode_write_request(req: &proto::WriteRequest) -> Vec<u8> {
    snappy_encode(&req.encode_to_vec())
}

/// Decodes a snappy-compressed remote-read request.
pub fn decode_read_request(body: &[u8], max_decoded: usize) -> Result<proto::ReadRequest, Error> {
    let raw = snappy_decode(body, max_decoded)?;
    Ok(proto::ReadRequest::decode(raw.as_slice())?)
}

/// Encodes a message and compresses it with snappy (remote-read requests, `SAMPLES` responses).
pub fn encode_snappy<M: Message>(msg: &M) -> Vec<u8> {
    snappy_encode(&msg.encode_to_vec())
}

/// Decodes a snappy-compressed `SAMPLES` remote-read response.
pub fn decode_read_response(body: &[u8], max_decoded: usize) -> Result<proto::ReadResponse, Error> {
    let raw = snappy_decode(body, max_decoded)?;
    Ok(proto::ReadResponse::decode(raw.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::*;

    fn series(n: usize) -> TimeSeries {
        TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "m".into(),
                },
                Label {
                    name: "i".into(),
                    value: n.to_string(),
                },
            ],
            samples: (0..3)
                .map(|k| Sample {
                    value: k as f64,
                    timestamp: 1000 * k,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn write_request_round_trips() {
        let req = WriteRequest {
            timeseries: (0..10).map(series).collect(),
            metadata: vec![MetricMetadata {
                r#type: MetricType::Counter as i32,
                metric_family_name: "m".into(),
                help: "help".into(),
                unit: String::new(),
            }],
        };
        let body = encode_write_request(&req);
        assert_eq!(decode_write_request(&body, 1 << 20).unwrap(), req);
    }

    #[test]
    fn snappy_bomb_is_refused_before_allocation() {
        // 64 MiB of zeros compress to about 3 KiB.
        let body = snappy_encode(&vec![0u8; 64 << 20]);
        assert!(body.len() < 4 << 20);
        let err = decode_write_request(&body, 32 << 20).unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { size, limit, .. } if size == 64 << 20 && limit == 32 << 20),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        for body in [
            &b""[..],
            b"\xff\xff\xff\xff\xff\xff",
            b"\x05abc",
            b"\x03\x08\xff\xff",
        ] {
            assert!(decode_write_request(body, 1 << 20).is_err(), "{body:?}");
        }
    }

    #[test]
    fn histogram_oneofs_use_the_wire_tags() {
        let h = Histogram {
            count: Some(histogram::Count::CountInt(5)),
            zero_count: Some(histogram::ZeroCount::ZeroCountFloat(1.5)),
            schema: -2,
            ..Default::default()
        };
        let bytes = h.encode_to_vec();
        // count_int: field 1 varint; schema: field 4 zigzag (-2 -> 3); zero_count_float: field 7 fixed64.
        assert_eq!(&bytes[..2], &[0x08, 5]);
        assert!(bytes.windows(2).any(|w| w == [0x20, 3]));
        assert!(bytes.contains(&0x39));
        assert_eq!(Histogram::decode(bytes.as_slice()).unwrap(), h);
    }
}
