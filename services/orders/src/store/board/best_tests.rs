//! Best available on every [`SeatBoard`] adapter: each grant, taken one at a time, is the one
//! the reference search (`holdfast_common::venue::best_available`, itself checked against a
//! brute-force oracle) gives for the board as it stands; and 200 concurrent buyers fill a
//! section without sharing a seat, each grant side by side, until it is sold out.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use holdfast_common::venue::{BestRequest, VenueSeat, VenueSpec, best_available};
use serde_json::json;

use super::tests::{memory, redis, redis_at};
use super::*;
use crate::domain::seat::VenuePlan;
use crate::store::SoldSeats;

const EVENT: &str = "0123456789abcdef0123beef";

fn take_request(event: &EventId, user: &str) -> TakeRequest {
    TakeRequest {
        hold_id: HoldId::new(false),
        user_id: user.into(),
        event_id: event.clone(),
        seat_ids: Vec::new(),
        ttl: Duration::from_secs(60),
        max_holds: 1,
        layout_version: 0,
    }
}

/// A random small venue: two sections of rows with aisles, some wheelchair spaces with a
/// companion, two categories.
fn random_venue(rng: &mut fastrand::Rng) -> Arc<VenuePlan> {
    let sections: Vec<_> = (0..2)
        .map(|s| {
            let rows: Vec<_> = (0..rng.usize(1..4))
                .map(|r| {
                    let left = rng.usize(1..6);
                    let right = rng.usize(1..8);
                    let mut row = json!({
                        "label": format!("R{r}"),
                        "seats": format!("1-{left} | {}-{}", left + 1, left + right),
                    });
                    if right >= 2 && rng.bool() {
                        row["overrides"] = json!([
                            {"seat": format!("{}", left + 1), "wheelchair": true},
                            {"seat": format!("{}", left + 2), "companionOf": format!("{}", left + 1)}
                        ]);
                    }
                    if rng.bool() {
                        row["category"] = json!("b");
                    }
                    row
                })
                .collect();
            json!({"key": format!("s{s}"), "name": "S", "category": "a", "rows": rows})
        })
        .collect();
    let spec: VenueSpec = serde_json::from_value(json!({
        "categories": [{"key": "a", "name": "A", "price": 10}, {"key": "b", "name": "B", "price": 5}],
        "sections": sections
    }))
    .unwrap();
    Arc::new(VenuePlan::new(spec.expand().unwrap()))
}

fn random_request(rng: &mut fastrand::Rng) -> BestRequest {
    BestRequest {
        count: rng.usize(1..5),
        category: rng.bool().then(|| rng.usize(0..2)),
        section: (rng.u8(0..4) == 0).then(|| rng.usize(0..2)),
        accessible: rng.u8(0..5) == 0,
        allow_split: rng.u8(0..4) == 0,
    }
}

async fn taken_now(board: &dyn SeatBoard, event: &EventId) -> HashSet<SeatId> {
    let snapshot = board.snapshot(event).await.unwrap().unwrap();
    snapshot.held.into_iter().chain(snapshot.sold).collect()
}

async fn each_grant_is_the_best_for_the_board_as_it_stands(board: Arc<dyn SeatBoard>) {
    let mut rng = fastrand::Rng::with_seed(26);
    for venue_number in 0..30 {
        let plan = random_venue(&mut rng);
        // Each venue on an event of its own.
        let event = EventId::from(format!("0123456789abcdef0123{venue_number:04}").as_str());
        board.load_sold(&event, &SoldSeats::new()).await.unwrap();
        let mut users = 0;
        let mut misses = 0;
        while misses < 12 {
            let request = random_request(&mut rng);
            let taken = taken_now(board.as_ref(), &event).await;
            let seats = &plan.venue.seats;
            let expected = best_available(
                &plan.venue,
                |i| !taken.contains(seats[i].id.as_str()),
                &request,
            );
            users += 1;
            let best = BestTake {
                plan: plan.clone(),
                request: request.clone(),
            };
            let granted = board
                .take_best(&take_request(&event, &format!("u{users}")), &best)
                .await
                .unwrap();
            match expected {
                Some(grant) => {
                    let ids: Vec<SeatId> = grant
                        .seats
                        .iter()
                        .map(|&i| SeatId::named(&seats[i].id))
                        .collect();
                    assert_eq!(granted.seat_ids, ids, "venue {venue_number}, {request:?}");
                    assert_eq!(granted.split, grant.split);
                    assert!(matches!(granted.taken, Taken::Held { .. }));
                }
                None => {
                    assert_eq!(
                        granted.taken,
                        Taken::NoFit,
                        "venue {venue_number}, {request:?}"
                    );
                    misses += 1;
                }
            }
        }
    }
}

async fn two_hundred_buyers_fill_a_section_without_sharing_a_seat(board: Arc<dyn SeatBoard>) {
    let rows: Vec<_> = (0..12)
        .map(|r| json!({"label": format!("R{r}"), "seats": "1-7 | 8-17 | 18-24"}))
        .collect();
    let spec: VenueSpec = serde_json::from_value(json!({
        "categories": [{"key": "a", "name": "A", "price": 10}],
        "sections": [
            {"key": "main", "name": "Main", "category": "a", "rows": rows},
            {"key": "other", "name": "Other", "category": "a",
             "rows": [{"label": "A", "seats": "1-10"}]}
        ]
    }))
    .unwrap();
    let plan = Arc::new(VenuePlan::new(spec.expand().unwrap()));
    board
        .load_sold(&EVENT.into(), &SoldSeats::new())
        .await
        .unwrap();
    let buyers = (0..200).map(|buyer| {
        let board = board.clone();
        let plan = plan.clone();
        tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(buyer);
            let mut grants: Vec<(Vec<SeatId>, bool)> = Vec::new();
            let mut count = rng.usize(1..5);
            for attempt in 0.. {
                let best = BestTake {
                    plan: plan.clone(),
                    request: BestRequest {
                        count,
                        section: Some(0),
                        ..BestRequest::default()
                    },
                };
                let user = format!("b{buyer}-{attempt}");
                let granted = board
                    .take_best(&take_request(&EVENT.into(), &user), &best)
                    .await
                    .unwrap();
                match granted.taken {
                    Taken::Held { .. } => {
                        grants.push((granted.seat_ids, granted.split));
                        count = rng.usize(1..5);
                    }
                    Taken::NoFit if count == 1 => break,
                    Taken::NoFit => count -= 1,
                    // Others took the region first: look again.
                    Taken::Conflicts(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            grants
        })
    });
    let mut all: Vec<SeatId> = Vec::new();
    for buyer in buyers {
        for (seats, split) in buyer.await.unwrap() {
            assert!(!split);
            let places: Vec<&VenueSeat> = seats.iter().map(|s| plan.seat(s).unwrap()).collect();
            assert!(
                places
                    .windows(2)
                    .all(|w| w[0].block == w[1].block && w[0].position + 1 == w[1].position),
                "not side by side: {seats:?}"
            );
            all.extend(seats);
        }
    }
    let distinct: HashSet<&SeatId> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a seat in two holds");
    let main: HashSet<SeatId> = plan
        .venue
        .seats
        .iter()
        .filter(|s| s.section == 0)
        .map(|s| SeatId::named(&s.id))
        .collect();
    assert_eq!(distinct.len(), main.len(), "the section is sold out");
    assert!(
        all.iter().all(|s| main.contains(s)),
        "only the section asked for"
    );
}

/// One block of 2,500 seats: more than one slice of the script's reads.
async fn a_block_longer_than_a_read_slice_is_searched_whole(board: Arc<dyn SeatBoard>) {
    let spec: VenueSpec = serde_json::from_value(json!({
        "categories": [{"key": "a", "name": "A", "price": 10}],
        "sections": [{"key": "s", "name": "S", "category": "a",
                      "rows": [{"label": "A", "seats": "1-2500"}]}]
    }))
    .unwrap();
    let plan = Arc::new(VenuePlan::new(spec.expand().unwrap()));
    let event = EventId::from("0123456789abcdef01232500");
    board.load_sold(&event, &SoldSeats::new()).await.unwrap();
    for user in 0..3 {
        let taken = taken_now(board.as_ref(), &event).await;
        let request = BestRequest {
            count: 3,
            ..BestRequest::default()
        };
        let seats = &plan.venue.seats;
        let expected = best_available(
            &plan.venue,
            |i| !taken.contains(seats[i].id.as_str()),
            &request,
        )
        .unwrap();
        let granted = board
            .take_best(
                &take_request(&event, &format!("long{user}")),
                &BestTake {
                    plan: plan.clone(),
                    request,
                },
            )
            .await
            .unwrap();
        let ids: Vec<SeatId> = expected
            .seats
            .iter()
            .map(|&i| SeatId::named(&seats[i].id))
            .collect();
        assert_eq!(granted.seat_ids, ids);
    }
    // The third grant sits beyond the first slice's end (seat 1000).
    let taken = taken_now(board.as_ref(), &event).await;
    assert!(taken.contains(&SeatId::from("s-A-1252")), "{taken:?}");
}

macro_rules! best_suite {
    ($adapter:ident, $make:expr) => {
        mod $adapter {
            use super::*;

            #[tokio::test]
            async fn each_grant_is_the_best_for_the_board_as_it_stands() {
                if let Some(board) = $make.await {
                    super::each_grant_is_the_best_for_the_board_as_it_stands(board).await
                }
            }
            #[tokio::test]
            async fn a_block_longer_than_a_read_slice_is_searched_whole() {
                if let Some(board) = $make.await {
                    super::a_block_longer_than_a_read_slice_is_searched_whole(board).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn two_hundred_buyers_fill_a_section_without_sharing_a_seat() {
                if let Some(board) = $make.await {
                    super::two_hundred_buyers_fill_a_section_without_sharing_a_seat(board).await
                }
            }
        }
    };
}

best_suite!(memory_adapter, memory());
best_suite!(redis_adapter, redis());
best_suite!(redis_cluster_adapter, redis_at("REDIS_CLUSTER_URLS"));
