//! Seat holds: the rules of taking, refreshing, releasing and selling a hold.
//!
//! A hold is all-or-nothing: its seats are taken in one atomic step on the seat board (a Lua
//! script on Redis, one critical section in memory; see [`crate::store::board`]) or none are,
//! and the caller learns which seats conflicted. The same step takes one of the holder's
//! `MAX_HOLDS_PER_USER_PER_EVENT` slots on the event, so concurrent requests can never both
//! squeeze under the cap, and checks the event's sold seats, which the board keeps beside the
//! order store (loaded from it once, then updated by every sale), so holds never query the
//! order store in the steady state. The hold's record (`holdrec:<holdId>`: holder, event,
//! seats, creation and expiry) lives in the TTL store as long as its seats. Refreshing extends
//! every seat at once, and only while they all still carry the hold's id; each refresh is
//! capped, and so is the hold's whole lifetime.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::config::OrdersSettings;
use holdfast_common::docstore::StoreError;
use holdfast_common::kv::{KvError, TtlStore};

use crate::domain::hold::{Hold, SeatRequest};
use crate::domain::ids::{EventId, HoldId, OrderId, SeatId};
use crate::domain::now_millis;
use crate::domain::seat::{Layout, VenuePlan};
use crate::store::OrderStore;
use crate::store::board::{
    BestTake, Changed, Claim, HoldKeys, SeatBoard, Snapshot, TakeRequest, Taken,
};
use holdfast_common::venue::BestRequest;

/// The board's keys of `hold`.
fn keys(hold: &Hold) -> HoldKeys {
    HoldKeys {
        hold_id: hold.hold_id.clone(),
        user_id: hold.user_id.clone(),
        event_id: hold.event_id.clone(),
        seat_ids: hold.seat_ids.clone(),
        slot: hold.slot,
    }
}

/// Why a hold could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("{0}")]
    Invalid(String),
    #[error("seats not available: {}", .0.join(", "))]
    Conflict(Vec<SeatId>),
    #[error("you already hold {0} holds on this event; release one first")]
    TooManyHolds(usize),
    /// Best available found no seats fitting the request.
    #[error("no seats fit the request")]
    NoSeats,
    /// The event's layout is being changed right now.
    #[error("the event's seat layout is being changed; retry shortly")]
    LayoutChanging,
    /// The layout changed since the caller read it: read it again and check the seats again.
    #[error("the event's seat layout changed")]
    StaleLayout,
    #[error(transparent)]
    Store(#[from] KvError),
    /// The order store could not say which seats are sold.
    #[error(transparent)]
    Orders(#[from] StoreError),
}

/// The board kept answering that the event's sold seats are unknown, even after loading them.
fn sold_seats_unloadable() -> HoldError {
    HoldError::Store(KvError::Unavailable(
        "the sold seats could not be loaded onto the seat board".into(),
    ))
}

/// The slot and expiry of a hold the board took; `None` when the event's sold seats must be
/// loaded onto the board first; else why nothing was taken.
fn taken_slot(taken: Taken, max_holds: usize) -> Result<Option<(usize, i64)>, HoldError> {
    match taken {
        Taken::Held {
            slot,
            expires_at_ms,
            ..
        } => Ok(Some((slot, expires_at_ms))),
        Taken::SoldUnknown => Ok(None),
        Taken::Conflicts(seats) => Err(HoldError::Conflict(seats)),
        Taken::TooManyHolds => Err(HoldError::TooManyHolds(max_holds)),
        Taken::LayoutLocked => Err(HoldError::LayoutChanging),
        Taken::StaleLayout => Err(HoldError::StaleLayout),
        // Only best available answers it.
        Taken::NoFit => Err(HoldError::NoSeats),
    }
}

/// The hold the board took for `take`: `seat_ids` in `slot` until `expires_at_ms`.
fn new_hold(
    take: TakeRequest,
    seat_ids: Vec<SeatId>,
    slot: usize,
    expires_at_ms: i64,
    offer: bool,
) -> Hold {
    Hold {
        hold_id: take.hold_id,
        user_id: take.user_id,
        event_id: take.event_id,
        seat_ids,
        created_at_ms: now_millis(),
        expires_at_ms,
        slot,
        layout_version: take.layout_version,
        offer,
    }
}

fn record_key(hold_id: &str) -> String {
    format!("holdrec:{hold_id}")
}

/// The index of a user's holds (their ids, each until its expiry), for listing them.
fn user_index_key(user_id: &str) -> String {
    format!("holds:user:{user_id}")
}

/// The hold rules and the stores they act on.
#[derive(Clone)]
pub struct Holds {
    kv: Arc<dyn TtlStore>,
    board: Arc<dyn SeatBoard>,
    orders: Arc<dyn OrderStore>,
    policy: OrdersSettings,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// How often a hold retries after loading the sold seats (another replica may load them too).
const SOLD_LOAD_ATTEMPTS: usize = 3;
/// How often a committed sale is offered to the seat board before giving up (and logging).
const SELL_ATTEMPTS: u32 = 3;

impl Holds {
    pub fn new(
        kv: Arc<dyn TtlStore>,
        board: Arc<dyn SeatBoard>,
        orders: Arc<dyn OrderStore>,
        policy: OrdersSettings,
    ) -> Self {
        Self {
            kv,
            board,
            orders,
            policy,
        }
    }

    /// The seat board the holds live on.
    pub fn board(&self) -> &Arc<dyn SeatBoard> {
        &self.board
    }

    /// The most seats one hold may take.
    pub fn max_seats_per_hold(&self) -> usize {
        self.policy.max_seats_per_hold
    }

    /// The requested seats, checked against the layout and the most seats a hold may take.
    pub fn check_request(
        &self,
        layout: &Layout,
        seat_ids: Vec<SeatId>,
    ) -> Result<SeatRequest, HoldError> {
        SeatRequest::check(layout, seat_ids, self.policy.max_seats_per_hold)
            .map_err(HoldError::Invalid)
    }

    /// Puts the event's sold seats, as the order store has them, on the board.
    async fn load_sold(&self, event_id: &EventId) -> Result<(), HoldError> {
        let sold = self.orders.sold_seats(event_id).await?;
        self.board.load_sold(event_id, &sold).await?;
        Ok(())
    }

    /// Takes every requested seat for `user_id`, or none.
    pub async fn take(
        &self,
        user_id: &str,
        layout: &Layout,
        request: SeatRequest,
    ) -> Result<Hold, HoldError> {
        self.take_for(user_id, layout, request, self.policy.hold_ttl)
            .await
    }

    /// Takes every requested seat for `user_id` for `ttl`, or none, and keeps the hold's
    /// record.
    pub async fn take_for(
        &self,
        user_id: &str,
        layout: &Layout,
        request: SeatRequest,
        ttl: Duration,
    ) -> Result<Hold, HoldError> {
        let hold = self
            .take_unrecorded(user_id, layout, request, ttl, false)
            .await?;
        self.keep(&hold, ttl).await?;
        Ok(hold)
    }

    /// Keeps the record of `hold`, taken by [`Holds::take_unrecorded`]: from then on its user
    /// sees it and may buy or release it. Without its record nobody could, so the seats are let
    /// go when it cannot be written.
    pub async fn keep(&self, hold: &Hold, ttl: Duration) -> Result<(), HoldError> {
        if let Err(error) = self.save(hold, ttl).await {
            let _ = self.board.release(&keys(hold)).await;
            return Err(error.into());
        }
        Ok(())
    }

    /// Takes every requested seat for `user_id` for `ttl` on the seat board, or none, without
    /// the hold's record (see [`Holds::keep`]): a waitlist offer (`offer`) is shown only once
    /// the store has recorded it, never while another process may still win the offer.
    pub async fn take_unrecorded(
        &self,
        user_id: &str,
        layout: &Layout,
        request: SeatRequest,
        ttl: Duration,
        offer: bool,
    ) -> Result<Hold, HoldError> {
        let mut take = self.take_request(user_id, layout, offer, request.into_seat_ids(), ttl);
        for _ in 0..SOLD_LOAD_ATTEMPTS {
            let taken = self.board.take(&take).await?;
            let Some((slot, expires_at_ms)) = taken_slot(taken, take.max_holds)? else {
                self.load_sold(&take.event_id).await?;
                continue;
            };
            let seat_ids = std::mem::take(&mut take.seat_ids);
            return Ok(new_hold(take, seat_ids, slot, expires_at_ms, offer));
        }
        Err(sold_seats_unloadable())
    }

    /// Takes the best available seats of the venue for `user_id` (see
    /// [`holdfast_common::venue::best`]) in one atomic step on the board, and keeps the hold's
    /// record; answers the hold and whether its seats are split across blocks.
    pub async fn take_best(
        &self,
        user_id: &str,
        layout: &Layout,
        plan: &Arc<VenuePlan>,
        request: BestRequest,
    ) -> Result<(Hold, bool), HoldError> {
        let take = self.take_request(user_id, layout, false, Vec::new(), self.policy.hold_ttl);
        let best = BestTake {
            plan: plan.clone(),
            request,
        };
        for _ in 0..SOLD_LOAD_ATTEMPTS {
            let granted = self.board.take_best(&take, &best).await?;
            let Some((slot, expires_at_ms)) = taken_slot(granted.taken, take.max_holds)? else {
                self.load_sold(&take.event_id).await?;
                continue;
            };
            let hold = new_hold(take, granted.seat_ids, slot, expires_at_ms, false);
            self.keep(&hold, self.policy.hold_ttl).await?;
            return Ok((hold, granted.split));
        }
        Err(sold_seats_unloadable())
    }

    /// What the board is asked to take for a new hold of `user_id` (a waitlist offer when
    /// `offer`) on the layout's event, checked against its version.
    fn take_request(
        &self,
        user_id: &str,
        layout: &Layout,
        offer: bool,
        seat_ids: Vec<SeatId>,
        ttl: Duration,
    ) -> TakeRequest {
        TakeRequest {
            hold_id: HoldId::new(offer),
            user_id: user_id.to_string(),
            event_id: layout.event_id.clone(),
            seat_ids,
            ttl,
            max_holds: self.policy.max_holds_per_user_per_event,
            layout_version: layout.version,
        }
    }

    /// Writes the hold's record and lists it among its holder's holds until it expires.
    async fn save(&self, hold: &Hold, ttl: Duration) -> Result<(), KvError> {
        let record = serde_json::to_string(hold).map_err(|e| KvError::Backend(e.to_string()))?;
        let index_ttl = ttl.max(self.policy.hold_max_lifetime);
        let (record_key, index_key) = (record_key(&hold.hold_id), user_index_key(&hold.user_id));
        let (saved, indexed) = tokio::join!(
            self.kv.set(&record_key, &record, ttl),
            self.kv.index_add(
                &index_key,
                &hold.hold_id,
                hold.expires_at_ms,
                now_millis(),
                index_ttl,
            )
        );
        saved.and(indexed)
    }

    /// The user's live holds, oldest first.
    pub async fn of_user(&self, user_id: &str) -> Result<Vec<Hold>, KvError> {
        let ids = self
            .kv
            .index_members(&user_index_key(user_id), now_millis())
            .await?;
        let keys: Vec<String> = ids.iter().map(|id| record_key(id)).collect();
        let now = now_millis();
        let mut holds: Vec<Hold> = self
            .kv
            .get_many(&keys)
            .await?
            .into_iter()
            .flatten()
            .filter_map(|record| serde_json::from_str::<Hold>(&record).ok())
            .filter(|hold| hold.expires_at_ms > now && hold.user_id == user_id)
            .collect();
        holds.sort_by_key(|hold| hold.created_at_ms);
        Ok(holds)
    }

    /// The hold if it is still live.
    pub async fn get(&self, hold_id: &HoldId) -> Result<Option<Hold>, KvError> {
        let record = self.kv.get(&record_key(hold_id)).await?;
        Ok(record
            .and_then(|r| serde_json::from_str::<Hold>(&r).ok())
            .filter(|h| h.expires_at_ms > now_millis()))
    }

    /// Whether every seat of the hold still carries its id (none expired or was taken over).
    pub async fn is_intact(&self, hold: &Hold) -> Result<bool, KvError> {
        self.board.is_intact(&keys(hold)).await
    }

    /// Makes the hold last at least `at_least` more (see [`SeatBoard::claim`]), if it is intact
    /// and the event's layout has not changed since it was taken.
    pub async fn claim(&self, hold: &Hold, at_least: Duration) -> Result<Claim, KvError> {
        self.board
            .claim(&keys(hold), hold.layout_version, at_least)
            .await
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
        let Some(until) = self.board.extend(&keys(&hold), ttl).await? else {
            return Ok(None);
        };
        hold.expires_at_ms = until;
        self.save(&hold, ttl).await?;
        Ok(Some(hold))
    }

    /// Gives the intact `hold` the seats of `request` in one step on the board: the seats it
    /// has and keeps stay held throughout, the new ones are added (all free, else nothing
    /// changes: 409 with the conflicts), the others freed; it keeps its expiry. `None` when the
    /// hold is gone.
    pub async fn change(
        &self,
        mut hold: Hold,
        request: SeatRequest,
    ) -> Result<Option<Hold>, HoldError> {
        let wanted = request.into_seat_ids();
        let add: Vec<SeatId> = wanted
            .iter()
            .filter(|seat| !hold.seat_ids.contains(seat))
            .cloned()
            .collect();
        let remove: Vec<SeatId> = hold
            .seat_ids
            .iter()
            .filter(|seat| !wanted.contains(seat))
            .cloned()
            .collect();
        if add.is_empty() && remove.is_empty() {
            return Ok(self.is_intact(&hold).await?.then_some(hold));
        }
        match self.board.change(&keys(&hold), &add, &remove).await? {
            Changed::Done { .. } => {}
            Changed::Conflicts(seats) => return Err(HoldError::Conflict(seats)),
            Changed::Gone => return Ok(None),
        }
        hold.seat_ids = wanted;
        let left = u64::try_from(hold.expires_at_ms - now_millis()).unwrap_or(0);
        self.save(&hold, Duration::from_millis(left.max(1))).await?;
        Ok(Some(hold))
    }

    /// Frees the hold's seats and slot (those still carrying its id) and forgets it.
    pub async fn release(&self, hold: &Hold) -> Result<(), KvError> {
        self.board.release(&keys(hold)).await?;
        self.kv.delete(&record_key(&hold.hold_id)).await?;
        Ok(())
    }

    /// Marks the hold's seats sold (its purchase committed) and forgets the hold. A few
    /// attempts: until the board knows the sale, only the order store's unique key stops
    /// another hold on those seats from being bought.
    pub async fn sell(&self, hold: &Hold, order_id: &OrderId) -> Result<(), KvError> {
        let mut attempt = 1;
        loop {
            match self.board.sell(&keys(hold), order_id).await {
                Ok(()) => break,
                Err(error) if attempt >= SELL_ATTEMPTS => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, attempt, hold_id = %hold.hold_id, "retrying the sale on the seat board");
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                    attempt += 1;
                }
            }
        }
        self.kv.delete(&record_key(&hold.hold_id)).await?;
        Ok(())
    }

    /// What is not available on the event now, loading its sold seats onto the board first if
    /// the board does not have them.
    pub async fn snapshot(&self, event_id: &EventId) -> Result<Snapshot, HoldError> {
        for _ in 0..SOLD_LOAD_ATTEMPTS {
            if let Some(snapshot) = self.board.snapshot(event_id).await? {
                return Ok(snapshot);
            }
            self.load_sold(event_id).await?;
        }
        Err(sold_seats_unloadable())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use holdfast_common::config::Settings;
    use holdfast_common::kv::MemoryStore;
    use holdfast_common::testing::TestStore;

    use super::*;

    async fn holds(ttl_ms: u64) -> (Holds, TestStore) {
        let mut policy = Settings::from_map(&Default::default()).unwrap().orders;
        policy.hold_ttl = Duration::from_millis(ttl_ms);
        let test = TestStore::sqlite(&crate::store::SCHEMA).await;
        let holds = Holds::new(
            Arc::new(MemoryStore::new()),
            Arc::new(crate::store::board::MemoryBoard::new()),
            crate::store::Stores::open(&test.store).orders,
            policy,
        );
        (holds, test)
    }

    /// Takes `seats` for `user` (checked against the test layout).
    async fn take(holds: &Holds, user: &str, seats: &[&str]) -> Result<Hold, HoldError> {
        let seats = seats.iter().map(|s| SeatId::from(*s)).collect();
        let request = holds.check_request(&layout(), seats)?;
        holds.take(user, &layout(), request).await
    }

    fn layout() -> Layout {
        Layout {
            event_id: "0123456789abcdef01234567".into(),
            rows: 2,
            seats_per_row: 10,
            price_minor: 100,
            currency: "INR".into(),
            version: 0,
            organizer_id: None,
            starts_at_ms: None,
            venue: None,
            about: crate::domain::seat::EventFacts::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_holds_of_one_user_never_exceed_the_cap() {
        let (holds, _dir) = holds(60_000).await;
        let takes = (1..=10).map(|n| {
            let holds = holds.clone();
            tokio::spawn(async move { take(&holds, "u1", &[&format!("R1-S{n}")]).await })
        });
        let outcomes = futures_util::future::join_all(takes).await;
        let taken: Vec<Hold> = outcomes
            .into_iter()
            .filter_map(|o| o.unwrap().ok())
            .collect();
        assert_eq!(taken.len(), 2, "the default cap is 2");
        // Releasing one frees its slot for the next hold.
        holds.release(&taken[0]).await.unwrap();
        assert!(take(&holds, "u1", &["R2-S1"]).await.is_ok());
        assert!(matches!(
            take(&holds, "u1", &["R2-S2"]).await,
            Err(HoldError::TooManyHolds(2))
        ));
        // Another user is not affected.
        assert!(take(&holds, "u2", &["R2-S3"]).await.is_ok());
    }

    #[tokio::test]
    async fn an_expired_hold_gives_its_slot_back() {
        let (holds, _dir) = holds(100).await;
        for n in 1..=2 {
            take(&holds, "u1", &[&format!("R1-S{n}")]).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(take(&holds, "u1", &["R1-S3"]).await.is_ok());
    }

    /// The sold seats come from the order store the first time, then from the board.
    #[tokio::test]
    async fn a_seat_sold_in_the_order_store_is_never_held() {
        let (holds, _dir) = holds(60_000).await;
        let sale = crate::store::NewPurchase {
            order: crate::domain::order::Order {
                order_id: "o1".into(),
                user_id: "u9".into(),
                event_id: layout().event_id,
                seat_ids: vec!["R1-S5".into()],
                amount_minor: 100,
                currency: "INR".into(),
                payment_intent_id: "pi_1".into(),
                status: crate::domain::order::OrderStatus::Bought,
                created_at_ms: now_millis(),
                cancelled_seat_ids: Vec::new(),
                cancelled_at_ms: Vec::new(),
                refunded_minor: 0,
                revision: 0,
                email: None,
            },
            tickets: Vec::new(),
            idempotency: None,
            outbox: crate::store::OutboxMessage {
                id: "m1".into(),
                routing_key: "order.purchased".into(),
                payload: "{}".into(),
            },
        };
        holds.orders.purchase(&sale).await.unwrap();
        assert!(matches!(
            take(&holds, "u1", &["R1-S4", "R1-S5"]).await,
            Err(HoldError::Conflict(seats)) if seats == vec!["R1-S5".to_string()]
        ));
        let snapshot = holds.snapshot(&layout().event_id).await.unwrap();
        assert_eq!(snapshot.sold, vec!["R1-S5".to_string()]);
        assert!(snapshot.held.is_empty());
    }
}
