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
    assert!(
        page.contains("On-sale") && page.contains("Row 1, seat 1") && page.contains("(UTC)"),
        "{page}"
    );

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

/// The demo organizer's token (the organizer of every event `event` makes).
async fn organizer(s: &TestStack) -> String {
    crate::support::access_token(s, "organizer@holdfast.test", "holdfast-demo").await
}

async fn send(
    s: &TestStack,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> reqwest::Response {
    api()
        .request(method, s.at(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A new scanner device of the event; answers its token.
async fn device(s: &TestStack, organizer: &str, event_id: &str, name: &str) -> (String, String) {
    let made = send(
        s,
        organizer,
        reqwest::Method::POST,
        &format!("/api/checkin/events/{event_id}/devices"),
        json!({"name": name}),
    )
    .await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    (
        made["deviceId"].as_str().unwrap().to_string(),
        made["token"].as_str().unwrap().to_string(),
    )
}

/// The passes of an order, by seat.
async fn passes(
    s: &TestStack,
    buyer: &str,
    order_id: &str,
) -> std::collections::BTreeMap<String, String> {
    let tickets = get_json(
        s,
        Some(buyer),
        &format!("/api/orders/orders/{order_id}/tickets"),
    )
    .await;
    tickets["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["pass"].is_null())
        .map(|t| {
            (
                t["seatId"].as_str().unwrap().to_string(),
                t["pass"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn scan(s: &TestStack, token: &str, event_id: &str, body: Value) -> reqwest::Response {
    send(
        s,
        token,
        reqwest::Method::POST,
        &format!("/api/checkin/events/{event_id}/scan"),
        body,
    )
    .await
}

async fn scan_result(
    s: &TestStack,
    token: &str,
    event_id: &str,
    pass: &str,
    gate: &str,
    direction: &str,
) -> Value {
    let answer = scan(
        s,
        token,
        event_id,
        json!({"pass": pass, "gate": gate, "direction": direction}),
    )
    .await;
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

async fn scanning_at_the_door(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db).await else { return };
    let event_id = event(&s, 1, 4, 0.0).await;
    let other_event = event(&s, 1, 4, 0.0).await;
    let organizer = organizer(&s).await;
    let buyer = token_for("6650c0ffee00000000000c01");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2", "R1-S3"], 0.0).await;
    let elsewhere = buy(&s, &buyer, &other_event, &["R1-S1"], 0.0).await;
    let passes_here = passes(&s, &buyer, &order_id).await;
    let pass = passes_here["R1-S1"].clone();
    let (device_id, gate_device) = device(&s, &organizer, &event_id, "North 1").await;

    let first = scan_result(&s, &gate_device, &event_id, &pass, "North", "in").await;
    assert_eq!(first["result"], "entered", "{first}");
    assert_eq!(first["seatId"], "R1-S1");
    assert_eq!(first["entryGate"], "North");
    // The organizer scans it at another gate: already in, with when and where.
    let again = scan_result(&s, &organizer, &event_id, &pass, "South", "in").await;
    assert_eq!(again["result"], "already_entered");
    assert_eq!(
        (again["entryGate"].clone(), again["enteredAt"].clone()),
        (first["entryGate"].clone(), first["enteredAt"].clone())
    );
    // No re-entry by default: out, then in again, is refused.
    assert_eq!(
        scan_result(&s, &gate_device, &event_id, &pass, "North", "out").await["result"],
        "exited"
    );
    assert_eq!(
        scan_result(&s, &gate_device, &event_id, &pass, "North", "in").await["result"],
        "already_entered"
    );

    // Forged, altered and foreign passes say nothing about any ticket.
    let mut altered = pass.clone().into_bytes();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for bad in [altered.as_str(), "not a pass", "local.AAAA.BBBB"] {
        let answer = scan_result(&s, &gate_device, &event_id, bad, "North", "in").await;
        assert_eq!(answer, json!({"result": "invalid"}), "{bad}");
    }
    let foreign = passes(&s, &buyer, &elsewhere).await["R1-S1"].clone();
    assert_eq!(
        scan_result(&s, &gate_device, &event_id, &foreign, "North", "in").await,
        json!({"result": "wrong_event"})
    );
    // A cancelled seat's pass is revoked.
    assert_eq!(
        cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S2"]})))
            .await
            .status(),
        200
    );
    assert_eq!(
        scan_result(
            &s,
            &gate_device,
            &event_id,
            &passes_here["R1-S2"],
            "North",
            "in"
        )
        .await["result"],
        "revoked"
    );

    // Re-entry once the organizer allows it.
    let policy = send(
        &s,
        &organizer,
        reqwest::Method::PUT,
        &format!("/api/orders/events/{event_id}/ticket-policy"),
        json!({"reentry": true}),
    )
    .await;
    assert_eq!(policy.status(), 200);
    let third = &passes_here["R1-S3"];
    assert_eq!(
        scan_result(&s, &gate_device, &event_id, third, "East", "in").await["result"],
        "entered"
    );
    assert_eq!(
        scan_result(&s, &gate_device, &event_id, third, "East", "out").await["result"],
        "exited"
    );
    assert_eq!(
        scan_result(&s, &gate_device, &event_id, third, "West", "in").await["result"],
        "entered"
    );
    assert_eq!(
        scan_result(&s, &gate_device, &event_id, third, "West", "out").await["result"],
        "exited"
    );
    assert_eq!(
        scan_result(&s, &gate_device, &event_id, third, "West", "out").await["result"],
        "not_inside"
    );

    // Who may scan: not buyers, not anonymous callers, not a device of another event, not a
    // revoked device.
    let body = json!({"pass": pass, "gate": "North"});
    assert_error(
        scan(&s, &buyer, &event_id, body.clone()).await,
        403,
        "FORBIDDEN",
    )
    .await;
    let anonymous = api()
        .post(s.at(&format!("/api/checkin/events/{event_id}/scan")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "UNAUTHENTICATED").await;
    let (_, other_device) = device(&s, &organizer, &other_event, "Elsewhere").await;
    assert_error(
        scan(&s, &other_device, &event_id, body.clone()).await,
        403,
        "FORBIDDEN",
    )
    .await;
    let revoked = api()
        .delete(s.at(&format!(
            "/api/checkin/events/{event_id}/devices/{device_id}"
        )))
        .bearer_auth(&organizer)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_error(
        scan(&s, &gate_device, &event_id, body.clone()).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    let listed = get_json(
        &s,
        Some(&organizer),
        &format!("/api/checkin/events/{event_id}/devices"),
    )
    .await;
    assert_eq!(listed["devices"][0]["revoked"], true);
    assert!(
        listed["devices"][0].get("token").is_none(),
        "tokens are shown once"
    );

    // Bad input: every offending field named; unknown fields refused.
    let bad = scan(&s, &organizer, &event_id, json!({"pass": "", "gate": ""})).await;
    let bad = assert_error(bad, 400, "VALIDATION_FAILED").await;
    assert!(
        bad["details"]["fields"]["pass"].is_array() && bad["details"]["fields"]["gate"].is_array(),
        "{bad}"
    );
    assert_error(
        scan(
            &s,
            &organizer,
            &event_id,
            json!({"pass": pass, "gate": "N", "extra": 1}),
        )
        .await,
        400,
        "INVALID_JSON",
    )
    .await;
    assert_error(
        scan(
            &s,
            &organizer,
            &event_id,
            json!({"pass": pass, "gate": "N", "direction": "up"}),
        )
        .await,
        400,
        "INVALID_JSON",
    )
    .await;

    // The organizer's counts: 2 entered (at North and East), 0 not yet, 1 revoked.
    let stats = get_json(
        &s,
        Some(&organizer),
        &format!("/api/checkin/events/{event_id}/stats"),
    )
    .await;
    assert_eq!(
        (
            stats["entered"].clone(),
            stats["notYet"].clone(),
            stats["revoked"].clone()
        ),
        (json!(2), json!(0), json!(1)),
        "{stats}"
    );
    assert_eq!(stats["byGate"], json!({"East": 1, "North": 1}));
    assert_eq!(
        stats["byCategory"]["general"],
        json!({"entered": 2, "notYet": 0, "revoked": 1})
    );
    assert_error(
        api()
            .get(s.at(&format!("/api/checkin/events/{event_id}/stats")))
            .bearer_auth(&buyer)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
}

/// Offline: a device downloads the tickets (and later only what changed), scans while offline,
/// then uploads; uploading again changes nothing; the earliest of two gates' entries stands.
async fn offline_scanning(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db).await else { return };
    let event_id = event(&s, 1, 4, 0.0).await;
    let organizer = organizer(&s).await;
    let buyer = token_for("6650c0ffee00000000000c02");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2", "R1-S3"], 0.0).await;
    let passes = passes(&s, &buyer, &order_id).await;
    let (_, north) = device(&s, &organizer, &event_id, "North").await;
    let (_, south) = device(&s, &organizer, &event_id, "South").await;

    let download = get_json(
        &s,
        Some(&north),
        &format!("/api/checkin/events/{event_id}/tickets"),
    )
    .await;
    assert_eq!(
        download["tickets"].as_array().unwrap().len(),
        3,
        "{download}"
    );
    assert_eq!(download["next"], Value::Null);
    let version = download["version"].as_i64().unwrap();
    // A cancellation after the download reaches the next delta.
    assert_eq!(
        cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S3"]})))
            .await
            .status(),
        200
    );
    let delta = get_json(
        &s,
        Some(&north),
        &format!("/api/checkin/events/{event_id}/tickets?since={version}"),
    )
    .await;
    let revoked: Vec<&Value> = delta["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "revoked")
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["seatId"], "R1-S3");
    // Paging.
    let first_page = get_json(
        &s,
        Some(&north),
        &format!("/api/checkin/events/{event_id}/tickets?limit=2"),
    )
    .await;
    let next = first_page["next"].as_str().unwrap();
    let second_page = get_json(
        &s,
        Some(&north),
        &format!("/api/checkin/events/{event_id}/tickets?after={next}&limit=2"),
    )
    .await;
    assert_eq!(
        first_page["tickets"].as_array().unwrap().len()
            + second_page["tickets"].as_array().unwrap().len(),
        3
    );

    let scans = |gate: &str, at: &str| {
        json!({"scans": [
            {"nonce": format!("{gate}-1"), "pass": passes["R1-S1"], "gate": gate, "scannedAt": at},
            {"nonce": format!("{gate}-2"), "pass": passes["R1-S3"], "gate": gate, "scannedAt": at},
            {"nonce": format!("{gate}-3"), "pass": "forged", "gate": gate, "scannedAt": at},
        ]})
    };
    let upload = |token: &str, body: Value| {
        let path = format!("/api/checkin/events/{event_id}/scans");
        let token = token.to_string();
        let s = &s;
        async move { send(s, &token, reqwest::Method::POST, &path, body).await }
    };
    // North scanned at 19:05, uploads first; South scanned the same ticket at 19:01.
    let north_answer: Value = upload(&north, scans("North", "2026-01-01T19:05:00Z"))
        .await
        .json()
        .await
        .unwrap();
    let results = north_answer["results"].as_array().unwrap();
    assert_eq!(
        results
            .iter()
            .map(|r| r["result"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["entered", "revoked", "invalid"]
    );
    let south_answer: Value = upload(&south, scans("South", "2026-01-01T19:01:00Z"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        south_answer["results"][0]["result"], "entered",
        "the earlier scan stands"
    );
    let ticket_id = south_answer["results"][0]["ticketId"].as_str().unwrap();
    let ticket = get_json(
        &s,
        Some(&buyer),
        &format!("/api/orders/tickets/{ticket_id}"),
    )
    .await;
    assert_eq!(ticket["entryGate"], "South");
    assert_eq!(ticket["status"], "used");
    // A third gate, later: a conflict, reported with the entry that stands.
    let east: Value = upload(&organizer, scans("East", "2026-01-01T19:09:00Z"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(east["results"][0]["result"], "already_entered");
    assert_eq!(east["results"][0]["conflict"], true);
    assert_eq!(east["results"][0]["entryGate"], "South");
    // North uploads its batch again: the same answers, nothing changes.
    let replay: Value = upload(&north, scans("North", "2026-01-01T19:05:00Z"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay, north_answer);
    assert_eq!(
        get_json(
            &s,
            Some(&buyer),
            &format!("/api/orders/tickets/{ticket_id}")
        )
        .await["entryGate"],
        "South"
    );

    // Bad batches change nothing and name every offending scan.
    let bad = upload(&north, json!({"scans": [
        {"nonce": "", "pass": passes["R1-S2"], "gate": "North", "scannedAt": "2026-01-01T19:05:00Z"},
        {"nonce": "x", "pass": passes["R1-S2"], "gate": "North", "scannedAt": "yesterday"},
        {"nonce": "y", "pass": passes["R1-S2"], "gate": "North", "scannedAt": "2999-01-01T00:00:00Z"},
    ]})).await;
    let bad = assert_error(bad, 400, "VALIDATION_FAILED").await;
    let fields = bad["details"]["fields"].as_object().unwrap();
    for field in ["scans[0].nonce", "scans[1].scannedAt", "scans[2].scannedAt"] {
        assert!(fields.contains_key(field), "{field} in {bad}");
    }
    let stats = get_json(
        &s,
        Some(&organizer),
        &format!("/api/checkin/events/{event_id}/stats"),
    )
    .await;
    assert_eq!(stats["entered"], 1, "{stats}");
    let too_many: Vec<Value> = (0..10_001).map(|n| json!({"nonce": n.to_string(), "pass": "p", "gate": "g", "scannedAt": "2026-01-01T19:05:00Z"})).collect();
    assert_error(
        upload(&south, json!({"scans": too_many})).await,
        413,
        "BATCH_TOO_LARGE",
    )
    .await;
    assert_error(
        upload(&south, json!({"scans": []})).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
}

crate::support::on_every_store!(
    tickets_of_order,
    a_cancelled_seat_revokes_its_ticket,
    keys_are_published_for_existing_events_only,
    scanning_at_the_door,
    offline_scanning,
    a_transferred_ticket_enters_with_its_new_pass_only,
    transfers_follow_the_events_policy,
    the_order_list_reads_as_a_my_orders_page,
    an_offline_scanner_needs_only_the_keys_and_the_download,
);

/// Each scanner has its own limit of scans per second (a burst of three seconds' worth).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_are_limited_per_scanner() {
    let s = crate::support::spawn(&[("CHECKIN_SCANS_PER_SECOND", "1")]).await;
    let event_id = event(&s, 1, 1, 0.0).await;
    let organizer = organizer(&s).await;
    let (_, first) = device(&s, &organizer, &event_id, "One").await;
    let (_, second) = device(&s, &organizer, &event_id, "Two").await;
    let body = json!({"pass": "x", "gate": "g"});
    for _ in 0..3 {
        assert_eq!(
            scan(&s, &first, &event_id, body.clone()).await.status(),
            200
        );
    }
    let limited = scan(&s, &first, &event_id, body.clone()).await;
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_error(limited, 429, "RATE_LIMITED").await;
    assert_eq!(
        scan(&s, &second, &event_id, body).await.status(),
        200,
        "another device has its own"
    );
}

async fn transfer(s: &TestStack, token: &str, ticket_id: &str, email: &str) -> reqwest::Response {
    send(
        s,
        token,
        reqwest::Method::POST,
        &format!("/api/orders/tickets/{ticket_id}/transfer"),
        json!({"email": email}),
    )
    .await
}

async fn ticket_of_seat(s: &TestStack, token: &str, order_id: &str, seat: &str) -> Value {
    let tickets = get_json(
        s,
        Some(token),
        &format!("/api/orders/orders/{order_id}/tickets"),
    )
    .await;
    tickets["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["seatId"] == seat)
        .unwrap()
        .clone()
}

/// A holder gives a ticket away: the old pass is revoked at the door, the receiver (by the
/// address of their account) finds it under their tickets and enters with it.
async fn a_transferred_ticket_enters_with_its_new_pass_only(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db).await else { return };
    let event_id = event(&s, 1, 4, 0.0).await;
    let organizer = organizer(&s).await;
    let buyer = token_for("6650c0ffee00000000000d01");
    let friend_id = "6650c0ffee00000000000d02";
    let friend = token_for(friend_id);
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2"], 0.0).await;
    let given = ticket_of_seat(&s, &buyer, &order_id, "R1-S1").await;
    let ticket_id = given["ticketId"].as_str().unwrap();
    let old_pass = given["pass"].as_str().unwrap().to_string();

    let answer = transfer(&s, &buyer, ticket_id, &format!("{friend_id}@EXAMPLE.com")).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(
        (
            answer["ticket"]["status"].as_str(),
            answer["ticket"]["pass"].clone()
        ),
        (Some("transferred"), Value::Null)
    );
    let code = answer["claimCode"].as_str().unwrap().to_string();
    // The giver's printable page no longer shows it (its new pass is the receiver's).
    let page = get(
        &s,
        &buyer,
        &format!("/api/orders/orders/{order_id}/tickets/print"),
    )
    .await;
    assert_eq!(page.text().await.unwrap().matches("<svg").count(), 1);
    assert_eq!(
        ticket_of_seat(&s, &buyer, &order_id, "R1-S1").await["status"],
        "transferred"
    );
    assert_error(
        get(&s, &buyer, &format!("/api/orders/tickets/{ticket_id}")).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        scan_result(&s, &organizer, &event_id, &old_pass, "A", "in").await["result"],
        "revoked"
    );

    // Nobody has it until the receiver claims it with the code mailed to their address.
    let held = get_json(&s, Some(&friend), "/api/orders/tickets").await;
    assert_eq!(held["tickets"], json!([]));
    let claim = |token: String, code: String| {
        let s = &s;
        async move {
            send(
                s,
                &token,
                reqwest::Method::POST,
                "/api/orders/tickets/claim",
                json!({"code": code}),
            )
            .await
        }
    };
    let stranger = token_for("6650c0ffee00000000000d09");
    assert_error(claim(stranger, code.clone()).await, 404, "NOT_FOUND").await;
    assert_error(
        claim(friend.clone(), "0".repeat(32)).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let claimed = claim(friend.clone(), code.to_uppercase()).await;
    assert_eq!(claimed.status(), 200);
    assert_error(claim(friend.clone(), code.clone()).await, 404, "NOT_FOUND").await;
    // The receiver's tickets: the new pass, version 2.
    let held = get_json(&s, Some(&friend), "/api/orders/tickets").await;
    let received = &held["tickets"][0];
    assert_eq!(
        (received["ticketId"].as_str(), received["version"].as_u64()),
        (Some(ticket_id), Some(2))
    );
    assert_eq!(received["transfers"], 1);
    let new_pass = received["pass"].as_str().unwrap();
    assert_ne!(new_pass, old_pass);
    assert_eq!(
        scan_result(&s, &organizer, &event_id, new_pass, "A", "in").await["result"],
        "entered"
    );
    // Used: it cannot go on.
    assert_error(
        transfer(&s, &friend, ticket_id, "third@example.com").await,
        409,
        "TICKET_USED",
    )
    .await;
    // The buyer cannot cancel the seat they gave away; the organizer can.
    let refused = cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S1"]}))).await;
    let refused = assert_error(refused, 409, "TICKET_TRANSFERRED").await;
    assert_eq!(refused["details"]["conflicts"], json!(["R1-S1"]));
    assert_eq!(
        cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S2"]})))
            .await
            .status(),
        200
    );
}

async fn transfers_follow_the_events_policy(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db).await else { return };
    let event_id = event(&s, 1, 4, 0.0).await;
    let organizer = organizer(&s).await;
    let buyer = token_for("6650c0ffee00000000000d03");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1"], 0.0).await;
    let ticket_id = ticket_of_seat(&s, &buyer, &order_id, "R1-S1").await["ticketId"]
        .as_str()
        .unwrap()
        .to_string();
    let policy_path = format!("/api/orders/events/{event_id}/ticket-policy");
    let set_policy = |body: Value| {
        let (s, organizer, path) = (&s, organizer.clone(), policy_path.clone());
        async move { send(s, &organizer, reqwest::Method::PUT, &path, body).await }
    };
    let policy = get_json(&s, Some(&organizer), &policy_path).await;
    assert_eq!(
        policy,
        json!({"reentry": false, "transfersEnabled": true, "transferCutoffHours": 0, "maxTransfers": 2})
    );
    assert_eq!(
        set_policy(json!({"transfersEnabled": false}))
            .await
            .status(),
        200
    );
    assert_error(
        transfer(&s, &buyer, &ticket_id, "x@example.com").await,
        409,
        "TRANSFERS_DISABLED",
    )
    .await;
    assert_eq!(set_policy(json!({"maxTransfers": 0})).await.status(), 200);
    assert_error(
        transfer(&s, &buyer, &ticket_id, "x@example.com").await,
        409,
        "TRANSFER_LIMIT",
    )
    .await;
    // The event (`event` makes it for 2027-05-05) starts within a year: a year's cutoff has passed.
    assert_eq!(
        set_policy(json!({"transferCutoffHours": 8760}))
            .await
            .status(),
        200
    );
    assert_error(
        transfer(&s, &buyer, &ticket_id, "x@example.com").await,
        409,
        "TRANSFER_CLOSED",
    )
    .await;
    let bad = assert_error(
        set_policy(json!({"maxTransfers": 11, "transferCutoffHours": 9000})).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert!(
        bad["details"]["fields"]["maxTransfers"].is_array()
            && bad["details"]["fields"]["transferCutoffHours"].is_array(),
        "{bad}"
    );
    assert_error(
        set_policy(json!({"reentry": "yes"})).await,
        400,
        "INVALID_JSON",
    )
    .await;
    assert_error(
        send(&s, &buyer, reqwest::Method::PUT, &policy_path, json!({})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(
        set_policy(json!({})).await.status(),
        200,
        "back to the defaults"
    );
    // Bad requests.
    assert_error(
        transfer(&s, &buyer, &ticket_id, "not an address").await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        transfer(
            &s,
            &buyer,
            &ticket_id,
            "6650c0ffee00000000000d03@example.com",
        )
        .await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        transfer(
            &s,
            &token_for("6650c0ffee00000000000d04"),
            &ticket_id,
            "x@example.com",
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let unknown_field = send(
        &s,
        &buyer,
        reqwest::Method::POST,
        &format!("/api/orders/tickets/{ticket_id}/transfer"),
        json!({"email": "x@example.com", "note": 1}),
    )
    .await;
    assert_error(unknown_field, 400, "INVALID_JSON").await;
    assert_eq!(
        transfer(&s, &buyer, &ticket_id, "x@example.com")
            .await
            .status(),
        200
    );
}

/// "My orders": the event, what was paid and refunded, whether it was paid, each seat's label
/// and ticket, and the tickets others gave.
async fn the_order_list_reads_as_a_my_orders_page(kv: Kv, db: Db) {
    let Some(s) = stack(kv, db).await else { return };
    let event_id = event(&s, 1, 4, 10.0).await;
    let buyer = token_for("6650c0ffee00000000000e01");
    let friend_id = "6650c0ffee00000000000e02";
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2", "R1-S3"], 10.0).await;
    let free_event = event(&s, 1, 1, 0.0).await;
    buy(&s, &buyer, &free_event, &["R1-S1"], 0.0).await;
    let mine = |token: String| {
        let s = &s;
        async move { get_json(s, Some(&token), "/api/orders/orders").await }
    };
    let list = mine(buyer.clone()).await;
    let order = list["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["orderId"] == order_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        order["status"], "reserved",
        "existing clients still read reserved"
    );
    assert_eq!(order["paymentStatus"], "paid");
    assert_eq!(
        (
            order["amount"].clone(),
            order["currency"].clone(),
            order["refunded"].clone()
        ),
        (json!(30), json!("INR"), json!(0))
    );
    assert_eq!(order["event"]["title"], "On-sale");
    assert!(
        order["event"]["date"]
            .as_str()
            .unwrap()
            .starts_with("2027-05-05")
    );
    assert_eq!(order["event"]["timezone"], "UTC");
    assert_eq!(
        order["tickets"][1],
        json!({"seatId": "R1-S2", "label": "Row 1, seat 2", "ticketId": order["tickets"][1]["ticketId"], "ticketStatus": "valid"})
    );
    let free = list["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["eventId"] == free_event.as_str())
        .unwrap();
    assert_eq!(free["paymentStatus"], "free");

    // A cancelled seat, a given one.
    assert_eq!(
        cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S1"]})))
            .await
            .status(),
        200
    );
    let given = order["tickets"][2]["ticketId"].as_str().unwrap();
    let transferred: Value = transfer(&s, &buyer, given, &format!("{friend_id}@example.com"))
        .await
        .json()
        .await
        .unwrap();
    let claimed = send(
        &s,
        &token_for(friend_id),
        reqwest::Method::POST,
        "/api/orders/tickets/claim",
        json!({"code": transferred["claimCode"]}),
    )
    .await;
    assert_eq!(claimed.status(), 200);
    let list = mine(buyer.clone()).await;
    let order = list["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["orderId"] == order_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (order["paymentStatus"].clone(), order["refunded"].clone()),
        (json!("partially_refunded"), json!(10))
    );
    let statuses: Vec<&str> = order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ticketStatus"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["cancelled", "valid", "transferred"]);
    assert_eq!(list["receivedTickets"], json!([]));
    let friends = mine(token_for(friend_id)).await;
    assert_eq!(friends["orders"], json!([]));
    let received = &friends["receivedTickets"][0];
    assert_eq!(
        (received["ticketId"].as_str(), received["label"].as_str()),
        (Some(given), Some("Row 1, seat 3"))
    );
    assert_eq!(received["event"]["title"], "On-sale");
}

/// A scanner that only has the published keys and the synced download: it admits a real
/// pass, refuses an altered one, and refuses a transferred ticket's old pass once it synced.
async fn an_offline_scanner_needs_only_the_keys_and_the_download(kv: Kv, db: Db) {
    use holdfast_common::ticket_pass::{OfflineScanner, OfflineVerdict};
    let Some(s) = stack(kv, db).await else { return };
    let event_id = event(&s, 1, 2, 0.0).await;
    let organizer = organizer(&s).await;
    let buyer = token_for("6650c0ffee00000000000f01");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1"], 0.0).await;
    let ticket = ticket_of_seat(&s, &buyer, &order_id, "R1-S1").await;
    let old_pass = ticket["pass"].as_str().unwrap().to_string();
    let (_, device) = device(&s, &organizer, &event_id, "Offline").await;

    let mut scanner = OfflineScanner {
        event_id: event_id.clone(),
        keys: scanner_keys(&s, &event_id).await,
        ..OfflineScanner::default()
    };
    let sync = |since: Option<i64>| {
        let path = match since {
            Some(v) => format!("/api/checkin/events/{event_id}/tickets?since={v}"),
            None => format!("/api/checkin/events/{event_id}/tickets"),
        };
        let (s, device) = (&s, device.clone());
        async move { get_json(s, Some(&device), &path).await }
    };
    let apply = |scanner: &mut OfflineScanner, page: &Value| {
        for t in page["tickets"].as_array().unwrap() {
            scanner.sync(
                t["ticketId"].as_str().unwrap(),
                u32::try_from(t["version"].as_u64().unwrap()).unwrap(),
                t["status"] == "valid",
            );
        }
    };
    let first = sync(None).await;
    apply(&mut scanner, &first);
    assert!(matches!(scanner.check(&old_pass), OfflineVerdict::Admit(_)));
    let mut altered = old_pass.clone().into_bytes();
    altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        scanner.check(&String::from_utf8(altered).unwrap()),
        OfflineVerdict::Invalid
    );

    // Transferred while the scanner is offline: the old pass still verifies there...
    let ticket_id = ticket["ticketId"].as_str().unwrap();
    assert_eq!(
        transfer(&s, &buyer, ticket_id, "offline-friend@example.com")
            .await
            .status(),
        200
    );
    assert!(matches!(scanner.check(&old_pass), OfflineVerdict::Admit(_)));
    // ...until it syncs.
    let delta = sync(first["version"].as_i64()).await;
    apply(&mut scanner, &delta);
    assert_eq!(scanner.check(&old_pass), OfflineVerdict::Revoked);
}
