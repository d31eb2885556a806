//! Property tests: encode → decode is the identity for every value shape, and no input makes
//! the decoder panic.

use proptest::prelude::*;
use time::OffsetDateTime;

use super::*;

/// Every instant `time` can represent (years −9999…9999), at nanosecond resolution, biased
/// towards millisecond values (all a JavaScript producer can write).
fn timestamp() -> impl Strategy<Value = OffsetDateTime> {
    const MIN_S: i64 = -377_705_116_800; // -9999-01-01T00:00:00Z
    const MAX_S: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let ms = (MIN_S * 1000..=MAX_S * 1000 + 999).prop_map(|ms| i128::from(ms) * 1_000_000);
    let ns = (i128::from(MIN_S) * 1_000_000_000..=i128::from(MAX_S) * 1_000_000_000 + 999_999_999)
        .prop_map(|ns| ns);
    prop_oneof![3 => ms, 1 => ns].prop_map(|ns| {
        OffsetDateTime::from_unix_timestamp_nanos(ns).expect("strategy stays in range")
    })
}

fn coordinate(limit: f64) -> impl Strategy<Value = f64> {
    let raw = limit as i64 * 10_000_000;
    prop_oneof![
        // What tcp-ingestion computes: the raw integer divided by 10^7.
        (-raw..=raw).prop_map(|r| r as f64 / 1e7),
        -limit..=limit,
        Just(limit),
        Just(-limit),
        Just(0.0),
        Just(1e-7),
        Just(-5e-324),
    ]
}

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        any::<i64>().prop_map(AttributeValue::Number),
        any::<u32>().prop_map(|v| AttributeValue::Number(v.into())),
        any::<i128>().prop_map(AttributeValue::BigInt),
        any::<u64>().prop_map(|v| AttributeValue::BigInt(v.into())),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(AttributeValue::Bytes),
        prop::collection::vec(any::<u8>(), 0..4096).prop_map(AttributeValue::Bytes),
    ]
}

prop_compose! {
    fn record()(
        device_id in "(?s).{1,24}",
        timestamp in timestamp(),
        priority in prop::option::of(0u8..=2),
        latitude in coordinate(90.0),
        longitude in coordinate(180.0),
        altitude in any::<Option<i16>>(),
        angle in prop::option::of(0u16..=360),
        satellites in any::<Option<u8>>(),
        speed in any::<Option<u16>>(),
        event_io_id in any::<Option<u16>>(),
        attributes in prop::collection::btree_map(any::<u16>(), attribute_value(), 0..24),
    ) -> StreamRecord {
        StreamRecord {
            device_id, timestamp, priority, latitude, longitude, altitude, angle, satellites,
            speed, event_io_id, attributes: attributes.into_iter().collect(),
        }
    }
}

fn codec() -> impl Strategy<Value = EntryCodec> {
    prop_oneof![
        Just(EntryCodec::Codec8),
        Just(EntryCodec::Codec8E),
        Just(EntryCodec::Codec16)
    ]
}

proptest! {
    #[test]
    fn entry_round_trips(r in record(), codec in codec()) {
        let fields = encode_entry(&r, codec);
        prop_assert_eq!(&fields[2].1, codec.as_str());
        prop_assert_eq!(decode_entry(fields).unwrap(), r);
    }

    #[test]
    fn payload_round_trips_and_is_standard_json(r in record()) {
        let json = encode_payload(&r);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(value["device_id"].as_str(), Some(r.device_id.as_str()));
        // (serde_json's default float parser is not correctly rounded, so only check types.)
        prop_assert!(value["latitude"].is_number());
        prop_assert_eq!(decode_payload(json.as_bytes()).unwrap(), r);
    }

    #[test]
    fn unsorted_or_duplicated_attributes_encode_as_a_javascript_object_would(
        r in record(),
        extra in prop::collection::vec((any::<u16>(), attribute_value()), 0..8),
    ) {
        let mut shuffled = r.clone();
        shuffled.attributes.reverse();
        shuffled.attributes.extend(extra.iter().cloned());
        let mut expected = r;
        for (id, v) in extra {
            match expected.attributes.binary_search_by_key(&id, |(k, _)| *k) {
                Ok(i) => expected.attributes[i].1 = v,
                Err(i) => expected.attributes.insert(i, (id, v)),
            }
        }
        prop_assert_eq!(decode_payload(encode_payload(&shuffled).as_bytes()).unwrap(), expected);
    }

    #[test]
    fn timestamps_round_trip(t in timestamp()) {
        prop_assert_eq!(timestamp::parse(&timestamp::to_iso(t)), Ok(t));
    }

    #[test]
    fn numbers_round_trip_in_javascript_notation(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        let mut s = String::new();
        js_number::write_f64(&mut s, v);
        let back: f64 = s.parse().unwrap();
        prop_assert!(back == v, "{} -> {}", v, s);
    }

    #[test]
    fn arbitrary_payloads_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_payload(&bytes);
        let _ = decode_entry([("device_id", &b"1"[..]), ("payload", &bytes[..]), ("ts", &bytes[..])]);
    }

    #[test]
    fn mutated_payloads_never_panic(r in record(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut json = encode_payload(&r).into_bytes();
        let i = at.index(json.len());
        json[i] = byte;
        let _ = decode_payload(&json);
    }
}
