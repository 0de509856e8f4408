//! The waitlist: first come first served, one offer each, places counted in bounded work.

use super::*;

async fn the_waitlist_is_first_come_first_served_with_one_offer_each(stores: Stores) {
    let now = now_millis();
    assert!(
        stores
            .waitlist
            .join_waitlist(&entry("w1", "ann", 2, now))
            .await
            .unwrap()
    );
    assert!(
        stores
            .waitlist
            .join_waitlist(&entry("w1", "bob", 1, now + 1))
            .await
            .unwrap()
    );
    assert!(
        stores
            .waitlist
            .join_waitlist(&entry("w2", "ann", 1, now + 2))
            .await
            .unwrap()
    );
    // One entry per user and event: joining again changes nothing.
    assert!(
        !stores
            .waitlist
            .join_waitlist(&entry("w1", "ann", 4, now + 3))
            .await
            .unwrap()
    );
    let queue = stores
        .waitlist
        .next_in_line(&"w1".into(), 10, &[], 10)
        .await
        .unwrap();
    let numbered = |mut e: WaitlistEntry, seq| {
        e.seq = seq;
        e
    };
    assert_eq!(
        queue,
        vec![
            numbered(entry("w1", "ann", 2, now), 1),
            numbered(entry("w1", "bob", 1, now + 1), 2)
        ]
    );
    // Only those whose wish fits, and not those passed over.
    let fits_one = stores
        .waitlist
        .next_in_line(&"w1".into(), 1, &[], 10)
        .await
        .unwrap();
    assert_eq!(fits_one.len(), 1);
    assert_eq!(fits_one[0].user_id, "bob");
    let skip = ["ann".to_string()];
    let skipped = stores
        .waitlist
        .next_in_line(&"w1".into(), 10, &skip, 10)
        .await
        .unwrap();
    assert_eq!(skipped[0].user_id, "bob");
    let bob = stores
        .waitlist
        .waitlist_place(&"w1".into(), "bob")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((bob.position, bob.length), (2, 2));
    assert_eq!(
        stores
            .waitlist
            .waitlist_place(&"w1".into(), "cid")
            .await
            .unwrap(),
        None
    );

    let offer = Offer {
        hold_id: "h1".into(),
        until_ms: now + 60_000,
    };
    assert!(
        stores
            .waitlist
            .record_offer(&"w1".into(), "ann", &offer, None)
            .await
            .unwrap()
    );
    // An offer is made once: a second one (another process) is refused.
    let second = Offer {
        hold_id: "h2".into(),
        until_ms: now + 60_000,
    };
    assert!(
        !stores
            .waitlist
            .record_offer(&"w1".into(), "ann", &second, None)
            .await
            .unwrap()
    );
    assert!(
        !stores
            .waitlist
            .record_offer(&"w1".into(), "cid", &second, None)
            .await
            .unwrap()
    );
    let ann = stores
        .waitlist
        .waitlist_place(&"w1".into(), "ann")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.entry.offer, Some(offer));
    assert_eq!(
        stores
            .waitlist
            .end_offer(&"w1".into(), &"h2".into(), None)
            .await
            .unwrap(),
        None
    );
    let ended = stores
        .waitlist
        .end_offer(&"w1".into(), &"h1".into(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.user_id, "ann");
    let bob = stores
        .waitlist
        .waitlist_place(&"w1".into(), "bob")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((bob.position, bob.length), (1, 1));
    assert!(
        stores
            .waitlist
            .leave_waitlist(&"w1".into(), "bob", None)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        stores
            .waitlist
            .leave_waitlist(&"w1".into(), "bob", None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        stores
            .waitlist
            .waitlist_summary(&"w1".into())
            .await
            .unwrap(),
        Default::default()
    );
    assert_eq!(
        stores
            .waitlist
            .waitlist_summary(&"w2".into())
            .await
            .unwrap()
            .entries,
        1
    );
}

/// Places counted from the line's blocks agree with the queue, past the first blocks of 256,
/// as people leave from anywhere; the figures follow every join, offer and leave.
async fn places_in_a_long_line_are_counted_right(stores: Stores) {
    let now = now_millis();
    let users: Vec<String> = (0..600).map(|n| format!("u{n:03}")).collect();
    for (n, user) in users.iter().enumerate() {
        let wanted = 1 + n % 3;
        let joiner = entry("long", user, wanted, now + n as i64);
        assert!(stores.waitlist.join_waitlist(&joiner).await.unwrap());
    }
    let mut line = users.clone();
    // Some leave from the front, the middle and the back, one takes an offer that ends.
    for n in [0, 1, 255, 256, 257, 300, 511, 512, 599] {
        stores
            .waitlist
            .leave_waitlist(&"long".into(), &users[n], None)
            .await
            .unwrap();
        line.retain(|u| *u != users[n]);
    }
    let offer = Offer {
        hold_id: "offer-long".into(),
        until_ms: now - 10_000,
    };
    assert!(
        stores
            .waitlist
            .record_offer(&"long".into(), "u100", &offer, None)
            .await
            .unwrap()
    );
    let summary = stores
        .waitlist
        .waitlist_summary(&"long".into())
        .await
        .unwrap();
    assert_eq!((summary.entries, summary.offers), (line.len(), 1));
    let ended = stores
        .waitlist
        .offers_ended_before(&"long".into(), now, 10)
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert!(stores.waitlist.has_offers(&"long".into()).await.unwrap());
    stores
        .waitlist
        .end_offer(&"long".into(), &"offer-long".into(), None)
        .await
        .unwrap();
    line.retain(|u| u != "u100");
    assert!(!stores.waitlist.has_offers(&"long".into()).await.unwrap());
    for user in ["u002", "u099", "u101", "u258", "u300", "u513", "u598"] {
        let place = stores
            .waitlist
            .waitlist_place(&"long".into(), user)
            .await
            .unwrap();
        match line.iter().position(|u| u == user) {
            Some(index) => {
                let place = place.expect("on the line");
                assert_eq!(
                    (place.position, place.length),
                    (index + 1, line.len()),
                    "{user}"
                );
            }
            None => assert_eq!(place, None, "{user}"),
        }
    }
    let seats: usize = (0..600)
        .filter(|n| line.contains(&users[*n]))
        .map(|n| 1 + n % 3)
        .sum();
    assert_eq!(
        stores
            .waitlist
            .waitlist_summary(&"long".into())
            .await
            .unwrap()
            .seats,
        seats
    );
    // Wants above a lowered limit are found, first the smallest.
    let oversized = stores
        .waitlist
        .oversized_entries(&"long".into(), 2, 2)
        .await
        .unwrap();
    assert_eq!(oversized.len(), 2);
    assert!(oversized.iter().all(|e| e.seats == 3));
    // A rejoin goes to the back of the line.
    assert!(
        stores
            .waitlist
            .join_waitlist(&entry("long", "u000", 1, now + 1_000))
            .await
            .unwrap()
    );
    let back = stores
        .waitlist
        .waitlist_place(&"long".into(), "u000")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (back.position, back.length),
        (line.len() + 1, line.len() + 1)
    );
}

holdfast_common::contract_suite!(sqlite_adapter => sqlite(), mongodb_adapter => mongodb(); [
    the_waitlist_is_first_come_first_served_with_one_offer_each,
    places_in_a_long_line_are_counted_right
]);

/// The migration that made the waitlist a line numbers the entries already stored in the
/// order they were served, and counts them into blocks and lines as joins would have.
#[test]
fn the_line_migration_numbers_existing_entries_in_queue_order() {
    let migrations = SCHEMA.sqlite_migrations;
    let line_migration = migrations
        .iter()
        .position(|m| m.contains("CREATE TABLE waitlist_lines"))
        .expect("the line migration");
    let c = rusqlite::Connection::open_in_memory().unwrap();
    for migration in &migrations[..line_migration] {
        c.execute_batch(migration).unwrap();
    }
    // 300 entries on e1 stored newest first, and one on e2.
    for n in (0..300_i64).rev() {
        c.execute(
            "INSERT INTO waitlist (event_id, user_id, seats, joined_at) VALUES ('e1', ?1, 2, ?2)",
            rusqlite::params![format!("u{n:03}"), 1_000 + n],
        )
        .unwrap();
    }
    c.execute(
        "INSERT INTO waitlist (event_id, user_id, seats, joined_at) VALUES ('e2', 'x', 1, 5)",
        [],
    )
    .unwrap();
    for migration in &migrations[line_migration..] {
        c.execute_batch(migration).unwrap();
    }
    let seq_of = |user: &str| -> i64 {
        c.query_row(
            "SELECT seq FROM waitlist WHERE event_id = 'e1' AND user_id = ?1",
            [user],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!((seq_of("u000"), seq_of("u299")), (1, 300));
    let line: (i64, i64, i64) = c
        .query_row(
            "SELECT next_seq, entries, seats FROM waitlist_lines WHERE event_id = 'e1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(line, (301, 300, 600));
    let block = |level: i64, block: i64| -> i64 {
        c.query_row(
            "SELECT entries FROM waitlist_blocks WHERE event_id = 'e1' AND level = ?1 AND block = ?2",
            [level, block],
            |r| r.get(0),
        )
        .unwrap()
    };
    // Numbers 1..=255 in the first block of 256, 256..=300 in the second.
    assert_eq!((block(1, 0), block(1, 1)), (255, 45));
    assert_eq!((block(2, 0), block(4, 0)), (300, 300));
}
