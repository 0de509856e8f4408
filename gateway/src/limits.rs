//! Rate limits by route class, per user (or per client IP when anonymous), for every `/api` call.
//!
//! Each class has its own [`RatePolicy`] (a generic cell rate: `quota` requests at once, one more
//! every `window / quota`):
//!
//! | class | routes | keyed by |
//! |---|---|---|
//! | `credentials` | login, signup, token | client IP, always (password guessing) |
//! | `refresh` | refresh, token/refresh | user, else client IP |
//! | `writes` | every non-GET call to orders: holds, releases, intents, purchases | user, else IP |
//! | `reads` | seat maps and hold TTLs, which clients poll | user, else client IP |
//! | `door` | check-in scans, batches and downloads (`/api/checkin/events/*/scan`, `/scans`, `/tickets`) | scanner device, else user, else client IP |
//! | `queue-joins` | joining an admission queue (`POST /api/orders/events/*/queue/me`) | user, else client IP; and also… |
//! | `queue-joins-address` | …the same joins, counted again | client IP, always |
//! | `other` | everything else | user, else client IP |
//!
//! A join to an admission queue must pass both of its limits: one account cannot try to join
//! in a loop, and accounts made in bulk behind one address do not each get a place beyond the
//! address's quota.
//!
//! A venue's scanners all reach the gateway from one address, so door calls count against the
//! device named by a device token (`Bearer hfd_<deviceId>_…`, checked by orders, which also
//! limits each scanner itself) rather than against the venue's address.
//!
//! The user is the subject of a valid access token (bearer header or the cookie the bridge turned
//! into one); the client IP comes from [`TrustedProxies`]. With Redis the counters live there, in
//! one Lua script per check, so every gateway replica shares them; otherwise in this process, in
//! governor's keyed limiters built through tower_governor. Each answer carries `RateLimit-Policy`
//! and `RateLimit` (IETF httpapi rate-limit headers draft); a refusal is 429 `RATE_LIMITED` with
//! `Retry-After`. If Redis cannot be asked, the request passes (and a warning is logged): a
//! store outage should not take the whole API down with it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use holdfast_common::auth::{TokenKeys, bearer_token};
use holdfast_common::config::{RateLimits, RatePolicy};
use holdfast_common::error::ApiError;
use holdfast_common::kv::RedisStore;
use holdfast_common::sync::lock;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;
use tower_governor::GovernorError;
use tower_governor::governor::{GovernorConfigBuilder, SharedRateLimiter};
use tower_governor::key_extractor::KeyExtractor;

use crate::browser::BridgedUser;
use crate::clients::TrustedProxies;

/// The kinds of route that share a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    Credentials,
    Refresh,
    Writes,
    Reads,
    Door,
    QueueJoins,
    /// Never the class of a request: queue joins counted per client address.
    QueueJoinsByAddress,
    Other,
}

impl RouteClass {
    pub const ALL: [RouteClass; 8] = [
        Self::Credentials,
        Self::Refresh,
        Self::Writes,
        Self::Reads,
        Self::Door,
        Self::QueueJoins,
        Self::QueueJoinsByAddress,
        Self::Other,
    ];

    /// The class of a call to the public (canonical) `path`.
    pub fn of(method: &Method, path: &str) -> Self {
        match path {
            "/api/auth/login" | "/api/auth/signup" | "/api/auth/token" => Self::Credentials,
            "/api/auth/refresh" | "/api/auth/token/refresh" => Self::Refresh,
            _ if path.starts_with("/api/checkin/events/")
                && ["/scan", "/scans", "/tickets"]
                    .iter()
                    .any(|end| path.ends_with(end)) =>
            {
                Self::Door
            }
            _ if *method == Method::POST
                && path.starts_with("/api/orders/events/")
                && path.ends_with("/queue/me") =>
            {
                Self::QueueJoins
            }
            _ if path.starts_with("/api/orders/") => {
                let polled = path.starts_with("/api/orders/seats/")
                    || (path.starts_with("/api/orders/holds/") && path.ends_with("/ttl"));
                match *method {
                    Method::GET | Method::HEAD if polled => Self::Reads,
                    Method::GET | Method::HEAD | Method::OPTIONS => Self::Other,
                    _ => Self::Writes,
                }
            }
            _ => Self::Other,
        }
    }

    /// The policy's name in `RateLimit-Policy` and in keys.
    pub fn name(self) -> &'static str {
        match self {
            Self::Credentials => "credentials",
            Self::Refresh => "refresh",
            Self::Writes => "writes",
            Self::Reads => "reads",
            Self::Door => "door",
            Self::QueueJoins => "queue-joins",
            Self::QueueJoinsByAddress => "queue-joins-address",
            Self::Other => "other",
        }
    }

    fn policy(self, limits: &RateLimits) -> RatePolicy {
        match self {
            Self::Credentials => limits.credentials,
            Self::Refresh => limits.refresh,
            Self::Writes => limits.writes,
            Self::Reads => limits.reads,
            Self::Door => limits.door,
            Self::QueueJoins => limits.queue_joins,
            Self::QueueJoinsByAddress => limits.queue_joins_per_address,
            Self::Other => limits.other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Who a limit counts a request against: `<class>:u:<user id>` or `<class>:ip:<address>`.
#[derive(Clone)]
pub struct ClientKey {
    keys: Arc<TokenKeys>,
    proxies: TrustedProxies,
}

impl ClientKey {
    /// The user of a valid access token: the one the cookie bridge verified, else the bearer's.
    fn user<B>(&self, request: &Request<B>) -> Option<String> {
        if let Some(BridgedUser(user)) = request.extensions().get() {
            return Some(user.clone());
        }
        let token = bearer_token(request.headers())?;
        self.keys.verify(token).ok().map(|claims| claims.sub)
    }
}

impl KeyExtractor for ClientKey {
    type Key = String;

    fn extract<B>(&self, request: &Request<B>) -> Result<String, GovernorError> {
        let class = RouteClass::of(request.method(), request.uri().path());
        if class == RouteClass::Door
            && let Some(device) = bearer_token(request.headers()).and_then(device_of)
        {
            return Ok(format!("{}:d:{device}", class.name()));
        }
        let user = match class {
            RouteClass::Credentials | RouteClass::QueueJoinsByAddress => None,
            _ => self.user(request),
        };
        Ok(match user {
            Some(user) => format!("{}:u:{user}", class.name()),
            None => self.address_key(class, request),
        })
    }
}

impl ClientKey {
    /// `<class>:ip:<client network>`.
    fn address_key<B>(&self, class: RouteClass, request: &Request<B>) -> String {
        // Only a request handed over in process has no peer; they share one key.
        let ip = self.proxies.client_ip(request);
        let client = ip.map_or_else(|| "unknown".to_string(), client_network);
        format!("{}:ip:{client}", class.name())
    }
}

/// The device id of a scanner device's token (`hfd_<32 hex>_<secret>`); orders checks the
/// rest. A made-up id only gets a bucket of its own, and orders refuses it.
fn device_of(token: &str) -> Option<&str> {
    let id = token.strip_prefix("hfd_")?.split('_').next()?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// What identifies one client by its address: the address itself for IPv4, its /64 network
/// for IPv6 (a single host is given a whole /64 and may send from any address in it).
fn client_network(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// One check's outcome, in the terms of the rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left right now.
    pub remaining: u32,
    /// Until the quota is whole again.
    pub reset: Duration,
    /// Until the next request may pass (zero when allowed).
    pub retry_after: Duration,
}

/// One class's counters in this process.
type LocalLimiter = SharedRateLimiter<String, governor::middleware::StateInformationMiddleware>;

/// Where the counters live.
enum Counters {
    /// Governor's keyed limiters, one per class, in this process.
    Local(Vec<LocalLimiter>),
    /// A Redis GCRA, shared by every replica, with this replica's leases of it.
    Shared(Box<SharedCounters>),
}

struct SharedCounters {
    store: RedisStore,
    leases: Mutex<HashMap<String, Lease>>,
}

/// Requests a replica took from the shared quota of one key in one round trip, spent locally.
///
/// A key seen once takes one request at a time, exactly as without leases. A key that comes
/// back while its lease is fresh takes twice as many next time, up to a twentieth of its quota
/// (at most [`MAX_LEASE`]): a busy client costs one round trip per batch instead of one per
/// request, and nobody is ever let through beyond the shared quota (leased requests are
/// counted there when taken). Only one round trip per key is out at a time: requests that find
/// the lease spent while one is out wait for its answer and share its batch, so parallel
/// requests of one client are served the same quota as sequential ones. What a lease does not
/// spend within [`LEASE_TIME`] is forfeited, which only ever refuses early, by at most one
/// batch per replica. A refusal is remembered until its retry time, so a flood from one client
/// costs Redis nothing more.
#[derive(Debug, Clone, Default)]
struct Lease {
    /// Requests left to spend.
    tokens: u32,
    /// How many the last round trip took.
    batch: u32,
    /// What the shared counter reported then.
    remaining: u32,
    reset: Duration,
    /// When the last round trip answered; its tokens are fresh for [`LEASE_TIME`] from then.
    taken_at: Option<Instant>,
    /// Refused until then.
    refused_until: Option<Instant>,
    /// Set while a round trip for this key is out; woken when it answers (or is given up).
    in_flight: Option<Arc<Notify>>,
}

impl Lease {
    fn fresh(&self, now: Instant, within: Duration) -> bool {
        self.taken_at.is_some_and(|at| now < at + within)
    }

    /// Whether the map may forget this lease: nothing to spend, refuse or wait for.
    fn idle(&self, now: Instant) -> bool {
        self.in_flight.is_none()
            && !self.fresh(now, LEASE_TIME)
            && self.refused_until.is_none_or(|until| now >= until)
    }
}

/// What a request does after looking at its key's lease.
enum Step {
    Answer(Decision),
    /// Another request's round trip is out: wait for it, then look again.
    Wait(OwnedNotified),
    /// Take this many from the shared quota.
    Fetch(u32),
}

/// Ends a key's round trip however its request ends: a request dropped while it waits on Redis
/// must not leave the others waiting for an answer that never comes.
struct InFlight<'a> {
    leases: &'a Mutex<HashMap<String, Lease>>,
    key: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut leases = lock(self.leases);
        if let Some(notify) = leases.get_mut(self.key).and_then(|l| l.in_flight.take()) {
            notify.notify_waiters();
        }
    }
}

/// How long a lease's requests may be spent.
const LEASE_TIME: Duration = Duration::from_millis(250);
/// The largest batch a lease takes.
const MAX_LEASE: u32 = 64;
/// Past this many keys, leases that are no longer fresh are dropped.
const MAX_LEASES: usize = 10_000;

/// The limits of every route class and where they are counted.
pub struct Limiter {
    limits: RateLimits,
    key: ClientKey,
    counters: Counters,
    rejections: Counter,
    /// Each class's `RateLimit-Policy` value, written once.
    policy_headers: Vec<HeaderValue>,
}

/// GCRA (generic cell rate algorithm) on one key: the stored value is the theoretical arrival
/// time (ms, Redis clock) of the next request at the sustained rate; a request passes when
/// that time is less than a whole quota ahead of now. Takes up to ARGV[3] requests at once (as
/// many as the quota allows, at least one or none). The key expires when the quota would be
/// whole again, so an idle client costs nothing. Returns {granted, remaining, reset_ms,
/// retry_after_ms}.
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local quota = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local span = interval * quota
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local available = math.floor((span - (tat - now)) / interval)
if available < 1 then
  return {0, 0, tat - now, tat + interval - now - span}
end
local granted = math.min(wanted, available)
local next_tat = tat + granted * interval
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now)
return {granted, available - granted, next_tat - now, 0}
";

impl Limiter {
    /// The limiter for `limits`, counting in `redis` when there is one.
    pub fn new(
        limits: RateLimits,
        keys: Arc<TokenKeys>,
        proxies: TrustedProxies,
        redis: Option<RedisStore>,
        rejections: Counter,
    ) -> anyhow::Result<Self> {
        let key = ClientKey { keys, proxies };
        let counters = match redis {
            Some(store) => Counters::Shared(Box::new(SharedCounters {
                store,
                leases: Mutex::new(HashMap::new()),
            })),
            None => Counters::Local(local_limiters(&limits, &key)?),
        };
        let policy_headers = RouteClass::ALL
            .iter()
            .map(|class| {
                let policy = class.policy(&limits);
                let value = format!(
                    "\"{}\";q={};w={}",
                    class.name(),
                    policy.quota,
                    policy.window.as_secs()
                );
                HeaderValue::from_str(&value).map_err(anyhow::Error::from)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            limits,
            key,
            counters,
            rejections,
            policy_headers,
        })
    }

    /// The class of `request` and the key it is counted under (`None`: not counted).
    pub fn classify(&self, request: &Request) -> (RouteClass, Option<String>) {
        let class = RouteClass::of(request.method(), request.uri().path());
        (class, self.key.extract(request).ok())
    }

    /// The second count of a request whose class has one: a queue join also counts against
    /// its client address.
    pub fn second_count(&self, class: RouteClass, request: &Request) -> Option<String> {
        (class == RouteClass::QueueJoins).then(|| {
            self.key
                .address_key(RouteClass::QueueJoinsByAddress, request)
        })
    }

    /// Counts one request of `class` under `key`.
    pub async fn count(&self, class: RouteClass, key: Option<String>) -> Decision {
        let policy = class.policy(&self.limits);
        let Some(key) = key else {
            return unlimited(policy);
        };
        match &self.counters {
            Counters::Local(limiters) => check_local(&limiters[class.index()], &key, policy),
            Counters::Shared(shared) => check_shared(shared, &key, policy).await,
        }
    }
}

fn local_limiters(limits: &RateLimits, key: &ClientKey) -> anyhow::Result<Vec<LocalLimiter>> {
    let limiters = RouteClass::ALL
        .iter()
        .map(|class| {
            let policy = class.policy(limits);
            let config = GovernorConfigBuilder::default()
                .key_extractor(key.clone())
                .period(policy.interval())
                .burst_size(policy.quota)
                .use_headers()
                .finish()
                .ok_or_else(|| anyhow::anyhow!("{}: invalid rate limit", class.name()))?;
            Ok(config.limiter().clone())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Forget clients quiet long enough to be back at a whole quota, so the maps stay bounded
    // by the clients of the last window rather than every client ever seen.
    let weak: Vec<_> = limiters.iter().map(Arc::downgrade).collect();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            for limiter in &weak {
                let Some(limiter) = limiter.upgrade() else {
                    return;
                };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    });
    Ok(limiters)
}

fn check_local(limiter: &LocalLimiter, key: &String, policy: RatePolicy) -> Decision {
    match limiter.check_key(key) {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            Decision {
                allowed: true,
                remaining,
                reset: policy.interval() * (policy.quota - remaining),
                retry_after: Duration::ZERO,
            }
        }
        Err(not_until) => Decision {
            allowed: false,
            remaining: 0,
            reset: policy.window,
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        },
    }
}

/// Looks at the key's lease: spends a token, refuses, waits for the round trip that is out, or
/// starts one (marking it out).
fn next_step(leases: &Mutex<HashMap<String, Lease>>, key: &str, policy: RatePolicy) -> Step {
    let now = Instant::now();
    let mut leases = lock(leases);
    if leases.len() >= MAX_LEASES {
        leases.retain(|_, lease| !lease.idle(now));
    }
    let lease = leases.entry(key.to_string()).or_default();
    let elapsed = lease.taken_at.map_or(Duration::ZERO, |at| now - at);
    if let Some(until) = lease.refused_until.filter(|until| now < *until) {
        return Step::Answer(Decision {
            allowed: false,
            remaining: 0,
            reset: lease.reset.saturating_sub(elapsed),
            retry_after: until - now,
        });
    }
    if lease.fresh(now, LEASE_TIME) && lease.tokens > 0 {
        lease.tokens -= 1;
        return Step::Answer(Decision {
            allowed: true,
            remaining: lease.remaining + lease.tokens,
            reset: lease.reset.saturating_sub(elapsed),
            retry_after: Duration::ZERO,
        });
    }
    if let Some(notify) = &lease.in_flight {
        return Step::Wait(notify.clone().notified_owned());
    }
    // Back while its lease was fresh: a busy client; take more at once.
    let wanted = if lease.fresh(now, 2 * LEASE_TIME) {
        lease
            .batch
            .saturating_mul(2)
            .min((policy.quota / 20).clamp(1, MAX_LEASE))
    } else {
        1
    };
    lease.in_flight = Some(Arc::new(Notify::new()));
    Step::Fetch(wanted.max(1))
}

async fn check_shared(shared: &SharedCounters, key: &str, policy: RatePolicy) -> Decision {
    let SharedCounters { store, leases } = shared;
    let wanted = loop {
        match next_step(leases, key, policy) {
            Step::Answer(decision) => return decision,
            Step::Wait(answered) => answered.await,
            Step::Fetch(wanted) => break wanted,
        }
    };
    let _in_flight = InFlight { leases, key };
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(GCRA));
    let interval_ms = policy.interval().as_millis().max(1);
    let args = [
        interval_ms.to_string(),
        policy.quota.to_string(),
        wanted.to_string(),
    ];
    let keys = [format!("ratelimit:{key}")];
    let (granted, remaining, reset_ms, retry_after_ms) = match store
        .eval::<(u32, u32, u64, u64)>(&SCRIPT, &keys, &args)
        .await
    {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(%error, "rate limit store unavailable; request let through");
            return unlimited(policy);
        }
    };
    let reset = Duration::from_millis(reset_ms);
    let retry_after = Duration::from_millis(retry_after_ms);
    let now = Instant::now();
    // Only this round trip was out, so nothing else was leased meanwhile: what the lease had
    // left is stale (spent or forfeited) and the answer replaces it. The waiters are woken
    // when `_in_flight` drops, after the lock is released.
    let mut leases = lock(leases);
    let lease = leases.entry(key.to_string()).or_default();
    lease.tokens = granted.saturating_sub(1);
    lease.batch = granted.max(1);
    lease.remaining = remaining;
    lease.reset = reset;
    lease.taken_at = Some(now);
    lease.refused_until = (granted == 0).then(|| now + retry_after);
    drop(leases);
    Decision {
        allowed: granted > 0,
        remaining: remaining + granted.saturating_sub(1),
        reset,
        retry_after,
    }
}

/// The decision when nothing could be counted.
fn unlimited(policy: RatePolicy) -> Decision {
    Decision {
        allowed: true,
        remaining: policy.quota,
        reset: Duration::ZERO,
        retry_after: Duration::ZERO,
    }
}

/// Whole seconds, rounded up: a client told 0 would retry at once.
fn ceil_seconds(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}

/// The middleware: count, then refuse with 429 or pass; both answers carry the headers.
pub async fn enforce(
    State(limiter): State<Arc<Limiter>>,
    request: Request,
    next: Next,
) -> Response {
    // Classified before the await: a request's body is not `Sync`, so no borrow of it may be
    // held across one.
    let (class, key) = limiter.classify(&request);
    let by_address = limiter.second_count(class, &request);
    let mut decision = limiter.count(class, key).await;
    if decision.allowed
        && let Some(key) = by_address
    {
        let second = limiter
            .count(RouteClass::QueueJoinsByAddress, Some(key))
            .await;
        if !second.allowed {
            decision = second;
        }
    }
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        limiter.rejections.inc();
        let wait = ceil_seconds(decision.retry_after).max(1);
        let mut refusal = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!("too many requests; retry in {wait} s"),
        )
        .into_response();
        refusal
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        refusal
    };
    let headers = response.headers_mut();
    headers.insert(
        "ratelimit-policy",
        limiter.policy_headers[class.index()].clone(),
    );
    let state = format!(
        "\"{}\";r={};t={}",
        class.name(),
        decision.remaining,
        ceil_seconds(decision.reset)
    );
    if let Ok(value) = HeaderValue::from_str(&state) {
        headers.insert("ratelimit", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_into_their_classes() {
        let cases = [
            (Method::POST, "/api/auth/login", RouteClass::Credentials),
            (Method::POST, "/api/auth/signup", RouteClass::Credentials),
            (Method::POST, "/api/auth/token", RouteClass::Credentials),
            (Method::POST, "/api/auth/refresh", RouteClass::Refresh),
            (Method::POST, "/api/auth/token/refresh", RouteClass::Refresh),
            (Method::POST, "/api/orders/holds", RouteClass::Writes),
            (Method::DELETE, "/api/orders/holds/h1", RouteClass::Writes),
            (
                Method::POST,
                "/api/orders/holds/h1/refresh",
                RouteClass::Writes,
            ),
            (
                Method::POST,
                "/api/orders/payments/intent",
                RouteClass::Writes,
            ),
            (
                Method::POST,
                "/api/orders/payments/confirm",
                RouteClass::Writes,
            ),
            (Method::POST, "/api/orders/purchase", RouteClass::Writes),
            (Method::GET, "/api/orders/seats/e1", RouteClass::Reads),
            (
                Method::GET,
                "/api/orders/seats/e1/stream",
                RouteClass::Reads,
            ),
            (Method::GET, "/api/orders/holds/h1/ttl", RouteClass::Reads),
            (Method::GET, "/api/orders/orders", RouteClass::Other),
            (
                Method::POST,
                "/api/checkin/events/e1/scan",
                RouteClass::Door,
            ),
            (
                Method::POST,
                "/api/checkin/events/e1/scans",
                RouteClass::Door,
            ),
            (
                Method::GET,
                "/api/checkin/events/e1/tickets",
                RouteClass::Door,
            ),
            (
                Method::GET,
                "/api/checkin/events/e1/stats",
                RouteClass::Other,
            ),
            (Method::GET, "/api/events", RouteClass::Other),
            (Method::POST, "/api/events", RouteClass::Other),
            (Method::GET, "/api/auth/me", RouteClass::Other),
            (
                Method::POST,
                "/api/orders/events/e1/queue/me",
                RouteClass::QueueJoins,
            ),
            (
                Method::GET,
                "/api/orders/events/e1/queue/me",
                RouteClass::Other,
            ),
            (
                Method::POST,
                "/api/orders/events/e1/queue/admission",
                RouteClass::Writes,
            ),
        ];
        for (method, path, class) in cases {
            assert_eq!(RouteClass::of(&method, path), class, "{method} {path}");
        }
    }

    fn limiter(redis: Option<RedisStore>) -> Limiter {
        limiter_with(redis, 2)
    }

    /// Small quotas, but `other` requests a minute for the "other" class.
    fn limiter_with(redis: Option<RedisStore>, other: u32) -> Limiter {
        limiter_with_other(redis, policy(other, 60))
    }

    fn policy(quota: u32, window_seconds: u64) -> RatePolicy {
        RatePolicy {
            quota,
            window: Duration::from_secs(window_seconds),
        }
    }

    /// Small quotas, but `other` for the "other" class.
    fn limiter_with_other(redis: Option<RedisStore>, other: RatePolicy) -> Limiter {
        let limits = RateLimits {
            credentials: policy(2, 60),
            refresh: policy(2, 60),
            writes: policy(3, 60),
            reads: policy(2, 60),
            door: policy(2, 60),
            queue_joins: policy(2, 60),
            queue_joins_per_address: policy(3, 60),
            other,
        };
        let keys = Arc::new(TokenKeys::new("test-secret-test-secret-test-secret"));
        Limiter::new(
            limits,
            keys,
            TrustedProxies::default(),
            redis,
            Counter::default(),
        )
        .expect("valid limits")
    }

    /// Three writes pass with 2, 1, 0 left; the fourth waits for the 20 s a request earns back.
    async fn a_quota_is_spent_then_refused(limiter: &Limiter) {
        let key = || Some("writes:u:alice".to_string());
        let mut remaining = Vec::new();
        for _ in 0..3 {
            let decision = limiter.count(RouteClass::Writes, key()).await;
            assert!(decision.allowed);
            assert!(decision.reset <= Duration::from_secs(60));
            remaining.push(decision.remaining);
        }
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.count(RouteClass::Writes, key()).await;
        assert!(!refused.allowed);
        assert!(refused.retry_after > Duration::from_secs(18), "{refused:?}");
        assert!(
            refused.retry_after <= Duration::from_secs(20),
            "{refused:?}"
        );
        // Another user, and another class of the same user, have their own quotas.
        let bob = limiter.count(RouteClass::Writes, Some("writes:u:bob".into()));
        assert!(bob.await.allowed);
        let reads = limiter.count(RouteClass::Reads, Some("reads:u:alice".into()));
        assert!(reads.await.allowed);
    }

    #[tokio::test]
    async fn in_process_a_quota_is_spent_then_refused() {
        a_quota_is_spent_then_refused(&limiter(None)).await;
    }

    /// Two stores on the server or cluster `var` names, sharing one key prefix (two replicas).
    async fn two_replicas(var: &str, name: &str) -> Option<(RedisStore, RedisStore, String)> {
        let prefix = format!("{}:", holdfast_common::testing::unique_name(name));
        let first = holdfast_common::testing::redis_store(var, &prefix).await?;
        let second = holdfast_common::testing::redis_store(var, &prefix).await?;
        Some((first, second, prefix))
    }

    async fn replicas_share_one_quota_and_every_key_expires(var: &str) {
        let Some((first, second, prefix)) = two_replicas(var, "limits").await else {
            return;
        };
        a_quota_is_spent_then_refused(&limiter(Some(first.clone()))).await;
        // A second replica sees the quota the first one spent.
        let replica = limiter(Some(second));
        let again = replica.count(RouteClass::Writes, Some("writes:u:alice".into()));
        assert!(!again.await.allowed);

        // On a cluster, KEYS asks every master.
        let keys: Vec<String> = first
            .query(redis::cmd("KEYS").arg(format!("{prefix}*")))
            .await
            .unwrap();
        assert_eq!(keys.len(), 3, "{keys:?}");
        for key in keys {
            let ttl_ms: i64 = first.query(redis::cmd("PTTL").arg(&key)).await.unwrap();
            assert!((1..=60_000).contains(&ttl_ms), "{key}: {ttl_ms}");
        }
    }

    #[tokio::test]
    async fn on_redis_replicas_share_one_quota_and_every_key_expires() {
        replicas_share_one_quota_and_every_key_expires("REDIS_URL").await;
    }

    #[tokio::test]
    async fn on_a_redis_cluster_replicas_share_one_quota_and_every_key_expires() {
        replicas_share_one_quota_and_every_key_expires("REDIS_CLUSTER_URLS").await;
    }

    #[tokio::test]
    async fn on_redis_leases_never_let_more_through_than_the_quota() {
        leases_never_let_more_through_than_the_quota("REDIS_URL").await;
    }

    #[tokio::test]
    async fn on_a_redis_cluster_leases_never_let_more_through_than_the_quota() {
        leases_never_let_more_through_than_the_quota("REDIS_CLUSTER_URLS").await;
    }

    /// Two replicas serve one busy client: leases save round trips, yet together they never
    /// let more through than the quota, and forfeit at most a batch each.
    async fn leases_never_let_more_through_than_the_quota(var: &str) {
        let Some((first, second, _)) = two_replicas(var, "leases").await else {
            return;
        };
        let replicas = [
            limiter_with(Some(first), 200),
            limiter_with(Some(second), 200),
        ];
        let key = || Some("other:u:busy".to_string());
        let lease = |replica: &Limiter| {
            let Counters::Shared(shared) = &replica.counters else {
                panic!("shared counters")
            };
            shared.leases.lock().unwrap().get("other:u:busy").cloned()
        };
        let mut allowed = 0;
        for n in 0..400 {
            let decision = replicas[n % 2].count(RouteClass::Other, key()).await;
            if decision.allowed {
                allowed += 1;
            }
            if n == 100 {
                let busy = lease(&replicas[0]).expect("a lease");
                // A batch is at most a twentieth of the quota: 10 here.
                assert_eq!(busy.batch, 10, "a busy client takes batches: {busy:?}");
            }
        }
        assert!((180..=200).contains(&allowed), "{allowed} let through");
        let spent = lease(&replicas[0]).expect("a lease");
        assert!(spent.refused_until.is_some(), "the refusal is remembered");
    }

    /// `senders` requests at a time of one client, 400 in all, against a quota of 120 in an
    /// hour (so that nothing is earned back during the run): how many were let through.
    async fn served_to_parallel_senders(limiter: Arc<Limiter>, key: &str, senders: usize) -> u32 {
        let sent = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let tasks: Vec<_> = (0..senders)
            .map(|_| {
                let (limiter, sent, key) = (limiter.clone(), sent.clone(), key.to_string());
                tokio::spawn(async move {
                    let mut allowed = 0;
                    while sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 400 {
                        let decision = limiter.count(RouteClass::Other, Some(key.clone()));
                        if decision.await.allowed {
                            allowed += 1;
                        }
                    }
                    allowed
                })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += task.await.expect("sender");
        }
        allowed
    }

    /// Parallel senders of one client get the quota sequential ones get: with Redis at most one
    /// batch (a twentieth of the quota: 6 here) short of it, never above it.
    async fn parallel_senders_get_the_whole_quota(redis: impl Fn() -> Option<RedisStore>) {
        for senders in [1, 8, 40] {
            let limiter = Arc::new(limiter_with_other(redis(), policy(120, 3600)));
            let key = format!("other:u:parallel-{senders}");
            let allowed = served_to_parallel_senders(limiter, &key, senders).await;
            assert!(
                (114..=120).contains(&allowed),
                "{senders} senders were served {allowed} of a quota of 120"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_process_parallel_senders_get_the_whole_quota() {
        parallel_senders_get_the_whole_quota(|| None).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_redis_parallel_senders_get_the_whole_quota() {
        let Some((store, _, _)) = two_replicas("REDIS_URL", "parallel").await else {
            return;
        };
        parallel_senders_get_the_whole_quota(|| Some(store.clone())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_redis_cluster_parallel_senders_get_the_whole_quota() {
        let Some((store, _, _)) = two_replicas("REDIS_CLUSTER_URLS", "parallel").await else {
            return;
        };
        parallel_senders_get_the_whole_quota(|| Some(store.clone())).await;
    }

    #[tokio::test]
    async fn an_ipv6_client_is_its_64_network() {
        let key = |peer: &str| {
            let mut request = Request::new(axum::body::Body::empty());
            let peer: std::net::SocketAddr = peer.parse().unwrap();
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            *request.method_mut() = Method::POST;
            *request.uri_mut() = "/api/auth/login".parse().unwrap();
            limiter(None).classify(&request).1.unwrap()
        };
        let one_host = key("[2001:db8:1:2::1]:4000");
        assert_eq!(one_host, "credentials:ip:2001:db8:1:2::/64");
        assert_eq!(key("[2001:db8:1:2:ffff:ffff:ffff:ffff]:4000"), one_host);
        assert_ne!(key("[2001:db8:1:3::1]:4000"), one_host);
        assert_eq!(key("198.51.100.7:4000"), "credentials:ip:198.51.100.7");
        assert_eq!(
            key("[::ffff:198.51.100.7]:4000"),
            "credentials:ip:198.51.100.7"
        );
    }

    /// Every scanner at a venue reaches the gateway from one address: door calls count per
    /// device, other calls from that address per address.
    #[tokio::test]
    async fn door_calls_count_per_scanner_device() {
        let key = |path: &str, bearer: Option<&str>| {
            let mut request = Request::new(axum::body::Body::empty());
            let peer: std::net::SocketAddr = "198.51.100.7:4000".parse().unwrap();
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            if let Some(bearer) = bearer {
                request.headers_mut().insert(
                    header::AUTHORIZATION,
                    HeaderValue::from_str(&format!("Bearer {bearer}")).unwrap(),
                );
            }
            *request.method_mut() = Method::POST;
            *request.uri_mut() = path.parse().unwrap();
            limiter(None).classify(&request).1.unwrap()
        };
        let device = |id: char| format!("hfd_{}_{}", id.to_string().repeat(32), "0".repeat(64));
        let scan = "/api/checkin/events/e1/scan";
        assert_eq!(
            key(scan, Some(&device('a'))),
            format!("door:d:{}", "a".repeat(32))
        );
        assert_ne!(key(scan, Some(&device('a'))), key(scan, Some(&device('b'))));
        assert_eq!(key(scan, Some("hfd_short_x")), "door:ip:198.51.100.7");
        assert_eq!(key(scan, None), "door:ip:198.51.100.7");
        assert_eq!(
            key("/api/orders/holds", Some(&device('a'))),
            "writes:ip:198.51.100.7"
        );
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(ceil_seconds(Duration::ZERO), 0);
        assert_eq!(ceil_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ceil_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(ceil_seconds(Duration::from_millis(1001)), 2);
    }
}
