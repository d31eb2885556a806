//! Hand-built frames: every codec decoded and encoded, the wiki's worked examples (their
//! CRCs recomputed here), and one frame per error with the offset it must name.

use teltonika_codec::avl::MAX_TIMESTAMP_MS;
use teltonika_codec::{
    AvlCodec, AvlPacket, Datagram, DecodeOptions, Error, GprsCodec, GprsMessage, Imei, IoElement,
    IoList, IoValue, TcpFrame, TcpFrameView, UdpAck, crc16, datagrams, decode_avl_ack,
    decode_datagram, decode_imei, decode_imei_reply, decode_tcp_frame, encode_avl_ack,
    encode_imei_reply,
};

use crate::support::{hex, sample_packet, sample_record, vector};

/// Wraps a data field into a TCP frame with a correct length and CRC.
fn frame(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0];
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&u32::from(crc16(data)).to_be_bytes());
    out
}

/// The data field of a TCP frame.
fn data(frame: &[u8]) -> Vec<u8> {
    frame[8..frame.len() - 4].to_vec()
}

fn encode(packet: AvlPacket) -> Vec<u8> {
    TcpFrame::Avl(packet).encode().unwrap()
}

fn imei() -> Imei {
    "352093081452251".parse().unwrap()
}

#[test]
fn wiki_examples_carry_the_crc_we_compute() {
    // Each worked example's CRC field equals CRC-16/ARC of its data field, recomputed here.
    for (id, crc) in [
        ("wiki-c8-ex1", 0xC7CF),
        ("wiki-c8-ex2", 0xF22A),
        ("wiki-c8-ex3", 0x252C),
        ("wiki-c8e-ex1", 0x2994),
        ("wiki-c16-ex1", 0x5FB3),
        ("wiki-c12-getinfo-cmd", 0x4312),
        ("wiki-c12-getinfo-resp", 0xC78F),
        ("wiki-c12-getio-cmd", 0x00CB),
        ("wiki-c14-getver-cmd", 0xD2C1),
        ("wiki-c14-ack-resp", 0x7AAE),
    ] {
        let bytes = vector(id);
        assert_eq!(crc16(&data(&bytes)), crc, "{id}");
        assert_eq!(
            &bytes[bytes.len() - 4..],
            &u32::from(crc).to_be_bytes(),
            "{id}"
        );
        let (frame, consumed) = decode_tcp_frame(&bytes).unwrap();
        assert_eq!(consumed, bytes.len(), "{id}");
        assert_eq!(frame.to_owned().encode().unwrap(), bytes, "{id}");
    }
}

#[test]
fn wiki_codec8_example_field_by_field() {
    let bytes = vector("wiki-c8-ex1");
    let (TcpFrameView::Avl(packet), _) = decode_tcp_frame(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(packet.codec(), AvlCodec::Codec8);
    let record = packet.records().next().unwrap();
    assert_eq!(
        record.timestamp(),
        time::macros::datetime!(2019-06-10 10:04:46 UTC)
    );
    assert_eq!(record.priority() as u8, 1);
    assert_eq!(record.event_io_id(), 1);
    assert_eq!(record.io_total(), 5);
    let io: Vec<_> = record.io().map(|e| e.to_owned()).collect();
    assert_eq!(
        io,
        [
            IoElement {
                id: 0x15,
                value: IoValue::U8(3)
            },
            IoElement {
                id: 0x01,
                value: IoValue::U8(1)
            },
            IoElement {
                id: 0x42,
                value: IoValue::U16(0x5E0F)
            },
            IoElement {
                id: 0xF1,
                value: IoValue::U32(0x601A)
            },
            IoElement {
                id: 0x4E,
                value: IoValue::U64(0)
            },
        ]
    );
    assert_eq!(
        encode_avl_ack(u32::from(packet.record_count())).to_vec(),
        hex("00000001")
    );
}

#[test]
fn wiki_codec16_generation_type_and_codec14_imei() {
    let bytes = vector("wiki-c16-ex1");
    let (TcpFrameView::Avl(packet), _) = decode_tcp_frame(&bytes).unwrap() else {
        panic!()
    };
    let record = packet.records().next().unwrap();
    assert_eq!(
        record.generation_type(),
        Some(teltonika_codec::GenerationType::OnChange)
    );
    assert_eq!(record.event_io_id(), 11);

    let bytes = vector("wiki-c14-getver-cmd");
    let (TcpFrameView::Gprs(message), _) = decode_tcp_frame(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(message.codec(), GprsCodec::Codec14);
    assert_eq!(message.imei(), Some(imei()));
    assert_eq!(message.payload(), b"getver");
    assert_eq!(message.message_type(), GprsMessage::COMMAND);
    let ours = TcpFrame::Gprs(GprsMessage::command_to(imei(), "getver"))
        .encode()
        .unwrap();
    assert_eq!(ours, bytes);
}

#[test]
fn every_avl_codec_round_trips_with_every_value_width() {
    for codec in [AvlCodec::Codec8, AvlCodec::Codec8Ext, AvlCodec::Codec16] {
        let packet = sample_packet(codec, 3);
        let bytes = encode(packet.clone());
        let (frame, consumed) = decode_tcp_frame(&bytes).unwrap();
        assert_eq!(consumed, bytes.len());
        assert_eq!(frame.to_owned(), TcpFrame::Avl(packet.clone()), "{codec}");
        let TcpFrameView::Avl(view) = frame else {
            panic!()
        };
        let record = view.records().next().unwrap();
        assert_eq!(record.gps().altitude, -6);
        assert_eq!(record.gps().latitude(), -41.3275);
        assert_eq!(record.timestamp_ms() % 1000, 123);
        // The IO total counts the NX elements in 8E.
        assert_eq!(usize::from(record.io_total()), packet.records[0].io.len());
        assert_eq!(record.io().len(), packet.records[0].io.len());
    }
}

#[test]
fn every_gprs_codec_round_trips() {
    let at = time::macros::datetime!(2023-11-08 10:40:36 UTC);
    let messages = [
        (GprsMessage::command("getinfo"), GprsCodec::Codec12),
        (
            GprsMessage {
                message_type: 0x06,
                timestamp: Some(at),
                imei: None,
                payload: b"GTSL|6|1".to_vec(),
            },
            GprsCodec::Codec13,
        ),
        (
            GprsMessage::command_to(imei(), "getver"),
            GprsCodec::Codec14,
        ),
        (
            GprsMessage {
                message_type: GprsMessage::NACK,
                timestamp: None,
                imei: Some(imei()),
                payload: vec![],
            },
            GprsCodec::Codec14,
        ),
        (
            GprsMessage {
                message_type: 0x0B,
                timestamp: Some(at),
                imei: Some(imei()),
                payload: b"Hello!\n".to_vec(),
            },
            GprsCodec::Codec15,
        ),
        // A photo-sized payload (Codec 12 chunks exceed 2 KB).
        (
            GprsMessage {
                message_type: 0x0D,
                timestamp: None,
                imei: None,
                payload: vec![0xD8; 3000],
            },
            GprsCodec::Codec12,
        ),
    ];
    for (message, codec) in messages {
        assert_eq!(message.codec(), codec);
        let bytes = TcpFrame::Gprs(message.clone()).encode().unwrap();
        assert_eq!(bytes[8], codec.id());
        let (frame, consumed) = decode_tcp_frame(&bytes).unwrap();
        assert_eq!(consumed, bytes.len());
        assert_eq!(frame.to_owned(), TcpFrame::Gprs(message));
    }
}

#[test]
fn udp_datagrams_split_and_ack() {
    let wiki = vector("wiki-udp-c8-ex1");
    let mut read = wiki.clone();
    read.extend_from_slice(&vector("wiki-udp-c8e-ex1"));
    read.extend_from_slice(&vector("wiki-udp-c16-corrected"));
    let acks: Vec<_> = datagrams(&read)
        .map(|d| d.unwrap().ack(1).encode())
        .collect();
    assert_eq!(acks[0].to_vec(), hex("0005CAFE010501"));
    assert_eq!(acks[1].to_vec(), hex("0005CAFE010701"));
    assert_eq!(acks[2].to_vec(), hex("0005CAFE010101"));
    assert_eq!(
        UdpAck::decode(&acks[0]).unwrap().0,
        UdpAck {
            packet_id: 0xCAFE,
            avl_packet_id: 5,
            accepted: 1
        }
    );

    // An invalid whole datagram in the middle is reported, and the next one still decodes.
    let mut bad = vector("wiki-udp-c8-ex1");
    bad[8 + 15 + 2 + 8] = 7; // priority of the first record
    let mut read = wiki.clone();
    read.extend_from_slice(&bad);
    read.extend_from_slice(&wiki);
    let results: Vec<_> = datagrams(&read).collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok());
    match &results[1] {
        Err(Error::BadPriority { offset, value: 7 }) => assert_eq!(*offset, wiki.len() + 33),
        other => panic!("{other:?}"),
    }

    // Old firmware's 0x00 not-usable byte is kept, not rejected.
    let mut old = wiki.clone();
    old[4] = 0;
    let (view, _) = decode_datagram(&old).unwrap();
    assert_eq!(view.not_usable(), 0);
    assert_eq!(view.to_owned().encode().unwrap(), old);

    let datagram = Datagram {
        packet_id: 1,
        not_usable: 1,
        avl_packet_id: 2,
        imei: imei(),
        packet: sample_packet(AvlCodec::Codec8Ext, 2),
    };
    let bytes = datagram.encode().unwrap();
    assert_eq!(decode_datagram(&bytes).unwrap().0.to_owned(), datagram);
}

#[test]
fn handshake_and_acks() {
    let bytes = vector("wiki-imei-handshake");
    assert_eq!(
        decode_imei(&bytes).unwrap().0.to_string(),
        "356307042441013"
    );
    assert_eq!(encode_imei_reply(true), 1);
    assert_eq!(decode_imei_reply(&[1]).unwrap(), (true, 1));
    assert_eq!(decode_avl_ack(&hex("00000002")).unwrap(), (2, 4));
    assert!(matches!(
        decode_avl_ack(&[0, 0]),
        Err(Error::Incomplete { needed: 2 })
    ));
    assert!(matches!(
        UdpAck::decode(&hex("0005CAFE020501")),
        Err(Error::BadReply { offset: 4, .. })
    ));
    assert!(matches!(
        UdpAck::decode(&hex("0006CAFE010501")),
        Err(Error::LengthMismatch { offset: 0, .. })
    ));
}

fn strict(bytes: &[u8]) -> Error {
    decode_tcp_frame(bytes).expect_err("must be rejected")
}

/// A valid one-record codec 8 frame's data field to mutate.
fn c8_data() -> Vec<u8> {
    data(&vector("wiki-c8-ex2"))
}

#[test]
fn each_error_names_what_and_where() {
    // Bad preamble, judged as soon as a non-zero byte arrives.
    let mut bytes = vector("wiki-c8-ex2");
    bytes[3] = 1;
    assert!(matches!(
        strict(&bytes),
        Error::BadPreamble {
            offset: 0,
            found: 1
        }
    ));
    assert!(matches!(
        strict(&[0, 7]),
        Error::BadPreamble {
            offset: 0,
            found: 0x0007_0000
        }
    ));

    // Length over the cap, from the 8-byte header alone.
    assert!(matches!(
        strict(&hex("00000000FFFFFFF0")),
        Error::FrameTooLong {
            offset: 4,
            declared: 0xFFFF_FFFC,
            max: 65536
        }
    ));
    let small = DecodeOptions::strict().with_max_frame_len(1280);
    assert!(matches!(
        small.decode_tcp_frame(&hex("0000000000000500")),
        Err(Error::FrameTooLong {
            declared: 1292,
            max: 1280,
            ..
        })
    ));

    // Incomplete: exact once the header is in.
    let bytes = vector("wiki-c8-ex2");
    assert!(matches!(
        strict(&bytes[..5]),
        Error::Incomplete { needed: 3 }
    ));
    assert!(matches!(
        strict(&bytes[..20]),
        Error::Incomplete { needed: 32 }
    ));

    // CRC mismatch with both values.
    let mut bytes = vector("wiki-c8-ex2");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    match strict(&bytes) {
        Error::CrcMismatch {
            offset: 48,
            expected: 0xF22B,
            computed: 0xF22A,
        } => {}
        other => panic!("{other:?}"),
    }
    let mut bytes = vector("wiki-c8-ex2");
    bytes[48] = 1; // upper half of the CRC field must be zero
    assert!(matches!(
        strict(&bytes),
        Error::CrcMismatch {
            expected: 0x0100_F22A,
            ..
        }
    ));

    // Unknown codec.
    let mut d = c8_data();
    d[0] = 0x09;
    assert!(matches!(
        strict(&frame(&d)),
        Error::UnknownCodec {
            offset: 8,
            codec: 9
        }
    ));

    // Record counts that disagree; zero records.
    let mut d = c8_data();
    let n = d.len();
    d[n - 1] = 2;
    assert!(matches!(
        strict(&frame(&d)),
        Error::CountMismatch {
            offset: 9,
            first: 1,
            second: 2
        }
    ));
    assert!(matches!(
        strict(&frame(&[0x08, 0, 0])),
        Error::ZeroRecords { offset: 9 }
    ));

    // Priority > 2 (offset of the priority byte: 8 header + 2 + 8 timestamp).
    let mut d = c8_data();
    d[10] = 3;
    assert!(matches!(
        strict(&frame(&d)),
        Error::BadPriority {
            offset: 18,
            value: 3
        }
    ));

    // Timestamp past what a time type holds.
    let mut d = c8_data();
    d[2..10].copy_from_slice(&(MAX_TIMESTAMP_MS + 1).to_be_bytes());
    assert!(matches!(
        strict(&frame(&d)),
        Error::TimestampOutOfRange { offset: 10, .. }
    ));

    // IO total that disagrees with the groups (offset of the total: 10 + 24 + 1).
    let mut d = c8_data();
    d[27] = 4;
    assert!(matches!(
        strict(&frame(&d)),
        Error::IoTotalMismatch {
            offset: 35,
            declared: 4,
            counted: 3
        }
    ));

    // A record that runs past the data field.
    let d = c8_data();
    let mut cut = d[..d.len() - 3].to_vec();
    cut.push(1);
    let error = strict(&frame(&cut));
    assert!(
        matches!(
            error,
            Error::Truncated {
                what: "IO group count",
                offset: 45,
                needed: 1
            }
        ),
        "{error:?}"
    );

    // Trailing bytes between the last record and the second count.
    let mut d = c8_data();
    let n = d.len();
    d.insert(n - 1, 0xAA);
    assert!(matches!(
        strict(&frame(&d)),
        Error::TrailingBytes {
            offset: 47,
            count: 1
        }
    ));

    // Codec 16: generation type > 7.
    let bytes = encode(sample_packet(AvlCodec::Codec16, 1));
    let mut d = data(&bytes);
    d[2 + 24 + 2] = 8;
    assert!(matches!(
        strict(&frame(&d)),
        Error::BadGenerationType {
            offset: 36,
            value: 8
        }
    ));

    // Codec 8E: a total that leaves out the NX elements (Teltonika's published formula) is
    // rejected: every real frame counts them.
    let bytes = encode(sample_packet(AvlCodec::Codec8Ext, 1));
    let mut d = data(&bytes);
    d[2 + 24 + 2..2 + 24 + 4].copy_from_slice(&4u16.to_be_bytes());
    assert!(matches!(
        strict(&frame(&d)),
        Error::IoTotalMismatch {
            declared: 4,
            counted: 6,
            ..
        }
    ));

    // GPRS: size that disagrees with the data length, quantity other than 1, bad BCD IMEI.
    let d = data(&vector("wiki-c12-getinfo-cmd"));
    let mut bad = d.clone();
    bad[6] = 8;
    assert!(matches!(
        strict(&frame(&bad)),
        Error::LengthMismatch {
            offset: 11,
            what: "command size",
            declared: 8,
            actual: 7
        }
    ));
    let mut bad = d.clone();
    bad[1] = 2;
    let n = bad.len();
    bad[n - 1] = 2;
    assert!(matches!(
        strict(&frame(&bad)),
        Error::BadQuantity {
            offset: 9,
            value: 2
        }
    ));
    let mut bad = data(&vector("wiki-c14-getver-cmd"));
    bad[7] = 0x0A;
    assert!(matches!(
        strict(&frame(&bad)),
        Error::BadImei { offset: 15, .. }
    ));
    let codec13 = frame(&hex("0D01050000000300000001"));
    assert!(matches!(
        strict(&codec13),
        Error::Truncated {
            what: "timestamp",
            offset: 15,
            needed: 1
        }
    ));

    // UDP: length past the read, GPRS codec in a datagram, non-digit IMEI.
    let wiki = vector("wiki-udp-c8-ex1");
    assert!(matches!(
        decode_datagram(&wiki[..40]),
        Err(Error::LengthMismatch {
            offset: 0,
            declared: 61,
            actual: 38,
            ..
        })
    ));
    let mut bad = wiki.clone();
    bad[23] = 0x0C;
    assert!(matches!(
        decode_datagram(&bad),
        Err(Error::UnexpectedCodec {
            offset: 23,
            codec: 0x0C,
            ..
        })
    ));
    let mut bad = wiki.clone();
    bad[9] = b'x';
    assert!(matches!(
        decode_datagram(&bad),
        Err(Error::BadImei { offset: 9, .. })
    ));

    // Handshake.
    assert!(matches!(
        decode_imei(b"\x00\x0E35630704244101"),
        Err(Error::BadImei { offset: 0, .. })
    ));
}

#[test]
fn errors_render_as_lowercase_sentences_with_the_offset() {
    let error = Error::CrcMismatch {
        offset: 62,
        expected: 0xC7CE,
        computed: 0xC7CF,
    };
    assert_eq!(
        error.to_string(),
        "CRC mismatch at byte 62: frame carries 0x0000c7ce, data gives 0xc7cf"
    );
    assert_eq!(error.offset(), Some(62));
    assert!(Error::Incomplete { needed: 1 }.is_incomplete());
}

#[test]
fn lenient_mode_decodes_bad_crc_count_and_total_and_lists_them() {
    // Wiki codec 8 example 3 (two records): first count says 3, second 2, the first
    // record's IO total says 5, and the CRC is left as it was.
    let bytes = vector("wiki-c8-ex3");
    let mut bad = bytes.clone();
    bad[9] = 3;
    bad[8 + 2 + 24 + 1] = 5;
    let decoded = DecodeOptions::lenient().decode_tcp_frame(&bad).unwrap();
    assert_eq!(decoded.consumed, bad.len());
    let TcpFrameView::Avl(packet) = decoded.value else {
        panic!()
    };
    assert_eq!(packet.record_count(), 2);
    assert_eq!(
        packet.records().map(|r| r.io().count()).collect::<Vec<_>>(),
        [1, 1]
    );
    assert_eq!(packet.records().next().unwrap().io_total(), 5);
    let kinds: Vec<_> = decoded
        .deviations
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert!(matches!(decoded.deviations[0], Error::CrcMismatch { .. }));
    assert!(matches!(
        decoded.deviations[1],
        Error::IoTotalMismatch {
            offset: 35,
            declared: 5,
            counted: 1
        }
    ));
    assert!(matches!(
        decoded.deviations[2],
        Error::CountMismatch {
            first: 3,
            second: 2,
            ..
        }
    ));
    assert!(matches!(
        decoded.deviations[3],
        Error::RecordsFound {
            declared: 3,
            found: 2,
            ..
        }
    ));
    // Strict mode: the first defect is an error.
    assert!(matches!(strict(&bad), Error::CrcMismatch { .. }));

    // A valid frame decodes the same in both modes, with no deviation.
    let decoded = DecodeOptions::lenient().decode_tcp_frame(&bytes).unwrap();
    assert!(decoded.deviations.is_empty());
    assert_eq!(
        decoded.value.to_owned(),
        decode_tcp_frame(&bytes).unwrap().0.to_owned()
    );

    // Lenient GPRS: quantities off, CRC off.
    let mut d = data(&vector("wiki-c12-getinfo-cmd"));
    d[1] = 0;
    let gprs = frame(&d);
    let decoded = DecodeOptions::lenient().decode_tcp_frame(&gprs).unwrap();
    assert_eq!(decoded.deviations.len(), 2);

    // Lenient UDP: zero count.
    let mut bad = vector("wiki-udp-c8-ex1");
    bad[24] = 0;
    let decoded = DecodeOptions::lenient().decode_datagram(&bad).unwrap();
    assert_eq!(decoded.value.packet().record_count(), 1);
    assert!(matches!(
        decoded.deviations[1],
        Error::ZeroRecords { offset: 24 }
    ));

    // What lenient mode does not tolerate: a record with a bad priority.
    let mut bad = bytes.clone();
    bad[8 + 2 + 8] = 9;
    assert!(matches!(
        DecodeOptions::lenient().decode_tcp_frame(&bad),
        Err(Error::BadPriority { .. })
    ));
}

#[test]
fn encoding_refuses_what_the_wire_cannot_carry() {
    let refuse = |packet: AvlPacket| TcpFrame::Avl(packet).encode().expect_err("must refuse");
    // What an IO list for a codec cannot hold.
    let too_wide = [IoElement {
        id: 300,
        value: IoValue::U8(1),
    }];
    assert!(matches!(
        IoList::from_elements(AvlCodec::Codec8, &too_wide),
        Err(Error::Unencodable(_))
    ));
    let nx = [IoElement {
        id: 1,
        value: IoValue::Bytes(vec![]),
    }];
    assert!(matches!(
        IoList::from_elements(AvlCodec::Codec16, &nx),
        Err(Error::Unencodable(_))
    ));
    let many = vec![
        IoElement {
            id: 1,
            value: IoValue::U8(1)
        };
        256
    ];
    assert!(matches!(
        IoList::from_elements(AvlCodec::Codec16, &many),
        Err(Error::Unencodable(_))
    ));
    // A record built for 8E with an NX value cannot be sent in codec 8; one with a wide id
    // cannot either.
    let mut packet = sample_packet(AvlCodec::Codec8Ext, 1);
    packet.codec = AvlCodec::Codec8;
    assert!(matches!(refuse(packet), Error::Unencodable(_)));
    let mut packet = sample_packet(AvlCodec::Codec16, 1);
    packet.codec = AvlCodec::Codec8;
    packet.records[0].generation_type = None;
    packet.records[0].io = IoList::from_elements(AvlCodec::Codec16, &too_wide).unwrap();
    assert!(matches!(refuse(packet), Error::Unencodable(_)));
    // Records built for another codec are transcoded when they fit.
    let mut packet = sample_packet(AvlCodec::Codec8, 2);
    packet.codec = AvlCodec::Codec8Ext;
    let bytes = encode(packet.clone());
    let (TcpFrameView::Avl(view), _) = decode_tcp_frame(&bytes).unwrap() else {
        panic!()
    };
    let record = view.records().next().unwrap();
    assert_eq!(
        record.io().map(|e| e.to_owned()).collect::<Vec<_>>(),
        packet.records[0].io.to_vec()
    );
    let mut packet = sample_packet(AvlCodec::Codec16, 1);
    packet.records[0].generation_type = None;
    assert!(matches!(refuse(packet), Error::Unencodable(_)));
    let mut packet = sample_packet(AvlCodec::Codec8, 1);
    packet.records[0].timestamp = time::macros::datetime!(1969-12-31 23:59:59 UTC);
    assert!(matches!(refuse(packet), Error::Unencodable(_)));
    assert!(matches!(
        refuse(sample_packet(AvlCodec::Codec8, 0)),
        Error::Unencodable(_)
    ));
    assert!(matches!(
        refuse(sample_packet(AvlCodec::Codec8, 256)),
        Error::Unencodable(_)
    ));
    // Nothing is left behind in the output on error.
    let mut out = vec![1, 2, 3];
    assert!(
        TcpFrame::Avl(sample_packet(AvlCodec::Codec8, 0))
            .encode_into(&mut out)
            .is_err()
    );
    assert_eq!(out, [1, 2, 3]);
    // 255 records is the most a frame holds.
    let bytes = encode(sample_packet(AvlCodec::Codec8, 255));
    assert!(
        bytes.len() > 1280,
        "frames over 1280 bytes are fine under the 64 KiB cap"
    );
    assert!(decode_tcp_frame(&bytes).is_ok());
    let record = sample_record(AvlCodec::Codec8);
    assert_eq!(record.timestamp_ms(), Some(1_777_719_600_123));
}
