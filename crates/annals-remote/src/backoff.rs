//! Retry timing: exponential backoff between `min_backoff` and `max_backoff`, and the
//! `Retry-After` header, as Prometheus 2.42's `sendWriteRequestWithBackoff` uses them. Pure
//! functions of their inputs, so tests drive them without a clock.

use std::time::{Duration, SystemTime};

/// The delays between attempts at one batch.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff starting at `min` and doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { next: min, max }
    }

    /// The delay before the next attempt. A `Retry-After` the server sent replaces the
    /// computed delay (it is not capped: the server knows when it will be back), and the
    /// doubling continues from it, as Prometheus does.
    pub fn delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let d = retry_after.unwrap_or(self.next);
        self.next = (d * 2).min(self.max);
        d
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date, relative to `now`. `None`
/// when missing, unparsable or in the past (the caller falls back to its backoff).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    when.duration_since(now).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_max() {
        let mut b = Backoff::new(Duration::from_millis(30), Duration::from_secs(1));
        let got: Vec<u128> = (0..8).map(|_| b.delay(None).as_millis()).collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 960, 1000, 1000]);
    }

    #[test]
    fn retry_after_replaces_and_continues() {
        let mut b = Backoff::new(Duration::from_millis(30), Duration::from_secs(5));
        assert_eq!(
            b.delay(Some(Duration::from_secs(10))),
            Duration::from_secs(10)
        );
        assert_eq!(b.delay(None), Duration::from_secs(5));
        assert_eq!(b.delay(None), Duration::from_secs(5));
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(42))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(parse_retry_after(&past, now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
