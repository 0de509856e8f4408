//! `loadgen queue`: a hot on-sale behind an admission queue, through the gateway.
//!
//! 1. An event of 20,000 seats gets a queue that opens later. `--accounts` people join:
//!    the first `--early` share before the opening (as fast as `--connections` go), then the
//!    organizer moves the opening to now, and the rest join after it. Both rates are reported.
//! 2. `--connections` clients read the places of people spread over the line for
//!    `--read-seconds`: reads per second and latency.
//! 3. Every place is read once: the early joiners' places against their order of arrival
//!    (Kendall's tau, ≈ 0 for a uniform shuffle), and the late joiners' (1 when every late
//!    joiner who was answered before another one asked is ahead of them: first come, first
//!    served; the pairs broken are counted).
//! 4. The admission rate: how far admission has come, read twice `--rate-seconds` apart,
//!    against the rate set.
//! 5. Admissions: every admitted place asks for its admission twice (the same expiry both
//!    times, and the organizer's count of admissions equals the people who asked: nobody
//!    admitted twice); people not yet in are refused; holds without an admission, with
//!    someone else's, or with none at all are refused.
//! 6. `--buyers` admitted buyers hold and buy one seat each, `--purchases` in all, on the
//!    queued event, and the same on an event without a queue: the two rates side by side.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use holdfast_common::auth::Role;
use holdfast_common::when::{format_millis, now_millis};
use serde_json::{Value, json};

use crate::QueueArgs;
use crate::onsale::{create_event, token};
use crate::report::{self, Latencies};
use crate::waitlist::buy;
use crate::wire::Connection;

const ORGANIZER: &str = "64d3b00000000000000000aa";
const ROWS: u32 = 100;
const SEATS_PER_ROW: u32 = 200;

/// The id of queued person `n`.
fn person(n: u64) -> String {
    format!("{:024x}", 0xa000_0000_0000u64 + n)
}

/// One join: who, and when it was sent and answered (since the run's start).
#[derive(Clone, Copy)]
struct Join {
    person: u64,
    sent: Duration,
    answered: Duration,
}

/// People `range` join, `connections` at a time; their joins and latencies.
async fn join_all(
    url: &str,
    event_id: &str,
    tokens: &Arc<Vec<String>>,
    range: std::ops::Range<u64>,
    connections: u64,
    start: Instant,
) -> anyhow::Result<(Vec<Join>, Latencies)> {
    let next = Arc::new(AtomicU64::new(range.start));
    let path = format!("/api/orders/events/{event_id}/queue/me");
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (next, path, url, tokens) =
            (next.clone(), path.clone(), url.to_string(), tokens.clone());
        let end = range.end;
        workers.push(tokio::spawn(async move {
            let mut joins = Vec::new();
            let mut latencies = Latencies::default();
            let mut connection = Connection::open(&url).await?;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    break;
                }
                let sent = start.elapsed();
                let status = connection
                    .post_json(&path, &tokens[n as usize], b"{}")
                    .await?;
                let answered = start.elapsed();
                if status != 201 {
                    bail!("join of person {n} answered {status}");
                }
                latencies.record(answered - sent);
                joins.push(Join {
                    person: n,
                    sent,
                    answered,
                });
            }
            anyhow::Ok((joins, latencies))
        }));
    }
    let mut joins = Vec::new();
    let mut latencies = Latencies::default();
    for worker in workers {
        let (mine, measured) = worker.await??;
        joins.extend(mine);
        latencies.extend(measured);
    }
    Ok((joins, latencies))
}

/// Reads the places of people spread over the line for `run`, `connections` at a time.
async fn read_places(
    url: &str,
    event_id: &str,
    tokens: &Arc<Vec<String>>,
    connections: u64,
    run: Duration,
) -> anyhow::Result<(Latencies, u64)> {
    let started = Instant::now();
    let path = format!("/api/orders/events/{event_id}/queue/me");
    let people = tokens.len() as u64;
    let mut workers = Vec::new();
    for c in 0..connections {
        let (path, url, tokens) = (path.clone(), url.to_string(), tokens.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut failures = 0;
            let Ok(mut connection) = Connection::open(&url).await else {
                return (latencies, 1);
            };
            // A stride through the line, so the places read go from the head to the tail.
            let mut n = c * 7_919;
            while started.elapsed() < run {
                n = (n + 104_729) % people;
                let t = Instant::now();
                match connection.get(&path, &tokens[n as usize]).await {
                    Ok(200) => latencies.record(t.elapsed()),
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    report::gather(workers).await
}

/// Everyone's place, read once (`connections` at a time), by person.
async fn all_places(
    url: &str,
    event_id: &str,
    tokens: &Arc<Vec<String>>,
    connections: u64,
) -> anyhow::Result<Vec<u64>> {
    let next = Arc::new(AtomicU64::new(0));
    let path = format!("/api/orders/events/{event_id}/queue/me");
    let people = tokens.len() as u64;
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (next, path, url, tokens) =
            (next.clone(), path.clone(), url.to_string(), tokens.clone());
        workers.push(tokio::spawn(async move {
            let mut places = Vec::new();
            let mut connection = Connection::open(&url).await?;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= people {
                    break;
                }
                let status = connection.get(&path, &tokens[n as usize]).await?;
                let place = connection.number_after("place");
                match (status, place) {
                    (200, Some(place)) => places.push((n, place)),
                    _ => bail!("the place of person {n}: {status}"),
                }
            }
            anyhow::Ok(places)
        }));
    }
    let mut by_person = vec![0; people as usize];
    for worker in workers {
        for (n, place) in worker.await?? {
            by_person[n as usize] = place;
        }
    }
    Ok(by_person)
}

/// Inversions of `values` (pairs out of order), by merge sort.
fn inversions(values: &mut [u64]) -> u64 {
    if values.len() < 2 {
        return 0;
    }
    let middle = values.len() / 2;
    let (mut count, mut merged) = (0, Vec::with_capacity(values.len()));
    {
        let (left, right) = values.split_at_mut(middle);
        count += inversions(left) + inversions(right);
        let (mut i, mut j) = (0, 0);
        while i < left.len() && j < right.len() {
            if left[i] <= right[j] {
                merged.push(left[i]);
                i += 1;
            } else {
                merged.push(right[j]);
                count += (left.len() - i) as u64;
                j += 1;
            }
        }
        merged.extend_from_slice(&left[i..]);
        merged.extend_from_slice(&right[j..]);
    }
    values.copy_from_slice(&merged);
    count
}

/// Kendall's tau between the order of `places` as given and the places themselves (all
/// distinct): 1 when in order, -1 when reversed, about 0 for a random order.
fn kendall_tau(places: &[u64]) -> f64 {
    let n = places.len() as f64;
    if n < 2.0 {
        return 1.0;
    }
    let inverted = inversions(&mut places.to_vec()) as f64;
    1.0 - 4.0 * inverted / (n * (n - 1.0))
}

/// Among `joins` with their `places`: pairs where one was answered before the other was sent
/// but is placed behind it (first come, first served broken).
fn fifo_breaks(joins: &[Join], places: &[u64]) -> u64 {
    let mut by_answer: Vec<(Duration, u64)> = joins
        .iter()
        .map(|j| (j.answered, places[j.person as usize]))
        .collect();
    by_answer.sort_unstable();
    // The highest place among those answered up to each point.
    let mut highest = Vec::with_capacity(by_answer.len());
    let mut top = 0;
    for &(_, place) in &by_answer {
        top = top.max(place);
        highest.push(top);
    }
    joins
        .iter()
        .filter(|j| {
            let before = by_answer.partition_point(|&(answered, _)| answered < j.sent);
            before > 0 && highest[before - 1] > places[j.person as usize]
        })
        .count() as u64
}

async fn queue_view(client: &reqwest::Client, url: &str, event_id: &str) -> anyhow::Result<Value> {
    Ok(client
        .get(format!("{url}/api/orders/events/{event_id}/queue"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn configure(
    client: &reqwest::Client,
    url: &str,
    event_id: &str,
    opens_at_ms: i64,
    rate: u32,
) -> anyhow::Result<()> {
    client
        .put(format!("{url}/api/orders/events/{event_id}/queue"))
        .bearer_auth(token(ORGANIZER, Role::Organizer)?)
        .json(
            &json!({"opensAt": format_millis(opens_at_ms), "ratePerMinute": rate,
            "admissionWindowSeconds": 900, "earlyJoining": true}),
        )
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// `person`'s admission: `Ok(Some((pass, expiry)))`, `Ok(None)` when not in yet.
async fn admission(
    client: &reqwest::Client,
    url: &str,
    event_id: &str,
    token: &str,
) -> anyhow::Result<Option<(String, String)>> {
    let answer = client
        .post(format!(
            "{url}/api/orders/events/{event_id}/queue/admission"
        ))
        .bearer_auth(token)
        .send()
        .await?;
    match answer.status().as_u16() {
        200 => {
            let body: Value = answer.json().await?;
            Ok(Some((
                body["admission"]
                    .as_str()
                    .context("no admission")?
                    .to_string(),
                body["expiresAt"].as_str().context("no expiry")?.to_string(),
            )))
        }
        409 => Ok(None),
        other => bail!("admission answered {other}"),
    }
}

/// Every one of `people` asks for their admission twice, `connections` at a time; their
/// passes, and how many were answered another expiry the second time.
async fn admit_all(
    url: &str,
    event_id: &str,
    tokens: &Arc<Vec<String>>,
    people: &[u64],
    connections: u64,
) -> anyhow::Result<(Vec<(u64, String)>, u64)> {
    let people = Arc::new(people.to_vec());
    let next = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::new();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (people, next, tokens, client) =
            (people.clone(), next.clone(), tokens.clone(), client.clone());
        let (url, event_id) = (url.to_string(), event_id.to_string());
        workers.push(tokio::spawn(async move {
            let (mut passes, mut changed) = (Vec::new(), 0u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&n) = people.get(i) else { break };
                let token = &tokens[n as usize];
                let (pass, expiry) = admission(&client, &url, &event_id, token)
                    .await?
                    .context("an admitted place was refused")?;
                let (_, again) = admission(&client, &url, &event_id, token)
                    .await?
                    .context("an admission went away")?;
                changed += u64::from(again != expiry);
                passes.push((n, pass));
            }
            anyhow::Ok((passes, changed))
        }));
    }
    let (mut passes, mut changed) = (Vec::new(), 0);
    for worker in workers {
        let (mine, differently) = worker.await??;
        passes.extend(mine);
        changed += differently;
    }
    passes.sort_unstable();
    Ok((passes, changed))
}

/// `buyers` buyers buying one seat at a time of `event_id`, seats `first_seat` on, until
/// `purchases` are done, each with their admission if given; the buy flows' latencies and
/// failures.
async fn buy_seats(
    url: &str,
    event_id: &str,
    buyers: &[(String, Option<String>)],
    first_seat: u64,
    purchases: u64,
) -> anyhow::Result<(Latencies, u64)> {
    let next = Arc::new(AtomicU64::new(first_seat));
    let end = first_seat + purchases;
    let mut workers = Vec::new();
    for (token, pass) in buyers {
        let (url, event_id, next) = (url.to_string(), event_id.to_string(), next.clone());
        let (token, pass) = (token.clone(), pass.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Latencies::default();
            let mut failures = 0;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    break;
                }
                let per_row = u64::from(SEATS_PER_ROW);
                let seat = format!("R{}-S{}", 1 + n / per_row, 1 + n % per_row);
                let t = Instant::now();
                match buy(&client, &url, &token, &event_id, &[seat], pass.as_deref()).await {
                    Ok(()) => latencies.record(t.elapsed()),
                    Err(_) => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    report::gather(workers).await
}

pub async fn run(url: &str, args: &QueueArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let connections = args.target.connections;
    let accounts = args.accounts;
    let early = ((accounts as f64) * args.early).round() as u64;
    println!(
        "queue scenario against {url}: {accounts} accounts ({early} before the opening), \
         {connections} connections, admission at {} a minute",
        args.rate
    );
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..accounts)
            .map(|n| token(&person(n), Role::User))
            .collect::<anyhow::Result<_>>()?,
    );
    let event_id = create_event(&client, url, ROWS, SEATS_PER_ROW).await?;
    // Opens an hour from now: moved to the end of the early joins below.
    configure(&client, url, &event_id, now_millis() + 3_600_000, args.rate).await?;

    // 1. Joins, before and after the opening.
    let start = Instant::now();
    let (mut early_joins, early_latencies) =
        join_all(url, &event_id, &tokens, 0..early, connections, start).await?;
    let early_elapsed = start.elapsed();
    report::print(
        "POST …/queue/me (before)",
        &early_latencies,
        0,
        early_elapsed,
    );
    configure(&client, url, &event_id, now_millis() + 200, args.rate).await?;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let late_start = start.elapsed();
    let (late_joins, late_latencies) =
        join_all(url, &event_id, &tokens, early..accounts, connections, start).await?;
    let late_elapsed = start.elapsed() - late_start;
    report::print("POST …/queue/me (after)", &late_latencies, 0, late_elapsed);
    let joining = early_elapsed + late_elapsed;
    println!(
        "{accounts} joins in {:.2} s of joining: {:.0} joins/s",
        joining.as_secs_f64(),
        accounts as f64 / joining.as_secs_f64()
    );

    // 2. Position reads.
    let run = Duration::from_secs(args.read_seconds);
    let started = Instant::now();
    let (reads, failed) = read_places(url, &event_id, &tokens, connections, run).await?;
    report::print("GET …/queue/me (place)", &reads, failed, started.elapsed());

    // 3. The order: a shuffle before the opening, first come first served after.
    let places = all_places(url, &event_id, &tokens, connections).await?;
    early_joins.sort_unstable_by_key(|j| j.sent);
    let early_places: Vec<u64> = early_joins
        .iter()
        .map(|j| places[j.person as usize])
        .collect();
    let late_places: Vec<u64> = {
        let mut by_answer = late_joins.clone();
        by_answer.sort_unstable_by_key(|j| j.answered);
        by_answer
            .iter()
            .map(|j| places[j.person as usize])
            .collect()
    };
    let mut distinct = places.clone();
    distinct.sort_unstable();
    distinct.dedup();
    ensure!(
        distinct.len() as u64 == accounts && distinct.first() == Some(&1),
        "places are not 1 to {accounts}, one each"
    );
    ensure!(
        early_places.iter().all(|&p| p <= early) && late_places.iter().all(|&p| p > early),
        "a late joiner is placed among the early ones"
    );
    let breaks = fifo_breaks(&late_joins, &places);
    println!(
        "order: Kendall's tau (arrival vs place) early {:+.4}, late {:+.4}; late joiners placed \
         behind someone who asked after they were answered: {breaks}",
        kendall_tau(&early_places),
        kendall_tau(&late_places),
    );

    // 4. The admission rate.
    let first = queue_view(&client, url, &event_id).await?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.rate_seconds)).await;
    let second = queue_view(&client, url, &event_id).await?;
    let elapsed = t0.elapsed();
    let admitted =
        second["admittedUpTo"].as_u64().unwrap_or(0) - first["admittedUpTo"].as_u64().unwrap_or(0);
    let measured = admitted as f64 * 60.0 / elapsed.as_secs_f64();
    println!(
        "admission rate: {admitted} places in {:.2} s = {measured:.0} a minute, set {} ({:+.2}%)",
        elapsed.as_secs_f64(),
        args.rate,
        (measured / f64::from(args.rate) - 1.0) * 100.0
    );

    // 5. Admissions: each once, the same when asked again; nobody else in.
    let admitted_up_to = second["admittedUpTo"].as_u64().unwrap_or(0).min(accounts);
    let in_now: Vec<u64> = (0..accounts)
        .filter(|&n| places[n as usize] <= admitted_up_to)
        .collect();
    let (passes, repeated_differently) =
        admit_all(url, &event_id, &tokens, &in_now, connections).await?;
    let sales: Value = client
        .get(format!("{url}/api/orders/events/{event_id}/sales"))
        .bearer_auth(token(ORGANIZER, Role::Organizer)?)
        .send()
        .await?
        .json()
        .await?;
    let last = (0..accounts)
        .max_by_key(|&n| places[n as usize])
        .context("nobody")?;
    let refused = admission(&client, url, &event_id, &tokens[last as usize])
        .await?
        .is_none();
    println!(
        "admissions: {} places in, {} asked twice, {repeated_differently} answered differently; \
         the organizer counts {} admissions; the last place refused: {refused}",
        in_now.len(),
        passes.len(),
        sales["queue"]["admitted"]
    );
    ensure!(
        sales["queue"]["admitted"].as_u64() == Some(passes.len() as u64)
            && repeated_differently == 0
            && refused,
        "someone was admitted twice, or out of turn"
    );
    let mut holds_refused = 0;
    let mut holds_tried = 0;
    let (_, someone_elses) = passes.first().context("nobody was admitted")?;
    for n in (0..accounts).step_by((accounts / 200).max(1) as usize) {
        for pass in [None, Some(someone_elses.as_str())] {
            if pass.is_some() && passes.first().is_some_and(|(first, _)| *first == n) {
                continue;
            }
            let mut request = client
                .post(format!("{url}/api/orders/holds"))
                .bearer_auth(&tokens[n as usize])
                .json(&json!({"eventId": event_id, "seatIds": ["R100-S200"]}));
            if let Some(pass) = pass {
                request = request.header("Admission-Pass", pass);
            }
            let answer = request.send().await?;
            holds_tried += 1;
            holds_refused += u64::from(answer.status() == 403);
        }
    }
    println!("holds without an admission of one's own: {holds_refused} of {holds_tried} refused");
    ensure!(
        holds_refused == holds_tried,
        "a hold passed without admission"
    );

    // 6. Admitted buyers buy as fast as buyers of an event without a queue.
    let buyers: Vec<(String, Option<String>)> = passes
        .iter()
        .take(args.buyers)
        .map(|(n, pass)| (tokens[*n as usize].clone(), Some(pass.clone())))
        .collect();
    ensure!(!buyers.is_empty(), "no admitted buyers");
    let plain: Vec<(String, Option<String>)> = buyers
        .iter()
        .map(|(token, _)| (token.clone(), None))
        .collect();
    let open_event = create_event(&client, url, ROWS, SEATS_PER_ROW).await?;
    let runs = [
        ("buy, no queue", &open_event, &plain, 0),
        ("buy, admitted (queue)", &event_id, &buyers, 0),
        ("buy, no queue (again)", &open_event, &plain, args.purchases),
    ];
    for (label, event, buyers, first_seat) in runs {
        let started = Instant::now();
        let (bought, failed) = buy_seats(url, event, buyers, first_seat, args.purchases).await?;
        report::print(label, &bought, failed, started.elapsed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tau_is_one_in_order_minus_one_reversed_and_counts_inversions() {
        assert_eq!(kendall_tau(&[1, 2, 3, 4]), 1.0);
        assert_eq!(kendall_tau(&[4, 3, 2, 1]), -1.0);
        // One swap of six pairs: 1 - 4/12.
        assert!((kendall_tau(&[2, 1, 3, 4]) - (1.0 - 4.0 / 12.0)).abs() < 1e-12);
        assert_eq!(inversions(&mut [3, 1, 2]), 2);
    }

    #[test]
    fn fifo_breaks_count_only_people_answered_before_another_asked() {
        let ms = Duration::from_millis;
        let join = |person, sent, answered| Join {
            person,
            sent: ms(sent),
            answered: ms(answered),
        };
        // 0 answered at 5 before 1 asked at 6: 0 must be ahead. 2 overlapped 1: either order.
        let joins = [join(0, 0, 5), join(1, 6, 9), join(2, 7, 8)];
        assert_eq!(fifo_breaks(&joins, &[1, 3, 2]), 0);
        assert_eq!(fifo_breaks(&joins, &[3, 1, 2]), 2, "0 is behind 1 and 2");
    }
}
