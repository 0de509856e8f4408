//! The contract every [`DeliveryLog`] adapter must meet, run once per adapter.

use std::collections::HashSet;
use std::sync::Arc;

use holdfast_common::testing::TestStore;
use holdfast_common::when::now_millis;

use super::*;
use crate::compose::Mail;

fn delivery(id: &str, at: i64) -> Delivery {
    Delivery::new(
        id.into(),
        "order.purchased".into(),
        Mail {
            to: "ann@holdfast.test".into(),
            subject: format!("subject {id}"),
            body: format!("body {id}"),
            html: Some(format!("<p>body {id}</p>")),
            attachments: vec![crate::compose::Attachment {
                filename: "event.ics".into(),
                content_type: "text/calendar".into(),
                content_id: None,
                data: "QkVHSU4=".into(),
            }],
        },
        at,
    )
}

async fn a_message_is_logged_once(log: Arc<dyn DeliveryLog>) {
    let now = now_millis();
    let first = delivery("m1", now);
    assert!(log.record(&first).await.unwrap());
    let mut again = delivery("m1", now + 5);
    again.subject = "another".into();
    assert!(
        !log.record(&again).await.unwrap(),
        "a redelivery is no new mail"
    );
    assert_eq!(log.get("m1").await.unwrap(), Some(first));
    assert_eq!(log.get("m2").await.unwrap(), None);
}

async fn a_claim_is_a_lease_counted_as_an_attempt(log: Arc<dyn DeliveryLog>) {
    let now = now_millis();
    log.record(&delivery("due", now)).await.unwrap();
    log.record(&delivery("later", now + 60_000)).await.unwrap();
    assert_eq!(log.next_due().await.unwrap(), Some(now));

    let claimed = log.claim_due(now, now + 1_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let due = &claimed[0];
    assert_eq!(
        (due.message_id.as_str(), due.status, due.attempts),
        ("due", DeliveryStatus::Sending, 1)
    );
    assert!(
        log.claim_due(now, now + 1_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );

    // The sender died: when the lease ends, the record is claimed again, one attempt more.
    let reclaimed = log.claim_due(now + 1_000, now + 2_000, 10).await.unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].attempts, 2);
    // The first sender's late word changes nothing; the current attempt's does.
    log.mark_sent("due", 1, now).await.unwrap();
    assert_eq!(
        log.get("due").await.unwrap().unwrap().status,
        DeliveryStatus::Sending
    );
    log.mark_sent("due", 2, now + 1_500).await.unwrap();
    let sent = log.get("due").await.unwrap().unwrap();
    assert_eq!(
        (sent.status, sent.sent_at_ms),
        (DeliveryStatus::Sent, Some(now + 1_500))
    );
    assert_eq!(log.next_due().await.unwrap(), Some(now + 60_000));
}

async fn a_failure_is_retried_later_or_dead(log: Arc<dyn DeliveryLog>) {
    let now = now_millis();
    log.record(&delivery("m", now)).await.unwrap();
    let attempt = log.claim_due(now, now + 1_000, 1).await.unwrap()[0].attempts;
    log.mark_failed("m", attempt, "451 try later", Some(now + 5_000))
        .await
        .unwrap();
    let pending = log.get("m").await.unwrap().unwrap();
    assert_eq!(pending.status, DeliveryStatus::Pending);
    assert_eq!(pending.next_attempt_at_ms, now + 5_000);
    assert_eq!(pending.last_error.as_deref(), Some("451 try later"));
    assert!(
        log.claim_due(now + 4_999, now + 6_000, 1)
            .await
            .unwrap()
            .is_empty()
    );

    let attempt = log.claim_due(now + 5_000, now + 6_000, 1).await.unwrap()[0].attempts;
    assert_eq!(attempt, 2);
    log.mark_failed("m", attempt, "still down", None)
        .await
        .unwrap();
    let dead = log.get("m").await.unwrap().unwrap();
    assert_eq!((dead.status, dead.attempts), (DeliveryStatus::Dead, 2));
    assert!(
        log.claim_due(i64::MAX, i64::MAX, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(log.next_due().await.unwrap(), None);
}

async fn concurrent_senders_never_claim_a_record_twice(log: Arc<dyn DeliveryLog>) {
    let now = now_millis();
    for i in 0..40 {
        log.record(&delivery(&format!("m{i}"), now)).await.unwrap();
    }
    let senders = (0..4).map(|_| {
        let log = log.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = log.claim_due(now, now + 60_000, 3).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|d| d.message_id));
            }
        })
    });
    let mut seen = HashSet::new();
    let mut total = 0;
    for sender in senders {
        for id in sender.await.unwrap() {
            total += 1;
            seen.insert(id);
        }
    }
    assert_eq!((total, seen.len()), (40, 40));
}

/// Finished records past the retention go in batches; pending ones and recent ones stay, and
/// the log stays flat however many mails went through it.
async fn finished_records_are_pruned_in_batches(log: Arc<dyn DeliveryLog>) {
    let now = now_millis();
    let old = now - 10_000;
    for round in 0..4 {
        for n in 0..50 {
            let id = format!("r{round}-m{n}");
            assert!(log.record(&delivery(&id, old)).await.unwrap());
        }
        // All sent (or given up) but two that stay pending.
        let claimed = log.claim_due(now, now + 60_000, 48).await.unwrap();
        for (n, d) in claimed.iter().enumerate() {
            if n % 2 == 0 {
                log.mark_sent(&d.message_id, d.attempts, now).await.unwrap();
            } else {
                log.mark_failed(&d.message_id, d.attempts, "no", None)
                    .await
                    .unwrap();
            }
        }
        // Not past the retention yet: nothing goes.
        assert_eq!(log.prune(old, 100).await.unwrap(), 0);
        let mut pruned = 0;
        loop {
            let batch = log.prune(now, 7).await.unwrap();
            pruned += batch;
            if batch < 7 {
                break;
            }
        }
        assert_eq!(pruned, 48, "round {round}");
    }
    // What is left: the two pending records of each round.
    let left = log.claim_due(now, now + 60_000, 1_000).await.unwrap();
    assert_eq!(left.len(), 8);
}

async fn sqlite() -> Option<(Arc<dyn DeliveryLog>, TestStore)> {
    let test = TestStore::sqlite(&SCHEMA).await;
    Some((deliveries(&test.store), test))
}

async fn mongodb() -> Option<(Arc<dyn DeliveryLog>, TestStore)> {
    let test = TestStore::mongodb(&SCHEMA).await?;
    Some((deliveries(&test.store), test))
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    a_message_is_logged_once,
    a_claim_is_a_lease_counted_as_an_attempt,
    a_failure_is_retried_later_or_dead,
    concurrent_senders_never_claim_a_record_twice,
    finished_records_are_pruned_in_batches
]);
