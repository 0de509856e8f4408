//! Tickets: issued with their order, revoked with their seat, in the same transactions.

use super::*;
use crate::domain::ticket::TicketStatus;

/// The order's tickets by seat: (status, version).
async fn tickets_by_seat(
    stores: &Stores,
    order: &Order,
) -> std::collections::BTreeMap<String, (TicketStatus, u32)> {
    stores
        .tickets
        .tickets_of_order(&order.order_id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.seat_id.to_string(), (t.status, t.version)))
        .collect()
}

async fn a_purchase_issues_a_ticket_per_seat_and_a_refused_one_none(stores: Stores) {
    let p = purchase("u1", "t1", &["R1-S1", "R1-S2"], "pi_t1", None, now_millis());
    assert_eq!(
        stores.orders.purchase(&p).await.unwrap(),
        PurchaseOutcome::Committed
    );
    let tickets = stores
        .tickets
        .tickets_of_order(&p.order.order_id)
        .await
        .unwrap();
    assert_eq!(tickets.len(), 2);
    for ticket in &tickets {
        assert_eq!(ticket.holder_id, "u1");
        assert_eq!((ticket.status, ticket.version), (TicketStatus::Valid, 1));
        assert_eq!(
            stores
                .tickets
                .ticket(&ticket.ticket_id)
                .await
                .unwrap()
                .as_ref(),
            Some(ticket)
        );
    }
    let refused = purchase("u2", "t1", &["R1-S3", "R1-S2"], "pi_t2", None, now_millis());
    assert!(matches!(
        stores.orders.purchase(&refused).await.unwrap(),
        PurchaseOutcome::SeatsTaken(_)
    ));
    assert!(
        stores
            .tickets
            .tickets_of_order(&refused.order.order_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(stores.tickets.ticket("no-such-ticket").await.unwrap(), None);
}

async fn a_cancellation_revokes_its_seats_tickets_and_a_resale_issues_new_ones(stores: Stores) {
    let p = purchase("u1", "t2", &["R1-S1", "R1-S2"], "pi_t3", None, now_millis());
    stores.orders.purchase(&p).await.unwrap();
    let cancel = cancellation(&p.order, &["R1-S2"], 1_000);
    assert_eq!(
        stores.orders.cancel(&cancel).await.unwrap(),
        CancelOutcome::Committed
    );
    assert_eq!(
        tickets_by_seat(&stores, &p.order).await,
        [
            ("R1-S1".to_string(), (TicketStatus::Valid, 1)),
            ("R1-S2".to_string(), (TicketStatus::Cancelled, 1)),
        ]
        .into()
    );
    let resale = purchase("u2", "t2", &["R1-S2"], "pi_t4", None, now_millis());
    assert_eq!(
        stores.orders.purchase(&resale).await.unwrap(),
        PurchaseOutcome::Committed
    );
    assert_eq!(
        tickets_by_seat(&stores, &resale.order).await,
        [("R1-S2".to_string(), (TicketStatus::Valid, 1))].into()
    );
    // A stale cancellation (the order moved on) revokes nothing.
    let stale = cancellation(&p.order, &["R1-S1"], 1_000);
    assert_eq!(
        stores.orders.cancel(&stale).await.unwrap(),
        CancelOutcome::Stale
    );
    assert_eq!(
        tickets_by_seat(&stores, &p.order).await["R1-S1"],
        (TicketStatus::Valid, 1)
    );
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    a_purchase_issues_a_ticket_per_seat_and_a_refused_one_none,
    a_cancellation_revokes_its_seats_tickets_and_a_resale_issues_new_ones
]);

/// The migration that brought tickets gives every live seat of the orders already stored a
/// valid ticket of its own (a UUID and a 6-byte secret, as new ones have), and cancelled seats
/// none.
#[test]
fn the_ticket_migration_issues_tickets_for_orders_bought_before() {
    let migrations = SCHEMA.sqlite_migrations;
    let ticket_migration = migrations
        .iter()
        .position(|m| m.contains("CREATE TABLE tickets"))
        .expect("the ticket migration");
    let c = rusqlite::Connection::open_in_memory().unwrap();
    for migration in &migrations[..ticket_migration] {
        c.execute_batch(migration).unwrap();
    }
    c.execute(
        "INSERT INTO orders (order_id, user_id, event_id, seat_ids, amount_minor, currency, \
         payment_intent_id, status, created_at, cancelled_seat_ids) \
         VALUES ('o1', 'u1', 'e1', '[\"R1-S1\",\"R1-S2\",\"R1-S3\"]', 300, 'EUR', 'pi', \
         'partially_cancelled', 7, '[\"R1-S2\"]')",
        [],
    )
    .unwrap();
    for migration in &migrations[ticket_migration..] {
        c.execute_batch(migration).unwrap();
    }
    let mut statement = c
        .prepare("SELECT ticket_id, seat_id, holder_id, status, version, secret, changed_at FROM tickets ORDER BY seat_id")
        .unwrap();
    let rows: Vec<(String, String, String, String, i64, String, i64)> = statement
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let seats: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(seats, ["R1-S1", "R1-S3"]);
    assert_ne!(rows[0].0, rows[1].0);
    for (id, _, holder, status, version, secret, changed) in &rows {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert_eq!(
            (holder.as_str(), status.as_str(), *version, *changed),
            ("u1", "valid", 1, 7)
        );
        assert_eq!(secret.len(), 12);
    }
}
