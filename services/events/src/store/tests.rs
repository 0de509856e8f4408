//! The contract every [`EventRepository`] adapter must meet, run once per adapter.

use std::sync::Arc;

use holdfast_common::testing::TestStore;

use super::*;
use holdfast_common::ids::new_object_id as new_event_id;

fn event(title: &str, description: Option<&str>, date_ms: i64, tags: &[&str]) -> Event {
    Event {
        id: new_event_id(),
        title: title.into(),
        description: description.map(str::to_string),
        date: format!("{date_ms}"),
        date_ms,
        location: Some("Hall".into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        image_url: None,
        organizer_id: "64d3b0000000000000000002".into(),
        rows: 5,
        seats_per_row: 10,
        price_minor: 50_000,
        currency: "INR".into(),
        venue: None,
        timezone: "Asia/Kolkata".into(),
    }
}

fn all() -> EventQuery {
    EventQuery {
        limit: 100,
        ..Default::default()
    }
}

fn titles(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.title.as_str()).collect()
}

async fn crud_round_trip(repo: Arc<dyn EventRepository>) {
    let mut e = event("Gig", Some("loud"), 10, &["rock"]);
    repo.insert(&e).await.unwrap();
    assert_eq!(repo.get(&e.id).await.unwrap().as_ref(), Some(&e));
    e.title = "Quiet gig".into();
    e.description = None;
    e.tags = vec!["folk".into(), "acoustic".into()];
    assert!(repo.update(&e).await.unwrap());
    assert_eq!(repo.get(&e.id).await.unwrap().as_ref(), Some(&e));
    // A venue (with a decimal price) comes back exactly as written, and can be taken away.
    e.venue = Some(
        serde_json::from_value(serde_json::json!({
            "categories": [{"key": "a", "name": "A", "price": 12.5}],
            "sections": [{"key": "stalls", "name": "Stalls", "category": "a",
                          "rows": [{"label": "A", "seats": "1-4 | 5-8"}]}]
        }))
        .unwrap(),
    );
    assert!(repo.update(&e).await.unwrap());
    assert_eq!(repo.get(&e.id).await.unwrap().as_ref(), Some(&e));
    e.venue = None;
    assert!(repo.update(&e).await.unwrap());
    assert_eq!(repo.get(&e.id).await.unwrap().as_ref(), Some(&e));
    assert!(repo.delete(&e.id).await.unwrap());
    assert!(!repo.delete(&e.id).await.unwrap());
    assert_eq!(repo.get(&e.id).await.unwrap(), None);
    assert!(!repo.update(&e).await.unwrap());
    assert_eq!(repo.count().await.unwrap(), 0);
}

async fn lists_sort_by_date_and_filter(repo: Arc<dyn EventRepository>) {
    for e in [
        event("Late jazz", Some("smooth saxophone"), 300, &["Jazz"]),
        event("Early rock", Some("guitars"), 100, &["rock", "live"]),
        event("Middle talk", None, 200, &["talk"]),
    ] {
        repo.insert(&e).await.unwrap();
    }
    let (events, total) = repo.search(&all()).await.unwrap();
    assert_eq!(
        titles(&events),
        vec!["Early rock", "Middle talk", "Late jazz"]
    );
    assert_eq!(total, 3);

    let tag = EventQuery {
        tag: Some("jazz".into()),
        ..all()
    };
    assert_eq!(
        titles(&repo.search(&tag).await.unwrap().0),
        vec!["Late jazz"]
    );

    let range = EventQuery {
        from_ms: Some(150),
        to_ms: Some(300),
        ..all()
    };
    let (events, total) = repo.search(&range).await.unwrap();
    assert_eq!(
        (titles(&events), total),
        (vec!["Middle talk", "Late jazz"], 2)
    );

    let text = EventQuery {
        text: Some("saxophone".into()),
        ..all()
    };
    assert_eq!(
        titles(&repo.search(&text).await.unwrap().0),
        vec!["Late jazz"]
    );
    let title_word = EventQuery {
        text: Some("Rock".into()),
        ..all()
    };
    assert_eq!(
        titles(&repo.search(&title_word).await.unwrap().0),
        vec!["Early rock"]
    );
    let nothing = EventQuery {
        text: Some("opera".into()),
        ..all()
    };
    assert_eq!(repo.search(&nothing).await.unwrap(), (vec![], 0));
    // Query-language characters are only text.
    let hostile = EventQuery {
        text: Some("\"rock\" OR * ( NEAR".into()),
        ..all()
    };
    assert!(repo.search(&hostile).await.is_ok());
}

/// The search semantics both adapters share (see the module doc of `store`).
async fn every_word_must_begin_a_word(repo: Arc<dyn EventRepository>) {
    for e in [
        event("Jazz night", Some("Smooth saxophone quartet"), 1, &[]),
        event("Night market", Some("Street food"), 2, &[]),
        event("Café concert", None, 3, &[]),
    ] {
        repo.insert(&e).await.unwrap();
    }
    let found = async |q: &str| {
        let query = EventQuery {
            text: Some(q.into()),
            ..all()
        };
        titles(&repo.search(&query).await.unwrap().0)
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(found("jaz").await, ["Jazz night"], "a prefix, any case");
    assert_eq!(found("NIGHT").await, ["Jazz night", "Night market"]);
    assert_eq!(found("night jaz").await, ["Jazz night"], "every word");
    assert_eq!(found("night opera").await, Vec::<String>::new());
    assert_eq!(found("azz").await, Vec::<String>::new(), "only word starts");
    assert_eq!(found("quart").await, ["Jazz night"], "the description too");
    assert_eq!(found("café").await, ["Café concert"]);
    assert_eq!(found("cafe").await, Vec::<String>::new(), "accents count");
    assert_eq!(found("food, street!").await, ["Night market"]);
    // A renamed event is found by its new words only.
    let mut market = repo
        .search(&EventQuery {
            text: Some("market".into()),
            ..all()
        })
        .await
        .unwrap()
        .0
        .remove(0);
    market.title = "Bazaar".into();
    repo.update(&market).await.unwrap();
    assert_eq!(found("market").await, Vec::<String>::new());
    assert_eq!(found("baz").await, ["Bazaar"]);
}

async fn pages_report_the_total(repo: Arc<dyn EventRepository>) {
    for i in 0..5 {
        repo.insert(&event(&format!("E{i}"), None, i, &[]))
            .await
            .unwrap();
    }
    let page = EventQuery {
        offset: 2,
        limit: 2,
        ..Default::default()
    };
    let (events, total) = repo.search(&page).await.unwrap();
    assert_eq!((titles(&events), total), (vec!["E2", "E3"], 5));
    let past = EventQuery {
        offset: 10,
        limit: 2,
        ..Default::default()
    };
    assert_eq!(repo.search(&past).await.unwrap(), (vec![], 5));
}

async fn sqlite() -> Option<(Arc<dyn EventRepository>, TestStore)> {
    let test = TestStore::sqlite(&SCHEMA).await;
    Some((events(&test.store).await.unwrap(), test))
}

async fn mongodb() -> Option<(Arc<dyn EventRepository>, TestStore)> {
    let test = TestStore::mongodb(&SCHEMA).await?;
    Some((events(&test.store).await.unwrap(), test))
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    crud_round_trip,
    lists_sort_by_date_and_filter,
    every_word_must_begin_a_word,
    pages_report_the_total
]);
