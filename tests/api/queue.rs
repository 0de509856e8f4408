//! The admission queue through the gateway: an organizer turns it on; buyers join, wait, take
//! their admission and hold and buy with it; holds and purchases without a valid admission are
//! refused; pause and rate change; proof of work; the live stream. Each test runs on the
//! in-process TTL store and on Redis.

use std::time::Duration;

use holdfast_common::config::DEVELOPMENT_JWT_SECRET;
use holdfast_common::when::{format_millis, now_millis};
use holdfast_orders::admission_pass::AdmissionKeys;
use holdfast_orders::domain::admission::proof_holds;
use serde_json::{Value, json};

use crate::seats::open_stream;
use crate::support::{
    Db, Kv, TestStack, access_token, api, assert_error, event, get_json, infra, post, spawn_with,
    token_for,
};

async fn stack(kv: Kv) -> Option<TestStack> {
    Some(spawn_with(Db::Sqlite, &[], infra(kv).await?).await)
}

macro_rules! on_both_ttl_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Kv::Memory).await } )*
        }
        mod redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Kv::Redis).await } )*
        }
    };
}

on_both_ttl_stores!(
    joins_are_limited_per_account_and_per_address,
    a_queued_event_sells_only_to_admitted_buyers_in_queue_order,
    an_expired_or_borrowed_admission_is_refused,
    joins_need_the_proof_the_queue_asks_for,
    the_stream_tells_every_watcher_how_far_admission_has_come,
);

async fn organizer(s: &TestStack) -> String {
    access_token(s, "organizer@holdfast.test", "holdfast-demo").await
}

fn queue_path(event_id: &str, rest: &str) -> String {
    format!("/api/orders/events/{event_id}/queue{rest}")
}

async fn send(
    s: &TestStack,
    method: reqwest::Method,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = api().request(method, s.at(path)).bearer_auth(token);
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

/// The organizer's `method` on the event's queue with `body`, which must answer 200; its
/// answer.
async fn as_organizer(
    s: &TestStack,
    method: reqwest::Method,
    event_id: &str,
    body: Value,
) -> Value {
    let res = send(
        s,
        method,
        &organizer(s).await,
        &queue_path(event_id, ""),
        Some(body),
    )
    .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Turns the event's queue on as its organizer, opening `opens_in_ms` from now.
async fn configure(s: &TestStack, event_id: &str, opens_in_ms: i64, extra: Value) -> Value {
    let mut body = json!({"opensAt": format_millis(now_millis() + opens_in_ms)});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    as_organizer(s, reqwest::Method::PUT, event_id, body).await
}

/// Turns the event's queue off as its organizer.
async fn turn_off(s: &TestStack, event_id: &str) {
    let path = queue_path(event_id, "");
    let off = send(s, reqwest::Method::DELETE, &organizer(s).await, &path, None).await;
    assert_eq!(off.status(), 204);
}

/// Changes the queue's pace as its organizer.
async fn pace(s: &TestStack, event_id: &str, body: Value) -> Value {
    as_organizer(s, reqwest::Method::PATCH, event_id, body).await
}

/// A hold of `seats`, with `pass` as the `Admission-Pass` header if given.
async fn hold_with(
    s: &TestStack,
    token: &str,
    event_id: &str,
    seats: &[&str],
    pass: Option<&str>,
) -> reqwest::Response {
    let mut request = api()
        .post(s.at("/api/orders/holds"))
        .bearer_auth(token)
        .json(&json!({"eventId": event_id, "seatIds": seats}));
    if let Some(pass) = pass {
        request = request.header("Admission-Pass", pass);
    }
    request.send().await.unwrap()
}

async fn admission(s: &TestStack, token: &str, event_id: &str) -> reqwest::Response {
    post(s, token, &queue_path(event_id, "/admission"), json!({})).await
}

async fn a_queued_event_sells_only_to_admitted_buyers_in_queue_order(kv: Kv) {
    let Some(s) = stack(kv).await else { return };
    let event_id = event(&s, 2, 10, 0.0).await;
    let buyers: Vec<String> = (0..3).map(|n| token_for(&format!("q-buyer-{n}"))).collect();

    // Only the organizer turns it on.
    let refused = send(
        &s,
        reqwest::Method::PUT,
        &buyers[0],
        &queue_path(&event_id, ""),
        Some(json!({"opensAt": "2027-01-01T00:00:00Z"})),
    )
    .await;
    assert_error(refused, 403, "FORBIDDEN").await;
    let queue = configure(&s, &event_id, 1_500, json!({"ratePerMinute": 600})).await;
    assert_eq!(
        (
            &queue["open"],
            &queue["earlyJoining"],
            &queue["admissionWindowSeconds"],
            &queue["admitted"],
        ),
        (&json!(false), &json!(true), &json!(900), &json!(0))
    );
    // Paused before the opening: nobody is let in until the organizer says so.
    let paused = pace(&s, &event_id, json!({"paused": true})).await;
    assert_eq!(paused["paused"], true);

    // Before the opening: joined, no place yet, and no holds for anyone.
    for buyer in &buyers {
        let joined = post(&s, buyer, &queue_path(&event_id, "/me"), json!({})).await;
        assert_eq!(joined.status(), 201);
        let place: Value = joined.json().await.unwrap();
        assert_eq!(
            (&place["state"], &place["place"]),
            (&json!("waiting"), &Value::Null)
        );
    }
    let again = post(&s, &buyers[0], &queue_path(&event_id, "/me"), json!({})).await;
    assert_eq!(again.status(), 200, "joining again keeps the place");
    let refused = hold_with(&s, &buyers[0], &event_id, &["R1-S1"], None).await;
    assert_error(refused, 403, "ADMISSION_REQUIRED").await;

    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let mut places = Vec::new();
    for buyer in &buyers {
        let place = get_json(&s, Some(buyer), &queue_path(&event_id, "/me")).await;
        assert_eq!(place["state"], "waiting");
        assert_eq!(place["admittedUpTo"], 0);
        assert_eq!(place["estimatedAdmissionAt"], Value::Null, "paused");
        places.push(place["place"].as_u64().unwrap());
        let early = assert_error(
            admission(&s, buyer, &event_id).await,
            409,
            "NOT_ADMITTED_YET",
        )
        .await;
        assert_eq!(early["details"]["place"], place["place"]);
    }
    let mut sorted = places.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 2, 3], "each early joiner has one place");
    let first = places.iter().position(|&p| p == 1).unwrap();
    let second = places.iter().position(|&p| p == 2).unwrap();

    // Let exactly one place in: 60 a minute is one a second.
    pace(&s, &event_id, json!({"ratePerMinute": 60})).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    pace(&s, &event_id, json!({"paused": true})).await;
    let public = get_json(&s, None, &queue_path(&event_id, "")).await;
    assert_eq!(
        (&public["admittedUpTo"], &public["length"]),
        (&json!(1), &json!(3))
    );
    assert!(
        public.get("shopping").is_none(),
        "figures are the organizer's"
    );
    let granted: Value = admission(&s, &buyers[first], &event_id)
        .await
        .json()
        .await
        .unwrap();
    let pass = granted["admission"].as_str().unwrap().to_string();
    assert_error(
        admission(&s, &buyers[second], &event_id).await,
        409,
        "NOT_ADMITTED_YET",
    )
    .await;
    let again: Value = admission(&s, &buyers[first], &event_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["expiresAt"], granted["expiresAt"],
        "the same admission"
    );

    // The admitted buyer holds and buys with it; nobody else can use it.
    let borrowed = hold_with(&s, &buyers[second], &event_id, &["R1-S2"], Some(&pass)).await;
    assert_error(borrowed, 403, "ADMISSION_REQUIRED").await;
    let held = hold_with(&s, &buyers[first], &event_id, &["R1-S1"], Some(&pass)).await;
    assert_eq!(held.status(), 201);
    let hold_id = held.json::<Value>().await.unwrap()["holdId"].clone();
    let purchase = json!({"eventId": event_id, "holdId": hold_id, "seatIds": ["R1-S1"]});
    let unadmitted = post(&s, &buyers[first], "/api/orders/purchase", purchase.clone()).await;
    assert_error(unadmitted, 403, "ADMISSION_REQUIRED").await;
    let bought = api()
        .post(s.at("/api/orders/purchase"))
        .bearer_auth(&buyers[first])
        .header("Admission-Pass", &pass)
        .json(&purchase)
        .send()
        .await
        .unwrap();
    assert_eq!(bought.status(), 201);
    let me = get_json(&s, Some(&buyers[first]), &queue_path(&event_id, "/me")).await;
    assert_eq!(me["state"], "admitted");
    let left = send(
        &s,
        reqwest::Method::DELETE,
        &buyers[first],
        &queue_path(&event_id, "/me"),
        None,
    )
    .await;
    assert_error(left, 409, "ALREADY_ADMITTED").await;

    // The organizer sees who shops; a waiting buyer may leave, and the line moves up.
    let sales = get_json(
        &s,
        Some(&organizer(&s).await),
        &format!("/api/orders/events/{event_id}/sales"),
    )
    .await;
    assert_eq!(
        (
            &sales["queue"]["length"],
            &sales["queue"]["admitted"],
            &sales["queue"]["shopping"]
        ),
        (&json!(3), &json!(1), &json!(1))
    );
    let third = 3 - first - second;
    let left = send(
        &s,
        reqwest::Method::DELETE,
        &buyers[second],
        &queue_path(&event_id, "/me"),
        None,
    )
    .await;
    assert_eq!(left.status(), 204);
    let moved = get_json(&s, Some(&buyers[third]), &queue_path(&event_id, "/me")).await;
    assert_eq!((&moved["place"], &moved["ahead"]), (&json!(2), &json!(0)));

    // Turned off, the event sells as before.
    turn_off(&s, &event_id).await;
    assert_eq!(
        hold_with(&s, &buyers[third], &event_id, &["R2-S1"], None)
            .await
            .status(),
        201
    );
    let gone = api()
        .get(s.at(&queue_path(&event_id, "")))
        .send()
        .await
        .unwrap();
    assert_error(gone, 404, "NOT_FOUND").await;
}

async fn an_expired_or_borrowed_admission_is_refused(kv: Kv) {
    let Some(s) = stack(kv).await else { return };
    let event_id = event(&s, 1, 10, 0.0).await;
    let other_event = event(&s, 1, 10, 0.0).await;
    configure(&s, &event_id, -1_000, json!({"ratePerMinute": 60_000})).await;
    let buyer = token_for("q-expired");
    let keys = AdmissionKeys::new(DEVELOPMENT_JWT_SECRET);
    // Signed like a real admission, but its time is up.
    let expired = keys.sign("q-expired", &event_id, now_millis() - 1).unwrap();
    let body = assert_error(
        hold_with(&s, &buyer, &event_id, &["R1-S1"], Some(&expired)).await,
        403,
        "ADMISSION_EXPIRED",
    )
    .await;
    assert!(body["details"]["expiredAt"].is_string(), "{body}");
    // One for another event, or forged with another key, is no admission at all.
    let elsewhere = keys
        .sign("q-expired", &other_event, now_millis() + 60_000)
        .unwrap();
    let forged = AdmissionKeys::new("not-the-secret")
        .sign("q-expired", &event_id, now_millis() + 60_000)
        .unwrap();
    for pass in [elsewhere.as_str(), forged.as_str(), "garbage"] {
        assert_error(
            hold_with(&s, &buyer, &event_id, &["R1-S1"], Some(pass)).await,
            403,
            "ADMISSION_REQUIRED",
        )
        .await;
    }
    // Best available and hold changes are kept behind the queue too.
    let best = post(
        &s,
        &buyer,
        "/api/orders/holds/best",
        json!({"eventId": event_id, "count": 1}),
    )
    .await;
    assert_error(best, 403, "ADMISSION_REQUIRED").await;
    // The other event has no queue: it needs no admission.
    assert_eq!(
        hold_with(&s, &buyer, &other_event, &["R1-S1"], None)
            .await
            .status(),
        201
    );
    // A real admission, once the place is in.
    post(&s, &buyer, &queue_path(&event_id, "/me"), json!({})).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let granted: Value = admission(&s, &buyer, &event_id).await.json().await.unwrap();
    let pass = granted["admission"].as_str().unwrap();
    let held = hold_with(&s, &buyer, &event_id, &["R1-S1"], Some(pass)).await;
    assert_eq!(held.status(), 201);
    let hold_id = held.json::<Value>().await.unwrap()["holdId"]
        .as_str()
        .unwrap()
        .to_string();
    let change = |pass: Option<&str>| {
        let mut request = api()
            .put(s.at(&format!("/api/orders/holds/{hold_id}/seats")))
            .bearer_auth(&buyer)
            .json(&json!({"seatIds": ["R1-S1", "R1-S2"]}));
        if let Some(pass) = pass {
            request = request.header("Admission-Pass", pass);
        }
        request.send()
    };
    assert_error(
        change(Some(&expired)).await.unwrap(),
        403,
        "ADMISSION_EXPIRED",
    )
    .await;
    assert_eq!(change(Some(pass)).await.unwrap().status(), 200);
}

async fn joins_need_the_proof_the_queue_asks_for(kv: Kv) {
    let Some(s) = stack(kv).await else { return };
    let event_id = event(&s, 1, 10, 0.0).await;
    configure(
        &s,
        &event_id,
        60_000,
        json!({"proofBits": 8, "earlyJoining": true}),
    )
    .await;
    let buyer = token_for("q-proof");
    let refused = assert_error(
        post(&s, &buyer, &queue_path(&event_id, "/me"), json!({})).await,
        403,
        "PROOF_REQUIRED",
    )
    .await;
    assert_eq!(refused["details"]["proofBits"], 8);
    let nonce = (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| proof_holds(&event_id, "q-proof", nonce, 8))
        .unwrap();
    // Another person's proof is not this person's.
    let theirs = (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| {
            proof_holds(&event_id, "q-someone", nonce, 8)
                && !proof_holds(&event_id, "q-proof", nonce, 8)
        })
        .unwrap();
    assert_error(
        post(
            &s,
            &buyer,
            &queue_path(&event_id, "/me"),
            json!({"proof": theirs}),
        )
        .await,
        403,
        "PROOF_REQUIRED",
    )
    .await;
    let joined = post(
        &s,
        &buyer,
        &queue_path(&event_id, "/me"),
        json!({"proof": nonce}),
    )
    .await;
    assert_eq!(joined.status(), 201);

    // A queue that takes nobody before it opens says when it does.
    let closed = event(&s, 1, 10, 0.0).await;
    configure(&s, &closed, 60_000, json!({"earlyJoining": false})).await;
    let body = assert_error(
        post(&s, &buyer, &queue_path(&closed, "/me"), json!({})).await,
        409,
        "QUEUE_NOT_OPEN",
    )
    .await;
    assert!(body["details"]["opensAt"].is_string());
    // Settings are checked: a rate of 0 is a pause, not a setting.
    let bad = send(
        &s,
        reqwest::Method::PUT,
        &organizer(&s).await,
        &queue_path(&closed, ""),
        Some(json!({"opensAt": "soon", "ratePerMinute": 0, "proofBits": 30})),
    )
    .await;
    let body = assert_error(bad, 400, "VALIDATION_FAILED").await;
    let fields = body["details"]["fields"].as_object().unwrap();
    assert!(
        fields.contains_key("ratePerMinute") && fields.contains_key("proofBits"),
        "{body}"
    );
}

async fn the_stream_tells_every_watcher_how_far_admission_has_come(kv: Kv) {
    let Some(s) = stack(kv).await else { return };
    let event_id = event(&s, 1, 10, 0.0).await;
    // One a minute, paused at once: nobody is in yet.
    configure(&s, &event_id, -1_000, json!({"ratePerMinute": 1})).await;
    pace(&s, &event_id, json!({"paused": true})).await;
    for n in 0..3 {
        let joined = post(
            &s,
            &token_for(&format!("q-watch-{n}")),
            &queue_path(&event_id, "/me"),
            json!({}),
        )
        .await;
        assert_eq!(joined.status(), 201);
    }
    let url = s.at(&queue_path(&event_id, "/stream"));
    let mut watchers = [open_stream(&url, None).await, open_stream(&url, None).await];
    for watcher in &mut watchers {
        let first = watcher.next().await;
        assert_eq!(first.event, "queue");
        assert_eq!(
            (
                &first.data["admittedUpTo"],
                &first.data["length"],
                &first.data["paused"]
            ),
            (&json!(0), &json!(3), &json!(true))
        );
    }
    // Resumed fast enough to let everyone in within a second: both watchers hear of it.
    pace(&s, &event_id, json!({"ratePerMinute": 600_000})).await;
    for watcher in &mut watchers {
        let news = watcher.next().await;
        assert_eq!(news.event, "queue");
        assert_eq!(news.data["paused"], false);
        assert!(
            news.data["admittedUpTo"].as_u64().unwrap() >= 3,
            "{:?}",
            news.data
        );
    }
    // Turned off: the watchers are told, and the stream ends.
    turn_off(&s, &event_id).await;
    let closed = watchers[0].next().await;
    assert_eq!(closed.event, "closed");
}

async fn joins_are_limited_per_account_and_per_address(kv: Kv) {
    let limits = [
        ("RATE_LIMIT_DISABLED", "false"),
        ("RATE_LIMIT_QUEUE_JOINS", "2/60"),
        ("RATE_LIMIT_QUEUE_JOINS_PER_ADDRESS", "4/60"),
    ];
    let Some(infra) = infra(kv).await else { return };
    let s = spawn_with(Db::Sqlite, &limits, infra).await;
    let event_id = event(&s, 1, 10, 0.0).await;
    configure(&s, &event_id, 60_000, json!({})).await;
    // Per-test accounts: the Redis counters outlive the test.
    let run = now_millis();
    let join = |user: String| {
        let path = queue_path(&event_id, "/me");
        let s = &s;
        async move { post(s, &token_for(&user), &path, json!({})).await }
    };
    let one = format!("q-limit-{run}-a");
    assert_eq!(join(one.clone()).await.status(), 201);
    assert_eq!(join(one.clone()).await.status(), 200);
    let again = join(one).await;
    assert_eq!(again.status(), 429, "the account's quota");
    assert_eq!(
        again.headers()["ratelimit-policy"],
        "\"queue-joins\";q=2;w=60"
    );
    // Other accounts from the same address: two more joins, then the address's quota.
    assert_eq!(join(format!("q-limit-{run}-b")).await.status(), 201);
    assert_eq!(join(format!("q-limit-{run}-c")).await.status(), 201);
    let bulk = join(format!("q-limit-{run}-d")).await;
    let body = assert_error(bulk, 429, "RATE_LIMITED").await;
    assert!(body["error"].as_str().unwrap().contains("retry"), "{body}");
    // Reading one's place is not a join.
    let place = get_json(
        &s,
        Some(&token_for(&format!("q-limit-{run}-b"))),
        &queue_path(&event_id, "/me"),
    )
    .await;
    assert_eq!(place["state"], "waiting");
}
