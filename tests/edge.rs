//! The gateway edge as an attacker tries it: paths written to slip past a route's limit, and
//! routes meant for the services only.

mod support;

use serde_json::Value;
use support::{Db, raw_request};

support::on_both_document_stores!(
    no_spelling_of_a_limited_path_gets_past_the_edge,
    internal_routes_are_not_reachable_through_the_gateway,
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
    let s = support::spawn_in(db, &[("RATE_LIMIT_DISABLED", "false")]).await;
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
    let s = support::spawn_in(db, &[]).await;
    let event_id = "507f1f77bcf86cd799439011";
    for path in [
        format!("/api/orders/internal/events/{event_id}/activity"),
        "/api/auth/metrics".to_string(),
        "/api/orders/metrics".to_string(),
        "/api/ml/metrics".to_string(),
        "/api/auth/ready".to_string(),
        "/api/orders/ready".to_string(),
        "/api/ml/ready".to_string(),
    ] {
        let answer = raw_request(&s, "GET", &path, "").await;
        assert_eq!(answer.status, 404, "GET {path}: {}", answer.head);
        let error: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(error["code"], "NOT_FOUND", "GET {path}");
    }
    // The gateway's own operational routes stay where API.md puts them.
    assert_eq!(raw_request(&s, "GET", "/ready", "").await.status, 200);
    assert_eq!(raw_request(&s, "GET", "/metrics", "").await.status, 200);
}
