//! The subscribe snapshot: the latest non-faulty position of every device of an event.
//!
//! One index probe per device on `positions (device_id, ts DESC)`: the event's IMEIs come from
//! the Directus tables, and a `LATERAL … ORDER BY ts DESC LIMIT 1` per IMEI walks that index
//! from the newest row, skipping flagged (`faulty`) rows. A device without a non-faulty position
//! is omitted. Never a scan of all rows of those devices.

use live_protocol::Position;

use crate::Error;

/// The snapshot query. `$1` is the event id as text (compared as uuid).
pub(crate) const SNAPSHOT_QUERY: &str = "SELECT d.imei, \
        floor(extract(epoch FROM p.ts) * 1000)::int8 AS ts_ms, \
        p.latitude, p.longitude, p.speed, p.angle \
     FROM unnest(ARRAY( \
            SELECT DISTINCT dv.imei \
            FROM entries e \
            JOIN entry_devices ed ON ed.entry_id = e.id \
            JOIN devices dv ON dv.id = ed.device_id \
            WHERE e.event_id = $1::text::uuid AND dv.imei IS NOT NULL \
          )) AS d(imei) \
     CROSS JOIN LATERAL ( \
            SELECT ts, latitude, longitude, speed, angle \
            FROM positions \
            WHERE device_id = d.imei AND NOT faulty \
            ORDER BY ts DESC \
            LIMIT 1 \
          ) AS p";

/// Runs the snapshot query for `event_id` (a hyphenated UUID).
pub(crate) async fn query(
    pool: &deadpool_postgres::Pool,
    event_id: &str,
) -> Result<Vec<Position>, Error> {
    let client = pool.get().await.map_err(Error::Pool)?;
    let statement = client.prepare_cached(SNAPSHOT_QUERY).await?;
    let rows = client.query(&statement, &[&event_id]).await?;
    let mut positions = Vec::with_capacity(rows.len());
    for row in rows {
        let device_id: String = row.try_get(0)?;
        let ts: i64 = row.try_get(1)?;
        let lat: f64 = row.try_get(2)?;
        let lon: f64 = row.try_get(3)?;
        let speed: Option<f32> = row.try_get(4)?;
        let angle: Option<f32> = row.try_get(5)?;
        positions.push(Position {
            device_id,
            ts,
            lat,
            lon,
            speed: whole_u16(speed),
            course: whole_u16(angle),
        });
    }
    Ok(positions)
}

/// A `real` column as a wire integer: rounded, `None` when NULL, negative, not finite, or too
/// big (the durable path only writes in-range values; this guards hand-edited rows).
fn whole_u16(value: Option<f32>) -> Option<u16> {
    let value = value?;
    if !value.is_finite() || value < 0.0 || value > f32::from(u16::MAX) {
        return None;
    }
    // In range (checked above): the cast cannot saturate.
    Some(value.round() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_become_wire_integers() {
        assert_eq!(whole_u16(None), None);
        assert_eq!(whole_u16(Some(86.0)), Some(86));
        assert_eq!(whole_u16(Some(86.6)), Some(87));
        assert_eq!(whole_u16(Some(-1.0)), None);
        assert_eq!(whole_u16(Some(f32::NAN)), None);
        assert_eq!(whole_u16(Some(70_000.0)), None);
    }
}
