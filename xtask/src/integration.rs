//! `cargo xtask integration [NEXTEST ARGS…]`: the service tests only — what CI elsewhere calls.
//!
//! Selection: by convention every test that needs Redis or PostgreSQL lives in a crate's one
//! integration-test binary (`tests/it/main.rs`), and unit tests never touch services. So the
//! service tests are exactly nextest's `kind(test)` set: `cargo nextest run --workspace
//! --profile ci -E 'kind(test)'`, with `REQUIRE_SERVICES=1` (a missing service fails the run
//! instead of skipping). Extra arguments go to nextest, e.g.
//! `cargo xtask integration -p position-writer` or `… -E 'kind(test) & test(outage)'`
//! (a second `-E` narrows: nextest ORs several `-E`, so pass one combined expression).
//!
//! Services come from `TEST_REDIS_URL` / `TEST_DATABASE_URL`, a Docker engine, or the local
//! binaries (docs/testing.md); `bash .ci/run` exports the URLs of this machine's services.

/// The nextest filter selecting the integration-test binaries.
pub(crate) const FILTER: &str = "kind(test)";

/// Entry point from `main.rs`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut extra: Vec<String> = Vec::new();
    if !args
        .iter()
        .any(|a| a == "-E" || a.starts_with("--filterset") || a.starts_with("-E"))
    {
        extra.extend(["-E".to_owned(), FILTER.to_owned()]);
    }
    extra.extend(args.iter().cloned());
    crate::ci::nextest(&extra)
}
