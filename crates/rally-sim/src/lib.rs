//! `rally-sim`: a rally special stage with N cars that report like real Teltonika FMB trackers.
//!
//! What it is for: the demo (`cargo xtask demo`), load benchmarks and teams writing an
//! ingestion server. Each report is a real Codec 8E TCP frame built with `teltonika-codec`,
//! decoded back with the same crate, and published to the Redis Stream exactly as tcp-ingestion
//! does (`XADD <stream> * ts … device_id … codec 8E payload …`), so whatever consumes the
//! stream exercises the whole codec path. [`tcp::send_frames`] speaks the device protocol
//! (IMEI handshake, frames, ACKs) to an ingestion server instead.
//!
//! What it is NOT for: realism beyond what a map and a database can tell: the stage is
//! generated (deterministic for a seed), the physics are simple.
//!
//! ```
//! use rally_sim::{SimConfig, Simulator};
//! let mut sim = Simulator::new(SimConfig { cars: 3, ..SimConfig::default() });
//! let start = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
//! let reports = sim.advance(start, std::time::Duration::from_secs(5));
//! assert!(!reports.is_empty());
//! let frame = rally_sim::encode_frame(&reports[0].1)?;
//! let records = rally_sim::decode_frame(&reports[0].0, &frame)?;
//! assert_eq!(records.len(), reports[0].1.len());
//! # Ok::<(), rally_sim::SimError>(())
//! ```

mod car;
pub mod publish;
mod stage;
pub mod tcp;

pub use car::{Car, CarState};
pub use publish::{PublishStats, Publisher};
pub use stage::Stage;

use std::time::Duration;

use teltonika_codec::stream_record::StreamRecord;
use teltonika_codec::{AvlCodec, AvlPacket, AvlRecord, TcpFrame, TcpFrameView};
use time::OffsetDateTime;

/// What can go wrong while simulating and publishing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The codec refused to encode or decode a frame (a bug in the simulator if it happens).
    #[error("teltonika codec: {0}")]
    Codec(#[from] teltonika_codec::Error),
    /// A decoded frame was not an AVL frame.
    #[error("decoded frame is not AVL data (codec id {0:#04x})")]
    NotAvl(u8),
    /// Redis refused a command or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// The ingestion server's socket failed or it answered something unexpected.
    #[error("ingestion server: {0}")]
    Io(#[from] std::io::Error),
    /// The ingestion server rejected the IMEI or acknowledged fewer records than sent.
    #[error("ingestion server: {0}")]
    Protocol(String),
}

/// How the simulation is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of cars.
    pub cars: usize,
    /// Reports per second of the fastest car; the others report at their own rate, down to
    /// half of it (real trackers are configured per car).
    pub reports_per_second: f64,
    /// Seed of the stage and the cars: the same seed gives the same rally.
    pub seed: u64,
    /// IMEI of the first car; the others follow (kept 15 digits).
    pub first_imei: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            cars: 10,
            reports_per_second: 1.0,
            seed: 2026,
            first_imei: 356_307_042_441_000,
        }
    }
}

/// The rally: a stage and its cars.
#[derive(Debug)]
pub struct Simulator {
    stage: Stage,
    cars: Vec<Car>,
}

impl Simulator {
    /// Builds the stage and places the cars at the start, one minute apart (as rally cars start).
    pub fn new(config: SimConfig) -> Self {
        let stage = Stage::generate(config.seed);
        let rate = config.reports_per_second.clamp(0.01, 1000.0);
        let cars = (0..config.cars)
            .map(|index| {
                let imei = config.first_imei + index as u64;
                Car::new(index, config.cars, config.seed, imei, rate, &stage)
            })
            .collect();
        Self { stage, cars }
    }

    /// The stage the cars drive.
    pub fn stage(&self) -> &Stage {
        &self.stage
    }

    /// The cars, in start order.
    pub fn cars(&self) -> &[Car] {
        &self.cars
    }

    /// The IMEIs of the cars, in start order.
    pub fn imeis(&self) -> Vec<String> {
        self.cars.iter().map(|car| car.imei().to_owned()).collect()
    }

    /// Moves every car `step` forward from `now` and returns, per car that is due, its IMEI
    /// and the records it reports (one per reporting period elapsed; a tracker batches them).
    pub fn advance(
        &mut self,
        now: OffsetDateTime,
        step: Duration,
    ) -> Vec<(String, Vec<AvlRecord>)> {
        let mut reports = Vec::new();
        for car in &mut self.cars {
            let records = car.advance(&self.stage, now, step);
            if !records.is_empty() {
                reports.push((car.imei().to_owned(), records));
            }
        }
        reports
    }
}

/// Encodes records as one Codec 8E TCP frame, as an FMB tracker sends them.
pub fn encode_frame(records: &[AvlRecord]) -> Result<Vec<u8>, SimError> {
    let packet = AvlPacket {
        codec: AvlCodec::Codec8Ext,
        records: records.to_vec(),
    };
    Ok(TcpFrame::Avl(packet).encode()?)
}

/// Decodes a TCP frame strictly and turns its records into stream records for `imei`, as
/// tcp-ingestion does.
pub fn decode_frame(imei: &str, frame: &[u8]) -> Result<Vec<StreamRecord>, SimError> {
    let (view, _consumed) = teltonika_codec::decode_tcp_frame(frame)?;
    match view {
        TcpFrameView::Avl(packet) => Ok(packet
            .records()
            .map(|record| StreamRecord::from_avl_view(imei, &record))
            .collect()),
        other => Err(SimError::NotAvl(other.codec_id())),
    }
}
