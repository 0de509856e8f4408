//! Prometheus metrics of one process, served as text on `GET /metrics`.
//!
//! Each process owns its registry (not a global one), so the all-in-one launcher still reports
//! each service separately. Services register their own instruments (holds taken, purchases,
//! breaker state…) through [`Metrics::with`] at start-up.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::Method;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    /// A standard method's name, or `OTHER`: clients choose methods, and must not choose how
    /// many series there are.
    method: &'static str,
    route: Route,
    status: u16,
}

/// A request's route template (`/events/{id}`), never the raw path, to keep cardinality
/// bounded. Holding the router's own [`MatchedPath`], recording a request copies no string.
#[derive(Clone, Debug)]
pub enum Route {
    Matched(MatchedPath),
    Named(&'static str),
}

impl Route {
    /// Requests no route matched (404s, rejected methods).
    pub const UNMATCHED: Self = Self::Named("unmatched");

    fn as_str(&self) -> &str {
        match self {
            Self::Matched(path) => path.as_str(),
            Self::Named(name) => name,
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

fn method_label(method: &Method) -> &'static str {
    const STANDARD: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    STANDARD
        .iter()
        .find(|(standard, _)| standard == method)
        .map_or("OTHER", |(_, name)| name)
}

type LatencyFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

/// The metrics registry of one process; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: LatencyFamily,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// A registry with the HTTP instruments only.
    pub fn new(service: &str) -> Self {
        Self::with(service, |_| {})
    }

    /// A registry with the HTTP instruments plus whatever `register` adds.
    pub fn with(service: &str, register: impl FnOnce(&mut Registry)) -> Self {
        Self::build(service, register).0
    }

    /// Like [`Metrics::with`], also handing back what `register` built (instruments that live
    /// inside another structure, such as circuit breakers).
    pub fn build<T>(service: &str, register: impl FnOnce(&mut Registry) -> T) -> (Self, T) {
        let mut registry = Registry::with_prefix_and_labels(
            "holdfast",
            [(Cow::Borrowed("service"), Cow::Owned(service.to_string()))].into_iter(),
        );
        let requests = Family::<HttpLabels, Counter>::default();
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route and status",
            latency.clone(),
        );
        let built = register(&mut registry);
        let metrics = Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
            }),
        };
        (metrics, built)
    }

    /// Records one answered request.
    pub fn observe_request(&self, method: &Method, route: Route, status: u16, elapsed: Duration) {
        let labels = HttpLabels {
            method: method_label(method),
            route,
            status,
        };
        self.inner.requests.get_or_create(&labels).inc();
        self.inner
            .latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.inner.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let metrics = Metrics::new("events");
        let route = Route::Named("/events/{id}");
        metrics.observe_request(&Method::GET, route.clone(), 200, Duration::from_millis(3));
        metrics.observe_request(&Method::GET, route.clone(), 200, Duration::from_millis(5));
        metrics.observe_request(&Method::GET, route.clone(), 404, Duration::from_millis(1));
        let custom = Method::from_bytes(b"BREW").unwrap();
        metrics.observe_request(&custom, Route::UNMATCHED, 405, Duration::from_millis(1));
        let text = metrics.render();
        assert!(text.contains(
            r#"holdfast_http_requests_total{service="events",method="GET",route="/events/{id}",status="200"} 2"#
        ), "{text}");
        assert!(
            text.contains(r#"route="/events/{id}",status="404"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"method="OTHER",route="unmatched",status="405"} 1"#),
            "{text}"
        );
        assert!(text.contains("holdfast_http_request_duration_seconds_bucket"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn services_register_their_own_instruments() {
        let holds = Gauge::<i64>::default();
        let metrics = Metrics::with("orders", |r| {
            r.register("holds_live", "Holds currently live", holds.clone())
        });
        holds.set(7);
        assert!(
            metrics
                .render()
                .contains(r#"holdfast_holds_live{service="orders"} 7"#)
        );
    }
}
