//! The outbox: messages written with what they announce, pruned once published.

use super::*;

/// Published outbox messages past the retention go in batches; unpublished ones stay.
async fn published_outbox_messages_are_pruned_in_batches(stores: Stores) {
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
        assert_eq!(
            stores.orders.purchase(&p).await.unwrap(),
            PurchaseOutcome::Committed
        );
    }
    let pending = stores.outbox.pending_outbox(100).await.unwrap();
    assert_eq!(pending.len(), 40);
    for message in &pending[..30] {
        stores.outbox.mark_sent(&message.id).await.unwrap();
    }
    // Not past the retention: nothing goes.
    assert_eq!(
        stores
            .outbox
            .prune_published(now - 60_000, 100)
            .await
            .unwrap(),
        0
    );
    let mut pruned = 0;
    loop {
        let batch = stores
            .outbox
            .prune_published(now_millis() + 1, 7)
            .await
            .unwrap();
        pruned += batch;
        if batch < 7 {
            break;
        }
    }
    assert_eq!(pruned, 30);
    assert_eq!(
        stores.outbox.pending_outbox(100).await.unwrap(),
        pending[30..].to_vec()
    );
}

/// Relays share the outbox: a claimed message is no other relay's until its claim ends; a
/// published one is nobody's again.
async fn relays_claim_outbox_messages_for_a_while(stores: Stores) {
    let now = now_millis();
    for n in 0..12 {
        let seat = format!("R2-S{n}");
        let p = purchase(
            "u2",
            "claims",
            &[seat.as_str()],
            &format!("pi_c{n}"),
            None,
            now,
        );
        assert_eq!(
            stores.orders.purchase(&p).await.unwrap(),
            PurchaseOutcome::Committed
        );
    }
    let all = stores.outbox.pending_outbox(100).await.unwrap();
    let first = stores
        .outbox
        .claim_outbox(5, now, now + 1_000)
        .await
        .unwrap();
    assert_eq!(first, all[..5].to_vec(), "oldest first");
    // Four relays at once share the rest: each message to one of them.
    let relays: Vec<_> = (0..4)
        .map(|_| {
            let outbox = stores.outbox.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = outbox.claim_outbox(2, now, now + 1_000).await.unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(claimed.into_iter().map(|m| m.id));
                }
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for relay in relays {
        claimed.extend(relay.await.unwrap());
    }
    claimed.sort();
    let mut rest: Vec<String> = all[5..].iter().map(|m| m.id.clone()).collect();
    rest.sort();
    assert_eq!(claimed, rest, "every other message claimed once");
    assert!(
        stores
            .outbox
            .claim_outbox(100, now + 999, now + 2_000)
            .await
            .unwrap()
            .is_empty()
    );
    // One of the first claims was published; the others' claims end and they go again.
    stores.outbox.mark_sent(&first[0].id).await.unwrap();
    let again = stores
        .outbox
        .claim_outbox(100, now + 1_001, now + 3_000)
        .await
        .unwrap();
    assert_eq!(again.len(), 11);
    assert!(again.iter().all(|m| m.id != first[0].id));
    // A relay that could not publish gives its claims back at once.
    let ids: Vec<String> = again[..3].iter().map(|m| m.id.clone()).collect();
    stores.outbox.release_claims(&ids).await.unwrap();
    let released = stores
        .outbox
        .claim_outbox(100, now + 1_002, now + 3_000)
        .await
        .unwrap();
    assert_eq!(released, again[..3].to_vec());
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    published_outbox_messages_are_pruned_in_batches,
    relays_claim_outbox_messages_for_a_while
]);
