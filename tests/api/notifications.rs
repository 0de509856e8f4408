//! Notifications, end to end: what the orders service announces reaches a real SMTP server
//! (an in-test one, over TCP) once per message, a refused mail is tried again, a hopeless one
//! ends `DEAD`, and without `SMTP_URL` mail goes to the development mbox file. Each SMTP test
//! runs with the delivery log on SQLite and on MongoDB.

use std::time::Duration;

use crate::support::{
    Db, Storage, TestStack, access_token, api, assert_error, buy, cancel, counter, event, get_json,
    metrics, post, spawn_in, spawn_on, spawn_on_with, token_for,
};
use holdfast_common::bus::BusMessage;
use holdfast_common::infra::Infra;
use holdfast_common::messages::OrderPurchased;
use holdfast_common::testing::smtp::{ReceivedMail, SmtpSink};
use serde_json::json;

/// How long mail may take to arrive; tests wait only as long as it actually takes.
const PATIENCE: Duration = Duration::from_secs(15);

async fn stack_mailing_to(sink: &SmtpSink, db: Db, vars: &[(&str, &str)]) -> Option<TestStack> {
    if !db.available() {
        return None;
    }
    let mut env = vec![
        ("SMTP_URL", sink.url.as_str()),
        ("MAIL_RETRY_BASE_MS", "20"),
    ];
    env.extend_from_slice(vars);
    Some(spawn_in(db, &env).await)
}

fn to<'m>(mails: &'m [ReceivedMail], address: &str) -> Vec<&'m ReceivedMail> {
    mails.iter().filter(|m| m.to == [address]).collect()
}

fn subject(mail: &ReceivedMail) -> String {
    mail.header("Subject").unwrap_or_default()
}

/// An `order.purchased` announcement for `email`, as the outbox relay publishes it.
fn purchase_message(order_id: &str, email: &str) -> BusMessage {
    BusMessage::of(&OrderPurchased {
        order_id: order_id.into(),
        user_id: "mail-buyer".into(),
        event_id: "mail-event".into(),
        seat_ids: vec!["A-1".into()],
        amount: 5.into(),
        currency: "INR".into(),
        payment_intent_id: None,
        email: Some(email.into()),
        event: None,
        seats: Vec::new(),
        tickets: Vec::new(),
    })
    .unwrap()
}

async fn notifications_counter(s: &TestStack, name: &str) -> f64 {
    counter(&metrics(&s.stack.notifications_url).await, name).unwrap_or(0.0)
}

/// Waits until the notifications counter `name` reaches `value`; answers what it reached.
async fn counter_reaching(s: &TestStack, name: &str, value: f64) -> f64 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = notifications_counter(s, name).await;
        if now >= value || tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An `order.purchased` left unsent in the outbox at a stop is mailed after the restart, once:
/// the in-process bus routes what the relay publishes at start-up only once every consumer
/// (the notifications worker among them) has subscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_rows_left_unsent_at_a_stop_are_mailed_after_the_restart() {
    let storage = Storage::new(Db::Sqlite);
    let first = spawn_on(&storage, Infra::embedded()).await;
    first.shutdown();
    drop(first);
    let message = purchase_message("left-unsent", "restarted@example.com");
    let orders = rusqlite::Connection::open(storage.data_dir().join("orders.sqlite3")).unwrap();
    orders.busy_timeout(Duration::from_secs(5)).unwrap();
    orders
        .execute(
            "INSERT INTO outbox (id, routing_key, payload, created_at) VALUES (?1, ?2, ?3, 0)",
            rusqlite::params![
                message.message_id.to_string(),
                message.routing_key,
                serde_json::to_string(&message).unwrap()
            ],
        )
        .unwrap();

    let sink = SmtpSink::start().await;
    let vars = [
        ("SMTP_URL", sink.url.as_str()),
        ("MAIL_RETRY_BASE_MS", "20"),
    ];
    let second = spawn_on_with(&storage, &vars, Infra::embedded()).await;
    let mails = sink.wait_for(1, PATIENCE).await;
    assert_eq!(to(&mails, "restarted@example.com").len(), 1, "{mails:#?}");
    // Exactly once: nothing more arrives, and the row is sent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sink.received().len(), 1, "{:#?}", sink.received());
    let unsent: i64 = orders
        .query_row(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unsent, 0);
    second.shutdown();
}

/// `MAX_SEATS_PER_HOLD` lowered below what someone on a waitlist asked for: that entry is taken
/// off the line with a mail saying why, and the next in line is offered the seats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_wanting_more_than_a_hold_may_take_never_blocks_the_line() {
    let storage = Storage::new(Db::Sqlite);
    let first = TestStack::wrap(spawn_on(&storage, Infra::embedded()).await);
    let event_id = event(&first, 1, 6, 2.0).await;
    let buyer = token_for("six-seat-buyer");
    let seats = ["R1-S1", "R1-S2", "R1-S3", "R1-S4", "R1-S5", "R1-S6"];
    let order_id = buy(&first, &buyer, &event_id, &seats, 2.0).await;
    let path = format!("/api/orders/events/{event_id}/waitlist");
    let (big, small) = (token_for("wants-six"), token_for("wants-one"));
    assert_eq!(
        post(&first, &big, &path, json!({"seats": 6}))
            .await
            .status(),
        201
    );
    assert_eq!(
        post(&first, &small, &path, json!({"seats": 1}))
            .await
            .status(),
        201
    );
    drop(first);

    let sink = SmtpSink::start().await;
    let vars = [
        ("SMTP_URL", sink.url.as_str()),
        ("MAIL_RETRY_BASE_MS", "20"),
        ("MAX_SEATS_PER_HOLD", "4"),
    ];
    let second = TestStack::wrap(spawn_on_with(&storage, &vars, Infra::embedded()).await);
    let cancelled = cancel(
        &second,
        &buyer,
        &order_id,
        Some(json!({"seatIds": ["R1-S3"]})),
    )
    .await;
    assert_eq!(cancelled.status(), 200);
    let mut offer = None;
    for _ in 0..200 {
        let holds = crate::support::get_json(&second, Some(&small), "/api/orders/holds").await;
        offer = holds["holds"].as_array().unwrap().first().cloned();
        if offer.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let offer = offer.expect("the next in line is offered the seat");
    assert_eq!(offer["seatIds"], json!(["R1-S3"]));
    let gone = crate::support::api()
        .get(second.at(&path))
        .bearer_auth(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let mails = sink.wait_for(3, PATIENCE).await;
    let removed = to(&mails, "wants-six@example.com");
    assert_eq!(removed.len(), 1, "{mails:#?}");
    assert_eq!(subject(removed[0]), "You were taken off a waitlist");
    assert!(
        removed[0].body().contains("at most 4 seats"),
        "{}",
        removed[0].body()
    );
}

async fn a_purchase_a_cancellation_and_an_offer_are_mailed(db: Db) {
    let sink = SmtpSink::start().await;
    let Some(s) = stack_mailing_to(&sink, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 1, 2, 10.0).await;
    let buyer = token_for("mail-buyer");
    let order_id = buy(&s, &buyer, &event_id, &["R1-S1", "R1-S2"], 10.0).await;
    let waitlist = format!("/api/orders/events/{event_id}/waitlist");
    let joined = post(
        &s,
        &token_for("mail-waiter"),
        &waitlist,
        json!({"seats": 1}),
    )
    .await;
    assert_eq!(joined.status(), 201);
    let partly = cancel(&s, &buyer, &order_id, Some(json!({"seatIds": ["R1-S2"]}))).await;
    assert_eq!(partly.status(), 200);

    let mails = sink.wait_for(3, PATIENCE).await;
    assert_eq!(mails.len(), 3, "{mails:#?}");
    let buyer_mails = to(&mails, "mail-buyer@example.com");
    let bought = buyer_mails
        .iter()
        .find(|m| subject(m) == "Your tickets for On-sale")
        .expect("a purchase mail");
    let text = bought.text_part("text/plain").expect("a plain-text part");
    for expected in [
        "Event: On-sale",
        "When: Wed 5 May 2027, 00:00 (UTC)",
        "  - Row 1, seat 1",
        "  - Row 1, seat 2",
        "Paid: 20.00 INR",
        &format!("Order: {order_id}"),
        "Ticket: Row 1, seat 2 (its QR code is attached)",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    let html = bought.text_part("text/html").expect("an HTML part");
    assert!(
        html.contains("<img src=\"cid:ticket-1@holdfast\""),
        "{html}"
    );
    assert!(
        bought
            .part("image/png")
            .expect("an inline QR code")
            .starts_with(b"\x89PNG")
    );
    let calendar = bought.text_part("text/calendar").expect("an invitation");
    assert!(
        calendar.contains("DTSTART:20270505T000000Z") && calendar.contains("SUMMARY:On-sale"),
        "{calendar}"
    );
    assert!(bought.from.contains('@'));
    assert!(
        bought
            .header("Message-ID")
            .is_some_and(|id| id.ends_with("@holdfast>"))
    );
    let cancelled = buyer_mails
        .iter()
        .find(|m| subject(m) == "Seats of your order for On-sale are cancelled")
        .expect("a cancellation mail");
    let text = cancelled.text_part("text/plain").unwrap();
    assert!(text.contains("Refunded: 10.00 INR"), "{text}");
    assert!(text.contains("  - Row 1, seat 2"), "{text}");

    let offers = to(&mails, "mail-waiter@example.com");
    assert_eq!(offers.len(), 1, "{mails:#?}");
    assert_eq!(subject(offers[0]), "Seats are waiting for you: On-sale");
    let text = offers[0].text_part("text/plain").unwrap();
    assert!(
        text.contains("Seats held for you:\r\n  - Row 1, seat 2")
            || text.contains("Seats held for you:\n  - Row 1, seat 2"),
        "{text}"
    );
}

/// A transfer mails both: the receiver how to get the ticket, the giver that it is gone.
async fn a_transfer_is_mailed_to_both(db: Db) {
    let sink = SmtpSink::start().await;
    let Some(s) = stack_mailing_to(&sink, db, &[]).await else {
        return;
    };
    let event_id = event(&s, 1, 2, 0.0).await;
    let giver = token_for("mail-giver");
    let order_id = buy(&s, &giver, &event_id, &["R1-S1"], 0.0).await;
    let tickets = crate::support::get_json(
        &s,
        Some(&giver),
        &format!("/api/orders/orders/{order_id}/tickets"),
    )
    .await;
    let ticket_id = tickets["tickets"][0]["ticketId"].as_str().unwrap();
    let given = post(
        &s,
        &giver,
        &format!("/api/orders/tickets/{ticket_id}/transfer"),
        json!({"email": "mail-friend@example.com"}),
    )
    .await;
    assert_eq!(given.status(), 200);
    let given_answer: serde_json::Value = given.json().await.unwrap();
    let mails = sink.wait_for(3, PATIENCE).await;
    let received = to(&mails, "mail-friend@example.com");
    assert_eq!(received.len(), 1, "{mails:#?}");
    assert_eq!(subject(received[0]), "A ticket for On-sale is yours");
    let text = received[0].text_part("text/plain").unwrap();
    assert!(
        text.contains("mail-giver@example.com gave you a ticket")
            && text.contains("Seat: Row 1, seat 1"),
        "{text}"
    );
    let code = given_answer["claimCode"].as_str().unwrap();
    assert!(
        text.contains(&format!("claim it with this code: {code}")),
        "{text}"
    );
    let giver_mails = to(&mails, "mail-giver@example.com");
    assert!(
        giver_mails
            .iter()
            .any(|m| subject(m) == "You gave away your ticket for On-sale"),
        "{mails:#?}"
    );
}

async fn a_message_delivered_twice_is_mailed_once(db: Db) {
    let sink = SmtpSink::start().await;
    let Some(s) = stack_mailing_to(&sink, db, &[]).await else {
        return;
    };
    let bus = s.stack.infra.bus.clone();
    let twice = purchase_message("o-twice", "twice@example.com");
    bus.publish(&twice).await.unwrap();
    bus.publish(&twice).await.unwrap();
    // The queue is consumed in order: once the next message's mail is out, the redelivery
    // has been handled.
    bus.publish(&purchase_message("o-after", "after@example.com"))
        .await
        .unwrap();
    let mails = sink.wait_for(2, PATIENCE).await;
    assert_eq!(to(&mails, "after@example.com").len(), 1, "{mails:#?}");
    assert_eq!(to(&mails, "twice@example.com").len(), 1, "{mails:#?}");
    assert_eq!(mails.len(), 2);
    assert_eq!(
        notifications_counter(&s, "holdfast_mail_sent_total").await,
        2.0
    );
}

async fn a_refused_mail_is_retried_and_a_hopeless_one_ends_dead(db: Db) {
    let sink = SmtpSink::start().await;
    let Some(s) = stack_mailing_to(&sink, db, &[("MAIL_MAX_ATTEMPTS", "3")]).await else {
        return;
    };
    let bus = s.stack.infra.bus.clone();
    sink.refuse_next(1);
    bus.publish(&purchase_message("o-retried", "retried@example.com"))
        .await
        .unwrap();
    let mails = sink.wait_for(1, PATIENCE).await;
    assert_eq!(to(&mails, "retried@example.com").len(), 1, "{mails:#?}");
    assert_eq!(sink.refused(), 1, "the first attempt was refused");
    assert_eq!(
        notifications_counter(&s, "holdfast_mail_failed_attempts_total").await,
        1.0
    );

    sink.refuse_next(usize::MAX);
    bus.publish(&purchase_message("o-hopeless", "hopeless@example.com"))
        .await
        .unwrap();
    assert_eq!(
        counter_reaching(&s, "holdfast_mail_dead_total", 1.0).await,
        1.0
    );
    assert_eq!(sink.refused(), 1 + 3, "three attempts, then DEAD");
    assert!(to(&sink.received(), "hopeless@example.com").is_empty());
    assert_eq!(
        notifications_counter(&s, "holdfast_mail_failed_attempts_total").await,
        4.0
    );
}

/// An admin lists the mails given up on and retries one with a fresh set of attempts; other
/// callers are refused.
async fn an_admin_retries_a_dead_mail(db: Db) {
    let sink = SmtpSink::start().await;
    let Some(s) = stack_mailing_to(&sink, db, &[("MAIL_MAX_ATTEMPTS", "2")]).await else {
        return;
    };
    let admin = access_token(&s, "admin@holdfast.test", "holdfast-demo").await;
    let user = access_token(&s, "user@holdfast.test", "holdfast-demo").await;
    sink.refuse_next(usize::MAX);
    let message = purchase_message("o-dead", "dead@example.com");
    s.stack.infra.bus.publish(&message).await.unwrap();
    assert_eq!(
        counter_reaching(&s, "holdfast_mail_dead_total", 1.0).await,
        1.0
    );

    let listed = get_json(&s, Some(&admin), "/api/notifications/mails/dead").await;
    let id = message.message_id.to_string();
    assert_eq!(listed["items"][0]["messageId"], json!(id), "{listed}");
    assert_eq!(listed["items"][0]["recipient"], "dead@example.com");
    assert_eq!(listed["items"][0]["status"], "DEAD");
    assert!(listed["items"][0]["lastError"].as_str().is_some());
    let path = format!("/api/notifications/mails/{id}/retry");
    let anonymous = api().post(s.at(&path)).send().await.unwrap();
    assert_error(anonymous, 401, "UNAUTHENTICATED").await;
    assert_error(post(&s, &user, &path, json!({})).await, 403, "FORBIDDEN").await;
    let listed_by_user = api()
        .get(s.at("/api/notifications/mails/dead"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_error(listed_by_user, 403, "FORBIDDEN").await;

    sink.refuse_next(0);
    let retried = post(&s, &admin, &path, json!({})).await;
    assert_eq!(retried.status(), 200);
    let retried: serde_json::Value = retried.json().await.unwrap();
    assert_eq!(
        (retried["status"].as_str(), retried["attempts"].as_u64()),
        (Some("PENDING"), Some(0))
    );
    let mails = sink.wait_for(1, PATIENCE).await;
    assert_eq!(to(&mails, "dead@example.com").len(), 1, "{mails:#?}");
    let again = post(&s, &admin, &path, json!({})).await;
    assert_error(again, 409, "NOT_WAITING").await;
    let unknown = post(
        &s,
        &admin,
        "/api/notifications/mails/nobody/retry",
        json!({}),
    )
    .await;
    assert_error(unknown, 404, "NOT_FOUND").await;
    let bad = api()
        .get(s.at("/api/notifications/mails/dead?limit=0"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "VALIDATION_FAILED").await;
}

/// A message its consumer cannot read becomes a dead letter, kept and counted; an admin
/// re-drives it to its queue, where it dies again (still unreadable), one death more.
async fn an_unreadable_message_is_kept_as_a_dead_letter_and_redriven(db: Db) {
    let sink = SmtpSink::start().await;
    let Some(s) = stack_mailing_to(&sink, db, &[]).await else {
        return;
    };
    let admin = access_token(&s, "admin@holdfast.test", "holdfast-demo").await;
    let unreadable = BusMessage::with_version("order.purchased", 1, json!({"orderId": 7})).unwrap();
    s.stack.infra.bus.publish(&unreadable).await.unwrap();
    let dead = "holdfast_bus_dead_letters_total{service=\"notifications\",queue=\"notifications.mail\",reason=\"undecodable\"}";
    assert_eq!(counter_reaching(&s, dead, 1.0).await, 1.0);
    // The queue goes on: the next purchase is mailed.
    s.stack
        .infra
        .bus
        .publish(&purchase_message("o-next", "next@example.com"))
        .await
        .unwrap();
    sink.wait_for(1, PATIENCE).await;

    let listed = get_json(
        &s,
        Some(&admin),
        "/api/notifications/dead-letters?status=WAITING",
    )
    .await;
    let items = listed["items"].as_array().unwrap();
    let letter = items
        .iter()
        .find(|l| {
            l["messageId"] == json!(unreadable.message_id.to_string())
                && l["queue"] == "notifications.mail"
        })
        .unwrap_or_else(|| panic!("the dead letter is listed: {listed}"));
    assert_eq!(letter["routingKey"], "order.purchased");
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .starts_with("undecodable"),
        "{letter}"
    );
    assert_eq!(letter["deaths"], 1);
    let body: BusMessage = serde_json::from_str(letter["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, unreadable);
    let id = letter["id"].as_str().unwrap();
    // The recommendations model and the seat board's sales keeper could not read it either (a
    // dead letter of each of their queues), and the sales keeper gave up the next purchase too
    // (its event id, `mail-event`, is no event id).
    assert_eq!(
        counter_reaching(&s, "holdfast_bus_dead_letters_waiting", 4.0).await,
        4.0
    );

    let path = format!("/api/notifications/dead-letters/{id}/redrive");
    let redriven = post(&s, &admin, &path, json!({})).await;
    assert_eq!(redriven.status(), 200);
    let redriven: serde_json::Value = redriven.json().await.unwrap();
    assert_eq!(redriven["status"], "REDRIVEN");
    assert_eq!(counter_reaching(&s, dead, 2.0).await, 2.0, "it died again");
    let again = get_json(
        &s,
        Some(&admin),
        "/api/notifications/dead-letters?status=WAITING",
    )
    .await;
    let again = again["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == json!(id))
        .cloned()
        .expect("waiting again");
    assert_eq!(again["deaths"], 2);
    let unknown = post(
        &s,
        &admin,
        "/api/notifications/dead-letters/0123/redrive",
        json!({}),
    )
    .await;
    assert_error(unknown, 404, "NOT_FOUND").await;
    let user = access_token(&s, "user@holdfast.test", "holdfast-demo").await;
    assert_error(post(&s, &user, &path, json!({})).await, 403, "FORBIDDEN").await;
    let bad = api()
        .get(s.at("/api/notifications/dead-letters?cursor=nope"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "VALIDATION_FAILED").await;
}

crate::support::on_both_document_stores!(
    an_admin_retries_a_dead_mail,
    an_unreadable_message_is_kept_as_a_dead_letter_and_redriven,
    a_purchase_a_cancellation_and_an_offer_are_mailed,
    a_transfer_is_mailed_to_both,
    a_message_delivered_twice_is_mailed_once,
    a_refused_mail_is_retried_and_a_hopeless_one_ends_dead,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_mail_goes_to_the_mbox_file() {
    let s = spawn_in(Db::Sqlite, &[]).await;
    s.stack
        .infra
        .bus
        .publish(&purchase_message("o-filed", "filed@example.com"))
        .await
        .unwrap();
    let mbox = s.data_dir().join("mail.mbox");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut written = String::new();
    while tokio::time::Instant::now() < deadline && !written.contains("o-filed") {
        tokio::time::sleep(Duration::from_millis(20)).await;
        written = std::fs::read_to_string(&mbox).unwrap_or_default();
    }
    assert!(written.starts_with("From holdfast "), "{written}");
    assert!(written.contains("To: filed@example.com"), "{written}");
    assert!(
        written.contains("Subject: Your tickets for event mail-event"),
        "{written}"
    );
    assert!(written.contains("Paid: 5.00 INR"), "{written}");
}
