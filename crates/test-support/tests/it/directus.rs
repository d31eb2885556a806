//! The Directus stub answers like `directus.md` says, counts requests, and fails on demand.

use std::time::{Duration, Instant};

use serde_json::json;
use test_support::directus_stub::Endpoint;
use test_support::{DirectusStub, StubUser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER_ID: &str = "9f0c1d2e-0000-4000-8000-000000000001";
const EVENT: &str = "3b1f0000-0000-4000-8000-0000000000e1";
const OTHER_EVENT: &str = "3b1f0000-0000-4000-8000-0000000000e2";

/// A minimal HTTP/1.1 GET; returns (status, body).
async fn get(stub: &DirectusStub, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(stub.local_addr())
        .await
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: directus\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap()
}

async fn stub() -> (DirectusStub, StubUser) {
    let stub = DirectusStub::start().await;
    let user = StubUser::new(USER_ID, "ana@example.com");
    stub.add_cookie("cookie-ana", &user);
    stub.add_bearer("token-ana", &user);
    stub.allow(USER_ID, EVENT);
    (stub, user)
}

const ME: &str = "/users/me?fields=id,email,first_name,last_name,role";
const COOKIE: (&str, &str) = ("Cookie", "other=1; directus_session_token=cookie-ana");

#[tokio::test]
async fn users_me_has_directus_shape() {
    let (stub, user) = stub().await;
    let (status, body) = get(&stub, ME, &[COOKIE]).await;
    assert_eq!(status, 200);
    assert_eq!(
        json(&body),
        json!({"data": {"id": USER_ID, "email": "ana@example.com", "first_name": "Test",
                        "last_name": "User", "role": user.role}})
    );
    let (status, _) = get(&stub, ME, &[("Authorization", "Bearer token-ana")]).await;
    assert_eq!(status, 200);
    assert_eq!(get(&stub, ME, &[]).await.0, 401);
    assert_eq!(
        get(&stub, ME, &[("Cookie", "directus_session_token=nope")])
            .await
            .0,
        401
    );
    assert_eq!(
        get(&stub, ME, &[("Authorization", "Bearer nope")]).await.0,
        401
    );

    stub.expire("cookie-ana");
    let (status, body) = get(&stub, ME, &[COOKIE]).await;
    assert_eq!((status, json(&body)), (200, json!({"data": null})));
    stub.revoke("token-ana");
    assert_eq!(
        get(&stub, ME, &[("Authorization", "Bearer token-ana")])
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn events_are_allowed_forbidden_missing_or_unauthorized() {
    let (stub, _) = stub().await;
    let (status, body) = get(
        &stub,
        &format!("/items/events/{EVENT}?fields=id"),
        &[COOKIE],
    )
    .await;
    assert_eq!((status, json(&body)), (200, json!({"data": {"id": EVENT}})));
    assert_eq!(
        get(&stub, &format!("/items/events/{OTHER_EVENT}"), &[COOKIE])
            .await
            .0,
        403
    );
    assert_eq!(
        get(&stub, &format!("/items/events/{EVENT}"), &[]).await.0,
        401
    );
    stub.mark_missing(OTHER_EVENT);
    assert_eq!(
        get(&stub, &format!("/items/events/{OTHER_EVENT}"), &[COOKIE])
            .await
            .0,
        404
    );
    stub.disallow(USER_ID, EVENT);
    assert_eq!(
        get(&stub, &format!("/items/events/{EVENT}"), &[COOKIE])
            .await
            .0,
        403
    );
    assert_eq!(get(&stub, "/server/info", &[COOKIE]).await.0, 404);
}

#[tokio::test]
async fn counts_logs_and_failure_modes() {
    let (stub, _) = stub().await;
    get(&stub, ME, &[COOKIE]).await;
    get(&stub, ME, &[COOKIE]).await;
    get(&stub, &format!("/items/events/{EVENT}"), &[COOKIE]).await;
    assert_eq!(stub.requests(Endpoint::UsersMe), 2);
    assert_eq!(stub.requests(Endpoint::Events), 1);
    assert_eq!(stub.requests(Endpoint::Other), 0);
    let log = stub.request_log();
    assert_eq!(log[0].path_and_query, ME);
    assert_eq!(
        log[0].cookie.as_deref(),
        Some(COOKIE.1),
        "the raw Cookie header is recorded"
    );

    stub.set_failing(true);
    assert_eq!(get(&stub, ME, &[COOKIE]).await.0, 500);
    stub.set_failing(false);
    stub.set_malformed(true);
    let (status, body) = get(&stub, ME, &[COOKIE]).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());
    stub.set_malformed(false);

    stub.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(get(&stub, ME, &[COOKIE]).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    stub.reset_counts();
    assert_eq!(stub.requests(Endpoint::UsersMe), 0);
}
