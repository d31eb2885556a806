//! Fuzz live-protocol's inbound parser: arbitrary frames must never panic; whatever parses
//! must round-trip (client JSON → parse → same message, canonical topic), and every error
//! must map to a protocol error code with a bounded detail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use live_protocol::{
    ErrorCode, MAX_ERROR_DETAIL_CHARS, MAX_INBOUND_MESSAGE_BYTES, ServerMessage,
    parse_client_message,
};

fuzz_target!(|data: &[u8]| {
    match parse_client_message(data) {
        Ok(message) => {
            assert!(data.len() <= MAX_INBOUND_MESSAGE_BYTES);
            let topic = message.topic().as_str();
            assert_eq!(topic, topic.to_ascii_lowercase());
            let again = parse_client_message(message.to_json().as_bytes())
                .expect("a serialised client message parses");
            assert_eq!(again, message);
        }
        Err(error) => {
            assert!(matches!(error.code(), ErrorCode::InvalidMessage | ErrorCode::InvalidTopic));
            assert!(error.detail().chars().count() <= MAX_ERROR_DETAIL_CHARS + 80);
            // The error reply always serialises.
            let reply = ServerMessage::from_inbound_error(&error).to_json_vec();
            assert!(ServerMessage::from_json(&reply).is_ok());
        }
    }
});
