//! Integration tests of position-writer against a real PostgreSQL.
