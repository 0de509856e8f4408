//! Check-in at the door: who may scan, online scans, offline batches, the download scanners
//! sync by, and the organizer's live counts.
//!
//! Check-in is a module of the orders service, not a service of its own, because a ticket's
//! revocation must reach the door in the same instant it happens: a cancellation or transfer
//! revokes the ticket in the very transaction that makes it, and the next scan reads that
//! record. A separate service keeping its own copy from bus messages would let an old pass in
//! for as long as a message is on its way (or queued while that service is down). What keeps
//! the door open while orders is redeployed is running more than one replica (rolling
//! restarts) and, for any outage, offline scanning: devices download the valid tickets and
//! verify passes with the public key alone, then upload their scans.
//!
//! Who may scan an event: its organizer, admins, and the organizer's scanner devices (a token
//! for one event and for check-in only). Each scanner is limited to `CHECKIN_SCANS_PER_SECOND`
//! online scans and `CHECKIN_BATCHES_PER_MINUTE` offline batches.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota};
use holdfast_common::auth::{AuthUser, TokenKeys, bearer_token};
use holdfast_common::sync::lock;
use holdfast_common::ticket_pass::Pass;

use crate::domain::access::runs_event;
use crate::domain::checkin::{Device, DeviceToken, Direction, Passage, PassageOutcome, ScanResult};
use crate::domain::ids::EventId;
use crate::domain::now_millis;
use crate::domain::seat::Layout;
use crate::domain::ticket::{Ticket, TicketPolicy, TicketStatus};
use crate::error::OrdersError;
use crate::layouts::Layouts;
use crate::store::{ChangeCursor, CheckinStore, TicketStore};
use crate::ticket_keys::TicketKeys;

/// How long a device's record and an event's ticket policy are trusted once read: a revoked
/// device or a changed policy takes effect within this bound on every replica.
const FRESH_FOR: Duration = Duration::from_secs(2);
/// How long the organizer's counts are reused.
const COUNTS_FRESH_FOR: Duration = Duration::from_secs(1);
/// How long a reconciled nonce is remembered (a device re-uploading a batch a week later
/// still changes nothing).
pub const NONCE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most scans in one offline batch.
pub const MAX_BATCH: usize = 10_000;
/// The largest body of a batch: [`MAX_BATCH`] scans with room to spare (the gateway's limit
/// for the route is the same).
pub const MAX_BATCH_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The most tickets in one page of the download.
pub const MAX_PAGE: usize = 25_000;
/// A sync `since` a version is answered from this much earlier: a change committed late (its
/// time taken before another's that committed first) is sent again rather than missed.
const SYNC_OVERLAP_MS: i64 = 10_000;
/// Scanner devices per event (revoked ones do not count).
pub const MAX_DEVICES_PER_EVENT: usize = 200;

/// Values kept for a short time, then read again; at most [`Fresh::CAPACITY`] at once.
struct Fresh<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> Fresh<K, V> {
    const CAPACITY: usize = 10_000;

    fn new(ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = lock(&self.entries);
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(value, _)| value.clone())
    }

    fn keep(&self, key: K, value: V) {
        let mut entries = lock(&self.entries);
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    fn forget(&self, key: &K) {
        lock(&self.entries).remove(key);
    }
}

/// What the check-in routes use.
pub struct Ports {
    pub tickets: Arc<dyn TicketStore>,
    pub checkin: Arc<dyn CheckinStore>,
    pub layouts: Arc<Layouts>,
    pub ticket_keys: Arc<TicketKeys>,
    pub token_keys: Arc<TokenKeys>,
    devices: Fresh<String, Option<Device>>,
    policies: Fresh<EventId, TicketPolicy>,
    counts: Fresh<EventId, Arc<DoorCounts>>,
    scans: DefaultKeyedRateLimiter<String>,
    batches: DefaultKeyedRateLimiter<String>,
}

impl Ports {
    pub fn new(
        tickets: Arc<dyn TicketStore>,
        checkin: Arc<dyn CheckinStore>,
        layouts: Arc<Layouts>,
        ticket_keys: Arc<TicketKeys>,
        token_keys: Arc<TokenKeys>,
        scans_per_second: u32,
        batches_per_minute: u32,
    ) -> Self {
        let at_least_one = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let scans = at_least_one(scans_per_second);
        let batches = at_least_one(batches_per_minute);
        Self {
            tickets,
            checkin,
            layouts,
            ticket_keys,
            token_keys,
            devices: Fresh::new(FRESH_FOR),
            policies: Fresh::new(FRESH_FOR),
            counts: Fresh::new(COUNTS_FRESH_FOR),
            // A burst of a few seconds' worth: a queue at a gate arrives in waves.
            scans: DefaultKeyedRateLimiter::keyed(
                Quota::per_second(scans)
                    .allow_burst(at_least_one(scans_per_second.saturating_mul(3))),
            ),
            batches: DefaultKeyedRateLimiter::keyed(Quota::per_minute(batches)),
        }
    }
}

/// Who is scanning.
#[derive(Debug, Clone)]
pub enum Scanner {
    /// The event's organizer or an admin, with an access token.
    Staff(AuthUser),
    /// A scanner device of the event.
    Device(Device),
}

impl Scanner {
    /// The key its limits and offline nonces are kept under.
    pub fn key(&self) -> String {
        match self {
            Self::Staff(user) => format!("user:{}", user.id()),
            Self::Device(device) => format!("device:{}", device.device_id),
        }
    }
}

/// The caller of a scanning route of `layout`'s event, from its `Authorization` header: 401
/// without valid credentials, 403 for someone who does not run the event or a device of
/// another event.
pub async fn scanner(
    ports: &Ports,
    headers: &axum::http::HeaderMap,
    layout: &Layout,
) -> Result<Scanner, OrdersError> {
    let unauthenticated = |message: &'static str| {
        holdfast_common::error::ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            message,
        )
    };
    let token = bearer_token(headers).ok_or_else(|| unauthenticated("authentication required"))?;
    if DeviceToken::is_device_token(token) {
        let token = DeviceToken::parse(token)
            .ok_or_else(|| unauthenticated("the device token is invalid"))?;
        let device = device(ports, &token.device_id)
            .await?
            .filter(|device| device.admits(&token))
            .ok_or_else(|| unauthenticated("the device token is invalid or revoked"))?;
        if device.event_id != layout.event_id {
            return Err(OrdersError::NotOrganizer);
        }
        return Ok(Scanner::Device(device));
    }
    let claims = ports
        .token_keys
        .verify(token)
        .map_err(|_| unauthenticated("the access token is invalid or has expired"))?;
    let user = AuthUser(claims);
    if !runs_event(&user, Some(layout)) {
        return Err(OrdersError::NotOrganizer);
    }
    Ok(Scanner::Staff(user))
}

async fn device(ports: &Ports, device_id: &str) -> Result<Option<Device>, OrdersError> {
    if let Some(known) = ports.devices.get(&device_id.to_string()) {
        return Ok(known);
    }
    let found = ports.checkin.device(device_id).await?;
    ports.devices.keep(device_id.to_string(), found.clone());
    Ok(found)
}

/// The event's ticket policy (read at most every [`FRESH_FOR`]).
pub async fn policy(ports: &Ports, event_id: &EventId) -> Result<TicketPolicy, OrdersError> {
    if let Some(policy) = ports.policies.get(event_id) {
        return Ok(policy);
    }
    let policy = ports.tickets.ticket_policy(event_id).await?;
    ports.policies.keep(event_id.clone(), policy);
    Ok(policy)
}

/// Sets the event's ticket policy.
pub async fn set_policy(
    ports: &Ports,
    event_id: &EventId,
    policy: TicketPolicy,
) -> Result<(), OrdersError> {
    ports.tickets.set_ticket_policy(event_id, &policy).await?;
    ports.policies.forget(event_id);
    Ok(())
}

/// Revokes a device of the event; whether there was one to revoke.
pub async fn revoke_device(
    ports: &Ports,
    event_id: &EventId,
    device_id: &str,
) -> Result<bool, OrdersError> {
    let revoked = ports.checkin.revoke_device(event_id, device_id).await?;
    ports.devices.forget(&device_id.to_string());
    Ok(revoked)
}

/// Scanners remembered by a limiter before the ones idle long enough to be whole again go.
const LIMITER_KEYS: usize = 10_000;

/// 429 when the scanner sent more than its share of online scans.
pub fn limit_scans(ports: &Ports, scanner: &Scanner) -> Result<(), OrdersError> {
    limit(&ports.scans, scanner)
}

/// 429 when the scanner uploaded more than its share of batches.
pub fn limit_batches(ports: &Ports, scanner: &Scanner) -> Result<(), OrdersError> {
    limit(&ports.batches, scanner)
}

fn limit(limiter: &DefaultKeyedRateLimiter<String>, scanner: &Scanner) -> Result<(), OrdersError> {
    if limiter.len() > LIMITER_KEYS {
        limiter.retain_recent();
    }
    limiter
        .check_key(&scanner.key())
        .map_err(|_| OrdersError::ScanRateLimited)
}

/// One scan to answer: the pass as scanned, at a gate, one way, at a time.
#[derive(Debug, Clone)]
pub struct Scan {
    pub pass: String,
    pub gate: String,
    pub direction: Direction,
    pub at_ms: i64,
}

/// What the door answers, with the ticket when the pass is genuine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanAnswer {
    pub outcome: PassageOutcome,
    pub pass: Option<Pass>,
}

impl ScanAnswer {
    fn only(result: ScanResult) -> Self {
        Self {
            outcome: PassageOutcome::only(result),
            pass: None,
        }
    }
}

/// The passage `scan` asks for on `event_id`, or the result when the pass is not genuine or
/// not for this event (the store is not asked: a forged pass learns nothing).
fn passage(
    ports: &Ports,
    event_id: &EventId,
    scan: &Scan,
    reentry: bool,
    earliest_wins: bool,
) -> Result<(Passage, Pass), ScanResult> {
    let pass = ports
        .ticket_keys
        .verify(&scan.pass)
        .map_err(|_| ScanResult::Invalid)?;
    if pass.event_id != event_id.as_str() {
        return Err(ScanResult::WrongEvent);
    }
    let passage = Passage {
        ticket_id: pass.ticket_id.to_string(),
        event_id: event_id.clone(),
        version: pass.version,
        secret: holdfast_common::ticket_pass::to_hex(&pass.secret),
        gate: scan.gate.clone(),
        direction: scan.direction,
        at_ms: scan.at_ms,
        reentry,
        earliest_wins,
    };
    Ok((passage, pass))
}

/// An online scan.
pub async fn scan(
    ports: &Ports,
    event_id: &EventId,
    scan: &Scan,
) -> Result<ScanAnswer, OrdersError> {
    let reentry = policy(ports, event_id).await?.reentry;
    let (passage, pass) = match passage(ports, event_id, scan, reentry, false) {
        Ok(ready) => ready,
        Err(refused) => return Ok(ScanAnswer::only(refused)),
    };
    let outcome = ports.checkin.pass_door(&passage).await?;
    Ok(answered(outcome, pass))
}

/// An answer that names the ticket only when the store knew it.
fn answered(outcome: PassageOutcome, pass: Pass) -> ScanAnswer {
    let known = outcome.result != ScanResult::Invalid;
    ScanAnswer {
        outcome,
        pass: known.then_some(pass),
    }
}

/// An offline batch: each scan's answer, in order. Entries are reconciled by the time they
/// were scanned (the earliest wins a conflict); a nonce already reconciled for this scanner
/// answers what it answered then.
pub async fn reconcile(
    ports: &Ports,
    event_id: &EventId,
    scanner: &Scanner,
    batch: &[(String, Scan)],
) -> Result<Vec<ScanAnswer>, OrdersError> {
    let mut answers: Vec<Option<ScanAnswer>> = vec![None; batch.len()];
    let mut passages = Vec::new();
    let mut pending = Vec::new();
    for (index, (nonce, scan)) in batch.iter().enumerate() {
        match passage(ports, event_id, scan, false, true) {
            Ok((passage, pass)) => {
                passages.push((nonce.clone(), passage));
                pending.push((index, pass));
            }
            Err(refused) => answers[index] = Some(ScanAnswer::only(refused)),
        }
    }
    let expires_at_ms = now_millis().saturating_add(NONCE_TTL.as_millis() as i64);
    let outcomes = ports
        .checkin
        .pass_door_batch(&scanner.key(), &passages, expires_at_ms)
        .await?;
    for ((index, pass), outcome) in pending.into_iter().zip(outcomes) {
        answers[index] = Some(answered(outcome, pass));
    }
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| ScanAnswer::only(ScanResult::Invalid)))
        .collect())
}

/// Where a download starts: a version from an earlier sync, or a page's continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncFrom {
    Start,
    /// Changes since this version (Unix ms), sent from [`SYNC_OVERLAP_MS`] earlier.
    Since(i64),
    /// The page after this change.
    After(ChangeCursor),
}

/// One page of an event's tickets for offline scanners.
#[derive(Debug)]
pub struct SyncPage {
    /// What to ask for next time (`since`): the time of this read.
    pub version: i64,
    pub tickets: Vec<Ticket>,
    /// Set when there is more to read now (`after`).
    pub next: Option<ChangeCursor>,
}

/// The event's tickets changed from `from`, at most `limit`.
pub async fn sync(
    ports: &Ports,
    event_id: &EventId,
    from: &SyncFrom,
    limit: usize,
) -> Result<SyncPage, OrdersError> {
    let version = now_millis();
    let cursor = match from {
        SyncFrom::Start => ChangeCursor::default(),
        SyncFrom::Since(since) => ChangeCursor {
            changed_at_ms: since.saturating_sub(SYNC_OVERLAP_MS),
            ticket_id: String::new(),
        },
        SyncFrom::After(after) => after.clone(),
    };
    let limit = limit.clamp(1, MAX_PAGE);
    let tickets = ports
        .tickets
        .tickets_changed(event_id, &cursor, limit)
        .await?;
    let next = tickets
        .last()
        .filter(|_| tickets.len() == limit)
        .map(ChangeCursor::after);
    Ok(SyncPage {
        version,
        tickets,
        next,
    })
}

/// The organizer's figures of the door.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DoorCounts {
    /// Valid tickets that have entered.
    pub entered: usize,
    /// Valid tickets that have not entered yet.
    pub not_yet: usize,
    /// Of those entered, inside now (not scanned out).
    pub inside: usize,
    /// Cancelled tickets.
    pub revoked: usize,
    /// Entered, by the gate they first entered at.
    pub by_gate: BTreeMap<String, usize>,
    /// By price category (`general` on a grid).
    pub by_category: BTreeMap<String, CategoryCounts>,
}

/// One category's figures.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryCounts {
    pub entered: usize,
    pub not_yet: usize,
    pub revoked: usize,
}

/// The event's door figures now (reused for [`COUNTS_FRESH_FOR`]).
pub async fn counts(ports: &Ports, layout: &Layout) -> Result<Arc<DoorCounts>, OrdersError> {
    let event_id = &layout.event_id;
    if let Some(counts) = ports.counts.get(event_id) {
        return Ok(counts);
    }
    let mut counts = DoorCounts::default();
    let mut from = SyncFrom::Start;
    loop {
        let page = sync(ports, event_id, &from, MAX_PAGE).await?;
        for ticket in &page.tickets {
            let category = layout
                .category_of(&ticket.seat_id)
                .map_or_else(|| "general".to_string(), |category| category.key.clone());
            let in_category = counts.by_category.entry(category).or_default();
            match (ticket.status, ticket.entered_at_ms.is_some()) {
                (TicketStatus::Cancelled, _) => {
                    counts.revoked += 1;
                    in_category.revoked += 1;
                }
                (TicketStatus::Valid, true) => {
                    counts.entered += 1;
                    in_category.entered += 1;
                    counts.inside += usize::from(ticket.inside);
                    let gate = ticket.entry_gate.clone().unwrap_or_default();
                    *counts.by_gate.entry(gate).or_default() += 1;
                }
                (TicketStatus::Valid, false) => {
                    counts.not_yet += 1;
                    in_category.not_yet += 1;
                }
            }
        }
        match page.next {
            Some(next) => from = SyncFrom::After(next),
            None => break,
        }
    }
    let counts = Arc::new(counts);
    ports.counts.keep(event_id.clone(), counts.clone());
    Ok(counts)
}
