//! The seat board: the live availability of each event's seats, in the TTL store.
//!
//! Per event (every key under the event's hash tag, so one Redis Cluster slot and one script):
//! - one key per held seat, `hold:{<eventId>}:<seatId>` = the hold id, expiring with the hold —
//!   what makes a hold exclusive;
//! - the holder's slot key, `holdslot:{<eventId>}:<userId>:<n>`, taken with the seats so a user
//!   never has more than `MAX_HOLDS_PER_USER_PER_EVENT` holds;
//! - `seats:{<eventId>}:held`, an index of the held seats with their expiry (a sorted set on
//!   Redis), so reading what is held is ONE command that returns only held seats;
//! - `seats:{<eventId>}:sales`, the sold seats, each with the order that bought it, added after
//!   each purchase commits and rebuilt from the order store when missing (a cold start, a
//!   flushed Redis) — holds never ask the order store in the steady state. A cancellation takes
//!   off only the seats still sold to the cancelled order and marks that order's sale of them
//!   cancelled, so neither a sale made again since nor a rebuild that read the store before the
//!   cancellation is undone or undoes it;
//! - `seats:{<eventId>}:version`, bumped by every change of a seat's state in the same atomic
//!   step as the change. It is the seat map's ETag.
//! - `seats:{<eventId>}:layout`, the layout version (0 until the first layout change), and
//!   `seats:{<eventId>}:layout-lock`, set while the events service writes a new layout. A lock
//!   is only granted while no seat is held, no hold is taken while it stands, and releasing it
//!   bumps the layout version. A hold is taken only against the layout version its caller
//!   checked the seats with, and a purchase claims its hold only if that version is still
//!   current, so no hold or sale ever straddles a layout change.
//!
//! Expired holds leave the index lazily: every operation on an event first sweeps the entries
//! whose time has passed (bumping the version and announcing them as available), so an expired
//! hold never shows as held. Each change is published as a [`SeatDelta`] — on Redis through
//! pub/sub, so every orders replica sees every change; in memory through a broadcast channel.

#[cfg(test)]
mod best_tests;
mod memory;
mod redis;
mod taken;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use holdfast_common::kv::KvError;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use holdfast_common::venue::BestRequest;

use crate::domain::ids::{EventId, HoldId, OrderId, SeatId};
use crate::domain::seat::VenuePlan;
use crate::store::SoldSeats;

pub use self::memory::MemoryBoard;
pub use self::redis::RedisBoard;

/// How many changes a slow listener may fall behind before it is told it lagged.
const CHANGE_BUFFER: usize = 16_384;

/// What a seat is, as seat maps and streams show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeatState {
    Available,
    Held,
    /// Sold; `reserved` on the wire, as existing clients expect.
    #[serde(rename = "reserved")]
    Sold,
}

impl SeatState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Held => "held",
            Self::Sold => "reserved",
        }
    }
}

/// One atomic change of an event's seats: the version it produced and the seats it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatDelta {
    pub event_id: EventId,
    pub version: u64,
    pub changes: Vec<(SeatId, SeatState)>,
}

/// What listeners of [`SeatBoard::changes`] receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatNews {
    Changed(SeatDelta),
    /// Changes may have been lost (a dropped subscription): listeners start again from a
    /// snapshot.
    MayHaveMissed,
}

/// A hold as the board knows it: enough to find, extend and free its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldKeys {
    pub hold_id: HoldId,
    pub user_id: String,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    /// Which of the holder's slots on this event the hold occupies.
    pub slot: usize,
}

/// A hold to take: every seat or none.
#[derive(Debug, Clone)]
pub struct TakeRequest {
    pub hold_id: HoldId,
    pub user_id: String,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub ttl: Duration,
    /// How many live holds the user may have on the event.
    pub max_holds: usize,
    /// The layout version the seats were checked against.
    pub layout_version: u64,
}

/// The outcome of [`SeatBoard::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Every seat is held, in `slot`, until `expires_at_ms`.
    Held {
        slot: usize,
        expires_at_ms: i64,
        version: u64,
    },
    /// Nothing was taken: these seats are held or sold.
    Conflicts(Vec<SeatId>),
    /// Nothing was taken: the user already has the most holds allowed.
    TooManyHolds,
    /// Nothing was taken: the event's sold seats are not on the board yet; load them
    /// ([`SeatBoard::load_sold`]) and try again.
    SoldUnknown,
    /// Nothing was taken: the event's layout is being changed.
    LayoutLocked,
    /// Nothing was taken: the layout changed since the caller read it; read it again.
    StaleLayout,
    /// Nothing was taken: no seats fit the best-available request.
    NoFit,
}

/// A best-available request: the venue, what the buyer asks for, and (for a board that
/// searches only part of the venue in its atomic step) a recent view of the taken seats.
#[derive(Debug, Clone)]
pub struct BestTake {
    pub plan: Arc<VenuePlan>,
    pub request: BestRequest,
}

/// The seats a best-available take gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub taken: Taken,
    /// The seats held (empty unless `taken` is [`Taken::Held`]).
    pub seat_ids: Vec<SeatId>,
    /// They are not side by side in one block (only when the request allows a split).
    pub split: bool,
}

impl Granted {
    /// Nothing was taken, for this reason.
    pub fn refused(taken: Taken) -> Self {
        Self {
            taken,
            seat_ids: Vec::new(),
            split: false,
        }
    }

    /// The outcome of taking `seat_ids` (split or not): the seats when they were taken.
    pub fn of(taken: Taken, seat_ids: Vec<SeatId>, split: bool) -> Self {
        let held = matches!(taken, Taken::Held { .. });
        Self {
            taken,
            seat_ids: if held { seat_ids } else { Vec::new() },
            split: held && split,
        }
    }
}

/// The outcome of [`SeatBoard::change`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// The hold has its new seats; the change made the event's version this.
    Done { version: u64 },
    /// Nothing changed: these seats to add are held or sold.
    Conflicts(Vec<SeatId>),
    /// Nothing changed: the hold is no longer intact (it expired or was released or sold).
    Gone,
}

/// The outcome of [`SeatBoard::lock_layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutLock {
    /// The lock is taken: no hold can be taken until it is released or runs out.
    Locked,
    /// Refused: this many seats are held.
    SeatsHeld(usize),
    /// Refused: another change holds the lock.
    Busy,
}

/// The outcome of [`SeatBoard::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The hold is intact and lasts at least until `expires_at_ms`.
    Claimed { expires_at_ms: i64 },
    /// A seat or the slot no longer carries the hold (it expired or was released).
    Gone,
    /// The event's layout changed since the hold was taken.
    StaleLayout,
}

/// What is not available on an event at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub version: u64,
    pub held: Vec<SeatId>,
    pub sold: Vec<SeatId>,
}

/// A hold that ran out, swept off the board by this process (each exactly once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredHold {
    pub hold_id: HoldId,
    pub user_id: String,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
}

#[async_trait]
pub trait SeatBoard: Send + Sync + 'static {
    /// Takes every seat of the request or none, atomically with the holder's slot.
    async fn take(&self, request: &TakeRequest) -> Result<Taken, KvError>;

    /// Takes the best available seats for `best` (see [`holdfast_common::venue::best`]) in
    /// one atomic step with the holder's slot, as [`SeatBoard::take`] takes named seats;
    /// `request.seat_ids` is ignored.
    async fn take_best(&self, request: &TakeRequest, best: &BestTake) -> Result<Granted, KvError>;

    /// Changes the seats of an intact hold in one step: holds `add` (every one free, else
    /// nothing changes) and frees `remove`, keeping its slot, its other seats and its expiry.
    async fn change(
        &self,
        hold: &HoldKeys,
        add: &[SeatId],
        remove: &[SeatId],
    ) -> Result<Changed, KvError>;

    /// Whether every seat and the slot of the hold still carry its id.
    async fn is_intact(&self, hold: &HoldKeys) -> Result<bool, KvError>;

    /// Makes the hold last `ttl` from now, if it is intact; answers whether it did and the new
    /// expiry.
    async fn extend(&self, hold: &HoldKeys, ttl: Duration) -> Result<Option<i64>, KvError>;

    /// Makes sure the intact hold lasts at least `at_least` from now (never shortening it),
    /// if the event's layout is still at `layout_version`: what a purchase does before it
    /// commits, so the hold cannot run out under it.
    async fn claim(
        &self,
        hold: &HoldKeys,
        layout_version: u64,
        at_least: Duration,
    ) -> Result<Claim, KvError>;

    /// The event's current layout version.
    async fn layout_version(&self, event_id: &EventId) -> Result<u64, KvError>;

    /// Locks the event's layout for `ttl` under `token`, if no seat is held and no other lock
    /// stands.
    async fn lock_layout(
        &self,
        event_id: &EventId,
        token: &str,
        ttl: Duration,
    ) -> Result<LayoutLock, KvError>;

    /// Releases the lock `token` (if it still stands) and bumps the layout version, so every
    /// layout read before it is stale.
    async fn unlock_layout(&self, event_id: &EventId, token: &str) -> Result<(), KvError>;

    /// Frees the seats and slot that still carry the hold's id.
    async fn release(&self, hold: &HoldKeys) -> Result<(), KvError>;

    /// Records the hold's seats as sold to `order_id` (the purchase has committed) and frees
    /// the hold, in one step, so no other hold can slip in between. A sale already cancelled
    /// (see [`SeatBoard::unsell`]) is not recorded.
    async fn sell(&self, hold: &HoldKeys, order_id: &OrderId) -> Result<(), KvError>;

    /// Adds seats found sold in the order store (by a purchase that did not go through this
    /// board) to the sold seats, without touching any hold; a seat recorded already, or whose
    /// sale to that order was cancelled, is left as it is.
    async fn mark_sold(&self, event_id: &EventId, sold: &SoldSeats) -> Result<(), KvError>;

    /// Takes the seats of `order_id` whose sale was cancelled (the order store has already
    /// released them) off the sold seats, so they are available again, in one step with marking
    /// that sale cancelled. A seat sold to another order since stays sold; a load of sold seats
    /// read before the cancellation cannot put the seat back. May be repeated.
    async fn unsell(
        &self,
        event_id: &EventId,
        order_id: &OrderId,
        seat_ids: &[SeatId],
    ) -> Result<(), KvError>;

    /// Puts the event's sold seats, as the order store has them, on the board (sales marked
    /// cancelled meanwhile excepted), and marks them complete.
    async fn load_sold(&self, event_id: &EventId, sold: &SoldSeats) -> Result<(), KvError>;

    /// The held and sold seats with their version; `None` while the sold seats are unknown.
    async fn snapshot(&self, event_id: &EventId) -> Result<Option<Snapshot>, KvError>;

    /// The event's current version (after sweeping what expired).
    async fn version(&self, event_id: &EventId) -> Result<u64, KvError>;

    /// Sweeps the event's expired holds off the board.
    async fn sweep(&self, event_id: &EventId) -> Result<(), KvError>;

    /// Every change of every event from now on (on Redis: made by any replica).
    fn changes(&self) -> broadcast::Receiver<Arc<SeatNews>>;

    /// Holds this process swept off the board because they ran out.
    fn expirations(&self) -> broadcast::Receiver<ExpiredHold>;
}

/// The board of the configured TTL store: Redis when it is there, else in process.
pub fn board(infra: &holdfast_common::infra::Infra) -> Arc<dyn SeatBoard> {
    match &infra.redis {
        Some(redis) => Arc::new(RedisBoard::new(redis.clone())),
        None => Arc::new(MemoryBoard::new()),
    }
}

/// The key making seat `seat_id` of `event_id` part of a hold.
pub fn seat_key(event_id: &str, seat_id: &str) -> String {
    format!("hold:{{{event_id}}}:{seat_id}")
}

fn slot_key(event_id: &str, user_id: &str, slot: usize) -> String {
    format!("holdslot:{{{event_id}}}:{user_id}:{slot}")
}

/// How many keys of its own an event has on the board.
const EVENT_KEY_COUNT: usize = 5;

/// The board's own keys of an event: held index, sold set, version, layout version, layout
/// lock.
fn event_keys(event_id: &str) -> [String; EVENT_KEY_COUNT] {
    [
        format!("seats:{{{event_id}}}:held"),
        format!("seats:{{{event_id}}}:sales"),
        format!("seats:{{{event_id}}}:version"),
        format!("seats:{{{event_id}}}:layout"),
        format!("seats:{{{event_id}}}:layout-lock"),
    ]
}

/// How long an event's board keys live after their last change (each change renews it).
const BOARD_KEY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Groups swept index entries (`<seatId>|<holdId>|<userId>`) into the holds they belonged to.
fn expired_holds(event_id: &EventId, entries: &[String]) -> Vec<ExpiredHold> {
    let mut holds: Vec<ExpiredHold> = Vec::new();
    for entry in entries {
        let mut parts = entry.splitn(3, '|');
        let (Some(seat), Some(hold_id), Some(user_id)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let seat = SeatId::from_stored(seat.to_string());
        match holds.iter_mut().find(|h| h.hold_id == hold_id) {
            Some(hold) => hold.seat_ids.push(seat),
            None => holds.push(ExpiredHold {
                hold_id: HoldId::from_stored(hold_id.to_string()),
                user_id: user_id.to_string(),
                event_id: event_id.clone(),
                seat_ids: vec![seat],
            }),
        }
    }
    holds
}

/// The first version of an event's board: the current time in ms, so versions keep growing
/// even if the board's keys expire or the store is flushed, and an old ETag never matches.
fn first_version() -> u64 {
    u64::try_from(crate::domain::now_millis()).unwrap_or(0)
}
