//! Shared building blocks of every Holdfast process.
//!
//! - [`config`]: typed settings from environment variables;
//! - [`error`], [`middleware`], [`server`], [`metrics`], [`telemetry`]: the HTTP plumbing every
//!   process shares (error body, request ids, health/ready/metrics, graceful shutdown);
//! - [`kv`], [`bus`], [`docstore`]: the infrastructure ports, each with a distributed and an
//!   embedded adapter, chosen by [`infra::Infra::connect`] from the settings;
//! - [`launch`]: the `main` every binary shares;
//! - `testing` (feature `testing`, for test builds only): helpers for suites that need a real
//!   server.

pub mod auth;
pub mod bus;
pub mod config;
pub mod demo;
pub mod docstore;
pub mod error;
pub mod extract;
pub mod html;
pub mod ids;
pub mod infra;
pub mod kv;
pub mod launch;
pub mod messages;
pub mod metrics;
pub mod middleware;
pub mod money;
pub mod openapi;
pub mod passwords;
pub mod qr;
pub mod replicas;
pub mod retention;
pub mod server;
pub mod service_auth;
pub mod sync;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod ticket_pass;
pub mod venue;
pub mod when;
