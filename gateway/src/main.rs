//! `holdfast-gateway`: the gateway alone in its process; the services are found at
//! `AUTH_SERVICE_URL`, `EVENTS_SERVICE_URL`, `ORDERS_SERVICE_URL` and `ML_SERVICE_URL`.

use std::process::ExitCode;

use holdfast_common::launch::{self, Mounted};

holdfast_common::global_allocator!();

#[tokio::main]
async fn main() -> ExitCode {
    launch::main(
        &[holdfast_common::config::Service::Gateway],
        |settings, infra| async move {
            let routers = holdfast_gateway::build(settings.clone(), infra).await?;
            let mut mounted = vec![Mounted {
                name: holdfast_gateway::SERVICE,
                port: settings.ports.gateway,
                router: routers.public,
            }];
            if let Some(port) = settings.gateway.metrics_port {
                mounted.push(Mounted {
                    name: holdfast_gateway::METRICS,
                    port,
                    router: routers.metrics,
                });
            }
            Ok(mounted)
        },
    )
    .await
}
