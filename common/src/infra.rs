//! Picks the adapter of each shared port from the settings and connects it.
//!
//! `REDIS_URL` (one server) or `REDIS_CLUSTER_URLS` (a cluster) set → Redis TTL store, else
//! in-process; `AMQP_URL` set → RabbitMQ bus, else in-process. The all-in-one launcher shares one [`Infra`] between its services, which is what
//! lets the in-process bus carry messages from one service to another.

use std::sync::Arc;

use anyhow::Context;

use crate::bus::{self, MemoryBus, MessageBus, RabbitBus};
use crate::config::Settings;
use crate::docstore::Database;
use crate::kv::{MemoryStore, RedisStore, TtlStore};
use crate::server::Readiness;

/// The shared infrastructure handed to every service.
#[derive(Clone)]
pub struct Infra {
    pub kv: Arc<dyn TtlStore>,
    /// The same store as `kv` when it is Redis, for services' own scripts and pub/sub.
    pub redis: Option<RedisStore>,
    pub bus: Arc<dyn MessageBus>,
    /// "redis" or "memory", for logs.
    pub kv_kind: &'static str,
    /// "rabbitmq" or "memory", for logs.
    pub bus_kind: &'static str,
}

impl Infra {
    /// Connects the adapters the settings ask for; fails when a configured server is unreachable.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let redis = match &settings.redis_url {
            Some(url) => Some(
                RedisStore::connect(url, "")
                    .await
                    .context("REDIS_URL: cannot connect")?,
            ),
            None if !settings.redis_cluster_urls.is_empty() => Some(
                RedisStore::connect_cluster(&settings.redis_cluster_urls, "")
                    .await
                    .context("REDIS_CLUSTER_URLS: cannot connect to the cluster")?,
            ),
            None => None,
        };
        let (bus, bus_kind): (Arc<dyn MessageBus>, _) = match &settings.amqp_url {
            Some(url) => (
                Arc::new(
                    RabbitBus::connect_with_limit(url, bus::EXCHANGE, settings.bus_delivery_limit)
                        .await
                        .context("AMQP_URL: cannot connect")?,
                ),
                "rabbitmq",
            ),
            None => (
                Arc::new(
                    MemoryBus::until_subscribed().with_delivery_limit(settings.bus_delivery_limit),
                ),
                "memory",
            ),
        };
        let mut infra = match redis {
            Some(store) => Self::with_redis(store),
            None => Self::embedded(),
        };
        infra.bus = bus;
        infra.bus_kind = bus_kind;
        Ok(infra)
    }

    /// In-process adapters only, as tests and the default profile use.
    pub fn embedded() -> Self {
        Self {
            kv: Arc::new(MemoryStore::new()),
            redis: None,
            bus: Arc::new(MemoryBus::until_subscribed()),
            kv_kind: "memory",
            bus_kind: "memory",
        }
    }

    /// The Redis TTL store `store` with the in-process bus.
    pub fn with_redis(store: RedisStore) -> Self {
        Self {
            kv: Arc::new(store.clone()),
            redis: Some(store),
            kv_kind: "redis",
            ..Self::embedded()
        }
    }

    /// Readiness checks for the TTL store, the bus and, if given, the service's document store.
    pub fn readiness(&self, store: Option<&Database>) -> Readiness {
        let kv = self.kv.clone();
        let bus = self.bus.clone();
        let readiness = Readiness::new()
            .check("kv", move || {
                let kv = kv.clone();
                async move { kv.ping().await.map_err(|e| e.to_string()) }
            })
            .check("bus", move || {
                let bus = bus.clone();
                async move { bus.ping().await.map_err(|e| e.to_string()) }
            });
        match store.cloned() {
            Some(store) => readiness.check("store", move || {
                let store = store.clone();
                async move { store.ping().await.map_err(|e| e.to_string()) }
            }),
            None => readiness,
        }
    }
}
