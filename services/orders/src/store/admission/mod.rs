//! Where each event's admission queue lives: its settings and pace, the line of buyers, and the
//! admissions given. One shared order for every replica (Redis), or in process.
//!
//! The line's order: people who join before the queue opens are placed in a uniformly random
//! order — each gets a secret random draw when joining (from the operating system's generator,
//! never shown, kept when they join again), and at the opening places are revealed in the
//! order of the draws, so arriving at 09:59:59.9 is no better than at 09:00; people who join
//! after the opening are placed behind all of them, first come first served. A place is a
//! count of the people ahead, read in bounded work whatever the length of the line.
//!
//! Admission is computed from place and time (see [`crate::domain::admission`]): the first
//! `admitted_by(now)` places are in, on every replica alike. A buyer whose place is in is
//! given one admission, recorded with its expiry the first time it is asked for: asking again,
//! on any replica, answers the same admission, and once it expired it stays expired (joining
//! again keeps the place and does not renew it). An admitted buyer keeps their place, so
//! the people behind do not move up when someone is let in; leaving before admission gives the
//! place up, and the people behind move up.

use async_trait::async_trait;
use holdfast_common::kv::KvError;

use crate::domain::admission::{Pace, QueueSettings};
use crate::domain::ids::EventId;

mod memory;
mod redis;
#[cfg(test)]
mod tests;

pub use self::memory::MemoryAdmission;
pub use self::redis::RedisAdmission;

/// The outcome of [`AdmissionQueue::configure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Configured {
    Done,
    /// The queue is open: only its rate can change now.
    AlreadyOpen,
}

/// The outcome of [`AdmissionQueue::join`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// In line; `new` unless they were already.
    InLine {
        new: bool,
    },
    /// The queue does not take people before it opens.
    NotOpenYet,
    NoQueue,
}

/// Where a buyer stands, as of `now_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Their place (1 is the first), once places are drawn; `None` before the opening, or
    /// when they are not in line.
    pub place: Option<u64>,
    pub in_line: bool,
    /// How many places are in.
    pub admitted_by: u64,
    /// How many people are in line (admitted ones included).
    pub length: u64,
    pub pace: Pace,
    pub settings: QueueSettings,
    /// The expiry of their admission, if they were given one.
    pub admission_expires_at_ms: Option<i64>,
    pub now_ms: i64,
}

/// An event's queue as a whole, as of `now_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub settings: QueueSettings,
    pub pace: Pace,
    /// How many places are in.
    pub admitted_by: u64,
    /// How many people are in line (admitted ones included).
    pub length: u64,
    /// How many admissions were given.
    pub admissions: u64,
    /// How many of them have not expired, when counted (it reads every admission).
    pub shopping: Option<u64>,
    pub now_ms: i64,
}

/// The outcome of [`AdmissionQueue::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Admitted until then (the same admission every time it is asked for).
    Admitted {
        expires_at_ms: i64,
    },
    /// Their admission ran out; it is not renewed.
    Expired {
        expired_at_ms: i64,
    },
    /// Not in yet (`place` is `None` before the opening).
    Waiting {
        place: Option<u64>,
        admitted_by: u64,
    },
    NotInLine,
    NoQueue,
}

/// Every event's admission queue.
#[async_trait]
pub trait AdmissionQueue: Send + Sync {
    /// Turns the event's queue on with `settings`, or changes them before it opens.
    async fn configure(
        &self,
        event_id: &EventId,
        settings: &QueueSettings,
    ) -> Result<Configured, KvError>;

    /// Turns the event's queue off: its line and admissions are forgotten.
    async fn remove(&self, event_id: &EventId) -> Result<(), KvError>;

    /// The event's queue settings and current pace, if it has a queue.
    async fn settings(&self, event_id: &EventId) -> Result<Option<(QueueSettings, Pace)>, KvError>;

    /// The event's queue as a whole; `count_shopping` also counts the admissions that have not
    /// expired (for the organizer's sales view: in process that reads every admission). `None`
    /// without a queue.
    async fn overview(
        &self,
        event_id: &EventId,
        count_shopping: bool,
    ) -> Result<Option<Overview>, KvError>;

    /// Puts `user_id` in line (joining again keeps the place). `draw` is their secret random
    /// draw, used only when they join before the opening; below 2^52.
    async fn join(&self, event_id: &EventId, user_id: &str, draw: u64) -> Result<Joined, KvError>;

    /// Takes `user_id` out of the line unless they were admitted; whether they were in it.
    async fn leave(&self, event_id: &EventId, user_id: &str) -> Result<bool, KvError>;

    /// Where `user_id` stands; `None` without a queue.
    async fn standing(
        &self,
        event_id: &EventId,
        user_id: &str,
    ) -> Result<Option<Standing>, KvError>;

    /// Gives `user_id` their admission if their place is in (once: see the module's comment).
    async fn admit(&self, event_id: &EventId, user_id: &str) -> Result<Admit, KvError>;

    /// Admits `rate_per_minute` from now on (0 pauses), everyone in staying in; a rate above 0
    /// also becomes the settings' rate (what resuming after a pause goes back to). The new
    /// pace, `None` without a queue.
    async fn change_rate(
        &self,
        event_id: &EventId,
        rate_per_minute: u32,
    ) -> Result<Option<Pace>, KvError>;
}

/// The queue of every event: on Redis when the service has one (shared by every replica), else
/// in process.
pub fn queue(infra: &holdfast_common::infra::Infra) -> std::sync::Arc<dyn AdmissionQueue> {
    match &infra.redis {
        Some(redis) => std::sync::Arc::new(RedisAdmission::new(redis.clone())),
        None => std::sync::Arc::new(MemoryAdmission::new()),
    }
}

/// Draws below this are early joiners'; late joiners are placed at this plus their number.
pub const LATE: u64 = 1 << 52;

/// A secret random draw for an early joiner, below [`LATE`], from the operating system's
/// generator (an error when it has none to give).
pub fn random_draw() -> Result<u64, getrandom::Error> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes) >> 12)
}
