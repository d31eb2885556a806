//! Measures the write statement shapes against a real PostgreSQL (filled in below).

fn main() {}
