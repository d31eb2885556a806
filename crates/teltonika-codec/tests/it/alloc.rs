//! Zero heap allocations per record on the view tiers, shown with a counting global
//! allocator (per thread, so tests running in parallel do not disturb each other).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use teltonika_codec::{
    Event, Framer, IoValueView, Step, TcpFrameView, decode_datagram, decode_tcp_frame,
};

use crate::support::{vector, vectors};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a
// const-initialised thread-local Cell, which never allocates.
#[allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; this one only counts"
)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(work: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    work();
    ALLOCATIONS.with(Cell::get) - before
}

/// Reads every field and IO value of every record, as the "read every value" benchmark does.
fn read_everything(frame: &TcpFrameView<'_>) -> u64 {
    let mut sum = 0u64;
    if let TcpFrameView::Avl(packet) = frame {
        for record in packet.records() {
            let gps = record.gps();
            sum = sum
                .wrapping_add(record.timestamp_ms())
                .wrapping_add(record.priority() as u64)
                .wrapping_add(gps.longitude_raw as u64)
                .wrapping_add(gps.latitude_raw as u64)
                .wrapping_add(u64::from(record.event_io_id()));
            for element in record.io() {
                sum = sum
                    .wrapping_add(u64::from(element.id))
                    .wrapping_add(match element.value {
                        IoValueView::Bytes(bytes) => bytes.len() as u64,
                        value => value.as_u64().unwrap_or_default(),
                    });
            }
        }
    }
    sum
}

#[test]
fn view_tiers_allocate_nothing() {
    let frames: Vec<Vec<u8>> = vectors()
        .iter()
        .filter(|v| {
            v["transport"] == "tcp" && v["computed"]["strict_valid"] == true && v["codec"] != "imei"
        })
        .map(|v| crate::support::hex(v["hex"].as_str().unwrap()))
        .collect();
    let datagram = vector("alim-L383");
    let mut stream = vector("wiki-imei-handshake");
    for frame in &frames {
        stream.extend_from_slice(frame);
    }
    let mut sum = 0;
    let mut records = 0;
    let count = allocations_during(|| {
        for frame in &frames {
            let (view, _) = decode_tcp_frame(frame).unwrap();
            if let TcpFrameView::Avl(packet) = view {
                records += packet.records().len();
            }
            sum = read_everything(&view).wrapping_add(sum);
        }
        let (view, _) = decode_datagram(&datagram).unwrap();
        records += view.packet().records().len();
        let mut framer = Framer::new();
        let mut at = 0;
        while at < stream.len() {
            let Step::Ready { event, consumed } = framer.decode(&stream[at..]).unwrap() else {
                panic!()
            };
            if let Event::Frame { frame, .. } = event {
                sum = read_everything(&frame).wrapping_add(sum);
            }
            at += consumed;
        }
    });
    assert!(records > 100, "{records} records");
    assert!(sum > 0);
    assert_eq!(
        count, 0,
        "allocations while decoding {records} records through views"
    );

    // The counter does count: the owned tier allocates.
    let (view, _) = decode_tcp_frame(&frames[0]).unwrap();
    assert!(allocations_during(|| drop(view.to_owned())) > 0);
}
