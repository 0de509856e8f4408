//! The on-sale scenario: one event, many buyers at once, all wanting the best seats.
//!
//! An organizer creates an event of `rows × seats-per-row` seats. `buyers` buyers then go
//! through the gateway, `connections` at a time: each reads availability (`--map`: the full map
//! gzip-compressed, the compact view revalidated with `If-None-Match` by each connection, or the
//! live stream's snapshot), picks 1–4 adjacent available seats biased towards the front rows
//! (so buyers collide), holds them (picking again after a 409, up to 5 tries), creates and
//! confirms a payment intent, and buys. At the end the current availability (the live stream's
//! snapshot) must show exactly the seats the orders bought: the report counts double-sold seats (any seat in two orders, or a
//! reserved seat no order bought), which must be 0.
//!
//! Buyers authenticate with tokens signed here with `JWT_SECRET` (the development default when
//! unset), so the run measures orders, not password hashing (see the `auth` scenario for that).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use holdfast_common::auth::{Role, TokenKeys};
use holdfast_common::config::DEVELOPMENT_JWT_SECRET;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::report::{self, Latencies};
use crate::seatmap::{self, Availability, Cached, Seat, parse_seat};
use crate::{MapView, OnsaleArgs};

/// The price of every seat of the events the scenarios create.
pub const PRICE: u32 = 100;
const TRIES: usize = 5;

/// A small deterministic generator (xorshift; the seed must not be 0), so runs are
/// comparable.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Default)]
struct Tally {
    holds: Latencies,
    purchases: Latencies,
    maps: Latencies,
    map_bytes: u64,
    hold_conflicts: u64,
    /// Holds answered with an error other than a seat taken.
    hold_failures: u64,
    failures: u64,
    gave_up: u64,
    /// Seat → how many orders bought it.
    sold: HashMap<String, u32>,
}

fn keys() -> TokenKeys {
    let secret = std::env::var("JWT_SECRET").unwrap_or_else(|_| DEVELOPMENT_JWT_SECRET.into());
    TokenKeys::new(&secret)
}

/// An access token for `user_id` with `role`, signed here.
pub fn token(user_id: &str, role: Role) -> anyhow::Result<String> {
    Ok(keys().issue(
        user_id,
        &format!("{user_id}@example.com"),
        role,
        "loadgen",
        Duration::from_secs(3600),
    )?)
}

/// Creates an event of `rows × seats_per_row` seats; answers its id.
pub async fn create_event(
    client: &reqwest::Client,
    url: &str,
    rows: u32,
    seats_per_row: u32,
) -> anyhow::Result<String> {
    let organizer = token("64d3b00000000000000000aa", Role::Organizer)?;
    let created: Value = client
        .post(format!("{url}/api/events"))
        .bearer_auth(organizer)
        .json(&json!({
            "title": "Load test on-sale",
            "date": "2030-01-01T20:00:00Z",
            "rows": rows,
            "seatsPerRow": seats_per_row,
            "price": PRICE,
            "currency": "INR",
        }))
        .send()
        .await?
        .json()
        .await?;
    created["_id"]
        .as_str()
        .map(str::to_string)
        .context("event not created")
}

/// 1–4 adjacent available seats, the row drawn with a strong bias to the front.
pub fn pick(
    rng: &mut Rng,
    unavailable: &HashSet<Seat>,
    rows: u32,
    per_row: u32,
) -> Option<Vec<String>> {
    let count = 1 + (rng.next() % 4) as u32;
    for _ in 0..50 {
        let row = 1 + ((rng.unit().powi(3)) * f64::from(rows)) as u32;
        let start = 1 + (rng.next() % u64::from(per_row)) as u32;
        if start + count - 1 <= per_row
            && (start..start + count).all(|n| !unavailable.contains(&(row, n)))
        {
            return Some(
                (start..start + count)
                    .map(|n| format!("R{row}-S{n}"))
                    .collect(),
            );
        }
    }
    None
}

/// What a buyer sees of the event, read the way `--map` says.
async fn availability(
    client: &reqwest::Client,
    url: &str,
    event_id: &str,
    view: MapView,
    cache: &mut Cached,
) -> anyhow::Result<(Availability, usize)> {
    match view {
        MapView::Full => seatmap::full(client, url, event_id).await,
        MapView::Compact => {
            let (bytes, _) = seatmap::compact(client, url, event_id, cache).await?;
            Ok((cache.availability().clone(), bytes))
        }
        MapView::Stream => seatmap::stream_snapshot(client, url, event_id).await,
    }
}

async fn buyer(
    client: &reqwest::Client,
    url: &str,
    event_id: &str,
    options: &OnsaleArgs,
    index: usize,
    tally: &Mutex<Tally>,
    cache: &mut Cached,
) -> anyhow::Result<()> {
    // Buyers of one run are new to a server that ran earlier runs (their idempotency keys and
    // intents are their own).
    let user_id = format!("{:012x}{:012x}", std::process::id(), 0xb000_0000 + index);
    let token = token(&user_id, Role::User)?;
    let mut rng =
        Rng(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));

    let t = Instant::now();
    let (seen, bytes) = availability(client, url, event_id, options.map, cache).await?;
    let mut unavailable = seen.unavailable;
    {
        let mut tally = tally.lock().await;
        tally.maps.record(t.elapsed());
        tally.map_bytes += bytes as u64;
    }

    for _ in 0..TRIES {
        let Some(seats) = pick(&mut rng, &unavailable, options.rows, options.seats_per_row) else {
            break;
        };
        let t = Instant::now();
        let res = client
            .post(format!("{url}/api/orders/holds"))
            .bearer_auth(&token)
            .json(&json!({"eventId": event_id, "seatIds": seats}))
            .send()
            .await?;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or_default();
        if status == 409 {
            tally.lock().await.hold_conflicts += 1;
            for seat in body["conflicts"].as_array().into_iter().flatten() {
                if let Some(seat) = seat.as_str().and_then(parse_seat) {
                    unavailable.insert(seat);
                }
            }
            continue;
        }
        if status != 201 {
            tally.lock().await.hold_failures += 1;
            bail!("hold answered {status}: {body}");
        }
        tally.lock().await.holds.record(t.elapsed());
        let hold_id = body["holdId"].as_str().context("no holdId")?.to_string();

        let amount = PRICE as usize * seats.len();
        let intent: Value = client
            .post(format!("{url}/api/orders/payments/intent"))
            .bearer_auth(&token)
            .json(&json!({"amount": amount, "currency": "INR"}))
            .send()
            .await?
            .json()
            .await?;
        client
            .post(format!("{url}/api/orders/payments/confirm"))
            .bearer_auth(&token)
            .json(&json!({"paymentIntentId": intent["paymentIntentId"], "clientSecret": intent["clientSecret"]}))
            .send()
            .await?;
        let t = Instant::now();
        let res = client
            .post(format!("{url}/api/orders/purchase"))
            .bearer_auth(&token)
            .header("idempotency-key", format!("buy-{index}"))
            .json(&json!({"eventId": event_id, "holdId": hold_id, "seatIds": seats, "paymentIntentId": intent["paymentIntentId"]}))
            .send()
            .await?;
        let status = res.status().as_u16();
        let mut tally = tally.lock().await;
        if status == 201 {
            tally.purchases.record(t.elapsed());
            for seat in seats {
                *tally.sold.entry(seat).or_default() += 1;
            }
        } else {
            tally.failures += 1;
        }
        return Ok(());
    }
    tally.lock().await.gave_up += 1;
    Ok(())
}

pub async fn run(url: &str, options: &OnsaleArgs) -> anyhow::Result<()> {
    let connections = usize::try_from(options.target.connections)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let event_id = create_event(&client, url, options.rows, options.seats_per_row).await?;
    println!(
        "onsale against {url}: {} seats, {} buyers, {connections} at a time, availability read as {}",
        options.rows * options.seats_per_row,
        options.buyers,
        options.map.describe()
    );
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, url, event_id, tally, next) = (
            client.clone(),
            url.to_string(),
            event_id.clone(),
            tally.clone(),
            next.clone(),
        );
        let options = options.clone();
        workers.push(tokio::spawn(async move {
            // One connection's last compact view, revalidated by its next buyer.
            let mut cache = Cached::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= options.buyers {
                    return;
                }
                let bought = buyer(
                    &client, &url, &event_id, &options, index, &tally, &mut cache,
                );
                if let Err(error) = bought.await {
                    eprintln!("buyer {index}: {error:#}");
                }
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed();
    // The stream's snapshot is always current (a map may be up to SEAT_MAP_MAX_STALENESS_MS
    // old under churn).
    let reserved = seatmap::stream_snapshot(&client, url, &event_id)
        .await?
        .0
        .reserved;
    let tally = tally.lock().await;
    let sold: HashSet<Seat> = tally.sold.keys().filter_map(|s| parse_seat(s)).collect();
    let double_sold = tally.sold.values().filter(|n| **n > 1).count()
        + reserved.iter().filter(|seat| !sold.contains(seat)).count()
        + sold.iter().filter(|seat| !reserved.contains(*seat)).count();

    println!("took {:.1} s", elapsed.as_secs_f64());
    report::print(
        "POST /api/orders/holds",
        &tally.holds,
        tally.hold_failures,
        elapsed,
    );
    report::print(
        "POST /api/orders/purchase",
        &tally.purchases,
        tally.failures,
        elapsed,
    );
    report::print("GET /api/orders/seats/:id", &tally.maps, 0, elapsed);
    println!(
        "purchases per second          {:.1} (end to end: one per buyer who bought)",
        tally.purchases.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "map bytes read per buyer      {:.0}",
        tally.map_bytes as f64 / options.buyers.max(1) as f64
    );
    println!(
        "holds refused, seat taken     {} (409, expected: buyers race for seats)",
        tally.hold_conflicts
    );
    println!("buyers who gave up            {}", tally.gave_up);
    println!("seats sold                    {}", reserved.len());
    println!("double-sold seats             {double_sold}");
    if double_sold > 0 {
        bail!("{double_sold} seats were sold twice or inconsistently");
    }
    Ok(())
}
