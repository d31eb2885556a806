-- 0001_positions: the positions table, one row per GNSS fix, idempotent on (device_id, ts).
--
-- Applied by position-writer's migration runner inside one transaction (docs/database.md).
-- On a server that offers TimescaleDB the table becomes a hypertable on `ts`; on one that
-- offers PostGIS the extension is created for the geofence work. Plain PostgreSQL works too:
-- the DO block below then only raises a NOTICE.

CREATE TABLE positions (
  device_id    text             NOT NULL,   -- IMEI
  ts           timestamptz      NOT NULL,   -- GNSS timestamp of the record
  latitude     double precision NOT NULL,
  longitude    double precision NOT NULL,
  altitude     real,
  angle        real,
  speed        real,
  satellites   smallint,
  priority     smallint,
  event_io_id  integer,
  attributes   jsonb            NOT NULL DEFAULT '{}'::jsonb,
  received_at  timestamptz      NOT NULL DEFAULT now()
);

-- A hypertable's unique indexes must contain the partitioning column: this one does (ts).
CREATE UNIQUE INDEX positions_device_id_ts_key ON positions (device_id, ts);
CREATE INDEX positions_ts_idx ON positions (ts DESC);

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
    -- Fails loudly (with TimescaleDB's own hint) when the library is installed but not in
    -- shared_preload_libraries: the server claims to offer it, so that is a misconfiguration.
    CREATE EXTENSION IF NOT EXISTS timescaledb;
    -- The table is empty here, so no data migration is needed. Default indexes are off
    -- because the two indexes above already cover (ts DESC) and (device_id, ts).
    PERFORM create_hypertable('positions', 'ts',
                              create_default_indexes => false,
                              if_not_exists => true);
    RAISE NOTICE 'positions is a TimescaleDB hypertable on ts';
  ELSE
    RAISE NOTICE 'timescaledb is not available on this server: positions stays a plain table';
  END IF;

  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgis') THEN
    CREATE EXTENSION IF NOT EXISTS postgis;
  ELSE
    RAISE NOTICE 'postgis is not available on this server: geofencing will need it later';
  END IF;
END
$$;
