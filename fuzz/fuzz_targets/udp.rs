//! Fuzz the UDP datagram decoders: one datagram, several back to back, lenient, and the ACK.
//! Never panic; a datagram accepted strictly encodes back to exactly its input bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teltonika_codec::{DecodeOptions, UdpAck, datagrams, decode_datagram};

fuzz_target!(|data: &[u8]| {
    if let Ok((datagram, consumed)) = decode_datagram(data) {
        let encoded = datagram
            .to_owned()
            .encode()
            .expect("a decoded datagram encodes");
        assert_eq!(
            encoded,
            &data[..consumed],
            "decode -> encode changed the bytes"
        );
    }
    for (i, d) in datagrams(data).enumerate() {
        assert!(i <= data.len(), "more datagrams than bytes");
        if d.is_err() {
            break;
        }
    }
    let _ = DecodeOptions::lenient().decode_datagram(data);
    let _ = UdpAck::decode(data);
});
