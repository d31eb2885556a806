//! Property tests: encode → decode is the identity for every structure, decode → encode gives
//! back the input bytes, framing gives the same frames for every split of a stream, and no
//! input makes a decoder panic.

use proptest::collection::vec;
use proptest::prelude::*;
use teltonika_codec::avl::MAX_TIMESTAMP_MS;
use teltonika_codec::{
    AvlCodec, AvlPacket, AvlRecord, Datagram, DecodeOptions, Event, Framer, GenerationType,
    GprsMessage, Gps, Imei, IoElement, IoList, IoValue, Priority, Step, TcpFrame, UdpAck,
    datagrams, decode_avl_ack, decode_datagram, decode_imei, decode_tcp_frame, encode_avl_ack,
    encode_imei,
};
use time::OffsetDateTime;

fn group(value: &IoValue) -> u8 {
    match value {
        IoValue::U8(_) => 0,
        IoValue::U16(_) => 1,
        IoValue::U32(_) => 2,
        IoValue::U64(_) => 3,
        IoValue::Bytes(_) => 4,
    }
}

fn io_value(codec: AvlCodec) -> BoxedStrategy<IoValue> {
    let fixed = prop_oneof![
        any::<u8>().prop_map(IoValue::U8),
        any::<u16>().prop_map(IoValue::U16),
        any::<u32>().prop_map(IoValue::U32),
        any::<u64>().prop_map(IoValue::U64),
    ];
    if codec == AvlCodec::Codec8Ext {
        prop_oneof![4 => fixed, 1 => vec(any::<u8>(), 0..40).prop_map(IoValue::Bytes)].boxed()
    } else {
        fixed.boxed()
    }
}

fn record(codec: AvlCodec) -> impl Strategy<Value = AvlRecord> {
    let max_id = if codec == AvlCodec::Codec8 {
        255
    } else {
        u16::MAX
    };
    let io = vec(
        (0..=max_id, io_value(codec)).prop_map(|(id, value)| IoElement { id, value }),
        0..12,
    );
    (
        0..=MAX_TIMESTAMP_MS,
        0u8..=2,
        any::<(i32, i32, i16, u16, u8, u16)>(),
        0..=max_id,
        0u8..=7,
        io,
    )
        .prop_map(
            move |(millis, priority, gps, event_io_id, generation, mut io)| {
                // The wire groups elements by width: the list keeps them in that order.
                io.sort_by_key(|element| group(&element.value));
                let io = IoList::from_elements(codec, &io).unwrap();
                AvlRecord {
                    timestamp: OffsetDateTime::from_unix_timestamp_nanos(
                        i128::from(millis) * 1_000_000,
                    )
                    .unwrap(),
                    priority: Priority::from_u8(priority).unwrap(),
                    gps: Gps {
                        longitude_raw: gps.0,
                        latitude_raw: gps.1,
                        altitude: gps.2,
                        angle: gps.3,
                        satellites: gps.4,
                        speed: gps.5,
                    },
                    event_io_id,
                    generation_type: (codec == AvlCodec::Codec16)
                        .then(|| GenerationType::from_u8(generation).unwrap()),
                    io,
                }
            },
        )
}

fn codec() -> impl Strategy<Value = AvlCodec> {
    prop_oneof![
        Just(AvlCodec::Codec8),
        Just(AvlCodec::Codec8Ext),
        Just(AvlCodec::Codec16)
    ]
}

fn packet() -> impl Strategy<Value = AvlPacket> {
    codec().prop_flat_map(|codec| {
        vec(record(codec), 1..6).prop_map(move |records| AvlPacket { codec, records })
    })
}

fn imei() -> impl Strategy<Value = Imei> {
    (0..1_000_000_000_000_000u64).prop_map(|value| Imei::new(value).unwrap())
}

fn gprs() -> impl Strategy<Value = GprsMessage> {
    (
        any::<u8>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(imei()),
        vec(any::<u8>(), 0..200),
    )
        .prop_map(|(message_type, seconds, imei, payload)| GprsMessage {
            message_type,
            timestamp: seconds.map(|s| OffsetDateTime::from_unix_timestamp(i64::from(s)).unwrap()),
            imei,
            payload,
        })
}

fn tcp_frame() -> impl Strategy<Value = TcpFrame> {
    prop_oneof![3 => packet().prop_map(TcpFrame::Avl), 1 => gprs().prop_map(TcpFrame::Gprs)]
}

fn datagram() -> impl Strategy<Value = Datagram> {
    (any::<u16>(), any::<u8>(), any::<u8>(), imei(), packet()).prop_map(
        |(packet_id, not_usable, avl_packet_id, imei, packet)| Datagram {
            packet_id,
            not_usable,
            avl_packet_id,
            imei,
            packet,
        },
    )
}

/// What the framer yields, owned, for comparison.
#[derive(Debug, PartialEq)]
enum Seen {
    Imei(Imei),
    KeepAlive,
    Frame(TcpFrame),
}

/// Feeds `stream` in chunks of the given sizes (cycled) and collects what the framer yields.
fn frame_in_chunks(stream: &[u8], chunks: &[usize]) -> Vec<Seen> {
    let mut framer = Framer::new();
    let mut buffer = Vec::new();
    let mut seen = Vec::new();
    let mut fed = 0;
    let mut chunk = chunks.iter().cycle();
    while fed < stream.len() {
        let size = (*chunk.next().unwrap()).min(stream.len() - fed);
        buffer.extend_from_slice(&stream[fed..fed + size]);
        fed += size;
        loop {
            match framer.decode(&buffer).unwrap() {
                Step::Incomplete { needed } => {
                    assert!(needed >= 1);
                    break;
                }
                Step::Ready { event, consumed } => {
                    seen.push(match event {
                        Event::Imei(imei) => Seen::Imei(imei),
                        Event::KeepAlive => Seen::KeepAlive,
                        Event::Frame { frame, deviations } => {
                            assert!(deviations.is_empty());
                            Seen::Frame(frame.to_owned())
                        }
                        Event::Rejected { error, .. } => panic!("{error}"),
                    });
                    buffer.drain(..consumed);
                }
            }
        }
    }
    assert!(buffer.is_empty());
    seen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn tcp_frames_round_trip(frame in tcp_frame()) {
        let bytes = frame.encode().unwrap();
        let (view, consumed) = decode_tcp_frame(&bytes).unwrap();
        prop_assert_eq!(consumed, bytes.len());
        let owned = view.to_owned();
        prop_assert_eq!(&owned, &frame);
        // decode → encode gives back the input bytes.
        prop_assert_eq!(owned.encode().unwrap(), bytes.clone());
        // Lenient decoding of a valid frame is strict decoding, with no deviation.
        let lenient = DecodeOptions::lenient().decode_tcp_frame(&bytes).unwrap();
        prop_assert!(lenient.deviations.is_empty());
        prop_assert_eq!(lenient.value.to_owned(), frame);
    }

    #[test]
    fn datagrams_round_trip(datagram in datagram()) {
        let bytes = datagram.encode().unwrap();
        let (view, consumed) = decode_datagram(&bytes).unwrap();
        prop_assert_eq!(consumed, bytes.len());
        prop_assert_eq!(view.to_owned(), datagram.clone());
        prop_assert_eq!(view.to_owned().encode().unwrap(), bytes.clone());
        let ack = view.ack(view.packet().record_count());
        prop_assert_eq!(UdpAck::decode(&ack.encode()).unwrap(), (ack, UdpAck::LEN));
        prop_assert_eq!(ack.packet_id, datagram.packet_id);
        prop_assert_eq!(ack.avl_packet_id, datagram.avl_packet_id);
    }

    #[test]
    fn several_datagrams_in_one_read_split_by_length(list in vec(datagram(), 1..4)) {
        let mut read = Vec::new();
        for datagram in &list {
            datagram.encode_into(&mut read).unwrap();
        }
        let decoded: Vec<_> = datagrams(&read).map(|d| d.unwrap().to_owned()).collect();
        prop_assert_eq!(decoded, list);
    }

    #[test]
    fn small_structures_round_trip(imei in imei(), accepted in any::<u32>()) {
        let bytes = encode_imei(imei);
        prop_assert_eq!(decode_imei(&bytes).unwrap(), (imei, bytes.len()));
        prop_assert_eq!(imei.to_string().parse::<Imei>().unwrap(), imei);
        prop_assert_eq!(Imei::from_bcd(imei.to_bcd()).unwrap(), imei);
        prop_assert_eq!(decode_avl_ack(&encode_avl_ack(accepted)).unwrap(), (accepted, 4));
    }

    #[test]
    fn framing_is_the_same_for_every_split(
        imei in imei(),
        frames in vec(tcp_frame(), 1..5),
        keep_alives in vec(any::<bool>(), 5),
        chunks in vec(1usize..300, 1..20),
    ) {
        let mut stream = encode_imei(imei).to_vec();
        let mut expected = vec![Seen::Imei(imei)];
        for (frame, keep_alive) in frames.into_iter().zip(keep_alives) {
            if keep_alive {
                stream.push(0xFF);
                expected.push(Seen::KeepAlive);
            }
            frame.encode_into(&mut stream).unwrap();
            expected.push(Seen::Frame(frame));
        }
        prop_assert_eq!(&frame_in_chunks(&stream, &chunks), &expected);
        prop_assert_eq!(&frame_in_chunks(&stream, &[1]), &expected);
        prop_assert_eq!(frame_in_chunks(&stream, &[stream.len()]), expected);
    }

    #[test]
    fn no_input_makes_a_decoder_panic(bytes in vec(any::<u8>(), 0..400)) {
        let _ = decode_tcp_frame(&bytes);
        let _ = DecodeOptions::lenient().decode_tcp_frame(&bytes);
        let _ = decode_datagram(&bytes);
        let _ = DecodeOptions::lenient().decode_datagram(&bytes);
        let _ = datagrams(&bytes).count();
        let _ = decode_imei(&bytes);
        let _ = UdpAck::decode(&bytes);
        let mut framer = Framer::after_handshake(DecodeOptions::lenient());
        let _ = framer.decode(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic_and_views_stay_total(
        frame in tcp_frame(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = frame.encode().unwrap();
        for (index, byte) in flips {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        for options in [DecodeOptions::strict(), DecodeOptions::lenient()] {
            if let Ok(decoded) = options.decode_tcp_frame(&bytes) {
                // Every accessor of a decoded view is total.
                let _ = format!("{:?}", decoded.value);
                let _ = decoded.value.to_owned();
            }
        }
    }
}
