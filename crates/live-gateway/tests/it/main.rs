//! Integration tests of the live gateway.
