//! The incremental framer: handshake first, exact "need N more", the cap checked from the
//! header, invalid frames skipped exactly, fatal errors for what cannot be resynchronised.

use teltonika_codec::{DecodeOptions, Error, Event, Framer, Step};

use crate::support::vector;

fn ready(step: Step<'_>) -> (Event<'_>, usize) {
    match step {
        Step::Ready { event, consumed } => (event, consumed),
        Step::Incomplete { needed } => panic!("incomplete, {needed} needed"),
    }
}

#[test]
fn handshake_first_then_frames_with_exact_needs() {
    let handshake = vector("wiki-imei-handshake");
    let frame = vector("wiki-c8-ex1");
    let mut framer = Framer::new();
    assert!(framer.expects_imei());
    assert!(matches!(
        framer.decode(&handshake[..1]).unwrap(),
        Step::Incomplete { needed: 1 }
    ));
    assert!(matches!(
        framer.decode(&handshake[..2]).unwrap(),
        Step::Incomplete { needed: 15 }
    ));
    let (event, consumed) = ready(framer.decode(&handshake).unwrap());
    assert!(matches!(event, Event::Imei(imei) if imei.to_string() == "356307042441013"));
    assert_eq!(consumed, 17);
    assert!(!framer.expects_imei());
    for len in 0..8 {
        assert!(
            matches!(framer.decode(&frame[..len]).unwrap(), Step::Incomplete { needed } if needed == 8 - len)
        );
    }
    for len in 8..frame.len() {
        assert!(
            matches!(framer.decode(&frame[..len]).unwrap(), Step::Incomplete { needed } if needed == frame.len() - len)
        );
    }
    let (event, consumed) = ready(framer.decode(&frame).unwrap());
    assert!(matches!(event, Event::Frame { .. }));
    assert_eq!(consumed, frame.len());
}

#[test]
fn a_frame_before_the_handshake_is_a_bad_imei() {
    let mut framer = Framer::new();
    assert!(matches!(
        framer.decode(&vector("wiki-c8-ex1")),
        Err(Error::BadImei { offset: 0, .. })
    ));
}

#[test]
fn the_cap_is_checked_from_the_header_before_buffering() {
    let mut framer = Framer::after_handshake(DecodeOptions::strict().with_max_frame_len(1280));
    // 8 bytes declaring 1269 data bytes (1281 in all): rejected before any data arrives.
    let header = [0, 0, 0, 0, 0, 0, 0x04, 0xF5];
    assert!(matches!(
        framer.decode(&header),
        Err(Error::FrameTooLong {
            declared: 1281,
            max: 1280,
            ..
        })
    ));
    // Exactly at the cap: waits for the data.
    let header = [0, 0, 0, 0, 0, 0, 0x04, 0xF4];
    assert!(matches!(
        framer.decode(&header).unwrap(),
        Step::Incomplete { needed: 1272 }
    ));
    // A hostile 4 GB claim with the default cap.
    let mut framer = Framer::after_handshake(DecodeOptions::strict());
    assert!(matches!(
        framer.decode(&[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
        Err(Error::FrameTooLong { .. })
    ));
}

#[test]
fn an_invalid_frame_is_skipped_exactly_and_reported() {
    let good = vector("wiki-c8-ex2");
    let mut bad = vector("wiki-c8-ex3");
    let last = bad.len() - 1;
    bad[last] ^= 0xFF;
    let gprs_bad = vector("traccar-L177"); // Codec 12 with a bad CRC
    let mut stream = bad.clone();
    stream.extend_from_slice(&gprs_bad);
    stream.push(0xFF);
    stream.extend_from_slice(&good);

    let mut framer = Framer::after_handshake(DecodeOptions::strict());
    let (event, consumed) = ready(framer.decode(&stream).unwrap());
    assert_eq!(consumed, bad.len());
    match event {
        Event::Rejected {
            error: Error::CrcMismatch { .. },
            codec_id: Some(0x08),
        } => {}
        other => panic!("{other:?}"),
    }
    let rest = &stream[consumed..];
    let (event, consumed) = ready(framer.decode(rest).unwrap());
    assert_eq!(consumed, gprs_bad.len());
    assert!(matches!(
        event,
        Event::Rejected {
            codec_id: Some(0x0C),
            ..
        }
    ));
    let rest = &rest[consumed..];
    let (event, consumed) = ready(framer.decode(rest).unwrap());
    assert!(matches!(event, Event::KeepAlive));
    let rest = &rest[consumed..];
    let (event, consumed) = ready(framer.decode(rest).unwrap());
    assert!(matches!(event, Event::Frame { .. }));
    assert_eq!(consumed, rest.len());
}

#[test]
fn a_bad_preamble_cannot_be_resynchronised() {
    let mut stream = vector("wiki-c8-ex2");
    stream[1] = 0x20;
    let mut framer = Framer::after_handshake(DecodeOptions::strict());
    assert!(matches!(
        framer.decode(&stream),
        Err(Error::BadPreamble {
            offset: 0,
            found: 0x0020_0000
        })
    ));
    // Judged on the first non-zero byte, without waiting for the header.
    assert!(matches!(
        framer.decode(&stream[..2]),
        Err(Error::BadPreamble { .. })
    ));
    // And again on the next call: the stream stays failed.
    assert!(framer.decode(&stream).is_err());
}

#[test]
fn lenient_framer_reports_deviations_with_the_frame() {
    let mut bad = vector("wiki-c8-ex3");
    let last = bad.len() - 1;
    bad[last] ^= 0xFF;
    let mut framer = Framer::after_handshake(DecodeOptions::lenient());
    let (event, _) = ready(framer.decode(&bad).unwrap());
    match event {
        Event::Frame { deviations, .. } => {
            assert!(matches!(deviations[..], [Error::CrcMismatch { .. }]))
        }
        other => panic!("{other:?}"),
    }
}
