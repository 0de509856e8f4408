//! At the door, through the gateway: tickets and their signed passes, QR codes and printable
//! pages. Each test runs on the in-process TTL store with SQLite, on Redis with SQLite, and on
//! Redis with MongoDB.

use holdfast_common::ticket_pass::{self, PublicKey};
use serde_json::{Value, json};

use crate::support::{
    Db, Kv, TestStack, api, assert_error, buy, cancel, event, get_json, infra, spawn_with,
    token_for,
};

async fn stack(kv: Kv, db: Db) -> Option<TestStack> {
    if !db.available() {
        return None;
    }
    Some(spawn_with(db, &[], infra(kv).await?).await)
}

/// The event's published keys, as a scanner reads them.
async fn scanner_keys(s: &TestStack, event_id: &str) -> Vec<PublicKey> {
    let keys = get_json(s, None, &format!("/api/checkin/events/{event_id}/keys")).await;
    assert_eq!(keys["algorithm"], "Ed25519", "{keys}");
    keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            PublicKey::decode(
                k["keyId"].as_str().unwrap(),
                k["publicKey"].as_str().unwrap(),
            )
            .unwrap()
        })
        .collect()
}

async fn get(s: &TestStack, token: &str, path: &str) -> reqwest::Response {
    api()
        .get(s.at(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn tickets_of_order(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db).await else { return };
    let event_id = event(&s, 2, 4, 10.0).await;
    let buyer = token_for("6650c0ffee00000000000b01");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S2", "R1-S1"], 10.0).await;
    let tickets = get_json(
        &s,
        Some(&buyer),
        &format!("/api/orders/orders/{order_id}/tickets"),
    )
    .await;
    assert_eq!(tickets["orderId"], order_id.as_str());
    let list = tickets["tickets"].as_array().unwrap().clone();
    let seats: Vec<&str> = list.iter().map(|t| t["seatId"].as_str().unwrap()).collect();
    assert_eq!(seats, ["R1-S2", "R1-S1"], "in the order's seat order");

    // Each pass verifies with the published keys alone and names its ticket, event and seat.
    let keys = scanner_keys(&s, &event_id).await;
    for ticket in &list {
        assert_eq!(
            (ticket["status"].as_str(), ticket["version"].as_u64()),
            (Some("valid"), Some(1))
        );
        let pass = ticket_pass::verify(ticket["pass"].as_str().unwrap(), &keys).unwrap();
        assert_eq!(
            pass.ticket_id.to_string(),
            ticket["ticketId"].as_str().unwrap()
        );
        assert_eq!(
            (pass.event_id.as_str(), pass.seat_id.as_str()),
            (event_id.as_str(), ticket["seatId"].as_str().unwrap())
        );
    }
    let first = list[0]["ticketId"].as_str().unwrap().to_string();
    let one = get_json(&s, Some(&buyer), &format!("/api/orders/tickets/{first}")).await;
    assert_eq!(one["seatId"], "R1-S2");
    assert_eq!(one["pass"], list[0]["pass"]);

    // The QR code as SVG and PNG.
    let svg = get(&s, &buyer, &format!("/api/orders/tickets/{first}/qr")).await;
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let png = get(
        &s,
        &buyer,
        &format!("/api/orders/tickets/{first}/qr?format=png"),
    )
    .await;
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG"));
    assert_error(
        get(
            &s,
            &buyer,
            &format!("/api/orders/tickets/{first}/qr?format=gif"),
        )
        .await,
        400,
        "INVALID_QUERY",
    )
    .await;

    // The printable page shows every valid ticket.
    let page = get(
        &s,
        &buyer,
        &format!("/api/orders/orders/{order_id}/tickets/print"),
    )
    .await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = page.text().await.unwrap();
    assert_eq!(page.matches("<svg").count(), 2);
    assert!(page.contains("On-sale") && page.contains("R1-S1"), "{page}");

    // Nobody else sees them.
    let stranger = token_for("6650c0ffee00000000000b02");
    for path in [
        format!("/api/orders/orders/{order_id}/tickets"),
        format!("/api/orders/orders/{order_id}/tickets/print"),
        format!("/api/orders/tickets/{first}"),
        format!("/api/orders/tickets/{first}/qr"),
        "/api/orders/tickets/not-a-ticket".to_string(),
        "/api/orders/orders/not-an-order/tickets".to_string(),
    ] {
        assert_error(get(&s, &stranger, &path).await, 404, "NOT_FOUND").await;
    }
    let anonymous = api()
        .get(s.at(&format!("/api/orders/tickets/{first}")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

async fn a_cancelled_seat_revokes_its_ticket(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db).await else { return };
    let event_id = event(&s, 1, 4, 0.0).await;
    let buyer = token_for("6650c0ffee00000000000b03");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2"], 0.0).await;
    let cancelled = cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S1"]}))).await;
    assert_eq!(cancelled.status(), 200);
    let tickets = get_json(
        &s,
        Some(&buyer),
        &format!("/api/orders/orders/{order_id}/tickets"),
    )
    .await;
    let by_seat = |seat: &str| -> Value {
        tickets["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["seatId"] == seat)
            .unwrap()
            .clone()
    };
    let revoked = by_seat("R1-S1");
    assert_eq!(revoked["status"], "cancelled");
    assert_eq!(
        (revoked["pass"].clone(), revoked["qr"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(by_seat("R1-S2")["status"], "valid");
    let revoked_id = revoked["ticketId"].as_str().unwrap();
    assert_error(
        get(&s, &buyer, &format!("/api/orders/tickets/{revoked_id}/qr")).await,
        409,
        "TICKET_REVOKED",
    )
    .await;
    let page = get(
        &s,
        &buyer,
        &format!("/api/orders/orders/{order_id}/tickets/print"),
    )
    .await;
    assert_eq!(page.text().await.unwrap().matches("<svg").count(), 1);
}

async fn keys_are_published_for_existing_events_only(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db).await else { return };
    let event_id = event(&s, 1, 1, 0.0).await;
    assert_eq!(scanner_keys(&s, &event_id).await.len(), 1);
    let unknown = api()
        .get(s.at("/api/checkin/events/6650c0ffee0000000000ffff/keys"))
        .send()
        .await
        .unwrap();
    assert_error(unknown, 404, "NOT_FOUND").await;
    let malformed = api()
        .get(s.at("/api/checkin/events/nope/keys"))
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "INVALID_ID").await;
}

crate::support::on_every_store!(
    tickets_of_order,
    a_cancelled_seat_revokes_its_ticket,
    keys_are_published_for_existing_events_only,
);
