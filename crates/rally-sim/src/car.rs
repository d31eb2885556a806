//! A car on the stage: speed from the road ahead, a tracker that samples and reports.

use std::time::Duration;

use teltonika_codec::{AvlCodec, AvlRecord, Gps, IoElement, IoList, IoValue, Priority};
use time::OffsetDateTime;

use crate::stage::{SplitMix64, Stage};

/// IO ids an FMB tracker sends (Teltonika FMB AVL ID list).
mod io_id {
    pub(super) const GSM_SIGNAL: u16 = 21;
    pub(super) const SPEED: u16 = 24;
    pub(super) const TOTAL_ODOMETER: u16 = 16;
    pub(super) const EXTERNAL_VOLTAGE: u16 = 66;
    pub(super) const BATTERY_VOLTAGE: u16 = 67;
    pub(super) const GNSS_STATUS: u16 = 69;
    pub(super) const GNSS_PDOP: u16 = 181;
    pub(super) const GNSS_HDOP: u16 = 182;
    pub(super) const IGNITION: u16 = 239;
    pub(super) const MOVEMENT: u16 = 240;
}

/// What a car is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarState {
    /// Driving the stage.
    Racing,
    /// Stopped on the stage (a puncture, a spin): speed 0, position kept.
    Stopped,
    /// Driving, but its tracker has no GNSS fix (a gorge, a tunnel): it reports the last
    /// known position with 0 satellites and speed 0.
    NoFix,
}

/// One car and its tracker.
#[derive(Debug, Clone)]
pub struct Car {
    imei: String,
    rng: SplitMix64,
    distance_m: f64,
    speed_kmh: f64,
    /// Fastest this driver goes on a straight.
    top_speed_kmh: f64,
    odometer_m: f64,
    state: CarState,
    /// Seconds left in the current stop or fix outage.
    state_left_s: f64,
    /// Whether this car has incidents at all (most do not).
    incident_prone: bool,
    report_period_s: f64,
    since_report_s: f64,
    last_fix: (f64, f64, f64, f64),
}

impl Car {
    /// Car number `index` (0-based): spread along the stage so every car is visible at once.
    pub(crate) fn new(
        index: usize,
        total: usize,
        seed: u64,
        imei: u64,
        reports_per_second: f64,
        stage: &Stage,
    ) -> Self {
        let mut rng = SplitMix64(seed.wrapping_mul(31).wrapping_add(index as u64 + 1));
        let distance_m = stage.length_m() * index as f64 / total.max(1) as f64;
        let report_period_s = (1.0 / reports_per_second) * (1.0 + rng.unit());
        Self {
            imei: format!("{:015}", imei % 1_000_000_000_000_000),
            distance_m,
            speed_kmh: 0.0,
            top_speed_kmh: 110.0 + 40.0 * rng.unit(),
            odometer_m: 20_000_000.0 + 1_000_000.0 * rng.unit(),
            state: CarState::Racing,
            state_left_s: 0.0,
            incident_prone: index % 4 == 3,
            report_period_s,
            since_report_s: report_period_s * rng.unit(),
            last_fix: stage.at(distance_m),
            rng,
        }
    }

    /// The tracker's IMEI (15 digits).
    pub fn imei(&self) -> &str {
        &self.imei
    }

    /// What the car is doing now.
    pub fn state(&self) -> CarState {
        self.state
    }

    /// Seconds between two reports of this car's tracker.
    pub fn report_period(&self) -> Duration {
        Duration::from_secs_f64(self.report_period_s)
    }

    /// Drives for `step` from `now` (sampling at the tracker's period) and returns the records
    /// the tracker took meanwhile.
    pub(crate) fn advance(
        &mut self,
        stage: &Stage,
        now: OffsetDateTime,
        step: Duration,
    ) -> Vec<AvlRecord> {
        let mut records = Vec::new();
        let mut remaining = step.as_secs_f64();
        let mut clock = now;
        while remaining > 0.0 {
            let until_report = self.report_period_s - self.since_report_s;
            let dt = remaining.min(until_report.max(0.0));
            self.drive(stage, dt);
            remaining -= dt;
            clock += time::Duration::seconds_f64(dt);
            self.since_report_s += dt;
            if self.since_report_s >= self.report_period_s {
                self.since_report_s = 0.0;
                records.push(self.sample(stage, clock));
            }
            if dt == 0.0 && remaining > 0.0 && until_report > 0.0 {
                break;
            }
        }
        records
    }

    fn drive(&mut self, stage: &Stage, dt: f64) {
        if dt <= 0.0 {
            return;
        }
        self.state_left_s -= dt;
        if self.state_left_s <= 0.0 {
            self.state = CarState::Racing;
            // An incident now and then: about one per 3 minutes for incident-prone cars.
            if self.incident_prone && self.rng.unit() < dt / 180.0 {
                self.state = if self.rng.unit() < 0.5 {
                    CarState::Stopped
                } else {
                    CarState::NoFix
                };
                self.state_left_s = 15.0 + 30.0 * self.rng.unit();
            }
        }
        if self.state == CarState::Stopped {
            self.speed_kmh = 0.0;
            return;
        }
        // Corner speed from the curvature ahead: v = sqrt(a_lat · r) with ~0.9 g of grip.
        let curvature = stage.curvature_at(self.distance_m + 60.0).max(1e-6);
        let corner_kmh = (0.9 * 9.81 / curvature).sqrt() * 3.6;
        let target = corner_kmh.min(self.top_speed_kmh).max(35.0);
        let accel_kmh_s = if target > self.speed_kmh { 12.0 } else { -25.0 };
        let change = (accel_kmh_s * dt).clamp(
            -(self.speed_kmh - target).abs(),
            (self.speed_kmh - target).abs(),
        );
        self.speed_kmh = (self.speed_kmh + change).max(0.0);
        let metres = self.speed_kmh / 3.6 * dt;
        self.distance_m += metres;
        self.odometer_m += metres;
    }

    fn sample(&mut self, stage: &Stage, at: OffsetDateTime) -> AvlRecord {
        let has_fix = self.state != CarState::NoFix;
        if has_fix {
            self.last_fix = stage.at(self.distance_m);
        }
        let (lat, lon, alt, course) = self.last_fix;
        let speed = if has_fix {
            self.speed_kmh.round() as u16
        } else {
            0
        };
        let moving = self.speed_kmh > 1.0;
        let gps = Gps {
            longitude_raw: (lon * 1e7).round() as i32,
            latitude_raw: (lat * 1e7).round() as i32,
            altitude: alt.round() as i16,
            angle: course.round() as u16 % 360,
            satellites: if has_fix {
                9 + (self.rng.next_u64() % 5) as u8
            } else {
                0
            },
            speed,
        };
        let millis = at.unix_timestamp_nanos() / 1_000_000;
        let timestamp = OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).unwrap_or(at);
        let elements = [
            IoElement {
                id: io_id::IGNITION,
                value: IoValue::U8(1),
            },
            IoElement {
                id: io_id::MOVEMENT,
                value: IoValue::U8(u8::from(moving)),
            },
            IoElement {
                id: io_id::GSM_SIGNAL,
                value: IoValue::U8(3 + (self.rng.next_u64() % 3) as u8),
            },
            IoElement {
                id: io_id::GNSS_STATUS,
                value: IoValue::U8(if has_fix { 1 } else { 2 }),
            },
            IoElement {
                id: io_id::SPEED,
                value: IoValue::U16(speed),
            },
            IoElement {
                id: io_id::EXTERNAL_VOLTAGE,
                value: IoValue::U16(13_600 + (self.rng.next_u64() % 400) as u16),
            },
            IoElement {
                id: io_id::BATTERY_VOLTAGE,
                value: IoValue::U16(4_050 + (self.rng.next_u64() % 60) as u16),
            },
            IoElement {
                id: io_id::GNSS_PDOP,
                value: IoValue::U16(if has_fix { 9 } else { 0 }),
            },
            IoElement {
                id: io_id::GNSS_HDOP,
                value: IoValue::U16(if has_fix { 7 } else { 0 }),
            },
            IoElement {
                id: io_id::TOTAL_ODOMETER,
                value: IoValue::U32(self.odometer_m as u32),
            },
        ];
        AvlRecord {
            timestamp,
            priority: Priority::Low,
            gps,
            event_io_id: 0,
            generation_type: None,
            // Ten fixed-width elements always fit codec 8E: not an outside input.
            io: IoList::from_elements(AvlCodec::Codec8Ext, &elements)
                .unwrap_or_else(|_| IoList::new(AvlCodec::Codec8Ext)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SimConfig, Simulator};

    fn start() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_777_716_000).unwrap()
    }

    #[test]
    fn cars_report_at_their_own_rate_with_sensible_values() {
        let mut sim = Simulator::new(SimConfig {
            cars: 8,
            reports_per_second: 2.0,
            ..SimConfig::default()
        });
        let mut per_car = std::collections::HashMap::<String, usize>::new();
        let mut now = start();
        for _ in 0..600 {
            for (imei, records) in sim.advance(now, Duration::from_millis(100)) {
                for record in &records {
                    assert!(record.gps.speed <= 160, "speed {}", record.gps.speed);
                    assert!(record.gps.angle < 360);
                    assert!(record.timestamp >= now);
                }
                *per_car.entry(imei).or_default() += records.len();
            }
            now += time::Duration::milliseconds(100);
        }
        assert_eq!(per_car.len(), 8, "every car reported in 60 s");
        // 60 s at 1–2 Hz each.
        for (imei, count) in per_car {
            assert!((55..=125).contains(&count), "{imei}: {count} reports");
        }
    }

    #[test]
    fn cars_move_along_the_stage() {
        let mut sim = Simulator::new(SimConfig {
            cars: 2,
            reports_per_second: 1.0,
            ..SimConfig::default()
        });
        let first = sim.advance(start(), Duration::from_secs(3));
        let later = sim.advance(
            start() + time::Duration::seconds(60),
            Duration::from_secs(3),
        );
        let lat = |reports: &[(String, Vec<AvlRecord>)]| reports[0].1[0].gps.latitude_raw;
        assert_ne!(lat(&first), lat(&later));
    }

    #[test]
    fn incidents_stop_cars_and_lose_fixes() {
        let mut sim = Simulator::new(SimConfig {
            cars: 8,
            reports_per_second: 1.0,
            ..SimConfig::default()
        });
        let (mut stopped, mut no_fix) = (0, 0);
        let mut now = start();
        for _ in 0..3600 {
            for (_, records) in sim.advance(now, Duration::from_secs(1)) {
                for record in records {
                    if record.gps.satellites == 0 {
                        no_fix += 1;
                        assert_eq!(record.gps.speed, 0);
                    } else if record.gps.speed == 0 {
                        stopped += 1;
                    }
                }
            }
            now += time::Duration::seconds(1);
        }
        assert!(
            stopped > 0 && no_fix > 0,
            "stopped {stopped}, no fix {no_fix}"
        );
    }
}
