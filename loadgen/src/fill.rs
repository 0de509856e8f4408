//! The `fill` scenario: a 20,000-seat venue sold from empty to sold out by best-available
//! buyers. Each buyer asks `POST /api/orders/holds/best` for 1–4 seats; when no row has that
//! many side by side it asks again allowing a split, and when even that does not fit, for one
//! seat fewer, until a single seat no longer fits: the venue is sold out. Every hold is taken by
//! a user of its own, so the per-user hold cap never interferes.
//!
//! It reports the rate and latency over the whole fill and per tenth of it, because the last
//! seats (scattered, few side by side) are the hard part.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use holdfast_common::auth::Role;
use serde_json::{Value, json};

use crate::onsale::{Rng, token};
use crate::report::{self, Latencies};
use crate::{FillArgs, wire};

/// Sections × rows × seats per row: 4 × 50 × 100 = 20,000 seats, each row with two aisles.
const SECTIONS: [(&str, &str); 4] = [
    ("stalls", "premium"),
    ("circle", "standard"),
    ("upper", "economy"),
    ("gallery", "economy"),
];
const ROWS_PER_SECTION: usize = 50;
const ROW: &str = "1-25 | 26-75 | 76-100";
const SEATS_PER_ROW: usize = 100;
pub const SEATS: usize = SECTIONS.len() * ROWS_PER_SECTION * SEATS_PER_ROW;

/// The id of seat `index` of the venue, in layout order (`stalls-1-1` first).
pub fn seat_id(index: usize) -> String {
    let per_section = ROWS_PER_SECTION * SEATS_PER_ROW;
    let (section, rest) = (index / per_section % SECTIONS.len(), index % per_section);
    format!(
        "{}-{}-{}",
        SECTIONS[section].0,
        rest / SEATS_PER_ROW + 1,
        rest % SEATS_PER_ROW + 1
    )
}

/// One granted hold: when (since the start), how long it took, how many seats.
type Grant = (Duration, Duration, usize);

/// The venue of the scenario.
fn venue() -> Value {
    let sections: Vec<Value> = SECTIONS
        .iter()
        .map(|(key, category)| {
            let rows: Vec<Value> = (1..=ROWS_PER_SECTION)
                .map(|r| json!({"label": format!("{r}"), "seats": ROW}))
                .collect();
            json!({"key": key, "name": key, "category": category, "rows": rows})
        })
        .collect();
    json!({
        "categories": [
            {"key": "premium", "name": "Premium", "price": 2500},
            {"key": "standard", "name": "Standard", "price": 1500},
            {"key": "economy", "name": "Economy", "price": 600}
        ],
        "sections": sections
    })
}

/// Creates the venue event; answers its id.
pub async fn create_venue_event(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let organizer = token("64d3b00000000000000000aa", Role::Organizer)?;
    let created: Value = client
        .post(format!("{url}/api/events"))
        .bearer_auth(organizer)
        .json(&json!({
            "title": "Load test venue",
            "date": "2030-01-01T20:00:00Z",
            "currency": "INR",
            "venue": venue(),
        }))
        .send()
        .await?
        .json()
        .await?;
    created["_id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("venue event not created: {created}"))
}

pub async fn run(url: &str, args: &FillArgs) -> anyhow::Result<()> {
    let connections = usize::try_from(args.target.connections)?;
    let client = reqwest::Client::new();
    let event = create_venue_event(&client, url).await?;
    if !args.cold {
        // As before a real on-sale, someone looked at the map: the layout is known.
        let map = format!("{url}/api/orders/seats/{event}?view=compact");
        client.get(map).send().await?.error_for_status()?;
    }
    // More users than holds can ever be: a user per hold.
    let tokens: Vec<String> = (0..SEATS + 64 * connections)
        .map(|n| {
            token(
                &format!("{:024x}", 0xf000_0000_0000u64 + n as u64),
                Role::User,
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let tokens = Arc::new(tokens);
    println!(
        "fill against {url}: a venue of {SEATS} seats, best-available buyers of 1-4 seats, \
         {connections} connections, {}",
        if args.cold {
            "cold (nobody looked at the map first)"
        } else {
            "its map read once before"
        }
    );
    let next_user = Arc::new(AtomicUsize::new(0));
    let sold_out = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let (url, event, tokens, next_user, sold_out) = (
            url.to_string(),
            event.clone(),
            tokens.clone(),
            next_user.clone(),
            sold_out.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut grants: Vec<Grant> = Vec::new();
            let (mut failures, mut retries) = (0u64, 0u64);
            let mut connection: Option<wire::Connection> = None;
            let mut body = String::with_capacity(128);
            let mut rng = Rng((worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut buyer_wants = move || 1 + (rng.next() % 4) as usize;
            let (mut count, mut split) = (buyer_wants(), false);
            while !sold_out.load(Ordering::Relaxed) {
                if connection.is_none() {
                    connection = wire::Connection::open(&url).await.ok();
                }
                let Some(open) = connection.as_mut() else {
                    failures += 1;
                    continue;
                };
                body.clear();
                let _ = write!(
                    body,
                    r#"{{"eventId":"{event}","count":{count},"allowSplit":{split}}}"#
                );
                let user = next_user.fetch_add(1, Ordering::Relaxed) % tokens.len();
                let t = Instant::now();
                match open
                    .post_json("/api/orders/holds/best", &tokens[user], body.as_bytes())
                    .await
                {
                    Ok(201) => {
                        grants.push((started.elapsed(), t.elapsed(), count));
                        (count, split) = (buyer_wants(), false);
                    }
                    Ok(409) if open.answered(b"NO_SEATS_AVAILABLE") => {
                        if !split {
                            split = true;
                        } else if count > 1 {
                            count -= 1;
                        } else {
                            sold_out.store(true, Ordering::Relaxed);
                        }
                    }
                    // Other buyers took the seats found first: ask again.
                    Ok(409) => retries += 1,
                    Ok(_) => failures += 1,
                    Err(_) => {
                        failures += 1;
                        connection = None;
                    }
                }
            }
            (grants, failures, retries)
        }));
    }
    let mut grants: Vec<Grant> = Vec::new();
    let (mut failures, mut retries) = (0, 0);
    for worker in workers {
        let (g, f, r) = worker.await?;
        grants.extend(g);
        failures += f;
        retries += r;
    }
    let sold_out_after = started.elapsed();
    grants.sort_unstable_by_key(|(at, _, _)| *at);
    let held: usize = grants.iter().map(|(_, _, seats)| seats).sum();
    // The fill ends with the last seat held; buyers then learn it is sold out.
    let filled_after = grants.last().map_or(sold_out_after, |(at, _, _)| *at);
    let mut all = Latencies::default();
    for (_, latency, _) in &grants {
        all.record(*latency);
    }
    report::print("POST /api/orders/holds/best", &all, failures, filled_after);
    println!(
        "seats held {held} of {SEATS} in {:.2} s (every buyer told it is sold out after {:.2} s); \
         409 retries (seats taken first) {retries}",
        filled_after.as_secs_f64(),
        sold_out_after.as_secs_f64()
    );
    println!("per tenth of the fill (by seats held):");
    let (mut seats_so_far, mut from, mut tenth_start) = (0, 0, Duration::ZERO);
    for (i, (at, _, seats)) in grants.iter().enumerate() {
        seats_so_far += seats;
        let tenth = (seats_so_far * 10).div_ceil(SEATS).max(1);
        let last = i + 1 == grants.len();
        let crosses = last || ((seats_so_far + grants[i + 1].2) * 10).div_ceil(SEATS) > tenth;
        if crosses {
            let mut latencies = Latencies::default();
            for (_, latency, _) in &grants[from..=i] {
                latencies.record(*latency);
            }
            let span = at.saturating_sub(tenth_start).as_secs_f64().max(1e-9);
            println!(
                "  {:>3}%  {:>6} holds {:>9.1} holds/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
                tenth * 10,
                i + 1 - from,
                (i + 1 - from) as f64 / span,
                latencies.percentile(50.0).as_secs_f64() * 1000.0,
                latencies.percentile(99.0).as_secs_f64() * 1000.0,
            );
            (from, tenth_start) = (i + 1, *at);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use holdfast_common::venue::VenueSpec;

    use super::*;

    #[test]
    fn the_venue_has_its_seats_in_the_order_seat_id_names_them() {
        let spec: VenueSpec = serde_json::from_value(venue()).unwrap();
        let venue = spec.expand().unwrap();
        assert_eq!(venue.seats.len(), SEATS);
        for index in [0, 1, 99, 100, 4_999, 5_000, 12_345, SEATS - 1] {
            assert_eq!(seat_id(index), venue.seats[index].id, "seat {index}");
        }
    }
}
