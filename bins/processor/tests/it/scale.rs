//! Several consumers on one group: a dead consumer's entries are claimed, two instances
//! split the work (and race on the migrations).

use std::time::Duration;

use fred::prelude::*;

use crate::support::{self, Env, GROUP, Processor};

/// An entry as XREADGROUP returns it: (id, fields).
type Entry = (String, Vec<(String, String)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_a_dead_consumer_are_claimed_and_written() {
    let Some(env) = Env::new().await else { return };
    let all = support::records(10, 300);
    env.add(&all).await;
    // A consumer of the group reads 120 entries and dies without acknowledging them.
    let _: () = env
        .client
        .xgroup_create(&env.stream, GROUP, "0", true)
        .await
        .unwrap();
    let read: Vec<(String, Vec<Entry>)> = env
        .client
        .xreadgroup(GROUP, "ghost", Some(120), None, false, &env.stream, ">")
        .await
        .unwrap();
    assert_eq!(read[0].1.len(), 120);

    let mut p = env
        .spawn("claimer-1", &[("REDIS_CLAIM_MIN_IDLE_MS", "1000")])
        .await;
    env.wait_drained(300, Duration::from_secs(30)).await;
    assert_eq!(env.distinct_rows().await, 300);
    assert!(p.metric("processor_consumer_claimed_total").await >= Some(120.0));
    assert!(p.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_stream_and_write_each_record_once() {
    let Some(env) = Env::new().await else { return };
    // Both start at the same moment against an empty database: the migrations race.
    let extra = [("REDIS_READ_COUNT", "100")];
    let (mut a, mut b) = tokio::join!(
        Processor::spawn(with(&env, "twin-a", &extra)),
        Processor::spawn(with(&env, "twin-b", &extra)),
    );
    const TOTAL: i64 = 20_000;
    env.add(&support::records(100, TOTAL as u32)).await;
    env.wait_drained(TOTAL, Duration::from_secs(60)).await;
    assert_eq!(env.rows().await, TOTAL);
    assert_eq!(env.distinct_rows().await, TOTAL);

    let inserted = "processor_position_writes_total{status=\"inserted\"}";
    let (ia, ib) = (
        a.metric(inserted).await.unwrap(),
        b.metric(inserted).await.unwrap(),
    );
    assert!(ia > 0.0 && ib > 0.0, "both must work: a={ia} b={ib}");
    assert_eq!(ia + ib, TOTAL as f64);
    let migrations: i64 = env
        .pg
        .client()
        .await
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert!(migrations >= 1);
    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
}

fn with(env: &Env, instance: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = env.env(instance);
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push(((*k).to_owned(), (*v).to_owned()));
    }
    vars
}
