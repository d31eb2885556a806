//! Session re-validation: every `LIVE_REVALIDATE_MS`, ask Directus `/users/me` once per
//! distinct credential among the open connections; close (4401) the connections whose
//! credentials are no longer valid. A Directus failure is not a logout: those are kept.

use std::sync::Arc;
use std::time::Duration;

use directus_auth::Identity;
use live_protocol::close;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::hub::Hub;

/// Re-validates every `every` until `cancel`.
pub(crate) async fn run(hub: Arc<Hub>, every: Duration, cancel: CancellationToken) {
    let start = tokio::time::Instant::now() + every;
    let mut interval = tokio::time::interval_at(start, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = sweep(&hub) => {}
        }
    }
}

async fn sweep(hub: &Hub) {
    let connections = hub.connections();
    if connections.is_empty() {
        return;
    }
    let answers = hub
        .directus
        .revalidate(connections.iter().map(|conn| &conn.credentials))
        .await;
    let mut closed = 0usize;
    for conn in &connections {
        match answers.get(&conn.credentials.key()) {
            Some(Ok(Identity::Unauthorized)) => {
                conn.request_close(close::SESSION_INVALID, "session no longer valid");
                closed += 1;
            }
            Some(Err(error)) => {
                debug!(conn = conn.id, %error, "re-validation could not reach directus; kept");
            }
            _ => {}
        }
    }
    if closed > 0 {
        info!(
            closed,
            checked = answers.len(),
            "closed connections whose session is no longer valid"
        );
    }
}
