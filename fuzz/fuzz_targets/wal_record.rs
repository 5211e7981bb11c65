//! WAL record decoders on arbitrary bytes: never panic, and whatever decodes re-encodes to a
//! record that decodes to the same values (decode ∘ encode ∘ decode = decode).
#![no_main]

use annals::unstable::wal::{self, RecordType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = Vec::new();
    match wal::record_type(data) {
        RecordType::Series => {
            let mut a = Vec::new();
            if wal::decode_series(data, &mut a).is_ok() {
                wal::encode_series(a.iter().map(|s| (s.series_ref, &s.labels)), &mut buf);
                let mut b = Vec::new();
                wal::decode_series(&buf, &mut b).expect("re-encoded series decode");
                assert_eq!(a, b);
            }
        }
        RecordType::Samples => {
            let mut a = Vec::new();
            if wal::decode_samples(data, &mut a).is_ok() {
                wal::encode_samples(a.iter().copied(), &mut buf);
                let mut b = Vec::new();
                wal::decode_samples(&buf, &mut b).expect("re-encoded samples decode");
                assert_eq!(a, b);
            }
        }
        RecordType::Tombstones => {
            let mut a = Vec::new();
            if wal::decode_tombstones(data, &mut a).is_ok() {
                wal::encode_tombstones(&a, &mut buf);
                let mut b = Vec::new();
                wal::decode_tombstones(&buf, &mut b).expect("re-encoded tombstones decode");
                assert_eq!(a, b);
            }
        }
        RecordType::Exemplars => {
            let mut a = Vec::new();
            if wal::decode_exemplars(data, &mut a).is_ok() {
                wal::encode_exemplars(&a, &mut buf);
                let mut b = Vec::new();
                wal::decode_exemplars(&buf, &mut b).expect("re-encoded exemplars decode");
                assert_eq!(a, b);
            }
        }
        RecordType::Metadata => {
            let mut a = Vec::new();
            if wal::decode_metadata(data, &mut a).is_ok() {
                wal::encode_metadata(&a, &mut buf);
                let mut b = Vec::new();
                wal::decode_metadata(&buf, &mut b).expect("re-encoded metadata decode");
                assert_eq!(a, b);
            }
        }
        _ => {
            // Every decoder must reject (not panic on) a record of another type.
            assert!(wal::decode_series(data, &mut Vec::new()).is_err());
            assert!(wal::decode_samples(data, &mut Vec::new()).is_err());
        }
    }
});
