//! Fuzz the stream-record decoder: arbitrary payloads and entries must never panic, and
//! whatever decodes must survive encode → decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teltonika_codec::stream_record::{EntryCodec, decode_entry, decode_payload, encode_entry};

fuzz_target!(|data: &[u8]| {
    // The whole input as a payload.
    if let Ok(record) = decode_payload(data) {
        let again = decode_entry(encode_entry(&record, EntryCodec::Codec8E))
            .expect("an encoded record decodes");
        assert_eq!(again, record);
    }
    // The input split on NUL into entry fields: ts, device_id, payload.
    let mut parts = data.splitn(3, |&b| b == 0);
    let (Some(ts), Some(device_id), Some(payload)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    if let Ok(record) = decode_entry([("ts", ts), ("device_id", device_id), ("payload", payload)]) {
        let again = decode_entry(encode_entry(&record, EntryCodec::Codec16))
            .expect("an encoded record decodes");
        assert_eq!(again, record);
    }
});
