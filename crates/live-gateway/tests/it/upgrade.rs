//! The upgrade checks: path, upgrade, capacity, Origin, credentials, Directus availability.

use std::time::Duration;

use test_support::directus_stub::Endpoint;

use crate::client::{Options, connect, raw_method_request, raw_request};
use crate::common::{Env, SESSION, cookie, metric, test_config};

fn assert_refusal(response: &crate::client::RawResponse, status: u16, error: &str) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(body, serde_json::json!({ "error": error }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_in_the_protocol_order() {
    let Some(env) = Env::new().await else { return };
    let server = env.start(test_config()).await;
    let addr = server.addr;
    let good = cookie(SESSION);

    // Other path → 404, no upgrade on the path → 426.
    assert_refusal(
        &raw_request(addr, "/nope", true, &[("cookie", &good)]).await,
        404,
        "not-found",
    );
    let plain = raw_request(addr, "/ws", false, &[("cookie", &good)]).await;
    assert_refusal(&plain, 426, "upgrade-required");
    // An upgrade is a GET: the same headers on a POST are no upgrade either.
    let post = raw_method_request(addr, "POST", "/ws", &[("cookie", &good)]).await;
    assert_refusal(&post, 426, "upgrade-required");

    // No credentials → 401 without asking Directus.
    env.stub.reset_counts();
    let unauthorized_before = metric(
        "processor_live_connections_total",
        &["result=\"unauthorized\""],
    );
    assert_refusal(
        &raw_request(addr, "/ws", true, &[]).await,
        401,
        "unauthorized",
    );
    assert_eq!(env.stub.requests(Endpoint::UsersMe), 0);

    // Unknown cookie → Directus 401 → 401.
    assert_refusal(
        &raw_request(addr, "/ws", true, &[("cookie", &cookie("who"))]).await,
        401,
        "unauthorized",
    );
    assert_eq!(env.stub.requests(Endpoint::UsersMe), 1);
    // Expired session ({"data": null}) → 401.
    env.stub.add_cookie("session-old", &env.user);
    env.stub.expire("session-old");
    assert_refusal(
        &raw_request(addr, "/ws", true, &[("cookie", &cookie("session-old"))]).await,
        401,
        "unauthorized",
    );
    assert!(
        metric(
            "processor_live_connections_total",
            &["result=\"unauthorized\""]
        ) >= unauthorized_before + 3.0
    );

    // Cross-site Origin → 403 (before Directus is asked).
    env.stub.reset_counts();
    let cross = raw_request(
        addr,
        "/ws",
        true,
        &[("cookie", &good), ("origin", "https://evil.example")],
    )
    .await;
    assert_refusal(&cross, 403, "forbidden-origin");
    assert_eq!(env.stub.requests(Endpoint::UsersMe), 0);

    // Same origin accepted; Bearer accepted.
    let mut same = Options::cookie(&good);
    same.headers
        .push(("origin".to_owned(), format!("http://{addr}")));
    connect(addr, same).await.expect("same-origin upgrade");
    env.stub.add_bearer("token-ana", &env.user);
    let bearer = Options {
        headers: vec![("authorization".to_owned(), "Bearer token-ana".to_owned())],
        ..Options::default()
    };
    connect(addr, bearer).await.expect("bearer upgrade");

    // Directus failing or malformed → 503.
    env.stub.set_failing(true);
    assert_refusal(
        &raw_request(addr, "/ws", true, &[("cookie", &good)]).await,
        503,
        "unavailable",
    );
    env.stub.set_failing(false);
    env.stub.set_malformed(true);
    assert_refusal(
        &raw_request(addr, "/ws", true, &[("cookie", &good)]).await,
        503,
        "unavailable",
    );
    env.stub.set_malformed(false);
    connect(addr, Options::cookie(&good))
        .await
        .expect("directus back");
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_origins_list_is_exact() {
    let Some(env) = Env::new().await else { return };
    let mut config = test_config();
    config.allowed_origins = vec!["https://rally.example".to_owned()];
    let server = env.start(config).await;
    let good = cookie(SESSION);
    let ok = raw_request(
        server.addr,
        "/ws",
        true,
        &[("cookie", "x"), ("origin", "https://rally.example")],
    )
    .await;
    // Passed the origin step (then refused by Directus as unknown cookie).
    assert_eq!(ok.status, 401);
    let same_host = format!("http://{}", server.addr);
    let refused = raw_request(
        server.addr,
        "/ws",
        true,
        &[("cookie", &good), ("origin", &same_host)],
    )
    .await;
    assert_refusal(&refused, 403, "forbidden-origin");
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_capacity_is_503_and_frees_on_close() {
    let Some(env) = Env::new().await else { return };
    let mut config = test_config();
    config.max_connections = 1;
    let server = env.start(config).await;
    let good = cookie(SESSION);
    let first = connect(server.addr, Options::cookie(&good)).await.unwrap();
    let refused = raw_request(server.addr, "/ws", true, &[("cookie", &good)]).await;
    assert_refusal(&refused, 503, "over-capacity");
    first
        .send_frame(fastwebsockets::Frame::close(1000, b"bye"))
        .await;
    drop(first);
    // The slot comes back once the server has finished the close.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if connect(server.addr, Options::cookie(&good)).await.is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slot never released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_connects_with_one_cookie_coalesce() {
    let Some(env) = Env::new().await else { return };
    // A slow Directus makes the 50 questions overlap.
    env.stub.set_delay(Duration::from_millis(200));
    let server = env.start_with(test_config(), Duration::from_secs(30)).await;
    env.stub.reset_counts();
    let good = cookie(SESSION);
    let mut connects = Vec::new();
    for _ in 0..50 {
        let addr = server.addr;
        let good = good.clone();
        connects.push(tokio::spawn(async move {
            connect(addr, Options::cookie(&good)).await.is_ok()
        }));
    }
    let mut ok = 0;
    for c in connects {
        if c.await.unwrap() {
            ok += 1;
        }
    }
    assert_eq!(ok, 50);
    let asked = env.stub.requests(Endpoint::UsersMe);
    assert!(asked <= 5, "50 connects asked Directus {asked} times");
    server.cancel.cancel();
}
