//! The two loops of the service: recording what the bus brings, and sending what is due.
//!
//! The recorder acknowledges a message only once its delivery is logged (or it makes no
//! mail), so a crash loses nothing; the log's key is the message id, so a redelivery logs
//! nothing new. The sender claims due records in batches, sends them concurrently, and marks
//! each sent, or failed with a retry time from [`RetryPolicy`], or `DEAD` once the attempts
//! are spent. Several processes may run both loops on the same log.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::bus::{Delivery as BusDelivery, MessageBus, Subscription};
use holdfast_common::config::NotificationsSettings;
use holdfast_common::when::now_millis;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;

use crate::compose::{ROUTING_KEYS, compose};
use crate::error::NotifyError;
use crate::mailer::{Mailer, SEND_TIMEOUT};
use crate::store::{Delivery, DeliveryLog};

/// The durable queue every notifications process consumes (they share its messages).
pub const QUEUE: &str = "notifications.mail";
/// How many records one claim takes, sent concurrently.
const BATCH: usize = 16;
/// How long a claim keeps other senders off a record: longer than one send may take.
const LEASE: Duration = SEND_TIMEOUT.saturating_mul(2);
/// The longest the sender sleeps without looking at the log (records another process logged
/// wake no one here).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// The pause before a message whose delivery could not be logged is handed back to the bus.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// When a failed mail is tried again: after attempt `n`, `base · 2^(n−1)` capped at `max`, of
/// which a random part up to half is taken off, so that mails that failed together (a relay
/// outage) do not all come back at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub fn from_settings(settings: &NotificationsSettings) -> Self {
        Self {
            max_attempts: settings.max_attempts,
            base: settings.retry_base,
            max: settings.retry_max,
        }
    }

    /// The wait after failed attempt `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubling = 2_u32.saturating_pow(attempt.saturating_sub(1));
        let full = self.base.saturating_mul(doubling).min(self.max);
        let jitter = full.mul_f64(fastrand::f64() / 2.0);
        full.saturating_sub(jitter)
    }

    /// When to try again after failed attempt `attempt` at `now_ms`; `None` once the attempts
    /// are spent.
    pub fn retry_at(&self, attempt: u32, now_ms: i64) -> Option<i64> {
        (attempt < self.max_attempts).then(|| {
            let wait = i64::try_from(self.delay(attempt).as_millis()).unwrap_or(i64::MAX);
            now_ms.saturating_add(wait)
        })
    }
}

/// What the service reports on `/metrics`.
#[derive(Clone, Default)]
pub struct Counters {
    pub sent: Counter,
    pub failed: Counter,
    pub dead: Counter,
}

impl Counters {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "mail_sent",
            "Mails handed to the mail server",
            self.sent.clone(),
        );
        registry.register(
            "mail_failed_attempts",
            "Attempts to send a mail that failed (each is retried until the attempts are spent)",
            self.failed.clone(),
        );
        registry.register(
            "mail_dead",
            "Mails given up on after their last attempt",
            self.dead.clone(),
        );
    }
}

/// What became of a bus message at the delivery log.
enum Logged {
    /// Its mails are logged (or it makes none).
    Done,
    /// It can never be read: why.
    Unreadable(String),
}

/// The delivery log, the way out, and the retry policy.
pub struct Worker {
    pub log: Arc<dyn DeliveryLog>,
    pub mailer: Arc<Mailer>,
    pub policy: RetryPolicy,
    pub counters: Counters,
}

impl Worker {
    /// Subscribes to the announcements (so none published from now on is missed), then runs
    /// the recorder and the sender in the background; `wake` tells the sender that a mail fell
    /// due (a dead one retried).
    pub async fn start(self, bus: &dyn MessageBus, wake: Arc<Notify>) -> Result<(), NotifyError> {
        let subscription = bus.subscribe(QUEUE, &ROUTING_KEYS).await?;
        let worker = Arc::new(self);
        tokio::spawn(worker.clone().record(subscription, wake.clone()));
        tokio::spawn(worker.send_due(wake));
        Ok(())
    }

    async fn record(self: Arc<Self>, mut subscription: Subscription, wake: Arc<Notify>) {
        while let Some(delivery) = subscription.next().await {
            let handed_back = match self.log_one(&delivery).await {
                Ok(Logged::Done) => delivery.ack().await,
                Ok(Logged::Unreadable(why)) => {
                    delivery.unreadable(why).await;
                    Ok(())
                }
                Err(error) => {
                    tracing::warn!(%error, "a notification not logged yet; the bus delivers it again");
                    tokio::time::sleep(STORE_RETRY).await;
                    delivery.requeue().await
                }
            };
            if let Err(error) = handed_back {
                tracing::warn!(%error, "cannot settle a notification message with the bus");
            }
            wake.notify_one();
        }
    }

    /// Logs the mails `delivery` makes, if any and if not logged before: the first under the
    /// message's id, the others under `<id>.<n>`.
    async fn log_one(&self, delivery: &BusDelivery) -> Result<Logged, NotifyError> {
        let message = &delivery.message;
        let mails = match compose(message) {
            Ok(mails) if !mails.is_empty() => mails,
            Ok(_) => {
                tracing::debug!(routing_key = %message.routing_key, "no mail for this message");
                return Ok(Logged::Done);
            }
            Err(error) => {
                return Ok(Logged::Unreadable(error.to_string()));
            }
        };
        for (n, mail) in mails.into_iter().enumerate() {
            let id = match n {
                0 => message.message_id.to_string(),
                n => format!("{}.{n}", message.message_id),
            };
            let record = Delivery::new(id, message.routing_key.clone(), mail, now_millis());
            if !self.log.record(&record).await? {
                tracing::debug!(message_id = %record.message_id, "mail already logged");
            }
        }
        Ok(Logged::Done)
    }

    async fn send_due(self: Arc<Self>, wake: Arc<Notify>) {
        let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        loop {
            let now = now_millis();
            match self.log.claim_due(now, now + lease_ms, BATCH).await {
                Ok(batch) if !batch.is_empty() => {
                    futures_util::future::join_all(batch.iter().map(|d| self.attempt(d))).await;
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot claim due mail"),
            }
            let idle = match self.log.next_due().await {
                Ok(Some(at)) => Duration::from_millis(
                    u64::try_from(at.saturating_sub(now_millis())).unwrap_or(0),
                )
                .min(IDLE_POLL),
                Ok(None) | Err(_) => IDLE_POLL,
            };
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(idle) => {}
            }
        }
    }

    /// One attempt at `delivery`, and its outcome logged.
    async fn attempt(&self, delivery: &Delivery) {
        let id = &delivery.message_id;
        let outcome = match self.mailer.send(delivery).await {
            Ok(()) => {
                self.counters.sent.inc();
                self.log
                    .mark_sent(id, delivery.attempts, now_millis())
                    .await
            }
            Err(error) => {
                self.counters.failed.inc();
                let retry_at = if error.is_permanent() {
                    None
                } else {
                    self.policy.retry_at(delivery.attempts, now_millis())
                };
                if retry_at.is_none() {
                    tracing::error!(%error, message_id = %id, attempts = delivery.attempts, "mail is DEAD");
                } else {
                    tracing::warn!(%error, message_id = %id, attempts = delivery.attempts, "mail not sent; retried later");
                }
                let reason = error.to_string();
                let recorded = self
                    .log
                    .mark_failed(id, delivery.attempts, &reason, retry_at)
                    .await;
                // Counted once recorded, so a mail the counter calls dead is listed as dead.
                if retry_at.is_none() && recorded.is_ok() {
                    self.counters.dead.inc();
                }
                recorded
            }
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, message_id = %id, "mail outcome not logged; the lease ends and it is tried again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(1_000),
            max: Duration::from_millis(6_000),
        }
    }

    #[test]
    fn waits_double_with_jitter_up_to_the_cap() {
        let policy = policy();
        for (attempt, full) in [(1, 1_000), (2, 2_000), (3, 4_000), (4, 6_000), (30, 6_000)] {
            for _ in 0..200 {
                let wait = policy.delay(attempt).as_millis();
                assert!(
                    (full / 2..=full).contains(&wait),
                    "attempt {attempt}: {wait} ms"
                );
            }
        }
        let waits: std::collections::HashSet<u128> =
            (0..50).map(|_| policy.delay(3).as_millis()).collect();
        assert!(waits.len() > 1, "jittered");
    }

    #[test]
    fn no_retry_after_the_last_attempt() {
        let policy = policy();
        let at = policy.retry_at(4, 10_000).unwrap();
        assert!((13_000..=16_000).contains(&at), "{at}");
        assert_eq!(policy.retry_at(5, 10_000), None);
    }
}
