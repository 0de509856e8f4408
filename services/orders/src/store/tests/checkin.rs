//! Check-in: passages through the door, offline batches, devices and door policies.

use super::*;
use crate::domain::checkin::{Device, Direction, Passage, ScanResult};
use crate::domain::ticket::Ticket;
use crate::store::ChangeCursor;

/// A sold ticket of a new order of `seats` on `event`.
pub(super) async fn sold_tickets(stores: &Stores, event: &str, seats: &[&str]) -> Vec<Ticket> {
    let intent = uuid::Uuid::new_v4().to_string();
    let p = purchase("u1", event, seats, &intent, None, now_millis());
    assert_eq!(
        stores.orders.purchase(&p).await.unwrap(),
        PurchaseOutcome::Committed
    );
    stores
        .tickets
        .tickets_of_order(&p.order.order_id)
        .await
        .unwrap()
}

pub(super) fn passage(ticket: &Ticket, gate: &str, direction: Direction, at_ms: i64) -> Passage {
    Passage {
        ticket_id: ticket.ticket_id.clone(),
        event_id: ticket.event_id.clone(),
        version: ticket.version,
        secret: ticket.secret.clone(),
        gate: gate.into(),
        direction,
        at_ms,
        reentry: false,
        earliest_wins: false,
    }
}

pub(super) async fn result(stores: &Stores, p: &Passage) -> ScanResult {
    stores.checkin.pass_door(p).await.unwrap().result
}

/// Invariant 11: two gates scanning one ticket at the same moment: exactly one `entered`.
async fn a_ticket_enters_once_however_many_gates_scan_it_at_once(stores: Stores) {
    let ticket = sold_tickets(&stores, "c1", &["R1-S1"]).await.remove(0);
    let checkin = stores.checkin.clone();
    let gates: Vec<_> = (0..16)
        .map(|gate| {
            let (checkin, p) = (
                checkin.clone(),
                passage(&ticket, &format!("G{gate}"), Direction::In, now_millis()),
            );
            tokio::spawn(async move { checkin.pass_door(&p).await.unwrap() })
        })
        .collect();
    let mut entered = Vec::new();
    for gate in gates {
        let outcome = gate.await.unwrap();
        match outcome.result {
            ScanResult::Entered => entered.push(outcome),
            ScanResult::AlreadyEntered => assert!(outcome.entry_gate.is_some()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(entered.len(), 1, "{entered:?}");
    let stored = stores
        .tickets
        .ticket(&ticket.ticket_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.entry_gate, entered[0].entry_gate);
    assert!(stored.inside);
}

async fn exits_and_reentry_follow_the_ticket_policy(stores: Stores) {
    let tickets = sold_tickets(&stores, "c2", &["R1-S1", "R1-S2"]).await;
    let now = now_millis();
    // No re-entry (the default).
    let strict = &tickets[0];
    assert_eq!(
        result(&stores, &passage(strict, "A", Direction::Out, now)).await,
        ScanResult::NotInside
    );
    assert_eq!(
        result(&stores, &passage(strict, "A", Direction::In, now)).await,
        ScanResult::Entered
    );
    assert_eq!(
        result(&stores, &passage(strict, "B", Direction::In, now)).await,
        ScanResult::AlreadyEntered
    );
    assert_eq!(
        result(&stores, &passage(strict, "A", Direction::Out, now)).await,
        ScanResult::Exited
    );
    let again = result(&stores, &passage(strict, "B", Direction::In, now)).await;
    assert_eq!(again, ScanResult::AlreadyEntered);
    // Re-entry allowed.
    let mut free = passage(&tickets[1], "A", Direction::In, now);
    free.reentry = true;
    assert_eq!(result(&stores, &free).await, ScanResult::Entered);
    assert_eq!(
        result(&stores, &free).await,
        ScanResult::AlreadyEntered,
        "inside already"
    );
    free.direction = Direction::Out;
    assert_eq!(result(&stores, &free).await, ScanResult::Exited);
    free.direction = Direction::In;
    free.gate = "C".into();
    let back = stores.checkin.pass_door(&free).await.unwrap();
    assert_eq!(back.result, ScanResult::Entered);
    assert_eq!(
        back.entry_gate.as_deref(),
        Some("A"),
        "the first entry is kept"
    );
}

async fn old_cancelled_and_unknown_passes_do_not_enter(stores: Stores) {
    let ticket = sold_tickets(&stores, "c3", &["R1-S1"]).await.remove(0);
    let now = now_millis();
    let mut old = passage(&ticket, "A", Direction::In, now);
    old.version += 1;
    assert_eq!(result(&stores, &old).await, ScanResult::Revoked);
    let mut other_secret = passage(&ticket, "A", Direction::In, now);
    other_secret.secret = "000000000000".into();
    assert_eq!(result(&stores, &other_secret).await, ScanResult::Revoked);
    let mut unknown = passage(&ticket, "A", Direction::In, now);
    unknown.ticket_id = uuid::Uuid::new_v4().to_string();
    assert_eq!(result(&stores, &unknown).await, ScanResult::Invalid);
    let mut elsewhere = passage(&ticket, "A", Direction::In, now);
    elsewhere.event_id = "c9".into();
    assert_eq!(result(&stores, &elsewhere).await, ScanResult::Invalid);
    // Cancelled.
    let order = stores
        .orders
        .order(&ticket.order_id)
        .await
        .unwrap()
        .unwrap();
    stores
        .orders
        .cancel(&cancellation(&order, &["R1-S1"], 1_000))
        .await
        .unwrap();
    assert_eq!(
        result(&stores, &passage(&ticket, "A", Direction::In, now)).await,
        ScanResult::Revoked
    );
}

/// Offline batches: a nonce reconciled once answers the same again and changes nothing; of
/// two gates that let one ticket in while offline, the earliest scan wins.
async fn offline_batches_are_idempotent_and_the_earliest_entry_wins(stores: Stores) {
    let ticket = sold_tickets(&stores, "c4", &["R1-S1"]).await.remove(0);
    let offline = |gate: &str, at| {
        let mut p = passage(&ticket, gate, Direction::In, at);
        p.earliest_wins = true;
        p
    };
    let expires = now_millis() + 60_000;
    let late = vec![("n1".to_string(), offline("A", 2_000))];
    let first = stores
        .checkin
        .pass_door_batch("dev-a", &late, expires)
        .await
        .unwrap();
    assert_eq!(first[0].result, ScanResult::Entered);
    // Gate B scanned it earlier, and uploads later: B's scan wins.
    let early = vec![("n1".to_string(), offline("B", 1_000))];
    let second = stores
        .checkin
        .pass_door_batch("dev-b", &early, expires)
        .await
        .unwrap();
    assert_eq!(second[0].result, ScanResult::Entered);
    let stored = stores
        .tickets
        .ticket(&ticket.ticket_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.entered_at_ms, stored.entry_gate.as_deref()),
        (Some(1_000), Some("B"))
    );
    // A third gate scanned it later still: already entered, at B.
    let later = vec![("n1".to_string(), offline("C", 3_000))];
    let third = stores
        .checkin
        .pass_door_batch("dev-c", &later, expires)
        .await
        .unwrap();
    assert_eq!(
        (
            third[0].result,
            third[0].entered_at_ms,
            third[0].entry_gate.as_deref()
        ),
        (ScanResult::AlreadyEntered, Some(1_000), Some("B"))
    );
    // Uploading A's batch again changes nothing and answers what it answered.
    let replay = stores
        .checkin
        .pass_door_batch("dev-a", &late, expires)
        .await
        .unwrap();
    assert_eq!(replay, first);
    let after = stores
        .tickets
        .ticket(&ticket.ticket_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, stored);
    // Expired nonces go (SQLite prunes them; MongoDB's TTL index does).
    let pruned = stores
        .checkin
        .prune_scan_nonces(expires + 1, 100)
        .await
        .unwrap();
    assert!(pruned == 3 || pruned == 0, "{pruned}");
}

async fn devices_are_capped_per_event_and_revocable(stores: Stores) {
    let event: EventId = "c5".into();
    let mut tokens = Vec::new();
    for n in 0..3 {
        let (device, token) = Device::new(event.clone(), format!("Gate {n}"), "org".into(), n);
        assert!(stores.checkin.add_device(&device, 3).await.unwrap());
        tokens.push((device, token));
    }
    let (extra, _) = Device::new(event.clone(), "Gate 4".into(), "org".into(), 9);
    assert!(!stores.checkin.add_device(&extra, 3).await.unwrap());
    let first = &tokens[0].0;
    assert_eq!(
        stores
            .checkin
            .device(&first.device_id)
            .await
            .unwrap()
            .as_ref(),
        Some(first)
    );
    assert!(
        stores
            .checkin
            .revoke_device(&event, &first.device_id)
            .await
            .unwrap()
    );
    assert!(
        !stores
            .checkin
            .revoke_device(&event, &first.device_id)
            .await
            .unwrap()
    );
    assert!(
        !stores
            .checkin
            .revoke_device(&"c6".into(), &tokens[1].0.device_id)
            .await
            .unwrap()
    );
    let listed = stores.checkin.devices_of(&event).await.unwrap();
    assert_eq!(listed.iter().filter(|d| d.revoked).count(), 1);
    assert_eq!(listed.len(), 3);
    // A revoked device frees its place.
    assert!(stores.checkin.add_device(&extra, 3).await.unwrap());
}

/// Scanners page through an event's ticket changes by cursor; an entry and a cancellation are
/// changes too.
async fn ticket_changes_page_by_cursor(stores: Stores) {
    let mut tickets = sold_tickets(&stores, "c8", &["R1-S1", "R1-S2", "R1-S3"]).await;
    tickets.extend(sold_tickets(&stores, "c8", &["R2-S1", "R2-S2"]).await);
    sold_tickets(&stores, "c8-other", &["R1-S1"]).await;
    let event: EventId = "c8".into();
    let mut cursor = ChangeCursor::default();
    let mut seen = Vec::new();
    loop {
        let page = stores
            .tickets
            .tickets_changed(&event, &cursor, 2)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = ChangeCursor::after(last);
        seen.extend(page.into_iter().map(|t| t.ticket_id));
    }
    let mut all: Vec<String> = tickets.iter().map(|t| t.ticket_id.clone()).collect();
    assert_eq!(seen.len(), 5, "every ticket once: {seen:?}");
    seen.sort();
    all.sort();
    assert_eq!(seen, all);
    // An entry moves a ticket past the cursor.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let entered = &tickets[1];
    assert_eq!(
        result(&stores, &passage(entered, "A", Direction::In, now_millis())).await,
        ScanResult::Entered
    );
    let changed = stores
        .tickets
        .tickets_changed(&event, &cursor, 10)
        .await
        .unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].ticket_id, entered.ticket_id);
    assert!(changed[0].inside);
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    a_ticket_enters_once_however_many_gates_scan_it_at_once,
    exits_and_reentry_follow_the_ticket_policy,
    old_cancelled_and_unknown_passes_do_not_enter,
    offline_batches_are_idempotent_and_the_earliest_entry_wins,
    devices_are_capped_per_event_and_revocable,
    ticket_changes_page_by_cursor
]);
