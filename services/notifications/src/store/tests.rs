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

/// A dead mail is listed newest first and revived with a fresh set of attempts, once.
async fn a_dead_mail_is_listed_and_revived_once(log: Arc<dyn DeliveryLog>) {
    let now = now_millis();
    for (n, id) in ["old", "new"].into_iter().enumerate() {
        log.record(&delivery(id, now + i64::try_from(n).unwrap()))
            .await
            .unwrap();
        let attempt = log.claim_due(now + 5, now + 60_000, 1).await.unwrap()[0].attempts;
        log.mark_failed(id, attempt, "550 no such user", None)
            .await
            .unwrap();
    }
    log.record(&delivery("alive", now)).await.unwrap();
    let dead: Vec<String> = log
        .dead(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message_id)
        .collect();
    assert_eq!(dead, ["new", "old"]);
    let older: Vec<String> = log
        .dead(Some(now + 1), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.message_id)
        .collect();
    assert_eq!(older, ["old"]);

    assert!(log.revive("old", now + 100).await.unwrap());
    assert!(
        !log.revive("old", now + 100).await.unwrap(),
        "only a dead mail is revived"
    );
    assert!(!log.revive("alive", now + 100).await.unwrap());
    let revived = log.get("old").await.unwrap().unwrap();
    assert_eq!(
        (revived.status, revived.attempts, revived.next_attempt_at_ms),
        (DeliveryStatus::Pending, 0, now + 100)
    );
    assert_eq!(
        revived.last_error.as_deref(),
        Some("550 no such user"),
        "the last error stays"
    );
    let claimed = log.claim_due(now + 100, now + 60_000, 10).await.unwrap();
    let mut claimed: Vec<&str> = claimed.iter().map(|d| d.message_id.as_str()).collect();
    claimed.sort_unstable();
    assert_eq!(claimed, ["alive", "old"]);
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
    finished_records_are_pruned_in_batches,
    a_dead_mail_is_listed_and_revived_once
]);

mod dead_letter_log {
    use std::sync::Arc;

    use holdfast_common::bus::DeadLetter;
    use holdfast_common::testing::TestStore;

    use crate::store::SCHEMA;
    use crate::store::dead_letters::*;

    fn letter(queue: &str, message_id: Option<&str>, reason: &str) -> DeadLetter {
        DeadLetter {
            queue: queue.into(),
            routing_key: "order.cancelled".into(),
            reason: reason.into(),
            body: format!("{{\"n\":\"{reason}\"}}"),
            message_id: message_id.map(String::from),
        }
    }

    /// One record per queue and message however often the dead-letter queue delivers it; a
    /// re-driven one that dies again waits again, one death more.
    async fn a_letter_is_kept_once_and_waits_again_when_it_dies_again(log: Arc<dyn DeadLetterLog>) {
        let first = DeadLetterRecord::new(letter("q", Some("m1"), "delivery_limit"), 1_000);
        let id = DeadLetterRecord::id_of("q", "m1");
        assert_eq!(first.id, id);
        assert_eq!(id.len(), 32);
        assert_ne!(id, DeadLetterRecord::id_of("other", "m1"));
        log.keep(&first).await.unwrap();
        log.keep(&DeadLetterRecord::new(
            letter("q", Some("m1"), "again"),
            1_500,
        ))
        .await
        .unwrap();
        assert_eq!(log.get(&id).await.unwrap(), Some(first.clone()));
        assert_eq!(log.waiting().await.unwrap(), 1);

        assert!(log.mark_redriven(&id, 2_000).await.unwrap());
        assert!(!log.mark_redriven(&id, 2_001).await.unwrap(), "once");
        let redriven = log.get(&id).await.unwrap().unwrap();
        assert_eq!(
            (redriven.status, redriven.redriven_at_ms),
            (DeadLetterStatus::Redriven, Some(2_000))
        );
        assert_eq!(log.waiting().await.unwrap(), 0);

        log.keep(&DeadLetterRecord::new(
            letter("q", Some("m1"), "undecodable: x"),
            3_000,
        ))
        .await
        .unwrap();
        let again = log.get(&id).await.unwrap().unwrap();
        assert_eq!(
            (
                again.status,
                again.deaths,
                again.dead_at_ms,
                again.letter.reason.as_str(),
                again.redriven_at_ms
            ),
            (DeadLetterStatus::Waiting, 2, 3_000, "undecodable: x", None)
        );
        // The same message dead in another queue is another record; one without an id too.
        log.keep(&DeadLetterRecord::new(
            letter("other", Some("m1"), "r"),
            3_000,
        ))
        .await
        .unwrap();
        log.keep(&DeadLetterRecord::new(
            letter("q", None, "undecodable: y"),
            3_000,
        ))
        .await
        .unwrap();
        assert_eq!(log.waiting().await.unwrap(), 3);
    }

    /// Pages newest first, filtered by status, without gaps or repeats across equal instants.
    async fn letters_page_newest_first(log: Arc<dyn DeadLetterLog>) {
        for n in 0..7_i64 {
            let record =
                DeadLetterRecord::new(letter("q", Some(&format!("m{n}")), "r"), 1_000 + n / 2);
            log.keep(&record).await.unwrap();
        }
        let id = |n: i64| DeadLetterRecord::id_of("q", &format!("m{n}"));
        log.mark_redriven(&id(6), 5_000).await.unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = log
                .list(Some(DeadLetterStatus::Waiting), after.as_ref(), 2)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(After {
                dead_at_ms: last.dead_at_ms,
                id: last.id.clone(),
            });
            seen.extend(page.iter().map(|r| r.id.clone()));
        }
        // Equal instants (m4 and m5 died in the same millisecond) are ordered by id.
        let mut expected: Vec<(i64, String)> = (0..6).map(|n| (1_000 + n / 2, id(n))).collect();
        expected.sort_by(|a, b| b.cmp(a));
        let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
        assert_eq!(seen, expected);
        let all = log.list(None, None, 100).await.unwrap();
        assert_eq!(all.len(), 7);
        assert!(all.iter().any(|r| r.id == id(6)));
    }

    async fn sqlite() -> Option<(Arc<dyn DeadLetterLog>, TestStore)> {
        let test = TestStore::sqlite(&SCHEMA).await;
        Some((dead_letters(&test.store), test))
    }

    async fn mongodb() -> Option<(Arc<dyn DeadLetterLog>, TestStore)> {
        let test = TestStore::mongodb(&SCHEMA).await?;
        Some((dead_letters(&test.store), test))
    }

    holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
        a_letter_is_kept_once_and_waits_again_when_it_dies_again,
        letters_page_newest_first
    ]);
}
