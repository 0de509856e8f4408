//! Recommendations through the gateway, fed by real purchases over the bus.

use std::time::Duration;

use crate::support::{
    Db, api, assert_error, empty_stack_and_admin, hold_id, paid_intent, post, spawn_in, token_for,
};
use serde_json::{Value, json};

crate::support::on_both_document_stores!(
    a_buyer_is_recommended_events_like_the_ones_they_bought,
    bad_recommendation_requests_get_400_or_404,
    recommendations_are_their_users_alone,
);

async fn tagged_event(
    s: &crate::support::TestStack,
    organizer: &str,
    title: &str,
    tags: &[&str],
    date: &str,
) -> String {
    let created: Value = api()
        .post(s.at("/api/events"))
        .bearer_auth(organizer)
        .json(&json!({"title": title, "date": date, "tags": tags, "rows": 1, "seatsPerRow": 4, "price": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["_id"].as_str().unwrap().to_string()
}

/// Polls `path` as `token`'s user (anonymously with none) until its `items` satisfy `done`
/// (the model learns from the bus asynchronously).
async fn items_until(
    s: &crate::support::TestStack,
    token: Option<&str>,
    path: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut items = Vec::new();
    for _ in 0..50 {
        let mut request = api().get(s.at(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body: Value = request.send().await.unwrap().json().await.unwrap();
        items = body["items"].as_array().cloned().unwrap_or_default();
        if done(&items) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    items
}

async fn a_buyer_is_recommended_events_like_the_ones_they_bought(db: Db) {
    let (s, admin) = empty_stack_and_admin(db).await;
    let jazz = tagged_event(&s, &admin, "Jazz night", &["jazz", "music"], "2031-01-10").await;
    let more_jazz = tagged_event(&s, &admin, "More jazz", &["jazz"], "2031-03-10").await;
    // As an HTML form's datetime-local input sends them: no seconds, no offset.
    let talk = tagged_event(&s, &admin, "Tech talk", &["tech"], "2031-02-10T19:30").await;
    tagged_event(&s, &admin, "Past jazz", &["jazz"], "2020-02-10T19:30").await;

    let buyer = token_for("jazz-fan");
    let hold = hold_id(&s, &buyer, &jazz, &["R1-S1"]).await;
    let intent = paid_intent(&s, &buyer, 10.0, "INR").await;
    let bought = post(
        &s,
        &buyer,
        "/api/orders/purchase",
        json!({"eventId": jazz, "holdId": hold, "seatIds": ["R1-S1"], "paymentIntentId": intent}),
    )
    .await;
    assert_eq!(bought.status(), 201);

    let recs = items_until(&s, Some(&buyer), "/api/ml/recs?limit=5", |items| {
        items.first() == Some(&json!(more_jazz))
    })
    .await;
    assert_eq!(
        recs,
        vec![json!(more_jazz), json!(talk)],
        "the other jazz event first; never the one bought, nor one that is over"
    );
    let related = items_until(
        &s,
        None,
        &format!("/api/ml/related?eventId={jazz}&limit=1"),
        |items| !items.is_empty(),
    )
    .await;
    assert_eq!(related, vec![json!(more_jazz)]);
    // The buyer's list named explicitly, and as an admin sees it.
    let own = items_until(
        &s,
        Some(&buyer),
        "/api/ml/recs?userId=jazz-fan&limit=5",
        |_| true,
    )
    .await;
    assert_eq!(own, recs);
    let as_admin = items_until(
        &s,
        Some(&admin),
        "/api/ml/recs?userId=jazz-fan&limit=5",
        |_| true,
    )
    .await;
    assert_eq!(as_admin, recs);
    let stranger: Value = api()
        .get(s.at("/api/ml/recs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stranger["userId"], Value::Null);
    assert_eq!(
        stranger["items"][0],
        json!(jazz),
        "anonymous callers get the most popular event first"
    );
    let newcomer: Value = api()
        .get(s.at("/api/ml/recs"))
        .bearer_auth(token_for("newcomer"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(newcomer["userId"], "newcomer");
    assert_eq!(
        newcomer["items"][0],
        json!(jazz),
        "as for anyone with no purchases"
    );
}

/// A user's recommendations reveal what they bought: nobody else reads them.
async fn recommendations_are_their_users_alone(db: Db) {
    let s = spawn_in(db, &[("DEMO_SEED", "false")]).await;
    let anonymous = api()
        .get(s.at("/api/ml/recs?userId=jazz-fan"))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "UNAUTHENTICATED").await;
    let stranger = api()
        .get(s.at("/api/ml/recs?userId=jazz-fan"))
        .bearer_auth(token_for("someone-else"))
        .send()
        .await
        .unwrap();
    assert_error(stranger, 403, "FORBIDDEN").await;
}

async fn bad_recommendation_requests_get_400_or_404(db: Db) {
    let s = spawn_in(db, &[("DEMO_SEED", "false")]).await;
    for (path, status, code) in [
        ("/api/ml/recs?limit=0", 400, "VALIDATION_FAILED"),
        ("/api/ml/recs?limit=51", 400, "VALIDATION_FAILED"),
        ("/api/ml/recs?limit=many", 400, "VALIDATION_FAILED"),
        ("/api/ml/related", 400, "VALIDATION_FAILED"),
        (
            "/api/ml/related?eventId=0123456789abcdef01234567",
            404,
            "NOT_FOUND",
        ),
    ] {
        let res = api().get(s.at(path)).send().await.unwrap();
        assert_error(res, status, code).await;
    }
}
