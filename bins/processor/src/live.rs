//! The live path's seam: started by [`crate::app::run`] only when `LIVE_ENABLED=true`.
//!
//! `live-gateway` plugs in here: [`start`] receives the whole [`Config`] (its typed
//! [`crate::config::LiveConfig`] and [`crate::config::DirectusConfig`], the Redis settings
//! for the live group `live-broadcast-{INSTANCE_ID}`, the database URL for snapshots) and the
//! live [`Stage`]: every task it starts must be spawned on `stage` and stop when
//! `stage.token` is cancelled — first of the shutdown (close clients with 1001, stop the
//! live consumer and the device→event refresher). A task that ends on its own should go
//! through [`crate::app::supervise`] so `/healthz` and the exit status reflect it.
//!
//! Not for: anything the durable path needs. The durable path runs unchanged whether or not
//! this module starts anything.

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::config::Config;
use crate::http::Liveness;
use crate::shutdown::Stage;

/// Registers the live path's metrics (labelled counters at 0). Called at start-up whatever
/// `LIVE_ENABLED` says, so dashboards see the same series on every instance.
pub fn describe_metrics(_config: &Config) {
    // live-gateway's and directus-auth's `describe_metrics()` go here once they land.
}

/// Starts the live path's tasks on `stage`. `stop` stops the whole process (for a fault the
/// live path cannot recover from).
pub async fn start(
    config: &Config,
    stage: &Stage,
    stop: CancellationToken,
    liveness: Liveness,
) -> anyhow::Result<()> {
    let _ = (stage, stop, liveness);
    warn!(
        ws_addr = %config.live.addr,
        "LIVE_ENABLED=true but the live gateway is not wired into this build yet; running the durable path alone"
    );
    Ok(())
}
