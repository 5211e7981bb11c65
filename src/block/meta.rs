//! `meta.json` (brief §1.3): the block's identity, time range, stats and compaction history.
//!
//! Written the way Go's `json.MarshalIndent(meta, "", "\t")` writes Prometheus' `BlockMeta`:
//! same field order, tab indentation, `omitempty` fields left out, `<`, `>`, `&`, U+2028 and
//! U+2029 escaped, no trailing newline. Fields this crate does not know (Thanos' `"thanos"`
//! object, 3.x stats) are kept and written back after the known ones.

use std::io;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::ser::{CharEscape, Formatter, PrettyFormatter};
use serde_json::{Map, Value};
use ulid::Ulid;

use crate::error::{Error, Result};
use crate::fs::write_atomic;

/// File name inside a block directory.
pub const FILE_NAME: &str = "meta.json";
/// The only meta format version (the Go field comment calling it an index version is wrong).
pub const VERSION_1: i64 = 1;

/// The last time a block range ending at `max_time` (exclusive) holds: `max_time - 1`,
/// except that the end `i64::MAX` stands for `i64::MAX + 1`, which an `i64` cannot hold, so
/// that a block can hold a sample at `i64::MAX`. Every conversion of a block's half-open range
/// to a closed one goes through here, and [`end_after`] is its inverse.
pub(crate) fn last_time(max_time: i64) -> i64 {
    if max_time == i64::MAX {
        i64::MAX
    } else {
        max_time - 1
    }
}

/// The exclusive end of a block range whose last time is `t` (inverse of [`last_time`]).
pub(crate) fn end_after(t: i64) -> i64 {
    t.saturating_add(1)
}

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Block id, equal to the directory name.
    #[serde(with = "ulid_text", default)]
    pub ulid: Ulid,
    /// Start of the half-open time range (ms).
    #[serde(rename = "minTime", default)]
    pub min_time: i64,
    /// End of the half-open time range (ms), exclusive; `i64::MAX` stands for
    /// `i64::MAX + 1`, so that a block can hold a sample at `i64::MAX` (see [`last_time`]).
    #[serde(rename = "maxTime", default)]
    pub max_time: i64,
    /// Counts, informational except `num_tombstones`.
    #[serde(default)]
    pub stats: Stats,
    /// Compaction history.
    #[serde(default)]
    pub compaction: Compaction,
    /// Meta format version: must be 1.
    #[serde(default)]
    pub version: i64,
    /// Top-level fields unknown to this crate (e.g. `"thanos"`), preserved on rewrite.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `stats` of `meta.json`; zero counts are omitted when written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Number of samples.
    #[serde(rename = "numSamples", default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    /// Number of series.
    #[serde(rename = "numSeries", default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    /// Number of chunks.
    #[serde(rename = "numChunks", default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    /// Number of tombstone intervals; drives tombstone-cleaning compactions.
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
    /// Unknown stats (3.x adds `numFloatSamples`, `numHistogramSamples`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `compaction` of `meta.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Compaction {
    /// 1 for blocks cut from the head; a merge gets the maximum parent level + 1.
    #[serde(default)]
    pub level: u32,
    /// ULIDs of all level-1 ancestors, sorted (a level-1 block lists itself).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "ulid_text::serialize_vec",
        deserialize_with = "ulid_text::deserialize_vec"
    )]
    pub sources: Vec<Ulid>,
    /// The compaction produced no samples: delete this block at the next reload.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deletable: bool,
    /// The blocks this one was compacted from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    /// Compacting this block failed; the planner skips ranges containing it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub failed: bool,
    /// Sorted hints such as `from-out-of-order`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A block named by its ULID and time range (`compaction.parents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDesc {
    /// Block id.
    #[serde(with = "ulid_text")]
    pub ulid: Ulid,
    /// Start of its range (ms).
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// End of its range (ms), exclusive.
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

impl Meta {
    /// The block's id (its `ulid`), which prints as the ULID string.
    pub fn id(&self) -> super::BlockId {
        self.ulid.into()
    }

    /// Meta of a new level-1 block that is its own source.
    pub fn new(ulid: Ulid, min_time: i64, max_time: i64) -> Meta {
        Meta {
            ulid,
            min_time,
            max_time,
            stats: Stats::default(),
            compaction: Compaction {
                level: 1,
                sources: vec![ulid],
                ..Compaction::default()
            },
            version: VERSION_1,
            extra: Map::new(),
        }
    }

    /// Parses `meta.json` bytes and checks the version: 2 is
    /// [`Error::BadIndexVersionBlock`] (the Prometheus 2.1 bug), anything else but 1 is
    /// [`Error::UnsupportedMetaVersion`]. `file` names the file in errors.
    pub fn from_json(b: &[u8], file: &Path) -> Result<Meta> {
        let m = Meta::from_json_any_version(b, file)?;
        match m.version {
            VERSION_1 => Ok(m),
            // `version` defaults to 0 when absent: tell a missing field from a 0 written out.
            0 if !has_version_field(b) => Err(Error::corruption(
                file,
                None,
                "meta.json has no \"version\" field, so this is not a block written by annals \
                 or Prometheus (they write version 1): move its directory out of the data \
                 directory, or open with Options::skip_unreadable_blocks to skip it",
            )),
            2 => Err(Error::BadIndexVersionBlock {
                dir: file.parent().unwrap_or(file).to_path_buf(),
            }),
            version => Err(Error::UnsupportedMetaVersion {
                file: file.to_path_buf(),
                version,
            }),
        }
    }

    /// Parses `meta.json` bytes without checking the version (for repairing 2.1 blocks).
    /// A missing `version` reads as 0.
    pub fn from_json_any_version(b: &[u8], file: &Path) -> Result<Meta> {
        serde_json::from_slice(b)
            .map_err(|e| Error::corruption(file, None, format!("invalid meta.json: {e}")))
    }

    /// Reads and checks `<dir>/meta.json`, see [`from_json`](Self::from_json).
    pub fn read(dir: impl AsRef<Path>) -> Result<Meta> {
        let path = dir.as_ref().join(FILE_NAME);
        let b = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Meta::from_json(&b, &path)
    }

    /// The bytes Prometheus would write for this meta (`json.MarshalIndent` with a tab).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter::new());
        self.serialize(&mut ser)
            .expect("serializing to memory cannot fail: keys are strings, numbers are finite");
        out
    }

    /// Writes `<dir>/meta.json` with version 1 (as Prometheus' `writeMetaFile` does) via
    /// `meta.json.tmp`, fsync, rename and a directory fsync. Returns the file size.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<u64> {
        let b = if self.version == VERSION_1 {
            self.to_json()
        } else {
            Meta {
                version: VERSION_1,
                ..self.clone()
            }
            .to_json()
        };
        write_atomic(&dir.as_ref().join(FILE_NAME), &b)?;
        Ok(b.len() as u64)
    }
}

/// ULIDs as their 26-character text, like Go's `ulid.ULID` `MarshalText`.
mod ulid_text {
    use super::*;

    pub fn serialize<S: Serializer>(u: &Ulid, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&u.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Ulid, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Ulid::from_string(&s).map_err(|e| serde::de::Error::custom(format!("ULID {s:?}: {e}")))
    }

    pub fn serialize_vec<S: Serializer>(v: &[Ulid], s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|u| u.to_string()))
    }

    pub fn deserialize_vec<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Vec<Ulid>, D::Error> {
        let v = Vec::<std::borrow::Cow<'_, str>>::deserialize(d)?;
        v.iter()
            .map(|s| {
                Ulid::from_string(s)
                    .map_err(|e| serde::de::Error::custom(format!("ULID {s:?}: {e}")))
            })
            .collect()
    }
}

/// serde_json's pretty printer with a tab indent plus Go's HTML-safe string escaping.
struct GoFormatter(PrettyFormatter<'static>);

impl GoFormatter {
    fn new() -> Self {
        GoFormatter(PrettyFormatter::with_indent(b"\t"))
    }
}

impl Formatter for GoFormatter {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        frag: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in frag.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&frag.as_bytes()[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&frag.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        e: CharEscape,
    ) -> io::Result<()> {
        // Go writes \b and \f as \u0008 and \u000c; the rest as serde_json does.
        match e {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => self.0.write_char_escape(w, other),
        }
    }
}

/// Whether the JSON object in `b` has a top-level `version` key (only asked when the parsed
/// version is 0, to tell a missing field from an explicit 0).
fn has_version_field(b: &[u8]) -> bool {
    serde_json::from_slice::<Map<String, Value>>(b).is_ok_and(|m| m.contains_key("version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::fixture;

    #[test]
    fn golden_meta_files_parse_and_rewrite_byte_identical() {
        for b in [
            "promtool-2.42-block",
            "node-exporter-blocks/01M8396A503TACQT84BKW870RK",
            "node-exporter-blocks/01M8396ANRP6M7K730VKK2CXKZ",
        ] {
            let dir = fixture(b);
            let original = std::fs::read(dir.join(FILE_NAME)).unwrap();
            let m = Meta::read(&dir).unwrap();
            if b.starts_with("node") {
                assert_eq!(
                    m.ulid.to_string(),
                    dir.file_name().unwrap().to_str().unwrap()
                );
            }
            assert_eq!(m.compaction.level, 1);
            assert_eq!(m.compaction.sources, [m.ulid]);
            assert!(
                m.to_json() == original,
                "{b}:\n{}",
                String::from_utf8_lossy(&m.to_json())
            );
        }
        let m = Meta::read(fixture("promtool-2.42-block")).unwrap();
        assert_eq!(
            (m.min_time, m.max_time),
            (1_700_000_000_000, 1_700_000_045_001)
        );
        assert_eq!(
            (
                m.stats.num_samples,
                m.stats.num_series,
                m.stats.num_chunks,
                m.stats.num_tombstones
            ),
            (7, 3, 3, 0)
        );
    }

    #[test]
    fn omitempty_fields_and_order_follow_go() {
        let u = Ulid::from_string("01M838CF9FNGQXVQW09DDMA4QK").unwrap();
        let p = Ulid::from_string("01M8396A503TACQT84BKW870RK").unwrap();
        let mut m = Meta::new(u, -5, 10);
        m.compaction.sources.clear();
        m.compaction.level = 0;
        let want = "{\n\t\"ulid\": \"01M838CF9FNGQXVQW09DDMA4QK\",\n\t\"minTime\": -5,\n\t\
                    \"maxTime\": 10,\n\t\"stats\": {},\n\t\"compaction\": {\n\t\t\"level\": 0\n\t},\n\t\
                    \"version\": 1\n}";
        assert_eq!(String::from_utf8(m.to_json()).unwrap(), want);

        m.stats.num_tombstones = 3;
        m.compaction = Compaction {
            level: 2,
            sources: vec![p, u],
            deletable: true,
            parents: vec![BlockDesc {
                ulid: p,
                min_time: 0,
                max_time: 7,
            }],
            failed: true,
            hints: vec!["from-out-of-order".into(), "<&>".into()],
            extra: Map::new(),
        };
        let got = String::from_utf8(m.to_json()).unwrap();
        let want = "{\n\t\"ulid\": \"01M838CF9FNGQXVQW09DDMA4QK\",\n\t\"minTime\": -5,\n\t\
                    \"maxTime\": 10,\n\t\"stats\": {\n\t\t\"numTombstones\": 3\n\t},\n\t\
                    \"compaction\": {\n\t\t\"level\": 2,\n\t\t\"sources\": [\n\t\t\t\
                    \"01M8396A503TACQT84BKW870RK\",\n\t\t\t\"01M838CF9FNGQXVQW09DDMA4QK\"\n\t\t],\n\t\t\
                    \"deletable\": true,\n\t\t\"parents\": [\n\t\t\t{\n\t\t\t\t\
                    \"ulid\": \"01M8396A503TACQT84BKW870RK\",\n\t\t\t\t\"minTime\": 0,\n\t\t\t\t\
                    \"maxTime\": 7\n\t\t\t}\n\t\t],\n\t\t\"failed\": true,\n\t\t\"hints\": [\n\t\t\t\
                    \"from-out-of-order\",\n\t\t\t\"\\u003c\\u0026\\u003e\"\n\t\t]\n\t},\n\t\
                    \"version\": 1\n}";
        assert_eq!(got, want);
        let back = Meta::from_json(got.as_bytes(), Path::new("meta.json")).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn unknown_fields_are_preserved_on_rewrite() {
        let src = r#"{
	"ulid": "01M838CF9FNGQXVQW09DDMA4QK",
	"minTime": 1,
	"maxTime": 2,
	"stats": {"numSamples": 4, "numFloatSamples": 4},
	"compaction": {"level": 1, "sources": ["01M838CF9FNGQXVQW09DDMA4QK"], "future": [1, 2]},
	"version": 1,
	"thanos": {"labels": {"env": "a&b", "region": "eu"}, "downsample": {"resolution": 0}, "source": "sidecar"}
}"#;
        let m = Meta::from_json(src.as_bytes(), Path::new("meta.json")).unwrap();
        assert_eq!(m.extra["thanos"]["labels"]["env"], "a&b");
        assert_eq!(m.stats.extra["numFloatSamples"], 4);
        assert_eq!(m.compaction.extra["future"], serde_json::json!([1, 2]));
        let out = m.to_json();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.ends_with("\t\"version\": 1,\n\t\"thanos\": {\n\t\t\"downsample\": {\n\t\t\t\"resolution\": 0\n\t\t},\n\t\t\"labels\": {\n\t\t\t\"env\": \"a\\u0026b\",\n\t\t\t\"region\": \"eu\"\n\t\t},\n\t\t\"source\": \"sidecar\"\n\t}\n}"), "{text}");
        let back = Meta::from_json(&out, Path::new("meta.json")).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_json(), out);
    }

    /// Fuzz find (block_files): without correctly rounded float parsing, an unknown float
    /// field changed by one ulp on every rewrite.
    #[test]
    fn regression_unknown_float_fields_survive_rewrites_exactly() {
        let big = "1563856666666666666666666666666";
        let src = format!(
            r#"{{"ulid": "01M8396A505TACQT84BKW870RK", "m@inTime": {big}, "x": 0.1, "y": 1e-320}}"#
        );
        let m = Meta::from_json_any_version(src.as_bytes(), Path::new("meta.json")).unwrap();
        assert_eq!(
            m.extra["m@inTime"].as_f64(),
            Some(big.parse::<f64>().unwrap())
        );
        let again = Meta::from_json_any_version(&m.to_json(), Path::new("meta.json")).unwrap();
        assert_eq!(again, m);
    }

    /// Prometheus `TestBlockMetaMustNeverBeVersion2`, plus the version rules of §1.3.
    #[test]
    fn version_must_be_one_and_two_is_the_2_1_bug() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Meta::new(Ulid::generate(), 0, 1);
        m.version = 2;
        m.write(dir.path()).unwrap();
        assert!(!dir.path().join("meta.json.tmp").exists());
        assert_eq!(Meta::read(dir.path()).unwrap().version, 1);

        let with_version = |v: &str| {
            format!(r#"{{"ulid": "01M838CF9FNGQXVQW09DDMA4QK", "minTime": 0, "maxTime": 1{v}}}"#)
        };
        let file = Path::new("blk/meta.json");
        let e = Meta::from_json(with_version(r#", "version": 2"#).as_bytes(), file).unwrap_err();
        assert!(
            matches!(&e, Error::BadIndexVersionBlock { dir } if dir == Path::new("blk")),
            "{e}"
        );
        let e = Meta::from_json(with_version(r#", "version": 3"#).as_bytes(), file).unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedMetaVersion { version: 3, .. }),
            "{e}"
        );
        let e = Meta::from_json(with_version(r#", "version": 0"#).as_bytes(), file).unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedMetaVersion { version: 0, .. }),
            "{e}"
        );
        // Missing is not 0 (issue 16 item 5).
        let e = Meta::from_json(with_version("").as_bytes(), file).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e}");
        assert!(e.to_string().contains("no \"version\" field"), "{e}");
        assert!(!e.to_string().contains("version 0"), "{e}");
        let m = Meta::from_json_any_version(with_version(r#", "version": 2"#).as_bytes(), file)
            .unwrap();
        assert_eq!(m.version, 2);
    }

    #[test]
    fn malformed_meta_is_corruption_naming_the_file() {
        let file = Path::new("blk/meta.json");
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"ulid": "not-a-ulid", "version": 1}"#,
            br#"{"ulid": 5, "version": 1}"#,
            br#"{"minTime": "x", "version": 1}"#,
            br#"{"compaction": {"level": -1}, "version": 1}"#,
        ] {
            let e = Meta::from_json(bad, file).unwrap_err();
            assert!(
                matches!(&e, Error::Corruption { file: f, .. } if f == file),
                "{e}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Meta::read(dir.path()), Err(Error::Io { .. })));
    }
}
