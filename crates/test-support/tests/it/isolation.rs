//! Each test gets its own database and key prefix, both removed at the end.

use fred::prelude::{KeysInterface, StreamsInterface};

async fn admin(pg: &test_support::TestPostgres) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(pg.admin_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

async fn database_exists(admin: &tokio_postgres::Client, name: &str) -> bool {
    let row = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .unwrap();
    row.get::<_, i64>(0) == 1
}

#[tokio::test]
async fn postgres_databases_are_fresh_and_dropped() {
    let Some(a) = test_support::postgres().await else {
        return;
    };
    let Some(b) = test_support::postgres().await else {
        return;
    };
    assert_ne!(a.database(), b.database());
    a.execute("CREATE TABLE only_in_a (x int); INSERT INTO only_in_a VALUES (1)")
        .await;
    let error = b
        .client()
        .await
        .query("SELECT * FROM only_in_a", &[])
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    );

    let admin = admin(&a).await;
    let name = a.database().to_owned();
    assert!(database_exists(&admin, &name).await);
    // An open connection does not keep the database alive: the drop forces it.
    let still_open = a.client().await;
    drop(a);
    assert!(
        !database_exists(&admin, &name).await,
        "database {name} survived its TestPostgres"
    );
    assert!(still_open.simple_query("SELECT 1").await.is_err());
    drop(b);
}

#[tokio::test]
async fn redis_keys_are_unique_and_deleted() {
    let Some(a) = test_support::redis().await else {
        return;
    };
    let Some(b) = test_support::redis().await else {
        return;
    };
    let (key_a, key_b) = (a.unique_key("telemetry"), b.unique_key("telemetry"));
    assert_ne!(key_a, key_b);
    let client = a.client().await;
    let _: String = client
        .xadd(&key_a, false, None, "*", vec![("f", "1")])
        .await
        .unwrap();
    let plain = a.unique_key("plain");
    let _: () = client.set(&plain, 1, None, None, false).await.unwrap();
    let len: u64 = client.xlen(&key_a).await.unwrap();
    assert_eq!(len, 1);
    let other: u64 = client.exists(&key_b).await.unwrap();
    assert_eq!(other, 0);
    drop(a);
    let left: u64 = client
        .exists(vec![key_a.clone(), plain.clone()])
        .await
        .unwrap();
    assert_eq!(left, 0, "{key_a} or {plain} survived its TestRedis");
    drop(b);
}
