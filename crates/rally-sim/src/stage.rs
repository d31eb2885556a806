//! The special stage: a winding gravel road generated from a seed.

/// Metres per degree of latitude (WGS84, mean).
const METRES_PER_DEGREE: f64 = 111_320.0;
/// Distance between two route points.
const POINT_SPACING_M: f64 = 40.0;
/// Route points: 400 × 40 m ≈ 16 km, a typical special stage.
const POINTS: usize = 400;

/// A stage: a polyline of route points with their cumulative distance.
#[derive(Debug, Clone)]
pub struct Stage {
    /// `(latitude, longitude, altitude_m)` of each route point, start first.
    points: Vec<(f64, f64, f64)>,
    /// Curvature at each point (radians per metre, absolute): cars slow down in corners.
    curvature: Vec<f64>,
}

impl Stage {
    /// Generates the stage for `seed`: start near Tirana (41.33° N, 19.82° E), a heading that
    /// wanders with smoothly changing curvature (hairpins included), a rolling altitude profile.
    pub fn generate(seed: u64) -> Self {
        let mut rng = SplitMix64(seed ^ 0x5EED_57A6E);
        let (mut lat, mut lon) = (41.3275_f64, 19.8187_f64);
        let mut heading = rng.unit() * std::f64::consts::TAU;
        let mut turn_rate = 0.0_f64; // radians per metre
        let mut points = Vec::with_capacity(POINTS);
        let mut curvature = Vec::with_capacity(POINTS);
        for index in 0..POINTS {
            let altitude =
                300.0 + 120.0 * (index as f64 / 37.0).sin() + 40.0 * (index as f64 / 11.0).cos();
            points.push((lat, lon, altitude));
            curvature.push(turn_rate.abs());
            // Curvature drifts; now and then a tight corner.
            turn_rate = 0.85 * turn_rate + (rng.unit() - 0.5) * 0.012;
            if rng.unit() < 0.03 {
                turn_rate += (rng.unit() - 0.5) * 0.06;
            }
            heading += turn_rate * POINT_SPACING_M;
            let north = POINT_SPACING_M * heading.cos();
            let east = POINT_SPACING_M * heading.sin();
            lat += north / METRES_PER_DEGREE;
            lon += east / (METRES_PER_DEGREE * lat.to_radians().cos());
        }
        Self { points, curvature }
    }

    /// Length of the stage in metres.
    pub fn length_m(&self) -> f64 {
        (self.points.len() - 1) as f64 * POINT_SPACING_M
    }

    /// The route points `(latitude, longitude, altitude_m)`.
    pub fn points(&self) -> &[(f64, f64, f64)] {
        &self.points
    }

    /// Position at `distance` metres from the start (wrapping around: cars loop the stage),
    /// as `(latitude, longitude, altitude_m, course_degrees)`.
    pub fn at(&self, distance: f64) -> (f64, f64, f64, f64) {
        let distance = distance.rem_euclid(self.length_m());
        let segment = ((distance / POINT_SPACING_M) as usize).min(self.points.len() - 2);
        let t = (distance - segment as f64 * POINT_SPACING_M) / POINT_SPACING_M;
        let (lat0, lon0, alt0) = self.points[segment];
        let (lat1, lon1, alt1) = self.points[segment + 1];
        let north = lat1 - lat0;
        let east = (lon1 - lon0) * lat0.to_radians().cos();
        let course = east.atan2(north).to_degrees().rem_euclid(360.0);
        (
            lat0 + (lat1 - lat0) * t,
            lon0 + (lon1 - lon0) * t,
            alt0 + (alt1 - alt0) * t,
            course,
        )
    }

    /// Absolute curvature (radians per metre) at `distance`: 0 on a straight.
    pub fn curvature_at(&self, distance: f64) -> f64 {
        let distance = distance.rem_euclid(self.length_m());
        let index = ((distance / POINT_SPACING_M) as usize).min(self.curvature.len() - 1);
        self.curvature[index]
    }
}

/// A small deterministic generator (SplitMix64): the simulation must be reproducible for a
/// seed, and needs nothing stronger.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_is_deterministic_and_about_16_km() {
        let a = Stage::generate(7);
        let b = Stage::generate(7);
        assert_eq!(a.points(), b.points());
        assert_ne!(a.points(), Stage::generate(8).points());
        assert!((15_000.0..17_000.0).contains(&a.length_m()));
    }

    #[test]
    fn consecutive_points_are_about_40_m_apart() {
        let stage = Stage::generate(1);
        for pair in stage.points().windows(2) {
            let north = (pair[1].0 - pair[0].0) * METRES_PER_DEGREE;
            let east = (pair[1].1 - pair[0].1) * METRES_PER_DEGREE * pair[0].0.to_radians().cos();
            let metres = north.hypot(east);
            assert!((39.0..41.0).contains(&metres), "{metres} m");
        }
    }

    #[test]
    fn positions_wrap_and_courses_are_degrees() {
        let stage = Stage::generate(3);
        let (lat, lon, _, course) = stage.at(stage.length_m() + 10.0);
        let (lat2, lon2, _, _) = stage.at(10.0);
        assert!((lat - lat2).abs() < 1e-9 && (lon - lon2).abs() < 1e-9);
        assert!((0.0..360.0).contains(&course));
    }
}
