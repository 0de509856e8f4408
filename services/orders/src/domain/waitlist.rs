//! The waitlist: entries, the offers made to them, and places in the line.

use crate::domain::ids::{EventId, HoldId};

/// One user's place on an event's waitlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitlistEntry {
    pub event_id: EventId,
    pub user_id: String,
    /// Where the entry stands in the event's line (see [`line`]): given by the store when the
    /// user joins, 0 before.
    pub seq: u64,
    /// How many seats the user wants.
    pub seats: usize,
    pub joined_at_ms: i64,
    /// Where offers are mailed: the user's address when they joined.
    pub email: Option<String>,
    /// The hold offered to the user, while an offer stands.
    pub offer: Option<Offer>,
}

/// Seats held for a waitlisted user until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub hold_id: HoldId,
    pub until_ms: i64,
}

/// An event's waitlist in figures, for the sales view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitlistSummary {
    pub entries: usize,
    /// Seats wanted, all entries together.
    pub seats: usize,
    /// Offers standing.
    pub offers: usize,
}

/// Where a user stands on a waitlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub entry: WaitlistEntry,
    /// 1 for the head of the queue.
    pub position: usize,
    /// How many are on the waitlist in all.
    pub length: usize,
}
