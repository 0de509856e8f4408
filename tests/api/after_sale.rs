//! After the sale, through the gateway: cancellations and refunds, the waitlist and its offers,
//! and the organizer's sales view. Each test runs on the in-process TTL store with SQLite, on
//! Redis with SQLite, and on Redis with MongoDB.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::{
    Db, Kv, Storage, TestStack, access_token, account_with_role, api, assert_error, buy, cancel,
    event, get_json, hold_id, infra, paid_intent, post, reconnect_redis, spawn_on, spawn_with,
    token_for,
};
use serde_json::{Value, json};

async fn stack(kv: Kv, db: Db, vars: &[(&str, &str)]) -> Option<TestStack> {
    if !db.available() {
        return None;
    }
    Some(spawn_with(db, vars, infra(kv).await?).await)
}

async fn seat_state(s: &TestStack, event_id: &str, seat: &str) -> String {
    let map = get_json(s, None, &format!("/api/orders/seats/{event_id}")).await;
    map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["seatId"] == seat)
        .map(|entry| entry["state"].as_str().unwrap().to_string())
        .unwrap()
}

/// Polls the caller's holds until one is a waitlist offer (or gives up after 10 s).
async fn offer_of(s: &TestStack, token: &str) -> Option<Value> {
    for _ in 0..200 {
        let holds = get_json(s, Some(token), "/api/orders/holds").await;
        if let Some(offer) = holds["holds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["offer"] == true)
        {
            return Some(offer.clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Cancelling frees the seats, refunds pro rata in minor units, and answers the same twice.
async fn a_cancellation_frees_seats_and_refunds_pro_rata(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 1, 5, 10.01).await;
    let buyer = token_for("canceller");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2", "R1-S3"], 10.01).await;
    let (sold_before, outbox_before) = s.sold_and_outbox_counts(&event_id).await;
    assert_eq!(sold_before, 3);

    let partial = cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S2"]}))).await;
    assert_eq!(partial.status(), 200);
    let partial: Value = partial.json().await.unwrap();
    assert_eq!(partial["status"], "partially_cancelled");
    assert_eq!(partial["cancelledSeatIds"], json!(["R1-S2"]));
    assert_eq!(partial["refundedAmount"], 10.01);
    assert_eq!(partial["refunds"][0]["amount"], 10.01);
    assert_eq!(partial["refunds"][0]["status"], "refunded");
    assert!(partial["refunds"][0]["paymentIntentId"].is_string());
    assert_eq!(seat_state(&s, &event_id, "R1-S2").await, "available");
    assert_eq!(seat_state(&s, &event_id, "R1-S1").await, "reserved");
    let (sold, outbox) = s.sold_and_outbox_counts(&event_id).await;
    assert_eq!((sold, outbox), (2, outbox_before + 1));

    // The rest, without a body; then the same again answers the same and refunds nothing more.
    let all = cancel(&s, &buyer, &order_id, None).await;
    assert_eq!(all.status(), 200);
    let all: Value = all.json().await.unwrap();
    assert_eq!(all["status"], "cancelled");
    assert_eq!(all["refundedAmount"], 30.03);
    assert_eq!(all["refunds"][1]["amount"], 20.02);
    let again = cancel(&s, &buyer, &order_id, None).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), all);
    let repeated = cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S2"]}))).await;
    assert_eq!(repeated.json::<Value>().await.unwrap(), all);
    assert_eq!(
        s.sold_and_outbox_counts(&event_id).await,
        (0, outbox_before + 2)
    );
    let mine = get_json(&s, Some(&buyer), "/api/orders/orders").await;
    assert_eq!(mine["orders"][0]["status"], "cancelled");

    // The seats can be held and bought again.
    let other = token_for("second-chance");
    buy(&s, &other, &event_id, &["R1-S2"], 10.01).await;
    assert_eq!(seat_state(&s, &event_id, "R1-S2").await, "reserved");
}

/// Someone else's order is not found; bad input gets a 4xx with the error body.
async fn cancellations_refuse_strangers_and_bad_input(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 1, 4, 5.0).await;
    let buyer = token_for("owner-of-order");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2"], 5.0).await;
    let stranger = token_for("stranger");
    assert_error(
        cancel(&s, &stranger, &order_id, None).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let other_organizer = account_with_role(&s, "other-organizer@example.com", "organizer").await;
    assert_error(
        cancel(&s, &other_organizer, &order_id, None).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let unknown = "6f1c1c3e-5b1a-4c1e-8f00-000000000000";
    assert_error(cancel(&s, &buyer, unknown, None).await, 404, "NOT_FOUND").await;
    assert_error(
        cancel(&s, &buyer, "not-a-uuid", None).await,
        404,
        "NOT_FOUND",
    )
    .await;
    for (body, code) in [
        (json!({"seatIds": ["R1-S3"]}), "INVALID_SEATS"),
        (json!({"seatIds": ["R1-S1", "R1-S1"]}), "INVALID_SEATS"),
        (json!({"seatIds": []}), "VALIDATION_FAILED"),
        (json!({"seatIds": "R1-S1"}), "INVALID_JSON"),
        (json!({"seats": 1}), "INVALID_JSON"),
    ] {
        assert_error(cancel(&s, &buyer, &order_id, Some(body)).await, 400, code).await;
    }
    let malformed = api()
        .post(s.at(&format!("/api/orders/orders/{order_id}/cancel")))
        .bearer_auth(&buyer)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "INVALID_JSON").await;
    let anonymous = api()
        .post(s.at(&format!("/api/orders/orders/{order_id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // Nothing was cancelled by any of it.
    assert_eq!(s.sold_and_outbox_counts(&event_id).await.0, 2);
}

/// Past the cutoff the buyer is refused; the event's organizer and admins may still cancel.
async fn buyers_cannot_cancel_after_the_cutoff_but_organizers_can(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[("CANCELLATION_CUTOFF_HOURS", "72")]).await else {
        return;
    };
    let organizer = access_token(&s, "organizer@holdfast.test", "holdfast-demo").await;
    let soon =
        holdfast_common::when::format_millis(holdfast_common::when::now_millis() + 24 * 3_600_000);
    let created: Value = api()
        .post(s.at("/api/events"))
        .bearer_auth(&organizer)
        .json(&json!({"title": "Tomorrow", "date": soon, "rows": 1, "seatsPerRow": 4, "price": 8, "currency": "INR"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = created["_id"].as_str().unwrap().to_string();
    let buyer = token_for("late-buyer");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2", "R1-S3"], 8.0).await;
    let closed = assert_error(
        cancel(&s, &buyer, &order_id, None).await,
        409,
        "CANCELLATION_CLOSED",
    )
    .await;
    assert!(closed["error"].as_str().unwrap().contains("72"), "{closed}");
    let by_organizer = cancel(
        &s,
        &organizer,
        &order_id,
        Some(json!({"seatIds": ["R1-S1"]})),
    )
    .await;
    assert_eq!(by_organizer.status(), 200);
    let admin = access_token(&s, "admin@holdfast.test", "holdfast-demo").await;
    let by_admin = cancel(&s, &admin, &order_id, Some(json!({"seatIds": ["R1-S2"]}))).await;
    assert_eq!(by_admin.status(), 200);
    let order: Value = by_admin.json().await.unwrap();
    assert_eq!(order["refundedAmount"], 16);
    assert_eq!(order["status"], "partially_cancelled");
    // What is already cancelled answers as it stands, even past the cutoff.
    let idempotent = cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S1"]}))).await;
    assert_eq!(idempotent.status(), 200);
}

/// Cancel → seats free → the waitlisted user gets the offer → buys it; an offer left to run out
/// passes to the next in line.
async fn the_waitlist_offers_freed_seats_first_come_first_served(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[("WAITLIST_OFFER_SECONDS", "5")]).await else {
        return;
    };
    let event_id = event(&s, 1, 2, 5.0).await;
    let path = format!("/api/orders/events/{event_id}/waitlist");
    let buyer = token_for("sold-out-buyer");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2"], 5.0).await;
    let (first, second) = (token_for("first-in-line"), token_for("second-in-line"));
    let joined = post(&s, &first, &path, json!({"seats": 1})).await;
    assert_eq!(joined.status(), 201);
    let joined: Value = joined.json().await.unwrap();
    assert_eq!(
        (joined["position"].clone(), joined["length"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        post(&s, &second, &path, json!({"seats": 1})).await.status(),
        201
    );
    // Joining again changes nothing.
    let again = post(&s, &second, &path, json!({"seats": 2})).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["seats"], 1);
    assert_eq!(get_json(&s, Some(&second), &path).await["position"], 2);

    // One seat comes free: the first in line is offered it.
    let cancelled = cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S2"]}))).await;
    assert_eq!(cancelled.status(), 200);
    let offer = offer_of(&s, &first)
        .await
        .expect("the first in line gets an offer");
    assert_eq!(offer["seatIds"], json!(["R1-S2"]));
    assert_eq!(seat_state(&s, &event_id, "R1-S2").await, "held");
    let entry = get_json(&s, Some(&first), &path).await;
    assert_eq!(entry["offer"]["holdId"], offer["holdId"]);
    assert!(offer_of_quickly(&s, &second).await.is_none());

    // The offer runs out: the seat passes to the second in line; the first leaves the list.
    let passed = offer_of(&s, &second).await.expect("the offer passes on");
    assert_eq!(passed["seatIds"], json!(["R1-S2"]));
    let gone = api()
        .get(s.at(&path))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_error(gone, 404, "NOT_FOUND").await;

    // The second buys the offer and leaves the waitlist.
    let intent = paid_intent(&s, &second, 5.0, "INR").await;
    let bought = post(
        &s,
        &second,
        "/api/orders/purchase",
        json!({"eventId": event_id, "holdId": passed["holdId"], "seatIds": ["R1-S2"], "paymentIntentId": intent}),
    )
    .await;
    assert_eq!(bought.status(), 201);
    let left = api()
        .get(s.at(&path))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_error(left, 404, "NOT_FOUND").await;
    assert_eq!(seat_state(&s, &event_id, "R1-S2").await, "reserved");
}

/// No offer within half a second.
async fn offer_of_quickly(s: &TestStack, token: &str) -> Option<Value> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let holds = get_json(s, Some(token), "/api/orders/holds").await;
    holds["holds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["offer"] == true)
        .cloned()
}

/// Leaving releases an offer; bad waitlist input gets a 4xx with the error body.
async fn waitlist_requests_are_checked(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 1, 1, 5.0).await;
    let path = format!("/api/orders/events/{event_id}/waitlist");
    let user = token_for("waiting-user");
    for (body, status, code) in [
        (json!({}), 400, "VALIDATION_FAILED"),
        (json!({"seats": 0}), 400, "VALIDATION_FAILED"),
        (json!({"seats": 11}), 400, "VALIDATION_FAILED"),
        (json!({"seats": -1}), 400, "INVALID_JSON"),
        (json!({"seats": "two"}), 400, "INVALID_JSON"),
        (json!({"seats": 1, "extra": true}), 400, "INVALID_JSON"),
    ] {
        assert_error(post(&s, &user, &path, body).await, status, code).await;
    }
    let bad_event = "/api/orders/events/nope/waitlist";
    assert_error(
        post(&s, &user, bad_event, json!({"seats": 1})).await,
        400,
        "INVALID_ID",
    )
    .await;
    let unknown = "/api/orders/events/0123456789abcdef01234567/waitlist";
    assert_error(
        post(&s, &user, unknown, json!({"seats": 1})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let not_on_it = api()
        .get(s.at(&path))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_error(not_on_it, 404, "NOT_FOUND").await;
    let not_on_it = api()
        .delete(s.at(&path))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_error(not_on_it, 404, "NOT_FOUND").await;

    // The one seat is free: hold it instead of waiting for it.
    let free = post(&s, &user, &path, json!({"seats": 1})).await;
    let body = assert_error(free, 409, "SEATS_AVAILABLE").await;
    assert_eq!(body["details"]["available"], 1);
    // Held by someone else: the user joins, and is offered it when it is released.
    let other = token_for("holding-user");
    let held = hold_id(&s, &other, &event_id, &["R1-S1"]).await;
    assert_eq!(
        post(&s, &user, &path, json!({"seats": 1})).await.status(),
        201
    );
    let released = api()
        .delete(s.at(&format!("/api/orders/holds/{held}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), 204);
    let offer = offer_of(&s, &user)
        .await
        .expect("the released seat is offered");
    assert_eq!(offer["seatIds"], json!(["R1-S1"]));
    // Leaving releases the offer.
    let left = api()
        .delete(s.at(&path))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 204);
    assert_eq!(seat_state(&s, &event_id, "R1-S1").await, "available");
    let holds = get_json(&s, Some(&user), "/api/orders/holds").await;
    assert_eq!(holds["holds"], json!([]));
}

/// The organizer's sales view: the owner and admins only; figures follow sales and refunds.
async fn the_sales_view_follows_sales_and_refunds(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 2, 5, 12.5).await;
    let path = format!("/api/orders/events/{event_id}/sales");
    let organizer = access_token(&s, "organizer@holdfast.test", "holdfast-demo").await;
    let empty = get_json(&s, Some(&organizer), &path).await;
    assert_eq!(empty["seats"]["available"], 10);
    assert_eq!(empty["revenue"], json!([]));

    let buyer = token_for("sales-buyer");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2"], 12.5).await;
    buy(&s, &token_for("sales-buyer-2"), &event_id, &["R2-S1"], 12.5).await;
    hold_id(&s, &token_for("sales-holder"), &event_id, &["R2-S5"]).await;
    post(
        &s,
        &token_for("sales-waiter"),
        &format!("/api/orders/events/{event_id}/waitlist"),
        json!({"seats": 2}),
    )
    .await;
    assert_eq!(
        cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S1"]})))
            .await
            .status(),
        200
    );
    // The cancelled seat may be offered to the waiter (held) or not yet: sold and refunds are
    // settled either way.
    let report = get_json(&s, Some(&organizer), &path).await;
    assert_eq!(report["seats"]["sold"], 2);
    assert_eq!(report["seats"]["capacity"], 10);
    assert_eq!(
        report["revenue"],
        json!([{"currency": "INR", "gross": 37.5, "refunded": 12.5, "net": 25}])
    );
    assert_eq!(report["cancellations"]["ordersPartiallyCancelled"], 1);
    assert_eq!(report["cancellations"]["refunds"], 1);
    assert_eq!(report["salesPerHour"][0]["orders"], 2);
    assert_eq!(report["salesPerHour"][0]["seats"], 3);

    let admin = access_token(&s, "admin@holdfast.test", "holdfast-demo").await;
    assert_eq!(get_json(&s, Some(&admin), &path).await["seats"]["sold"], 2);
    let other_organizer = account_with_role(&s, "rival@example.com", "organizer").await;
    let refused = api()
        .get(s.at(&path))
        .bearer_auth(&other_organizer)
        .send()
        .await
        .unwrap();
    assert_error(refused, 403, "FORBIDDEN").await;
    let refused = api()
        .get(s.at(&path))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_error(refused, 403, "FORBIDDEN").await;
    let bad = api()
        .get(s.at("/api/orders/events/xyz/sales"))
        .bearer_auth(&organizer)
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "INVALID_ID").await;
}

/// A seat cancelled and bought again by someone else is named by one ticket only: every view
/// of the first order lists its live seats and, apart, the cancelled one with when.
async fn every_view_of_an_order_shows_its_live_and_cancelled_seats(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 1, 5, 10.0).await;
    let first = token_for("first-buyer");
    let order_id = buy(&s, &first, &event_id, &["R1-S1", "R1-S2", "R1-S3"], 10.0).await;
    let partial = cancel(&s, &first, &order_id, Some(json!({"seatIds": ["R1-S2"]}))).await;
    assert_eq!(partial.status(), 200);
    let partial: Value = partial.json().await.unwrap();
    let second = token_for("second-buyer");
    let resold = buy(&s, &second, &event_id, &["R1-S2"], 10.0).await;

    let live = json!(["R1-S1", "R1-S3"]);
    let ticket = get_json(&s, None, &format!("/api/public/orders/{order_id}")).await;
    let mine = get_json(&s, Some(&first), "/api/orders/orders").await;
    for (view, order) in [
        ("the cancel answer", &partial),
        ("the public ticket", &ticket["order"]),
        ("the buyer's list", &mine["orders"][0]),
    ] {
        assert_eq!(order["seatIds"], live, "{view}: {order}");
        assert_eq!(order["cancelledSeatIds"], json!(["R1-S2"]), "{view}");
        let cancellation = &order["cancellations"][0];
        assert_eq!(cancellation["seatId"], "R1-S2", "{view}");
        assert!(
            cancellation["cancelledAt"]
                .as_str()
                .is_some_and(|at| at.ends_with('Z')),
            "{view}: {cancellation}"
        );
    }
    assert_eq!(ticket["order"]["validForEntry"], true);
    // The seat's ticket is the second buyer's alone.
    let other = get_json(&s, None, &format!("/api/public/orders/{resold}")).await;
    assert_eq!(other["order"]["seatIds"], json!(["R1-S2"]));

    // A fully cancelled order's ticket admits nobody.
    cancel(&s, &first, &order_id, None).await;
    let ticket = get_json(&s, None, &format!("/api/public/orders/{order_id}")).await;
    assert_eq!(ticket["order"]["status"], "cancelled");
    assert_eq!(ticket["order"]["seatIds"], json!([]));
    assert_eq!(ticket["order"]["validForEntry"], false);
    assert_eq!(
        ticket["order"]["cancelledSeatIds"],
        json!(["R1-S2", "R1-S1", "R1-S3"])
    );
}

crate::support::on_every_store!(
    every_view_of_an_order_shows_its_live_and_cancelled_seats,
    a_cancellation_frees_seats_and_refunds_pro_rata,
    cancellations_refuse_strangers_and_bad_input,
    buyers_cannot_cancel_after_the_cutoff_but_organizers_can,
    the_waitlist_offers_freed_seats_first_come_first_served,
    waitlist_requests_are_checked,
    the_sales_view_follows_sales_and_refunds,
);

/// Two orders processes on one Redis and one order store: concurrent cancellations in both and
/// offer rounds in both never offer a seat twice nor sell it twice.
async fn two_processes_never_offer_or_sell_a_seat_twice(db: Db) {
    if !db.available() {
        return;
    }
    let Some(first_infra) = infra(Kv::Redis).await else {
        return;
    };
    let second_infra = reconnect_redis(&first_infra).await;
    let data = Storage::new(db);
    let a = TestStack::wrap(spawn_on(&data, first_infra).await);
    let b = TestStack::wrap(spawn_on(&data, second_infra).await);
    const SEATS: usize = 8;
    let event_id = event(&a, 1, SEATS as u32, 3.0).await;
    let path = format!("/api/orders/events/{event_id}/waitlist");
    let mut orders = Vec::new();
    for n in 1..=SEATS {
        let seat = format!("R1-S{n}");
        let token = token_for(&format!("holder-{n}"));
        orders.push((
            token.clone(),
            buy(&a, &token, &event_id, &[seat.as_str()], 3.0).await,
        ));
    }
    // Twice as many waiting as there are seats, joining through both processes.
    let waiters: Vec<String> = (0..2 * SEATS)
        .map(|n| token_for(&format!("waiter-{n}")))
        .collect();
    for (n, waiter) in waiters.iter().enumerate() {
        let via = if n % 2 == 0 { &a } else { &b };
        assert_eq!(
            post(via, waiter, &path, json!({"seats": 1})).await.status(),
            201
        );
    }
    // Every order cancelled at once, half through each process.
    let cancellations = orders.iter().enumerate().map(|(n, (token, order_id))| {
        let via = if n % 2 == 0 { &a } else { &b };
        cancel(via, token, order_id, None)
    });
    for answer in futures_util::future::join_all(cancellations).await {
        assert_eq!(answer.status(), 200);
    }
    // The first SEATS in line get one seat each, all different; nobody else gets one.
    let mut offered = HashSet::new();
    for waiter in &waiters[..SEATS] {
        let offer = offer_of(&a, waiter)
            .await
            .expect("an offer for each of the first in line");
        let seats = offer["seatIds"].as_array().unwrap();
        assert_eq!(seats.len(), 1);
        assert!(
            offered.insert(seats[0].as_str().unwrap().to_string()),
            "{offer}"
        );
    }
    assert_eq!(offered.len(), SEATS);
    for waiter in &waiters[SEATS..] {
        let holds = get_json(&b, Some(waiter), "/api/orders/holds").await;
        assert_eq!(holds["holds"], json!([]), "nothing left to offer");
    }
    // Everyone offered buys, alternating processes: every seat sells once.
    for (n, waiter) in waiters[..SEATS].iter().enumerate() {
        let via = if n % 2 == 0 { &b } else { &a };
        let offer = offer_of(via, waiter).await.unwrap();
        let intent = paid_intent(via, waiter, 3.0, "INR").await;
        let bought = post(
            via,
            waiter,
            "/api/orders/purchase",
            json!({"eventId": event_id, "holdId": offer["holdId"], "seatIds": offer["seatIds"], "paymentIntentId": intent}),
        )
        .await;
        assert_eq!(bought.status(), 201);
    }
    let report = get_json(
        &b,
        Some(&access_token(&b, "organizer@holdfast.test", "holdfast-demo").await),
        &format!("/api/orders/events/{event_id}/sales"),
    )
    .await;
    assert_eq!(report["seats"]["sold"], SEATS);
    assert_eq!(report["waitlist"]["entries"], SEATS);
    assert_eq!(report["waitlist"]["offers"], 0);
    drop((a, b));
    drop(data);
}

crate::support::on_both_document_stores!(two_processes_never_offer_or_sell_a_seat_twice);
