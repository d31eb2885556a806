//! Fault control: the TCP proxy (cut/restore) on every provider, and owned servers that
//! restart with their data.

use std::time::Duration;

use fred::prelude::{ClientLike, KeysInterface};
use test_support::TcpProxy;
use test_support::local::{OwnedPostgres, OwnedRedis, RedisOptions};

async fn redis_via(url: &str) -> Result<fred::prelude::Client, fred::error::Error> {
    let config = fred::prelude::Config::from_url(url)?;
    let client = fred::prelude::Builder::from_config(config)
        .with_connection_config(|c| c.connection_timeout = Duration::from_secs(2))
        .build()?;
    client.init().await?;
    Ok(client)
}

#[tokio::test]
async fn proxy_cuts_and_restores_redis() {
    let Some(redis) = test_support::redis().await else {
        return;
    };
    let proxy = TcpProxy::start(redis.host_port()).await;
    let client = redis_via(&redis.url_via(&proxy)).await.unwrap();
    let key = redis.unique_key("k");
    let _: () = client.set(&key, "v", None, None, false).await.unwrap();

    proxy.cut().await;
    let after_cut: Result<Option<String>, _> =
        tokio::time::timeout(Duration::from_secs(5), client.get(&key))
            .await
            .unwrap();
    assert!(
        after_cut.is_err(),
        "a command through a cut proxy must fail"
    );
    let refused = tokio::net::TcpStream::connect(proxy.local_addr()).await;
    assert_eq!(
        refused.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );

    proxy.restore().await;
    let fresh = redis_via(&redis.url_via(&proxy)).await.unwrap();
    let value: Option<String> = fresh.get(&key).await.unwrap();
    assert_eq!(value.as_deref(), Some("v"));
    assert!(proxy.connections_accepted() >= 2);
    let _ = fresh.quit().await;
}

#[tokio::test]
async fn proxy_cuts_and_restores_postgres() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let proxy = TcpProxy::start(pg.host_port()).await;
    let url = pg.url_via(&proxy);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();

    proxy.cut().await;
    assert!(client.simple_query("SELECT 1").await.is_err());
    let _ = connection.await;
    assert!(
        tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .is_err()
    );

    proxy.restore().await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), pg.database());
}

#[tokio::test]
async fn owned_redis_keeps_appendonly_data_across_kill_and_restart() {
    let Some(mut server) = OwnedRedis::start(RedisOptions { appendonly: true }) else {
        return;
    };
    let dir = server.dir().to_path_buf();
    let client = redis_via(&server.url()).await.unwrap();
    let _: () = client.set("durable", "1", None, None, false).await.unwrap();
    let _ = client.quit().await;

    let first_pid = server.pid().unwrap();
    server.kill();
    assert!(
        redis_via(&server.url()).await.is_err(),
        "a killed server must be unreachable"
    );
    server.start_again();
    assert_ne!(server.pid().unwrap(), first_pid);
    let client = redis_via(&server.url()).await.unwrap();
    let value: Option<String> = client.get("durable").await.unwrap();
    assert_eq!(
        value.as_deref(),
        Some("1"),
        "appendonly data lost across SIGKILL"
    );
    let _: () = client.set("durable", "2", None, None, false).await.unwrap();
    let _ = client.quit().await;

    server.restart();
    let client = redis_via(&server.url()).await.unwrap();
    let value: Option<String> = client.get("durable").await.unwrap();
    assert_eq!(value.as_deref(), Some("2"));
    let _ = client.quit().await;

    drop(server);
    assert!(!dir.exists(), "{} survived its OwnedRedis", dir.display());
}

#[tokio::test]
async fn owned_redis_without_appendonly_starts_empty_again() {
    let Some(mut server) = OwnedRedis::start(RedisOptions::default()) else {
        return;
    };
    let client = redis_via(&server.url()).await.unwrap();
    let _: () = client
        .set("volatile", "1", None, None, false)
        .await
        .unwrap();
    let _ = client.quit().await;
    server.kill();
    server.start_again();
    let client = redis_via(&server.url()).await.unwrap();
    let value: Option<String> = client.get("volatile").await.unwrap();
    assert_eq!(value, None);
    let _ = client.quit().await;
}

#[tokio::test]
async fn owned_postgres_restarts_with_its_data() {
    let Some(mut server) = OwnedPostgres::start() else {
        return;
    };
    let connect = |url: String| async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok::<_, tokio_postgres::Error>(client)
    };
    let client = connect(server.url()).await.unwrap();
    client
        .batch_execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
        .await
        .unwrap();

    server.stop();
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "a stopped server must drop clients"
    );
    assert!(connect(server.url()).await.is_err());
    server.start_again();
    let client = connect(server.url()).await.unwrap();
    let row = client.query_one("SELECT x FROM kept", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);

    server.kill();
    server.start_again();
    let client = connect(server.url()).await.unwrap();
    let row = client
        .query_one("SELECT count(*) FROM kept", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
}
