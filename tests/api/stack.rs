//! The whole stack in one test process, driven through the gateway.

use serde_json::{Value, json};

#[tokio::test]
async fn every_process_is_healthy_ready_and_measured() {
    let s = crate::support::spawn(&[]).await;
    let stack = &s.stack;
    let client = reqwest::Client::new();
    for (name, url) in [
        ("gateway", &stack.gateway_url),
        ("auth", &stack.auth_url),
        ("events", &stack.events_url),
        ("orders", &stack.orders_url),
        ("ml", &stack.ml_url),
    ] {
        let health: Value = client
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health, json!({"status": "ok", "service": name}));
        let ready = client.get(format!("{url}/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{name} ready");
        let metrics = crate::support::metrics(url).await;
        assert!(
            metrics.contains(&format!(r#"service="{name}""#)),
            "{name}: {metrics}"
        );
    }
}

#[tokio::test]
async fn the_request_id_travels_from_the_gateway_to_the_service_and_back() {
    let s = crate::support::spawn(&[]).await;
    let stack = &s.stack;
    let res = reqwest::Client::new()
        .get(format!("{}/api/auth/no-such-route", stack.gateway_url))
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["x-request-id"], "req-abc-123");
    let body: Value = res.json().await.unwrap();
    // The body comes from the auth service, which saw the id the gateway forwarded.
    assert_eq!(body["requestId"], "req-abc-123");
    assert_eq!(body["code"], "NOT_FOUND");
}
