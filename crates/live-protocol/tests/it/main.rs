//! Integration tests of live-protocol (one binary): the client against an in-test server.
