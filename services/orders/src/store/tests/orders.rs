//! Orders, refunds and sold seats: a purchase and a cancellation are all or nothing.

use super::*;
use crate::domain::order::new_block;

async fn a_purchase_writes_seats_order_and_outbox(stores: Stores) {
    let now = now_millis();
    let p = purchase("u1", "e1", &["R1-S1", "R1-S2"], "pi_1", Some("k1"), now);
    assert_eq!(
        stores.orders.purchase(&p).await.unwrap(),
        PurchaseOutcome::Committed
    );
    assert_eq!(
        sold_in(&*stores.orders, "e1").await,
        HashSet::from(["R1-S1".to_string(), "R1-S2".to_string()])
    );
    // Each sold seat names the order that bought it.
    let sold = stores.orders.sold_seats(&"e1".into()).await.unwrap();
    assert!(
        sold.values().all(|order| *order == p.order.order_id),
        "{sold:?}"
    );
    assert_eq!(
        stores
            .orders
            .order(&p.order.order_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&p.order)
    );
    let pending = stores.outbox.pending_outbox(10).await.unwrap();
    assert_eq!(pending, vec![p.outbox.clone()]);
    stores.outbox.mark_sent(&p.outbox.id).await.unwrap();
    assert!(stores.outbox.pending_outbox(10).await.unwrap().is_empty());
    let stored = stores
        .idempotency
        .idempotent_response("u1", "k1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.body),
        (201, p.idempotency.unwrap().body)
    );
    assert_eq!(
        stores
            .idempotency
            .idempotent_response("u1", "k1", now + KEY_TTL_MS)
            .await
            .unwrap(),
        None,
        "expired keys are forgotten"
    );
    assert_eq!(
        stores
            .idempotency
            .idempotent_response("u2", "k1", now)
            .await
            .unwrap(),
        None,
        "keys are per user"
    );
}

async fn a_sold_seat_refuses_the_whole_purchase(stores: Stores) {
    stores
        .orders
        .purchase(&purchase("u1", "e1", &["R1-S2"], "pi_1", None, 1))
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
        stores.orders.purchase(&second).await.unwrap(),
        PurchaseOutcome::SeatsTaken(vec!["R1-S2".into()])
    );
    // Nothing of the refused purchase is left behind.
    assert_eq!(
        sold_in(&*stores.orders, "e1").await,
        HashSet::from(["R1-S2".to_string()])
    );
    assert_eq!(
        stores.orders.order(&second.order.order_id).await.unwrap(),
        None
    );
    assert_eq!(stores.outbox.pending_outbox(10).await.unwrap().len(), 1);
    assert_eq!(
        stores
            .idempotency
            .idempotent_response("u2", "k", 0)
            .await
            .unwrap(),
        None
    );
    // The same seat of another event is another seat.
    let other = purchase("u2", "e2", &["R1-S2"], "pi_3", None, 3);
    assert_eq!(
        stores.orders.purchase(&other).await.unwrap(),
        PurchaseOutcome::Committed
    );
}

async fn orders_are_listed_newest_first(stores: Stores) {
    let old = purchase("u1", "e1", &["R1-S1"], "pi_1", None, 10);
    let new = purchase("u1", "e1", &["R1-S2"], "pi_2", None, 20);
    stores.orders.purchase(&old).await.unwrap();
    stores.orders.purchase(&new).await.unwrap();
    stores
        .orders
        .purchase(&purchase("u2", "e1", &["R1-S3"], "pi_3", None, 30))
        .await
        .unwrap();
    let ids: Vec<String> = stores
        .orders
        .orders_of("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.order_id.to_string())
        .collect();
    assert_eq!(
        ids,
        vec![
            new.order.order_id.to_string(),
            old.order.order_id.to_string()
        ]
    );
}

/// 20 buyers race for one seat: exactly one purchase commits.
async fn concurrent_purchases_sell_a_seat_once(stores: Stores) {
    let attempts = (0..20).map(|i| {
        let orders = stores.orders.clone();
        tokio::spawn(async move {
            orders
                .purchase(&purchase(
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
    assert_eq!(stores.outbox.pending_outbox(100).await.unwrap().len(), 1);
}

async fn a_cancellation_releases_seats_and_records_its_refund(stores: Stores) {
    let p = purchase("u1", "e9", &["R1-S1", "R1-S2"], "pi_c", None, now_millis());
    assert_eq!(
        stores.orders.purchase(&p).await.unwrap(),
        PurchaseOutcome::Committed
    );
    // Another order's seat on the same event stays sold.
    let other = purchase("u2", "e9", &["R2-S1"], "pi_d", None, now_millis());
    assert_eq!(
        stores.orders.purchase(&other).await.unwrap(),
        PurchaseOutcome::Committed
    );
    let first = cancellation(&p.order, &["R1-S2"], 1_000);
    assert_eq!(
        stores.orders.cancel(&first).await.unwrap(),
        CancelOutcome::Committed
    );
    assert_eq!(
        sold_in(&*stores.orders, "e9").await,
        HashSet::from(["R1-S1".to_string(), "R2-S1".to_string()])
    );
    let stored = stores
        .orders
        .order(&p.order.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, first.order);
    assert_eq!(stored.status, OrderStatus::PartlyCancelled);
    assert_eq!(
        stores.orders.refunds_of(&p.order.order_id).await.unwrap(),
        vec![first.refund.clone()]
    );
    let routing: Vec<String> = stores
        .outbox
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
    assert_eq!(
        stores.orders.cancel(&stale).await.unwrap(),
        CancelOutcome::Stale
    );
    assert_eq!(
        stores
            .orders
            .refunds_of(&p.order.order_id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        stores.orders.sold_seats(&"e9".into()).await.unwrap().len(),
        2
    );

    let rest = cancellation(&stored, &["R1-S1"], 1_000);
    assert_eq!(
        stores.orders.cancel(&rest).await.unwrap(),
        CancelOutcome::Committed
    );
    let stored = stores
        .orders
        .order(&p.order.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.refunded_minor),
        (OrderStatus::Cancelled, 2_000)
    );
    assert_eq!(
        stores
            .orders
            .refunds_of_event(&"e9".into())
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        stores
            .orders
            .orders_of_event(&"e9".into())
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        sold_in(&*stores.orders, "e9").await,
        HashSet::from(["R2-S1".to_string()])
    );
    // A released seat can be sold again.
    let again = purchase("u3", "e9", &["R1-S1"], "pi_e", None, now_millis());
    assert_eq!(
        stores.orders.purchase(&again).await.unwrap(),
        PurchaseOutcome::Committed
    );
}

/// Blocked seats are sold seats of a block: all or none, never over a sale, and unblocking
/// frees only blocked seats.
async fn blocks_are_all_or_nothing_and_free_only_blocked_seats(stores: Stores) {
    let now = now_millis();
    let p = purchase("u1", "e1", &["R1-S1"], "pi_1", None, now);
    stores.orders.purchase(&p).await.unwrap();
    let seats = |ids: &[&str]| ids.iter().map(|s| SeatId::from(*s)).collect::<Vec<_>>();
    let block = new_block();
    assert!(
        !stores
            .orders
            .block_seats(&"e1".into(), &seats(&["R1-S2", "R1-S1", "R1-S3"]), &block)
            .await
            .unwrap()
    );
    assert_eq!(
        sold_in(&*stores.orders, "e1").await,
        HashSet::from(["R1-S1".to_string()])
    );
    assert!(
        stores
            .orders
            .block_seats(&"e1".into(), &seats(&["R1-S2", "R1-S3"]), &block)
            .await
            .unwrap()
    );
    let sold = stores.orders.sold_seats(&"e1".into()).await.unwrap();
    assert_eq!(sold.get(&SeatId::from("R1-S2")), Some(&block));
    let freed = stores
        .orders
        .unblock_seats(&"e1".into(), &seats(&["R1-S1", "R1-S2", "R1-S9"]))
        .await
        .unwrap();
    assert_eq!(freed, vec![(SeatId::from("R1-S2"), block.clone())]);
    assert_eq!(
        sold_in(&*stores.orders, "e1").await,
        HashSet::from(["R1-S1".to_string(), "R1-S3".to_string()])
    );
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    blocks_are_all_or_nothing_and_free_only_blocked_seats,
    a_purchase_writes_seats_order_and_outbox,
    a_sold_seat_refuses_the_whole_purchase,
    orders_are_listed_newest_first,
    concurrent_purchases_sell_a_seat_once,
    a_cancellation_releases_seats_and_records_its_refund
]);
