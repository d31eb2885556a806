//! The migration runner: fresh apply, skip, checksum mismatch, racing runners, rollback.

use position_writer::{Error, Migration, migrate, migrations, run_migrations};

use crate::common::pool;

#[tokio::test]
async fn applies_on_an_empty_database_then_skips() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let pool = pool(pg.url(), 2);

    let first = migrate(&pool).await.unwrap();
    assert_eq!(first.applied, ["0001_positions", "0002_positions_faulty"]);
    assert!(first.skipped.is_empty());

    let client = pg.client().await;
    let columns: Vec<(String, String, String)> = client
        .query(
            "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns
             WHERE table_name = 'positions' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected = [
        ("device_id", "text", "NO"),
        ("ts", "timestamp with time zone", "NO"),
        ("latitude", "double precision", "NO"),
        ("longitude", "double precision", "NO"),
        ("altitude", "real", "YES"),
        ("angle", "real", "YES"),
        ("speed", "real", "YES"),
        ("satellites", "smallint", "YES"),
        ("priority", "smallint", "YES"),
        ("event_io_id", "integer", "YES"),
        ("attributes", "jsonb", "NO"),
        ("received_at", "timestamp with time zone", "NO"),
        ("faulty", "boolean", "NO"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(columns, expected);

    let indexes: Vec<String> = client
        .query(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'positions' ORDER BY indexname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        indexes,
        [
            "CREATE UNIQUE INDEX positions_device_id_ts_key ON public.positions USING btree (device_id, ts)",
            "CREATE INDEX positions_device_ts_idx ON public.positions USING btree (device_id, ts DESC)",
            "CREATE INDEX positions_ts_idx ON public.positions USING btree (ts DESC)",
        ]
    );

    let recorded: Vec<(String, String)> = client
        .query(
            "SELECT version, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let embedded: Vec<(String, String)> = migrations()
        .iter()
        .map(|m| (m.version.to_owned(), m.checksum()))
        .collect();
    assert_eq!(recorded, embedded);

    // The extensions are used exactly when the server offers them.
    let offered: Vec<String> = client
        .query(
            "SELECT name::text FROM pg_available_extensions WHERE name IN ('timescaledb', 'postgis') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(first.extensions, offered);

    let second = migrate(&pool).await.unwrap();
    assert!(second.applied.is_empty());
    assert_eq!(second.skipped, ["0001_positions", "0002_positions_faulty"]);
}

#[tokio::test]
async fn a_changed_applied_migration_is_an_error() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let pool = pool(pg.url(), 2);
    migrate(&pool).await.unwrap();

    // The same version with different SQL, as if the file had been edited after deployment.
    let edited: Vec<Migration> = migrations()
        .iter()
        .map(|m| {
            if m.version == "0001_positions" {
                Migration {
                    version: m.version,
                    sql: "SELECT 1; -- edited",
                }
            } else {
                *m
            }
        })
        .collect();
    let mut client = pg.client().await;
    let err = run_migrations(&mut client, &edited).await.unwrap_err();
    match &err {
        Error::MigrationChanged {
            version,
            applied,
            file,
        } => {
            assert_eq!(version, "0001_positions");
            assert_eq!(applied, &migrations()[0].checksum());
            assert_ne!(applied, file);
        }
        other => panic!("expected MigrationChanged, got {other:?}"),
    }
    assert!(err.to_string().contains("0001_positions"), "{err}");

    // A tampered record is caught the same way through the embedded list.
    pg.execute("UPDATE schema_migrations SET checksum = 'crc64:0000000000000000' WHERE version = '0002_positions_faulty'")
        .await;
    let err = migrate(&pool).await.unwrap_err();
    assert!(
        matches!(&err, Error::MigrationChanged { version, .. } if version == "0002_positions_faulty"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_failing_migration_leaves_no_trace_and_releases_the_lock() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let mut list: Vec<Migration> = migrations().to_vec();
    list.push(Migration {
        version: "9999_broken",
        sql: "CREATE TABLE half_done (x int); SELECT 1 / 0;",
    });
    let mut client = pg.client().await;
    let err = run_migrations(&mut client, &list).await.unwrap_err();
    assert_eq!(err.sqlstate(), Some("22012"), "{err:?}");
    assert!(err.to_string().contains("9999_broken"), "{err}");

    let other = pg.client().await;
    let versions: Vec<String> = other
        .query("SELECT version FROM schema_migrations ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, ["0001_positions", "0002_positions_faulty"]);
    let half_done: Option<String> = other
        .query_one("SELECT to_regclass('half_done')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(half_done, None);
    // The session lock was released even though the run failed: another session takes it.
    let locked: bool = other
        .query_one(
            "SELECT pg_try_advisory_lock($1)",
            &[&position_writer::MIGRATION_LOCK_KEY],
        )
        .await
        .unwrap()
        .get(0);
    assert!(locked);
}

#[tokio::test]
async fn two_runners_racing_on_an_empty_database_both_succeed() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    for round in 0..3 {
        if round > 0 {
            pg.execute("DROP TABLE positions; DROP TABLE schema_migrations;")
                .await;
        }
        let (a, b) = (pool(pg.url(), 1), pool(pg.url(), 1));
        let (ra, rb) = tokio::join!(migrate(&a), migrate(&b));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let mut applied = [ra.applied.clone(), rb.applied.clone()].concat();
        applied.sort();
        assert_eq!(
            applied,
            ["0001_positions", "0002_positions_faulty"],
            "round {round}: {ra:?} {rb:?}"
        );
        assert_eq!(ra.applied.len() + ra.skipped.len(), 2);
        assert_eq!(rb.applied.len() + rb.skipped.len(), 2);
    }
}
