//! The Redis seat board: each operation is one Lua script over the event's keys (one hash tag),
//! and every change is published on the channel `seats:changes` in the same script, so every
//! orders replica listening there sees every change, in version order.
//!
//! Every script returns the index entries it swept as expired first, so the process that ran
//! it announces those holds — each exactly once, whichever replica swept them.

use std::sync::{Arc, LazyLock};
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
use crate::store::SoldSeats;

/// Where the scripts publish changes (under the store's key prefix).
const CHANNEL: &str = "seats:changes";

/// Fields of the sales hash that are not seats start with this (seat ids never do): `~known`
/// marks the hash complete (the order store's sold seats were loaded into it),
/// `~unsold:<seatId>|<orderId>` a sale that was cancelled.
const NOT_A_SEAT: char = '~';

/// Helpers every script starts with. The caller passes, after its own arguments' fixed part:
/// ARGV[1] channel, ARGV[2] event id, ARGV[3] key lifetime (ms), ARGV[4] first version; and the
/// event's keys as KEYS[1] held index, KEYS[2] sales hash, KEYS[3] version, KEYS[4] layout
/// version, KEYS[5] layout lock. A hold's own keys follow from KEYS[6].
const LIBRARY: &str = r"
local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function current_version()
    local v = redis.call('GET', KEYS[3])
    if not v then
        redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[3])
        return ARGV[4]
    end
    return v
end
local function layout_version()
    redis.call('SET', KEYS[4], '0', 'NX', 'PX', ARGV[3])
    redis.call('PEXPIRE', KEYS[4], ARGV[3])
    return redis.call('GET', KEYS[4])
end
local function bump(changes)
    current_version()
    local v = redis.call('INCR', KEYS[3])
    redis.call('PEXPIRE', KEYS[3], ARGV[3])
    redis.call('PUBLISH', ARGV[1],
        cjson.encode({eventId = ARGV[2], version = v, changes = changes}))
    return string.format('%d', v)
end
-- The sales hash's mark that `order`'s sale of `seat` was cancelled: a sale with it is never
-- (re)recorded, whoever read it before the cancellation.
local function unsold(seat, order)
    return '~unsold:' .. seat .. '|' .. order
end
-- A hold's entry in the held index, for one of its seats (hold ARGV[5], user ARGV[6]).
local function held_entry(seat)
    return seat .. '|' .. ARGV[5] .. '|' .. ARGV[6]
end
-- Whether the hold's slot and seat keys (KEYS[6..]) all still carry it.
local function hold_intact()
    for i = 6, #KEYS do
        if redis.call('GET', KEYS[i]) ~= ARGV[5] then return false end
    end
    return true
end
-- Makes the hold (seat ids from ARGV[first_seat]) last `ttl` ms from `now`, its keys and its
-- entries in the held index alike; answers the new expiry.
local function extend_hold(now, ttl, first_seat)
    local until_ms = now + ttl
    for i = 6, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
    for i = 7, #KEYS do
        redis.call('ZADD', KEYS[1], 'XX', until_ms, held_entry(ARGV[first_seat + i - 7]))
    end
    return string.format('%d', until_ms)
end
local function sweep(now)
    local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
    if #gone > 0 then
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local changes = {}
        for i, entry in ipairs(gone) do
            changes[i] = {string.match(entry, '^[^|]*'), 'available'}
        end
        bump(changes)
    end
    return gone
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{LIBRARY}\n{body}"))
}

/// KEYS[6..6+cap) slot keys, then seat keys. ARGV[5] hold id, ARGV[6] user id, ARGV[7] TTL
/// (ms), ARGV[8] cap, ARGV[9] layout version, then the seat ids.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local now = now_ms()
        local gone = sweep(now)
        if redis.call('HEXISTS', KEYS[2], '~known') == 0 then
            return {gone, {'sold-unknown'}}
        end
        if redis.call('EXISTS', KEYS[5]) == 1 then return {gone, {'layout-locked'}} end
        if layout_version() ~= ARGV[9] then return {gone, {'stale-layout'}} end
        local cap = tonumber(ARGV[8])
        local first_seat = 6 + cap
        local conflicts = {}
        for i = first_seat, #KEYS do
            local seat = ARGV[10 + i - first_seat]
            if redis.call('HEXISTS', KEYS[2], seat) == 1 or redis.call('EXISTS', KEYS[i]) == 1 then
                conflicts[#conflicts + 1] = seat
            end
        end
        if #conflicts > 0 then
            table.insert(conflicts, 1, 'conflict')
            return {gone, conflicts}
        end
        local slot = -1
        for s = 0, cap - 1 do
            if redis.call('EXISTS', KEYS[6 + s]) == 0 then slot = s break end
        end
        if slot < 0 then return {gone, {'full'}} end
        local ttl = tonumber(ARGV[7])
        local until_ms = now + ttl
        redis.call('SET', KEYS[6 + slot], ARGV[5], 'PX', ttl)
        local changes = {}
        for i = first_seat, #KEYS do
            local seat = ARGV[10 + i - first_seat]
            redis.call('SET', KEYS[i], ARGV[5], 'PX', ttl)
            redis.call('ZADD', KEYS[1], until_ms, held_entry(seat))
            changes[#changes + 1] = {seat, 'held'}
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        local v = bump(changes)
        return {gone, {'held', tostring(slot), string.format('%d', until_ms), v}}
        ",
    )
});

/// KEYS[6] slot key, then seat keys. ARGV[5] hold id, ARGV[6] user id, ARGV[7] TTL (ms), then
/// the seat ids. Extends only when the slot and every seat still carry the hold.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local now = now_ms()
        local gone = sweep(now)
        if not hold_intact() then return {gone, {}} end
        return {gone, {extend_hold(now, tonumber(ARGV[7]), 8)}}
        ",
    )
});

/// KEYS[6] slot key, then seat keys. ARGV[5] hold id, ARGV[6] user id, ARGV[7] claim (ms),
/// ARGV[8] layout version, then the seat ids. Like EXTEND, but only while the layout version
/// is unchanged, and never shortening the hold.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local now = now_ms()
        local gone = sweep(now)
        if not hold_intact() then return {gone, {'gone'}} end
        if layout_version() ~= ARGV[8] then return {gone, {'stale-layout'}} end
        local ttl = tonumber(ARGV[7])
        local left = redis.call('PTTL', KEYS[6])
        if left >= ttl then
            -- The stored expiry, not now + PTTL, which can differ by a millisecond per call.
            local until_ms = redis.call('ZSCORE', KEYS[1], held_entry(ARGV[9]))
            return {gone, {'claimed', until_ms or string.format('%d', now + left)}}
        end
        return {gone, {'claimed', extend_hold(now, ttl, 9)}}
        ",
    )
});

/// KEYS[6] slot key, then seat keys. ARGV[5] hold id, ARGV[6] user id, ARGV[7] `release` or
/// `sell:<orderId>`, then the seat ids. Frees what still carries the hold; selling also records
/// every seat as sold to the order, unless that sale was cancelled already.
static FREE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        local selling = string.sub(ARGV[7], 1, 5) == 'sell:'
        local order = string.sub(ARGV[7], 6)
        local changes = {}
        for i = 7, #KEYS do
            local seat = ARGV[8 + i - 7]
            if redis.call('GET', KEYS[i]) == ARGV[5] then
                redis.call('DEL', KEYS[i])
                redis.call('ZREM', KEYS[1], held_entry(seat))
                if not selling then changes[#changes + 1] = {seat, 'available'} end
            end
            if selling and redis.call('HEXISTS', KEYS[2], unsold(seat, order)) == 0
                and redis.call('HSET', KEYS[2], seat, order) == 1 then
                changes[#changes + 1] = {seat, 'reserved'}
            end
        end
        if redis.call('GET', KEYS[6]) == ARGV[5] then redis.call('DEL', KEYS[6]) end
        if selling then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
        if #changes > 0 then bump(changes) end
        return {gone, {}}
        ",
    )
});

/// ARGV[5] lock token, ARGV[6] lock TTL (ms). Answers {swept, {'locked'}}, {swept, {'busy'}}
/// or {swept, {'held', count}}.
static LOCK_LAYOUT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        local held = redis.call('ZCARD', KEYS[1])
        if held > 0 then return {gone, {'held', tostring(held)}} end
        if not redis.call('SET', KEYS[5], ARGV[5], 'NX', 'PX', ARGV[6]) then
            return {gone, {'busy'}}
        end
        return {gone, {'locked'}}
        ",
    )
});

/// ARGV[5] lock token. Releases the lock if it is still this one; bumps the layout version.
static UNLOCK_LAYOUT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        if redis.call('GET', KEYS[5]) == ARGV[5] then redis.call('DEL', KEYS[5]) end
        layout_version()
        redis.call('INCR', KEYS[4])
        return {{}, {}}
        ",
    )
});

/// Answers {{}, {layout version}}.
static LAYOUT_VERSION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        return {{}, {layout_version()}}
        ",
    )
});

/// ARGV[5] the order whose sale was cancelled, ARGV[6..] its seat ids. Takes off each seat
/// still sold to that order (a seat sold again since stays sold) and marks the sale cancelled.
static UNSELL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        local order = ARGV[5]
        local changes = {}
        for i = 6, #ARGV do
            local seat = ARGV[i]
            redis.call('HSET', KEYS[2], unsold(seat, order), '1')
            if redis.call('HGET', KEYS[2], seat) == order then
                redis.call('HDEL', KEYS[2], seat)
                changes[#changes + 1] = {seat, 'available'}
            end
        end
        redis.call('PEXPIRE', KEYS[2], ARGV[3])
        if #changes > 0 then bump(changes) end
        return {gone, {}}
        ",
    )
});

/// ARGV[5] `known` (a whole load: the hash is complete after it) or `some`, ARGV[6..] pairs of
/// a seat id and the order that bought it, as the order store has them. A sale already
/// recorded, or marked cancelled, is left as it is: the store was read before.
static LOAD_SOLD: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local changes = {}
        for i = 6, #ARGV - 1, 2 do
            local seat, order = ARGV[i], ARGV[i + 1]
            if redis.call('HEXISTS', KEYS[2], unsold(seat, order)) == 0
                and redis.call('HSETNX', KEYS[2], seat, order) == 1 then
                changes[#changes + 1] = {seat, 'reserved'}
            end
        end
        if ARGV[5] == 'known' then
            redis.call('HSET', KEYS[2], '~known', '1')
        elseif #changes > 0 then
            bump(changes)
        end
        redis.call('PEXPIRE', KEYS[2], ARGV[3])
        return {{}, {}}
        ",
    )
});

/// Answers {swept, {{state, version}, held entries, sold seats}}.
static SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        local v = current_version()
        if redis.call('HEXISTS', KEYS[2], '~known') == 0 then
            return {gone, {{'sold-unknown', v}, {}, {}}}
        end
        return {gone, {{'ok', v}, redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('HKEYS', KEYS[2])}}
        ",
    )
});

/// Answers {swept, {version}}.
static VERSION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        return {gone, {current_version()}}
        ",
    )
});

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
        event_id: &str,
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
        args.push(hold.hold_id.clone());
        args.push(hold.user_id.clone());
        args.extend_from_slice(extra);
        args.extend(hold.seat_ids.iter().cloned());
        args
    }

    /// Runs a script on the event's own keys with `extra` arguments; answers its reply.
    async fn on_event<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        event_id: &str,
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
        event_id: &str,
        how: &str,
        sold: &SoldSeats,
    ) -> Result<(), KvError> {
        let mut args = vec![how.to_string()];
        for (seat, order) in sold {
            if !seat.starts_with(NOT_A_SEAT) {
                args.push(seat.clone());
                args.push(order.clone());
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
fn seats_only(seat_ids: &[String]) -> Vec<String> {
    seat_ids
        .iter()
        .filter(|s| !s.starts_with(NOT_A_SEAT))
        .cloned()
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
        args.push(request.hold_id.clone());
        args.push(request.user_id.clone());
        args.push(
            u64::try_from(request.ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1)
                .to_string(),
        );
        args.push(request.max_holds.to_string());
        args.push(request.layout_version.to_string());
        args.extend(request.seat_ids.iter().cloned());
        let answer: Vec<String> = self.run(&TAKE, &request.event_id, keys, args).await?;
        match answer.first().map(String::as_str) {
            Some("held") => Ok(Taken::Held {
                slot: number(answer.get(1))?,
                expires_at_ms: number(answer.get(2))?,
                version: number(answer.get(3))?,
            }),
            Some("conflict") => Ok(Taken::Conflicts(answer[1..].to_vec())),
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

    async fn layout_version(&self, event_id: &str) -> Result<u64, KvError> {
        let answer: Vec<String> = self.on_event(&LAYOUT_VERSION, event_id, &[]).await?;
        number(answer.first())
    }

    async fn lock_layout(
        &self,
        event_id: &str,
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

    async fn unlock_layout(&self, event_id: &str, token: &str) -> Result<(), KvError> {
        let _: Vec<String> = self
            .on_event(&UNLOCK_LAYOUT, event_id, &[token.to_string()])
            .await?;
        Ok(())
    }

    async fn release(&self, hold: &HoldKeys) -> Result<(), KvError> {
        self.free(hold, "release").await
    }

    async fn sell(&self, hold: &HoldKeys, order_id: &str) -> Result<(), KvError> {
        self.free(hold, &format!("sell:{order_id}")).await
    }

    async fn mark_sold(&self, event_id: &str, sold: &SoldSeats) -> Result<(), KvError> {
        self.record_sales(event_id, "some", sold).await
    }

    async fn unsell(
        &self,
        event_id: &str,
        order_id: &str,
        seat_ids: &[String],
    ) -> Result<(), KvError> {
        let mut args = vec![order_id.to_string()];
        args.extend(seats_only(seat_ids));
        let _: Vec<String> = self.on_event(&UNSELL, event_id, &args).await?;
        Ok(())
    }

    async fn load_sold(&self, event_id: &str, sold: &SoldSeats) -> Result<(), KvError> {
        self.record_sales(event_id, "known", sold).await
    }

    async fn snapshot(&self, event_id: &str) -> Result<Option<Snapshot>, KvError> {
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
                .filter_map(|entry| entry.split('|').next().map(str::to_string))
                .collect(),
            sold: sold
                .into_iter()
                .filter(|s| !s.starts_with(NOT_A_SEAT))
                .collect(),
        }))
    }

    async fn version(&self, event_id: &str) -> Result<u64, KvError> {
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

    async fn sweep(&self, event_id: &str) -> Result<(), KvError> {
        self.version(event_id).await.map(|_| ())
    }

    fn changes(&self) -> broadcast::Receiver<Arc<SeatNews>> {
        self.changes.subscribe()
    }

    fn expirations(&self) -> broadcast::Receiver<ExpiredHold> {
        self.expirations.subscribe()
    }
}
