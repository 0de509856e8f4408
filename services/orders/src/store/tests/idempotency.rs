//! Idempotency records: a key answers once, and is forgotten after it expires.

use super::*;

async fn an_intent_pays_for_one_order_and_a_key_is_used_once(stores: Stores) {
    let now = now_millis();
    stores
        .orders
        .purchase(&purchase("u1", "e1", &["R1-S1"], "pi_1", Some("k1"), now))
        .await
        .unwrap();
    let reuse = purchase("u1", "e1", &["R2-S1"], "pi_1", None, 2);
    assert_eq!(
        stores.orders.purchase(&reuse).await.unwrap(),
        PurchaseOutcome::IntentUsed
    );
    assert!(
        !stores
            .orders
            .sold_seats(&"e1".into())
            .await
            .unwrap()
            .contains_key("R2-S1")
    );
    let same_key = purchase("u1", "e1", &["R3-S1"], "pi_2", Some("k1"), now);
    assert_eq!(
        stores.orders.purchase(&same_key).await.unwrap(),
        PurchaseOutcome::KeyUsed
    );
    assert!(
        !stores
            .orders
            .sold_seats(&"e1".into())
            .await
            .unwrap()
            .contains_key("R3-S1")
    );
    let other_user = purchase("u2", "e1", &["R3-S1"], "pi_3", Some("k1"), now);
    assert_eq!(
        stores.orders.purchase(&other_user).await.unwrap(),
        PurchaseOutcome::Committed
    );
}

/// Once its record has expired, a key is forgotten: a new purchase may use it again.
async fn an_expired_key_can_be_used_again(stores: Stores) {
    let now = now_millis();
    let two_days_ago = now - 2 * KEY_TTL_MS;
    let first = purchase("u1", "e1", &["R1-S1"], "pi_1", Some("k1"), two_days_ago);
    assert_eq!(
        stores.orders.purchase(&first).await.unwrap(),
        PurchaseOutcome::Committed
    );
    assert_eq!(
        stores
            .idempotency
            .idempotent_response("u1", "k1", now)
            .await
            .unwrap(),
        None
    );
    let again = purchase("u1", "e1", &["R1-S2"], "pi_2", Some("k1"), now);
    assert_eq!(
        stores.orders.purchase(&again).await.unwrap(),
        PurchaseOutcome::Committed
    );
    let stored = stores
        .idempotency
        .idempotent_response("u1", "k1", now)
        .await
        .unwrap()
        .expect("the new answer is stored");
    assert_eq!(Some(stored.body), again.idempotency.map(|i| i.body));
}

/// Expired idempotency records go too on SQLite (MongoDB removes them by its TTL index).
#[tokio::test]
async fn expired_idempotency_records_are_pruned_on_sqlite() {
    let test = TestStore::sqlite(&SCHEMA).await;
    let stores = Stores::open(&test.store);
    let now = now_millis();
    let old = purchase(
        "u1",
        "e1",
        &["R1-S1"],
        "pi_1",
        Some("k1"),
        now - 2 * KEY_TTL_MS,
    );
    let new = purchase("u1", "e1", &["R1-S2"], "pi_2", Some("k2"), now);
    for p in [&old, &new] {
        assert_eq!(
            stores.orders.purchase(p).await.unwrap(),
            PurchaseOutcome::Committed
        );
    }
    assert_eq!(stores.idempotency.prune_expired(now, 100).await.unwrap(), 1);
    let Database::Sqlite(db) = &test.store else {
        panic!("a SQLite store")
    };
    let keys: Vec<String> = db
        .call(|c| {
            let mut statement = c.prepare("SELECT key FROM idempotency")?;
            let keys = statement
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(keys)
        })
        .await
        .unwrap();
    assert_eq!(keys, ["k2"]);
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    an_intent_pays_for_one_order_and_a_key_is_used_once,
    an_expired_key_can_be_used_again
]);
