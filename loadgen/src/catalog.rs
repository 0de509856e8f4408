//! The catalogue under load: clients reading `GET /api/events` (a page of 100 events) as fast
//! as they go, bodies read in full.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::CatalogArgs;
use crate::onsale::create_event;
use crate::report::{self, Latencies};

/// Events in the catalogue the readers page through.
const EVENTS: usize = 100;

pub async fn run(url: &str, args: &CatalogArgs) -> anyhow::Result<()> {
    let connections = usize::try_from(args.target.connections)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    for _ in 0..EVENTS {
        create_event(&client, url, 10, 10).await?;
    }
    let page = format!("{url}/api/events?limit={EVENTS}");
    let first = client.get(&page).send().await?;
    let listed = first.json::<Vec<serde_json::Value>>().await?.len();
    if listed != EVENTS {
        bail!("GET /api/events listed {listed} events, not {EVENTS}");
    }
    println!(
        "catalog against {url}: GET /api/events?limit={EVENTS}, {connections} connections, {} s",
        args.seconds
    );
    let run_for = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, page) = (client.clone(), page.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut failures = 0u64;
            while started.elapsed() < run_for {
                let t = Instant::now();
                let read = match client.get(&page).send().await {
                    Ok(res) if res.status().is_success() => res.bytes().await.is_ok(),
                    _ => false,
                };
                if read {
                    latencies.record(t.elapsed());
                } else {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let (answered, failures) = report::gather(workers).await?;
    report::print(
        "GET /api/events (100 events)",
        &answered,
        failures,
        started.elapsed(),
    );
    Ok(())
}
