//! The cached `SELECT 1` behind `/readyz`.

use std::time::Duration;

use position_writer::{DbHealth, DbStatus};
use test_support::TcpProxy;

use crate::common::pool;

#[tokio::test]
async fn reports_up_down_and_up_again_and_caches() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let proxy = TcpProxy::start(pg.host_port()).await;
    let pool = pool(&pg.url_via(&proxy), 1);

    let fresh = DbHealth::with_limits(
        pool.clone(),
        Duration::from_millis(50),
        Duration::from_secs(1),
    );
    let cached = DbHealth::with_limits(
        pool.clone(),
        Duration::from_secs(60),
        Duration::from_secs(1),
    );
    assert_eq!(fresh.status().await, DbStatus::Up);
    assert_eq!(cached.status().await, DbStatus::Up);

    proxy.cut().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    match fresh.status().await {
        DbStatus::Down { kind, message } => {
            assert!(
                kind == "connection" || kind == "timeout",
                "{kind}: {message}"
            );
            assert!(!message.is_empty());
        }
        DbStatus::Up => panic!("the database is unreachable"),
    }
    // Within its max age the cached handle does not probe again.
    assert_eq!(cached.status().await, DbStatus::Up);

    proxy.restore().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(60)).await;
        if fresh.status().await.is_up() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not up again after the restore"
        );
    }
}

#[tokio::test]
async fn a_wrong_database_is_down_with_its_sqlstate() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let url = pg
        .url()
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/no_such_database_here"))
        .unwrap();
    let health = DbHealth::new(pool(&url, 1));
    match health.status().await {
        DbStatus::Down { kind, .. } => assert_eq!(kind, "sqlstate 3D000"),
        DbStatus::Up => panic!("database does not exist"),
    }
}
