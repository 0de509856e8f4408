//! The all-in-one Holdfast: every service's router, mounted together.
//!
//! [`mount_all`] is what the `holdfast` binary serves on the configured ports; [`spawn`] serves
//! the same routers on ephemeral ports with the gateway wired to them, for end-to-end tests.

pub mod openapi;

use std::sync::Arc;

use holdfast_common::config::Settings;
use holdfast_common::infra::Infra;
use holdfast_common::launch::Mounted;
use holdfast_common::server;
use holdfast_gateway::upstream::LocalServices;
use tokio_util::sync::CancellationToken;

/// How the gateway reaches the services of the same process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Calls each service's router in process, unless its `*_SERVICE_URL` is set.
    InProcess,
    /// Always over HTTP, as separate processes do.
    Http,
}

/// Every service and the gateway, on the ports of `settings`. The gateway calls the services
/// in process, except those whose `*_SERVICE_URL` is set (it uses HTTP for those).
pub async fn mount_all(settings: Arc<Settings>, infra: Infra) -> anyhow::Result<Vec<Mounted>> {
    mount(settings, infra, Dispatch::InProcess).await
}

async fn mount(
    settings: Arc<Settings>,
    infra: Infra,
    dispatch: Dispatch,
) -> anyhow::Result<Vec<Mounted>> {
    let ports = &settings.ports;
    let services = vec![
        Mounted {
            name: holdfast_auth::SERVICE,
            port: ports.auth,
            router: holdfast_auth::build(settings.clone(), infra.clone()).await?,
        },
        Mounted {
            name: holdfast_events::SERVICE,
            port: ports.events,
            router: holdfast_events::build(settings.clone(), infra.clone()).await?,
        },
        Mounted {
            name: holdfast_orders::SERVICE,
            port: ports.orders,
            router: holdfast_orders::build(settings.clone(), infra.clone()).await?,
        },
        Mounted {
            name: holdfast_ml::SERVICE,
            port: ports.ml,
            router: holdfast_ml::build(settings.clone(), infra.clone()).await?,
        },
        Mounted {
            name: holdfast_notifications::SERVICE,
            port: ports.notifications,
            router: holdfast_notifications::build(settings.clone(), infra.clone()).await?,
        },
    ];
    let local = match dispatch {
        Dispatch::Http => LocalServices::new(),
        Dispatch::InProcess => services
            .iter()
            .filter(|s| !settings.service_urls.configured.contains(&s.name))
            .map(|s| (s.name, s.router.clone()))
            .collect(),
    };
    let routers = holdfast_gateway::build_with(settings.clone(), infra, local).await?;
    let gateway = Mounted {
        name: holdfast_gateway::SERVICE,
        port: ports.gateway,
        router: routers.public,
    };
    let metrics = settings.gateway.metrics_port.map(|port| Mounted {
        name: holdfast_gateway::METRICS,
        port,
        router: routers.metrics,
    });
    Ok(services
        .into_iter()
        .chain([gateway])
        .chain(metrics)
        .collect())
}

/// A running stack on ephemeral ports; dropping it shuts every server down.
pub struct Stack {
    pub gateway_url: String,
    /// The gateway's metrics listener, when `GATEWAY_METRICS_PORT` is set.
    pub gateway_metrics_url: Option<String>,
    pub auth_url: String,
    pub events_url: String,
    pub orders_url: String,
    pub ml_url: String,
    pub notifications_url: String,
    pub infra: Infra,
    shutdown: CancellationToken,
}

impl Stack {
    /// Stops every server of the stack (also done when it is dropped).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves the whole stack on ports chosen by the OS, the gateway calling the services in
/// process.
pub async fn spawn(settings: Settings, infra: Infra) -> anyhow::Result<Stack> {
    spawn_with(settings, infra, Dispatch::InProcess).await
}

/// [`spawn`], the gateway reaching the services as `dispatch` says.
pub async fn spawn_with(
    mut settings: Settings,
    infra: Infra,
    dispatch: Dispatch,
) -> anyhow::Result<Stack> {
    let mut listeners = std::collections::HashMap::new();
    let mut urls = std::collections::HashMap::new();
    let metrics_port = settings
        .gateway
        .metrics_port
        .map(|_| holdfast_gateway::METRICS);
    for name in ["auth", "events", "orders", "ml", "notifications", "gateway"]
        .into_iter()
        .chain(metrics_port)
    {
        let listener = server::bind(settings.host, 0).await?;
        urls.insert(name, format!("http://{}", listener.local_addr()?));
        listeners.insert(name, listener);
    }
    let url = |name: &str| urls[name].clone();
    settings.service_urls.auth = url("auth");
    settings.service_urls.events = url("events");
    settings.service_urls.orders = url("orders");
    settings.service_urls.ml = url("ml");
    settings.service_urls.notifications = url("notifications");

    let settings = Arc::new(settings);
    let shutdown = CancellationToken::new();
    let mounted = mount(settings.clone(), infra.clone(), dispatch).await?;
    infra.bus.subscribers_ready();
    for Mounted { name, router, .. } in mounted {
        let listener = listeners
            .remove(name)
            .ok_or_else(|| anyhow::anyhow!("no listener for {name}"))?;
        let (shutdown, grace) = (shutdown.clone(), settings.shutdown_grace);
        tokio::spawn(server::serve(listener, router, shutdown, grace));
    }
    Ok(Stack {
        gateway_metrics_url: metrics_port.map(url),
        gateway_url: url("gateway"),
        auth_url: url("auth"),
        events_url: url("events"),
        orders_url: url("orders"),
        ml_url: url("ml"),
        notifications_url: url("notifications"),
        infra,
        shutdown,
    })
}
