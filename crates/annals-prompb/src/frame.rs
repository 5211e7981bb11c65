//! Frames of the `STREAMED_XOR_CHUNKS` remote-read response (Prometheus
//! `storage/remote/chunked.go`): each message is preceded by its length as an unsigned varint
//! and the big-endian CRC-32C (Castagnoli) of its bytes.

use prost::Message;

use crate::proto::ChunkedReadResponse;
use crate::Error;

/// Appends one frame holding `msg` to `out`.
pub fn write_frame(out: &mut Vec<u8>, msg: &ChunkedReadResponse) {
    let len = msg.encoded_len();
    prost::encoding::encode_varint(len as u64, out);
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let start = out.len();
    msg.encode(out)
        .expect("a Vec<u8> grows to hold any message");
    let crc = crc32c::crc32c(&out[start..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Reads frames from a complete response body, one message at a time.
pub struct FrameReader<'a> {
    buf: &'a [u8],
    offset: u64,
    max_frame: usize,
}

impl<'a> FrameReader<'a> {
    /// Reads `buf`, refusing frames longer than `max_frame` bytes.
    pub fn new(buf: &'a [u8], max_frame: usize) -> Self {
        FrameReader {
            buf,
            offset: 0,
            max_frame,
        }
    }

    /// The next message, `None` at the end of the body.
    pub fn next_frame(&mut self) -> Result<Option<ChunkedReadResponse>, Error> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let at = self.offset;
        let mut rest = self.buf;
        let len = prost::encoding::decode_varint(&mut rest).map_err(|_| Error::Frame {
            offset: at,
            reason: "malformed length varint",
        })?;
        if len > self.max_frame as u64 {
            return Err(Error::TooLarge {
                what: "frame",
                size: len,
                limit: self.max_frame as u64,
            });
        }
        let len = len as usize;
        if rest.len() < 4 + len {
            return Err(Error::Frame {
                offset: at,
                reason: "frame cut short",
            });
        }
        let stored = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let data = &rest[4..4 + len];
        let computed = crc32c::crc32c(data);
        if stored != computed {
            return Err(Error::Checksum {
                offset: at,
                stored,
                computed,
            });
        }
        let msg = ChunkedReadResponse::decode(data)?;
        let consumed = self.buf.len() - rest.len() + 4 + len;
        self.buf = &self.buf[consumed..];
        self.offset += consumed as u64;
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{chunk, Chunk, ChunkedSeries, Label};

    fn msg(i: i64) -> ChunkedReadResponse {
        ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: vec![Label {
                    name: "a".into(),
                    value: i.to_string(),
                }],
                chunks: vec![Chunk {
                    min_time_ms: i,
                    max_time_ms: i + 10,
                    r#type: chunk::Encoding::Xor as i32,
                    data: vec![0, 1, 2, 3],
                }],
            }],
            query_index: i,
        }
    }

    #[test]
    fn frames_round_trip() {
        let mut out = Vec::new();
        for i in 0..3 {
            write_frame(&mut out, &msg(i));
        }
        let mut r = FrameReader::new(&out, 1 << 20);
        for i in 0..3 {
            assert_eq!(r.next_frame().unwrap(), Some(msg(i)));
        }
        assert_eq!(r.next_frame().unwrap(), None);
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let mut out = Vec::new();
        write_frame(&mut out, &msg(7));
        for cut in 0..out.len() {
            let mut r = FrameReader::new(&out[..cut], 1 << 20);
            assert!(cut == 0 || r.next_frame().is_err(), "cut at {cut}");
        }
        let mut flipped = out.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            FrameReader::new(&flipped, 1 << 20).next_frame(),
            Err(Error::Checksum { .. })
        ));
        assert!(matches!(
            FrameReader::new(&out, 4).next_frame(),
            Err(Error::TooLarge { .. })
        ));
    }
}
