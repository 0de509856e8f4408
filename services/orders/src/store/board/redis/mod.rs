//! The Redis seat board: each operation is one Lua script over the event's keys (one hash tag),
//! and every change is published on the channel `seats:changes` in the same script, so every
//! orders replica listening there sees every change, in version order.
//!
//! Every script returns the index entries it swept as expired first, so the process that ran
//! it announces those holds — each exactly once, whichever replica swept them.

use std::sync::Arc;
use std::time::Duration;

use ::redis::Script;
use async_trait::async_trait;
use holdfast_common::kv::{KvError, RedisStore, TtlStore};
use tokio::sync::{broadcast, mpsc};

use super::{
    BOARD_KEY_TTL, CHANGE_BUFFER, Claim, EVENT_KEY_COUNT, ExpiredHold, HoldKeys, LayoutLock,
    SeatBoard, SeatDelta, SeatNews, Snapshot, TakeRequest, Taken, event_keys, expired_holds,
    first_version, seat_key, slot_key,
};
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::store::SoldSeats;

/// Where the scripts publish changes (under the store's key prefix).
const CHANNEL: &str = "seats:changes";

/// Fields of the sales hash that are not seats start with this (seat ids never do): `~known`
/// marks the hash complete (the order store's sold seats were loaded into it),
/// `~unsold:<seatId>|<orderId>` a sale that was cancelled.
const NOT_A_SEAT: char = '~';

mod scripts;

use self::scripts::{
    CLAIM, EXTEND, FREE, LAYOUT_VERSION, LOAD_SOLD, LOCK_LAYOUT, SNAPSHOT, TAKE, UNLOCK_LAYOUT,
    UNSELL, VERSION,
};

/// The Redis adapter of [`SeatBoard`].
pub struct RedisBoard {
    redis: RedisStore,
    changes: broadcast::Sender<Arc<SeatNews>>,
    expirations: broadcast::Sender<ExpiredHold>,
}

impl RedisBoard {
    /// A board on `redis`, listening to the changes every replica publishes.
    pub fn new(redis: RedisStore) -> Self {
        let changes = broadcast::channel(CHANGE_BUFFER).0;
        let (raw, mut received) = mpsc::channel::<Vec<u8>>(CHANGE_BUFFER);
        let gap = changes.clone();
        redis.listen(CHANNEL, raw, move || {
            let _ = gap.send(Arc::new(SeatNews::MayHaveMissed));
        });
        let forward = changes.clone();
        tokio::spawn(async move {
            while let Some(payload) = received.recv().await {
                match serde_json::from_slice::<SeatDelta>(&payload) {
                    Ok(delta) => {
                        let _ = forward.send(Arc::new(SeatNews::Changed(delta)));
                    }
                    Err(error) => tracing::warn!(%error, "undecodable seat change ignored"),
                }
            }
        });
        Self {
            redis,
            changes,
            expirations: broadcast::channel(CHANGE_BUFFER).0,
        }
    }

    /// The fixed arguments of every script for `event_id`.
    fn args(&self, event_id: &str) -> Vec<String> {
        vec![
            self.redis.key(CHANNEL),
            event_id.to_string(),
            BOARD_KEY_TTL.as_millis().to_string(),
            first_version().to_string(),
        ]
    }

    /// Runs `script`, announces what it swept, and answers the rest of its reply.
    async fn run<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        event_id: &EventId,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, KvError> {
        let (swept, rest): (Vec<String>, ::redis::Value) =
            self.redis.eval(script, &keys, &args).await?;
        for hold in expired_holds(event_id, &swept) {
            let _ = self.expirations.send(hold);
        }
        ::redis::from_redis_value(rest).map_err(|e| KvError::Backend(e.to_string()))
    }

    fn hold_keys(hold: &HoldKeys) -> Vec<String> {
        let mut keys = event_keys(&hold.event_id).to_vec();
        keys.push(slot_key(&hold.event_id, &hold.user_id, hold.slot));
        keys.extend(hold.seat_ids.iter().map(|s| seat_key(&hold.event_id, s)));
        keys
    }

    fn hold_args(&self, hold: &HoldKeys, extra: &[String]) -> Vec<String> {
        let mut args = self.args(&hold.event_id);
        args.push(hold.hold_id.to_string());
        args.push(hold.user_id.clone());
        args.extend_from_slice(extra);
        args.extend(hold.seat_ids.iter().map(SeatId::to_string));
        args
    }

    /// Runs a script on the event's own keys with `extra` arguments; answers its reply.
    async fn on_event<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        event_id: &EventId,
        extra: &[String],
    ) -> Result<T, KvError> {
        let mut args = self.args(event_id);
        args.extend_from_slice(extra);
        self.run(script, event_id, event_keys(event_id).to_vec(), args)
            .await
    }

    /// Records the order store's `sold` seats with [`LOAD_SOLD`]; `how` is `known` for a
    /// whole load.
    async fn record_sales(
        &self,
        event_id: &EventId,
        how: &str,
        sold: &SoldSeats,
    ) -> Result<(), KvError> {
        let mut args = vec![how.to_string()];
        for (seat, order) in sold {
            if !seat.starts_with(NOT_A_SEAT) {
                args.push(seat.to_string());
                args.push(order.to_string());
            }
        }
        let _: Vec<String> = self.on_event(&LOAD_SOLD, event_id, &args).await?;
        Ok(())
    }

    async fn free(&self, hold: &HoldKeys, how: &str) -> Result<(), KvError> {
        let _: Vec<String> = self
            .run(
                &FREE,
                &hold.event_id,
                Self::hold_keys(hold),
                self.hold_args(hold, &[how.to_string()]),
            )
            .await?;
        Ok(())
    }
}

/// The ids that can be seats: fields of the sales hash that are not seats are never touched.
fn seats_only(seat_ids: &[SeatId]) -> Vec<String> {
    seat_ids
        .iter()
        .filter(|s| !s.starts_with(NOT_A_SEAT))
        .map(SeatId::to_string)
        .collect()
}

fn number<T: std::str::FromStr>(text: Option<&String>) -> Result<T, KvError> {
    text.and_then(|t| t.parse().ok())
        .ok_or_else(|| KvError::Backend(format!("unexpected script answer {text:?}")))
}

#[async_trait]
impl SeatBoard for RedisBoard {
    async fn take(&self, request: &TakeRequest) -> Result<Taken, KvError> {
        let mut keys = event_keys(&request.event_id).to_vec();
        keys.extend(
            (0..request.max_holds).map(|n| slot_key(&request.event_id, &request.user_id, n)),
        );
        keys.extend(
            request
                .seat_ids
                .iter()
                .map(|s| seat_key(&request.event_id, s)),
        );
        let mut args = self.args(&request.event_id);
        args.push(request.hold_id.to_string());
        args.push(request.user_id.clone());
        args.push(
            u64::try_from(request.ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1)
                .to_string(),
        );
        args.push(request.max_holds.to_string());
        args.push(request.layout_version.to_string());
        args.extend(request.seat_ids.iter().map(SeatId::to_string));
        let answer: Vec<String> = self.run(&TAKE, &request.event_id, keys, args).await?;
        match answer.first().map(String::as_str) {
            Some("held") => Ok(Taken::Held {
                slot: number(answer.get(1))?,
                expires_at_ms: number(answer.get(2))?,
                version: number(answer.get(3))?,
            }),
            Some("conflict") => Ok(Taken::Conflicts(
                answer[1..]
                    .iter()
                    .cloned()
                    .map(SeatId::from_stored)
                    .collect(),
            )),
            Some("full") => Ok(Taken::TooManyHolds),
            Some("sold-unknown") => Ok(Taken::SoldUnknown),
            Some("layout-locked") => Ok(Taken::LayoutLocked),
            Some("stale-layout") => Ok(Taken::StaleLayout),
            other => Err(KvError::Backend(format!(
                "unexpected take answer {other:?}"
            ))),
        }
    }

    async fn is_intact(&self, hold: &HoldKeys) -> Result<bool, KvError> {
        let keys = Self::hold_keys(hold).split_off(EVENT_KEY_COUNT);
        let values = self.redis.get_many(&keys).await?;
        Ok(values
            .iter()
            .all(|v| v.as_deref() == Some(hold.hold_id.as_str())))
    }

    async fn extend(&self, hold: &HoldKeys, ttl: Duration) -> Result<Option<i64>, KvError> {
        let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let answer: Vec<String> = self
            .run(
                &EXTEND,
                &hold.event_id,
                Self::hold_keys(hold),
                self.hold_args(hold, &[ttl.to_string()]),
            )
            .await?;
        match answer.first() {
            None => Ok(None),
            until => Ok(Some(number(until)?)),
        }
    }

    async fn claim(
        &self,
        hold: &HoldKeys,
        layout_version: u64,
        at_least: Duration,
    ) -> Result<Claim, KvError> {
        let ttl = u64::try_from(at_least.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let answer: Vec<String> = self
            .run(
                &CLAIM,
                &hold.event_id,
                Self::hold_keys(hold),
                self.hold_args(hold, &[ttl.to_string(), layout_version.to_string()]),
            )
            .await?;
        match answer.first().map(String::as_str) {
            Some("claimed") => Ok(Claim::Claimed {
                expires_at_ms: number(answer.get(1))?,
            }),
            Some("gone") => Ok(Claim::Gone),
            Some("stale-layout") => Ok(Claim::StaleLayout),
            other => Err(KvError::Backend(format!(
                "unexpected claim answer {other:?}"
            ))),
        }
    }

    async fn layout_version(&self, event_id: &EventId) -> Result<u64, KvError> {
        let answer: Vec<String> = self.on_event(&LAYOUT_VERSION, event_id, &[]).await?;
        number(answer.first())
    }

    async fn lock_layout(
        &self,
        event_id: &EventId,
        token: &str,
        ttl: Duration,
    ) -> Result<LayoutLock, KvError> {
        let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let answer: Vec<String> = self
            .on_event(
                &LOCK_LAYOUT,
                event_id,
                &[token.to_string(), ttl.to_string()],
            )
            .await?;
        match answer.first().map(String::as_str) {
            Some("locked") => Ok(LayoutLock::Locked),
            Some("busy") => Ok(LayoutLock::Busy),
            Some("held") => Ok(LayoutLock::SeatsHeld(number(answer.get(1))?)),
            other => Err(KvError::Backend(format!(
                "unexpected lock answer {other:?}"
            ))),
        }
    }

    async fn unlock_layout(&self, event_id: &EventId, token: &str) -> Result<(), KvError> {
        let _: Vec<String> = self
            .on_event(&UNLOCK_LAYOUT, event_id, &[token.to_string()])
            .await?;
        Ok(())
    }

    async fn release(&self, hold: &HoldKeys) -> Result<(), KvError> {
        self.free(hold, "release").await
    }

    async fn sell(&self, hold: &HoldKeys, order_id: &OrderId) -> Result<(), KvError> {
        self.free(hold, &format!("sell:{order_id}")).await
    }

    async fn mark_sold(&self, event_id: &EventId, sold: &SoldSeats) -> Result<(), KvError> {
        self.record_sales(event_id, "some", sold).await
    }

    async fn unsell(
        &self,
        event_id: &EventId,
        order_id: &OrderId,
        seat_ids: &[SeatId],
    ) -> Result<(), KvError> {
        let mut args = vec![order_id.to_string()];
        args.extend(seats_only(seat_ids));
        let _: Vec<String> = self.on_event(&UNSELL, event_id, &args).await?;
        Ok(())
    }

    async fn load_sold(&self, event_id: &EventId, sold: &SoldSeats) -> Result<(), KvError> {
        self.record_sales(event_id, "known", sold).await
    }

    async fn snapshot(&self, event_id: &EventId) -> Result<Option<Snapshot>, KvError> {
        let (state, held, sold): (Vec<String>, Vec<String>, Vec<String>) = self
            .run(
                &SNAPSHOT,
                event_id,
                event_keys(event_id).to_vec(),
                self.args(event_id),
            )
            .await?;
        if state.first().map(String::as_str) != Some("ok") {
            return Ok(None);
        }
        Ok(Some(Snapshot {
            version: number(state.get(1))?,
            held: held
                .iter()
                .filter_map(|entry| entry.split('|').next())
                .map(|seat| SeatId::from_stored(seat.to_string()))
                .collect(),
            sold: sold
                .into_iter()
                .filter(|s| !s.starts_with(NOT_A_SEAT))
                .map(SeatId::from_stored)
                .collect(),
        }))
    }

    async fn version(&self, event_id: &EventId) -> Result<u64, KvError> {
        let answer: Vec<String> = self
            .run(
                &VERSION,
                event_id,
                event_keys(event_id).to_vec(),
                self.args(event_id),
            )
            .await?;
        number(answer.first())
    }

    async fn sweep(&self, event_id: &EventId) -> Result<(), KvError> {
        self.version(event_id).await.map(|_| ())
    }

    fn changes(&self) -> broadcast::Receiver<Arc<SeatNews>> {
        self.changes.subscribe()
    }

    fn expirations(&self) -> broadcast::Receiver<ExpiredHold> {
        self.expirations.subscribe()
    }
}
