//! Fuzz the one-shot TCP frame decoder (AVL codecs 8/8E/16 and GPRS codecs 12–15), strict and
//! lenient: never panic; a frame accepted strictly encodes back to exactly its input bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teltonika_codec::{DecodeOptions, decode_avl_ack, decode_tcp_frame};

fuzz_target!(|data: &[u8]| {
    if let Ok((frame, consumed)) = decode_tcp_frame(data) {
        let encoded = frame.to_owned().encode().expect("a decoded frame encodes");
        assert_eq!(
            encoded,
            &data[..consumed],
            "decode -> encode changed the bytes"
        );
    }
    let _ = DecodeOptions::lenient().decode_tcp_frame(data);
    let _ = DecodeOptions::strict()
        .with_max_frame_len(64)
        .decode_tcp_frame(data);
    let _ = decode_avl_ack(data);
});
