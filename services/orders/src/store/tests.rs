//! The contract every [`OrderRepository`] adapter must meet, run once per adapter.

use std::collections::HashSet;
use std::sync::Arc;

use holdfast_common::testing::TestStore;

use super::*;
use crate::domain::now_millis;

/// How long the idempotency records of these tests live.
const KEY_TTL_MS: i64 = 86_400_000;

fn purchase(
    user: &str,
    event: &str,
    seats: &[&str],
    intent: &str,
    key: Option<&str>,
    at: i64,
) -> NewPurchase {
    let order_id = uuid::Uuid::new_v4().to_string();
    NewPurchase {
        order: Order {
            order_id: order_id.clone(),
            user_id: user.into(),
            event_id: event.into(),
            seat_ids: seats.iter().map(|s| s.to_string()).collect(),
            amount_minor: 1_000 * i64::try_from(seats.len()).unwrap(),
            currency: "INR".into(),
            payment_intent_id: intent.into(),
            status: super::OrderStatus::Bought,
            created_at_ms: at,
            cancelled_seat_ids: Vec::new(),
            cancelled_at_ms: Vec::new(),
            refunded_minor: 0,
            revision: 0,
            email: Some(format!("{user}@holdfast.test")),
        },
        idempotency: key.map(|k| IdempotentResponse {
            key: k.into(),
            request_hash: "hash".into(),
            status: 201,
            body: format!("{{\"orderId\":\"{order_id}\"}}"),
            created_at_ms: at,
            expires_at_ms: at + KEY_TTL_MS,
        }),
        outbox: OutboxMessage {
            id: uuid::Uuid::new_v4().to_string(),
            routing_key: "order.purchased".into(),
            payload: format!("{{\"orderId\":\"{order_id}\"}}"),
        },
    }
}

/// The seats sold on the event.
async fn sold_in(repo: &dyn OrderRepository, event_id: &str) -> HashSet<String> {
    repo.sold_seats(event_id)
        .await
        .unwrap()
        .into_keys()
        .collect()
}

async fn a_purchase_writes_seats_order_and_outbox(repo: Arc<dyn OrderRepository>) {
    let now = now_millis();
    let p = purchase("u1", "e1", &["R1-S1", "R1-S2"], "pi_1", Some("k1"), now);
    assert_eq!(repo.purchase(&p).await.unwrap(), PurchaseOutcome::Committed);
    assert_eq!(
        sold_in(&*repo, "e1").await,
        HashSet::from(["R1-S1".to_string(), "R1-S2".to_string()])
    );
    // Each sold seat names the order that bought it.
    let sold = repo.sold_seats("e1").await.unwrap();
    assert!(
        sold.values().all(|order| *order == p.order.order_id),
        "{sold:?}"
    );
    assert_eq!(
        repo.order(&p.order.order_id).await.unwrap().as_ref(),
        Some(&p.order)
    );
    let pending = repo.pending_outbox(10).await.unwrap();
    assert_eq!(pending, vec![p.outbox.clone()]);
    repo.mark_sent(&p.outbox.id).await.unwrap();
    assert!(repo.pending_outbox(10).await.unwrap().is_empty());
    let stored = repo
        .idempotent_response("u1", "k1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.body),
        (201, p.idempotency.unwrap().body)
    );
    assert_eq!(
        repo.idempotent_response("u1", "k1", now + KEY_TTL_MS)
            .await
            .unwrap(),
        None,
        "expired keys are forgotten"
    );
    assert_eq!(
        repo.idempotent_response("u2", "k1", now).await.unwrap(),
        None,
        "keys are per user"
    );
}

async fn a_sold_seat_refuses_the_whole_purchase(repo: Arc<dyn OrderRepository>) {
    repo.purchase(&purchase("u1", "e1", &["R1-S2"], "pi_1", None, 1))
        .await
        .unwrap();
    let second = purchase(
        "u2",
        "e1",
        &["R1-S1", "R1-S2", "R1-S3"],
        "pi_2",
        Some("k"),
        2,
    );
    assert_eq!(
        repo.purchase(&second).await.unwrap(),
        PurchaseOutcome::SeatsTaken(vec!["R1-S2".into()])
    );
    // Nothing of the refused purchase is left behind.
    assert_eq!(
        sold_in(&*repo, "e1").await,
        HashSet::from(["R1-S2".to_string()])
    );
    assert_eq!(repo.order(&second.order.order_id).await.unwrap(), None);
    assert_eq!(repo.pending_outbox(10).await.unwrap().len(), 1);
    assert_eq!(repo.idempotent_response("u2", "k", 0).await.unwrap(), None);
    // The same seat of another event is another seat.
    let other = purchase("u2", "e2", &["R1-S2"], "pi_3", None, 3);
    assert_eq!(
        repo.purchase(&other).await.unwrap(),
        PurchaseOutcome::Committed
    );
}

async fn an_intent_pays_for_one_order_and_a_key_is_used_once(repo: Arc<dyn OrderRepository>) {
    let now = now_millis();
    repo.purchase(&purchase("u1", "e1", &["R1-S1"], "pi_1", Some("k1"), now))
        .await
        .unwrap();
    let reuse = purchase("u1", "e1", &["R2-S1"], "pi_1", None, 2);
    assert_eq!(
        repo.purchase(&reuse).await.unwrap(),
        PurchaseOutcome::IntentUsed
    );
    assert!(!repo.sold_seats("e1").await.unwrap().contains_key("R2-S1"));
    let same_key = purchase("u1", "e1", &["R3-S1"], "pi_2", Some("k1"), now);
    assert_eq!(
        repo.purchase(&same_key).await.unwrap(),
        PurchaseOutcome::KeyUsed
    );
    assert!(!repo.sold_seats("e1").await.unwrap().contains_key("R3-S1"));
    let other_user = purchase("u2", "e1", &["R3-S1"], "pi_3", Some("k1"), now);
    assert_eq!(
        repo.purchase(&other_user).await.unwrap(),
        PurchaseOutcome::Committed
    );
}

/// Once its record has expired, a key is forgotten: a new purchase may use it again.
async fn an_expired_key_can_be_used_again(repo: Arc<dyn OrderRepository>) {
    let now = now_millis();
    let two_days_ago = now - 2 * KEY_TTL_MS;
    let first = purchase("u1", "e1", &["R1-S1"], "pi_1", Some("k1"), two_days_ago);
    assert_eq!(
        repo.purchase(&first).await.unwrap(),
        PurchaseOutcome::Committed
    );
    assert_eq!(
        repo.idempotent_response("u1", "k1", now).await.unwrap(),
        None
    );
    let again = purchase("u1", "e1", &["R1-S2"], "pi_2", Some("k1"), now);
    assert_eq!(
        repo.purchase(&again).await.unwrap(),
        PurchaseOutcome::Committed
    );
    let stored = repo
        .idempotent_response("u1", "k1", now)
        .await
        .unwrap()
        .expect("the new answer is stored");
    assert_eq!(Some(stored.body), again.idempotency.map(|i| i.body));
}

async fn orders_are_listed_newest_first(repo: Arc<dyn OrderRepository>) {
    let old = purchase("u1", "e1", &["R1-S1"], "pi_1", None, 10);
    let new = purchase("u1", "e1", &["R1-S2"], "pi_2", None, 20);
    repo.purchase(&old).await.unwrap();
    repo.purchase(&new).await.unwrap();
    repo.purchase(&purchase("u2", "e1", &["R1-S3"], "pi_3", None, 30))
        .await
        .unwrap();
    let ids: Vec<String> = repo
        .orders_of("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(ids, vec![new.order.order_id, old.order.order_id]);
}

/// 20 buyers race for one seat: exactly one purchase commits.
async fn concurrent_purchases_sell_a_seat_once(repo: Arc<dyn OrderRepository>) {
    let attempts = (0..20).map(|i| {
        let repo = repo.clone();
        tokio::spawn(async move {
            repo.purchase(&purchase(
                &format!("u{i}"),
                "e1",
                &["R5-S5"],
                &format!("pi_{i}"),
                None,
                i,
            ))
            .await
            .unwrap()
        })
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let committed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(PurchaseOutcome::Committed)))
        .count();
    assert_eq!(committed, 1);
    assert_eq!(repo.pending_outbox(100).await.unwrap().len(), 1);
}

/// The cancellation of `seats` of `order`, planned from the order as given.
fn cancellation(order: &Order, seats: &[&str], amount: i64) -> NewCancellation {
    let mut updated = order.clone();
    updated
        .cancelled_seat_ids
        .extend(seats.iter().map(|s| s.to_string()));
    updated.refunded_minor += amount;
    updated.revision += 1;
    updated.status = if updated.cancelled_seat_ids.len() == order.seat_ids.len() {
        OrderStatus::Cancelled
    } else {
        OrderStatus::PartlyCancelled
    };
    NewCancellation {
        released: seats.iter().map(|s| s.to_string()).collect(),
        refund: Refund {
            refund_id: uuid::Uuid::new_v4().to_string(),
            order_id: order.order_id.clone(),
            event_id: order.event_id.clone(),
            user_id: order.user_id.clone(),
            payment_intent_id: order.paid_with().map(str::to_string),
            seat_ids: seats.iter().map(|s| s.to_string()).collect(),
            amount_minor: amount,
            currency: order.currency.clone(),
            cancelled_by: order.user_id.clone(),
            created_at_ms: now_millis(),
        },
        outbox: OutboxMessage {
            id: uuid::Uuid::new_v4().to_string(),
            routing_key: "order.cancelled".into(),
            payload: "{}".into(),
        },
        order: updated,
    }
}

async fn a_cancellation_releases_seats_and_records_its_refund(repo: Arc<dyn OrderRepository>) {
    let p = purchase("u1", "e9", &["R1-S1", "R1-S2"], "pi_c", None, now_millis());
    assert_eq!(repo.purchase(&p).await.unwrap(), PurchaseOutcome::Committed);
    // Another order's seat on the same event stays sold.
    let other = purchase("u2", "e9", &["R2-S1"], "pi_d", None, now_millis());
    assert_eq!(
        repo.purchase(&other).await.unwrap(),
        PurchaseOutcome::Committed
    );
    let first = cancellation(&p.order, &["R1-S2"], 1_000);
    assert_eq!(repo.cancel(&first).await.unwrap(), CancelOutcome::Committed);
    assert_eq!(
        sold_in(&*repo, "e9").await,
        HashSet::from(["R1-S1".to_string(), "R2-S1".to_string()])
    );
    let stored = repo.order(&p.order.order_id).await.unwrap().unwrap();
    assert_eq!(stored, first.order);
    assert_eq!(stored.status, OrderStatus::PartlyCancelled);
    assert_eq!(
        repo.refunds_of(&p.order.order_id).await.unwrap(),
        vec![first.refund.clone()]
    );
    let routing: Vec<String> = repo
        .pending_outbox(10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.routing_key)
        .collect();
    assert_eq!(
        routing,
        ["order.purchased", "order.purchased", "order.cancelled"]
    );

    // A plan made from the order before the first cancellation is stale: nothing changes.
    let stale = cancellation(&p.order, &["R1-S1"], 1_000);
    assert_eq!(repo.cancel(&stale).await.unwrap(), CancelOutcome::Stale);
    assert_eq!(repo.refunds_of(&p.order.order_id).await.unwrap().len(), 1);
    assert_eq!(repo.sold_seats("e9").await.unwrap().len(), 2);

    let rest = cancellation(&stored, &["R1-S1"], 1_000);
    assert_eq!(repo.cancel(&rest).await.unwrap(), CancelOutcome::Committed);
    let stored = repo.order(&p.order.order_id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.refunded_minor),
        (OrderStatus::Cancelled, 2_000)
    );
    assert_eq!(repo.refunds_of_event("e9").await.unwrap().len(), 2);
    assert_eq!(repo.orders_of_event("e9").await.unwrap().len(), 2);
    assert_eq!(
        sold_in(&*repo, "e9").await,
        HashSet::from(["R2-S1".to_string()])
    );
    // A released seat can be sold again.
    let again = purchase("u3", "e9", &["R1-S1"], "pi_e", None, now_millis());
    assert_eq!(
        repo.purchase(&again).await.unwrap(),
        PurchaseOutcome::Committed
    );
}

fn entry(event: &str, user: &str, seats: usize, at: i64) -> WaitlistEntry {
    WaitlistEntry {
        event_id: event.into(),
        user_id: user.into(),
        seq: 0,
        seats,
        joined_at_ms: at,
        email: Some(format!("{user}@holdfast.test")),
        offer: None,
    }
}

async fn the_waitlist_is_first_come_first_served_with_one_offer_each(
    repo: Arc<dyn OrderRepository>,
) {
    let now = now_millis();
    assert!(
        repo.join_waitlist(&entry("w1", "ann", 2, now))
            .await
            .unwrap()
    );
    assert!(
        repo.join_waitlist(&entry("w1", "bob", 1, now + 1))
            .await
            .unwrap()
    );
    assert!(
        repo.join_waitlist(&entry("w2", "ann", 1, now + 2))
            .await
            .unwrap()
    );
    // One entry per user and event: joining again changes nothing.
    assert!(
        !repo
            .join_waitlist(&entry("w1", "ann", 4, now + 3))
            .await
            .unwrap()
    );
    let queue = repo.next_in_line("w1", 10, &[], 10).await.unwrap();
    let numbered = |mut e: WaitlistEntry, seq| {
        e.seq = seq;
        e
    };
    assert_eq!(
        queue,
        vec![
            numbered(entry("w1", "ann", 2, now), 1),
            numbered(entry("w1", "bob", 1, now + 1), 2)
        ]
    );
    // Only those whose wish fits, and not those passed over.
    let fits_one = repo.next_in_line("w1", 1, &[], 10).await.unwrap();
    assert_eq!(fits_one.len(), 1);
    assert_eq!(fits_one[0].user_id, "bob");
    let skip = ["ann".to_string()];
    let skipped = repo.next_in_line("w1", 10, &skip, 10).await.unwrap();
    assert_eq!(skipped[0].user_id, "bob");
    let bob = repo.waitlist_place("w1", "bob").await.unwrap().unwrap();
    assert_eq!((bob.position, bob.length), (2, 2));
    assert_eq!(repo.waitlist_place("w1", "cid").await.unwrap(), None);

    let offer = Offer {
        hold_id: "h1".into(),
        until_ms: now + 60_000,
    };
    assert!(repo.record_offer("w1", "ann", &offer, None).await.unwrap());
    // An offer is made once: a second one (another process) is refused.
    let second = Offer {
        hold_id: "h2".into(),
        until_ms: now + 60_000,
    };
    assert!(!repo.record_offer("w1", "ann", &second, None).await.unwrap());
    assert!(!repo.record_offer("w1", "cid", &second, None).await.unwrap());
    let ann = repo.waitlist_place("w1", "ann").await.unwrap().unwrap();
    assert_eq!(ann.entry.offer, Some(offer));
    assert_eq!(repo.end_offer("w1", "h2", None).await.unwrap(), None);
    let ended = repo.end_offer("w1", "h1", None).await.unwrap().unwrap();
    assert_eq!(ended.user_id, "ann");
    let bob = repo.waitlist_place("w1", "bob").await.unwrap().unwrap();
    assert_eq!((bob.position, bob.length), (1, 1));
    assert!(
        repo.leave_waitlist("w1", "bob", None)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        repo.leave_waitlist("w1", "bob", None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        repo.waitlist_summary("w1").await.unwrap(),
        Default::default()
    );
    assert_eq!(repo.waitlist_summary("w2").await.unwrap().entries, 1);
}

/// Places counted from the line's blocks agree with the queue, past the first blocks of 256,
/// as people leave from anywhere; the figures follow every join, offer and leave.
async fn places_in_a_long_line_are_counted_right(repo: Arc<dyn OrderRepository>) {
    let now = now_millis();
    let users: Vec<String> = (0..600).map(|n| format!("u{n:03}")).collect();
    for (n, user) in users.iter().enumerate() {
        let wanted = 1 + n % 3;
        let joiner = entry("long", user, wanted, now + n as i64);
        assert!(repo.join_waitlist(&joiner).await.unwrap());
    }
    let mut line = users.clone();
    // Some leave from the front, the middle and the back, one takes an offer that ends.
    for n in [0, 1, 255, 256, 257, 300, 511, 512, 599] {
        repo.leave_waitlist("long", &users[n], None).await.unwrap();
        line.retain(|u| *u != users[n]);
    }
    let offer = Offer {
        hold_id: "offer-long".into(),
        until_ms: now - 10_000,
    };
    assert!(
        repo.record_offer("long", "u100", &offer, None)
            .await
            .unwrap()
    );
    let summary = repo.waitlist_summary("long").await.unwrap();
    assert_eq!((summary.entries, summary.offers), (line.len(), 1));
    let ended = repo.offers_ended_before("long", now, 10).await.unwrap();
    assert_eq!(ended.len(), 1);
    assert!(repo.has_offers("long").await.unwrap());
    repo.end_offer("long", "offer-long", None).await.unwrap();
    line.retain(|u| u != "u100");
    assert!(!repo.has_offers("long").await.unwrap());
    for user in ["u002", "u099", "u101", "u258", "u300", "u513", "u598"] {
        let place = repo.waitlist_place("long", user).await.unwrap();
        match line.iter().position(|u| u == user) {
            Some(index) => {
                let place = place.expect("on the line");
                assert_eq!(
                    (place.position, place.length),
                    (index + 1, line.len()),
                    "{user}"
                );
            }
            None => assert_eq!(place, None, "{user}"),
        }
    }
    let seats: usize = (0..600)
        .filter(|n| line.contains(&users[*n]))
        .map(|n| 1 + n % 3)
        .sum();
    assert_eq!(repo.waitlist_summary("long").await.unwrap().seats, seats);
    // Wants above a lowered limit are found, first the smallest.
    let oversized = repo.oversized_entries("long", 2, 2).await.unwrap();
    assert_eq!(oversized.len(), 2);
    assert!(oversized.iter().all(|e| e.seats == 3));
    // A rejoin goes to the back of the line.
    assert!(
        repo.join_waitlist(&entry("long", "u000", 1, now + 1_000))
            .await
            .unwrap()
    );
    let back = repo.waitlist_place("long", "u000").await.unwrap().unwrap();
    assert_eq!(
        (back.position, back.length),
        (line.len() + 1, line.len() + 1)
    );
}

/// Published outbox messages past the retention go in batches; unpublished ones stay.
async fn published_outbox_messages_are_pruned_in_batches(repo: Arc<dyn OrderRepository>) {
    let now = now_millis();
    for n in 0..40 {
        let seat = format!("R1-S{n}");
        let p = purchase(
            "u1",
            "prune",
            &[seat.as_str()],
            &format!("pi_p{n}"),
            None,
            now,
        );
        assert_eq!(repo.purchase(&p).await.unwrap(), PurchaseOutcome::Committed);
    }
    let pending = repo.pending_outbox(100).await.unwrap();
    assert_eq!(pending.len(), 40);
    for message in &pending[..30] {
        repo.mark_sent(&message.id).await.unwrap();
    }
    // Not past the retention: nothing goes.
    assert_eq!(repo.prune(now - 60_000, now, 100).await.unwrap(), 0);
    let mut pruned = 0;
    loop {
        let batch = repo.prune(now_millis() + 1, now, 7).await.unwrap();
        pruned += batch;
        if batch < 7 {
            break;
        }
    }
    assert_eq!(pruned, 30);
    assert_eq!(
        repo.pending_outbox(100).await.unwrap(),
        pending[30..].to_vec()
    );
}

/// Expired idempotency records go too on SQLite (MongoDB removes them by its TTL index).
#[tokio::test]
async fn expired_idempotency_records_are_pruned_on_sqlite() {
    let test = TestStore::sqlite(&SCHEMA).await;
    let repo = orders(&test.store);
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
        assert_eq!(repo.purchase(p).await.unwrap(), PurchaseOutcome::Committed);
    }
    assert_eq!(repo.prune(0, now, 100).await.unwrap(), 1);
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

async fn sqlite() -> Option<(Arc<dyn OrderRepository>, TestStore)> {
    let test = TestStore::sqlite(&SCHEMA).await;
    Some((orders(&test.store), test))
}

async fn mongodb() -> Option<(Arc<dyn OrderRepository>, TestStore)> {
    let test = TestStore::mongodb(&SCHEMA).await?;
    Some((orders(&test.store), test))
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    a_purchase_writes_seats_order_and_outbox,
    a_sold_seat_refuses_the_whole_purchase,
    an_intent_pays_for_one_order_and_a_key_is_used_once,
    an_expired_key_can_be_used_again,
    orders_are_listed_newest_first,
    concurrent_purchases_sell_a_seat_once,
    a_cancellation_releases_seats_and_records_its_refund,
    the_waitlist_is_first_come_first_served_with_one_offer_each,
    places_in_a_long_line_are_counted_right,
    published_outbox_messages_are_pruned_in_batches
]);

/// The migration that made the waitlist a line numbers the entries already stored in the
/// order they were served, and counts them into blocks and lines as joins would have.
#[test]
fn the_line_migration_numbers_existing_entries_in_queue_order() {
    let migrations = SCHEMA.sqlite_migrations;
    let line_migration = migrations
        .iter()
        .position(|m| m.contains("CREATE TABLE waitlist_lines"))
        .expect("the line migration");
    let c = rusqlite::Connection::open_in_memory().unwrap();
    for migration in &migrations[..line_migration] {
        c.execute_batch(migration).unwrap();
    }
    // 300 entries on e1 stored newest first, and one on e2.
    for n in (0..300_i64).rev() {
        c.execute(
            "INSERT INTO waitlist (event_id, user_id, seats, joined_at) VALUES ('e1', ?1, 2, ?2)",
            rusqlite::params![format!("u{n:03}"), 1_000 + n],
        )
        .unwrap();
    }
    c.execute(
        "INSERT INTO waitlist (event_id, user_id, seats, joined_at) VALUES ('e2', 'x', 1, 5)",
        [],
    )
    .unwrap();
    for migration in &migrations[line_migration..] {
        c.execute_batch(migration).unwrap();
    }
    let seq_of = |user: &str| -> i64 {
        c.query_row(
            "SELECT seq FROM waitlist WHERE event_id = 'e1' AND user_id = ?1",
            [user],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!((seq_of("u000"), seq_of("u299")), (1, 300));
    let line: (i64, i64, i64) = c
        .query_row(
            "SELECT next_seq, entries, seats FROM waitlist_lines WHERE event_id = 'e1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(line, (301, 300, 600));
    let block = |level: i64, block: i64| -> i64 {
        c.query_row(
            "SELECT entries FROM waitlist_blocks WHERE event_id = 'e1' AND level = ?1 AND block = ?2",
            [level, block],
            |r| r.get(0),
        )
        .unwrap()
    };
    // Numbers 1..=255 in the first block of 256, 256..=300 in the second.
    assert_eq!((block(1, 0), block(1, 1)), (255, 45));
    assert_eq!((block(2, 0), block(4, 0)), (300, 300));
}
