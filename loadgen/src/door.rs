//! The `door` scenario: an event of 20,000 sold tickets at its door.
//!
//! It sells every seat of a 100 × 200 grid (free seats, 10 per order), collects the passes,
//! then measures, in order:
//!
//! 1. the download offline scanners sync by: all 20,000 tickets, gzip-compressed as a scanner
//!    asks for it (its size on the wire and how long it took);
//! 2. an offline batch of 10,000 scans (tickets 10,000–19,999) reconciled in one request;
//! 3. online scans through the gateway at `--connections`, each connection a scanner device
//!    of its own, for `--seconds`, over tickets 0–9,999 (first `entered`, then
//!    `already_entered` as they come round again);
//! 4. offline verification with the public key alone ([`OfflineScanner`]): a real pass
//!    admitted, an altered one refused, a transferred ticket's old pass refused once synced.
//!
//! The stack it starts itself lifts the per-scanner limits (`CHECKIN_SCANS_PER_SECOND`); a
//! gateway given with `--url` needs them lifted too.
//!
//! `loadgen verify` is the same offline verifier as a tool: it downloads an event's keys and
//! tickets with a device token, then checks the passes it is given without the network.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use holdfast_common::auth::Role;
use holdfast_common::ticket_pass::{OfflineScanner, OfflineVerdict, PublicKey};
use serde_json::{Value, json};

use crate::onsale::token;
use crate::report::{self, Latencies};
use crate::{DoorArgs, VerifyArgs, wire};

const ROWS: u32 = 100;
const SEATS_PER_ROW: u32 = 200;
const TICKETS: usize = (ROWS * SEATS_PER_ROW) as usize;
/// Seats per order (the default `MAX_SEATS_PER_HOLD`).
const PER_ORDER: u32 = 10;
const ORGANIZER: &str = "64d3b00000000000000000dd";
/// Buyers at once while selling.
const SELLERS: usize = 16;

pub async fn run(url: &str, args: &DoorArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let organizer = token(ORGANIZER, Role::Organizer)?;
    let event = create_event(&client, url, &organizer, (ROWS, SEATS_PER_ROW)).await?;
    println!("door against {url}: an event of {TICKETS} seats, selling every one");
    let started = Instant::now();
    let passes = sell_everything(&client, url, &event).await?;
    println!(
        "sold {} tickets in {:.1} s",
        passes.len(),
        started.elapsed().as_secs_f64()
    );
    if passes.len() != TICKETS {
        bail!("{} passes for {TICKETS} seats", passes.len());
    }
    let connections = usize::try_from(args.target.connections)?;
    let mut devices = Vec::with_capacity(connections);
    for n in 0..connections {
        devices.push(device(&client, url, &organizer, &event, n).await?);
    }

    // 1. The download.
    let t = Instant::now();
    let download = client
        .get(format!("{url}/api/checkin/events/{event}/tickets"))
        .bearer_auth(&devices[0])
        .header("accept-encoding", "gzip")
        .send()
        .await?;
    let gzip = download
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let compressed = download.bytes().await?.len();
    println!(
        "download of {TICKETS} tickets: {compressed} bytes {} ({:.1} KiB) in {:.0} ms",
        if gzip { "gzip" } else { "uncompressed" },
        compressed as f64 / 1024.0,
        t.elapsed().as_secs_f64() * 1000.0
    );

    // 2. One offline batch of 10,000 scans.
    let half = TICKETS / 2;
    let scans: Vec<Value> = passes[half..]
        .iter()
        .enumerate()
        .map(|(n, pass)| {
            json!({"nonce": format!("n{n}"), "pass": pass, "gate": "Offline",
                   "scannedAt": "2026-01-01T19:00:00Z"})
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "scans": scans }))?;
    let t = Instant::now();
    let reconciled = client
        .post(format!("{url}/api/checkin/events/{event}/scans"))
        .bearer_auth(&devices[0])
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await?;
    let status = reconciled.status();
    let answer: Value = reconciled.json().await?;
    let took = t.elapsed();
    if !status.is_success() {
        bail!("the batch was refused: {status} {answer}");
    }
    let entered = answer["results"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|r| r["result"] == "entered").count());
    println!(
        "offline batch of {} scans ({:.1} MiB): {status} in {:.0} ms, {entered} entered",
        scans.len(),
        body.len() as f64 / (1024.0 * 1024.0),
        took.as_secs_f64() * 1000.0
    );

    // 3. Online scans.
    online_scans(url, &event, &passes[..half], &devices, args.seconds).await?;

    // 4. Offline verification with the public key alone.
    offline_demo(&client, url).await
}

/// Creates a free event of `rows` × `seats_per_row` seats as `organizer`; answers its id.
async fn create_event(
    client: &reqwest::Client,
    url: &str,
    organizer: &str,
    (rows, seats_per_row): (u32, u32),
) -> anyhow::Result<String> {
    let created: Value = client
        .post(format!("{url}/api/events"))
        .bearer_auth(organizer)
        .json(&json!({
            "title": "Load test door", "date": "2030-01-01T20:00:00Z",
            "rows": rows, "seatsPerRow": seats_per_row, "price": 0, "currency": "INR",
        }))
        .send()
        .await?
        .json()
        .await?;
    created["_id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("event not created: {created}"))
}

/// Holds and buys free `seats` for `buyer`; answers the order's tickets.
async fn buy(
    client: &reqwest::Client,
    url: &str,
    buyer: &str,
    event: &str,
    seats: &[String],
) -> anyhow::Result<Vec<Value>> {
    let hold: Value = client
        .post(format!("{url}/api/orders/holds"))
        .bearer_auth(buyer)
        .json(&json!({"eventId": event, "seatIds": seats}))
        .send()
        .await?
        .json()
        .await?;
    let bought: Value = client
        .post(format!("{url}/api/orders/purchase"))
        .bearer_auth(buyer)
        .json(&json!({"eventId": event, "holdId": hold["holdId"], "seatIds": seats}))
        .send()
        .await?
        .json()
        .await?;
    let order = bought["orderId"]
        .as_str()
        .with_context(|| format!("not bought: {bought}"))?;
    let tickets: Value = client
        .get(format!("{url}/api/orders/orders/{order}/tickets"))
        .bearer_auth(buyer)
        .send()
        .await?
        .json()
        .await?;
    Ok(tickets["tickets"].as_array().cloned().unwrap_or_default())
}

/// Buys every seat, 10 per order, each order by a buyer of its own; answers the passes.
async fn sell_everything(
    client: &reqwest::Client,
    url: &str,
    event: &str,
) -> anyhow::Result<Vec<String>> {
    let orders: Vec<(u32, u32)> = (1..=ROWS)
        .flat_map(|row| {
            (0..SEATS_PER_ROW / PER_ORDER).map(move |block| (row, block * PER_ORDER + 1))
        })
        .collect();
    let next = Arc::new(AtomicUsize::new(0));
    let orders = Arc::new(orders);
    let mut sellers = Vec::new();
    for _ in 0..SELLERS {
        let (client, url, event, next, orders) = (
            client.clone(),
            url.to_string(),
            event.to_string(),
            next.clone(),
            orders.clone(),
        );
        sellers.push(tokio::spawn(async move {
            let mut passes = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(row, first)) = orders.get(n) else {
                    return Ok::<_, anyhow::Error>(passes);
                };
                let buyer = token(
                    &format!("{:024x}", 0xd000_0000_0000u64 + n as u64),
                    Role::User,
                )?;
                let seats: Vec<String> = (first..first + PER_ORDER)
                    .map(|s| format!("R{row}-S{s}"))
                    .collect();
                let tickets = buy(&client, &url, &buyer, &event, &seats).await?;
                for ticket in &tickets {
                    passes.extend(ticket["pass"].as_str().map(str::to_string));
                }
            }
        }));
    }
    let mut passes = Vec::with_capacity(TICKETS);
    for seller in sellers {
        passes.extend(seller.await??);
    }
    Ok(passes)
}

/// A new scanner device of the event; answers its token.
async fn device(
    client: &reqwest::Client,
    url: &str,
    organizer: &str,
    event: &str,
    n: usize,
) -> anyhow::Result<String> {
    let made: Value = client
        .post(format!("{url}/api/checkin/events/{event}/devices"))
        .bearer_auth(organizer)
        .json(&json!({"name": format!("Gate {n}")}))
        .send()
        .await?
        .json()
        .await?;
    made["token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no device: {made}"))
}

async fn online_scans(
    url: &str,
    event: &str,
    passes: &[String],
    devices: &[String],
    seconds: u64,
) -> anyhow::Result<()> {
    let passes = Arc::new(passes.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let path = Arc::new(format!("/api/checkin/events/{event}/scan"));
    let entered = Arc::new(AtomicUsize::new(0));
    let run = Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for (n, device) in devices.iter().enumerate() {
        let (url, device, passes, next, path, entered) = (
            url.to_string(),
            device.clone(),
            passes.clone(),
            next.clone(),
            path.clone(),
            entered.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut failures = 0;
            let mut connection: Option<wire::Connection> = None;
            let gate = format!("Gate {}", n % 8);
            while started.elapsed() < run {
                if connection.is_none() {
                    connection = wire::Connection::open(&url).await.ok();
                }
                let Some(open) = connection.as_mut() else {
                    failures += 1;
                    continue;
                };
                let pass = &passes[next.fetch_add(1, Ordering::Relaxed) % passes.len()];
                let body = format!(r#"{{"pass":"{pass}","gate":"{gate}"}}"#);
                let t = Instant::now();
                match open.post_json(&path, &device, body.as_bytes()).await {
                    Ok(200) => {
                        latencies.record(t.elapsed());
                        if open.answered(b"\"entered\"") {
                            entered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(_) => failures += 1,
                    Err(_) => {
                        failures += 1;
                        connection = None;
                    }
                }
            }
            (latencies, failures)
        }));
    }
    let (latencies, failures) = report::gather(workers).await?;
    report::print("POST …/scan", &latencies, failures, started.elapsed());
    println!(
        "  {} entered (each of {} tickets once), the rest already_entered",
        entered.load(Ordering::Relaxed),
        passes.len()
    );
    Ok(())
}

/// A buyer's ticket checked by an offline scanner before and after its transfer (on an event
/// of one seat: the big one is sold out).
async fn offline_demo(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let buyer = token("64d3b000000000000000dddd", Role::User)?;
    let organizer = token(ORGANIZER, Role::Organizer)?;
    let small = create_event(client, url, &organizer, (1, 1)).await?;
    let small_device = device(client, url, &organizer, &small, 0).await?;
    let tickets = buy(client, url, &buyer, &small, &["R1-S1".to_string()]).await?;
    let ticket = tickets.first().context("no ticket")?;
    let pass = ticket["pass"].as_str().context("pass")?.to_string();
    let scanner = download(client, url, &small, &small_device).await?;
    let mut altered = pass.clone().into_bytes();
    altered[pass.len() / 2] ^= 1;
    let altered = String::from_utf8_lossy(&altered).to_string();
    println!("offline verification with the public key and the download only:");
    println!("  a real pass:      {}", verdict(&scanner.check(&pass)));
    println!("  an altered pass:  {}", verdict(&scanner.check(&altered)));
    let given = client
        .post(format!(
            "{url}/api/orders/tickets/{}/transfer",
            ticket["ticketId"].as_str().unwrap_or_default()
        ))
        .bearer_auth(&buyer)
        .json(&json!({"email": "friend@example.com"}))
        .send()
        .await?
        .status();
    println!(
        "  transferred ({given}); the old pass before the scanner synced: {}",
        verdict(&scanner.check(&pass))
    );
    let synced = download(client, url, &small, &small_device).await?;
    println!(
        "  the old pass after it synced: {}",
        verdict(&synced.check(&pass))
    );
    Ok(())
}

fn verdict(verdict: &OfflineVerdict) -> &'static str {
    match verdict {
        OfflineVerdict::Admit(_) => "admitted",
        OfflineVerdict::Revoked => "refused (revoked)",
        OfflineVerdict::WrongEvent => "refused (another event)",
        OfflineVerdict::Unknown => "refused (not in the download)",
        OfflineVerdict::Invalid => "refused (invalid)",
    }
}

/// An offline scanner for `event`: its public keys and its tickets, every page.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    device: &str,
) -> anyhow::Result<OfflineScanner> {
    let keys: Value = client
        .get(format!("{url}/api/checkin/events/{event}/keys"))
        .send()
        .await?
        .json()
        .await?;
    let keys = keys["keys"]
        .as_array()
        .context("no keys")?
        .iter()
        .filter_map(|k| PublicKey::decode(k["keyId"].as_str()?, k["publicKey"].as_str()?))
        .collect();
    let mut scanner = OfflineScanner {
        event_id: event.to_string(),
        keys,
        ..OfflineScanner::default()
    };
    let mut after: Option<String> = None;
    loop {
        // A page's `next` is `<ms>~<uuid>`: nothing in it needs encoding.
        let path = match &after {
            Some(after) => format!("{url}/api/checkin/events/{event}/tickets?after={after}"),
            None => format!("{url}/api/checkin/events/{event}/tickets"),
        };
        let page: Value = client
            .get(path)
            .bearer_auth(device)
            .send()
            .await?
            .json()
            .await?;
        let tickets = page["tickets"]
            .as_array()
            .with_context(|| format!("no tickets: {page}"))?;
        for t in tickets {
            let version = t["version"]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0);
            scanner.sync(
                t["ticketId"].as_str().unwrap_or_default(),
                version,
                t["status"] == "valid",
            );
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return Ok(scanner),
        }
    }
}

/// `loadgen verify`: downloads, then checks each pass offline.
pub async fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = args.url.trim_end_matches('/');
    let scanner = download(&client, url, &args.event, &args.device_token).await?;
    println!(
        "{} keys, {} tickets downloaded; checking offline",
        scanner.keys.len(),
        scanner.tickets.len()
    );
    for pass in &args.passes {
        println!("{}  {pass}", verdict(&scanner.check(pass)));
    }
    Ok(())
}
