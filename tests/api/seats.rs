//! Seat availability through the gateway: versions and ETags, 304s, compression, the compact
//! view, the live stream, and two orders processes sharing one Redis.
//! Each test runs on the in-process TTL store and on Redis.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use crate::support::{
    Db, Kv, TestStack, api, assert_error, event, hold_id, infra, paid_intent, post, spawn_with,
    token_for,
};
use futures_util::StreamExt;
use holdfast_common::config::Settings;
use serde_json::{Value, json};

async fn stack(kv: Kv, vars: &[(&str, &str)]) -> Option<TestStack> {
    Some(spawn_with(Db::Sqlite, vars, infra(kv).await?).await)
}

macro_rules! on_both_ttl_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Kv::Memory).await } )*
        }
        mod redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Kv::Redis).await } )*
        }
    };
}

on_both_ttl_stores!(
    under_churn_a_map_is_rebuilt_at_most_once_per_staleness_window,
    the_etag_changes_with_every_seat_change_and_only_then,
    maps_are_compressed_when_asked,
    the_compact_view_lists_what_the_full_map_does_not_show_available,
    an_expired_hold_never_shows_as_held,
    the_stream_sends_a_snapshot_then_ordered_changes_and_resumes,
    bad_seat_map_requests_get_a_4xx,
);

async fn map(s: &TestStack, event_id: &str, query: &str) -> reqwest::Response {
    api()
        .get(s.at(&format!("/api/orders/seats/{event_id}{query}")))
        .send()
        .await
        .unwrap()
}

async fn etag_of(s: &TestStack, event_id: &str) -> String {
    let res = map(s, event_id, "").await;
    assert_eq!(res.status(), 200);
    res.headers()["etag"].to_str().unwrap().to_string()
}

async fn revalidate(s: &TestStack, event_id: &str, etag: &str) -> reqwest::Response {
    api()
        .get(s.at(&format!("/api/orders/seats/{event_id}")))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap()
}

/// The ETag is the availability version: hold, release, expiry and purchase change it; reads,
/// refused holds and other events' changes do not.
async fn the_etag_changes_with_every_seat_change_and_only_then(kv: Kv) {
    let Some(s) = stack(kv, &[("HOLD_TTL_SECONDS", "1")]).await else {
        return;
    };
    let event_id = event(&s, 2, 5, 10.0).await;
    let other_event = event(&s, 1, 5, 10.0).await;
    let buyer = token_for("etag-buyer");
    let mut etags = vec![etag_of(&s, &event_id).await];
    let step = async |s: &TestStack, what: &str, etags: &mut Vec<String>, changed: bool| {
        let now = etag_of(s, &event_id).await;
        let before = etags.last().unwrap().clone();
        assert_eq!(now != before, changed, "after {what}: {before} → {now}");
        etags.push(now);
    };
    step(&s, "a read", &mut etags, false).await;

    let held = hold_id(&s, &buyer, &event_id, &["R1-S1"]).await;
    step(&s, "a hold", &mut etags, true).await;

    let refused = crate::support::hold(&s, &token_for("rival"), &event_id, &["R1-S1"]).await;
    assert_eq!(refused.status(), 409);
    hold_id(&s, &buyer, &other_event, &["R1-S1"]).await;
    step(
        &s,
        "a refused hold and another event's hold",
        &mut etags,
        false,
    )
    .await;

    let res = api()
        .delete(s.at(&format!("/api/orders/holds/{held}")))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    step(&s, "a release", &mut etags, true).await;

    hold_id(&s, &buyer, &event_id, &["R2-S2"]).await;
    step(&s, "a second hold", &mut etags, true).await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    step(&s, "its expiry", &mut etags, true).await;

    let held = hold_id(&s, &buyer, &event_id, &["R1-S3"]).await;
    step(&s, "a third hold", &mut etags, true).await;
    let intent = paid_intent(&s, &buyer, 10.0, "INR").await;
    let bought = post(&s, &buyer, "/api/orders/purchase", json!({"eventId": event_id, "holdId": held, "seatIds": ["R1-S3"], "paymentIntentId": intent})).await;
    assert_eq!(bought.status(), 201);
    step(&s, "a purchase", &mut etags, true).await;
    step(&s, "nothing", &mut etags, false).await;

    // A revalidation with the current ETag is a 304 with no body; an old one gets the map.
    let current = etags.last().unwrap().clone();
    let not_modified = revalidate(&s, &event_id, &current).await;
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()["etag"], current.as_str());
    assert!(not_modified.bytes().await.unwrap().is_empty());
    let stale = revalidate(&s, &event_id, &etags[0]).await;
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.headers()["cache-control"], "no-cache");
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["seats"].as_array().unwrap().len(), 10);
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// With `SEAT_MAP_MAX_STALENESS_MS`, a change after a quiet spell shows at once, and further
/// changes within the window wait for the next rebuild.
async fn under_churn_a_map_is_rebuilt_at_most_once_per_staleness_window(kv: Kv) {
    let Some(s) = stack(kv, &[("SEAT_MAP_MAX_STALENESS_MS", "1500")]).await else {
        return;
    };
    let event_id = event(&s, 1, 5, 10.0).await;
    let quiet = etag_of(&s, &event_id).await;
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    hold_id(&s, &token_for("churner-1"), &event_id, &["R1-S1"]).await;
    let first = etag_of(&s, &event_id).await;
    assert_ne!(first, quiet, "a change after a quiet spell shows at once");
    hold_id(&s, &token_for("churner-2"), &event_id, &["R1-S2"]).await;
    assert_eq!(
        etag_of(&s, &event_id).await,
        first,
        "within the window the last build is served"
    );
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let later: Value = map(&s, &event_id, "?view=compact")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        later["held"],
        json!({"1": "1-2"}),
        "rebuilt after the window"
    );
}

async fn maps_are_compressed_when_asked(kv: Kv) {
    let Some(s) = stack(kv, &[]).await else {
        return;
    };
    let event_id = event(&s, 20, 50, 10.0).await;
    let plain = map(&s, &event_id, "").await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    let fetch = async |encoding: &str| {
        api()
            .get(s.at(&format!("/api/orders/seats/{event_id}")))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap()
    };
    let gzipped = fetch("gzip, deflate").await;
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["vary"], "accept-encoding");
    let gzipped = gzipped.bytes().await.unwrap();
    assert!(
        gzipped.len() * 5 < plain.len(),
        "{} vs {}",
        gzipped.len(),
        plain.len()
    );
    assert_eq!(gunzip(&gzipped), plain);
    let brotlied = fetch("gzip, deflate, br").await;
    assert_eq!(brotlied.headers()["content-encoding"], "br");
    assert_eq!(unbrotli(&brotlied.bytes().await.unwrap()), plain);
}

/// Expands the compact view's `"row": "a-b,c"` runs into seat ids.
fn expand(runs: &Value) -> BTreeSet<String> {
    let mut seats = BTreeSet::new();
    for (row, text) in runs.as_object().unwrap() {
        for run in text.as_str().unwrap().split(',') {
            let (from, to) = run.split_once('-').unwrap_or((run, run));
            let (from, to): (u32, u32) = (from.parse().unwrap(), to.parse().unwrap());
            for n in from..=to {
                seats.insert(format!("R{row}-S{n}"));
            }
        }
    }
    seats
}

async fn the_compact_view_lists_what_the_full_map_does_not_show_available(kv: Kv) {
    let Some(s) = stack(kv, &[]).await else {
        return;
    };
    let event_id = event(&s, 4, 10, 10.0).await;
    let buyer = token_for("compact-buyer");
    hold_id(&s, &buyer, &event_id, &["R1-S1", "R1-S2", "R1-S3", "R3-S7"]).await;
    let held = hold_id(&s, &token_for("compact-other"), &event_id, &["R4-S10"]).await;
    let intent = paid_intent(&s, &token_for("compact-other"), 10.0, "INR").await;
    let bought = post(&s, &token_for("compact-other"), "/api/orders/purchase", json!({"eventId": event_id, "holdId": held, "seatIds": ["R4-S10"], "paymentIntentId": intent})).await;
    assert_eq!(bought.status(), 201);

    let full = map(&s, &event_id, "").await;
    let full_etag = full.headers()["etag"].to_str().unwrap().to_string();
    let full: Value = full.json().await.unwrap();
    let in_state = |state: &str| -> BTreeSet<String> {
        full["seats"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|seat| seat["state"] == state)
            .map(|seat| seat["seatId"].as_str().unwrap().to_string())
            .collect()
    };
    let compact = map(&s, &event_id, "?view=compact").await;
    assert_eq!(compact.status(), 200);
    let compact_etag = compact.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(compact_etag, full_etag, "another representation");
    let compact: Value = compact.json().await.unwrap();
    assert_eq!(
        (compact["rows"].as_u64(), compact["seatsPerRow"].as_u64()),
        (Some(4), Some(10))
    );
    assert_eq!(compact["eventId"], event_id.as_str());
    assert!(full_etag.contains(&compact["version"].to_string()));
    assert_eq!(expand(&compact["held"]), in_state("held"));
    assert_eq!(expand(&compact["reserved"]), in_state("reserved"));
    assert_eq!(compact["held"], json!({"1": "1-3", "3": "7"}));
    let again = api()
        .get(s.at(&format!("/api/orders/seats/{event_id}?view=compact")))
        .header("if-none-match", &compact_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

async fn an_expired_hold_never_shows_as_held(kv: Kv) {
    let Some(s) = stack(
        kv,
        &[
            ("HOLD_TTL_SECONDS", "1"),
            ("SEAT_MAP_MAX_STALENESS_MS", "0"),
        ],
    )
    .await
    else {
        return;
    };
    let event_id = event(&s, 1, 5, 10.0).await;
    hold_id(&s, &token_for("expiring"), &event_id, &["R1-S1", "R1-S2"]).await;
    let deadline = std::time::Instant::now() + Duration::from_millis(1_000);
    // Read continuously across the expiry: once gone, the hold never comes back.
    let mut gone_at = None;
    while std::time::Instant::now() < deadline + Duration::from_millis(800) {
        let compact: Value = map(&s, &event_id, "?view=compact")
            .await
            .json()
            .await
            .unwrap();
        let held = expand(&compact["held"]);
        match (held.is_empty(), gone_at) {
            (true, None) => gone_at = Some(std::time::Instant::now()),
            (false, Some(_)) => panic!("an expired hold showed again: {compact}"),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone_at = gone_at.expect("the hold expired");
    assert!(
        gone_at >= deadline - Duration::from_millis(50),
        "not before its time"
    );
    let full: Value = map(&s, &event_id, "").await.json().await.unwrap();
    assert!(
        full["seats"]
            .as_array()
            .unwrap()
            .iter()
            .all(|seat| seat["state"] == "available")
    );
}

/// One Server-Sent Event.
#[derive(Debug)]
pub(crate) struct Sse {
    pub event: String,
    pub id: String,
    pub data: Value,
}

/// Reads Server-Sent Events off a response body.
pub(crate) struct SseReader {
    body: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>,
    >,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    pub async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event.is_empty() {
                    continue; // a comment (heartbeat)
                }
                return Sse {
                    event,
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.body.next())
                .await
                .expect("an event within 5 s")
                .expect("the stream is open")
                .unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

pub(crate) async fn open_stream(url: &str, last_event_id: Option<&str>) -> SseReader {
    let mut request = api().get(url);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseReader::new(response)
}

async fn the_stream_sends_a_snapshot_then_ordered_changes_and_resumes(kv: Kv) {
    let Some(s) = stack(kv, &[]).await else {
        return;
    };
    let event_id = event(&s, 2, 5, 10.0).await;
    let buyer = token_for("streamer");
    let first = hold_id(&s, &buyer, &event_id, &["R1-S1"]).await;
    let url = s.at(&format!("/api/orders/seats/{event_id}/stream"));
    let mut stream = open_stream(&url, None).await;
    let snapshot = stream.next().await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data["held"], json!({"1": "1"}));
    assert_eq!(snapshot.id, snapshot.data["version"].to_string());
    let v0: u64 = snapshot.id.parse().unwrap();

    hold_id(&s, &buyer, &event_id, &["R2-S4", "R2-S5"]).await;
    let res = api()
        .delete(s.at(&format!("/api/orders/holds/{first}")))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let held = stream.next().await;
    assert_eq!(
        (held.event.as_str(), held.id.clone()),
        ("seats", (v0 + 1).to_string())
    );
    assert_eq!(
        held.data["seats"],
        json!([{"seatId": "R2-S4", "state": "held"}, {"seatId": "R2-S5", "state": "held"}])
    );
    let released = stream.next().await;
    assert_eq!(released.id, (v0 + 2).to_string());
    assert_eq!(
        released.data["seats"],
        json!([{"seatId": "R1-S1", "state": "available"}])
    );
    drop(stream);

    // Changes made while the client was away are replayed from its last id.
    let second = hold_id(&s, &token_for("streamer-2"), &event_id, &["R1-S2"]).await;
    let intent = paid_intent(&s, &token_for("streamer-2"), 10.0, "INR").await;
    let bought = post(&s, &token_for("streamer-2"), "/api/orders/purchase", json!({"eventId": event_id, "holdId": second, "seatIds": ["R1-S2"], "paymentIntentId": intent})).await;
    assert_eq!(bought.status(), 201);
    let mut resumed = open_stream(&url, Some(&released.id)).await;
    let missed_hold = resumed.next().await;
    assert_eq!(
        (missed_hold.event.as_str(), missed_hold.id.clone()),
        ("seats", (v0 + 3).to_string())
    );
    let missed_sale = resumed.next().await;
    assert_eq!(missed_sale.id, (v0 + 4).to_string());
    assert_eq!(
        missed_sale.data["seats"],
        json!([{"seatId": "R1-S2", "state": "reserved"}])
    );

    // A client too far behind (an id never seen) starts again from a snapshot.
    let mut lost = open_stream(&url, Some("1")).await;
    let fresh = lost.next().await;
    assert_eq!(
        (fresh.event.as_str(), fresh.id.clone()),
        ("snapshot", (v0 + 4).to_string())
    );
    assert_eq!(fresh.data["reserved"], json!({"1": "2"}));
}

async fn bad_seat_map_requests_get_a_4xx(kv: Kv) {
    let Some(s) = stack(kv, &[]).await else {
        return;
    };
    let event_id = event(&s, 1, 2, 10.0).await;
    assert_error(map(&s, &event_id, "?view=tiny").await, 400, "INVALID_QUERY").await;
    assert_error(map(&s, "nope", "").await, 400, "INVALID_ID").await;
    assert_error(
        map(&s, "0123456789abcdef01234567", "").await,
        404,
        "NOT_FOUND",
    )
    .await;
    let stream = api()
        .get(s.at("/api/orders/seats/0123456789abcdef01234567/stream"))
        .send()
        .await
        .unwrap();
    assert_error(stream, 404, "NOT_FOUND").await;
}

/// Two orders processes on one Redis: a hold taken through one shows on the other's stream and
/// map, and a seat sold through one is refused by the other even after the board is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orders_processes_share_availability_through_redis() {
    two_orders_processes_share_availability(Kv::Redis).await
}

/// The same on a Redis Cluster: the scripts publish on whichever master holds the event's
/// slot, and the other process hears it through the node it subscribed at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orders_processes_share_availability_through_a_redis_cluster() {
    two_orders_processes_share_availability(Kv::RedisCluster).await
}

async fn two_orders_processes_share_availability(kv: Kv) {
    let Some(shared) = infra(kv).await else {
        return;
    };
    let s = spawn_with(Db::Sqlite, &[], shared.clone()).await;
    // A second orders service on the same Redis and order store, reading the same events.
    let mut settings = Settings::from_map(&Default::default()).unwrap();
    settings.data_dir = s.data_dir().to_path_buf();
    settings.service_urls.events = s.stack.events_url.clone();
    settings.orders.seat_map_max_staleness = Duration::ZERO;
    let second_infra = crate::support::reconnect_redis(&shared).await;
    let router = holdfast_orders::build(std::sync::Arc::new(settings), second_infra)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let event_id = event(&s, 2, 5, 10.0).await;
    let mut stream = open_stream(&format!("{second}/seats/{event_id}/stream"), None).await;
    let snapshot = stream.next().await;
    assert_eq!(snapshot.data["held"], json!({}));
    let buyer = token_for("replica-buyer");
    let held = hold_id(&s, &buyer, &event_id, &["R2-S3"]).await;
    let change = stream.next().await;
    assert_eq!(
        change.data["seats"],
        json!([{"seatId": "R2-S3", "state": "held"}])
    );
    let map: Value = api()
        .get(format!("{second}/seats/{event_id}?view=compact"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(map["held"], json!({"2": "3"}));

    let intent = paid_intent(&s, &buyer, 10.0, "INR").await;
    let bought = post(&s, &buyer, "/api/orders/purchase", json!({"eventId": event_id, "holdId": held, "seatIds": ["R2-S3"], "paymentIntentId": intent})).await;
    assert_eq!(bought.status(), 201);
    assert_eq!(
        stream.next().await.data["seats"],
        json!([{"seatId": "R2-S3", "state": "reserved"}])
    );

    // The board's sold set is lost (a Redis restart): it is rebuilt from the order store, so the
    // sold seat is still refused.
    crate::support::forget_sold_seats(&shared, &event_id).await;
    let again = api()
        .post(format!("{second}/holds"))
        .bearer_auth(token_for("replica-late"))
        .json(&json!({"eventId": event_id, "seatIds": ["R2-S3"]}))
        .send()
        .await
        .unwrap();
    assert_error(again, 409, "CONFLICT_SEATS").await;
}

/// A stream outlives the gateway's upstream timeout: only the wait for the answer's head is
/// bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_through_the_gateway_outlives_the_upstream_timeout() {
    let s = spawn_with(
        Db::Sqlite,
        &[("UPSTREAM_TIMEOUT_MS", "300")],
        infra(Kv::Memory).await.unwrap(),
    )
    .await;
    let event_id = event(&s, 1, 3, 10.0).await;
    let mut stream =
        open_stream(&s.at(&format!("/api/orders/seats/{event_id}/stream")), None).await;
    assert_eq!(stream.next().await.event, "snapshot");
    tokio::time::sleep(Duration::from_millis(900)).await;
    hold_id(&s, &token_for("patient"), &event_id, &["R1-S3"]).await;
    let change = stream.next().await;
    assert_eq!(
        change.data["seats"],
        json!([{"seatId": "R1-S3", "state": "held"}])
    );
}
