//! The services behind the gateway and how public paths map onto theirs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::Uri;
use axum::http::uri::{Authority, Scheme};
use holdfast_common::config::ServiceUrls;

/// Service routers the gateway calls in process (the all-in-one profile), by service name.
pub type LocalServices = HashMap<&'static str, Router>;

/// One upstream service and how it is reached.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: &'static str,
    pub address: Address,
}

/// Where an upstream answers.
#[derive(Debug, Clone)]
pub enum Address {
    /// Its router, called in process: a `tower::Service` call with the same request and answer.
    Local(Router),
    /// Its replicas' HTTP servers, called in turn.
    Http(Arc<Replicas>),
}

/// How long a replica that refused a connection is passed over.
const DOWN_FOR: Duration = Duration::from_secs(2);

/// The HTTP servers of one service's replicas (a `*_SERVICE_URL` may list several, comma
/// separated), each call going to the next in turn. A replica that refuses a connection (a
/// stopped or killed process) is passed over for [`DOWN_FOR`], so its share of the calls goes
/// to the others instead of failing; when every replica is down they are all tried.
#[derive(Debug)]
pub struct Replicas {
    servers: Vec<Server>,
    next: AtomicUsize,
}

/// One replica: `base_path` (empty, or starting with `/` and without a trailing one) prefixes
/// every path sent to it.
#[derive(Debug)]
pub struct Server {
    pub scheme: Scheme,
    pub authority: Authority,
    pub base_path: String,
    /// Unix ms until which it is passed over.
    down_until_ms: AtomicI64,
}

impl Server {
    /// The server at `url`, an absolute `http://` URL.
    fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("service URL {url:?}: {e}"))?;
        let parts = uri.into_parts();
        match (parts.scheme, parts.authority) {
            (Some(scheme), Some(authority)) if scheme == Scheme::HTTP => Ok(Self {
                scheme,
                authority,
                base_path: parts
                    .path_and_query
                    .map(|p| p.path().trim_end_matches('/').to_string())
                    .unwrap_or_default(),
                down_until_ms: AtomicI64::new(0),
            }),
            _ => anyhow::bail!("service URL {url:?}: must be an absolute http:// URL"),
        }
    }

    /// It refused a connection: pass it over for a while.
    pub fn mark_down(&self) {
        let until = holdfast_common::when::now_millis()
            + i64::try_from(DOWN_FOR.as_millis()).unwrap_or(i64::MAX);
        if self.down_until_ms.swap(until, Ordering::Relaxed) == 0 {
            tracing::warn!(server = %self, "replica refused a connection; passed over for now");
        }
    }

    fn is_up(&self, now_ms: i64) -> bool {
        let until = self.down_until_ms.load(Ordering::Relaxed);
        if until != 0 && until <= now_ms {
            self.down_until_ms.store(0, Ordering::Relaxed);
        }
        until <= now_ms
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

impl Replicas {
    /// The replicas listed in `urls`, comma-separated absolute `http://` URLs.
    pub fn parse(urls: &str) -> anyhow::Result<Self> {
        let servers = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(Server::parse)
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!servers.is_empty(), "service URL {urls:?}: no URL");
        Ok(Self {
            servers,
            next: AtomicUsize::new(0),
        })
    }

    /// Whether the service has other replicas to stand in for one that went away.
    pub fn has_several(&self) -> bool {
        self.servers.len() > 1
    }

    /// The replica for the next call: the replicas that are not passed over take turns (so a
    /// down one's share is spread over the others), or all of them when every one is down.
    pub fn pick(&self) -> &Server {
        let now = holdfast_common::when::now_millis();
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let up = self.servers.iter().filter(|s| s.is_up(now)).count();
        match up {
            0 => &self.servers[turn % self.servers.len()],
            up => self
                .servers
                .iter()
                .filter(|s| s.is_up(now))
                .nth(turn % up)
                .unwrap_or(&self.servers[0]),
        }
    }
}

impl Address {
    /// The address of a service at `urls`: one absolute `http://` URL or several, comma
    /// separated (its replicas).
    pub fn http(urls: &str) -> anyhow::Result<Self> {
        Ok(Self::Http(Arc::new(Replicas::parse(urls)?)))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(_) => f.write_str("in process"),
            Self::Http(replicas) => {
                let servers: Vec<String> = replicas.servers.iter().map(Server::to_string).collect();
                f.write_str(&servers.join(", "))
            }
        }
    }
}

/// All four upstreams.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub auth: Upstream,
    pub events: Upstream,
    pub orders: Upstream,
    pub ml: Upstream,
    pub notifications: Upstream,
}

impl Upstreams {
    /// The upstreams at `urls`, except those in `local`, which are called in process.
    pub fn new(urls: &ServiceUrls, local: &LocalServices) -> anyhow::Result<Self> {
        let upstream = |name, url: &str| -> anyhow::Result<Upstream> {
            let address = match local.get(name) {
                Some(router) => Address::Local(router.clone()),
                None => Address::http(url)?,
            };
            Ok(Upstream { name, address })
        };
        Ok(Self {
            auth: upstream("auth", &urls.auth)?,
            events: upstream("events", &urls.events)?,
            orders: upstream("orders", &urls.orders)?,
            ml: upstream("ml", &urls.ml)?,
            notifications: upstream("notifications", &urls.notifications)?,
        })
    }

    pub fn all(&self) -> [&Upstream; 5] {
        [
            &self.auth,
            &self.events,
            &self.orders,
            &self.ml,
            &self.notifications,
        ]
    }

    pub fn by_name(&self, name: &str) -> Option<&Upstream> {
        self.all().into_iter().find(|u| u.name == name)
    }
}

/// First segments of service paths that are for the other services and operators, never for the
/// public: service-to-service calls (`/internal/*`) and each service's own `/metrics` and
/// `/ready`. Their public counterparts are the gateway's own `/metrics`, `/ready` and
/// `/{service}/health`.
const NEVER_FORWARDED: [&str; 3] = ["internal", "metrics", "ready"];

/// Which upstream serves a public path, and the path it knows it by:
/// `/api/auth/*` → auth `/*`, `/api/events*` → events `/events*`, `/api/orders/*` → orders `/*`,
/// `/api/public/*` → orders `/public/*`, `/api/checkin/*` → orders `/checkin/*`, `/api/ml/*` →
/// ml `/*`, `/api/notifications/*` → notifications `/*`; `None` for other paths and for
/// [`NEVER_FORWARDED`] service paths.
pub fn route<'u>(upstreams: &'u Upstreams, path: &str) -> Option<(&'u Upstream, String)> {
    let (upstream, service_path) = public_route(upstreams, path)?;
    let first_segment = service_path[1..].split('/').next().unwrap_or_default();
    if NEVER_FORWARDED.contains(&first_segment) {
        return None;
    }
    Some((upstream, service_path))
}

/// [`route`] before the internal paths are taken out.
fn public_route<'u>(upstreams: &'u Upstreams, path: &str) -> Option<(&'u Upstream, String)> {
    let strip = |prefix: &str| {
        path.strip_prefix(prefix)
            .filter(|rest| rest.starts_with('/'))
            .map(str::to_string)
    };
    if let Some(rest) = strip("/api/auth") {
        return Some((&upstreams.auth, rest));
    }
    if path == "/api/events" || path.starts_with("/api/events/") {
        return Some((&upstreams.events, path["/api".len()..].to_string()));
    }
    if let Some(rest) = strip("/api/orders") {
        return Some((&upstreams.orders, rest));
    }
    if path.starts_with("/api/public/") || path.starts_with("/api/checkin/") {
        return Some((&upstreams.orders, path["/api".len()..].to_string()));
    }
    if let Some(rest) = strip("/api/ml") {
        return Some((&upstreams.ml, rest));
    }
    if let Some(rest) = strip("/api/notifications") {
        return Some((&upstreams.notifications, rest));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstreams() -> Upstreams {
        Upstreams::new(
            &ServiceUrls {
                auth: "http://a".into(),
                events: "http://e".into(),
                orders: "http://o".into(),
                ml: "http://m".into(),
                notifications: "http://n".into(),
                configured: vec![],
            },
            &LocalServices::new(),
        )
        .expect("valid URLs")
    }

    #[test]
    fn service_urls_must_be_absolute_http() {
        for bad in [
            "127.0.0.1:4001",
            "/events",
            "https://events:4002",
            "ftp://x",
        ] {
            assert!(Address::http(bad).is_err(), "{bad}");
        }
        let address = Address::http("http://events:4002/prefix/").expect("valid");
        assert_eq!(address.to_string(), "http://events:4002/prefix");
        assert_eq!(
            Address::http("http://events:4002")
                .expect("valid")
                .to_string(),
            "http://events:4002"
        );
    }

    #[test]
    fn public_paths_map_to_upstream_paths() {
        let u = upstreams();
        let cases = [
            ("/api/auth/login", Some(("auth", "/login"))),
            ("/api/events", Some(("events", "/events"))),
            ("/api/events/abc", Some(("events", "/events/abc"))),
            (
                "/api/orders/holds/h1/ttl",
                Some(("orders", "/holds/h1/ttl")),
            ),
            (
                "/api/public/orders/o1",
                Some(("orders", "/public/orders/o1")),
            ),
            (
                "/api/notifications/dead-letters",
                Some(("notifications", "/dead-letters")),
            ),
            ("/api/notifications/metrics", None),
            (
                "/api/checkin/events/e1/scan",
                Some(("orders", "/checkin/events/e1/scan")),
            ),
            ("/api/ml/recs", Some(("ml", "/recs"))),
            ("/api/orders/internal/events/e1/activity", None),
            ("/api/auth/metrics", None),
            ("/api/orders/metrics", None),
            ("/api/ml/ready", None),
            ("/api/auth/ready", None),
            ("/api/ml/internal", None),
            ("/api/auth/readyz", Some(("auth", "/readyz"))),
            ("/api/eventsx", None),
            ("/api/authx/login", None),
            ("/api/auth", None),
            ("/api/unknown/x", None),
            ("/other", None),
        ];
        for (path, expected) in cases {
            let got = route(&u, path).map(|(up, p)| (up.name, p));
            assert_eq!(
                got.as_ref().map(|(n, p)| (*n, p.as_str())),
                expected,
                "{path}"
            );
        }
    }
}
