//! Seat holds in the TTL store.
//!
//! A hold is all-or-nothing: its seats are taken in one atomic step (a Lua script on Redis, one
//! critical section in memory) or none are, and the caller learns which seats conflicted. Each
//! seat is a key `hold:{<eventId>}:<seatId>` whose value is the hold id; the hold's record
//! (`holdrec:<holdId>`: holder, event, seats, creation and expiry) lives as long as its seats.
//! Refreshing extends every seat at once, and only while they all still carry the hold's id;
//! each refresh is capped, and so is the hold's whole lifetime.
//!
//! The per-user cap is enforced the same way: a user has `MAX_HOLDS_PER_USER_PER_EVENT` slot
//! keys per event (`holdslot:{<eventId>}:<userId>:<n>`), and a hold takes one free slot in the
//! same atomic step as its seats. The slot lives, is extended and is freed with the seats, so
//! two concurrent requests can never both squeeze under the cap, and an expired hold gives its
//! slot back by itself.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use holdfast_common::config::OrdersSettings;
use holdfast_common::kv::{AllOrNothing, KvError, TtlStore};
use serde::{Deserialize, Serialize};

use super::now_millis;
use super::seat::{Layout, Seat, seat_key};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub hold_id: String,
    pub user_id: String,
    pub event_id: String,
    pub seat_ids: Vec<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Which of the holder's slots on this event the hold occupies.
    pub slot: usize,
}

impl Hold {
    fn seat_keys(&self) -> Vec<String> {
        self.seat_ids
            .iter()
            .map(|s| seat_key(&self.event_id, s))
            .collect()
    }

    /// The seat keys and the slot key: everything that lives and dies with the hold.
    fn keys(&self) -> Vec<String> {
        let mut keys = self.seat_keys();
        keys.push(slot_key(&self.event_id, &self.user_id, self.slot));
        keys
    }

    /// Whole seconds left, rounded up, 0 once expired.
    pub fn ttl_seconds(&self) -> u64 {
        let left = self.expires_at_ms - now_millis();
        u64::try_from(left.max(0)).unwrap_or(0).div_ceil(1000)
    }
}

/// Seats that passed [`Holds::check_request`] for one event's layout: a hold can only be taken
/// with one of these, so the request is checked exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRequest(Vec<String>);

impl SeatRequest {
    pub fn seat_ids(&self) -> &[String] {
        &self.0
    }
}

/// Why a hold could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("{0}")]
    Invalid(String),
    #[error("seats not available: {}", .0.join(", "))]
    Conflict(Vec<String>),
    #[error("you already hold {0} holds on this event; release one first")]
    TooManyHolds(usize),
    #[error(transparent)]
    Store(#[from] KvError),
}

fn record_key(hold_id: &str) -> String {
    format!("holdrec:{hold_id}")
}

/// Set when a hold ends by release or purchase (not by expiry).
fn ended_key(hold_id: &str) -> String {
    format!("holdended:{hold_id}")
}

/// Shares the event's hash tag, so it can be taken in the same script as the seats.
fn slot_key(event_id: &str, user_id: &str, slot: usize) -> String {
    format!("holdslot:{{{event_id}}}:{user_id}:{slot}")
}

/// The hold rules and the store they act on.
#[derive(Clone)]
pub struct Holds {
    kv: Arc<dyn TtlStore>,
    policy: OrdersSettings,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Holds {
    pub fn new(kv: Arc<dyn TtlStore>, policy: OrdersSettings) -> Self {
        Self { kv, policy }
    }

    /// The requested seats, checked against the layout: none missing, repeated or unknown.
    pub fn check_request(
        &self,
        layout: &Layout,
        seat_ids: Vec<String>,
    ) -> Result<SeatRequest, HoldError> {
        if seat_ids.is_empty() {
            return Err(HoldError::Invalid(
                "seatIds must name at least one seat".into(),
            ));
        }
        if seat_ids.len() > self.policy.max_seats_per_hold {
            return Err(HoldError::Invalid(format!(
                "at most {} seats per hold",
                self.policy.max_seats_per_hold
            )));
        }
        let mut seen = HashSet::new();
        if let Some(repeated) = seat_ids.iter().find(|s| !seen.insert(s.as_str())) {
            return Err(HoldError::Invalid(format!(
                "seat {repeated} is listed twice"
            )));
        }
        let unknown: Vec<&str> = seat_ids
            .iter()
            .filter(|id| !Seat::parse(id).is_some_and(|seat| layout.contains(seat)))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(HoldError::Invalid(format!(
                "no such seats in this event: {}",
                unknown.join(", ")
            )));
        }
        Ok(SeatRequest(seat_ids))
    }

    /// Takes every requested seat for `user_id`, or none. `sold` are those already sold.
    pub async fn take(
        &self,
        user_id: &str,
        layout: &Layout,
        request: SeatRequest,
        sold: &HashSet<String>,
    ) -> Result<Hold, HoldError> {
        let seat_ids = request.0;
        let sold_conflicts: Vec<String> = seat_ids
            .iter()
            .filter(|s| sold.contains(*s))
            .cloned()
            .collect();
        if !sold_conflicts.is_empty() {
            return Err(HoldError::Conflict(sold_conflicts));
        }
        let now = now_millis();
        let mut hold = Hold {
            hold_id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            event_id: layout.event_id.clone(),
            seat_ids,
            created_at_ms: now,
            expires_at_ms: now + millis(self.policy.hold_ttl),
            slot: 0,
        };
        let seat_prefix = seat_key(&hold.event_id, "");
        let cap = self.policy.max_holds_per_user_per_event;
        for slot in 0..cap {
            hold.slot = slot;
            let keys = hold.keys();
            match self
                .kv
                .set_all_if_absent(&keys, &hold.hold_id, self.policy.hold_ttl)
                .await?
            {
                AllOrNothing::Taken => {
                    if let Err(error) = self.save(&hold, self.policy.hold_ttl).await {
                        // Without its record nobody could release or buy the hold.
                        let _ = self.kv.delete_if_value(&keys, &hold.hold_id).await;
                        return Err(error.into());
                    }
                    return Ok(hold);
                }
                AllOrNothing::Conflicts(taken) => {
                    let seats: Vec<String> = taken
                        .iter()
                        .filter_map(|k| k.strip_prefix(&seat_prefix))
                        .map(str::to_string)
                        .collect();
                    if !seats.is_empty() {
                        return Err(HoldError::Conflict(seats));
                    }
                    // Only this slot is in use: try the user's next one.
                }
            }
        }
        Err(HoldError::TooManyHolds(cap))
    }

    async fn save(&self, hold: &Hold, ttl: Duration) -> Result<(), KvError> {
        let record = serde_json::to_string(hold).map_err(|e| KvError::Backend(e.to_string()))?;
        self.kv.set(&record_key(&hold.hold_id), &record, ttl).await
    }

    /// The hold if it is still live.
    pub async fn get(&self, hold_id: &str) -> Result<Option<Hold>, KvError> {
        let record = self.kv.get(&record_key(hold_id)).await?;
        Ok(record
            .and_then(|r| serde_json::from_str::<Hold>(&r).ok())
            .filter(|h| h.expires_at_ms > now_millis()))
    }

    /// Whether every seat of the hold still carries its id (none expired or was taken over).
    pub async fn is_intact(&self, hold: &Hold) -> Result<bool, KvError> {
        let values = self.kv.get_many(&hold.keys()).await?;
        Ok(values
            .iter()
            .all(|v| v.as_deref() == Some(hold.hold_id.as_str())))
    }

    /// Extends the hold by `requested` (or the default TTL), within the per-call and lifetime
    /// caps. `None` when the hold is gone.
    pub async fn refresh(
        &self,
        mut hold: Hold,
        requested: Option<Duration>,
    ) -> Result<Option<Hold>, KvError> {
        let extend = requested
            .unwrap_or(self.policy.hold_ttl)
            .min(self.policy.hold_refresh_max);
        let now = now_millis();
        let lifetime_end = hold.created_at_ms + millis(self.policy.hold_max_lifetime);
        let expires_at = (now + millis(extend)).min(lifetime_end);
        if expires_at <= hold.expires_at_ms {
            // Already at (or past) what the caps allow: nothing to extend.
            return Ok(self.is_intact(&hold).await?.then_some(hold));
        }
        let ttl = Duration::from_millis(u64::try_from(expires_at - now).unwrap_or(0));
        if !self
            .kv
            .extend_all_if_value(&hold.keys(), &hold.hold_id, ttl)
            .await?
        {
            return Ok(None);
        }
        hold.expires_at_ms = expires_at;
        self.save(&hold, ttl).await?;
        Ok(Some(hold))
    }

    /// Frees the hold's seats and slot (those still carrying its id) and forgets it.
    pub async fn release(&self, hold: &Hold) -> Result<(), KvError> {
        // Marked ended first, so whoever watches for expiry knows it did not simply time out.
        self.kv
            .set(
                &ended_key(&hold.hold_id),
                "1",
                self.policy.hold_max_lifetime,
            )
            .await?;
        self.kv.delete_if_value(&hold.keys(), &hold.hold_id).await?;
        self.kv.delete(&record_key(&hold.hold_id)).await?;
        Ok(())
    }

    /// Waits until the hold is over; answers true when it expired (rather than being released
    /// or bought). Refreshes push the wait back.
    pub async fn expired(&self, hold: &Hold) -> Result<bool, KvError> {
        let mut expires_at = hold.expires_at_ms;
        loop {
            let wait = u64::try_from(expires_at - now_millis()).unwrap_or(0);
            // A little past the deadline, so the store has certainly let the keys go.
            tokio::time::sleep(Duration::from_millis(wait + 50)).await;
            let record = self.kv.get(&record_key(&hold.hold_id)).await?;
            match record.and_then(|r| serde_json::from_str::<Hold>(&r).ok()) {
                Some(current) if current.expires_at_ms > now_millis() => {
                    expires_at = current.expires_at_ms
                }
                Some(_) => expires_at = now_millis(),
                None => return Ok(self.kv.get(&ended_key(&hold.hold_id)).await?.is_none()),
            }
        }
    }

    /// The held seats of an event, read in one round trip.
    pub async fn held_seats(&self, layout: &Layout) -> Result<HashSet<String>, KvError> {
        let ids: Vec<String> = layout.seats().map(|s| s.id()).collect();
        let keys: Vec<String> = ids
            .iter()
            .map(|id| seat_key(&layout.event_id, id))
            .collect();
        let values = self.kv.get_many(&keys).await?;
        Ok(ids
            .into_iter()
            .zip(values)
            .filter_map(|(id, value)| value.map(|_| id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use holdfast_common::config::Settings;
    use holdfast_common::kv::MemoryStore;

    use super::*;

    fn holds(ttl_ms: u64) -> Holds {
        let mut policy = Settings::from_map(&Default::default()).unwrap().orders;
        policy.hold_ttl = Duration::from_millis(ttl_ms);
        Holds::new(Arc::new(MemoryStore::new()), policy)
    }

    fn layout() -> Layout {
        Layout {
            event_id: "0123456789abcdef01234567".into(),
            rows: 2,
            seats_per_row: 10,
            price_minor: 100,
            currency: "INR".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_holds_of_one_user_never_exceed_the_cap() {
        let holds = holds(60_000);
        let takes = (1..=10).map(|n| {
            let holds = holds.clone();
            tokio::spawn(async move {
                holds
                    .take(
                        "u1",
                        &layout(),
                        holds
                            .check_request(&layout(), vec![format!("R1-S{n}")])
                            .unwrap(),
                        &HashSet::new(),
                    )
                    .await
            })
        });
        let outcomes = futures_util::future::join_all(takes).await;
        let taken: Vec<Hold> = outcomes
            .into_iter()
            .filter_map(|o| o.unwrap().ok())
            .collect();
        assert_eq!(taken.len(), 2, "the default cap is 2");
        // Releasing one frees its slot for the next hold.
        holds.release(&taken[0]).await.unwrap();
        assert!(
            holds
                .take(
                    "u1",
                    &layout(),
                    holds
                        .check_request(&layout(), vec!["R2-S1".into()])
                        .unwrap(),
                    &HashSet::new()
                )
                .await
                .is_ok()
        );
        assert!(matches!(
            holds
                .take(
                    "u1",
                    &layout(),
                    holds
                        .check_request(&layout(), vec!["R2-S2".into()])
                        .unwrap(),
                    &HashSet::new()
                )
                .await,
            Err(HoldError::TooManyHolds(2))
        ));
        // Another user is not affected.
        assert!(
            holds
                .take(
                    "u2",
                    &layout(),
                    holds
                        .check_request(&layout(), vec!["R2-S3".into()])
                        .unwrap(),
                    &HashSet::new()
                )
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn an_expired_hold_gives_its_slot_back() {
        let holds = holds(100);
        for n in 1..=2 {
            holds
                .take(
                    "u1",
                    &layout(),
                    holds
                        .check_request(&layout(), vec![format!("R1-S{n}")])
                        .unwrap(),
                    &HashSet::new(),
                )
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(
            holds
                .take(
                    "u1",
                    &layout(),
                    holds
                        .check_request(&layout(), vec!["R1-S3".into()])
                        .unwrap(),
                    &HashSet::new()
                )
                .await
                .is_ok()
        );
    }
}
