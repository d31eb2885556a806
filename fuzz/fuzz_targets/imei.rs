//! Fuzz the small decoders: the IMEI handshake, the server's reply to it, and BCD IMEIs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teltonika_codec::{Imei, decode_imei, decode_imei_reply, encode_imei};

fuzz_target!(|data: &[u8]| {
    if let Ok((imei, consumed)) = decode_imei(data) {
        assert_eq!(&encode_imei(imei)[..], &data[..consumed]);
    }
    let _ = decode_imei_reply(data);
    let _ = Imei::from_ascii(data);
    if let Some(bcd) = data.first_chunk::<8>() {
        if let Ok(imei) = Imei::from_bcd(*bcd) {
            assert_eq!(Imei::from_bcd(imei.to_bcd()).ok(), Some(imei));
        }
    }
});
