//! Limits checked when the head creates a series through an appender (never at WAL replay:
//! data already accepted is never refused on reopen, whatever the limits are now).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Limit, Result};
use crate::model::{is_valid_label_name, is_valid_metric_name, Labels, METRIC_NAME};
use crate::options::Options;

/// The limits of [`Options`] that a new series must satisfy; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    pub(crate) label_name_length: Option<usize>,
    pub(crate) label_value_length: Option<usize>,
    pub(crate) labels_per_series: Option<usize>,
    pub(crate) series: Option<u64>,
    /// [`Options::prometheus_name_rules`].
    pub(crate) name_rules: bool,
}

impl Limits {
    pub(crate) fn from_options(opts: &Options) -> Limits {
        Limits {
            label_name_length: opts.max_label_name_length,
            label_value_length: opts.max_label_value_length,
            labels_per_series: opts.max_labels_per_series,
            series: opts.max_series,
            name_rules: opts.prometheus_name_rules,
        }
    }

    /// Checks the label set of a series about to be created (it must not be empty: the one
    /// invalid set that [`Labels::empty`] can build).
    pub(crate) fn check_labels(&self, labels: &Labels) -> Result<()> {
        if labels.is_empty() {
            return Err(Error::invalid_labels("a series needs at least one label"));
        }
        if let Some(max) = self.labels_per_series {
            if labels.len() > max {
                return Err(Error::limit(
                    Limit::LabelsPerSeries,
                    format!(
                        "the series has {} labels, more than max_labels_per_series = {max}",
                        labels.len()
                    ),
                ));
            }
        }
        if self.name_rules {
            check_name_rules(labels)?;
        }
        if self.label_name_length.is_none() && self.label_value_length.is_none() {
            return Ok(());
        }
        for l in labels.iter() {
            if let Some(max) = self.label_name_length {
                if l.name.len() > max {
                    return Err(Error::limit(
                        Limit::LabelNameLength,
                        format!(
                            "label name {:?}... is {} bytes long, more than \
                             max_label_name_length = {max}",
                            prefix(l.name),
                            l.name.len()
                        ),
                    ));
                }
            }
            if let Some(max) = self.label_value_length {
                if l.value.len() > max {
                    return Err(Error::limit(
                        Limit::LabelValueLength,
                        format!(
                            "the value of label {:?} is {} bytes long, more than \
                             max_label_value_length = {max}",
                            prefix(l.name),
                            l.value.len()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reserves room for one more series in `count`, the head's series counter. Exact under
    /// concurrency: the counter never exceeds the limit. A reservation not used (the series
    /// existed after all) is handed back with `count.fetch_sub(1)`.
    pub(crate) fn reserve_series(&self, count: &AtomicU64) -> Result<()> {
        match self.series {
            None => {
                count.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Some(max) => count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .map(|_| ())
                .map_err(|n| {
                    Error::limit(
                        Limit::Series,
                        format!("the head holds {n} series, max_series = {max}"),
                    )
                }),
        }
    }
}

/// Prometheus 2.x's name rules (see [`Options::prometheus_name_rules`]).
fn check_name_rules(labels: &Labels) -> Result<()> {
    let bad = |name: &str, reason: String| Error::InvalidLabelName {
        name: name.to_owned(),
        reason,
    };
    for l in labels.iter() {
        if l.name == METRIC_NAME {
            if !is_valid_metric_name(l.value) {
                return Err(bad(
                    l.value,
                    format!(
                        "metric name {:?} has a character outside the rules",
                        prefix(l.value)
                    ),
                ));
            }
        } else if !is_valid_label_name(l.name) {
            return Err(bad(
                l.name,
                format!(
                    "label name {:?} has a character outside the rules",
                    prefix(l.name)
                ),
            ));
        } else if l.name.starts_with("__") {
            return Err(bad(
                l.name,
                format!(
                    "label name {:?} starts with the reserved \"__\"",
                    prefix(l.name)
                ),
            ));
        }
    }
    Ok(())
}

/// At most 64 bytes of `s`, cut at a character boundary, for error messages.
fn prefix(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            label_name_length: Some(4),
            label_value_length: Some(3),
            labels_per_series: Some(2),
            series: Some(2),
            name_rules: false,
        }
    }

    #[test]
    fn each_limit_is_named_and_inclusive() {
        let l = limits();
        assert!(l
            .check_labels(&Labels::new([("abcd", "xyz")]).unwrap())
            .is_ok());
        let e = l.check_labels(&Labels::new([("abcde", "x")]).unwrap());
        assert!(matches!(
            e,
            Err(Error::LimitExceeded {
                limit: Limit::LabelNameLength,
                ..
            })
        ));
        let e = l.check_labels(&Labels::new([("a", "wxyz")]).unwrap());
        assert!(matches!(
            e,
            Err(Error::LimitExceeded {
                limit: Limit::LabelValueLength,
                ..
            })
        ));
        let e = l.check_labels(&Labels::new([("a", "1"), ("b", "2"), ("c", "3")]).unwrap());
        assert!(matches!(
            e,
            Err(Error::LimitExceeded {
                limit: Limit::LabelsPerSeries,
                ..
            })
        ));
        assert!(Limits::default()
            .check_labels(&Labels::new([("a".repeat(100_000), "v".repeat(100_000))]).unwrap())
            .is_ok());
        assert!(matches!(
            Limits::default().check_labels(&Labels::empty()),
            Err(Error::InvalidLabels { .. })
        ));
    }

    #[test]
    fn prometheus_name_rules_when_asked() {
        let on = Limits {
            name_rules: true,
            ..Limits::default()
        };
        for ok in [
            &[("__name__", "up:rate_5m"), ("job", "a")][..],
            &[("_x", "héllo\0"), ("a1", "1 2")],
        ] {
            let l = Labels::new(ok.iter().copied()).unwrap();
            assert!(on.check_labels(&l).is_ok(), "{l}");
            assert!(Limits::default().check_labels(&l).is_ok());
        }
        for (bad, name) in [
            (&[("a-b", "1")][..], "a-b"),
            (&[("0a", "1")], "0a"),
            (&[("héllo", "1")], "héllo"),
            (&[("__name__", "1bad metric")], "1bad metric"),
            (&[("__meta_x", "1")], "__meta_x"),
        ] {
            let l = Labels::new(bad.iter().copied()).unwrap();
            assert!(
                Limits::default().check_labels(&l).is_ok(),
                "off by default: {l}"
            );
            let e = on.check_labels(&l).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidLabelName { name: n, .. } if n == name),
                "{e}"
            );
            assert!(e.to_string().contains("prometheus_name_rules"), "{e}");
        }
    }

    #[test]
    fn series_reservations_stop_at_the_limit() {
        let l = limits();
        let n = AtomicU64::new(0);
        assert!(l.reserve_series(&n).is_ok());
        assert!(l.reserve_series(&n).is_ok());
        let e = l.reserve_series(&n);
        assert!(matches!(
            e,
            Err(Error::LimitExceeded {
                limit: Limit::Series,
                ..
            })
        ));
        assert_eq!(n.load(Ordering::Relaxed), 2);
        let unlimited = AtomicU64::new(u64::MAX - 1);
        assert!(Limits::default().reserve_series(&unlimited).is_ok());
    }

    #[test]
    fn long_names_are_cut_at_a_char_boundary_in_messages() {
        let name = "é".repeat(40);
        assert_eq!(prefix(&name).len(), 64);
        let name = format!("a{}", "é".repeat(40));
        assert_eq!(prefix(&name).len(), 63);
    }
}
