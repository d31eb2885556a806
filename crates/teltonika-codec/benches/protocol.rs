//! Binary-protocol benchmarks (placeholder, filled in below).
fn main() {}
