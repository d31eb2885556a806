//! Signals and the ordered, bounded shutdown.
//!
//! One future, [`signal`], resolves on the first SIGTERM or SIGINT. The stop then follows
//! `docs/operations.md`: live path → durable consumer (finishes and ACKs its batch in flight,
//! reads nothing new) → metrics server → Redis → PostgreSQL pool. Each stage is a
//! [`Stage`]: a `CancellationToken` its tasks watch and a `TaskTracker` they are spawned on,
//! so a stage is stopped by cancelling its token and awaiting its tracker. The whole sequence
//! is bounded by `SHUTDOWN_TIMEOUT_MS` ([`Deadline`]).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Resolves on the first SIGTERM or SIGINT and returns the signal's name.
pub async fn signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            // Installing a handler fails only when the runtime has no signal driver, which
            // `main` always enables; never resolving is the safe fallback.
            warn!("cannot install signal handlers: SIGTERM/SIGINT will kill the process");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}

/// A group of tasks stopped together: cancel the token, then wait for the tracker.
#[derive(Debug, Clone, Default)]
pub struct Stage {
    /// Watched by every task of the stage.
    pub token: CancellationToken,
    /// Every task of the stage is spawned here.
    pub tracker: TaskTracker,
}

impl Stage {
    /// A new stage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns a task of this stage.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Cancels the stage and waits until `deadline` for its tasks; false on timeout.
    pub async fn stop(&self, name: &str, deadline: &Deadline) -> bool {
        self.token.cancel();
        self.tracker.close();
        let started = Instant::now();
        match tokio::time::timeout(deadline.remaining(), self.tracker.wait()).await {
            Ok(()) => {
                info!(
                    stage = name,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "stopped"
                );
                true
            }
            Err(_) => {
                warn!(stage = name, "did not stop within the shutdown timeout");
                false
            }
        }
    }
}

/// The instant by which the whole shutdown must be done.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self(Instant::now() + timeout)
    }

    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stage_stops_its_tasks_in_time() {
        let stage = Stage::new();
        let token = stage.token.clone();
        stage.spawn(async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        assert!(
            stage
                .stop("t", &Deadline::after(Duration::from_secs(1)))
                .await
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_stage_times_out() {
        let stage = Stage::new();
        stage.spawn(std::future::pending());
        assert!(
            !stage
                .stop("t", &Deadline::after(Duration::from_millis(100)))
                .await
        );
    }
}
