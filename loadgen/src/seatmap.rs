//! Reading availability the ways clients do, and the two availability scenarios.
//!
//! - `seatmap`: `--readers` (the `--connections`) read one hot map as fast as they can — the
//!   full map gzip-compressed, the compact view (gzip), or the full map revalidated with
//!   `If-None-Match` — while `--writers` churn holds on it. Readers read the whole body but do
//!   not parse it, so the server is what is measured. Reports maps/s, 304s/s, p50/p99 and
//!   bytes per answer.
//! - `holds`: 1-seat holds by many users spread over large events (20,000 seats each), each
//!   connection as fast as it goes, over [`crate::wire`]'s lean keep-alive connections; reports
//!   holds/s (201) and conflicts (409) with p50/p99.
//! - `stream`: `--streams` clients hold the live stream of one event open while holds are taken
//!   one after another; reports how long each change takes to reach every stream (from just
//!   before the hold request is sent).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use holdfast_common::auth::Role;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::onsale::{create_event, token};
use crate::report::{self, Latencies};
use crate::wire;
use crate::{HoldsArgs, ReadMode, SeatmapArgs, StreamArgs};

/// A seat as (row, number).
pub type Seat = (u32, u32);

/// `R3-S12` as (3, 12).
pub fn parse_seat(id: &str) -> Option<Seat> {
    let (row, number) = id.strip_prefix('R')?.split_once("-S")?;
    Some((row.parse().ok()?, number.parse().ok()?))
}

/// What a client knows of an event's seats.
#[derive(Debug, Default, Clone)]
pub struct Availability {
    /// Held or sold.
    pub unavailable: HashSet<Seat>,
    pub reserved: HashSet<Seat>,
}

/// A client's last compact view, for revalidation.
#[derive(Default)]
pub struct Cached {
    etag: Option<String>,
    availability: Availability,
}

fn gunzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// The body of `response`, decompressed if it came gzip-encoded; and its size on the wire.
async fn body(response: reqwest::Response) -> anyhow::Result<(Vec<u8>, usize)> {
    let gzipped = response
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let bytes = response.bytes().await?;
    let wire = bytes.len();
    Ok((
        if gzipped {
            gunzip(&bytes)?
        } else {
            bytes.to_vec()
        },
        wire,
    ))
}

/// The full map, as a browser asks for it (gzip); and the bytes read.
pub async fn full(
    client: &reqwest::Client,
    url: &str,
    event_id: &str,
) -> anyhow::Result<(Availability, usize)> {
    let response = get_map(client, url, event_id, "", &mut None)
        .await?
        .context("a 304 to a request without If-None-Match")?;
    let (json, wire) = body(response).await?;
    let map: Value = serde_json::from_slice(&json)?;
    let mut seen = Availability::default();
    for seat in map["seats"].as_array().context("no seats in the map")? {
        let place = |key: &str| seat[key].as_u64().and_then(|n| u32::try_from(n).ok());
        let Some(id) = place("row").zip(place("number")) else {
            continue;
        };
        match seat["state"].as_str() {
            Some("reserved") => {
                seen.reserved.insert(id);
                seen.unavailable.insert(id);
            }
            Some("held") => {
                seen.unavailable.insert(id);
            }
            _ => {}
        }
    }
    Ok((seen, wire))
}

/// Seats of the compact view's `{"row": "a-b,c"}` runs.
fn expand(runs: &Value, into: &mut HashSet<Seat>) {
    for (row, text) in runs.as_object().into_iter().flatten() {
        let Ok(row) = row.parse::<u32>() else {
            continue;
        };
        for run in text.as_str().unwrap_or_default().split(',') {
            let (from, to) = run.split_once('-').unwrap_or((run, run));
            if let (Ok(from), Ok(to)) = (from.parse::<u32>(), to.parse::<u32>()) {
                into.extend((from..=to).map(|n| (row, n)));
            }
        }
    }
}

pub fn from_compact(view: &Value) -> Availability {
    let mut seen = Availability::default();
    expand(&view["reserved"], &mut seen.reserved);
    expand(&view["held"], &mut seen.unavailable);
    seen.unavailable.extend(seen.reserved.iter().copied());
    seen
}

/// The compact view, revalidated against `cache`; the bytes read and whether it was a 304.
pub async fn compact(
    client: &reqwest::Client,
    url: &str,
    event_id: &str,
    cache: &mut Cached,
) -> anyhow::Result<(usize, bool)> {
    let response = get_map(client, url, event_id, "?view=compact", &mut cache.etag).await?;
    let Some(response) = response else {
        return Ok((0, true));
    };
    let (json, wire) = body(response).await?;
    cache.availability = from_compact(&serde_json::from_slice(&json)?);
    Ok((wire, false))
}

/// GETs a map view (gzip) with `If-None-Match: etag` when there is one; `None` for a 304,
/// else the answer, whose ETag replaces `etag`.
async fn get_map(
    client: &reqwest::Client,
    url: &str,
    event_id: &str,
    query: &str,
    etag: &mut Option<String>,
) -> anyhow::Result<Option<reqwest::Response>> {
    let mut request = client
        .get(format!("{url}/api/orders/seats/{event_id}{query}"))
        .header("accept-encoding", "gzip");
    if let Some(tag) = etag.as_deref() {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await?;
    if response.status() == 304 {
        return Ok(None);
    }
    if !response.status().is_success() {
        bail!("seat map answered {}", response.status());
    }
    *etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(Some(response))
}

impl Cached {
    pub fn availability(&self) -> &Availability {
        &self.availability
    }
}

/// The snapshot a live stream starts with; the bytes read.
pub async fn stream_snapshot(
    client: &reqwest::Client,
    url: &str,
    event_id: &str,
) -> anyhow::Result<(Availability, usize)> {
    first_snapshot(client, &format!("{url}/api/orders/seats/{event_id}/stream")).await
}

/// The data of one server-sent event block (its `data:` lines, joined).
pub fn sse_data(block: &str) -> String {
    block
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect()
}

/// The snapshot a seat stream at `stream_url` opens with, and the bytes it took.
pub async fn first_snapshot(
    client: &reqwest::Client,
    stream_url: &str,
) -> anyhow::Result<(Availability, usize)> {
    let response = client.get(stream_url).send().await?;
    if !response.status().is_success() {
        bail!("stream answered {}", response.status());
    }
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut wire = 0;
    while !text.contains("\n\n") {
        let chunk = body.next().await.context("the stream ended")??;
        wire += chunk.len();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    Ok((from_compact(&serde_json::from_str(&sse_data(&text))?), wire))
}

/// Holds `count` seats spread over the event, so maps have something to show.
/// How many seats the event of the run has.
fn seats_of(args: &SeatmapArgs) -> u32 {
    if args.venue {
        crate::fill::SEATS as u32
    } else {
        args.rows * args.seats_per_row
    }
}

/// The id of seat `index` (in layout order) of the event of the run.
fn seat_name(args: &SeatmapArgs, index: u32) -> String {
    if args.venue {
        crate::fill::seat_id(index as usize)
    } else {
        format!(
            "R{}-S{}",
            index / args.seats_per_row + 1,
            index % args.seats_per_row + 1
        )
    }
}

async fn take_seats(
    client: &reqwest::Client,
    url: &str,
    event_id: &str,
    args: &SeatmapArgs,
) -> anyhow::Result<()> {
    let total = seats_of(args);
    let step = (total as usize / args.taken.max(1)).max(1);
    for (n, index) in (0..total).step_by(step).take(args.taken).enumerate() {
        let seat = seat_name(args, index);
        let res = client
            .post(format!("{url}/api/orders/holds"))
            .bearer_auth(token(
                &format!("{:024x}", 0xa000_0000_0000u64 + n as u64),
                Role::User,
            )?)
            .json(&json!({"eventId": event_id, "seatIds": [seat]}))
            .send()
            .await?;
        if res.status() != 201 {
            bail!("taking {seat} answered {}", res.status());
        }
    }
    Ok(())
}

/// Hold one random seat, release it, again, until `stop`.
async fn churn(
    client: reqwest::Client,
    url: String,
    event_id: String,
    writer: usize,
    args: SeatmapArgs,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<u64> {
    let seats = seats_of(&args);
    let user = format!("{:024x}", 0xc000_0000_0000u64 + writer as u64);
    let token = token(&user, Role::User)?;
    let mut changes = 0;
    let mut n = writer as u32 * 7919;
    while !stop.load(Ordering::Relaxed) {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let index = n % seats;
        let seat = seat_name(&args, index);
        let res = client
            .post(format!("{url}/api/orders/holds"))
            .bearer_auth(&token)
            .json(&json!({"eventId": event_id, "seatIds": [seat]}))
            .send()
            .await?;
        if res.status() != 201 {
            continue;
        }
        let hold: Value = res.json().await?;
        let hold_id = hold["holdId"].as_str().unwrap_or_default();
        client
            .delete(format!("{url}/api/orders/holds/{hold_id}"))
            .bearer_auth(&token)
            .send()
            .await?;
        changes += 2;
    }
    Ok(changes)
}

pub async fn run(url: &str, args: &SeatmapArgs) -> anyhow::Result<()> {
    let readers = usize::try_from(args.target.connections)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(readers + args.writers)
        .build()?;
    let event_id = if args.venue {
        crate::fill::create_venue_event(&client, url).await?
    } else {
        create_event(&client, url, args.rows, args.seats_per_row).await?
    };
    take_seats(&client, url, &event_id, args).await?;
    println!(
        "seatmap against {url}: {} seats{} ({} taken), {readers} readers of {}, {} writers, {} s",
        seats_of(args),
        if args.venue { " of a venue" } else { "" },
        args.taken,
        args.view.describe(),
        args.writers,
        args.seconds
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..args.writers {
        writers.push(tokio::spawn(churn(
            client.clone(),
            url.to_string(),
            event_id.clone(),
            w,
            args.clone(),
            stop.clone(),
        )));
    }
    let run_for = Duration::from_secs(args.seconds);
    let bytes = Arc::new(AtomicU64::new(0));
    let not_modified = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..readers {
        let (client, url, event_id, mode) =
            (client.clone(), url.to_string(), event_id.clone(), args.view);
        let (bytes, not_modified) = (bytes.clone(), not_modified.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut failures = 0u64;
            let mut etag: Option<String> = None;
            while started.elapsed() < run_for {
                let t = Instant::now();
                let (query, revalidate) = match mode {
                    ReadMode::Full => ("", false),
                    ReadMode::Compact => ("?view=compact", false),
                    ReadMode::Revalidate => ("", true),
                };
                let outcome = fetch(&client, &url, &event_id, query, &mut etag, revalidate).await;
                match outcome {
                    Ok((read, was_304)) => {
                        latencies.record(t.elapsed());
                        bytes.fetch_add(read as u64, Ordering::Relaxed);
                        if was_304 {
                            not_modified.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let (maps, failures) = report::gather(workers).await?;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut changes = 0;
    for writer in writers {
        changes += writer.await??;
    }
    report::print("GET /api/orders/seats/:id", &maps, failures, elapsed);
    let answers = maps.len().max(1) as f64;
    let n304 = not_modified.load(Ordering::Relaxed);
    println!(
        "304 Not Modified              {n304} ({:.1}/s)",
        n304 as f64 / elapsed.as_secs_f64()
    );
    println!(
        "bytes per answer (wire)       {:.0}",
        bytes.load(Ordering::Relaxed) as f64 / answers
    );
    println!(
        "seat changes by writers       {changes} ({:.1}/s)",
        changes as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// The map (gzip), revalidated when `revalidate` is set; the bytes read (not parsed) and
/// whether it was a 304.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    event_id: &str,
    query: &str,
    etag: &mut Option<String>,
    revalidate: bool,
) -> anyhow::Result<(usize, bool)> {
    if !revalidate {
        *etag = None;
    }
    match get_map(client, url, event_id, query, etag).await? {
        None => Ok((0, true)),
        Some(response) => Ok((response.bytes().await?.len(), false)),
    }
}

/// Reads one stream, recording when each watched seat's change arrives.
async fn follow(
    response: reqwest::Response,
    sent: Arc<Mutex<std::collections::HashMap<String, Instant>>>,
    expected: usize,
) -> Latencies {
    let mut latencies = Latencies::default();
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while latencies.len() < expected {
        let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(10), body.next()).await
        else {
            break;
        };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if !block.contains("event: seats") && !block.contains("event:seats") {
                continue;
            }
            let Ok(delta) = serde_json::from_str::<Value>(&sse_data(&block)) else {
                continue;
            };
            let now = Instant::now();
            let sent = sent.lock().await;
            for seat in delta["seats"].as_array().into_iter().flatten() {
                if seat["state"] == "held"
                    && let Some(at) = seat["seatId"].as_str().and_then(|s| sent.get(s))
                {
                    latencies.record(now - *at);
                }
            }
        }
    }
    latencies
}

pub async fn streams(url: &str, args: &StreamArgs) -> anyhow::Result<()> {
    let (rows, per_row) = (100, 100);
    if args.changes > (rows * per_row) as usize {
        bail!("--changes must be at most {}", rows * per_row);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.streams + 1)
        .build()?;
    let event_id = create_event(&client, url, rows, per_row).await?;
    println!(
        "stream against {url}: {} open streams, {} changes one after another",
        args.streams, args.changes
    );
    let sent = Arc::new(Mutex::new(std::collections::HashMap::new()));
    let mut readers = Vec::new();
    for _ in 0..args.streams {
        let response = client
            .get(format!("{url}/api/orders/seats/{event_id}/stream"))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("stream answered {}", response.status());
        }
        readers.push(tokio::spawn(follow(response, sent.clone(), args.changes)));
    }
    // Let every stream read its snapshot first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writer = token("c000000000000000000000ff", Role::User)?;
    for n in 0..args.changes {
        let seat = format!("R{}-S{}", n as u32 / per_row + 1, n as u32 % per_row + 1);
        sent.lock().await.insert(seat.clone(), Instant::now());
        let res = client
            .post(format!("{url}/api/orders/holds"))
            .bearer_auth(&writer)
            .json(&json!({"eventId": event_id, "seatIds": [seat]}))
            .send()
            .await?;
        let status = res.status();
        if status == 201 {
            let hold: Value = res.json().await?;
            // Free the holder's slot for the next change; the release is a change too.
            client
                .delete(format!(
                    "{url}/api/orders/holds/{}",
                    hold["holdId"].as_str().unwrap_or_default()
                ))
                .bearer_auth(&writer)
                .send()
                .await?;
        } else {
            bail!("hold answered {status}");
        }
    }
    let mut all = Latencies::default();
    let mut short = 0;
    for reader in readers {
        let latencies = reader.await?;
        if latencies.len() < args.changes {
            short += 1;
        }
        all.extend(latencies);
    }
    report::print_latency("change → open stream", &all, short);
    println!("streams that missed a change  {short}");
    Ok(())
}

pub async fn holds(url: &str, args: &HoldsArgs) -> anyhow::Result<()> {
    const ROWS: u32 = 100;
    const PER_ROW: u32 = 200;
    let connections = usize::try_from(args.target.connections)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let mut events = Vec::new();
    for _ in 0..args.events {
        events.push(create_event(&client, url, ROWS, PER_ROW).await?);
    }
    let tokens: Vec<String> = (0..args.users.max(1))
        .map(|n| {
            token(
                &format!("{:024x}", 0xd000_0000_0000u64 + n as u64),
                Role::User,
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let (events, tokens) = (Arc::new(events), Arc::new(tokens));
    println!(
        "holds against {url}: {} events of {} seats, {} users, {connections} connections, {} s",
        events.len(),
        ROWS * PER_ROW,
        tokens.len(),
        args.seconds
    );
    let run_for = Duration::from_secs(args.seconds);
    let conflicts = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let (url, events, tokens, conflicts) = (
            url.to_string(),
            events.clone(),
            tokens.clone(),
            conflicts.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut failures = 0u64;
            let mut connection = None;
            let mut body = Vec::with_capacity(128);
            let mut n = (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            while started.elapsed() < run_for {
                n ^= n << 13;
                n ^= n >> 7;
                n ^= n << 17;
                let event = &events[(n % events.len() as u64) as usize];
                let seat = (n >> 20) % u64::from(ROWS * PER_ROW);
                body.clear();
                write!(
                    body,
                    r#"{{"eventId":"{event}","seatIds":["R{}-S{}"]}}"#,
                    seat / u64::from(PER_ROW) + 1,
                    seat % u64::from(PER_ROW) + 1
                )
                .expect("writing to a Vec cannot fail");
                let token = &tokens[((n >> 40) % tokens.len() as u64) as usize];
                let t = Instant::now();
                if connection.is_none() {
                    connection = wire::Connection::open(&url).await.ok();
                }
                let Some(open) = connection.as_mut() else {
                    failures += 1;
                    continue;
                };
                match open.post_json("/api/orders/holds", token, &body).await {
                    Ok(201) => latencies.record(t.elapsed()),
                    Ok(409) => {
                        conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => failures += 1,
                    Err(_) => {
                        // A broken connection is counted and replaced.
                        failures += 1;
                        connection = None;
                    }
                }
            }
            (latencies, failures)
        }));
    }
    let (taken, failures) = report::gather(workers).await?;
    let elapsed = started.elapsed();
    report::print("POST /api/orders/holds (201)", &taken, failures, elapsed);
    let refused = conflicts.load(Ordering::Relaxed);
    println!(
        "409 (seat taken, or user at the cap) {refused} ({:.1}/s)",
        refused as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
