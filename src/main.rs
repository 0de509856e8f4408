//! `holdfast`: the gateway and all four services in one process.
//!
//! With no environment set, every port uses its embedded adapter (SQLite under `./data`, the
//! in-process TTL store and bus), so `cargo run --release` is all it takes to try Holdfast.
//! The services share one [`Infra`](holdfast_common::infra::Infra): that is what carries bus
//! messages from one service to another inside the process.

use std::process::ExitCode;

use holdfast_common::launch::{self, Mounted};

#[tokio::main]
async fn main() -> ExitCode {
    launch::main(|settings, infra| async move {
        println!("Holdfast is starting (all services in one process):");
        let ports = &settings.ports;
        Ok(vec![
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
                name: holdfast_gateway::SERVICE,
                port: ports.gateway,
                router: holdfast_gateway::build(settings.clone(), infra).await?,
            },
        ])
    })
    .await
}
