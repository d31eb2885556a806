//! Capped exponential backoff with jitter, for retrying a batch while the database is away.

use std::time::Duration;

use rand::Rng as _;

/// Delay before retry `n` (0-based): `min(max, initial · 2ⁿ)`, of which a random half is
/// jitter ("equal jitter"), so instances that lost the database together do not all come back
/// at the same instant, and no delay is shorter than half its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first step.
    pub initial: Duration,
    /// The cap on any step.
    pub max: Duration,
}

impl Default for Backoff {
    /// 100 ms doubling up to 10 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The un-jittered step for retry `attempt`.
    pub fn step(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay before retry `attempt`: within `[step/2, step]`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = position_writer::Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
    /// let d = backoff.delay(10);
    /// assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
    /// ```
    pub fn delay(&self, attempt: u32) -> Duration {
        let step = self.step(attempt);
        let half = step / 2;
        let jitter_nanos = u64::try_from((step - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::rng().random_range(0..=jitter_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        };
        assert_eq!(b.step(0), Duration::from_millis(100));
        assert_eq!(b.step(3), Duration::from_millis(800));
        assert_eq!(b.step(7), Duration::from_secs(10));
        assert_eq!(b.step(u32::MAX), Duration::from_secs(10));
        for attempt in 0..40 {
            let d = b.delay(attempt);
            assert!(
                d >= b.step(attempt) / 2 && d <= b.step(attempt),
                "{attempt}: {d:?}"
            );
        }
    }
}
