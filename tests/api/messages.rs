//! The bus messages every publisher emits in a real run decode as the types their consumers
//! read (`holdfast_common::messages`): a field renamed on one side fails here.

use std::collections::BTreeSet;
use std::time::Duration;

use holdfast_common::messages::{self, CATALOGUE, WaitlistRemoved};
use serde_json::json;

use crate::support::{
    Db, access_token, api, buy, cancel, event, hold_id, infra, post, spawn_with, token_for,
};

/// Signs up, creates, changes and deletes events, holds, releases, buys, cancels and lets a
/// waitlist offer run out, listening to every routing key; each message must decode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_published_in_a_sale_decodes_as_its_type() {
    let Some(infra) = infra(crate::support::Kv::Memory).await else {
        return;
    };
    let s = spawn_with(Db::Sqlite, &[("WAITLIST_OFFER_SECONDS", "2")], infra).await;
    let mut bus = s
        .stack
        .infra
        .bus
        .subscribe("test-every-message", &["#"])
        .await
        .unwrap();

    let signup = api()
        .post(s.at("/api/auth/signup"))
        .json(&json!({"email": "listener@holdfast.test", "password": "a-long-passphrase-1", "name": "L"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);

    let organizer = access_token(&s, "organizer@holdfast.test", "holdfast-demo").await;
    let event_id = event(&s, 1, 2, 5.0).await;
    let changed = api()
        .put(s.at(&format!("/api/events/{event_id}")))
        .bearer_auth(&organizer)
        .json(&json!({"title": "On-sale, renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let doomed = event(&s, 1, 1, 1.0).await;
    let deleted = api()
        .delete(s.at(&format!("/api/events/{doomed}")))
        .bearer_auth(&organizer)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let buyer = token_for("message-buyer");
    let released = hold_id(&s, &buyer, &event_id, &["R1-S1"]).await;
    let gone = api()
        .delete(s.at(&format!("/api/orders/holds/{released}")))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2"], 5.0).await;
    let waiting = token_for("message-waiter");
    let path = format!("/api/orders/events/{event_id}/waitlist");
    assert_eq!(
        post(&s, &waiting, &path, json!({"seats": 1}))
            .await
            .status(),
        201
    );
    // A ticket given to someone else.
    let tickets = crate::support::get_json(
        &s,
        Some(&buyer),
        &format!("/api/orders/orders/{order_id}/tickets"),
    )
    .await;
    let ticket_id = tickets["tickets"][0]["ticketId"].as_str().unwrap();
    let given = post(
        &s,
        &buyer,
        &format!("/api/orders/tickets/{ticket_id}/transfer"),
        json!({"email": "friend@holdfast.test"}),
    )
    .await;
    assert_eq!(given.status(), 200);
    // A seat comes free: offered to the waiting user, whose offer then runs out.
    let cancelled = cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S2"]}))).await;
    assert_eq!(cancelled.status(), 200);

    // Every type but `waitlist.removed` (which needs MAX_SEATS_PER_HOLD lowered under a
    // waiting entry; its payload is checked against the type in `common::messages`).
    let expected: BTreeSet<&str> = CATALOGUE
        .iter()
        .map(|entry| entry.routing_key)
        .filter(|key| *key != <WaitlistRemoved as messages::Message>::TYPE)
        .collect();
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < expected.len() {
        let delivery = tokio::time::timeout_at(deadline, bus.next())
            .await
            .unwrap_or_else(|_| panic!("messages never seen: {:?}", expected.difference(&seen)))
            .expect("the subscription stays open");
        let message = &delivery.message;
        if let Err(error) = messages::decode_any(message) {
            panic!(
                "{} does not decode: {error}\n{:#}",
                message.routing_key, message.payload
            );
        }
        assert!(!message.occurred_at.is_empty(), "{message:?}");
        if let Some(key) = expected.get(message.routing_key.as_str()) {
            seen.insert(*key);
        }
        delivery.ack().await.unwrap();
    }
}
