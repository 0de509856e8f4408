//! `loadgen quota`: is one user served the same write quota whether their requests come one
//! after another or in parallel? For each `--parallel` level, a fresh user sends `--requests`
//! POSTs to `/api/orders/payments/intent` with that many in flight, against a gateway with its
//! rate limits on (the defaults: 120 writes a minute); it counts the answers that got past the
//! limiter (anything but 429). Run it with and without `REDIS_URL` on the gateway.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use holdfast_common::auth::Role;

use crate::QuotaArgs;
use crate::onsale::token;
use crate::wire::Connection;

pub async fn run(url: &str, args: &QuotaArgs) -> anyhow::Result<()> {
    println!(
        "quota scenario against {url}: {} POST /api/orders/payments/intent per user",
        args.requests
    );
    let body = br#"{"amount": 100, "currency": "INR"}"#;
    let run_id = std::process::id();
    for &parallel in &args.parallel {
        let user = format!("{:016x}{:08x}", 0xa11ce_u64 + u64::from(parallel), run_id);
        let bearer = Arc::new(token(&user, Role::User)?);
        let sent = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut senders = Vec::new();
        for _ in 0..parallel {
            let (bearer, sent, url, requests) =
                (bearer.clone(), sent.clone(), url.to_string(), args.requests);
            senders.push(tokio::spawn(async move {
                let (mut served, mut limited, mut failed) = (0_u64, 0_u64, 0_u64);
                let Ok(mut connection) = Connection::open(&url).await else {
                    return (0, 0, 1);
                };
                while sent.fetch_add(1, Ordering::Relaxed) < requests {
                    match connection
                        .post_json("/api/orders/payments/intent", &bearer, body)
                        .await
                    {
                        Ok(429) => limited += 1,
                        Ok(_) => served += 1,
                        Err(_) => failed += 1,
                    }
                }
                (served, limited, failed)
            }));
        }
        let (mut served, mut limited, mut failed) = (0, 0, 0);
        for sender in senders {
            let (s, l, f) = sender.await?;
            served += s;
            limited += l;
            failed += f;
        }
        println!(
            "{parallel:>3} in parallel: {served:>4} served, {limited:>4} refused (429), {failed} failed, {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
