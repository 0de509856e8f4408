//! Venue events through the gateway: a layout of sections, labelled rows, price categories and
//! accessible seats; its seat maps; prices, refunds and sales per category; best available.
//! Each test runs on the in-process TTL store and on Redis.

use crate::support::{
    Db, Kv, TestStack, access_token, api, assert_error, get_json, hold, infra, paid_intent, post,
    spawn_with, token_for,
};
use serde_json::{Value, json};

async fn stack(kv: Kv) -> Option<TestStack> {
    stack_with(kv, &[]).await
}

async fn stack_with(kv: Kv, vars: &[(&str, &str)]) -> Option<TestStack> {
    Some(spawn_with(Db::Sqlite, vars, infra(kv).await?).await)
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
    a_venue_is_checked_whole_and_every_problem_named,
    venue_maps_carry_places_categories_flags_and_counts,
    a_purchase_costs_its_seats_category_prices_and_refunds_them,
    best_available_holds_the_best_seats_side_by_side,
    a_hold_changes_its_seats_in_one_step,
    blocked_seats_never_reach_a_buyer,
    released_companion_seats_go_on_general_sale,
);

/// A small theatre: stalls (premium front row with a wheelchair space and its companion,
/// standard behind) and a circle (economy, restricted view at the end).
pub fn theatre() -> Value {
    json!({
        "categories": [
            {"key": "premium", "name": "Premium", "price": 1200},
            {"key": "standard", "name": "Standard", "price": 650.5},
            {"key": "economy", "name": "Economy", "price": 300}
        ],
        "sections": [
            {"key": "stalls", "name": "Stalls", "category": "standard", "rows": [
                {"label": "A", "category": "premium", "seats": "1-4 | 5-8", "overrides": [
                    {"seat": "1", "wheelchair": true},
                    {"seat": "2", "companionOf": "1"}
                ]},
                {"label": "B", "seats": "1-8"}
            ]},
            {"key": "circle", "name": "Circle", "category": "economy", "rows": [
                {"label": "A", "seats": "1-6", "overrides": [{"seat": "6", "restrictedView": true}]}
            ]}
        ]
    })
}

async fn organizer(s: &TestStack) -> String {
    access_token(s, "organizer@holdfast.test", "holdfast-demo").await
}

/// Creates an event on `venue` as the demo organizer; answers its id.
pub async fn venue_event(s: &TestStack, venue: Value) -> String {
    let created = post(
        s,
        &organizer(s).await,
        "/api/events",
        json!({"title": "Play", "date": "2027-05-05", "currency": "INR", "venue": venue}),
    )
    .await;
    assert_eq!(created.status(), 201);
    created.json::<Value>().await.unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn a_venue_is_checked_whole_and_every_problem_named(kv: Kv) {
    let Some(s) = stack(kv).await else { return };
    let mut venue = theatre();
    venue["sections"][1]["key"] = json!("stalls");
    venue["sections"][0]["rows"][1]["seats"] = json!("1-x");
    venue["sections"][0]["rows"][0]["overrides"][1]["companionOf"] = json!("4");
    venue["categories"][2]["price"] = json!(-1);
    let refused = post(
        &s,
        &organizer(&s).await,
        "/api/events",
        json!({"title": "", "date": "2027-05-05", "venue": venue}),
    )
    .await;
    let body = assert_error(refused, 400, "VALIDATION_FAILED").await;
    let mut fields: Vec<&str> = body["details"]["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "title",
            "venue.categories[2].price",
            "venue.sections[0].rows[0].overrides[1].companionOf",
            "venue.sections[0].rows[1].seats",
            "venue.sections[1].key",
        ]
    );
    // A valid one is kept as written; its price is the cheapest category's.
    let event_id = venue_event(&s, theatre()).await;
    let stored = get_json(&s, None, &format!("/api/events/{event_id}")).await;
    assert_eq!(stored["venue"], theatre());
    assert_eq!(stored["price"], json!(300));
}

async fn venue_maps_carry_places_categories_flags_and_counts(kv: Kv) {
    let Some(s) = stack(kv).await else { return };
    let event_id = venue_event(&s, theatre()).await;
    let buyer = token_for("venue-map-buyer");
    assert_eq!(
        hold(&s, &buyer, &event_id, &["stalls-B-4", "circle-A-1"])
            .await
            .status(),
        201
    );
    let full = get_json(&s, None, &format!("/api/orders/seats/{event_id}")).await;
    assert_eq!(full["kind"], "venue");
    let seats = full["seats"].as_array().unwrap();
    assert_eq!(seats.len(), 22);
    assert_eq!(
        seats[0],
        json!({"seatId": "stalls-A-1", "section": "stalls", "row": "A", "label": "1",
               "category": "premium", "state": "available", "wheelchair": true})
    );
    assert_eq!(seats[1]["companionOf"], "stalls-A-1");
    assert_eq!(seats[11]["state"], "held");
    assert_eq!(seats[21]["restrictedView"], true);
    assert_eq!(
        full["categories"][1],
        json!({"key": "standard", "name": "Standard", "price": 650.5})
    );
    let compact = get_json(
        &s,
        None,
        &format!("/api/orders/seats/{event_id}?view=compact"),
    )
    .await;
    assert_eq!(
        compact["available"],
        json!({"categories": {"premium": 8, "standard": 7, "economy": 5},
               "sections": {"stalls": 15, "circle": 5}})
    );
    assert_eq!(compact["held"], json!(["stalls-B-4", "circle-A-1"]));
    assert_eq!(compact["reserved"], json!([]));
    // Grid seat ids mean nothing here, and a companion seat goes only with its space.
    assert_error(
        hold(&s, &buyer, &event_id, &["R1-S1"]).await,
        400,
        "INVALID_SEATS",
    )
    .await;
    assert_error(
        hold(&s, &buyer, &event_id, &["stalls-A-2"]).await,
        400,
        "INVALID_SEATS",
    )
    .await;
    assert_eq!(
        hold(&s, &buyer, &event_id, &["stalls-A-1", "stalls-A-2"])
            .await
            .status(),
        201
    );
}

async fn a_purchase_costs_its_seats_category_prices_and_refunds_them(kv: Kv) {
    let Some(s) = stack(kv).await else { return };
    let event_id = venue_event(&s, theatre()).await;
    let buyer = token_for("venue-price-buyer");
    let seats = ["stalls-A-5", "stalls-B-5", "circle-A-3"];
    let hold_id = hold(&s, &buyer, &event_id, &seats)
        .await
        .json::<Value>()
        .await
        .unwrap()["holdId"]
        .clone();
    // 1200 + 650.50 + 300: an intent of the grid's price times three does not pay for it.
    let short = paid_intent(&s, &buyer, 900.0, "INR").await;
    let body = |intent: &str| json!({"eventId": event_id, "holdId": hold_id, "seatIds": seats, "paymentIntentId": intent});
    assert_error(
        post(&s, &buyer, "/api/orders/purchase", body(&short)).await,
        409,
        "PAYMENT_MISMATCH",
    )
    .await;
    let exact = paid_intent(&s, &buyer, 2150.5, "INR").await;
    let bought = post(&s, &buyer, "/api/orders/purchase", body(&exact)).await;
    assert_eq!(bought.status(), 201);
    let order: Value = bought.json().await.unwrap();
    let order_id = order["orderId"].as_str().unwrap();
    // Cancelling the standard seat refunds its price; the rest refunds the remainder.
    let cancel = |seats: Value| {
        let buyer = buyer.clone();
        let s = &s;
        async move {
            let res = api()
                .post(s.at(&format!("/api/orders/orders/{order_id}/cancel")))
                .bearer_auth(&buyer)
                .json(&json!({"seatIds": seats}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let first = cancel(json!(["stalls-B-5"])).await;
    assert_eq!(first["refunds"][0]["amount"], json!(650.5), "{first}");
    // The organizer's sales view splits by category and section.
    let sales = get_json(
        &s,
        Some(&organizer(&s).await),
        &format!("/api/orders/events/{event_id}/sales"),
    )
    .await;
    assert_eq!(
        sales["categories"][0],
        json!({"key": "premium", "name": "Premium", "capacity": 8, "sold": 1, "held": 0,
               "blocked": 0, "available": 7, "revenue": 1200})
    );
    assert_eq!(sales["categories"][1]["sold"], 0);
    assert_eq!(sales["sections"][1]["revenue"], json!(300));
    let last = cancel(json!(["stalls-A-5", "circle-A-3"])).await;
    let refunded: f64 = last["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_f64().unwrap())
        .sum();
    assert_eq!(refunded, 2150.5, "{last}");
}

async fn best(s: &TestStack, token: &str, body: Value) -> reqwest::Response {
    post(s, token, "/api/orders/holds/best", body).await
}

async fn best_available_holds_the_best_seats_side_by_side(kv: Kv) {
    // Seat maps served up to the default quarter second old, as in production.
    let Some(s) = stack_with(kv, &[("SEAT_MAP_MAX_STALENESS_MS", "250")]).await else {
        return;
    };
    let event_id = venue_event(&s, theatre()).await;
    let buyer = token_for("best-buyer");
    // The front row's middle, leaving the wheelchair space and its companion alone.
    let res = best(&s, &buyer, json!({"eventId": event_id, "count": 2})).await;
    assert_eq!(res.status(), 201);
    let held: Value = res.json().await.unwrap();
    assert_eq!(held["seatIds"], json!(["stalls-A-3", "stalls-A-4"]));
    assert_eq!(held["split"], false);
    // It is a hold like any other: bought at its seats' prices.
    let intent = paid_intent(&s, &buyer, 2400.0, "INR").await;
    let bought = post(
        &s,
        &buyer,
        "/api/orders/purchase",
        json!({"eventId": event_id, "holdId": held["holdId"], "seatIds": held["seatIds"],
               "paymentIntentId": intent}),
    )
    .await;
    assert_eq!(bought.status(), 201);
    // A map read now is cached: what a refusal says must still follow the next hold.
    get_json(
        &s,
        None,
        &format!("/api/orders/seats/{event_id}?view=compact"),
    )
    .await;
    // Asked for, the wheelchair space comes with its companion.
    let other = token_for("best-wheelchair-user");
    let res = best(
        &s,
        &other,
        json!({"eventId": event_id, "count": 2, "accessible": true}),
    )
    .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["seatIds"],
        json!(["stalls-A-1", "stalls-A-2"])
    );
    // Five premium seats side by side do not exist: what is left is said.
    let third = token_for("best-third");
    let refused = best(
        &s,
        &third,
        json!({"eventId": event_id, "count": 5, "category": "premium"}),
    )
    .await;
    let body = assert_error(refused, 409, "NO_SEATS_AVAILABLE").await;
    assert_eq!(body["details"]["available"]["categories"]["premium"], 4);
    assert_eq!(body["details"]["available"]["sections"]["circle"], 6);
    // The circle's middle seat taken, four of it are only to be had apart, and only if allowed.
    assert_eq!(
        hold(&s, &third, &event_id, &["circle-A-3"]).await.status(),
        201
    );
    let circle = |split: bool| json!({"eventId": event_id, "count": 4, "section": "circle", "allowSplit": split});
    let fifth = token_for("best-fifth");
    assert_error(
        best(&s, &fifth, circle(false)).await,
        409,
        "NO_SEATS_AVAILABLE",
    )
    .await;
    let split: Value = best(&s, &fifth, circle(true)).await.json().await.unwrap();
    assert_eq!(split["split"], true, "{split}");
    assert_eq!(
        split["seatIds"],
        json!(["circle-A-1", "circle-A-2", "circle-A-4", "circle-A-5"])
    );
    // Bad requests name their field.
    let fourth = token_for("best-fourth");
    for (body, field) in [
        (
            json!({"eventId": event_id, "count": 2, "category": "gold"}),
            "category",
        ),
        (
            json!({"eventId": event_id, "count": 2, "section": "balcony"}),
            "section",
        ),
        (json!({"eventId": event_id, "count": 0}), "count"),
        (json!({"eventId": event_id, "count": 500}), "count"),
        (json!({"eventId": event_id}), "count"),
    ] {
        let body = assert_error(best(&s, &fourth, body).await, 400, "VALIDATION_FAILED").await;
        assert!(body["details"]["fields"].get(field).is_some(), "{body}");
    }
    let grid = crate::support::event(&s, 2, 5, 10.0).await;
    let body = assert_error(
        best(&s, &fourth, json!({"eventId": grid, "count": 1})).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert!(body["details"]["fields"].get("eventId").is_some());
}

async fn change(s: &TestStack, token: &str, hold_id: &str, seats: &[&str]) -> reqwest::Response {
    api()
        .put(s.at(&format!("/api/orders/holds/{hold_id}/seats")))
        .bearer_auth(token)
        .json(&json!({"seatIds": seats}))
        .send()
        .await
        .unwrap()
}

async fn a_hold_changes_its_seats_in_one_step(kv: Kv) {
    let Some(s) = stack(kv).await else { return };
    let event_id = venue_event(&s, theatre()).await;
    let (buyer, other) = (token_for("change-buyer"), token_for("change-other"));
    let hold_id = hold(&s, &buyer, &event_id, &["stalls-B-1", "stalls-B-2"])
        .await
        .json::<Value>()
        .await
        .unwrap()["holdId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        hold(&s, &other, &event_id, &["stalls-B-5"]).await.status(),
        201
    );
    // Swapping for a taken seat changes nothing.
    let refused = change(&s, &buyer, &hold_id, &["stalls-B-1", "stalls-B-5"]).await;
    let body = assert_error(refused, 409, "CONFLICT_SEATS").await;
    assert_eq!(body["details"]["conflicts"], json!(["stalls-B-5"]));
    let states = |map: Value| -> Vec<(String, String)> {
        map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|seat| seat["row"] == "B" && seat["section"] == "stalls")
            .map(|seat| {
                (
                    seat["label"].as_str().unwrap().to_string(),
                    seat["state"].as_str().unwrap().to_string(),
                )
            })
            .filter(|(_, state)| state != "available")
            .collect()
    };
    let map = get_json(&s, None, &format!("/api/orders/seats/{event_id}")).await;
    assert_eq!(
        states(map),
        [
            ("1".into(), "held".into()),
            ("2".into(), "held".into()),
            ("5".into(), "held".into())
        ]
    );
    // Swap 2 for 3 and add 4: one step, the same hold.
    let res = change(
        &s,
        &buyer,
        &hold_id,
        &["stalls-B-1", "stalls-B-3", "stalls-B-4"],
    )
    .await;
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["holdId"], hold_id.as_str());
    assert_eq!(
        changed["seatIds"],
        json!(["stalls-B-1", "stalls-B-3", "stalls-B-4"])
    );
    let details = get_json(
        &s,
        Some(&buyer),
        &format!("/api/orders/holds/{hold_id}/details"),
    )
    .await;
    assert_eq!(details["seatIds"], changed["seatIds"]);
    // The seat given up is anyone's again.
    assert_eq!(
        hold(&s, &other, &event_id, &["stalls-B-2"]).await.status(),
        201
    );
    // It is bought as it now stands: three standard seats.
    let intent = paid_intent(&s, &buyer, 1951.5, "INR").await;
    let bought = post(
        &s,
        &buyer,
        "/api/orders/purchase",
        json!({"eventId": event_id, "holdId": hold_id, "seatIds": changed["seatIds"],
               "paymentIntentId": intent}),
    )
    .await;
    assert_eq!(bought.status(), 201);
    // Bad changes are refused and name why; someone else's hold is not found.
    let third = token_for("change-third");
    let fresh = hold(&s, &third, &event_id, &["stalls-B-8"])
        .await
        .json::<Value>()
        .await
        .unwrap()["holdId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_error(
        change(&s, &third, &fresh, &["stalls-A-2"]).await,
        400,
        "INVALID_SEATS",
    )
    .await;
    assert_error(change(&s, &third, &fresh, &[]).await, 400, "INVALID_SEATS").await;
    assert_error(
        change(&s, &third, &fresh, &["nope"]).await,
        400,
        "INVALID_SEATS",
    )
    .await;
    assert_error(
        change(&s, &buyer, &fresh, &["stalls-B-7"]).await,
        404,
        "NOT_FOUND",
    )
    .await;
}

async fn blocks(
    s: &TestStack,
    token: &str,
    event_id: &str,
    path: &str,
    seats: &[&str],
) -> reqwest::Response {
    post(
        s,
        token,
        &format!("/api/orders/events/{event_id}/blocks{path}"),
        json!({"seatIds": seats}),
    )
    .await
}

async fn blocked_seats_never_reach_a_buyer(kv: Kv) {
    let Some(s) = stack(kv).await else { return };
    let event_id = venue_event(&s, theatre()).await;
    let organizer = organizer(&s).await;
    let buyer = token_for("block-buyer");
    assert_eq!(
        hold(&s, &buyer, &event_id, &["stalls-A-6"]).await.status(),
        201
    );
    // A held seat among them: nothing is blocked.
    let refused = blocks(&s, &organizer, &event_id, "", &["stalls-A-5", "stalls-A-6"]).await;
    let body = assert_error(refused, 409, "CONFLICT_SEATS").await;
    assert_eq!(body["details"]["conflicts"], json!(["stalls-A-6"]));
    // The middle of the front row kept back (a companion seat may be blocked on its own).
    let res = blocks(
        &s,
        &organizer,
        &event_id,
        "",
        &["stalls-A-3", "stalls-A-4", "stalls-A-2"],
    )
    .await;
    assert_eq!(res.status(), 200);
    let blocked: Value = res.json().await.unwrap();
    assert_eq!(
        blocked["seatIds"],
        json!(["stalls-A-2", "stalls-A-3", "stalls-A-4"])
    );
    let listed = get_json(
        &s,
        Some(&organizer),
        &format!("/api/orders/events/{event_id}/blocks"),
    )
    .await;
    assert_eq!(listed["seatIds"], blocked["seatIds"]);
    // Unavailable on the map, refused to a buyer, never given by best available.
    let compact = get_json(
        &s,
        None,
        &format!("/api/orders/seats/{event_id}?view=compact"),
    )
    .await;
    assert_eq!(
        compact["reserved"],
        json!(["stalls-A-2", "stalls-A-3", "stalls-A-4"])
    );
    let other = token_for("block-other");
    assert_error(
        hold(&s, &other, &event_id, &["stalls-A-3"]).await,
        409,
        "CONFLICT_SEATS",
    )
    .await;
    let best: Value = post(
        &s,
        &other,
        "/api/orders/holds/best",
        json!({"eventId": event_id, "count": 2, "category": "premium"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        best["seatIds"],
        json!(["stalls-A-7", "stalls-A-8"]),
        "{best}"
    );
    // Counted apart in the sales view.
    let sales = get_json(
        &s,
        Some(&organizer),
        &format!("/api/orders/events/{event_id}/sales"),
    )
    .await;
    assert_eq!(sales["seats"]["blocked"], 3);
    assert_eq!(sales["seats"]["available"], 22 - 3 - 3);
    assert_eq!(sales["categories"][0]["blocked"], 3);
    assert_eq!(sales["categories"][0]["available"], 8 - 3 - 3);
    // Only the organizer (or an admin) blocks; bad requests say why.
    assert_error(
        blocks(&s, &buyer, &event_id, "", &["stalls-B-1"]).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        blocks(&s, &organizer, &event_id, "", &["nope"]).await,
        400,
        "INVALID_SEATS",
    )
    .await;
    assert_error(
        blocks(&s, &organizer, &event_id, "", &[]).await,
        400,
        "INVALID_SEATS",
    )
    .await;
    // Given back, a seat is anyone's again; seats not blocked are left alone.
    let res = blocks(
        &s,
        &organizer,
        &event_id,
        "/release",
        &["stalls-A-3", "stalls-A-7"],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["seatIds"],
        json!(["stalls-A-2", "stalls-A-4"])
    );
    assert_eq!(
        hold(&s, &buyer, &event_id, &["stalls-A-3"]).await.status(),
        201
    );
}

async fn released_companion_seats_go_on_general_sale(kv: Kv) {
    let Some(s) = stack(kv).await else { return };
    let event_id = venue_event(&s, theatre()).await;
    let buyer = token_for("companion-buyer");
    assert_error(
        hold(&s, &buyer, &event_id, &["stalls-A-2"]).await,
        400,
        "INVALID_SEATS",
    )
    .await;
    // A seat is held: a layout change would be refused, a release is not one.
    assert_eq!(
        hold(&s, &buyer, &event_id, &["stalls-B-1"]).await.status(),
        201
    );
    let mut venue = theatre();
    venue["releasedCompanions"] = json!(["stalls-A-2"]);
    let updated = api()
        .put(s.at(&format!("/api/events/{event_id}")))
        .bearer_auth(organizer(&s).await)
        .json(&json!({"venue": venue}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    // Orders drops its copy of the layout when the bus says the event changed.
    let mut status = 0;
    for _ in 0..50 {
        status = hold(&s, &buyer, &event_id, &["stalls-A-2"])
            .await
            .status()
            .as_u16();
        if status == 201 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 201);
    let mut wrong = theatre();
    wrong["releasedCompanions"] = json!(["stalls-A-3"]);
    let refused = api()
        .put(s.at(&format!("/api/events/{event_id}")))
        .bearer_auth(organizer(&s).await)
        .json(&json!({"venue": wrong}))
        .send()
        .await
        .unwrap();
    let body = assert_error(refused, 400, "VALIDATION_FAILED").await;
    assert!(
        body["details"]["fields"]
            .get("venue.releasedCompanions[0]")
            .is_some(),
        "{body}"
    );
}
