//! [`BlockId`]: the public name of a block, its ULID.

use std::fmt;
use std::str::FromStr;

use ulid::Ulid;

use crate::error::{Error, Result};

/// The id of a block: the ULID that names its directory (`01H8XGJWBWBAQ1JV3QJ4DKNFTB`) and
/// its `meta.json`. `Display` and `Debug` both print the 26-character ULID string, and
/// [`FromStr`] reads it back. Ids order by creation time (the ULID's millisecond timestamp
/// first, then its random part), as block directories sort by name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(Ulid);

impl BlockId {
    /// The 16 bytes of the ULID, big-endian (its binary form).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_bytes()
    }

    /// An id from the 16 bytes of a ULID, big-endian.
    pub fn from_bytes(b: [u8; 16]) -> BlockId {
        BlockId(Ulid::from_bytes(b))
    }

    /// When the block was created: the ULID's timestamp, in ms since the Unix epoch.
    pub fn timestamp_ms(self) -> u64 {
        self.0.timestamp_ms()
    }
}

impl From<Ulid> for BlockId {
    fn from(u: Ulid) -> BlockId {
        BlockId(u)
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for BlockId {
    type Err = Error;

    /// Parses the 26-character ULID string (Crockford base32, case-insensitive).
    fn from_str(s: &str) -> Result<BlockId> {
        Ulid::from_string(s)
            .map(BlockId)
            .map_err(|e| Error::InvalidArgument(format!("{s:?} is not a block id (a ULID): {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_and_parses_as_a_ulid_string() {
        let s = "01H8XGJWBWBAQ1JV3QJ4DKNFTB";
        let id: BlockId = s.parse().unwrap();
        assert_eq!(id.to_string(), s);
        assert_eq!(format!("{id:?}"), s);
        assert_eq!(format!("{:?}", vec![id]), format!("[{s}]"));
        assert_eq!(BlockId::from_bytes(id.to_bytes()), id);
        assert_eq!(
            id.timestamp_ms(),
            Ulid::from_string(s).unwrap().timestamp_ms()
        );
        assert!(matches!(
            "not-a-ulid".parse::<BlockId>(),
            Err(Error::InvalidArgument(_))
        ));
    }
}
