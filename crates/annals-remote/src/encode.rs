//! Encodes remote-write 1.0 requests (`prompb.WriteRequest`, then snappy) straight from the
//! queue's entries, without building message structs: a series' labels are written from its
//! packed [`Labels`] (shared with the database's head where it has them, so the queue holds no
//! second copy), merged with the endpoint's external labels.
//!
//! Samples of one series in a batch go into one `TimeSeries`, in timestamp order (the
//! protocol allows it; Prometheus 2.42 sends one sample per `TimeSeries`, which repeats the
//! labels for every sample).

use annals::Labels;

/// Appends the protobuf encoding of `labels` as `TimeSeries.labels` fields (tag 1).
pub fn encode_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>, out: &mut Vec<u8>) {
    for (name, value) in labels {
        let inner = field_len(1, name.len()) + field_len(2, value.len());
        put_key(out, 1, 2);
        put_uvarint(out, inner as u64);
        put_bytes(out, 1, name.as_bytes());
        put_bytes(out, 2, value.as_bytes());
    }
}

/// Appends the encoding of `labels` merged with `external` (sorted by name): an external
/// label is added where the series has no label of its name, as Prometheus 2.42's
/// `processExternalLabels` does. The result is sorted by name.
pub fn encode_labels_with_external(
    labels: &Labels,
    external: &[(String, String)],
    out: &mut Vec<u8>,
) {
    let mut ext = external.iter().peekable();
    for l in labels.iter() {
        while let Some((n, v)) = ext.next_if(|(n, _)| n.as_str() <= l.name) {
            if n != l.name {
                encode_labels([(n.as_str(), v.as_str())], out);
            }
        }
        encode_labels([(l.name, l.value)], out);
    }
    encode_labels(ext.map(|(n, v)| (n.as_str(), v.as_str())), out);
}

/// One sample of a batch: its series' labels and identity, and the value.
pub trait BatchSample {
    /// The series' labels (before the endpoint's external labels).
    fn labels(&self) -> &Labels;
    /// An identity of the series, equal for equal labels.
    fn series_id(&self) -> u64;
    /// Timestamp in ms.
    fn t(&self) -> i64;
    /// Value.
    fn v(&self) -> f64;
}

/// Encodes `samples` (grouped by series, in the given order within a series) as a
/// `WriteRequest` protobuf into `pb` (cleared first), each series' labels merged with
/// `external` (sorted by name). `order` and `labels` are scratch space.
pub fn encode_request<S: BatchSample>(
    samples: &[S],
    external: &[(String, String)],
    order: &mut Vec<u32>,
    labels: &mut Vec<u8>,
    pb: &mut Vec<u8>,
) {
    pb.clear();
    order.clear();
    order.extend(0..samples.len() as u32);
    // Stable: samples of a series keep their (WAL, hence timestamp) order.
    order.sort_by_key(|&i| samples[i as usize].series_id());
    let mut i = 0;
    while i < order.len() {
        let first = &samples[order[i] as usize];
        let id = first.series_id();
        let mut j = i;
        while j < order.len() && samples[order[j] as usize].series_id() == id {
            j += 1;
        }
        labels.clear();
        encode_labels_with_external(first.labels(), external, labels);
        let n = j - i;
        // Sample: tag 1 double (9 bytes), tag 2 varint.
        let mut inner = labels.len();
        for &k in &order[i..j] {
            let s = &samples[k as usize];
            inner += field_len(2, sample_len(s.t()));
        }
        put_key(pb, 1, 2);
        put_uvarint(pb, inner as u64);
        pb.extend_from_slice(labels);
        for &k in &order[i..j] {
            let s = &samples[k as usize];
            put_key(pb, 2, 2);
            put_uvarint(pb, sample_len(s.t()) as u64);
            put_key(pb, 1, 1);
            pb.extend_from_slice(&s.v().to_bits().to_le_bytes());
            if s.t() != 0 {
                put_key(pb, 2, 0);
                put_uvarint(pb, s.t() as u64);
            }
        }
        let _ = n;
        i = j;
    }
}

fn sample_len(t: i64) -> usize {
    9 + if t != 0 { 1 + uvarint_len(t as u64) } else { 0 }
}

fn field_len(tag: u32, len: usize) -> usize {
    uvarint_len(u64::from(tag) << 3) + uvarint_len(len as u64) + len
}

fn put_key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    put_uvarint(out, (u64::from(tag) << 3) | u64::from(wire));
}

fn put_bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    put_key(out, tag, 2);
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn uvarint_len(x: u64) -> usize {
    (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use annals_prompb::proto;
    use proptest::prelude::*;
    use prost::Message;

    struct S {
        id: usize,
        labels: Labels,
        t: i64,
        v: f64,
    }

    impl BatchSample for S {
        fn labels(&self) -> &Labels {
            &self.labels
        }
        fn series_id(&self) -> u64 {
            self.id as u64
        }
        fn t(&self) -> i64 {
            self.t
        }
        fn v(&self) -> f64 {
            self.v
        }
    }

    proptest! {
        /// prost decodes what we encode into the request a model groups by series.
        #[test]
        fn prost_agrees(
            series in proptest::collection::vec(proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{1,12}", 1..4), 1..5),
            external in proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{1,12}", 0..3),
            samples in proptest::collection::vec((0usize..5, any::<i64>(), any::<f64>()), 0..40),
        ) {
            let labels: Vec<Labels> = series
                .iter()
                .map(|ls| Labels::new(ls.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap())
                .collect();
            let batch: Vec<S> = samples.iter().map(|&(i, t, v)| {
                let id = i % series.len();
                S { id, labels: labels[id].clone(), t, v }
            }).collect();
            let external: Vec<(String, String)> = external.into_iter().collect();
            let (mut order, mut scratch, mut pb) = (Vec::new(), Vec::new(), Vec::new());
            encode_request(&batch, &external, &mut order, &mut scratch, &mut pb);
            let got = proto::WriteRequest::decode(pb.as_slice()).unwrap();
            let mut want: Vec<proto::TimeSeries> = Vec::new();
            let mut ids: Vec<usize> = batch.iter().map(|s| s.id).collect();
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                // The model of processExternalLabels: series labels win, the union sorted.
                let mut merged = series[id].clone();
                for (n, v) in &external {
                    merged.entry(n.clone()).or_insert_with(|| v.clone());
                }
                want.push(proto::TimeSeries {
                    labels: merged.iter().map(|(n, v)| proto::Label { name: n.clone(), value: v.clone() }).collect(),
                    samples: batch.iter().filter(|s| s.id == id).map(|s| proto::Sample { value: s.v, timestamp: s.t }).collect(),
                    ..Default::default()
                });
            }
            // NaN != NaN: compare bit patterns through the debug form of the bits.
            prop_assert_eq!(got.timeseries.len(), want.len());
            for (g, w) in got.timeseries.iter().zip(&want) {
                prop_assert_eq!(&g.labels, &w.labels);
                let gb: Vec<(u64, i64)> = g.samples.iter().map(|s| (s.value.to_bits(), s.timestamp)).collect();
                let wb: Vec<(u64, i64)> = w.samples.iter().map(|s| (s.value.to_bits(), s.timestamp)).collect();
                prop_assert_eq!(gb, wb);
            }
        }
    }

    #[test]
    fn varint_lengths() {
        for (x, n) in [
            (0u64, 1),
            (127, 1),
            (128, 2),
            (16383, 2),
            (16384, 3),
            (u64::MAX, 10),
        ] {
            assert_eq!(uvarint_len(x), n, "{x}");
            let mut b = Vec::new();
            put_uvarint(&mut b, x);
            assert_eq!(b.len(), n);
        }
    }
}
