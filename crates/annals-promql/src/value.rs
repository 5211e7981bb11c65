//! Query results.

/// Bit pattern of Prometheus's stale marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
