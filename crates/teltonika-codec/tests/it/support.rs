//! Helpers shared by the test modules: hex, the public vectors, a sample of every structure.

use std::sync::OnceLock;

use serde_json::Value;
use teltonika_codec::{
    AvlCodec, AvlPacket, AvlRecord, GenerationType, Gps, IoElement, IoList, IoValue, Priority,
};

pub(crate) fn hex(text: &str) -> Vec<u8> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// `fixtures/teltonika/vectors.json` from the repository root.
pub(crate) fn vectors() -> &'static [Value] {
    static VECTORS: OnceLock<Vec<Value>> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/teltonika/vectors.json"
        );
        let text = std::fs::read_to_string(path).expect("read the vectors");
        serde_json::from_str(&text).expect("parse the vectors")
    })
}

/// The bytes of the vector with this id.
pub(crate) fn vector(id: &str) -> Vec<u8> {
    let vector = vectors()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no vector {id}"));
    hex(vector["hex"].as_str().expect("hex"))
}

/// A record using every field, valid for `codec`.
pub(crate) fn sample_record(codec: AvlCodec) -> AvlRecord {
    let mut io = vec![
        IoElement {
            id: 21,
            value: IoValue::U8(4),
        },
        IoElement {
            id: 66,
            value: IoValue::U16(12_450),
        },
        IoElement {
            id: 241,
            value: IoValue::U32(24_602),
        },
        IoElement {
            id: 16,
            value: IoValue::U64(u64::MAX),
        },
    ];
    if codec == AvlCodec::Codec8Ext {
        io.push(IoElement {
            id: 385,
            value: IoValue::Bytes(vec![1, 2, 3, 4]),
        });
        io.push(IoElement {
            id: 386,
            value: IoValue::Bytes(vec![]),
        });
    }
    AvlRecord {
        timestamp: time::macros::datetime!(2026-05-02 11:00:00.123 UTC),
        priority: Priority::High,
        gps: Gps {
            longitude_raw: 198_187_000,
            latitude_raw: -413_275_000,
            altitude: -6,
            angle: 270,
            satellites: 11,
            speed: 86,
        },
        event_io_id: 21,
        generation_type: (codec == AvlCodec::Codec16).then_some(GenerationType::OnChange),
        io: IoList::from_elements(codec, &io).unwrap(),
    }
}

pub(crate) fn sample_packet(codec: AvlCodec, records: usize) -> AvlPacket {
    AvlPacket {
        codec,
        records: vec![sample_record(codec); records],
    }
}
