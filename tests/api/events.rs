//! Events through the gateway: roles and ownership, validation, ids, search and paging.

use crate::support::{
    Db, TestStack, access_token, account_with_role, assert_error, empty_stack_and_admin, get_json,
    spawn_in,
};
use holdfast_common::demo::DEMO_ORGANIZER;
use serde_json::{Value, json};

crate::support::on_both_document_stores!(
    who_may_create_update_and_delete,
    every_validation_rule_answers_400_naming_the_field,
    malformed_and_unknown_ids,
    search_filters_and_paging,
    the_list_shows_each_write_at_once,
    dates_are_read_as_browsers_and_people_send_them,
    demo_events_belong_to_the_demo_organizer_and_changes_go_on_the_bus,
);

struct Callers {
    user: String,
    owner: String,
    other_organizer: String,
    admin: String,
}

async fn callers(s: &TestStack) -> Callers {
    Callers {
        user: access_token(s, "user@holdfast.test", "holdfast-demo").await,
        owner: access_token(s, "organizer@holdfast.test", "holdfast-demo").await,
        other_organizer: account_with_role(s, "rival@example.com", "organizer").await,
        admin: access_token(s, "admin@holdfast.test", "holdfast-demo").await,
    }
}

fn request(
    s: &TestStack,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let builder = reqwest::Client::new().request(method, s.at(path));
    match token {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    }
}

async fn create(s: &TestStack, token: &str, body: Value) -> Value {
    let res = request(s, reqwest::Method::POST, "/api/events", Some(token))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn who_may_create_update_and_delete(db: Db) {
    let s = spawn_in(db, &[]).await;
    let c = callers(&s).await;
    let body = json!({"title": "Matrix gig", "date": "2027-01-10T20:00:00Z"});

    // Create.
    let anonymous = request(&s, reqwest::Method::POST, "/api/events", None)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "UNAUTHENTICATED").await;
    let user = request(&s, reqwest::Method::POST, "/api/events", Some(&c.user))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(user, 403, "FORBIDDEN").await;
    let owned = create(&s, &c.owner, body.clone()).await;
    assert_eq!(owned["organizerId"], DEMO_ORGANIZER.id);
    assert_eq!(
        (owned["rows"].clone(), owned["seatsPerRow"].clone()),
        (json!(5), json!(10))
    );
    assert_eq!(
        (owned["price"].clone(), owned["currency"].clone()),
        (json!(500), json!("INR"))
    );
    let by_admin = create(&s, &c.admin, body.clone()).await;
    assert_ne!(by_admin["organizerId"], DEMO_ORGANIZER.id);

    // Update the organizer's event.
    let path = format!("/api/events/{}", owned["_id"].as_str().unwrap());
    let patch = json!({"title": "Renamed"});
    for (token, status, code) in [
        (None, 401, "UNAUTHENTICATED"),
        (Some(&c.user), 403, "FORBIDDEN"),
        (Some(&c.other_organizer), 403, "FORBIDDEN"),
    ] {
        let res = request(&s, reqwest::Method::PUT, &path, token.map(String::as_str))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert_error(res, status, code).await;
    }
    let by_owner = request(&s, reqwest::Method::PUT, &path, Some(&c.owner))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(by_owner.status(), 200);
    assert_eq!(by_owner.json::<Value>().await.unwrap()["title"], "Renamed");
    let admin_patch = request(&s, reqwest::Method::PUT, &path, Some(&c.admin))
        .json(&json!({"price": 99.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin_patch.status(), 200);
    let after: Value = request(&s, reqwest::Method::GET, &path, None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (after["title"].clone(), after["price"].clone()),
        (json!("Renamed"), json!(99.5))
    );
    assert_eq!(
        after["organizerId"], DEMO_ORGANIZER.id,
        "an admin's edit keeps the organizer"
    );

    // Delete.
    for (token, status, code) in [
        (None, 401, "UNAUTHENTICATED"),
        (Some(&c.user), 403, "FORBIDDEN"),
        (Some(&c.other_organizer), 403, "FORBIDDEN"),
    ] {
        let res = request(
            &s,
            reqwest::Method::DELETE,
            &path,
            token.map(String::as_str),
        )
        .send()
        .await
        .unwrap();
        assert_error(res, status, code).await;
    }
    let deleted = request(&s, reqwest::Method::DELETE, &path, Some(&c.owner))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_error(
        request(&s, reqwest::Method::GET, &path, None)
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    let other = create(&s, &c.owner, body).await;
    let other_path = format!("/api/events/{}", other["_id"].as_str().unwrap());
    let by_admin = request(&s, reqwest::Method::DELETE, &other_path, Some(&c.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(by_admin.status(), 204);
}

async fn every_validation_rule_answers_400_naming_the_field(db: Db) {
    let s = spawn_in(db, &[]).await;
    let owner = access_token(&s, "organizer@holdfast.test", "holdfast-demo").await;
    let cases = [
        (json!({"date": "2027-01-01"}), "title"),
        (json!({"title": "  ", "date": "2027-01-01"}), "title"),
        (
            json!({"title": "t".repeat(201), "date": "2027-01-01"}),
            "title",
        ),
        (json!({"title": "ok"}), "date"),
        (json!({"title": "ok", "date": "next friday"}), "date"),
        (json!({"title": "ok", "date": "14/03/2027"}), "date"),
        (
            json!({"title": "ok", "date": "2027-01-01", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "timezone": "+05:30"}),
            "timezone",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "description": "d".repeat(2001)}),
            "description",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "location": "l".repeat(501)}),
            "location",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "tags": vec!["t"; 21]}),
            "tags",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "tags": ["t".repeat(41)]}),
            "tags",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "imageUrl": "ftp://x/y.png"}),
            "imageUrl",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "imageUrl": format!("https://x.test/{}", "a".repeat(500))}),
            "imageUrl",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "rows": 0}),
            "rows",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "rows": 101}),
            "rows",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "seatsPerRow": 0}),
            "seatsPerRow",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "seatsPerRow": 201}),
            "seatsPerRow",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "price": -5}),
            "price",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "price": 10.001}),
            "price",
        ),
        (
            json!({"title": "ok", "date": "2027-01-01", "currency": "EURO"}),
            "currency",
        ),
    ];
    for (body, field) in cases {
        let res = request(&s, reqwest::Method::POST, "/api/events", Some(&owner))
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = assert_error(res, 400, "VALIDATION_FAILED").await;
        assert!(
            error["details"]["fields"][field].is_array(),
            "{field}: {error}"
        );
    }
    for body in [
        json!({"title": 7, "date": "2027-01-01"}),
        json!({"title": "ok", "date": "2027-01-01", "rows": "many"}),
    ] {
        let res = request(&s, reqwest::Method::POST, "/api/events", Some(&owner))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "INVALID_JSON").await;
    }
    // An update is checked the same way.
    let event = create(&s, &owner, json!({"title": "ok", "date": "2027-01-01"})).await;
    let path = format!("/api/events/{}", event["_id"].as_str().unwrap());
    let res = request(&s, reqwest::Method::PUT, &path, Some(&owner))
        .json(&json!({"rows": 0}))
        .send()
        .await
        .unwrap();
    let error = assert_error(res, 400, "VALIDATION_FAILED").await;
    assert!(error["details"]["fields"]["rows"].is_array());
}

/// `<input type="datetime-local">` sends minutes and no offset; the event's time zone says
/// where that clock is. Answers always carry the instant in UTC and the zone.
async fn dates_are_read_as_browsers_and_people_send_them(db: Db) {
    let s = spawn_in(db, &[]).await;
    let owner = access_token(&s, "organizer@holdfast.test", "holdfast-demo").await;
    let cases = [
        // What <input type="datetime-local"> sends, in the default zone.
        (
            json!({"date": "2027-03-14T19:30"}),
            "2027-03-14T19:30:00Z",
            "UTC",
        ),
        // The same in Paris (winter time), the zone named in any case.
        (
            json!({"date": "2027-03-14T19:30", "timezone": "europe/paris"}),
            "2027-03-14T18:30:00Z",
            "Europe/Paris",
        ),
        // An offset wins over the zone.
        (
            json!({"date": "2027-03-14T19:30:00.5+05:30", "timezone": "Europe/Paris"}),
            "2027-03-14T14:00:00.5Z",
            "Europe/Paris",
        ),
    ];
    let mut created = Vec::new();
    for (mut body, date, zone) in cases {
        body["title"] = json!("Dated");
        let event = create(&s, &owner, body).await;
        assert_eq!(
            (&event["date"], &event["timezone"]),
            (&json!(date), &json!(zone))
        );
        created.push(event);
    }
    let paris = &created[1];
    // A new date of the Paris event is read in Paris time: summer time by then.
    let id = paris["_id"].as_str().unwrap();
    let moved: Value = request(
        &s,
        reqwest::Method::PUT,
        &format!("/api/events/{id}"),
        Some(&owner),
    )
    .json(&json!({"date": "2027-07-14 20:00"}))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(moved["date"], "2027-07-14T18:00:00Z");
    let read = get_json(&s, None, &format!("/api/events/{id}")).await;
    assert_eq!(
        (&read["date"], &read["timezone"]),
        (&moved["date"], &json!("Europe/Paris"))
    );
    // Range filters take the same forms.
    let (found, _) = list(&s, "?from=2027-07-14T17:59Z&to=2027-07-14T18:01Z").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["_id"], paris["_id"]);
    // Both ends are inclusive: a bare `to` date takes in that whole day.
    let (found, _) = list(&s, "?from=2027-07-14&to=2027-07-14").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["_id"], paris["_id"]);
    let (found, _) = list(&s, "?to=2027-07-13").await;
    assert!(found.iter().all(|e| e["_id"] != paris["_id"]), "{found:?}");
}

async fn malformed_and_unknown_ids(db: Db) {
    let s = spawn_in(db, &[]).await;
    let admin = access_token(&s, "admin@holdfast.test", "holdfast-demo").await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let malformed = request(&s, method.clone(), "/api/events/not-an-id", Some(&admin))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_error(malformed, 400, "INVALID_ID").await;
        let unknown = request(
            &s,
            method,
            "/api/events/0123456789abcdef01234567",
            Some(&admin),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
        assert_error(unknown, 404, "NOT_FOUND").await;
    }
}

async fn list(s: &TestStack, query: &str) -> (Vec<Value>, u64) {
    let res = reqwest::get(s.at(&format!("/api/events{query}")))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{query}");
    let total = res.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    (res.json().await.unwrap(), total)
}

fn titles(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect()
}

async fn search_filters_and_paging(db: Db) {
    let (s, admin) = empty_stack_and_admin(db).await;
    for (title, description, date, tags) in [
        (
            "Autumn Jazz",
            "saxophone evening",
            "2027-10-01",
            vec!["jazz", "music"],
        ),
        (
            "Spring Rock",
            "loud guitars",
            "2027-04-01T20:00:00+05:30",
            vec!["rock", "music"],
        ),
        (
            "Summer Talk",
            "rust and databases",
            "2027-07-01",
            vec!["tech"],
        ),
        ("Winter Jazz", "piano trio", "2027-12-24", vec!["Jazz"]),
    ] {
        create(
            &s,
            &admin,
            json!({"title": title, "description": description, "date": date, "tags": tags}),
        )
        .await;
    }
    let (events, total) = list(&s, "").await;
    assert_eq!(
        titles(&events),
        vec!["Spring Rock", "Summer Talk", "Autumn Jazz", "Winter Jazz"]
    );
    assert_eq!(total, 4);
    assert_eq!(
        titles(&list(&s, "?q=jazz").await.0),
        vec!["Autumn Jazz", "Winter Jazz"]
    );
    assert_eq!(
        titles(&list(&s, "?q=databases").await.0),
        vec!["Summer Talk"]
    );
    assert_eq!(
        titles(&list(&s, "?tag=jazz").await.0),
        vec!["Autumn Jazz", "Winter Jazz"]
    );
    assert_eq!(
        titles(&list(&s, "?tag=music&q=rock").await.0),
        vec!["Spring Rock"]
    );
    assert_eq!(
        titles(&list(&s, "?from=2027-06-01&to=2027-10-31").await.0),
        vec!["Summer Talk", "Autumn Jazz"]
    );
    assert_eq!(
        titles(&list(&s, "?from=2027-12-24").await.0),
        vec!["Winter Jazz"]
    );

    let (page, total) = list(&s, "?page=2&limit=3").await;
    assert_eq!((titles(&page), total), (vec!["Winter Jazz"], 4));
    let (past, total) = list(&s, "?page=3&limit=3").await;
    assert_eq!((past.len(), total), (0, 4));
    let (one, _) = list(&s, "?limit=1").await;
    assert_eq!(titles(&one), vec!["Spring Rock"]);
    assert_eq!(list(&s, "?limit=100").await.0.len(), 4);

    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
        ("?page=0", "page"),
        ("?page=-1", "page"),
        ("?from=yesterday", "from"),
        ("?to=2027-02-30", "to"),
    ] {
        let res = reqwest::get(s.at(&format!("/api/events{query}")))
            .await
            .unwrap();
        let error = assert_error(res, 400, "VALIDATION_FAILED").await;
        assert!(
            error["details"]["fields"][field].is_array(),
            "{query}: {error}"
        );
    }
}

/// The list is served from rendered pages; a write through the service must show in the very
/// next read of the same page.
async fn the_list_shows_each_write_at_once(db: Db) {
    let (s, admin) = empty_stack_and_admin(db).await;
    assert_eq!(list(&s, "").await, (vec![], 0));
    let created = create(
        &s,
        &admin,
        json!({"title": "First", "date": "2027-05-01T20:00:00Z"}),
    )
    .await;
    let (events, total) = list(&s, "").await;
    assert_eq!((titles(&events), total), (vec!["First"], 1));

    let path = format!("/api/events/{}", created["_id"].as_str().unwrap());
    let res = request(&s, reqwest::Method::PUT, &path, Some(&admin))
        .json(&json!({"title": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(titles(&list(&s, "").await.0), vec!["Renamed"]);

    let res = request(&s, reqwest::Method::DELETE, &path, Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(list(&s, "").await, (vec![], 0));
}

async fn demo_events_belong_to_the_demo_organizer_and_changes_go_on_the_bus(db: Db) {
    let s = spawn_in(db, &[]).await;
    let mut bus = s
        .stack
        .infra
        .bus
        .subscribe("test-events", &["event.*"])
        .await
        .unwrap();
    let (events, total) = list(&s, "").await;
    assert!(total >= 5, "{total}");
    assert!(events.iter().all(|e| e["organizerId"] == DEMO_ORGANIZER.id));
    let dates: Vec<&str> = events.iter().map(|e| e["date"].as_str().unwrap()).collect();
    let mut sorted = dates.clone();
    sorted.sort();
    assert_eq!(dates, sorted);
    assert!(
        events
            .iter()
            .map(|e| e["tags"].to_string())
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 3
    );

    let owner = access_token(&s, "organizer@holdfast.test", "holdfast-demo").await;
    let event = create(
        &s,
        &owner,
        json!({"title": "Bus gig", "date": "2027-03-03"}),
    )
    .await;
    let path = format!("/api/events/{}", event["_id"].as_str().unwrap());
    request(&s, reqwest::Method::PUT, &path, Some(&owner))
        .json(&json!({"title": "Bus gig 2"}))
        .send()
        .await
        .unwrap();
    request(&s, reqwest::Method::DELETE, &path, Some(&owner))
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let delivery = tokio::time::timeout(std::time::Duration::from_secs(5), bus.next())
            .await
            .unwrap()
            .unwrap();
        seen.push((
            delivery.message.routing_key.clone(),
            delivery.message.payload["title"].clone(),
        ));
        delivery.ack().await.unwrap();
    }
    assert_eq!(
        seen,
        vec![
            ("event.created".to_string(), json!("Bus gig")),
            ("event.updated".to_string(), json!("Bus gig 2")),
            ("event.deleted".to_string(), json!("Bus gig 2")),
        ]
    );
}
