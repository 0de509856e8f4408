//! The contract every [`MessageBus`] adapter must meet, run once per adapter.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::testing::{server_url, unique_name};

/// The delivery limit of the suite's buses.
const LIMIT: u32 = 3;

/// A bus for one test, with the names it may use and a way to clean up after it.
struct Fixture {
    bus: Arc<dyn MessageBus>,
    /// Set for RabbitMQ: (url, exchange) to delete afterwards.
    broker: Option<(String, String)>,
    queues: Vec<String>,
}

impl Fixture {
    fn queue(&mut self, name: &str) -> String {
        let queue = unique_name(&format!("test-{name}"));
        self.queues.push(queue.clone());
        queue
    }

    async fn cleanup(self) {
        if let Some((url, exchange)) = &self.broker {
            crate::bus::rabbitmq::delete_topology(url, exchange, &self.queues).await;
        }
    }
}

async fn memory_fixture() -> Option<Fixture> {
    Some(Fixture {
        bus: Arc::new(MemoryBus::new().with_delivery_limit(LIMIT)),
        broker: None,
        queues: Vec::new(),
    })
}

async fn rabbitmq_fixture() -> Option<Fixture> {
    let url = server_url("AMQP_URL")?;
    let exchange = unique_name("test-exchange");
    let bus = RabbitBus::connect_with_limit(&url, &exchange, LIMIT)
        .await
        .unwrap_or_else(|e| panic!("AMQP_URL={url} is set but unusable: {e}"));
    Some(Fixture {
        bus: Arc::new(bus),
        broker: Some((url, exchange)),
        queues: Vec::new(),
    })
}

async fn receive(subscription: &mut Subscription) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("a message arrives within 10 s")
        .expect("the subscription is open")
}

async fn assert_nothing_arrives(subscription: &mut Subscription) {
    let next = tokio::time::timeout(Duration::from_millis(400), subscription.next()).await;
    assert!(
        next.is_err(),
        "unexpected message: {:?}",
        next.ok().flatten().map(|d| d.message.clone())
    );
}

/// Receives one message and acknowledges it.
async fn take(subscription: &mut Subscription) -> BusMessage {
    let delivery = receive(subscription).await;
    let message = delivery.message.clone();
    delivery.ack().await.unwrap();
    message
}

fn message(routing_key: &str, n: u32) -> BusMessage {
    BusMessage::with_version(routing_key, 1, json!({ "n": n })).unwrap()
}

async fn every_matching_queue_gets_each_message(mut f: Fixture) {
    let (orders, all, events) = (f.queue("orders"), f.queue("all"), f.queue("events"));
    let mut orders = f.bus.subscribe(&orders, &["order.*"]).await.unwrap();
    let mut all = f.bus.subscribe(&all, &["#"]).await.unwrap();
    let mut events = f
        .bus
        .subscribe(&events, &["event.created", "event.updated"])
        .await
        .unwrap();

    let purchased = message("order.purchased", 1);
    f.bus.publish(&purchased).await.unwrap();
    for subscription in [&mut orders, &mut all] {
        let delivery = receive(subscription).await;
        assert_eq!(delivery.message, purchased);
        assert!(!delivery.redelivered);
        delivery.ack().await.unwrap();
    }
    assert_nothing_arrives(&mut events).await;

    let created = message("event.created", 2);
    f.bus.publish(&created).await.unwrap();
    assert_eq!(take(&mut events).await, created);
    assert_eq!(take(&mut all).await, created);
    assert_nothing_arrives(&mut orders).await;
    f.cleanup().await;
}

async fn messages_wait_in_the_queue_while_no_one_consumes(mut f: Fixture) {
    let queue = f.queue("durable");
    let subscription = f.bus.subscribe(&queue, &["hold.*"]).await.unwrap();
    drop(subscription);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let expired = message("hold.expired", 3);
    f.bus.publish(&expired).await.unwrap();
    let mut back = f.bus.subscribe(&queue, &["hold.*"]).await.unwrap();
    let delivery = receive(&mut back).await;
    assert_eq!(delivery.message, expired);
    delivery.ack().await.unwrap();
    f.cleanup().await;
}

async fn an_unacknowledged_message_is_delivered_again(mut f: Fixture) {
    let queue = f.queue("retry");
    let mut subscription = f.bus.subscribe(&queue, &["order.purchased"]).await.unwrap();
    let purchased = message("order.purchased", 4);
    f.bus.publish(&purchased).await.unwrap();
    receive(&mut subscription).await.requeue().await.unwrap();
    let again = receive(&mut subscription).await;
    assert_eq!(again.message, purchased);
    assert!(again.redelivered);
    again.ack().await.unwrap();
    assert_nothing_arrives(&mut subscription).await;
    f.cleanup().await;
}

async fn consumers_of_one_queue_share_its_messages(mut f: Fixture) {
    let queue = f.queue("shared");
    let mut first = f.bus.subscribe(&queue, &["user.signed_up"]).await.unwrap();
    let mut second = f.bus.subscribe(&queue, &["user.signed_up"]).await.unwrap();
    let sent: Vec<BusMessage> = (0..6).map(|n| message("user.signed_up", n)).collect();
    for m in &sent {
        f.bus.publish(m).await.unwrap();
    }
    let mut received = Vec::new();
    while received.len() < sent.len() {
        let delivery = tokio::select! {
            d = receive(&mut first) => d,
            d = receive(&mut second) => d,
        };
        received.push(delivery.message.clone());
        delivery.ack().await.unwrap();
    }
    assert_nothing_arrives(&mut first).await;
    assert_nothing_arrives(&mut second).await;
    received.sort_by_key(|m| m.payload["n"].as_u64());
    assert_eq!(
        received, sent,
        "each message exactly once across both consumers"
    );
    f.cleanup().await;
}

/// Replicas subscribing with the same base each get every message, unlike consumers of one
/// shared queue.
async fn each_replica_gets_every_message(f: Fixture) {
    let base = unique_name("test-replica");
    let mut first = f
        .bus
        .subscribe_replica(&base, &["event.updated"])
        .await
        .unwrap();
    let mut second = f
        .bus
        .subscribe_replica(&base, &["event.updated"])
        .await
        .unwrap();
    let sent = message("event.updated", 1);
    f.bus.publish(&sent).await.unwrap();
    f.bus.publish(&message("event.created", 2)).await.unwrap();
    assert_eq!(take(&mut first).await, sent);
    assert_eq!(take(&mut second).await, sent);
    assert_nothing_arrives(&mut first).await;
    assert_nothing_arrives(&mut second).await;
    // The replicas' queues delete themselves once their consumers are gone.
    drop((first, second));
    f.cleanup().await;
}

async fn receive_dead_letter(subscription: &mut DeadLetterSubscription) -> DeadLetterDelivery {
    tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("a dead letter arrives within 10 s")
        .expect("the dead letters are open")
}

/// A message its consumer can never handle goes to the dead letters with the reason, and the
/// queue goes on with the next one.
async fn a_message_given_up_on_is_a_dead_letter_with_its_reason(mut f: Fixture) {
    let queue = f.queue("poison");
    let mut subscription = f.bus.subscribe(&queue, &["order.*"]).await.unwrap();
    let mut dead = f.bus.dead_letters().await.unwrap();
    let (poison, next) = (message("order.purchased", 1), message("order.purchased", 2));
    f.bus.publish(&poison).await.unwrap();
    f.bus.publish(&next).await.unwrap();
    let delivery = receive(&mut subscription).await;
    assert_eq!(delivery.message, poison);
    delivery.dead_letter("undecodable: no seats").await.unwrap();
    assert_eq!(take(&mut subscription).await, next);
    let letter = receive_dead_letter(&mut dead).await;
    assert_eq!(letter.letter.queue, queue);
    assert_eq!(letter.letter.reason, "undecodable: no seats");
    assert_eq!(letter.letter.routing_key, "order.purchased");
    assert_eq!(
        letter.letter.message_id.as_deref(),
        Some(poison.message_id.to_string().as_str())
    );
    let body: BusMessage = serde_json::from_str(&letter.letter.body).unwrap();
    assert_eq!(body, poison);
    letter.ack().await.unwrap();
    assert_nothing_arrives(&mut subscription).await;
    f.cleanup().await;
}

/// A message whose handling fails at every delivery is dead-lettered after the limit, while
/// the messages behind it are handled.
async fn a_message_failing_every_delivery_is_dead_lettered_at_the_limit(mut f: Fixture) {
    let queue = f.queue("failing");
    let mut subscription = f.bus.subscribe(&queue, &["order.*"]).await.unwrap();
    let mut dead = f.bus.dead_letters().await.unwrap();
    let failing = message("order.cancelled", 1);
    f.bus.publish(&failing).await.unwrap();
    let healthy: Vec<BusMessage> = (2..6).map(|n| message("order.cancelled", n)).collect();
    for m in &healthy {
        f.bus.publish(m).await.unwrap();
    }
    let (mut failed, mut handled, mut letter) = (0, Vec::new(), None);
    while handled.len() < healthy.len() || letter.is_none() {
        tokio::select! {
            delivery = receive(&mut subscription) => {
                if delivery.message == failing {
                    failed += 1;
                    delivery.requeue().await.unwrap();
                } else {
                    handled.push(delivery.message.clone());
                    delivery.ack().await.unwrap();
                }
            }
            dead_letter = receive_dead_letter(&mut dead), if letter.is_none() => {
                letter = Some(dead_letter);
            }
        }
    }
    let letter = letter.expect("the dead letter");
    assert_eq!(letter.letter.reason, DELIVERY_LIMIT_REASON);
    assert_eq!(letter.letter.queue, queue);
    assert_eq!(
        serde_json::from_str::<BusMessage>(&letter.letter.body).unwrap(),
        failing
    );
    letter.ack().await.unwrap();
    assert_eq!(
        failed, LIMIT,
        "delivered exactly the limit's number of times"
    );
    handled.sort_by_key(|m| m.payload["n"].as_u64());
    assert_eq!(handled, healthy);
    assert_nothing_arrives(&mut subscription).await;
    f.cleanup().await;
}

/// A re-driven dead letter goes back to its own queue only, and is delivered afresh.
async fn a_redriven_dead_letter_goes_back_to_its_queue_alone(mut f: Fixture) {
    let (first, second) = (f.queue("first"), f.queue("second"));
    let mut first_subscription = f.bus.subscribe(&first, &["event.*"]).await.unwrap();
    let mut second_subscription = f.bus.subscribe(&second, &["event.*"]).await.unwrap();
    let mut dead = f.bus.dead_letters().await.unwrap();
    let updated = message("event.updated", 7);
    f.bus.publish(&updated).await.unwrap();
    assert_eq!(take(&mut second_subscription).await, updated);
    let delivery = receive(&mut first_subscription).await;
    delivery.dead_letter("store down").await.unwrap();
    let letter = receive_dead_letter(&mut dead).await;
    f.bus
        .redrive(&letter.letter.queue, &letter.letter.body)
        .await
        .unwrap();
    letter.ack().await.unwrap();
    let again = receive(&mut first_subscription).await;
    assert_eq!(again.message, updated);
    again.ack().await.unwrap();
    assert_nothing_arrives(&mut second_subscription).await;
    assert_nothing_arrives(&mut first_subscription).await;
    f.cleanup().await;
}

macro_rules! contract_suite {
    ($adapter:ident, $fixture:expr) => {
        mod $adapter {
            use super::*;

            #[tokio::test]
            async fn every_matching_queue_gets_each_message() {
                if let Some(f) = $fixture.await {
                    super::every_matching_queue_gets_each_message(f).await
                }
            }
            #[tokio::test]
            async fn messages_wait_in_the_queue_while_no_one_consumes() {
                if let Some(f) = $fixture.await {
                    super::messages_wait_in_the_queue_while_no_one_consumes(f).await
                }
            }
            #[tokio::test]
            async fn an_unacknowledged_message_is_delivered_again() {
                if let Some(f) = $fixture.await {
                    super::an_unacknowledged_message_is_delivered_again(f).await
                }
            }
            #[tokio::test]
            async fn each_replica_gets_every_message() {
                if let Some(f) = $fixture.await {
                    super::each_replica_gets_every_message(f).await
                }
            }
            #[tokio::test]
            async fn a_message_given_up_on_is_a_dead_letter_with_its_reason() {
                if let Some(f) = $fixture.await {
                    super::a_message_given_up_on_is_a_dead_letter_with_its_reason(f).await
                }
            }
            #[tokio::test]
            async fn a_message_failing_every_delivery_is_dead_lettered_at_the_limit() {
                if let Some(f) = $fixture.await {
                    super::a_message_failing_every_delivery_is_dead_lettered_at_the_limit(f).await
                }
            }
            #[tokio::test]
            async fn a_redriven_dead_letter_goes_back_to_its_queue_alone() {
                if let Some(f) = $fixture.await {
                    super::a_redriven_dead_letter_goes_back_to_its_queue_alone(f).await
                }
            }
            #[tokio::test]
            async fn consumers_of_one_queue_share_its_messages() {
                if let Some(f) = $fixture.await {
                    super::consumers_of_one_queue_share_its_messages(f).await
                }
            }
        }
    };
}

contract_suite!(memory, memory_fixture());
contract_suite!(rabbitmq, rabbitmq_fixture());

/// The consumer's connection drops; a message published before it is back still arrives.
#[tokio::test]
async fn rabbitmq_consumer_reconnects_after_its_connection_drops() {
    let Some(mut f) = rabbitmq_fixture().await else {
        return;
    };
    let queue = f.queue("reconnect");
    let mut subscription = f.bus.subscribe(&queue, &["order.*"]).await.unwrap();
    subscription.drop_connection();
    let during = message("order.purchased", 5);
    f.bus.publish(&during).await.unwrap();
    let delivery = receive(&mut subscription).await;
    assert_eq!(delivery.message, during);
    delivery.ack().await.unwrap();
    let after = message("order.purchased", 6);
    f.bus.publish(&after).await.unwrap();
    assert_eq!(take(&mut subscription).await, after);
    f.cleanup().await;
}

/// A dropped in-process delivery goes back to its queue, as an unacked AMQP message would.
#[tokio::test]
async fn memory_bus_requeues_a_delivery_dropped_unacknowledged() {
    let bus = MemoryBus::new();
    let mut subscription = bus.subscribe("q", &["#"]).await.unwrap();
    bus.publish(&message("hold.created", 7)).await.unwrap();
    drop(receive(&mut subscription).await);
    let again = receive(&mut subscription).await;
    assert!(again.redelivered);
    again.ack().await.unwrap();
    assert_nothing_arrives(&mut subscription).await;
}

/// A process's bus holds what is published while its consumers subscribe, then routes it to
/// every queue bound by then, once; from then on messages are routed at once.
#[tokio::test]
async fn memory_bus_routes_what_was_published_before_the_consumers_subscribed() {
    let bus = MemoryBus::until_subscribed();
    bus.publish(&message("order.purchased", 1)).await.unwrap();
    let mut early = bus.subscribe("early", &["order.*"]).await.unwrap();
    let mut late = bus.subscribe("late", &["#"]).await.unwrap();
    assert_nothing_arrives(&mut early).await;
    bus.subscribers_ready();
    assert_eq!(take(&mut early).await.payload["n"], 1);
    assert_eq!(take(&mut late).await.payload["n"], 1);
    bus.publish(&message("order.cancelled", 2)).await.unwrap();
    assert_eq!(take(&mut early).await.payload["n"], 2);
    assert_eq!(take(&mut late).await.payload["n"], 2);
    bus.subscribers_ready();
    assert_nothing_arrives(&mut early).await;
    assert_nothing_arrives(&mut late).await;
}

/// The publisher's connection drops; the next publish reconnects and is confirmed.
#[tokio::test]
async fn rabbitmq_publisher_reconnects_after_its_connection_drops() {
    let Some(url) = server_url("AMQP_URL") else {
        return;
    };
    let exchange = unique_name("test-exchange");
    let bus = RabbitBus::connect(&url, &exchange).await.unwrap();
    let queue = unique_name("test-publisher");
    let mut subscription = bus.subscribe(&queue, &["order.*"]).await.unwrap();
    bus.publish(&message("order.purchased", 8)).await.unwrap();
    assert_eq!(take(&mut subscription).await.payload["n"], 8);

    bus.drop_publisher_connection().await;
    let after = message("order.purchased", 9);
    bus.publish(&after).await.expect("the publisher reconnects");
    assert_eq!(take(&mut subscription).await, after);
    drop(subscription);
    crate::bus::rabbitmq::delete_topology(&url, &exchange, &[queue]).await;
}

/// A body that is not a bus message (published by hand, or by a broken publisher) is taken
/// out of the work queue as a dead letter, and the queue goes on.
#[tokio::test]
async fn rabbitmq_dead_letters_an_undecodable_body() {
    let Some(mut f) = rabbitmq_fixture().await else {
        return;
    };
    let (url, exchange) = f.broker.clone().unwrap();
    let queue = f.queue("undecodable");
    let mut subscription = f.bus.subscribe(&queue, &["order.*"]).await.unwrap();
    let mut dead = f.bus.dead_letters().await.unwrap();
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_publish(
            exchange.as_str().into(),
            "order.purchased".into(),
            lapin::options::BasicPublishOptions::default(),
            b"not json",
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap();
    let after = message("order.purchased", 3);
    f.bus.publish(&after).await.unwrap();
    assert_eq!(take(&mut subscription).await, after);
    let letter = receive_dead_letter(&mut dead).await;
    assert!(
        letter.letter.reason.starts_with("undecodable"),
        "{}",
        letter.letter.reason
    );
    assert_eq!(
        (letter.letter.queue.as_str(), letter.letter.body.as_str()),
        (queue.as_str(), "not json")
    );
    letter.ack().await.unwrap();
    let _ = connection.close(200, "done".into()).await;
    f.cleanup().await;
}

/// A work queue an earlier version declared as a classic queue keeps being consumed.
#[tokio::test]
async fn rabbitmq_consumes_a_classic_work_queue_left_by_an_earlier_version() {
    let Some(mut f) = rabbitmq_fixture().await else {
        return;
    };
    let (url, _) = f.broker.clone().unwrap();
    let queue = f.queue("classic");
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            queue.as_str().into(),
            lapin::options::QueueDeclareOptions::durable(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let mut subscription = f.bus.subscribe(&queue, &["order.*"]).await.unwrap();
    let sent = message("order.purchased", 4);
    f.bus.publish(&sent).await.unwrap();
    assert_eq!(take(&mut subscription).await, sent);
    let _ = connection.close(200, "done".into()).await;
    f.cleanup().await;
}
