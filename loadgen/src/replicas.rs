//! Many replicas, one killed: Holdfast as separate processes on a shared Redis (a cluster
//! when `REDIS_CLUSTER_URLS` is set), RabbitMQ and MongoDB server, and an on-sale through two
//! gateways during which one orders replica and one gateway are SIGKILLed.
//!
//! It starts auth, ml, 2 events, `--orders` orders, 2 notifications and 2 gateway processes
//! (the binaries next to this one, or in `--bin-dir`), each gateway calling every replica in
//! turn. Then:
//!
//! 1. **price**: an event's price changed through the gateways (one events replica or the
//!    other) is what every orders replica charges, within `LAYOUT_CACHE_SECONDS`;
//! 2. **sale**: `--buyers` buyers, `--connections` at a time, half through each gateway (the
//!    other one when theirs is gone), hold 1–4 seats, pay and buy with an idempotency key,
//!    retrying what failed on the way (a 5xx, a dropped connection); with `--kill`, when
//!    `--kill-at` of them are done, the last orders replica and the second gateway are killed;
//!    with `--restart-broker <command>`, RabbitMQ is restarted when 60% are done;
//! 3. **checks**: no seat in two acknowledged orders; every acknowledged order in its buyer's
//!    orders, on the bus (`order.purchased`, one message id) and mailed once; every surviving
//!    orders replica's seat stream saw every sold seat, whichever replica sold it; after the
//!    hold TTL no seat is still held; a waitlist fed by cancellations gets each freed seat
//!    offered once (`waitlist.offered` once per person, one offer mail each).
//!
//! It fails (exit status 1) when a check fails, and reports buyers per second.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use holdfast_common::auth::Role;
use holdfast_common::bus::{BusMessage, MessageBus, RabbitBus};
use holdfast_common::testing::smtp::SmtpSink;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::ReplicasArgs;
use crate::onsale::{PRICE, Rng, create_event, pick, token};
use crate::seatmap::{Seat, parse_seat};

/// The key every orders replica signs and checks tickets with (one per run would do as well:
/// what matters is that they share it).
const TICKET_KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
/// How long orders may cache a layout in this run: the window a price change must cross.
const LAYOUT_CACHE_SECONDS: u64 = 5;
/// How often a step is tried before the buyer gives up.
const ATTEMPTS: usize = 20;

/// One running process of the deployment.
struct Process {
    name: String,
    url: String,
    child: Child,
}

/// The deployment: its processes and where to reach them.
struct Deployment {
    processes: Vec<Process>,
    gateways: Vec<String>,
    orders: Vec<String>,
    /// The processes' data folders and logs.
    data: tempfile::TempDir,
}

impl Deployment {
    fn kill(&mut self, url: &str) -> anyhow::Result<String> {
        let process = self
            .processes
            .iter_mut()
            .find(|p| p.url == url)
            .context("no such process")?;
        process.child.start_kill()?;
        Ok(process.name.clone())
    }
}

/// Ports nobody listens on, all different: each is held until all are chosen.
fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let held = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    held.iter()
        .map(|listener| Ok(listener.local_addr()?.port()))
        .collect()
}

fn urls(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Waits until `process` answers its health check; fails with the end of its log when it
/// exits or does not answer within 90 s.
async fn wait_healthy(
    client: &reqwest::Client,
    process: &mut Process,
    logs: &std::path::Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let log_tail = |process: &Process| {
        let log =
            std::fs::read_to_string(logs.join(format!("{}.log", process.name))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    };
    while Instant::now() < deadline {
        if let Some(status) = process.child.try_wait()? {
            bail!("{} exited ({status}):\n{}", process.name, log_tail(process));
        }
        if let Ok(res) = client.get(format!("{}/health", process.url)).send().await
            && res.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "{} did not become healthy at {}:\n{}",
        process.name,
        process.url,
        log_tail(process)
    )
}

/// Starts every process; answers once all are healthy.
async fn deploy(
    args: &ReplicasArgs,
    smtp_url: &str,
    client: &reqwest::Client,
) -> anyhow::Result<Deployment> {
    let bin_dir: PathBuf = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no folder")?
            .to_path_buf(),
    };
    let mut ports = free_ports(8 + args.orders)?.into_iter();
    let mut take = |n: usize| ports.by_ref().take(n).collect::<Vec<u16>>();
    let (auth, ml) = (take(1)[0], take(1)[0]);
    let (events, orders, notifications, gateways) = (take(2), take(args.orders), take(2), take(2));
    let data = tempfile::tempdir()?;
    let prefix = format!("replicas_{}", std::process::id());
    let mut common: Vec<(&str, String)> = vec![
        ("APP_ENV", "development".into()),
        ("RUST_LOG", "warn".into()),
        ("LOG_FORMAT", "json".into()),
        ("DEMO_SEED", "false".into()),
        ("RATE_LIMIT_DISABLED", "true".into()),
        ("AUTH_SERVICE_URL", urls(&[auth])),
        ("EVENTS_SERVICE_URL", urls(&events)),
        ("ORDERS_SERVICE_URL", urls(&orders)),
        ("ML_SERVICE_URL", urls(&[ml])),
        ("NOTIFICATIONS_SERVICE_URL", urls(&notifications)),
        ("MONGODB_DATABASE_PREFIX", prefix),
        ("HOLD_TTL_SECONDS", args.hold_ttl_seconds.to_string()),
        ("LAYOUT_CACHE_SECONDS", LAYOUT_CACHE_SECONDS.to_string()),
        ("TICKET_SIGNING_KEYS", TICKET_KEY.into()),
        ("SMTP_URL", smtp_url.into()),
        ("MAIL_RETRY_BASE_MS", "200".into()),
        ("WAITLIST_OFFER_SECONDS", "120".into()),
    ];
    // The cluster when there is one (a process takes one TTL store, not both).
    let redis = ["REDIS_CLUSTER_URLS", "REDIS_URL"]
        .into_iter()
        .find(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
    for shared in redis.into_iter().chain(["AMQP_URL", "MONGODB_URI"]) {
        if let Ok(value) = std::env::var(shared) {
            common.push((shared, value));
        }
    }
    for needed in ["AMQP_URL", "MONGODB_URI"] {
        if std::env::var(needed).is_err() {
            bail!("{needed} must be set: the replicas share RabbitMQ and MongoDB");
        }
    }
    if std::env::var("REDIS_URL").is_err() && std::env::var("REDIS_CLUSTER_URLS").is_err() {
        bail!("REDIS_CLUSTER_URLS (or REDIS_URL) must be set: the replicas share Redis");
    }
    let mut plan: Vec<(String, &str, &str, u16)> = vec![
        ("auth".into(), "holdfast-auth", "AUTH_PORT", auth),
        ("ml".into(), "holdfast-ml", "ML_PORT", ml),
    ];
    let mut add = |kind: &str, binary: &'static str, variable: &'static str, ports: &[u16]| {
        for (n, port) in ports.iter().enumerate() {
            plan.push((format!("{kind}-{}", n + 1), binary, variable, *port));
        }
    };
    add("events", "holdfast-events", "EVENTS_PORT", &events);
    add("orders", "holdfast-orders", "ORDERS_PORT", &orders);
    add(
        "notifications",
        "holdfast-notifications",
        "NOTIFICATIONS_PORT",
        &notifications,
    );
    add("gateway", "holdfast-gateway", "GATEWAY_PORT", &gateways);
    let mut processes = Vec::new();
    for (name, binary, variable, port) in plan {
        let dir = data.path().join(&name);
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(data.path().join(format!("{name}.log")))?;
        let child = Command::new(bin_dir.join(binary))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(common.iter().map(|(k, v)| (*k, v.as_str())))
            .env(variable, port.to_string())
            .env("DATA_DIR", &dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin_dir.join(binary).display()))?;
        processes.push(Process {
            name,
            url: format!("http://127.0.0.1:{port}"),
            child,
        });
    }
    for process in &mut processes {
        wait_healthy(client, process, data.path()).await?;
    }
    let (orders, gateways) = (urls(&orders), urls(&gateways));
    Ok(Deployment {
        processes,
        gateways: gateways.split(',').map(String::from).collect(),
        orders: orders.split(',').map(String::from).collect(),
        data,
    })
}

/// What the run saw go wrong; empty when every check held.
#[derive(Default)]
struct Verdict {
    failures: Vec<String>,
}

impl Verdict {
    fn check(&mut self, holds: bool, what: impl Into<String>) {
        let what = what.into();
        println!("{} {what}", if holds { "ok  " } else { "FAIL" });
        if !holds {
            self.failures.push(what);
        }
    }
}

/// The durable queue that watches the bus for the run (durable: it must outlive a broker
/// restart), deleted at the end.
fn observer_queue() -> String {
    format!("loadgen.observer.{}", std::process::id())
}

/// Everything published on the bus during the run, as seen by a queue of our own.
async fn observe_bus(bus: &RabbitBus) -> anyhow::Result<Arc<Mutex<Vec<BusMessage>>>> {
    let mut subscription = bus
        .subscribe(&observer_queue(), &["order.purchased", "waitlist.offered"])
        .await?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    tokio::spawn(async move {
        while let Some(delivery) = subscription.next().await {
            into.lock().await.push(delivery.message.clone());
            let _ = delivery.ack().await;
        }
    });
    Ok(seen)
}

/// Every seat a stream reported sold, until `stop`.
async fn follow_sales(
    client: reqwest::Client,
    url: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<HashSet<String>> {
    let response = client.get(url).send().await?.error_for_status()?;
    let mut body = response.bytes_stream();
    let (mut text, mut sold) = (String::new(), HashSet::new());
    while !stop.load(Ordering::Relaxed) {
        let Ok(next) = tokio::time::timeout(Duration::from_millis(500), body.next()).await else {
            continue;
        };
        let Some(chunk) = next else { break };
        text.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let Ok(delta) = serde_json::from_str::<Value>(&crate::seatmap::sse_data(&block)) else {
                continue;
            };
            for seat in delta["seats"].as_array().into_iter().flatten() {
                if seat["state"] == "reserved"
                    && let Some(id) = seat["seatId"].as_str()
                {
                    sold.insert(id.to_string());
                }
            }
        }
    }
    Ok(sold)
}

/// The gateways a buyer may use: theirs first, the other one when theirs is gone.
struct Gateways {
    urls: Vec<String>,
}

impl Gateways {
    /// Sends `build(gateway)` until it is answered with something other than a 5xx, trying the
    /// gateways in turn from `first`; answers the status and body.
    async fn send(
        &self,
        first: usize,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<(u16, Value)> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let gateway = &self.urls[(first + attempt) % self.urls.len()];
            match build(gateway).send().await {
                Ok(res) if res.status().is_server_error() => {
                    last = format!("{} from {gateway}", res.status());
                }
                Ok(res) => {
                    let status = res.status().as_u16();
                    return Ok((status, res.json().await.unwrap_or_default()));
                }
                Err(error) => last = format!("{error} from {gateway}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("no answer after {ATTEMPTS} attempts: {last}")
    }
}

/// A purchase of a hold: who, what, and its idempotency key.
struct Purchase<'a> {
    token: &'a str,
    event_id: &'a str,
    hold_id: &'a str,
    seats: &'a [String],
    amount: usize,
    key: String,
}

impl Gateways {
    /// Pays for `purchase`'s hold (an intent, confirmed) and buys it, each step retried as
    /// [`Gateways::send`] does; answers the purchase's status and body.
    async fn pay_and_buy(
        &self,
        client: &reqwest::Client,
        first: usize,
        purchase: &Purchase<'_>,
    ) -> anyhow::Result<(u16, Value)> {
        let (_, intent) = self
            .send(first, |gw| {
                client
                    .post(format!("{gw}/api/orders/payments/intent"))
                    .bearer_auth(purchase.token)
                    .json(&json!({"amount": purchase.amount, "currency": "INR"}))
            })
            .await?;
        self.send(first, |gw| {
            client
                .post(format!("{gw}/api/orders/payments/confirm"))
                .bearer_auth(purchase.token)
                .json(&json!({"paymentIntentId": intent["paymentIntentId"], "clientSecret": intent["clientSecret"]}))
        })
        .await?;
        self.send(first, |gw| {
            client
                .post(format!("{gw}/api/orders/purchase"))
                .bearer_auth(purchase.token)
                .header("idempotency-key", &purchase.key)
                .json(&json!({
                    "eventId": purchase.event_id,
                    "holdId": purchase.hold_id,
                    "seatIds": purchase.seats,
                    "paymentIntentId": intent["paymentIntentId"],
                }))
        })
        .await
    }
}

/// One acknowledged purchase.
struct Bought {
    order_id: String,
    token: String,
    email: String,
    seats: Vec<String>,
}

/// A buyer: holds up to five times (other seats after a 409), pays and buys; answers the order
/// if the purchase was acknowledged.
async fn buyer(
    client: &reqwest::Client,
    gateways: &Gateways,
    event_id: &str,
    args: &ReplicasArgs,
    index: usize,
) -> anyhow::Result<Option<Bought>> {
    let user_id = format!("{:012x}{:012x}", std::process::id(), 0xc000_0000 + index);
    let email = format!("{user_id}@example.com");
    let token = token(&user_id, Role::User)?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0x2545_F491));
    let mut unavailable: HashSet<Seat> = HashSet::new();
    let first = index % 2;
    for _ in 0..5 {
        let Some(seats) = pick(&mut rng, &unavailable, args.rows, args.seats_per_row) else {
            return Ok(None);
        };
        let (status, body) = gateways
            .send(first, |gw| {
                client
                    .post(format!("{gw}/api/orders/holds"))
                    .bearer_auth(&token)
                    .json(&json!({"eventId": event_id, "seatIds": seats}))
            })
            .await?;
        if status == 409 {
            for seat in body["conflicts"].as_array().into_iter().flatten() {
                if let Some(seat) = seat.as_str().and_then(parse_seat) {
                    unavailable.insert(seat);
                }
            }
            continue;
        }
        if status != 201 {
            bail!("hold answered {status}: {body}");
        }
        let hold_id = body["holdId"].as_str().context("no holdId")?.to_string();
        let purchase = Purchase {
            token: &token,
            event_id,
            hold_id: &hold_id,
            seats: &seats,
            amount: PRICE as usize * seats.len(),
            key: format!("replicas-{index}"),
        };
        let (status, order) = gateways.pay_and_buy(client, first, &purchase).await?;
        if status != 201 {
            // The hold ran out or was lost with a killed replica: its seats come free at its TTL.
            return Ok(None);
        }
        return Ok(Some(Bought {
            order_id: order["orderId"].as_str().context("no orderId")?.to_string(),
            token,
            email,
            seats,
        }));
    }
    Ok(None)
}

/// Changes a fresh event's price through the gateways, then finds when each orders replica
/// charges it (a purchase there at the new price goes through): the longest wait.
async fn price_change_reaches_every_replica(
    client: &reqwest::Client,
    deployment: &Deployment,
) -> anyhow::Result<Duration> {
    let gateway = &deployment.gateways[0];
    let event_id = create_event(client, gateway, 1, 2 * deployment.orders.len() as u32).await?;
    // Every replica reads (and caches) the layout at the old price first.
    for orders in &deployment.orders {
        client
            .get(format!("{orders}/seats/{event_id}"))
            .send()
            .await?
            .error_for_status()?;
    }
    let organizer = token("64d3b00000000000000000aa", Role::Organizer)?;
    let new_price = PRICE * 3 / 2;
    let changed = client
        .put(format!("{gateway}/api/events/{event_id}"))
        .bearer_auth(&organizer)
        .json(&json!({"price": new_price}))
        .send()
        .await?;
    if !changed.status().is_success() {
        bail!("the price change answered {}", changed.status());
    }
    let changed_at = Instant::now();
    let mut slowest = Duration::ZERO;
    for (n, orders) in deployment.orders.iter().enumerate() {
        let buyer = token(&format!("{:024x}", 0xd00d_0000 + n), Role::User)?;
        let seat = format!("R1-S{}", 2 * n + 1);
        let held: Value = client
            .post(format!("{orders}/holds"))
            .bearer_auth(&buyer)
            .json(&json!({"eventId": event_id, "seatIds": [seat]}))
            .send()
            .await?
            .json()
            .await?;
        let hold_id = held["holdId"].as_str().context("no holdId")?;
        loop {
            let intent: Value = client
                .post(format!("{orders}/payments/intent"))
                .bearer_auth(&buyer)
                .json(&json!({"amount": new_price, "currency": "INR"}))
                .send()
                .await?
                .json()
                .await?;
            client
                .post(format!("{orders}/payments/confirm"))
                .bearer_auth(&buyer)
                .json(&json!({"paymentIntentId": intent["paymentIntentId"], "clientSecret": intent["clientSecret"]}))
                .send()
                .await?;
            let bought = client
                .post(format!("{orders}/purchase"))
                .bearer_auth(&buyer)
                .json(&json!({"eventId": event_id, "holdId": hold_id, "seatIds": [seat], "paymentIntentId": intent["paymentIntentId"]}))
                .send()
                .await?;
            if bought.status().as_u16() == 201 {
                slowest = slowest.max(changed_at.elapsed());
                break;
            }
            if changed_at.elapsed() > Duration::from_secs(2 * LAYOUT_CACHE_SECONDS) {
                bail!("{orders} still charges the old price");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(slowest)
}

/// Sells out a small event, lines people up on its waitlist, cancels orders: answers the
/// waitlisted users and how many seats were freed.
async fn waitlist_round(
    client: &reqwest::Client,
    gateway: &Gateways,
) -> anyhow::Result<(String, Vec<String>, usize)> {
    let event_id = create_event(client, &gateway.urls[0], 1, 4).await?;
    let mut orders = Vec::new();
    for n in 1..=4 {
        let buyer = token(&format!("{:024x}", 0xe000_0000_u64 + n), Role::User)?;
        let seat = format!("R1-S{n}");
        let (_, held) = gateway
            .send(0, |gw| {
                client
                    .post(format!("{gw}/api/orders/holds"))
                    .bearer_auth(&buyer)
                    .json(&json!({"eventId": event_id, "seatIds": [seat]}))
            })
            .await?;
        let hold_id = held["holdId"].as_str().unwrap_or_default().to_string();
        let purchase = Purchase {
            token: &buyer,
            event_id: &event_id,
            hold_id: &hold_id,
            seats: std::slice::from_ref(&seat),
            amount: PRICE as usize,
            key: format!("waitlist-{n}"),
        };
        let (status, order) = gateway.pay_and_buy(client, 0, &purchase).await?;
        let order_id = order["orderId"]
            .as_str()
            .with_context(|| format!("purchase answered {status}: {order}"))?;
        orders.push((buyer, order_id.to_string()));
    }
    let mut waiting = Vec::new();
    for n in 1..=3 {
        let user_id = format!("{:024x}", 0xf000_0000_u64 + n);
        let user = token(&user_id, Role::User)?;
        let (status, body) = gateway
            .send(0, |gw| {
                client
                    .post(format!("{gw}/api/orders/events/{event_id}/waitlist"))
                    .bearer_auth(&user)
                    .json(&json!({"seats": 1}))
            })
            .await?;
        if status != 201 {
            bail!("joining the waitlist answered {status}: {body}");
        }
        waiting.push(user_id);
    }
    let freed = 2;
    for (buyer, order_id) in orders.iter().take(freed) {
        let (status, body) = gateway
            .send(0, |gw| {
                client
                    .post(format!("{gw}/api/orders/orders/{order_id}/cancel"))
                    .bearer_auth(buyer)
            })
            .await?;
        if status != 200 {
            bail!("the cancellation answered {status}: {body}");
        }
    }
    Ok((event_id, waiting, freed))
}

/// The seats the stream of `orders` shows held right now.
async fn held_now(client: &reqwest::Client, orders: &str, event_id: &str) -> anyhow::Result<usize> {
    let stream = format!("{orders}/seats/{event_id}/stream");
    let (seen, _) = crate::seatmap::first_snapshot(client, &stream).await?;
    let held: Vec<&Seat> = seen
        .unavailable
        .iter()
        .filter(|seat| !seen.reserved.contains(*seat))
        .collect();
    if !held.is_empty() {
        eprintln!("held now: {held:?}");
    }
    Ok(held.len())
}

async fn delete_queue(url: &str, queue: &str) -> anyhow::Result<()> {
    let connection =
        lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
        .await?;
    connection.close(200, "done".into()).await?;
    Ok(())
}

pub async fn run(args: &ReplicasArgs) -> anyhow::Result<()> {
    if !(1..=8).contains(&args.orders) {
        bail!("--orders must be 1 to 8");
    }
    if args.kill && args.orders < 2 {
        bail!("--kill needs at least 2 orders replicas: one is killed");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let sink = SmtpSink::start().await;
    let amqp_url = std::env::var("AMQP_URL").context("AMQP_URL must be set")?;
    let bus = RabbitBus::connect(&amqp_url, holdfast_common::bus::EXCHANGE).await?;
    let published = observe_bus(&bus).await?;
    let mut deployment = deploy(args, &sink.url, &client).await?;
    println!(
        "replicas: auth, ml, 2 events, {} orders, 2 notifications, 2 gateways as processes; TTL store {}",
        args.orders,
        if std::env::var("REDIS_CLUSTER_URLS").is_ok() {
            "Redis Cluster"
        } else {
            "Redis"
        }
    );
    let mut verdict = Verdict::default();

    let slowest = price_change_reaches_every_replica(&client, &deployment).await;
    verdict.check(
        slowest.is_ok(),
        format!(
            "a price change through the gateways is charged by every orders replica within {LAYOUT_CACHE_SECONDS} s ({})",
            match &slowest {
                Ok(took) => format!("the last after {} ms", took.as_millis()),
                Err(error) => error.to_string(),
            }
        ),
    );

    let event_id = create_event(
        &client,
        &deployment.gateways[0],
        args.rows,
        args.seats_per_row,
    )
    .await?;
    let stop_streams = Arc::new(AtomicBool::new(false));
    let survivors: Vec<String> = if args.kill {
        deployment.orders[..deployment.orders.len() - 1].to_vec()
    } else {
        deployment.orders.clone()
    };
    // Streams last the whole run: a client without the requests' timeout.
    let stream_client = reqwest::Client::new();
    let streams: Vec<_> = survivors
        .iter()
        .map(|orders| {
            tokio::spawn(follow_sales(
                stream_client.clone(),
                format!("{orders}/seats/{event_id}/stream"),
                stop_streams.clone(),
            ))
        })
        .collect();

    let gateways = Arc::new(Gateways {
        urls: deployment.gateways.clone(),
    });
    let bought = Arc::new(Mutex::new(Vec::<Bought>::new()));
    let (next, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (client, gateways, bought, next, done, event_id) = (
            client.clone(),
            gateways.clone(),
            bought.clone(),
            next.clone(),
            done.clone(),
            event_id.clone(),
        );
        let args = args.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= args.buyers {
                    return;
                }
                match buyer(&client, &gateways, &event_id, &args, index).await {
                    Ok(Some(order)) => bought.lock().await.push(order),
                    Ok(None) => {}
                    Err(error) => eprintln!("buyer {index}: {error:#}"),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    if args.kill {
        let threshold = (args.buyers as f64 * args.kill_at) as usize;
        while done.load(Ordering::Relaxed) < threshold {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let orders = deployment
            .orders
            .last()
            .context("no orders replica")?
            .clone();
        let gateway = deployment.gateways[1].clone();
        let (killed_orders, killed_gateway) =
            (deployment.kill(&orders)?, deployment.kill(&gateway)?);
        println!(
            "killed {killed_orders} and {killed_gateway} (SIGKILL) after {threshold} buyers, {:.1} s into the sale",
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(command) = &args.restart_broker {
        let threshold = args.buyers * 3 / 5;
        while done.load(Ordering::Relaxed) < threshold {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let at = started.elapsed();
        let restarted = Command::new("sh")
            .args(["-c", command])
            .stdout(Stdio::null())
            .status()
            .await?;
        if !restarted.success() {
            bail!("the broker restart command failed: {restarted}");
        }
        println!(
            "restarted RabbitMQ after {threshold} buyers, {:.1} s into the sale (took {:.1} s)",
            at.as_secs_f64(),
            (started.elapsed() - at).as_secs_f64()
        );
    }
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed();
    let bought = std::mem::take(&mut *bought.lock().await);
    println!(
        "sale: {} buyers, {} acknowledged purchases in {:.1} s: {:.1} buyers/s, {:.1} purchases/s",
        args.buyers,
        bought.len(),
        elapsed.as_secs_f64(),
        args.buyers as f64 / elapsed.as_secs_f64(),
        bought.len() as f64 / elapsed.as_secs_f64()
    );

    // No seat in two acknowledged orders.
    let mut owners: HashMap<&str, usize> = HashMap::new();
    for order in &bought {
        for seat in &order.seats {
            *owners.entry(seat.as_str()).or_default() += 1;
        }
    }
    let double = owners.values().filter(|n| **n > 1).count();
    verdict.check(double == 0, format!("{double} seats double-sold"));

    // Every acknowledged order is in its buyer's orders.
    let gateway = deployment.gateways[0].clone();
    let survivor = Gateways {
        urls: vec![gateway.clone()],
    };
    let mut missing = 0;
    for order in &bought {
        let (status, mine) = survivor
            .send(0, |gw| {
                client
                    .get(format!("{gw}/api/orders/orders"))
                    .bearer_auth(&order.token)
            })
            .await?;
        let listed = mine["orders"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["orderId"] == json!(order.order_id));
        if !listed {
            eprintln!(
                "order {} not in its buyer's orders ({status}): {mine}",
                order.order_id
            );
        }
        missing += usize::from(!listed);
    }
    verdict.check(
        missing == 0,
        format!("{missing} acknowledged orders missing from their buyers' orders"),
    );

    // Every acknowledged order on the bus once, and mailed once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let expected: HashSet<&str> = bought.iter().map(|o| o.order_id.as_str()).collect();
    loop {
        let announced: HashSet<String> = published
            .lock()
            .await
            .iter()
            .filter(|m| m.routing_key == "order.purchased")
            .filter_map(|m| m.payload["orderId"].as_str().map(String::from))
            .collect();
        let mailed: HashSet<String> = sink.received().iter().flat_map(|m| m.to.clone()).collect();
        let all_announced = expected.iter().all(|id| announced.contains(*id));
        let all_mailed = bought.iter().all(|o| mailed.contains(&o.email));
        if (all_announced && all_mailed) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut message_ids: HashMap<String, HashSet<String>> = HashMap::new();
    for message in published.lock().await.iter() {
        if message.routing_key == "order.purchased"
            && let Some(order_id) = message.payload["orderId"].as_str()
        {
            message_ids
                .entry(order_id.to_string())
                .or_default()
                .insert(message.message_id.to_string());
        }
    }
    let not_once = bought
        .iter()
        .filter(|o| message_ids.get(&o.order_id).map_or(0, HashSet::len) != 1)
        .count();
    let deliveries = published
        .lock()
        .await
        .iter()
        .filter(|m| {
            m.routing_key == "order.purchased"
                && expected.contains(m.payload["orderId"].as_str().unwrap_or_default())
        })
        .count();
    println!(
        "bus: {deliveries} order.purchased deliveries for {} orders (the outbox is relayed at least once)",
        bought.len()
    );
    verdict.check(
        not_once == 0,
        format!("{not_once} acknowledged orders not announced exactly once on the bus"),
    );
    let mut mails: HashMap<String, usize> = HashMap::new();
    for mail in sink.received() {
        for to in mail.to {
            *mails.entry(to).or_default() += 1;
        }
    }
    let not_mailed_once = bought
        .iter()
        .filter(|o| mails.get(&o.email).copied().unwrap_or(0) != 1)
        .count();
    verdict.check(
        not_mailed_once == 0,
        format!("{not_mailed_once} acknowledged orders not mailed exactly once"),
    );

    // Every surviving replica's stream saw every sold seat, whichever replica sold it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_streams.store(true, Ordering::Relaxed);
    let sold: HashSet<&str> = owners.keys().copied().collect();
    for (orders, stream) in survivors.iter().zip(streams) {
        let seen = stream.await??;
        let unseen = sold.iter().filter(|seat| !seen.contains(**seat)).count();
        verdict.check(
            unseen == 0,
            format!(
                "the seat stream of {orders} missed {unseen} of {} sold seats",
                sold.len()
            ),
        );
    }

    // Waitlist offers, once per freed seat, whichever replica hears the cancellation.
    let (waitlist_event, waiting, freed) = waitlist_round(&client, &survivor).await?;
    // An offer is one message id (the outbox relays may publish a message twice: consumers
    // take the second as a redelivery), and one hold.
    let offers_of = |published: &[BusMessage]| -> HashMap<String, BusMessage> {
        published
            .iter()
            .filter(|m| {
                m.routing_key == "waitlist.offered" && m.payload["eventId"] == json!(waitlist_event)
            })
            .map(|m| (m.message_id.to_string(), m.clone()))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while offers_of(&published.lock().await).len() < freed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A second offer of a seat would come now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let offers = offers_of(&published.lock().await);
    let holds: HashSet<&str> = offers
        .values()
        .filter_map(|m| m.payload["holdId"].as_str())
        .collect();
    let offered_users: HashSet<&str> = offers
        .values()
        .filter_map(|m| m.payload["userId"].as_str())
        .collect();
    let first_in_line: HashSet<&str> = waiting.iter().take(freed).map(String::as_str).collect();
    if offers.len() != freed {
        for offer in offers.values() {
            eprintln!("offer {}: {}", offer.message_id, offer.payload);
        }
    }
    verdict.check(
        offers.len() == freed && holds.len() == freed && offered_users == first_in_line,
        format!(
            "{freed} freed seats were offered once each, to the first {freed} in line ({} offers)",
            offers.len()
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let offer_mails = loop {
        let mails = sink.received();
        let counts: Vec<usize> = waiting
            .iter()
            .take(freed)
            .map(|user| {
                let address = format!("{user}@example.com");
                mails.iter().filter(|m| m.to.contains(&address)).count()
            })
            .collect();
        if counts.iter().all(|n| *n >= 1) || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    verdict.check(
        offer_mails.iter().all(|n| *n == 1),
        format!("each offer mailed once ({offer_mails:?})"),
    );

    // After the hold TTL, nothing is held any more.
    tokio::time::sleep(Duration::from_secs(args.hold_ttl_seconds + 2)).await;
    let held = held_now(&client, &survivors[0], &event_id).await?;
    verdict.check(
        held == 0,
        format!(
            "{held} seats still held {} s after the sale",
            args.hold_ttl_seconds + 2
        ),
    );

    let Deployment {
        processes, data, ..
    } = deployment;
    drop(processes);
    if !verdict.failures.is_empty() {
        // The processes' logs, for whoever looks into the failure.
        eprintln!("the processes' logs are kept in {}", data.keep().display());
    }
    if let Err(error) = delete_queue(&amqp_url, &observer_queue()).await {
        eprintln!("the observer queue {} stays: {error}", observer_queue());
    }
    if verdict.failures.is_empty() {
        println!("every check held");
        Ok(())
    } else {
        bail!("{} checks failed", verdict.failures.len())
    }
}
