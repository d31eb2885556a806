//! rally-sim against a real Redis: what the simulator publishes is what a consumer decodes.

use std::collections::HashMap;
use std::time::Duration;

use fred::interfaces::{KeysInterface, StreamsInterface};
use fred::types::streams::XReadResponse;
use rally_sim::{Publisher, SimConfig, Simulator, decode_frame, encode_frame};
use teltonika_codec::stream_record::decode_entry;

#[tokio::test]
async fn published_entries_decode_back_to_the_simulated_records() {
    let Some(redis) = test_support::redis().await else {
        return;
    };
    let stream = redis.unique_key("positions");
    let publisher = Publisher::connect(redis.url(), &stream)
        .await
        .expect("connect");

    let mut sim = Simulator::new(SimConfig {
        cars: 4,
        reports_per_second: 2.0,
        ..SimConfig::default()
    });
    let start = time::OffsetDateTime::now_utc();
    let mut expected = Vec::new();
    for tick in 0..10 {
        let now = start + time::Duration::milliseconds(500 * tick);
        for (imei, records) in sim.advance(now, Duration::from_millis(500)) {
            let frame = encode_frame(&records).expect("encode");
            let decoded = decode_frame(&imei, &frame).expect("decode");
            assert_eq!(decoded.len(), records.len());
            let ids = publisher.publish(&decoded).await.expect("publish");
            assert_eq!(ids.len(), decoded.len());
            expected.extend(decoded);
        }
    }
    assert!(
        expected.len() >= 4 * 5,
        "4 cars at ≥1 Hz for 5 s report at least 20 records, got {}",
        expected.len()
    );

    let client = redis.client().await;
    let reply: XReadResponse<String, String, String, String> = client
        .xread_map(Some(100_000), None, &stream, "0-0")
        .await
        .expect("xread");
    let entries = &reply[&stream];
    assert_eq!(
        entries.len(),
        expected.len(),
        "every record is one stream entry"
    );
    for ((_, fields), want) in entries.iter().zip(&expected) {
        let fields: HashMap<&str, &str> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(fields.get("codec"), Some(&"8E"));
        let got = decode_entry(fields.iter().map(|(k, v)| (*k, *v))).expect("decode entry");
        assert_eq!(&got, want);
    }
    let _: () = client.del(&stream).await.expect("del");
    publisher.quit().await;
}
