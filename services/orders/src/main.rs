//! `holdfast-orders`: the orders service alone in its process.

use std::process::ExitCode;

use holdfast_common::launch::{self, Mounted};

holdfast_common::global_allocator!();

#[tokio::main]
async fn main() -> ExitCode {
    launch::main(
        &[holdfast_common::config::Service::Orders],
        |settings, infra| async move {
            let router = holdfast_orders::build(settings.clone(), infra).await?;
            Ok(vec![Mounted {
                name: holdfast_orders::SERVICE,
                port: settings.ports.orders,
                router,
            }])
        },
    )
    .await
}
