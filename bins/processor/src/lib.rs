//! The Processor service: configuration from the environment, the wiring of the durable path
//! (stream-consumer → teltonika-codec → position-writer → XACK) and of the live path
//! (live-gateway), the metrics/health server, and the ordered shutdown.
//!
//! What it is NOT for: reusable logic. Consumer-group mechanics live in `stream-consumer`,
//! the durable path's SQL (migrations, writes, device state) in `position-writer`, WebSocket
//! serving and the live path's read-side SQL (snapshot, device→event map) in `live-gateway`;
//! this crate only glues them together. It is the only crate of the workspace that reads the
//! environment.

pub mod app;
pub mod config;
pub mod durable;
pub mod http;
pub mod live;
pub mod shutdown;
pub mod telemetry;
