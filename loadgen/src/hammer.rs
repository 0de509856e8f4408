//! One abusive client against a gateway with its rate limits on (the defaults): each write
//! route hit by one user, one request after another, until the first 429; then a flood of
//! requests from one user over all of them at once. What it shows: how much gets through
//! before the limiter answers, and (with the process's RSS and the Redis key count measured
//! around it by `bench/hammer.sh`) that a flood leaves no state behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use holdfast_common::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::HammerArgs;
use crate::onsale::{create_event, token};

/// A request the client repeats.
struct Route {
    label: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    /// Sent as this user's bearer token (`None`: anonymous, keyed by IP).
    user: Option<&'static str>,
}

fn routes(event_id: &str) -> Vec<Route> {
    let write = |label, method, path: String, body, user| Route {
        label,
        method,
        path,
        body,
        user: Some(user),
    };
    vec![
        Route {
            label: "POST /api/auth/token (wrong password)",
            method: Method::POST,
            path: "/api/auth/token".into(),
            body: Some(json!({"email": "nobody@example.com", "password": "wrong-password"})),
            user: None,
        },
        Route {
            label: "POST /api/auth/token/refresh (made-up token)",
            method: Method::POST,
            path: "/api/auth/token/refresh".into(),
            body: Some(json!({"refreshToken": "made-up"})),
            user: None,
        },
        write(
            "POST /api/orders/holds",
            Method::POST,
            "/api/orders/holds".into(),
            Some(json!({"eventId": event_id, "seatIds": ["R1-S1"]})),
            "64d3b000000000000000a001",
        ),
        write(
            "DELETE /api/orders/holds/:id",
            Method::DELETE,
            "/api/orders/holds/00000000-0000-4000-8000-000000000000".into(),
            None,
            "64d3b000000000000000a002",
        ),
        write(
            "POST /api/orders/payments/intent",
            Method::POST,
            "/api/orders/payments/intent".into(),
            Some(json!({"amount": 10, "currency": "INR"})),
            "64d3b000000000000000a003",
        ),
        write(
            "POST /api/orders/payments/confirm",
            Method::POST,
            "/api/orders/payments/confirm".into(),
            Some(json!({"paymentIntentId": "pi_x", "clientSecret": "secret_x"})),
            "64d3b000000000000000a004",
        ),
        write(
            "POST /api/orders/purchase",
            Method::POST,
            "/api/orders/purchase".into(),
            Some(
                json!({"eventId": event_id, "holdId": "h", "seatIds": ["R1-S1"], "paymentIntentId": "pi_x"}),
            ),
            "64d3b000000000000000a005",
        ),
    ]
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    route: &Route,
    bearer: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    let mut request = client.request(route.method.clone(), format!("{url}{}", route.path));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &route.body {
        request = request.json(body);
    }
    Ok(request.send().await?)
}

pub async fn run(url: &str, args: &HammerArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::try_from(args.target.connections)?)
        .build()?;
    let event_id = create_event(&client, url, 10, 10).await?;
    let mut routes = routes(&event_id);
    if let Some(only) = &args.only {
        routes.retain(|r| r.label.contains(only.as_str()));
        anyhow::ensure!(!routes.is_empty(), "no route matches {only:?}");
    }
    println!("hammer against {url}: each route by one client until the first 429");
    for route in &routes {
        let bearer = route.user.map(|u| token(u, Role::User)).transpose()?;
        let mut answered: BTreeMap<u16, u64> = BTreeMap::new();
        let mut limited = None;
        for _ in 0..args.max_before_limit {
            let response = send(&client, url, route, bearer.as_deref()).await?;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                limited = Some(
                    response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("?")
                        .to_string(),
                );
                break;
            }
            *answered.entry(response.status().as_u16()).or_default() += 1;
        }
        let through: u64 = answered.values().sum();
        match limited {
            Some(retry_after) => println!(
                "  {:<48} {through:>5} answered before the first 429 (statuses {answered:?}), Retry-After {retry_after} s",
                route.label
            ),
            None => println!(
                "  {:<48} {through:>5} answered, never limited (statuses {answered:?})",
                route.label
            ),
        }
    }

    let flood = args.requests;
    println!(
        "flood: {flood} requests by one user over every route, {} connections",
        args.target.connections
    );
    let user = token("64d3b000000000000000a0ff", Role::User)?;
    let (routes, next) = (Arc::new(routes), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.target.connections {
        let (client, url, routes, next, user) = (
            client.clone(),
            url.to_string(),
            routes.clone(),
            next.clone(),
            user.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= flood {
                    break;
                }
                let index = usize::try_from(n).unwrap_or(0) % routes.len();
                let route = &routes[index];
                let bearer = route.user.map(|_| user.as_str());
                let status = match send(&client, &url, route, bearer).await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                };
                *statuses.entry(status).or_default() += 1;
            }
            statuses
        }));
    }
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for worker in workers {
        for (status, count) in worker.await? {
            *statuses.entry(status).or_default() += count;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "  {flood} requests in {:.1} s ({:.0}/s); statuses {statuses:?} (0: connection error)",
        elapsed.as_secs_f64(),
        flood as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
