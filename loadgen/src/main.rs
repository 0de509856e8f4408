//! `loadgen`: drives a Holdfast gateway with concurrent clients and reports what it measured.
//!
//! ```text
//! cargo run --release -p loadgen -- --help
//! cargo run --release -p loadgen -- auth --connections 64 --seconds 10
//! cargo run --release -p loadgen -- onsale --buyers 5000 --map compact
//! cargo run --release -p loadgen -- seatmap --view full --readers 64 --writers 4
//! cargo run --release -p loadgen -- stream --streams 1000
//! cargo run --release -p loadgen -- waitlist --entries 200000
//! cargo run --release -p loadgen -- door --connections 64 --seconds 10
//! cargo run --release -p loadgen -- queue --accounts 100000
//! ```
//!
//! Without `--url` it starts its own stack in-process (embedded adapters, rate limits off, a
//! temporary data folder), so one command measures everything; server and clients then share
//! the machine's cores, as they would with `--url` on the same machine. A gateway given with
//! `--url` must run with `RATE_LIMIT_DISABLED=true`, or the limiter is what gets measured.
//! The stack it starts reads the environment like any Holdfast process, so `REDIS_URL=…` or
//! `MONGODB_URI=…` runs it against Redis or MongoDB.

mod catalog;
mod door;
mod fill;
mod hammer;
mod onsale;
mod queue;
mod quota;
mod replicas;
mod report;
mod seatmap;
mod waitlist;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, Parser, Subcommand, ValueEnum};
use holdfast_common::config::Settings;
use holdfast_common::infra::Infra;
use serde_json::json;

use crate::report::Latencies;

holdfast_common::global_allocator!();

#[derive(Parser)]
#[command(
    version,
    about = "Load generator for Holdfast: throughput and latency through the gateway"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Logins per second (argon2id dominates), then GET /api/auth/me with the session cookie.
    Auth(AuthArgs),
    /// A hot on-sale: buyers load the map, hold 1-4 adjacent seats, pay and buy.
    Onsale(OnsaleArgs),
    /// Readers of one hot seat map while writers churn holds on it.
    Seatmap(SeatmapArgs),
    /// Open seat streams on one event; how long a change takes to reach them.
    Stream(StreamArgs),
    /// 1-seat holds by many users on large events, as fast as they go.
    Holds(HoldsArgs),
    /// Readers of the event catalogue: GET /api/events, a page of 100 events.
    Catalog(CatalogArgs),
    /// One abusive client on every write route of a gateway with rate limits on (needs --url).
    Hammer(HammerArgs),
    /// A long waitlist on a sold-out event: place reads, and purchases elsewhere beside them.
    Waitlist(WaitlistArgs),
    /// One user's write quota, served to sequential and parallel senders (needs --url).
    Quota(QuotaArgs),
    /// A 20,000-seat venue filled from empty to sold out by best-available buyers of 1-4 seats.
    Fill(FillArgs),
    /// 20,000 tickets at the door: the offline download, a batch of 10,000 offline scans,
    /// online scans, and offline verification with the public key alone.
    Door(DoorArgs),
    /// A hot on-sale behind an admission queue: joins before and after the opening, place
    /// reads, the order and rate of admission, holds refused without admission, and admitted
    /// buyers' purchases beside buyers of an event without a queue.
    Queue(QueueArgs),
    /// An offline verifier: downloads an event's keys and tickets, then checks passes offline.
    Verify(VerifyArgs),
    /// Holdfast as separate processes (3 orders, 2 events, 2 gateways, 2 notifications, auth,
    /// ml) on shared Redis, RabbitMQ and MongoDB; an on-sale during which one orders replica
    /// and one gateway are killed; correctness checks and buyers per second.
    Replicas(ReplicasArgs),
}

/// The replicas scenario (needs `AMQP_URL`, `MONGODB_URI`, and `REDIS_CLUSTER_URLS` or
/// `REDIS_URL`).
#[derive(Args, Clone)]
pub struct ReplicasArgs {
    /// Orders replicas.
    #[arg(long, default_value_t = 3)]
    pub orders: usize,
    #[arg(long, default_value_t = 2000)]
    pub buyers: usize,
    /// Concurrent buyers.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    #[arg(long, default_value_t = 20)]
    pub rows: u32,
    #[arg(long, default_value_t = 50)]
    pub seats_per_row: u32,
    /// SIGKILL the last orders replica and the second gateway mid-sale.
    #[arg(long)]
    pub kill: bool,
    /// When to kill: after this share of the buyers.
    #[arg(long, default_value_t = 0.4)]
    pub kill_at: f64,
    /// A shell command that restarts RabbitMQ, run when 60% of the buyers are done (e.g.
    /// `rabbitmqctl stop_app && rabbitmqctl start_app`): nothing may be lost or mailed twice.
    #[arg(long)]
    pub restart_broker: Option<String>,
    /// The holds' lifetime in this run (the run waits it out before its last check).
    #[arg(long, default_value_t = 10)]
    pub hold_ttl_seconds: u64,
    /// Where the holdfast-* binaries are (default: next to this one).
    #[arg(long)]
    pub bin_dir: Option<std::path::PathBuf>,
}

/// Where to send the load, and how many clients at once.
#[derive(Args, Clone)]
pub struct Target {
    /// A running gateway (with RATE_LIMIT_DISABLED=true); default: a stack started in-process.
    #[arg(long)]
    url: Option<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub connections: u64,
    /// In the stack started here, the gateway reaches the services over loopback HTTP (as
    /// separate processes do) instead of calling them in process.
    #[arg(long)]
    http_dispatch: bool,
}

#[derive(Args)]
struct AuthArgs {
    #[command(flatten)]
    target: Target,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
}

/// How a buyer reads availability.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapView {
    /// The full JSON map, gzip-compressed as browsers ask for it.
    Full,
    /// The compact view, revalidated with If-None-Match.
    Compact,
    /// The snapshot of the live stream.
    Stream,
}

impl MapView {
    /// How reports name the view.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Full => "the full map (gzip)",
            Self::Compact => "the compact view (If-None-Match)",
            Self::Stream => "the stream's snapshot",
        }
    }
}

#[derive(Args, Clone)]
pub struct OnsaleArgs {
    #[command(flatten)]
    pub target: Target,
    /// Buyers in all.
    #[arg(long, default_value_t = 2000)]
    pub buyers: usize,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rows: u32,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub seats_per_row: u32,
    /// How buyers read availability.
    #[arg(long, value_enum, default_value_t = MapView::Full)]
    pub map: MapView,
}

/// What readers of the `seatmap` scenario ask for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// The full map, gzip.
    Full,
    /// The compact view.
    Compact,
    /// The full map revalidated with If-None-Match (304 when unchanged).
    Revalidate,
}

impl ReadMode {
    /// How reports name what readers read.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Full => "the full map (gzip)",
            Self::Compact => "the compact view",
            Self::Revalidate => "the full map, revalidated (If-None-Match)",
        }
    }
}

#[derive(Args, Clone)]
pub struct SeatmapArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rows: u32,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub seats_per_row: u32,
    /// Seats held before the run, so the map is not empty.
    #[arg(long, default_value_t = 1000)]
    pub taken: usize,
    /// What the readers ask for.
    #[arg(long, value_enum, default_value_t = ReadMode::Full)]
    pub view: ReadMode,
    /// Connections churning holds (hold one seat, release it) during the run.
    #[arg(long, default_value_t = 0)]
    pub writers: usize,
    /// Read the map of the `fill` scenario's 20,000-seat venue instead of a grid.
    #[arg(long)]
    pub venue: bool,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
}

#[derive(Args, Clone)]
pub struct CatalogArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
}

#[derive(Args, Clone)]
pub struct HammerArgs {
    #[command(flatten)]
    pub target: Target,
    /// Requests of the flood that follows the per-route runs.
    #[arg(long, default_value_t = 100_000)]
    pub requests: u64,
    /// The most requests sent to one route while waiting for its first 429.
    #[arg(long, default_value_t = 5_000)]
    pub max_before_limit: u64,
    /// Only the routes whose label contains this (e.g. `intent`).
    #[arg(long)]
    pub only: Option<String>,
}

#[derive(Args, Clone)]
pub struct HoldsArgs {
    #[command(flatten)]
    pub target: Target,
    /// Events to spread the holds over (20,000 seats each).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub events: u64,
    /// Distinct users taking the holds (each may hold 2 per event).
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
}

#[derive(Args, Clone)]
pub struct FillArgs {
    #[command(flatten)]
    pub target: Target,
    /// Start selling the moment the event exists, without the look at its map that visitors
    /// take before an on-sale opens (the first buyers then also wait for the layout).
    #[arg(long)]
    pub cold: bool,
}

#[derive(Args, Clone)]
pub struct DoorArgs {
    /// Scanner devices scanning online at once (one connection each).
    #[command(flatten)]
    pub target: Target,
    /// Seconds of online scanning.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
}

#[derive(Args, Clone)]
pub struct QueueArgs {
    /// Joining, reading and buying connections.
    #[command(flatten)]
    pub target: Target,
    /// People who join.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(2..))]
    pub accounts: u64,
    /// The share who join before the opening.
    #[arg(long, default_value_t = 0.6)]
    pub early: f64,
    /// Admission rate, buyers a minute.
    #[arg(long, default_value_t = 60_000)]
    pub rate: u32,
    /// Seconds of place reads.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub read_seconds: u64,
    /// Seconds between the two reads the admission rate is measured over.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_seconds: u64,
    /// Admitted buyers buying at once (and as many buyers of an event without a queue).
    #[arg(long, default_value_t = 64)]
    pub buyers: usize,
    /// Purchases per buying run.
    #[arg(long, default_value_t = 2_000)]
    pub purchases: u64,
}

#[derive(Args, Clone)]
pub struct VerifyArgs {
    /// The gateway to download from.
    #[arg(long)]
    pub url: String,
    /// The event's id.
    #[arg(long)]
    pub event: String,
    /// A scanner device's token (`hfd_…`), or an organizer's access token.
    #[arg(long)]
    pub device_token: String,
    /// The passes to check (the QR codes' text).
    pub passes: Vec<String>,
}

#[derive(Args, Clone)]
pub struct QuotaArgs {
    #[command(flatten)]
    pub target: Target,
    /// Requests per user.
    #[arg(long, default_value_t = 400)]
    pub requests: u64,
    /// How many in flight at once, one run (and one fresh user) each.
    #[arg(long, value_delimiter = ',', default_values_t = [1_u32, 8, 40])]
    pub parallel: Vec<u32>,
}

#[derive(Args, Clone)]
pub struct WaitlistArgs {
    /// Connections joining the waitlist (`--connections`); the other clients are below.
    #[command(flatten)]
    pub target: Target,
    /// People on the waitlist.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub entries: u64,
    /// Clients reading their place as fast as they go.
    #[arg(long, default_value_t = 8)]
    pub pollers: u64,
    /// Clients buying seats of another event, one seat at a time.
    #[arg(long, default_value_t = 4)]
    pub buyers: u64,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
}

#[derive(Args, Clone)]
pub struct StreamArgs {
    #[command(flatten)]
    pub target: Target,
    /// Open streams on the event.
    #[arg(long, default_value_t = 1000)]
    pub streams: usize,
    /// Changes made (one hold each), one after another.
    #[arg(long, default_value_t = 200)]
    pub changes: usize,
}

/// A gateway to drive: the one given, or a stack of our own.
async fn target(
    url: Option<String>,
    dispatch: holdfast::Dispatch,
) -> anyhow::Result<(String, Option<(holdfast::Stack, tempfile::TempDir)>)> {
    if let Some(url) = url {
        return Ok((url, None));
    }
    let data = tempfile::tempdir()?;
    // The check-in limits per scanner are lifted too: the door scenario is many scans from a
    // few devices.
    let overrides = HashMap::from([
        ("RATE_LIMIT_DISABLED", "true"),
        ("DEMO_SEED", "false"),
        ("CHECKIN_SCANS_PER_SECOND", "1000000"),
        ("CHECKIN_BATCHES_PER_MINUTE", "1000000"),
    ]);
    let mut settings = Settings::from_lookup(|name| {
        overrides
            .get(name)
            .map(|v| v.to_string())
            .or_else(|| std::env::var(name).ok())
    })?;
    settings.data_dir = data.path().to_path_buf();
    if std::env::var_os("MONGODB_DATABASE_PREFIX").is_none() {
        // A fresh set of databases per run, so every run starts from an empty store.
        settings.mongodb_database_prefix = format!("loadgen_{}", std::process::id());
    }
    let infra = Infra::connect(&settings).await?;
    let documents = match &settings.mongodb_uri {
        Some(_) => format!("MongoDB ({}_*)", settings.mongodb_database_prefix),
        None => "SQLite".into(),
    };
    println!(
        "stack: TTL store {}, bus {}, documents {documents}, gateway calls the services {}",
        infra.kv_kind,
        infra.bus_kind,
        match dispatch {
            holdfast::Dispatch::InProcess => "in process",
            holdfast::Dispatch::Http => "over HTTP",
        }
    );
    let stack = holdfast::spawn_with(settings, infra, dispatch).await?;
    Ok((stack.gateway_url.clone(), Some((stack, data))))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let target_args = match &cli.scenario {
        Scenario::Auth(a) => &a.target,
        Scenario::Onsale(a) => &a.target,
        Scenario::Seatmap(a) => &a.target,
        Scenario::Stream(a) => &a.target,
        Scenario::Holds(a) => &a.target,
        Scenario::Catalog(a) => &a.target,
        Scenario::Hammer(a) => &a.target,
        Scenario::Waitlist(a) => &a.target,
        Scenario::Quota(a) => &a.target,
        Scenario::Fill(a) => &a.target,
        Scenario::Door(a) => &a.target,
        Scenario::Queue(a) => &a.target,
        // Offline: no stack, no load.
        Scenario::Verify(args) => return door::verify(args).await,
        // Starts its own processes.
        Scenario::Replicas(args) => return replicas::run(args).await,
    };
    if matches!(cli.scenario, Scenario::Hammer(_) | Scenario::Quota(_)) && target_args.url.is_none()
    {
        bail!("this scenario measures a gateway with its rate limits on: start one and pass --url");
    }
    let dispatch = if target_args.http_dispatch {
        holdfast::Dispatch::Http
    } else {
        holdfast::Dispatch::InProcess
    };
    let url = target_args
        .url
        .as_ref()
        .map(|u| u.trim_end_matches('/').to_string());
    let (url, _own_stack) = target(url, dispatch).await?;
    match &cli.scenario {
        Scenario::Auth(args) => auth(&url, args).await,
        Scenario::Onsale(args) => onsale::run(&url, args).await,
        Scenario::Seatmap(args) => seatmap::run(&url, args).await,
        Scenario::Stream(args) => seatmap::streams(&url, args).await,
        Scenario::Holds(args) => seatmap::holds(&url, args).await,
        Scenario::Catalog(args) => catalog::run(&url, args).await,
        Scenario::Hammer(args) => hammer::run(&url, args).await,
        Scenario::Waitlist(args) => waitlist::run(&url, args).await,
        Scenario::Quota(args) => quota::run(&url, args).await,
        Scenario::Fill(args) => fill::run(&url, args).await,
        Scenario::Door(args) => door::run(&url, args).await,
        Scenario::Queue(args) => queue::run(&url, args).await,
        Scenario::Verify(args) => door::verify(args).await,
        Scenario::Replicas(args) => replicas::run(args).await,
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(1)
        .build()?)
}

/// Logins per second, then `GET /api/auth/me` latency with a cookie.
async fn auth(url: &str, options: &AuthArgs) -> anyhow::Result<()> {
    let n = usize::try_from(options.target.connections)?;
    let run = Duration::from_secs(options.seconds);
    println!(
        "auth scenario against {url}: {n} connections, {} s per phase",
        options.seconds
    );

    let run_id = std::process::id();
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let client = client()?;
        let email = format!("load-{run_id}-{i}@example.com");
        let signup = client
            .post(format!("{url}/api/auth/signup"))
            .json(&json!({"email": email, "password": "load-password"}))
            .send()
            .await?;
        if !(signup.status().is_success() || signup.status() == 409) {
            bail!("signup answered {}", signup.status());
        }
        clients.push((client, email));
    }
    let clients = Arc::new(clients);

    // Phase 1: every connection logs in as fast as it can.
    let started = Instant::now();
    let mut workers = Vec::new();
    for i in 0..n {
        let (clients, url) = (clients.clone(), url.to_string());
        workers.push(tokio::spawn(async move {
            let (client, email) = &clients[i];
            let mut latencies = Latencies::default();
            let mut failures = 0u64;
            while started.elapsed() < run {
                let t = Instant::now();
                let res = client
                    .post(format!("{url}/api/auth/login"))
                    .json(&json!({"email": email, "password": "load-password"}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => latencies.record(t.elapsed()),
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let (logins, login_failures) = report::gather(workers).await?;
    report::print(
        "POST /api/auth/login",
        &logins,
        login_failures,
        started.elapsed(),
    );

    // Phase 2: every connection reads its own profile with its session cookie.
    let started = Instant::now();
    let mut workers = Vec::new();
    for i in 0..n {
        let (clients, url) = (clients.clone(), url.to_string());
        workers.push(tokio::spawn(async move {
            let (client, _) = &clients[i];
            let mut latencies = Latencies::default();
            let mut failures = 0u64;
            while started.elapsed() < run {
                let t = Instant::now();
                match client.get(format!("{url}/api/auth/me")).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.record(t.elapsed());
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let (me, me_failures) = report::gather(workers).await?;
    report::print(
        "GET /api/auth/me (cookie)",
        &me,
        me_failures,
        started.elapsed(),
    );
    Ok(())
}
