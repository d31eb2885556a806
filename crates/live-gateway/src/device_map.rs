//! The device→event map: which events each IMEI is registered in.
//!
//! Built from the Directus tables (`devices.imei → entry_devices → entries.event_id`), held in
//! an [`ArcSwap`] and replaced whole on every refresh, so the broadcast consumer's lookups never
//! wait for a refresh (they read whichever map is current). A failed refresh keeps the previous
//! map.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::Error;
use crate::outbound::EventKey;

/// The map: IMEI → the events it is registered in (each once).
#[derive(Debug, Default)]
pub(crate) struct DeviceEventMap {
    by_imei: HashMap<Box<str>, Box<[EventKey]>>,
}

/// The refresh query: every (IMEI, event) pair, each once.
const MAP_QUERY: &str = "SELECT DISTINCT d.imei, e.event_id::text \
     FROM devices d \
     JOIN entry_devices ed ON ed.device_id = d.id \
     JOIN entries e ON e.id = ed.entry_id \
     WHERE d.imei IS NOT NULL AND e.event_id IS NOT NULL";

impl DeviceEventMap {
    /// Builds a map from (IMEI, event) pairs; duplicates are merged.
    pub(crate) fn from_pairs(pairs: impl IntoIterator<Item = (String, EventKey)>) -> Self {
        let mut grouped: HashMap<Box<str>, Vec<EventKey>> = HashMap::new();
        for (imei, event) in pairs {
            let events = grouped.entry(imei.into_boxed_str()).or_default();
            if !events.contains(&event) {
                events.push(event);
            }
        }
        Self {
            by_imei: grouped
                .into_iter()
                .map(|(imei, events)| (imei, events.into_boxed_slice()))
                .collect(),
        }
    }

    /// The events `imei` is registered in (empty for an orphan).
    pub(crate) fn events_of(&self, imei: &str) -> &[EventKey] {
        self.by_imei.get(imei).map_or(&[], |events| events)
    }

    /// Number of devices in the map.
    pub(crate) fn len(&self) -> usize {
        self.by_imei.len()
    }

    /// Loads the map from the database.
    pub(crate) async fn load(pool: &deadpool_postgres::Pool) -> Result<Self, Error> {
        let client = pool.get().await.map_err(Error::Pool)?;
        let rows = client.query(MAP_QUERY, &[]).await?;
        let mut pairs = Vec::with_capacity(rows.len());
        for row in rows {
            let imei: String = row.try_get(0)?;
            let event: String = row.try_get(1)?;
            match uuid::Uuid::parse_str(&event) {
                Ok(event) => pairs.push((imei, event.as_u128())),
                // The column is a uuid: its text form always parses. Skip rather than fail.
                Err(_) => warn!(event_id = %event, "device map: unparseable event id skipped"),
            }
        }
        Ok(Self::from_pairs(pairs))
    }
}

/// Refreshes `map` every `every` until `cancel`; the first load happens immediately.
pub(crate) async fn refresh_loop(
    pool: deadpool_postgres::Pool,
    map: Arc<ArcSwap<DeviceEventMap>>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        let loaded = tokio::select! {
            () = cancel.cancelled() => return,
            loaded = tokio::time::timeout(every.max(Duration::from_secs(5)), DeviceEventMap::load(&pool)) => loaded,
        };
        match loaded {
            Ok(Ok(new_map)) => {
                debug!(devices = new_map.len(), "device→event map refreshed");
                map.store(Arc::new(new_map));
            }
            Ok(Err(error)) => {
                warn!(%error, "device→event map refresh failed; keeping the previous map");
            }
            Err(_) => warn!("device→event map refresh timed out; keeping the previous map"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_group_by_imei_without_duplicates() {
        let map = DeviceEventMap::from_pairs([
            ("a".to_owned(), 1),
            ("a".to_owned(), 2),
            ("a".to_owned(), 1),
            ("b".to_owned(), 2),
        ]);
        assert_eq!(map.events_of("a"), &[1, 2]);
        assert_eq!(map.events_of("b"), &[2]);
        assert!(map.events_of("c").is_empty());
        assert_eq!(map.len(), 2);
    }
}
