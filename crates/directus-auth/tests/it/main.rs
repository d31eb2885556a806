//! Integration tests of directus-auth against the Directus stub (one binary).
