//! The per-connection inbound token bucket ([`crate::RateLimit`] documents the policy).

use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// What to do with one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the rate: handle it.
    Accept,
    /// Over the rate: answer `rate-limited`, do not handle it.
    Limited,
    /// Over the rate again and again: close the connection with 1008.
    Close,
}

/// A token bucket with a strike counter.
#[derive(Debug)]
pub(crate) struct Bucket {
    policy: RateLimit,
    tokens: u32,
    last_refill: Instant,
    strikes: u32,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(policy: RateLimit, now: Instant) -> Self {
        Self {
            policy,
            tokens: policy.burst,
            last_refill: now,
            strikes: 0,
        }
    }

    /// Takes a token for one message arriving at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> Verdict {
        self.refill(now);
        if self.tokens > 0 {
            self.tokens -= 1;
            self.strikes = 0;
            return Verdict::Accept;
        }
        self.strikes += 1;
        if self.strikes >= self.policy.strikes.max(1) {
            Verdict::Close
        } else {
            Verdict::Limited
        }
    }

    fn refill(&mut self, now: Instant) {
        let every = self.policy.refill_every.max(Duration::from_micros(1));
        let elapsed = now.saturating_duration_since(self.last_refill);
        let new_tokens = elapsed.as_nanos() / every.as_nanos();
        if new_tokens == 0 {
            return;
        }
        let new_tokens = u32::try_from(new_tokens).unwrap_or(u32::MAX);
        self.tokens = self
            .tokens
            .saturating_add(new_tokens)
            .min(self.policy.burst);
        // Keep the remainder so a steady client is not short-changed.
        self.last_refill += every * new_tokens.min(1_000_000);
        if self.tokens == self.policy.burst {
            self.last_refill = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RateLimit {
        RateLimit {
            burst: 3,
            refill_every: Duration::from_millis(100),
            strikes: 3,
        }
    }

    #[test]
    fn burst_then_limited_then_closed() {
        let t0 = Instant::now();
        let mut b = Bucket::new(policy(), t0);
        for _ in 0..3 {
            assert_eq!(b.take(t0), Verdict::Accept);
        }
        assert_eq!(b.take(t0), Verdict::Limited);
        assert_eq!(b.take(t0), Verdict::Limited);
        assert_eq!(b.take(t0), Verdict::Close);
    }

    #[test]
    fn refills_over_time_and_resets_strikes() {
        let t0 = Instant::now();
        let mut b = Bucket::new(policy(), t0);
        for _ in 0..3 {
            b.take(t0);
        }
        assert_eq!(b.take(t0), Verdict::Limited);
        assert_eq!(b.take(t0 + Duration::from_millis(150)), Verdict::Accept);
        assert_eq!(b.take(t0 + Duration::from_millis(150)), Verdict::Limited);
        assert_eq!(b.take(t0 + Duration::from_millis(150)), Verdict::Limited);
        // Strikes were reset by the accepted message: this is the 3rd since.
        assert_eq!(b.take(t0 + Duration::from_millis(150)), Verdict::Close);
    }

    #[test]
    fn never_more_than_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(policy(), t0);
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(b.take(later), Verdict::Accept);
        }
        assert_eq!(b.take(later), Verdict::Limited);
    }
}
