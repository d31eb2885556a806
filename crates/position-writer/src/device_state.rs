//! Per-device state: when each tracker was last seen and where, in a bounded LRU.
//!
//! Bounded by `DEVICE_STATE_MAX`; the least recently seen device is evicted first (counted in
//! `processor_device_state_evictions_total`). `last_seen` never moves backwards: a replayed or
//! late record older than what is known refreshes the device's recency but not its state.
//! At start-up [`DeviceState::rehydrate`] fills the cache from the latest stored positions.

use std::num::NonZeroUsize;

use deadpool_postgres::Pool;
use lru::LruCache;
use teltonika_codec::stream_record::StreamRecord;
use time::OffsetDateTime;

use crate::metrics::{DEVICE_STATE_EVICTIONS_TOTAL, DEVICE_STATE_SIZE};
use crate::{Error, Result};

/// The last known position of a device (column types of `positions`).
#[derive(Debug, Clone, PartialEq)]
pub struct LastPosition {
    /// GNSS timestamp of the newest record seen: never moves backwards.
    pub last_seen: OffsetDateTime,
    /// Latitude of that record.
    pub latitude: f64,
    /// Longitude of that record.
    pub longitude: f64,
    /// Altitude in metres.
    pub altitude: Option<f32>,
    /// Course over ground in degrees.
    pub angle: Option<f32>,
    /// Speed in km/h.
    pub speed: Option<f32>,
    /// Satellites in view.
    pub satellites: Option<i16>,
}

impl LastPosition {
    fn from_record(record: &StreamRecord) -> Self {
        Self {
            last_seen: record.timestamp,
            latitude: record.latitude,
            longitude: record.longitude,
            altitude: record.altitude.map(f32::from),
            angle: record.angle.map(f32::from),
            speed: record.speed.map(f32::from),
            satellites: record.satellites.map(i16::from),
        }
    }
}

/// What [`DeviceState::observe`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The device was not known (it may have been evicted earlier).
    NewDevice,
    /// The record is the newest so far: the state moved forward.
    Advanced,
    /// The record is older than (or as old as) the known state: nothing changed.
    Stale,
}

/// The LRU of [`LastPosition`] by IMEI. Not shared: the durable path owns it.
#[derive(Debug)]
pub struct DeviceState {
    cache: LruCache<String, LastPosition>,
    evictions: u64,
}

/// Latest position of each device, newest devices first, bounded: a loose index scan finds
/// each distinct device with one probe of the unique index, then one probe of
/// `(device_id, ts DESC)` per device, instead of reading every row.
const REHYDRATE: &str = "WITH RECURSIVE ids AS (
    (SELECT device_id FROM positions ORDER BY device_id LIMIT 1)
  UNION ALL
    SELECT (SELECT p.device_id FROM positions p WHERE p.device_id > ids.device_id ORDER BY p.device_id LIMIT 1)
    FROM ids WHERE ids.device_id IS NOT NULL
)
SELECT last.device_id, last.ts, last.latitude, last.longitude, last.altitude, last.angle, last.speed, last.satellites
FROM ids CROSS JOIN LATERAL (
  SELECT p.device_id, p.ts, p.latitude, p.longitude, p.altitude, p.angle, p.speed, p.satellites
  FROM positions p WHERE p.device_id = ids.device_id ORDER BY p.ts DESC LIMIT 1
) last
ORDER BY last.ts DESC
LIMIT $1";

impl DeviceState {
    /// An empty cache holding at most `max` devices.
    pub fn new(max: NonZeroUsize) -> Self {
        metrics::gauge!(DEVICE_STATE_SIZE).set(0.0);
        Self {
            cache: LruCache::new(max),
            evictions: 0,
        }
    }

    /// Takes a written (or duplicate) record into account.
    pub fn observe(&mut self, record: &StreamRecord) -> Observed {
        if let Some(known) = self.cache.get_mut(record.device_id.as_str()) {
            if record.timestamp > known.last_seen {
                *known = LastPosition::from_record(record);
                return Observed::Advanced;
            }
            return Observed::Stale;
        }
        self.insert(record.device_id.clone(), LastPosition::from_record(record));
        Observed::NewDevice
    }

    fn insert(&mut self, imei: String, position: LastPosition) {
        if let Some((evicted, _)) = self.cache.push(imei.clone(), position)
            && evicted != imei
        {
            self.evictions += 1;
            metrics::counter!(DEVICE_STATE_EVICTIONS_TOTAL).increment(1);
        }
        metrics::gauge!(DEVICE_STATE_SIZE).set(self.cache.len() as f64);
    }

    /// The known state of `imei`, without touching its recency.
    pub fn get(&self, imei: &str) -> Option<&LastPosition> {
        self.cache.peek(imei)
    }

    /// Devices held.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// True when no device is held.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// The bound (`DEVICE_STATE_MAX`).
    pub fn capacity(&self) -> usize {
        self.cache.cap().get()
    }

    /// Devices evicted since this cache was created.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Loads the latest stored position of up to [`DeviceState::capacity`] devices (the most
    /// recently seen ones) in one query. Known devices keep the newer of the two states.
    /// Returns the number of rows read.
    pub async fn rehydrate(&mut self, pool: &Pool) -> Result<usize> {
        let client = pool.get().await.map_err(Error::Pool)?;
        let limit = i64::try_from(self.capacity()).unwrap_or(i64::MAX);
        let rows = client
            .query(REHYDRATE, &[&limit])
            .await
            .map_err(|err| Error::db("read the latest positions", err))?;
        let count = rows.len();
        // Oldest first, so the most recently seen devices end up most recent in the LRU.
        for row in rows.iter().rev() {
            let get = |err| Error::db("read the latest positions", err);
            let imei: String = row.try_get(0).map_err(get)?;
            let position = LastPosition {
                last_seen: row.try_get(1).map_err(get)?,
                latitude: row.try_get(2).map_err(get)?,
                longitude: row.try_get(3).map_err(get)?,
                altitude: row.try_get(4).map_err(get)?,
                angle: row.try_get(5).map_err(get)?,
                speed: row.try_get(6).map_err(get)?,
                satellites: row.try_get(7).map_err(get)?,
            };
            match self.cache.get_mut(imei.as_str()) {
                Some(known) if known.last_seen >= position.last_seen => {}
                Some(known) => *known = position,
                None => self.insert(imei, position),
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(imei: &str, secs: i64, latitude: f64) -> StreamRecord {
        let mut r = StreamRecord::new(
            imei.to_owned(),
            OffsetDateTime::from_unix_timestamp(1_777_000_000 + secs).unwrap(),
            latitude,
            19.0,
        );
        r.speed = Some(50);
        r
    }

    fn state(max: usize) -> DeviceState {
        DeviceState::new(NonZeroUsize::new(max).unwrap())
    }

    #[test]
    fn last_seen_never_moves_backwards() {
        let mut s = state(10);
        assert_eq!(s.observe(&record("A", 100, 1.0)), Observed::NewDevice);
        assert_eq!(s.observe(&record("A", 50, 2.0)), Observed::Stale);
        assert_eq!(s.observe(&record("A", 100, 3.0)), Observed::Stale);
        let a = s.get("A").unwrap();
        assert_eq!(a.last_seen.unix_timestamp(), 1_777_000_100);
        assert_eq!(a.latitude, 1.0);
        assert_eq!(s.observe(&record("A", 101, 4.0)), Observed::Advanced);
        assert_eq!(s.get("A").unwrap().latitude, 4.0);
        assert_eq!(s.get("A").unwrap().speed, Some(50.0));
    }

    #[test]
    fn the_least_recently_seen_device_is_evicted_and_counted() {
        let mut s = state(2);
        s.observe(&record("A", 1, 0.0));
        s.observe(&record("B", 1, 0.0));
        // A stale replay still counts as activity: A becomes the most recent.
        s.observe(&record("A", 0, 0.0));
        s.observe(&record("C", 1, 0.0));
        assert_eq!(s.evictions(), 1);
        assert!(s.get("B").is_none());
        assert!(s.get("A").is_some() && s.get("C").is_some());
        assert_eq!(s.len(), 2);
        s.observe(&record("B", 2, 0.0));
        assert_eq!(s.evictions(), 2);
        assert!(s.get("A").is_none());
        assert_eq!(s.capacity(), 2);
    }
}
