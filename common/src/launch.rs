//! The `main` shared by every binary: configuration, telemetry, infrastructure, listeners,
//! graceful shutdown and exit codes.
//!
//! A binary only says which routers it serves on which ports; `holdfast` (all-in-one) returns
//! all five, `holdfast-auth` just one.

use anyhow::Context;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;

use crate::config::{Service, Settings};
use crate::infra::Infra;
use crate::server::{self, shutdown_on_signal};
use crate::telemetry;

#[doc(hidden)]
pub use mimalloc::MiMalloc;

/// Declares the process's global allocator, mimalloc: a request allocates and frees dozens of
/// small buffers across worker threads, where glibc's allocator spent about a quarter of the
/// gateway's instructions (BENCHMARKS.md). Each binary invokes it once; libraries never do.
#[macro_export]
macro_rules! global_allocator {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::launch::MiMalloc = $crate::launch::MiMalloc;
    };
}

/// One router to serve, and where.
pub struct Mounted {
    pub name: &'static str,
    pub port: u16,
    pub router: Router,
}

/// Exit code when the configuration is invalid (as `sysexits`' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

/// Reads the settings for `services` (what the process runs), connects the infrastructure,
/// asks `build` for the routers and serves them until SIGINT/SIGTERM. Exits 0 after a clean
/// shutdown.
pub async fn main<F, Fut>(services: &[Service], build: F) -> ExitCode
where
    F: FnOnce(Arc<Settings>, Infra) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<Mounted>>>,
{
    let settings = match Settings::from_env_for(services) {
        Ok(settings) => Arc::new(settings),
        Err(error) => {
            eprintln!("configuration error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let _log_writer = telemetry::init(settings.log_format);
    match run(settings, build).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run<F, Fut>(settings: Arc<Settings>, build: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<Settings>, Infra) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<Mounted>>>,
{
    server::raise_file_limit();
    let infra = Infra::connect(&settings).await?;
    tracing::info!(
        kv = infra.kv_kind,
        bus = infra.bus_kind,
        "infrastructure connected"
    );
    let mounted = build(settings.clone(), infra.clone()).await?;
    // Every port is bound before anything is announced: a busy port ends the start-up with
    // its error alone, never after addresses that are not served.
    let mut bound = Vec::with_capacity(mounted.len());
    for Mounted { name, port, router } in mounted {
        let listener = server::bind(settings.host, port)
            .await
            .with_context(|| format!("{name} cannot listen on {}:{port}", settings.host))?;
        bound.push((name, listener, router));
    }
    infra.bus.subscribers_ready();
    println!("Holdfast is listening on:");
    let shutdown = shutdown_on_signal();
    let mut servers = tokio::task::JoinSet::new();
    for (name, listener, router) in bound {
        let address = listener.local_addr()?;
        tracing::info!(service = name, %address, "listening");
        println!("  {name:<13} http://{address}");
        let (shutdown, grace) = (shutdown.clone(), settings.shutdown_grace);
        // Only the gateway faces clients; the services' clients are gateways, many requests
        // each, so a per-client cap applies at the gateway alone.
        let limits = server::ConnectionLimits {
            max_open: settings.max_connections,
            max_per_client: (name == "gateway").then_some(settings.max_connections_per_client),
            exempt: settings.gateway.trusted_proxies.clone().into(),
            ..server::ConnectionLimits::default()
        };
        servers.spawn(async move {
            (
                name,
                server::serve_with(listener, router, shutdown, grace, limits).await,
            )
        });
    }
    let mut failed = None;
    while let Some(joined) = servers.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(error))) => {
                failed.get_or_insert(anyhow::anyhow!("{name} stopped: {error}"));
                shutdown.cancel();
            }
            Err(error) => {
                failed.get_or_insert(anyhow::anyhow!("a server task failed: {error}"));
                shutdown.cancel();
            }
        }
    }
    tracing::info!("stopped");
    failed.map_or(Ok(()), Err)
}
