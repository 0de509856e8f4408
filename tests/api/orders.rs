//! Orders through the gateway: seat maps, holds, payments and the idempotent purchase.
//! Every hold and purchase test runs three times: on the in-process TTL store and on Redis with
//! SQLite, and on Redis with MongoDB (the production profile).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{
    Db, Kv, Storage, TestStack, access_token, api, assert_error, browser, event, get_json, hold,
    hold_id, infra, paid_intent, post, redis_keys_and_ttls, spawn_on, spawn_with, token_for,
    tokens,
};
use serde_json::{Value, json};

/// A stack for `kv` and `db`, or `None` when one of them is not available here.
async fn stack(kv: Kv, db: Db, vars: &[(&str, &str)]) -> Option<TestStack> {
    if !db.available() {
        return None;
    }
    Some(spawn_with(db, vars, infra(kv).await?).await)
}

async fn seat_states(s: &TestStack, event_id: &str) -> HashMap<String, String> {
    let map: Value = reqwest::get(s.at(&format!("/api/orders/seats/{event_id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|seat| {
            (
                seat["seatId"].as_str().unwrap().to_string(),
                seat["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

crate::support::on_both_document_stores!(a_purchase_is_replayed_after_a_restart);

/// Holds cost no task of their own: the process's tasks do not grow with the holds it keeps,
/// and none is left behind once they ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_start_no_task_of_their_own() {
    let s = spawn_with(
        Db::Sqlite,
        &[("HOLD_TTL_SECONDS", "1")],
        infra(Kv::Memory).await.unwrap(),
    )
    .await;
    let event_id = event(&s, 10, 20, 5.0).await;
    let client = api();
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    // A first hold through the one client opens its connection and wakes the sweeper.
    let hold = |n: usize| {
        client
            .post(s.at("/api/orders/holds"))
            .bearer_auth(token_for(&format!("holder-{n}")))
            .json(&json!({"eventId": event_id, "seatIds": [format!("R{}-S{}", n / 20 + 1, n % 20 + 1)]}))
            .send()
    };
    assert_eq!(hold(0).await.unwrap().status(), 201);
    let before = tasks();
    for n in 1..150 {
        assert_eq!(hold(n).await.unwrap().status(), 201);
    }
    let during = tasks();
    assert!(
        during < before + 10,
        "{before} tasks before 149 holds, {during} with them"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        seat_states(&s, &event_id)
            .await
            .values()
            .all(|st| st == "available"),
        "every hold ran out"
    );
    // (Reading the map opened connections of its own: hence the same margin as above.)
    let after = tasks();
    assert!(
        after < before + 10,
        "{before} tasks before the holds, {after} after they ran out"
    );
}

/// A client refreshing, logging in, creating intents, holding, buying and releasing as fast as
/// it can leaves state that is capped per user, and every key it caused expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_client_leaves_only_bounded_expiring_state_on_redis() {
    a_busy_client_leaves_only_bounded_expiring_state(Kv::Redis).await
}

async fn a_busy_client_leaves_only_bounded_expiring_state(kv: Kv) {
    let Some(infra) = infra(kv).await else {
        return;
    };
    let keys = infra.clone();
    let s = spawn_with(
        Db::Sqlite,
        &[
            ("RATE_LIMIT_DISABLED", "false"),
            ("MAX_SESSIONS_PER_USER", "3"),
        ],
        infra,
    )
    .await;
    let mut refresh_tokens = Vec::new();
    for _ in 0..5 {
        let tokens = tokens(&s, "user@holdfast.test", "holdfast-demo").await;
        refresh_tokens.push(tokens["refreshToken"].as_str().unwrap().to_string());
    }
    // Past the cap, the oldest sessions ended.
    let refresh = |token: String| {
        let url = s.at("/api/auth/token/refresh");
        async move {
            api()
                .post(url)
                .json(&json!({"refreshToken": token}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(refresh(refresh_tokens[0].clone()).await.status(), 401);
    let mut current = refresh_tokens[4].clone();
    let before = redis_keys_and_ttls(&keys).await.len();
    for _ in 0..20 {
        let tokens: Value = refresh(current).await.json().await.unwrap();
        current = tokens["refreshToken"].as_str().unwrap().to_string();
    }
    assert_eq!(
        redis_keys_and_ttls(&keys).await.len(),
        before,
        "rotations add no keys"
    );

    let token = access_token(&s, "user@holdfast.test", "holdfast-demo").await;
    let event_id = event(&s, 2, 5, 10.0).await;
    let intent = |n: u32| {
        post(
            &s,
            &token,
            "/api/orders/payments/intent",
            json!({"amount": n, "currency": "INR"}),
        )
    };
    for n in 1..=10 {
        assert_eq!(intent(n).await.status(), 201);
    }
    assert_error(intent(11).await, 409, "INTENT_LIMIT").await;

    let held = hold_id(&s, &token, &event_id, &["R1-S1"]).await;
    let released = api()
        .delete(s.at(&format!("/api/orders/holds/{held}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), 204);
    let buyer = token_for("busy-buyer");
    let held = hold_id(&s, &buyer, &event_id, &["R1-S2"]).await;
    let paid = paid_intent(&s, &buyer, 10.0, "INR").await;
    let bought = api()
        .post(s.at("/api/orders/purchase"))
        .bearer_auth(&buyer)
        .header("idempotency-key", "busy-1")
        .json(&json!({"eventId": event_id, "holdId": held, "seatIds": ["R1-S2"], "paymentIntentId": paid}))
        .send()
        .await
        .unwrap();
    assert_eq!(bought.status(), 201);
    let logout = api()
        .post(s.at("/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);

    let state = redis_keys_and_ttls(&keys).await;
    assert!(!state.is_empty());
    let forever: Vec<&(String, i64)> = state.iter().filter(|(_, ttl)| *ttl < 0).collect();
    assert!(forever.is_empty(), "keys without a TTL: {forever:?}");
}

/// A purchase committed by a process that died before putting its seats on the board: its
/// `order.purchased` (published from the outbox by any replica) marks them sold, so they never
/// look free once the dead hold runs out.
async fn an_announced_purchase_reaches_the_board(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[("SEAT_MAP_MAX_STALENESS_MS", "0")]).await else {
        return;
    };
    let event_id = event(&s, 1, 4, 10.0).await;
    let buyer = token_for("died-mid-purchase");
    hold_id(&s, &buyer, &event_id, &["R1-S1", "R1-S2"]).await;
    let order_id = holdfast_common::testing::unique_name("order");
    let purchased =
        holdfast_common::bus::BusMessage::of(&holdfast_common::messages::OrderPurchased {
            order_id: order_id.clone(),
            user_id: "died-mid-purchase".into(),
            event_id: event_id.clone(),
            seat_ids: vec!["R1-S1".into(), "R1-S2".into()],
            amount: 20.into(),
            currency: "INR".into(),
            payment_intent_id: None,
            email: None,
            event: None,
            seats: Vec::new(),
            tickets: Vec::new(),
        })
        .unwrap();
    s.stack.infra.bus.publish(&purchased).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let states = seat_states(&s, &event_id).await;
        if states["R1-S1"] == "reserved" && states["R1-S2"] == "reserved" {
            assert_eq!(states["R1-S3"], "available");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {states:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A redelivery changes nothing.
    s.stack.infra.bus.publish(&purchased).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seat_states(&s, &event_id).await["R1-S2"], "reserved");
}

crate::support::on_every_store!(
    an_announced_purchase_reaches_the_board,
    an_idempotency_key_is_usable_again_after_its_ttl,
    upper_case_event_ids_see_the_same_seats,
    the_whole_flow_through_the_gateway_with_cookies,
    two_hundred_buyers_race_for_fifty_seats,
    one_idempotency_key_makes_one_order,
    an_expired_hold_frees_its_seats_and_cannot_be_bought,
    a_seat_sold_behind_the_holds_back_fails_the_purchase_cleanly,
    holds_and_intents_belong_to_their_owner,
    bad_hold_requests_get_400_and_caps_apply,
    held_or_sold_seats_lock_the_layout,
    holds_that_run_out_are_announced_and_counted,
    free_seats_need_no_payment,
);

/// The same flows on a Redis Cluster (`REDIS_CLUSTER_URLS`), where every script must keep its
/// keys in one slot and a user's records of several events live on different masters.
mod redis_cluster {
    use crate::support::{Db, Kv};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_hundred_buyers_race_for_fifty_seats() {
        super::two_hundred_buyers_race_for_fifty_seats(Kv::RedisCluster, Db::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_whole_flow_through_the_gateway_with_cookies() {
        super::the_whole_flow_through_the_gateway_with_cookies(Kv::RedisCluster, Db::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expired_hold_frees_its_seats_and_cannot_be_bought() {
        super::an_expired_hold_frees_its_seats_and_cannot_be_bought(Kv::RedisCluster, Db::Sqlite)
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_client_leaves_only_bounded_expiring_state() {
        super::a_busy_client_leaves_only_bounded_expiring_state(Kv::RedisCluster).await
    }
}

/// Error bodies are rewritten (to carry the request id) after the service compressed them: the
/// answer must not claim an encoding its body no longer has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_error_answers_are_still_readable() {
    let s = spawn_with(Db::Sqlite, &[], infra(Kv::Memory).await.unwrap()).await;
    for encoding in ["br", "gzip"] {
        let answer = api()
            .post(s.at("/api/orders/holds"))
            .bearer_auth(token_for("compressed"))
            .header("accept-encoding", encoding)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400);
        assert_eq!(answer.headers().get("content-encoding"), None, "{encoding}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "VALIDATION_FAILED");
    }
}

/// A total of 0 needs no payment intent; one given must match 0; paid seats still need one.
async fn free_seats_need_no_payment(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let free = event(&s, 1, 5, 0.0).await;
    let buyer = token_for("free-rider");
    let buy = |hold: String, seat: &'static str, intent: Option<String>| {
        let mut body = json!({"eventId": free, "holdId": hold, "seatIds": [seat]});
        if let Some(intent) = intent {
            body["paymentIntentId"] = json!(intent);
        }
        post(&s, &buyer, "/api/orders/purchase", body)
    };
    let first = hold_id(&s, &buyer, &free, &["R1-S1"]).await;
    let bought = buy(first, "R1-S1", None).await;
    assert_eq!(bought.status(), 201);
    let order: Value = bought.json().await.unwrap();
    assert_eq!(order["paymentIntentId"], Value::Null);
    // A second free order: the "one order per intent" key does not get in the way.
    let second = hold_id(&s, &buyer, &free, &["R1-S2"]).await;
    assert_eq!(buy(second, "R1-S2", None).await.status(), 201);
    // An intent for a free seat must be for 0.
    let third = hold_id(&s, &buyer, &free, &["R1-S3"]).await;
    let ten = paid_intent(&s, &buyer, 10.0, "INR").await;
    assert_error(
        buy(third.clone(), "R1-S3", Some(ten)).await,
        409,
        "PAYMENT_MISMATCH",
    )
    .await;
    let zero = paid_intent(&s, &buyer, 0.0, "INR").await;
    assert_eq!(buy(third, "R1-S3", Some(zero)).await.status(), 201);
    let mine = get_json(&s, Some(&buyer), "/api/orders/orders").await;
    let paid_with: Vec<&Value> = mine["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["paymentIntentId"])
        .collect();
    assert_eq!(paid_with.iter().filter(|p| p.is_null()).count(), 2);
    assert_eq!(paid_with.len(), 3);

    // Seats that cost something still need an intent.
    let paid = event(&s, 1, 5, 5.0).await;
    let held = hold_id(&s, &buyer, &paid, &["R1-S1"]).await;
    let refused = post(
        &s,
        &buyer,
        "/api/orders/purchase",
        json!({"eventId": paid, "holdId": held, "seatIds": ["R1-S1"]}),
    )
    .await;
    let error = assert_error(refused, 400, "VALIDATION_FAILED").await;
    assert!(
        error["details"]["fields"]["paymentIntentId"].is_array(),
        "{error}"
    );
}

async fn the_whole_flow_through_the_gateway_with_cookies(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 3, 4, 250.5).await;
    let mut bus = s
        .stack
        .infra
        .bus
        .subscribe("test-orders", &["order.purchased"])
        .await
        .unwrap();
    let web = browser();
    let login = web
        .post(s.at("/api/auth/login"))
        .json(&json!({"email": "user@holdfast.test", "password": "holdfast-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    let states = seat_states(&s, &event_id).await;
    assert_eq!(states.len(), 12);
    assert!(states.values().all(|st| st == "available"));

    let held = web
        .post(s.at("/api/orders/holds"))
        .json(&json!({"eventId": event_id, "seatIds": ["R1-S1", "R1-S2"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 201);
    let held: Value = held.json().await.unwrap();
    let hold_id = held["holdId"].as_str().unwrap().to_string();
    assert!((295..=300).contains(&held["expiresInSeconds"].as_u64().unwrap()));
    assert_eq!(seat_states(&s, &event_id).await["R1-S1"], "held");

    let ttl: Value = web
        .get(s.at(&format!("/api/orders/holds/{hold_id}/ttl")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ttl["ttl"].as_u64().unwrap() > 0);
    let refreshed: Value = web
        .post(s.at(&format!("/api/orders/holds/{hold_id}/refresh")))
        .json(&json!({"extendSeconds": 120}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["holdId"], hold_id.as_str());
    let details: Value = web
        .get(s.at(&format!("/api/orders/holds/{hold_id}/details")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(details["eventId"], event_id.as_str());
    assert_eq!(details["seatIds"], json!(["R1-S1", "R1-S2"]));

    let intent: Value = web
        .post(s.at("/api/orders/payments/intent"))
        .json(&json!({"amount": 501, "currency": "INR"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intent["status"], "requires_confirmation");
    let confirmed: Value = web
        .post(s.at("/api/orders/payments/confirm"))
        .json(&json!({"paymentIntentId": intent["paymentIntentId"], "clientSecret": intent["clientSecret"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(confirmed["status"], "succeeded");

    let body = json!({"eventId": event_id, "holdId": hold_id, "seatIds": ["R1-S2", "R1-S1"], "paymentIntentId": intent["paymentIntentId"]});
    let bought = web
        .post(s.at("/api/orders/purchase"))
        .header("idempotency-key", "flow-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bought.status(), 201);
    assert!(bought.headers().get("idempotent-replayed").is_none());
    let order: Value = bought.json().await.unwrap();
    assert_eq!(order["status"], "reserved");
    let replay = web
        .post(s.at("/api/orders/purchase"))
        .header("idempotency-key", "flow-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), order);

    let orders: Value = web
        .get(s.at("/api/orders/orders"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine = orders["orders"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["_id"], mine[0]["orderId"]);
    assert_eq!(mine[0]["orderId"], order["orderId"]);
    assert_eq!(mine[0]["paymentIntentId"], intent["paymentIntentId"]);
    let ticket: Value = reqwest::get(s.at(&format!(
        "/api/public/orders/{}",
        order["orderId"].as_str().unwrap()
    )))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ticket["order"]["seatIds"], order["seatIds"]);
    let states = seat_states(&s, &event_id).await;
    assert_eq!(
        (
            states["R1-S1"].as_str(),
            states["R1-S2"].as_str(),
            states["R1-S3"].as_str()
        ),
        ("reserved", "reserved", "available")
    );

    let delivery = tokio::time::timeout(Duration::from_secs(5), bus.next())
        .await
        .expect("order.purchased published")
        .unwrap();
    assert_eq!(delivery.message.payload["orderId"], order["orderId"]);
    assert_eq!(delivery.message.payload["amount"], json!(501));
    delivery.ack().await.unwrap();
}

/// Invariants 1 and 2: 200 buyers, 50 seats, holds of 1–4 seats. No seat is held by two holds,
/// the reserved seats are exactly the seats of the orders, every loser got 409, nothing 5xx.
async fn two_hundred_buyers_race_for_fifty_seats(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 5, 10, 10.0).await;
    let s = Arc::new(s);
    let mut buyers = Vec::new();
    for buyer in 0..200u64 {
        let (s, event_id) = (s.clone(), event_id.clone());
        buyers.push(tokio::spawn(async move {
            let token = token_for(&format!("buyer{buyer}"));
            // Deterministic, overlapping picks: 1–4 adjacent seats around the front rows.
            let count = 1 + (buyer % 4) as u32;
            let start = (buyer * 7919 % 50) as u32;
            let seats: Vec<String> = (0..count)
                .map(|i| {
                    let n = (start + i) % 50;
                    format!("R{}-S{}", n / 10 + 1, n % 10 + 1)
                })
                .collect();
            let seat_refs: Vec<&str> = seats.iter().map(String::as_str).collect();
            let res = hold(&s, &token, &event_id, &seat_refs).await;
            let status = res.status().as_u16();
            if status != 201 {
                return (status, None);
            }
            let hold_id = res.json::<Value>().await.unwrap()["holdId"].as_str().unwrap().to_string();
            let intent = paid_intent(&s, &token, 10.0 * f64::from(count), "INR").await;
            let bought = post(&s, &token, "/api/orders/purchase", json!({"eventId": event_id, "holdId": hold_id, "seatIds": seats, "paymentIntentId": intent})).await;
            let bought_status = bought.status().as_u16();
            let order: Value = bought.json().await.unwrap();
            (bought_status, Some((seats, order)))
        }));
    }
    let mut sold_by_orders = HashSet::new();
    let mut losers = 0;
    for buyer in buyers {
        let (status, result) = buyer.await.unwrap();
        assert!(status < 500, "a request answered {status}");
        match result {
            None => {
                assert_eq!(status, 409, "a losing hold answers 409");
                losers += 1;
            }
            Some((seats, order)) => {
                assert_eq!(status, 201, "{order}");
                for seat in seats {
                    assert!(
                        sold_by_orders.insert(seat.clone()),
                        "{seat} was held by two holds"
                    );
                }
            }
        }
    }
    assert!(losers > 0, "the picks overlap, so some buyers must lose");
    let reserved: HashSet<String> = seat_states(&s, &event_id)
        .await
        .into_iter()
        .filter(|(_, state)| state == "reserved")
        .map(|(seat, _)| seat)
        .collect();
    assert_eq!(reserved, sold_by_orders);
}

async fn buy_with_key(
    s: &TestStack,
    token: &str,
    key: &str,
    event_id: &str,
    seat: &str,
    price: f64,
) -> reqwest::Response {
    let hold_id = hold_id(s, token, event_id, &[seat]).await;
    let intent = paid_intent(s, token, price, "INR").await;
    api()
        .post(s.at("/api/orders/purchase"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"eventId": event_id, "holdId": hold_id, "seatIds": [seat], "paymentIntentId": intent}))
        .send()
        .await
        .unwrap()
}

/// A key is remembered for IDEMPOTENCY_TTL_SECONDS, then usable again for a new purchase.
async fn an_idempotency_key_is_usable_again_after_its_ttl(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[("IDEMPOTENCY_TTL_SECONDS", "1")]).await else {
        return;
    };
    let event_id = event(&s, 1, 4, 10.0).await;
    let token = token_for("key-reuser");
    let first = buy_with_key(&s, &token, "monthly", &event_id, "R1-S1", 10.0).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let second = buy_with_key(&s, &token, "monthly", &event_id, "R1-S2", 10.0).await;
    assert_eq!(second.status(), 201, "the expired key is free again");
    assert!(second.headers().get("idempotent-replayed").is_none());
    let second: Value = second.json().await.unwrap();
    assert_ne!(second["orderId"], first["orderId"]);
    assert_eq!(second["seatIds"], json!(["R1-S2"]));
}

/// Event ids are read case-insensitively and normalised once: an upper-case spelling sees the
/// same sold and held seats, and cannot hold a sold seat.
async fn upper_case_event_ids_see_the_same_seats(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 1, 3, 10.0).await;
    let upper = event_id.to_ascii_uppercase();
    assert_ne!(upper, event_id);
    let token = token_for("upper-buyer");
    let bought = buy_with_key(&s, &token, "k", &upper, "R1-S1", 10.0).await;
    assert_eq!(bought.status(), 201);
    assert_eq!(
        bought.json::<Value>().await.unwrap()["eventId"],
        event_id.as_str()
    );
    hold_id(&s, &token, &event_id, &["R1-S2"]).await;
    for id in [&event_id, &upper] {
        let states = seat_states(&s, id).await;
        assert_eq!(states["R1-S1"], "reserved", "{id}");
        assert_eq!(states["R1-S2"], "held", "{id}");
    }
    let other = token_for("upper-rival");
    for id in [&event_id, &upper] {
        let res = hold(&s, &other, id, &["R1-S1"]).await;
        assert_error(res, 409, "CONFLICT_SEATS").await;
        let res = hold(&s, &other, id, &["R1-S2"]).await;
        assert_error(res, 409, "CONFLICT_SEATS").await;
    }
}

/// Invariant 6: 50 concurrent purchases with one key make one order.
async fn one_idempotency_key_makes_one_order(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 2, 5, 100.0).await;
    let token = token_for("idem-buyer");
    let hold_id = hold_id(&s, &token, &event_id, &["R1-S1"]).await;
    let intent = paid_intent(&s, &token, 100.0, "INR").await;
    let body = json!({"eventId": event_id, "holdId": hold_id, "seatIds": ["R1-S1"], "paymentIntentId": intent});
    let s = Arc::new(s);
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let (s, token, body) = (s.clone(), token.clone(), body.clone());
            tokio::spawn(async move {
                let res = api()
                    .post(s.at("/api/orders/purchase"))
                    .bearer_auth(&token)
                    .header("idempotency-key", "same-key")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut order_ids = HashSet::new();
    for attempt in attempts {
        let (status, body) = attempt.await.unwrap();
        match status {
            201 => {
                order_ids.insert(body["orderId"].as_str().unwrap().to_string());
            }
            409 => assert_eq!(body["code"], "IDEMPOTENCY_IN_PROGRESS", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        order_ids.len(),
        1,
        "every success names the same single order"
    );
    let orders: Value = api()
        .get(s.at("/api/orders/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders["orders"].as_array().unwrap().len(), 1);

    let later = api()
        .post(s.at("/api/orders/purchase"))
        .bearer_auth(&token)
        .header("idempotency-key", "same-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(later.status(), 201);
    assert_eq!(later.headers()["idempotent-replayed"], "true");
    assert!(
        order_ids.contains(
            later.json::<Value>().await.unwrap()["orderId"]
                .as_str()
                .unwrap()
        )
    );

    let mut other_body = body.clone();
    other_body["seatIds"] = json!(["R1-S2"]);
    let reused = api()
        .post(s.at("/api/orders/purchase"))
        .bearer_auth(&token)
        .header("idempotency-key", "same-key")
        .json(&other_body)
        .send()
        .await
        .unwrap();
    assert_error(reused, 422, "IDEMPOTENCY_KEY_REUSED").await;
    let too_long = api()
        .post(s.at("/api/orders/purchase"))
        .bearer_auth(&token)
        .header("idempotency-key", "k".repeat(256))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(too_long, 400, "INVALID_IDEMPOTENCY_KEY").await;
}

async fn an_expired_hold_frees_its_seats_and_cannot_be_bought(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[("HOLD_TTL_SECONDS", "1")]).await else {
        return;
    };
    let event_id = event(&s, 1, 5, 20.0).await;
    let token = token_for("slow-buyer");
    let hold_id = hold_id(&s, &token, &event_id, &["R1-S1", "R1-S2"]).await;
    let intent = paid_intent(&s, &token, 40.0, "INR").await;
    assert_eq!(seat_states(&s, &event_id).await["R1-S1"], "held");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let states = seat_states(&s, &event_id).await;
    assert!(states.values().all(|st| st == "available"), "{states:?}");
    let res = post(&s, &token, "/api/orders/purchase", json!({"eventId": event_id, "holdId": hold_id, "seatIds": ["R1-S1", "R1-S2"], "paymentIntentId": intent})).await;
    assert_error(res, 409, "HOLD_NOT_FOUND").await;
    let details = api()
        .get(s.at(&format!("/api/orders/holds/{hold_id}/details")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(details, 404, "NOT_FOUND").await;
    let ttl: Value = api()
        .get(s.at(&format!("/api/orders/holds/{hold_id}/ttl")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ttl["ttl"], 0);
    // Someone else can take the freed seats.
    hold_id_for_other(&s, &event_id).await;
}

async fn hold_id_for_other(s: &TestStack, event_id: &str) {
    let other = token_for("next-buyer");
    assert_eq!(hold(s, &other, event_id, &["R1-S1"]).await.status(), 201);
}

/// Invariant 1 at the store: a seat sold without any hold knowing makes the purchase fail, and
/// nothing of it is written.
async fn a_seat_sold_behind_the_holds_back_fails_the_purchase_cleanly(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 1, 5, 20.0).await;
    let token = token_for("unlucky");
    let hold_id = hold_id(&s, &token, &event_id, &["R1-S3", "R1-S4"]).await;
    let intent = paid_intent(&s, &token, 40.0, "INR").await;
    s.sell_behind_the_back(&event_id, "R1-S4").await;
    let res = post(&s, &token, "/api/orders/purchase", json!({"eventId": event_id, "holdId": hold_id, "seatIds": ["R1-S3", "R1-S4"], "paymentIntentId": intent})).await;
    let error = assert_error(res, 409, "SEAT_ALREADY_RESERVED").await;
    assert_eq!(error["details"]["conflicts"], json!(["R1-S4"]));
    let orders: Value = api()
        .get(s.at("/api/orders/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders["orders"], json!([]));
    let (sold, outbox) = s.sold_and_outbox_counts(&event_id).await;
    assert_eq!(
        (sold, outbox),
        (1, 0),
        "only the seat sold elsewhere; no outbox message"
    );
    assert_eq!(seat_states(&s, &event_id).await["R1-S4"], "reserved");
}

/// Invariants 3 and 5.
async fn holds_and_intents_belong_to_their_owner(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 2, 5, 30.0).await;
    let (alice, mallory) = (token_for("alice"), token_for("mallory"));
    let hold_id = hold_id(&s, &alice, &event_id, &["R2-S1"]).await;

    for res in [
        api()
            .get(s.at(&format!("/api/orders/holds/{hold_id}/details")))
            .bearer_auth(&mallory)
            .send()
            .await
            .unwrap(),
        api()
            .post(s.at(&format!("/api/orders/holds/{hold_id}/refresh")))
            .bearer_auth(&mallory)
            .send()
            .await
            .unwrap(),
        api()
            .delete(s.at(&format!("/api/orders/holds/{hold_id}")))
            .bearer_auth(&mallory)
            .send()
            .await
            .unwrap(),
    ] {
        assert_error(res, 404, "NOT_FOUND").await;
    }
    let ttl: Value = api()
        .get(s.at(&format!("/api/orders/holds/{hold_id}/ttl")))
        .bearer_auth(&mallory)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ttl["ttl"], 0);
    let mallory_intent = paid_intent(&s, &mallory, 30.0, "INR").await;
    let stolen = post(&s, &mallory, "/api/orders/purchase", json!({"eventId": event_id, "holdId": hold_id, "seatIds": ["R2-S1"], "paymentIntentId": mallory_intent})).await;
    assert_error(stolen, 409, "HOLD_NOT_FOUND").await;
    let anonymous = api()
        .post(s.at("/api/orders/holds"))
        .json(&json!({"eventId": event_id, "seatIds": ["R2-S2"]}))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "UNAUTHENTICATED").await;

    let buy = |intent: String| json!({"eventId": event_id, "holdId": hold_id, "seatIds": ["R2-S1"], "paymentIntentId": intent});
    let foreign = post(
        &s,
        &alice,
        "/api/orders/purchase",
        buy(mallory_intent.clone()),
    )
    .await;
    assert_error(foreign, 402, "PAYMENT_REQUIRED").await;
    let unconfirmed: Value = post(
        &s,
        &alice,
        "/api/orders/payments/intent",
        json!({"amount": 30, "currency": "INR"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let res = post(
        &s,
        &alice,
        "/api/orders/purchase",
        buy(unconfirmed["paymentIntentId"].as_str().unwrap().into()),
    )
    .await;
    assert_error(res, 402, "PAYMENT_REQUIRED").await;
    let bad_secret = post(
        &s,
        &alice,
        "/api/orders/payments/confirm",
        json!({"paymentIntentId": unconfirmed["paymentIntentId"], "clientSecret": "guess"}),
    )
    .await;
    assert_error(bad_secret, 401, "INVALID_CLIENT_SECRET").await;
    let others_confirm = post(&s, &mallory, "/api/orders/payments/confirm", json!({"paymentIntentId": unconfirmed["paymentIntentId"], "clientSecret": unconfirmed["clientSecret"]})).await;
    assert_error(others_confirm, 404, "NOT_FOUND").await;
    let declined: Value = post(
        &s,
        &alice,
        "/api/orders/payments/intent",
        json!({"amount": 30, "currency": "INR", "simulate": "decline"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let res = post(&s, &alice, "/api/orders/payments/confirm", json!({"paymentIntentId": declined["paymentIntentId"], "clientSecret": declined["clientSecret"]})).await;
    assert_error(res, 402, "PAYMENT_DECLINED").await;
    let too_little = paid_intent(&s, &alice, 29.99, "INR").await;
    assert_error(
        post(&s, &alice, "/api/orders/purchase", buy(too_little)).await,
        409,
        "PAYMENT_MISMATCH",
    )
    .await;
    let wrong_currency = paid_intent(&s, &alice, 30.0, "USD").await;
    assert_error(
        post(&s, &alice, "/api/orders/purchase", buy(wrong_currency)).await,
        409,
        "PAYMENT_MISMATCH",
    )
    .await;

    let right = paid_intent(&s, &alice, 30.0, "INR").await;
    assert_eq!(
        post(&s, &alice, "/api/orders/purchase", buy(right.clone()))
            .await
            .status(),
        201
    );
    let second_hold = hold_id_of(&s, &alice, &event_id, "R2-S3").await;
    let reuse = post(&s, &alice, "/api/orders/purchase", json!({"eventId": event_id, "holdId": second_hold, "seatIds": ["R2-S3"], "paymentIntentId": right})).await;
    assert_error(reuse, 409, "PAYMENT_MISMATCH").await;
}

async fn hold_id_of(s: &TestStack, token: &str, event_id: &str, seat: &str) -> String {
    hold_id(s, token, event_id, &[seat]).await
}

async fn bad_hold_requests_get_400_and_caps_apply(kv: Kv, db: Db) {
    let Some(s) = stack(
        kv,
        db,
        &[("HOLD_TTL_SECONDS", "2"), ("HOLD_MAX_SECONDS", "3")],
    )
    .await
    else {
        return;
    };
    let event_id = event(&s, 3, 5, 10.0).await;
    let token = token_for("careless");
    let eleven: Vec<String> = (1..=5)
        .map(|n| format!("R1-S{n}"))
        .chain((1..=5).map(|n| format!("R2-S{n}")))
        .chain(["R3-S1".to_string()])
        .collect();
    for body in [
        json!({"eventId": event_id, "seatIds": []}),
        json!({"eventId": event_id, "seatIds": eleven}),
        json!({"eventId": event_id, "seatIds": ["R1-S1", "R1-S1"]}),
        json!({"eventId": event_id, "seatIds": ["R9-S1"]}),
        json!({"eventId": event_id, "seatIds": ["seat-one"]}),
    ] {
        assert_error(
            post(&s, &token, "/api/orders/holds", body).await,
            400,
            "INVALID_SEATS",
        )
        .await;
    }
    assert_error(
        post(
            &s,
            &token,
            "/api/orders/holds",
            json!({"seatIds": ["R1-S1"]}),
        )
        .await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        post(
            &s,
            &token,
            "/api/orders/holds",
            json!({"eventId": event_id, "seatIds": "R1-S1"}),
        )
        .await,
        400,
        "INVALID_JSON",
    )
    .await;
    assert_error(
        post(
            &s,
            &token,
            "/api/orders/holds",
            json!({"eventId": "nope", "seatIds": ["R1-S1"]}),
        )
        .await,
        400,
        "INVALID_ID",
    )
    .await;
    assert_error(
        post(
            &s,
            &token,
            "/api/orders/holds",
            json!({"eventId": "0123456789abcdef01234567", "seatIds": ["R1-S1"]}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        reqwest::get(s.at("/api/orders/seats/0123456789abcdef01234567"))
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        reqwest::get(s.at("/api/orders/seats/zzz")).await.unwrap(),
        400,
        "INVALID_ID",
    )
    .await;

    let first = hold_id(&s, &token, &event_id, &["R1-S1"]).await;
    hold_id(&s, &token, &event_id, &["R1-S2"]).await;
    assert_error(
        hold(&s, &token, &event_id, &["R1-S3"]).await,
        409,
        "HOLD_LIMIT",
    )
    .await;
    let conflict = hold(&s, &token_for("rival"), &event_id, &["R1-S4", "R1-S1"]).await;
    let body = assert_error(conflict, 409, "CONFLICT_SEATS").await;
    assert_eq!(body["details"]["conflicts"], json!(["R1-S1"]));
    assert_eq!(body["conflicts"], json!(["R1-S1"]));
    assert!(body["error"].as_str().unwrap().contains("R1-S1"));

    // Refresh: capped per call (2 s default here) and by the 3 s lifetime.
    let refreshed: Value = post(
        &s,
        &token,
        &format!("/api/orders/holds/{first}/refresh"),
        json!({"extendSeconds": 3600}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(refreshed["ttl"].as_u64().unwrap() <= 3, "{refreshed}");
    assert_error(
        post(
            &s,
            &token,
            &format!("/api/orders/holds/{first}/refresh"),
            json!({"extendSeconds": 0}),
        )
        .await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let gone = post(
        &s,
        &token,
        &format!("/api/orders/holds/{first}/refresh"),
        json!({}),
    )
    .await;
    assert_error(gone, 404, "NOT_FOUND").await;
    let release = api()
        .delete(s.at(&format!("/api/orders/holds/{first}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(release, 404, "NOT_FOUND").await;
}

async fn held_or_sold_seats_lock_the_layout(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 2, 2, 5.0).await;
    let organizer = access_token(&s, "organizer@holdfast.test", "holdfast-demo").await;
    let token = token_for("locker");
    let first = hold_id(&s, &token, &event_id, &["R1-S1"]).await;
    let path = format!("/api/events/{event_id}");
    let relayout = api()
        .put(s.at(&path))
        .bearer_auth(&organizer)
        .json(&json!({"rows": 3}))
        .send()
        .await
        .unwrap();
    assert_error(relayout, 409, "LAYOUT_LOCKED").await;
    let rename = api()
        .put(s.at(&path))
        .bearer_auth(&organizer)
        .json(&json!({"title": "Renamed", "rows": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(rename.status(), 200);
    let delete = api()
        .delete(s.at(&path))
        .bearer_auth(&organizer)
        .send()
        .await
        .unwrap();
    assert_error(delete, 409, "EVENT_HAS_ORDERS").await;
    let released = api()
        .delete(s.at(&format!("/api/orders/holds/{first}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), 204);
    assert!(
        seat_states(&s, &event_id)
            .await
            .values()
            .all(|st| st == "available")
    );
    let relayout = api()
        .put(s.at(&path))
        .bearer_auth(&organizer)
        .json(&json!({"rows": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(relayout.status(), 200);
    // At once, not only once event.updated arrives: releasing the layout lock made every
    // layout read before it stale.
    assert_eq!(seat_states(&s, &event_id).await.len(), 6);
    hold_id(&s, &token, &event_id, &["R3-S2"]).await;
    // The layout is locked again while a seat is held.
    let relayout = api()
        .put(s.at(&path))
        .bearer_auth(&organizer)
        .json(&json!({"rows": 2}))
        .send()
        .await
        .unwrap();
    assert_error(relayout, 409, "LAYOUT_LOCKED").await;
}

/// Invariant 6 across a restart: the answer is stored with the order, so a new process replays it.
async fn a_purchase_is_replayed_after_a_restart(db: Db) {
    let data = Storage::new(db);
    let first = spawn_on(&data, holdfast_common::infra::Infra::embedded()).await;
    let s = TestStack::wrap(first);
    let event_id = event(&s, 1, 3, 15.0).await;
    let token = token_for("restart-buyer");
    let hold_id = hold_id(&s, &token, &event_id, &["R1-S2"]).await;
    let intent = paid_intent(&s, &token, 15.0, "INR").await;
    let body = json!({"eventId": event_id, "holdId": hold_id, "seatIds": ["R1-S2"], "paymentIntentId": intent});
    let bought = api()
        .post(s.at("/api/orders/purchase"))
        .bearer_auth(&token)
        .header("idempotency-key", "survives")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bought.status(), 201);
    let order: Value = bought.json().await.unwrap();
    drop(s);

    // A new process on the same data, with a fresh (empty) TTL store: holds and intents are gone.
    let second = TestStack::wrap(spawn_on(&data, holdfast_common::infra::Infra::embedded()).await);
    let replay = api()
        .post(second.at("/api/orders/purchase"))
        .bearer_auth(&token)
        .header("idempotency-key", "survives")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), order);
    assert_eq!(seat_states(&second, &event_id).await["R1-S2"], "reserved");
}

async fn holds_that_run_out_are_announced_and_counted(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[("HOLD_TTL_SECONDS", "1")]).await else {
        return;
    };
    let mut bus = s
        .stack
        .infra
        .bus
        .subscribe("test-expiry", &["hold.expired"])
        .await
        .unwrap();
    let mut changes = s
        .stack
        .infra
        .bus
        .subscribe("test-hold-changes", &["hold.created", "hold.released"])
        .await
        .unwrap();
    let event_id = event(&s, 1, 4, 5.0).await;
    let token = token_for("forgetful");
    let forgotten = hold_id(&s, &token, &event_id, &["R1-S1"]).await;
    let released = hold_id(&s, &token, &event_id, &["R1-S2"]).await;
    let res = api()
        .delete(s.at(&format!("/api/orders/holds/{released}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    // Announced after the answers, in order: both holds taken, one released, one expired.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let delivery = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("a hold change published")
            .unwrap();
        let message = delivery.message.clone();
        delivery.ack().await.unwrap();
        seen.push((message.routing_key, message.payload["holdId"].clone()));
    }
    assert_eq!(
        seen,
        vec![
            ("hold.created".to_string(), json!(forgotten)),
            ("hold.created".to_string(), json!(released)),
            ("hold.released".to_string(), json!(released)),
        ]
    );

    let delivery = tokio::time::timeout(Duration::from_secs(5), bus.next())
        .await
        .expect("hold.expired published")
        .unwrap();
    assert_eq!(delivery.message.payload["holdId"], forgotten.as_str());
    assert_eq!(delivery.message.payload["seatIds"], json!(["R1-S1"]));
    delivery.ack().await.unwrap();
    let more = tokio::time::timeout(Duration::from_millis(1500), bus.next()).await;
    assert!(more.is_err(), "a released hold is not announced as expired");
    let metrics = crate::support::metrics(&s.stack.orders_url).await;
    let expired = crate::support::counter(&metrics, "holdfast_holds_expired_total");
    assert_eq!(expired, Some(1.0), "{metrics}");
}
