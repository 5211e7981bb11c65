//! Reads arbitrary bytes as a WAL segment with the engine's reader in the way a WAL tailer
//! (the remote-write watcher) uses it: once all at once, and once as a file that grows in
//! steps (step sizes from the first two bytes) read by a [`Reader::follow`]ing reader, which
//! [stops following](Reader::stop_following) when the file is complete. It must never panic,
//! and both readings must return the same records up to the first error (the same records
//! if neither fails).
//!
//! Seed corpus: `mkdir -p corpus/live_wal && cp ../../shared/fixtures/prometheus-2.42/wal/* corpus/live_wal/` (prefixed with two step bytes, or not: any bytes work).
#![no_main]

use std::io::Write;

use annals::unstable::wal::Reader;
use libfuzzer_sys::fuzz_target;

/// Reads records until `None` or an error; returns whether it failed.
fn drain(r: &mut Reader, out: &mut Vec<Vec<u8>>) -> bool {
    loop {
        match r.next_record() {
            Ok(Some((rec, _))) => out.push(rec.to_vec()),
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 2 {
        return;
    }
    let step = 1 + (usize::from(input[0]) << 8 | usize::from(input[1])) % 40_000;
    let data = &input[2..];
    let mut whole = Vec::new();
    let whole_err = drain(
        &mut Reader::from_bytes("whole", 0, data.to_vec()),
        &mut whole,
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("00000000");
    let mut f = std::fs::File::create(&path).expect("a temporary file");
    let mut r = Reader::from_segments(vec![(0, path)]).follow();
    let mut got = Vec::new();
    let mut visible = 0;
    let mut err = false;
    loop {
        if drain(&mut r, &mut got) {
            err = true;
            break;
        }
        if visible >= data.len() {
            break;
        }
        let next = (visible + step).min(data.len());
        f.write_all(&data[visible..next])
            .expect("writing the temporary file");
        visible = next;
    }
    if !err {
        // The file is complete: a record its end still cuts is torn now.
        r.stop_following();
        err = drain(&mut r, &mut got);
    }
    let n = got.len().min(whole.len());
    assert_eq!(got[..n], whole[..n]);
    if !err && !whole_err {
        assert_eq!(got, whole);
    }
});
