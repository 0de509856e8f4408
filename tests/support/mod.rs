//! Starting a whole stack for a test, and small helpers to talk to it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use holdfast_common::auth::{Role, TokenKeys};
use holdfast_common::config::{DEVELOPMENT_JWT_SECRET, Settings};
use holdfast_common::infra::Infra;
use serde_json::{Value, json};

pub struct TestStack {
    pub stack: holdfast::Stack,
    pub url: String,
    _data: Option<tempfile::TempDir>,
}

/// A stack with embedded adapters, a private data folder and `vars` as its environment.
/// Rate limits are off unless `vars` sets `RATE_LIMIT_DISABLED`.
pub async fn spawn(vars: &[(&str, &str)]) -> TestStack {
    spawn_with(vars, Infra::embedded()).await
}

/// Which TTL store a test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Kv {
    Memory,
    Redis,
}

/// Infrastructure with the chosen TTL store (Redis under a private key prefix), or `None` when
/// Redis is asked for but `REDIS_URL` is unset outside CI.
pub async fn infra(kv: Kv) -> Option<Infra> {
    match kv {
        Kv::Memory => Some(Infra::embedded()),
        Kv::Redis => {
            let url = holdfast_common::testing::server_url("REDIS_URL")?;
            let prefix = format!("{}:", holdfast_common::testing::unique_name("e2e"));
            let store = holdfast_common::kv::RedisStore::connect(&url, &prefix)
                .await
                .unwrap();
            let mut infra = Infra::embedded();
            infra.kv = std::sync::Arc::new(store);
            infra.kv_kind = "redis";
            Some(infra)
        }
    }
}

/// A stack keeping its data in `dir`, so a test can stop it and start another on the same data.
pub async fn spawn_on(dir: &std::path::Path, infra: Infra) -> holdfast::Stack {
    let mut settings =
        Settings::from_map(&HashMap::from([("RATE_LIMIT_DISABLED", "true")])).unwrap();
    settings.data_dir = dir.to_path_buf();
    holdfast::spawn(settings, infra).await.unwrap()
}

/// A stack on the given infrastructure.
pub async fn spawn_with(vars: &[(&str, &str)], infra: Infra) -> TestStack {
    let data = tempfile::tempdir().unwrap();
    let mut env: HashMap<&str, &str> = HashMap::from([("RATE_LIMIT_DISABLED", "true")]);
    env.extend(vars.iter().copied());
    let mut settings = Settings::from_map(&env).unwrap();
    settings.data_dir = data.path().to_path_buf();
    let stack = holdfast::spawn(settings, infra).await.unwrap();
    TestStack {
        url: stack.gateway_url.clone(),
        stack,
        _data: Some(data),
    }
}

impl TestStack {
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A stack whose data folder the test owns.
    pub fn wrap(stack: holdfast::Stack) -> Self {
        Self {
            url: stack.gateway_url.clone(),
            stack,
            _data: None,
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self._data
            .as_ref()
            .map(|d| d.path())
            .expect("a stack with its own data folder")
    }
}

/// A browser-like client: it keeps cookies.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The claims of a JWT, read without checking it (the server checks it).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// `name=value` of the `Set-Cookie` headers of a response, with their attributes.
pub fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

pub fn cookie<'c>(cookies: &'c [String], name: &str) -> &'c str {
    cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
}

/// The value of cookie `name` in a `Set-Cookie` list.
pub fn cookie_value(cookies: &[String], name: &str) -> String {
    let cookie = cookie(cookies, name);
    cookie[name.len() + 1..]
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Asserts an error answer: status, the common error body and its code.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.expect("an error body in JSON");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    assert_eq!(body["requestId"], request_id.as_str(), "{body}");
    body
}

/// An access token for `email`, from `POST /api/auth/token`.
pub async fn access_token(s: &TestStack, email: &str, password: &str) -> String {
    let tokens: Value = reqwest::Client::new()
        .post(s.at("/api/auth/token"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no token for {email}: {tokens}"))
        .to_string()
}

/// A new account with `role`, promoted by the demo admin; answers its access token.
pub async fn account_with_role(s: &TestStack, email: &str, role: &str) -> String {
    let client = reqwest::Client::new();
    let signup: Value = client
        .post(s.at("/api/auth/signup"))
        .json(&serde_json::json!({"email": email, "password": "password-123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = access_token(s, "admin@holdfast.test", "holdfast-demo").await;
    let user_id = signup["userId"].as_str().expect("signed up");
    let changed = client
        .patch(s.at(&format!("/api/auth/users/{user_id}/role")))
        .bearer_auth(admin)
        .json(&serde_json::json!({"role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    access_token(s, email, "password-123").await
}

// Orders helpers: made-up buyers, events, holds and paid intents.

/// A bearer token for a made-up user id (orders only verifies the signature and claims).
pub fn token_for(user_id: &str) -> String {
    TokenKeys::new(DEVELOPMENT_JWT_SECRET)
        .issue(
            user_id,
            &format!("{user_id}@example.com"),
            Role::User,
            "sid",
            Duration::from_secs(600),
        )
        .unwrap()
}

pub fn api() -> reqwest::Client {
    reqwest::Client::new()
}

/// Creates an event as the demo organizer; answers its id.
pub async fn event(s: &TestStack, rows: u32, seats_per_row: u32, price: f64) -> String {
    let organizer = access_token(s, "organizer@holdfast.test", "holdfast-demo").await;
    let created: Value = api()
        .post(s.at("/api/events"))
        .bearer_auth(organizer)
        .json(&json!({"title": "On-sale", "date": "2027-05-05", "rows": rows, "seatsPerRow": seats_per_row, "price": price, "currency": "INR"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["_id"].as_str().expect("event created").to_string()
}

pub async fn post(s: &TestStack, token: &str, path: &str, body: Value) -> reqwest::Response {
    api()
        .post(s.at(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn hold(s: &TestStack, token: &str, event_id: &str, seats: &[&str]) -> reqwest::Response {
    post(
        s,
        token,
        "/api/orders/holds",
        json!({"eventId": event_id, "seatIds": seats}),
    )
    .await
}

pub async fn hold_id(s: &TestStack, token: &str, event_id: &str, seats: &[&str]) -> String {
    let res = hold(s, token, event_id, seats).await;
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["holdId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A confirmed payment intent for `amount` INR; answers its id.
pub async fn paid_intent(s: &TestStack, token: &str, amount: f64, currency: &str) -> String {
    let intent: Value = post(
        s,
        token,
        "/api/orders/payments/intent",
        json!({"amount": amount, "currency": currency}),
    )
    .await
    .json()
    .await
    .unwrap();
    let confirmed = post(
        s,
        token,
        "/api/orders/payments/confirm",
        json!({"paymentIntentId": intent["paymentIntentId"], "clientSecret": intent["clientSecret"]}),
    )
    .await;
    assert_eq!(confirmed.status(), 200);
    intent["paymentIntentId"].as_str().unwrap().to_string()
}
