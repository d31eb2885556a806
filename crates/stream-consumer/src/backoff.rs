//! Capped, jittered exponential backoff for the loops' own retries (fred's reconnect policy
//! handles the socket; this paces the loop after a failed command).

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// Doubling delay from `min` to `max`; each wait is uniformly drawn from `[d/2, d]` so that
/// instances restarted together do not retry in lockstep.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// Back to the first delay (after a success).
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    /// The next delay, jittered, and advances the sequence.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = d / 2;
        let spread = u64::try_from((d - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(rand::rng().random_range(0..=spread))
    }

    /// Sleeps the next delay; returns `false` if `cancel` fired first.
    pub(crate) async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        let d = self.next_delay();
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = cancel.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let bounds = [100, 200, 400, 800, 1000, 1000];
        for max in bounds {
            let d = b.next_delay();
            assert!(d >= Duration::from_millis(max / 2), "{d:?} < {max}/2");
            assert!(d <= Duration::from_millis(max), "{d:?} > {max}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_returns_false_on_cancel() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(5));
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert!(!b.wait(&cancel).await);
        let fresh = CancellationToken::new();
        assert!(b.wait(&fresh).await);
    }
}
