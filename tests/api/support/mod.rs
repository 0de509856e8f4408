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
    /// Where the stack keeps its records, when it is the test's (dropped after the stack).
    storage: Option<Storage>,
}

/// Which document store a stack keeps its records in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// SQLite files in a temporary folder.
    Sqlite,
    /// Databases of their own (a unique prefix) on the `MONGODB_URI` server.
    Mongo,
}

impl Db {
    /// How the gateway reaches the services in a stack on this store: every suite runs once
    /// with the gateway calling the services in process (SQLite) and once over HTTP (MongoDB),
    /// so both dispatch modes pass the same end-to-end suites.
    pub fn dispatch(self) -> holdfast::Dispatch {
        match self {
            Db::Sqlite => holdfast::Dispatch::InProcess,
            Db::Mongo => holdfast::Dispatch::Http,
        }
    }

    /// Whether this store can be used here; says so loudly when it cannot (and fails under
    /// `CI=true`, see [`holdfast_common::testing::server_url`]).
    pub fn available(self) -> bool {
        match self {
            Db::Sqlite => true,
            Db::Mongo => holdfast_common::testing::server_url("MONGODB_URI").is_some(),
        }
    }
}

/// Runs each named test, an `async fn(Db)`, once per document store: as `sqlite::<name>` and
/// as `mongodb::<name>` (skipped, loudly, where `MONGODB_URI` is unset outside CI).
#[allow(unused_macros)]
macro_rules! on_both_document_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(crate::support::Db::Sqlite).await } )*
        }
        mod mongodb {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   if crate::support::Db::Mongo.available() {
                       super::$name(crate::support::Db::Mongo).await
                   }
               } )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_document_stores;

/// Runs each named test, an `async fn(Kv, Db)`, three times: on the in-process TTL store with
/// SQLite, on Redis with SQLite, and on Redis with MongoDB (the production profile).
#[allow(unused_macros)]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   super::$name(crate::support::Kv::Memory, crate::support::Db::Sqlite).await
               } )*
        }
        mod redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   super::$name(crate::support::Kv::Redis, crate::support::Db::Sqlite).await
               } )*
        }
        mod redis_mongodb {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   super::$name(crate::support::Kv::Redis, crate::support::Db::Mongo).await
               } )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_every_store;

/// A stack with embedded adapters, a private data folder and `vars` as its environment.
/// Rate limits are off unless `vars` sets `RATE_LIMIT_DISABLED`, and seat maps are always
/// current unless `vars` sets `SEAT_MAP_MAX_STALENESS_MS`.
pub async fn spawn(vars: &[(&str, &str)]) -> TestStack {
    spawn_with(Db::Sqlite, vars, Infra::embedded()).await
}

/// [`spawn`] on the document store `db`.
pub async fn spawn_in(db: Db, vars: &[(&str, &str)]) -> TestStack {
    spawn_with(db, vars, Infra::embedded()).await
}

/// A stack on `db` with no demo data, and an access token of its one admin.
pub async fn empty_stack_and_admin(db: Db) -> (TestStack, String) {
    let s = spawn_in(
        db,
        &[
            ("DEMO_SEED", "false"),
            ("ADMIN_EMAIL", "root@example.com"),
            ("ADMIN_PASSWORD", "root-password"),
        ],
    )
    .await;
    let admin = access_token(&s, "root@example.com", "root-password").await;
    (s, admin)
}

/// Which TTL store a test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Kv {
    Memory,
    Redis,
    /// The Redis Cluster of `REDIS_CLUSTER_URLS`.
    RedisCluster,
}

impl Kv {
    /// The variable that names this store's server, if it has one.
    fn variable(self) -> Option<&'static str> {
        match self {
            Self::Memory => None,
            Self::Redis => Some("REDIS_URL"),
            Self::RedisCluster => Some("REDIS_CLUSTER_URLS"),
        }
    }
}

/// Infrastructure with the chosen TTL store (Redis under a private key prefix), or `None` when
/// Redis is asked for but its variable is unset outside CI.
pub async fn infra(kv: Kv) -> Option<Infra> {
    let Some(variable) = kv.variable() else {
        return Some(Infra::embedded());
    };
    let prefix = format!("{}:", holdfast_common::testing::unique_name("e2e"));
    let store = holdfast_common::testing::redis_store(variable, &prefix).await?;
    Some(Infra::with_redis(store))
}

/// Another connection to the Redis (server or cluster) of `infra`, under the same key prefix,
/// as a second process would have.
pub async fn reconnect_redis(infra: &Infra) -> Infra {
    let store = infra.redis.as_ref().expect("a Redis infrastructure");
    let kv = if store.is_cluster() {
        Kv::RedisCluster
    } else {
        Kv::Redis
    };
    let variable = kv.variable().expect("a Redis store");
    let again = holdfast_common::testing::redis_store(variable, store.prefix())
        .await
        .expect("the store was reachable a moment ago");
    Infra::with_redis(again)
}

/// Every key of the stack's Redis prefix that still exists, with its time to live in ms (-1: none).
pub async fn redis_keys_and_ttls(infra: &holdfast_common::infra::Infra) -> Vec<(String, i64)> {
    let store = infra.redis.as_ref().expect("a Redis infrastructure");
    // On a cluster, KEYS asks every master.
    let keys: Vec<String> = store
        .query(redis::cmd("KEYS").arg(format!("{}*", store.prefix())))
        .await
        .unwrap();
    let mut answer = Vec::new();
    for key in keys {
        let ttl: i64 = store.query(redis::cmd("PTTL").arg(&key)).await.unwrap();
        // -2: the key expired between the listing and this question (a rate-limit key lives
        // only until its quota is whole again); it is not state that stays.
        if ttl != -2 {
            answer.push((key, ttl));
        }
    }
    answer
}

/// Deletes the seat board's sold seats of `event_id`, as a Redis restart would.
pub async fn forget_sold_seats(infra: &Infra, event_id: &str) {
    let store = infra.redis.as_ref().expect("a Redis infrastructure");
    let key = store.key(&format!("seats:{{{event_id}}}:sales"));
    let deleted: i64 = store.query(redis::cmd("DEL").arg(&key)).await.unwrap();
    assert_eq!(deleted, 1, "{key} existed");
}

/// Where a stack keeps its records, so a test can stop it and start another on the same data:
/// a folder of SQLite files, or a database prefix on the MongoDB server.
pub struct Storage {
    db: Db,
    dir: tempfile::TempDir,
    mongo_prefix: String,
}

impl Storage {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            dir: tempfile::tempdir().unwrap(),
            mongo_prefix: holdfast_common::testing::unique_database_name("e2e"),
        }
    }

    /// The data folder (SQLite files).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The MongoDB server and the orders database of this storage, on MongoDB.
    fn orders_database(&self) -> Option<(String, String)> {
        let uri = std::env::var("MONGODB_URI").ok()?;
        (self.db == Db::Mongo).then(|| (uri, format!("{}_orders", self.mongo_prefix)))
    }

    /// Points `settings` at this storage.
    fn apply(&self, settings: &mut Settings) {
        settings.data_dir = self.dir.path().to_path_buf();
        if self.db == Db::Mongo {
            settings.mongodb_uri = std::env::var("MONGODB_URI").ok();
            settings.mongodb_database_prefix = self.mongo_prefix.clone();
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if self.db == Db::Mongo {
            drop_databases(&self.mongo_prefix);
        }
    }
}

/// Drops the databases of every service under `prefix`.
fn drop_databases(prefix: &str) {
    if let Ok(uri) = std::env::var("MONGODB_URI") {
        let names = ["auth", "events", "orders", "ml", "notifications"]
            .iter()
            .map(|service| format!("{prefix}_{service}"))
            .collect();
        holdfast_common::testing::drop_mongo_databases(&uri, names);
    }
}

/// Test settings: rate limits off and seat maps always current, unless `vars` say otherwise.
fn test_settings(vars: &[(&str, &str)], storage: &Storage) -> Settings {
    let mut env: HashMap<&str, &str> = HashMap::from([
        ("RATE_LIMIT_DISABLED", "true"),
        ("SEAT_MAP_MAX_STALENESS_MS", "0"),
    ]);
    env.extend(vars.iter().copied());
    let mut settings = Settings::from_map(&env).unwrap();
    storage.apply(&mut settings);
    settings
}

/// A stack keeping its records in `storage`.
pub async fn spawn_on(storage: &Storage, infra: Infra) -> holdfast::Stack {
    spawn_on_with(storage, &[], infra).await
}

/// A stack on the given document store and infrastructure.
pub async fn spawn_with(db: Db, vars: &[(&str, &str)], infra: Infra) -> TestStack {
    let storage = Storage::new(db);
    let stack = spawn_on_with(&storage, vars, infra).await;
    TestStack {
        url: stack.gateway_url.clone(),
        stack,
        storage: Some(storage),
    }
}

/// A stack keeping its records in `storage` with `vars`, or why it did not start.
pub async fn try_spawn_on_with(
    storage: &Storage,
    vars: &[(&str, &str)],
    infra: Infra,
) -> anyhow::Result<holdfast::Stack> {
    holdfast::spawn_with(test_settings(vars, storage), infra, storage.db.dispatch()).await
}

/// A stack keeping its records in `storage`, with `vars` as its environment.
pub async fn spawn_on_with(
    storage: &Storage,
    vars: &[(&str, &str)],
    infra: Infra,
) -> holdfast::Stack {
    holdfast::spawn_with(test_settings(vars, storage), infra, storage.db.dispatch())
        .await
        .unwrap()
}

impl Drop for TestStack {
    fn drop(&mut self) {
        // Stop the servers first, so nothing writes while the storage goes.
        self.stack.shutdown();
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
            storage: None,
        }
    }

    /// Records `seat` of `event_id` as sold straight in the orders store, as another process
    /// would, without a hold.
    pub async fn sell_behind_the_back(&self, event_id: &str, seat: &str) {
        match self.storage.as_ref().and_then(Storage::orders_database) {
            Some((uri, orders)) => {
                let client = mongodb::Client::with_uri_str(uri).await.unwrap();
                client
                    .database(&orders)
                    .collection::<mongodb::bson::Document>("sold_seats")
                    .insert_one(mongodb::bson::doc! {
                        "_id": format!("{event_id}/{seat}"),
                        "eventId": event_id,
                        "seatId": seat,
                        "orderId": "sold-elsewhere",
                    })
                    .await
                    .unwrap();
            }
            None => {
                let db = self.orders_sqlite();
                db.execute(
                    "INSERT INTO sold_seats (event_id, seat_id, order_id) VALUES (?1, ?2, 'sold-elsewhere')",
                    [event_id, seat],
                )
                .unwrap();
            }
        }
    }

    /// How many seats of `event_id` the orders store has sold, and its outbox messages.
    pub async fn sold_and_outbox_counts(&self, event_id: &str) -> (u64, u64) {
        use mongodb::bson::{Document, doc};
        match self.storage.as_ref().and_then(Storage::orders_database) {
            Some((uri, orders)) => {
                let client = mongodb::Client::with_uri_str(uri).await.unwrap();
                let db = client.database(&orders);
                let sold = db
                    .collection::<Document>("sold_seats")
                    .count_documents(doc! { "eventId": event_id })
                    .await
                    .unwrap();
                let outbox = db
                    .collection::<Document>("outbox")
                    .count_documents(doc! {})
                    .await
                    .unwrap();
                (sold, outbox)
            }
            None => {
                let db = self.orders_sqlite();
                let count = |sql: &str, args: &[&str]| -> u64 {
                    let n: i64 = db
                        .query_row(sql, rusqlite::params_from_iter(args), |r| r.get(0))
                        .unwrap();
                    u64::try_from(n).unwrap()
                };
                (
                    count(
                        "SELECT count(*) FROM sold_seats WHERE event_id = ?1",
                        &[event_id],
                    ),
                    count("SELECT count(*) FROM outbox", &[]),
                )
            }
        }
    }

    fn orders_sqlite(&self) -> rusqlite::Connection {
        let db = rusqlite::Connection::open(self.data_dir().join("orders.sqlite3")).unwrap();
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        db
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.storage
            .as_ref()
            .map(|s| s.dir.path())
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
/// The answer of `POST /api/auth/token` (access and refresh token) for an account.
pub async fn tokens(s: &TestStack, email: &str, password: &str) -> Value {
    reqwest::Client::new()
        .post(s.at("/api/auth/token"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The JSON answer of `GET path`, with `token` as bearer when given.
/// The `/metrics` text of the process at `base_url`.
pub async fn metrics(base_url: &str) -> String {
    let url = format!("{base_url}/metrics");
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// The value of the counter `name` in `metrics`, if it is there.
pub fn counter(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(name))
        .filter(|rest| rest.starts_with(['{', ' ']))
        .filter_map(|rest| rest.rsplit(' ').next())
        .find_map(|value| value.parse().ok())
}

pub async fn get_json(s: &TestStack, token: Option<&str>, path: &str) -> Value {
    let mut request = api().get(s.at(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

pub async fn access_token(s: &TestStack, email: &str, password: &str) -> String {
    let tokens = tokens(s, email, password).await;
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

/// Buys `seats` of `event_id` for `token` at `price` each; answers the order id.
pub async fn buy(s: &TestStack, token: &str, event_id: &str, seats: &[&str], price: f64) -> String {
    let hold = hold_id(s, token, event_id, seats).await;
    let mut body = json!({"eventId": event_id, "holdId": hold, "seatIds": seats});
    if price > 0.0 {
        let total = price * seats.len() as f64;
        body["paymentIntentId"] = json!(paid_intent(s, token, total, "INR").await);
    }
    let bought = post(s, token, "/api/orders/purchase", body).await;
    assert_eq!(bought.status(), 201);
    bought.json::<Value>().await.unwrap()["orderId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Cancels `order_id` as `token`, with `body` (`{seatIds}`) if given.
pub async fn cancel(
    s: &TestStack,
    token: &str,
    order_id: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = api()
        .post(s.at(&format!("/api/orders/orders/{order_id}/cancel")))
        .bearer_auth(token);
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

/// An answer read off the wire by [`raw_request`].
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends `method path` to the stack exactly as written, byte for byte, on a connection of its
/// own (HTTP clients would resolve dot segments and encodings before sending).
pub async fn raw_request(s: &TestStack, method: &str, path: &str, body: &str) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = s.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    RawAnswer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}
