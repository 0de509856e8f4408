//! The gateway edge as an attacker tries it: paths written to slip past a route's limit, and
//! routes meant for the services only.

use crate::support::{Db, raw_request};
use serde_json::Value;

crate::support::on_both_document_stores!(
    no_spelling_of_a_limited_path_gets_past_the_edge,
    internal_routes_are_not_reachable_through_the_gateway,
    writes_are_limited_per_user_with_rate_limit_headers,
    forwarded_addresses_count_only_from_trusted_proxies,
);

/// The routes with a limit of their own, as `(method, prefix, last segment, body)`.
const LIMITED: [(&str, &str, &str, &str); 3] = [
    (
        "POST",
        "/api/auth",
        "login",
        r#"{"email":"user@holdfast.test","password":"holdfast-demo"}"#,
    ),
    (
        "POST",
        "/api/auth",
        "signup",
        r#"{"email":"new@example.com","password":"long-enough-password"}"#,
    ),
    (
        "POST",
        "/api/auth",
        "token",
        r#"{"email":"user@holdfast.test","password":"holdfast-demo"}"#,
    ),
];

/// Ways of writing `{prefix}/{last}` that some reader on the way could resolve to it.
fn spellings(prefix: &str, last: &str) -> Vec<String> {
    let (first_letter, rest) = last.split_at(1);
    let encoded_letter = format!("%{:02x}{rest}", first_letter.as_bytes()[0]);
    vec![
        format!("{prefix}/x/../{last}"),
        format!("{prefix}/./{last}"),
        format!("{prefix}/%2e/{last}"),
        format!("{prefix}/%2E/{last}"),
        format!("{prefix}/x/%2e%2e/{last}"),
        format!("{prefix}/x/.%2e/{last}"),
        format!("{prefix}/x/%2E./{last}"),
        format!("{prefix}//{last}"),
        format!("{prefix}%2f{last}"),
        format!("{prefix}%2F{last}"),
        format!("{prefix}%5c{last}"),
        format!("{prefix}/{last}/."),
        format!("{prefix}/{last}/x/.."),
        format!("{prefix}/{last}%2f"),
        format!("{prefix}/{encoded_letter}"),
        format!("{prefix}/x/..%2f{last}"),
        format!("/api/x/..{}/{last}", &prefix[4..]),
    ]
}

async fn no_spelling_of_a_limited_path_gets_past_the_edge(db: Db) {
    let s = crate::support::spawn_in(db, &[("RATE_LIMIT_DISABLED", "false")]).await;
    let mut refused = 0;
    for (method, prefix, last, body) in LIMITED {
        for path in spellings(prefix, last) {
            let answer = raw_request(&s, method, &path, body).await;
            assert_eq!(answer.status, 400, "{method} {path}: {}", answer.head);
            let error: Value = serde_json::from_str(&answer.body).unwrap();
            assert_eq!(error["code"], "INVALID_PATH", "{method} {path}");
            assert!(error["requestId"].is_string());
            refused += 1;
        }
        // The canonical spelling still works, so the refusals above are about the spelling.
        let canonical = raw_request(&s, method, &format!("{prefix}/{last}"), body).await;
        assert!(
            [200, 201].contains(&canonical.status),
            "{method} {prefix}/{last}: {}",
            canonical.head
        );
    }
    assert_eq!(
        refused,
        LIMITED.len() * spellings("/api/auth", "login").len()
    );
}

async fn internal_routes_are_not_reachable_through_the_gateway(db: Db) {
    let s = crate::support::spawn_in(db, &[]).await;
    let event_id = "507f1f77bcf86cd799439011";
    let lock = format!("/api/orders/internal/events/{event_id}/layout-lock");
    for (method, path) in [
        ("POST", lock.clone()),
        ("DELETE", format!("{lock}/some-token")),
        ("GET", "/api/auth/metrics".to_string()),
        ("GET", "/api/orders/metrics".to_string()),
        ("GET", "/api/ml/metrics".to_string()),
        ("GET", "/api/auth/ready".to_string()),
        ("GET", "/api/orders/ready".to_string()),
        ("GET", "/api/ml/ready".to_string()),
    ] {
        let answer = raw_request(&s, method, &path, "").await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.head);
        let error: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(error["code"], "NOT_FOUND", "{method} {path}");
    }
    // The gateway's own operational routes stay where API.md puts them.
    assert_eq!(raw_request(&s, "GET", "/ready", "").await.status, 200);
    assert_eq!(raw_request(&s, "GET", "/metrics", "").await.status, 200);

    // Reaching orders' own port is not enough either: no service token, no layout lock, and a
    // user's token (even an admin's) is no service token.
    let direct = format!(
        "{}/internal/events/{event_id}/layout-lock",
        s.stack.orders_url
    );
    let admin = crate::support::access_token(&s, "admin@holdfast.test", "holdfast-demo").await;
    let forged =
        holdfast_common::service_auth::ServiceKeys::new("not-the-service-secret-at-all-32b")
            .header("events")
            .unwrap();
    for authorization in [
        None,
        Some(format!("Bearer {admin}")),
        Some(format!("Service {admin}")),
        Some(forged.to_str().unwrap().to_string()),
    ] {
        let mut request = reqwest::Client::new().post(&direct);
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let refused = request.send().await.unwrap();
        crate::support::assert_error(refused, 401, "SERVICE_TOKEN_REQUIRED").await;
    }
    let development = holdfast_common::service_auth::ServiceKeys::new(
        holdfast_common::service_auth::DEVELOPMENT_SERVICE_SECRET,
    );
    let granted = reqwest::Client::new()
        .post(&direct)
        .header("authorization", development.header("events").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), 200);
}

async fn writes_are_limited_per_user_with_rate_limit_headers(db: Db) {
    let s = crate::support::spawn_in(
        db,
        &[
            ("RATE_LIMIT_DISABLED", "false"),
            ("RATE_LIMIT_WRITES", "5/60"),
        ],
    )
    .await;
    let api = reqwest::Client::new();
    let alice = crate::support::access_token(&s, "user@holdfast.test", "holdfast-demo").await;
    let bob = crate::support::access_token(&s, "organizer@holdfast.test", "holdfast-demo").await;
    let write = |token: &str, path: &str| {
        api.post(s.at(path))
            .bearer_auth(token)
            .json(&serde_json::json!({"eventId": "not-an-id", "seats": []}))
            .send()
    };
    for (i, path) in [
        "/api/orders/holds",
        "/api/orders/payments/intent",
        "/api/orders/purchase",
        "/api/orders/holds",
        "/api/orders/payments/confirm",
    ]
    .into_iter()
    .enumerate()
    {
        let res = write(&alice, path).await.unwrap();
        assert_ne!(res.status(), 429, "{path}");
        let state = res.headers()["ratelimit"].to_str().unwrap().to_string();
        assert_eq!(
            state.split(';').nth(1),
            Some(format!("r={}", 4 - i).as_str())
        );
        assert_eq!(res.headers()["ratelimit-policy"], "\"writes\";q=5;w=60");
    }
    let refused = write(&alice, "/api/orders/holds").await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&retry_after), "{retry_after}");
    assert!(
        refused.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .contains("r=0")
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    assert!(body["requestId"].is_string());
    // Another user has a quota of their own; reads are another class.
    assert_ne!(
        write(&bob, "/api/orders/holds").await.unwrap().status(),
        429
    );
    let orders = api
        .get(s.at("/api/orders/orders"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(orders.status(), 200);
}

async fn forwarded_addresses_count_only_from_trusted_proxies(db: Db) {
    let login = |s: &crate::support::TestStack, forwarded_for: &'static str| {
        reqwest::Client::new()
            .post(s.at("/api/auth/login"))
            .header("x-forwarded-for", forwarded_for)
            .json(&serde_json::json!({"email": "nobody@example.com", "password": "wrong-password"}))
            .send()
    };
    let limits = [
        ("RATE_LIMIT_DISABLED", "false"),
        ("AUTH_RATE_LIMIT_BURST", "3"),
    ];
    // Not behind a trusted proxy: a made-up X-Forwarded-For is no way around the limit.
    let direct = crate::support::spawn_in(db, &limits).await;
    let mut statuses = Vec::new();
    for forwarded_for in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ] {
        statuses.push(
            login(&direct, forwarded_for)
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    // Behind a trusted proxy (the test's own address), each forwarded client counts alone.
    let mut trusting = limits.to_vec();
    trusting.push(("TRUSTED_PROXIES", "127.0.0.1/32, ::1"));
    let proxied = crate::support::spawn_in(db, &trusting).await;
    for _ in 0..3 {
        assert_eq!(login(&proxied, "198.51.100.1").await.unwrap().status(), 401);
    }
    assert_eq!(login(&proxied, "198.51.100.1").await.unwrap().status(), 429);
    assert_eq!(login(&proxied, "198.51.100.2").await.unwrap().status(), 401);
}

/// With `GATEWAY_METRICS_PORT` the gateway's metrics are on that port only: the public one
/// answers 404 for `/metrics` and still serves everything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_metrics_can_leave_the_public_port() {
    let s = crate::support::spawn(&[("GATEWAY_METRICS_PORT", "9464")]).await;
    let public = reqwest::get(s.at("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404);
    assert_eq!(reqwest::get(s.at("/health")).await.unwrap().status(), 200);
    let private = s
        .stack
        .gateway_metrics_url
        .clone()
        .expect("a metrics listener");
    let scraped = reqwest::get(format!("{private}/metrics")).await.unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("holdfast_"), "{text}");
    // Without it, as before: on the public port.
    let plain = crate::support::spawn(&[]).await;
    assert_eq!(
        reqwest::get(plain.at("/metrics")).await.unwrap().status(),
        200
    );
    assert!(plain.stack.gateway_metrics_url.is_none());
}
