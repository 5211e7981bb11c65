//! How many shards a queue needs: Prometheus 2.42's `calculateDesiredShards` and
//! `shouldReshard`, as a pure function of counters sampled every [`UPDATE_PERIOD`], so tests
//! drive it without a clock.

use std::time::Duration;

/// How often the desired shard count is computed (Prometheus's `shardUpdateDuration`).
pub const UPDATE_PERIOD: Duration = Duration::from_secs(10);
const EWMA_WEIGHT: f64 = 0.2;
const TOLERANCE: f64 = 0.3;

/// An exponentially weighted rate, per second, over ticks of [`UPDATE_PERIOD`].
#[derive(Debug, Default, Clone)]
struct Ewma {
    rate: Option<f64>,
}

impl Ewma {
    fn tick(&mut self, delta: f64, period: Duration) {
        let instant = delta / period.as_secs_f64();
        self.rate = Some(match self.rate {
            None => instant,
            Some(r) => r + EWMA_WEIGHT * (instant - r),
        });
    }
    fn get(&self) -> f64 {
        self.rate.unwrap_or(0.0)
    }
}

/// Counter readings of one period.
#[derive(Debug, Clone, Copy, Default)]
pub struct Period {
    /// Samples handed to the queue.
    pub samples_in: u64,
    /// Samples sent (acknowledged or rejected).
    pub samples_out: u64,
    /// Samples dropped before sending (relabeling, lag).
    pub samples_dropped: u64,
    /// Total time spent in sends, over all shards.
    pub send_time: Duration,
    /// Highest timestamp handed to the queue, and sent, in seconds.
    pub highest_in: f64,
    /// Highest timestamp acknowledged, in seconds.
    pub highest_sent: f64,
    /// Seconds since the last successful send.
    pub since_last_success: f64,
}

/// Bounds and the current shard count.
#[derive(Debug, Clone)]
pub struct Resharder {
    data_in: Ewma,
    data_out: Ewma,
    dropped: Ewma,
    out_duration: Ewma,
    /// Fewest shards.
    pub min_shards: usize,
    /// Most shards.
    pub max_shards: usize,
    /// `batch_send_deadline`: no resharding if the last success is older than twice this.
    pub batch_send_deadline: Duration,
}

impl Resharder {
    /// A resharder within `min..=max` shards.
    pub fn new(min_shards: usize, max_shards: usize, batch_send_deadline: Duration) -> Self {
        Resharder {
            data_in: Ewma::default(),
            data_out: Ewma::default(),
            dropped: Ewma::default(),
            out_duration: Ewma::default(),
            min_shards: min_shards.max(1),
            max_shards: max_shards.max(min_shards.max(1)),
            batch_send_deadline,
        }
    }

    /// Takes one period's counter deltas; returns the shard count to move to, if it should
    /// change from `current`.
    pub fn tick(&mut self, p: Period, current: usize) -> Option<usize> {
        self.data_in.tick(p.samples_in as f64, UPDATE_PERIOD);
        self.data_out.tick(p.samples_out as f64, UPDATE_PERIOD);
        self.dropped.tick(p.samples_dropped as f64, UPDATE_PERIOD);
        self.out_duration
            .tick(p.send_time.as_secs_f64(), UPDATE_PERIOD);
        let desired = self.desired(p, current);
        if desired == current {
            return None;
        }
        if p.since_last_success > 2.0 * self.batch_send_deadline.as_secs_f64() {
            return None;
        }
        Some(desired)
    }

    fn desired(&self, p: Period, current: usize) -> usize {
        let in_rate = self.data_in.get();
        let out_rate = self.data_out.get();
        if out_rate <= 0.0 {
            return current;
        }
        let kept = out_rate / (self.dropped.get() + out_rate);
        let out_duration = self.out_duration.get();
        let delay = p.highest_in - p.highest_sent;
        let pending = delay * in_rate * kept;
        let catchup = 0.05 * pending;
        let time_per_sample = out_duration / out_rate;
        let desired = time_per_sample * (in_rate * kept + catchup);
        let lower = current as f64 * (1.0 - TOLERANCE);
        let upper = current as f64 * (1.0 + TOLERANCE);
        let desired = desired.ceil();
        if lower <= desired && desired <= upper {
            return current;
        }
        let n = desired as usize;
        if n < current && delay > 10.0 {
            return current;
        }
        n.clamp(self.min_shards, self.max_shards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(inn: u64, out: u64, send_secs: f64, lag: f64) -> Period {
        Period {
            samples_in: inn,
            samples_out: out,
            samples_dropped: 0,
            send_time: Duration::from_secs_f64(send_secs),
            highest_in: 1000.0 + lag,
            highest_sent: 1000.0,
            since_last_success: 0.0,
        }
    }

    #[test]
    fn grows_when_sends_take_longer_than_the_period() {
        let mut r = Resharder::new(1, 50, Duration::from_secs(5));
        // 100k samples in and out per 10 s; 40 s of send time: 4 shards busy all the time.
        let n = r.tick(period(100_000, 100_000, 40.0, 0.0), 1);
        assert_eq!(n, Some(4));
    }

    #[test]
    fn stays_within_tolerance_and_bounds() {
        let mut r = Resharder::new(2, 3, Duration::from_secs(5));
        assert_eq!(r.tick(period(100_000, 100_000, 40.0, 0.0), 3), None);
        let mut r = Resharder::new(2, 3, Duration::from_secs(5));
        assert_eq!(r.tick(period(100_000, 100_000, 1.0, 0.0), 3), Some(2));
        let mut r = Resharder::new(1, 10, Duration::from_secs(5));
        // 4.2 desired with 4 current: within 30 %.
        assert_eq!(r.tick(period(100_000, 100_000, 42.0, 0.0), 4), None);
    }

    #[test]
    fn no_downsharding_when_far_behind_and_none_without_recent_success() {
        let mut r = Resharder::new(1, 10, Duration::from_secs(5));
        assert_eq!(r.tick(period(1000, 1000, 0.1, 60.0), 8), None);
        let mut r = Resharder::new(1, 10, Duration::from_secs(5));
        let mut p = period(100_000, 100_000, 40.0, 0.0);
        p.since_last_success = 11.0;
        assert_eq!(r.tick(p, 1), None);
    }

    #[test]
    fn nothing_sent_keeps_the_count() {
        let mut r = Resharder::new(1, 10, Duration::from_secs(5));
        assert_eq!(r.tick(period(1000, 0, 0.0, 0.0), 3), None);
    }
}
