//! A circuit breaker per upstream (failsafe).
//!
//! After `CIRCUIT_FAILURE_THRESHOLD` consecutive failures of one upstream (it cannot be reached,
//! it times out, or it answers 502/503/504), its circuit opens: for `CIRCUIT_OPEN_MS` the gateway
//! answers 503 `CIRCUIT_OPEN` with `Retry-After` at once instead of piling more requests on a
//! struggling service. Then one trial call goes through; its success closes the circuit again.
//! Each circuit's state is reported on `/metrics` (0 closed, 1 open, 2 half-open), with the
//! number of calls it refused.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use axum::response::Response;
use failsafe::futures::CircuitBreaker as _;
use failsafe::{Config, Error, Instrument, StateMachine, backoff, failure_policy};
use holdfast_common::config::GatewaySettings;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::error::GatewayError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

/// Reports one circuit's state changes and refusals to the metrics.
#[derive(Clone)]
struct Report {
    state: Gauge,
    rejections: Counter,
    upstream: &'static str,
}

impl Instrument for Report {
    fn on_call_rejected(&self) {
        self.rejections.inc();
    }

    fn on_open(&self) {
        tracing::warn!(upstream = self.upstream, "circuit opened");
        self.state.set(1);
    }

    fn on_half_open(&self) {
        self.state.set(2);
    }

    fn on_closed(&self) {
        tracing::info!(upstream = self.upstream, "circuit closed");
        self.state.set(0);
    }
}

type Machine = StateMachine<failure_policy::ConsecutiveFailures<backoff::Constant>, Report>;

/// How a call went, as the breaker counts it.
enum Failure {
    /// The upstream could not be reached or did not answer in time.
    Down(GatewayError),
    /// The upstream answered that it is in trouble (502/503/504); the answer is still relayed.
    Unhealthy(Response),
    /// Not the upstream's fault (the client's body was too large), or one replica's that the
    /// others stand in for: not a failure of the upstream.
    Client(GatewayError),
}

/// The circuit breakers of all upstreams.
pub struct Breakers {
    circuits: HashMap<&'static str, Machine>,
    open_for: Duration,
}

impl Breakers {
    /// One circuit per name, registered in `registry`.
    pub fn new(
        names: &[&'static str],
        settings: &GatewaySettings,
        registry: &mut Registry,
    ) -> Self {
        let states = Family::<UpstreamLabel, Gauge>::default();
        let rejections = Family::<UpstreamLabel, Counter>::default();
        registry.register(
            "circuit_state",
            "Circuit breaker state per upstream: 0 closed, 1 open, 2 half-open",
            states.clone(),
        );
        registry.register(
            "circuit_rejections",
            "Calls refused because the upstream's circuit was open",
            rejections.clone(),
        );
        let circuits = names
            .iter()
            .map(|&name| {
                let label = UpstreamLabel {
                    upstream: name.to_string(),
                };
                let report = Report {
                    state: states.get_or_create(&label).clone(),
                    rejections: rejections.get_or_create(&label).clone(),
                    upstream: name,
                };
                let policy = failure_policy::consecutive_failures(
                    settings.circuit_failure_threshold,
                    backoff::constant(settings.circuit_open_for),
                );
                (
                    name,
                    Config::new()
                        .failure_policy(policy)
                        .instrument(report)
                        .build(),
                )
            })
            .collect();
        Self {
            circuits,
            open_for: settings.circuit_open_for,
        }
    }

    /// Runs `call` to `upstream` through its circuit.
    pub async fn call<F>(&self, upstream: &'static str, call: F) -> Result<Response, GatewayError>
    where
        F: Future<Output = Result<Response, GatewayError>>,
    {
        let Some(circuit) = self.circuits.get(upstream) else {
            return call.await;
        };
        let classified = async {
            match call.await {
                Ok(response) if matches!(response.status().as_u16(), 502..=504) => {
                    Err(Failure::Unhealthy(response))
                }
                Ok(response) => Ok(response),
                Err(
                    error @ (GatewayError::BodyTooLarge(_) | GatewayError::ReplicaUnavailable(_)),
                ) => Err(Failure::Client(error)),
                Err(error) => Err(Failure::Down(error)),
            }
        };
        let counts = |failure: &Failure| !matches!(failure, Failure::Client(_));
        match circuit.call_with(counts, classified).await {
            Ok(response) | Err(Error::Inner(Failure::Unhealthy(response))) => Ok(response),
            Err(Error::Inner(Failure::Down(error) | Failure::Client(error))) => Err(error),
            Err(Error::Rejected) => Err(GatewayError::CircuitOpen {
                upstream,
                retry_after: self.open_for.as_secs().max(1),
            }),
        }
    }
}
