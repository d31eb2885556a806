//! From a decoded AVL record (codecs 8, 8E, 16) to the stream record, as tcp-ingestion
//! builds it: coordinates divided by 10^7, 1/2/4-byte IO values as numbers, 8-byte ones as
//! unsigned `BigInt`, NX values as bytes; the Codec 16 generation type is not carried.

use crate::avl::{AvlCodec, AvlRecord, AvlRecordView, Gps, IoValueView, Priority};

use super::{AttributeValue, EntryCodec, StreamRecord};

impl From<AvlCodec> for EntryCodec {
    fn from(codec: AvlCodec) -> Self {
        match codec {
            AvlCodec::Codec8 => Self::Codec8,
            AvlCodec::Codec8Ext => Self::Codec8E,
            AvlCodec::Codec16 => Self::Codec16,
        }
    }
}

impl From<EntryCodec> for AvlCodec {
    fn from(codec: EntryCodec) -> Self {
        match codec {
            EntryCodec::Codec8 => Self::Codec8,
            EntryCodec::Codec8E => Self::Codec8Ext,
            EntryCodec::Codec16 => Self::Codec16,
        }
    }
}

fn attribute(value: IoValueView<'_>) -> AttributeValue {
    match value {
        IoValueView::U8(v) => AttributeValue::Number(v.into()),
        IoValueView::U16(v) => AttributeValue::Number(v.into()),
        IoValueView::U32(v) => AttributeValue::Number(v.into()),
        IoValueView::U64(v) => AttributeValue::BigInt(v.into()),
        IoValueView::Bytes(b) => AttributeValue::Bytes(b.to_vec()),
    }
}

fn build(
    device_id: String,
    timestamp: time::OffsetDateTime,
    priority: Priority,
    gps: Gps,
    event_io_id: u16,
    io: impl Iterator<Item = (u16, AttributeValue)>,
) -> StreamRecord {
    let mut attributes: Vec<(u16, AttributeValue)> = io.collect();
    // Sorted by id like a JavaScript object's integer keys; for an id sent twice the last
    // value wins, as `attributes[id] = value` in tcp-ingestion would have it.
    attributes.sort_by_key(|(id, _)| *id); // stable
    let mut deduped: Vec<(u16, AttributeValue)> = Vec::with_capacity(attributes.len());
    for (id, v) in attributes {
        match deduped.last_mut() {
            Some(last) if last.0 == id => last.1 = v,
            _ => deduped.push((id, v)),
        }
    }
    StreamRecord {
        device_id,
        timestamp: timestamp.to_offset(time::UtcOffset::UTC),
        priority: Some(priority as u8),
        latitude: gps.latitude(),
        longitude: gps.longitude(),
        altitude: Some(gps.altitude),
        angle: Some(gps.angle),
        satellites: Some(gps.satellites),
        speed: Some(gps.speed),
        event_io_id: Some(event_io_id),
        attributes: deduped,
    }
}

impl StreamRecord {
    /// The stream record tcp-ingestion publishes for `record`, received from tracker
    /// `device_id` (its IMEI). The frame's codec goes to [`encode_entry`](super::encode_entry)
    /// (`EntryCodec::from(codec)`).
    ///
    /// ```
    /// use teltonika_codec::avl::{AvlCodec, AvlRecord, Gps, IoElement, IoList, IoValue, Priority};
    /// use teltonika_codec::stream_record::{AttributeValue, StreamRecord};
    ///
    /// let record = AvlRecord {
    ///     timestamp: time::macros::datetime!(2026-05-02 11:00 UTC),
    ///     priority: Priority::High,
    ///     gps: Gps { longitude_raw: 198_187_000, latitude_raw: 413_275_000, altitude: -6,
    ///                angle: 270, satellites: 11, speed: 86 },
    ///     event_io_id: 0,
    ///     generation_type: None,
    ///     io: IoList::from_elements(AvlCodec::Codec8Ext, &[
    ///         IoElement { id: 66, value: IoValue::U16(12450) },
    ///         IoElement { id: 16, value: IoValue::U64(u64::MAX) },
    ///         IoElement { id: 385, value: IoValue::Bytes(vec![1, 2, 3, 4]) },
    ///     ]).unwrap(),
    /// };
    /// let r = StreamRecord::from_avl("356307042441013", &record);
    /// assert_eq!((r.latitude, r.longitude, r.altitude), (41.3275, 19.8187, Some(-6)));
    /// assert_eq!(r.attributes[0], (16, AttributeValue::BigInt(u64::MAX.into())));
    /// assert_eq!(r.attributes[1], (66, AttributeValue::Number(12450)));
    /// ```
    pub fn from_avl(device_id: impl Into<String>, record: &AvlRecord) -> Self {
        build(
            device_id.into(),
            record.timestamp,
            record.priority,
            record.gps,
            record.event_io_id,
            record.io.iter().map(|e| (e.id, attribute(e.value))),
        )
    }

    /// [`from_avl`](Self::from_avl) for a borrowed record view (no intermediate copy).
    pub fn from_avl_view(device_id: impl Into<String>, record: &AvlRecordView<'_>) -> Self {
        build(
            device_id.into(),
            record.timestamp(),
            record.priority(),
            record.gps(),
            record.event_io_id(),
            record.io().map(|e| (e.id, attribute(e.value))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avl::{GenerationType, IoElement, IoList, IoValue};
    use crate::stream_record::{decode_entry, encode_entry};

    fn record() -> AvlRecord {
        AvlRecord {
            timestamp: time::macros::datetime!(2026-05-02 11:00:00.123 UTC),
            priority: Priority::Panic,
            gps: Gps {
                longitude_raw: -1_800_000_000,
                latitude_raw: 1,
                altitude: i16::MIN,
                angle: 360,
                satellites: 0,
                speed: 0,
            },
            event_io_id: 385,
            generation_type: Some(GenerationType::Periodical),
            io: IoList::from_elements(
                AvlCodec::Codec8Ext,
                &[
                    IoElement {
                        id: 21,
                        value: IoValue::U8(255),
                    },
                    IoElement {
                        id: 7,
                        value: IoValue::U32(u32::MAX),
                    },
                    IoElement {
                        id: 16,
                        value: IoValue::U64(u64::MAX),
                    },
                    IoElement {
                        id: 385,
                        value: IoValue::Bytes(vec![]),
                    },
                    IoElement {
                        id: 21,
                        value: IoValue::U16(3),
                    },
                ],
            )
            .unwrap(),
        }
    }

    #[test]
    fn converts_every_value_shape() {
        let r = StreamRecord::from_avl("356307042441013", &record());
        assert_eq!(r.priority, Some(2));
        assert_eq!((r.latitude, r.longitude), (1e-7, -180.0));
        assert_eq!(r.altitude, Some(i16::MIN));
        assert_eq!(r.event_io_id, Some(385));
        assert_eq!(
            r.attributes,
            vec![
                (7, AttributeValue::Number(u32::MAX.into())),
                (16, AttributeValue::BigInt(u64::MAX.into())),
                (21, AttributeValue::Number(3)), // the later value of a repeated id
                (385, AttributeValue::Bytes(vec![])),
            ]
        );
    }

    #[test]
    fn converted_records_round_trip_through_the_stream() {
        let r = StreamRecord::from_avl("356307042441013", &record());
        let fields = encode_entry(&r, AvlCodec::Codec16.into());
        assert_eq!(fields[2].1, "16");
        assert_eq!(decode_entry(fields).unwrap(), r);
    }

    #[test]
    fn codec_names() {
        for c in [AvlCodec::Codec8, AvlCodec::Codec8Ext, AvlCodec::Codec16] {
            assert_eq!(AvlCodec::from(EntryCodec::from(c)), c);
        }
        assert_eq!(EntryCodec::from(AvlCodec::Codec8Ext).as_str(), "8E");
    }
}
