//! `holdfast-events`: the events service alone in its process.

use std::process::ExitCode;

use holdfast_common::launch::{self, Mounted};

holdfast_common::global_allocator!();

#[tokio::main]
async fn main() -> ExitCode {
    launch::main(
        &[holdfast_common::config::Service::Events],
        |settings, infra| async move {
            let router = holdfast_events::build(settings.clone(), infra).await?;
            Ok(vec![Mounted {
                name: holdfast_events::SERVICE,
                port: settings.ports.events,
                router,
            }])
        },
    )
    .await
}
