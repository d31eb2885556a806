//! A tokio WebSocket client for the live protocol (work in progress).
