//! Device state re-hydrated from the database.

use std::num::NonZeroUsize;

use position_writer::DeviceState;

use crate::common::{at, fast_config, migrated_writer, record};

#[tokio::test]
async fn rehydrates_the_latest_position_of_the_most_recent_devices() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let writer = migrated_writer(&pg, fast_config(500)).await;
    let mut batch = vec![
        record("A", 10),
        record("A", 30),
        record("A", 20),
        record("B", 50),
        record("C", 40),
    ];
    batch[1].speed = Some(99);
    writer.write_batch(&batch).await.unwrap();

    let mut all = DeviceState::new(NonZeroUsize::new(10).unwrap());
    assert_eq!(all.rehydrate(writer.pool()).await.unwrap(), 3);
    let a = all.get("A").unwrap();
    assert_eq!(a.last_seen, at(30));
    assert_eq!(a.speed, Some(99.0));
    assert_eq!(a.latitude, batch[1].latitude);
    assert_eq!(all.get("B").unwrap().last_seen, at(50));

    // Bounded: only the most recently seen devices, no eviction while loading.
    let mut two = DeviceState::new(NonZeroUsize::new(2).unwrap());
    assert_eq!(two.rehydrate(writer.pool()).await.unwrap(), 2);
    assert!(two.get("A").is_none());
    assert_eq!(two.get("C").unwrap().last_seen, at(40));
    assert_eq!(two.evictions(), 0);

    // A state already newer than the database wins.
    let mut newer = DeviceState::new(NonZeroUsize::new(10).unwrap());
    newer.observe(&record("A", 99));
    newer.rehydrate(writer.pool()).await.unwrap();
    assert_eq!(newer.get("A").unwrap().last_seen, at(99));
}

#[tokio::test]
async fn rehydrating_an_empty_table_loads_nothing() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let writer = migrated_writer(&pg, fast_config(500)).await;
    let mut state = DeviceState::new(NonZeroUsize::new(10).unwrap());
    assert_eq!(state.rehydrate(writer.pool()).await.unwrap(), 0);
    assert!(state.is_empty());
}
