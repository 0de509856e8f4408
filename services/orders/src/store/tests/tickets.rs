//! Tickets: issued with their order, revoked with their seat, in the same transactions.

use super::checkin::{passage, result, sold_tickets};
use super::*;
use crate::domain::checkin::{Direction, ScanResult};
use crate::domain::ticket::{Ticket, TicketPolicy, TicketStatus, TicketTransfer, new_secret};

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
        assert_eq!(ticket.holder_id.as_deref(), Some("u1"));
        assert_eq!(ticket.holder_email.as_deref(), Some("u1@holdfast.test"));
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

fn transfer_of(ticket: &Ticket, to: &str, max: u32) -> TicketTransfer {
    TicketTransfer {
        transfer_id: uuid::Uuid::new_v4().to_string(),
        ticket_id: ticket.ticket_id.clone(),
        event_id: ticket.event_id.clone(),
        from_version: ticket.version,
        new_secret: new_secret(),
        from_user: "u1".into(),
        from_email: Some("u1@holdfast.test".into()),
        to_email: to.into(),
        claim_hash: crate::domain::ticket::claim_hash(&format!("code-{to}")),
        max_transfers: max,
        at_ms: now_millis(),
    }
}

fn announcement() -> OutboxMessage {
    OutboxMessage {
        id: uuid::Uuid::new_v4().to_string(),
        routing_key: "ticket.transferred".into(),
        payload: "{}".into(),
    }
}

/// A transfer reissues the ticket (the old pass is revoked at the door), announces itself in
/// the same transaction, and the receiver's account claims it by address.
async fn a_transfer_reissues_the_ticket_to_the_receiver(stores: Stores) {
    let ticket = sold_tickets(&stores, "x1", &["R1-S1"]).await.remove(0);
    let pending_before = stores.outbox.pending_outbox(100).await.unwrap().len();
    let transfer = transfer_of(&ticket, "friend@holdfast.test", 2);
    assert!(
        stores
            .tickets
            .transfer(&transfer, &announcement())
            .await
            .unwrap()
    );
    let reissued = stores
        .tickets
        .ticket(&ticket.ticket_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((reissued.version, reissued.transfers), (2, 1));
    assert_eq!(reissued.secret, transfer.new_secret);
    assert_eq!(reissued.holder_id, None);
    assert_eq!(
        reissued.holder_email.as_deref(),
        Some("friend@holdfast.test")
    );
    assert_eq!(
        stores.outbox.pending_outbox(100).await.unwrap().len(),
        pending_before + 1
    );
    // The giver's pass no longer enters.
    assert_eq!(
        result(&stores, &passage(&ticket, "A", Direction::In, now_millis())).await,
        ScanResult::Revoked
    );
    // The same transfer again (from the old version) writes nothing.
    assert!(
        !stores
            .tickets
            .transfer(&transfer, &announcement())
            .await
            .unwrap()
    );
    assert_eq!(
        stores.outbox.pending_outbox(100).await.unwrap().len(),
        pending_before + 1
    );
    // The receiver's account claims it, once.
    assert!(
        stores
            .tickets
            .tickets_of_holder("u9")
            .await
            .unwrap()
            .is_empty()
    );
    // The receiver's account claims it with the code, once; another address or code, never.
    let code = crate::domain::ticket::claim_hash("code-friend@holdfast.test");
    let wrong = crate::domain::ticket::claim_hash("code-guess");
    let claim = |hash: String, email: &'static str, user: &'static str| {
        let tickets = stores.tickets.clone();
        async move { tickets.claim_ticket(&hash, email, user).await.unwrap() }
    };
    assert_eq!(claim(wrong, "friend@holdfast.test", "u9").await, None);
    assert_eq!(claim(code.clone(), "thief@holdfast.test", "u7").await, None);
    assert_eq!(
        claim(code.clone(), "Friend@Holdfast.test", "u9").await,
        Some(ticket.ticket_id.clone())
    );
    assert_eq!(claim(code, "friend@holdfast.test", "u8").await, None);
    let held = stores.tickets.tickets_of_holder("u9").await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].ticket_id, ticket.ticket_id);
    // Its new pass enters.
    assert_eq!(
        result(
            &stores,
            &passage(&held[0], "A", Direction::In, now_millis())
        )
        .await,
        ScanResult::Entered
    );
    // Once entered, it cannot be transferred.
    let entered = transfer_of(&held[0], "x@holdfast.test", 5);
    assert!(
        !stores
            .tickets
            .transfer(&entered, &announcement())
            .await
            .unwrap()
    );
}

async fn transfers_stop_at_the_most_allowed(stores: Stores) {
    let ticket = sold_tickets(&stores, "x2", &["R1-S1"]).await.remove(0);
    let first = transfer_of(&ticket, "a@holdfast.test", 1);
    assert!(
        stores
            .tickets
            .transfer(&first, &announcement())
            .await
            .unwrap()
    );
    let once = stores
        .tickets
        .ticket(&ticket.ticket_id)
        .await
        .unwrap()
        .unwrap();
    let over = transfer_of(&once, "b@holdfast.test", 1);
    assert!(
        !stores
            .tickets
            .transfer(&over, &announcement())
            .await
            .unwrap()
    );
    let allowed = transfer_of(&once, "b@holdfast.test", 2);
    assert!(
        stores
            .tickets
            .transfer(&allowed, &announcement())
            .await
            .unwrap()
    );
}

async fn ticket_policies_default_until_set(stores: Stores) {
    let event: EventId = "x3".into();
    assert_eq!(
        stores.tickets.ticket_policy(&event).await.unwrap(),
        TicketPolicy::default()
    );
    let set = TicketPolicy {
        reentry: true,
        transfers_enabled: false,
        transfer_cutoff_hours: 48,
        max_transfers: 5,
    };
    stores
        .tickets
        .set_ticket_policy(&event, &set)
        .await
        .unwrap();
    assert_eq!(stores.tickets.ticket_policy(&event).await.unwrap(), set);
    stores
        .tickets
        .set_ticket_policy(&event, &TicketPolicy::default())
        .await
        .unwrap();
    assert_eq!(
        stores.tickets.ticket_policy(&event).await.unwrap(),
        TicketPolicy::default()
    );
}

/// Orders stored before tickets existed get theirs at start: one per standing seat, once.
async fn orders_without_tickets_get_them_once(stores: Stores) {
    let mut old = purchase("u5", "t9", &["R1-S1", "R1-S2"], "pi_t9", None, now_millis());
    old.tickets.clear();
    stores.orders.purchase(&old).await.unwrap();
    stores
        .orders
        .cancel(&cancellation(&old.order, &["R1-S2"], 1_000))
        .await
        .unwrap();
    let before = now_millis();
    assert!(stores.tickets.backfill_tickets().await.unwrap() >= 1);
    let tickets = stores
        .tickets
        .tickets_of_order(&old.order.order_id)
        .await
        .unwrap();
    assert_eq!(tickets.len(), 1, "the standing seat only");
    assert_eq!(
        (tickets[0].seat_id.as_str(), tickets[0].status),
        ("R1-S1", TicketStatus::Valid)
    );
    assert_eq!(tickets[0].holder_id.as_deref(), Some("u5"));
    assert!(
        tickets[0].changed_at_ms >= before,
        "changed now, for scanners' deltas"
    );
    assert_eq!(stores.tickets.backfill_tickets().await.unwrap(), 0);
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    orders_without_tickets_get_them_once,
    a_transfer_reissues_the_ticket_to_the_receiver,
    transfers_stop_at_the_most_allowed,
    ticket_policies_default_until_set,
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
         payment_intent_id, status, created_at, cancelled_seat_ids, email) \
         VALUES ('o1', 'u1', 'e1', '[\"R1-S1\",\"R1-S2\",\"R1-S3\"]', 300, 'EUR', 'pi', \
         'partially_cancelled', 7, '[\"R1-S2\"]', 'Buyer@Holdfast.test')",
        [],
    )
    .unwrap();
    for migration in &migrations[ticket_migration..] {
        c.execute_batch(migration).unwrap();
    }
    let mut statement = c
        .prepare("SELECT ticket_id, seat_id, holder_id, status, version, secret, changed_at, holder_email FROM tickets ORDER BY seat_id")
        .unwrap();
    type Row = (String, String, String, String, i64, String, i64, String);
    let rows: Vec<Row> = statement
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let seats: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(seats, ["R1-S1", "R1-S3"]);
    assert_ne!(rows[0].0, rows[1].0);
    for (id, _, holder, status, version, secret, changed, email) in &rows {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert_eq!(email, "buyer@holdfast.test");
        assert_eq!(
            (holder.as_str(), status.as_str(), *version, *changed),
            ("u1", "valid", 1, 7)
        );
        assert_eq!(secret.len(), 12);
    }
}
