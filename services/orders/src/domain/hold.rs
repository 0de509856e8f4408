//! Seat holds: who may use one, how long it has left, and the rules a request for seats must
//! meet before any seat is taken.

use std::collections::HashSet;

use holdfast_common::auth::AuthUser;
use serde::{Deserialize, Serialize};

use crate::domain::ids::{EventId, HoldId, SeatId};
use crate::domain::now_millis;
use std::sync::Arc;

use holdfast_common::venue::BestRequest;

use crate::domain::seat::{Layout, VenuePlan};

/// How the ids of waitlist offers start.
pub const OFFER_PREFIX: &str = "offer-";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub hold_id: HoldId,
    pub user_id: String,
    pub event_id: EventId,
    pub seat_ids: Vec<SeatId>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Which of the holder's slots on this event the hold occupies.
    pub slot: usize,
    /// The layout version the seats were checked against.
    #[serde(default)]
    pub layout_version: u64,
    /// Made for the holder by the event's waitlist (see [`crate::waitlist`]).
    #[serde(default)]
    pub offer: bool,
}

impl Hold {
    /// Whether `caller` may see, use and release the hold: its holder, or an admin.
    pub fn may_be_used_by(&self, caller: &AuthUser) -> bool {
        caller.is_admin() || self.user_id == caller.id()
    }

    /// Whether `hold_id` names a waitlist offer (their ids start with [`OFFER_PREFIX`]), so
    /// that what happens to ordinary holds never has to ask the waitlist.
    pub fn is_offer_id(hold_id: &HoldId) -> bool {
        hold_id.starts_with(OFFER_PREFIX)
    }

    /// Whole seconds left, rounded up, 0 once expired.
    pub fn ttl_seconds(&self) -> u64 {
        let left = self.expires_at_ms - now_millis();
        u64::try_from(left.max(0)).unwrap_or(0).div_ceil(1000)
    }
}

/// Seats that passed [`SeatRequest::check`] for one event's layout: a hold can only be taken
/// with one of these, so the request is checked exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRequest(Vec<SeatId>);

impl SeatRequest {
    /// A buyer's requested seats, checked against `layout`: at least one and at most
    /// `max_seats`, none repeated or unknown, no companion seat without its wheelchair space;
    /// else why not.
    pub fn check(layout: &Layout, seat_ids: Vec<SeatId>, max_seats: usize) -> Result<Self, String> {
        let request = Self::check_any(layout, seat_ids, max_seats)?;
        let seat_ids = &request.0;
        if let Some(plan) = &layout.venue {
            // A companion seat goes with the wheelchair space it belongs to.
            let alone: Vec<&str> = seat_ids
                .iter()
                .filter(|id| {
                    plan.seat(id)
                        .and_then(|seat| seat.companion_of)
                        .is_some_and(|space| {
                            let space = &plan.venue.seats[space].id;
                            !seat_ids.iter().any(|other| other.as_str() == space)
                        })
                })
                .map(SeatId::as_str)
                .collect();
            if !alone.is_empty() {
                return Err(format!(
                    "companion seats are held only with their wheelchair space: {}",
                    alone.join(", ")
                ));
            }
        }
        Ok(request)
    }

    /// Seats of `layout`, whatever they are: at least one and at most `max_seats`, none
    /// repeated or unknown; else why not.
    pub fn check_any(
        layout: &Layout,
        seat_ids: Vec<SeatId>,
        max_seats: usize,
    ) -> Result<Self, String> {
        if seat_ids.is_empty() {
            return Err("seatIds must name at least one seat".into());
        }
        if seat_ids.len() > max_seats {
            return Err(format!("at most {max_seats} seats per hold"));
        }
        let mut seen = HashSet::new();
        if let Some(repeated) = seat_ids.iter().find(|s| !seen.insert(s.as_str())) {
            return Err(format!("seat {repeated} is listed twice"));
        }
        let unknown: Vec<&str> = seat_ids
            .iter()
            .filter(|id| !layout.has_seat(id))
            .map(SeatId::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "no such seats in this event: {}",
                unknown.join(", ")
            ));
        }
        Ok(Self(seat_ids))
    }

    pub fn seat_ids(&self) -> &[SeatId] {
        &self.0
    }

    pub fn into_seat_ids(self) -> Vec<SeatId> {
        self.0
    }
}

/// A buyer's best-available request, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BestAsk {
    pub count: usize,
    /// A price category's key.
    pub category: Option<String>,
    /// A section's key.
    pub section: Option<String>,
    pub accessible: bool,
    pub allow_split: bool,
}

impl BestAsk {
    /// The request checked against the event: a venue, known keys, at most `max_seats`; else
    /// the offending field and why.
    pub fn check(
        &self,
        layout: &Layout,
        max_seats: usize,
    ) -> Result<(Arc<VenuePlan>, BestRequest), (&'static str, String)> {
        let Some(plan) = &layout.venue else {
            return Err((
                "eventId",
                "best available needs an event with a venue layout; pick seats on the map".into(),
            ));
        };
        if !(1..=max_seats).contains(&self.count) {
            return Err(("count", format!("must be 1 to {max_seats}")));
        }
        let venue = &plan.venue;
        let category = key_index(
            self.category.as_deref(),
            venue.categories.iter().map(|c| c.key.as_str()),
            ("category", "price category"),
        )?;
        let section = key_index(
            self.section.as_deref(),
            venue.sections.iter().map(|s| s.key.as_str()),
            ("section", "section"),
        )?;
        Ok((
            plan.clone(),
            BestRequest {
                count: self.count,
                category,
                section,
                accessible: self.accessible,
                allow_split: self.allow_split,
            },
        ))
    }
}

/// The index of `key` among `keys`, if a key is asked for; else the field and why not.
fn key_index<'k>(
    key: Option<&str>,
    mut keys: impl Iterator<Item = &'k str>,
    (field, what): (&'static str, &str),
) -> Result<Option<usize>, (&'static str, String)> {
    key.map(|key| {
        keys.position(|k| k == key)
            .ok_or((field, format!("no {what} {key:?} in this venue")))
    })
    .transpose()
}
