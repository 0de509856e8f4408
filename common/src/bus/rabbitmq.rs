//! The RabbitMQ adapter of the bus (`AMQP_URL`), built on lapin.
//!
//! - Publishing: one connection with a confirm-mode channel, shared by all publishers; a publish
//!   returns once the broker has confirmed it. A broken channel is replaced on the next publish
//!   (one retry), so a dropped connection costs at most the messages in flight at that moment,
//!   and those report an error to their caller (the outbox relay retries them).
//! - Consuming: each subscription runs a task that owns its own connection, declares its durable
//!   queue and bindings, and forwards deliveries. When the connection drops it reconnects with
//!   back-off; the durable queue keeps what was published meanwhile.
//! - Messages are persistent (delivery mode 2), JSON, with `message_id` set.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::{Mutex, Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Acknowledger, BusError, BusMessage, Delivery, MessageBus, Source, Subscription};

/// How many unacknowledged messages one consumer may hold.
const PREFETCH: u16 = 32;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The RabbitMQ adapter of [`super::MessageBus`].
pub struct RabbitBus {
    url: String,
    exchange: String,
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

impl RabbitBus {
    /// Connects to `url` and declares the durable topic exchange `exchange`.
    /// Fails when the broker cannot be reached, so a misconfigured process stops at start-up.
    pub async fn connect(url: &str, exchange: &str) -> Result<Self, BusError> {
        let bus = Self {
            url: url.to_string(),
            exchange: exchange.to_string(),
            publisher: Mutex::new(None),
        };
        bus.publisher_channel().await?;
        Ok(bus)
    }

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
        *publisher = Some(Publisher {
            connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    /// Closes the publisher's connection as a network failure would; the next publish must
    /// reconnect by itself. For tests of that recovery.
    #[cfg(test)]
    pub(super) async fn drop_publisher_connection(&self) {
        if let Some(publisher) = self.publisher.lock().await.as_ref() {
            let _ = publisher
                .connection
                .close(320, "connection dropped".into())
                .await;
        }
    }

    async fn publish_once(&self, message: &BusMessage, body: &[u8]) -> Result<(), BusError> {
        let channel = self.publisher_channel().await?;
        let properties = BasicProperties::default()
            .with_message_id(message.message_id.to_string().into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        let confirmation = channel
            .basic_publish(
                self.exchange.as_str().into(),
                message.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        match confirmation {
            Confirmation::Ack(_) => Ok(()),
            Confirmation::Nack(_) => Err(BusError::Refused(format!(
                "broker did not accept message {}",
                message.message_id
            ))),
            Confirmation::NotRequested => Err(BusError::Refused(
                "publisher confirms are not enabled".into(),
            )),
        }
    }
}

#[async_trait]
impl MessageBus for RabbitBus {
    async fn publish(&self, message: &BusMessage) -> Result<(), BusError> {
        let body = serde_json::to_vec(message)?;
        match self.publish_once(message, &body).await {
            Err(BusError::Unavailable(first)) => {
                tracing::warn!(error = %first, "publish failed; retrying on a new channel");
                self.publisher.lock().await.take();
                self.publish_once(message, &body).await
            }
            other => other,
        }
    }

    async fn subscribe(&self, queue: &str, bindings: &[&str]) -> Result<Subscription, BusError> {
        self.consume(queue, bindings, false).await
    }

    async fn subscribe_replica(
        &self,
        base: &str,
        bindings: &[&str],
    ) -> Result<Subscription, BusError> {
        self.consume(&super::replica_queue(base), bindings, true)
            .await
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.publisher_channel().await.map(|_| ())
    }
}

impl RabbitBus {
    async fn consume(
        &self,
        queue: &str,
        bindings: &[&str],
        transient: bool,
    ) -> Result<Subscription, BusError> {
        let consumer = ConsumerSpec {
            url: self.url.clone(),
            exchange: self.exchange.clone(),
            queue: queue.to_string(),
            bindings: bindings.iter().map(|b| b.to_string()).collect(),
            transient,
        };
        // The first connection is made here, so the queue is bound before we return.
        let first = consumer.open().await?;
        let (sender, deliveries) = mpsc::channel(usize::from(PREFETCH));
        let stop = CancellationToken::new();
        let control = ConsumerControl::default();
        tokio::spawn(consumer.run(first, sender, stop.clone(), control.clone()));
        Ok(Subscription {
            source: Source::Amqp {
                deliveries,
                control,
                _stop: stop.drop_guard(),
            },
        })
    }
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
    url: String,
    exchange: String,
    queue: String,
    bindings: Vec<String>,
    /// A replica's own queue: not durable, deleted when unused.
    transient: bool,
}

impl ConsumerSpec {
    async fn open(&self) -> Result<(Connection, lapin::Consumer), BusError> {
        let connection = connect(&self.url, &format!("holdfast-consumer-{}", self.queue)).await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        declare_exchange(&channel, &self.exchange).await?;
        let (options, arguments) = if self.transient {
            let mut arguments = FieldTable::default();
            // Gone a minute after its consumer, even if the process died without closing it.
            arguments.insert("x-expires".into(), AMQPValue::LongInt(60_000));
            let options = QueueDeclareOptions {
                durable: false,
                auto_delete: true,
                ..Default::default()
            };
            (options, arguments)
        } else {
            (QueueDeclareOptions::durable(), FieldTable::default())
        };
        channel
            .queue_declare(self.queue.as_str().into(), options, arguments)
            .await
            .map_err(unavailable)?;
        for pattern in &self.bindings {
            channel
                .queue_bind(
                    self.queue.as_str().into(),
                    self.exchange.as_str().into(),
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
        sender: mpsc::Sender<Delivery>,
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
                            let Some(delivery) = decode(delivery).await else { continue };
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

/// Turns an AMQP delivery into ours; a body that is not a [`BusMessage`] can never be handled,
/// so it is rejected without requeue instead of looping forever.
async fn decode(delivery: lapin::message::Delivery) -> Option<Delivery> {
    match serde_json::from_slice::<BusMessage>(&delivery.data) {
        Ok(message) => Some(Delivery {
            message,
            redelivered: delivery.redelivered,
            acknowledger: Acknowledger::Amqp(delivery.acker),
        }),
        Err(error) => {
            tracing::error!(%error, routing_key = %delivery.routing_key, "dropping a malformed bus message");
            let _ = delivery.acker.nack(BasicNackOptions::default()).await;
            None
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
        for queue in queues {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = channel
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "cleanup done".into()).await;
}
