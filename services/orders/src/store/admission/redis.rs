//! The admission queue on Redis: one Lua script per operation over the event's keys (one hash
//! tag, so one Redis Cluster slot), timed by Redis's clock so that every replica reads the
//! same time. The line is a sorted set (early joiners by their draw, late ones at
//! [`LATE`](super::LATE) plus their number), so a place is a `ZRANK`.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::Script;
use async_trait::async_trait;
use holdfast_common::kv::{KvError, RedisStore};

use super::{AdmissionQueue, Admit, Configured, Joined, LATE, Overview, Standing};
use crate::domain::admission::{Pace, QueueSettings};
use crate::domain::ids::EventId;

/// How long a queue's keys outlive their last change.
const KEY_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Every script starts with these. KEYS[1] settings hash, KEYS[2] line, KEYS[3] number of the
/// last late joiner, KEYS[4] admissions (a sorted set of users scored by their expiry, so the
/// unexpired ones are counted in bounded work); ARGV[1] key lifetime (ms).
const LIBRARY: &str = r"
local LATE = 4503599627370496
local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keep()
    for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
end
-- The settings and pace, or nil without a queue.
local function queue()
    local q = redis.call('HMGET', KEYS[1], 'opens_at', 'rate', 'window', 'early',
        'base', 'base_at', 'pace_rate', 'proof')
    if not q[1] then return nil end
    return {opens_at = tonumber(q[1]), rate = tonumber(q[2]), window = tonumber(q[3]),
        early = q[4], base = tonumber(q[5]), base_at = tonumber(q[6]),
        pace_rate = tonumber(q[7]), proof = tonumber(q[8] or '0'), stored = q}
end
local function admitted_by(q, now)
    local elapsed = math.max(0, now - q.base_at)
    return q.base + math.floor(elapsed * q.pace_rate / 60000)
end
local function fmt(n) return string.format('%.0f', n) end
-- The fields every answer about a queue carries: the stored ones as they are, then the time
-- and how many are in. Numbers computed here are answered as numbers (integer replies, all
-- below 2^53): formatting them as text was most of a place read's work.
local function described(q, now)
    local s = q.stored
    return {s[1], s[2], s[3], s[4], s[5], s[6], s[7], now, admitted_by(q, now), s[8] or '0'}
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{LIBRARY}\n{body}"))
}

/// ARGV[2] opens at, ARGV[3] rate, ARGV[4] window (ms), ARGV[5] early joining (`1`/`0`),
/// ARGV[6] proof bits.
static CONFIGURE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local q = queue()
        if q and now_ms() >= q.opens_at then return 'open' end
        redis.call('HSET', KEYS[1], 'opens_at', ARGV[2], 'rate', ARGV[3], 'window', ARGV[4],
            'early', ARGV[5], 'base', '0', 'base_at', ARGV[2], 'pace_rate', ARGV[3],
            'proof', ARGV[6])
        keep()
        return 'done'
        ",
    )
});

/// Forgets the queue.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        for i = 1, #KEYS do redis.call('DEL', KEYS[i]) end
        return 0
        ",
    )
});

/// Answers the queue's description, or nothing without one.
static SETTINGS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local q = queue()
        if not q then return {} end
        return described(q, now_ms())
        ",
    )
});

/// ARGV[2] `1` to count the admissions not expired. Answers the description, then length,
/// admissions, shopping (or empty), or nothing without a queue.
static OVERVIEW: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local q = queue()
        if not q then return {} end
        local now = now_ms()
        local answer = described(q, now)
        answer[#answer + 1] = redis.call('ZCARD', KEYS[2])
        answer[#answer + 1] = redis.call('ZCARD', KEYS[4])
        local shopping = ''
        if ARGV[2] == '1' then
            shopping = redis.call('ZCOUNT', KEYS[4], '(' .. fmt(now), '+inf')
        end
        answer[#answer + 1] = shopping
        return answer
        ",
    )
});

/// ARGV[2] user, ARGV[3] their draw.
static JOIN: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local q = queue()
        if not q then return 'no-queue' end
        if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 'again' end
        local score
        if now_ms() < q.opens_at then
            if q.early ~= '1' then return 'not-open' end
            score = ARGV[3]
        else
            score = fmt(LATE + redis.call('INCR', KEYS[3]))
        end
        redis.call('ZADD', KEYS[2], score, ARGV[2])
        keep()
        return 'joined'
        ",
    )
});

/// ARGV[2] user. Leaves unless admitted.
static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        if redis.call('ZSCORE', KEYS[4], ARGV[2]) then return 0 end
        return redis.call('ZREM', KEYS[2], ARGV[2])
        ",
    )
});

/// ARGV[2] user. Answers the description, then in line (`1`/`0`), place (empty before the
/// opening or out of line), length, admission expiry (or empty).
static STANDING: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local q = queue()
        if not q then return {} end
        local now = now_ms()
        local answer = described(q, now)
        local rank = redis.call('ZRANK', KEYS[2], ARGV[2])
        local placed = rank and now >= q.opens_at
        answer[#answer + 1] = rank and '1' or '0'
        answer[#answer + 1] = placed and rank + 1 or ''
        answer[#answer + 1] = redis.call('ZCARD', KEYS[2])
        -- Only a place that is in can have been admitted (places in never go out).
        local admission = ''
        if placed and rank + 1 <= admitted_by(q, now) then
            admission = redis.call('ZSCORE', KEYS[4], ARGV[2]) or ''
        end
        answer[#answer + 1] = admission
        return answer
        ",
    )
});

/// ARGV[2] user. Answers {'admitted', expiry}, {'expired', expiry}, {'waiting', place or
/// empty, admitted by}, {'not-in-line'} or {'no-queue'}.
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local q = queue()
        if not q then return {'no-queue'} end
        local now = now_ms()
        local given = redis.call('ZSCORE', KEYS[4], ARGV[2])
        if given then
            return {tonumber(given) > now and 'admitted' or 'expired', given}
        end
        local rank = redis.call('ZRANK', KEYS[2], ARGV[2])
        if not rank then return {'not-in-line'} end
        local admitted = admitted_by(q, now)
        if now < q.opens_at then return {'waiting', '', admitted} end
        if rank + 1 > admitted then return {'waiting', rank + 1, admitted} end
        local expiry = fmt(now + q.window)
        redis.call('ZADD', KEYS[4], expiry, ARGV[2])
        keep()
        return {'admitted', expiry}
        ",
    )
});

/// ARGV[2] the new rate (0 pauses). Answers the description after, or nothing without a queue.
static CHANGE_RATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local q = queue()
        if not q then return {} end
        local at = math.max(now_ms(), q.base_at)
        redis.call('HSET', KEYS[1], 'base', fmt(admitted_by(q, at)), 'base_at', fmt(at),
            'pace_rate', ARGV[2])
        if tonumber(ARGV[2]) > 0 then redis.call('HSET', KEYS[1], 'rate', ARGV[2]) end
        keep()
        return described(queue(), now_ms())
        ",
    )
});

/// The Redis adapter of [`AdmissionQueue`].
pub struct RedisAdmission {
    redis: RedisStore,
}

impl RedisAdmission {
    pub fn new(redis: RedisStore) -> Self {
        Self { redis }
    }

    async fn run<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        event_id: &EventId,
        args: &[String],
    ) -> Result<T, KvError> {
        let keys = ["settings", "line", "late", "admitted"]
            .map(|part| format!("admission:{{{event_id}}}:{part}"));
        let mut all = vec![KEY_TTL.as_millis().to_string()];
        all.extend_from_slice(args);
        self.redis.eval(script, &keys, &all).await
    }
}

/// A number of a script's answer.
fn number<T: std::str::FromStr>(text: Option<&String>) -> Result<T, KvError> {
    text.and_then(|t| t.parse().ok())
        .ok_or_else(|| KvError::Backend(format!("unexpected admission answer {text:?}")))
}

/// The settings, pace, time and admitted count of a described answer (its first ten items).
fn described(answer: &[String]) -> Result<(QueueSettings, Pace, i64, u64), KvError> {
    let settings = QueueSettings {
        opens_at_ms: number(answer.first())?,
        rate_per_minute: number(answer.get(1))?,
        window: Duration::from_millis(number(answer.get(2))?),
        early_joining: answer.get(3).is_some_and(|early| early == "1"),
        proof_bits: number(answer.get(9))?,
    };
    let pace = Pace {
        base_admitted: number(answer.get(4))?,
        base_at_ms: number(answer.get(5))?,
        rate_per_minute: number(answer.get(6))?,
    };
    Ok((
        settings,
        pace,
        number(answer.get(7))?,
        number(answer.get(8))?,
    ))
}

/// The number in `text`, or `None` when it is empty.
fn optional<T: std::str::FromStr>(text: Option<&String>) -> Result<Option<T>, KvError> {
    match text {
        Some(t) if t.is_empty() => Ok(None),
        other => number(other).map(Some),
    }
}

#[async_trait]
impl AdmissionQueue for RedisAdmission {
    async fn configure(
        &self,
        event_id: &EventId,
        settings: &QueueSettings,
    ) -> Result<Configured, KvError> {
        let args = [
            settings.opens_at_ms.to_string(),
            settings.rate_per_minute.to_string(),
            settings.window.as_millis().to_string(),
            if settings.early_joining { "1" } else { "0" }.to_string(),
            settings.proof_bits.to_string(),
        ];
        let answer: String = self.run(&CONFIGURE, event_id, &args).await?;
        Ok(match answer.as_str() {
            "open" => Configured::AlreadyOpen,
            _ => Configured::Done,
        })
    }

    async fn remove(&self, event_id: &EventId) -> Result<(), KvError> {
        self.run::<i64>(&REMOVE, event_id, &[]).await.map(|_| ())
    }

    async fn settings(&self, event_id: &EventId) -> Result<Option<(QueueSettings, Pace)>, KvError> {
        let answer: Vec<String> = self.run(&SETTINGS, event_id, &[]).await?;
        if answer.is_empty() {
            return Ok(None);
        }
        let (settings, pace, _, _) = described(&answer)?;
        Ok(Some((settings, pace)))
    }

    async fn overview(
        &self,
        event_id: &EventId,
        count_shopping: bool,
    ) -> Result<Option<Overview>, KvError> {
        let flag = if count_shopping { "1" } else { "0" };
        let answer: Vec<String> = self.run(&OVERVIEW, event_id, &[flag.to_string()]).await?;
        if answer.is_empty() {
            return Ok(None);
        }
        let (settings, pace, now_ms, admitted_by) = described(&answer)?;
        Ok(Some(Overview {
            length: number(answer.get(10))?,
            admissions: number(answer.get(11))?,
            shopping: optional(answer.get(12))?,
            settings,
            pace,
            admitted_by,
            now_ms,
        }))
    }

    async fn join(&self, event_id: &EventId, user_id: &str, draw: u64) -> Result<Joined, KvError> {
        let args = [user_id.to_string(), (draw % LATE).to_string()];
        let answer: String = self.run(&JOIN, event_id, &args).await?;
        Ok(match answer.as_str() {
            "joined" => Joined::InLine { new: true },
            "again" => Joined::InLine { new: false },
            "not-open" => Joined::NotOpenYet,
            _ => Joined::NoQueue,
        })
    }

    async fn leave(&self, event_id: &EventId, user_id: &str) -> Result<bool, KvError> {
        let left: i64 = self.run(&LEAVE, event_id, &[user_id.to_string()]).await?;
        Ok(left == 1)
    }

    async fn standing(
        &self,
        event_id: &EventId,
        user_id: &str,
    ) -> Result<Option<Standing>, KvError> {
        let answer: Vec<String> = self
            .run(&STANDING, event_id, &[user_id.to_string()])
            .await?;
        if answer.is_empty() {
            return Ok(None);
        }
        let (settings, pace, now_ms, admitted_by) = described(&answer)?;
        Ok(Some(Standing {
            in_line: answer.get(10).is_some_and(|in_line| in_line == "1"),
            place: optional(answer.get(11))?,
            length: number(answer.get(12))?,
            admission_expires_at_ms: optional(answer.get(13))?,
            admitted_by,
            pace,
            settings,
            now_ms,
        }))
    }

    async fn admit(&self, event_id: &EventId, user_id: &str) -> Result<Admit, KvError> {
        let answer: Vec<String> = self.run(&ADMIT, event_id, &[user_id.to_string()]).await?;
        Ok(match answer.first().map(String::as_str) {
            Some("admitted") => Admit::Admitted {
                expires_at_ms: number(answer.get(1))?,
            },
            Some("expired") => Admit::Expired {
                expired_at_ms: number(answer.get(1))?,
            },
            Some("waiting") => Admit::Waiting {
                place: optional(answer.get(1))?,
                admitted_by: number(answer.get(2))?,
            },
            Some("not-in-line") => Admit::NotInLine,
            _ => Admit::NoQueue,
        })
    }

    async fn change_rate(
        &self,
        event_id: &EventId,
        rate_per_minute: u32,
    ) -> Result<Option<Pace>, KvError> {
        let args = [rate_per_minute.to_string()];
        let answer: Vec<String> = self.run(&CHANGE_RATE, event_id, &args).await?;
        if answer.is_empty() {
            return Ok(None);
        }
        Ok(Some(described(&answer)?.1))
    }
}
