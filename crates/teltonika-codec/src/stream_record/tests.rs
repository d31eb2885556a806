//! Unit tests: one test per decoding rule of the contract, and encode → decode round trips.

use super::*;
use time::macros::datetime;

const IMEI: &str = "356307042441013";
const TS: &str = "2026-05-02T11:00:00.000Z";

/// The contract's example payload (attribute order as written there, not id order).
const EXAMPLE: &str = r#"{
  "device_id": "356307042441013",
  "timestamp": "2026-05-02T11:00:00.000Z",
  "priority": 1,
  "latitude": 41.3275,
  "longitude": 19.8187,
  "altitude": 112,
  "angle": 270,
  "satellites": 11,
  "speed": 86,
  "event_io_id": 0,
  "attributes": {
    "21": 4,
    "66": 12450,
    "16": {"__bigint": "18446744073709551615"},
    "385": {"__buffer_b64": "AQIDBA=="}
  }
}"#;

fn example_record() -> StreamRecord {
    StreamRecord {
        device_id: IMEI.to_owned(),
        timestamp: datetime!(2026-05-02 11:00:00 UTC),
        priority: Some(1),
        latitude: 41.3275,
        longitude: 19.8187,
        altitude: Some(112),
        angle: Some(270),
        satellites: Some(11),
        speed: Some(86),
        event_io_id: Some(0),
        attributes: vec![
            (16, AttributeValue::BigInt(u64::MAX.into())),
            (21, AttributeValue::Number(4)),
            (66, AttributeValue::Number(12450)),
            (385, AttributeValue::Bytes(vec![1, 2, 3, 4])),
        ],
    }
}

fn entry(payload: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ts", TS.to_owned()),
        ("device_id", IMEI.to_owned()),
        ("codec", "8E".to_owned()),
        ("payload", payload.to_owned()),
    ]
}

/// A minimal valid payload with `extra` spliced in as further top-level members.
fn payload_with(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(
        r#"{{"device_id":"{IMEI}","timestamp":"{TS}","latitude":41.3,"longitude":19.8{sep}{extra}}}"#
    )
}

/// Decodes `payload` as an entry and returns the error, asserting the field it names.
#[track_caller]
fn rejects(payload: &str, field: &str) -> Problem {
    let err = decode_entry(entry(payload)).expect_err("decoded a malformed record");
    assert_eq!(err.field(), field, "{err}");
    assert!(
        err.to_string().starts_with(&format!("field \"{field}\": ")),
        "{err}"
    );
    err.problem().clone()
}

#[track_caller]
fn rejects_payload_field(extra: &str, field: &str) -> Problem {
    rejects(&payload_with(extra), field)
}

// ---- valid input ----

#[test]
fn decodes_the_contract_example() {
    let r = decode_entry(entry(EXAMPLE)).unwrap();
    assert_eq!(r, example_record());
    assert_eq!(r.timestamp.offset(), time::UtcOffset::UTC);
}

#[test]
fn optional_fields_absent_or_null_are_none_and_attributes_default_to_empty() {
    let r = decode_payload(payload_with("").as_bytes()).unwrap();
    assert_eq!(
        r,
        StreamRecord::new(IMEI, datetime!(2026-05-02 11:00 UTC), 41.3, 19.8)
    );
    let nulls = payload_with(
        r#""priority":null,"altitude":null,"angle":null,"satellites":null,"speed":null,"event_io_id":null,"attributes":null"#,
    );
    assert_eq!(decode_payload(nulls.as_bytes()).unwrap(), r);
}

#[test]
fn aliases_device_id_and_ts_are_accepted() {
    let p = format!(r#"{{"deviceId":"{IMEI}","ts":"{TS}","latitude":1,"longitude":2}}"#);
    let r = decode_entry(entry(&p)).unwrap();
    assert_eq!(r.device_id, IMEI);
    assert_eq!(r.timestamp, datetime!(2026-05-02 11:00 UTC));
    assert_eq!((r.latitude, r.longitude), (1.0, 2.0));
}

#[test]
fn unknown_top_level_keys_and_entry_fields_are_ignored() {
    let p = payload_with(r#""hdop":0.8,"nested":{"a":[1,{"b":null}]},"io":[1,2]"#);
    let mut fields = entry(&p);
    fields.push(("error", "something".to_owned()));
    fields.push(("source_id", "1-0".to_owned()));
    assert!(decode_entry(fields).is_ok());
}

#[test]
fn codec_field_is_informational() {
    let mut fields = entry(&payload_with(""));
    fields[2].1 = "not a codec".to_owned();
    fields.push(("codec", "again".to_owned()));
    assert!(decode_entry(fields).is_ok());
    let mut fields = entry(&payload_with(""));
    fields.remove(2);
    assert!(decode_entry(fields).is_ok());
}

#[test]
fn entry_ts_is_optional() {
    let mut fields = entry(&payload_with(""));
    fields.remove(0);
    assert!(decode_entry(fields).is_ok());
}

#[test]
fn entry_ts_agrees_to_the_millisecond_across_offsets_and_precision() {
    let mut fields = entry(&payload_with("").replace(TS, "2026-05-02T11:00:00.000400Z"));
    fields[0].1 = "2026-05-02T13:00:00.000+02:00".to_owned();
    assert!(decode_entry(fields).is_ok());
}

#[test]
fn timestamps_with_offsets_are_normalised_to_utc() {
    let p = payload_with("").replace(TS, "2026-05-02T12:30:00.250+01:30");
    let r = decode_payload(p.as_bytes()).unwrap();
    assert_eq!(r.timestamp, datetime!(2026-05-02 11:00:00.25 UTC));
    assert_eq!(r.timestamp.offset(), time::UtcOffset::UTC);
}

#[test]
fn range_limits_are_inclusive() {
    let p = format!(
        r#"{{"device_id":"{IMEI}","timestamp":"{TS}","latitude":-90,"longitude":180,"altitude":-32768,"angle":360,"speed":65535,"satellites":255,"priority":2,"event_io_id":65535}}"#
    );
    let r = decode_payload(p.as_bytes()).unwrap();
    assert_eq!((r.latitude, r.longitude), (-90.0, 180.0));
    assert_eq!(r.altitude, Some(-32768));
    assert_eq!(r.angle, Some(360));
    assert_eq!(r.speed, Some(65535));
    assert_eq!(r.satellites, Some(255));
    assert_eq!(r.priority, Some(2));
    assert_eq!(r.event_io_id, Some(65535));
    let p = payload_with(r#""altitude":32767,"angle":0,"speed":0,"satellites":0,"priority":0"#);
    assert_eq!(decode_payload(p.as_bytes()).unwrap().altitude, Some(32767));
}

#[test]
fn whole_numbers_written_as_floats_are_accepted() {
    let r = decode_payload(payload_with(r#""speed":86.0,"altitude":-1e1"#).as_bytes()).unwrap();
    assert_eq!(r.speed, Some(86));
    assert_eq!(r.altitude, Some(-10));
    let r = decode_payload(payload_with(r#""attributes":{"1":4.0,"2":-0}"#).as_bytes()).unwrap();
    assert_eq!(
        r.attributes,
        vec![
            (1, AttributeValue::Number(4)),
            (2, AttributeValue::Number(0))
        ]
    );
}

#[test]
fn attribute_numbers_span_the_i64_range() {
    let p = payload_with(&format!(
        r#""attributes":{{"1":{},"2":{}}}"#,
        i64::MIN,
        i64::MAX
    ));
    let r = decode_payload(p.as_bytes()).unwrap();
    assert_eq!(
        r.attributes,
        vec![
            (1, AttributeValue::Number(i64::MIN)),
            (2, AttributeValue::Number(i64::MAX))
        ]
    );
}

#[test]
fn attributes_are_sorted_by_id() {
    let r =
        decode_payload(payload_with(r#""attributes":{"500":1,"7":2,"65535":3,"0":4}"#).as_bytes())
            .unwrap();
    let ids: Vec<u16> = r.attributes.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![0, 7, 500, 65535]);
}

#[test]
fn sentinels_decode() {
    let p = payload_with(
        r#""attributes":{"1":{"__bigint":"-170141183460469231731687303715884105728"},"2":{"__bigint":"0"},"3":{"__buffer_b64":""},"4":{"__bigint":"007"}}"#,
    );
    let r = decode_payload(p.as_bytes()).unwrap();
    assert_eq!(r.attributes[0].1, AttributeValue::BigInt(i128::MIN));
    assert_eq!(r.attributes[1].1, AttributeValue::BigInt(0));
    assert_eq!(r.attributes[2].1, AttributeValue::Bytes(vec![]));
    assert_eq!(r.attributes[3].1, AttributeValue::BigInt(7));
}

#[test]
fn coordinates_may_be_integers_or_exponents() {
    let r = decode_payload(
        payload_with("")
            .replace("41.3", "1e-7")
            .replace("19.8", "-180")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!((r.latitude, r.longitude), (1e-7, -180.0));
}

#[test]
fn decoder_is_reusable_after_errors_and_large_payloads() {
    let mut d = Decoder::new();
    assert!(d.decode_payload(b"{").is_err());
    let big = vec![7u8; 2 << 20];
    let mut r = example_record();
    r.attributes = vec![(1, AttributeValue::Bytes(big))];
    assert_eq!(d.decode_payload(encode_payload(&r).as_bytes()).unwrap(), r);
    assert_eq!(
        d.decode_payload(EXAMPLE.as_bytes()).unwrap(),
        example_record()
    );
}

// ---- malformed: the entry ----

#[test]
fn missing_payload() {
    let mut fields = entry("");
    fields.retain(|(k, _)| *k != "payload");
    let err = decode_entry(fields).unwrap_err();
    assert_eq!(err.field(), "payload");
    assert_eq!(err.problem(), &Problem::MissingEntryField);
}

#[test]
fn payload_not_json() {
    assert!(matches!(
        rejects("{\"device_id\":", "payload"),
        Problem::InvalidJson(_)
    ));
    assert!(matches!(rejects("", "payload"), Problem::InvalidJson(_)));
    assert!(matches!(
        rejects("not json", "payload"),
        Problem::InvalidJson(_)
    ));
    assert!(matches!(
        rejects(&format!("{} x", payload_with("")), "payload"),
        Problem::InvalidJson(_)
    ));
}

#[test]
fn payload_not_utf8_is_not_json() {
    let mut fields: Vec<(&str, Vec<u8>)> = entry(&payload_with(""))
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    fields[3].1 = payload_with(r#""x":"#).into_bytes();
    let pos = fields[3].1.len() - 1;
    fields[3].1.splice(pos..pos, *b"\"\xff\"");
    let err = decode_entry(fields).unwrap_err();
    assert_eq!(err.field(), "payload");
}

#[test]
fn payload_not_an_object() {
    assert_eq!(
        rejects("[1,2]", "payload"),
        Problem::WrongType {
            expected: "a JSON object",
            found: "an array"
        }
    );
    assert!(matches!(
        rejects("null", "payload"),
        Problem::WrongType { .. }
    ));
    assert!(matches!(
        rejects("\"x\"", "payload"),
        Problem::WrongType { .. }
    ));
}

#[test]
fn payload_too_deep_is_rejected_not_recursed() {
    let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(rejects(&deep, "payload"), Problem::InvalidJson(_)));
}

#[test]
fn duplicate_entry_field() {
    let mut fields = entry(&payload_with(""));
    fields.push(("payload", payload_with("")));
    assert_eq!(decode_entry(fields).unwrap_err().field(), "payload");
    let mut fields = entry(&payload_with(""));
    fields.push(("ts", TS.to_owned()));
    assert_eq!(
        decode_entry(fields).unwrap_err().problem(),
        &Problem::DuplicateEntryField
    );
}

#[test]
fn entry_device_id_missing() {
    let mut fields = entry(&payload_with(""));
    fields.retain(|(k, _)| *k != "device_id");
    let err = decode_entry(fields).unwrap_err();
    assert_eq!(err.field(), "device_id");
    assert_eq!(err.problem(), &Problem::MissingEntryField);
}

#[test]
fn entry_device_id_empty() {
    let mut fields = entry(&payload_with(""));
    fields[1].1.clear();
    let err = decode_entry(fields).unwrap_err();
    assert_eq!(err.field(), "device_id");
    assert_eq!(err.problem(), &Problem::Empty);
}

#[test]
fn entry_device_id_not_utf8() {
    let p = payload_with("");
    let fields: Vec<(&[u8], &[u8])> =
        vec![(b"device_id", b"35630\xff"), (b"payload", p.as_bytes())];
    let err = decode_entry(fields).unwrap_err();
    assert_eq!(err.field(), "device_id");
    assert_eq!(err.problem(), &Problem::NotUtf8);
}

#[test]
fn device_id_mismatch() {
    let p = payload_with("").replace(IMEI, "356307042441014");
    let problem = rejects(&p, "device_id");
    assert_eq!(
        problem,
        Problem::Mismatch {
            entry: IMEI.to_owned(),
            payload: "356307042441014".to_owned()
        }
    );
}

#[test]
fn entry_ts_disagrees_with_payload() {
    let mut fields = entry(&payload_with(""));
    fields[0].1 = "2026-05-02T11:00:00.001Z".to_owned();
    let err = decode_entry(fields).unwrap_err();
    assert_eq!(err.field(), "ts");
    assert!(matches!(err.problem(), Problem::Mismatch { .. }), "{err}");
}

#[test]
fn entry_ts_does_not_parse() {
    let mut fields = entry(&payload_with(""));
    fields[0].1 = "yesterday".to_owned();
    let err = decode_entry(fields).unwrap_err();
    assert_eq!(err.field(), "ts");
    assert!(matches!(err.problem(), Problem::BadTimestamp { .. }));
}

// ---- malformed: device_id and timestamp in the payload ----

#[test]
fn payload_device_id_missing() {
    let p = format!(r#"{{"timestamp":"{TS}","latitude":1,"longitude":2}}"#);
    assert_eq!(rejects(&p, "device_id"), Problem::Missing);
    let p = format!(r#"{{"device_id":null,"timestamp":"{TS}","latitude":1,"longitude":2}}"#);
    assert_eq!(rejects(&p, "device_id"), Problem::Missing);
}

#[test]
fn payload_device_id_empty() {
    let p = format!(r#"{{"device_id":"","timestamp":"{TS}","latitude":1,"longitude":2}}"#);
    assert_eq!(rejects(&p, "device_id"), Problem::Empty);
}

#[test]
fn payload_device_id_wrong_type() {
    let p =
        format!(r#"{{"device_id":356307042441013,"timestamp":"{TS}","latitude":1,"longitude":2}}"#);
    assert_eq!(
        rejects(&p, "device_id"),
        Problem::WrongType {
            expected: "a string",
            found: "a number"
        }
    );
}

#[test]
fn device_id_and_alias_both_given() {
    assert_eq!(
        rejects_payload_field(&format!(r#""deviceId":"{IMEI}""#), "device_id"),
        Problem::Duplicate
    );
}

#[test]
fn timestamp_missing() {
    let p = format!(r#"{{"device_id":"{IMEI}","latitude":1,"longitude":2}}"#);
    assert_eq!(rejects(&p, "timestamp"), Problem::Missing);
}

#[test]
fn timestamp_does_not_parse() {
    for bad in [
        "2026-05-02 11:00:00",
        "2026-02-30T00:00:00Z",
        "",
        "1714647600000",
    ] {
        let p = payload_with("").replace(TS, bad);
        assert!(
            matches!(rejects(&p, "timestamp"), Problem::BadTimestamp { .. }),
            "{bad}"
        );
    }
}

#[test]
fn timestamp_wrong_type() {
    let p = payload_with("").replace(&format!("\"{TS}\""), "1714647600000");
    assert!(matches!(
        rejects(&p, "timestamp"),
        Problem::WrongType { .. }
    ));
}

#[test]
fn timestamp_and_alias_both_given() {
    assert_eq!(
        rejects_payload_field(&format!(r#""ts":"{TS}""#), "timestamp"),
        Problem::Duplicate
    );
}

// ---- malformed: coordinates ----

#[test]
fn latitude_missing() {
    let p = format!(r#"{{"device_id":"{IMEI}","timestamp":"{TS}","longitude":2}}"#);
    assert_eq!(rejects(&p, "latitude"), Problem::Missing);
}

#[test]
fn longitude_missing() {
    let p = format!(r#"{{"device_id":"{IMEI}","timestamp":"{TS}","latitude":2,"longitude":null}}"#);
    assert_eq!(rejects(&p, "longitude"), Problem::Missing);
}

#[test]
fn latitude_out_of_range() {
    let p = payload_with("").replace("41.3", "91.2");
    let err = decode_entry(entry(&p)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"field "latitude": 91.2 outside [-90, 90]"#
    );
    let p = payload_with("").replace("41.3", "-90.0000001");
    assert!(matches!(
        rejects(&p, "latitude"),
        Problem::OutOfRange { .. }
    ));
}

#[test]
fn longitude_out_of_range() {
    let p = payload_with("").replace("19.8", "-180.5");
    assert_eq!(
        rejects(&p, "longitude"),
        Problem::OutOfRange {
            value: "-180.5".to_owned(),
            min: -180,
            max: 180
        }
    );
    let p = payload_with("").replace("19.8", "18446744073709551615");
    assert!(matches!(
        rejects(&p, "longitude"),
        Problem::OutOfRange { .. }
    ));
}

#[test]
fn coordinate_not_finite() {
    // JSON has no NaN/Infinity literals; an overflowing exponent is the only way in.
    let p = payload_with("").replace("41.3", "1e999");
    let err = decode_entry(entry(&p)).unwrap_err();
    assert!(
        err.field() == "latitude" || err.field() == "payload",
        "{err}"
    );
}

#[test]
fn coordinate_wrong_type() {
    let p = payload_with("").replace("41.3", "\"41.3\"");
    assert_eq!(
        rejects(&p, "latitude"),
        Problem::WrongType {
            expected: "a number",
            found: "a string"
        }
    );
}

// ---- malformed: optional fields ----

#[test]
fn altitude_out_of_range() {
    assert!(matches!(
        rejects_payload_field(r#""altitude":32768"#, "altitude"),
        Problem::OutOfRange { .. }
    ));
    assert!(matches!(
        rejects_payload_field(r#""altitude":-32769"#, "altitude"),
        Problem::OutOfRange { .. }
    ));
}

#[test]
fn angle_out_of_range() {
    assert_eq!(
        rejects_payload_field(r#""angle":361"#, "angle"),
        Problem::OutOfRange {
            value: "361".to_owned(),
            min: 0,
            max: 360
        }
    );
    assert!(matches!(
        rejects_payload_field(r#""angle":-1"#, "angle"),
        Problem::OutOfRange { .. }
    ));
}

#[test]
fn speed_out_of_range() {
    assert!(matches!(
        rejects_payload_field(r#""speed":65536"#, "speed"),
        Problem::OutOfRange { .. }
    ));
    assert!(matches!(
        rejects_payload_field(r#""speed":-1"#, "speed"),
        Problem::OutOfRange { .. }
    ));
}

#[test]
fn satellites_out_of_range() {
    assert!(matches!(
        rejects_payload_field(r#""satellites":256"#, "satellites"),
        Problem::OutOfRange { .. }
    ));
}

#[test]
fn priority_out_of_range() {
    assert_eq!(
        rejects_payload_field(r#""priority":3"#, "priority"),
        Problem::OutOfRange {
            value: "3".to_owned(),
            min: 0,
            max: 2
        }
    );
}

#[test]
fn event_io_id_out_of_range() {
    assert!(matches!(
        rejects_payload_field(r#""event_io_id":65536"#, "event_io_id"),
        Problem::OutOfRange { .. }
    ));
    assert!(matches!(
        rejects_payload_field(r#""event_io_id":18446744073709551615"#, "event_io_id"),
        Problem::OutOfRange { .. }
    ));
}

#[test]
fn optional_field_not_whole() {
    assert_eq!(
        rejects_payload_field(r#""speed":86.5"#, "speed"),
        Problem::NotWhole {
            value: "86.5".to_owned()
        }
    );
    assert!(matches!(
        rejects_payload_field(r#""altitude":0.1"#, "altitude"),
        Problem::NotWhole { .. }
    ));
}

#[test]
fn optional_field_wrong_type() {
    assert_eq!(
        rejects_payload_field(r#""satellites":"11""#, "satellites"),
        Problem::WrongType {
            expected: "a whole number",
            found: "a string"
        }
    );
    assert!(matches!(
        rejects_payload_field(r#""priority":true"#, "priority"),
        Problem::WrongType { .. }
    ));
    assert!(matches!(
        rejects_payload_field(r#""angle":[270]"#, "angle"),
        Problem::WrongType { .. }
    ));
}

#[test]
fn payload_key_given_twice() {
    assert_eq!(
        rejects_payload_field(r#""latitude":1"#, "latitude"),
        Problem::Duplicate
    );
    assert_eq!(
        rejects_payload_field(r#""speed":1,"speed":1"#, "speed"),
        Problem::Duplicate
    );
}

// ---- malformed: attributes ----

#[test]
fn attributes_wrong_type() {
    assert_eq!(
        rejects_payload_field(r#""attributes":[1,2]"#, "attributes"),
        Problem::WrongType {
            expected: "an object",
            found: "an array"
        }
    );
}

#[test]
fn attribute_key_not_an_io_id() {
    for key in [
        "abc",
        "-1",
        "65536",
        "1.5",
        "",
        " 1",
        "+1",
        "021",
        "99999999999",
    ] {
        let p = payload_with(&format!(r#""attributes":{{"{key}":1}}"#));
        assert_eq!(
            rejects(&p, "attributes"),
            Problem::BadAttributeKey {
                key: key.to_owned()
            },
            "{key:?}"
        );
    }
}

#[test]
fn attribute_key_given_twice() {
    assert_eq!(
        rejects_payload_field(r#""attributes":{"21":1,"66":2,"21":3}"#, "attributes.21"),
        Problem::Duplicate
    );
}

#[test]
fn attribute_number_not_whole() {
    assert_eq!(
        rejects_payload_field(r#""attributes":{"9":1.5}"#, "attributes.9"),
        Problem::NotWhole {
            value: "1.5".to_owned()
        }
    );
}

#[test]
fn attribute_number_above_i64() {
    assert_eq!(
        rejects_payload_field(
            r#""attributes":{"16":18446744073709551615}"#,
            "attributes.16"
        ),
        Problem::NotAnInteger {
            value: "18446744073709551615".to_owned()
        }
    );
    assert!(matches!(
        rejects_payload_field(
            r#""attributes":{"16":9223372036854775808}"#,
            "attributes.16"
        ),
        Problem::NotAnInteger { .. }
    ));
    assert!(matches!(
        rejects_payload_field(r#""attributes":{"16":1e300}"#, "attributes.16"),
        Problem::NotAnInteger { .. }
    ));
}

#[test]
fn attribute_value_wrong_type() {
    for v in ["\"4\"", "null", "true", "[4]"] {
        let p = payload_with(&format!(r#""attributes":{{"21":{v}}}"#));
        assert!(
            matches!(rejects(&p, "attributes.21"), Problem::WrongType { .. }),
            "{v}"
        );
    }
}

#[test]
fn sentinel_bigint_not_an_integer_string() {
    for v in ["", "-", "1.5", "+1", " 1", "0x10", "1e3", "abc", "１"] {
        let p = payload_with(&format!(r#""attributes":{{"16":{{"__bigint":"{v}"}}}}"#));
        assert!(
            matches!(rejects(&p, "attributes.16"), Problem::BadBigInt { .. }),
            "{v:?}"
        );
    }
    let too_big = format!("{}0", i128::MAX);
    let p = payload_with(&format!(
        r#""attributes":{{"16":{{"__bigint":"{too_big}"}}}}"#
    ));
    assert!(matches!(
        rejects(&p, "attributes.16"),
        Problem::BadBigInt { .. }
    ));
}

#[test]
fn sentinel_bigint_value_not_a_string() {
    assert!(matches!(
        rejects_payload_field(r#""attributes":{"16":{"__bigint":5}}"#, "attributes.16"),
        Problem::BadSentinel { .. }
    ));
}

#[test]
fn sentinel_buffer_not_base64() {
    for v in [
        "AQIDBA",
        "AQIDBA=",
        "AQ*DBA==",
        "AQIDBA==AA",
        "AQIDBB==",
        "AQID BA==",
    ] {
        let p = payload_with(&format!(
            r#""attributes":{{"385":{{"__buffer_b64":"{v}"}}}}"#
        ));
        assert!(
            matches!(rejects(&p, "attributes.385"), Problem::BadBase64 { .. }),
            "{v:?}"
        );
    }
}

#[test]
fn sentinel_buffer_value_not_a_string() {
    assert!(matches!(
        rejects_payload_field(
            r#""attributes":{"385":{"__buffer_b64":null}}"#,
            "attributes.385"
        ),
        Problem::BadSentinel { .. }
    ));
}

#[test]
fn object_of_another_shape_is_malformed() {
    for v in [
        "{}",
        r#"{"__bigint":"1","__buffer_b64":"AA=="}"#,
        r#"{"__bigint":"1","x":1}"#,
        r#"{"type":"Buffer","data":[1,2]}"#,
        r#"{"__BIGINT":"1"}"#,
    ] {
        let p = payload_with(&format!(r#""attributes":{{"7":{v}}}"#));
        assert!(
            matches!(rejects(&p, "attributes.7"), Problem::BadSentinel { .. }),
            "{v}"
        );
    }
}

// ---- encoding ----

#[test]
fn encodes_like_json_stringify() {
    // What Node.js prints for the contract example built as a JS object (integer-like keys
    // are enumerated in ascending order by JavaScript).
    let want = r#"{"device_id":"356307042441013","timestamp":"2026-05-02T11:00:00.000Z","priority":1,"latitude":41.3275,"longitude":19.8187,"altitude":112,"angle":270,"satellites":11,"speed":86,"event_io_id":0,"attributes":{"16":{"__bigint":"18446744073709551615"},"21":4,"66":12450,"385":{"__buffer_b64":"AQIDBA=="}}}"#;
    assert_eq!(encode_payload(&example_record()), want);
}

#[test]
fn encode_entry_field_order_and_values() {
    let fields = encode_entry(&example_record(), EntryCodec::Codec16);
    let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, ["ts", "device_id", "codec", "payload"]);
    assert_eq!(fields[0].1, TS);
    assert_eq!(fields[1].1, IMEI);
    assert_eq!(fields[2].1, "16");
}

#[test]
fn encode_leaves_out_absent_optionals() {
    let r = StreamRecord::new(IMEI, datetime!(2026-05-02 11:00 UTC), -0.0, 1.0);
    assert_eq!(
        encode_payload(&r),
        r#"{"device_id":"356307042441013","timestamp":"2026-05-02T11:00:00.000Z","latitude":0,"longitude":1,"attributes":{}}"#
    );
}

#[test]
fn entry_codec_text() {
    for c in [EntryCodec::Codec8, EntryCodec::Codec8E, EntryCodec::Codec16] {
        assert_eq!(c.as_str().parse::<EntryCodec>(), Ok(c));
        assert_eq!(c.to_string(), c.as_str());
    }
    assert!("8e".parse::<EntryCodec>().is_err());
}

#[test]
fn timestamp_ms_floors() {
    let r = StreamRecord::new(IMEI, datetime!(1969-12-31 23:59:59.9995 UTC), 0.0, 0.0);
    assert_eq!(r.timestamp_ms(), -1);
    assert_eq!(example_record().timestamp_ms(), 1_777_719_600_000);
}

// ---- round trips ----

#[track_caller]
fn round_trip(r: &StreamRecord) {
    let fields = encode_entry(r, EntryCodec::Codec8E);
    assert_eq!(&decode_entry(fields).unwrap(), r);
}

#[test]
fn round_trips_the_example() {
    round_trip(&example_record());
}

#[test]
fn round_trips_u64_max_and_negative_bigints() {
    let mut r = example_record();
    r.attributes = vec![
        (1, AttributeValue::BigInt(u64::MAX.into())),
        (2, AttributeValue::BigInt(-1)),
        (3, AttributeValue::BigInt(i128::MIN)),
        (4, AttributeValue::BigInt(i128::MAX)),
        (5, AttributeValue::Number(i64::MIN)),
        (6, AttributeValue::Number(u32::MAX.into())),
    ];
    round_trip(&r);
}

#[test]
fn round_trips_empty_and_large_buffers() {
    let mut r = example_record();
    r.attributes = vec![
        (0, AttributeValue::Bytes(vec![])),
        (
            65535,
            AttributeValue::Bytes((0..=255).cycle().take(100_000).collect()),
        ),
    ];
    round_trip(&r);
}

#[test]
fn round_trips_awkward_values() {
    let mut r = StreamRecord::new(
        "dev\"ice\\\n\u{1}é",
        datetime!(1970-01-01 00:00:00.000000001 UTC),
        -1e-7,
        179.9999999,
    );
    r.altitude = Some(i16::MIN);
    round_trip(&r);
    r.timestamp = datetime!(-9999-01-01 00:00 UTC);
    round_trip(&r);
}
