//! Fuzz the incremental TCP framer: the input, cut into chunks whose sizes come from the
//! input itself, is fed as a stream (handshake first or not, strict or lenient). It must
//! never panic, never report progress without consuming, and never ask for more than the
//! frame-length cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teltonika_codec::{DecodeOptions, Framer, Step};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let options = if mode & 1 == 0 {
        DecodeOptions::strict()
    } else {
        DecodeOptions::lenient()
    };
    let mut framer = if mode & 2 == 0 {
        Framer::with_options(options)
    } else {
        Framer::after_handshake(options)
    };
    let chunk = usize::from(mode >> 2).max(1);

    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    loop {
        match framer.decode(&buf) {
            Ok(Step::Ready { consumed, .. }) => {
                assert!(
                    consumed > 0 && consumed <= buf.len(),
                    "consumed {consumed} of {}",
                    buf.len()
                );
                buf.drain(..consumed);
            }
            Ok(Step::Incomplete { needed }) => {
                assert!(needed > 0);
                assert!(needed <= options.max_frame_len() + 64, "needed {needed}");
                if fed == rest.len() {
                    break;
                }
                let end = (fed + chunk).min(rest.len());
                buf.extend_from_slice(&rest[fed..end]);
                fed = end;
            }
            Err(_) => break, // the stream is unusable: the server closes it
        }
    }
});
