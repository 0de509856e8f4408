//! What follows any change of a seat's state, in one place: the event's live seat map marked
//! stale (its stream then sends the change), the sweeper told to watch the event, the hold
//! change announced on the bus, and the waitlist asked for an offer round when seats came free.
//!
//! Every use-case that holds, releases, sells or gives back seats reports the change here after
//! it is stored, and nothing else calls the live map, the announcer or the waitlist for it. An
//! offer that was bought or declined leaves the waitlist before the answer (through the
//! waitlist's store); offer rounds are queued for the waitlist's task (see
//! [`crate::waitlist::spawn`]), so no use-case depends on the waitlist's module and a round
//! never runs inside the request that freed the seats.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::announcer::{Announcer, HoldChange};
use crate::domain::hold::Hold;
use crate::domain::ids::EventId;
use crate::live::Live;
use crate::store::WaitlistStore;
use crate::store::board::{ExpiredHold, SeatBoard};

/// Seats of the event may have come free: the waitlist is asked to offer them to the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundWanted {
    pub event_id: EventId,
}

/// A seat change, reported once it is stored.
#[derive(Debug, Clone, Copy)]
pub enum SeatChange<'a> {
    /// Seats were held, by a buyer or by the waitlist for the next in line.
    Held(&'a Hold),
    /// A holder released a hold (a declined offer ends and the seats go to the line).
    Released(&'a Hold),
    /// A hold was bought (a bought offer ends).
    Sold(&'a Hold),
    /// A hold's seats changed: some may be free again, for the line.
    Changed(&'a Hold),
    /// Seats of the event were found sold elsewhere, or a layout lock ended: the map changed.
    Refreshed(&'a EventId),
    /// Sold seats of the event were given back (a cancellation): they go to the line.
    GivenBack(&'a EventId),
}

/// Applies the consequences of seat changes; cheap to clone.
#[derive(Clone)]
pub struct SeatChanges {
    live: Arc<Live>,
    announcer: Announcer,
    /// How long an event with holds stays watched by the sweeper (a hold's longest life).
    watch_for: Duration,
    waitlist: Arc<dyn WaitlistStore>,
    rounds: mpsc::UnboundedSender<RoundWanted>,
}

impl SeatChanges {
    /// Reports to `live` and `announcer`, ends offers in `waitlist` and queues rounds on
    /// `rounds`.
    pub fn new(
        live: Arc<Live>,
        announcer: Announcer,
        watch_for: Duration,
        waitlist: Arc<dyn WaitlistStore>,
        rounds: mpsc::UnboundedSender<RoundWanted>,
    ) -> Self {
        Self {
            live,
            announcer,
            watch_for,
            waitlist,
            rounds,
        }
    }

    /// The consequences of `change`, which is stored already.
    pub async fn after(&self, change: SeatChange<'_>) {
        match change {
            SeatChange::Held(hold) => {
                self.live.invalidate(&hold.event_id);
                self.live.watch(&hold.event_id, self.watch_for);
                self.announce(HoldChange::Created, hold);
            }
            SeatChange::Released(hold) => {
                self.live.invalidate(&hold.event_id);
                self.announce(HoldChange::Released, hold);
                self.end_offer(hold, "declined").await;
                self.round(&hold.event_id);
            }
            SeatChange::Sold(hold) => {
                self.live.invalidate(&hold.event_id);
                self.end_offer(hold, "bought").await;
            }
            SeatChange::Refreshed(event_id) => self.live.invalidate(event_id),
            SeatChange::Changed(hold) => {
                self.live.invalidate(&hold.event_id);
                self.round(&hold.event_id);
            }
            SeatChange::GivenBack(event_id) => {
                self.live.invalidate(event_id);
                self.round(event_id);
            }
        }
    }

    /// Announces every hold `board` finds expired (once each, whichever replica swept it),
    /// counting them in `expired`; the live map follows the board's own news. The task ends
    /// once the service's live maps are gone.
    pub fn follow_expiries(&self, board: &Arc<dyn SeatBoard>, expired: Counter) {
        let live = Arc::downgrade(&self.live);
        let mut expirations = board.expirations();
        let announcer = self.announcer.clone();
        tokio::spawn(async move {
            loop {
                let hold: ExpiredHold = match expirations.recv().await {
                    Ok(hold) => hold,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "hold expiries not announced (too many at once)");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                if live.strong_count() == 0 {
                    return;
                }
                expired.inc();
                announcer.hold(
                    HoldChange::Expired,
                    &hold.hold_id,
                    &hold.user_id,
                    &hold.event_id,
                    &hold.seat_ids,
                );
            }
        });
    }

    fn announce(&self, change: HoldChange, hold: &Hold) {
        self.announcer.hold(
            change,
            &hold.hold_id,
            &hold.user_id,
            &hold.event_id,
            &hold.seat_ids,
        );
    }

    /// An offer's hold was bought or declined (`how`): its holder leaves the waitlist.
    async fn end_offer(&self, hold: &Hold, how: &str) {
        if !hold.offer {
            return;
        }
        let ended = self
            .waitlist
            .end_offer(&hold.event_id, &hold.hold_id, None)
            .await;
        if let Err(error) = ended {
            tracing::warn!(%error, hold_id = %hold.hold_id, "{how} offer still on the waitlist");
        }
    }

    fn round(&self, event_id: &EventId) {
        let wanted = RoundWanted {
            event_id: event_id.clone(),
        };
        if self.rounds.send(wanted).is_err() {
            // Only while the service stops: the stale-offer rule and the next trigger make up.
            tracing::debug!("waitlist round dropped: the waitlist has stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use holdfast_common::bus::MemoryBus;
    use holdfast_common::testing::TestStore;

    use super::*;
    use crate::domain::waitlist::{Offer, WaitlistEntry};
    use crate::store::{SCHEMA, Stores};

    fn hold(offer: bool) -> Hold {
        Hold {
            hold_id: "h1".into(),
            user_id: "u1".into(),
            event_id: "e1".into(),
            seat_ids: vec!["R1-S1".into()],
            created_at_ms: 0,
            expires_at_ms: 60_000,
            slot: 0,
            layout_version: 0,
            offer,
        }
    }

    /// Seat changes over a SQLite store where `u1` waits on `e1` with the offer `h1`.
    async fn changes() -> (
        SeatChanges,
        mpsc::UnboundedReceiver<RoundWanted>,
        Stores,
        TestStore,
    ) {
        let test = TestStore::sqlite(&SCHEMA).await;
        let stores = Stores::open(&test.store);
        let entry = WaitlistEntry {
            event_id: "e1".into(),
            user_id: "u1".into(),
            seq: 0,
            seats: 1,
            joined_at_ms: 0,
            email: None,
            offer: None,
        };
        assert!(stores.waitlist.join_waitlist(&entry).await.unwrap());
        let offer = Offer {
            hold_id: "h1".into(),
            until_ms: 60_000,
        };
        let recorded = stores
            .waitlist
            .record_offer(&"e1".into(), "u1", &offer, None)
            .await;
        assert!(recorded.unwrap());
        let (queue, rounds) = mpsc::unbounded_channel();
        let changes = SeatChanges::new(
            Arc::new(Live::default()),
            Announcer::spawn(Arc::new(MemoryBus::default())),
            Duration::from_secs(60),
            stores.waitlist.clone(),
            queue,
        );
        (changes, rounds, stores, test)
    }

    fn queued(rounds: &mut mpsc::UnboundedReceiver<RoundWanted>) -> Vec<String> {
        std::iter::from_fn(|| rounds.try_recv().ok().map(|r| r.event_id.to_string())).collect()
    }

    async fn waiting(stores: &Stores) -> bool {
        let place = stores
            .waitlist
            .waitlist_place(&"e1".into(), "u1")
            .await
            .unwrap();
        place.is_some()
    }

    #[tokio::test]
    async fn released_seats_go_to_the_line_and_a_declined_offer_ends_before_the_answer() {
        let (changes, mut rounds, stores, _test) = changes().await;
        changes.after(SeatChange::Released(&hold(false))).await;
        assert_eq!(queued(&mut rounds), ["e1"]);
        assert!(waiting(&stores).await, "a plain hold is no offer");
        changes.after(SeatChange::Released(&hold(true))).await;
        assert_eq!(queued(&mut rounds), ["e1"]);
        assert!(!waiting(&stores).await);
    }

    #[tokio::test]
    async fn a_bought_offer_ends_and_a_cancellation_starts_a_round_but_a_hold_does_not() {
        let (changes, mut rounds, stores, _test) = changes().await;
        changes.after(SeatChange::Held(&hold(false))).await;
        changes.after(SeatChange::Sold(&hold(false))).await;
        assert!(queued(&mut rounds).is_empty());
        assert!(waiting(&stores).await);
        changes.after(SeatChange::Sold(&hold(true))).await;
        assert!(!waiting(&stores).await);
        changes.after(SeatChange::GivenBack(&"e2".into())).await;
        assert_eq!(queued(&mut rounds), ["e2"]);
    }
}
