//! The Redis seat board: each operation is one Lua script over the event's keys (one hash tag),
//! and every change is published on the channel `seats:changes` in the same script, so every
//! orders replica listening there sees every change, in version order.
//!
//! Every script returns the index entries it swept as expired first, so the process that ran
//! it announces those holds — each exactly once, whichever replica swept them.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ::redis::Script;
use async_trait::async_trait;
use holdfast_common::kv::{KvError, RedisStore, TtlStore};
use holdfast_common::venue::ROW_RANK_SHIFT;
use tokio::sync::{broadcast, mpsc};

use super::{
    BOARD_KEY_TTL, BestTake, CHANGE_BUFFER, Changed, Claim, EVENT_KEY_COUNT, ExpiredHold, Granted,
    HoldKeys, LayoutLock, SeatBoard, SeatDelta, SeatNews, Snapshot, TakeRequest, Taken, event_keys,
    expired_holds, first_version, seat_key, slot_key,
};
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::store::SoldSeats;

/// Where the scripts publish changes (under the store's key prefix).
const CHANNEL: &str = "seats:changes";

/// Fields of the sales hash that are not seats start with this (seat ids never do): `~known`
/// marks the hash complete (the order store's sold seats were loaded into it),
/// `~unsold:<seatId>|<orderId>` a sale that was cancelled.
const NOT_A_SEAT: char = '~';

mod batch;
mod scripts;
mod views;

use self::batch::Batches;
use self::scripts::{
    BEST, CHANGE, CLAIM, EXTEND, FREE, LAYOUT_VERSION, LOAD_SOLD, LOCK_LAYOUT, SNAPSHOT, TAKE,
    UNLOCK_LAYOUT, UNSELL, VERSION,
};
use self::views::{Region, Views};

/// The Redis adapter of [`SeatBoard`].
pub struct RedisBoard {
    redis: RedisStore,
    changes: broadcast::Sender<Arc<SeatNews>>,
    expirations: broadcast::Sender<ExpiredHold>,
    /// Per venue event, the taken seats: where best available searches.
    views: Arc<Views>,
    /// Best-available buyers arriving together, taken together.
    batches: Arc<Batches>,
}

/// How often best available searches again when other buyers took its region first.
const BEST_ATTEMPTS: usize = 8;

impl RedisBoard {
    /// A board on `redis`, listening to the changes every replica publishes.
    pub fn new(redis: RedisStore) -> Self {
        let changes = broadcast::channel(CHANGE_BUFFER).0;
        let (raw, mut received) = mpsc::channel::<Vec<u8>>(CHANGE_BUFFER);
        let views = Arc::new(Views::default());
        let (gap, missed) = (changes.clone(), views.clone());
        redis.listen(CHANNEL, raw, move || {
            missed.missed_changes();
            let _ = gap.send(Arc::new(SeatNews::MayHaveMissed));
        });
        let (forward, followed) = (changes.clone(), views.clone());
        tokio::spawn(async move {
            while let Some(payload) = received.recv().await {
                match serde_json::from_slice::<SeatDelta>(&payload) {
                    Ok(delta) => {
                        followed.follow(&delta);
                        let _ = forward.send(Arc::new(SeatNews::Changed(delta)));
                    }
                    Err(error) => tracing::warn!(%error, "undecodable seat change ignored"),
                }
            }
        });
        let expirations = broadcast::channel(CHANGE_BUFFER).0;
        let batches = Batches::new(redis.clone(), views.clone(), expirations.clone());
        Self {
            redis,
            changes,
            expirations,
            views,
            batches: Arc::new(batches),
        }
    }

    /// The blocks to search for `best` and the version of the view they were chosen from,
    /// from the kept view unless `read` (or it is stale), else from the board; `None` while
    /// the event's sold seats are unknown. The flag says whether the board was read.
    async fn region(
        &self,
        event_id: &EventId,
        best: &BestTake,
        read: bool,
    ) -> Result<Option<(Region, bool)>, KvError> {
        if !read && let Some(region) = self.views.search(event_id, best) {
            return Ok(Some((region, false)));
        }
        read_region(&self.redis, &self.expirations, &self.views, event_id, best).await
    }

    /// The keys and arguments every take starts with: the event's keys and the holder's slot
    /// keys; hold id, user, TTL, slot cap and layout version.
    fn take_call(&self, request: &TakeRequest) -> (Vec<String>, Vec<String>) {
        let mut keys = event_keys(&request.event_id).to_vec();
        keys.extend(
            (0..request.max_holds).map(|n| slot_key(&request.event_id, &request.user_id, n)),
        );
        let mut args = self.args(&request.event_id);
        args.extend([
            request.hold_id.to_string(),
            request.user_id.clone(),
            ttl_millis(request.ttl),
            request.max_holds.to_string(),
            request.layout_version.to_string(),
        ]);
        (keys, args)
    }

    /// The keys and arguments of [`BEST`] over `region`.
    fn best_call(
        &self,
        request: &TakeRequest,
        best: &BestTake,
        region: &[Range<usize>],
        view_version: u64,
    ) -> (Vec<String>, Vec<String>) {
        let seats = &best.plan.venue.seats;
        let (mut keys, mut args) = self.take_call(request);
        args.extend([
            best.request.count.to_string(),
            if best.request.accessible { "1" } else { "0" }.to_string(),
            view_version.to_string(),
            region.len().to_string(),
        ]);
        // A run is within one row: every seat shares the row's rank (the high bits).
        for run in region {
            args.push(run.len().to_string());
            args.push((seats[run.start].rank >> ROW_RANK_SHIFT).to_string());
        }
        let mut packed = String::with_capacity(4 * region.iter().map(Range::len).sum::<usize>());
        for seat in region.iter().flat_map(|run| &seats[run.clone()]) {
            keys.push(seat_key(&request.event_id, &seat.id));
            args.push(seat.id.clone());
            let flags = u64::from(best.request.matches(seat)) + 2 * u64::from(seat.wheelchair);
            // Below 2^(ROW_RANK_SHIFT + 2): fits the 24 bits packed.
            let in_row = seat.rank & ((1 << ROW_RANK_SHIFT) - 1);
            pack_seat(in_row * 4 + flags, &mut packed);
        }
        args.push(packed);
        (keys, args)
    }

    fn args(&self, event_id: &str) -> Vec<String> {
        script_args(&self.redis, event_id)
    }

    async fn run<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        event_id: &EventId,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, KvError> {
        run_script(&self.redis, &self.expirations, script, event_id, keys, args).await
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

/// A hold's TTL as the scripts take it: whole milliseconds, at least 1.
fn ttl_millis(ttl: Duration) -> String {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
        .to_string()
}

/// Reads the event's view from the board and answers the region for `best` in it, with
/// `true`; one read at a time per event, so the buyers who all find the view stale at once
/// wait for one read. A read done by another request while this one waited is searched
/// instead (`false`), unless nothing fits there: only a read of its own may say that. `None`
/// while the event's sold seats are unknown.
async fn read_region(
    redis: &RedisStore,
    expirations: &broadcast::Sender<ExpiredHold>,
    views: &Views,
    event_id: &EventId,
    best: &BestTake,
) -> Result<Option<(Region, bool)>, KvError> {
    let reads = views.reads(event_id);
    let seen = reads.done.load(Ordering::Acquire);
    let _turn = reads.turn.lock().await;
    if reads.done.load(Ordering::Acquire) != seen
        && let Some(region) = views.search(event_id, best)
        && !region.0.is_empty()
    {
        return Ok(Some((region, false)));
    }
    let Some(snapshot) = read_snapshot(redis, expirations, event_id).await? else {
        return Ok(None);
    };
    let region = views.read(event_id, best, &snapshot);
    reads.done.fetch_add(1, Ordering::Release);
    Ok(Some((region, true)))
}

/// The board of `event_id` as it stands; `None` while its sold seats are unknown.
async fn read_snapshot(
    redis: &RedisStore,
    expirations: &broadcast::Sender<ExpiredHold>,
    event_id: &EventId,
) -> Result<Option<Snapshot>, KvError> {
    let keys = event_keys(event_id).to_vec();
    let args = script_args(redis, event_id);
    let (state, held, sold): (Vec<String>, Vec<String>, Vec<String>) =
        run_script(redis, expirations, &SNAPSHOT, event_id, keys, args).await?;
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

/// The fixed arguments of every script for `event_id`.
fn script_args(redis: &RedisStore, event_id: &str) -> Vec<String> {
    vec![
        redis.key(CHANNEL),
        event_id.to_string(),
        BOARD_KEY_TTL.as_millis().to_string(),
        first_version().to_string(),
    ]
}

/// Runs `script`, announces what it swept, and answers the rest of its reply.
async fn run_script<T: ::redis::FromRedisValue>(
    redis: &RedisStore,
    expirations: &broadcast::Sender<ExpiredHold>,
    script: &Script,
    event_id: &EventId,
    keys: Vec<String>,
    args: Vec<String>,
) -> Result<T, KvError> {
    let (swept, rest): (Vec<String>, ::redis::Value) = redis.eval(script, &keys, &args).await?;
    for hold in expired_holds(event_id, &swept) {
        let _ = expirations.send(hold);
    }
    ::redis::from_redis_value(rest).map_err(|e| KvError::Backend(e.to_string()))
}

/// Appends `value`'s low 24 bits to `packed` as four characters, six bits each from `'0'`
/// (all printable ASCII), most significant first: how [`BEST`] receives a seat's rank and
/// flags (it reads them with `string.byte`, cheaper than one number argument a seat).
fn pack_seat(value: u64, packed: &mut String) {
    for shift in [18, 12, 6, 0] {
        let digit = u8::try_from((value >> shift) & 63).unwrap_or(0);
        packed.push(char::from(b'0' + digit));
    }
}

/// What a take script's refusal `code` means (the codes of [`TAKE`] and [`BEST`]).
fn refusal(code: Option<&str>) -> Result<Taken, KvError> {
    match code {
        Some("full") => Ok(Taken::TooManyHolds),
        Some("sold-unknown") => Ok(Taken::SoldUnknown),
        Some("layout-locked") => Ok(Taken::LayoutLocked),
        Some("stale-layout") => Ok(Taken::StaleLayout),
        other => Err(KvError::Backend(format!(
            "unexpected take answer {other:?}"
        ))),
    }
}

/// The hold a take script's `held` answer names by the `slot, expiry, version` after it.
fn held(fields: &[String]) -> Result<Taken, KvError> {
    Ok(Taken::Held {
        slot: number(fields.first())?,
        expires_at_ms: number(fields.get(1))?,
        version: number(fields.get(2))?,
    })
}

fn number<T: std::str::FromStr>(text: Option<&String>) -> Result<T, KvError> {
    text.and_then(|t| t.parse().ok())
        .ok_or_else(|| KvError::Backend(format!("unexpected script answer {text:?}")))
}

#[async_trait]
impl SeatBoard for RedisBoard {
    async fn take(&self, request: &TakeRequest) -> Result<Taken, KvError> {
        let (mut keys, mut args) = self.take_call(request);
        keys.extend(
            request
                .seat_ids
                .iter()
                .map(|s| seat_key(&request.event_id, s)),
        );
        args.extend(request.seat_ids.iter().map(SeatId::to_string));
        let answer: Vec<String> = self.run(&TAKE, &request.event_id, keys, args).await?;
        match answer.first().map(String::as_str) {
            Some("held") => held(&answer[1..]),
            Some("conflict") => Ok(Taken::Conflicts(
                answer[1..]
                    .iter()
                    .cloned()
                    .map(SeatId::from_stored)
                    .collect(),
            )),
            other => refusal(other),
        }
    }

    /// Searches the few blocks a recent view of the board says hold the best placements, in
    /// one script that checks every seat of them as it stands and takes the best run there
    /// (the whole venue would not fit in one script's keys); when other buyers emptied that
    /// region first, reads the board and searches again. Nothing fits only when the board as
    /// read has no room; a split (when allowed) is taken as named seats. Buyers arriving
    /// together are first taken together from the view (see [`batch`]); a buyer the batch
    /// could not serve searches alone.
    async fn take_best(&self, request: &TakeRequest, best: &BestTake) -> Result<Granted, KvError> {
        if let Some(granted) = self.batches.take(request, best).await {
            return Ok(granted);
        }
        let refused = Granted::refused;
        let mut read = false;
        for _ in 0..BEST_ATTEMPTS {
            let Some(((region, view_version), was_read)) =
                self.region(&request.event_id, best, read).await?
            else {
                return Ok(refused(Taken::SoldUnknown));
            };
            if region.is_empty() {
                // Nothing fits in a view that may lag: unless it is at the board's version
                // (one cheap read), read the board before saying so.
                if !was_read && self.version(&request.event_id).await? != view_version {
                    read = true;
                    continue;
                }
                if !best.request.allow_split {
                    return Ok(refused(Taken::NoFit));
                }
                return self.take_split(request, best).await;
            }
            let (keys, args) = self.best_call(request, best, &region, view_version);
            let answer: Vec<String> = self.run(&BEST, &request.event_id, keys, args).await?;
            match answer.first().map(String::as_str) {
                Some("held") => {
                    let taken = held(&answer[1..])?;
                    let seat_ids: Vec<SeatId> = answer[5..]
                        .iter()
                        .cloned()
                        .map(SeatId::from_stored)
                        .collect();
                    let current = answer.get(4).is_some_and(|c| c == "1");
                    if let Taken::Held { version, .. } = taken {
                        self.views
                            .granted(&request.event_id, best, &seat_ids, current, version);
                    }
                    return Ok(Granted {
                        taken,
                        seat_ids,
                        split: false,
                    });
                }
                // Others took the region first. If their changes have reached the view since,
                // search it again; else read the board.
                Some("none") => {
                    read = self.views.version(&request.event_id) <= Some(view_version);
                }
                other => return refusal(other).map(refused),
            }
        }
        // Every search lost its region to other buyers: the seats are going fast.
        Ok(refused(Taken::Conflicts(Vec::new())))
    }

    async fn change(
        &self,
        hold: &HoldKeys,
        add: &[SeatId],
        remove: &[SeatId],
    ) -> Result<Changed, KvError> {
        let mut keys = Self::hold_keys(hold);
        keys.extend(
            add.iter()
                .chain(remove)
                .map(|s| seat_key(&hold.event_id, s)),
        );
        let mut args = self.hold_args(
            hold,
            &[hold.seat_ids.len().to_string(), add.len().to_string()],
        );
        args.extend(add.iter().chain(remove).map(SeatId::to_string));
        let answer: Vec<String> = self.run(&CHANGE, &hold.event_id, keys, args).await?;
        match answer.first().map(String::as_str) {
            Some("changed") => Ok(Changed::Done {
                version: number(answer.get(1))?,
            }),
            Some("conflict") => Ok(Changed::Conflicts(
                answer[1..]
                    .iter()
                    .cloned()
                    .map(SeatId::from_stored)
                    .collect(),
            )),
            Some("gone") => Ok(Changed::Gone),
            other => Err(KvError::Backend(format!(
                "unexpected change answer {other:?}"
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
        read_snapshot(&self.redis, &self.expirations, event_id).await
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

impl RedisBoard {
    /// The best seats split across blocks, from the board as just read, taken as named seats
    /// (all or none; a conflict means another buyer was faster).
    async fn take_split(&self, request: &TakeRequest, best: &BestTake) -> Result<Granted, KvError> {
        let grant = self.views.split(&request.event_id, best);
        let Some(grant) = grant else {
            return Ok(Granted::refused(Taken::NoFit));
        };
        let seat_ids: Vec<SeatId> = grant
            .seats
            .iter()
            .map(|&i| SeatId::named(&best.plan.venue.seats[i].id))
            .collect();
        let named = TakeRequest {
            seat_ids: seat_ids.clone(),
            ..request.clone()
        };
        let taken = self.take(&named).await?;
        self.views.distrust(&request.event_id);
        Ok(Granted::of(taken, seat_ids, grant.split))
    }
}

// A seat's packed rank and flags must fit the four characters `pack_seat` writes.
const _: () = assert!(ROW_RANK_SHIFT + 2 <= 24);

#[cfg(test)]
mod pack_tests {
    use super::pack_seat;

    #[test]
    fn packed_seats_are_four_printable_characters_each_most_significant_first() {
        let mut packed = String::new();
        pack_seat((1 << 24) - 1, &mut packed);
        pack_seat(0, &mut packed);
        pack_seat(5 * 4 + 3, &mut packed);
        assert_eq!(packed, "oooo0000000G");
        let decoded = |chunk: &[u8]| {
            chunk
                .iter()
                .fold(0u64, |value, c| value * 64 + u64::from(c - b'0'))
        };
        let values: Vec<u64> = packed.as_bytes().chunks(4).map(decoded).collect();
        assert_eq!(values, [(1 << 24) - 1, 0, 23]);
    }
}
