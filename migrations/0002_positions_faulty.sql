-- 0002_positions_faulty: operators flag a bad fix `faulty = true`; the live snapshot skips
-- flagged rows and finds each device's latest fix with one probe of (device_id, ts DESC).

ALTER TABLE positions ADD COLUMN faulty boolean NOT NULL DEFAULT false;

CREATE INDEX positions_device_ts_idx ON positions (device_id, ts DESC);
