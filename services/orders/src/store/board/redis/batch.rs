//! Best available for the buyers of one event that arrive together, in one script call.
//!
//! In an on-sale the buyers of one event all want the same few seats, and on Redis each
//! search is a script that the single Redis thread runs one after another. So the buyers
//! waiting at the same moment are taken together: one worker per event chooses the seats for
//! each of them in turn from this process's view of the board (each counting the seats given
//! before it as taken), and one script ([`GRANT`]) holds them all — but only while the board
//! is still at the version of that view, when the view *was* the board and every choice is
//! the best for its buyer, and only if every chosen seat is free after all. Otherwise (another
//! replica or an expiry changed the board, no current view yet, a buyer nothing fits in one
//! row) a buyer gets no answer here and searches the board on its own, as a lone buyer would.
//!
//! The worker is a task of its own, so a buyer who goes away does not take the others' answers
//! with it; the next buyers wait for the call in flight, then go together.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use holdfast_common::kv::RedisStore;
use holdfast_common::sync::lock;
use tokio::sync::{broadcast, oneshot};

use super::scripts::GRANT;
use super::views::Views;
use super::{held, read_region, run_script, script_args, ttl_millis};
use crate::domain::ids::{EventId, SeatId};
use crate::store::board::{
    BestTake, ExpiredHold, Granted, TakeRequest, Taken, event_keys, seat_key, slot_key,
};

/// The most buyers one script call takes.
const MAX_BATCH: usize = 64;

/// The waiting buyers of every event, and what their worker needs.
pub(super) struct Batches {
    redis: RedisStore,
    views: Arc<Views>,
    expirations: broadcast::Sender<ExpiredHold>,
    queues: Mutex<HashMap<EventId, Arc<Mutex<Queue>>>>,
    /// How many script calls took batches (what the tests check batching by).
    calls: AtomicU64,
}

/// One event's buyers waiting for the worker, and whether it runs.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    working: bool,
}

/// A buyer, and where its answer goes: `None` means "search the board on your own".
struct Waiting {
    request: TakeRequest,
    best: BestTake,
    answer: oneshot::Sender<Option<Granted>>,
}

impl Batches {
    pub(super) fn new(
        redis: RedisStore,
        views: Arc<Views>,
        expirations: broadcast::Sender<ExpiredHold>,
    ) -> Self {
        Self {
            redis,
            views,
            expirations,
            queues: Mutex::default(),
            calls: AtomicU64::new(0),
        }
    }

    /// Takes the best seats for `request` together with the other buyers of its event waiting
    /// now; `None` when it must search the board on its own (see the module's comment).
    pub(super) async fn take(
        self: &Arc<Self>,
        request: &TakeRequest,
        best: &BestTake,
    ) -> Option<Granted> {
        let (answer, answered) = oneshot::channel();
        let queue = lock(&self.queues)
            .entry(request.event_id.clone())
            .or_default()
            .clone();
        let start_worker = {
            let mut queue = lock(&queue);
            queue.waiting.push_back(Waiting {
                request: request.clone(),
                best: best.clone(),
                answer,
            });
            !std::mem::replace(&mut queue.working, true)
        };
        if start_worker {
            tokio::spawn(self.clone().work(request.event_id.clone(), queue));
        }
        answered.await.ok().flatten()
    }

    /// Takes the event's waiting buyers, as many at a time as [`MAX_BATCH`], until none waits.
    async fn work(self: Arc<Self>, event_id: EventId, queue: Arc<Mutex<Queue>>) {
        let _stopped = Stopped(queue.clone());
        loop {
            let batch: Vec<Waiting> = {
                let mut queue = lock(&queue);
                if queue.waiting.is_empty() {
                    return;
                }
                let count = queue.waiting.len().min(MAX_BATCH);
                queue.waiting.drain(..count).collect()
            };
            self.grant(&event_id, batch).await;
        }
    }

    /// Chooses seats for `batch` from the view and holds them in one script call; answers
    /// every buyer.
    async fn grant(&self, event_id: &EventId, batch: Vec<Waiting>) {
        let takes: Vec<&BestTake> = batch.iter().map(|waiting| &waiting.best).collect();
        let mut choices = self.views.choose(event_id, &takes);
        if choices.is_none() {
            self.read_view(event_id, takes[0]).await;
            choices = self.views.choose(event_id, &takes);
        }
        let Some((version, choices)) = choices else {
            return search_alone(batch);
        };
        // One layout version per call (the script checks it): the first buyer's.
        let layout_version = batch[0].request.layout_version;
        let mut chosen: Vec<(Waiting, Vec<SeatId>)> = Vec::with_capacity(batch.len());
        let mut alone = Vec::new();
        for (waiting, choice) in batch.into_iter().zip(choices) {
            match choice {
                Some(seats) if waiting.request.layout_version == layout_version => {
                    let venue = &waiting.best.plan.venue;
                    let ids = seats.iter().map(|&i| SeatId::named(&venue.seats[i].id));
                    let ids = ids.collect();
                    chosen.push((waiting, ids));
                }
                _ => alone.push(waiting),
            }
        }
        search_alone(alone);
        if chosen.is_empty() {
            return;
        }
        let (keys, args) = grant_call(&self.redis, event_id, version, layout_version, &chosen);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let run = run_script(&self.redis, &self.expirations, &GRANT, event_id, keys, args);
        let answer: Vec<String> = match run.await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::debug!(%error, "batched best available failed: each buyer searches alone");
                return search_alone(chosen.into_iter().map(|(waiting, _)| waiting));
            }
        };
        let mut rest = answer.as_slice();
        let mut buyers = chosen.into_iter();
        for (waiting, seat_ids) in buyers.by_ref() {
            let granted = match rest.first().map(String::as_str) {
                Some("held") => match held(&rest[1..]) {
                    Ok(taken @ Taken::Held { version, .. }) => {
                        rest = rest.get(4..).unwrap_or_default();
                        self.views
                            .granted(event_id, &waiting.best, &seat_ids, true, version);
                        Granted::of(taken, seat_ids, false)
                    }
                    _ => {
                        tracing::warn!(?answer, "unreadable batched best-available answer");
                        search_alone([waiting]);
                        break;
                    }
                },
                Some("full") => Granted::refused(Taken::TooManyHolds),
                // The board moved, a refusal (the lone search tells which), or no answer.
                _ => {
                    search_alone([waiting]);
                    break;
                }
            };
            let stop = granted.taken == Taken::TooManyHolds;
            let _ = waiting.answer.send(Some(granted));
            if stop {
                break;
            }
        }
        search_alone(buyers.map(|(waiting, _)| waiting));
    }

    /// Reads the event's view from the board, for an on-sale's first buyers or after changes
    /// were missed (the region it answers is the lone search's business).
    async fn read_view(&self, event_id: &EventId, best: &BestTake) {
        let read = read_region(&self.redis, &self.expirations, &self.views, event_id, best);
        if let Err(error) = read.await {
            tracing::debug!(%error, "reading the board for a batch failed");
        }
    }
}

/// Marks an event's worker stopped when it ends — having found nobody waiting, or unwound
/// by a panic or a runtime shutting down, when whoever still waits searches alone rather than
/// waiting for a worker that will not come.
struct Stopped(Arc<Mutex<Queue>>);

impl Drop for Stopped {
    fn drop(&mut self) {
        let mut queue = lock(&self.0);
        queue.working = false;
        search_alone(queue.waiting.drain(..));
    }
}

/// Tells each of `waiting` to search the board on its own.
fn search_alone(waiting: impl IntoIterator<Item = Waiting>) {
    for buyer in waiting {
        let _ = buyer.answer.send(None);
    }
}

/// The keys and arguments of [`GRANT`] for `chosen` from a view at `version`.
fn grant_call(
    redis: &RedisStore,
    event_id: &EventId,
    version: u64,
    layout_version: u64,
    chosen: &[(Waiting, Vec<SeatId>)],
) -> (Vec<String>, Vec<String>) {
    let mut keys = event_keys(event_id).to_vec();
    let mut args = script_args(redis, event_id);
    args.extend([
        version.to_string(),
        layout_version.to_string(),
        chosen.len().to_string(),
    ]);
    for (waiting, seat_ids) in chosen {
        let request = &waiting.request;
        keys.extend((0..request.max_holds).map(|n| slot_key(event_id, &request.user_id, n)));
        keys.extend(seat_ids.iter().map(|seat| seat_key(event_id, seat)));
        args.extend([
            request.hold_id.to_string(),
            request.user_id.clone(),
            ttl_millis(request.ttl),
            request.max_holds.to_string(),
            seat_ids.len().to_string(),
        ]);
        args.extend(seat_ids.iter().map(SeatId::to_string));
    }
    (keys, args)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use holdfast_common::testing::{redis_store, unique_name};
    use holdfast_common::venue::{BestRequest, VenueSpec, best_available};
    use serde_json::json;

    use super::*;
    use crate::domain::ids::HoldId;
    use crate::domain::seat::VenuePlan;
    use crate::store::SoldSeats;
    use crate::store::board::SeatBoard;
    use crate::store::board::redis::RedisBoard;

    const EVENT: &str = "0123456789abcdef0123babe";

    async fn board() -> Option<Arc<RedisBoard>> {
        board_at(&format!("{}:", unique_name("batch"))).await
    }

    /// A board (a process) on the keys under `prefix`.
    async fn board_at(prefix: &str) -> Option<Arc<RedisBoard>> {
        let store = redis_store("REDIS_URL", prefix).await?;
        let board = RedisBoard::new(store);
        board
            .load_sold(&EVENT.into(), &SoldSeats::new())
            .await
            .unwrap();
        Some(Arc::new(board))
    }

    /// One row of 60 seats, no aisle.
    fn plan() -> Arc<VenuePlan> {
        let spec: VenueSpec = serde_json::from_value(json!({
            "categories": [{"key": "a", "name": "A", "price": 10}],
            "sections": [{"key": "s", "name": "S", "category": "a",
                          "rows": [{"label": "A", "seats": "1-60"}]}]
        }))
        .unwrap();
        Arc::new(VenuePlan::new(spec.expand().unwrap()))
    }

    fn request(user: &str, max_holds: usize) -> TakeRequest {
        TakeRequest {
            hold_id: HoldId::new(false),
            user_id: user.into(),
            event_id: EVENT.into(),
            seat_ids: Vec::new(),
            ttl: Duration::from_secs(60),
            max_holds,
            layout_version: 0,
        }
    }

    fn best_of(plan: &Arc<VenuePlan>, count: usize) -> BestTake {
        BestTake {
            plan: plan.clone(),
            request: BestRequest {
                count,
                ..BestRequest::default()
            },
        }
    }

    fn buyer(user: &str, max_holds: usize, plan: &Arc<VenuePlan>) -> Waiting {
        Waiting {
            request: request(user, max_holds),
            best: best_of(plan, 2),
            answer: oneshot::channel().0,
        }
    }

    async fn grant(
        board: &RedisBoard,
        version: u64,
        chosen: &[(Waiting, Vec<SeatId>)],
    ) -> Vec<String> {
        let event = EventId::from(EVENT);
        let (keys, args) = grant_call(&board.redis, &event, version, 0, chosen);
        run_script(&board.redis, &board.expirations, &GRANT, &event, keys, args)
            .await
            .unwrap()
    }

    async fn held_seats(board: &RedisBoard) -> Vec<SeatId> {
        let mut held = board.snapshot(&EVENT.into()).await.unwrap().unwrap().held;
        held.sort();
        held
    }

    fn seats(ids: &[&str]) -> Vec<SeatId> {
        ids.iter().map(|id| SeatId::from(*id)).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn buyers_arriving_together_share_script_calls_and_each_gets_the_best_in_turn() {
        let Some(board) = board().await else { return };
        let plan = plan();
        // The first buyer alone reads the view.
        let first = board
            .take_best(&request("first", 1), &best_of(&plan, 2))
            .await
            .unwrap();
        assert!(matches!(first.taken, Taken::Held { .. }));
        let calls_before = board.batches.calls.load(Ordering::Relaxed);
        let buyers: Vec<_> = (0..20)
            .map(|n| {
                let (board, plan) = (board.clone(), plan.clone());
                tokio::spawn(async move {
                    board
                        .take_best(&request(&format!("b{n}"), 1), &best_of(&plan, 2))
                        .await
                })
            })
            .collect();
        let mut given: Vec<SeatId> = first.seat_ids;
        for buyer in buyers {
            let granted = buyer.await.unwrap().unwrap();
            assert!(matches!(granted.taken, Taken::Held { .. }), "{granted:?}");
            given.extend(granted.seat_ids);
        }
        let calls = board.batches.calls.load(Ordering::Relaxed) - calls_before;
        assert!(
            calls < 20,
            "20 buyers arriving together took {calls} script calls"
        );
        // Whatever their order, 21 pairs given one after another, each the best then.
        let mut expected: Vec<SeatId> = Vec::new();
        for _ in 0..21 {
            let seats = &plan.venue.seats;
            let taken: Vec<usize> = (0..seats.len())
                .filter(|&i| expected.iter().any(|s| s.as_str() == seats[i].id))
                .collect();
            let grant = best_available(
                &plan.venue,
                |i| !taken.contains(&i),
                &best_of(&plan, 2).request,
            )
            .unwrap();
            expected.extend(grant.seats.iter().map(|&i| SeatId::named(&seats[i].id)));
        }
        given.sort();
        expected.sort();
        assert_eq!(given, expected);
        assert_eq!(held_seats(&board).await, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_batching_on_one_event_never_give_a_seat_twice() {
        let prefix = format!("{}:", unique_name("batch"));
        let (Some(one), Some(other)) = (board_at(&prefix).await, board_at(&prefix).await) else {
            return;
        };
        let plan = plan();
        let buyers: Vec<_> = (0..24)
            .map(|n| {
                let board = if n % 2 == 0 {
                    one.clone()
                } else {
                    other.clone()
                };
                let plan = plan.clone();
                tokio::spawn(async move {
                    let request = request(&format!("b{n}"), 1);
                    loop {
                        let granted = board.take_best(&request, &best_of(&plan, 2)).await.unwrap();
                        match granted.taken {
                            Taken::Held { .. } => return granted.seat_ids,
                            // The other process took the region first: ask again.
                            Taken::Conflicts(_) => continue,
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                })
            })
            .collect();
        let mut given: Vec<SeatId> = Vec::new();
        for buyer in buyers {
            let seats = buyer.await.unwrap();
            assert_eq!(seats.len(), 2);
            given.extend(seats);
        }
        given.sort();
        let before = given.len();
        given.dedup();
        assert_eq!(given.len(), before, "a seat given twice");
        assert_eq!(held_seats(&one).await, given);
    }

    #[tokio::test]
    async fn buyers_left_waiting_by_a_worker_that_ended_search_alone() {
        let plan = plan();
        let (answer, answered) = oneshot::channel();
        let queue = Arc::new(Mutex::new(Queue {
            waiting: VecDeque::from([Waiting {
                answer,
                ..buyer("u1", 1, &plan)
            }]),
            working: true,
        }));
        drop(Stopped(queue.clone()));
        assert_eq!(answered.await, Ok(None), "told to search alone");
        assert!(!lock(&queue).working, "the next buyer starts a worker");
    }

    #[tokio::test]
    async fn a_board_moved_past_the_view_holds_nothing() {
        let Some(board) = board().await else { return };
        let plan = plan();
        let version = board.version(&EVENT.into()).await.unwrap();
        let chosen = [(buyer("u1", 1, &plan), seats(&["s-A-30", "s-A-31"]))];
        assert_eq!(grant(&board, version - 1, &chosen).await, ["moved"]);
        assert!(held_seats(&board).await.is_empty());
        let answer = grant(&board, version, &chosen).await;
        assert_eq!(answer[0], "held");
        assert_eq!(held_seats(&board).await, seats(&["s-A-30", "s-A-31"]));
    }

    #[tokio::test]
    async fn a_seat_taken_after_all_stops_the_batch_there() {
        let Some(board) = board().await else { return };
        let plan = plan();
        let version = board.version(&EVENT.into()).await.unwrap();
        let chosen = [
            (buyer("u1", 1, &plan), seats(&["s-A-30", "s-A-31"])),
            (buyer("u2", 1, &plan), seats(&["s-A-31", "s-A-32"])),
            (buyer("u3", 1, &plan), seats(&["s-A-40", "s-A-41"])),
        ];
        let answer = grant(&board, version, &chosen).await;
        assert_eq!(answer.len(), 5, "{answer:?}");
        assert_eq!((answer[0].as_str(), answer[4].as_str()), ("held", "moved"));
        assert_eq!(held_seats(&board).await, seats(&["s-A-30", "s-A-31"]));
    }

    #[tokio::test]
    async fn a_buyer_with_every_slot_taken_stops_the_batch_there() {
        let Some(board) = board().await else { return };
        let plan = plan();
        let version = board.version(&EVENT.into()).await.unwrap();
        let chosen = [(buyer("u1", 1, &plan), seats(&["s-A-30", "s-A-31"]))];
        assert_eq!(grant(&board, version, &chosen).await[0], "held");
        let chosen = [
            (buyer("u1", 1, &plan), seats(&["s-A-28", "s-A-29"])),
            (buyer("u2", 1, &plan), seats(&["s-A-32", "s-A-33"])),
        ];
        assert_eq!(grant(&board, version + 1, &chosen).await, ["full"]);
        assert_eq!(held_seats(&board).await, seats(&["s-A-30", "s-A-31"]));
    }
}
