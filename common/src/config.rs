//! Typed configuration, read once from environment variables at start-up.
//!
//! Every variable has a safe development default so that `cargo run` works on a fresh clone.
//! A value that does not parse stops the process with a message naming the variable, and
//! `APP_ENV=production` refuses settings that are only acceptable on a developer's machine.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A configuration problem, always naming the variable at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name}: cannot use {value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// Every setting production refuses, all at once, so an operator fixes them in one go.
    #[error("APP_ENV=production refuses these settings: {}", list_refusals(.refused))]
    UnsafeInProduction { refused: Vec<Refusal> },
}

/// One setting production refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub name: &'static str,
    pub reason: String,
}

fn list_refusals(refused: &[Refusal]) -> String {
    refused
        .iter()
        .map(|r| format!("{}: {}", r.name, r.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The longest access token production accepts: a token outlives its session's revocation
/// everywhere it is checked without the session store.
pub const MAX_PRODUCTION_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// The shortest `ADMIN_PASSWORD` production accepts.
const MIN_ADMIN_PASSWORD_LEN: usize = 12;
/// A signing secret with fewer distinct characters than this is guessable, whatever its length.
const MIN_SECRET_DISTINCT_CHARS: usize = 12;

/// Which kind of deployment this is; production refuses development shortcuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

impl FromStr for AppEnv {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            _ => Err("expected development or production".into()),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, the default.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            _ => Err("expected pretty or json".into()),
        }
    }
}

/// The port each process listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    pub gateway: u16,
    pub auth: u16,
    pub events: u16,
    pub orders: u16,
    pub ml: u16,
    /// The notifications worker: its admin routes, health, readiness and metrics.
    pub notifications: u16,
}

/// Where the gateway (and services that call each other) find the other processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrls {
    pub auth: String,
    pub events: String,
    pub orders: String,
    pub ml: String,
    /// Only the gateway calls it: its admin routes (dead letters, dead mails).
    pub notifications: String,
    /// The services whose `*_SERVICE_URL` was set (the others default to this host's ports,
    /// and the all-in-one launcher calls them in process).
    pub configured: Vec<&'static str>,
}

/// Whether `origin` is `https://host[:port]` with a host that is not this machine: browsers
/// treat plain-http pages as forgeable by anyone on the network, and a localhost origin in
/// production is any page a visitor happens to run locally.
fn is_public_https_origin(origin: &str) -> bool {
    let Some(authority) = origin.strip_prefix("https://") else {
        return false;
    };
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
    .to_ascii_lowercase();
    // `tickets.example.com.` is another origin to a browser than `tickets.example.com`.
    if host.ends_with('.') {
        return false;
    }
    let loopback = host
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    !host.is_empty()
        && !authority.contains('/')
        && host != "localhost"
        && !host.ends_with(".localhost")
        && !loopback
}

/// The `user[:password]` part of a URL's authority, if it has one.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    authority.rsplit_once('@').map(|(userinfo, _)| userinfo)
}

/// `redis://[user]:password@host`.
fn has_password(url: &str) -> bool {
    userinfo(url)
        .and_then(|info| info.split_once(':'))
        .is_some_and(|(_, password)| !password.is_empty())
}

/// An AMQP URL with a user and password other than RabbitMQ's default `guest`.
fn has_non_guest_user(url: &str) -> bool {
    userinfo(url)
        .and_then(|info| info.split_once(':'))
        .is_some_and(|(user, password)| !user.is_empty() && user != "guest" && !password.is_empty())
}

/// A MongoDB URI with a user (password or not: X.509 has none) or an explicit mechanism.
fn has_mongodb_credentials(url: &str) -> bool {
    userinfo(url).is_some_and(|info| !info.is_empty()) || url.contains("authMechanism=")
}

/// The development signing key; production refuses it.
pub const DEVELOPMENT_JWT_SECRET: &str = "holdfast-development-secret-never-use-in-production";

/// Tokens, sessions, cookies and the accounts created at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// HS256 key of access tokens; shared by every process that verifies them.
    pub jwt_secret: String,
    /// HS256 key of service-to-service tokens (`/internal/*` calls); a secret of its own.
    pub service_token_secret: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_ttl: Duration,
    /// How many sessions a user may have; starting one more ends the oldest.
    pub max_sessions_per_user: usize,
    /// Adds `Secure` to cookies (and HSTS at the gateway).
    pub cookie_secure: bool,
    pub cookie_domain: Option<String>,
    /// An admin account created (or kept) at start-up in any profile.
    pub admin: Option<AdminAccount>,
    /// Seed the demo accounts; never done in production.
    pub demo_seed: bool,
}

/// The credentials of `ADMIN_EMAIL` / `ADMIN_PASSWORD`.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminAccount {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for AdminAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAccount")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What only the gateway uses: browser origins and rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    /// Origins allowed by CORS (with credentials) and by the CSRF origin check.
    pub cors_origins: Vec<String>,
    /// The proxies in front of the gateway (`TRUSTED_PROXIES`, CIDRs): only a request from one
    /// of them has its `X-Forwarded-For`, `-Host` and `-Proto` believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Turns every rate limit off (tests, load runs); refused in production.
    pub rate_limit_disabled: bool,
    /// The rate limit of each route class (see the gateway's `limits` module).
    pub rate_limits: RateLimits,
    /// Consecutive failures of an upstream that open its circuit.
    pub circuit_failure_threshold: u32,
    /// How long an open circuit refuses calls before letting a trial call through.
    pub circuit_open_for: Duration,
    /// Set: the gateway's `/metrics` is served on this port only (for the scraper, on the
    /// private network), not on the public one.
    pub metrics_port: Option<u16>,
}

/// How many requests a client may make in a window: all of them at once, or spread out (a
/// generic cell rate: one more every `window / quota`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    pub quota: u32,
    pub window: Duration,
}

impl RatePolicy {
    /// The time that earns back one request.
    pub fn interval(&self) -> Duration {
        self.window / self.quota.max(1)
    }
}

impl FromStr for RatePolicy {
    type Err = String;

    /// `quota/window-seconds`, e.g. `120/60`.
    fn from_str(raw: &str) -> Result<Self, String> {
        let expected = || "expected <requests>/<seconds>, both above zero, e.g. 120/60".to_string();
        let (quota, window) = raw.split_once('/').ok_or_else(expected)?;
        let quota: u32 = quota.trim().parse().map_err(|_| expected())?;
        let window: u64 = window.trim().parse().map_err(|_| expected())?;
        if quota == 0 || window == 0 {
            return Err(expected());
        }
        Ok(Self {
            quota,
            window: Duration::from_secs(window),
        })
    }
}

/// The limit of each route class, per user (or client IP when anonymous).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Login, signup and token, always per client IP.
    pub credentials: RatePolicy,
    /// Refresh-token rotations.
    pub refresh: RatePolicy,
    /// Holds, releases, payment intents and purchases: writes to orders.
    pub writes: RatePolicy,
    /// Seat maps and hold TTLs, which clients poll.
    pub reads: RatePolicy,
    /// Check-in scans, batches and downloads, per scanner device.
    pub door: RatePolicy,
    /// Joining an event's admission queue, per account.
    pub queue_joins: RatePolicy,
    /// Joining an event's admission queue, per client address (whatever the accounts).
    pub queue_joins_per_address: RatePolicy,
    /// Everything else.
    pub other: RatePolicy,
}

/// Holds, payments and idempotency in the orders service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdersSettings {
    /// Lifetime of a new hold.
    pub hold_ttl: Duration,
    /// The most one refresh may extend a hold by.
    pub hold_refresh_max: Duration,
    /// The longest a hold may live in total, however often it is refreshed.
    pub hold_max_lifetime: Duration,
    pub max_seats_per_hold: usize,
    /// Live holds one user may have on one event.
    pub max_holds_per_user_per_event: usize,
    /// A payment intent not consumed within this time expires.
    pub payment_intent_ttl: Duration,
    /// How many unspent payment intents a user may have at once.
    pub max_payment_intents_per_user: usize,
    /// How long a purchase's Idempotency-Key is remembered.
    pub idempotency_ttl: Duration,
    /// How long an event's layout is cached (bus messages invalidate it sooner).
    pub layout_cache_ttl: Duration,
    /// How old a served seat map may be under churn (0: always the current version).
    pub seat_map_max_staleness: Duration,
    /// Buyers may cancel until this long before the event starts (0: until it starts);
    /// organizers and admins may cancel any time.
    pub cancellation_cutoff: Duration,
    /// How long a waitlist offer (a hold made for the next in line) lasts.
    pub waitlist_offer_ttl: Duration,
    /// The keys that sign tickets, the first signing and all of them verifying (a rotation
    /// adds the new key first and keeps the old one until its tickets are reissued). Empty:
    /// the embedded profile makes one and keeps it under `DATA_DIR`; production refuses it.
    pub ticket_signing_keys: Vec<TicketSigningKey>,
    /// Online scans one scanner (a device, or an organizer scanning) may send per second.
    pub scans_per_second: u32,
    /// Offline batches one scanner may upload per minute.
    pub scan_batches_per_minute: u32,
}

/// One Ed25519 key that signs tickets: its id (printed in every ticket it signs) and its
/// 32-byte seed.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketSigningKey {
    pub id: String,
    pub seed: [u8; 32],
}

impl std::fmt::Debug for TicketSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TicketSigningKey({}, <secret>)", self.id)
    }
}

impl TicketSigningKey {
    /// Parses `TICKET_SIGNING_KEYS`: comma-separated `id:seed`, the id 1 to 16 letters,
    /// digits, `-` or `_`, the seed 32 random bytes in base64 or base64url (`openssl rand
    /// -base64 32`); ids unique.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        use base64::Engine;
        let mut keys: Vec<Self> = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (id, seed) = item.split_once(':').ok_or("each key is written id:seed")?;
            let id_ok = (1..=16).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !id_ok {
                return Err("a key id is 1 to 16 letters, digits, - or _".into());
            }
            let seed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(
                    seed.trim_end_matches('=')
                        .replace('+', "-")
                        .replace('/', "_"),
                )
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or("a key's seed is 32 bytes in base64url")?;
            if keys.iter().any(|k| k.id == id) {
                return Err(format!("the key id {id} is given twice"));
            }
            keys.push(Self {
                id: id.to_string(),
                seed,
            });
        }
        Ok(keys)
    }
}

/// How the notifications worker delivers e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationsSettings {
    /// Set: mail goes to this SMTP server (`smtp://`, `smtps://`, `?tls=required` for
    /// STARTTLS). Unset: to the file sink `DATA_DIR/mail.mbox`, for development.
    pub smtp_url: Option<String>,
    /// The `From` of every mail, `Name <address>` or a bare address.
    pub mail_from: String,
    /// A mail not sent after this many attempts is marked `DEAD`.
    pub max_attempts: u32,
    /// The wait before the first retry; each further retry waits twice as long (with jitter).
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
}

/// A Holdfast service: what a process runs decides which settings production insists on (a
/// process is given only the secrets and stores its services use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Gateway,
    Auth,
    Events,
    Orders,
    Ml,
    Notifications,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Self::Gateway,
        Self::Auth,
        Self::Events,
        Self::Orders,
        Self::Ml,
        Self::Notifications,
    ];

    /// Whether the service uses `variable` (of those production checks).
    fn uses(self, variable: &str) -> bool {
        let used: &[&str] = match self {
            Self::Gateway => &[
                "JWT_SECRET",
                "COOKIE_SECURE",
                "CORS_ORIGINS",
                "TRUSTED_PROXIES",
                "RATE_LIMIT_DISABLED",
                "REDIS_URL",
                "REDIS_CLUSTER_URLS",
            ],
            Self::Auth => &[
                "JWT_SECRET",
                "ACCESS_TOKEN_TTL_SECONDS",
                "ADMIN_PASSWORD",
                "COOKIE_SECURE",
                "REDIS_URL",
                "REDIS_CLUSTER_URLS",
                "AMQP_URL",
                "MONGODB_URI",
            ],
            Self::Events => &[
                "JWT_SECRET",
                "SERVICE_TOKEN_SECRET",
                "AMQP_URL",
                "MONGODB_URI",
            ],
            Self::Orders => &[
                "JWT_SECRET",
                "SERVICE_TOKEN_SECRET",
                "REDIS_URL",
                "REDIS_CLUSTER_URLS",
                "AMQP_URL",
                "MONGODB_URI",
                "TICKET_SIGNING_KEYS",
            ],
            Self::Ml => &["JWT_SECRET", "AMQP_URL"],
            Self::Notifications => &["JWT_SECRET", "AMQP_URL", "MONGODB_URI", "SMTP_URL"],
        };
        used.contains(&variable)
    }
}

/// All of Holdfast's configuration. See the README for the table of variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub app_env: AppEnv,
    pub log_format: LogFormat,
    /// Address every listener binds to.
    pub host: IpAddr,
    pub ports: Ports,
    pub service_urls: ServiceUrls,
    /// Root folder of the embedded document store (one SQLite file per service).
    pub data_dir: PathBuf,
    /// Set: the TTL store is this Redis server. Unset: the in-process store (or a cluster).
    pub redis_url: Option<String>,
    /// Not empty: the TTL store is the Redis Cluster these seed nodes belong to.
    pub redis_cluster_urls: Vec<String>,
    /// Set: the message bus is RabbitMQ. Unset: the in-process bus.
    pub amqp_url: Option<String>,
    /// Set: the document store is MongoDB. Unset: SQLite under `data_dir`.
    pub mongodb_uri: Option<String>,
    /// Deliveries of a work queue's message before it goes to the dead letters.
    pub bus_delivery_limit: u32,
    /// Each service keeps its MongoDB collections in database `<prefix>_<service>`.
    pub mongodb_database_prefix: String,
    /// How long the gateway waits for an upstream answer.
    pub upstream_timeout: Duration,
    /// How long a stopping process waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Open connections one listener serves at once; beyond, new ones are closed.
    pub max_connections: usize,
    /// Open connections one client address may have at the gateway (trusted proxies excepted).
    pub max_connections_per_client: usize,
    /// How long records that are done with are kept before they are pruned: outbox messages
    /// after they were published, mail deliveries after they were sent or given up (0: pruned
    /// at the next pass). Expired idempotency records go at once.
    pub record_retention: Duration,
    pub auth: AuthSettings,
    pub gateway: GatewaySettings,
    pub orders: OrdersSettings,
    pub notifications: NotificationsSettings,
    /// The services this process runs (all of them unless told otherwise).
    pub services: Vec<Service>,
}

impl Settings {
    /// Reads the process environment for a process running `services`: production refuses
    /// only what they use.
    pub fn from_env_for(services: &[Service]) -> Result<Self, ConfigError> {
        Self::from_lookup_for(|name| std::env::var(name).ok(), services)
    }

    /// Reads the process environment for a process running every service.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_for(&Service::ALL)
    }

    /// Reads configuration from a map, as tests do.
    pub fn from_map(vars: &HashMap<&str, &str>) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
    }

    /// Reads configuration through `lookup`, which answers a variable's value if it is set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_lookup_for(lookup, &Service::ALL)
    }

    /// [`Self::from_lookup`] for a process running `services`.
    pub fn from_lookup_for(
        lookup: impl Fn(&str) -> Option<String>,
        services: &[Service],
    ) -> Result<Self, ConfigError> {
        let from_files = secrets_from_files(&lookup)?;
        let lookup = |name: &str| from_files.get(name).cloned().or_else(|| lookup(name));
        let env = Env { lookup: &lookup };
        let ports = Ports::read(&env)?;
        let settings = Settings {
            app_env: env.parse("APP_ENV", AppEnv::Development)?,
            log_format: env.parse("LOG_FORMAT", LogFormat::Pretty)?,
            host: env.parse("HOST", IpAddr::from([127, 0, 0, 1]))?,
            service_urls: ServiceUrls::read(&env, &ports)?,
            ports,
            data_dir: PathBuf::from(env.string("DATA_DIR").unwrap_or_else(|| "./data".into())),
            redis_cluster_urls: env.redis_cluster_urls()?,
            redis_url: env.string("REDIS_URL").filter(|url| !url.contains(',')),
            amqp_url: env.string("AMQP_URL"),
            mongodb_uri: env.string("MONGODB_URI"),
            bus_delivery_limit: u32::try_from(env.positive(
                "BUS_DELIVERY_LIMIT",
                u64::from(crate::bus::DEFAULT_DELIVERY_LIMIT),
            )?)
            .unwrap_or(u32::MAX),
            mongodb_database_prefix: env.database_prefix("MONGODB_DATABASE_PREFIX", "holdfast")?,
            upstream_timeout: env.millis("UPSTREAM_TIMEOUT_MS", 10_000)?,
            shutdown_grace: env.seconds("SHUTDOWN_GRACE_SECONDS", 20)?,
            max_connections: env.count("MAX_CONNECTIONS", 10_000)?,
            max_connections_per_client: env.count("MAX_CONNECTIONS_PER_CLIENT", 256)?,
            // 0 is allowed: prune at the next pass.
            record_retention: Duration::from_secs(
                env.parse::<u64>("RECORD_RETENTION_HOURS", 168)?
                    .saturating_mul(3600),
            ),
            auth: AuthSettings::read(&env)?,
            orders: OrdersSettings::read(&env)?,
            notifications: NotificationsSettings::read(&env)?,
            gateway: GatewaySettings::read(&env)?,
            services: services.to_vec(),
        };
        settings.check_consistency()?;
        settings.check_production()?;
        Ok(settings)
    }

    /// Values that are each valid but contradict one another.
    fn check_consistency(&self) -> Result<(), ConfigError> {
        let orders = &self.orders;
        if orders.hold_max_lifetime < orders.hold_ttl {
            return Err(ConfigError::Invalid {
                name: "HOLD_MAX_SECONDS",
                value: orders.hold_max_lifetime.as_secs().to_string(),
                reason: format!(
                    "must be at least HOLD_TTL_SECONDS ({})",
                    orders.hold_ttl.as_secs()
                ),
            });
        }
        Ok(())
    }

    /// Development shortcuts that a production deployment must not rely on: every one of
    /// them is reported, not only the first.
    fn check_production(&self) -> Result<(), ConfigError> {
        if self.app_env != AppEnv::Production {
            return Ok(());
        }
        let mut refused = Vec::new();
        // Only what this process's services use: a process is given only their variables.
        let services = &self.services;
        let mut refuse = |name: &'static str, reason: &str| {
            if services.iter().any(|s| s.uses(name)) {
                refused.push(Refusal {
                    name,
                    reason: reason.into(),
                });
            }
        };
        let secret = &self.auth.jwt_secret;
        if secret == DEVELOPMENT_JWT_SECRET {
            refuse("JWT_SECRET", "is the development default");
        } else if secret.len() < 32 {
            refuse("JWT_SECRET", "must be at least 32 bytes");
        } else if is_low_entropy(secret) {
            refuse(
                "JWT_SECRET",
                "is guessable (too few distinct characters, or a short pattern repeated); use 32 random bytes",
            );
        }
        let service = &self.auth.service_token_secret;
        if service == crate::service_auth::DEVELOPMENT_SERVICE_SECRET {
            refuse("SERVICE_TOKEN_SECRET", "is the development default");
        } else if service.len() < 32 || is_low_entropy(service) {
            refuse(
                "SERVICE_TOKEN_SECRET",
                "must be at least 32 bytes and not guessable; use 32 random bytes",
            );
        } else if service == secret {
            refuse(
                "SERVICE_TOKEN_SECRET",
                "must differ from JWT_SECRET, or any access token's key could make service tokens",
            );
        }
        if self.auth.access_token_ttl > MAX_PRODUCTION_ACCESS_TOKEN_TTL {
            refuse(
                "ACCESS_TOKEN_TTL_SECONDS",
                "must be at most 3600: an access token outlives its session's revocation",
            );
        }
        if let Some(admin) = &self.auth.admin
            && (admin.password.chars().count() < MIN_ADMIN_PASSWORD_LEN
                || crate::passwords::is_common(&admin.password))
        {
            refuse(
                "ADMIN_PASSWORD",
                "is weak: at least 12 characters, and not one of the commonest passwords",
            );
        }
        if !self.auth.cookie_secure {
            refuse(
                "COOKIE_SECURE",
                "must be true so cookies only travel over HTTPS",
            );
        }
        if let Some(origin) = self
            .gateway
            .cors_origins
            .iter()
            .find(|origin| !is_public_https_origin(origin))
        {
            refuse(
                "CORS_ORIGINS",
                &format!("{origin:?} is not an https origin of a public host"),
            );
        }
        if let Some(network) = self
            .gateway
            .trusted_proxies
            .iter()
            .find(|network| covers_much_of_the_internet(network))
        {
            refuse(
                "TRUSTED_PROXIES",
                &format!("{network} would let most of the internet choose its own client address"),
            );
        }
        if self.gateway.rate_limit_disabled {
            refuse("RATE_LIMIT_DISABLED", "rate limits cannot be turned off");
        }
        // Embedded adapters keep holds and sessions in one process's memory: a restart or a
        // second replica would lose or split them. And a store anyone on the network can write
        // to lets them mark intents paid or make themselves admin: each needs credentials.
        // TLS to them is not required: like the deployment's own network, it is the operator's
        // to secure (docker-compose keeps them on a private network), and `rediss://`,
        // `amqps://` and `tls=true` are all accepted.
        // A cluster's seed nodes stand in for `REDIS_URL`; each must carry the password.
        let redis = if self.redis_cluster_urls.is_empty() {
            ("REDIS_URL", self.redis_url.clone())
        } else {
            let without = self
                .redis_cluster_urls
                .iter()
                .find(|url| !has_password(url));
            (
                "REDIS_CLUSTER_URLS",
                Some(without.unwrap_or(&self.redis_cluster_urls[0]).clone()),
            )
        };
        for (name, value, has_credentials) in [
            (redis.0, &redis.1, has_password as fn(&str) -> bool),
            ("AMQP_URL", &self.amqp_url, has_non_guest_user),
            ("MONGODB_URI", &self.mongodb_uri, has_mongodb_credentials),
        ] {
            match value {
                None => refuse(name, "must be set; the embedded adapter is for development"),
                Some(url) if !has_credentials(url) => {
                    refuse(name, "must carry credentials (a password, not guest)")
                }
                Some(_) => {}
            }
        }
        if self.orders.ticket_signing_keys.is_empty() {
            refuse(
                "TICKET_SIGNING_KEYS",
                "must be set: every replica signs and checks tickets with the same keys",
            );
        }
        // The file sink delivers nothing; plain SMTP exposes tickets and offers on the wire.
        match &self.notifications.smtp_url {
            None => refuse("SMTP_URL", "must be set; the file sink is for development"),
            Some(url) if !is_encrypted_smtp(url) => {
                refuse("SMTP_URL", "must use smtps:// or smtp://…?tls=required")
            }
            Some(_) => {}
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::UnsafeInProduction { refused })
        }
    }

    /// True when the process runs with `APP_ENV=production`.
    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    /// Whether demo data is seeded: asked for, and never in production.
    pub fn seeds_demo_data(&self) -> bool {
        self.auth.demo_seed && !self.is_production()
    }
}

impl Ports {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            gateway: env.parse("GATEWAY_PORT", 8080)?,
            auth: env.parse("AUTH_PORT", 4001)?,
            events: env.parse("EVENTS_PORT", 4002)?,
            orders: env.parse("ORDERS_PORT", 4003)?,
            ml: env.parse("ML_PORT", 5000)?,
            notifications: env.parse("NOTIFICATIONS_PORT", 4004)?,
        })
    }
}

impl ServiceUrls {
    /// Each service's URL: its `*_SERVICE_URL`, else the local port it listens on.
    fn read(env: &Env<'_>, ports: &Ports) -> Result<Self, ConfigError> {
        Ok(Self {
            auth: env.url("AUTH_SERVICE_URL", ports.auth)?,
            events: env.url("EVENTS_SERVICE_URL", ports.events)?,
            orders: env.url("ORDERS_SERVICE_URL", ports.orders)?,
            ml: env.url("ML_SERVICE_URL", ports.ml)?,
            notifications: env.url("NOTIFICATIONS_SERVICE_URL", ports.notifications)?,
            configured: [
                ("auth", "AUTH_SERVICE_URL"),
                ("events", "EVENTS_SERVICE_URL"),
                ("orders", "ORDERS_SERVICE_URL"),
                ("ml", "ML_SERVICE_URL"),
                ("notifications", "NOTIFICATIONS_SERVICE_URL"),
            ]
            .into_iter()
            .filter(|(_, variable)| env.string(variable).is_some())
            .map(|(service, _)| service)
            .collect(),
        })
    }
}

impl AuthSettings {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            jwt_secret: env
                .string("JWT_SECRET")
                .unwrap_or_else(|| DEVELOPMENT_JWT_SECRET.into()),
            service_token_secret: env
                .string("SERVICE_TOKEN_SECRET")
                .unwrap_or_else(|| crate::service_auth::DEVELOPMENT_SERVICE_SECRET.into()),
            access_token_ttl: env.seconds("ACCESS_TOKEN_TTL_SECONDS", 900)?,
            refresh_token_ttl: env.seconds("REFRESH_TOKEN_TTL_SECONDS", 14 * 24 * 3600)?,
            session_ttl: env.seconds("SESSION_TTL_SECONDS", 30 * 24 * 3600)?,
            max_sessions_per_user: env.count("MAX_SESSIONS_PER_USER", 10)?,
            cookie_secure: env.flag("COOKIE_SECURE", false)?,
            cookie_domain: env.string("COOKIE_DOMAIN"),
            admin: env.admin_account()?,
            demo_seed: env.flag("DEMO_SEED", true)?,
        })
    }
}

impl OrdersSettings {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            hold_ttl: env.seconds("HOLD_TTL_SECONDS", 300)?,
            hold_refresh_max: env.seconds("HOLD_REFRESH_MAX_SECONDS", 300)?,
            hold_max_lifetime: env.seconds("HOLD_MAX_SECONDS", 900)?,
            max_seats_per_hold: env.count("MAX_SEATS_PER_HOLD", 10)?,
            max_holds_per_user_per_event: env.count("MAX_HOLDS_PER_USER_PER_EVENT", 2)?,
            payment_intent_ttl: env.seconds("PAYMENT_INTENT_TTL_SECONDS", 900)?,
            max_payment_intents_per_user: env.count("MAX_PAYMENT_INTENTS_PER_USER", 10)?,
            idempotency_ttl: env.seconds("IDEMPOTENCY_TTL_SECONDS", 86_400)?,
            layout_cache_ttl: env.seconds("LAYOUT_CACHE_SECONDS", 60)?,
            // 0 is allowed: always current.
            seat_map_max_staleness: Duration::from_millis(
                env.parse("SEAT_MAP_MAX_STALENESS_MS", 250)?,
            ),
            // 0 is allowed: buyers may cancel until the event starts.
            cancellation_cutoff: Duration::from_secs(
                env.parse::<u64>("CANCELLATION_CUTOFF_HOURS", 24)?
                    .saturating_mul(3600),
            ),
            waitlist_offer_ttl: env.seconds("WAITLIST_OFFER_SECONDS", 600)?,
            scans_per_second: u32::try_from(env.positive("CHECKIN_SCANS_PER_SECOND", 20)?)
                .unwrap_or(u32::MAX),
            scan_batches_per_minute: u32::try_from(env.positive("CHECKIN_BATCHES_PER_MINUTE", 12)?)
                .unwrap_or(u32::MAX),
            ticket_signing_keys: match env.string("TICKET_SIGNING_KEYS") {
                None => Vec::new(),
                Some(raw) => {
                    TicketSigningKey::parse_list(&raw).map_err(|reason| ConfigError::Invalid {
                        name: "TICKET_SIGNING_KEYS",
                        value: "<redacted>".into(),
                        reason,
                    })?
                }
            },
        })
    }
}

impl NotificationsSettings {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let mail_from = env
            .string("MAIL_FROM")
            .unwrap_or_else(|| "Holdfast <tickets@holdfast.localhost>".into());
        if !mail_from.contains('@') {
            return Err(ConfigError::Invalid {
                name: "MAIL_FROM",
                value: mail_from,
                reason: "expected an e-mail address, optionally as `Name <address>`".into(),
            });
        }
        Ok(Self {
            smtp_url: env.string("SMTP_URL"),
            mail_from,
            max_attempts: u32::try_from(env.count("MAIL_MAX_ATTEMPTS", 8)?).unwrap_or(u32::MAX),
            retry_base: env.millis("MAIL_RETRY_BASE_MS", 2_000)?,
            retry_max: env.seconds("MAIL_RETRY_MAX_SECONDS", 900)?,
        })
    }
}

/// Whether mail to `url` travels encrypted: implicit TLS (`smtps://`) or STARTTLS that the
/// client insists on: the first `tls` parameter of the query (the one the mail library reads)
/// is `required`. Anything elsewhere in the URL (the user, the password) is not a parameter.
fn is_encrypted_smtp(url: &str) -> bool {
    if url.starts_with("smtps://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("smtp://") else {
        return false;
    };
    let query = rest
        .split('#')
        .next()
        .and_then(|before_fragment| before_fragment.split_once('?'))
        .map_or("", |(_, query)| query);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "tls")
        .is_some_and(|(_, value)| value == "required")
}

/// Whether a signing secret is guessable however long it is: too few distinct characters, or
/// a pattern of up to 8 characters repeated.
fn is_low_entropy(secret: &str) -> bool {
    let distinct: std::collections::HashSet<char> = secret.chars().collect();
    let bytes = secret.as_bytes();
    let repeats = (1..=8).any(|period| {
        bytes.len() > period
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| *b == bytes[i % period])
    });
    distinct.len() < MIN_SECRET_DISTINCT_CHARS || repeats
}

/// Whether a trusted-proxy network is so wide that most of the internet is in it (`0.0.0.0/0`,
/// `::/0`, anything wider than an /8 or a /16).
fn covers_much_of_the_internet(network: &ipnet::IpNet) -> bool {
    match network {
        ipnet::IpNet::V4(v4) => v4.prefix_len() < 8,
        ipnet::IpNet::V6(v6) => v6.prefix_len() < 16,
    }
}

impl GatewaySettings {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            cors_origins: env
                .string("CORS_ORIGINS")
                .unwrap_or_else(|| "http://localhost:5173".into())
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            trusted_proxies: env.networks("TRUSTED_PROXIES")?,
            rate_limit_disabled: env.flag("RATE_LIMIT_DISABLED", false)?,
            rate_limits: env.rate_limits()?,
            circuit_failure_threshold: u32::try_from(env.positive("CIRCUIT_FAILURE_THRESHOLD", 5)?)
                .unwrap_or(u32::MAX),
            circuit_open_for: env.millis("CIRCUIT_OPEN_MS", 10_000)?,
            metrics_port: match env.string("GATEWAY_METRICS_PORT") {
                None => None,
                Some(_) => Some(env.parse("GATEWAY_METRICS_PORT", 0)?),
            },
        })
    }
}

/// The variables that may instead be given as the contents of a file named by `<NAME>_FILE`
/// (a Docker or Kubernetes secret), so that secrets stay off command lines, out of the
/// environment `docker inspect` shows, and out of health checks.
pub const SECRET_FILES: [(&str, &str); 9] = [
    ("JWT_SECRET", "JWT_SECRET_FILE"),
    ("SERVICE_TOKEN_SECRET", "SERVICE_TOKEN_SECRET_FILE"),
    ("ADMIN_PASSWORD", "ADMIN_PASSWORD_FILE"),
    ("REDIS_URL", "REDIS_URL_FILE"),
    ("REDIS_CLUSTER_URLS", "REDIS_CLUSTER_URLS_FILE"),
    ("AMQP_URL", "AMQP_URL_FILE"),
    ("MONGODB_URI", "MONGODB_URI_FILE"),
    ("SMTP_URL", "SMTP_URL_FILE"),
    ("TICKET_SIGNING_KEYS", "TICKET_SIGNING_KEYS_FILE"),
];

/// The secrets given as files: each file's contents without its final line break. A variable
/// given both ways, or a file that cannot be read, stops the start (the contents are never
/// echoed).
fn secrets_from_files(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<HashMap<&'static str, String>, ConfigError> {
    let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let mut secrets = HashMap::new();
    for (name, file_name) in SECRET_FILES {
        let Some(path) = set(file_name) else {
            continue;
        };
        if set(name).is_some() {
            return Err(ConfigError::Invalid {
                name: file_name,
                value: path,
                reason: format!("{name} is set too; give one or the other"),
            });
        }
        let contents = std::fs::read_to_string(path.trim()).map_err(|e| ConfigError::Invalid {
            name: file_name,
            value: path.clone(),
            reason: format!("cannot read the file: {e}"),
        })?;
        let value = contents.strip_suffix('\n').unwrap_or(&contents);
        let value = value.strip_suffix('\r').unwrap_or(value);
        secrets.insert(name, value.to_string());
    }
    Ok(secrets)
}

/// Reads variables through a lookup function and parses them with errors naming the variable.
struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    /// The trimmed value, treating an empty string as unset.
    fn string(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn parse<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.string(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                value: raw,
                reason: e.to_string(),
            }),
        }
    }

    /// The limit of each route class. Credentials keep their older pair of variables: a burst,
    /// and one more request per refill interval.
    fn rate_limits(&self) -> Result<RateLimits, ConfigError> {
        let burst = u32::try_from(self.positive("AUTH_RATE_LIMIT_BURST", 20)?).unwrap_or(u32::MAX);
        let refill = Duration::from_millis(self.positive("AUTH_RATE_LIMIT_REFILL_MS", 3000)?);
        let policy = |quota, window_seconds| RatePolicy {
            quota,
            window: Duration::from_secs(window_seconds),
        };
        Ok(RateLimits {
            credentials: RatePolicy {
                quota: burst,
                window: refill.saturating_mul(burst),
            },
            refresh: self.parse("RATE_LIMIT_REFRESH", policy(30, 60))?,
            writes: self.parse("RATE_LIMIT_WRITES", policy(120, 60))?,
            reads: self.parse("RATE_LIMIT_READS", policy(600, 60))?,
            door: self.parse("RATE_LIMIT_DOOR", policy(6000, 60))?,
            queue_joins: self.parse("RATE_LIMIT_QUEUE_JOINS", policy(10, 60))?,
            queue_joins_per_address: self
                .parse("RATE_LIMIT_QUEUE_JOINS_PER_ADDRESS", policy(60, 60))?,
            other: self.parse("RATE_LIMIT_OTHER", policy(1200, 60))?,
        })
    }

    /// A comma-separated list of networks (`10.0.0.0/8`) or single addresses (`10.0.0.7`).
    fn networks(&self, name: &'static str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(Vec::new());
        };
        raw.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<ipnet::IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ConfigError::Invalid {
                        name,
                        value: item.to_string(),
                        reason: "expected an IP address or a CIDR network such as 10.0.0.0/8"
                            .into(),
                    })
            })
            .collect()
    }

    /// A positive number of seconds.
    fn seconds(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.positive(name, default)?))
    }

    /// A positive number of milliseconds.
    fn millis(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.positive(name, default)?))
    }

    /// A positive count.
    fn count(&self, name: &'static str, default: u64) -> Result<usize, ConfigError> {
        Ok(usize::try_from(self.positive(name, default)?).unwrap_or(usize::MAX))
    }

    fn positive(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        let value = self.parse(name, default)?;
        if value == 0 {
            return Err(ConfigError::Invalid {
                name,
                value: "0".into(),
                reason: "must be greater than zero".into(),
            });
        }
        Ok(value)
    }

    /// `REDIS_CLUSTER_URLS`: the comma-separated `redis://` or `rediss://` URLs of a Redis
    /// Cluster's seed nodes; refused beside `REDIS_URL` (a process has one TTL store). A
    /// `REDIS_URL` listing several URLs names a cluster too (so that one secret serves both
    /// deployments). The value is never echoed: it carries the password.
    fn redis_cluster_urls(&self) -> Result<Vec<String>, ConfigError> {
        let invalid = |name, reason: String| ConfigError::Invalid {
            name,
            value: "(not shown: it may carry a password)".into(),
            reason,
        };
        let (name, raw) = match (self.string("REDIS_CLUSTER_URLS"), self.string("REDIS_URL")) {
            (None, Some(url)) if url.contains(',') => ("REDIS_URL", url),
            (None, _) => return Ok(Vec::new()),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "REDIS_CLUSTER_URLS",
                    "REDIS_URL is set too; give one or the other".into(),
                ));
            }
            (Some(urls), None) => ("REDIS_CLUSTER_URLS", urls),
        };
        let urls: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(String::from)
            .collect();
        if let Some(position) = urls
            .iter()
            .position(|url| !url.starts_with("redis://") && !url.starts_with("rediss://"))
        {
            return Err(invalid(
                name,
                format!(
                    "seed node {} is not a redis:// or rediss:// URL",
                    position + 1
                ),
            ));
        }
        Ok(urls)
    }

    /// A MongoDB database name prefix: letters, digits and `_`, short enough that
    /// `<prefix>_<service>` stays within MongoDB's 63-byte database names.
    fn database_prefix(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.string(name).unwrap_or_else(|| default.into());
        let valid = (1..=48).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if valid {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                name,
                value,
                reason: "must be 1 to 48 letters, digits or underscores".into(),
            })
        }
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.string(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError::Invalid {
                name,
                value: v,
                reason: "expected true or false".into(),
            }),
        }
    }

    fn admin_account(&self) -> Result<Option<AdminAccount>, ConfigError> {
        let email = self.string("ADMIN_EMAIL");
        // Passwords are taken as given: leading or trailing spaces may be part of them.
        let password = (self.lookup)("ADMIN_PASSWORD").filter(|p| !p.is_empty());
        match (email, password) {
            (None, None) => Ok(None),
            (Some(email), Some(password)) => {
                if !(8..=128).contains(&password.chars().count()) {
                    return Err(ConfigError::Invalid {
                        name: "ADMIN_PASSWORD",
                        value: "<redacted>".into(),
                        reason: "must be 8 to 128 characters".into(),
                    });
                }
                Ok(Some(AdminAccount { email, password }))
            }
            (Some(_), None) => Err(ConfigError::Invalid {
                name: "ADMIN_PASSWORD",
                value: String::new(),
                reason: "must be set when ADMIN_EMAIL is".into(),
            }),
            (None, Some(_)) => Err(ConfigError::Invalid {
                name: "ADMIN_EMAIL",
                value: String::new(),
                reason: "must be set when ADMIN_PASSWORD is".into(),
            }),
        }
    }

    /// A service's URL, or its replicas' URLs, comma-separated (each without a trailing `/`).
    fn url(&self, name: &'static str, default_port: u16) -> Result<String, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(format!("http://127.0.0.1:{default_port}"));
        };
        let urls: Vec<&str> = raw
            .split(',')
            .map(|url| url.trim().trim_end_matches('/'))
            .filter(|url| !url.is_empty())
            .collect();
        if urls.is_empty()
            || urls
                .iter()
                .any(|url| !(url.starts_with("http://") || url.starts_with("https://")))
        {
            return Err(ConfigError::Invalid {
                name,
                value: raw,
                reason: "expected an http:// or https:// URL, or several separated by commas"
                    .into(),
            });
        }
        Ok(urls.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_map(&vars.iter().copied().collect())
    }

    #[test]
    fn defaults_describe_the_embedded_development_setup() {
        let s = settings(&[]).expect("defaults are valid");
        assert_eq!(s.app_env, AppEnv::Development);
        assert_eq!(s.ports.gateway, 8080);
        assert_eq!(s.ports.ml, 5000);
        assert_eq!(s.service_urls.orders, "http://127.0.0.1:4003");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert!(s.redis_url.is_none() && s.amqp_url.is_none() && s.mongodb_uri.is_none());
        assert_eq!(s.mongodb_database_prefix, "holdfast");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = settings(&[("AUTH_PORT", "forty")]).unwrap_err();
        assert!(err.to_string().starts_with("AUTH_PORT:"), "{err}");
        let err = settings(&[("LOG_FORMAT", "xml")]).unwrap_err();
        assert!(err.to_string().starts_with("LOG_FORMAT:"), "{err}");
        let err = settings(&[("EVENTS_SERVICE_URL", "events:4002")]).unwrap_err();
        assert!(err.to_string().starts_with("EVENTS_SERVICE_URL:"), "{err}");
        let err = settings(&[("UPSTREAM_TIMEOUT_MS", "0")]).unwrap_err();
        assert!(err.to_string().starts_with("UPSTREAM_TIMEOUT_MS:"), "{err}");
        for bad in ["hold-fast", "a.b", &"x".repeat(49)] {
            let err = settings(&[("MONGODB_DATABASE_PREFIX", bad)]).unwrap_err();
            assert!(
                err.to_string().starts_with("MONGODB_DATABASE_PREFIX:"),
                "{err}"
            );
        }
        let s = settings(&[("MONGODB_DATABASE_PREFIX", "e2e_1")]).unwrap();
        assert_eq!(s.mongodb_database_prefix, "e2e_1");
    }

    #[test]
    fn a_hold_cannot_outlive_its_maximum_lifetime() {
        let err =
            settings(&[("HOLD_TTL_SECONDS", "600"), ("HOLD_MAX_SECONDS", "300")]).unwrap_err();
        assert!(err.to_string().starts_with("HOLD_MAX_SECONDS:"), "{err}");
        assert!(settings(&[("HOLD_TTL_SECONDS", "300"), ("HOLD_MAX_SECONDS", "300")]).is_ok());
    }

    #[test]
    fn ticket_signing_keys_parse_in_order_and_bad_ones_are_refused_without_echoing_them() {
        let s = settings(&[(
            "TICKET_SIGNING_KEYS",
            "new:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=, old://////////////////////////////////////////8=",
        )])
        .unwrap();
        let keys = &s.orders.ticket_signing_keys;
        assert_eq!(keys.len(), 2);
        assert_eq!((keys[0].id.as_str(), keys[0].seed[31]), ("new", 31));
        assert_eq!((keys[1].id.as_str(), keys[1].seed[0]), ("old", 255));
        assert!(!format!("{keys:?}").contains("255"));
        for bad in [
            "no-colon",
            "k1:c2hvcnQ",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8,k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
            "a key:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        ] {
            let error = settings(&[("TICKET_SIGNING_KEYS", bad)])
                .unwrap_err()
                .to_string();
            assert!(error.contains("TICKET_SIGNING_KEYS"), "{bad}: {error}");
            assert!(!error.contains("AAEC"), "{bad}: {error}");
        }
        assert!(settings(&[]).unwrap().orders.ticket_signing_keys.is_empty());
    }

    /// A process is given only its services' variables: production insists on those alone.
    #[test]
    fn production_refuses_only_what_the_processs_services_use() {
        let only = |names: &[&str]| -> HashMap<&str, &str> {
            PRODUCTION
                .iter()
                .copied()
                .filter(|(name, _)| *name == "APP_ENV" || names.contains(name))
                .collect()
        };
        let ml = Settings::from_lookup_for(
            |n| {
                only(&["JWT_SECRET", "AMQP_URL"])
                    .get(n)
                    .map(|v| v.to_string())
            },
            &[Service::Ml],
        );
        assert!(ml.is_ok(), "{ml:?}");
        let notifications = only(&["JWT_SECRET", "AMQP_URL", "MONGODB_URI", "SMTP_URL"]);
        assert!(
            Settings::from_lookup_for(
                |n| notifications.get(n).map(|v| v.to_string()),
                &[Service::Notifications]
            )
            .is_ok()
        );
        // Orders without its ticket keys, or the all-in-one process without anything: refused.
        let orders = only(&[
            "JWT_SECRET",
            "SERVICE_TOKEN_SECRET",
            "REDIS_URL",
            "AMQP_URL",
            "MONGODB_URI",
        ]);
        let refused =
            Settings::from_lookup_for(|n| orders.get(n).map(|v| v.to_string()), &[Service::Orders]);
        assert_eq!(refused_variables(refused), vec!["TICKET_SIGNING_KEYS"]);
        let all = refused_variables(Settings::from_lookup(|n| {
            only(&[]).get(n).map(|v| v.to_string())
        }));
        assert!(
            all.contains(&"SMTP_URL") && all.contains(&"TICKET_SIGNING_KEYS"),
            "{all:?}"
        );
    }

    #[test]
    fn secrets_may_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("jwt");
        std::fs::write(&secret, "a-secret-read-from-a-file-of-32-bytes+\n").unwrap();
        let password = dir.path().join("admin");
        std::fs::write(&password, " spaces kept \n").unwrap();
        let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
        let (secret_path, password_path) = (path(&secret), path(&password));
        let s = settings(&[
            ("JWT_SECRET_FILE", secret_path.as_str()),
            ("ADMIN_EMAIL", "root@holdfast.test"),
            ("ADMIN_PASSWORD_FILE", password_path.as_str()),
        ])
        .unwrap();
        assert_eq!(s.auth.jwt_secret, "a-secret-read-from-a-file-of-32-bytes+");
        assert_eq!(s.auth.admin.unwrap().password, " spaces kept ");
        // Both ways at once, or a file that is not there: refused, naming the variable and
        // never echoing a secret.
        let both = settings(&[
            ("JWT_SECRET", "x"),
            ("JWT_SECRET_FILE", secret_path.as_str()),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            both.contains("JWT_SECRET_FILE") && !both.contains("read-from"),
            "{both}"
        );
        let missing = settings(&[("SMTP_URL_FILE", "/no/such/file")])
            .unwrap_err()
            .to_string();
        assert!(missing.contains("SMTP_URL_FILE"), "{missing}");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let s = settings(&[("REDIS_URL", "  "), ("GATEWAY_PORT", "")]).unwrap();
        assert_eq!(s.redis_url, None);
        assert_eq!(s.ports.gateway, 8080);
    }

    const PRODUCTION: &[(&str, &str)] = &[
        ("APP_ENV", "production"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef-prod"),
        (
            "SERVICE_TOKEN_SECRET",
            "fedcba9876543210fedcba9876543210-internal",
        ),
        ("COOKIE_SECURE", "true"),
        ("REDIS_URL", "redis://:redis-secret@redis:6379"),
        (
            "AMQP_URL",
            "amqp://holdfast:rabbit-secret@rabbitmq:5672/%2f",
        ),
        (
            "MONGODB_URI",
            "mongodb://holdfast:mongo-secret@mongo:27017/?replicaSet=rs0&authSource=admin",
        ),
        ("CORS_ORIGINS", "https://tickets.example.com"),
        (
            "SMTP_URL",
            "smtps://holdfast:smtp-secret@smtp.example.com:465",
        ),
        (
            "TICKET_SIGNING_KEYS",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        ),
    ];

    fn production_with(
        overrides: &[(&'static str, &'static str)],
    ) -> Result<Settings, ConfigError> {
        let mut vars: HashMap<&str, &str> = PRODUCTION.iter().copied().collect();
        for (k, v) in overrides {
            vars.insert(k, v);
        }
        Settings::from_map(&vars)
    }

    /// The one variable production refused.
    fn refused_variable(result: Result<Settings, ConfigError>) -> &'static str {
        match refused_variables(result).as_slice() {
            [name] => name,
            names => panic!("expected one refusal, got {names:?}"),
        }
    }

    fn refused_variables(result: Result<Settings, ConfigError>) -> Vec<&'static str> {
        match result {
            Err(ConfigError::UnsafeInProduction { refused }) => {
                refused.iter().map(|r| r.name).collect()
            }
            other => panic!("expected a production refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_redis_cluster_is_named_by_its_seed_nodes() {
        let s = settings(&[(
            "REDIS_CLUSTER_URLS",
            " redis://10.0.0.1:6379, redis://10.0.0.2:6379 ,",
        )])
        .unwrap();
        assert_eq!(
            s.redis_cluster_urls,
            ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]
        );
        assert_eq!(s.redis_url, None);
        let invalid = |vars: &[(&str, &str)]| match settings(vars) {
            Err(ConfigError::Invalid {
                name,
                value,
                reason,
                ..
            }) => {
                assert!(
                    !value.contains("s3cret"),
                    "the value is not echoed: {value}"
                );
                (name, reason)
            }
            other => panic!("expected an invalid variable, got {other:?}"),
        };
        let (name, reason) = invalid(&[
            ("REDIS_URL", "redis://:s3cret@redis:6379"),
            ("REDIS_CLUSTER_URLS", "redis://:s3cret@r1:6379"),
        ]);
        assert_eq!(name, "REDIS_CLUSTER_URLS");
        assert!(reason.contains("REDIS_URL is set too"), "{reason}");
        let (name, reason) = invalid(&[(
            "REDIS_CLUSTER_URLS",
            "redis://:s3cret@r1:6379,http://:s3cret@r2:6379",
        )]);
        assert_eq!(name, "REDIS_CLUSTER_URLS");
        assert!(reason.contains("seed node 2"), "{reason}");
        // Several URLs in REDIS_URL name a cluster as well.
        let s = settings(&[("REDIS_URL", "redis://r1:6379,redis://r2:6379")]).unwrap();
        assert_eq!(
            (s.redis_url, s.redis_cluster_urls),
            (
                None,
                vec!["redis://r1:6379".to_string(), "redis://r2:6379".to_string()]
            )
        );
        let (name, _) = invalid(&[("REDIS_URL", "redis://r1:6379,r2:6379")]);
        assert_eq!(name, "REDIS_URL");
    }

    #[test]
    fn production_takes_a_redis_cluster_whose_every_seed_carries_the_password() {
        let cluster = |urls: &'static str| {
            production_with(&[("REDIS_URL", ""), ("REDIS_CLUSTER_URLS", urls)])
        };
        let s = cluster("redis://:pw-1234@r1:6379,redis://:pw-1234@r2:6379").unwrap();
        assert_eq!(s.redis_cluster_urls.len(), 2);
        assert_eq!(
            refused_variable(cluster("redis://:pw-1234@r1:6379,redis://r2:6379")),
            "REDIS_CLUSTER_URLS"
        );
        // Without either, the TTL store is the embedded one: REDIS_URL is what is missing.
        assert_eq!(
            refused_variable(production_with(&[("REDIS_URL", "")])),
            "REDIS_URL"
        );
    }

    #[test]
    fn production_accepts_a_safe_configuration_and_never_seeds() {
        let s = production_with(&[("DEMO_SEED", "true")]).unwrap();
        assert!(s.is_production());
        assert!(!s.seeds_demo_data());
    }

    #[test]
    fn production_refuses_unsafe_settings() {
        let dev_secret = production_with(&[("JWT_SECRET", DEVELOPMENT_JWT_SECRET)]);
        assert_eq!(refused_variable(dev_secret), "JWT_SECRET");
        assert_eq!(
            refused_variable(production_with(&[("JWT_SECRET", "short-secret")])),
            "JWT_SECRET"
        );
        assert_eq!(
            refused_variable(production_with(&[("COOKIE_SECURE", "false")])),
            "COOKIE_SECURE"
        );
        assert_eq!(
            refused_variable(production_with(&[("RATE_LIMIT_DISABLED", "true")])),
            "RATE_LIMIT_DISABLED"
        );
        assert_eq!(
            refused_variable(production_with(&[("REDIS_URL", "")])),
            "REDIS_URL"
        );
        // Every refused variable is reported at once.
        let all = refused_variables(settings(&[("APP_ENV", "production")]));
        for name in [
            "JWT_SECRET",
            "COOKIE_SECURE",
            "CORS_ORIGINS",
            "REDIS_URL",
            "AMQP_URL",
            "MONGODB_URI",
            "SMTP_URL",
            "TICKET_SIGNING_KEYS",
        ] {
            assert!(all.contains(&name), "{name} missing from {all:?}");
        }
        let message = settings(&[("APP_ENV", "production")])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("JWT_SECRET") && message.contains("SMTP_URL"),
            "{message}"
        );
    }

    #[test]
    fn production_refuses_guessable_secrets_and_long_lived_tokens() {
        for secret in [
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababababab",
            "0123456701234567012345670123456701234567",
            "abcabcabcabcabcabcabcabcabcabcabcabc",
        ] {
            assert_eq!(
                refused_variable(production_with(&[("JWT_SECRET", secret)])),
                "JWT_SECRET",
                "{secret}"
            );
        }
        assert_eq!(
            refused_variable(production_with(&[(
                "ACCESS_TOKEN_TTL_SECONDS",
                "315360000"
            )])),
            "ACCESS_TOKEN_TTL_SECONDS"
        );
        assert!(production_with(&[("ACCESS_TOKEN_TTL_SECONDS", "3600")]).is_ok());
        for (email, password) in [
            ("root@example.com", "password123"),
            ("root@example.com", "short-pw"),
            ("root@example.com", "aaaaaaaaaaaaaaaa"),
        ] {
            assert_eq!(
                refused_variable(production_with(&[
                    ("ADMIN_EMAIL", email),
                    ("ADMIN_PASSWORD", password)
                ])),
                "ADMIN_PASSWORD",
                "{password}"
            );
        }
        assert!(
            production_with(&[
                ("ADMIN_EMAIL", "root@example.com"),
                ("ADMIN_PASSWORD", "a long operator passphrase")
            ])
            .is_ok()
        );
    }

    #[test]
    fn production_needs_a_service_secret_of_its_own() {
        for secret in [
            crate::service_auth::DEVELOPMENT_SERVICE_SECRET,
            "too-short",
            "0123456789abcdef0123456789abcdef-prod",
        ] {
            assert_eq!(
                refused_variable(production_with(&[("SERVICE_TOKEN_SECRET", secret)])),
                "SERVICE_TOKEN_SECRET",
                "{secret}"
            );
        }
    }

    #[test]
    fn production_refuses_proxies_that_cover_everyone_and_dotted_origins() {
        for proxies in ["0.0.0.0/0", "::/0", "10.0.0.0/8, 0.0.0.0/1", "2000::/3"] {
            assert_eq!(
                refused_variable(production_with(&[("TRUSTED_PROXIES", proxies)])),
                "TRUSTED_PROXIES",
                "{proxies}"
            );
        }
        assert!(production_with(&[("TRUSTED_PROXIES", "10.0.0.0/8, fd00::/16")]).is_ok());
        assert_eq!(
            refused_variable(production_with(&[(
                "CORS_ORIGINS",
                "https://tickets.example.com."
            )])),
            "CORS_ORIGINS"
        );
    }

    #[test]
    fn production_refuses_stores_without_credentials() {
        for (name, url) in [
            ("REDIS_URL", "redis://redis:6379"),
            ("REDIS_URL", "redis://user@redis:6379"),
            ("REDIS_URL", "redis://redis:6379/0?password=@x"),
            ("AMQP_URL", "amqp://rabbitmq:5672/%2f"),
            ("AMQP_URL", "amqp://guest:guest@rabbitmq:5672/%2f"),
            ("AMQP_URL", "amqp://holdfast@rabbitmq:5672/%2f"),
            ("MONGODB_URI", "mongodb://mongo:27017/?replicaSet=rs0"),
        ] {
            let mut vars: HashMap<&str, &str> = PRODUCTION.iter().copied().collect();
            vars.insert(name, url);
            assert_eq!(refused_variable(Settings::from_map(&vars)), name, "{url}");
        }
        assert!(
            production_with(&[
                (
                    "REDIS_URL",
                    "rediss://default:s3cret@cache.example.com:6380"
                ),
                (
                    "MONGODB_URI",
                    "mongodb://db.example.com/?authMechanism=MONGODB-X509&tls=true"
                ),
            ])
            .is_ok()
        );
    }

    #[test]
    fn production_sends_mail_only_over_tls() {
        for url in [
            "",
            "smtp://smtp.example.com:25",
            "smtp://smtp.example.com?tls=opportunistic",
            // The mail library reads the first `tls` parameter; a user name is not one.
            "smtp://relay:587?tls=opportunistic&x=tls=required",
            "smtp://relay:587?tls=opportunistic&tls=required",
            "smtp://u:tls=required@relay:25",
            "smtp://relay:25#tls=required",
        ] {
            assert_eq!(
                refused_variable(production_with(&[("SMTP_URL", url)])),
                "SMTP_URL",
                "{url:?}"
            );
        }
        let starttls = production_with(&[("SMTP_URL", "smtp://smtp.example.com:587?tls=required")]);
        assert!(starttls.is_ok());
        assert!(settings(&[("SMTP_URL", "smtp://127.0.0.1:2525")]).is_ok());
        let err = settings(&[("MAIL_FROM", "Holdfast")]).unwrap_err();
        assert!(err.to_string().starts_with("MAIL_FROM:"), "{err}");
        assert_eq!(
            settings(&[]).unwrap().notifications.smtp_url,
            None,
            "development defaults to the file sink"
        );
    }

    #[test]
    fn production_refuses_plain_http_and_local_origins() {
        for origin in [
            "http://localhost:5173",
            "http://tickets.example.com",
            "https://localhost:5173",
            "https://app.localhost",
            "https://127.0.0.1:8443",
            "https://[::1]:8443",
            "https://0.0.0.0",
            "https://tickets.example.com, http://localhost:5173",
        ] {
            let mut vars: HashMap<&str, &str> = PRODUCTION.iter().copied().collect();
            vars.insert("CORS_ORIGINS", origin);
            assert_eq!(
                refused_variable(Settings::from_map(&vars)),
                "CORS_ORIGINS",
                "{origin}"
            );
        }
        let s = production_with(&[(
            "CORS_ORIGINS",
            "https://tickets.example.com,https://box.example.com:8443",
        )])
        .unwrap();
        assert_eq!(s.gateway.cors_origins.len(), 2);
    }

    #[test]
    fn rate_limits_are_quotas_per_window() {
        let s = settings(&[("RATE_LIMIT_WRITES", "10/5")]).unwrap();
        let limits = s.gateway.rate_limits;
        assert_eq!(limits.writes.quota, 10);
        assert_eq!(limits.writes.interval(), Duration::from_millis(500));
        assert_eq!(limits.credentials.quota, 20);
        assert_eq!(limits.credentials.interval(), Duration::from_secs(3));
        assert_eq!(limits.reads.window, Duration::from_secs(60));
        for bad in ["10", "0/60", "10/0", "ten/60", "10/60s"] {
            let err = settings(&[("RATE_LIMIT_READS", bad)]).unwrap_err();
            assert!(err.to_string().starts_with("RATE_LIMIT_READS:"), "{err}");
        }
    }

    #[test]
    fn trusted_proxies_are_networks_or_addresses() {
        let s = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,::1")]).unwrap();
        let shown: Vec<String> = s
            .gateway
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.168.1.7/32", "::1/128"]);
        assert!(settings(&[]).unwrap().gateway.trusted_proxies.is_empty());
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0"] {
            let err = settings(&[("TRUSTED_PROXIES", bad)]).unwrap_err();
            assert!(err.to_string().starts_with("TRUSTED_PROXIES:"), "{err}");
        }
    }

    #[test]
    fn auth_defaults_and_lists() {
        let s = settings(&[("CORS_ORIGINS", "http://a.test, https://b.test/ ,")]).unwrap();
        assert_eq!(s.auth.access_token_ttl, Duration::from_secs(900));
        assert_eq!(s.auth.refresh_token_ttl, Duration::from_secs(14 * 86400));
        assert_eq!(s.auth.session_ttl, Duration::from_secs(30 * 86400));
        assert!(!s.auth.cookie_secure && s.seeds_demo_data());
        assert_eq!(
            s.gateway.cors_origins,
            vec!["http://a.test", "https://b.test"]
        );
        assert_eq!(
            settings(&[]).unwrap().gateway.cors_origins,
            vec!["http://localhost:5173"]
        );
        let err = settings(&[("COOKIE_SECURE", "maybe")]).unwrap_err();
        assert!(err.to_string().starts_with("COOKIE_SECURE:"), "{err}");
    }

    #[test]
    fn the_admin_account_needs_both_variables_and_a_valid_password() {
        let s = settings(&[
            ("ADMIN_EMAIL", "root@example.com"),
            ("ADMIN_PASSWORD", "long-enough"),
        ]);
        assert_eq!(s.unwrap().auth.admin.unwrap().email, "root@example.com");
        let err = settings(&[("ADMIN_EMAIL", "root@example.com")]).unwrap_err();
        assert!(err.to_string().starts_with("ADMIN_PASSWORD:"), "{err}");
        let err = settings(&[("ADMIN_EMAIL", "a@b.c"), ("ADMIN_PASSWORD", "short")]).unwrap_err();
        assert!(
            err.to_string().starts_with("ADMIN_PASSWORD:") && !err.to_string().contains("short")
        );
    }

    #[test]
    fn service_urls_lose_a_trailing_slash() {
        let s = settings(&[("ML_SERVICE_URL", "http://ml:5000/")]).unwrap();
        assert_eq!(s.service_urls.ml, "http://ml:5000");
    }
}
