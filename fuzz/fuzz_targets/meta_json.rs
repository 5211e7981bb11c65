//! `meta.json` parsing (brief §1.3) on arbitrary bytes: it never panics; errors are the typed
//! ones naming the file (`Corruption`, `UnsupportedMetaVersion`, `BadIndexVersionBlock`); what
//! parses serializes to JSON that parses to the same meta, and serializing is stable.
//!
//! Seed corpus: the fixture `meta.json` files as they are.
#![no_main]

use std::path::Path;

use annals::unstable::block::Meta;
use annals::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = Path::new("blk/meta.json");
    match Meta::from_json(data, file) {
        Ok(m) => {
            let json = m.to_json();
            let again = Meta::from_json(&json, file).expect("serialized meta parses");
            assert_eq!(again, m);
            assert_eq!(again.to_json(), json, "serializing is stable");
        }
        Err(Error::Corruption { file: f, .. })
        | Err(Error::UnsupportedMetaVersion { file: f, .. }) => {
            assert_eq!(f, file)
        }
        Err(Error::BadIndexVersionBlock { dir }) => assert_eq!(dir, Path::new("blk")),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
    // The version-agnostic parser (used to repair 2.1 blocks) accepts at least as much.
    if Meta::from_json(data, file).is_ok() {
        assert!(Meta::from_json_any_version(data, file).is_ok());
    }
});
