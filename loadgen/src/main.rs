//! `loadgen`: drives a Holdfast gateway with concurrent clients and reports what it measured.
//!
//! ```text
//! cargo run --release -p loadgen -- auth [--url http://127.0.0.1:8080] [--connections 64] [--seconds 10]
//! ```
//!
//! Without `--url` it starts its own stack in-process (embedded adapters, rate limits off, a
//! temporary data folder), so one command measures everything; server and clients then share
//! the machine's cores, as they would with `--url` on the same machine. A gateway given with
//! `--url` must run with `RATE_LIMIT_DISABLED=true`, or the login phase measures the limiter.
//!
//! Scenarios:
//! - `auth`: logins per second (argon2id dominates), then `GET /api/auth/me` with the session
//!   cookie, reporting requests per second and p50/p99 latency.
//! - `onsale`: a hot on-sale (see [`onsale`]): `--buyers 2000 --rows 100 --seats-per-row 100`.
//!
//! The stack it starts reads the environment like any Holdfast process, so `REDIS_URL=…` runs
//! it against Redis.

mod onsale;
mod report;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use holdfast_common::config::Settings;
use holdfast_common::infra::Infra;
use serde_json::json;

use crate::report::Latencies;

pub struct Options {
    scenario: String,
    url: Option<String>,
    pub connections: usize,
    seconds: u64,
    pub buyers: usize,
    pub rows: u32,
    pub seats_per_row: u32,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| "auth".into());
    let mut options = Options {
        scenario,
        url: None,
        connections: 64,
        seconds: 10,
        buyers: 2000,
        rows: 100,
        seats_per_row: 100,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => options.url = Some(value.trim_end_matches('/').to_string()),
            "--connections" => options.connections = value.parse().context("--connections")?,
            "--seconds" => options.seconds = value.parse().context("--seconds")?,
            "--buyers" => options.buyers = value.parse().context("--buyers")?,
            "--rows" => options.rows = value.parse().context("--rows")?,
            "--seats-per-row" => {
                options.seats_per_row = value.parse().context("--seats-per-row")?
            }
            other => bail!("unknown option {other}"),
        }
    }
    if options.connections == 0 || options.seconds == 0 {
        bail!("--connections and --seconds must be positive");
    }
    Ok(options)
}

/// A gateway to drive: the one given, or a stack of our own.
async fn target(
    url: Option<String>,
) -> anyhow::Result<(String, Option<(holdfast::Stack, tempfile::TempDir)>)> {
    if let Some(url) = url {
        return Ok((url, None));
    }
    let data = tempfile::tempdir()?;
    let overrides = HashMap::from([("RATE_LIMIT_DISABLED", "true"), ("DEMO_SEED", "false")]);
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
        "stack: TTL store {}, bus {}, documents {documents}",
        infra.kv_kind, infra.bus_kind
    );
    let stack = holdfast::spawn(settings, infra).await?;
    Ok((stack.gateway_url.clone(), Some((stack, data))))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let (url, _own_stack) = target(options.url.clone()).await?;
    match options.scenario.as_str() {
        "auth" => auth(&url, &options).await,
        "onsale" => onsale::run(&url, &options).await,
        other => bail!("unknown scenario {other} (known: auth, onsale)"),
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(1)
        .build()?)
}

/// Logins per second, then `GET /api/auth/me` latency with a cookie.
async fn auth(url: &str, options: &Options) -> anyhow::Result<()> {
    let n = options.connections;
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
