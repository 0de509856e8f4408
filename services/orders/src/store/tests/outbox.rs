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

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    published_outbox_messages_are_pruned_in_batches
]);
