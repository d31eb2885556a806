//! Data-driven test over the 136 public frames of `fixtures/teltonika/vectors.json`: every
//! vector is decoded and compared with its independent strict decode (`computed`).
//!
//! - `strict_valid` vectors must decode, fill their input exactly, give every field the
//!   `computed` decode gives, encode back to the same bytes, and (AVL) be acknowledged as
//!   their source says.
//! - Invalid vectors must fail with the error [`EXPECTED_ERRORS`] names. Where a frame has
//!   several defects, the crate reports the first in its order of checks (header, codec,
//!   CRC, content), which may differ from the reason `computed` gives; each such entry says so.
//! - Deliberate disagreements with `computed`, all documented in `fixtures/teltonika/README.md`:
//!   codec 0x07 (GH3000) and the frames with a non-standard 16-byte IO group are not part of
//!   the spec and are rejected; UDP IMEIs must be 15 digits (the spec's "bad IMEI"), which
//!   rejects two frames `computed` calls structurally valid.

use serde_json::Value;
use teltonika_codec::{
    Error, Event, Framer, IoValueView, Step, TcpFrameView, decode_datagram, decode_imei,
    decode_tcp_frame, encode_avl_ack, encode_imei,
};

use crate::support::{hex, to_hex, vectors};

/// Vector id → the error variant the crate must return, with why when it is not the
/// `computed` reason.
const EXPECTED_ERRORS: &[(&str, &str)] = &[
    ("wiki-c14-nack-resp", "CrcMismatch"),
    ("traccar-L60", "CrcMismatch"),
    ("traccar-L78", "CrcMismatch"),
    ("traccar-L84", "CrcMismatch"),
    // Data length 0 is followed by more bytes than a frame: the frame is 12 bytes, its data
    // field is empty.
    ("traccar-L102", "Truncated"),
    // Codec 0x07 (GH3000) is not part of the spec.
    ("traccar-L111", "UnknownCodec"),
    ("traccar-L117", "Incomplete"),
    // Codec 0x07 again, one byte short of its declared length.
    ("traccar-L126", "Incomplete"),
    ("traccar-L129", "UnknownCodec"),
    ("traccar-L138", "Incomplete"),
    // A lone 0xFF is a keep-alive for the framer, not a frame.
    ("traccar-L147", "BadPreamble"),
    // Non-standard 16-byte IO group: read as the standard layout, the bytes after the
    // 8-byte group are taken for the next record (priority 232) or the totals disagree.
    ("traccar-L158", "BadPriority"),
    ("traccar-L161", "IoTotalMismatch"),
    ("traccar-L177", "CrcMismatch"),
    ("traccar-L180", "CrcMismatch"),
    ("alim-L356", "BadPreamble"),
    ("alim-L357", "CrcMismatch"),
    ("alim-L358", "CrcMismatch"),
    ("alim-L359", "CrcMismatch"),
    ("alim-L360", "UnknownCodec"),
    ("alim-L361", "UnknownCodec"),
    ("alim-L362", "CrcMismatch"),
    ("alim-L363", "CrcMismatch"),
    ("alim-L364", "CrcMismatch"),
    ("alim-L365", "CrcMismatch"),
    ("alim-L431", "BadImei"),
    ("alim-L432", "LengthMismatch"),
    ("alim-L433", "LengthMismatch"),
    // Its length field declares fewer bytes than it has; the 4 bytes at the declared end
    // are no CRC of it.
    ("cs-c8-random", "CrcMismatch"),
    ("cs-invalid-codec8de-08-InputNotEnoughBytes", "Incomplete"),
    ("cs-invalid-codec8de-08-WrongPreamble", "BadPreamble"),
    ("cs-invalid-codec8de-08-DataFieldLengthTooBig", "Incomplete"),
    ("cs-invalid-codec8de-08-IncorrectCodecId", "UnknownCodec"),
    ("cs-invalid-codec8de-08-IncorrectPriority", "CrcMismatch"),
    ("cs-invalid-codec8de-08-NumberOfDataMismatch", "CrcMismatch"),
    // Also truncated inside, but its CRC is checked first.
    (
        "cs-invalid-codec8de-08-DataFieldLengthAndNumberOfDataMismatch",
        "CrcMismatch",
    ),
    ("cs-invalid-codec8de-08-CrcMismatch", "CrcMismatch"),
    ("cs-invalid-codec8ex-8E-InputNotEnoughBytes", "Incomplete"),
    ("cs-invalid-codec8ex-8E-WrongPreamble", "BadPreamble"),
    ("cs-invalid-codec8ex-8E-DataFieldLengthTooBig", "Incomplete"),
    ("cs-invalid-codec8ex-8E-IncorrectCodecId", "UnknownCodec"),
    ("cs-invalid-codec8ex-8E-IncorrectPriority", "CrcMismatch"),
    ("cs-invalid-codec8ex-8E-NumberOfDataMismatch", "CrcMismatch"),
    (
        "cs-invalid-codec8ex-8E-DataFieldLengthAndNumberOfDataMismatch",
        "CrcMismatch",
    ),
    ("cs-invalid-codec8ex-8E-CrcMismatch", "CrcMismatch"),
    // The length field cuts the last record short.
    ("cs-invalid-udpdecod-08-InputNotEnoughBytes", "Truncated"),
    (
        "cs-invalid-udpdecod-08-PacketLengthMismatch",
        "LengthMismatch",
    ),
    // IMEI length 14: `computed` reads 14 digits and trips on the codec byte after them.
    ("cs-invalid-udpdecod-08-WrongImeiLength", "BadImei"),
    ("cs-invalid-udpdecod-08-IncorrectCodecId", "UnknownCodec"),
    ("cs-invalid-udpdecod-08-IncorrectPriority", "BadPriority"),
    (
        "cs-invalid-udpdecod-08-NumberOfDataMismatch",
        "CountMismatch",
    ),
    ("cs-invalid-udpdecod-8E-InputNotEnoughBytes", "Truncated"),
    (
        "cs-invalid-udpdecod-8E-PacketLengthMismatch",
        "LengthMismatch",
    ),
    ("cs-invalid-udpdecod-8E-WrongImeiLength", "BadImei"),
    ("cs-invalid-udpdecod-8E-IncorrectCodecId", "UnknownCodec"),
    ("cs-invalid-udpdecod-8E-IncorrectPriority", "BadPriority"),
    (
        "cs-invalid-udpdecod-8E-NumberOfDataMismatch",
        "CountMismatch",
    ),
    // `computed` calls these structurally valid; the spec's "bad IMEI" check rejects them
    // (and their source, CSharp-Codec8, asserts they are rejected).
    ("cs-invalid-udpdecod-08-ImeiContainsNonNumbers", "BadImei"),
    ("cs-invalid-udpdecod-8E-ImeiContainsNonNumbers", "BadImei"),
];

fn variant(error: &Error) -> String {
    let debug = format!("{error:?}");
    debug
        .split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

fn check_records(
    records: teltonika_codec::avl::Records<'_>,
    expected: &Value,
) -> Result<(), String> {
    let expected = expected.as_array().ok_or("no computed records")?;
    if records.len() != expected.len() {
        return Err(format!(
            "{} records, computed has {}",
            records.len(),
            expected.len()
        ));
    }
    for (index, (record, want)) in records.zip(expected).enumerate() {
        let gps = record.gps();
        let got = [
            ("timestamp_ms", record.timestamp_ms() as i64),
            ("priority", record.priority() as i64),
            ("longitude_raw", i64::from(gps.longitude_raw)),
            ("latitude_raw", i64::from(gps.latitude_raw)),
            ("altitude_i16", i64::from(gps.altitude)),
            ("angle", i64::from(gps.angle)),
            ("satellites", i64::from(gps.satellites)),
            ("speed_kmh", i64::from(gps.speed)),
            ("event_io_id", i64::from(record.event_io_id())),
            ("n_total_io", i64::from(record.io_total())),
        ];
        for (field, value) in got {
            if int(&want[field]) != value {
                return Err(format!(
                    "record {index}: {field} = {value}, computed {}",
                    want[field]
                ));
            }
        }
        let generation = record.generation_type().map(|g| g as i64);
        if generation != want.get("generation_type").map(int) {
            return Err(format!("record {index}: generation type {generation:?}"));
        }
        let want_utc = want["timestamp_utc"].as_str().unwrap();
        let parsed =
            time::OffsetDateTime::parse(want_utc, &time::format_description::well_known::Rfc3339)
                .unwrap();
        if record.timestamp() != parsed {
            return Err(format!(
                "record {index}: timestamp {}, computed {want_utc}",
                record.timestamp()
            ));
        }
        let io: Vec<Value> = record
            .io()
            .map(|element| match element.value {
                IoValueView::U8(v) => serde_json::json!([element.id, 1, v]),
                IoValueView::U16(v) => serde_json::json!([element.id, 2, v]),
                IoValueView::U32(v) => serde_json::json!([element.id, 4, v]),
                IoValueView::U64(v) => serde_json::json!([element.id, 8, v]),
                IoValueView::Bytes(b) => serde_json::json!([element.id, "x", to_hex(b)]),
            })
            .collect();
        if io != *want["io"].as_array().unwrap() {
            return Err(format!(
                "record {index}: io {io:?}, computed {}",
                want["io"]
            ));
        }
    }
    Ok(())
}

fn check_valid(vector: &Value, bytes: &[u8]) -> Result<(), String> {
    let computed = &vector["computed"];
    let codec = vector["codec"].as_str().unwrap();
    match (vector["transport"].as_str().unwrap(), codec) {
        ("tcp", "imei") => {
            let (imei, consumed) = decode_imei(bytes).map_err(|e| e.to_string())?;
            if consumed != bytes.len() || imei.to_string() != computed["imei"].as_str().unwrap() {
                return Err(format!("imei {imei} consumed {consumed}"));
            }
            if encode_imei(imei) != bytes {
                return Err("handshake does not encode back".into());
            }
        }
        ("tcp", _) => {
            let (frame, consumed) = decode_tcp_frame(bytes).map_err(|e| format!("{e:?}"))?;
            if consumed != bytes.len() {
                return Err(format!("consumed {consumed} of {}", bytes.len()));
            }
            if u64::from(frame.codec_id()) != u64::from_str_radix(codec, 16).unwrap() {
                return Err("codec".into());
            }
            match frame {
                TcpFrameView::Avl(packet) => {
                    if i64::from(packet.record_count()) != int(&computed["records_declared"]) {
                        return Err("record count".into());
                    }
                    check_records(packet.records(), &computed["records"])?;
                    if let Some(ack) = vector["expect"].get("server_ack_hex") {
                        let ours = to_hex(&encode_avl_ack(u32::from(packet.record_count())));
                        if ours != ack.as_str().unwrap() {
                            return Err(format!("ack {ours}, source says {ack}"));
                        }
                    }
                }
                TcpFrameView::Gprs(message) => {
                    let want = &computed["messages"][0];
                    if i64::from(message.message_type()) != int(&want["type"]) {
                        return Err("message type".into());
                    }
                    if to_hex(message.payload()) != want["payload_hex"].as_str().unwrap() {
                        return Err("payload".into());
                    }
                    if message.timestamp_s().map(i64::from) != want.get("timestamp_s").map(int) {
                        return Err("timestamp".into());
                    }
                    let imei = message.imei().map(|imei| to_hex(&imei.to_bcd()));
                    if imei.as_deref() != want.get("imei_bcd").and_then(Value::as_str) {
                        return Err(format!("imei {imei:?}"));
                    }
                }
            }
            let encoded = frame.to_owned().encode().map_err(|e| e.to_string())?;
            if encoded != bytes {
                return Err(format!("encodes to {}", to_hex(&encoded)));
            }
        }
        ("udp", _) => {
            let (datagram, consumed) = decode_datagram(bytes).map_err(|e| format!("{e:?}"))?;
            if consumed != bytes.len() {
                return Err(format!("consumed {consumed} of {}", bytes.len()));
            }
            let header = [
                ("packet_id", i64::from(datagram.packet_id())),
                ("not_usable_byte", i64::from(datagram.not_usable())),
                ("avl_packet_id", i64::from(datagram.avl_packet_id())),
                (
                    "records_declared",
                    i64::from(datagram.packet().record_count()),
                ),
            ];
            for (field, value) in header {
                if int(&computed[field]) != value {
                    return Err(format!("{field} = {value}"));
                }
            }
            if datagram.imei().to_string() != computed["imei"].as_str().unwrap() {
                return Err("imei".into());
            }
            check_records(datagram.packet().records(), &computed["records"])?;
            let encoded = datagram.to_owned().encode().map_err(|e| e.to_string())?;
            if encoded != bytes {
                return Err(format!("encodes to {}", to_hex(&encoded)));
            }
        }
        other => return Err(format!("unexpected transport/codec {other:?}")),
    }
    Ok(())
}

fn decode_error(vector: &Value, bytes: &[u8]) -> Option<Error> {
    match vector["transport"].as_str().unwrap() {
        "udp" => decode_datagram(bytes).err(),
        _ if vector["codec"] == "imei" => decode_imei(bytes).err(),
        // A frame that does not fill its input: the rest is trailing bytes.
        _ => match decode_tcp_frame(bytes) {
            Ok((_, consumed)) if consumed != bytes.len() => Some(Error::TrailingBytes {
                offset: consumed,
                count: bytes.len() - consumed,
            }),
            Ok(_) => None,
            Err(error) => Some(error),
        },
    }
}

#[test]
fn every_public_vector_matches_its_computed_strict_decode() {
    let mut failures = Vec::new();
    let mut valid = 0;
    for vector in vectors() {
        let id = vector["id"].as_str().unwrap();
        let bytes = hex(vector["hex"].as_str().unwrap());
        let expected_error = EXPECTED_ERRORS
            .iter()
            .find(|(name, _)| *name == id)
            .map(|(_, e)| *e);
        let strict_valid = vector["computed"]["strict_valid"].as_bool().unwrap();
        match expected_error {
            None if strict_valid => match check_valid(vector, &bytes) {
                Ok(()) => valid += 1,
                Err(why) => failures.push(format!("{id}: {why}")),
            },
            None => failures.push(format!(
                "{id}: computed says invalid ({}), not in EXPECTED_ERRORS; crate says {:?}",
                vector["computed"]["strict_invalid_reason"],
                decode_error(vector, &bytes)
            )),
            Some(expected) => match decode_error(vector, &bytes) {
                Some(error) if variant(&error) == expected => {}
                other => failures.push(format!("{id}: expected {expected}, got {other:?}")),
            },
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(valid + EXPECTED_ERRORS.len(), vectors().len());
    assert_eq!(valid, 77, "valid vectors");
}

#[test]
fn every_expected_error_names_a_vector() {
    for (id, _) in EXPECTED_ERRORS {
        assert!(vectors().iter().any(|v| v["id"] == *id), "{id}");
    }
}

#[test]
fn the_lone_ff_is_a_keep_alive_for_the_framer() {
    let bytes = crate::support::vector("traccar-L147");
    let mut framer = Framer::after_handshake(Default::default());
    match framer.decode(&bytes).unwrap() {
        Step::Ready {
            event: Event::KeepAlive,
            consumed: 1,
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn all_valid_tcp_vectors_back_to_back_frame_identically() {
    // Every valid TCP frame of the set in one stream, after one handshake.
    let mut stream = crate::support::vector("wiki-imei-handshake");
    let mut expected = Vec::new();
    for vector in vectors() {
        let codec = vector["codec"].as_str().unwrap();
        let id = vector["id"].as_str().unwrap();
        if vector["transport"] == "tcp"
            && vector["computed"]["strict_valid"] == true
            && codec != "imei"
            && !EXPECTED_ERRORS.iter().any(|(name, _)| *name == id)
        {
            let bytes = hex(vector["hex"].as_str().unwrap());
            expected.push(bytes.len());
            stream.extend_from_slice(&bytes);
        }
    }
    let mut framer = Framer::new();
    let mut at = 0;
    let mut lengths = Vec::new();
    while at < stream.len() {
        match framer.decode(&stream[at..]).unwrap() {
            Step::Ready {
                event: Event::Frame { .. },
                consumed,
            } => {
                lengths.push(consumed);
                at += consumed;
            }
            Step::Ready {
                event: Event::Imei(_),
                consumed,
            } => at += consumed,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(lengths, expected);
}
