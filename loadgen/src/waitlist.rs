//! `loadgen waitlist`: a long waitlist must cost nobody anything.
//!
//! Fills the waitlist of one sold-out event with `--entries` people (joins through the gateway,
//! `--connections` at a time), then measures for `--seconds` each, in one run:
//! 1. buyers buying seats of *another* event (hold, pay, purchase) alone;
//! 2. the same buyers while `--pollers` clients read their place on the long waitlist as fast as
//!    they go (`GET …/waitlist` of people spread over the whole line).
//!
//! It reports the join rate, place reads (p50, p99), the buyers' rate and latency with and
//! without the polling, and this process's resident memory (the stack runs in it unless `--url`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use holdfast_common::auth::Role;
use serde_json::{Value, json};

use crate::WaitlistArgs;
use crate::onsale::{PRICE, create_event, token};
use crate::report::{self, Latencies};
use crate::wire::Connection;

/// The id of waitlisted person `n` (distinct from the buyers').
fn waiter(n: u64) -> String {
    format!("{:024x}", 0xd000_0000_0000u64 + n)
}

/// Resident memory of this process, in MB (Linux; 0 elsewhere).
fn resident_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// Holds `seats` of `event_id` for `token`'s user, pays and buys them (with `pass` as the
/// `Admission-Pass` of the hold and the purchase, on an event sold through a queue).
pub async fn buy(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    event_id: &str,
    seats: &[String],
    pass: Option<&str>,
) -> anyhow::Result<()> {
    let with_pass = |request: reqwest::RequestBuilder| match pass {
        Some(pass) => request.header("Admission-Pass", pass),
        None => request,
    };
    let held: Value = with_pass(client.post(format!("{url}/api/orders/holds")))
        .bearer_auth(token)
        .json(&json!({"eventId": event_id, "seatIds": seats}))
        .send()
        .await?
        .json()
        .await?;
    let hold_id = held["holdId"].as_str().context("no hold")?;
    let amount = PRICE as usize * seats.len();
    let intent: Value = client
        .post(format!("{url}/api/orders/payments/intent"))
        .bearer_auth(token)
        .json(&json!({"amount": amount, "currency": "INR"}))
        .send()
        .await?
        .json()
        .await?;
    client
        .post(format!("{url}/api/orders/payments/confirm"))
        .bearer_auth(token)
        .json(&json!({"paymentIntentId": intent["paymentIntentId"], "clientSecret": intent["clientSecret"]}))
        .send()
        .await?;
    let bought = with_pass(client.post(format!("{url}/api/orders/purchase")))
        .bearer_auth(token)
        .json(&json!({"eventId": event_id, "holdId": hold_id, "seatIds": seats, "paymentIntentId": intent["paymentIntentId"]}))
        .send()
        .await?;
    if bought.status() != 201 {
        bail!("purchase answered {}", bought.status());
    }
    Ok(())
}

/// `--entries` joins, `connections` at a time; the join latencies.
async fn fill(
    url: &str,
    event_id: &str,
    entries: u64,
    connections: u64,
) -> anyhow::Result<Latencies> {
    let next = Arc::new(AtomicU64::new(0));
    let body = serde_json::to_vec(&json!({"seats": 1}))?;
    let path = format!("/api/orders/events/{event_id}/waitlist");
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (next, body, path, url) = (next.clone(), body.clone(), path.clone(), url.to_string());
        workers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut failures = 0;
            let Ok(mut connection) = Connection::open(&url).await else {
                return (latencies, 1);
            };
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= entries {
                    break;
                }
                let Ok(token) = token(&waiter(n), Role::User) else {
                    failures += 1;
                    continue;
                };
                let t = Instant::now();
                match connection.post_json(&path, &token, &body).await {
                    Ok(201) => latencies.record(t.elapsed()),
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let (joins, failures) = report::gather(workers).await?;
    if failures > 0 {
        bail!("{failures} joins failed");
    }
    Ok(joins)
}

/// Buyers buying one seat at a time of `event_id` for `run`, from seat `first` on; the buy
/// flows' latencies and failures.
async fn buyers(
    url: &str,
    event_id: &str,
    count: u64,
    seats_per_row: u64,
    first: Arc<AtomicU64>,
    run: Duration,
) -> anyhow::Result<(Latencies, u64)> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for b in 0..count {
        let (url, event_id, next) = (url.to_string(), event_id.to_string(), first.clone());
        let token = token(&format!("{:024x}", 0xe000_0000_0000u64 + b), Role::User)?;
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Latencies::default();
            let mut failures = 0;
            while started.elapsed() < run {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let seat = format!("R{}-S{}", 1 + n / seats_per_row, 1 + n % seats_per_row);
                let t = Instant::now();
                match buy(&client, &url, &token, &event_id, &[seat], None).await {
                    Ok(()) => latencies.record(t.elapsed()),
                    Err(_) => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    report::gather(workers).await
}

/// `pollers` clients reading the places of waitlisted people spread over the line, for `run`.
async fn pollers(
    url: &str,
    event_id: &str,
    pollers: u64,
    entries: u64,
    run: Duration,
) -> anyhow::Result<(Latencies, u64)> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for p in 0..pollers {
        let path = format!("{url}/api/orders/events/{event_id}/waitlist");
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Latencies::default();
            let mut failures = 0;
            // A stride through the line, so the places read go from the head to the tail.
            let mut n = p * 7_919;
            while started.elapsed() < run {
                n = (n + 104_729) % entries.max(1);
                let Ok(token) = token(&waiter(n), Role::User) else {
                    failures += 1;
                    continue;
                };
                let t = Instant::now();
                match client.get(&path).bearer_auth(&token).send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        latencies.record(t.elapsed());
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    report::gather(workers).await
}

pub async fn run(url: &str, args: &WaitlistArgs) -> anyhow::Result<()> {
    // The stack's memory is this process's only when it runs here.
    let own_stack = args.target.url.is_none();
    let memory = || {
        if own_stack {
            format!("{} MB", resident_mb())
        } else {
            "(the stack runs elsewhere)".to_string()
        }
    };
    let client = reqwest::Client::new();
    let run = Duration::from_secs(args.seconds);
    println!(
        "waitlist scenario against {url}: {} entries joined by {} connections; {} buyers on another \
         event, {} s alone then {} s beside {} place readers",
        args.entries,
        args.target.connections,
        args.buyers,
        args.seconds,
        args.seconds,
        args.pollers
    );
    // The waitlisted event is sold out: one seat, bought.
    let sold_out = create_event(&client, url, 1, 1).await?;
    let owner = token(&format!("{:024x}", 0xc000_0000_0000u64), Role::User)?;
    buy(
        &client,
        url,
        &owner,
        &sold_out,
        &["R1-S1".to_string()],
        None,
    )
    .await?;
    let (rows, per_row) = (100_u64, 200_u64);
    let other = create_event(&client, url, rows as u32, per_row as u32).await?;
    let next_seat = Arc::new(AtomicU64::new(0));
    println!("resident memory before the waitlist: {}", memory());

    let started = Instant::now();
    let joins = fill(url, &sold_out, args.entries, args.target.connections).await?;
    report::print("POST …/waitlist (join)", &joins, 0, started.elapsed());
    println!("resident memory with the waitlist: {}", memory());

    let started = Instant::now();
    let (alone, failed) = buyers(url, &other, args.buyers, per_row, next_seat.clone(), run).await?;
    report::print("buy, no place readers", &alone, failed, started.elapsed());

    let started = Instant::now();
    let (bought, readers) = tokio::join!(
        buyers(url, &other, args.buyers, per_row, next_seat.clone(), run),
        pollers(url, &sold_out, args.pollers, args.entries, run),
    );
    let ((bought, failed), (places, unread)) = (bought?, readers?);
    let elapsed = started.elapsed();
    report::print("buy, beside place readers", &bought, failed, elapsed);
    report::print("GET …/waitlist (place)", &places, unread, elapsed);
    println!("resident memory after the reads: {}", memory());
    let last: Value = client
        .get(format!("{url}/api/orders/events/{sold_out}/waitlist"))
        .bearer_auth(token(&waiter(args.entries - 1), Role::User)?)
        .send()
        .await?
        .json()
        .await?;
    println!(
        "a late joiner stands at {} of {}",
        last["position"], last["length"]
    );
    Ok(())
}
