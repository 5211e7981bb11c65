//! Index writer and reader together: golden files written by Prometheus 2.42, round trips
//! against a model, and damaged input.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::{Error, Labels};

use crate::testutil::fixture;

const NODE_BLOCKS: [&str; 2] = [
    "node-exporter-blocks/01M8396A503TACQT84BKW870RK",
    "node-exporter-blocks/01M8396ANRP6M7K730VKK2CXKZ",
];

fn ls(p: &[(&str, &str)]) -> Labels {
    Labels::new(p.iter().copied()).unwrap()
}

fn cm(min_time: i64, max_time: i64, chunk_ref: u64) -> ChunkMeta {
    ChunkMeta {
        min_time,
        max_time,
        chunk_ref,
    }
}

/// Every series of an index, in ref order.
fn read_all(r: &Reader) -> Vec<(u32, Labels, Vec<ChunkMeta>)> {
    r.all_postings()
        .unwrap()
        .into_iter()
        .map(|sref| {
            let (l, c) = r.series(sref).unwrap();
            (sref, l, c)
        })
        .collect()
}

/// Writes `series` with the given symbols and options, returns the file bytes.
fn write_index<'a>(
    dir: &Path,
    opts: WriterOptions,
    symbols: impl IntoIterator<Item = &'a str>,
    series: &[(Labels, Vec<ChunkMeta>)],
) -> Vec<u8> {
    let path = dir.join("index");
    let mut w = Writer::create(&path, opts, symbols).unwrap();
    for (l, c) in series {
        w.add_series(l, c).unwrap();
    }
    let size = w.finish().unwrap();
    let b = std::fs::read(&path).unwrap();
    assert_eq!(b.len() as u64, size);
    b
}

/// Symbols a series set needs: every label name and value.
fn symbols_of<'a>(series: impl IntoIterator<Item = &'a Labels>) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for l in series {
        for x in l.iter() {
            s.insert(x.name.to_owned());
            s.insert(x.value.to_owned());
        }
    }
    s
}

/// Walks everything an index offers; the result summarises it for comparisons.
fn walk(r: &Reader) -> crate::error::Result<usize> {
    let mut n = 0;
    for s in r.symbols() {
        n += s?.len();
    }
    for name in r.label_names() {
        for v in r.label_values(name)? {
            n += r.postings(name, v)?.len();
        }
    }
    for sref in r.all_postings()? {
        n += r.series(sref)?.1.len();
    }
    Ok(n)
}

#[test]
fn golden_promtool_block_reads_as_annotated() {
    // §1.7.9.
    let r = Reader::open(fixture("promtool-2.42-block/index")).unwrap();
    assert_eq!(r.version(), 2);
    assert_eq!(r.size(), 592);
    assert_eq!(
        *r.toc(),
        Toc {
            symbols: 5,
            series: 0x50,
            label_indices: 0xa3,
            label_indices_table: 0x17c,
            postings: 0xfc,
            postings_offset_table: 0x1ad,
        }
    );
    let symbols: Vec<&str> = r.symbols().map(|s| s.unwrap()).collect();
    assert_eq!(
        symbols,
        [
            "",
            "200",
            "500",
            "__name__",
            "a",
            "code",
            "get",
            "http_requests_total",
            "job",
            "method",
            "up"
        ]
    );
    assert_eq!(r.symbol(7).unwrap(), "http_requests_total");
    assert!(matches!(r.symbol(11), Err(Error::Corruption { .. })));
    assert_eq!(r.label_names(), ["__name__", "code", "job", "method"]);
    assert_eq!(
        r.label_values("__name__").unwrap(),
        ["http_requests_total", "up"]
    );
    assert_eq!(r.label_values("code").unwrap(), ["200", "500"]);
    assert!(r.label_values("nope").unwrap().is_empty());
    assert_eq!(r.all_postings().unwrap(), [5, 7, 9]);
    assert_eq!(
        r.postings("__name__", "http_requests_total").unwrap(),
        [5, 7]
    );
    assert_eq!(r.postings("__name__", "up").unwrap(), [9]);
    assert_eq!(r.postings("code", "500").unwrap(), [7]);
    assert_eq!(r.postings("method", "get").unwrap(), [5, 7]);
    assert!(r.postings("code", "404").unwrap().is_empty());
    assert!(r.postings("code", "000").unwrap().is_empty());
    assert!(r.postings("code", "999").unwrap().is_empty());
    assert!(r.postings("zzz", "a").unwrap().is_empty());
    assert!(r.postings("", "x").unwrap().is_empty());

    let all = read_all(&r);
    let t0 = 1_700_000_000_000;
    assert_eq!(
        all,
        vec![
            (
                5,
                ls(&[
                    ("__name__", "http_requests_total"),
                    ("code", "200"),
                    ("method", "get")
                ]),
                vec![cm(t0, t0 + 45_000, 8)]
            ),
            (
                7,
                ls(&[
                    ("__name__", "http_requests_total"),
                    ("code", "500"),
                    ("method", "get")
                ]),
                vec![cm(t0, t0 + 16_000, 39)]
            ),
            (
                9,
                ls(&[("__name__", "up"), ("job", "a")]),
                vec![cm(t0, t0, 65)]
            ),
        ]
    );
    assert!(matches!(r.series(6), Err(Error::Corruption { .. })));
    assert!(matches!(r.series(1 << 30), Err(Error::Corruption { .. })));
}

/// Rewrites the series of a Prometheus-written index and expects the same bytes, with the
/// symbols taken from the file and with the symbols derived from the series.
fn assert_rewrite_identical(rel: &str) {
    let path = fixture(rel);
    let original = std::fs::read(&path).unwrap();
    let r = Reader::open(&path).unwrap();
    let series: Vec<(Labels, Vec<ChunkMeta>)> =
        read_all(&r).into_iter().map(|(_, l, c)| (l, c)).collect();
    let file_symbols: Vec<&str> = r.symbols().map(|s| s.unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();

    let got = write_index(dir.path(), WriterOptions::default(), file_symbols, &series);
    assert!(
        got == original,
        "{rel}: rewrite with the file's symbols differs"
    );

    let derived = symbols_of(series.iter().map(|(l, _)| l));
    let got = write_index(
        dir.path(),
        WriterOptions::default(),
        derived.iter().map(String::as_str),
        &series,
    );
    assert!(
        got == original,
        "{rel}: rewrite with derived symbols differs"
    );
}

#[test]
fn golden_promtool_block_rewrites_byte_identical() {
    assert_rewrite_identical("promtool-2.42-block/index");
}

#[test]
fn golden_node_exporter_blocks_read_and_rewrite_byte_identical() {
    for b in NODE_BLOCKS {
        let r = Reader::open(fixture(&format!("{b}/index"))).unwrap();
        let all = read_all(&r);
        assert_eq!(all.len(), 507);
        let chunks: usize = all.iter().map(|(_, _, c)| c.len()).sum();
        assert_eq!(chunks, 2028);
        // Every pair's postings agree with the series' labels.
        let mut model: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
        for (sref, l, _) in &all {
            for x in l.iter() {
                model
                    .entry((x.name.to_owned(), x.value.to_owned()))
                    .or_default()
                    .push(*sref);
            }
        }
        for ((n, v), refs) in &model {
            assert_eq!(&r.postings(n, v).unwrap(), refs, "{n}={v}");
        }
        let names: BTreeSet<&str> = model.keys().map(|(n, _)| n.as_str()).collect();
        assert_eq!(r.label_names(), names.into_iter().collect::<Vec<_>>());
        assert_rewrite_identical(&format!("{b}/index"));
    }
}

#[test]
fn writer_options_change_only_optional_bytes() {
    let series = vec![
        (ls(&[("__name__", "a"), ("x", "1")]), vec![cm(0, 10, 8)]),
        (ls(&[("__name__", "a"), ("x", "2")]), vec![cm(0, 10, 30)]),
        (ls(&[("__name__", "b")]), vec![cm(5, 6, 50), cm(7, 9, 70)]),
    ];
    let symbols = symbols_of(series.iter().map(|(l, _)| l));
    let dir = tempfile::tempdir().unwrap();
    let mut sizes = Vec::new();
    for include_empty_symbol in [false, true] {
        for legacy_label_indices in [false, true] {
            let opts = WriterOptions {
                include_empty_symbol,
                legacy_label_indices,
            };
            let b = write_index(
                dir.path(),
                opts,
                symbols.iter().map(String::as_str),
                &series,
            );
            sizes.push(b.len());
            let r = Reader::from_vec(b, "mem").unwrap();
            assert_eq!(
                r.num_symbols() as usize,
                symbols.len() + include_empty_symbol as usize
            );
            let toc = *r.toc();
            if !legacy_label_indices {
                // 3.7+ layout: the legacy fields alias the postings sections.
                assert_eq!(toc.label_indices, toc.postings);
                assert_eq!(toc.label_indices_table, toc.postings_offset_table);
            }
            let got: Vec<_> = read_all(&r).into_iter().map(|(_, l, c)| (l, c)).collect();
            assert_eq!(got, series);
            assert_eq!(r.label_values("x").unwrap(), ["1", "2"]);
        }
    }
    // The legacy sections cost bytes; "" costs one byte, absorbed here by series padding.
    assert!(sizes[0] < sizes[1] && sizes[2] < sizes[3], "{sizes:?}");
}

#[test]
fn empty_index_has_an_empty_all_postings_list() {
    let dir = tempfile::tempdir().unwrap();
    let b = write_index(dir.path(), WriterOptions::default(), [], &[]);
    let r = Reader::from_vec(b, "mem").unwrap();
    assert!(r.all_postings().unwrap().is_empty());
    assert!(r.label_names().is_empty());
    assert_eq!(r.symbols().map(|s| s.unwrap()).collect::<Vec<_>>(), [""]);
}

#[test]
fn many_values_exercise_sampled_lookups() {
    // > 32 symbols and > 32 values per name, so lookups walk from sampled entries.
    let series: Vec<(Labels, Vec<ChunkMeta>)> = (0..500)
        .map(|i| {
            (
                ls(&[
                    ("__name__", "m"),
                    ("i", &format!("{i:04}")),
                    ("odd", if i % 2 == 1 { "y" } else { "n" }),
                ]),
                vec![cm(i, i + 1, 8 + 20 * i as u64)],
            )
        })
        .collect();
    let symbols = symbols_of(series.iter().map(|(l, _)| l));
    let dir = tempfile::tempdir().unwrap();
    let b = write_index(
        dir.path(),
        WriterOptions::default(),
        symbols.iter().map(String::as_str),
        &series,
    );
    let r = Reader::from_vec(b, "mem").unwrap();
    let all = read_all(&r);
    for (i, (sref, l, c)) in all.iter().enumerate() {
        assert_eq!((l, c), (&series[i].0, &series[i].1));
        assert_eq!(r.postings("i", l.get("i").unwrap()).unwrap(), [*sref]);
    }
    for probe in ["", "0000x", "0031", "0032", "0033", "0499", "0500", "9"] {
        let want = all
            .iter()
            .filter(|(_, l, _)| l.get("i") == Some(probe))
            .count();
        assert_eq!(r.postings("i", probe).unwrap().len(), want, "{probe}");
    }
    assert_eq!(r.postings("odd", "y").unwrap().len(), 250);
    assert_eq!(r.label_values("i").unwrap().len(), 500);
    // Every ordinal looks up the symbol the table holds there.
    let in_order: Vec<&str> = r.symbols().map(|s| s.unwrap()).collect();
    assert!(in_order.len() > 500);
    for (ord, s) in in_order.iter().enumerate() {
        assert_eq!(r.symbol(ord as u32).unwrap(), *s);
    }
    assert!(matches!(
        r.symbol(in_order.len() as u32),
        Err(Error::Corruption { .. })
    ));
}

#[test]
fn damaged_golden_index_is_detected_and_never_panics() {
    // Layout of §1.7.9. Chunk 3 is at offset 65: the brief's "67" is a typo, the bytes say
    // 8 + (1 + 1 + 25 + 4) + (1 + 1 + 20 + 4) = 65.
    let original = std::fs::read(fixture("promtool-2.42-block/index")).unwrap();
    let checked_at_open = |i: usize| !(0x50..0x1ad).contains(&i);
    let checked_on_read = |i: usize| {
        [(0x50, 0x67), (0x70, 0x86), (0x90, 0xa3), (0xfc, 0x17c)]
            .iter()
            .any(|&(a, b)| (a..b).contains(&i))
    };
    for i in 0..original.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = original.clone();
            b[i] ^= mask;
            match Reader::from_vec(b, "mem") {
                Err(e) => {
                    assert!(matches!(e, Error::Corruption { .. }));
                    assert!(checked_at_open(i), "flip at {i:#x} failed open: {e}");
                }
                Ok(r) => {
                    assert!(!checked_at_open(i), "flip at {i:#x} opened");
                    let walked = walk(&r);
                    if checked_on_read(i) {
                        assert!(
                            matches!(walked, Err(Error::Corruption { .. })),
                            "flip at {i:#x} read fine"
                        );
                    } else {
                        // Padding and the legacy sections readers ignore (§1.7.6).
                        assert!(walked.is_ok(), "flip at {i:#x}: {walked:?}");
                    }
                }
            }
        }
    }
    for n in 0..original.len() {
        let r = Reader::from_vec(original[..n].to_vec(), "mem");
        assert!(
            matches!(r, Err(Error::Corruption { .. })),
            "prefix of {n} bytes opened"
        );
    }
}

/// Fuzz find (index_reader): a postings offset table whose body is shorter than its count
/// field, with a valid CRC, made the open underflow.
#[test]
fn regression_postings_table_shorter_than_its_count() {
    let mut b = std::fs::read(fixture("promtool-2.42-block/index")).unwrap();
    let table = 0x1ad;
    b[table..table + 8].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // len 0, CRC32C("") = 0
    let e = Reader::from_vec(b.clone(), "mem").unwrap_err();
    assert!(e.to_string().contains("too short"), "{e}");
    b[table..table + 4].copy_from_slice(&[0, 0, 0, 2]);
    let crc = crate::encoding::crc32c(&b[table + 4..table + 6]);
    b[table + 6..table + 10].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        Reader::from_vec(b, "mem"),
        Err(Error::Corruption { .. })
    ));
}

/// Fuzz find (index_reader): a TOC offset near `u64::MAX` overflowed the section bounds check.
#[test]
fn regression_toc_offsets_near_the_top_of_the_address_space() {
    let original = std::fs::read(fixture("promtool-2.42-block/index")).unwrap();
    let toc = original.len() - TOC_LEN;
    for field in 0..6 {
        for v in [u64::MAX, u64::MAX - 3, u64::MAX - 4, 1 << 63] {
            let mut b = original.clone();
            b[toc + 8 * field..toc + 8 * field + 8].copy_from_slice(&v.to_be_bytes());
            let crc = crate::encoding::crc32c(&b[toc..toc + 48]);
            b[toc + 48..].copy_from_slice(&crc.to_be_bytes());
            // Fields 1..=4 are not needed to read; the others must fail cleanly.
            match Reader::from_vec(b, "mem") {
                Ok(r) => {
                    assert!((1..=4).contains(&field), "field {field} = {v:#x} opened");
                    walk(&r).unwrap();
                }
                Err(e) => assert!(matches!(e, Error::Corruption { .. })),
            }
        }
    }
}

/// Counts read from disk are checked against the bytes that hold them before anything is
/// sized by them.
#[test]
fn huge_counts_are_rejected_before_allocating() {
    let original = std::fs::read(fixture("promtool-2.42-block/index")).unwrap();
    // Symbol count (the symbol table body spans 0x09..0x4c, its CRC follows).
    let mut b = original.clone();
    b[0x09..0x0d].copy_from_slice(&u32::MAX.to_be_bytes());
    let crc = crate::encoding::crc32c(&b[0x09..0x4c]);
    b[0x4c..0x50].copy_from_slice(&crc.to_be_bytes());
    let e = Reader::from_vec(b, "mem").unwrap_err();
    assert!(e.to_string().contains("exceeds the table"), "{e}");
    // Postings list length: the ("", "") list at 0xfc claims u32::MAX refs.
    let mut b = original;
    b[0x100..0x104].copy_from_slice(&u32::MAX.to_be_bytes());
    let crc = crate::encoding::crc32c(&b[0x100..0x110]);
    b[0x110..0x114].copy_from_slice(&crc.to_be_bytes());
    let r = Reader::from_vec(b, "mem").unwrap();
    assert!(matches!(r.all_postings(), Err(Error::Corruption { .. })));
}

/// Replays crash inputs of `fuzz/fuzz_targets/index_reader.rs` whose control byte is 0 (no
/// CRC fix-up), so the rest is the index exactly as the reader saw it.
#[test]
fn regression_fuzz_inputs() {
    const INPUTS: &[&[u8]] = &[include_bytes!("testdata/fuzz-postings-table-underflow.bin")];
    for input in INPUTS {
        assert_eq!(input[0], 0);
        if let Ok(r) = Reader::from_vec(input[1..].to_vec(), "mem") {
            let _ = walk(&r);
        }
    }
}

#[test]
fn crc_errors_name_file_and_offset() {
    let mut b = std::fs::read(fixture("promtool-2.42-block/index")).unwrap();
    b[0x60] ^= 1; // inside series ref 5
    let r = Reader::from_vec(b, "idx").unwrap();
    match r.series(5) {
        Err(Error::Corruption {
            file,
            offset,
            reason,
        }) => {
            assert_eq!(file, Path::new("idx"));
            assert_eq!(offset, Some(0x50));
            assert!(reason.contains("CRC"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let mut b = std::fs::read(fixture("promtool-2.42-block/index")).unwrap();
    b[4] = 1;
    let e = Reader::from_vec(b, "idx").unwrap_err();
    assert!(e.to_string().contains("v1"), "{e}");
}

fn arb_series() -> impl Strategy<Value = BTreeMap<Labels, Vec<ChunkMeta>>> {
    let names = prop::sample::subsequence(vec!["__name__", "a", "b", "job", "zz"], 1..=5);
    let label_set = names.prop_flat_map(|ns| {
        let n = ns.len();
        (Just(ns), prop::collection::vec("[a-c0-9]{1,3}", n))
    });
    let chunk_shape = prop::collection::vec((1i64..1000, 0i64..1000), 0..4);
    prop::collection::vec((label_set, chunk_shape), 0..120).prop_map(|v| {
        let mut m = BTreeMap::new();
        for ((names, values), shapes) in v {
            let l = Labels::new(names.into_iter().zip(values)).unwrap();
            let mut t = -5000i64;
            let chunks = shapes
                .into_iter()
                .map(|(gap, len)| {
                    let c = cm(t + gap, t + gap + len, 0);
                    t = c.max_time;
                    c
                })
                .collect::<Vec<_>>();
            m.insert(l, chunks);
        }
        // Refs must not decrease across the index.
        let mut r = 8u64;
        for chunks in m.values_mut() {
            for c in chunks {
                c.chunk_ref = r;
                r += 17;
            }
        }
        m
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Prometheus `TestPersistence_index_e2e`: everything written reads back as the model.
    #[test]
    fn round_trip_matches_model(model in arb_series(), extra in prop::collection::btree_set("[a-z]{1,4}", 0..40)) {
        let mut symbols = symbols_of(model.keys());
        symbols.extend(extra);
        let series: Vec<_> = model.iter().map(|(l, c)| (l.clone(), c.clone())).collect();
        let dir = tempfile::tempdir().unwrap();
        let b = write_index(dir.path(), WriterOptions::default(), symbols.iter().map(String::as_str), &series);
        let r = Reader::from_vec(b, "mem").unwrap();

        let mut want_symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
        if want_symbols.first() != Some(&"") {
            want_symbols.insert(0, "");
        }
        let got_symbols: Vec<&str> = r.symbols().map(|s| s.unwrap()).collect();
        prop_assert_eq!(got_symbols, want_symbols);

        let all = read_all(&r);
        let got: Vec<_> = all.iter().map(|(_, l, c)| (l.clone(), c.clone())).collect();
        prop_assert_eq!(&got, &series);

        let mut pairs: BTreeMap<(&str, &str), Vec<u32>> = BTreeMap::new();
        for (sref, l, _) in &all {
            for x in l.iter() {
                pairs.entry((x.name, x.value)).or_default().push(*sref);
            }
        }
        let names: BTreeSet<&str> = pairs.keys().map(|k| k.0).collect();
        prop_assert_eq!(r.label_names(), names.iter().copied().collect::<Vec<_>>());
        for n in &names {
            let values: Vec<&str> = pairs.keys().filter(|k| k.0 == *n).map(|k| k.1).collect();
            prop_assert_eq!(r.label_values(n).unwrap(), values);
        }
        for ((n, v), refs) in &pairs {
            prop_assert_eq!(&r.postings(n, v).unwrap(), refs);
        }
        prop_assert!(r.postings("a", "nonexistent").unwrap().is_empty());
    }

    /// Any bytes: opening and walking returns errors, never panics.
    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = Reader::from_vec(b, "mem") {
            let _ = walk(&r);
        }
    }
}
