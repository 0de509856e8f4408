//! The contract every [`SeatBoard`] adapter must meet, run once per adapter.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use holdfast_common::testing::{redis_store, unique_name};

use super::*;
use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::store::SoldSeats;

const EVENT: &str = "0123456789abcdef01234567";

fn seats(ids: &[&str]) -> Vec<SeatId> {
    ids.iter().map(|s| SeatId::from(*s)).collect()
}

/// The test event.
fn event() -> EventId {
    EVENT.into()
}

fn request(hold_id: &str, user: &str, ids: &[&str], ttl_ms: u64) -> TakeRequest {
    TakeRequest {
        hold_id: hold_id.into(),
        user_id: user.into(),
        event_id: EVENT.into(),
        seat_ids: seats(ids),
        ttl: Duration::from_millis(ttl_ms),
        max_holds: 2,
        layout_version: 0,
    }
}

fn keys_of(request: &TakeRequest, taken: &Taken) -> HoldKeys {
    let Taken::Held { slot, .. } = taken else {
        panic!("not taken: {taken:?}")
    };
    HoldKeys {
        hold_id: request.hold_id.clone(),
        user_id: request.user_id.clone(),
        event_id: request.event_id.clone(),
        seat_ids: request.seat_ids.clone(),
        slot: *slot,
    }
}

async fn take(board: &dyn SeatBoard, request: &TakeRequest) -> HoldKeys {
    let taken = board.take(request).await.unwrap();
    keys_of(request, &taken)
}

async fn snapshot(board: &dyn SeatBoard) -> (u64, HashSet<SeatId>, HashSet<SeatId>) {
    let s = board
        .snapshot(&event())
        .await
        .unwrap()
        .expect("sold seats known");
    (
        s.version,
        s.held.into_iter().collect(),
        s.sold.into_iter().collect(),
    )
}

/// `ids` sold to `order`.
fn sales(order: &str, ids: &[&str]) -> SoldSeats {
    ids.iter()
        .map(|s| (SeatId::from(*s), OrderId::from(order)))
        .collect()
}

fn set(ids: &[&str]) -> HashSet<SeatId> {
    ids.iter().map(|s| SeatId::from(*s)).collect()
}

async fn holds_wait_for_the_sold_seats_then_are_all_or_nothing(board: Arc<dyn SeatBoard>) {
    let first = request("h1", "u1", &["R1-S1", "R1-S2"], 60_000);
    assert_eq!(board.take(&first).await.unwrap(), Taken::SoldUnknown);
    assert_eq!(board.snapshot(&event()).await.unwrap(), None);
    board
        .load_sold(&event(), &sales("o0", &["R1-S9"]))
        .await
        .unwrap();
    let (v0, held, sold) = snapshot(&*board).await;
    assert_eq!((held, sold), (set(&[]), set(&["R1-S9"])));

    let h1 = take(&*board, &first).await;
    assert!(board.is_intact(&h1).await.unwrap());
    let (v1, held, _) = snapshot(&*board).await;
    assert!(v1 > v0, "a hold bumps the version");
    assert_eq!(held, set(&["R1-S1", "R1-S2"]));

    // Held and sold seats conflict; nothing of the request is taken.
    let rival = request("h2", "u2", &["R1-S2", "R1-S3", "R1-S9"], 60_000);
    match board.take(&rival).await.unwrap() {
        Taken::Conflicts(mut c) => {
            c.sort();
            assert_eq!(c, seats(&["R1-S2", "R1-S9"]));
        }
        other => panic!("{other:?}"),
    }
    let (v2, held, _) = snapshot(&*board).await;
    assert_eq!(v2, v1, "a refused hold changes nothing");
    assert_eq!(held, set(&["R1-S1", "R1-S2"]));
    assert_eq!(board.version(&event()).await.unwrap(), v1);
}

async fn release_and_sale_free_the_hold_and_bump_the_version(board: Arc<dyn SeatBoard>) {
    board.load_sold(&event(), &SoldSeats::new()).await.unwrap();
    let r1 = request("h1", "u1", &["R1-S1"], 60_000);
    let h1 = take(&*board, &r1).await;
    let r2 = request("h2", "u2", &["R2-S1", "R2-S2"], 60_000);
    let h2 = take(&*board, &r2).await;
    let (v0, _, _) = snapshot(&*board).await;

    // Someone else's hold id frees nothing.
    let mut impostor = h1.clone();
    impostor.hold_id = "h9".into();
    board.release(&impostor).await.unwrap();
    assert_eq!(snapshot(&*board).await.0, v0);

    board.release(&h1).await.unwrap();
    let (v1, held, _) = snapshot(&*board).await;
    assert!(v1 > v0);
    assert_eq!(held, set(&["R2-S1", "R2-S2"]));
    assert!(!board.is_intact(&h1).await.unwrap());

    board.sell(&h2, &"o2".into()).await.unwrap();
    let (v2, held, sold) = snapshot(&*board).await;
    assert!(v2 > v1);
    assert_eq!((held, sold), (set(&[]), set(&["R2-S1", "R2-S2"])));
    let again = request("h3", "u3", &["R2-S2"], 60_000);
    assert_eq!(
        board.take(&again).await.unwrap(),
        Taken::Conflicts(seats(&["R2-S2"]))
    );
    // The seat freed by the release can be held again.
    take(&*board, &request("h4", "u3", &["R1-S1"], 60_000)).await;
}

async fn expired_holds_never_show_and_are_announced_once(board: Arc<dyn SeatBoard>) {
    board.load_sold(&event(), &SoldSeats::new()).await.unwrap();
    let mut expirations = board.expirations();
    let short = request("h1", "u1", &["R1-S1", "R1-S2"], 150);
    take(&*board, &short).await;
    let long = request("h2", "u2", &["R1-S3"], 60_000);
    take(&*board, &long).await;
    let (v0, _, _) = snapshot(&*board).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (v1, held, _) = snapshot(&*board).await;
    assert_eq!(
        held,
        set(&["R1-S3"]),
        "the expired hold is gone from the map"
    );
    assert!(v1 > v0, "an expiry bumps the version");
    let expired = tokio::time::timeout(Duration::from_secs(2), expirations.recv())
        .await
        .expect("an expiration")
        .unwrap();
    let mut expired_seats = expired.seat_ids.clone();
    expired_seats.sort();
    assert_eq!(
        (
            expired.hold_id.as_str(),
            expired.user_id.as_str(),
            expired_seats
        ),
        ("h1", "u1", seats(&["R1-S1", "R1-S2"]))
    );
    board.sweep(&event()).await.unwrap();
    assert!(
        expirations.try_recv().is_err(),
        "each expiry is announced once"
    );
    assert_eq!(board.version(&event()).await.unwrap(), v1);
    // The seats and the holder's slot are free again.
    take(&*board, &request("h3", "u1", &["R1-S1"], 60_000)).await;
}

async fn extending_keeps_the_hold_past_its_first_expiry(board: Arc<dyn SeatBoard>) {
    board.load_sold(&event(), &SoldSeats::new()).await.unwrap();
    let r = request("h1", "u1", &["R1-S1"], 200);
    let h = take(&*board, &r).await;
    let until = board
        .extend(&h, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("extended");
    assert!(until > crate::domain::now_millis() + 50_000);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(board.is_intact(&h).await.unwrap());
    assert_eq!(snapshot(&*board).await.1, set(&["R1-S1"]));
    board.release(&h).await.unwrap();
    assert_eq!(
        board.extend(&h, Duration::from_secs(60)).await.unwrap(),
        None
    );
}

async fn a_user_holds_at_most_the_cap(board: Arc<dyn SeatBoard>) {
    board.load_sold(&event(), &SoldSeats::new()).await.unwrap();
    let h1 = take(&*board, &request("h1", "u1", &["R1-S1"], 60_000)).await;
    take(&*board, &request("h2", "u1", &["R1-S2"], 60_000)).await;
    assert_eq!(
        board
            .take(&request("h3", "u1", &["R1-S3"], 60_000))
            .await
            .unwrap(),
        Taken::TooManyHolds
    );
    take(&*board, &request("h4", "u2", &["R1-S3"], 60_000)).await;
    board.release(&h1).await.unwrap();
    take(&*board, &request("h5", "u1", &["R1-S4"], 60_000)).await;
}

async fn changes_arrive_in_version_order(board: Arc<dyn SeatBoard>) {
    board.load_sold(&event(), &SoldSeats::new()).await.unwrap();
    let mut changes = board.changes();
    // On Redis the subscription is opened in the background: wait until it delivers.
    let mut n = 0;
    let first = loop {
        n += 1;
        let h = take(
            &*board,
            &request(&format!("w{n}"), "warm", &["R9-S1"], 60_000),
        )
        .await;
        board.release(&h).await.unwrap();
        if let Ok(Ok(news)) = tokio::time::timeout(Duration::from_millis(200), changes.recv()).await
        {
            break news;
        }
        assert!(n < 50, "no change ever arrived");
    };
    let SeatNews::Changed(first) = &*first else {
        panic!("{first:?}")
    };
    let h = take(&*board, &request("h1", "u1", &["R1-S1", "R1-S2"], 60_000)).await;
    board.sell(&h, &"o1".into()).await.unwrap();
    let mut seen = vec![first.clone()];
    while seen.last().map(|d| d.changes.clone())
        != Some(vec![
            (SeatId::from("R1-S1"), SeatState::Sold),
            (SeatId::from("R1-S2"), SeatState::Sold),
        ])
    {
        let news = tokio::time::timeout(Duration::from_secs(2), changes.recv())
            .await
            .expect("the sale's change")
            .unwrap();
        if let SeatNews::Changed(delta) = &*news {
            seen.push(delta.clone());
        }
    }
    assert!(
        seen.windows(2).all(|w| w[1].version == w[0].version + 1),
        "consecutive versions: {seen:?}"
    );
    let held = &seen[seen.len() - 2];
    assert_eq!(
        held.changes,
        vec![
            (SeatId::from("R1-S1"), SeatState::Held),
            (SeatId::from("R1-S2"), SeatState::Held)
        ]
    );
    assert_eq!(
        snapshot(&*board).await.0,
        seen.last().map(|d| d.version).unwrap()
    );
}

async fn a_layout_lock_waits_for_no_holds_and_stops_new_ones(board: Arc<dyn SeatBoard>) {
    board.load_sold(&event(), &SoldSeats::new()).await.unwrap();
    let v0 = board.layout_version(&event()).await.unwrap();
    let h1 = take(&*board, &request("h1", "u1", &["R1-S1"], 60_000)).await;
    let minute = Duration::from_secs(60);
    assert_eq!(
        board.lock_layout(&event(), "t1", minute).await.unwrap(),
        LayoutLock::SeatsHeld(1)
    );
    board.release(&h1).await.unwrap();
    assert_eq!(
        board.lock_layout(&event(), "t1", minute).await.unwrap(),
        LayoutLock::Locked
    );
    assert_eq!(
        board.lock_layout(&event(), "t2", minute).await.unwrap(),
        LayoutLock::Busy
    );
    let mut r2 = request("h2", "u2", &["R1-S2"], 60_000);
    assert_eq!(board.take(&r2).await.unwrap(), Taken::LayoutLocked);
    // Another change's token does not release the lock, but still makes old layouts stale.
    board.unlock_layout(&event(), "t2").await.unwrap();
    assert_eq!(board.take(&r2).await.unwrap(), Taken::LayoutLocked);
    board.unlock_layout(&event(), "t1").await.unwrap();
    let v1 = board.layout_version(&event()).await.unwrap();
    assert!(v1 > v0, "releasing the lock bumps the layout version");
    // Seats checked against the old layout are refused; against the new one they are held.
    assert_eq!(board.take(&r2).await.unwrap(), Taken::StaleLayout);
    r2.layout_version = v1;
    take(&*board, &r2).await;
}

/// The two interleavings a purchase must survive: its hold running out between the checks and
/// the commit, and a layout change whose lock ran out before it was written.
async fn a_claim_keeps_the_hold_alive_but_not_across_a_layout_change(board: Arc<dyn SeatBoard>) {
    board.load_sold(&event(), &SoldSeats::new()).await.unwrap();
    let h1 = take(&*board, &request("h1", "u1", &["R1-S1"], 200)).await;
    let Claim::Claimed { expires_at_ms } =
        board.claim(&h1, 0, Duration::from_secs(5)).await.unwrap()
    else {
        panic!("an intact hold is claimed")
    };
    assert!(expires_at_ms > crate::domain::now_millis() + 4_000);
    // A shorter claim never shortens the hold.
    assert_eq!(
        board.claim(&h1, 0, Duration::from_millis(1)).await.unwrap(),
        Claim::Claimed { expires_at_ms }
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        board.is_intact(&h1).await.unwrap(),
        "claimed past its first expiry"
    );
    assert_eq!(
        board
            .take(&request("rival", "u2", &["R1-S1"], 60_000))
            .await
            .unwrap(),
        Taken::Conflicts(seats(&["R1-S1"]))
    );
    board.release(&h1).await.unwrap();
    assert_eq!(
        board.claim(&h1, 0, Duration::from_secs(5)).await.unwrap(),
        Claim::Gone
    );

    // A lock that ran out before its change was written lets a hold in with the old layout...
    assert_eq!(
        board
            .lock_layout(&event(), "slow", Duration::from_millis(50))
            .await
            .unwrap(),
        LayoutLock::Locked
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    let h2 = take(&*board, &request("h2", "u2", &["R1-S2"], 60_000)).await;
    // ...but once the change is done, that hold can no longer be bought.
    board.unlock_layout(&event(), "slow").await.unwrap();
    assert_eq!(
        board.claim(&h2, 0, Duration::from_secs(5)).await.unwrap(),
        Claim::StaleLayout
    );
}

/// A cancellation heard late (its seat bought again since by another order) leaves the new sale
/// alone; repeating it changes nothing.
async fn a_cancellation_never_unsells_a_seat_sold_again(board: Arc<dyn SeatBoard>) {
    board.load_sold(&event(), &SoldSeats::new()).await.unwrap();
    let h1 = take(&*board, &request("h1", "u1", &["R1-S1", "R1-S2"], 60_000)).await;
    board.sell(&h1, &"o1".into()).await.unwrap();
    // The cancelling process gives R1-S2 back...
    board
        .unsell(&event(), &"o1".into(), &seats(&["R1-S2"]))
        .await
        .unwrap();
    let (v1, _, sold) = snapshot(&*board).await;
    assert_eq!(sold, set(&["R1-S1"]));
    // ...someone buys it...
    let h2 = take(&*board, &request("h2", "u2", &["R1-S2"], 60_000)).await;
    board.sell(&h2, &"o2".into()).await.unwrap();
    // ...and the cancellation, heard again from the bus, must not undo that sale.
    board
        .unsell(&event(), &"o1".into(), &seats(&["R1-S2"]))
        .await
        .unwrap();
    let (v2, _, sold) = snapshot(&*board).await;
    assert_eq!(sold, set(&["R1-S1", "R1-S2"]));
    assert!(v2 > v1);
    assert_eq!(
        board
            .take(&request("h3", "u3", &["R1-S2"], 60_000))
            .await
            .unwrap(),
        Taken::Conflicts(seats(&["R1-S2"]))
    );
    // A purchase settling after its own cancellation does not put the seat back either.
    board
        .unsell(&event(), &"o3".into(), &seats(&["R1-S3"]))
        .await
        .unwrap();
    let h3 = take(&*board, &request("h3", "u3", &["R1-S3"], 60_000)).await;
    board.sell(&h3, &"o3".into()).await.unwrap();
    assert_eq!(snapshot(&*board).await.2, set(&["R1-S1", "R1-S2"]));
}

/// A cold board loads the sold seats the order store had before a cancellation committed and
/// hears the cancellation first: the cancelled seat is not left stuck as sold.
async fn a_load_read_before_a_cancellation_does_not_bring_its_seat_back(board: Arc<dyn SeatBoard>) {
    // The loader read the store: R1-S1 and R1-S2 sold to o1. Then o1's R1-S2 was cancelled
    // and the cancellation reached the (still cold) board before the load did.
    let read_before = sales("o1", &["R1-S1", "R1-S2"]);
    board
        .unsell(&event(), &"o1".into(), &seats(&["R1-S2"]))
        .await
        .unwrap();
    assert!(
        board.snapshot(&event()).await.unwrap().is_none(),
        "still cold"
    );
    board.load_sold(&event(), &read_before).await.unwrap();
    let (_, _, sold) = snapshot(&*board).await;
    assert_eq!(sold, set(&["R1-S1"]));
    take(&*board, &request("h1", "u1", &["R1-S2"], 60_000)).await;
    // Seats found sold elsewhere are marked the same way.
    board
        .mark_sold(&event(), &sales("o1", &["R1-S2", "R1-S3"]))
        .await
        .unwrap();
    assert_eq!(snapshot(&*board).await.2, set(&["R1-S1", "R1-S3"]));
}

/// The keys of `hold` with `ids` as its seats.
fn with_seats(hold: &HoldKeys, ids: &[&str]) -> HoldKeys {
    HoldKeys {
        seat_ids: seats(ids),
        ..hold.clone()
    }
}

async fn a_hold_changes_all_or_nothing_and_keeps_its_other_seats(board: Arc<dyn SeatBoard>) {
    board.load_sold(&event(), &SoldSeats::new()).await.unwrap();
    let mine = take(
        board.as_ref(),
        &request("h1", "u1", &["R1-S1", "R1-S2"], 60_000),
    )
    .await;
    take(board.as_ref(), &request("h2", "u2", &["R1-S5"], 60_000)).await;
    let (before, _, _) = snapshot(board.as_ref()).await;
    // A seat to add that is taken: nothing changes, not even the seat to free.
    assert_eq!(
        board
            .change(&mine, &seats(&["R1-S3", "R1-S5"]), &seats(&["R1-S1"]))
            .await
            .unwrap(),
        Changed::Conflicts(seats(&["R1-S5"]))
    );
    let (version, held, _) = snapshot(board.as_ref()).await;
    assert_eq!(version, before);
    assert_eq!(held, set(&["R1-S1", "R1-S2", "R1-S5"]));
    // A swap: S1 for S3, S2 kept, in one version.
    let Changed::Done { version } = board
        .change(&mine, &seats(&["R1-S3"]), &seats(&["R1-S1"]))
        .await
        .unwrap()
    else {
        panic!("not changed")
    };
    assert_eq!(version, before + 1);
    let (_, held, _) = snapshot(board.as_ref()).await;
    assert_eq!(held, set(&["R1-S2", "R1-S3", "R1-S5"]));
    let changed = with_seats(&mine, &["R1-S2", "R1-S3"]);
    assert!(board.is_intact(&changed).await.unwrap());
    assert!(!board.is_intact(&mine).await.unwrap());
    // The added seat lives as long as the hold: extending and releasing act on all of it.
    assert!(
        board
            .extend(&changed, Duration::from_secs(120))
            .await
            .unwrap()
            .is_some()
    );
    // A hold that is gone changes nothing.
    assert_eq!(
        board.change(&mine, &seats(&["R1-S4"]), &[]).await.unwrap(),
        Changed::Gone
    );
    board.release(&changed).await.unwrap();
    let (_, held, _) = snapshot(board.as_ref()).await;
    assert_eq!(held, set(&["R1-S5"]));
}

/// A holder swapping a seat while others grab at the seat wanted and the seats kept: either
/// the swap happens or the hold stays as it was; a kept seat is never anyone else's.
async fn a_swap_racing_other_buyers_never_loses_a_kept_seat(board: Arc<dyn SeatBoard>) {
    board.load_sold(&event(), &SoldSeats::new()).await.unwrap();
    for round in 0..40 {
        let (kept, old, new) = (
            format!("R{round}-S1"),
            format!("R{round}-S2"),
            format!("R{round}-S3"),
        );
        let mine = take(
            board.as_ref(),
            &request(
                &format!("h{round}"),
                &format!("holder{round}"),
                &[&kept, &old],
                60_000,
            ),
        )
        .await;
        let swap = {
            let (board, mine, old, new) = (board.clone(), mine.clone(), old.clone(), new.clone());
            tokio::spawn(async move {
                board
                    .change(&mine, &seats(&[&new]), &seats(&[&old]))
                    .await
                    .unwrap()
            })
        };
        let grabs: Vec<_> = (0..8)
            .map(|n| {
                let board = board.clone();
                let wanted = [&new, &kept, &old][n % 3].clone();
                tokio::spawn(async move {
                    let grab = request(
                        &format!("g{round}-{n}"),
                        &format!("g{round}-{n}"),
                        &[&wanted],
                        60_000,
                    );
                    matches!(board.take(&grab).await.unwrap(), Taken::Held { .. }).then_some(wanted)
                })
            })
            .collect();
        let swapped = swap.await.unwrap();
        let mut grabbed = Vec::new();
        for grab in grabs {
            grabbed.extend(grab.await.unwrap());
        }
        assert!(
            !grabbed.contains(&kept),
            "round {round}: a kept seat was taken"
        );
        match swapped {
            Changed::Done { .. } => {
                assert!(
                    board
                        .is_intact(&with_seats(&mine, &[&kept, &new]))
                        .await
                        .unwrap()
                );
                assert!(
                    !grabbed.contains(&new),
                    "round {round}: the new seat is in two holds"
                );
            }
            Changed::Conflicts(_) => {
                assert!(
                    board.is_intact(&mine).await.unwrap(),
                    "round {round}: hold lost"
                );
                assert!(grabbed.contains(&new));
                assert!(!grabbed.contains(&old));
            }
            Changed::Gone => panic!("round {round}: the hold went"),
        }
    }
}

macro_rules! contract_suite {
    ($adapter:ident, $make:expr) => {
        mod $adapter {
            use super::*;

            #[tokio::test]
            async fn holds_wait_for_the_sold_seats_then_are_all_or_nothing() {
                if let Some(board) = $make.await {
                    super::holds_wait_for_the_sold_seats_then_are_all_or_nothing(board).await
                }
            }
            #[tokio::test]
            async fn release_and_sale_free_the_hold_and_bump_the_version() {
                if let Some(board) = $make.await {
                    super::release_and_sale_free_the_hold_and_bump_the_version(board).await
                }
            }
            #[tokio::test]
            async fn expired_holds_never_show_and_are_announced_once() {
                if let Some(board) = $make.await {
                    super::expired_holds_never_show_and_are_announced_once(board).await
                }
            }
            #[tokio::test]
            async fn extending_keeps_the_hold_past_its_first_expiry() {
                if let Some(board) = $make.await {
                    super::extending_keeps_the_hold_past_its_first_expiry(board).await
                }
            }
            #[tokio::test]
            async fn a_user_holds_at_most_the_cap() {
                if let Some(board) = $make.await {
                    super::a_user_holds_at_most_the_cap(board).await
                }
            }
            #[tokio::test]
            async fn a_layout_lock_waits_for_no_holds_and_stops_new_ones() {
                if let Some(board) = $make.await {
                    super::a_layout_lock_waits_for_no_holds_and_stops_new_ones(board).await
                }
            }
            #[tokio::test]
            async fn a_claim_keeps_the_hold_alive_but_not_across_a_layout_change() {
                if let Some(board) = $make.await {
                    super::a_claim_keeps_the_hold_alive_but_not_across_a_layout_change(board).await
                }
            }
            #[tokio::test]
            async fn a_cancellation_never_unsells_a_seat_sold_again() {
                if let Some(board) = $make.await {
                    super::a_cancellation_never_unsells_a_seat_sold_again(board).await
                }
            }
            #[tokio::test]
            async fn a_load_read_before_a_cancellation_does_not_bring_its_seat_back() {
                if let Some(board) = $make.await {
                    super::a_load_read_before_a_cancellation_does_not_bring_its_seat_back(board)
                        .await
                }
            }
            #[tokio::test]
            async fn a_hold_changes_all_or_nothing_and_keeps_its_other_seats() {
                if let Some(board) = $make.await {
                    super::a_hold_changes_all_or_nothing_and_keeps_its_other_seats(board).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_swap_racing_other_buyers_never_loses_a_kept_seat() {
                if let Some(board) = $make.await {
                    super::a_swap_racing_other_buyers_never_loses_a_kept_seat(board).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn changes_arrive_in_version_order() {
                if let Some(board) = $make.await {
                    super::changes_arrive_in_version_order(board).await
                }
            }
        }
    };
}

pub(super) async fn memory() -> Option<Arc<dyn SeatBoard>> {
    Some(Arc::new(MemoryBoard::new()))
}

/// A Redis board on the server or the cluster that `var` names.
pub(super) async fn redis_at(var: &str) -> Option<Arc<dyn SeatBoard>> {
    let prefix = format!("{}:", unique_name("board"));
    let store = redis_store(var, &prefix).await?;
    Some(Arc::new(RedisBoard::new(store)))
}

pub(super) async fn redis() -> Option<Arc<dyn SeatBoard>> {
    redis_at("REDIS_URL").await
}

contract_suite!(memory_adapter, memory());
contract_suite!(redis_adapter, redis());
contract_suite!(redis_cluster_adapter, redis_at("REDIS_CLUSTER_URLS"));
