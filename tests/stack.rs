//! The whole stack in one test process, driven through the gateway.

use holdfast_common::config::Settings;
use holdfast_common::infra::Infra;
use serde_json::{Value, json};

async fn stack() -> (holdfast::Stack, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::from_map(&Default::default()).unwrap();
    settings.data_dir = data.path().to_path_buf();
    let stack = holdfast::spawn(settings, Infra::embedded()).await.unwrap();
    (stack, data)
}

#[tokio::test]
async fn every_process_is_healthy_ready_and_measured() {
    let (stack, _data) = stack().await;
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
        let metrics = client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(&format!(r#"service="{name}""#)),
            "{name}: {metrics}"
        );
    }
}

#[tokio::test]
async fn the_request_id_travels_from_the_gateway_to_the_service_and_back() {
    let (stack, _data) = stack().await;
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
