//! Decodes arbitrary bytes as one slot of the remote-write progress file: an error or a
//! progress that encodes back to the same bytes, never a panic.
#![no_main]

use annals_remote::progress::Progress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((p, seq)) = Progress::decode(data) {
        assert_eq!(p.encode(seq), data);
    }
});
