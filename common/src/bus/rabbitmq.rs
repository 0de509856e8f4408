//! The RabbitMQ adapter of the bus (`AMQP_URL`), built on lapin.
//!
//! - Publishing: one connection with a confirm-mode channel, shared by all publishers; a publish
//!   returns once the broker has confirmed it. A broken channel is replaced on the next publish
//!   (one retry), so a dropped connection costs at most the messages in flight at that moment,
//!   and those report an error to their caller (the outbox relay retries them).
//! - Consuming: each subscription runs a task that owns its own connection, declares its queue
//!   and bindings, and forwards deliveries. When the connection drops it reconnects with
//!   back-off; the durable queue keeps what was published meanwhile.
//! - Work queues are quorum queues (replicated across a RabbitMQ cluster, and counting
//!   deliveries): past the delivery limit the broker moves a message to the dead-letter
//!   exchange `<exchange>.dead` (at least once), whose quorum queue `<exchange>.dead-letters`
//!   keeps it with the reason in its `x-death` header. A consumer's own give-ups are published
//!   there (confirmed) with the reason in `x-holdfast-reason`, then acknowledged. A work queue
//!   declared as a classic queue by an earlier version is consumed as it is, with a warning:
//!   RabbitMQ cannot change a queue's type, so the operator drains and deletes it.
//! - Per-replica queues stay classic: not durable, auto-deleted, expiring a minute unused.
//! - Messages are persistent (delivery mode 2), JSON, with `message_id` set.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind,
    ExchangeKind,
};
use tokio::sync::{Mutex, Notify, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{
    Acknowledger, BusError, BusMessage, DEFAULT_DELIVERY_LIMIT, DELIVERY_LIMIT_REASON,
    DeadAcknowledger, DeadLetter, DeadLetterDelivery, DeadLetterSubscription, DeadSource, Delivery,
    MessageBus, Source, Subscription,
};

/// The header of a dead letter a consumer gave up on: why.
const REASON_HEADER: &str = "x-holdfast-reason";
/// The header of a dead letter a consumer gave up on: the queue it came from.
const QUEUE_HEADER: &str = "x-holdfast-queue";

/// How many unacknowledged messages one consumer may hold.
const PREFETCH: u16 = 32;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The RabbitMQ adapter of [`super::MessageBus`].
pub struct RabbitBus {
    link: Arc<Link>,
}

/// What publishers and consumers share: where the broker is, the exchanges, the publishing
/// channel and the delivery limit of work queues.
struct Link {
    url: String,
    exchange: String,
    delivery_limit: u32,
    publisher: Mutex<Option<Publisher>>,
}

struct Publisher {
    /// Kept so the connection lives as long as its channel.
    #[cfg_attr(not(test), allow(dead_code))]
    connection: Connection,
    channel: Channel,
}

fn unavailable(error: lapin::Error) -> BusError {
    BusError::Unavailable(error.to_string())
}

async fn connect(url: &str, name: &str) -> Result<Connection, BusError> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, properties)
        .await
        .map_err(unavailable)
}

async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), BusError> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)
}

/// The quorum queue of a dead-letter exchange; it has no delivery limit of its own.
fn dead_letter_queue(exchange: &str) -> String {
    format!("{exchange}.dead-letters")
}

fn dead_letter_exchange(exchange: &str) -> String {
    format!("{exchange}.dead")
}

fn quorum_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    arguments
}

/// Declares the dead-letter exchange of `exchange` and its queue.
async fn declare_dead_letters(channel: &Channel, exchange: &str) -> Result<(), BusError> {
    let (dead_exchange, dead_queue) = (dead_letter_exchange(exchange), dead_letter_queue(exchange));
    channel
        .exchange_declare(
            dead_exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)?;
    channel
        .queue_declare(
            dead_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            quorum_arguments(),
        )
        .await
        .map_err(unavailable)?;
    channel
        .queue_bind(
            dead_queue.as_str().into(),
            dead_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)
}

/// Whether the broker refused a declaration because the queue exists with other arguments.
fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e)
        if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
}

impl RabbitBus {
    /// Connects to `url` and declares the durable topic exchange `exchange` and its dead
    /// letters; work queues dead-letter a message after [`DEFAULT_DELIVERY_LIMIT`] deliveries.
    /// Fails when the broker cannot be reached, so a misconfigured process stops at start-up.
    pub async fn connect(url: &str, exchange: &str) -> Result<Self, BusError> {
        Self::connect_with_limit(url, exchange, DEFAULT_DELIVERY_LIMIT).await
    }

    /// [`Self::connect`] with work queues that dead-letter after `delivery_limit` deliveries.
    pub async fn connect_with_limit(
        url: &str,
        exchange: &str,
        delivery_limit: u32,
    ) -> Result<Self, BusError> {
        let link = Arc::new(Link {
            url: url.to_string(),
            exchange: exchange.to_string(),
            delivery_limit: delivery_limit.max(1),
            publisher: Mutex::new(None),
        });
        link.publisher_channel().await?;
        Ok(Self { link })
    }

    /// Closes the publisher's connection as a network failure would; the next publish must
    /// reconnect by itself. For tests of that recovery.
    #[cfg(test)]
    pub(super) async fn drop_publisher_connection(&self) {
        if let Some(publisher) = self.link.publisher.lock().await.as_ref() {
            let _ = publisher
                .connection
                .close(320, "connection dropped".into())
                .await;
        }
    }
}

impl Link {
    /// The confirm-mode channel, reopened if the previous one broke.
    async fn publisher_channel(&self) -> Result<Channel, BusError> {
        let mut publisher = self.publisher.lock().await;
        if let Some(p) = publisher
            .as_ref()
            .filter(|p| p.channel.status().connected())
        {
            return Ok(p.channel.clone());
        }
        let connection = connect(&self.url, "holdfast-publisher").await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        declare_exchange(&channel, &self.exchange).await?;
        declare_dead_letters(&channel, &self.exchange).await?;
        *publisher = Some(Publisher {
            connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    async fn publish_once(&self, envelope: &Envelope<'_>) -> Result<(), BusError> {
        let channel = self.publisher_channel().await?;
        let confirmation = channel
            .basic_publish(
                envelope.exchange.into(),
                envelope.routing_key.into(),
                BasicPublishOptions::default(),
                envelope.body,
                envelope.properties.clone(),
            )
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        match confirmation {
            Confirmation::Ack(_) => Ok(()),
            Confirmation::Nack(_) => Err(BusError::Refused(format!(
                "broker did not accept a message for {}",
                envelope.routing_key
            ))),
            Confirmation::NotRequested => Err(BusError::Refused(
                "publisher confirms are not enabled".into(),
            )),
        }
    }

    /// Publishes and waits for the confirm, once more on a new channel if the first broke.
    async fn publish(&self, envelope: &Envelope<'_>) -> Result<(), BusError> {
        match self.publish_once(envelope).await {
            Err(BusError::Unavailable(first)) => {
                tracing::warn!(error = %first, "publish failed; retrying on a new channel");
                self.publisher.lock().await.take();
                self.publish_once(envelope).await
            }
            other => other,
        }
    }

    /// Publishes `body` to the dead letters as given up on in `queue` for `reason`.
    async fn dead_letter(
        &self,
        queue: &str,
        routing_key: &str,
        body: &[u8],
        message_id: Option<String>,
        reason: &str,
    ) -> Result<(), BusError> {
        let mut headers = FieldTable::default();
        headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
        headers.insert(QUEUE_HEADER.into(), AMQPValue::LongString(queue.into()));
        let mut properties = persistent_json().with_headers(headers);
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        let exchange = dead_letter_exchange(&self.exchange);
        self.publish(&Envelope {
            exchange: &exchange,
            routing_key,
            body,
            properties,
        })
        .await
    }
}

/// One message to publish.
struct Envelope<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    body: &'a [u8],
    properties: BasicProperties,
}

fn persistent_json() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
}

#[async_trait]
impl MessageBus for RabbitBus {
    async fn publish(&self, message: &BusMessage) -> Result<(), BusError> {
        let body = serde_json::to_vec(message)?;
        self.link
            .publish(&Envelope {
                exchange: &self.link.exchange,
                routing_key: &message.routing_key,
                body: &body,
                properties: persistent_json()
                    .with_message_id(message.message_id.to_string().into()),
            })
            .await
    }

    async fn dead_letters(&self) -> Result<DeadLetterSubscription, BusError> {
        let queue = dead_letter_queue(&self.link.exchange);
        let consuming = self.consume(&queue, &[], QueueKind::DeadLetters).await?;
        Ok(DeadLetterSubscription {
            source: DeadSource::Amqp(consuming),
        })
    }

    async fn redrive(&self, queue: &str, body: &str) -> Result<(), BusError> {
        // The default exchange routes by queue name: to that queue alone.
        let message_id = serde_json::from_str::<BusMessage>(body)
            .map(|m| m.message_id.to_string())
            .ok();
        let mut properties = persistent_json();
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        self.link
            .publish(&Envelope {
                exchange: "",
                routing_key: queue,
                body: body.as_bytes(),
                properties,
            })
            .await
    }

    async fn subscribe(&self, queue: &str, bindings: &[&str]) -> Result<Subscription, BusError> {
        let consuming = self.consume(queue, bindings, QueueKind::Work).await?;
        Ok(Subscription {
            source: Source::Amqp(consuming),
        })
    }

    async fn subscribe_replica(
        &self,
        base: &str,
        bindings: &[&str],
    ) -> Result<Subscription, BusError> {
        let queue = super::replica_queue(base);
        let consuming = self.consume(&queue, bindings, QueueKind::Replica).await?;
        Ok(Subscription {
            source: Source::Amqp(consuming),
        })
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.link.publisher_channel().await.map(|_| ())
    }
}

impl RabbitBus {
    async fn consume(
        &self,
        queue: &str,
        bindings: &[&str],
        kind: QueueKind,
    ) -> Result<Consuming, BusError> {
        let consumer = ConsumerSpec {
            link: self.link.clone(),
            queue: queue.to_string(),
            bindings: bindings.iter().map(|b| b.to_string()).collect(),
            kind,
        };
        // The first connection is made here, so the queue is bound before we return.
        let first = consumer.open().await?;
        let (sender, deliveries) = mpsc::channel(usize::from(PREFETCH));
        let stop = CancellationToken::new();
        let control = ConsumerControl::default();
        tokio::spawn(consumer.run(first, sender, stop.clone(), control.clone()));
        Ok(Consuming {
            deliveries,
            link: self.link.clone(),
            queue: queue.to_string(),
            control,
            _stop: stop.drop_guard(),
        })
    }
}

/// What a subscription reads: the raw deliveries its consumer task forwards.
pub(super) struct Consuming {
    deliveries: mpsc::Receiver<lapin::message::Delivery>,
    link: Arc<Link>,
    queue: String,
    #[cfg_attr(not(test), allow(dead_code))]
    control: ConsumerControl,
    _stop: DropGuard,
}

impl Consuming {
    /// The next message; one that is not a [`BusMessage`] can never be handled, so it goes to
    /// the dead letters (or, if even that fails, back to the queue) instead of being handed on.
    pub(super) async fn next(&mut self) -> Option<Delivery> {
        loop {
            let delivery = self.deliveries.recv().await?;
            match serde_json::from_slice::<BusMessage>(&delivery.data) {
                Ok(message) => {
                    return Some(Delivery {
                        message,
                        redelivered: delivery.redelivered,
                        acknowledger: Acknowledger::Amqp(AmqpAcker {
                            acker: delivery.acker,
                            link: self.link.clone(),
                            queue: self.queue.clone(),
                        }),
                    });
                }
                Err(error) => {
                    tracing::error!(%error, queue = %self.queue, routing_key = %delivery.routing_key, "a message that is not a bus message goes to the dead letters");
                    let message_id = delivery
                        .properties
                        .message_id()
                        .as_ref()
                        .map(|id| id.to_string());
                    let reason = super::unreadable_reason(error);
                    let given_up = self
                        .link
                        .dead_letter(
                            &self.queue,
                            delivery.routing_key.as_str(),
                            &delivery.data,
                            message_id,
                            &reason,
                        )
                        .await;
                    let settled = match given_up {
                        Ok(()) => ack(&delivery.acker).await,
                        Err(_) => requeue(&delivery.acker).await,
                    };
                    if let Err(error) = settled {
                        tracing::warn!(%error, "cannot settle an undecodable delivery");
                    }
                }
            }
        }
    }

    /// The next dead letter, its queue and reason read from the headers the consumer that gave
    /// it up set, or else from the broker's `x-death`.
    pub(super) async fn next_dead_letter(&mut self) -> Option<DeadLetterDelivery> {
        let delivery = self.deliveries.recv().await?;
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        let text = |table: &FieldTable, name: &str| match table.inner().get(name) {
            Some(AMQPValue::LongString(value)) => {
                Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
            }
            Some(AMQPValue::ShortString(value)) => Some(value.as_str().to_string()),
            _ => None,
        };
        let first_death = match headers.inner().get("x-death") {
            Some(AMQPValue::FieldArray(deaths)) => match deaths.as_slice().first() {
                Some(AMQPValue::FieldTable(death)) => Some(death.clone()),
                _ => None,
            },
            _ => None,
        };
        let from_death = |name: &str| first_death.as_ref().and_then(|d| text(d, name));
        let reason = text(&headers, REASON_HEADER)
            .or_else(|| from_death("reason").map(|r| broker_reason(&r)))
            .unwrap_or_else(|| "unknown".into());
        let queue = text(&headers, QUEUE_HEADER)
            .or_else(|| from_death("queue"))
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&delivery.data).into_owned();
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(ShortString::to_string)
            .or_else(|| {
                serde_json::from_str::<BusMessage>(&body)
                    .ok()
                    .map(|m| m.message_id.to_string())
            });
        Some(DeadLetterDelivery {
            letter: DeadLetter {
                queue,
                routing_key: delivery.routing_key.as_str().to_string(),
                reason,
                body,
                message_id,
            },
            acknowledger: DeadAcknowledger::Amqp(delivery.acker),
        })
    }

    #[cfg(test)]
    pub(super) fn drop_connection(&self) {
        self.control.drop_connection();
    }
}

/// The broker's `x-death` reason in the bus's words: `delivery_limit` whichever version of
/// RabbitMQ said it.
fn broker_reason(reason: &str) -> String {
    match reason {
        "delivery_limit" => DELIVERY_LIMIT_REASON.to_string(),
        other => other.to_string(),
    }
}

/// Settles one work queue delivery.
pub(super) struct AmqpAcker {
    pub(super) acker: lapin::Acker,
    link: Arc<Link>,
    queue: String,
}

impl AmqpAcker {
    /// Publishes `message` to the dead letters with `reason`, then acknowledges it; if the
    /// publish fails, hands it back to the queue instead (at least once, never lost).
    pub(super) async fn dead_letter(
        &self,
        message: &BusMessage,
        reason: &str,
    ) -> Result<(), BusError> {
        let body = serde_json::to_vec(message)?;
        let id = Some(message.message_id.to_string());
        let published = self
            .link
            .dead_letter(&self.queue, &message.routing_key, &body, id, reason)
            .await;
        match published {
            Ok(()) => ack(&self.acker).await,
            Err(error) => {
                requeue(&self.acker).await?;
                Err(error)
            }
        }
    }
}

/// What kind of queue a consumer declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueueKind {
    /// Shared by the replicas of a service: a quorum queue with a delivery limit.
    Work,
    /// One replica's own: not durable, deleted when unused.
    Replica,
    /// The dead letters' quorum queue (declared with the exchange).
    DeadLetters,
}

/// Lets a test close a consumer's connection as a network failure would.
#[derive(Clone, Default)]
pub(super) struct ConsumerControl {
    drop_connection: Arc<Notify>,
}

impl ConsumerControl {
    #[cfg(test)]
    pub(super) fn drop_connection(&self) {
        self.drop_connection.notify_one();
    }
}

/// What a consumer task needs to (re)build its connection, queue and bindings.
struct ConsumerSpec {
    link: Arc<Link>,
    queue: String,
    bindings: Vec<String>,
    kind: QueueKind,
}

impl ConsumerSpec {
    /// The queue's declaration: options and arguments.
    fn declaration(&self) -> (QueueDeclareOptions, FieldTable) {
        match self.kind {
            QueueKind::Replica => {
                let mut arguments = FieldTable::default();
                // Gone a minute after its consumer, even if the process died without closing it.
                arguments.insert("x-expires".into(), AMQPValue::LongInt(60_000));
                let options = QueueDeclareOptions {
                    durable: false,
                    auto_delete: true,
                    ..Default::default()
                };
                (options, arguments)
            }
            QueueKind::Work => {
                let mut arguments = quorum_arguments();
                // RabbitMQ's limit counts the returns after the first delivery.
                let limit = i32::try_from(self.link.delivery_limit - 1).unwrap_or(i32::MAX);
                arguments.insert("x-delivery-limit".into(), AMQPValue::LongInt(limit));
                let dead = dead_letter_exchange(&self.link.exchange);
                arguments.insert(
                    "x-dead-letter-exchange".into(),
                    AMQPValue::LongString(dead.as_str().into()),
                );
                // Dead-lettered at least once: the broker keeps a message until the dead-letter
                // queue has confirmed it (which needs reject-publish overflow).
                arguments.insert(
                    "x-dead-letter-strategy".into(),
                    AMQPValue::LongString("at-least-once".into()),
                );
                arguments.insert(
                    "x-overflow".into(),
                    AMQPValue::LongString("reject-publish".into()),
                );
                (QueueDeclareOptions::durable(), arguments)
            }
            QueueKind::DeadLetters => (QueueDeclareOptions::durable(), quorum_arguments()),
        }
    }

    /// Declares the queue; a work queue an earlier version declared as a classic queue is
    /// taken as it is (see the module docs). Answers the channel to go on with.
    async fn declare(
        &self,
        connection: &Connection,
        channel: Channel,
    ) -> Result<Channel, BusError> {
        let (options, arguments) = self.declaration();
        let declared = channel
            .queue_declare(self.queue.as_str().into(), options, arguments)
            .await;
        match declared {
            Ok(_) => Ok(channel),
            Err(error) if self.kind == QueueKind::Work && is_precondition_failed(&error) => {
                tracing::warn!(queue = %self.queue, "this work queue exists as a classic queue: consumed without a delivery limit or dead letters; drain and delete it to make it a quorum queue");
                // The refusal closed the channel.
                let channel = connection.create_channel().await.map_err(unavailable)?;
                channel
                    .queue_declare(
                        self.queue.as_str().into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .map_err(unavailable)?;
                Ok(channel)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn open(&self) -> Result<(Connection, lapin::Consumer), BusError> {
        let exchange = &self.link.exchange;
        let connection =
            connect(&self.link.url, &format!("holdfast-consumer-{}", self.queue)).await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        declare_exchange(&channel, exchange).await?;
        declare_dead_letters(&channel, exchange).await?;
        let channel = self.declare(&connection, channel).await?;
        for pattern in &self.bindings {
            channel
                .queue_bind(
                    self.queue.as_str().into(),
                    exchange.as_str().into(),
                    pattern.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(unavailable)?;
        }
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await
            .map_err(unavailable)?;
        let consumer = channel
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok((connection, consumer))
    }

    /// Forwards deliveries until stopped or until the subscriber is gone, reconnecting
    /// whenever the connection breaks.
    async fn run(
        self,
        first: (Connection, lapin::Consumer),
        sender: mpsc::Sender<lapin::message::Delivery>,
        stop: CancellationToken,
        control: ConsumerControl,
    ) {
        let mut current = Some(first);
        let mut backoff = Duration::from_millis(100);
        loop {
            let (connection, mut consumer) = match current.take() {
                Some(open) => open,
                None => match self.open().await {
                    Ok(open) => {
                        tracing::info!(queue = %self.queue, "bus consumer reconnected");
                        backoff = Duration::from_millis(100);
                        open
                    }
                    Err(error) => {
                        tracing::warn!(queue = %self.queue, %error, ?backoff, "bus consumer cannot reconnect yet");
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            loop {
                tokio::select! {
                    () = stop.cancelled() => {
                        let _ = connection.close(200, "subscription dropped".into()).await;
                        return;
                    }
                    () = control.drop_connection.notified() => {
                        let _ = connection.close(320, "connection dropped".into()).await;
                        break;
                    }
                    next = consumer.next() => match next {
                        Some(Ok(delivery)) => {
                            if sender.send(delivery).await.is_err() {
                                let _ = connection.close(200, "subscriber gone".into()).await;
                                return;
                            }
                        }
                        Some(Err(error)) => {
                            tracing::warn!(queue = %self.queue, %error, "bus consumer connection lost");
                            break;
                        }
                        None => {
                            tracing::warn!(queue = %self.queue, "bus consumer stream ended");
                            break;
                        }
                    }
                }
            }
        }
    }
}

pub(super) async fn ack(acker: &lapin::Acker) -> Result<(), BusError> {
    acker
        .ack(BasicAckOptions::default())
        .await
        .map(|_| ())
        .map_err(unavailable)
}

pub(super) async fn requeue(acker: &lapin::Acker) -> Result<(), BusError> {
    acker
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(unavailable)
}

/// Deletes queues and an exchange a test created, so shared brokers keep nothing behind.
#[cfg(test)]
pub(super) async fn delete_topology(url: &str, exchange: &str, queues: &[String]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(connection) = connect(url, "holdfast-test-cleanup").await else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        let dead_queue = dead_letter_queue(exchange);
        for queue in queues.iter().chain([&dead_queue]) {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in [exchange.to_string(), dead_letter_exchange(exchange)] {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = connection.close(200, "cleanup done".into()).await;
}
