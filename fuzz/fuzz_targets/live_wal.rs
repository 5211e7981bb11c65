//! Reads arbitrary bytes as a WAL segment with the remote-write tailer's `LiveReader`, once
//! all at once and once as a file that grows in steps (step sizes from the first bytes). It
//! must never panic, and both readings must return the same records up to the first error.
//!
//! Seed corpus: `mkdir -p corpus/live_wal && cp ../../shared/fixtures/prometheus-2.42/wal/* corpus/live_wal/` (prefixed with two step bytes, or not: any bytes work).
#![no_main]

use std::io::Read;

use annals_remote::live::LiveReader;
use libfuzzer_sys::fuzz_target;

struct Growing<'a> {
    data: &'a [u8],
    visible: usize,
    pos: usize,
}

impl Read for Growing<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out.len().min(self.visible.saturating_sub(self.pos));
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn all(data: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut r = LiveReader::new(data, 0);
    let mut out = Vec::new();
    loop {
        match r.next_record() {
            Ok(Some((rec, _))) => out.push(rec.to_vec()),
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 2 {
        return;
    }
    let step = 1 + (usize::from(input[0]) << 8 | usize::from(input[1])) % 40_000;
    let data = &input[2..];
    let (whole, whole_err) = all(data);
    let mut r = LiveReader::new(
        Growing {
            data,
            visible: 0,
            pos: 0,
        },
        0,
    );
    let mut got = Vec::new();
    let mut err = false;
    let mut visible = 0;
    'outer: loop {
        loop {
            match r.next_record() {
                Ok(Some((rec, _))) => got.push(rec.to_vec()),
                Ok(None) => break,
                Err(_) => {
                    err = true;
                    break 'outer;
                }
            }
        }
        if visible >= data.len() {
            break;
        }
        visible = (visible + step).min(data.len());
        r.get_mut_source().visible = visible;
    }
    let n = got.len().min(whole.len());
    assert_eq!(got[..n], whole[..n]);
    if !err && !whole_err {
        assert_eq!(got, whole);
    }
});
