//! WAL/WBL records of native histograms and m-map markers (types 7, 8 and 5, brief §1.10)
//! on arbitrary bytes: the decoders never panic, and whatever decodes re-encodes to the same
//! values (decode ∘ encode ∘ decode = decode; m-map markers re-encode to the same bytes).
#![no_main]

use annals::unstable::wal::{self, RecordType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = Vec::new();
    match wal::record_type(data) {
        RecordType::HistogramSamples => {
            let mut a = Vec::new();
            if wal::decode_histogram_samples(data, &mut a).is_ok() {
                wal::encode_histogram_samples(&a, &mut buf);
                let mut b = Vec::new();
                wal::decode_histogram_samples(&buf, &mut b).expect("re-encoded histograms decode");
                assert_eq!(a, b);
            }
        }
        RecordType::FloatHistogramSamples => {
            let mut a = Vec::new();
            if wal::decode_float_histogram_samples(data, &mut a).is_ok() {
                wal::encode_float_histogram_samples(&a, &mut buf);
                let mut b = Vec::new();
                wal::decode_float_histogram_samples(&buf, &mut b)
                    .expect("re-encoded float histograms decode");
                assert_eq!(a, b);
            }
        }
        RecordType::MmapMarkers => {
            let mut a = Vec::new();
            if wal::decode_mmap_markers(data, &mut a).is_ok() {
                wal::encode_mmap_markers(&a, &mut buf);
                assert_eq!(buf, data);
            }
        }
        _ => {
            assert!(wal::decode_histogram_samples(data, &mut Vec::new()).is_err());
            assert!(wal::decode_float_histogram_samples(data, &mut Vec::new()).is_err());
            assert!(wal::decode_mmap_markers(data, &mut Vec::new()).is_err());
        }
    }
});
