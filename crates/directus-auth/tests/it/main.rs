//! Integration tests of directus-auth against the Directus stub (one binary): every outcome,
//! credential forwarding, coalescing, caching and TTL, error paths, revalidation, metrics.
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::sync::Arc;
use std::time::Duration;

use directus_auth::{
    Credentials, DirectusClient, DirectusConfig, DirectusError, EventAccess, Identity,
};
use test_support::directus_stub::Endpoint;
use test_support::{DirectusStub, StubUser};

const EVENT: &str = "3b1f0000-0000-4000-8000-0000000000e1";
const OTHER_EVENT: &str = "3b1f0000-0000-4000-8000-0000000000e2";
const MISSING_EVENT: &str = "3b1f0000-0000-4000-8000-0000000000e3";

fn ana() -> StubUser {
    StubUser::new("9f0c1d2e-0000-4000-8000-000000000001", "ana@example.com")
}

async fn stub() -> DirectusStub {
    let stub = DirectusStub::start().await;
    let ana = ana();
    stub.add_cookie("session-ana", &ana);
    stub.add_bearer("token-ana", &ana);
    stub.allow(&ana.id, EVENT);
    stub.mark_missing(MISSING_EVENT);
    stub
}

fn client(stub: &DirectusStub, ttl_ms: u64) -> DirectusClient {
    let mut config = DirectusConfig::new(stub.url());
    config.cache_ttl = Duration::from_millis(ttl_ms);
    config.timeout = Duration::from_millis(2_000);
    DirectusClient::new(config).unwrap()
}

fn cookie(value: &str) -> Credentials {
    Credentials::cookie(&format!("theme=dark; directus_session_token={value}")).unwrap()
}

#[tokio::test]
async fn who_is_outcomes() {
    let stub = stub().await;
    let client = client(&stub, 0);

    let Identity::User(user) = client.who_is(&cookie("session-ana")).await.unwrap() else {
        panic!("expected a user");
    };
    assert_eq!(user.id, ana().id);
    assert_eq!(user.email.as_deref(), Some("ana@example.com"));
    assert_eq!(user.first_name.as_deref(), Some("Test"));
    assert_eq!(user.role, ana().role);

    let bearer = Credentials::bearer_token("token-ana").unwrap();
    assert!(matches!(
        client.who_is(&bearer).await,
        Ok(Identity::User(_))
    ));

    assert_eq!(
        client.who_is(&cookie("nobody")).await,
        Ok(Identity::Unauthorized)
    );
    stub.expire("session-ana");
    assert_eq!(
        client.who_is(&cookie("session-ana")).await,
        Ok(Identity::Unauthorized),
        "200 {{\"data\":null}} is unauthorized"
    );
}

#[tokio::test]
async fn credentials_are_forwarded_unchanged() {
    let stub = stub().await;
    let client = client(&stub, 0);
    client.who_is(&cookie("session-ana")).await.unwrap();
    client
        .may_see_event(&Credentials::bearer_token("token-ana").unwrap(), EVENT)
        .await
        .unwrap();
    let log = stub.request_log();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[0].path_and_query,
        "/users/me?fields=id,email,first_name,last_name,role"
    );
    assert_eq!(
        log[0].cookie.as_deref(),
        Some("theme=dark; directus_session_token=session-ana")
    );
    assert_eq!(log[0].authorization, None);
    assert_eq!(
        log[1].path_and_query,
        format!("/items/events/{EVENT}?fields=id")
    );
    assert_eq!(log[1].authorization.as_deref(), Some("Bearer token-ana"));
    assert_eq!(log[1].cookie, None);
}

#[tokio::test]
async fn may_see_event_outcomes() {
    let stub = stub().await;
    let client = client(&stub, 0);
    let ana = cookie("session-ana");
    assert_eq!(
        client.may_see_event(&ana, EVENT).await,
        Ok(EventAccess::Allowed)
    );
    assert_eq!(
        client.may_see_event(&ana, &EVENT.to_uppercase()).await,
        Ok(EventAccess::Allowed),
        "uppercase ids are normalised"
    );
    assert_eq!(
        client.may_see_event(&ana, OTHER_EVENT).await,
        Ok(EventAccess::Forbidden)
    );
    assert_eq!(
        client.may_see_event(&ana, MISSING_EVENT).await,
        Ok(EventAccess::NotFound)
    );
    assert_eq!(
        client.may_see_event(&cookie("nobody"), EVENT).await,
        Ok(EventAccess::Unauthorized)
    );
    let before = stub.requests(Endpoint::Events);
    assert_eq!(
        client.may_see_event(&ana, "../users/me").await,
        Err(DirectusError::InvalidEventId)
    );
    assert_eq!(stub.requests(Endpoint::Events), before, "nothing sent");
}

#[tokio::test]
async fn concurrent_identical_questions_are_coalesced() {
    let stub = stub().await;
    stub.set_delay(Duration::from_millis(300));
    let client = client(&stub, 0);
    let ana = cookie("session-ana");

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        let ana = ana.clone();
        tasks.push(tokio::spawn(async move { client.who_is(&ana).await }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Ok(Identity::User(_))));
    }
    assert_eq!(stub.requests(Endpoint::UsersMe), 1);

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        let ana = ana.clone();
        tasks.push(tokio::spawn(async move {
            client.may_see_event(&ana, EVENT).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(EventAccess::Allowed));
    }
    assert_eq!(stub.requests(Endpoint::Events), 1);

    // Different credentials or events are different questions.
    let bearer = Credentials::bearer_token("token-ana").unwrap();
    let (a, b, c) = tokio::join!(
        client.may_see_event(&ana, OTHER_EVENT),
        client.may_see_event(&bearer, EVENT),
        client.may_see_event(&ana, EVENT),
    );
    assert_eq!(
        (a, b, c),
        (
            Ok(EventAccess::Forbidden),
            Ok(EventAccess::Allowed),
            Ok(EventAccess::Allowed)
        )
    );
    assert_eq!(stub.requests(Endpoint::Events), 4);
}

#[tokio::test]
async fn answers_are_cached_until_the_ttl_expires() {
    let stub = stub().await;
    let client = client(&stub, 400);
    let ana_id = ana().id;
    let ana = cookie("session-ana");
    assert!(matches!(client.who_is(&ana).await, Ok(Identity::User(_))));
    assert_eq!(
        client.may_see_event(&ana, OTHER_EVENT).await,
        Ok(EventAccess::Forbidden)
    );
    // The answers are cached: Directus changing its mind is not seen before the TTL...
    stub.allow(&ana_id, OTHER_EVENT);
    stub.revoke("session-ana");
    assert!(matches!(client.who_is(&ana).await, Ok(Identity::User(_))));
    assert_eq!(
        client.may_see_event(&ana, OTHER_EVENT).await,
        Ok(EventAccess::Forbidden)
    );
    assert_eq!(stub.requests(Endpoint::UsersMe), 1);
    assert_eq!(stub.requests(Endpoint::Events), 1);
    // ...and is after it.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(client.who_is(&ana).await, Ok(Identity::Unauthorized));
    assert_eq!(stub.requests(Endpoint::UsersMe), 2);
}

#[tokio::test]
async fn ttl_zero_disables_the_cache() {
    let stub = stub().await;
    let client = client(&stub, 0);
    let ana = cookie("session-ana");
    for _ in 0..3 {
        client.who_is(&ana).await.unwrap();
    }
    assert_eq!(stub.requests(Endpoint::UsersMe), 3);
}

#[tokio::test]
async fn server_errors_are_errors_and_never_cached() {
    let stub = stub().await;
    let client = client(&stub, 60_000);
    let ana = cookie("session-ana");
    stub.set_failing(true);
    assert_eq!(client.who_is(&ana).await, Err(DirectusError::Status(500)));
    assert_eq!(client.who_is(&ana).await, Err(DirectusError::Status(500)));
    assert_eq!(
        client.may_see_event(&ana, EVENT).await,
        Err(DirectusError::Status(500))
    );
    assert_eq!(stub.requests(Endpoint::UsersMe), 2, "errors are not cached");
    stub.set_failing(false);
    assert!(matches!(client.who_is(&ana).await, Ok(Identity::User(_))));
    assert_eq!(
        client.may_see_event(&ana, EVENT).await,
        Ok(EventAccess::Allowed)
    );
}

#[tokio::test]
async fn malformed_body_is_an_error_not_unauthorized() {
    let stub = stub().await;
    let client = client(&stub, 60_000);
    let ana = cookie("session-ana");
    stub.set_malformed(true);
    assert!(matches!(
        client.who_is(&ana).await,
        Err(DirectusError::Malformed(_))
    ));
    stub.set_malformed(false);
    assert!(matches!(client.who_is(&ana).await, Ok(Identity::User(_))));
    assert_eq!(stub.requests(Endpoint::UsersMe), 2);
}

#[tokio::test]
async fn slow_directus_times_out() {
    let stub = stub().await;
    stub.set_delay(Duration::from_millis(1_000));
    let mut config = DirectusConfig::new(stub.url());
    config.timeout = Duration::from_millis(150);
    let client = DirectusClient::new(config).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        client.who_is(&cookie("session-ana")).await,
        Err(DirectusError::Timeout)
    );
    assert!(started.elapsed() < Duration::from_millis(900));
    assert_eq!(
        client.may_see_event(&cookie("session-ana"), EVENT).await,
        Err(DirectusError::Timeout)
    );
}

#[tokio::test]
async fn unreachable_directus_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = DirectusClient::new(DirectusConfig::new(format!("http://{addr}"))).unwrap();
    let error = client.who_is(&cookie("session-ana")).await.unwrap_err();
    assert!(matches!(error, DirectusError::Connect(_)), "{error:?}");
    assert!(!error.to_string().contains("session-ana"));
}

#[tokio::test]
async fn revalidate_asks_once_per_distinct_credential() {
    let stub = stub().await;
    let bob = StubUser::new("9f0c1d2e-0000-4000-8000-000000000002", "bob@example.com");
    stub.add_cookie("session-bob", &bob);
    stub.add_cookie("session-eve", &bob);
    stub.revoke("session-eve");
    let client = client(&stub, 0);
    let connections: Vec<Credentials> = [
        "session-ana",
        "session-bob",
        "session-ana",
        "session-eve",
        "session-ana",
    ]
    .into_iter()
    .map(cookie)
    .collect();
    let answers = client.revalidate(&connections).await;
    assert_eq!(answers.len(), 3);
    assert_eq!(stub.requests(Endpoint::UsersMe), 3);
    let user_of = |creds: &Credentials| match &answers[&creds.key()] {
        Ok(Identity::User(user)) => Some(user.id.clone()),
        Ok(Identity::Unauthorized) => None,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(user_of(&connections[0]), Some(ana().id));
    assert_eq!(user_of(&connections[1]), Some(bob.id));
    assert_eq!(user_of(&connections[3]), None);
}

#[tokio::test]
async fn revalidate_is_never_answered_from_the_cache() {
    let stub = stub().await;
    stub.add_cookie("session-zoe", &ana());
    let client = client(&stub, 60_000);
    let zoe = cookie("session-zoe");
    assert!(matches!(client.who_is(&zoe).await, Ok(Identity::User(_))));
    assert!(matches!(client.who_is(&zoe).await, Ok(Identity::User(_))));
    assert_eq!(
        stub.requests(Endpoint::UsersMe),
        1,
        "the upgrade path is cached"
    );

    // Revoked since: the periodic re-validation must ask Directus, not the cache.
    stub.revoke("session-zoe");
    let answers = client.revalidate([&zoe]).await;
    assert_eq!(answers[&zoe.key()], Ok(Identity::Unauthorized));
    assert_eq!(stub.requests(Endpoint::UsersMe), 2);
    // The fresh answer refreshed the cache.
    assert_eq!(client.who_is(&zoe).await, Ok(Identity::Unauthorized));
    assert_eq!(stub.requests(Endpoint::UsersMe), 2);
}

#[test]
fn metrics_are_registered_at_zero_and_counted() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _guard = metrics::set_default_local_recorder(&recorder);
    // current_thread: every task (the request tasks included) runs on this thread, so the
    // thread-local recorder sees everything.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        directus_auth::describe_metrics();
        let zero = handle.render();
        for line in [
            r#"processor_directus_requests_total{endpoint="users_me",outcome="ok"} 0"#,
            r#"processor_directus_requests_total{endpoint="users_me",outcome="unauthorized"} 0"#,
            r#"processor_directus_requests_total{endpoint="users_me",outcome="error"} 0"#,
            r#"processor_directus_requests_total{endpoint="events",outcome="ok"} 0"#,
            r#"processor_directus_requests_total{endpoint="events",outcome="forbidden"} 0"#,
            r#"processor_directus_requests_total{endpoint="events",outcome="not_found"} 0"#,
            r#"processor_directus_requests_total{endpoint="events",outcome="unauthorized"} 0"#,
            r#"processor_directus_requests_total{endpoint="events",outcome="error"} 0"#,
        ] {
            assert!(zero.contains(line), "missing {line} in\n{zero}");
        }

        let stub = stub().await;
        let client = client(&stub, 0);
        let ana = cookie("session-ana");
        client.who_is(&ana).await.unwrap();
        client.who_is(&cookie("nobody")).await.unwrap();
        client.may_see_event(&ana, OTHER_EVENT).await.unwrap();
        stub.set_failing(true);
        client.may_see_event(&ana, EVENT).await.unwrap_err();
        let text = handle.render();
        for line in [
            r#"processor_directus_requests_total{endpoint="users_me",outcome="ok"} 1"#,
            r#"processor_directus_requests_total{endpoint="users_me",outcome="unauthorized"} 1"#,
            r#"processor_directus_requests_total{endpoint="events",outcome="forbidden"} 1"#,
            r#"processor_directus_requests_total{endpoint="events",outcome="error"} 1"#,
            r#"processor_directus_request_duration_seconds_count{endpoint="users_me"} 2"#,
            r#"processor_directus_request_duration_seconds_count{endpoint="events"} 2"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("session-ana"));
    });
}

#[tokio::test]
async fn an_abandoned_question_still_answers_the_others() {
    let stub = stub().await;
    stub.set_delay(Duration::from_millis(200));
    let client = client(&stub, 0);
    let ana = Arc::new(cookie("session-ana"));
    let first = {
        let (client, ana) = (client.clone(), Arc::clone(&ana));
        tokio::spawn(async move { client.who_is(&ana).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = {
        let (client, ana) = (client.clone(), Arc::clone(&ana));
        tokio::spawn(async move { client.who_is(&ana).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    first.abort();
    assert!(matches!(second.await.unwrap(), Ok(Identity::User(_))));
    assert_eq!(stub.requests(Endpoint::UsersMe), 1);
}
